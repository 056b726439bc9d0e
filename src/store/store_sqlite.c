/*
 * The files + SQLite backend: opening, the schema, statements, connections
 * and the helpers the other files share. Accounts: store_sqlite_account.c.
 *
 * Each account has one write connection, used under a mutex (every write
 * is a BEGIN IMMEDIATE transaction, so a second process waits in SQLite's
 * busy handler rather than failing), and a pool of read connections that
 * WAL lets run beside the writer. synchronous=FULL: the WAL is fsynced at
 * every commit, which is what makes a row durable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_sqlite.h"

#define SSQL_CACHE_KIB "512"        /* SQLite page cache per connection */

/* Each entry brings the schema from version i to i + 1; user_version holds
 * the number applied. Append, never edit. */
static const char *const ssql_migrations[] = {
	/* 1. Mailbox ids are AUTOINCREMENT: they name msg/<id>/ and are never
	 * reused. bodies holds what was parsed from a message file, once for
	 * all its copies; messages the per-mailbox state. */
	"CREATE TABLE account ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  usage_bytes INTEGER NOT NULL DEFAULT 0,"
	"  usage_messages INTEGER NOT NULL DEFAULT 0,"
	"  last_uidvalidity INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL"
	");"
	"CREATE TABLE mailboxes ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE,"
	"  uidvalidity INTEGER NOT NULL,"
	"  uidnext INTEGER NOT NULL DEFAULT 1,"
	"  highestmodseq INTEGER NOT NULL DEFAULT 1,"
	"  messages INTEGER NOT NULL DEFAULT 0,"
	"  unseen INTEGER NOT NULL DEFAULT 0,"
	"  deleted INTEGER NOT NULL DEFAULT 0,"
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  special_use INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE subscriptions (name TEXT PRIMARY KEY) WITHOUT ROWID;"
	"CREATE TABLE bodies ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  guid TEXT NOT NULL UNIQUE,"
	"  size INTEGER NOT NULL,"
	"  header_size INTEGER NOT NULL,"
	"  thread_id INTEGER NOT NULL DEFAULT 0,"
	"  date TEXT, subject TEXT, from_ TEXT, sender TEXT, reply_to TEXT, to_ TEXT,"
	"  cc TEXT, bcc TEXT, in_reply_to TEXT, message_id TEXT, refs TEXT,"
	"  bodystructure TEXT, body TEXT, parts BLOB, preview TEXT,"
	"  bits INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE TABLE messages ("
	"  mailbox_id INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  flags INTEGER NOT NULL,"
	"  keywords TEXT,"
	"  internaldate INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  guid TEXT NOT NULL,"
	"  thread_id INTEGER NOT NULL,"
	"  body_id INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox_id, uid)"
	") WITHOUT ROWID;"
	"CREATE INDEX messages_modseq ON messages (mailbox_id, modseq);"
	"CREATE INDEX messages_body ON messages (body_id);"
	"CREATE TABLE expunged ("
	"  mailbox_id INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  modseq INTEGER NOT NULL,"
	"  PRIMARY KEY (mailbox_id, uid)"
	") WITHOUT ROWID;"
	"CREATE TABLE keywords ("
	"  mailbox_id INTEGER NOT NULL,"
	"  name TEXT NOT NULL COLLATE NOCASE,"
	"  PRIMARY KEY (mailbox_id, name)"
	") WITHOUT ROWID;"
	"CREATE TABLE msgids (msgid TEXT PRIMARY KEY, thread_id INTEGER NOT NULL)"
	"  WITHOUT ROWID;"
	/* The search text, and its trigram index (substring matches) kept in
	 * step by triggers. */
	"CREATE TABLE search_text (id INTEGER PRIMARY KEY, header TEXT, body TEXT);"
	"CREATE VIRTUAL TABLE search USING fts5(header, body, content='search_text',"
	"  content_rowid='id', tokenize='trigram');"
	"CREATE TRIGGER search_text_insert AFTER INSERT ON search_text BEGIN"
	"  INSERT INTO search (rowid, header, body) VALUES (new.id, new.header, new.body);"
	"END;"
	"CREATE TRIGGER search_text_delete AFTER DELETE ON search_text BEGIN"
	"  INSERT INTO search (search, rowid, header, body)"
	"  VALUES ('delete', old.id, old.header, old.body);"
	"END;",
	/* Search text of expunged messages, removed after the expunge's
	 * commit in short transactions of their own (store_sqlite_unlink.c):
	 * deleting FTS5 rows is the costliest part of an expunge. Searches
	 * join the messages table, so pending text is never found. */
	"CREATE TABLE fts_pending_delete (id INTEGER PRIMARY KEY);",
	/* 3. New search text is indexed in the background, many messages per
	 * transaction (store_sqlite_fts.c): indexing one 4 KiB message alone
	 * wrote ~90 WAL pages inside the delivery's commit. The text itself
	 * is stored at delivery; fts_pending_add lists what the trigram index
	 * lacks, and a search indexes it first. Text deleted before it was
	 * indexed must not be "deleted" from the index (FTS5 would corrupt
	 * its totals). */
	"CREATE TABLE fts_pending_add (id INTEGER PRIMARY KEY);"
	"DROP TRIGGER IF EXISTS search_text_insert;"
	"DROP TRIGGER IF EXISTS search_text_delete;"
	"CREATE TRIGGER search_text_insert AFTER INSERT ON search_text BEGIN"
	"  INSERT OR IGNORE INTO fts_pending_add (id) VALUES (new.id);"
	"END;"
	"CREATE TRIGGER search_text_delete AFTER DELETE ON search_text BEGIN"
	"  INSERT INTO search (search, rowid, header, body)"
	"  SELECT 'delete', old.id, old.header, old.body"
	"  WHERE NOT EXISTS (SELECT 1 FROM fts_pending_add WHERE id = old.id);"
	"  DELETE FROM fts_pending_add WHERE id = old.id;"
	"END;",
};

