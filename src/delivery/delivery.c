/*
 * Resolution of recipients and the one-commit delivery of a message.
 */
#include "delivery/delivery.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "directory/directory.h"
#include "queue/queue.h"
#include "queue/queue_srs.h"

struct delivery_msg {
	const struct delivery_services *svc;
	const struct delivery_envelope *env;
	struct store_writer *store;
	struct queue_writer *queue;
	int need_store, need_queue;
	int started;
	int failed;
};

/* --- recipients -------------------------------------------------------- */

static int
has_mailbox(const struct delivery_rcpt *r, int64_t id)
{
	size_t i;

	for (i = 0; i < r->nmailboxes; i++)
		if (r->mailboxes[i].account_id == id)
			return 1;
	return 0;
}

static int
has_external(const struct delivery_rcpt *r, const char *addr)
{
	size_t i;

	for (i = 0; i < r->nexternal; i++)
		if (strcasecmp(r->external[i], addr) == 0)
			return 1;
	return 0;
}

static void
add_external(struct delivery_rcpt *r, const char *addr)
{
	if (has_external(r, addr))
		return;
	r->external = xreallocarray(r->external, r->nexternal + 1, sizeof(*r->external));
	r->external[r->nexternal++] = xstrdup(addr);
}

/* 1 when one more message of size bytes does not fit the mailbox. */
static int
over_quota(const struct delivery_services *svc, const struct delivery_mailbox *mb,
    uint64_t size, const char *id)
{
	struct store_account *acct;
	struct store_usage usage;
	const char *error;
	int over;

	if (mb->quota.bytes_limit == 0 && mb->quota.messages_limit == 0)
		return 0;
	if (store_account_open(svc->store, mb->account_id, &mb->quota, &acct, &error) < 0) {
		log_warn(id, "event=quota-check-failed account=%lld reason=\"%s\"",
		    (long long)mb->account_id, error);
		return 0;    /* the commit will tell */
	}
	if (store_account_usage(acct, &usage, &error) < 0) {
		store_account_close(&acct);
		return 0;
	}
	store_account_close(&acct);
	over = (mb->quota.bytes_limit != 0 && usage.bytes + size > mb->quota.bytes_limit) ||
	    (mb->quota.bytes_limit != 0 && usage.bytes >= mb->quota.bytes_limit) ||
	    (mb->quota.messages_limit != 0 && usage.messages + 1 > mb->quota.messages_limit);
	return over;
}

/* ORCPT for a recipient that came without one: "rfc822;" and the address
 * as xtext ('=' and '+' in it, as SRS addresses have, must be encoded). */
static char *
orcpt_of(const char *address)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "rfc822;");
	queue_xtext_encode(&b, address);
	return buf_steal(&b);
}

/* A bounce to the SRS sender of one of our forwards goes back to the
 * original sender, from anyone (it is a reply to mail we sent): 1 when
 * address is such a bounce (rcpt filled in), -1 when it looks like one but
 * its hash or age is wrong, 0 when it is not ours. */
static int
srs_bounce(const struct delivery_services *svc, const char *address,
    struct delivery_rcpt *rcpt)
{
	const char *at = strrchr(address, '@');
	char *orig = NULL;
	int r;

	if (svc->srs == NULL || svc->queue == NULL || at == NULL ||
	    strcasecmp(at + 1, queue_srs_domain(svc->srs)) != 0)
		return 0;
	r = queue_srs_reverse(svc->srs, address, (int64_t)time(NULL), &orig);
	if (r == 1) {
		add_external(rcpt, orig);
		free(orig);
	}
	return r;
}

