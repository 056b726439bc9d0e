/*
 * Remote delivery of one attempt: the due remote recipients of a message
 * are grouped by destination (their domain, or the relay host), each group
 * waits for a connection slot of its destination, then: MX lookup (null MX
 * bounces, no MX means the domain's own addresses), each host's addresses
 * in turn until one takes the transaction, one transaction per group.
 *
 * A connection that finished a transaction takes the next group waiting for
 * the same destination (up to queue_max_messages_per_connection); a
 * destination that cannot be reached at all defers its waiting groups with
 * the same error instead of trying again for each of them.
 *
 * TLS: each connection runs at its destination's queue_tls_policy level
 * (smtpc enforces encrypt and verify while opening, so mail is never sent
 * in clear where TLS is required). A REQUIRETLS message (RFC 8689, 4.2.1)
 * goes only over a verified session whose server announces REQUIRETLS;
 * when no MX host of the domain can give that, it fails with 5.7.10 (no
 * verified TLS) or 5.7.30 (no REQUIRETLS).
 */
#include "queue/queue_runner_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"

struct qconn {
	struct queue_runner *r;
	struct qconn *prev, *next;
	struct qdest *dest;
	struct qgroup *group;
	struct dns_query *dq;
	struct smtpc_session *s;
	char id[LOG_ID_SIZE];
	struct dns_mx mx[DNS_MX_MAX];
	size_t nmx, mxi;
	struct dns_addr addrs[DNS_ADDR_MAX];
	size_t naddrs, addri;
	char host[DNS_NAME_MAX + 1];
	char error[SMTPC_TEXT_MAX + 1];
	int error_code;             /* server reply code of error, or 0 */
	int error_from_server;
	int tls_refused;            /* a host could not give REQUIRETLS */
	char tls_status[16];        /* 5.7.10 or 5.7.30, for a REQUIRETLS failure */
	char tls_reason[SMTPC_TEXT_MAX + 1];
	int tls_error;              /* the last error was a TLS requirement not met */
	enum smtpc_tls_mode tls_mode;
	int relay;                  /* the destination is the relay host */
	int txns;
};

static void conn_next_host(struct qconn *c);
static void conn_try_addr(struct qconn *c);
static void conn_run_group(struct qconn *c);
static void dispatch(struct queue_runner *r);

/* --- groups --------------------------------------------------------------- */

static struct qdest *
dest_get(struct queue_runner *r, const char *name)
{
	struct qdest *d;

	for (d = r->dests; d != NULL; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->name = xstrdup(name);
	d->wait_tail = &d->wait_head;
	d->next = r->dests;
	r->dests = d;
	return d;
}

static void
group_free(struct qgroup *g)
{
	free(g->idx);
	free(g->rc);
	buf_free(&g->converted);
	free(g);
}

/* The group is done; its message's attempt may be too. */
static void
group_done(struct qgroup *g)
{
	struct qmsg *m = g->m;

	group_free(g);
	if (--m->groups_out == 0)
		qr_attempt_done(m);
}

/* Every recipient of the group gets the same outcome. */
static void
group_all(struct qgroup *g, enum qr_outcome o, const char *reply, int from_server,
    const char *mta, const char *status)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		qr_rcpt_result(g->m, g->idx[i], o, reply, from_server, mta, status);
	group_done(g);
}

static enum qr_outcome
outcome_of(int code)
{
	if (code >= 200 && code < 300)
		return QR_DELIVERED;
	if (code >= 500 && code < 600)
		return QR_FAILED;
	return QR_DEFERRED;
}

