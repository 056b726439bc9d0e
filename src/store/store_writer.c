/*
 * Writers and the group commit.
 *
 * A writer buffers what it is given, feeds it to the streaming MIME parser
 * and hands it to the backend's temporary file. store_writer_commit then
 * joins the store's commit queue. A committer that finds a queued commit
 * whose accounts no batch in flight touches becomes a leader: it takes
 * that commit and every queued one for the same accounts and has the
 * backend commit them as one batch, with one fsync per touched directory
 * and one index commit per touched account. Batches of different accounts
 * run side by side; commits that arrive for an account while its batch is
 * committed queue up for its next one, so batches grow with the load and a
 * lone writer pays no waiting.
 */
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/mime.h"
#include "store/store_backend.h"
#include "store/store_internal.h"

#define STORE_WRITER_BUFFER (64 * 1024)

struct store_writer {
	struct store *store;
	struct store_backend_writer *bw;
	struct mime_parser *parser;
	struct buf pending;        /* not yet handed to the backend */
	uint64_t size;
	int failed;                /* a write failed: cannot be committed */
	int committed;             /* no more writes; commits may follow */
	int prepared;              /* the file is durable (first commit) */
	int64_t internaldate;      /* the file's, from the first commit */
	struct mime_summary *summary;
};

void
store_commit_queue_init(struct store *store)
{
	pthread_mutex_init(&store->commit_lock, NULL);
	store->pending = NULL;
	store->pending_tail = &store->pending;
	store->inflight = NULL;
}

void
store_commit_queue_destroy(struct store *store)
{
	pthread_mutex_destroy(&store->commit_lock);
}

int
store_writer_new(struct store *store, struct store_writer **w_r, const char **error_r)
{
	struct store_writer *w = xcalloc(1, sizeof(*w));

	if (store->ops->writer_new(store->be, &w->bw, error_r) < 0) {
		free(w);
		return -1;
	}
	w->store = store;
	w->parser = mime_parser_new();
	*w_r = w;
	return 0;
}

static int
writer_flush(struct store_writer *w, const char **error_r)
{
	if (w->pending.len == 0)
		return 0;
	if (w->store->ops->writer_write(w->bw, w->pending.data, w->pending.len,
	    error_r) < 0) {
		w->failed = 1;
		return -1;
	}
	buf_reset(&w->pending);
	return 0;
}

int
store_writer_write(struct store_writer *w, const void *data, size_t len,
    const char **error_r)
{
	if (w->committed)
		return store_fail(STORE_ERR_INVALID, error_r, "message already committed");
	if (w->failed)
		return store_fail(STORE_ERR_INVALID, error_r, "message write failed earlier");
	if (len > STORE_MESSAGE_MAX - w->size) {
		w->failed = 1;
		return store_fail(STORE_ERR_LIMIT, error_r, "message too big");
	}
	if (len == 0)
		return 0;
	mime_parser_feed(w->parser, data, len);
	w->size += len;
	if (w->pending.len + len <= STORE_WRITER_BUFFER) {
		buf_append(&w->pending, data, len);
		if (w->pending.len < STORE_WRITER_BUFFER)
			return 0;
		return writer_flush(w, error_r);
	}
	if (writer_flush(w, error_r) < 0)
		return -1;
	if (w->store->ops->writer_write(w->bw, data, len, error_r) < 0) {
		w->failed = 1;
		return -1;
	}
	return 0;
}

uint64_t
store_writer_size(const struct store_writer *w)
{
	return w->size;
}

void
store_writer_free(struct store_writer **wp)
{
	struct store_writer *w = *wp;

	if (w == NULL)
		return;
	w->store->ops->writer_free(w->bw);
	if (w->parser != NULL)
		mime_parser_free(&w->parser);
	mime_summary_free(&w->summary);
	buf_free(&w->pending);
	free(w);
	*wp = NULL;
}

/* Wakes the watchers of every mailbox a batch stored into, each once. */
static void
batch_notify(struct store_commit **batch, size_t n)
{
	struct {
		struct store_account *acct;
		int64_t mailbox_id;
	} *seen = NULL;
	size_t nseen = 0, i, j, k;

	for (i = 0; i < n; i++) {
		for (j = 0; j < batch[i]->n; j++) {
			struct store_target *t = &batch[i]->targets[j];

			if (t->error != STORE_OK)
				continue;
			for (k = 0; k < nseen; k++)
				if (seen[k].acct == t->acct &&
				    seen[k].mailbox_id == batch[i]->mailbox_ids[j])
					break;
			if (k < nseen)
				continue;
			seen = xreallocarray(seen, nseen + 1, sizeof(*seen));
			seen[nseen].acct = t->acct;
			seen[nseen].mailbox_id = batch[i]->mailbox_ids[j];
			nseen++;
			store_notify(t->acct, batch[i]->mailbox_ids[j]);
		}
	}
	free(seen);
}

