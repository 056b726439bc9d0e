/*
 * The directory in an SQLite database (DATA/petrel.db).
 *
 * The daemon and the CLI share the file: WAL mode so that readers never wait
 * for a writer, a 10 s busy timeout, and every write transaction started with
 * BEGIN IMMEDIATE (a deferred transaction that turns into a write can fail
 * with SQLITE_BUSY at once, without waiting). synchronous=FULL: a command
 * that said "added" has its change on disk.
 *
 * One connection per struct directory, used by one thread at a time under a
 * recursive mutex (recursive so that a read snapshot taken by read_begin can
 * wrap the other lookups). Statements are prepared once and cached.
 *
 * This file: opening, the schema, statements, transactions and domains;
 * directory_sqlite_accounts.c: accounts, aliases and catch-alls.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/xmalloc.h"
#include "directory/directory_sqlite.h"

#define SQLITE_BUSY_TIMEOUT_MS 10000

/* Each entry brings the schema from version i to i + 1; user_version holds
 * the number of entries applied. Append, never edit. */
static const char *const sqlite_migrations[] = {
	/* 1: domains, accounts, aliases, catch-alls. Account ids are
	 * AUTOINCREMENT: they name mail/<id>/ and must never be reused. */
	"CREATE TABLE domains ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  catchall TEXT,"
	"  created INTEGER NOT NULL"
	");"
	"CREATE TABLE accounts ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  address TEXT NOT NULL UNIQUE,"
	"  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
	"  password TEXT,"
	"  scram_salt BLOB,"
	"  scram_iterations INTEGER,"
	"  scram_stored_key BLOB,"
	"  scram_server_key BLOB,"
	"  quota_bytes INTEGER NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),"
	"  quota_messages INTEGER NOT NULL DEFAULT 0 CHECK (quota_messages >= 0),"
	"  created INTEGER NOT NULL"
	");"
	"CREATE INDEX accounts_domain ON accounts(domain_id);"
	"CREATE TABLE aliases ("
	"  id INTEGER PRIMARY KEY,"
	"  address TEXT NOT NULL,"
	"  target TEXT NOT NULL,"
	"  domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (address, target)"
	");"
	"CREATE INDEX aliases_domain ON aliases(domain_id);",
};

#define SQLITE_SCHEMA_VERSION \
	((int)(sizeof(sqlite_migrations) / sizeof(sqlite_migrations[0])))

