/*
 * The store's public functions: argument checks, change notifications and
 * the dispatch to the backend. Accounts (and the cache of idle ones) are
 * in store_account.c, writers and the group-commit queue in
 * store_writer.c.
 */
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_backend.h"
#include "store/store_internal.h"

#define STORE_ERROR_SIZE 512
#define STORE_UIDS_MAX (16u * 1024 * 1024)   /* UIDs in one call */

static _Thread_local char store_errbuf[STORE_ERROR_SIZE];
static _Thread_local enum store_error store_errcode;

int
store_fail(enum store_error code, const char **error_r, const char *fmt, ...)
{
	char tmp[STORE_ERROR_SIZE];
	va_list ap;

	/* Through tmp: an argument may point into store_errbuf. */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(store_errbuf, tmp, sizeof(tmp));
	store_errcode = code;
	if (error_r != NULL)
		*error_r = store_errbuf;
	return -1;
}

int
store_fail_temp(const char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	return store_fail(STORE_ERR_TEMP, error_r,
	    "temporary failure of the mail store, try again later");
}

void
store_set_error_code(enum store_error code)
{
	store_errcode = code;
}

enum store_error
store_error_code(void)
{
	return store_errcode;
}

/* --- the store ---------------------------------------------------------- */

int
store_open(const char *data_dir, struct store **store_r, const char **error_r)
{
	struct store *store = xcalloc(1, sizeof(*store));

	store->ops = &store_sqlite_ops;
	if (store->ops->open(data_dir, &store->be, error_r) < 0) {
		free(store);
		return -1;
	}
	store_accounts_init(store);
	store_commit_queue_init(store);
	*store_r = store;
	return 0;
}

void
store_close(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;
	store_others_close(store);
	store_accounts_destroy(store);
	store->ops->close(store->be);
	store_commit_queue_destroy(store);
	free(store);
	*storep = NULL;
}

void
store_set_sync_mode(struct store *store, enum store_sync_mode mode)
{
	store->ops->set_sync_mode(store->be, mode);
}

void
store_set_fsync(struct store *store, int (*fn)(int fd))
{
	store->ops->set_fsync(store->be, fn);
}

void
store_flush(struct store *store)
{
	store->ops->flush(store->be);
}

void
store_sweep_tmp(struct store *store, int64_t now)
{
	store->ops->sweep_tmp(store->be, now);
}

/* --- notifications ------------------------------------------------------ */

struct store_watch *
store_watch_add(struct store_account *acct, int64_t mailbox_id, store_watch_fn *fn,
    void *ctx)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));
	struct store *store = acct->store;

	/* A watch holds its account (store_account_hold), not its index. */
	pthread_mutex_lock(&store->accounts_lock);
	acct->refs++;
	pthread_mutex_unlock(&store->accounts_lock);
	w->acct = acct;
	w->mailbox_id = mailbox_id;
	w->fn = fn;
	w->ctx = ctx;
	pthread_mutex_lock(&acct->lock);
	w->next = acct->watches;
	if (w->next != NULL)
		w->next->prev = w;
	acct->watches = w;
	pthread_mutex_unlock(&acct->lock);
	return w;
}

void
store_watch_remove(struct store_watch **watchp)
{
	struct store_watch *w = *watchp;
	struct store_account *acct;

	if (w == NULL)
		return;
	*watchp = NULL;
	acct = w->acct;
	pthread_mutex_lock(&acct->lock);
	w->removed = 1;
	while (w->busy > 0)
		pthread_cond_wait(&acct->watch_done, &acct->lock);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		acct->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&acct->lock);
	free(w);
	store_account_release(&acct);
}

/* Calls the watchers of the mailbox (and the account-wide ones). The list
 * lock is dropped around each callback; a watch being called stays linked
 * (store_watch_remove waits for busy == 0), so its next pointer is valid
 * once the lock is taken again. */
/* Calls the watches of mailbox_id and the account-wide ones (all: every
 * watch of the account). Call with no lock held. */
