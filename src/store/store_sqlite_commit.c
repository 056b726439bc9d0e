/*
 * Writers and the group commit of the files + SQLite backend.
 *
 * A writer is a file DATA/tmp/<guid>.tmp (O_EXCL, 0600). A batch of commits
 * (store_writer.c builds them) is made durable in this order:
 *
 *   1. the temp files' data: each committing thread fsyncs its own file
 *      before joining the batch (STORE_SYNC_WRITER, the default), or the
 *      leader fsyncs them all (STORE_SYNC_LEADER) or calls syncfs() once
 *      (STORE_SYNC_SYNCFS);
 *   2. per touched account, in account-id order (the only place that holds
 *      several accounts' locks): BEGIN IMMEDIATE, then per target the quota
 *      check, the rows (UID = uidnext++, or the target's wanted UID when it
 *      is >= uidnext, uidnext = uid + 1; MODSEQ = ++highestmodseq) and a
 *      hard link of the temp file to msg/<mailbox-id>/<uid>.<guid>;
 *   3. one fsync per touched mailbox directory, and at the same time
 *   4. one COMMIT per account: the WAL fsync that makes the rows durable;
 *      3 and 4 run for all accounts at once on a pool of threads, so that
 *      the filesystem merges their flushes, and the commit does not wait
 *      for the directories: the replies wait for both, and a crash between
 *      them leaves rows whose files may be missing, which the orphan sweep
 *      expunges (no client was told they were stored).
 *
 * An error fails what it touches: a temp file's fsync its commit, the
 * index its account (the links made are removed, nothing is visible), a
 * directory's fsync its account too (its messages, visible for a moment,
 * are expunged again). Quota, a missing mailbox, too many keywords fail
 * the one target.
 *
 * Why STORE_SYNC_WRITER: concurrent fsyncs of distinct files are merged by
 * the filesystem's journal (ext4's jbd2 commits them together) and run
 * while the previous batch is still committing, whereas the leader's
 * sequential fsyncs each wait for a journal commit, and syncfs() flushes
 * unrelated dirty data too. bench/store_bench.c measures all three; the
 * numbers are in docs/BENCHMARKS.md.
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
#include "mail/charset.h"
#include "mail/mime.h"
#include "store/store_sqlite.h"

#define SSQL_THREAD_REFS_MAX 64     /* Message-IDs looked at for threading */
#define SSQL_POOL_MAX 32            /* threads finishing accounts side by side */
#define SSQL_MSGID_MAX 998

int
ssql_writer_new(struct store_backend *be, struct store_backend_writer **bw_r,
    const char **error_r)
{
	struct store_backend_writer *bw = xcalloc(1, sizeof(*bw));

	bw->be = be;
	ssql_random_hex(bw->guid, 16);
	/* A file without a name where the filesystem allows it: nothing to
	 * unlink after the commit and nothing left behind by a crash. It gets
	 * its names by linkat() through /proc/self/fd. */
	bw->fd = be->tmpfile ? openat(be->tmp_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600) :
	    -1;
	if (bw->fd >= 0) {
		bw->anonymous = 1;
		snprintf(bw->name, sizeof(bw->name), "/proc/self/fd/%d", bw->fd);
	} else {
		snprintf(bw->name, sizeof(bw->name), "%s.tmp", bw->guid);
		bw->fd = openat(be->tmp_fd, bw->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600);
	}
	if (bw->fd < 0) {
		free(bw);
		return store_fail_temp(error_r, "event=store-io-error op=create-temp "
		    "reason=\"%s\"", strerror(errno));
	}
	*bw_r = bw;
	return 0;
}

int
ssql_writer_write(struct store_backend_writer *bw, const void *data, size_t len,
    const char **error_r)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		if ((n = write(bw->fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return store_fail_temp(error_r, "event=store-io-error op=write "
			    "file=%s reason=\"%s\"", bw->name, strerror(errno));
		}
		p += n;
		len -= (size_t)n;
		bw->size += (uint64_t)n;
	}
	return 0;
}