#define ACCOUNT_COLUMNS \
	"a.id, a.address, d.name, a.password, a.scram_salt, a.scram_iterations, " \
	"a.scram_stored_key, a.scram_server_key, a.quota_bytes, a.quota_messages, " \
	"a.created FROM accounts a JOIN domains d ON d.id = a.domain_id "

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN_READ] = "BEGIN DEFERRED",
	[STMT_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_DOMAIN_INSERT] = "INSERT INTO domains (name, created) VALUES (?1, ?2)",
	[STMT_DOMAIN_GET] = "SELECT id, name, catchall, created FROM domains WHERE name = ?1",
	[STMT_DOMAIN_LIST] = "SELECT d.id, d.name, d.catchall, d.created,"
	    " (SELECT count(*) FROM accounts a WHERE a.domain_id = d.id),"
	    " (SELECT count(*) FROM aliases l WHERE l.domain_id = d.id)"
	    " FROM domains d ORDER BY d.name",
	[STMT_DOMAIN_COUNTS] = "SELECT (SELECT count(*) FROM accounts WHERE domain_id = ?1),"
	    " (SELECT count(*) FROM aliases WHERE domain_id = ?1)",
	[STMT_DOMAIN_DELETE] = "DELETE FROM domains WHERE id = ?1",
	[STMT_DOMAIN_SET_CATCHALL] = "UPDATE domains SET catchall = ?1 WHERE name = ?2",
	[STMT_ACCOUNT_INSERT] = "INSERT INTO accounts (address, domain_id, password,"
	    " scram_salt, scram_iterations, scram_stored_key, scram_server_key,"
	    " quota_bytes, quota_messages, created)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[STMT_ACCOUNT_DELETE] = "DELETE FROM accounts WHERE address = ?1",
	[STMT_ACCOUNT_BY_ADDRESS] = "SELECT " ACCOUNT_COLUMNS "WHERE a.address = ?1",
	[STMT_ACCOUNT_BY_ID] = "SELECT " ACCOUNT_COLUMNS "WHERE a.id = ?1",
	[STMT_ACCOUNT_LIST_ALL] = "SELECT " ACCOUNT_COLUMNS "ORDER BY a.address",
	[STMT_ACCOUNT_LIST_DOMAIN] = "SELECT " ACCOUNT_COLUMNS
	    "WHERE d.name = ?1 ORDER BY a.address",
	[STMT_ACCOUNT_FIND] = "SELECT id FROM accounts WHERE address = ?1",
	[STMT_ACCOUNT_SET_CRED] = "UPDATE accounts SET password = ?1, scram_salt = ?2,"
	    " scram_iterations = ?3, scram_stored_key = ?4, scram_server_key = ?5"
	    " WHERE address = ?6",
	[STMT_ACCOUNT_UPGRADE_CRED] = "UPDATE accounts SET password = ?1, scram_salt = ?2,"
	    " scram_iterations = ?3, scram_stored_key = ?4, scram_server_key = ?5"
	    " WHERE id = ?6 AND password IS ?7",
	[STMT_ACCOUNT_SET_QUOTA] = "UPDATE accounts SET quota_bytes = ?1, quota_messages = ?2"
	    " WHERE address = ?3",
	/* A record without a password leaves the password (and SCRAM keys)
	 * alone; a new password drops keys derived from the old one. */
	[STMT_ACCOUNT_IMPORT_UPDATE] = "UPDATE accounts SET"
	    " password = coalesce(?1, password),"
	    " scram_salt = iif(?1 IS NULL, scram_salt, NULL),"
	    " scram_iterations = iif(?1 IS NULL, scram_iterations, NULL),"
	    " scram_stored_key = iif(?1 IS NULL, scram_stored_key, NULL),"
	    " scram_server_key = iif(?1 IS NULL, scram_server_key, NULL),"
	    " quota_bytes = CASE WHEN ?2 THEN ?3 ELSE quota_bytes END,"
	    " quota_messages = CASE WHEN ?4 THEN ?5 ELSE quota_messages END"
	    " WHERE address = ?6",
	[STMT_ALIAS_INSERT] = "INSERT INTO aliases (address, target, domain_id, created)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[STMT_ALIAS_DELETE_ONE] = "DELETE FROM aliases WHERE address = ?1 AND target = ?2",
	[STMT_ALIAS_DELETE_ALL] = "DELETE FROM aliases WHERE address = ?1",
	[STMT_ALIAS_LIST_ALL] = "SELECT address, target FROM aliases ORDER BY address, target",
	[STMT_ALIAS_LIST_DOMAIN] = "SELECT l.address, l.target FROM aliases l"
	    " JOIN domains d ON d.id = l.domain_id WHERE d.name = ?1"
	    " ORDER BY l.address, l.target",
	[STMT_ALIAS_TARGETS] = "SELECT target FROM aliases WHERE address = ?1"
	    " ORDER BY id LIMIT ?2",
};

void
dsql_lock(struct directory_backend *be)
{
	pthread_mutex_lock(&be->lock);
}

void
dsql_unlock(struct directory_backend *be)
{
	pthread_mutex_unlock(&be->lock);
}

/* Sets *error_r from the connection's last error. Call with the lock held. */
int
dsql_error(struct directory_backend *be, int rc, const char **error_r)
{
	be->last_rc = rc;
	if ((rc & 0xff) == SQLITE_BUSY)
		return directory_error(error_r, "the directory database stayed locked by "
		    "another process for %d s", SQLITE_BUSY_TIMEOUT_MS / 1000);
	return directory_error(error_r, "directory database: %s", sqlite3_errmsg(be->db));
}

