/*
 * Messages in the SQLite index: listing, flags and keywords, copy, move,
 * expunge, changes since a MODSEQ, parsed summaries and the message
 * files themselves.
 *
 * A copy is a hard link of the source file under the new name; a move adds
 * the link, then removes the old name once the index commit is done. Files
 * are only ever unlinked after the commit that dropped their row, so a row
 * always has its file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/mime.h"
#include "store/store_sqlite.h"

/* --- rows --------------------------------------------------------------- */

static void
row_to_ssql(sqlite3_stmt *st, struct ssql_message *m)
{
	const unsigned char *guid;

	m->uid = (uint32_t)sqlite3_column_int64(st, 0);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 1);
	m->internaldate = sqlite3_column_int64(st, 2);
	m->size = (uint64_t)sqlite3_column_int64(st, 3);
	m->flags = (unsigned)sqlite3_column_int(st, 4);
	m->keywords = ssql_column_strdup(st, 5);
	guid = sqlite3_column_text(st, 6);
	snprintf(m->guid, sizeof(m->guid), "%s", guid != NULL ? (const char *)guid : "");
	m->thread_id = sqlite3_column_int64(st, 7);
}

/* Splits a stored keyword list into store_message's NULL-terminated form. */
static char **
keywords_split(const char *s)
{
	char **kw = NULL;
	const char *p, *end;
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return NULL;
	for (p = s; *p != '\0'; p = *end != '\0' ? end + 1 : end) {
		if ((end = strchr(p, ' ')) == NULL)
			end = p + strlen(p);
		if (end == p)
			continue;
		kw = xreallocarray(kw, n + 2, sizeof(*kw));
		kw[n++] = xstrndup(p, (size_t)(end - p));
		kw[n] = NULL;
	}
	return kw;
}

/* Called once per row of big listings: no formatting. */
static void
row_to_message(sqlite3_stmt *st, struct store_message *m)
{
	const unsigned char *guid, *kw;
	int len;

	m->uid = (uint32_t)sqlite3_column_int64(st, 0);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 1);
	m->internaldate = sqlite3_column_int64(st, 2);
	m->size = (uint64_t)sqlite3_column_int64(st, 3);
	m->flags = (unsigned)sqlite3_column_int(st, 4);
	kw = sqlite3_column_text(st, 5);
	m->keywords = kw != NULL ? keywords_split((const char *)kw) : NULL;
	guid = sqlite3_column_text(st, 6);
	len = sqlite3_column_bytes(st, 6);
	if (guid == NULL || len < 0 || len >= (int)sizeof(m->guid))
		len = 0;
	if (len > 0)
		memcpy(m->guid, guid, (size_t)len);
	m->guid[len] = '\0';
	m->thread_id = sqlite3_column_int64(st, 7);
}

int
ssql_message_get(struct ssql_conn *c, int64_t mailbox_id, uint32_t uid,
    struct ssql_message *msg_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = ssql_stmt(c, SST_MSG_GET, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_to_ssql(st, msg_r);
		msg_r->body_id = sqlite3_column_int64(st, 8);
		rc = 1;
	} else if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = ssql_error(c, rc, error_r);
	sqlite3_reset(st);
	return rc;
}

int
ssql_message_insert(struct ssql_conn *c, int64_t mailbox_id, const struct ssql_message *m,
    const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = ssql_stmt(c, SST_MSG_INSERT, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, m->uid);
	sqlite3_bind_int64(st, 3, (int64_t)m->modseq);
	sqlite3_bind_int(st, 4, (int)m->flags);
	if (m->keywords != NULL)
		sqlite3_bind_text(st, 5, m->keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, m->internaldate);
	sqlite3_bind_int64(st, 7, (int64_t)m->size);
	sqlite3_bind_text(st, 8, m->guid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, m->thread_id);
	sqlite3_bind_int64(st, 10, m->body_id);
	return ssql_step_done(c, st, error_r);
}