int
ssql_writer_prepare(struct store_backend_writer *bw, int64_t internaldate,
    const char **error_r)
{
	struct timespec ts[2];

	/* The internal date is the file's mtime: what a rebuild reads back. */
	ts[0].tv_sec = ts[1].tv_sec = (time_t)internaldate;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	if (futimens(bw->fd, ts) < 0)
		return store_fail_temp(error_r, "event=store-io-error op=futimens file=%s "
		    "reason=\"%s\"", bw->name, strerror(errno));
	if (bw->be->sync_mode == STORE_SYNC_WRITER && bw->be->fsync(bw->fd) < 0)
		return store_fail_temp(error_r, "event=store-io-error op=fsync file=%s "
		    "reason=\"%s\"", bw->name, strerror(errno));
	return 0;
}

void
ssql_writer_free(struct store_backend_writer *bw)
{
	close(bw->fd);
	if (!bw->anonymous)
		unlinkat(bw->be->tmp_fd, bw->name, 0);
	free(bw);
}

/* --- parsed metadata ---------------------------------------------------- */

/* The Message-IDs in a header value: "<...>" tokens. */
static size_t
msgids_parse(const char *s, char **out, size_t max)
{
	const char *open, *close;
	size_t n = 0;

	while (s != NULL && n < max && (open = strchr(s, '<')) != NULL) {
		if ((close = strchr(open + 1, '>')) == NULL)
			break;
		if (close - open - 1 > 0 && close - open - 1 <= SSQL_MSGID_MAX)
			out[n++] = xstrndup(open + 1, (size_t)(close - open - 1));
		s = close + 1;
	}
	return n;
}

/* Threads by reference: a message joins the thread of the first message
 * it refers to (In-Reply-To, then References from the newest) that the
 * account knows, else starts one; the ids it names then lead to its
 * thread. */
static int
thread_assign(struct ssql_conn *c, const struct mime_summary *s, int64_t body_id,
    int64_t *thread_id_r, const char **error_r)
{
	char *ids[SSQL_THREAD_REFS_MAX + 1];
	size_t n, i, own;
	sqlite3_stmt *st;
	int64_t thread_id = 0;
	int rc = -1, r;

	n = msgids_parse(s->in_reply_to, ids, SSQL_THREAD_REFS_MAX / 2);
	/* References list the oldest first; the newest matter most. */
	{
		char *refs[SSQL_THREAD_REFS_MAX];
		size_t nrefs = msgids_parse(s->references, refs, SSQL_THREAD_REFS_MAX), j;

		for (j = 0; j < nrefs; j++) {
			if (n < SSQL_THREAD_REFS_MAX && nrefs - j <= SSQL_THREAD_REFS_MAX / 2)
				ids[n++] = refs[j];
			else
				free(refs[j]);
		}
	}
	for (i = 0; i < n && thread_id == 0; i++) {
		if ((st = ssql_stmt(c, SST_MSGID_GET, error_r)) == NULL)
			goto out;
		sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW)
			thread_id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (r != SQLITE_ROW && r != SQLITE_DONE) {
			ssql_error(c, r, error_r);
			goto out;
		}
	}
	if (thread_id == 0)
		thread_id = body_id;
	own = msgids_parse(s->message_id, ids + n, 1);
	n += own;
	for (i = 0; i < n; i++) {
		if ((st = ssql_stmt(c, SST_MSGID_PUT, error_r)) == NULL)
			goto out;
		sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, thread_id);
		if (ssql_step_done(c, st, error_r) < 0)
			goto out;
	}
	if ((st = ssql_stmt(c, SST_BODY_SET_THREAD, error_r)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, body_id);
	sqlite3_bind_int64(st, 2, thread_id);
	if (ssql_step_done(c, st, error_r) < 0)
		goto out;
	*thread_id_r = thread_id;
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(ids[i]);
	return rc;
}

static void
bind_opt(sqlite3_stmt *st, int col, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, col);
}

/* Splits the parser's search text into header and body. The parser puts
 * the decoded Subject, From, To, Cc and Bcc of the top-level header first,
 * one per line; when the text starts with exactly that, the rest is the
 * body (IMAP SEARCH BODY must not match the header). Otherwise the whole
 * text counts as body, which can only make BODY match too much. The header
 * column also gets the other fields IMAP SEARCH TEXT should find. */
