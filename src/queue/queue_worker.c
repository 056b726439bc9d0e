/*
 * The runner's blocking work, on its worker threads: reading a message and
 * sorting its recipients (local ones are delivered right here, through
 * delivery_msg like mail from SMTP), and at the end of an attempt sending
 * the DSNs it causes and recording it in the envelope.
 */
#include "queue/queue_runner_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "directory/directory.h"

#define QR_DSN_FULL_MAX (10u << 20)  /* larger messages come back as headers */

static const unsigned char empty_message[1];

static int
map_message(struct qmsg *m, const char **error_r)
{
	struct stat st;
	void *p;
	int fd;

	if (m->data != NULL)
		return 0;
	if ((fd = queue_message_open(m->r->q, m->env.id, error_r)) < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		*error_r = "cannot read a queued message";
		return -1;
	}
	if (st.st_size == 0) {
		close(fd);
		m->data = (unsigned char *)empty_message;
		m->size = 0;
		return 0;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		*error_r = "cannot map a queued message";
		return -1;
	}
	m->data = p;
	m->size = (size_t)st.st_size;
	return 0;
}

void
qw_release(struct qmsg *m)
{
	if (m->data != NULL && m->data != empty_message)
		munmap(m->data, m->size);
	m->data = NULL;
	m->size = 0;
	free(m->mail_from);
	m->mail_from = NULL;
}