#define SSQL_SCHEMA_VERSION ((int)(sizeof(ssql_migrations) / sizeof(ssql_migrations[0])))

#define MBOX_COLUMNS "m.id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq," \
	" m.messages, m.unseen, m.deleted, m.size, m.special_use," \
	" EXISTS (SELECT 1 FROM subscriptions s WHERE s.name = m.name) FROM mailboxes m "
#define MSG_COLUMNS "uid, modseq, internaldate, size, flags, keywords, guid, thread_id"

static const char *const stmt_sql[SST_COUNT] = {
	[SST_BEGIN_READ] = "BEGIN DEFERRED",
	[SST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[SST_COMMIT] = "COMMIT",
	[SST_ROLLBACK] = "ROLLBACK",
	[SST_ACCOUNT_USAGE] = "SELECT usage_bytes, usage_messages FROM account WHERE id = 1",
	[SST_ACCOUNT_ADD_USAGE] = "UPDATE account SET usage_bytes = usage_bytes + ?1,"
	    " usage_messages = usage_messages + ?2 WHERE id = 1",
	[SST_ACCOUNT_NEXT_UIDVALIDITY] = "UPDATE account SET last_uidvalidity ="
	    " max(last_uidvalidity + 1, ?1) WHERE id = 1 RETURNING last_uidvalidity",
	[SST_ACCOUNT_RAISE_UIDVALIDITY] = "UPDATE account SET last_uidvalidity ="
	    " max(last_uidvalidity, ?1) WHERE id = 1",
	[SST_MBOX_LIST] = "SELECT " MBOX_COLUMNS "ORDER BY m.name",
	[SST_MBOX_BY_NAME] = "SELECT " MBOX_COLUMNS "WHERE m.name = ?1",
	[SST_MBOX_BY_ID] = "SELECT " MBOX_COLUMNS "WHERE m.id = ?1",
	[SST_MBOX_INSERT] = "INSERT INTO mailboxes (id, name, uidvalidity, special_use)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[SST_MBOX_COUNT] = "SELECT count(*) FROM mailboxes",
	/* Names below ?1: those in ["?1/", "?10") in byte order ('0' follows
	 * '/'). */
	[SST_MBOX_CHILDREN] = "SELECT id, name FROM mailboxes"
	    " WHERE name >= ?1 || '/' AND name < ?1 || '0' ORDER BY name",
	[SST_MBOX_RENAME] = "UPDATE mailboxes SET name = ?2 WHERE id = ?1",
	[SST_MBOX_DELETE] = "DELETE FROM mailboxes WHERE id = ?1",
	[SST_MBOX_ALLOC] = "UPDATE mailboxes SET uidnext = uidnext + ?2,"
	    " highestmodseq = highestmodseq + ?3 WHERE id = ?1"
	    " RETURNING uidnext, highestmodseq",
	[SST_MBOX_ALLOC_AT] = "UPDATE mailboxes SET uidnext = ?2 + 1,"
	    " highestmodseq = highestmodseq + 1 WHERE id = ?1 AND uidnext <= ?2"
	    " RETURNING highestmodseq",
	[SST_MBOX_SET_UIDVALIDITY] = "UPDATE mailboxes SET uidvalidity = ?2,"
	    " uidnext = max(uidnext, ?3) WHERE id = ?1",
	[SST_MBOX_RAISE_UIDNEXT] = "UPDATE mailboxes SET uidnext = ?2"
	    " WHERE id = ?1 AND uidnext < ?2",
	[SST_MBOX_IDS] = "SELECT id FROM mailboxes ORDER BY id",
	[SST_MBOX_ADD_COUNTS] = "UPDATE mailboxes SET messages = messages + ?2,"
	    " unseen = unseen + ?3, deleted = deleted + ?4, size = size + ?5 WHERE id = ?1",
	[SST_MBOX_FILE_LIST] = "SELECT id, uidvalidity, special_use, name, uidnext"
	    " FROM mailboxes ORDER BY id",
	[SST_SUB_ADD] = "INSERT OR IGNORE INTO subscriptions (name) VALUES (?1)",
	[SST_SUB_DELETE] = "DELETE FROM subscriptions WHERE name = ?1",
	[SST_SUB_LIST] = "SELECT name FROM subscriptions ORDER BY name",
	[SST_SUB_RENAME] = "UPDATE OR REPLACE subscriptions SET name = ?2 WHERE name = ?1",
	[SST_BODY_INSERT] = "INSERT INTO bodies (guid, size, header_size, date, subject,"
	    " from_, sender, reply_to, to_, cc, bcc, in_reply_to, message_id, refs,"
	    " bodystructure, body, parts, preview, bits) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
	    " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
	[SST_BODY_SET_THREAD] = "UPDATE bodies SET thread_id = ?2 WHERE id = ?1",
	[SST_TEXT_INSERT] = "INSERT INTO search_text (id, header, body) VALUES (?1, ?2, ?3)",
	/* ?1: a JSON array of body ids. One statement for them all: FTS5
	 * flushes its pending changes at the end of every statement. */
	[SST_BODY_GC_TEXT] = "DELETE FROM search_text WHERE id IN"
	    " (SELECT value FROM json_each(?1)) AND NOT EXISTS"
	    " (SELECT 1 FROM messages WHERE body_id = search_text.id)",
	/* ?1: as above; the text of bodies left without a message. */
	[SST_FTS_PENDING_ADD] = "INSERT OR IGNORE INTO fts_pending_delete (id)"
	    " SELECT value FROM json_each(?1) WHERE NOT EXISTS"
	    " (SELECT 1 FROM messages WHERE body_id = value)",
	[SST_BODY_GC] = "DELETE FROM bodies WHERE id IN (SELECT value FROM json_each(?1))"
	    " AND NOT EXISTS (SELECT 1 FROM messages WHERE body_id = bodies.id)",
	[SST_MSGID_GET] = "SELECT thread_id FROM msgids WHERE msgid = ?1",
	[SST_MSGID_PUT] = "INSERT OR IGNORE INTO msgids (msgid, thread_id) VALUES (?1, ?2)",
	[SST_MSG_INSERT] = "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords,"
	    " internaldate, size, guid, thread_id, body_id)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[SST_MSG_LIST] = "SELECT " MSG_COLUMNS " FROM messages"
	    " WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid",
	[SST_MSG_GET] = "SELECT " MSG_COLUMNS ", body_id FROM messages"
	    " WHERE mailbox_id = ?1 AND uid = ?2",
	[SST_MSG_SET_FLAGS] = "UPDATE messages SET flags = ?3, keywords = ?4, modseq = ?5"
	    " WHERE mailbox_id = ?1 AND uid = ?2",
	[SST_MSG_DELETE] = "DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
	[SST_MSG_CHANGED] = "SELECT " MSG_COLUMNS " FROM messages"
	    " WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
	[SST_MSG_OF_MBOX] = "SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid",
	[SST_MSG_DELETE_MBOX] = "DELETE FROM messages WHERE mailbox_id = ?1"
	    " RETURNING body_id",
	[SST_MSG_SUMMARY] = "SELECT b.size, b.header_size, b.date, b.subject, b.from_,"
	    " b.sender, b.reply_to, b.to_, b.cc, b.bcc, b.in_reply_to, b.message_id, b.refs,"
	    " b.bodystructure, b.body, b.parts, b.preview, b.bits"
	    " FROM messages m JOIN bodies b ON b.id = m.body_id"
	    " WHERE m.mailbox_id = ?1 AND m.uid = ?2",
	[SST_MSG_NAMES] = "SELECT uid, guid FROM messages WHERE mailbox_id = ?1 ORDER BY uid",
	[SST_EXP_INSERT] = "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
	    " VALUES (?1, ?2, ?3)",
	[SST_EXP_SINCE] = "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2"
	    " ORDER BY uid",
	[SST_EXP_DELETE_MBOX] = "DELETE FROM expunged WHERE mailbox_id = ?1",
	[SST_EXP_ANY] = "SELECT 1 FROM expunged WHERE mailbox_id = ?1 LIMIT 1",
	[SST_KW_HAS] = "SELECT 1 FROM keywords WHERE mailbox_id = ?1 AND name = ?2",
	[SST_KW_COUNT] = "SELECT count(*) FROM keywords WHERE mailbox_id = ?1",
	[SST_KW_ADD] = "INSERT OR IGNORE INTO keywords (mailbox_id, name) VALUES (?1, ?2)",
	[SST_KW_DELETE_MBOX] = "DELETE FROM keywords WHERE mailbox_id = ?1",
};

/* --- helpers ------------------------------------------------------------ */

/* Leaves a mark for the next open to check the index thoroughly (a full
 * check at every open would cost O(index size)). */
void
ssql_mark_damaged(struct store_backend_account *ba)
{
	char *path = xasprintf("%s/" SSQL_CHECK_MARKER, ba->dir);
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >= 0)
		close(fd);
	free(path);
}

