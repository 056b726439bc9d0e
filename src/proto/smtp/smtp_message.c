/*
 * Message content: DATA and BDAT bytes through the end-of-data machine,
 * the header section looked at once (loops, submission's From:, Date: and
 * Message-ID:), our Received: prepended, and the result written out on
 * the worker pool in SMTP_FLUSH_SIZE pieces, the last one with the commit.
 * Small messages thus cost one trip to the worker pool.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/xmalloc.h"
#include "proto/smtp/smtp_internal.h"

static const char *const reply_too_big =
    "552 5.3.4 Message size exceeds fixed maximum message size";
static const char *const reply_header_too_big =
    "552 5.3.4 Message header section too big";
static const char *const reply_loop =
    "554 5.4.6 Too many Received: header fields: mail loop";
static const char *const reply_bare =
    "550 5.6.0 Message refused: bare CR or LF in it (lines must end with CRLF)";
static const char *const reply_write =
    "451 4.3.0 Error writing the message, try again later";

/* --- the data timeout and the minimum data rate ------------------------ */

/* A window is over: the client must have sent smtp_min_data_rate octets a
 * second during it. Octets waiting in the input buffer count (they came);
 * a window in which we were busy writing does not. */
static void
rate_check(void *arg)
{
	struct smtp_session *s = arg;
	const struct config *cfg = s->cfg;
	uint64_t seen, got;

	if (s->closed)
		return;
	seen = s->data_octets + evbuffer_get_length(net_conn_input(s->conn));
	got = seen - s->rate_mark;
	s->rate_mark = seen;
	if (s->job == NULL && got * 1000 < cfg->smtp_min_data_rate * cfg->smtp_data_rate_window_ms) {
		log_info(s->txn != NULL ? s->txn->id : net_conn_id(s->conn), "event=slow-client "
		    "session=%s ip=%s octets=%llu window_ms=%llu", net_conn_id(s->conn),
		    net_conn_peer_ip(s->conn), (unsigned long long)got,
		    (unsigned long long)cfg->smtp_data_rate_window_ms);
		net_conn_printf(s->conn, "421 4.4.2 %s Data rate too low, closing connection\r\n",
		    smtp_host(s));
		smtp_close_conn(s);
		return;
	}
	net_timer_start(s->rate_timer, cfg->smtp_data_rate_window_ms);
}

static void
rate_start(struct smtp_session *s)
{
	const struct config *cfg = s->cfg;

	if (cfg->smtp_min_data_rate == 0 || cfg->smtp_data_rate_window_ms == 0)
		return;
	if (s->rate_timer == NULL)
		s->rate_timer = net_timer_new(net_conn_loop(s->conn), rate_check, s);
	s->rate_mark = s->data_octets + evbuffer_get_length(net_conn_input(s->conn));
	net_timer_start(s->rate_timer, cfg->smtp_data_rate_window_ms);
}

void
smtp_message_stop(struct smtp_session *s)
{
	if (s->rate_timer != NULL)
		net_timer_stop(s->rate_timer);
	if (!s->closed)
		net_conn_set_timeout(s->conn, s->cfg->timeout_smtp_ms);
}

void
smtp_message_begin(struct smtp_session *s, int dotted)
{
	struct smtp_txn *txn = s->txn;
	struct delivery_envelope *env = &txn->env;

	net_conn_set_timeout(s->conn, s->cfg->timeout_smtp_data_ms);
	rate_start(s);

	smtp_data_init(&txn->data, dotted);
	txn->bdat = !dotted;
	txn->svc.dir = s->ctx->dir;
	txn->svc.store = s->ctx->store;
	txn->svc.queue = s->ctx->queue;
	txn->svc.srs = s->ctx->srs;
	txn->svc.hostname = s->cfg->hostname;
	env->id = txn->id;
	env->sender = txn->mail.sender;
	env->envid = txn->mail.envid;
	env->ret = (enum queue_ret)txn->mail.ret;
	env->body = (enum queue_body)txn->mail.body;
	env->smtputf8 = txn->mail.smtputf8;
	env->requiretls = txn->mail.requiretls;
	env->rcpts = txn->rcpts;
	env->nrcpts = txn->nrcpts;
}