/* 1 when req stores into acct. */
static int
req_has_account(const struct store_commit *req, const struct store_account *acct)
{
	size_t j;

	for (j = 0; j < req->n; j++)
		if (req->targets[j].error == STORE_OK && req->targets[j].acct == acct)
			return 1;
	return 0;
}

/* 1 when a batch being committed stores into one of req's accounts. */
static int
req_busy(const struct store *store, const struct store_commit *req)
{
	const struct store_commit *c;
	size_t j;

	for (c = store->inflight; c != NULL; c = c->next)
		for (j = 0; j < req->n; j++)
			if (req->targets[j].error == STORE_OK &&
			    req_has_account(c, req->targets[j].acct))
				return 1;
	return 0;
}

/* 1 when every account req stores into is one of first's. */
static int
req_within(const struct store_commit *req, const struct store_commit *first)
{
	size_t j;

	for (j = 0; j < req->n; j++)
		if (req->targets[j].error == STORE_OK &&
		    !req_has_account(first, req->targets[j].acct))
			return 0;
	return 1;
}

/* Takes a batch off the queue, under commit_lock: the first request none
 * of whose accounts is in a batch being committed, and every later one
 * that stores only into its accounts. They join the batches in flight.
 * Returns their number (0: nothing can start now). */
static size_t
batch_take(struct store *store, struct store_commit ***batch_r)
{
	struct store_commit **pp, *c, *first = NULL, **batch = NULL;
	size_t n = 0;

	for (pp = &store->pending; (c = *pp) != NULL;) {
		if (first == NULL ? req_busy(store, c) : !req_within(c, first)) {
			pp = &c->next;
			continue;
		}
		if (first == NULL)
			first = c;
		*pp = c->next;
		batch = xreallocarray(batch, n + 1, sizeof(*batch));
		batch[n++] = c;
	}
	store->pending_tail = pp;
	*batch_r = batch;
	for (size_t i = 0; i < n; i++) {
		batch[i]->next = store->inflight;
		store->inflight = batch[i];
	}
	return n;
}

/* Wakes the committer of the first queued commit that could start a batch
 * now and waits (one leading a batch takes more when it is done), under
 * commit_lock: it leads that batch. */
static void
wake_next_leader(struct store *store)
{
	struct store_commit *c;

	for (c = store->pending; c != NULL; c = c->next)
		if (c->waiting && !req_busy(store, c)) {
			pthread_cond_signal(c->wake);
			return;
		}
}

/* Queues the commit and returns once it is done. Any committer leads a
 * batch whenever one can start: batches of disjoint accounts are committed
 * side by side (their flushes overlap), while commits to an account that
 * is being committed queue up and go together in its next one. Each
 * committer waits on a condition of its own, woken when its commit is done
 * or when it should lead (a broadcast would wake every waiting worker
 * thread at each batch). */
static void
commit_run(struct store *store, struct store_commit *req)
{
	struct store_commit **batch, **pp;
	pthread_cond_t wake;
	size_t n, i;

	pthread_cond_init(&wake, NULL);
	req->wake = &wake;
	pthread_mutex_lock(&store->commit_lock);
	req->next = NULL;
	*store->pending_tail = req;
	store->pending_tail = &req->next;
	while (!req->done) {
		if ((n = batch_take(store, &batch)) == 0) {
			req->waiting = 1;
			pthread_cond_wait(&wake, &store->commit_lock);
			req->waiting = 0;
			continue;
		}
		/* Another batch, of other accounts, may start beside this one. */
		wake_next_leader(store);
		pthread_mutex_unlock(&store->commit_lock);

		store->ops->commit_batch(store->be, batch, n);
		/* Before the followers return: their accounts stay open. */
		batch_notify(batch, n);

		pthread_mutex_lock(&store->commit_lock);
		for (i = 0; i < n; i++) {
			for (pp = &store->inflight; *pp != batch[i]; pp = &(*pp)->next)
				;
			*pp = batch[i]->next;
			batch[i]->done = 1;
			if (batch[i] != req)
				pthread_cond_signal(batch[i]->wake);
		}
		free(batch);
		wake_next_leader(store);
	}
	pthread_mutex_unlock(&store->commit_lock);
	pthread_cond_destroy(&wake);
}

#define STORE_FLAG_MASK (STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | \
	STORE_FLAG_DELETED | STORE_FLAG_DRAFT)