/* Waits for a lock another connection holds: the background indexer or
 * purge, or a command-line process. They hold it for milliseconds, so the
 * first waits are short (SQLite's own handler sleeps 1, 2, 5, 10... ms,
 * which a delivery batch would wait out in full). */
static int
busy_wait(void *arg, int count)
{
	long waited_us;

	(void)arg;
	if (count < 50)
		waited_us = (long)count * 200;
	else
		waited_us = 50L * 200 + (long)(count - 50) * 2000;
	if (waited_us >= SSQL_BUSY_TIMEOUT_MS * 1000L)
		return 0;
	usleep(count < 50 ? 200 : 2000);
	return 1;
}

void
ssql_busy_setup(sqlite3 *db)
{
	sqlite3_busy_handler(db, busy_wait, NULL);
}

int
ssql_error(struct ssql_conn *c, int rc, const char **error_r)
{
	if (((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) && c != NULL &&
	    c->ba != NULL) {
		ssql_mark_damaged(c->ba);
		atomic_store(&c->ba->damaged, 1);
		return store_fail_temp(error_r, "event=store-index-damaged account=%lld "
		    "rc=%d reason=\"%s\"", (long long)c->ba->id, rc, sqlite3_errmsg(c->db));
	}
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return store_fail_temp(error_r, "event=store-busy reason=\"index locked "
		    "for %d s\"", SSQL_BUSY_TIMEOUT_MS / 1000);
	return store_fail_temp(error_r, "event=store-db-error rc=%d reason=\"%s\"", rc,
	    c != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
}

sqlite3_stmt *
ssql_stmt(struct ssql_conn *c, enum ssql_stmt id, const char **error_r)
{
	sqlite3_stmt *st = c->stmts[id];
	int rc;

	if (st == NULL) {
		rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		    &st, NULL);
		if (rc != SQLITE_OK) {
			ssql_error(c, rc, error_r);
			return NULL;
		}
		c->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int
ssql_step_done(struct ssql_conn *c, sqlite3_stmt *st, const char **error_r)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;   /* RETURNING rows nobody wants */
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ssql_error(c, rc, error_r);
	return 0;
}

int
ssql_exec(struct ssql_conn *c, const char *sql, const char **error_r)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return ssql_error(c, rc, error_r);
	return 0;
}

static int
stmt_run(struct ssql_conn *c, enum ssql_stmt id, const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = ssql_stmt(c, id, error_r)) == NULL)
		return -1;
	return ssql_step_done(c, st, error_r);
}