static void
search_text_split(const struct mime_summary *s, struct buf *header, const char **body,
    size_t *body_len)
{
	const char *decoded[] = { s->subject, s->from, s->to, s->cc, s->bcc };
	const char *raw[] = { s->sender, s->reply_to, s->date, s->message_id };
	const char *text = buf_cstr(&s->text);
	size_t i;

	for (i = 0; i < sizeof(decoded) / sizeof(decoded[0]); i++) {
		if (decoded[i] == NULL)
			continue;
		if (header->len > 0)
			buf_putc(header, '\n');
		mail_header_decode(decoded[i], strlen(decoded[i]), header);
	}
	*body = text;
	*body_len = s->text.len;
	if (header->len > 0 && header->len <= s->text.len &&
	    memcmp(text, header->data, header->len) == 0 &&
	    (text[header->len] == '\n' || text[header->len] == '\0')) {
		*body = text + header->len;
		*body_len = s->text.len - header->len;
	}
	for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		if (raw[i] == NULL)
			continue;
		buf_putc(header, '\n');
		buf_puts(header, raw[i]);
	}
}

int
ssql_body_insert(struct ssql_conn *c, const char *guid, uint64_t size,
    const struct mime_summary *s, int64_t *body_id_r, int64_t *thread_id_r,
    const char **error_r)
{
	struct buf parts = BUF_INIT, header = BUF_INIT;
	sqlite3_stmt *st;
	const char *body;
	size_t body_len;
	int64_t body_id;
	int rc = -1;
	if ((st = ssql_stmt(c, SST_BODY_INSERT, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)size);
	sqlite3_bind_int64(st, 3, (int64_t)s->header_size);
	bind_opt(st, 4, s->date);
	bind_opt(st, 5, s->subject);
	bind_opt(st, 6, s->from);
	bind_opt(st, 7, s->sender);
	bind_opt(st, 8, s->reply_to);
	bind_opt(st, 9, s->to);
	bind_opt(st, 10, s->cc);
	bind_opt(st, 11, s->bcc);
	bind_opt(st, 12, s->in_reply_to);
	bind_opt(st, 13, s->message_id);
	bind_opt(st, 14, s->references);
	bind_opt(st, 15, s->bodystructure);
	bind_opt(st, 16, s->body);
	if (s->nparts > 0) {
		mime_parts_encode(s->parts, s->nparts, &parts);
		sqlite3_bind_blob(st, 17, parts.data, (int)parts.len, SQLITE_STATIC);
	}
	bind_opt(st, 18, s->preview);
	sqlite3_bind_int(st, 19, s->has_8bit | s->has_nul << 1 | s->truncated << 2);
	if (ssql_step_done(c, st, error_r) < 0)
		goto out;
	body_id = sqlite3_last_insert_rowid(c->db);
	if (thread_assign(c, s, body_id, thread_id_r, error_r) < 0)
		goto out;
	search_text_split(s, &header, &body, &body_len);
	if ((st = ssql_stmt(c, SST_TEXT_INSERT, error_r)) == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, body_id);
	sqlite3_bind_text(st, 2, buf_cstr(&header), (int)header.len, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, body, (int)body_len, SQLITE_STATIC);
	if (ssql_step_done(c, st, error_r) < 0)
		goto out;
	*body_id_r = body_id;
	rc = 0;
out:
	buf_free(&parts);
	buf_free(&header);
	return rc;
}

/* --- the pool ------------------------------------------------------------ */

/* One ssql_pool_run call: it lives on the caller's stack until finished,
 * and its caller waits on its own condition (woken once, when the last
 * item is done). */
struct ssql_pool_run {
	void (*fn)(void *arg, size_t i);
	void *arg;
	size_t n, next, finished;
	pthread_cond_t done;
	struct ssql_pool_run *next_run;
};

void
ssql_pool_init(struct ssql_pool *pool)
{
	memset(pool, 0, sizeof(*pool));
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
}

/* Takes the next item of the first queued run; NULL when none is left.
 * Called with the lock held. */
static struct ssql_pool_run *
pool_take(struct ssql_pool *pool, size_t *i_r)
{
	struct ssql_pool_run *run = pool->runs;

	if (run == NULL)
		return NULL;
	*i_r = run->next++;
	pool->waiting--;
	if (run->next == run->n)
		pool->runs = run->next_run;
	return run;
}

/* An item of run is done. Called with the lock held. */
static void
pool_finished(struct ssql_pool_run *run)
{
	if (++run->finished == run->n)
		pthread_cond_signal(&run->done);
}

static void *
pool_thread(void *p)
{
	struct ssql_pool *pool = p;
	struct ssql_pool_run *run;
	size_t i;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->quit && pool->runs == NULL) {
			pool->idle++;
			pthread_cond_wait(&pool->work, &pool->lock);
			pool->idle--;
		}
		if (pool->quit)
			break;
		run = pool_take(pool, &i);
		pthread_mutex_unlock(&pool->lock);
		run->fn(run->arg, i);
		pthread_mutex_lock(&pool->lock);
		pool_finished(run);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

void
ssql_pool_destroy(struct ssql_pool *pool)
{
	size_t i;

	pthread_mutex_lock(&pool->lock);
	pool->quit = 1;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	free(pool->threads);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
}

void
ssql_pool_run(struct ssql_pool *pool, size_t n, void (*fn)(void *arg, size_t i), void *arg)
{
	struct ssql_pool_run run, *taken, **pp;
	size_t i, wake;
	pthread_t th;

	if (n == 0)
		return;
	if (n == 1) {
		fn(arg, 0);
		return;
	}
	memset(&run, 0, sizeof(run));
	run.fn = fn;
	run.arg = arg;
	run.n = n;
	pthread_cond_init(&run.done, NULL);
	pthread_mutex_lock(&pool->lock);
	for (pp = &pool->runs; *pp != NULL; pp = &(*pp)->next_run)
		;
	*pp = &run;
	pool->waiting += n;
	/* Threads are made as the items waiting need them, and kept. */
	while (pool->nthreads + 1 < pool->waiting && pool->nthreads < SSQL_POOL_MAX) {
		if (pthread_create(&th, NULL, pool_thread, pool) != 0)
			break;
		pool->threads = xreallocarray(pool->threads, pool->nthreads + 1,
		    sizeof(*pool->threads));
		pool->threads[pool->nthreads++] = th;
	}
	/* One waiting thread woken per item others may take (the caller takes
	 * one): no herd of threads that find nothing left. */
	for (wake = n - 1 < pool->idle ? n - 1 : pool->idle; wake > 0; wake--)
		pthread_cond_signal(&pool->work);
	/* The caller works too, on its own run first, then on whatever is
	 * queued, until its run is done. */
	while (run.finished < run.n) {
		if (run.next < run.n) {
			taken = &run;
			i = run.next++;
			pool->waiting--;
			if (run.next == run.n) {
				for (pp = &pool->runs; *pp != &run; pp = &(*pp)->next_run)
					;
				*pp = run.next_run;
			}
		} else if ((taken = pool_take(pool, &i)) == NULL) {
			pthread_cond_wait(&run.done, &pool->lock);
			continue;
		}
		pthread_mutex_unlock(&pool->lock);
		taken->fn(taken->arg, i);
		pthread_mutex_lock(&pool->lock);
		pool_finished(taken);
	}
	pthread_mutex_unlock(&pool->lock);
	pthread_cond_destroy(&run.done);
}

/* --- the batch ------------------------------------------------------------ */

struct batch_body {
	size_t req;
	int64_t body_id, thread_id;
};

/* A message a batch stored: what undoing it needs. */
struct batch_stored {
	int64_t mailbox_id;
	uint32_t uid;
};

struct batch_account {
	struct store_backend_account *ba;
	int begun, failed;
	int dirs_failed;           /* a directory fsync failed (maybe after COMMIT) */
	int commit_failed;
	struct ssql_names linked;
	struct batch_stored *stored;
	size_t nstored;
	int64_t *dirs;
	size_t ndirs;
	struct batch_body *bodies;
	size_t nbodies;
};

static int
batch_account_cmp(const void *a, const void *b)
{
	const struct batch_account *x = a, *y = b;

	return x->ba->id < y->ba->id ? -1 : x->ba->id > y->ba->id;
}

static struct batch_account *
batch_account_find(struct batch_account *accts, size_t n, struct store_backend_account *ba)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (accts[i].ba == ba)
			return &accts[i];
	return NULL;
}

