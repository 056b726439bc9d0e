/*
 * The SMTP client the queue delivers with (RFC 5321): connect, greeting,
 * EHLO (HELO when EHLO is refused), STARTTLS when offered, AUTH PLAIN for a
 * relay host, then transactions: MAIL, RCPT (pipelined when the server
 * offers PIPELINING), DATA with dot-stuffing or BDAT (CHUNKING), with the
 * SIZE, BODY, SMTPUTF8, REQUIRETLS and DSN parameters the server supports.
 *
 * A session lives on one event loop; every call and callback happens on
 * that loop's thread. Every stage has a deadline (connect, each reply, each
 * stretch of data sent); a server's reply is bounded in line length and
 * line count, and anything malformed ends the session: it can cost a
 * delivery attempt, never corrupt the caller's state.
 *
 * Use: smtpc_open(); on its callback (success) check smtpc_caps() against
 * the message and call smtpc_send(); on its callback send another message
 * on the same connection, or smtpc_close() (QUIT, then the session frees
 * itself).
 */
#ifndef PETREL_SMTPC_SMTPC_H
#define PETREL_SMTPC_SMTPC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "dns/dns.h"
#include "queue/queue.h"

struct buf;
struct event_base;
struct smtpc_session;

/* --- replies ------------------------------------------------------------ */

#define SMTPC_LINE_MAX 2048         /* bytes of one reply line */
#define SMTPC_REPLY_LINES_MAX 100   /* lines of one reply */
#define SMTPC_TEXT_MAX 512          /* text kept of one reply */

struct smtpc_reply {
	int code;               /* 200..599 */
	char status[16];        /* enhanced status code ("5.1.1") or "" */
	char text[SMTPC_TEXT_MAX + 1]; /* "550 5.1.1 No such user" (printable ASCII) */
};

typedef void smtpc_line_fn(void *arg, const char *text, size_t len);

/* A resumable reply parser: feed it whatever bytes arrived. */
struct smtpc_reply_parser {
	char line[SMTPC_LINE_MAX + 1];
	size_t len;
	unsigned nlines;
	struct smtpc_reply reply;
	size_t textlen;
	const char *error;      /* set when smtpc_reply_feed returns -1 */
	smtpc_line_fn *line_fn; /* optional: each line's text (after "250-") */
	void *line_arg;
};

void smtpc_reply_reset(struct smtpc_reply_parser *p);
/* Consumes bytes of data; *used_r says how many. 1: a whole reply is in
 * p->reply (the bytes after it are not consumed), 0: all consumed, more
 * needed, -1: malformed or over a limit (p->error says which). */
int smtpc_reply_feed(struct smtpc_reply_parser *p, const char *data, size_t len,
    size_t *used_r);

struct smtpc_caps;
/* Records what one line of an EHLO reply (after "250-", not the first
 * line, which names the server) announces: PIPELINING, 8BITMIME, SIZE n,
 * AUTH PLAIN, STARTTLS, REQUIRETLS... Unknown keywords are ignored. */
void smtpc_caps_parse_line(struct smtpc_caps *caps, const char *text, size_t len);

/* --- message bodies ----------------------------------------------------- */

/* 1 when the bytes hold an octet above 127. */
int smtpc_body_is_8bit(const unsigned char *data, size_t len);
/* Converts a message with a single text/plain part (or no Content-Type) to
 * quoted-printable, for a server without 8BITMIME. Returns 0 with *out
 * filled in (allocated; the caller frees out->data), or -1 when the message
 * is not a simple text/plain one (multipart, message/..., another encoding
 * already given, or binary). */
int smtpc_body_to_qp(const unsigned char *data, size_t len, struct buf *out);

/* --- sessions ----------------------------------------------------------- */

/* How much TLS a session insists on (the idea of Postfix's security
 * levels). A session that cannot have what its mode requires fails while
 * opening, before any transaction: mail is never sent in clear to a server
 * a policy says must do TLS. */
