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
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_sqlite.h"

#define SSQL_UNLINK_THREADS 4
/* New search text is indexed once its account has had no new text for
 * SSQL_FTS_INDEX_QUIET_MS, or SSQL_FTS_INDEX_MAX_MS after the first: one
 * transaction for a burst of deliveries, and none at all for messages a
 * POP3 client downloads and deletes meanwhile. */
#define SSQL_FTS_INDEX_QUIET_MS 30000
#define SSQL_FTS_INDEX_MAX_MS 300000

/* Work on an account's search index (store_sqlite_fts.c), not before due. */
struct ssql_fts_job {
	char *db_path;
	int64_t account_id;
	int64_t due_ms;            /* CLOCK_MONOTONIC */
	int64_t first_ms;          /* when it was queued */
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

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes the first index job that is due (all are while flushing); else
 * sets *wait_ms to the time until the next one (-1: none queued). */
static struct ssql_fts_job *
fts_take(struct ssql_unlinker *u, int64_t *wait_ms)
{
	struct ssql_fts_job **pp, *job;
	int64_t now = now_ms();

	*wait_ms = -1;
	for (pp = &u->fts_head; (job = *pp) != NULL; pp = &job->next) {
		if (job->due_ms <= now || u->flushing || u->quit) {
			if ((*pp = job->next) == NULL)
				u->fts_tail = pp;
			return job;
		}
		if (*wait_ms < 0 || job->due_ms - now < *wait_ms)
			*wait_ms = job->due_ms - now;
	}
	return NULL;
}

static void
cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cond, lock, &ts);
}

static void *
unlink_thread(void *p)
{
	struct ssql_unlinker *u = p;
	struct ssql_unlink_job *job;
	struct ssql_fts_job *fts;
	int64_t wait_ms;
	size_t i;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		if ((fts = fts_take(u, &wait_ms)) != NULL) {
			pthread_mutex_unlock(&u->lock);
			ssql_fts_maintain(fts->db_path, fts->account_id);
			free(fts->db_path);
			free(fts);
			pthread_mutex_lock(&u->lock);
			if (--u->jobs == 0)
				pthread_cond_broadcast(&u->idle);
			continue;
		}
		if ((job = u->head) == NULL) {
			if (u->quit && wait_ms < 0)
				break;
			if (wait_ms < 0)
				pthread_cond_wait(&u->work, &u->lock);
			else
				cond_wait_ms(&u->work, &u->lock, wait_ms);
			continue;
		}
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
	pthread_condattr_t attr;

	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&u->work, &attr);
	pthread_condattr_destroy(&attr);
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
	/* Index jobs waiting for their time are done now. */
	u->flushing++;
	pthread_cond_broadcast(&u->work);
	while (u->jobs > 0)
		pthread_cond_wait(&u->idle, &u->lock);
	u->flushing--;
	pthread_mutex_unlock(&u->lock);
}

void
ssql_unlinker_destroy(struct ssql_unlinker *u)
{
	struct ssql_fts_job *fts;
	size_t i;

	/* Search-index work waiting for its time is dropped: what it would do
	 * is listed in each index and queued again when the account opens, and
	 * a shutdown should not wait for thousands of messages to be indexed.
	 * File removals are finished (nothing else would remove the files). */
	pthread_mutex_lock(&u->lock);
	while ((fts = u->fts_head) != NULL) {
		u->fts_head = fts->next;
		free(fts->db_path);
		free(fts);
		u->jobs--;
	}
	u->fts_tail = &u->fts_head;
	pthread_mutex_unlock(&u->lock);
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

/* Queues work on an account's search index, due in delay_ms (0: now); one
 * job per account is enough (it does all that is pending when it runs). A
 * delayed job queued again is put off again, up to SSQL_FTS_INDEX_MAX_MS
 * after it was first queued. */
static void
fts_later(struct store_backend_account *ba, int64_t delay_ms)
{
	struct ssql_unlinker *u = &ba->be->unlinker;
	struct ssql_fts_job *job, *q;
	int64_t now = now_ms(), due = now + delay_ms;

	if (u->nthreads == 0) {
		ssql_fts_maintain(ba->db_path, ba->id);
		return;
	}
	pthread_mutex_lock(&u->lock);
	for (q = u->fts_head; q != NULL; q = q->next)
		if (strcmp(q->db_path, ba->db_path) == 0) {
			if (delay_ms == 0 || due < q->due_ms) {
				q->due_ms = due;
				pthread_cond_broadcast(&u->work);
			} else if (q->due_ms > now)
				q->due_ms = due < q->first_ms + SSQL_FTS_INDEX_MAX_MS ? due :
				    q->first_ms + SSQL_FTS_INDEX_MAX_MS;
			pthread_mutex_unlock(&u->lock);
			return;
		}
	job = xcalloc(1, sizeof(*job));
	job->db_path = xstrdup(ba->db_path);
	job->account_id = ba->id;
	job->due_ms = due;
	job->first_ms = now;
	*u->fts_tail = job;
	u->fts_tail = &job->next;
	u->jobs++;
	pthread_cond_broadcast(&u->work);
	pthread_mutex_unlock(&u->lock);
}

void
ssql_fts_purge_later(struct store_backend_account *ba)
{
	fts_later(ba, 0);
}

void
ssql_fts_index_later(struct store_backend_account *ba)
{
	fts_later(ba, SSQL_FTS_INDEX_QUIET_MS);
}