static int
quota_check(struct ssql_conn *c, struct store_target *t, uint64_t size,
    const char **error_r)
{
	struct store_quota q;
	sqlite3_stmt *st;
	uint64_t bytes, messages;
	int rc;

	store_account_quota(t->acct, &q);
	if (q.bytes_limit == 0 && q.messages_limit == 0)
		return 0;
	if ((st = ssql_stmt(c, SST_ACCOUNT_USAGE, error_r)) == NULL)
		return -2;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		ssql_error(c, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, error_r);
		return -2;
	}
	bytes = (uint64_t)sqlite3_column_int64(st, 0);
	messages = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if ((q.bytes_limit != 0 && (size > q.bytes_limit || bytes > q.bytes_limit - size)) ||
	    (q.messages_limit != 0 && messages + 1 > q.messages_limit)) {
		t->error = STORE_ERR_QUOTA;
		return -1;
	}
	return 0;
}

/* Stores one target in its account's open transaction. 0 stored, -1 this
 * target failed (t->error set), -2 the account's transaction is lost. */
static int
target_insert(struct store_backend *be, struct batch_account *acct, struct store_commit *req,
    size_t ri, size_t ti)
{
	struct store_target *t = &req->targets[ti];
	struct store_backend_account *ba = acct->ba;
	struct ssql_conn *c = ba->w;
	struct ssql_mailbox mbox;
	struct ssql_message m;
	struct batch_body *body = NULL;
	char name[SSQL_FILE_NAME_MAX];
	const char *error;
	char *kw = NULL;
	size_t i;
	int rc;

	rc = ssql_mailbox_find(c, req->names[ti], req->names[ti] != NULL ? 0 : t->mailbox_id,
	    &mbox, &error);
	if (rc < 0)
		return -2;
	if (rc == 0) {
		t->error = STORE_ERR_NOT_FOUND;
		return -1;
	}
	/* A wanted UID below UIDNEXT may have been seen by clients. */
	if (t->uid != 0 && t->uid < mbox.uidnext) {
		t->error = STORE_ERR_CONFLICT;
		return -1;
	}
	if ((rc = quota_check(c, t, req->size, &error)) < 0)
		return rc;
	if ((kw = ssql_keywords_join(t->keywords)) != NULL &&
	    ssql_keywords_register(c, mbox.id, kw, &error) < 0) {
		free(kw);
		if (store_error_code() == STORE_ERR_TEMP)
			return -2;
		t->error = store_error_code();
		return -1;
	}
	/* From here on any failure loses the transaction. */
	for (i = 0; i < acct->nbodies; i++)
		if (acct->bodies[i].req == ri)
			body = &acct->bodies[i];
	if (body == NULL) {
		acct->bodies = xreallocarray(acct->bodies, acct->nbodies + 1,
		    sizeof(*acct->bodies));
		body = &acct->bodies[acct->nbodies++];
		body->req = ri;
		if (ssql_body_insert(c, req->bw->guid, req->size, req->summary, &body->body_id,
		    &body->thread_id, &error) < 0) {
			acct->nbodies--;
			free(kw);
			return -2;
		}
	}
	memset(&m, 0, sizeof(m));
	if (t->uid != 0) {
		m.uid = t->uid;
		rc = ssql_mailbox_alloc_uid(c, mbox.id, m.uid, &m.modseq, &error);
	} else
		rc = ssql_mailbox_alloc(c, mbox.id, 1, 1, &m.uid, &m.modseq, &error);
	if (rc < 0) {
		free(kw);
		return -2;
	}
	ssql_message_name(name, mbox.id, m.uid, req->bw->guid);
	if ((req->bw->anonymous ?
	    linkat(AT_FDCWD, req->bw->name, ba->msg_fd, name, AT_SYMLINK_FOLLOW) :
	    linkat(be->tmp_fd, req->bw->name, ba->msg_fd, name, 0)) < 0) {
		log_error(NULL, "event=store-io-error op=link account=%lld file=%s "
		    "reason=\"%s\"", (long long)ba->id, name, strerror(errno));
		free(kw);
		return -2;
	}
	ssql_names_add(&acct->linked, mbox.id, m.uid, req->bw->guid);
	for (i = 0; i < acct->ndirs && acct->dirs[i] != mbox.id; i++)
		;
	if (i == acct->ndirs) {
		acct->dirs = xreallocarray(acct->dirs, acct->ndirs + 1, sizeof(*acct->dirs));
		acct->dirs[acct->ndirs++] = mbox.id;
	}
	m.flags = t->flags;
	m.keywords = kw;
	m.internaldate = t->internaldate;
	m.size = req->size;
	memcpy(m.guid, req->bw->guid, sizeof(m.guid));
	m.thread_id = body->thread_id;
	m.body_id = body->body_id;
	rc = ssql_message_insert(c, mbox.id, &m, &error);
	free(kw);
	if (rc < 0 ||
	    ssql_mailbox_add_counts(c, mbox.id, 1, !(t->flags & STORE_FLAG_SEEN),
	    !!(t->flags & STORE_FLAG_DELETED), (int64_t)req->size, &error) < 0 ||
	    ssql_add_usage(c, (int64_t)req->size, 1, &error) < 0)
		return -2;
	t->uid = m.uid;
	t->uidvalidity = mbox.uidvalidity;
	req->mailbox_ids[ti] = mbox.id;
	acct->stored = xreallocarray(acct->stored, acct->nstored + 1, sizeof(*acct->stored));
	acct->stored[acct->nstored].mailbox_id = mbox.id;
	acct->stored[acct->nstored++].uid = m.uid;
	return 0;
}