static void
watches_call(struct store_account *acct, int64_t mailbox_id, int all)
{
	struct store_watch *w;

	pthread_mutex_lock(&acct->lock);
	for (w = acct->watches; w != NULL; w = w->next) {
		if (w->removed ||
		    (!all && w->mailbox_id != 0 && w->mailbox_id != mailbox_id))
			continue;
		w->busy++;
		pthread_mutex_unlock(&acct->lock);
		w->fn(w->ctx);
		pthread_mutex_lock(&acct->lock);
		if (--w->busy == 0 && w->removed)
			pthread_cond_broadcast(&acct->watch_done);
	}
	pthread_mutex_unlock(&acct->lock);
}

void
store_notify(struct store_account *acct, int64_t mailbox_id)
{
	store_others_changed(acct->store, acct->id);
	watches_call(acct, mailbox_id, 0);
}

void
store_notify_all(struct store *store, int64_t account_id)
{
	struct store_account *acct;

	if ((acct = store_account_find_held(store, account_id)) == NULL)
		return;
	watches_call(acct, 0, 1);
	store_account_release(&acct);
}

/* --- mailboxes ---------------------------------------------------------- */

int
store_mailbox_list(struct store_account *acct, struct store_mailbox **list_r,
    size_t *count_r, const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->mailbox_list(be, list_r, count_r, error_r);
	store_account_done(acct);
	return rc;
}

int
store_mailbox_get(struct store_account *acct, const char *name,
    struct store_mailbox *mbox_r, const char **error_r)
{
	struct store_backend_account *be;
	char *norm;
	int rc;

	if ((norm = store_name_normalize(name, error_r)) == NULL)
		return -1;
	if ((be = store_account_use(acct, error_r)) == NULL)
		rc = -1;
	else {
		rc = acct->store->ops->mailbox_get(be, norm, 0, mbox_r, error_r);
		store_account_done(acct);
	}
	free(norm);
	return rc;
}

int
store_mailbox_get_by_id(struct store_account *acct, int64_t id,
    struct store_mailbox *mbox_r, const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	if (id <= 0)
		return 0;
	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->mailbox_get(be, NULL, id, mbox_r, error_r);
	store_account_done(acct);
	return rc;
}

#define STORE_SPECIAL_MASK (STORE_SPECIAL_SENT | STORE_SPECIAL_DRAFTS | \
	STORE_SPECIAL_TRASH | STORE_SPECIAL_JUNK | STORE_SPECIAL_ARCHIVE | \
	STORE_SPECIAL_ALL | STORE_SPECIAL_FLAGGED)

int
store_mailbox_create(struct store_account *acct, const char *name, unsigned special_use,
    int64_t *id_r, const char **error_r)
{
	struct store_backend_account *be;
	char *norm;
	int64_t id = 0;
	int rc;

	if ((special_use & ~STORE_SPECIAL_MASK) != 0)
		return store_fail(STORE_ERR_INVALID, error_r, "unknown special-use role");
	if ((norm = store_name_normalize(name, error_r)) == NULL)
		return -1;
	if ((be = store_account_use(acct, error_r)) == NULL)
		rc = -1;
	else {
		rc = acct->store->ops->mailbox_create(be, norm, special_use, &id, error_r);
		store_account_done(acct);
	}
	free(norm);
	if (rc == 0 && id_r != NULL)
		*id_r = id;
	if (rc == 0)
		store_notify(acct, id);
	return rc;
}

int
store_mailbox_rename(struct store_account *acct, const char *from, const char *to,
    const char **error_r)
{
	struct store_backend_account *be;
	char *nfrom, *nto;
	int64_t changed[2] = { 0, 0 };
	int rc;

	if ((nfrom = store_name_normalize(from, error_r)) == NULL)
		return -1;
	if ((nto = store_name_normalize(to, error_r)) == NULL) {
		free(nfrom);
		return -1;
	}
	if ((be = store_account_use(acct, error_r)) == NULL)
		rc = -1;
	else {
		rc = acct->store->ops->mailbox_rename(be, nfrom, nto, changed, error_r);
		store_account_done(acct);
	}
	free(nfrom);
	free(nto);
	if (rc == 0) {
		if (changed[0] != 0)
			store_notify(acct, changed[0]);
		if (changed[1] != 0)
			store_notify(acct, changed[1]);
		if (changed[0] == 0 && changed[1] == 0)
			store_notify(acct, -1);   /* account-wide watchers only */
	}
	return rc;
}

