/*
 * What store.c and store_writer.c share. Backends use store_backend.h.
 */
#ifndef PETREL_STORE_STORE_INTERNAL_H
#define PETREL_STORE_STORE_INTERNAL_H

#include <pthread.h>

#include "store/store.h"
#include "store/store_backend.h"

#define STORE_SEARCH_NEEDLE_MAX 1024

struct store {
	const struct store_backend_ops *ops;
	struct store_backend *be;
	pthread_mutex_t accounts_lock;
	pthread_cond_t accounts_cond;     /* an account finished opening */
	struct store_account *accounts;   /* open accounts, refcounted */
	/* The group-commit queue (store_writer.c). */
	pthread_mutex_t commit_lock;
	pthread_cond_t commit_cond;
	struct store_commit *pending, **pending_tail;
	size_t npending;
	int leading;                      /* a leader is committing a batch */
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

struct store_account {
	struct store *store;
	int64_t id;
	unsigned refs;             /* under store->accounts_lock */
	int opening;               /* likewise: be not ready yet */
	struct store_backend_account *be;
	pthread_mutex_t lock;      /* quota, watches */
	pthread_cond_t watch_done;
	struct store_quota quota;
	struct store_watch *watches;
	struct store_account *next;
};

void store_commit_queue_init(struct store *store);
void store_commit_queue_destroy(struct store *store);

/* Calls the watchers of mailbox_id and the account-wide ones (-1: only the
 * account-wide ones). Call with no lock held. */
void store_notify(struct store_account *acct, int64_t mailbox_id);

void store_message_clear(struct store_message *msg);
int store_keywords_valid(const char *const *keywords, const char **error_r);

#endif