static void
req_fail(struct store_commit *req)
{
	size_t j;

	for (j = 0; j < req->n; j++) {
		if (req->targets[j].error == STORE_OK)
			req->targets[j].error = STORE_ERR_TEMP;
		req->targets[j].uid = 0;
	}
}

static void
sync_files(struct store_backend *be, struct store_commit **batch, size_t n)
{
	size_t i;

	if (be->sync_mode == STORE_SYNC_LEADER) {
		for (i = 0; i < n; i++) {
			if (be->fsync(batch[i]->bw->fd) == 0)
				continue;
			log_error(NULL, "event=store-io-error op=fsync file=%s reason=\"%s\"",
			    batch[i]->bw->name, strerror(errno));
			req_fail(batch[i]);
		}
	} else if (be->sync_mode == STORE_SYNC_SYNCFS) {
		/* A test's fsync stands in for syncfs. */
		if ((be->fsync == fsync ? syncfs(be->tmp_fd) : be->fsync(be->tmp_fd)) == 0)
			return;
		log_error(NULL, "event=store-io-error op=syncfs reason=\"%s\"",
		    strerror(errno));
		for (i = 0; i < n; i++)
			req_fail(batch[i]);
	}
}

static double
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* The part of a batch that waits for the disk, as tasks for the pool: for
 * k < n the directories of account k, for k >= n the index commit of
 * account k - n (the connection stays locked by the leader). They run side
 * by side: a commit whose links are not yet durable is harmless, since the
 * reply waits for both, and after a crash in between the orphan sweep
 * expunges rows whose files are missing (store_sqlite_sweep.c). */