static int
message_delete(struct ssql_conn *c, int64_t mailbox_id, uint32_t uid, uint64_t modseq,
    const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = ssql_stmt(c, SST_MSG_DELETE, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	if (ssql_step_done(c, st, error_r) < 0)
		return -1;
	if ((st = ssql_stmt(c, SST_EXP_INSERT, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (int64_t)modseq);
	return ssql_step_done(c, st, error_r);
}

#define SSQL_GC_BATCH 4096         /* body ids per statement */

/* Drops the parsed data of message files no row refers to any more, a
 * batch of ids per statement: removing the search text is FTS5's most
 * expensive write, and a statement per message made it flush (and merge
 * segments) per message. */
static int
bodies_gc(struct ssql_conn *c, const int64_t *ids, size_t n, enum ssql_stmt text,
    const char **error_r)
{
	const enum ssql_stmt stmts[] = { text, SST_BODY_GC };
	struct buf json = BUF_INIT;
	sqlite3_stmt *st;
	size_t i, k, end;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i = end) {
		end = n - i > SSQL_GC_BATCH ? i + SSQL_GC_BATCH : n;
		buf_reset(&json);
		buf_putc(&json, '[');
		for (k = i; k < end; k++)
			buf_printf(&json, k > i ? ",%lld" : "%lld", (long long)ids[k]);
		buf_putc(&json, ']');
		for (k = 0; k < 2 && rc == 0; k++) {
			if ((st = ssql_stmt(c, stmts[k], error_r)) == NULL) {
				rc = -1;
				break;
			}
			sqlite3_bind_text(st, 1, buf_cstr(&json), (int)json.len, SQLITE_STATIC);
			rc = ssql_step_done(c, st, error_r);
		}
	}
	buf_free(&json);
	return rc;
}

int
ssql_bodies_gc(struct ssql_conn *c, const int64_t *ids, size_t n, const char **error_r)
{
	return bodies_gc(c, ids, n, SST_BODY_GC_TEXT, error_r);
}

/* The bodies rows go (ids are AUTOINCREMENT, never reused); the search
 * text waits in fts_pending_delete. */
int
ssql_bodies_gc_deferred(struct ssql_conn *c, const int64_t *ids, size_t n,
    const char **error_r)
{
	return bodies_gc(c, ids, n, SST_FTS_PENDING_ADD, error_r);
}

/* --- keyword lists ------------------------------------------------------ */

static int
kw_has(char *const *list, size_t n, const char *kw, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(list[i]) == len && strncasecmp(list[i], kw, len) == 0)
			return 1;
	return 0;
}

static char *
kw_join(char *const *list, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i;

	if (n == 0)
		return NULL;
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(&b, ' ');
		buf_puts(&b, list[i]);
	}
	return buf_steal(&b);
}

char *
ssql_keywords_join(const char *const *keywords)
{
	char **list = NULL, *out;
	size_t n = 0, i;

	for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		if (kw_has(list, n, keywords[i], strlen(keywords[i])))
			continue;
		list = xreallocarray(list, n + 1, sizeof(*list));
		list[n++] = (char *)keywords[i];
	}
	out = kw_join(list, n);
	free(list);
	return out;
}

/* The new keyword list of a message. */
static char *
kw_apply(const char *old, enum store_flag_mode mode, const char *const *keywords)
{
	char **cur = old != NULL ? keywords_split(old) : NULL, **list = NULL, *out;
	size_t n = 0, i;

	if (mode == STORE_FLAGS_SET) {
		for (i = 0; cur != NULL && cur[i] != NULL; i++)
			free(cur[i]);
		free(cur);
		return ssql_keywords_join(keywords);
	}
	for (i = 0; cur != NULL && cur[i] != NULL; i++) {
		if (mode == STORE_FLAGS_REMOVE && keywords != NULL) {
			size_t j;
			int drop = 0;

			for (j = 0; keywords[j] != NULL && !drop; j++)
				drop = strcasecmp(keywords[j], cur[i]) == 0;
			if (drop)
				continue;
		}
		list = xreallocarray(list, n + 1, sizeof(*list));
		list[n++] = cur[i];
	}
	if (mode == STORE_FLAGS_ADD) {
		for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
			if (kw_has(list, n, keywords[i], strlen(keywords[i])))
				continue;
			list = xreallocarray(list, n + 1, sizeof(*list));
			list[n++] = (char *)keywords[i];
		}
	}
	out = kw_join(list, n);
	free(list);
	for (i = 0; cur != NULL && cur[i] != NULL; i++)
		free(cur[i]);
	free(cur);
	return out;
}

