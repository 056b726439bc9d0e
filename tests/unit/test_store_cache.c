/*
 * Unit tests of the store's idle-account trimming and of the commit pool
 * (the threads that run a batch's directory fsyncs and index commits side
 * by side).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/xmalloc.h"
#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_sqlite.h"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
deliver(struct store *store, struct store_account *acct)
{
	static const char text[] = "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
	struct store_writer *w;
	struct store_target t;
	const char *error;

	assert_int_equal(store_writer_new(store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, text, sizeof(text) - 1, &error), 0);
	memset(&t, 0, sizeof(t));
	t.acct = acct;
	t.mailbox_name = "INBOX";
	t.internaldate = 1700000000;
	assert_int_equal(store_writer_commit(w, &t, 1, &error), 1);
	assert_int_equal(t.error, STORE_OK);
	store_writer_free(&w);
}

/* An account closed after a delivery stays idle with its statements and
 * pages (the next delivery, typically soon, needs them); the janitor trims
 * it once it has been unused for a while, and it works as before after. */
static void
test_idle_trimmed_later(void **state)
{
	char dir[] = "/tmp/petrel-test-cache-XXXXXX";
	struct store *store;
	struct store_account *acct;
	const char *error;
	struct store_usage usage;
	int waited;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(dir, &store, &error), 0);
	assert_int_equal(store_account_open(store, 1, NULL, &acct, &error), 0);
	deliver(store, acct);
	store_account_close(&acct);
	assert_int_equal(store_account_parked_count(store), 0);

	/* Reopened at once: the same untrimmed account. */
	assert_int_equal(store_account_open(store, 1, NULL, &acct, &error), 0);
	deliver(store, acct);
	store_account_close(&acct);

	/* Trimmed by the janitor within a few seconds (bounded wait). */
	for (waited = 0; waited < 100 && store_account_parked_count(store) == 0; waited++)
		usleep(100 * 1000);
	assert_int_equal(store_account_parked_count(store), 1);

	/* A trimmed account prepares its statements again when used. */
	assert_int_equal(store_account_open(store, 1, NULL, &acct, &error), 0);
	assert_int_equal(store_account_parked_count(store), 0);
	deliver(store, acct);
	assert_int_equal(store_account_usage(acct, &usage, &error), 0);
	assert_int_equal(usage.messages, 3);
	store_account_close(&acct);
	store_close(&store);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* --- concurrent batches ------------------------------------------------- */

#define BATCH_THREADS 8
#define BATCH_MESSAGES 12

static atomic_int dir_fsync_fail;

/* A slow flush (so that batches overlap), failing for directories when
 * dir_fsync_fail is set. */
