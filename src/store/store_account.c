/*
 * The table of open accounts, and the cache of idle ones.
 *
 * Every open account is in a hash table by id: in use (refs > 0), idle
 * (no reference, in an LRU list), opening or closing (the backend is not
 * usable: whoever wants the account waits). One account is opened once in
 * a process, however many sessions share it.
 *
 * Why a cache: opening an account's index costs a check, a schema read
 * and, when its last connection had closed, a checkpoint and a new WAL;
 * SMTP delivery opens and closes the recipient's account for every message
 * (19 messages/s from one client when each close closed the index, 97 with
 * the index kept open). Idle accounts are closed when the cache is full
 * (least recently used first), after STORE_ACCOUNT_CACHE_IDLE seconds (a
 * few at every open and close), at store_account_delete and store_close.
 * Slow closes (an index's last close checkpoints it) run without the table
 * lock.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_backend.h"
#include "store/store_internal.h"

#define STORE_BUCKET_BITS_MIN 6
#define STORE_CACHE_EXPIRE_MAX 16   /* idle-expired accounts closed per call */

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t
bucket_of(unsigned bits, int64_t id)
{
	return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

static struct store_account *
table_find(struct store *store, int64_t id)
{
	struct store_account *acct;

	for (acct = store->buckets[bucket_of(store->bucket_bits, id)]; acct != NULL;
	    acct = acct->hnext)
		if (acct->id == id)
			return acct;
	return NULL;
}

static void
table_add(struct store *store, struct store_account *acct)
{
	struct store_account **old = store->buckets, *a;
	size_t i, n = (size_t)1 << store->bucket_bits, b;

	if (store->naccounts >= n) {
		/* Load factor 1 at most: chains stay short. */
		store->bucket_bits++;
		store->buckets = xcalloc(n * 2, sizeof(*store->buckets));
		for (i = 0; i < n; i++) {
			while ((a = old[i]) != NULL) {
				old[i] = a->hnext;
				b = bucket_of(store->bucket_bits, a->id);
				a->hnext = store->buckets[b];
				store->buckets[b] = a;
			}
		}
		free(old);
	}
	b = bucket_of(store->bucket_bits, acct->id);
	acct->hnext = store->buckets[b];
	store->buckets[b] = acct;
	store->naccounts++;
}

static void
table_remove(struct store *store, struct store_account *acct)
{
	struct store_account **pp = &store->buckets[bucket_of(store->bucket_bits, acct->id)];

	while (*pp != acct)
		pp = &(*pp)->hnext;
	*pp = acct->hnext;
	store->naccounts--;
}

static void
idle_push(struct store *store, struct store_account *acct)
{
	acct->idle_since = mono_ms();
	acct->idle_prev = NULL;
	acct->idle_next = store->idle_head;
	if (store->idle_head != NULL)
		store->idle_head->idle_prev = acct;
	else
		store->idle_tail = acct;
	store->idle_head = acct;
	store->nidle++;
}

static void
idle_unlink(struct store *store, struct store_account *acct)
{
	if (acct->idle_prev != NULL)
		acct->idle_prev->idle_next = acct->idle_next;
	else
		store->idle_head = acct->idle_next;
	if (acct->idle_next != NULL)
		acct->idle_next->idle_prev = acct->idle_prev;
	else
		store->idle_tail = acct->idle_prev;
	acct->idle_prev = acct->idle_next = NULL;
	store->nidle--;
}

/* Takes the idle accounts that must go (over the cache's size, or idle for
 * too long: a few at a time, the caller pays for closing them) out of the
 * idle list and marks them closing; returns them as a list through
 * idle_next, for accounts_destroy. Called with the table lock held. */
static struct store_account *
cache_trim(struct store *store, size_t max)
{
	struct store_account *acct, *list = NULL;
	uint64_t now = 0;
	size_t expired = 0;

	while ((acct = store->idle_tail) != NULL) {
		if (store->nidle <= max) {
			if (now == 0)
				now = mono_ms();
			if (expired == STORE_CACHE_EXPIRE_MAX ||
			    now - acct->idle_since < store->cache_idle_ms)
				break;
			expired++;
		}
		idle_unlink(store, acct);
		acct->closing = 1;
		acct->idle_next = list;
		list = acct;
	}
	return list;
}

static void
account_free(struct store_account *acct)
{
	pthread_cond_destroy(&acct->watch_done);
	pthread_mutex_destroy(&acct->lock);
	free(acct);
}

/* Closes the accounts of a cache_trim list, with the table lock not held:
 * the last close of an index may checkpoint it (fsyncs), which holds up
 * only whoever waits for that account. */
static void
accounts_destroy(struct store *store, struct store_account *list)
{
	struct store_account *acct;

	while ((acct = list) != NULL) {
		list = acct->idle_next;
		store->ops->account_close(acct->be);
		pthread_mutex_lock(&store->accounts_lock);
		table_remove(store, acct);
		pthread_cond_broadcast(&store->accounts_cond);
		pthread_mutex_unlock(&store->accounts_lock);
		account_free(acct);
	}
}

/* --- the store's side --------------------------------------------------- */

static size_t
cache_max_default(const struct store_backend_ops *ops)
{
	struct rlimit rl;
	size_t max = STORE_ACCOUNT_CACHE_MAX, fit;

	/* Idle accounts take at most a quarter of the descriptors. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    ops->idle_account_fds > 0) {
		fit = (size_t)rl.rlim_cur / 4 / ops->idle_account_fds;
		if (fit < max)
			max = fit;
	}
	return max;
}

void
store_accounts_init(struct store *store)
{
	pthread_mutex_init(&store->accounts_lock, NULL);
	pthread_cond_init(&store->accounts_cond, NULL);
	store->bucket_bits = STORE_BUCKET_BITS_MIN;
	store->buckets = xcalloc((size_t)1 << store->bucket_bits, sizeof(*store->buckets));
	store->cache_max = cache_max_default(store->ops);
	store->cache_idle_ms = (uint64_t)STORE_ACCOUNT_CACHE_IDLE * 1000;
}

void
store_accounts_destroy(struct store *store)
{
	struct store_account *list;
	size_t in_use;

	pthread_mutex_lock(&store->accounts_lock);
	in_use = store->naccounts - store->nidle;
	list = cache_trim(store, 0);
	pthread_mutex_unlock(&store->accounts_lock);
	accounts_destroy(store, list);
	if (in_use > 0)
		log_warn(NULL, "event=store-close reason=\"accounts still open\" "
		    "accounts=%zu", in_use);
	pthread_cond_destroy(&store->accounts_cond);
	pthread_mutex_destroy(&store->accounts_lock);
	free(store->buckets);
	store->buckets = NULL;
}

void
store_set_account_cache(struct store *store, size_t max, unsigned idle_seconds)
{
	struct store_account *list;

	pthread_mutex_lock(&store->accounts_lock);
	store->cache_max = max;
	store->cache_idle_ms = (uint64_t)idle_seconds * 1000;
	list = cache_trim(store, max);
	pthread_mutex_unlock(&store->accounts_lock);
	accounts_destroy(store, list);
}

void
store_account_cache_count(struct store *store, size_t *open_r, size_t *idle_r)
{
	pthread_mutex_lock(&store->accounts_lock);
	*open_r = store->naccounts;
	*idle_r = store->nidle;
	pthread_mutex_unlock(&store->accounts_lock);
}

/* --- accounts ----------------------------------------------------------- */

struct store_backend_account *
store_account_backend(struct store_account *acct)
{
	return acct->be;
}

int64_t
store_account_id(const struct store_account *acct)
{
	return acct->id;
}

void
store_account_quota(struct store_account *acct, struct store_quota *quota)
{
	pthread_mutex_lock(&acct->lock);
	*quota = acct->quota;
	pthread_mutex_unlock(&acct->lock);
}

/* Waits while the account is opening or closing; returns it (NULL: not
 * open). Called with the table lock held. */
static struct store_account *
account_find_ready(struct store *store, int64_t id)
{
	struct store_account *acct;

	while ((acct = table_find(store, id)) != NULL && (acct->opening || acct->closing))
		pthread_cond_wait(&store->accounts_cond, &store->accounts_lock);
	return acct;
}

int
store_account_open(struct store *store, int64_t account_id, const struct store_quota *quota,
    struct store_account **acct_r, const char **error_r)
{
	struct store_account *acct, *list;
	static const struct store_quota unlimited = { 0, 0 };
	int rc;

	if (account_id <= 0)
		return store_fail(STORE_ERR_INVALID, error_r, "invalid account id");
	if (quota == NULL)
		quota = &unlimited;
	pthread_mutex_lock(&store->accounts_lock);
	while ((acct = account_find_ready(store, account_id)) != NULL && acct->refs == 0) {
		idle_unlink(store, acct);
		if (store->ops->account_valid(acct->be))
			break;
		/* Its index changed under it: closed, then opened afresh. */
		acct->closing = 1;
		acct->idle_next = NULL;
		pthread_mutex_unlock(&store->accounts_lock);
		accounts_destroy(store, acct);
		pthread_mutex_lock(&store->accounts_lock);
	}
	list = cache_trim(store, store->cache_max);
	if (acct != NULL) {
		acct->refs++;
		pthread_mutex_unlock(&store->accounts_lock);
		accounts_destroy(store, list);
		store_account_set_quota(acct, quota);
		*acct_r = acct;
		return 0;
	}
	/* Opened outside the table lock: a slow open (a rebuild) holds up
	 * that account only. */
	acct = xcalloc(1, sizeof(*acct));
	acct->store = store;
	acct->id = account_id;
	acct->refs = 1;
	acct->opening = 1;
	acct->quota = *quota;
	pthread_mutex_init(&acct->lock, NULL);
	pthread_cond_init(&acct->watch_done, NULL);
	table_add(store, acct);
	pthread_mutex_unlock(&store->accounts_lock);
	accounts_destroy(store, list);

	rc = store->ops->account_open(store->be, account_id, &acct->be, error_r);

	pthread_mutex_lock(&store->accounts_lock);
	acct->opening = 0;
	if (rc < 0)
		table_remove(store, acct);
	pthread_cond_broadcast(&store->accounts_cond);
	pthread_mutex_unlock(&store->accounts_lock);
	if (rc < 0) {
		account_free(acct);
		return -1;
	}
	*acct_r = acct;
	return 0;
}

void
store_account_close(struct store_account **acctp)
{
	struct store_account *acct = *acctp, *list = NULL, *trimmed;
	struct store *store;
	int keep;

	if (acct == NULL)
		return;
	*acctp = NULL;
	store = acct->store;
	pthread_mutex_lock(&store->accounts_lock);
	if (--acct->refs > 0) {
		pthread_mutex_unlock(&store->accounts_lock);
		return;
	}
	/* Trimmed outside the table lock; meanwhile it is closing to others. */
	keep = store->cache_max > 0;
	acct->closing = 1;
	pthread_mutex_unlock(&store->accounts_lock);
	keep = keep && store->ops->account_park(acct->be);
	pthread_mutex_lock(&store->accounts_lock);
	if (keep) {
		acct->closing = 0;
		idle_push(store, acct);
		pthread_cond_broadcast(&store->accounts_cond);
	} else {
		acct->idle_next = NULL;
		list = acct;
	}
	trimmed = cache_trim(store, store->cache_max);
	pthread_mutex_unlock(&store->accounts_lock);
	accounts_destroy(store, list);
	accounts_destroy(store, trimmed);
}

void
store_account_set_quota(struct store_account *acct, const struct store_quota *quota)
{
	pthread_mutex_lock(&acct->lock);
	acct->quota = *quota;
	pthread_mutex_unlock(&acct->lock);
}

int
store_account_usage(struct store_account *acct, struct store_usage *usage,
    const char **error_r)
{
	return acct->store->ops->account_usage(acct->be, usage, error_r);
}

int
store_account_delete(struct store *store, int64_t account_id, const char **error_r)
{
	struct store_account *acct;
	int rc;

	if (account_id <= 0)
		return store_fail(STORE_ERR_INVALID, error_r, "invalid account id");
	/* The table lock is held throughout: nobody opens the account while
	 * it goes. An idle account is closed first (rare enough to do it
	 * under the lock). */
	pthread_mutex_lock(&store->accounts_lock);
	acct = account_find_ready(store, account_id);
	if (acct != NULL && acct->refs == 0) {
		idle_unlink(store, acct);
		table_remove(store, acct);
		store->ops->account_close(acct->be);
		account_free(acct);
		acct = NULL;
	}
	if (acct != NULL)
		rc = store_fail(STORE_ERR_CONFLICT, error_r, "the account is in use");
	else
		rc = store->ops->account_delete(store->be, account_id, error_r);
	pthread_mutex_unlock(&store->accounts_lock);
	return rc;
}