/* Checks a target; sets its error and returns -1 when it cannot be stored. */
static int
target_check(struct store_writer *w, struct store_target *t, char **name_r)
{
	const char *error;

	*name_r = NULL;
	t->uidvalidity = 0;
	t->error = STORE_ERR_INVALID;
	if (t->uid == UINT32_MAX) {
		/* UIDNEXT would not fit in 32 bits. */
		t->error = STORE_ERR_LIMIT;
		return -1;
	}
	if (t->acct == NULL || t->acct->store != w->store)
		return -1;
	if ((t->flags & ~STORE_FLAG_MASK) != 0)
		return -1;
	if (store_keywords_valid(t->keywords, &error) < 0) {
		t->error = store_error_code();
		return -1;
	}
	if (t->mailbox_id <= 0) {
		if (t->mailbox_name == NULL)
			return -1;
		if ((*name_r = store_name_normalize(t->mailbox_name, &error)) == NULL)
			return -1;
	}
	t->error = STORE_OK;
	return 0;
}

int
store_writer_commit(struct store_writer *w, struct store_target *targets, size_t n,
    const char **error_r)
{
	struct store_commit req;
	struct mime_summary *summary;
	enum store_error first_error = STORE_OK;
	int64_t internaldate = 0;
	char *pinned;
	size_t i, valid = 0;
	int stored = 0, temp = 0;

	if (w->failed)
		return store_fail(STORE_ERR_INVALID, error_r, "message write failed earlier");
	if (!w->committed) {
		w->committed = 1;
		if (writer_flush(w, error_r) < 0) {
			w->failed = 1;
			return -1;
		}
		w->summary = mime_parser_finish(&w->parser);
		if (w->summary->truncated)
			log_info(NULL, "event=store-parse-truncated size=%llu",
			    (unsigned long long)w->size);
	}
	summary = w->summary;

	memset(&req, 0, sizeof(req));
	req.bw = w->bw;
	req.summary = summary;
	req.size = w->size;
	req.targets = targets;
	req.n = n;
	req.names = xcalloc(n + 1, sizeof(*req.names));
	req.mailbox_ids = xcalloc(n + 1, sizeof(*req.mailbox_ids));
	pinned = xcalloc(n + 1, sizeof(*pinned));
	for (i = 0; i < n; i++) {
		if (target_check(w, &targets[i], &req.names[i]) < 0)
			continue;
		/* Pinned for the commit: a held account's index may be closed
		 * (store_account_hold), and the batch needs it open. */
		if (store_account_use(targets[i].acct, error_r) == NULL) {
			targets[i].error = STORE_ERR_TEMP;
			continue;
		}
		pinned[i] = 1;
		valid++;
		if (internaldate == 0)
			internaldate = targets[i].internaldate;
	}
	if (w->prepared)
		internaldate = w->internaldate;
	else if (internaldate <= 0)
		internaldate = time(NULL);
	for (i = 0; i < n; i++)
		if (targets[i].internaldate <= 0)
			targets[i].internaldate = internaldate;

	if (valid == 0) {
		/* Nothing to write to. */
	} else if (!w->prepared &&
	    w->store->ops->writer_prepare(w->bw, internaldate, error_r) < 0) {
		w->failed = 1;
		for (i = 0; i < n; i++)
			if (targets[i].error == STORE_OK)
				targets[i].error = STORE_ERR_TEMP;
	} else {
		w->prepared = 1;
		w->internaldate = internaldate;
		commit_run(w->store, &req);
	}

	for (i = 0; i < n; i++) {
		if (targets[i].error != STORE_OK)
			targets[i].uid = 0;
		if (targets[i].error == STORE_OK)
			stored++;
		else if (targets[i].error == STORE_ERR_TEMP)
			temp = 1;
		else if (first_error == STORE_OK)
			first_error = targets[i].error;
	}
	for (i = 0; i < n; i++) {
		if (pinned[i])
			store_account_done(targets[i].acct);
		free(req.names[i]);
	}
	free(pinned);
	free(req.names);
	free(req.mailbox_ids);

	if (stored > 0 || n == 0)
		return stored;
	if (temp)
		return store_fail(STORE_ERR_TEMP, error_r,
		    "temporary failure of the mail store, try again later");
	store_fail(first_error, error_r, "%s",
	    first_error == STORE_ERR_QUOTA ? "over quota" :
	    first_error == STORE_ERR_NOT_FOUND ? "no such mailbox" :
	    first_error == STORE_ERR_LIMIT ? "limit exceeded" : "invalid target");
	return 0;
}
