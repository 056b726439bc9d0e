/*
 * Mailboxes and subscriptions in the SQLite index, and msg/mailboxes: the
 * small file that keeps, outside the index, what a rebuild needs to give
 * mailboxes back their names, UIDVALIDITY and roles, and a floor for their
 * UIDNEXT. It is rewritten (temp file, fsync, rename, fsync msg/) inside
 * every transaction that changes one of those, before the commit: if the
 * commit then fails, the file names a mailbox too many, which a rebuild
 * would create empty, or a UIDNEXT too high, which only skips UIDs.
 *
 *   petrel-mailboxes 1
 *   m <id> <uidvalidity> <special-use> <name>
 *   u <id> <uidnext>        (after its m line, when UIDNEXT is above 1)
 *   s <name>                a subscription
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_sqlite.h"

#define SSQL_MAILBOXES_FILE "mailboxes"
#define SSQL_MAILBOXES_TMP "mailboxes.tmp"

static const struct {
	const char *name;
	unsigned special_use;
} ssql_default_mailboxes[] = {
	{ "INBOX", 0 },
	{ "Sent", STORE_SPECIAL_SENT },
	{ "Drafts", STORE_SPECIAL_DRAFTS },
	{ "Trash", STORE_SPECIAL_TRASH },
	{ "Junk", STORE_SPECIAL_JUNK },
	{ "Archive", STORE_SPECIAL_ARCHIVE },
};

static void
mailbox_from_row(sqlite3_stmt *st, struct store_mailbox *m)
{
	m->id = sqlite3_column_int64(st, 0);
	m->name = ssql_column_strdup(st, 1);
	m->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	m->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
	m->highestmodseq = (uint64_t)sqlite3_column_int64(st, 4);
	m->messages = (uint32_t)sqlite3_column_int64(st, 5);
	m->unseen = (uint32_t)sqlite3_column_int64(st, 6);
	m->deleted = (uint32_t)sqlite3_column_int64(st, 7);
	m->size = (uint64_t)sqlite3_column_int64(st, 8);
	m->special_use = (unsigned)sqlite3_column_int(st, 9);
	m->subscribed = sqlite3_column_int(st, 10) != 0;
}

/* 1/0/-1; mbox_r may be NULL. */
static int
mailbox_read(struct ssql_conn *c, const char *name, int64_t id, struct store_mailbox *mbox_r,
    const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = ssql_stmt(c, name != NULL ? SST_MBOX_BY_NAME : SST_MBOX_BY_ID,
	    error_r)) == NULL)
		return -1;
	if (name != NULL)
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (mbox_r != NULL)
			mailbox_from_row(st, mbox_r);
		rc = 1;
	} else if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = ssql_error(c, rc, error_r);
	sqlite3_reset(st);
	return rc;
}

int
ssql_mailbox_find(struct ssql_conn *c, const char *name, int64_t id,
    struct ssql_mailbox *mbox_r, const char **error_r)
{
	struct store_mailbox m;
	int rc;

	memset(&m, 0, sizeof(m));
	if ((rc = mailbox_read(c, name, id, &m, error_r)) != 1)
		return rc;
	if (mbox_r != NULL) {
		mbox_r->id = m.id;
		mbox_r->uidvalidity = m.uidvalidity;
		mbox_r->uidnext = m.uidnext;
		mbox_r->highestmodseq = m.highestmodseq;
		mbox_r->messages = m.messages;
	}
	free(m.name);
	return 1;
}

