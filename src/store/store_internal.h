/*
 * What store.c and store_writer.c share. Backends use store_backend.h.
 */
#ifndef PETREL_STORE_STORE_INTERNAL_H
#define PETREL_STORE_STORE_INTERNAL_H

#include <pthread.h>

#include "store/store.h"
#include "store/store_backend.h"

#define STORE_SEARCH_NEEDLE_MAX 1024

struct store_account;

/* A list of accounts, most recently used first. */
struct store_lru {
	struct store_account *head, *tail;
	size_t n;
};

struct store_others;

struct store {
	const struct store_backend_ops *ops;
	struct store_backend *be;
	pthread_mutex_t accounts_lock;
	pthread_cond_t accounts_cond;     /* an account finished opening or closing */
	/* Open accounts (in use, idle, opening, closing), a hash table by id
	 * with chains through hnext. */
	struct store_account **buckets;
	unsigned bucket_bits;
	size_t naccounts;
	/* Accounts whose index is open but unused (no pin), most recently
	 * used first: idle ones (no reference at all) and quiet ones (held,
	 * store_account_hold). */
	struct store_lru idle, quiet;
	size_t cache_max;          /* idle accounts kept */
	size_t held_max;           /* quiet accounts whose index stays open */
	uint64_t cache_idle_ms;
	size_t ndormant;           /* held accounts with their index closed */
	uint64_t nclosed;          /* indexes closed so far */
	/* The thread that trims the lists every second (store_account.c). */
	pthread_t janitor;
	pthread_cond_t janitor_cond;
	int janitor_quit;
	/* The group-commit queue (store_writer.c). */
	pthread_mutex_t commit_lock;
	struct store_commit *pending, **pending_tail;
	struct store_commit *inflight;    /* in batches being committed */
	struct store_others *others;      /* store_others.c, or NULL */
};

struct store_watch {
	struct store_account *acct;
	int64_t mailbox_id;
	store_watch_fn *fn;
	void *ctx;
	unsigned busy;             /* callbacks running */
	int removed;
	struct store_watch *prev, *next;
};

/* refs, pins, opening, closing, be, idle_since and the links are under
 * store->accounts_lock. An account that is neither opening nor closing and
 * has no pin is, when its index is open, in the idle list (no reference)
 * or the quiet list (held); with its index closed it is dormant (held:
 * refs > 0, be NULL, in no list). */
struct store_account {
	struct store *store;
	int64_t id;
	unsigned refs;             /* opens, holds and watches */
	unsigned pins;             /* opens and running calls: be must stay open */
	int opening;               /* be not ready yet */
	int closing;               /* be being trimmed or closed: not usable */
	int parked;                /* idle and trimmed (-1: trimming failed) */
	uint64_t idle_since;       /* ms, monotonic: when it went into its list */
	struct store_backend_account *be;   /* NULL: dormant */
	pthread_mutex_t lock;      /* quota, watches */
	pthread_cond_t watch_done;
	struct store_quota quota;
	struct store_watch *watches;
	struct store_account *hnext;
	struct store_lru *lru;     /* the list it is in: idle, quiet or none */
	struct store_account *idle_prev, *idle_next;   /* idle_next: also the
	                                                  list of ones to close */
};

/* The account table (store_account.c): set up, and closes every account
 * (still-referenced ones are logged and left). */
void store_accounts_init(struct store *store);
void store_accounts_destroy(struct store *store);
/* Every store call on an account runs between these: store_account_use
 * pins it (reopening its index if it was closed; waits while another
 * thread opens or closes it) and returns its backend account, or NULL
 * with the error set; store_account_done unpins it. */
struct store_backend_account *store_account_use(struct store_account *acct,
    const char **error_r);
void store_account_done(struct store_account *acct);

/* The account with that id if something holds it (a session, a watch),
 * with one more reference (store_account_release it); else NULL. */
struct store_account *store_account_find_held(struct store *store, int64_t account_id);

/* Milliseconds of a coarse monotonic clock (store_account.c). */
uint64_t store_now_ms(void);

/* Changes of other processes (store_others.c): marks an account changed by
 * this process (for store_signal_others), and stops everything at close. */
void store_others_changed(struct store *store, int64_t account_id);
void store_others_close(struct store *store);
/* Calls every watch of the account, whatever its mailbox. */
void store_notify_all(struct store *store, int64_t account_id);

void store_commit_queue_init(struct store *store);
void store_commit_queue_destroy(struct store *store);

/* Calls the watchers of mailbox_id and the account-wide ones (-1: only the
 * account-wide ones). Call with no lock held. */
void store_notify(struct store_account *acct, int64_t mailbox_id);

void store_message_clear(struct store_message *msg);
int store_keywords_valid(const char *const *keywords, const char **error_r);

#endif
