/*
 * SELECT's cache of big mailboxes' listings.
 *
 * Reading a big mailbox's messages from the store is most of what a SELECT
 * costs (10,000 rows: about 2 ms of CPU), and clients select the same
 * unchanged mailbox over and over: each device of a user, each reconnect.
 * A listing is kept as a view (imap_view: UIDs, flags, keyword sets,
 * MODSEQs) of one exact state of its mailbox, named by the account, the
 * mailbox's id, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and its message, unseen
 * and deleted counts. The store raises HIGHESTMODSEQ in the transaction of
 * every change to a mailbox, so a state names one content; a listing is
 * cached only when the state read before it and after it are the same
 * (nothing changed while it was read), and used only for that state.
 *
 * Process-wide (SELECT jobs of every loop run on the worker pool), under a
 * mutex; a listing never changes once made and is shared by reference.
 * Bounded: mailboxes of IMAP_LISTING_MIN messages or more, at most
 * IMAP_LISTING_SLOTS of them and IMAP_LISTING_TOTAL messages in all (16
 * bytes each), the least recently used going first.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"

#define IMAP_LISTING_SLOTS 32
#define IMAP_LISTING_TOTAL 500000

struct imap_listing {
	unsigned refs;                  /* under imap_listing_lock */
	int64_t account_id;
	struct store_mailbox state;     /* name NULL */
	uint64_t used;                  /* imap_listing_clock when last used */
	struct imap_view *view;
};

static pthread_mutex_t imap_listing_lock = PTHREAD_MUTEX_INITIALIZER;
static struct imap_listing *imap_listing_slot[IMAP_LISTING_SLOTS];
static size_t imap_listing_total;       /* messages in the slots */
static uint64_t imap_listing_clock;

int
imap_listing_same(const struct store_mailbox *a, const struct store_mailbox *b)
{
	return a->id == b->id && a->uidvalidity == b->uidvalidity &&
	    a->uidnext == b->uidnext && a->highestmodseq == b->highestmodseq &&
	    a->messages == b->messages && a->unseen == b->unseen && a->deleted == b->deleted;
}

/* Under the lock. */
static void
imap_listing_unref(struct imap_listing *l)
{
	if (--l->refs > 0)
		return;
	imap_view_free(&l->view);
	free(l);
}

/* Under the lock: takes slot i out of the cache. */
static void
imap_listing_drop(size_t i)
{
	struct imap_listing *l = imap_listing_slot[i];

	imap_listing_slot[i] = NULL;
	imap_listing_total -= l->view->count;
	imap_listing_unref(l);
}

/* Under the lock: a free slot if count more messages fit, else
 * IMAP_LISTING_SLOTS. */
static size_t
imap_listing_room(size_t count)
{
	size_t i;

	if (imap_listing_total + count > IMAP_LISTING_TOTAL)
		return IMAP_LISTING_SLOTS;
	for (i = 0; i < IMAP_LISTING_SLOTS; i++) {
		if (imap_listing_slot[i] == NULL)
			return i;
	}
	return IMAP_LISTING_SLOTS;
}

/* Under the lock, with the cache not empty: the least recently used slot. */
static size_t
imap_listing_oldest(void)
{
	size_t i, oldest = IMAP_LISTING_SLOTS;

	for (i = 0; i < IMAP_LISTING_SLOTS; i++) {
		if (imap_listing_slot[i] != NULL && (oldest == IMAP_LISTING_SLOTS ||
		    imap_listing_slot[i]->used < imap_listing_slot[oldest]->used))
			oldest = i;
	}
	return oldest;
}

const struct imap_view *
imap_listing_view(const struct imap_listing *l)
{
	return l->view;
}

struct imap_listing *
imap_listing_get(int64_t account_id, const struct store_mailbox *state)
{
	struct imap_listing *l = NULL;
	size_t i;

	pthread_mutex_lock(&imap_listing_lock);
	for (i = 0; i < IMAP_LISTING_SLOTS; i++) {
		struct imap_listing *c = imap_listing_slot[i];

		if (c != NULL && c->account_id == account_id && imap_listing_same(&c->state, state)) {
			l = c;
			l->refs++;
			l->used = ++imap_listing_clock;
			break;
		}
	}
	pthread_mutex_unlock(&imap_listing_lock);
	return l;
}

struct imap_listing *
imap_listing_put(int64_t account_id, const struct store_mailbox *state,
    const struct store_message *msgs, size_t n)
{
	struct imap_listing *l = xcalloc(1, sizeof(*l));
	size_t i, slot;
	int newer = 0;

	l->refs = 2;                    /* the cache's and the caller's */
	l->account_id = account_id;
	l->state = *state;
	l->state.name = NULL;
	l->view = imap_view_new(state, 0);
	imap_view_load(l->view, msgs, n);
	pthread_mutex_lock(&imap_listing_lock);
	/* One state per mailbox: an older one is of no more use; if a newer
	 * one is there (a SELECT that read later finished first), it stays. */
	for (i = 0; i < IMAP_LISTING_SLOTS; i++) {
		struct imap_listing *c = imap_listing_slot[i];

		if (c == NULL || c->account_id != account_id || c->state.id != state->id)
			continue;
		if (c->state.highestmodseq > state->highestmodseq)
			newer = 1;
		else
			imap_listing_drop(i);
	}
	if (!newer && l->view->count <= IMAP_LISTING_TOTAL) {
		while ((slot = imap_listing_room(l->view->count)) == IMAP_LISTING_SLOTS)
			imap_listing_drop(imap_listing_oldest());
		l->used = ++imap_listing_clock;
		imap_listing_slot[slot] = l;
		imap_listing_total += l->view->count;
	} else {
		l->refs--;
	}
	pthread_mutex_unlock(&imap_listing_lock);
	return l;
}

void
imap_listing_release(struct imap_listing **lp)
{
	if (*lp == NULL)
		return;
	pthread_mutex_lock(&imap_listing_lock);
	imap_listing_unref(*lp);
	pthread_mutex_unlock(&imap_listing_lock);
	*lp = NULL;
}