int
ssql_add_usage(struct ssql_conn *c, int64_t bytes, int64_t messages, const char **error_r)
{
	sqlite3_stmt *st;

	if (bytes == 0 && messages == 0)
		return 0;
	if ((st = ssql_stmt(c, SST_ACCOUNT_ADD_USAGE, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, bytes);
	sqlite3_bind_int64(st, 2, messages);
	return ssql_step_done(c, st, error_r);
}

int
ssql_mailbox_add_counts(struct ssql_conn *c, int64_t mailbox_id, int64_t messages,
    int64_t unseen, int64_t deleted, int64_t size, const char **error_r)
{
	sqlite3_stmt *st;

	if (messages == 0 && unseen == 0 && deleted == 0 && size == 0)
		return 0;
	if ((st = ssql_stmt(c, SST_MBOX_ADD_COUNTS, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, messages);
	sqlite3_bind_int64(st, 3, unseen);
	sqlite3_bind_int64(st, 4, deleted);
	sqlite3_bind_int64(st, 5, size);
	return ssql_step_done(c, st, error_r);
}

int
ssql_mailbox_alloc(struct ssql_conn *c, int64_t mailbox_id, uint32_t nuids,
    uint64_t nmodseq, uint32_t *uid_r, uint64_t *modseq_r, const char **error_r)
{
	sqlite3_stmt *st;
	int64_t uidnext;
	uint64_t modseq;
	int rc;

	if ((st = ssql_stmt(c, SST_MBOX_ALLOC, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, nuids);
	sqlite3_bind_int64(st, 3, (int64_t)nmodseq);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return ssql_error(c, rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc, error_r);
	}
	uidnext = sqlite3_column_int64(st, 0);
	modseq = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (uidnext > (int64_t)UINT32_MAX)
		return store_fail(STORE_ERR_LIMIT, error_r, "the mailbox has run out of UIDs");
	if (uid_r != NULL)
		*uid_r = (uint32_t)(uidnext - nuids);
	if (modseq_r != NULL)
		*modseq_r = modseq - nmodseq + 1;
	return 0;
}

int
ssql_mailbox_alloc_uid(struct ssql_conn *c, int64_t mailbox_id, uint32_t uid,
    uint64_t *modseq_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = ssql_stmt(c, SST_MBOX_ALLOC_AT, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return store_fail(STORE_ERR_CONFLICT, error_r, "UID %u is taken", uid);
		return ssql_error(c, rc, error_r);
	}
	*modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* Registers the keywords of a space-separated list as used in the mailbox
 * (IMAP's FLAGS response), within the per-mailbox limit. */
int
ssql_keywords_register(struct ssql_conn *c, int64_t mailbox_id, const char *keywords,
    const char **error_r)
{
	sqlite3_stmt *st;
	const char *p, *end;
	char kw[STORE_KEYWORD_MAX + 1];
	int rc, count;

	for (p = keywords; p != NULL && *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		if ((end = strchr(p, ' ')) == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > STORE_KEYWORD_MAX || end == p)
			continue;
		memcpy(kw, p, (size_t)(end - p));
		kw[end - p] = '\0';
		if ((st = ssql_stmt(c, SST_KW_HAS, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_text(st, 2, kw, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_ROW)
			continue;
		if (rc != SQLITE_DONE)
			return ssql_error(c, rc, error_r);
		if ((st = ssql_stmt(c, SST_KW_COUNT, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
			sqlite3_reset(st);
			return ssql_error(c, rc, error_r);
		}
		count = sqlite3_column_int(st, 0);
		sqlite3_reset(st);
		if (count >= STORE_KEYWORDS_MAX)
			return store_fail(STORE_ERR_LIMIT, error_r,
			    "too many keywords in this mailbox");
		if ((st = ssql_stmt(c, SST_KW_ADD, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_text(st, 2, kw, -1, SQLITE_STATIC);
		if (ssql_step_done(c, st, error_r) < 0)
			return -1;
	}
	return 0;
}

int
ssql_mailboxes_file_write(struct store_backend_account *ba, struct ssql_conn *c,
    const char **error_r)
{
	struct buf b = BUF_INIT;
	sqlite3_stmt *st;
	ssize_t n;
	size_t off;
	int fd = -1, rc;

	buf_puts(&b, "petrel-mailboxes 1\n");
	if ((st = ssql_stmt(c, SST_MBOX_FILE_LIST, error_r)) == NULL)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		buf_printf(&b, "m %lld %u %u %s\n", (long long)sqlite3_column_int64(st, 0),
		    (unsigned)sqlite3_column_int64(st, 1), (unsigned)sqlite3_column_int(st, 2),
		    (const char *)sqlite3_column_text(st, 3));
		if (sqlite3_column_int64(st, 4) > 1)
			buf_printf(&b, "u %lld %lld\n", (long long)sqlite3_column_int64(st, 0),
			    (long long)sqlite3_column_int64(st, 4));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		goto fail;
	}
	if ((st = ssql_stmt(c, SST_SUB_LIST, error_r)) == NULL)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		buf_printf(&b, "s %s\n", (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		goto fail;
	}
	fd = openat(ba->msg_fd, SSQL_MAILBOXES_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
	if (fd < 0)
		goto io_fail;
	for (off = 0; off < b.len; off += (size_t)n) {
		if ((n = write(fd, b.data + off, b.len - off)) < 0) {
			if (errno == EINTR) {
				n = 0;
				continue;
			}
			goto io_fail;
		}
	}
	if (ba->be->fsync(fd) < 0)
		goto io_fail;
	if (close(fd) < 0) {
		fd = -1;
		goto io_fail;
	}
	fd = -1;
	if (renameat(ba->msg_fd, SSQL_MAILBOXES_TMP, ba->msg_fd, SSQL_MAILBOXES_FILE) < 0)
		goto io_fail;
	if (ssql_fsync_dir(ba->be, ba->msg_fd, NULL, error_r) < 0)
		goto fail;
	buf_free(&b);
	return 0;
io_fail:
	store_fail_temp(error_r, "event=store-io-error op=write-mailboxes account=%lld "
	    "reason=\"%s\"", (long long)ba->id, strerror(errno));
fail:
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	return -1;
}

/* Inserts one mailbox row and makes its directory (the caller fsyncs
 * msg/). uidvalidity 0: a new one; id 0: a new one. */
int
ssql_mailbox_insert(struct store_backend_account *ba, struct ssql_conn *c,
    const char *name, unsigned special_use, uint32_t uidvalidity, int64_t id,
    int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *st;
	char dir[32];
	int rc;

	if ((st = ssql_stmt(c, SST_MBOX_COUNT, error_r)) == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return ssql_error(c, rc, error_r);
	}
	rc = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc >= STORE_MAILBOXES_MAX)
		return store_fail(STORE_ERR_LIMIT, error_r, "too many mailboxes");
	if (uidvalidity == 0) {
		/* Time-based, and above any given before in this account: a
		 * mailbox deleted and created again within a second still gets
		 * a new one. */
		if ((st = ssql_stmt(c, SST_ACCOUNT_NEXT_UIDVALIDITY, error_r)) == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
		if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
			sqlite3_reset(st);
			return ssql_error(c, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, error_r);
		}
		uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (uidvalidity == 0)
			uidvalidity = 1;
	}
	if ((st = ssql_stmt(c, SST_MBOX_INSERT, error_r)) == NULL)
		return -1;
	if (id > 0)
		sqlite3_bind_int64(st, 1, id);
	else
		sqlite3_bind_null(st, 1);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, uidvalidity);
	sqlite3_bind_int(st, 4, (int)special_use);
	if (ssql_step_done(c, st, error_r) < 0)
		return -1;
	id = sqlite3_last_insert_rowid(c->db);
	snprintf(dir, sizeof(dir), "%lld", (long long)id);
	if (mkdirat(ba->msg_fd, dir, 0700) < 0 && errno != EEXIST)
		return store_fail_temp(error_r, "event=store-io-error op=mkdir account=%lld "
		    "mailbox=%lld reason=\"%s\"", (long long)ba->id, (long long)id,
		    strerror(errno));
	if (id_r != NULL)
		*id_r = id;
	return 0;
}

static int
subscribe(struct ssql_conn *c, const char *name, int on, const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = ssql_stmt(c, on ? SST_SUB_ADD : SST_SUB_DELETE, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return ssql_step_done(c, st, error_r);
}

int
ssql_create_defaults(struct store_backend_account *ba, struct ssql_conn *c,
    const char **error_r)
{
	size_t i;

	for (i = 0; i < sizeof(ssql_default_mailboxes) / sizeof(ssql_default_mailboxes[0]);
	    i++) {
		if (ssql_mailbox_insert(ba, c, ssql_default_mailboxes[i].name,
		    ssql_default_mailboxes[i].special_use, 0, 0, NULL, error_r) < 0 ||
		    subscribe(c, ssql_default_mailboxes[i].name, 1, error_r) < 0)
			return -1;
	}
	if (ssql_fsync_dir(ba->be, ba->msg_fd, NULL, error_r) < 0)
		return -1;
	return ssql_mailboxes_file_write(ba, c, error_r);
}

/* --- operations ----------------------------------------------------------- */

int
ssql_mailbox_list(struct store_backend_account *ba, struct store_mailbox **list_r,
    size_t *count_r, const char **error_r)
{
	struct store_mailbox *list = NULL;
	struct ssql_conn *c;
	sqlite3_stmt *st;
	size_t n = 0, cap = 0;
	int rc;

	*list_r = NULL;
	*count_r = 0;
	if ((c = ssql_reader(ba, error_r)) == NULL)
		return -1;
	if ((st = ssql_stmt(c, SST_MBOX_LIST, error_r)) == NULL) {
		ssql_reader_put(ba, c);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			list = xreallocarray(list, cap, sizeof(*list));
		}
		memset(&list[n], 0, sizeof(list[n]));
		mailbox_from_row(st, &list[n++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		ssql_reader_put(ba, c);
		store_mailboxes_free(&list, n);
		return -1;
	}
	ssql_reader_put(ba, c);
	*list_r = list;
	*count_r = n;
	return 0;
}

int
ssql_mailbox_get(struct store_backend_account *ba, const char *name, int64_t id,
    struct store_mailbox *mbox_r, const char **error_r)
{
	struct ssql_conn *c;
	int rc;

	if ((c = ssql_reader(ba, error_r)) == NULL)
		return -1;
	rc = mailbox_read(c, name, id, mbox_r, error_r);
	ssql_reader_put(ba, c);
	return rc;
}

/* Creates the missing parents of name (in the transaction). */
static int
create_parents(struct store_backend_account *ba, struct ssql_conn *c, const char *name,
    const char **error_r)
{
	char *parent = xstrdup(name), *p;
	int rc = 0;

	for (p = strchr(parent, STORE_SEPARATOR); p != NULL;
	    p = strchr(p + 1, STORE_SEPARATOR)) {
		*p = '\0';
		if ((rc = ssql_mailbox_find(c, parent, 0, NULL, error_r)) < 0)
			break;
		if (rc == 0 && (rc = ssql_mailbox_insert(ba, c, parent, 0, 0, 0, NULL,
		    error_r)) < 0)
			break;
		rc = 0;
		*p = STORE_SEPARATOR;
	}
	free(parent);
	return rc;
}

int
ssql_mailbox_create(struct store_backend_account *ba, const char *name, unsigned special_use,
    int64_t *id_r, const char **error_r)
{
	struct ssql_conn *c;
	int rc;

	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if ((rc = ssql_mailbox_find(c, name, 0, NULL, error_r)) != 0) {
		if (rc > 0)
			store_fail(STORE_ERR_EXISTS, error_r, "mailbox already exists");
		goto fail;
	}
	if (create_parents(ba, c, name, error_r) < 0 ||
	    ssql_mailbox_insert(ba, c, name, special_use, 0, 0, id_r, error_r) < 0 ||
	    ssql_fsync_dir(ba->be, ba->msg_fd, NULL, error_r) < 0 ||
	    ssql_mailboxes_file_write(ba, c, error_r) < 0)
		goto fail;
	return ssql_wcommit(ba, error_r);
fail:
	ssql_wrollback(ba);
	return -1;
}

struct child {
	int64_t id;
	char *name;
};

static void
children_free(struct child *ch, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ch[i].name);
	free(ch);
}

static int
children_get(struct ssql_conn *c, const char *name, struct child **ch_r, size_t *n_r,
    const char **error_r)
{
	struct child *ch = NULL;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc;

	*ch_r = NULL;
	*n_r = 0;
	if ((st = ssql_stmt(c, SST_MBOX_CHILDREN, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ch = xreallocarray(ch, n + 1, sizeof(*ch));
		ch[n].id = sqlite3_column_int64(st, 0);
		ch[n].name = ssql_column_strdup(st, 1);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		children_free(ch, n);
		return ssql_error(c, rc, error_r);
	}
	*ch_r = ch;
	*n_r = n;
	return 0;
}

static int
rename_one(struct ssql_conn *c, int64_t id, const char *old, const char *new,
    const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = ssql_stmt(c, SST_MBOX_RENAME, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, new, -1, SQLITE_STATIC);
	if (ssql_step_done(c, st, error_r) < 0)
		return -1;
	/* Subscriptions follow the mailbox (as users expect; RFC 3501 leaves
	 * it open). */
	if ((st = ssql_stmt(c, SST_SUB_RENAME, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, old, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, new, -1, SQLITE_STATIC);
	return ssql_step_done(c, st, error_r);
}

static int
name_depth(const char *name)
{
	int depth = 1;

	for (; *name != '\0'; name++)
		depth += *name == STORE_SEPARATOR;
	return depth;
}

int
ssql_mailbox_rename(struct store_backend_account *ba, const char *from, const char *to,
    int64_t changed_r[2], const char **error_r)
{
	struct ssql_names linked = { NULL, 0 }, unlink_after = { NULL, 0 };
	struct ssql_mailbox src;
	struct store_mailbox old;
	struct child *ch = NULL;
	struct ssql_conn *c;
	size_t nch = 0, i, flen = strlen(from), tlen = strlen(to);
	int64_t new_id;
	char *newname;
	int rc;

	if (strcmp(to, "INBOX") == 0)
		return store_fail(STORE_ERR_EXISTS, error_r, "INBOX always exists");
	if (strcmp(from, "INBOX") != 0 && strncmp(to, from, flen) == 0 &&
	    (to[flen] == '\0' || to[flen] == STORE_SEPARATOR))
		return store_fail(STORE_ERR_INVALID, error_r,
		    "cannot rename a mailbox into itself");
	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if ((rc = ssql_mailbox_find(c, from, 0, &src, error_r)) <= 0) {
		if (rc == 0)
			store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
		goto fail;
	}
	if ((rc = ssql_mailbox_find(c, to, 0, NULL, error_r)) != 0) {
		if (rc > 0)
			store_fail(STORE_ERR_EXISTS, error_r, "mailbox already exists");
		goto fail;
	}
	if (create_parents(ba, c, to, error_r) < 0)
		goto fail;

	if (strcmp(from, "INBOX") == 0) {
		/* RFC 3501 6.3.5: the messages move to a new mailbox; INBOX
		 * stays, empty, with its children. */
		memset(&old, 0, sizeof(old));
		if (mailbox_read(c, NULL, src.id, &old, error_r) < 0)
			goto fail;
		rc = ssql_mailbox_insert(ba, c, to, old.special_use, 0, 0, &new_id, error_r);
		store_mailbox_clear(&old);
		if (rc < 0 || ssql_move_all(ba, c, src.id, new_id, &linked, &unlink_after,
		    error_r) < 0)
			goto fail;
		if (ssql_fsync_dir(ba->be, ba->msg_fd, NULL, error_r) < 0 ||
		    ssql_mailboxes_file_write(ba, c, error_r) < 0)
			goto fail;
		if (ssql_wcommit(ba, error_r) < 0) {
			ssql_names_unlink(ba, &linked);
			goto out;
		}
		ssql_names_unlink_later(ba, &unlink_after);
		changed_r[0] = src.id;
		changed_r[1] = new_id;
		rc = 0;
		goto out;
	}

	if (children_get(c, from, &ch, &nch, error_r) < 0)
		goto fail;
	for (i = 0; i < nch; i++) {
		if (strlen(ch[i].name) - flen + tlen > STORE_MAILBOX_NAME_MAX ||
		    name_depth(ch[i].name) - name_depth(from) + name_depth(to) >
		    STORE_MAILBOX_DEPTH_MAX) {
			store_fail(STORE_ERR_LIMIT, error_r,
			    "a child mailbox's new name would be too long");
			goto fail;
		}
	}
	if (rename_one(c, src.id, from, to, error_r) < 0)
		goto fail;
	for (i = 0; i < nch; i++) {
		newname = xasprintf("%s%s", to, ch[i].name + flen);
		rc = rename_one(c, ch[i].id, ch[i].name, newname, error_r);
		free(newname);
		if (rc < 0)
			goto fail;
	}
	if (ssql_mailboxes_file_write(ba, c, error_r) < 0)
		goto fail;
	rc = ssql_wcommit(ba, error_r);
	goto out;
fail:
	ssql_wrollback(ba);
	ssql_names_unlink(ba, &linked);
	rc = -1;
out:
	children_free(ch, nch);
	ssql_names_free(&linked);
	ssql_names_free(&unlink_after);
	return rc;
}

static int
run_mbox(struct ssql_conn *c, enum ssql_stmt id, int64_t mailbox_id, const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = ssql_stmt(c, id, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	return ssql_step_done(c, st, error_r);
}

int
ssql_mailbox_delete(struct store_backend_account *ba, const char *name, int64_t *id_r,
    const char **error_r)
{
	struct store_mailbox m;
	struct child *ch = NULL;
	struct ssql_conn *c;
	sqlite3_stmt *st;
	int64_t *bodies = NULL;
	size_t nch = 0, nbodies = 0;
	char dir[32];
	int rc;

	if (strcmp(name, "INBOX") == 0)
		return store_fail(STORE_ERR_CONFLICT, error_r, "INBOX cannot be deleted");
	memset(&m, 0, sizeof(m));
	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if ((rc = mailbox_read(c, name, 0, &m, error_r)) <= 0) {
		if (rc == 0)
			store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
		goto fail;
	}
	if (children_get(c, name, &ch, &nch, error_r) < 0)
		goto fail;
	if (nch > 0) {
		store_fail(STORE_ERR_CONFLICT, error_r, "the mailbox has children");
		goto fail;
	}
	if ((st = ssql_stmt(c, SST_MSG_DELETE_MBOX, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, m.id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		bodies = xreallocarray(bodies, nbodies + 1, sizeof(*bodies));
		bodies[nbodies++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		goto fail;
	}
	if (ssql_bodies_gc(c, bodies, nbodies, error_r) < 0 ||
	    run_mbox(c, SST_EXP_DELETE_MBOX, m.id, error_r) < 0 ||
	    run_mbox(c, SST_KW_DELETE_MBOX, m.id, error_r) < 0 ||
	    run_mbox(c, SST_MBOX_DELETE, m.id, error_r) < 0 ||
	    ssql_add_usage(c, -(int64_t)m.size, -(int64_t)m.messages, error_r) < 0 ||
	    ssql_mailboxes_file_write(ba, c, error_r) < 0)
		goto fail;
	if (ssql_wcommit(ba, error_r) < 0)
		goto out;
	/* Committed: the files can go. A crash before this leaves a directory
	 * the index does not know (a rebuild would bring it back). */
	snprintf(dir, sizeof(dir), "%lld", (long long)m.id);
	if (ssql_remove_tree(ba->msg_fd, dir) < 0)
		log_warn(NULL, "event=store-delete-incomplete account=%lld mailbox=%lld "
		    "reason=\"%s\"", (long long)ba->id, (long long)m.id, strerror(errno));
	else if (ssql_fsync_dir(ba->be, ba->msg_fd, NULL, error_r) < 0)
		log_warn(NULL, "event=store-delete-fsync-failed account=%lld",
		    (long long)ba->id);
	*id_r = m.id;
	rc = 0;
	goto out;
fail:
	ssql_wrollback(ba);
	rc = -1;
out:
	store_mailbox_clear(&m);
	children_free(ch, nch);
	free(bodies);
	return rc;
}

int
ssql_mailbox_subscribe(struct store_backend_account *ba, const char *name, int subscribed,
    const char **error_r)
{
	struct ssql_conn *c;

	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if (subscribe(c, name, subscribed, error_r) < 0 ||
	    ssql_mailboxes_file_write(ba, c, error_r) < 0) {
		ssql_wrollback(ba);
		return -1;
	}
	return ssql_wcommit(ba, error_r);
}

/* 1 when the mailbox has expunge records. */
static int
has_expunged(struct ssql_conn *c, int64_t mailbox_id, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = ssql_stmt(c, SST_EXP_ANY, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return ssql_error(c, rc, error_r);
}

int
ssql_mailbox_set_uidvalidity(struct store_backend_account *ba, int64_t mailbox_id,
    uint32_t uidvalidity, uint32_t uidnext_min, const char **error_r)
{
	struct ssql_mailbox m;
	struct ssql_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if ((rc = ssql_mailbox_find(c, NULL, mailbox_id, &m, error_r)) <= 0) {
		if (rc == 0)
			store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
		goto fail;
	}
	/* A client may know UIDs of a mailbox that ever held a message. */
	if (m.uidnext != 1 || (rc = has_expunged(c, mailbox_id, error_r)) != 0) {
		if (m.uidnext != 1 || rc > 0)
			store_fail(STORE_ERR_CONFLICT, error_r,
			    "the mailbox has held messages: its UIDVALIDITY stays");
		goto fail;
	}
	if ((st = ssql_stmt(c, SST_MBOX_SET_UIDVALIDITY, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int64(st, 3, uidnext_min);
	if (ssql_step_done(c, st, error_r) < 0)
		goto fail;
	/* New mailboxes' UIDVALIDITYs stay above it (a name deleted and
	 * created again must not get it back). */
	if ((st = ssql_stmt(c, SST_ACCOUNT_RAISE_UIDVALIDITY, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, uidvalidity);
	if (ssql_step_done(c, st, error_r) < 0 ||
	    ssql_mailboxes_file_write(ba, c, error_r) < 0)
		goto fail;
	return ssql_wcommit(ba, error_r);
fail:
	ssql_wrollback(ba);
	return -1;
}

int
ssql_mailbox_raise_uidnext(struct store_backend_account *ba, int64_t mailbox_id,
    uint32_t uidnext, const char **error_r)
{
	struct ssql_mailbox m;
	struct ssql_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if ((rc = ssql_mailbox_find(c, NULL, mailbox_id, &m, error_r)) <= 0) {
		if (rc == 0)
			store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
		goto fail;
	}
	if (m.uidnext >= uidnext) {
		ssql_wrollback(ba);
		return 0;
	}
	if ((st = ssql_stmt(c, SST_MBOX_RAISE_UIDNEXT, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uidnext);
	/* msg/mailboxes keeps it for a rebuild. */
	if (ssql_step_done(c, st, error_r) < 0 ||
	    ssql_mailboxes_file_write(ba, c, error_r) < 0)
		goto fail;
	return ssql_wcommit(ba, error_r);
fail:
	ssql_wrollback(ba);
	return -1;
}

int
ssql_subscriptions(struct store_backend_account *ba, char ***names_r, size_t *count_r,
    const char **error_r)
{
	struct ssql_conn *c;
	sqlite3_stmt *st;
	char **names = NULL;
	size_t n = 0, i;
	int rc;

	*names_r = NULL;
	*count_r = 0;
	if ((c = ssql_reader(ba, error_r)) == NULL)
		return -1;
	if ((st = ssql_stmt(c, SST_SUB_LIST, error_r)) == NULL) {
		ssql_reader_put(ba, c);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		names = xreallocarray(names, n + 2, sizeof(*names));
		names[n++] = ssql_column_strdup(st, 0);
		names[n] = NULL;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		ssql_reader_put(ba, c);
		for (i = 0; i < n; i++)
			free(names[i]);
		free(names);
		return -1;
	}
	ssql_reader_put(ba, c);
	*names_r = names;
	*count_r = n;
	return 0;
}