static int
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* --- reading ------------------------------------------------------------ */

int
ssql_message_list(struct store_backend_account *ba, int64_t mailbox_id, uint32_t uid_first,
    uint32_t uid_last, struct store_message **msgs_r, size_t *count_r,
    const char **error_r)
{
	struct store_message *msgs = NULL;
	struct ssql_mailbox mbox;
	struct ssql_conn *c;
	sqlite3_stmt *st;
	size_t n = 0, cap = 0;
	int rc;

	if ((c = ssql_reader(ba, error_r)) == NULL)
		return -1;
	if ((rc = ssql_mailbox_find(c, NULL, mailbox_id, &mbox, error_r)) <= 0) {
		ssql_reader_put(ba, c);
		return rc < 0 ? -1 : store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
	}
	/* Sized once for a whole mailbox (the count may move a little before
	 * the scan starts: the array still grows if it must). */
	if (mbox.messages > 0 && (uint64_t)uid_last - uid_first + 1 >= mbox.messages) {
		cap = (size_t)mbox.messages + 16;
		msgs = xreallocarray(NULL, cap, sizeof(*msgs));
	}
	if ((st = ssql_stmt(c, SST_MSG_LIST, error_r)) == NULL) {
		ssql_reader_put(ba, c);
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid_first);
	sqlite3_bind_int64(st, 3, uid_last);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			msgs = xreallocarray(msgs, cap, sizeof(*msgs));
		}
		row_to_message(st, &msgs[n++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		ssql_reader_put(ba, c);
		store_messages_free(&msgs, n);
		return -1;
	}
	ssql_reader_put(ba, c);
	*msgs_r = msgs;
	*count_r = n;
	return 0;
}

int
ssql_message_summary(struct store_backend_account *ba, int64_t mailbox_id, uint32_t uid,
    struct mime_summary **summary_r, const char **error_r)
{
	struct mime_summary *s;
	struct ssql_conn *c;
	sqlite3_stmt *st;
	char **fields[13];
	int rc, i, bits;

	*summary_r = NULL;
	if ((c = ssql_reader(ba, error_r)) == NULL)
		return -1;
	if ((st = ssql_stmt(c, SST_MSG_SUMMARY, error_r)) == NULL) {
		ssql_reader_put(ba, c);
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		ssql_reader_put(ba, c);
		if (rc == SQLITE_DONE)
			return store_fail(STORE_ERR_NOT_FOUND, error_r, "no such message");
		return ssql_error(c, rc, error_r);
	}
	s = xcalloc(1, sizeof(*s));
	s->size = (uint64_t)sqlite3_column_int64(st, 0);
	s->header_size = (uint64_t)sqlite3_column_int64(st, 1);
	fields[0] = &s->date;
	fields[1] = &s->subject;
	fields[2] = &s->from;
	fields[3] = &s->sender;
	fields[4] = &s->reply_to;
	fields[5] = &s->to;
	fields[6] = &s->cc;
	fields[7] = &s->bcc;
	fields[8] = &s->in_reply_to;
	fields[9] = &s->message_id;
	fields[10] = &s->references;
	fields[11] = &s->bodystructure;
	fields[12] = &s->body;
	for (i = 0; i < 13; i++)
		*fields[i] = ssql_column_strdup(st, 2 + i);
	if (sqlite3_column_type(st, 15) == SQLITE_BLOB &&
	    mime_parts_decode(sqlite3_column_blob(st, 15),
	    (size_t)sqlite3_column_bytes(st, 15), &s->parts, &s->nparts) < 0) {
		s->parts = NULL;
		s->nparts = 0;
		log_warn(NULL, "event=store-parts-undecodable account=%lld mailbox=%lld uid=%u",
		    (long long)ba->id, (long long)mailbox_id, uid);
	}
	s->preview = ssql_column_strdup(st, 16);
	bits = sqlite3_column_int(st, 17);
	s->has_8bit = (bits & 1) != 0;
	s->has_nul = (bits & 2) != 0;
	s->truncated = (bits & 4) != 0;
	sqlite3_reset(st);
	ssql_reader_put(ba, c);
	*summary_r = s;
	return 0;
}

