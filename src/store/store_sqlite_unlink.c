/*
 * Removing message files once the commit that dropped their rows is
 * durable (expunge, move, renaming INBOX), in the background.
 *
 * Why not in the caller: on a disk busy with fsyncs (a mail server's normal
 * state) each unlink waits for the running journal commit, ~2-4 ms, so a
 * POP3 QUIT removing 200 messages spent most of its time unlinking one file
 * after another. Here a few threads take the names of a job one by one:
 * their unlinks share journal commits, and the client's reply does not
 * wait for them. The last thread done with a job fsyncs each of its
 * directories once.
 *
 * Nothing depends on the files going at once: a file without a row is
 * invisible (reads go through the index), UIDs are never reused, and what
 * a crash leaves is removed by the orphan sweep at the next start
 * (store_sqlite_sweep.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_sqlite.h"

#define SSQL_UNLINK_THREADS 4
#define SSQL_FTS_PURGE_BATCH 200   /* search-text rows per transaction */

/* Removing the search text of expunged messages (fts_pending_delete). */
struct ssql_fts_job {
	char *db_path;
	int64_t account_id;
	struct ssql_fts_job *next;
};

struct ssql_unlink_job {
	struct store_backend *be;
	int64_t account_id;
	int dirfd;                 /* msg/ of the account: a dup, it outlives it */
	struct ssql_names names;
	size_t taken;              /* names handed to a thread */
	size_t left;               /* names not yet unlinked */
	struct ssql_unlink_job *next;
};