enum delivery_resolve_status
delivery_resolve(const struct delivery_services *svc, const char *address, int relay,
    uint64_t size, struct delivery_rcpt *rcpt)
{
	struct directory_resolution res;
	struct directory_stamp stamp;
	const char *error;
	char *norm;
	size_t i, full = 0;

	memset(&res, 0, sizeof(res));
	/* Before the lookup: a change meanwhile makes the entry stale. */
	if (svc->cache != NULL)
		directory_stamp(svc->dir, &stamp);
	switch (srs_bounce(svc, address, rcpt)) {
	case 1:
		return DELIVERY_RESOLVED;
	case -1:
		return DELIVERY_UNKNOWN;
	default:
		break;
	}
	/* Addresses the directory cannot hold (UTF-8 domains) are never local. */
	norm = directory_normalize_address(address);
	if (norm == NULL) {
		if (!relay)
			return DELIVERY_NOT_LOCAL;
		add_external(rcpt, address);
		return DELIVERY_RESOLVED;
	}
	if (directory_resolve(svc->dir, norm, &res, &error) < 0) {
		log_warn(NULL, "event=resolve-failed rcpt=<%.320s> reason=\"%s\"", norm, error);
		free(norm);
		return DELIVERY_TEMPFAIL;
	}
	free(norm);
	switch (res.status) {
	case DIRECTORY_NOT_LOCAL:
		directory_resolution_clear(&res);
		if (!relay)
			return DELIVERY_NOT_LOCAL;
		if (svc->queue == NULL)
			return DELIVERY_TEMPFAIL;
		add_external(rcpt, address);
		return DELIVERY_RESOLVED;
	case DIRECTORY_UNKNOWN:
		directory_resolution_clear(&res);
		return DELIVERY_UNKNOWN;
	case DIRECTORY_FOUND:
		break;
	}
	for (i = 0; i < res.ntargets; i++) {
		const struct directory_target *t = &res.targets[i];
		struct directory_account acct;
		struct delivery_mailbox *mb;
		int r;

		if (t->kind == DIRECTORY_TARGET_EXTERNAL) {
			add_external(rcpt, t->address);
			continue;
		}
		if (has_mailbox(rcpt, t->account_id))
			continue;
		r = directory_account_get_by_id(svc->dir, t->account_id, &acct, &error);
		if (r < 0) {
			directory_resolution_clear(&res);
			return DELIVERY_TEMPFAIL;
		}
		if (r == 0)
			continue;    /* removed meanwhile */
		rcpt->mailboxes = xreallocarray(rcpt->mailboxes, rcpt->nmailboxes + 1,
		    sizeof(*rcpt->mailboxes));
		mb = &rcpt->mailboxes[rcpt->nmailboxes++];
		mb->account_id = acct.id;
		mb->quota.bytes_limit = acct.quota_bytes;
		mb->quota.messages_limit = acct.quota_messages;
		directory_account_clear(&acct);
		if (over_quota(svc, mb, size, NULL))
			full++;
	}
	directory_resolution_clear(&res);
	if (rcpt->nmailboxes == 0 && rcpt->nexternal == 0)
		return DELIVERY_UNKNOWN;
	if ((rcpt->nmailboxes > 0 && svc->store == NULL) ||
	    (rcpt->nexternal > 0 && svc->queue == NULL)) {
		log_error(NULL, "event=resolve-failed rcpt=<%.320s> reason=\"no %s open\"",
		    address, svc->store == NULL ? "mail store" : "queue");
		return DELIVERY_TEMPFAIL;
	}
	if (full > 0 && full == rcpt->nmailboxes && rcpt->nexternal == 0)
		return DELIVERY_OVER_QUOTA;
	if (svc->cache != NULL)
		delivery_cache_put(svc, address, relay, &stamp, rcpt);
	return DELIVERY_RESOLVED;
}

void
delivery_rcpt_clear(struct delivery_rcpt *rcpt)
{
	size_t i;

	free(rcpt->address);
	free(rcpt->orcpt);
	free(rcpt->mailboxes);
	for (i = 0; i < rcpt->nexternal; i++)
		free(rcpt->external[i]);
	free(rcpt->external);
	memset(rcpt, 0, sizeof(*rcpt));
}

int
delivery_address_owned(const struct delivery_services *svc, int64_t account_id,
    const char *address)
{
	struct directory_resolution res;
	struct directory_account acct;
	const char *error;
	char *norm;
	size_t i;
	int r, owned = 0;

	if ((norm = directory_normalize_address(address)) == NULL)
		return 0;
	r = directory_account_get_by_id(svc->dir, account_id, &acct, &error);
	if (r <= 0) {
		free(norm);
		return r;
	}
	if (strcasecmp(acct.address, norm) == 0)
		owned = 1;
	directory_account_clear(&acct);
	if (owned) {
		free(norm);
		return 1;
	}
	memset(&res, 0, sizeof(res));
	r = directory_resolve(svc->dir, norm, &res, &error);
	free(norm);
	if (r < 0)
		return -1;
	/* A catch-all reaches the account for any name: that is not owning it. */
	if (res.status == DIRECTORY_FOUND) {
		for (i = 0; i < res.ntargets; i++)
			if (res.targets[i].kind == DIRECTORY_TARGET_MAILBOX &&
			    res.targets[i].account_id == account_id)
				owned = 1;
	}
	directory_resolution_clear(&res);
	return owned;
}

/* --- messages ---------------------------------------------------------- */