void
qa_start(struct qmsg *m)
{
	struct queue_runner *r = m->r;
	struct qgroup **groups = NULL;
	size_t i, j, ng = 0;
	int relay = r->set.relayhost[0] != '\0';

	for (i = 0; i < m->env.nrcpts; i++) {
		struct qr_rcpt_run *rr = &m->run[i];
		const char *name = relay ? "[relay]" : rr->domain;
		struct qgroup *g;

		if (!rr->due || !rr->remote || rr->outcome != QR_NONE)
			continue;
		for (j = 0; j < ng; j++)
			if (strcmp(groups[j]->dest->name, name) == 0)
				break;
		if (j == ng) {
			g = xcalloc(1, sizeof(*g));
			g->m = m;
			g->dest = dest_get(r, name);
			g->idx = xcalloc(m->env.nrcpts, sizeof(*g->idx));
			g->rc = xcalloc(m->env.nrcpts, sizeof(*g->rc));
			g->sm.sender = m->mail_from != NULL ? m->mail_from : m->env.sender;
			g->sm.envid = m->env.envid;
			g->sm.ret = m->env.ret;
			g->sm.body = m->env.body;
			g->sm.smtputf8 = m->env.smtputf8;
			g->sm.requiretls = m->env.requiretls;
			g->sm.data = m->data;
			g->sm.size = m->size;
			g->sm.rcpts = g->rc;
			groups = xreallocarray(groups, ng + 1, sizeof(*groups));
			groups[ng++] = g;
		}
		g = groups[j];
		g->idx[g->n] = i;
		g->rc[g->n].address = m->env.rcpts[i].address;
		g->rc[g->n].orcpt = m->env.rcpts[i].orcpt;
		g->rc[g->n].notify = m->env.rcpts[i].notify;
		g->n++;
		g->sm.nrcpts = g->n;
	}
	if (ng == 0) {
		free(groups);
		qr_attempt_done(m);
		return;
	}
	m->groups_out = ng;
	for (j = 0; j < ng; j++) {
		struct qdest *d = groups[j]->dest;

		*d->wait_tail = groups[j];
		d->wait_tail = &groups[j]->next;
	}
	free(groups);
	dispatch(r);
}

static struct qgroup *
dest_pop(struct qdest *d)
{
	struct qgroup *g = d->wait_head;

	if (g == NULL)
		return NULL;
	d->wait_head = g->next;
	if (d->wait_head == NULL)
		d->wait_tail = &d->wait_head;
	g->next = NULL;
	return g;
}

/* --- connections ---------------------------------------------------------- */

static void
conn_release(struct qconn *c)
{
	struct queue_runner *r = c->r;

	dns_cancel(&c->dq);
	if (c->s != NULL)
		smtpc_close(&c->s);
	c->dest->nconns--;
	r->nconns--;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
	dispatch(r);
}

/* Nothing reached: the group is deferred, and so is every group waiting for
 * the same destination (they would fail the same way). */
static void
conn_give_up(struct qconn *c)
{
	struct qgroup *g = c->group, *w;
	const char *err = c->error[0] != '\0' ? c->error : "no mail server reachable";
	enum qr_outcome o = QR_DEFERRED;
	const char *status = c->tls_error ? "4.7.10" : "4.4.1";
	char text[SMTPC_TEXT_MAX + DNS_NAME_MAX + 128];
	int from_server = c->error_from_server;

	c->group = NULL;
	if (g->m->env.requiretls && c->tls_refused) {
		/* RFC 8689 4.2.1: no MX host could take it as required. */
		o = QR_FAILED;
		status = c->tls_status;
		snprintf(text, sizeof(text), "REQUIRETLS: no mail server of %s accepts the "
		    "message over verified TLS with REQUIRETLS (%s)", c->dest->name, c->tls_reason);
		err = text;
		from_server = 0;
	}
	log_info(g->m->env.id, "event=unreachable dest=%s reason=\"%s\"", c->dest->name, err);
	group_all(g, o, err, from_server, from_server ? c->host : NULL, status);
	if (o == QR_DEFERRED) {
		while ((w = dest_pop(c->dest)) != NULL)
			group_all(w, QR_DEFERRED, err, from_server, from_server ? c->host : NULL,
			    status);
	}
	conn_release(c);
}

static void
conn_error(struct qconn *c, int code, const char *text)
{
	snprintf(c->error, sizeof(c->error), "%s", text);
	c->error_code = code;
	c->error_from_server = code != 0;
}

/* A host could not take a REQUIRETLS message: 5.7.30 (verified TLS but no
 * REQUIRETLS) wins over 5.7.10 (no verified TLS) in the final report. */
static void
tls_refusal(struct qconn *c, const char *status, const char *reason)
{
	c->tls_refused = 1;
	if (strcmp(c->tls_status, "5.7.30") != 0) {
		snprintf(c->tls_status, sizeof(c->tls_status), "%s", status);
		snprintf(c->tls_reason, sizeof(c->tls_reason), "%s", reason);
	}
}

