#include "proto/pop3/pop3_maildrop.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "directory/directory.h"
#include "store/store.h"

/* --- the lock table ----------------------------------------------------- */

#define POP3_LOCK_BUCKETS 1024

struct pop3_lock {
	struct pop3_lock *next;
	int64_t account_id;
};

static pthread_mutex_t pop3_lock_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct pop3_lock *pop3_locks[POP3_LOCK_BUCKETS];

static struct pop3_lock **
pop3_lock_find(int64_t account_id)
{
	struct pop3_lock **lp;

	lp = &pop3_locks[(uint64_t)account_id % POP3_LOCK_BUCKETS];
	while (*lp != NULL && (*lp)->account_id != account_id)
		lp = &(*lp)->next;
	return lp;
}

/* 0 when taken, -1 when another session holds it. */
static int
pop3_lock_take(int64_t account_id)
{
	struct pop3_lock **lp, *l;
	int r = -1;

	pthread_mutex_lock(&pop3_lock_mutex);
	lp = pop3_lock_find(account_id);
	if (*lp == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->account_id = account_id;
		*lp = l;
		r = 0;
	}
	pthread_mutex_unlock(&pop3_lock_mutex);
	return r;
}

static void
pop3_lock_release(int64_t account_id)
{
	struct pop3_lock **lp, *l;

	pthread_mutex_lock(&pop3_lock_mutex);
	lp = pop3_lock_find(account_id);
	if ((l = *lp) != NULL) {
		*lp = l->next;
		free(l);
	}
	pthread_mutex_unlock(&pop3_lock_mutex);
}

void
pop3_maildrop_unlock(struct pop3_maildrop *md)
{
	if (md != NULL && md->locked) {
		pop3_lock_release(md->account_id);
		md->locked = 0;
	}
}

/* --- opening ------------------------------------------------------------ */

/* A store watch: runs on the committing thread, so it only counts. */
static void
pop3_maildrop_changed(void *ctx)
{
	struct pop3_maildrop *md = ctx;

	atomic_fetch_add(&md->changes, 1);
}

struct pop3_guid_ref {
	const char *guid;
	size_t i;
};