/* The last thread done with a job: one fsync per directory. */
static void
job_finish(struct ssql_unlink_job *job)
{
	char dir[SSQL_FILE_NAME_MAX], prev[SSQL_FILE_NAME_MAX] = "", *slash;
	size_t i;
	int fd;

	for (i = 0; i < job->names.n; i++) {
		memcpy(dir, job->names.names[i], sizeof(dir));
		if ((slash = strchr(dir, '/')) != NULL)
			*slash = '\0';
		/* Names of one directory are adjacent in every caller. */
		if (strcmp(dir, prev) == 0)
			continue;
		memcpy(prev, dir, sizeof(prev));
		/* Gone: the mailbox or the account was deleted meanwhile. */
		if ((fd = openat(job->dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 &&
		    errno == ENOENT)
			continue;
		if (fd < 0 || job->be->fsync(fd) < 0)
			log_warn(NULL, "event=store-unlink-fsync-failed account=%lld dir=%s "
			    "reason=\"%s\"", (long long)job->account_id, dir, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	close(job->dirfd);
	ssql_names_free(&job->names);
	free(job);
}

static int
fts_exec(sqlite3 *db, const char *sql, const char *json)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (json != NULL)
		sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* One transaction: up to SSQL_FTS_PURGE_BATCH pending rows removed. 1 when
 * some were, 0 when none were left, -1 on an error. The guard on messages
 * keeps text a message refers to again (it is only ever removed with the
 * last message of its body). */
static int
fts_purge_batch(sqlite3 *db)
{
	struct buf json = BUF_INIT;
	sqlite3_stmt *st;
	int rc, n = 0;

	if (fts_exec(db, "BEGIN IMMEDIATE", NULL) < 0)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT id FROM fts_pending_delete ORDER BY id LIMIT ?1",
	    -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int(st, 1, SSQL_FTS_PURGE_BATCH);
	buf_putc(&json, '[');
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		buf_printf(&json, n++ > 0 ? ",%lld" : "%lld",
		    (long long)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	buf_putc(&json, ']');
	if (rc != SQLITE_DONE)
		goto fail;
	if (n > 0 && (fts_exec(db, "DELETE FROM search_text WHERE id IN"
	    " (SELECT value FROM json_each(?1)) AND NOT EXISTS"
	    " (SELECT 1 FROM messages WHERE body_id = search_text.id)", buf_cstr(&json)) < 0 ||
	    fts_exec(db, "DELETE FROM fts_pending_delete WHERE id IN"
	    " (SELECT value FROM json_each(?1))", buf_cstr(&json)) < 0))
		goto fail;
	if (fts_exec(db, "COMMIT", NULL) < 0)
		goto fail;
	buf_free(&json);
	return n > 0;
fail:
	if (!sqlite3_get_autocommit(db))
		fts_exec(db, "ROLLBACK", NULL);
	buf_free(&json);
	return -1;
}

int
ssql_fts_purge(const char *db_path, int64_t account_id)
{
	sqlite3 *db;
	int rc;

	/* Gone (the account deleted meanwhile): nothing to do. */
	if (access(db_path, F_OK) < 0)
		return 0;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return 0;
	}
	sqlite3_busy_timeout(db, SSQL_BUSY_TIMEOUT_MS);
	if (fts_exec(db, "PRAGMA synchronous = FULL", NULL) < 0) {
		rc = -1;
		goto out;
	}
	while ((rc = fts_purge_batch(db)) > 0)
		;
out:
	if (rc < 0)
		log_warn(NULL, "event=store-fts-purge-failed account=%lld reason=\"%s\"",
		    (long long)account_id, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

static void *
unlink_thread(void *p)
{
	struct ssql_unlinker *u = p;
	struct ssql_unlink_job *job;
	struct ssql_fts_job *fts;
	size_t i;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (u->head == NULL && u->fts_head == NULL && !u->quit)
			pthread_cond_wait(&u->work, &u->lock);
		if ((fts = u->fts_head) != NULL) {
			if ((u->fts_head = fts->next) == NULL)
				u->fts_tail = &u->fts_head;
			pthread_mutex_unlock(&u->lock);
			ssql_fts_purge(fts->db_path, fts->account_id);
			free(fts->db_path);
			free(fts);
			pthread_mutex_lock(&u->lock);
			if (--u->jobs == 0)
				pthread_cond_broadcast(&u->idle);
			continue;
		}
		if ((job = u->head) == NULL)
			break;
		i = job->taken++;
		if (job->taken == job->names.n && (u->head = job->next) == NULL)
			u->tail = &u->head;
		pthread_mutex_unlock(&u->lock);

		if (unlinkat(job->dirfd, job->names.names[i], 0) < 0 && errno != ENOENT)
			log_warn(NULL, "event=store-unlink-failed account=%lld file=%s "
			    "reason=\"%s\"", (long long)job->account_id, job->names.names[i],
			    strerror(errno));

		pthread_mutex_lock(&u->lock);
		if (--job->left > 0)
			continue;
		pthread_mutex_unlock(&u->lock);
		job_finish(job);
		pthread_mutex_lock(&u->lock);
		if (--u->jobs == 0)
			pthread_cond_broadcast(&u->idle);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

void
ssql_unlinker_init(struct ssql_unlinker *u)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->work, NULL);
	pthread_cond_init(&u->idle, NULL);
	u->tail = &u->head;
	u->fts_tail = &u->fts_head;
	u->threads = xcalloc(SSQL_UNLINK_THREADS, sizeof(*u->threads));
	for (; u->nthreads < SSQL_UNLINK_THREADS; u->nthreads++)
		if (pthread_create(&u->threads[u->nthreads], NULL, unlink_thread, u) != 0)
			break;
}

void
ssql_unlinker_flush(struct ssql_unlinker *u)
{
	pthread_mutex_lock(&u->lock);
	while (u->jobs > 0)
		pthread_cond_wait(&u->idle, &u->lock);
	pthread_mutex_unlock(&u->lock);
}

void
ssql_unlinker_destroy(struct ssql_unlinker *u)
{
	size_t i;

	ssql_unlinker_flush(u);
	pthread_mutex_lock(&u->lock);
	u->quit = 1;
	pthread_cond_broadcast(&u->work);
	pthread_mutex_unlock(&u->lock);
	for (i = 0; i < u->nthreads; i++)
		pthread_join(u->threads[i], NULL);
	free(u->threads);
	pthread_cond_destroy(&u->idle);
	pthread_cond_destroy(&u->work);
	pthread_mutex_destroy(&u->lock);
}

void
ssql_names_unlink_later(struct store_backend_account *ba, struct ssql_names *names)
{
	struct ssql_unlinker *u = &ba->be->unlinker;
	struct ssql_unlink_job *job;
	int fd;

	if (names->n == 0)
		return;
	if (u->nthreads == 0 || (fd = fcntl(ba->msg_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		ssql_names_unlink(ba, names);
		ssql_names_free(names);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->be = ba->be;
	job->account_id = ba->id;
	job->dirfd = fd;
	job->names = *names;
	job->left = names->n;
	names->names = NULL;
	names->n = 0;
	pthread_mutex_lock(&u->lock);
	*u->tail = job;
	u->tail = &job->next;
	u->jobs++;
	pthread_cond_broadcast(&u->work);
	pthread_mutex_unlock(&u->lock);
}

void
ssql_fts_purge_later(struct store_backend_account *ba)
{
	struct ssql_unlinker *u = &ba->be->unlinker;
	struct ssql_fts_job *job, *q;

	if (u->nthreads == 0) {
		ssql_fts_purge(ba->db_path, ba->id);
		return;
	}
	pthread_mutex_lock(&u->lock);
	/* One queued job per account is enough: it empties the table. */
	for (q = u->fts_head; q != NULL; q = q->next)
		if (strcmp(q->db_path, ba->db_path) == 0) {
			pthread_mutex_unlock(&u->lock);
			return;
		}
	job = xcalloc(1, sizeof(*job));
	job->db_path = xstrdup(ba->db_path);
	job->account_id = ba->id;
	*u->fts_tail = job;
	u->fts_tail = &job->next;
	u->jobs++;
	pthread_cond_broadcast(&u->work);
	pthread_mutex_unlock(&u->lock);
}