static void
mx_done(void *arg, enum dns_status st, const struct dns_mx *mx, size_t n, const char *error)
{
	struct qconn *c = arg;
	const char *domain = c->dest->name;
	char text[SMTPC_TEXT_MAX + 1];
	size_t i;

	c->dq = NULL;
	switch (st) {
	case DNS_OK:
		for (i = 0; i < n; i++) {
			if (mx[i].host[0] == '\0' && n == 1) {
				struct qgroup *g = c->group;

				c->group = NULL;
				snprintf(text, sizeof(text), "domain %s accepts no mail (null MX)",
				    domain);
				group_all(g, QR_FAILED, text, 0, NULL, "5.1.10");
				conn_release(c);
				return;
			}
			if (mx[i].host[0] != '\0')
				c->mx[c->nmx++] = mx[i];
		}
		break;
	case DNS_NODATA:
		/* No MX: the domain itself is the host (RFC 5321 5.1). */
		snprintf(c->mx[0].host, sizeof(c->mx[0].host), "%s", domain);
		c->nmx = 1;
		break;
	case DNS_NXDOMAIN: {
		struct qgroup *g = c->group;

		c->group = NULL;
		snprintf(text, sizeof(text), "domain %s does not exist", domain);
		group_all(g, QR_FAILED, text, 0, NULL, "5.1.2");
		conn_release(c);
		return;
	}
	case DNS_TEMPFAIL:
		snprintf(text, sizeof(text), "MX lookup for %s failed: %s", domain,
		    error != NULL ? error : "temporary failure");
		conn_error(c, 0, text);
		conn_give_up(c);
		return;
	}
	conn_next_host(c);
}

static void
addr_done(void *arg, enum dns_status st, const struct dns_addr *addrs, size_t n,
    const char *error)
{
	struct qconn *c = arg;
	char text[SMTPC_TEXT_MAX + 1];
	size_t i;

	c->dq = NULL;
	if (st != DNS_OK) {
		snprintf(text, sizeof(text), "no address for %s: %s", c->host,
		    error != NULL ? error : "lookup failed");
		conn_error(c, 0, text);
		conn_next_host(c);
		return;
	}
	for (i = 0; i < n && i < DNS_ADDR_MAX; i++)
		c->addrs[i] = addrs[i];
	c->naddrs = i;
	c->addri = 0;
	conn_try_addr(c);
}

static void
conn_next_host(struct qconn *c)
{
	struct queue_runner *r = c->r;
	int port = strcmp(c->dest->name, "[relay]") == 0 ? r->set.relay_port :
	    r->set.smtp_port;
	struct dns_addr a;

	if (c->mxi >= c->nmx) {
		conn_give_up(c);
		return;
	}
	snprintf(c->host, sizeof(c->host), "%s", c->mx[c->mxi++].host);
	if (dns_parse_ip_port(c->host, port, &a) == 0) {
		c->addrs[0] = a;
		c->naddrs = 1;
		c->addri = 0;
		conn_try_addr(c);
		return;
	}
	c->dq = dns_query_addr(r->dns, c->host, port, addr_done, c);
}

static void
opened(void *arg, struct smtpc_session *s, int code, const char *error)
{
	struct qconn *c = arg;

	if (error != NULL) {
		conn_error(c, code, error);
		c->tls_error = smtpc_tls_failed(s);
		if (c->tls_error && c->group != NULL && c->group->m->env.requiretls)
			tls_refusal(c, "5.7.10", error);
		smtpc_free(&c->s);
		conn_try_addr(c);
		return;
	}
	c->tls_error = 0;
	log_debug(c->id, "event=queue-connected host=%s dest=%s tls=%d verified=%d", c->host,
	    c->dest->name, smtpc_tls_active(s), smtpc_tls_verified(s));
	conn_run_group(c);
}

static void
conn_try_addr(struct qconn *c)
{
	struct queue_runner *r = c->r;
	struct smtpc_settings set = r->smtpc;

	if (c->addri >= c->naddrs) {
		conn_next_host(c);
		return;
	}
	set.tls_mode = c->tls_mode;
	if (c->relay && r->set.relay_user[0] != '\0') {
		set.auth_user = r->set.relay_user;
		set.auth_password = r->set.relay_password;
	}
	c->s = smtpc_open(net_loop_base(r->loop), &set, &c->addrs[c->addri++], c->host, c->id,
	    opened, c);
}

