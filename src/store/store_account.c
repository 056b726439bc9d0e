/*
 * The table of open accounts, the cache of idle ones, and the indexes of
 * held ones.
 *
 * Every open account is in a hash table by id: in use (pinned), idle (no
 * reference, in an LRU list), quiet (held only, its index open, in another
 * LRU list), dormant (held only, its index closed), opening or closing
 * (the backend is not usable: whoever wants the account waits). One
 * account is opened once in a process, however many sessions share it.
 *
 * References and pins. store_account_open takes a reference and a pin;
 * store_account_hold (IMAP sessions) and watches take a reference only;
 * every store call pins the account while it runs (store_account_use).
 * The index is open while the account is pinned; an unpinned one keeps it
 * open only while it is among the most recent of its list.
 *
 * Why a cache: opening an account's index costs a check, a schema read
 * and, when its last connection had closed, a checkpoint and a new WAL;
 * SMTP delivery opens and closes the recipient's account for every message
 * (19 messages/s from one client when each close closed the index, 97 with
 * the index kept open). Idle accounts are closed when the cache is full
 * (least recently used first), after STORE_ACCOUNT_CACHE_IDLE seconds (a
 * few at every open and close), at store_account_delete and store_close.
 *
 * Why held accounts lose their index: an open index costs 70 to 250 KiB
 * (the parsed schema of two connections, statements, pages) and 4 to 6
 * descriptors, and an IMAP session in IDLE may wait for hours; with an
 * account per session that was most of what each session cost (159 KiB
 * each for 1,000 sessions, bench/imap_idle.py --accounts). Notifications
 * need no index (store_notify is in-process), so only the
 * STORE_ACCOUNT_HELD_OPEN most recently used quiet accounts keep theirs,
 * and any used in the last STORE_HELD_GRACE_MS (an active session's next
 * command finds its index open, however many sessions are active); the
 * next call on a dormant one opens it again, like a delivery to an
 * account out of the idle cache. A session that is going to wait says so
 * (store_account_rest, IMAP IDLE): its account then goes without the
 * grace, so that a burst of logins that each end in IDLE does not keep
 * every index it opened open for a second (peak memory that the
 * allocator keeps long after the indexes close: bench/run imap-idle-10k).
 *
 * Slow closes (an index's last close checkpoints it) run without the table
 * lock.
 */
#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>     /* malloc_trim */
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_backend.h"
#include "store/store_internal.h"

#define STORE_BUCKET_BITS_MIN 6
#define STORE_CACHE_EXPIRE_MAX 16   /* idle-expired accounts closed per call */
/* A quiet account used this recently stays open over the count: the next
 * command of an active session finds its index open, however many. */
#define STORE_HELD_GRACE_MS 1000
#define STORE_JANITOR_MS 1000       /* how often the lists are trimmed */
#define STORE_RELEASE_MS 10000      /* janitor_release while closes go on */
/* An idle account unused this long is trimmed (STORE_PARK_BATCH at most
 * per janitor round). */
#define STORE_IDLE_PARK_MS 2000
#define STORE_PARK_BATCH 64

uint64_t
store_now_ms(void)
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

/* Links acct into lru after `after` (NULL: at the head, most recent). */
static void
lru_link(struct store_lru *lru, struct store_account *acct, struct store_account *after)
{
	struct store_account **next = after != NULL ? &after->idle_next : &lru->head;

	acct->idle_prev = after;
	acct->idle_next = *next;
	if (*next != NULL)
		(*next)->idle_prev = acct;
	else
		lru->tail = acct;
	*next = acct;
	lru->n++;
	acct->lru = lru;
}

static void
lru_push(struct store_lru *lru, struct store_account *acct)
{
	acct->idle_since = store_now_ms();
	lru_link(lru, acct, NULL);
}

static void
lru_unlink(struct store_account *acct)
{
	struct store_lru *lru = acct->lru;

	if (acct->idle_prev != NULL)
		acct->idle_prev->idle_next = acct->idle_next;
	else
		lru->head = acct->idle_next;
	if (acct->idle_next != NULL)
		acct->idle_next->idle_prev = acct->idle_prev;
	else
		lru->tail = acct->idle_prev;
	acct->idle_prev = acct->idle_next = NULL;
	lru->n--;
	acct->lru = NULL;
}