static int
pop3_guid_cmp(const void *a, const void *b)
{
	const struct pop3_guid_ref *x = a, *y = b;
	int r = strcmp(x->guid, y->guid);

	if (r != 0)
		return r;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Marks every message whose GUID an earlier message already has (IMAP COPY
 * within INBOX makes such twins): UIDL values must differ. */
static void
pop3_mark_duplicates(struct pop3_msg *msgs, size_t count)
{
	struct pop3_guid_ref *refs;
	size_t k;

	if (count < 2)
		return;
	refs = xreallocarray(NULL, count, sizeof(*refs));
	for (k = 0; k < count; k++) {
		refs[k].guid = msgs[k].guid;
		refs[k].i = k;
	}
	qsort(refs, count, sizeof(*refs), pop3_guid_cmp);
	for (k = 1; k < count; k++) {
		if (strcmp(refs[k - 1].guid, refs[k].guid) == 0)
			msgs[refs[k].i].dup_guid = 1;
	}
	free(refs);
}

enum pop3_maildrop_status
pop3_maildrop_open(struct store *store, struct directory *dir, int64_t account_id,
    const char *session_id, struct pop3_maildrop **md_r, const char **error_r)
{
	struct pop3_maildrop *md;
	struct directory_account account;
	struct store_quota quota;
	struct store_mailbox inbox;
	struct store_message *list = NULL;
	const char *error;
	size_t i, n = 0;
	int r;

	*md_r = NULL;
	if (pop3_lock_take(account_id) < 0) {
		*error_r = "Mailbox is locked by another POP3 session";
		return POP3_MAILDROP_IN_USE;
	}
	md = xcalloc(1, sizeof(*md));
	md->account_id = account_id;
	md->locked = 1;
	*error_r = "Cannot open the mailbox, try again later";

	r = directory_account_get_by_id(dir, account_id, &account, &error);
	if (r <= 0) {
		log_warn(session_id, "event=pop3-open-failed account=%lld reason=\"%s\"",
		    (long long)account_id, r == 0 ? "account is gone" : error);
		goto fail;
	}
	quota.bytes_limit = account.quota_bytes;
	quota.messages_limit = account.quota_messages;
	directory_account_clear(&account);
	if (store_account_open(store, account_id, &quota, &md->acct, &error) < 0) {
		log_warn(session_id, "event=pop3-open-failed account=%lld reason=\"%s\"",
		    (long long)account_id, error);
		goto fail;
	}
	r = store_mailbox_get(md->acct, "INBOX", &inbox, &error);
	if (r <= 0) {
		log_warn(session_id, "event=pop3-open-failed account=%lld reason=\"%s\"",
		    (long long)account_id, r == 0 ? "no INBOX" : error);
		goto fail;
	}
	md->mailbox_id = inbox.id;
	store_mailbox_clear(&inbox);
	md->watch = store_watch_add(md->acct, md->mailbox_id, pop3_maildrop_changed, md);
	if (store_message_list(md->acct, md->mailbox_id, 0, UINT32_MAX, &list, &n,
	    &error) < 0) {
		log_warn(session_id, "event=pop3-open-failed account=%lld reason=\"%s\"",
		    (long long)account_id, error);
		goto fail;
	}
	md->msgs = n > 0 ? xcalloc(n, sizeof(*md->msgs)) : NULL;
	md->count = n;
	for (i = 0; i < n; i++) {
		md->msgs[i].size = list[i].size;
		md->msgs[i].uid = list[i].uid;
		md->msgs[i].seen = (list[i].flags & STORE_FLAG_SEEN) != 0;
		memcpy(md->msgs[i].guid, list[i].guid, sizeof(md->msgs[i].guid));
		md->msgs[i].guid[sizeof(md->msgs[i].guid) - 1] = '\0';
		md->size += list[i].size;
	}
	store_messages_free(&list, n);
	pop3_mark_duplicates(md->msgs, md->count);
	*md_r = md;
	return POP3_MAILDROP_OK;
fail:
	pop3_maildrop_free(&md);
	return POP3_MAILDROP_TEMP;
}

void
pop3_maildrop_free(struct pop3_maildrop **mdp)
{
	struct pop3_maildrop *md = *mdp;

	if (md == NULL)
		return;
	pop3_maildrop_unlock(md);
	store_watch_remove(&md->watch);
	store_account_close(&md->acct);
	free(md->msgs);
	free(md);
	*mdp = NULL;
}

/* --- the session's work on it ------------------------------------------- */

void
pop3_maildrop_delete(struct pop3_maildrop *md, size_t i)
{
	if (md->msgs[i].deleted)
		return;
	md->msgs[i].deleted = 1;
	md->ndeleted++;
	md->deleted_size += md->msgs[i].size;
}

void
pop3_maildrop_reset(struct pop3_maildrop *md)
{
	size_t i;

	for (i = 0; i < md->count; i++)
		md->msgs[i].deleted = 0;
	md->ndeleted = 0;
	md->deleted_size = 0;
}

void
pop3_maildrop_uidl(const struct pop3_maildrop *md, size_t i, char out[POP3_UIDL_SIZE])
{
	const struct pop3_msg *m = &md->msgs[i];

	if (m->dup_guid)
		snprintf(out, POP3_UIDL_SIZE, "%s-%u", m->guid, m->uid);
	else
		snprintf(out, POP3_UIDL_SIZE, "%s", m->guid);
}

int
pop3_maildrop_update(struct pop3_maildrop *md, const char *session_id,
    const char **error_r)
{
	uint32_t *uids, *failed = NULL;
	size_t i, n = 0, nfailed = 0;
	const char *error;

	if (md->count == 0)
		return 0;
	uids = xreallocarray(NULL, md->count, sizeof(*uids));
	for (i = 0; i < md->count; i++) {
		if (md->msgs[i].deleted)
			uids[n++] = md->msgs[i].uid;
	}
	if (n > 0 && store_message_expunge(md->acct, md->mailbox_id, uids, n, &error) < 0) {
		log_warn(session_id, "event=pop3-expunge-failed account=%lld messages=%zu "
		    "reason=\"%s\"", (long long)md->account_id, n, error);
		*error_r = "Cannot delete the messages, none was deleted; try again later";
		free(uids);
		return -1;
	}
	if (n > 0)
		log_info(session_id, "event=pop3-expunge account=%lld messages=%zu",
		    (long long)md->account_id, n);
	/* RETR marks a message read, as IMAP shows it. */
	n = 0;
	for (i = 0; i < md->count; i++) {
		if (md->msgs[i].retrieved && !md->msgs[i].deleted && !md->msgs[i].seen)
			uids[n++] = md->msgs[i].uid;
	}
	if (n > 0 && store_message_set_flags(md->acct, md->mailbox_id, uids, n,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &failed, &nfailed, &error) < 0)
		log_warn(session_id, "event=pop3-seen-failed account=%lld messages=%zu "
		    "reason=\"%s\"", (long long)md->account_id, n, error);
	free(failed);
	free(uids);
	return 0;
}