int
store_mailbox_delete(struct store_account *acct, const char *name, const char **error_r)
{
	struct store_backend_account *be;
	char *norm;
	int64_t id = 0;
	int rc;

	if ((norm = store_name_normalize(name, error_r)) == NULL)
		return -1;
	if ((be = store_account_use(acct, error_r)) == NULL)
		rc = -1;
	else {
		rc = acct->store->ops->mailbox_delete(be, norm, &id, error_r);
		store_account_done(acct);
	}
	free(norm);
	if (rc == 0)
		store_notify(acct, id);
	return rc;
}

int
store_mailbox_subscribe(struct store_account *acct, const char *name, int subscribed,
    const char **error_r)
{
	struct store_backend_account *be;
	char *norm;
	int rc;

	if ((norm = store_name_normalize(name, error_r)) == NULL)
		return -1;
	if ((be = store_account_use(acct, error_r)) == NULL)
		rc = -1;
	else {
		rc = acct->store->ops->mailbox_subscribe(be, norm, subscribed != 0, error_r);
		store_account_done(acct);
	}
	free(norm);
	return rc;
}

int
store_mailbox_set_uidvalidity(struct store_account *acct, int64_t mailbox_id,
    uint32_t uidvalidity, uint32_t uidnext_min, const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	if (mailbox_id <= 0)
		return store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
	if (uidvalidity == 0)
		return store_fail(STORE_ERR_INVALID, error_r, "UIDVALIDITY must not be 0");
	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->mailbox_set_uidvalidity(be, mailbox_id, uidvalidity,
	    uidnext_min, error_r);
	store_account_done(acct);
	if (rc < 0)
		return -1;
	store_notify(acct, mailbox_id);
	return 0;
}

int
store_mailbox_raise_uidnext(struct store_account *acct, int64_t mailbox_id, uint32_t uidnext,
    const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	if (mailbox_id <= 0)
		return store_fail(STORE_ERR_NOT_FOUND, error_r, "no such mailbox");
	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->mailbox_raise_uidnext(be, mailbox_id, uidnext,
	    error_r);
	store_account_done(acct);
	if (rc < 0)
		return -1;
	store_notify(acct, mailbox_id);
	return 0;
}

int
store_subscriptions(struct store_account *acct, char ***names_r, size_t *count_r,
    const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->subscriptions(be, names_r, count_r, error_r);
	store_account_done(acct);
	return rc;
}

void
store_subscriptions_free(char ***namesp, size_t count)
{
	char **names = *namesp;
	size_t i;

	if (names == NULL)
		return;
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
	*namesp = NULL;
}

void
store_mailbox_clear(struct store_mailbox *mbox)
{
	if (mbox == NULL)
		return;
	free(mbox->name);
	memset(mbox, 0, sizeof(*mbox));
}

void
store_mailboxes_free(struct store_mailbox **listp, size_t count)
{
	struct store_mailbox *list = *listp;
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < count; i++)
		free(list[i].name);
	free(list);
	*listp = NULL;
}

/* --- messages ----------------------------------------------------------- */

static int
uids_valid(const uint32_t *uids, size_t nuids, const char **error_r)
{
	size_t i;

	if (nuids > STORE_UIDS_MAX)
		return store_fail(STORE_ERR_LIMIT, error_r, "too many messages at once");
	if (nuids > 0 && uids == NULL)
		return store_fail(STORE_ERR_INVALID, error_r, "no UIDs");
	for (i = 0; i < nuids; i++)
		if (uids[i] == 0)
			return store_fail(STORE_ERR_INVALID, error_r, "invalid UID 0");
	return 0;
}

int
store_message_list(struct store_account *acct, int64_t mailbox_id, uint32_t uid_first,
    uint32_t uid_last, struct store_message **msgs_r, size_t *count_r,
    const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	*msgs_r = NULL;
	*count_r = 0;
	if (uid_first > uid_last)
		return 0;
	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->message_list(be, mailbox_id, uid_first, uid_last,
	    msgs_r, count_r, error_r);
	store_account_done(acct);
	return rc;
}