/* The header section of the message (for DSNs made by delivery). */
static size_t
header_len(const unsigned char *d, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (d[i] == '\n' && d[i + 1] == '\n')
			return i + 1;
		if (d[i] == '\n' && d[i + 1] == '\r' && i + 2 < len && d[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

static void
domain_of(const char *address, char *out, size_t size)
{
	const char *at = strrchr(address, '@');
	size_t i;

	snprintf(out, size, "%s", at != NULL ? at + 1 : "");
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] + 32);
}

/* Delivers the local recipients (indices in idx) in one delivery_msg. */
static void
deliver_local(struct qmsg *m, struct delivery_rcpt *drs, size_t *idx, size_t n)
{
	struct queue_runner *r = m->r;
	struct delivery_envelope de;
	struct delivery_outcome out;
	struct delivery_msg *dm;
	const char *error = NULL;
	size_t i;
	int rc;

	memset(&de, 0, sizeof(de));
	de.id = m->env.id;
	de.sender = m->env.sender;
	de.envid = m->env.envid;
	de.ret = m->env.ret;
	de.body = m->env.body;
	de.smtputf8 = m->env.smtputf8;
	de.requiretls = m->env.requiretls;
	de.rcpts = drs;
	de.nrcpts = n;
	de.header = (const char *)m->data;
	de.header_len = header_len(m->data, m->size);
	dm = delivery_msg_new(&r->svc, &de);
	rc = delivery_msg_write(dm, m->data, m->size, &error);
	if (rc == 0)
		delivery_msg_commit(dm, &out);
	else
		out.status = DELIVERY_FAILED;
	delivery_msg_free(&dm);
	for (i = 0; i < n; i++) {
		if (out.status == DELIVERY_OK && !drs[i].failed) {
			qr_rcpt_result(m, idx[i], QR_DELIVERED, "250 2.0.0 delivered locally", 0,
			    NULL, "2.0.0");
		} else if (out.status == DELIVERY_OK) {
			/* delivery sent the DSN for this one already */
			qr_rcpt_result(m, idx[i], QR_FAILED, drs[i].full ? "mailbox full" :
			    "mailbox unavailable", 0, NULL, drs[i].full ? "5.2.2" : "5.3.0");
			m->run[idx[i]].dsn_sent = 1;
		} else {
			qr_rcpt_result(m, idx[i], QR_DEFERRED, out.status == DELIVERY_FULL ?
			    "mailbox full" : "local delivery failed", 0, NULL,
			    out.status == DELIVERY_FULL ? "4.2.2" : "4.3.0");
		}
	}
}

void
qw_prepare(void *arg)
{
	struct qmsg *m = arg;
	struct queue_runner *r = m->r;
	struct delivery_rcpt *drs;
	size_t *idx, i, nlocal = 0;
	const char *error;
	int any_remote = 0;

	if (map_message(m, &error) < 0) {
		log_error(m->env.id, "event=queue-read-failed reason=\"%s\"", error);
		for (i = 0; i < m->env.nrcpts; i++)
			if (m->run[i].due)
				qr_rcpt_result(m, i, QR_DEFERRED, "cannot read the queued message",
				    0, NULL, "4.3.0");
		return;
	}
	drs = xcalloc(m->env.nrcpts, sizeof(*drs));
	idx = xcalloc(m->env.nrcpts, sizeof(*idx));
	for (i = 0; i < m->env.nrcpts; i++) {
		const struct queue_rcpt *q = &m->env.rcpts[i];
		struct qr_rcpt_run *rr = &m->run[i];
		struct delivery_rcpt *dr = &drs[nlocal];
		enum delivery_resolve_status st;

		if (!rr->due)
			continue;
		domain_of(q->address, rr->domain, sizeof(rr->domain));
		memset(dr, 0, sizeof(*dr));
		st = delivery_resolve(&r->svc, q->address, 1, m->size, dr);
		if (st == DELIVERY_RESOLVED && dr->nmailboxes == 0 && dr->nexternal == 1 &&
		    strcasecmp(dr->external[0], q->address) == 0) {
			rr->remote = 1;
			any_remote = 1;
			delivery_rcpt_clear(dr);
			continue;
		}
		switch (st) {
		case DELIVERY_RESOLVED:
			dr->address = xstrdup(q->address);
			dr->orcpt = q->orcpt != NULL ? xstrdup(q->orcpt) : NULL;
			dr->notify = q->notify;
			idx[nlocal++] = i;
			continue;
		case DELIVERY_UNKNOWN:
			qr_rcpt_result(m, i, QR_FAILED, "550 5.1.1 no such user here", 0, NULL,
			    "5.1.1");
			break;
		case DELIVERY_OVER_QUOTA:
			qr_rcpt_result(m, i, QR_DEFERRED, "mailbox full", 0, NULL, "4.2.2");
			break;
		case DELIVERY_NOT_LOCAL:
		case DELIVERY_TEMPFAIL:
			qr_rcpt_result(m, i, QR_DEFERRED, "directory unavailable", 0, NULL, "4.3.0");
			break;
		}
		delivery_rcpt_clear(dr);
	}
	if (nlocal > 0)
		deliver_local(m, drs, idx, nlocal);
	for (i = 0; i < nlocal; i++)
		delivery_rcpt_clear(&drs[i]);
	free(drs);
	free(idx);
	/* Mail from a domain not hosted here leaves with an SRS sender, so
	 * that SPF at the destination checks our name (it was forwarded). */
	if (any_remote && m->env.sender[0] != '\0') {
		char domain[DNS_NAME_MAX + 1];
		int r2;

		domain_of(m->env.sender, domain, sizeof(domain));
		r2 = domain[0] != '\0' ? directory_domain_exists(r->svc.dir, domain, &error) : 1;
		if (r2 == 0) {
			m->mail_from = queue_srs_forward(r->srs, m->env.sender, qr_now());
			log_info(m->env.id, "event=srs from=<%.320s> as=<%.400s>", m->env.sender,
			    m->mail_from);
		}
	}
}

/* --- at the end of an attempt ------------------------------------------- */

/* Gets a DSN to the sender: into the mailbox when local, else queued. */
static void
dsn_send(struct qmsg *m, const struct buf *text, const char *kind)
{
	struct queue_runner *r = m->r;
	struct delivery_rcpt dr;
	struct delivery_envelope de;
	struct delivery_outcome out;
	struct delivery_msg *dm;
	enum delivery_resolve_status st;
	const char *error = NULL;
	int done = 0;

	memset(&dr, 0, sizeof(dr));
	st = delivery_resolve(&r->svc, m->env.sender, 1, text->len, &dr);
	if (st == DELIVERY_RESOLVED) {
		dr.address = xstrdup(m->env.sender);
		dr.notify = QUEUE_NOTIFY_NEVER;
		memset(&de, 0, sizeof(de));
		de.id = m->env.id;
		de.sender = "";
		de.body = QUEUE_BODY_8BITMIME;
		de.smtputf8 = m->env.smtputf8;
		de.rcpts = &dr;
		de.nrcpts = 1;
		dm = delivery_msg_new(&r->svc, &de);
		if (delivery_msg_write(dm, text->data, text->len, &error) == 0) {
			delivery_msg_commit(dm, &out);
			done = out.status == DELIVERY_OK && !dr.failed;
		}
		delivery_msg_free(&dm);
	}
	delivery_rcpt_clear(&dr);
	if (!done && st == DELIVERY_UNKNOWN) {
		log_warn(m->env.id, "event=dsn-dropped kind=%s to=<%.320s> reason=\"no such "
		    "local user\"", kind, m->env.sender);
		return;
	}
	if (!done) {
		/* Keep it in the queue: the runner tries again later. */
		struct queue_writer *w = NULL;
		struct queue_envelope qe;
		struct queue_rcpt qr;
		int rc;

		memset(&qe, 0, sizeof(qe));
		memset(&qr, 0, sizeof(qr));
		qe.sender = "";
		qe.body = QUEUE_BODY_8BITMIME;
		qe.smtputf8 = m->env.smtputf8;
		/* A notice about a REQUIRETLS message leaves under the same
		 * requirement (RFC 8689, 5). */
		qe.requiretls = m->env.requiretls;
		qr.address = m->env.sender;
		qr.notify = QUEUE_NOTIFY_NEVER;
		qe.rcpts = &qr;
		qe.nrcpts = 1;
		rc = queue_writer_new(r->q, &w, &error);
		if (rc == 0)
			rc = queue_writer_write(w, text->data, text->len, &error);
		if (rc == 0)
			rc = queue_writer_commit(w, &qe, &error);
		queue_writer_free(&w);
		if (rc < 0) {
			log_error(m->env.id, "event=dsn-failed kind=%s reason=\"%s\"", kind, error);
			return;
		}
	}
	log_info(m->env.id, "event=dsn kind=%s to=<%.320s>", kind, m->env.sender);
}

static void
send_dsns(struct qmsg *m, enum queue_dsn_action action)
{
	struct queue_dsn d;
	struct queue_dsn_rcpt *dr;
	struct buf text = BUF_INIT;
	const char *error;
	size_t i, n = 0;
	static const char *const kinds[] = { "failed", "delayed", "delivered", "relayed" };

	dr = xcalloc(m->env.nrcpts, sizeof(*dr));
	for (i = 0; i < m->env.nrcpts; i++) {
		const struct qr_rcpt_run *rr = &m->run[i];
		const struct queue_rcpt *q = &m->env.rcpts[i];
		int want = action == QUEUE_DSN_FAILED ? rr->dsn_failed && !rr->dsn_sent :
		    action == QUEUE_DSN_DELAYED ? rr->dsn_delayed : rr->dsn_relayed;

		if (!want)
			continue;
		dr[n].address = q->address;
		dr[n].orcpt = q->orcpt;
		dr[n].status = rr->status[0] != '\0' ? rr->status : NULL;
		if (action == QUEUE_DSN_RELAYED)
			dr[n].status = "2.0.0";
		dr[n].remote_mta = rr->mta;
		if (rr->from_server)
			dr[n].diagnostic = rr->reply;
		else
			dr[n].reason = rr->reply;
		n++;
	}
	if (n == 0) {
		free(dr);
		return;
	}
	if (map_message(m, &error) < 0)
		log_warn(m->env.id, "event=dsn-without-message reason=\"%s\"", error);
	memset(&d, 0, sizeof(d));
	d.hostname = m->r->set.hostname;
	d.to = m->env.sender;
	d.envid = m->env.envid;
	d.arrival = m->env.arrival;
	d.smtputf8 = m->env.smtputf8;
	d.action = action;
	d.rcpts = dr;
	d.nrcpts = n;
	if (action == QUEUE_DSN_DELAYED)
		d.retry_until = m->retry_until;
	if (m->data != NULL) {
		d.original = (const char *)m->data;
		d.original_len = m->size;
		/* A REQUIRETLS message's content never comes back in a notice
		 * that may travel without TLS (RFC 8689, 5): headers only. */
		d.headers_only = m->env.ret == QUEUE_RET_HDRS || m->size > QR_DSN_FULL_MAX ||
		    action != QUEUE_DSN_FAILED || m->env.requiretls;
	}
	queue_dsn_format(&text, &d);
	free(dr);
	dsn_send(m, &text, kinds[action]);
	buf_free(&text);
}

void
qw_finish(void *arg)
{
	struct qmsg *m = arg;
	struct queue_runner *r = m->r;
	const char *error;
	size_t i;
	int open = 0;

	if (m->job_delete) {
		if (queue_remove(r->q, m->env.id, &error) < 0) {
			log_error(m->env.id, "event=queue-remove-failed reason=\"%s\"", error);
			return;
		}
		m->removed = 1;
		log_info(m->env.id, "event=removed reason=admin");
		return;
	}
	send_dsns(m, QUEUE_DSN_FAILED);
	send_dsns(m, QUEUE_DSN_DELAYED);
	send_dsns(m, QUEUE_DSN_RELAYED);
	for (i = 0; i < m->env.nrcpts; i++)
		if (m->env.rcpts[i].state == QUEUE_RCPT_PENDING ||
		    m->env.rcpts[i].state == QUEUE_RCPT_DEFERRED)
			open = 1;
	if (!open) {
		if (queue_remove(r->q, m->env.id, &error) < 0) {
			log_error(m->env.id, "event=queue-remove-failed reason=\"%s\"", error);
			return;
		}
		m->removed = 1;
		log_info(m->env.id, "event=removed reason=done");
		return;
	}
	if (m->write_env && queue_update(r->q, &m->env, &error) < 0)
		log_error(m->env.id, "event=queue-update-failed reason=\"%s\"", error);
}