struct batch_finish {
	struct batch_account *accts;
	size_t n;
};

static void
account_finish(void *arg, size_t k)
{
	struct batch_finish *f = arg;
	struct batch_account *a = &f->accts[k % f->n];
	sqlite3_stmt *st;
	const char *error;
	char dir[32];
	size_t i;

	if (a->failed)
		return;
	if (k < f->n) {
		for (i = 0; i < a->ndirs; i++) {
			snprintf(dir, sizeof(dir), "%lld", (long long)a->dirs[i]);
			if (ssql_fsync_dir(a->ba->be, a->ba->msg_fd, dir, &error) < 0) {
				a->dirs_failed = 1;
				return;
			}
		}
		return;
	}
	if ((st = ssql_stmt(a->ba->w, SST_COMMIT, &error)) == NULL ||
	    ssql_step_done(a->ba->w, st, &error) < 0)
		a->commit_failed = 1;
}

/* A directory fsync failed after the account's commit: the messages are
 * visible but not durable, and their senders are told to try again, so they
 * are expunged (their files go with them). */
static void
account_undo(struct batch_account *a)
{
	uint32_t *uids = xcalloc(a->nstored + 1, sizeof(*uids));
	const char *error;
	size_t i, j, n;
	int changed;

	for (i = 0; i < a->nstored; i = j) {
		for (j = i, n = 0; j < a->nstored &&
		    a->stored[j].mailbox_id == a->stored[i].mailbox_id; j++)
			uids[n++] = a->stored[j].uid;
		if (ssql_message_expunge(a->ba, a->stored[i].mailbox_id, uids, n, &changed,
		    &error) < 0)
			log_error(NULL, "event=store-undo-failed account=%lld mailbox=%lld "
			    "reason=\"%s\"", (long long)a->ba->id,
			    (long long)a->stored[i].mailbox_id, error);
	}
	free(uids);
}