static enum smtpc_tls_mode
tls_mode_of(enum config_tls_level level)
{
	switch (level) {
	case CONFIG_TLS_NONE:
		return SMTPC_TLS_NONE;
	case CONFIG_TLS_MAY:
		break;
	case CONFIG_TLS_ENCRYPT:
		return SMTPC_TLS_ENCRYPT;
	case CONFIG_TLS_VERIFY:
		return SMTPC_TLS_VERIFY;
	}
	return SMTPC_TLS_MAY;
}

static void
conn_start(struct queue_runner *r, struct qdest *d, struct qgroup *g)
{
	struct qconn *c = xcalloc(1, sizeof(*c));

	c->r = r;
	c->dest = d;
	c->group = g;
	c->relay = strcmp(d->name, "[relay]") == 0;
	/* The relay host's policy entry is its name's (Postfix looks up the
	 * next hop the same way). */
	c->tls_mode = tls_mode_of(config_tls_level_for(r->set.tls_rules, r->set.ntls_rules,
	    c->relay ? r->set.relay_host : d->name));
	log_new_id(c->id);
	d->nconns++;
	r->nconns++;
	c->next = r->conns;
	if (r->conns != NULL)
		r->conns->prev = c;
	r->conns = c;
	if (c->relay) {
		snprintf(c->mx[0].host, sizeof(c->mx[0].host), "%s", r->set.relay_host);
		c->nmx = 1;
		conn_next_host(c);
		return;
	}
	c->dq = dns_query_mx(r->dns, d->name, mx_done, c);
}

/* Starts waiting groups while the limits allow. */
static void
dispatch(struct queue_runner *r)
{
	struct qdest *d;
	int started = 1;

	if (r->stopping)
		return;
	while (started && r->nconns < r->set.max_conns) {
		started = 0;
		for (d = r->dests; d != NULL && r->nconns < r->set.max_conns; d = d->next) {
			if (d->wait_head == NULL || d->nconns >= r->set.max_per_dest)
				continue;
			conn_start(r, d, dest_pop(d));
			started = 1;
		}
	}
}

/* --- transactions --------------------------------------------------------- */

static void sent(void *arg, struct smtpc_session *s, const struct smtpc_result *res);

/* Checks the message against what the server offers; 0 to go on, -1 when
 * the group was settled here (failed) or must try another host. */
static int
precheck(struct qconn *c, struct qgroup *g)
{
	const struct smtpc_caps *caps = smtpc_caps(c->s);
	struct qmsg *m = g->m;
	char text[SMTPC_TEXT_MAX + 1];

	if (c->tls_mode >= SMTPC_TLS_ENCRYPT && !smtpc_tls_active(c->s)) {
		/* smtpc does not open such a session; never send in clear. */
		snprintf(text, sizeof(text), "%s: TLS is required and not active", c->host);
		conn_error(c, 0, text);
		c->tls_error = 1;
		return 1;
	}
	if (m->env.requiretls && (!smtpc_tls_verified(c->s) || !caps->requiretls)) {
		int verified = smtpc_tls_verified(c->s);

		snprintf(text, sizeof(text), "%s: %s", c->host, !smtpc_tls_active(c->s) ?
		    "no TLS" : !verified ? "certificate not verified" :
		    "REQUIRETLS not announced");
		tls_refusal(c, verified ? "5.7.30" : "5.7.10", text);
		conn_error(c, 0, text);
		/* A policy of none does not stand in the way of the sender's
		 * requirement: the next hosts are asked for STARTTLS. */
		if (c->tls_mode == SMTPC_TLS_NONE)
			c->tls_mode = SMTPC_TLS_MAY;
		return 1;   /* next host */
	}
	if (caps->size > 0 && m->size > caps->size) {
		snprintf(text, sizeof(text), "message size %zu exceeds the limit %llu of %s",
		    m->size, (unsigned long long)caps->size, c->host);
		group_all(g, QR_FAILED, text, 0, NULL, "5.3.4");
		return -1;
	}
	if (m->env.smtputf8 && !caps->smtputf8) {
		snprintf(text, sizeof(text), "%s does not support SMTPUTF8, which the message "
		    "needs", c->host);
		group_all(g, QR_FAILED, text, 0, NULL, "5.6.7");
		return -1;
	}
	g->sm.body = m->env.body;
	g->sm.data = m->data;
	g->sm.size = m->size;
	if (m->env.body == QUEUE_BODY_BINARYMIME && (!caps->binarymime || !caps->chunking))
		g->sm.body = QUEUE_BODY_8BITMIME;
	if (g->sm.body == QUEUE_BODY_8BITMIME && !caps->eightbitmime) {
		if (!smtpc_body_is_8bit(m->data, m->size)) {
			g->sm.body = QUEUE_BODY_7BIT;
		} else if (smtpc_body_to_qp(m->data, m->size, &g->converted) == 0) {
			g->sm.body = QUEUE_BODY_7BIT;
			g->sm.data = (const unsigned char *)g->converted.data;
			g->sm.size = g->converted.len;
			log_info(m->env.id, "event=converted to=quoted-printable host=%s", c->host);
		} else {
			snprintf(text, sizeof(text), "%s does not accept 8-bit content and the "
			    "message cannot be converted", c->host);
			group_all(g, QR_FAILED, text, 0, NULL, "5.6.3");
			return -1;
		}
	}
	return 0;
}

