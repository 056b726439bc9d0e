/*
 * One outgoing SMTP connection: a small state machine over a libevent
 * bufferevent (plain, then OpenSSL after STARTTLS).
 *
 * Every command expects replies in order; `expect` counts the replies still
 * due and `step` says what the next one answers. Input that arrives when no
 * reply is due (junk after the greeting, a reply nobody asked for) ends the
 * session, so a server can never shift replies onto the wrong commands.
 *
 * Callbacks to the user run from libevent callbacks only (bufferevents are
 * deferred; immediate errors go through a zero timer), and a session the
 * user frees inside a callback is released once the callback returns.
 */
#include "smtpc/smtpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define SMTPC_CHUNK (256 * 1024)    /* body bytes queued at a time */
#define SMTPC_QUIT_MS 5000

enum smtpc_state {
	ST_CONNECTING,
	ST_GREETING,
	ST_EHLO,
	ST_HELO,
	ST_STARTTLS,
	ST_HANDSHAKE,
	ST_AUTH,
	ST_READY,       /* idle, between transactions */
	ST_RSET,
	ST_TXN,         /* MAIL / RCPT / DATA replies due */
	ST_BODY,        /* sending the message */
	ST_FINAL,       /* the reply after the message is due */
	ST_QUIT,
	ST_DEAD,
};

struct smtpc_session {
	struct event_base *base;
	struct smtpc_settings set;     /* a copy; its strings point to these: */
	char *helo, *auth_user, *auth_password;
	struct dns_addr addr;
	char host[DNS_NAME_MAX + 1];
	char id[LOG_ID_SIZE + 8];
	char ip[64];
	int fd;
	struct bufferevent *bev;
	SSL *ssl;
	struct event *timer;
	enum smtpc_state state;
	struct smtpc_reply_parser parser;
	struct smtpc_caps caps;
	unsigned tls : 1, verified : 1, need_rset : 1, closing : 1, dead : 1,
	    esmtp_tried : 1, reported : 1, tls_failed : 1;
	int busy;               /* inside a libevent callback */
	int freed;              /* freed by the user while busy */
	/* a failure to report from the timer (immediate errors) */
	char pending_error[SMTPC_TEXT_MAX + 1];
	int pending;

	smtpc_open_fn *open_fn;
	smtpc_send_fn *send_fn;
	void *arg;

	/* the transaction */
	struct smtpc_message *msg;
	struct smtpc_result result;
	size_t step;            /* 0 MAIL, 1..n RCPT, n+1 DATA */
	size_t expect;          /* replies due */
	int mail_ok;
	int chunking;           /* BDAT instead of DATA */
	size_t body_pos;
	int at_line_start;
	int last_cr;
};

static void session_release(struct smtpc_session *s);
static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

/* --- small helpers ------------------------------------------------------ */

const struct smtpc_caps *
smtpc_caps(const struct smtpc_session *s)
{
	return &s->caps;
}

int
smtpc_tls_active(const struct smtpc_session *s)
{
	return s->tls;
}

int
smtpc_tls_verified(const struct smtpc_session *s)
{
	return s->tls && s->verified;
}

int
smtpc_tls_failed(const struct smtpc_session *s)
{
	return s->tls_failed;
}

int
smtpc_usable(const struct smtpc_session *s)
{
	return s->state == ST_READY && !s->dead;
}

const char *
smtpc_host(const struct smtpc_session *s)
{
	return s->host;
}

static void
arm(struct smtpc_session *s, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(s->timer, &tv);
}

static void
send_line(struct smtpc_session *s, const char *line)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	size_t len = strlen(line);
	char shown[84];

	/* Never a password in the log. */
	snprintf(shown, sizeof(shown), "%.80s", strncmp(line, "AUTH", 4) == 0 ?
	    "AUTH PLAIN ..." : line);
	log_debug(s->id, "event=smtpc-send line=\"%s\"", shown);
	evbuffer_add(out, line, len);
	evbuffer_add(out, "\r\n", 2);
}