char *
ssql_column_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s != NULL ? xstrdup((const char *)s) : NULL;
}

void
ssql_random_hex(char *out, size_t bytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[64];
	size_t i, got = 0;
	ssize_t n;

	if (bytes > sizeof(r))
		bytes = sizeof(r);
	while (got < bytes) {
		n = getrandom(r + got, bytes - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fatal("getrandom: %s", strerror(errno));
		got += (size_t)n;
	}
	for (i = 0; i < bytes; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[2 * bytes] = '\0';
}

void
ssql_message_name(char out[SSQL_FILE_NAME_MAX], int64_t mailbox_id, uint32_t uid,
    const char *guid)
{
	snprintf(out, SSQL_FILE_NAME_MAX, "%lld/%u.%s", (long long)mailbox_id, uid, guid);
}

int
ssql_fsync_dir(struct store_backend *be, int dirfd, const char *name,
    const char **error_r)
{
	int fd;

	if (name == NULL)
		fd = dup(dirfd);
	else
		fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return store_fail_temp(error_r, "event=store-io-error op=open-dir "
		    "reason=\"%s\"", strerror(errno));
	if (be->fsync(fd) < 0) {
		int e = errno;

		close(fd);
		return store_fail_temp(error_r, "event=store-io-error op=fsync-dir "
		    "reason=\"%s\"", strerror(e));
	}
	close(fd);
	return 0;
}

void
ssql_names_add(struct ssql_names *names, int64_t mailbox_id, uint32_t uid,
    const char *guid)
{
	names->names = xreallocarray(names->names, names->n + 1, sizeof(*names->names));
	ssql_message_name(names->names[names->n++], mailbox_id, uid, guid);
}

void
ssql_names_unlink(struct store_backend_account *ba, struct ssql_names *names)
{
	char dir[SSQL_FILE_NAME_MAX], *slash;
	const char *error;
	size_t i;

	for (i = 0; i < names->n; i++) {
		if (unlinkat(ba->msg_fd, names->names[i], 0) < 0 && errno != ENOENT)
			log_warn(NULL, "event=store-unlink-failed account=%lld file=%s "
			    "reason=\"%s\"", (long long)ba->id, names->names[i],
			    strerror(errno));
		/* Each directory once: names of one directory are adjacent in
		 * every caller. */
		memcpy(dir, names->names[i], sizeof(dir));
		if ((slash = strchr(dir, '/')) != NULL)
			*slash = '\0';
		if (i + 1 < names->n && strncmp(names->names[i + 1], dir, strlen(dir)) == 0 &&
		    names->names[i + 1][strlen(dir)] == '/')
			continue;
		if (ssql_fsync_dir(ba->be, ba->msg_fd, dir, &error) < 0)
			log_warn(NULL, "event=store-unlink-fsync-failed account=%lld dir=%s",
			    (long long)ba->id, dir);
	}
}

void
ssql_names_free(struct ssql_names *names)
{
	free(names->names);
	names->names = NULL;
	names->n = 0;
}

/* Removes dirfd/name and everything below it. */
int
ssql_remove_tree(int dirfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, de->d_name, 0) == 0)
			continue;
		if ((errno == EISDIR || errno == EPERM) && ssql_remove_tree(fd, de->d_name) == 0)
			continue;
		rc = -1;
	}
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
		rc = -1;
	return rc;
}