static void
conn_run_group(struct qconn *c)
{
	struct qgroup *g = c->group;
	int rc = precheck(c, g);

	if (rc > 0) {
		smtpc_close(&c->s);
		conn_try_addr(c);
		return;
	}
	if (rc < 0) {
		c->group = NULL;
		/* Settled without sending: the connection may serve others. */
		if ((g = dest_pop(c->dest)) != NULL && c->s != NULL && smtpc_usable(c->s)) {
			c->group = g;
			conn_run_group(c);
			return;
		}
		if (g != NULL) {
			*c->dest->wait_tail = g;   /* put back; a new connection takes it */
			c->dest->wait_tail = &g->next;
		}
		conn_release(c);
		return;
	}
	smtpc_send(c->s, &g->sm, sent, c);
}

static void
sent(void *arg, struct smtpc_session *s, const struct smtpc_result *res)
{
	struct qconn *c = arg;
	struct qgroup *g = c->group;
	int dsn = smtpc_caps(s)->dsn;
	size_t i;

	c->group = NULL;
	c->txns++;
	for (i = 0; i < g->n; i++) {
		const struct smtpc_reply *rp = &g->rc[i].reply;
		struct qr_rcpt_run *rr = &g->m->run[g->idx[i]];
		enum qr_outcome o;

		if (rp->code / 100 == 2)
			rp = &res->reply;   /* accepted: the final word decides */
		else if (rp->code == 0)
			rp = &res->reply;   /* MAIL refused, or the connection died */
		o = outcome_of(rp->code);
		if (o == QR_DELIVERED && !res->delivered)
			o = QR_DEFERRED;
		qr_rcpt_result(g->m, g->idx[i], o, rp->text[0] != '\0' ? rp->text :
		    "lost connection", rp->code != 0, c->host, rp->status);
		if (o == QR_DELIVERED && !dsn)
			rr->dsn_relayed = 1;
	}
	log_info(g->m->env.id, "event=smtp-sent host=%s conn=%s rcpts=%zu accepted=%zu "
	    "delivered=%d reply=\"%.200s\"", c->host, c->id, g->n, res->accepted, res->delivered,
	    res->reply.text);
	group_done(g);
	if (c->r->stopping)
		return;
	if (smtpc_usable(s) && c->txns < c->r->set.max_msgs_per_conn &&
	    (g = dest_pop(c->dest)) != NULL) {
		c->group = g;
		conn_run_group(c);
		return;
	}
	conn_release(c);
}

void
qa_reloaded(struct queue_runner *r)
{
	struct qdest *d;
	struct qgroup *g;

	for (d = r->dests; d != NULL && r->set.relayhost[0] == '\0'; d = d->next) {
		if (strcmp(d->name, "[relay]") != 0)
			continue;
		/* Untried: the attempt ends without an outcome for these
		 * recipients, which are then due again, now direct. */
		while ((g = dest_pop(d)) != NULL)
			group_done(g);
	}
	dispatch(r);
}

void
qa_stop_all(struct queue_runner *r)
{
	struct qdest *d;
	struct qgroup *g;

	while (r->conns != NULL) {
		struct qconn *c = r->conns;

		r->conns = c->next;
		dns_cancel(&c->dq);
		smtpc_free(&c->s);
		if (c->group != NULL)
			group_free(c->group);
		free(c);
	}
	for (d = r->dests; d != NULL; d = d->next)
		while ((g = dest_pop(d)) != NULL)
			group_free(g);
	r->nconns = 0;
}