enum smtpc_tls_mode {
	SMTPC_TLS_NONE,         /* never STARTTLS */
	SMTPC_TLS_MAY,          /* STARTTLS when offered, any certificate */
	SMTPC_TLS_ENCRYPT,      /* STARTTLS required, any certificate */
	SMTPC_TLS_VERIFY,       /* STARTTLS required, the certificate must verify
	                         * (chain to the context's CAs, and the host name) */
};

/* A session copies its settings (strings and a reference to the TLS
 * context): the caller may change or free its own afterwards. */
struct smtpc_settings {
	const char *helo;               /* our name */
	uint64_t connect_ms, command_ms, data_ms;
	SSL_CTX *tls;                   /* client context (NULL: no STARTTLS) */
	enum smtpc_tls_mode tls_mode;
	const char *auth_user;          /* AUTH PLAIN after TLS, or NULL */
	const char *auth_password;
};

struct smtpc_caps {
	unsigned esmtp : 1, pipelining : 1, eightbitmime : 1, binarymime : 1,
	    chunking : 1, smtputf8 : 1, dsn : 1, requiretls : 1, starttls : 1,
	    auth_plain : 1, size_ext : 1;
	uint64_t size;                  /* SIZE limit, 0: none announced */
};

struct smtpc_rcpt {
	const char *address;
	const char *orcpt;              /* "rfc822;xtext" or NULL */
	unsigned notify;                /* QUEUE_NOTIFY_* */
	struct smtpc_reply reply;       /* code 0: no answer (connection lost) */
};

struct smtpc_message {
	const char *sender;             /* "" for <> */
	const char *envid;              /* xtext, or NULL */
	enum queue_ret ret;
	enum queue_body body;           /* what to announce (BODY=) */
	int smtputf8, requiretls;
	const unsigned char *data;      /* the message, CRLF line ends */
	size_t size;
	struct smtpc_rcpt *rcpts;
	size_t nrcpts;
};

/* The outcome of a transaction. */
struct smtpc_result {
	/* The reply that decided for every recipient (MAIL refused, DATA
	 * refused, the final reply), or code 0 with text saying what broke. */
	struct smtpc_reply reply;
	size_t accepted;                /* recipients accepted at RCPT */
	int delivered;                  /* 1: the final reply was 2xx */
};

/* error: NULL on success, else what failed ("connect: Connection refused",
 * or the server's reply text). code: the server's reply code, or 0. */
typedef void smtpc_open_fn(void *arg, struct smtpc_session *s, int code,
    const char *error);
typedef void smtpc_send_fn(void *arg, struct smtpc_session *s,
    const struct smtpc_result *res);

/* Connects to addr; host is the server's name (for TLS SNI and certificate
 * checks; may be an IP literal), id names the session in logs. Returns the
 * session; fn runs once (maybe before this returns, on immediate errors).
 * After a failure, the session must be freed with smtpc_free. */
struct smtpc_session *smtpc_open(struct event_base *base, const struct smtpc_settings *set,
    const struct dns_addr *addr, const char *host, const char *id, smtpc_open_fn *fn,
    void *arg);
const struct smtpc_caps *smtpc_caps(const struct smtpc_session *s);
/* 1 when the session runs TLS, and the certificate checked out (chain and
 * host name) against the context's trust store. */
int smtpc_tls_active(const struct smtpc_session *s);
int smtpc_tls_verified(const struct smtpc_session *s);
/* 1 when the session failed for want of TLS: the mode required it and the
 * server offered or completed none, or its certificate did not verify. */
int smtpc_tls_failed(const struct smtpc_session *s);
/* 1 when another transaction can be sent. */
int smtpc_usable(const struct smtpc_session *s);
/* One transaction; msg (and its rcpts, whose replies are filled in) must stay
 * valid until fn runs. */
void smtpc_send(struct smtpc_session *s, struct smtpc_message *msg, smtpc_send_fn *fn,
    void *arg);
/* Says QUIT when possible and frees the session once done (no callback). */
void smtpc_close(struct smtpc_session **s);
/* Closes at once. */
void smtpc_free(struct smtpc_session **s);
/* The server's address and name, for logs and DSNs ("mx.example.net"). */
const char *smtpc_host(const struct smtpc_session *s);

#endif