void
store_message_clear(struct store_message *msg)
{
	char **kw;

	if (msg->keywords != NULL) {
		for (kw = msg->keywords; *kw != NULL; kw++)
			free(*kw);
		free(msg->keywords);
		msg->keywords = NULL;
	}
}

void
store_messages_free(struct store_message **msgsp, size_t count)
{
	struct store_message *msgs = *msgsp;
	size_t i;

	if (msgs == NULL)
		return;
	for (i = 0; i < count; i++)
		store_message_clear(&msgs[i]);
	free(msgs);
	*msgsp = NULL;
}

int
store_message_summary(struct store_account *acct, int64_t mailbox_id, uint32_t uid,
    struct mime_summary **summary_r, const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->message_summary(be, mailbox_id, uid, summary_r,
	    error_r);
	store_account_done(acct);
	return rc;
}

struct store_blob {
	const struct store_backend_ops *ops;
	struct store_backend_blob *bb;
	uint64_t size;
};

static int
blob_open(struct store_account *acct, int64_t mailbox_id, uint32_t uid, const char *guid,
    struct store_blob **blob_r, const char **error_r)
{
	struct store_backend_account *be;
	struct store_blob *blob;
	int rc;

	/* The blob is a file of its own: it needs no pin once open. */
	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	blob = xcalloc(1, sizeof(*blob));
	blob->ops = acct->store->ops;
	rc = blob->ops->blob_open(be, mailbox_id, uid, guid, &blob->bb, &blob->size, error_r);
	store_account_done(acct);
	if (rc < 0) {
		free(blob);
		return -1;
	}
	*blob_r = blob;
	return 0;
}

int
store_blob_open(struct store_account *acct, int64_t mailbox_id, uint32_t uid,
    struct store_blob **blob_r, const char **error_r)
{
	return blob_open(acct, mailbox_id, uid, NULL, blob_r, error_r);
}

int
store_blob_open_guid(struct store_account *acct, int64_t mailbox_id, uint32_t uid,
    const char *guid, struct store_blob **blob_r, const char **error_r)
{
	return blob_open(acct, mailbox_id, uid, guid, blob_r, error_r);
}

uint64_t
store_blob_size(const struct store_blob *blob)
{
	return blob->size;
}

ssize_t
store_blob_read(struct store_blob *blob, uint64_t offset, void *buf, size_t len)
{
	if (offset >= blob->size || len == 0)
		return 0;
	if (len > blob->size - offset)
		len = blob->size - offset;
	return blob->ops->blob_read(blob->bb, offset, buf, len);
}

void
store_blob_close(struct store_blob **blobp)
{
	struct store_blob *blob = *blobp;

	if (blob == NULL)
		return;
	blob->ops->blob_close(blob->bb);
	free(blob);
	*blobp = NULL;
}

int
store_keywords_valid(const char *const *keywords, const char **error_r)
{
	size_t i;

	if (keywords == NULL)
		return 0;
	for (i = 0; keywords[i] != NULL; i++) {
		if (i >= STORE_KEYWORDS_MAX)
			return store_fail(STORE_ERR_LIMIT, error_r, "too many keywords");
		if (!store_keyword_valid(keywords[i]))
			return store_fail(STORE_ERR_INVALID, error_r, "invalid keyword");
	}
	return 0;
}

#define STORE_FLAG_MASK (STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | \
	STORE_FLAG_DELETED | STORE_FLAG_DRAFT)