/* --- connections -------------------------------------------------------- */

void
ssql_conn_close(struct ssql_conn *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < SST_COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	sqlite3_close(c->db);
	free(c);
}

/* Empties an idle connection: its prepared statements (prepared again
 * when next used, some tens of microseconds each) and its page cache,
 * which leaves ~30 KiB, mostly the parsed schema. */
void
ssql_conn_trim(struct ssql_conn *c)
{
	int i;

	for (i = 0; i < SST_COUNT; i++) {
		sqlite3_finalize(c->stmts[i]);
		c->stmts[i] = NULL;
	}
	sqlite3_db_release_memory(c->db);
}

struct ssql_conn *
ssql_conn_open(struct store_backend_account *ba, const char **error_r)
{
	struct ssql_conn *c = xcalloc(1, sizeof(*c));
	int rc;

	c->ba = ba;
	rc = sqlite3_open_v2(ba->db_path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ssql_error(c, rc, error_r);
		ssql_conn_close(c);
		return NULL;
	}
	ssql_busy_setup(c->db);
	/* A small page cache: a thousand idle accounts stay open, and big
	 * listings are single passes (the kernel caches the file anyway).
	 * SSQL_SECURE_DELETE: see store_sqlite.h. */
	if (ssql_exec(c, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	    "PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;"
	    "PRAGMA cache_size = -" SSQL_CACHE_KIB "; " SSQL_SECURE_DELETE, error_r) < 0) {
		ssql_conn_close(c);
		return NULL;
	}
	return c;
}