/* The cached statement, reset and with no bindings; NULL on error. */
sqlite3_stmt *
dsql_stmt(struct directory_backend *be, enum stmt_id id, const char **error_r)
{
	sqlite3_stmt *st = be->stmts[id];
	int rc;

	if (st == NULL) {
		rc = sqlite3_prepare_v3(be->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		    &st, NULL);
		if (rc != SQLITE_OK) {
			dsql_error(be, rc, error_r);
			return NULL;
		}
		be->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Steps a statement expecting no row. 0, or -1 with be->last_rc set. */
int
dsql_step_done(struct directory_backend *be, sqlite3_stmt *st, const char **error_r)
{
	int rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return dsql_error(be, rc, error_r);
	return 0;
}

static int
stmt_run(struct directory_backend *be, enum stmt_id id, const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = dsql_stmt(be, id, error_r)) == NULL)
		return -1;
	return dsql_step_done(be, st, error_r);
}

int
dsql_begin(struct directory_backend *be, const char **error_r)
{
	return stmt_run(be, STMT_BEGIN_WRITE, error_r);
}

int
dsql_commit(struct directory_backend *be, const char **error_r)
{
	if (stmt_run(be, STMT_COMMIT, error_r) < 0) {
		(void)sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

void
dsql_rollback(struct directory_backend *be)
{
	const char *error;

	if (!sqlite3_get_autocommit(be->db) && stmt_run(be, STMT_ROLLBACK, &error) < 0)
		(void)sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
}

char *
dsql_column_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s == NULL ? NULL : xstrdup((const char *)s);
}

/* Opening */

static int
pragma_int(sqlite3 *db, const char *sql, int *value_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL)) != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value_r = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static int
sqlite_migrate(sqlite3 *db, const char *path, char **error_r)
{
	char *errmsg = NULL, *sql;
	int version, rc;

	if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &errmsg)) != SQLITE_OK)
		goto fail;
	/* Again inside the transaction: another process may have done it. */
	if ((rc = pragma_int(db, "PRAGMA user_version", &version)) != SQLITE_OK)
		goto fail;
	for (; version < SQLITE_SCHEMA_VERSION; version++) {
		rc = sqlite3_exec(db, sqlite_migrations[version], NULL, NULL, &errmsg);
		if (rc != SQLITE_OK)
			goto fail;
	}
	sql = xasprintf("PRAGMA user_version = %d", version);
	rc = sqlite3_exec(db, sql, NULL, NULL, &errmsg);
	free(sql);
	if (rc != SQLITE_OK || (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &errmsg)) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	*error_r = xasprintf("%s: cannot set up the schema: %s", path,
	    errmsg != NULL ? errmsg : sqlite3_errmsg(db));
	sqlite3_free(errmsg);
	(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
sqlite_configure(sqlite3 *db, const char *path, int create, char **error_r)
{
	sqlite3_stmt *st;
	char *errmsg = NULL;
	int version, rc, wal;

	if ((rc = pragma_int(db, "PRAGMA user_version", &version)) != SQLITE_OK) {
		*error_r = xasprintf("%s: %s", path, sqlite3_errmsg(db));
		return -1;
	}
	if (version > SQLITE_SCHEMA_VERSION) {
		*error_r = xasprintf("%s: schema version %d is newer than this petrel "
		    "knows (%d)", path, version, SQLITE_SCHEMA_VERSION);
		return -1;
	}
	if (version == 0 && !create) {
		*error_r = xasprintf("%s is not an initialized Petrel directory database", path);
		return -1;
	}
	if ((rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL)) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	wal = rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
	    strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
	sqlite3_finalize(st);
	if (!wal) {
		*error_r = xasprintf("%s: cannot switch to WAL mode: %s", path,
		    rc == SQLITE_ROW ? "refused" : sqlite3_errmsg(db));
		return -1;
	}
	rc = sqlite3_exec(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
	    NULL, NULL, &errmsg);
	if (rc != SQLITE_OK)
		goto fail;
	if (version < SQLITE_SCHEMA_VERSION)
		return sqlite_migrate(db, path, error_r);
	return 0;
fail:
	*error_r = xasprintf("%s: %s", path, errmsg != NULL ? errmsg : sqlite3_errmsg(db));
	sqlite3_free(errmsg);
	return -1;
}

static int
sqlite_open(const char *path, int create, struct directory_backend **be_r,
    char **error_r)
{
	struct directory_backend *be;
	pthread_mutexattr_t attr;
	struct stat st;
	sqlite3 *db = NULL;
	int fd, rc;

	if (create) {
		/* SQLite would create it 0644; its -wal and -shm files copy the
		 * mode of the database. */
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			*error_r = xasprintf("cannot create %s: %s", path, strerror(errno));
			return -1;
		}
		close(fd);
	} else if (stat(path, &st) < 0) {
		*error_r = errno == ENOENT ?
		    xasprintf("directory database %s does not exist (is the data directory "
		    "initialized? see `petrel init`)", path) :
		    xasprintf("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
	    SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		*error_r = xasprintf("cannot open %s: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, SQLITE_BUSY_TIMEOUT_MS);
	if (sqlite_configure(db, path, create, error_r) < 0) {
		sqlite3_close(db);
		return -1;
	}
	be = xcalloc(1, sizeof(*be));
	be->db = db;
	be->path = xstrdup(path);
	be->wal_path = xasprintf("%s-wal", path);
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&be->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	*be_r = be;
	return 0;
}

static void
sqlite_close(struct directory_backend *be)
{
	size_t i;

	for (i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(be->stmts[i]);
	sqlite3_close(be->db);
	pthread_mutex_destroy(&be->lock);
	free(be->path);
	free(be->wal_path);
	free(be);
}

/* Every write commits to the WAL (whose size or time changes), and a
 * checkpoint rewrites the database file; either file replaced changes its
 * inode. Two stat() calls, no database access. */
static void
stamp_file(const char *path, uint64_t *v)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		v[0] = v[1] = v[2] = 0;
		return;
	}
	v[0] = (uint64_t)st.st_ino;
	v[1] = (uint64_t)st.st_size;
	v[2] = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
}

static void
sqlite_stamp(struct directory_backend *be, struct directory_stamp *stamp)
{
	stamp_file(be->path, &stamp->v[0]);
	stamp_file(be->wal_path, &stamp->v[3]);
}

static int
sqlite_read_begin(struct directory_backend *be, const char **error_r)
{
	dsql_lock(be);
	if (stmt_run(be, STMT_BEGIN_READ, error_r) < 0) {
		dsql_unlock(be);
		return -1;
	}
	return 0;
}

static void
sqlite_read_end(struct directory_backend *be)
{
	const char *error;

	if (stmt_run(be, STMT_COMMIT, &error) < 0)
		(void)sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
	dsql_unlock(be);
}

/* Domains */

/* 1 with *id_r (and domain_r when not NULL), 0 not found, -1 error. Lock held. */
int
dsql_domain_lookup(struct directory_backend *be, const char *name, int64_t *id_r,
    struct directory_domain *domain_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = dsql_stmt(be, STMT_DOMAIN_GET, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (id_r != NULL)
			*id_r = sqlite3_column_int64(st, 0);
		if (domain_r != NULL) {
			memset(domain_r, 0, sizeof(*domain_r));
			domain_r->id = sqlite3_column_int64(st, 0);
			domain_r->name = dsql_column_strdup(st, 1);
			domain_r->catchall = dsql_column_strdup(st, 2);
			domain_r->created = sqlite3_column_int64(st, 3);
		}
		sqlite3_reset(st);
		return 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return dsql_error(be, rc, error_r);
	return 0;
}

/* Like dsql_domain_lookup, but a missing domain is an error. */
int
dsql_domain_require(struct directory_backend *be, const char *name, int64_t *id_r,
    const char **error_r)
{
	int ret;

	if ((ret = dsql_domain_lookup(be, name, id_r, NULL, error_r)) == 0)
		return directory_error(error_r, "domain %s is not hosted here", name);
	return ret < 0 ? -1 : 0;
}

int
dsql_domain_insert(struct directory_backend *be, const char *name, int64_t *id_r,
    const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = dsql_stmt(be, STMT_DOMAIN_INSERT, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (dsql_step_done(be, st, error_r) < 0) {
		if (be->last_rc == SQLITE_CONSTRAINT_UNIQUE)
			return directory_error(error_r, "domain %s already exists", name);
		return -1;
	}
	if (id_r != NULL)
		*id_r = sqlite3_last_insert_rowid(be->db);
	return 0;
}

static int
sqlite_domain_add(struct directory_backend *be, const char *name, const char **error_r)
{
	int ret;

	dsql_lock(be);
	ret = dsql_domain_insert(be, name, NULL, error_r);
	dsql_unlock(be);
	return ret;
}

static int
sqlite_domain_remove(struct directory_backend *be, const char *name, int force,
    const char **error_r)
{
	sqlite3_stmt *st;
	sqlite3_int64 naccounts, naliases;
	int64_t id;
	int rc;

	dsql_lock(be);
	if (dsql_begin(be, error_r) < 0)
		goto fail_notx;
	if (dsql_domain_require(be, name, &id, error_r) < 0)
		goto fail;
	if (!force) {
		if ((st = dsql_stmt(be, STMT_DOMAIN_COUNTS, error_r)) == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, id);
		if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
			sqlite3_reset(st);
			dsql_error(be, rc, error_r);
			goto fail;
		}
		naccounts = sqlite3_column_int64(st, 0);
		naliases = sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
		if (naccounts > 0 || naliases > 0) {
			directory_error(error_r, "domain %s still has %lld account%s and "
			    "%lld alias%s; remove them first, or force the removal", name,
			    (long long)naccounts, naccounts == 1 ? "" : "s",
			    (long long)naliases, naliases == 1 ? "" : "es");
			goto fail;
		}
	}
	/* Accounts and aliases go with it (ON DELETE CASCADE). */
	if ((st = dsql_stmt(be, STMT_DOMAIN_DELETE, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if (dsql_step_done(be, st, error_r) < 0 || dsql_commit(be, error_r) < 0)
		goto fail;
	dsql_unlock(be);
	return 0;
fail:
	dsql_rollback(be);
fail_notx:
	dsql_unlock(be);
	return -1;
}

static int
sqlite_domain_list(struct directory_backend *be, struct directory_domain **domains_r,
    size_t *count_r, const char **error_r)
{
	struct directory_domain *domains = NULL, *d;
	sqlite3_stmt *st;
	size_t count = 0, cap = 0;
	int rc;

	dsql_lock(be);
	if ((st = dsql_stmt(be, STMT_DOMAIN_LIST, error_r)) == NULL) {
		dsql_unlock(be);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			domains = xreallocarray(domains, cap, sizeof(*domains));
		}
		d = &domains[count++];
		memset(d, 0, sizeof(*d));
		d->id = sqlite3_column_int64(st, 0);
		d->name = dsql_column_strdup(st, 1);
		d->catchall = dsql_column_strdup(st, 2);
		d->created = sqlite3_column_int64(st, 3);
		d->naccounts = (size_t)sqlite3_column_int64(st, 4);
		d->naliases = (size_t)sqlite3_column_int64(st, 5);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		dsql_error(be, rc, error_r);
		dsql_unlock(be);
		directory_domains_free(&domains, count);
		return -1;
	}
	dsql_unlock(be);
	*domains_r = domains;
	*count_r = count;
	return 0;
}

static int
sqlite_domain_get(struct directory_backend *be, const char *name,
    struct directory_domain *domain_r, const char **error_r)
{
	int ret;

	dsql_lock(be);
	ret = dsql_domain_lookup(be, name, NULL, domain_r, error_r);
	dsql_unlock(be);
	return ret;
}

const struct directory_backend_ops directory_backend_sqlite = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.read_begin = sqlite_read_begin,
	.read_end = sqlite_read_end,
	.stamp = sqlite_stamp,
	.domain_add = sqlite_domain_add,
	.domain_remove = sqlite_domain_remove,
	.domain_list = sqlite_domain_list,
	.domain_get = sqlite_domain_get,
	.account_add = dsql_account_add,
	.account_remove = dsql_account_remove,
	.account_list = dsql_account_list,
	.account_get = dsql_account_get,
	.account_find = dsql_account_find,
	.account_set_credentials = dsql_account_set_credentials,
	.account_upgrade_credentials = dsql_account_upgrade_credentials,
	.account_set_quota = dsql_account_set_quota,
	.account_import = dsql_account_import,
	.alias_add = dsql_alias_add,
	.alias_remove = dsql_alias_remove,
	.alias_list = dsql_alias_list,
	.alias_targets = dsql_alias_targets,
	.catchall_set = dsql_catchall_set,
};