/* Puts an account into its list as unused since at least grace_ms ago:
 * after the ones used more recently, before older ones (the list stays in
 * idle_since order, newest first), so that a trim over the count closes
 * it once the older ones are closed, without waiting for the grace. The
 * walk from the tail passes only accounts past the grace, which the
 * trims keep few. */
static void
lru_push_rested(struct store_lru *lru, struct store_account *acct, uint64_t grace_ms)
{
	struct store_account *after = lru->tail;
	uint64_t now = store_now_ms(), since = now > grace_ms ? now - grace_ms : 0;

	if (acct->idle_since > since)
		acct->idle_since = since;
	while (after != NULL && after->idle_since < acct->idle_since)
		after = after->idle_prev;
	acct->idle_prev = after;
	acct->idle_next = after != NULL ? after->idle_next : lru->head;
	if (acct->idle_next != NULL)
		acct->idle_next->idle_prev = acct;
	else
		lru->tail = acct;
	if (after != NULL)
		after->idle_next = acct;
	else
		lru->head = acct;
	lru->n++;
	acct->lru = lru;
}

/* Takes the accounts of an LRU that must go (over max, or unused for too
 * long: a few at a time, the caller pays for closing them), marks them
 * closing and prepends them to *list (linked through idle_next), for
 * accounts_destroy. Called with the table lock held. */
static void
lru_trim(struct store *store, struct store_lru *lru, size_t max, uint64_t grace_ms,
    struct store_account **list)
{
	struct store_account *acct;
	uint64_t now = grace_ms > 0 ? store_now_ms() : 0;
	size_t expired = 0;

	while ((acct = lru->tail) != NULL) {
		if (lru->n <= max) {
			if (now == 0)
				now = store_now_ms();
			if (expired == STORE_CACHE_EXPIRE_MAX ||
			    now - acct->idle_since < store->cache_idle_ms)
				break;
			expired++;
		} else if (now - acct->idle_since < grace_ms)
			break;
		lru_unlink(acct);
		acct->closing = 1;
		acct->idle_next = *list;
		*list = acct;
	}
}

/* The idle and quiet accounts that must go, as a list for accounts_destroy.
 * Called with the table lock held. */
static struct store_account *
cache_trim(struct store *store, size_t idle_max, size_t quiet_max)
{
	struct store_account *list = NULL;

	lru_trim(store, &store->idle, idle_max, 0, &list);
	lru_trim(store, &store->quiet, quiet_max, quiet_max > 0 ? STORE_HELD_GRACE_MS : 0,
	    &list);
	return list;
}

static void
account_free(struct store_account *acct)
{
	pthread_cond_destroy(&acct->watch_done);
	pthread_mutex_destroy(&acct->lock);
	free(acct);
}

/* Closes the indexes of a cache_trim list, with the table lock not held:
 * the last close of an index may checkpoint it (fsyncs), which holds up
 * only whoever waits for that account. An account still held stays,
 * dormant; the others go. */
static void
accounts_destroy(struct store *store, struct store_account *list)
{
	struct store_account *acct;
	int gone;

	while ((acct = list) != NULL) {
		list = acct->idle_next;
		acct->idle_next = NULL;
		store->ops->account_close(acct->be);
		pthread_mutex_lock(&store->accounts_lock);
		acct->be = NULL;
		acct->closing = 0;
		store->nclosed++;
		gone = acct->refs == 0;
		if (gone)
			table_remove(store, acct);
		else
			store->ndormant++;
		pthread_cond_broadcast(&store->accounts_cond);
		pthread_mutex_unlock(&store->accounts_lock);
		if (gone)
			account_free(acct);
	}
}

/* The last reference to an account whose index is open and unused went:
 * it is kept idle, or closed. It is trimmed later, by the janitor, once
 * unused for STORE_IDLE_PARK_MS: a delivery opens and closes its
 * recipient's account for every message, and trimming at every close made
 * each one prepare its statements again. Called with the table lock held,
 * returns without it. */
static void
account_unreferenced(struct store *store, struct store_account *acct)
{
	struct store_account *list = NULL, *trimmed;

	if (store->cache_max > 0) {
		acct->parked = 0;
		lru_push(&store->idle, acct);
	} else {
		acct->closing = 1;
		acct->idle_next = NULL;
		list = acct;
	}
	trimmed = cache_trim(store, store->cache_max, store->held_max);
	pthread_mutex_unlock(&store->accounts_lock);
	accounts_destroy(store, list);
	accounts_destroy(store, trimmed);
}