struct ssql_conn *
ssql_wbegin(struct store_backend_account *ba, const char **error_r)
{
	pthread_mutex_lock(&ba->wlock);
	if (stmt_run(ba->w, SST_BEGIN_WRITE, error_r) < 0) {
		pthread_mutex_unlock(&ba->wlock);
		return NULL;
	}
	return ba->w;
}

void
ssql_wrollback(struct store_backend_account *ba)
{
	const char *error;

	if (!sqlite3_get_autocommit(ba->w->db))
		stmt_run(ba->w, SST_ROLLBACK, &error);
	pthread_mutex_unlock(&ba->wlock);
}

int
ssql_wcommit(struct store_backend_account *ba, const char **error_r)
{
	if (stmt_run(ba->w, SST_COMMIT, error_r) < 0) {
		ssql_wrollback(ba);
		return -1;
	}
	pthread_mutex_unlock(&ba->wlock);
	return 0;
}

void
ssql_wunlock(struct store_backend_account *ba)
{
	pthread_mutex_unlock(&ba->wlock);
}

struct ssql_conn *
ssql_reader(struct store_backend_account *ba, const char **error_r)
{
	struct ssql_conn *c;

	pthread_mutex_lock(&ba->rlock);
	if ((c = ba->readers) != NULL)
		ba->readers = c->next;
	pthread_mutex_unlock(&ba->rlock);
	if (c == NULL)
		c = ssql_conn_open(ba, error_r);
	return c;
}