int
ssql_changes_since(struct store_backend_account *ba, int64_t mailbox_id, uint64_t modseq,
    struct store_changes *changes_r, const char **error_r)
{
	struct ssql_mailbox mbox;
	struct ssql_conn *c;
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	if ((c = ssql_reader(ba, error_r)) == NULL)
		return -1;
	/* One snapshot for the mailbox, its messages and its expunges. */
	if ((st = ssql_stmt(c, SST_BEGIN_READ, error_r)) == NULL ||
	    ssql_step_done(c, st, error_r) < 0)
		goto fail;
	if ((rc = ssql_mailbox_find(c, NULL, mailbox_id, &mbox, error_r)) <= 0) {
		if (rc == 0)
			store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
		goto fail;
	}
	changes_r->highestmodseq = mbox.highestmodseq;
	if ((st = ssql_stmt(c, SST_MSG_CHANGED, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (changes_r->nchanged == cap) {
			cap = cap ? cap * 2 : 16;
			changes_r->changed = xreallocarray(changes_r->changed, cap,
			    sizeof(*changes_r->changed));
		}
		row_to_message(st, &changes_r->changed[changes_r->nchanged++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		goto fail;
	}
	cap = 0;
	if ((st = ssql_stmt(c, SST_EXP_SINCE, error_r)) == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (changes_r->nexpunged == cap) {
			cap = cap ? cap * 2 : 16;
			changes_r->expunged = xreallocarray(changes_r->expunged, cap,
			    sizeof(*changes_r->expunged));
		}
		changes_r->expunged[changes_r->nexpunged++] =
		    (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		goto fail;
	}
	ssql_reader_put(ba, c);
	return 0;
fail:
	ssql_reader_put(ba, c);
	store_changes_clear(changes_r);
	return -1;
}

/* --- message files ------------------------------------------------------ */

struct store_backend_blob {
	int fd;
};

int
ssql_blob_open(struct store_backend_account *ba, int64_t mailbox_id, uint32_t uid,
    const char *guid, struct store_backend_blob **bb_r, uint64_t *size_r,
    const char **error_r)
{
	struct store_backend_blob *bb;
	struct ssql_message m;
	struct ssql_conn *c;
	struct stat st;
	char name[SSQL_FILE_NAME_MAX];
	int rc, fd;

	/* The file's name is all it takes: mailbox, UID and GUID. A GUID that
	 * is not 32 lower-case hex digits names no file. */
	if (guid != NULL) {
		if (strlen(guid) != SSQL_GUID_SIZE - 1 ||
		    strspn(guid, "0123456789abcdef") != SSQL_GUID_SIZE - 1)
			return store_fail(STORE_ERR_NOT_FOUND, error_r, "no such message");
		ssql_message_name(name, mailbox_id, uid, guid);
	} else {
		if ((c = ssql_reader(ba, error_r)) == NULL)
			return -1;
		rc = ssql_message_get(c, mailbox_id, uid, &m, error_r);
		ssql_reader_put(ba, c);
		if (rc <= 0)
			return rc < 0 ? -1 : store_fail(STORE_ERR_NOT_FOUND, error_r,
			    "no such message");
		free(m.keywords);
		ssql_message_name(name, mailbox_id, uid, m.guid);
	}
	if ((fd = openat(ba->msg_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)   /* expunged since we read the row */
			return store_fail(STORE_ERR_NOT_FOUND, error_r, "no such message");
		return store_fail_temp(error_r, "event=store-io-error op=open account=%lld "
		    "file=%s reason=\"%s\"", (long long)ba->id, name, strerror(errno));
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return store_fail_temp(error_r, "event=store-io-error op=fstat account=%lld "
		    "file=%s reason=\"%s\"", (long long)ba->id, name, strerror(errno));
	}
	bb = xcalloc(1, sizeof(*bb));
	bb->fd = fd;
	*bb_r = bb;
	*size_r = (uint64_t)st.st_size;
	return 0;
}

ssize_t
ssql_blob_read(struct store_backend_blob *bb, uint64_t offset, void *buf, size_t len)
{
	ssize_t n;

	do
		n = pread(bb->fd, buf, len, (off_t)offset);
	while (n < 0 && errno == EINTR);
	return n;
}

void
ssql_blob_close(struct store_backend_blob *bb)
{
	close(bb->fd);
	free(bb);
}

/* --- changes ------------------------------------------------------------ */

int
ssql_message_set_flags(struct store_backend_account *ba, int64_t mailbox_id,
    const uint32_t *uids, size_t nuids, enum store_flag_mode mode, unsigned flags,
    const char *const *keywords, uint64_t unchangedsince, uint32_t **failed_r,
    size_t *nfailed_r, int *changed_r, const char **error_r)
{
	struct ssql_message m;
	struct ssql_conn *c;
	sqlite3_stmt *st;
	uint32_t *failed = NULL;
	size_t nfailed = 0, i;
	uint64_t modseq = 0;
	int64_t unseen = 0, deleted = 0;
	unsigned nflags;
	char *nkw;
	int rc;

	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if ((rc = ssql_mailbox_find(c, NULL, mailbox_id, NULL, error_r)) <= 0) {
		if (rc == 0)
			store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
		goto fail;
	}
	for (i = 0; i < nuids; i++) {
		if ((rc = ssql_message_get(c, mailbox_id, uids[i], &m, error_r)) < 0)
			goto fail;
		if (rc == 0)
			continue;
		if (unchangedsince != 0 && m.modseq > unchangedsince) {
			free(m.keywords);
			failed = xreallocarray(failed, nfailed + 1, sizeof(*failed));
			failed[nfailed++] = uids[i];
			continue;
		}
		nflags = mode == STORE_FLAGS_SET ? flags : mode == STORE_FLAGS_ADD ?
		    m.flags | flags : m.flags & ~flags;
		nkw = keywords == NULL && mode != STORE_FLAGS_SET ?
		    (m.keywords != NULL ? xstrdup(m.keywords) : NULL) :
		    kw_apply(m.keywords, mode, keywords);
		if (nflags == m.flags && str_equal(nkw, m.keywords)) {
			free(nkw);
			free(m.keywords);
			continue;
		}
		/* One MODSEQ for the whole operation (RFC 7162 3.1.3 allows
		 * it: each STORE gets a new one). */
		if (modseq == 0 && ssql_mailbox_alloc(c, mailbox_id, 0, 1, NULL, &modseq,
		    error_r) < 0) {
			free(nkw);
			free(m.keywords);
			goto fail;
		}
		if (nkw != NULL && ssql_keywords_register(c, mailbox_id, nkw, error_r) < 0) {
			free(nkw);
			free(m.keywords);
			goto fail;
		}
		if ((st = ssql_stmt(c, SST_MSG_SET_FLAGS, error_r)) == NULL) {
			free(nkw);
			free(m.keywords);
			goto fail;
		}
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, uids[i]);
		sqlite3_bind_int(st, 3, (int)nflags);
		if (nkw != NULL)
			sqlite3_bind_text(st, 4, nkw, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 5, (int64_t)modseq);
		rc = ssql_step_done(c, st, error_r);
		free(nkw);
		if (rc < 0) {
			free(m.keywords);
			goto fail;
		}
		unseen += (int64_t)!(nflags & STORE_FLAG_SEEN) - !(m.flags & STORE_FLAG_SEEN);
		deleted += (int64_t)!!(nflags & STORE_FLAG_DELETED) -
		    !!(m.flags & STORE_FLAG_DELETED);
		free(m.keywords);
	}
	if (modseq == 0) {
		ssql_wrollback(ba);
	} else {
		if (ssql_mailbox_add_counts(c, mailbox_id, 0, unseen, deleted, 0, error_r) < 0)
			goto fail;
		if (ssql_wcommit(ba, error_r) < 0) {
			free(failed);
			return -1;
		}
	}
	*changed_r = modseq != 0;
	if (failed_r != NULL)
		*failed_r = failed;
	else
		free(failed);
	if (nfailed_r != NULL)
		*nfailed_r = nfailed;
	return 0;
fail:
	ssql_wrollback(ba);
	free(failed);
	return -1;
}

/* Copies (or moves) messages in the write transaction c: a hard link per
 * message (recorded in linked, to undo if the transaction fails), the rows,
 * the counts. Moved messages' old names go to unlink_after. quota NULL: no
 * check. new_uids (nuids entries, may be NULL) gets 0 for UIDs not found. */
static int
copy_locked(struct store_backend_account *ba, struct ssql_conn *c, int64_t from_id,
    const uint32_t *uids, size_t nuids, int64_t to_id, int move,
    const struct store_quota *quota, uint32_t *new_uids, uint32_t *uidvalidity_r,
    struct ssql_names *linked, struct ssql_names *unlink_after, const char **error_r)
{
	struct ssql_mailbox from, to;
	struct ssql_message *msgs;
	struct store_usage usage;
	sqlite3_stmt *st;
	char src[SSQL_FILE_NAME_MAX], dst[SSQL_FILE_NAME_MAX];
	char *found;
	size_t i, k = 0, j;
	uint64_t bytes = 0, first_modseq, exp_modseq = 0;
	uint32_t first_uid;
	int64_t unseen = 0, deleted = 0;
	int rc = -1;

	if ((rc = ssql_mailbox_find(c, NULL, from_id, &from, error_r)) <= 0 ||
	    (rc = ssql_mailbox_find(c, NULL, to_id, &to, error_r)) <= 0)
		return rc < 0 ? -1 : store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
	*uidvalidity_r = to.uidvalidity;
	msgs = xcalloc(nuids + 1, sizeof(*msgs));
	found = xcalloc(nuids + 1, 1);
	rc = -1;
	for (i = 0; i < nuids; i++) {
		int r = ssql_message_get(c, from_id, uids[i], &msgs[i], error_r);

		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		/* A UID named twice is copied once. */
		for (j = 0; j < i; j++)
			if (found[j] && msgs[j].uid == uids[i])
				break;
		if (j < i) {
			free(msgs[i].keywords);
			msgs[i].keywords = NULL;
			continue;
		}
		found[i] = 1;
		k++;
		bytes += msgs[i].size;
		unseen += !(msgs[i].flags & STORE_FLAG_SEEN);
		deleted += !!(msgs[i].flags & STORE_FLAG_DELETED);
	}
	if (k == 0) {
		rc = 0;
		goto out;
	}
	if (!move && quota != NULL && (quota->bytes_limit != 0 || quota->messages_limit != 0)) {
		if ((st = ssql_stmt(c, SST_ACCOUNT_USAGE, error_r)) == NULL)
			goto out;
		if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
			sqlite3_reset(st);
			ssql_error(c, rc, error_r);
			rc = -1;
			goto out;
		}
		usage.bytes = (uint64_t)sqlite3_column_int64(st, 0);
		usage.messages = (uint64_t)sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
		rc = -1;
		if ((quota->bytes_limit != 0 && usage.bytes + bytes > quota->bytes_limit) ||
		    (quota->messages_limit != 0 &&
		    usage.messages + k > quota->messages_limit)) {
			store_fail(STORE_ERR_QUOTA, error_r, "over quota");
			goto out;
		}
	}
	if (ssql_mailbox_alloc(c, to_id, (uint32_t)k, k, &first_uid, &first_modseq,
	    error_r) < 0)
		goto out;
	if (move && ssql_mailbox_alloc(c, from_id, 0, 1, NULL, &exp_modseq, error_r) < 0)
		goto out;
	for (i = 0, j = 0; i < nuids; i++) {
		struct ssql_message *m = &msgs[i];
		uint32_t old_uid = m->uid;

		if (!found[i])
			continue;
		ssql_message_name(src, from_id, old_uid, m->guid);
		m->uid = first_uid + (uint32_t)j;
		m->modseq = first_modseq + j;
		j++;
		ssql_message_name(dst, to_id, m->uid, m->guid);
		if (linkat(ba->msg_fd, src, ba->msg_fd, dst, 0) < 0) {
			store_fail_temp(error_r, "event=store-io-error op=link account=%lld "
			    "file=%s reason=\"%s\"", (long long)ba->id, src, strerror(errno));
			goto out;
		}
		ssql_names_add(linked, to_id, m->uid, m->guid);
		if (m->keywords != NULL &&
		    ssql_keywords_register(c, to_id, m->keywords, error_r) < 0)
			goto out;
		if (ssql_message_insert(c, to_id, m, error_r) < 0)
			goto out;
		if (move) {
			if (message_delete(c, from_id, old_uid, exp_modseq, error_r) < 0)
				goto out;
			ssql_names_add(unlink_after, from_id, old_uid, m->guid);
		}
		if (new_uids != NULL)
			new_uids[i] = m->uid;
	}
	if (ssql_mailbox_add_counts(c, to_id, (int64_t)k, unseen, deleted, (int64_t)bytes,
	    error_r) < 0)
		goto out;
	if (move) {
		if (ssql_mailbox_add_counts(c, from_id, -(int64_t)k, -unseen, -deleted,
		    -(int64_t)bytes, error_r) < 0)
			goto out;
	} else if (ssql_add_usage(c, (int64_t)bytes, (int64_t)k, error_r) < 0)
		goto out;
	snprintf(dst, sizeof(dst), "%lld", (long long)to_id);
	if (ssql_fsync_dir(ba->be, ba->msg_fd, dst, error_r) < 0)
		goto out;
	rc = 0;
out:
	for (i = 0; i < nuids; i++)
		free(msgs[i].keywords);
	free(msgs);
	free(found);
	return rc;
}

int
ssql_message_copy(struct store_backend_account *ba, int64_t from_mailbox_id,
    const uint32_t *uids, size_t nuids, int64_t to_mailbox_id, int move,
    const struct store_quota *quota, uint32_t **new_uids_r, uint32_t *uidvalidity_r,
    const char **error_r)
{
	struct ssql_names linked = { NULL, 0 }, unlink_after = { NULL, 0 };
	struct ssql_conn *c;
	uint32_t *new_uids = xcalloc(nuids + 1, sizeof(*new_uids)), uidvalidity = 0;
	int rc;

	if ((c = ssql_wbegin(ba, error_r)) == NULL) {
		free(new_uids);
		return -1;
	}
	rc = copy_locked(ba, c, from_mailbox_id, uids, nuids, to_mailbox_id, move, quota,
	    new_uids, &uidvalidity, &linked, &unlink_after, error_r);
	if (rc < 0) {
		ssql_wrollback(ba);
		ssql_names_unlink(ba, &linked);
	} else if ((rc = ssql_wcommit(ba, error_r)) < 0) {
		ssql_names_unlink(ba, &linked);
	} else {
		ssql_names_unlink_later(ba, &unlink_after);
	}
	ssql_names_free(&linked);
	ssql_names_free(&unlink_after);
	if (rc < 0) {
		free(new_uids);
		return -1;
	}
	if (uidvalidity_r != NULL)
		*uidvalidity_r = uidvalidity;
	if (new_uids_r != NULL)
		*new_uids_r = new_uids;
	else
		free(new_uids);
	return 0;
}

int
ssql_move_all(struct store_backend_account *ba, struct ssql_conn *c, int64_t from_id,
    int64_t to_id, struct ssql_names *linked, struct ssql_names *unlink_after,
    const char **error_r)
{
	sqlite3_stmt *st;
	uint32_t *uids = NULL, uidvalidity;
	size_t n = 0, cap = 0;
	int rc;

	if ((st = ssql_stmt(c, SST_MSG_OF_MBOX, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, from_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			uids = xreallocarray(uids, cap, sizeof(*uids));
		}
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(uids);
		return ssql_error(c, rc, error_r);
	}
	rc = n == 0 ? 0 : copy_locked(ba, c, from_id, uids, n, to_id, 1, NULL, NULL,
	    &uidvalidity, linked, unlink_after, error_r);
	free(uids);
	return rc;
}

int
ssql_message_expunge(struct store_backend_account *ba, int64_t mailbox_id,
    const uint32_t *uids, size_t nuids, int *changed_r, const char **error_r)
{
	struct ssql_names gone = { NULL, 0 };
	struct ssql_message m;
	struct ssql_conn *c;
	int64_t *bodies = NULL, count = 0, unseen = 0, deleted = 0, bytes = 0;
	uint64_t modseq = 0;
	size_t i;
	int rc;

	*changed_r = 0;
	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if ((rc = ssql_mailbox_find(c, NULL, mailbox_id, NULL, error_r)) <= 0) {
		if (rc == 0)
			store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
		goto fail;
	}
	for (i = 0; i < nuids; i++) {
		if ((rc = ssql_message_get(c, mailbox_id, uids[i], &m, error_r)) < 0)
			goto fail;
		if (rc == 0)
			continue;
		free(m.keywords);
		if (modseq == 0 && ssql_mailbox_alloc(c, mailbox_id, 0, 1, NULL, &modseq,
		    error_r) < 0)
			goto fail;
		if (message_delete(c, mailbox_id, m.uid, modseq, error_r) < 0)
			goto fail;
		ssql_names_add(&gone, mailbox_id, m.uid, m.guid);
		bodies = xreallocarray(bodies, (size_t)count + 1, sizeof(*bodies));
		bodies[count++] = m.body_id;
		bytes += (int64_t)m.size;
		unseen += !(m.flags & STORE_FLAG_SEEN);
		deleted += !!(m.flags & STORE_FLAG_DELETED);
	}
	if (count == 0) {
		ssql_wrollback(ba);
		return 0;
	}
	if (ssql_mailbox_add_counts(c, mailbox_id, -count, -unseen, -deleted, -bytes,
	    error_r) < 0 || ssql_add_usage(c, -bytes, -count, error_r) < 0 ||
	    ssql_bodies_gc_deferred(c, bodies, (size_t)count, error_r) < 0)
		goto fail;
	if (ssql_wcommit(ba, error_r) < 0)
		goto out;
	/* Committed: now the files and the search text may go. */
	ssql_names_unlink_later(ba, &gone);
	ssql_fts_purge_later(ba);
	*changed_r = 1;
	ssql_names_free(&gone);
	free(bodies);
	return 0;
fail:
	ssql_wrollback(ba);
out:
	ssql_names_free(&gone);
	free(bodies);
	return -1;
}