static int
slow_fsync(int fd)
{
	struct stat st;

	usleep(2000);
	if (atomic_load(&dir_fsync_fail) && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

struct batch_thread {
	struct store *store;
	struct store_account *acct;
	int stored, failed;
};

static void *
batch_thread_main(void *arg)
{
	static const char text[] = "From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
	struct batch_thread *bt = arg;
	struct store_writer *w;
	struct store_target t;
	const char *error;
	int i;

	for (i = 0; i < BATCH_MESSAGES; i++) {
		if (store_writer_new(bt->store, &w, &error) < 0 ||
		    store_writer_write(w, text, sizeof(text) - 1, &error) < 0) {
			bt->failed++;
			continue;
		}
		memset(&t, 0, sizeof(t));
		t.acct = bt->acct;
		t.mailbox_name = "INBOX";
		if (store_writer_commit(w, &t, 1, &error) == 1 && t.error == STORE_OK)
			bt->stored++;
		else
			bt->failed++;
		store_writer_free(&w);
	}
	return NULL;
}

static void
run_batches(struct store *store, struct batch_thread *bt)
{
	pthread_t th[BATCH_THREADS];
	int i;

	for (i = 0; i < BATCH_THREADS; i++) {
		bt[i].stored = bt[i].failed = 0;
		assert_int_equal(pthread_create(&th[i], NULL, batch_thread_main, &bt[i]), 0);
	}
	for (i = 0; i < BATCH_THREADS; i++)
		pthread_join(th[i], NULL);
}

/* Batches of different accounts committed while others are in flight
 * (whose flushes run one after the other in the leader) and alone (side by
 * side on the pool): when a directory's fsync fails, no delivery succeeds
 * and none is left visible or on disk; when it works, every one is stored. */
static void
test_concurrent_batches_dir_failure(void **state)
{
	char dir[] = "/tmp/petrel-test-cache-XXXXXX";
	struct batch_thread bt[BATCH_THREADS];
	struct store *store;
	struct store_usage usage;
	const char *error;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(dir, &store, &error), 0);
	for (i = 0; i < BATCH_THREADS; i++) {
		bt[i].store = store;
		assert_int_equal(store_account_open(store, i + 1, NULL, &bt[i].acct, &error), 0);
	}
	store_set_fsync(store, slow_fsync);

	atomic_store(&dir_fsync_fail, 1);
	run_batches(store, bt);
	store_flush(store);
	for (i = 0; i < BATCH_THREADS; i++) {
		assert_int_equal(bt[i].stored, 0);
		assert_int_equal(bt[i].failed, BATCH_MESSAGES);
		assert_int_equal(store_account_usage(bt[i].acct, &usage, &error), 0);
		assert_int_equal(usage.messages, 0);
	}

	atomic_store(&dir_fsync_fail, 0);
	run_batches(store, bt);
	for (i = 0; i < BATCH_THREADS; i++) {
		assert_int_equal(bt[i].stored, BATCH_MESSAGES);
		assert_int_equal(store_account_usage(bt[i].acct, &usage, &error), 0);
		assert_int_equal(usage.messages, BATCH_MESSAGES);
	}
	store_set_fsync(store, NULL);
	for (i = 0; i < BATCH_THREADS; i++)
		store_account_close(&bt[i].acct);
	store_close(&store);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* --- the commit pool ---------------------------------------------------- */

#define POOL_CALLERS 6
#define POOL_RUNS 300
#define POOL_ITEMS_MAX 9

struct pool_case {
	_Atomic unsigned done[POOL_ITEMS_MAX];
};

static void
pool_item(void *arg, size_t i)
{
	struct pool_case *c = arg;

	if (i % 3 == 0)
		usleep(50);   /* some items wait, as fsyncs do */
	atomic_fetch_add(&c->done[i], 1);
}

struct pool_caller {
	struct ssql_pool *pool;
	unsigned seed;
	int bad;
};

static void *
pool_caller_main(void *arg)
{
	struct pool_caller *pc = arg;
	struct pool_case c;
	size_t n, i, r;

	for (r = 0; r < POOL_RUNS; r++) {
		n = (size_t)(rand_r(&pc->seed) % POOL_ITEMS_MAX) + 1;
		for (i = 0; i < POOL_ITEMS_MAX; i++)
			atomic_init(&c.done[i], 0);
		ssql_pool_run(pc->pool, n, pool_item, &c);
		/* Every item ran exactly once before the call returned. */
		for (i = 0; i < POOL_ITEMS_MAX; i++)
			if (atomic_load(&c.done[i]) != (i < n ? 1u : 0u))
				pc->bad++;
	}
	return NULL;
}

/* Runs from several threads at once share the pool's threads; each call
 * returns only when all of its own items are done, each done once. */
static void
test_pool_concurrent_runs(void **state)
{
	struct ssql_pool pool;
	struct pool_caller callers[POOL_CALLERS];
	pthread_t th[POOL_CALLERS];
	size_t i;

	(void)state;
	ssql_pool_init(&pool);
	for (i = 0; i < POOL_CALLERS; i++) {
		callers[i].pool = &pool;
		callers[i].seed = (unsigned)i + 1;
		callers[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, pool_caller_main, &callers[i]), 0);
	}
	for (i = 0; i < POOL_CALLERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(callers[i].bad, 0);
	}
	assert_true(pool.nthreads > 0);
	ssql_pool_destroy(&pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_trimmed_later),
		cmocka_unit_test(test_concurrent_batches_dir_failure),
		cmocka_unit_test(test_pool_concurrent_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