struct delivery_msg *
delivery_msg_new(const struct delivery_services *svc, const struct delivery_envelope *env)
{
	struct delivery_msg *m = xcalloc(1, sizeof(*m));
	size_t i;

	m->svc = svc;
	m->env = env;
	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].nmailboxes > 0)
			m->need_store = 1;
		if (env->rcpts[i].nexternal > 0)
			m->need_queue = 1;
	}
	return m;
}

static int
msg_start(struct delivery_msg *m, const char **error_r)
{
	struct buf rp = BUF_INIT;
	int r = 0;

	m->started = 1;
	if (m->need_store) {
		if (store_writer_new(m->svc->store, &m->store, error_r) < 0)
			return -1;
		buf_printf(&rp, "Return-Path: <%s>\r\n", m->env->sender);
		r = store_writer_write(m->store, rp.data, rp.len, error_r);
		buf_free(&rp);
		if (r < 0)
			return -1;
	}
	if (m->need_queue && queue_writer_new(m->svc->queue, &m->queue, error_r) < 0)
		return -1;
	return 0;
}

int
delivery_msg_write(struct delivery_msg *m, const void *data, size_t len, const char **error_r)
{
	if (m->failed) {
		*error_r = "earlier write failed";
		return -1;
	}
	if ((!m->started && msg_start(m, error_r) < 0) ||
	    (m->store != NULL && store_writer_write(m->store, data, len, error_r) < 0) ||
	    (m->queue != NULL && queue_writer_write(m->queue, data, len, error_r) < 0)) {
		m->failed = 1;
		return -1;
	}
	return 0;
}

/* Commits the remote part: one envelope with every external address. */
static int
msg_queue(struct delivery_msg *m, struct delivery_outcome *out)
{
	const struct delivery_envelope *env = m->env;
	struct queue_envelope qe;
	const char *error;
	size_t i, j, n = 0;
	int rc;

	memset(&qe, 0, sizeof(qe));
	qe.sender = (char *)env->sender;
	qe.envid = (char *)env->envid;
	qe.ret = env->ret;
	qe.body = env->body;
	qe.smtputf8 = env->smtputf8;
	qe.requiretls = env->requiretls;
	for (i = 0; i < env->nrcpts; i++)
		n += env->rcpts[i].nexternal;
	qe.rcpts = xcalloc(n, sizeof(*qe.rcpts));
	for (i = 0; i < env->nrcpts; i++) {
		const struct delivery_rcpt *r = &env->rcpts[i];

		for (j = 0; j < r->nexternal; j++) {
			struct queue_rcpt *q = &qe.rcpts[qe.nrcpts++];

			q->address = r->external[j];
			q->notify = r->notify;
			/* A forwarded copy remembers whom it was sent to. */
			if (r->orcpt != NULL)
				q->orcpt = r->orcpt;
			else if (strcasecmp(r->external[j], r->address) != 0)
				q->orcpt = orcpt_of(r->address);
		}
	}
	rc = queue_writer_commit(m->queue, &qe, &error);
	if (rc == 0)
		memcpy(out->queue_id, qe.id, QUEUE_ID_SIZE);
	else
		log_error(env->id, "event=queue-failed reason=\"%s\"", error);
	n = 0;
	for (i = 0; i < env->nrcpts; i++) {
		const struct delivery_rcpt *dr = &env->rcpts[i];

		for (j = 0; j < dr->nexternal; j++, n++)
			if (qe.rcpts[n].orcpt != dr->orcpt)
				free(qe.rcpts[n].orcpt);
	}
	free(qe.rcpts);
	return rc;
}

/* Commits the message into accounts[start..start+n) (opening them for it,
 * closing them after); a target whose account cannot be opened fails for a
 * reason that may pass. Returns the number stored. */
static size_t
commit_chunk(struct delivery_msg *m, const struct store_quota *const *quotas,
    const int64_t *ids, struct store_target *targets, size_t n)
{
	struct store_account *accts[DELIVERY_ACCOUNTS_AT_ONCE];
	struct store_target chunk[DELIVERY_ACCOUNTS_AT_ONCE];
	size_t map[DELIVERY_ACCOUNTS_AT_ONCE], k, nopen = 0, stored = 0;
	const char *error;
	int r;

	for (k = 0; k < n; k++) {
		targets[k].error = STORE_ERR_TEMP;
		if (store_account_open(m->svc->store, ids[k], quotas[k], &accts[nopen],
		    &error) < 0) {
			log_error(m->env->id, "event=delivery-failed account=%lld reason=\"%s\"",
			    (long long)ids[k], error);
			continue;
		}
		memset(&chunk[nopen], 0, sizeof(chunk[nopen]));
		chunk[nopen].acct = accts[nopen];
		chunk[nopen].mailbox_name = "INBOX";
		map[nopen++] = k;
	}
	if (nopen > 0) {
		r = store_writer_commit(m->store, chunk, nopen, &error);
		if (r < 0)
			log_error(m->env->id, "event=delivery-failed reason=\"%s\"", error);
		for (k = 0; k < nopen; k++) {
			targets[map[k]] = chunk[k];
			targets[map[k]].acct = NULL;
			if (chunk[k].error == STORE_OK)
				stored++;
			store_account_close(&accts[k]);
		}
	}
	return stored;
}