/* Puts an account back into an LRU list where its idle_since belongs
 * (the list is newest first). Called with the table lock held. */
static void
lru_insert_ordered(struct store_lru *lru, struct store_account *acct)
{
	struct store_account *after = lru->tail;

	while (after != NULL && after->idle_since < acct->idle_since)
		after = after->idle_prev;
	lru_link(lru, acct, after);
}

/* Trims the idle accounts unused for STORE_IDLE_PARK_MS (their statements
 * and page caches go; what is left is descriptors and the schema), a
 * bounded number per call, without the table lock: meanwhile they are out
 * of the list and closing to others. One that cannot be trimmed (its
 * index is damaged) is closed. Called with the table lock held, returns
 * with it held. */
static void
idle_park(struct store *store)
{
	struct store_account *batch[STORE_PARK_BATCH], *acct, *prev, *list = NULL;
	uint64_t now = store_now_ms();
	size_t i, n = 0;

	for (acct = store->idle.tail; acct != NULL && n < STORE_PARK_BATCH; acct = prev) {
		prev = acct->idle_prev;
		if (now - acct->idle_since < STORE_IDLE_PARK_MS)
			break;
		if (acct->parked)
			continue;
		lru_unlink(acct);
		acct->closing = 1;
		batch[n++] = acct;
	}
	if (n == 0)
		return;
	pthread_mutex_unlock(&store->accounts_lock);
	for (i = 0; i < n; i++)
		batch[i]->parked = store->ops->account_park(batch[i]->be) ? 1 : -1;
	pthread_mutex_lock(&store->accounts_lock);
	for (i = 0; i < n; i++) {
		acct = batch[i];
		if (acct->parked < 0) {
			acct->idle_next = list;
			list = acct;
			continue;
		}
		acct->closing = 0;
		lru_insert_ordered(&store->idle, acct);
	}
	pthread_cond_broadcast(&store->accounts_cond);
	if (list != NULL) {
		pthread_mutex_unlock(&store->accounts_lock);
		accounts_destroy(store, list);
		pthread_mutex_lock(&store->accounts_lock);
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

/* Gives the memory of closed indexes back to the system once closes stop
 * (none in the last round), or at least every STORE_RELEASE_MS while they
 * go on. An index's memory comes from the heap of the worker thread that
 * opened it, so a burst of logins (each opening its account's index, the
 * others' in the grace still open) leaves every worker heap as large as
 * its peak: megabytes that the allocator keeps, unused, until trimmed
 * (glibc frees only the top of a heap by itself). Called with the table
 * lock held, returns with it held. */
static void
janitor_release(struct store *store, uint64_t *seen, uint64_t *released,
    uint64_t *released_ms)
{
	uint64_t closed = store->nclosed, now = store_now_ms(), t0;

	if (closed != *released && (closed == *seen || now - *released_ms >= STORE_RELEASE_MS)) {
		pthread_mutex_unlock(&store->accounts_lock);
		t0 = store_now_ms();
#ifdef __GLIBC__
		malloc_trim(0);
#endif
		log_debug(NULL, "event=store-memory-released indexes_closed=%llu ms=%llu",
		    (unsigned long long)(closed - *released),
		    (unsigned long long)(store_now_ms() - t0));
		pthread_mutex_lock(&store->accounts_lock);
		*released = closed;
		*released_ms = now;
	}
	*seen = closed;
}

/* Trims the lists every STORE_JANITOR_MS, so that accounts over the
 * counts (past the grace) or unused for too long close even when no
 * store call comes to do it, and releases their memory. */
static void *
janitor_main(void *arg)
{
	struct store *store = arg;
	struct store_account *list;
	struct timespec ts;
	uint64_t seen = 0, released = 0, released_ms = store_now_ms();

	pthread_mutex_lock(&store->accounts_lock);
	while (!store->janitor_quit) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += STORE_JANITOR_MS / 1000;
		ts.tv_nsec += (long)(STORE_JANITOR_MS % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&store->janitor_cond, &store->accounts_lock, &ts);
		if (store->janitor_quit)
			break;
		list = cache_trim(store, store->cache_max, store->held_max);
		pthread_mutex_unlock(&store->accounts_lock);
		accounts_destroy(store, list);
		pthread_mutex_lock(&store->accounts_lock);
		idle_park(store);
		janitor_release(store, &seen, &released, &released_ms);
	}
	pthread_mutex_unlock(&store->accounts_lock);
	return NULL;
}

void
store_accounts_init(struct store *store)
{
	pthread_condattr_t attr;
	int rc;

	pthread_mutex_init(&store->accounts_lock, NULL);
	pthread_cond_init(&store->accounts_cond, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&store->janitor_cond, &attr);
	pthread_condattr_destroy(&attr);
	store->bucket_bits = STORE_BUCKET_BITS_MIN;
	store->buckets = xcalloc((size_t)1 << store->bucket_bits, sizeof(*store->buckets));
	store->cache_max = cache_max_default(store->ops);
	store->held_max = STORE_ACCOUNT_HELD_OPEN < store->cache_max ?
	    STORE_ACCOUNT_HELD_OPEN : store->cache_max;
	store->cache_idle_ms = (uint64_t)STORE_ACCOUNT_CACHE_IDLE * 1000;
	if ((rc = pthread_create(&store->janitor, NULL, janitor_main, store)) != 0)
		fatal("pthread_create: %s", strerror(rc));
}

void
store_accounts_destroy(struct store *store)
{
	struct store_account *list;
	size_t in_use;

	pthread_mutex_lock(&store->accounts_lock);
	store->janitor_quit = 1;
	pthread_cond_signal(&store->janitor_cond);
	pthread_mutex_unlock(&store->accounts_lock);
	pthread_join(store->janitor, NULL);
	pthread_cond_destroy(&store->janitor_cond);
	pthread_mutex_lock(&store->accounts_lock);
	in_use = store->naccounts - store->idle.n;
	list = cache_trim(store, 0, 0);
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
	list = cache_trim(store, store->cache_max, store->held_max);
	pthread_mutex_unlock(&store->accounts_lock);
	accounts_destroy(store, list);
}

void
store_set_held_cache(struct store *store, size_t max)
{
	struct store_account *list;

	pthread_mutex_lock(&store->accounts_lock);
	store->held_max = max;
	list = cache_trim(store, store->cache_max, store->held_max);
	pthread_mutex_unlock(&store->accounts_lock);
	accounts_destroy(store, list);
}

void
store_account_cache_count(struct store *store, size_t *open_r, size_t *idle_r)
{
	pthread_mutex_lock(&store->accounts_lock);
	*open_r = store->naccounts - store->ndormant;
	*idle_r = store->idle.n;
	pthread_mutex_unlock(&store->accounts_lock);
}

size_t
store_account_parked_count(struct store *store)
{
	struct store_account *acct;
	size_t n = 0;

	pthread_mutex_lock(&store->accounts_lock);
	for (acct = store->idle.head; acct != NULL; acct = acct->idle_next)
		n += acct->parked > 0;
	pthread_mutex_unlock(&store->accounts_lock);
	return n;
}

void
store_account_held_count(struct store *store, size_t *quiet_r, size_t *dormant_r)
{
	pthread_mutex_lock(&store->accounts_lock);
	*quiet_r = store->quiet.n;
	*dormant_r = store->ndormant;
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

/* Pins a referenced account that is neither opening nor closing, opening
 * its index again if it is dormant. Called with the table lock held,
 * which it may drop meanwhile; 0 or -1 (not pinned). */
static int
account_pin(struct store *store, struct store_account *acct, const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	if (acct->pins++ == 0 && acct->lru != NULL)
		lru_unlink(acct);
	if (acct->be != NULL)
		return 0;
	/* Dormant: opened again outside the table lock; others wait. */
	acct->opening = 1;
	store->ndormant--;
	pthread_mutex_unlock(&store->accounts_lock);
	rc = store->ops->account_open(store->be, acct->id, &be, error_r);
	pthread_mutex_lock(&store->accounts_lock);
	acct->opening = 0;
	if (rc < 0) {
		acct->pins--;
		store->ndormant++;
	} else
		acct->be = be;
	pthread_cond_broadcast(&store->accounts_cond);
	return rc;
}

/* Drops a pin; an account left unused goes into its list (idle ones are
 * trimmed later, by the janitor). Called with the table lock held, returns without it. */
static void
account_unpin(struct store *store, struct store_account *acct)
{
	struct store_account *list;

	if (--acct->pins > 0) {
		pthread_mutex_unlock(&store->accounts_lock);
		return;
	}
	if (acct->refs == 0) {
		account_unreferenced(store, acct);
		return;
	}
	lru_push(&store->quiet, acct);
	list = cache_trim(store, store->cache_max, store->held_max);
	pthread_mutex_unlock(&store->accounts_lock);
	accounts_destroy(store, list);
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
		lru_unlink(acct);
		if (store->ops->account_valid(acct->be))
			break;
		/* Its index changed under it: closed, then opened afresh. */
		acct->closing = 1;
		acct->idle_next = NULL;
		pthread_mutex_unlock(&store->accounts_lock);
		accounts_destroy(store, acct);
		pthread_mutex_lock(&store->accounts_lock);
	}
	list = cache_trim(store, store->cache_max, store->held_max);
	if (acct != NULL) {
		acct->refs++;
		if (account_pin(store, acct, error_r) < 0) {
			/* Still held by whoever held it before. */
			acct->refs--;
			pthread_mutex_unlock(&store->accounts_lock);
			accounts_destroy(store, list);
			return -1;
		}
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
	acct->pins = 1;
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
	struct store_account *acct = *acctp;
	struct store *store;

	if (acct == NULL)
		return;
	*acctp = NULL;
	store = acct->store;
	pthread_mutex_lock(&store->accounts_lock);
	acct->refs--;
	account_unpin(store, acct);
}

struct store_account *
store_account_hold(struct store_account *acct)
{
	struct store *store = acct->store;

	pthread_mutex_lock(&store->accounts_lock);
	acct->refs++;
	pthread_mutex_unlock(&store->accounts_lock);
	return acct;
}

struct store_account *
store_account_find_held(struct store *store, int64_t account_id)
{
	struct store_account *acct;

	pthread_mutex_lock(&store->accounts_lock);
	if ((acct = table_find(store, account_id)) != NULL && acct->refs > 0)
		acct->refs++;
	else
		acct = NULL;
	pthread_mutex_unlock(&store->accounts_lock);
	return acct;
}

void
store_account_release(struct store_account **acctp)
{
	struct store_account *acct = *acctp;
	struct store *store;

	if (acct == NULL)
		return;
	*acctp = NULL;
	store = acct->store;
	pthread_mutex_lock(&store->accounts_lock);
	if (--acct->refs > 0 || acct->pins > 0 || acct->opening || acct->closing) {
		/* Still referenced or in use, or whoever closes it frees it. */
		pthread_mutex_unlock(&store->accounts_lock);
		return;
	}
	if (acct->be == NULL) {
		/* Dormant: nothing to close. */
		store->ndormant--;
		table_remove(store, acct);
		pthread_mutex_unlock(&store->accounts_lock);
		account_free(acct);
		return;
	}
	lru_unlink(acct);
	account_unreferenced(store, acct);
}

void
store_account_rest(struct store_account *acct)
{
	struct store *store = acct->store;

	pthread_mutex_lock(&store->accounts_lock);
	if (acct->lru == &store->quiet) {
		lru_unlink(acct);
		lru_push_rested(&store->quiet, acct, STORE_HELD_GRACE_MS);
	}
	pthread_mutex_unlock(&store->accounts_lock);
}

struct store_backend_account *
store_account_use(struct store_account *acct, const char **error_r)
{
	struct store *store = acct->store;
	struct store_backend_account *be = NULL;

	pthread_mutex_lock(&store->accounts_lock);
	while (acct->opening || acct->closing)
		pthread_cond_wait(&store->accounts_cond, &store->accounts_lock);
	if (account_pin(store, acct, error_r) == 0)
		be = acct->be;
	pthread_mutex_unlock(&store->accounts_lock);
	return be;
}

void
store_account_done(struct store_account *acct)
{
	struct store *store = acct->store;

	pthread_mutex_lock(&store->accounts_lock);
	account_unpin(store, acct);
}

int
store_account_pin(struct store_account *acct, const char **error_r)
{
	return store_account_use(acct, error_r) != NULL ? 0 : -1;
}

void
store_account_unpin(struct store_account *acct)
{
	store_account_done(acct);
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
	struct store_backend_account *be;
	int rc;

	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->account_usage(be, usage, error_r);
	store_account_done(acct);
	return rc;
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
		lru_unlink(acct);
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