static void
close_transport(struct smtpc_session *s)
{
	if (s->bev != NULL && s->ssl == NULL) {
		/* The plain bufferevent does not own its socket. */
		evutil_socket_t fd = bufferevent_getfd(s->bev);

		bufferevent_free(s->bev);
		s->bev = NULL;
		if (fd >= 0 && fd != s->fd)
			close(fd);
	} else if (s->bev != NULL) {
		bufferevent_free(s->bev);   /* closes the socket, frees the SSL */
		s->bev = NULL;
		s->ssl = NULL;
	}
	if (s->ssl != NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

/* Ends the session with a failure and reports it once to whoever waits. */
static void
session_fail(struct smtpc_session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
session_fail(struct smtpc_session *s, int code, const char *fmt, ...)
{
	enum smtpc_state st = s->state;
	char text[SMTPC_TEXT_MAX + 1];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (i = 0; text[i] != '\0'; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f)
			text[i] = '?';
	evtimer_del(s->timer);
	close_transport(s);
	s->state = ST_DEAD;
	s->dead = 1;
	if (st == ST_QUIT || s->closing) {
		s->freed = 1;   /* nobody waits: smtpc_close handed it over */
		return;
	}
	log_info(s->id, "event=smtpc-failed host=%s ip=%s reason=\"%s\"", s->host, s->ip, text);
	if (st <= ST_AUTH) {
		if (!s->reported) {
			s->reported = 1;
			s->open_fn(s->arg, s, code, text);
		}
		return;
	}
	if (st == ST_TXN || st == ST_BODY || st == ST_FINAL || st == ST_RSET) {
		if (s->result.reply.code == 0 || st == ST_FINAL || st == ST_BODY) {
			s->result.reply.code = code;
			s->result.reply.status[0] = '\0';
			snprintf(s->result.reply.text, sizeof(s->result.reply.text), "%s", text);
		}
		s->result.delivered = 0;
		s->msg = NULL;
		s->send_fn(s->arg, s, &s->result);
	}
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc_session *s = arg;
	static const char *const stage[] = {
		"connecting", "waiting for the greeting", "waiting for the EHLO reply",
		"waiting for the HELO reply", "waiting for the STARTTLS reply",
		"in the TLS handshake", "waiting for the AUTH reply", "idle",
		"waiting for the RSET reply", "waiting for a reply to MAIL/RCPT/DATA",
		"sending the message", "waiting for the reply to the message",
		"waiting for the QUIT reply", "closed",
	};

	s->busy++;
	if (s->pending) {
		s->pending = 0;
		session_fail(s, 0, "%s", s->pending_error);
	} else if (s->state == ST_QUIT) {
		close_transport(s);
		s->state = ST_DEAD;
		s->freed = 1;
	} else {
		session_fail(s, 0, "timeout %s (%s)", stage[s->state], s->host);
	}
	s->busy--;
	if (s->freed && s->busy == 0)
		session_release(s);
}

/* --- capabilities ------------------------------------------------------- */

static void
ehlo_line(void *arg, const char *text, size_t len)
{
	struct smtpc_session *s = arg;

	if (s->parser.nlines > 1)   /* the first line is the server's name */
		smtpc_caps_parse_line(&s->caps, text, len);
}

/* --- the opening: greeting, EHLO, STARTTLS, AUTH ------------------------ */

static void
send_ehlo(struct smtpc_session *s)
{
	char line[300];

	memset(&s->caps, 0, sizeof(s->caps));
	s->caps.esmtp = 1;
	snprintf(line, sizeof(line), "EHLO %s", s->set.helo);
	send_line(s, line);
	s->state = ST_EHLO;
	s->parser.line_fn = ehlo_line;
	s->parser.line_arg = s;
	s->expect = 1;
	arm(s, s->set.command_ms);
}

static void
opened(struct smtpc_session *s)
{
	s->state = ST_READY;
	s->expect = 0;
	evtimer_del(s->timer);
	log_debug(s->id, "event=smtpc-ready host=%s ip=%s tls=%d verified=%d", s->host, s->ip,
	    s->tls, s->verified);
	s->reported = 1;
	s->open_fn(s->arg, s, 0, NULL);
}

static void
after_ehlo(struct smtpc_session *s)
{
	if (!s->tls && s->caps.starttls && s->set.tls != NULL &&
	    s->set.tls_mode != SMTPC_TLS_NONE) {
		send_line(s, "STARTTLS");
		s->state = ST_STARTTLS;
		s->expect = 1;
		arm(s, s->set.command_ms);
		return;
	}
	if (!s->tls && s->set.tls_mode >= SMTPC_TLS_ENCRYPT) {
		s->tls_failed = 1;
		session_fail(s, 0, "TLS is required but %s[%s] offers no STARTTLS", s->host,
		    s->ip);
		return;
	}
	if (s->set.auth_user != NULL && s->set.auth_user[0] != '\0') {
		struct buf b = BUF_INIT, line = BUF_INIT;

		if (!s->tls) {
			session_fail(s, 0, "%s offers no TLS: not sending the password", s->host);
			return;
		}
		if (!s->caps.auth_plain) {
			session_fail(s, 0, "%s offers no AUTH PLAIN", s->host);
			return;
		}
		buf_putc(&b, '\0');
		buf_puts(&b, s->set.auth_user);
		buf_putc(&b, '\0');
		buf_puts(&b, s->set.auth_password != NULL ? s->set.auth_password : "");
		buf_puts(&line, "AUTH PLAIN ");
		base64_encode(&line, b.data, b.len);
		send_line(s, buf_cstr(&line));
		buf_wipe(&b);
		buf_wipe(&line);
		s->state = ST_AUTH;
		s->expect = 1;
		arm(s, s->set.command_ms);
		return;
	}
	opened(s);
}

static void
start_tls(struct smtpc_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct in6_addr tmp;

	/* Plaintext after the 220 would be read as if it came under TLS. */
	if (evbuffer_get_length(in) > 0) {
		session_fail(s, 0, "%s sent data after its STARTTLS reply", s->host);
		return;
	}
	bufferevent_free(s->bev);
	s->bev = NULL;
	if ((s->ssl = SSL_new(s->set.tls)) == NULL) {
		session_fail(s, 0, "cannot start TLS");
		return;
	}
	/* The chain and the name (or address) are checked in any case;
	 * whether a failed check matters is the mode's decision, or the
	 * caller's (smtpc_tls_verified). */
	if (inet_pton(AF_INET, s->host, &tmp) != 1 && inet_pton(AF_INET6, s->host, &tmp) != 1) {
		SSL_set_tlsext_host_name(s->ssl, s->host);
		SSL_set_hostflags(s->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set1_host(s->ssl, s->host);
	} else {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), s->host);
	}
	SSL_set_verify(s->ssl, SSL_VERIFY_NONE, NULL);
	s->bev = bufferevent_openssl_socket_new(s->base, s->fd, s->ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		session_fail(s, 0, "cannot start TLS");
		return;
	}
	s->fd = -1;     /* the bufferevent owns it now */
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->state = ST_HANDSHAKE;
	s->expect = 0;
	arm(s, s->set.command_ms);
}

static void
tls_ready(struct smtpc_session *s)
{
	long v = SSL_get_verify_result(s->ssl);

	s->tls = 1;
	s->verified = v == X509_V_OK && SSL_get0_peer_certificate(s->ssl) != NULL;
	log_debug(s->id, "event=smtpc-tls host=%s version=%s cipher=%s verified=%d", s->host,
	    SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl), s->verified);
	if (!s->verified && s->set.tls_mode == SMTPC_TLS_VERIFY) {
		s->tls_failed = 1;
		session_fail(s, 0, "TLS certificate of %s[%s] not verified: %s", s->host, s->ip,
		    v != X509_V_OK ? X509_verify_cert_error_string(v) : "no certificate");
		return;
	}
	send_ehlo(s);
}

/* --- transactions ------------------------------------------------------- */

static void
put_xtext_param(struct buf *b, const char *name, const char *value)
{
	buf_printf(b, " %s=", name);
	buf_puts(b, value);     /* already xtext */
}

static void
send_command(struct smtpc_session *s, size_t k)
{
	struct smtpc_message *m = s->msg;
	struct buf b = BUF_INIT;

	if (k == 0) {
		buf_printf(&b, "MAIL FROM:<%s>", m->sender);
		if (s->caps.esmtp) {
			if (s->caps.size_ext)
				buf_printf(&b, " SIZE=%zu", m->size);
			if (m->body == QUEUE_BODY_BINARYMIME && s->chunking && s->caps.binarymime)
				buf_puts(&b, " BODY=BINARYMIME");
			else if (m->body != QUEUE_BODY_7BIT && s->caps.eightbitmime)
				buf_puts(&b, " BODY=8BITMIME");
			if (m->smtputf8 && s->caps.smtputf8)
				buf_puts(&b, " SMTPUTF8");
			if (m->requiretls && s->caps.requiretls)
				buf_puts(&b, " REQUIRETLS");
			if (s->caps.dsn) {
				if (m->ret != QUEUE_RET_NONE)
					buf_puts(&b, m->ret == QUEUE_RET_FULL ? " RET=FULL" : " RET=HDRS");
				if (m->envid != NULL)
					put_xtext_param(&b, "ENVID", m->envid);
			}
		}
	} else if (k <= m->nrcpts) {
		const struct smtpc_rcpt *r = &m->rcpts[k - 1];

		buf_printf(&b, "RCPT TO:<%s>", r->address);
		if (s->caps.dsn && r->notify != 0) {
			const char *sep = "";

			buf_puts(&b, " NOTIFY=");
			if (r->notify & QUEUE_NOTIFY_NEVER) {
				buf_puts(&b, "NEVER");
			} else {
				if (r->notify & QUEUE_NOTIFY_SUCCESS) {
					buf_printf(&b, "%sSUCCESS", sep);
					sep = ",";
				}
				if (r->notify & QUEUE_NOTIFY_FAILURE) {
					buf_printf(&b, "%sFAILURE", sep);
					sep = ",";
				}
				if (r->notify & QUEUE_NOTIFY_DELAY)
					buf_printf(&b, "%sDELAY", sep);
			}
		}
		if (s->caps.dsn && r->orcpt != NULL)
			put_xtext_param(&b, "ORCPT", r->orcpt);
	} else {
		buf_puts(&b, "DATA");
	}
	send_line(s, buf_cstr(&b));
	buf_free(&b);
}

/* Queues up to SMTPC_CHUNK more bytes of the body: dot-stuffed with CRLF
 * line ends for DATA, as they are for BDAT. */
static void
fill_body(struct smtpc_session *s)
{
	struct smtpc_message *m = s->msg;
	struct evbuffer *out = bufferevent_get_output(s->bev);
	size_t end = s->body_pos + SMTPC_CHUNK, i;
	struct buf b = BUF_INIT;

	if (end > m->size)
		end = m->size;
	if (s->chunking) {
		evbuffer_add(out, m->data + s->body_pos, end - s->body_pos);
		s->body_pos = end;
	} else {
		buf_reserve(&b, (end - s->body_pos) + (end - s->body_pos) / 16 + 8);
		for (i = s->body_pos; i < end; i++) {
			unsigned char c = m->data[i];

			if (c == '\n') {
				if (!s->last_cr)
					buf_putc(&b, '\r');
				buf_putc(&b, '\n');
				s->at_line_start = 1;
				s->last_cr = 0;
				continue;
			}
			if (s->last_cr) {
				/* A bare CR becomes a line end: never an ambiguous "\r.\r". */
				buf_putc(&b, '\n');
				s->at_line_start = 1;
			}
			if (s->at_line_start && c == '.')
				buf_putc(&b, '.');
			s->at_line_start = 0;
			s->last_cr = c == '\r';
			buf_putc(&b, (char)c);
		}
		s->body_pos = end;
		if (s->body_pos == m->size) {
			if (s->last_cr)
				buf_putc(&b, '\n');
			else if (!s->at_line_start)
				buf_puts(&b, "\r\n");
			buf_puts(&b, ".\r\n");
		}
		evbuffer_add(out, b.data, b.len);
		buf_free(&b);
	}
	arm(s, s->set.data_ms);
	if (s->body_pos == m->size) {
		s->state = ST_FINAL;
		s->expect = 1;
	}
}

static void
start_body(struct smtpc_session *s)
{
	char line[64];

	s->state = ST_BODY;
	s->body_pos = 0;
	s->at_line_start = 1;
	s->last_cr = 0;
	if (s->chunking) {
		snprintf(line, sizeof(line), "BDAT %zu LAST", s->msg->size);
		send_line(s, line);
	}
	if (s->msg->size == 0 && s->chunking) {
		s->state = ST_FINAL;
		s->expect = 1;
		arm(s, s->set.data_ms);
		return;
	}
	fill_body(s);
}

static void
txn_finish(struct smtpc_session *s)
{
	struct smtpc_message *m = s->msg;

	evtimer_del(s->timer);
	s->state = ST_READY;
	s->expect = 0;
	s->msg = NULL;
	if (!s->result.delivered)
		s->need_rset = 1;
	log_debug(s->id, "event=smtpc-txn host=%s accepted=%zu/%zu reply=\"%.80s\"", s->host,
	    s->result.accepted, m->nrcpts, s->result.reply.text);
	s->send_fn(s->arg, s, &s->result);
}

static void
txn_begin(struct smtpc_session *s)
{
	struct smtpc_message *m = s->msg;
	size_t k, last;

	s->state = ST_TXN;
	s->step = 0;
	s->mail_ok = 0;
	s->chunking = s->caps.chunking;
	/* MAIL, RCPTs and DATA (not BDAT: its data must not follow blindly)
	 * in one go when the server pipelines (RFC 2920). */
	last = s->chunking ? m->nrcpts : m->nrcpts + 1;
	if (s->caps.pipelining) {
		for (k = 0; k <= last; k++)
			send_command(s, k);
		s->expect = last + 1;
	} else {
		send_command(s, 0);
		s->expect = 1;
	}
	arm(s, s->set.command_ms);
}

/* A reply to step s->step of the transaction. */
static void
txn_reply(struct smtpc_session *s, const struct smtpc_reply *r)
{
	struct smtpc_message *m = s->msg;
	size_t last = s->chunking ? m->nrcpts : m->nrcpts + 1;
	size_t k = s->step++;

	s->expect--;
	if (k == 0) {
		s->mail_ok = r->code / 100 == 2;
		if (!s->mail_ok)
			s->result.reply = *r;
	} else if (k <= m->nrcpts) {
		m->rcpts[k - 1].reply = *r;
		if (r->code / 100 == 2)
			s->result.accepted++;
	} else {
		/* DATA */
		if (r->code == 354 && s->mail_ok && s->result.accepted > 0) {
			start_body(s);
			return;
		}
		if (r->code == 354) {
			/* Nobody to send to, yet the server waits for data: end it. */
			send_line(s, ".");
			s->state = ST_FINAL;
			s->expect = 1;
			s->result.accepted = 0;
			arm(s, s->set.data_ms);
			return;
		}
		if (s->mail_ok && s->result.accepted > 0)
			s->result.reply = *r;
		txn_finish(s);
		return;
	}
	if (s->caps.pipelining) {
		if (s->expect > 0) {
			arm(s, s->set.command_ms);
			return;
		}
		/* All replies of the group are in (BDAT: DATA was not sent). */
		if (s->mail_ok && s->result.accepted > 0 && s->chunking) {
			start_body(s);
			return;
		}
		txn_finish(s);
		return;
	}
	/* One command at a time. */
	if (!s->mail_ok || (k == m->nrcpts && s->result.accepted == 0)) {
		txn_finish(s);
		return;
	}
	if (k == m->nrcpts && s->chunking) {
		start_body(s);
		return;
	}
	if (k + 1 <= last) {
		send_command(s, k + 1);
		s->expect = 1;
		arm(s, s->set.command_ms);
	}
}

static void
final_reply(struct smtpc_session *s, const struct smtpc_reply *r)
{
	s->expect--;
	if (s->result.accepted == 0) {
		/* The "." after a 354 nobody needed. */
		txn_finish(s);
		return;
	}
	s->result.reply = *r;
	s->result.delivered = r->code / 100 == 2;
	txn_finish(s);
}

/* --- replies ------------------------------------------------------------ */

static void
handle_reply(struct smtpc_session *s, const struct smtpc_reply *r)
{
	log_debug(s->id, "event=smtpc-reply state=%d reply=\"%.120s\"", s->state, r->text);
	switch (s->state) {
	case ST_GREETING:
		s->expect = 0;
		if (r->code / 100 != 2) {
			session_fail(s, r->code, "%s", r->text);
			return;
		}
		send_ehlo(s);
		return;
	case ST_EHLO:
		s->expect = 0;
		s->parser.line_fn = NULL;
		if (r->code / 100 == 2) {
			after_ehlo(s);
			return;
		}
		if (r->code / 100 == 5 && !s->tls) {
			char line[300];

			memset(&s->caps, 0, sizeof(s->caps));
			snprintf(line, sizeof(line), "HELO %s", s->set.helo);
			send_line(s, line);
			s->state = ST_HELO;
			s->expect = 1;
			arm(s, s->set.command_ms);
			return;
		}
		session_fail(s, r->code, "%s", r->text);
		return;
	case ST_HELO:
		s->expect = 0;
		if (r->code / 100 != 2) {
			session_fail(s, r->code, "%s", r->text);
			return;
		}
		after_ehlo(s);
		return;
	case ST_STARTTLS:
		s->expect = 0;
		if (r->code == 220) {
			start_tls(s);
			return;
		}
		if (s->set.tls_mode >= SMTPC_TLS_ENCRYPT) {
			s->tls_failed = 1;
			session_fail(s, r->code, "TLS is required but %s refused STARTTLS: %s",
			    s->host, r->text);
			return;
		}
		/* Opportunistic: go on without TLS. */
		s->caps.starttls = 0;
		after_ehlo(s);
		return;
	case ST_AUTH:
		s->expect = 0;
		if (r->code != 235) {
			session_fail(s, r->code, "%s", r->text);
			return;
		}
		opened(s);
		return;
	case ST_RSET:
		s->expect = 0;
		if (r->code / 100 != 2) {
			session_fail(s, r->code, "%s", r->text);
			return;
		}
		s->need_rset = 0;
		txn_begin(s);
		return;
	case ST_TXN:
		txn_reply(s, r);
		return;
	case ST_FINAL:
		final_reply(s, r);
		return;
	case ST_QUIT:
		close_transport(s);
		s->state = ST_DEAD;
		s->freed = 1;
		return;
	default:
		/* A reply nobody asked for (421 on an idle connection, junk). */
		session_fail(s, r->code, "unexpected reply from %s: %s", s->host, r->text);
		return;
	}
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc_session *s = arg;
	struct evbuffer *in;

	s->busy++;
	while (s->bev != NULL && !s->dead) {
		struct evbuffer_iovec v;
		size_t used;
		int r;

		in = bufferevent_get_input(s->bev);
		if (evbuffer_get_length(in) == 0)
			break;
		if (s->expect == 0 && s->state != ST_QUIT) {
			if (s->state == ST_READY || s->state == ST_BODY) {
				/* Maybe a 421 before closing: read it as a reply. */
				s->expect = 1;
				s->state = s->state == ST_BODY ? ST_BODY : ST_READY;
			} else {
				session_fail(s, 0, "%s sent data out of turn", s->host);
				break;
			}
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		r = smtpc_reply_feed(&s->parser, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (r < 0) {
			session_fail(s, 0, "bad reply from %s: %s", s->host, s->parser.error);
			break;
		}
		if (r == 1) {
			struct smtpc_reply reply = s->parser.reply;

			smtpc_reply_reset(&s->parser);
			handle_reply(s, &reply);
		}
	}
	s->busy--;
	if (s->freed && s->busy == 0)
		session_release(s);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc_session *s = arg;

	if (s->state == ST_BODY && s->msg != NULL) {
		s->busy++;
		fill_body(s);
		s->busy--;
		if (s->freed && s->busy == 0)
			session_release(s);
	}
}

static const char *
ssl_error_text(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		return "handshake failed";
	ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc_session *s = arg;
	char err[200];

	s->busy++;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == ST_CONNECTING) {
			int one = 1;

			s->fd = bufferevent_getfd(s->bev);
			setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			s->state = ST_GREETING;
			s->expect = 1;
			arm(s, s->set.command_ms);
		} else if (s->state == ST_HANDSHAKE) {
			tls_ready(s);
		}
	} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		int e = EVUTIL_SOCKET_ERROR();

		if (s->state == ST_CONNECTING)
			session_fail(s, 0, "connect to %s[%s]: %s", s->host, s->ip,
			    e != 0 ? strerror(e) : "failed");
		else if (s->state == ST_HANDSHAKE) {
			s->tls_failed = 1;
			session_fail(s, 0, "TLS handshake with %s[%s] failed: %s", s->host, s->ip,
			    ssl_error_text(err, sizeof(err)));
		}
		else if (s->state == ST_QUIT)
			session_fail(s, 0, "closed");
		else
			session_fail(s, 0, "lost connection with %s[%s]%s", s->host, s->ip,
			    s->state == ST_FINAL ? " after the end of data" : "");
	}
	s->busy--;
	if (s->freed && s->busy == 0)
		session_release(s);
}