int
delivery_msg_commit(struct delivery_msg *m, struct delivery_outcome *out)
{
	const struct delivery_envelope *env = m->env;
	struct store_target *targets = NULL;
	const struct store_quota **quotas = NULL;
	int64_t *ids = NULL;
	const char *error = "no message";
	size_t i, j, k, n = 0, full = 0, temp = 0, stored = 0, chunk;
	int any_failed = 0;

	memset(out, 0, sizeof(*out));
	out->status = DELIVERY_FAILED;
	if (!m->started && msg_start(m, &error) < 0)
		m->failed = 1;
	if (m->failed) {
		log_error(env->id, "event=delivery-failed reason=\"%s\"", error);
		return 0;
	}
	/* Every account once, however many recipients reach it. */
	for (i = 0; i < env->nrcpts; i++)
		n += env->rcpts[i].nmailboxes;
	if (n > 0) {
		targets = xcalloc(n, sizeof(*targets));
		quotas = xcalloc(n, sizeof(*quotas));
		ids = xcalloc(n, sizeof(*ids));
	}
	n = 0;
	for (i = 0; i < env->nrcpts; i++) {
		const struct delivery_rcpt *r = &env->rcpts[i];

		for (j = 0; j < r->nmailboxes; j++) {
			for (k = 0; k < n; k++)
				if (ids[k] == r->mailboxes[j].account_id)
					break;
			if (k < n)
				continue;
			quotas[n] = &r->mailboxes[j].quota;
			ids[n++] = r->mailboxes[j].account_id;
		}
	}
	/* The queue first: if the mailboxes fail after it, the queued copy is
	 * taken back and the client told to retry. */
	if (m->queue != NULL && msg_queue(m, out) < 0)
		goto out;
	/* A bounded number of accounts open at once: each costs descriptors
	 * and memory, and a message may reach a thousand. */
	for (k = 0; k < n; k += chunk) {
		chunk = n - k < DELIVERY_ACCOUNTS_AT_ONCE ? n - k : DELIVERY_ACCOUNTS_AT_ONCE;
		stored += commit_chunk(m, quotas + k, ids + k, targets + k, chunk);
	}
	/* Which recipients lost a mailbox. */
	for (k = 0; k < n; k++) {
		if (targets[k].error == STORE_OK)
			continue;
		if (targets[k].error == STORE_ERR_QUOTA)
			full++;
		else
			temp++;
		for (i = 0; i < env->nrcpts; i++) {
			struct delivery_rcpt *r = &env->rcpts[i];

			if (!has_mailbox(r, ids[k]))
				continue;
			r->failed = 1;
			any_failed = 1;
			if (targets[k].error == STORE_ERR_QUOTA)
				r->full = 1;
		}
	}
	out->stored = stored;
	out->failed = n - stored;
	if (stored == 0 && temp > 0 && out->queue_id[0] != '\0') {
		/* No mailbox has it, for a reason that may pass: take back the
		 * queued copy too and let the client retry the whole message. */
		if (queue_remove(m->svc->queue, out->queue_id, &error) < 0)
			log_error(env->id, "event=queue-remove-failed id=%s reason=\"%s\"",
			    out->queue_id, error);
		out->queue_id[0] = '\0';
	}
	if (stored == 0 && out->queue_id[0] == '\0') {
		out->status = n > 0 && full == n ? DELIVERY_FULL : DELIVERY_FAILED;
		goto out;
	}
	out->status = DELIVERY_OK;
	if (any_failed && delivery_dsn_queue(m->svc, env, 0, &error) < 0)
		log_error(env->id, "event=dsn-failed reason=\"%s\"", error);
	if (delivery_dsn_queue(m->svc, env, 1, &error) < 0)
		log_error(env->id, "event=dsn-failed reason=\"%s\"", error);
out:
	free(quotas);
	free(ids);
	free(targets);
	return 0;
}

void
delivery_msg_free(struct delivery_msg **mp)
{
	struct delivery_msg *m = *mp;

	if (m == NULL)
		return;
	store_writer_free(&m->store);
	queue_writer_free(&m->queue);
	free(m);
	*mp = NULL;
}