void
ssql_commit_batch(struct store_backend *be, struct store_commit **batch, size_t n)
{
	struct batch_account *accts = NULL, *a;
	struct batch_finish finish;
	struct store_backend_account *ba;
	const char *error;
	size_t nacct = 0, i, j, k, targets = 0;
	struct timespec t0, t1, t2, t3;
	int busy;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	busy = atomic_fetch_add(&be->batches, 1) > 0;
	sync_files(be, batch, n);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	for (i = 0; i < n; i++) {
		for (j = 0; j < batch[i]->n; j++) {
			if (batch[i]->targets[j].error != STORE_OK)
				continue;
			ba = store_account_backend(batch[i]->targets[j].acct);
			if (batch_account_find(accts, nacct, ba) != NULL)
				continue;
			accts = xreallocarray(accts, nacct + 1, sizeof(*accts));
			memset(&accts[nacct], 0, sizeof(accts[nacct]));
			accts[nacct++].ba = ba;
		}
	}
	/* Locks are taken in account-id order. Leaders of this process never
	 * share an account (store_writer.c), but a write of one account and a
	 * batch of several must not wait for each other in a circle. */
	if (nacct > 1)
		qsort(accts, nacct, sizeof(*accts), batch_account_cmp);
	for (k = 0; k < nacct; k++) {
		if (ssql_wbegin(accts[k].ba, &error) == NULL)
			accts[k].failed = 1;
		else
			accts[k].begun = 1;
	}

	for (i = 0; i < n; i++) {
		for (j = 0; j < batch[i]->n; j++) {
			struct store_target *t = &batch[i]->targets[j];

			if (t->error != STORE_OK)
				continue;
			a = batch_account_find(accts, nacct, store_account_backend(t->acct));
			if (a->failed)
				continue;
			if (target_insert(be, a, batch[i], i, j) == -2)
				a->failed = 1;
			targets++;
		}
	}

	clock_gettime(CLOCK_MONOTONIC, &t2);
	finish.accts = accts;
	finish.n = nacct;
	if (busy) {
		/* Other batches were in flight: what they all wait for is the
		 * CPU more than the disk, so this one's flushes go one after the
		 * other in this thread rather than waking pool threads, and its
		 * rows are committed only once their directories are durable. */
		for (k = 0; k < nacct; k++) {
			account_finish(&finish, k);
			if (accts[k].dirs_failed)
				accts[k].commit_failed = 1;   /* rolled back below */
			else
				account_finish(&finish, nacct + k);
		}
	} else
		ssql_pool_run(&be->pool, 2 * nacct, account_finish, &finish);
	atomic_fetch_sub(&be->batches, 1);
	clock_gettime(CLOCK_MONOTONIC, &t3);
	if (log_get_level() <= LOG_LEVEL_DEBUG)
		log_debug(NULL, "event=store-batch commits=%zu targets=%zu accounts=%zu "
		    "files_ms=%.2f index_ms=%.2f durable_ms=%.2f serial=%d", n, targets, nacct,
		    ms_between(&t0, &t1), ms_between(&t1, &t2), ms_between(&t2, &t3), busy);
	for (k = 0; k < nacct; k++) {
		a = &accts[k];
		if (!a->begun)
			continue;
		if (a->commit_failed)
			a->failed = 1;
		if (a->failed) {
			ssql_wrollback(a->ba);
			ssql_names_unlink(a->ba, &a->linked);
		} else if (a->dirs_failed) {
			ssql_wunlock(a->ba);
			account_undo(a);
			a->failed = 1;
		} else {
			ssql_wunlock(a->ba);
			if (a->nbodies > 0)
				ssql_fts_index_later(a->ba);
		}
	}

	for (i = 0; i < n; i++) {
		for (j = 0; j < batch[i]->n; j++) {
			struct store_target *t = &batch[i]->targets[j];

			if (t->error != STORE_OK)
				continue;
			a = batch_account_find(accts, nacct, store_account_backend(t->acct));
			if (a->failed) {
				t->error = STORE_ERR_TEMP;
				t->uid = 0;
				t->uidvalidity = 0;
			}
		}
	}
	for (k = 0; k < nacct; k++) {
		ssql_names_free(&accts[k].linked);
		free(accts[k].stored);
		free(accts[k].dirs);
		free(accts[k].bodies);
	}
	free(accts);
}