/* --- the public calls --------------------------------------------------- */

struct smtpc_session *
smtpc_open(struct event_base *base, const struct smtpc_settings *set,
    const struct dns_addr *addr, const char *host, const char *id, smtpc_open_fn *fn,
    void *arg)
{
	struct smtpc_session *s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->set = *set;
	s->helo = xstrdup(set->helo != NULL ? set->helo : "localhost");
	s->auth_user = set->auth_user != NULL ? xstrdup(set->auth_user) : NULL;
	s->auth_password = set->auth_password != NULL ? xstrdup(set->auth_password) : NULL;
	s->set.helo = s->helo;
	s->set.auth_user = s->auth_user;
	s->set.auth_password = s->auth_password;
	if (s->set.tls != NULL)
		SSL_CTX_up_ref(s->set.tls);
	s->addr = *addr;
	s->fd = -1;
	snprintf(s->host, sizeof(s->host), "%s", host);
	snprintf(s->id, sizeof(s->id), "%s", id);
	dns_addr_str(addr, s->ip, sizeof(s->ip));
	s->open_fn = fn;
	s->arg = arg;
	s->timer = evtimer_new(base, timer_cb, s);
	s->state = ST_CONNECTING;
	s->bev = bufferevent_socket_new(base, -1, BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		snprintf(s->pending_error, sizeof(s->pending_error), "cannot create a socket");
		s->pending = 1;
		arm(s, 0);
		return s;
	}
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_WRITE, SMTPC_CHUNK / 4, 0);
	arm(s, s->set.connect_ms);
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&s->addr.sa,
	    (int)s->addr.len) < 0) {
		int e = EVUTIL_SOCKET_ERROR();

		snprintf(s->pending_error, sizeof(s->pending_error), "connect to %s[%s]: %s",
		    s->host, s->ip, e != 0 ? strerror(e) : "failed");
		s->pending = 1;
		arm(s, 0);
		return s;
	}
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	return s;
}