int
store_message_set_flags(struct store_account *acct, int64_t mailbox_id,
    const uint32_t *uids, size_t nuids, enum store_flag_mode mode, unsigned flags,
    const char *const *keywords, uint64_t unchangedsince,
    uint32_t **failed_r, size_t *nfailed_r, const char **error_r)
{
	struct store_backend_account *be;
	int changed = 0, rc;

	if (failed_r != NULL)
		*failed_r = NULL;
	if (nfailed_r != NULL)
		*nfailed_r = 0;
	if (mode != STORE_FLAGS_SET && mode != STORE_FLAGS_ADD && mode != STORE_FLAGS_REMOVE)
		return store_fail(STORE_ERR_INVALID, error_r, "invalid flag mode");
	if ((flags & ~STORE_FLAG_MASK) != 0)
		return store_fail(STORE_ERR_INVALID, error_r, "unknown flag");
	if (uids_valid(uids, nuids, error_r) < 0 || store_keywords_valid(keywords, error_r) < 0)
		return -1;
	if (nuids == 0)
		return 0;
	if ((be = store_account_use(acct, error_r)) == NULL)
		rc = -1;
	else {
		rc = acct->store->ops->message_set_flags(be, mailbox_id, uids, nuids, mode,
		    flags, keywords, unchangedsince, failed_r, nfailed_r, &changed, error_r);
		store_account_done(acct);
	}
	if (rc == 0 && changed)
		store_notify(acct, mailbox_id);
	return rc;
}

int
store_message_copy(struct store_account *acct, int64_t from_mailbox_id,
    const uint32_t *uids, size_t nuids, int64_t to_mailbox_id, int move,
    uint32_t **new_uids_r, uint32_t *uidvalidity_r, const char **error_r)
{
	struct store_backend_account *be;
	struct store_quota quota;
	int rc;

	if (new_uids_r != NULL)
		*new_uids_r = NULL;
	if (uids_valid(uids, nuids, error_r) < 0)
		return -1;
	if (move && from_mailbox_id == to_mailbox_id)
		return store_fail(STORE_ERR_INVALID, error_r,
		    "cannot move messages into their own mailbox");
	store_account_quota(acct, &quota);
	if ((be = store_account_use(acct, error_r)) == NULL)
		rc = -1;
	else {
		rc = acct->store->ops->message_copy(be, from_mailbox_id, uids, nuids,
		    to_mailbox_id, move != 0, &quota, new_uids_r, uidvalidity_r, error_r);
		store_account_done(acct);
	}
	if (rc == 0 && nuids > 0) {
		store_notify(acct, to_mailbox_id);
		if (move)
			store_notify(acct, from_mailbox_id);
	}
	return rc;
}

int
store_message_expunge(struct store_account *acct, int64_t mailbox_id,
    const uint32_t *uids, size_t nuids, const char **error_r)
{
	struct store_backend_account *be;
	int changed = 0, rc;

	if (uids_valid(uids, nuids, error_r) < 0)
		return -1;
	if (nuids == 0)
		return 0;
	if ((be = store_account_use(acct, error_r)) == NULL)
		rc = -1;
	else {
		rc = acct->store->ops->message_expunge(be, mailbox_id, uids, nuids, &changed,
		    error_r);
		store_account_done(acct);
	}
	if (rc == 0 && changed)
		store_notify(acct, mailbox_id);
	return rc;
}

int
store_changes_since(struct store_account *acct, int64_t mailbox_id, uint64_t modseq,
    struct store_changes *changes_r, const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	memset(changes_r, 0, sizeof(*changes_r));
	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->changes_since(be, mailbox_id, modseq, changes_r,
	    error_r);
	store_account_done(acct);
	return rc;
}

void
store_changes_clear(struct store_changes *changes)
{
	store_messages_free(&changes->changed, changes->nchanged);
	free(changes->expunged);
	memset(changes, 0, sizeof(*changes));
}

int
store_search_text(struct store_account *acct, int64_t mailbox_id, const char *needle,
    int body_only, uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	struct store_backend_account *be;
	int rc;

	*uids_r = NULL;
	*count_r = 0;
	if (needle == NULL)
		return store_fail(STORE_ERR_INVALID, error_r, "no search text");
	if (strlen(needle) > STORE_SEARCH_NEEDLE_MAX)
		return store_fail(STORE_ERR_LIMIT, error_r, "search text too long");
	if ((be = store_account_use(acct, error_r)) == NULL)
		return -1;
	rc = acct->store->ops->search_text(be, mailbox_id, needle, body_only != 0,
	    uids_r, count_r, error_r);
	store_account_done(acct);
	return rc;
}