static void
rfc5322_date(char *out, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* "(Authenticated sender: USER)" as Postfix writes it (smtp_received_auth),
 * with anything that could end the comment or the field replaced. */
static void
put_auth_comment(struct buf *b, const char *user)
{
	const unsigned char *p;

	buf_puts(b, "\r\n\t(Authenticated sender: ");
	for (p = (const unsigned char *)user; *p != '\0'; p++)
		buf_putc(b, *p > ' ' && *p < 0x7f && *p != '(' && *p != ')' && *p != '\\' ?
		    (char)*p : '?');
	buf_putc(b, ')');
}

/* RFC 5321 4.4 with RFC 3848 / RFC 6531 protocol names. */
static void
put_received(struct smtp_session *s, struct buf *b)
{
	struct smtp_txn *txn = s->txn;
	const char *ip = net_conn_peer_ip(s->conn), *version, *cipher;
	char date[64], proto[16];
	int tls = net_conn_is_tls(s->conn);

	snprintf(proto, sizeof(proto), "%s%s%s",
	    !s->esmtp ? "SMTP" : txn->mail.smtputf8 ? "UTF8SMTP" : "ESMTP",
	    s->esmtp && tls ? "S" : "", s->esmtp && s->user != NULL ? "A" : "");
	rfc5322_date(date, sizeof(date));
	buf_printf(b, "Received: from %s (%s%s%s)", s->helo != NULL ? s->helo : "unknown",
	    strchr(ip, ':') != NULL ? "[IPv6:" : "[", ip, "]");
	if (s->user != NULL && s->cfg->smtp_received_auth && smtp_is_submission(s))
		put_auth_comment(b, s->user);
	buf_printf(b, "\r\n\tby %s (Petrel) with %s id %s", smtp_host(s), proto, txn->id);
	version = net_conn_tls_version(s->conn);
	cipher = net_conn_tls_cipher(s->conn);
	if (tls && version != NULL && cipher != NULL)
		buf_printf(b, "\r\n\t(using %s with cipher %s)", version, cipher);
	if (txn->nrcpts == 1)
		buf_printf(b, "\r\n\tfor <%s>", txn->rcpts[0].address);
	buf_printf(b, ";\r\n\t%s\r\n", date);
}

/* The header section is complete (end: its length in txn->hdr): look at
 * it and start the output with our fields, then the message as sent. */
static void
header_complete(struct smtp_session *s, size_t end)
{
	struct smtp_txn *txn = s->txn;

	txn->hdr_done = 1;
	txn->hdr_len = end;
	txn->env.header = txn->hdr.data;
	txn->env.header_len = end;
	smtp_header_scan(buf_cstr(&txn->hdr), end, &txn->info);
	if (txn->info.received >= SMTP_RECEIVED_MAX) {
		txn->reject = reply_loop;
		return;
	}
	put_received(s, &txn->out);
	if (smtp_is_submission(s)) {
		if (!txn->info.has_date) {
			char date[64];

			rfc5322_date(date, sizeof(date));
			buf_printf(&txn->out, "Date: %s\r\n", date);
		}
		if (!txn->info.has_message_id)
			buf_printf(&txn->out, "Message-ID: <%s.%lld@%s>\r\n", txn->id,
			    (long long)time(NULL), smtp_host(s));
	}
	buf_append(&txn->out, txn->hdr.data, txn->hdr.len);
}

/* Decoded content, in order. */
static void
content_add(struct smtp_session *s, const char *data, size_t len)
{
	struct smtp_txn *txn = s->txn;
	size_t end, from;

	txn->size += len;
	if (txn->reject != NULL || len == 0)
		return;
	if (txn->size > s->cfg->smtp_max_message_size) {
		/* The rest is read and dropped; what was written goes now. */
		log_info(txn->id, "event=too-big session=%s limit=%llu", net_conn_id(s->conn),
		    (unsigned long long)s->cfg->smtp_max_message_size);
		txn->reject = reply_too_big;
		buf_free(&txn->out);
		delivery_msg_free(&txn->msg);
		return;
	}
	if (txn->hdr_done) {
		buf_append(&txn->out, data, len);
		return;
	}
	from = txn->hdr.len;
	buf_append(&txn->hdr, data, len);
	end = smtp_header_end(txn->hdr.data, txn->hdr.len, from);
	if (end > 0)
		header_complete(s, end);
	else if (txn->hdr.len > SMTP_HEADER_MAX)
		txn->reject = reply_header_too_big;
}

/* --- jobs -------------------------------------------------------------- */

static void
write_out(struct smtp_job *job)
{
	struct smtp_txn *txn = job->txn;

	job->result = 0;
	if (txn->msg == NULL)
		txn->msg = delivery_msg_new(&txn->svc, &txn->env);
	if (txn->out.len > 0 &&
	    delivery_msg_write(txn->msg, txn->out.data, txn->out.len, &job->error) < 0) {
		log_error(txn->id, "event=write-failed reason=\"%s\"", job->error);
		job->result = -1;
	}
	buf_reset(&txn->out);
}

static void
flush_work(struct smtp_job *job)
{
	write_out(job);
}

static void
flush_done(struct smtp_session *s, struct smtp_job *job)
{
	struct smtp_txn *txn = s->txn;

	if (job->result < 0 && txn->reject == NULL) {
		/* Nothing of it will be kept: free the space at once. */
		txn->reject = reply_write;
		delivery_msg_free(&txn->msg);
	}
	if (job->reply_chunk) {
		s->state = SMTP_READY;
		if (txn->reject != NULL) {
			smtp_reply(s, txn->reject);
			smtp_txn_reset(s);
			return;
		}
		net_conn_printf(s->conn, "250 2.0.0 %llu octets received\r\n",
		    (unsigned long long)txn->size);
	}
}

static void
flush_start(struct smtp_session *s, int reply_chunk)
{
	struct smtp_job *job = smtp_job_new(s);

	job->reply_chunk = reply_chunk;
	smtp_job_start(s, job, flush_work, flush_done);
}

/* Submission: every From: address must be the user's. */
static const char *
check_from(struct smtp_job *job)
{
	struct smtp_txn *txn = job->txn;
	size_t i;

	if (txn->info.from_fields == 0)
		return "550 5.7.1 Message has no From: header field";
	if (txn->info.from_bad || txn->info.from_fields > 1)
		return "550 5.7.1 Malformed From: header field";
	for (i = 0; i < txn->info.nfrom; i++) {
		int r = delivery_address_owned(&job->svc, job->account_id, txn->info.from[i]);

		if (r < 0)
			return "451 4.3.0 Temporary lookup failure, try again later";
		if (r == 0)
			return "550 5.7.1 From: header address is not owned by the authenticated user";
	}
	return NULL;
}

static void
commit_work(struct smtp_job *job)
{
	struct smtp_txn *txn = job->txn;

	if (job->account_id != 0 && (job->error = check_from(job)) != NULL)
		return;
	write_out(job);
	if (job->result < 0) {
		job->error = reply_write;
		return;
	}
	delivery_msg_commit(txn->msg, &job->outcome);
}

static void
commit_done(struct smtp_session *s, struct smtp_job *job)
{
	struct smtp_txn *txn = s->txn;
	const struct delivery_outcome *o = &job->outcome;
	char sender[330];

	s->state = SMTP_READY;
	log_quote(sender, sizeof(sender), txn->mail.sender, 320);
	if (job->error != NULL) {
		smtp_reply(s, job->error);
		log_info(txn->id, "event=rejected session=%s from=<%s> reason=\"%s\"",
		    net_conn_id(s->conn), sender, job->error);
	} else if (o->status == DELIVERY_OK) {
		net_conn_printf(s->conn, "250 2.0.0 Ok: queued as %s\r\n", txn->id);
		log_info(txn->id, "event=accepted session=%s from=<%s> rcpts=%zu size=%llu "
		    "stored=%zu failed=%zu queue_id=%s", net_conn_id(s->conn), sender, txn->nrcpts,
		    (unsigned long long)txn->size, o->stored, o->failed,
		    o->queue_id[0] != '\0' ? o->queue_id : "-");
	} else if (o->status == DELIVERY_FULL) {
		smtp_reply(s, "452 4.2.2 Mailbox full, try again later");
	} else {
		smtp_reply(s, "451 4.3.0 Local error in processing, try again later");
	}
	smtp_txn_reset(s);
}

/* --- the end of the content -------------------------------------------- */

static void
message_end(struct smtp_session *s)
{
	struct smtp_txn *txn = s->txn;
	struct smtp_job *job;
	const char *reject;

	s->state = SMTP_READY;
	smtp_message_stop(s);
	if (!txn->hdr_done && txn->reject == NULL)
		header_complete(s, txn->hdr.len);
	if (txn->reject == NULL && (txn->data.bare_lf || txn->data.bare_cr) &&
	    txn->mail.body != SMTP_BODY_BINARYMIME)
		txn->reject = reply_bare;
	if ((reject = txn->reject) != NULL) {
		log_info(txn->id, "event=rejected session=%s size=%llu reason=\"%s\"",
		    net_conn_id(s->conn), (unsigned long long)txn->size, reject);
		smtp_txn_reset(s);
		/* Our own failure is not the client's error. */
		if (reject == reply_write)
			smtp_reply(s, reject);
		else
			smtp_error(s, reject);
		return;
	}
	job = smtp_job_new(s);
	job->commit = 1;
	if (smtp_is_submission(s))
		job->account_id = s->account_id;
	s->state = SMTP_WAITING;
	smtp_job_start(s, job, commit_work, commit_done);
}

/* A BDAT chunk has been read. Returns 1 to go on with commands. */
static int
chunk_end(struct smtp_session *s)
{
	struct smtp_txn *txn = s->txn;

	s->state = SMTP_READY;
	if (s->bdat_reply != NULL) {
		/* 452 (no room) is not the client's error. */
		if (s->bdat_reply[0] == '4')
			smtp_reply(s, s->bdat_reply);
		else
			smtp_error(s, s->bdat_reply);
		s->bdat_reply = NULL;
		return !s->closed;
	}
	if (txn->reject != NULL && txn->reject != reply_write) {
		/* RFC 3030 4.2: the failed chunk ends the transaction. */
		const char *reject = txn->reject;

		smtp_txn_reset(s);
		smtp_error(s, reject);
		return !s->closed;
	}
	if (!txn->last)
		net_conn_set_timeout(s->conn, s->cfg->timeout_smtp_ms);
	if (txn->last) {
		buf_reset(&txn->chunk);
		smtp_data_finish(&txn->data, &txn->chunk);
		content_add(s, txn->chunk.data, txn->chunk.len);
		message_end(s);
		return s->job == NULL;
	}
	if (txn->out.len >= SMTP_FLUSH_SIZE) {
		flush_start(s, 1);
		return 0;
	}
	net_conn_printf(s->conn, "250 2.0.0 %llu octets received\r\n",
	    (unsigned long long)txn->size);
	return 1;
}

int
smtp_message_read(struct smtp_session *s)
{
	struct evbuffer *in = net_conn_input(s->conn);
	struct smtp_txn *txn = s->txn;

	for (;;) {
		struct evbuffer_iovec v;
		size_t n, used;

		if (s->state == SMTP_BDAT && s->bdat_left == 0)
			return chunk_end(s);
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return 0;
		n = v.iov_len;
		if (s->state == SMTP_BDAT) {
			if (n > s->bdat_left)
				n = (size_t)s->bdat_left;
			s->bdat_left -= n;
			if (s->bdat_reply != NULL) {
				evbuffer_drain(in, n);
				continue;
			}
		}
		buf_reset(&txn->chunk);
		used = smtp_data_feed(&txn->data, v.iov_base, n, &txn->chunk);
		evbuffer_drain(in, used);
		s->data_octets += used;
		content_add(s, txn->chunk.data, txn->chunk.len);
		if (s->state == SMTP_DATA && txn->data.done) {
			message_end(s);
			return s->job == NULL && !s->closed;
		}
		if (txn->out.len >= SMTP_FLUSH_SIZE && txn->reject == NULL) {
			flush_start(s, 0);
			return 0;
		}
	}
}