void
smtpc_send(struct smtpc_session *s, struct smtpc_message *msg, smtpc_send_fn *fn, void *arg)
{
	size_t i;

	s->msg = msg;
	s->send_fn = fn;
	s->arg = arg;
	memset(&s->result, 0, sizeof(s->result));
	for (i = 0; i < msg->nrcpts; i++)
		memset(&msg->rcpts[i].reply, 0, sizeof(msg->rcpts[i].reply));
	if (s->need_rset) {
		send_line(s, "RSET");
		s->state = ST_RSET;
		s->expect = 1;
		arm(s, s->set.command_ms);
		return;
	}
	txn_begin(s);
}

static void
session_release(struct smtpc_session *s)
{
	close_transport(s);
	if (s->timer != NULL)
		event_free(s->timer);
	free(s->helo);
	free(s->auth_user);
	if (s->auth_password != NULL) {
		OPENSSL_cleanse(s->auth_password, strlen(s->auth_password));
		free(s->auth_password);
	}
	if (s->set.tls != NULL)
		SSL_CTX_free(s->set.tls);
	free(s);
}

void
smtpc_close(struct smtpc_session **sp)
{
	struct smtpc_session *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	s->closing = 1;
	if (s->state != ST_READY || s->bev == NULL) {
		smtpc_free(&s);
		return;
	}
	send_line(s, "QUIT");
	s->state = ST_QUIT;
	s->expect = 1;
	arm(s, SMTPC_QUIT_MS);
}

void
smtpc_free(struct smtpc_session **sp)
{
	struct smtpc_session *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	if (s->busy > 0) {
		/* Inside one of its callbacks: released when it returns. */
		evtimer_del(s->timer);
		close_transport(s);
		s->state = ST_DEAD;
		s->dead = 1;
		s->freed = 1;
		return;
	}
	session_release(s);
}