void
ssql_reader_put(struct store_backend_account *ba, struct ssql_conn *c)
{
	const char *error;

	if (c == NULL)
		return;
	if (!sqlite3_get_autocommit(c->db))
		stmt_run(c, SST_ROLLBACK, &error);
	pthread_mutex_lock(&ba->rlock);
	c->next = ba->readers;
	ba->readers = c;
	pthread_mutex_unlock(&ba->rlock);
}

/* --- the backend -------------------------------------------------------- */

/* 1 when writers can use O_TMPFILE files in tmp/, linked into place
 * through /proc/self/fd; probed once, at open. */
static int
tmpfile_works(int tmp_fd)
{
	char path[32];
	int fd, ok;

	if ((fd = openat(tmp_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600)) < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ok = access(path, F_OK) == 0;
	close(fd);
	return ok;
}

/* Makes a directory of the data directory, durably. */
static int
mkdir_durable(const char *parent, const char *path, const char **error_r)
{
	int fd, rc = 0;

	if (mkdir(path, 0700) < 0) {
		if (errno == EEXIST)
			return 0;
		return store_fail_temp(error_r, "event=store-io-error op=mkdir path=%s "
		    "reason=\"%s\"", path, strerror(errno));
	}
	if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) < 0)
		rc = store_fail_temp(error_r, "event=store-io-error op=fsync-dir path=%s "
		    "reason=\"%s\"", parent, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static void ssql_close(struct store_backend *be);

static int
ssql_open(const char *data_dir, struct store_backend **be_r, const char **error_r)
{
	struct store_backend *be = xcalloc(1, sizeof(*be));

	be->mail_fd = be->tmp_fd = -1;
	be->fsync = fsync;
	be->sync_mode = STORE_SYNC_WRITER;
	ssql_pool_init(&be->pool);
	ssql_unlinker_init(&be->unlinker);
	pthread_mutex_init(&be->swept_lock, NULL);
	be->data_dir = xstrdup(data_dir);
	be->mail_dir = xasprintf("%s/mail", data_dir);
	be->tmp_dir = xasprintf("%s/tmp", data_dir);
	if (sqlite3_threadsafe() == 0) {
		ssql_close(be);
		return store_fail_temp(error_r, "event=store-open-failed "
		    "reason=\"SQLite built without threads\"");
	}
	if (mkdir_durable(data_dir, be->mail_dir, error_r) < 0 ||
	    mkdir_durable(data_dir, be->tmp_dir, error_r) < 0) {
		ssql_close(be);
		return -1;
	}
	be->mail_fd = open(be->mail_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	be->tmp_fd = open(be->tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (be->mail_fd < 0 || be->tmp_fd < 0) {
		store_fail_temp(error_r, "event=store-open-failed dir=%s reason=\"%s\"",
		    data_dir, strerror(errno));
		ssql_close(be);
		return -1;
	}
	ssql_sweep_tmp(be, time(NULL));
	be->tmpfile = tmpfile_works(be->tmp_fd);
	*be_r = be;
	return 0;
}

static void
ssql_close(struct store_backend *be)
{
	ssql_unlinker_destroy(&be->unlinker);
	ssql_pool_destroy(&be->pool);
	pthread_mutex_destroy(&be->swept_lock);
	ssql_idset_free(&be->swept);
	if (be->mail_fd >= 0)
		close(be->mail_fd);
	if (be->tmp_fd >= 0)
		close(be->tmp_fd);
	free(be->data_dir);
	free(be->mail_dir);
	free(be->tmp_dir);
	free(be);
}

static void
ssql_set_sync_mode(struct store_backend *be, enum store_sync_mode mode)
{
	be->sync_mode = mode;
}

static void
ssql_set_fsync(struct store_backend *be, int (*fn)(int fd))
{
	be->fsync = fn != NULL ? fn : fsync;
}

static void
ssql_flush(struct store_backend *be)
{
	ssql_unlinker_flush(&be->unlinker);
}

/* --- the schema -------------------------------------------------------- */

static int
user_version(struct ssql_conn *c, int *version_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return ssql_error(c, rc, error_r);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return ssql_error(c, rc, error_r);
	}
	*version_r = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Brings the schema up to date; a new index gets the default mailboxes, or
 * what the files hold when rebuild is set. */
int
ssql_schema_init(struct store_backend_account *ba, int rebuild, const char **error_r)
{
	struct ssql_conn *c;
	char sql[64];
	int version = 0, i;

	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if (user_version(c, &version, error_r) < 0)
		goto fail;
	if (version > SSQL_SCHEMA_VERSION) {
		store_fail_temp(error_r, "event=store-open-failed account=%lld "
		    "reason=\"index schema %d is newer than this program's %d\"",
		    (long long)ba->id, version, SSQL_SCHEMA_VERSION);
		goto fail;
	}
	if (version == SSQL_SCHEMA_VERSION) {
		ssql_wrollback(ba);
		return 0;
	}
	for (i = version; i < SSQL_SCHEMA_VERSION; i++)
		if (ssql_exec(c, ssql_migrations[i], error_r) < 0)
			goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SSQL_SCHEMA_VERSION);
	if (ssql_exec(c, sql, error_r) < 0)
		goto fail;
	if (version == 0) {
		snprintf(sql, sizeof(sql), "INSERT INTO account (id, created) VALUES (1, %lld)",
		    (long long)time(NULL));
		if (ssql_exec(c, sql, error_r) < 0)
			goto fail;
		if ((rebuild ? ssql_rebuild(ba, c, error_r) :
		    ssql_create_defaults(ba, c, error_r)) < 0)
			goto fail;
	}
	return ssql_wcommit(ba, error_r);
fail:
	ssql_wrollback(ba);
	return -1;
}

const struct store_backend_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = ssql_open,
	.close = ssql_close,
	.set_sync_mode = ssql_set_sync_mode,
	.set_fsync = ssql_set_fsync,
	.flush = ssql_flush,
	.account_open = ssql_account_open,
	.account_close = ssql_account_close,
	.account_park = ssql_account_park,
	.account_valid = ssql_account_valid,
	/* msg/, the index's shared memory, and the index and its WAL for
	 * each of two connections. */
	.idle_account_fds = 6,
	.account_delete = ssql_account_delete,
	.account_usage = ssql_account_usage,
	.mailbox_list = ssql_mailbox_list,
	.mailbox_get = ssql_mailbox_get,
	.mailbox_create = ssql_mailbox_create,
	.mailbox_rename = ssql_mailbox_rename,
	.mailbox_delete = ssql_mailbox_delete,
	.mailbox_subscribe = ssql_mailbox_subscribe,
	.mailbox_set_uidvalidity = ssql_mailbox_set_uidvalidity,
	.mailbox_raise_uidnext = ssql_mailbox_raise_uidnext,
	.subscriptions = ssql_subscriptions,
	.message_list = ssql_message_list,
	.message_summary = ssql_message_summary,
	.message_set_flags = ssql_message_set_flags,
	.message_copy = ssql_message_copy,
	.message_expunge = ssql_message_expunge,
	.changes_since = ssql_changes_since,
	.search_text = ssql_search_text,
	.blob_open = ssql_blob_open,
	.blob_read = ssql_blob_read,
	.blob_close = ssql_blob_close,
	.writer_new = ssql_writer_new,
	.writer_write = ssql_writer_write,
	.writer_prepare = ssql_writer_prepare,
	.writer_free = ssql_writer_free,
	.commit_batch = ssql_commit_batch,
	.sweep_tmp = ssql_sweep_tmp,
};
