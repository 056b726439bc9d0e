/*
 * SMTP sessions (RFC 5321) on the MX and submission listeners, and the pure
 * parsers they use (also unit-tested and fuzzed on their own).
 *
 * EHLO keywords and what backs them: PIPELINING (RFC 2920), SIZE (1870),
 * 8BITMIME (6152), SMTPUTF8 (6531), ENHANCEDSTATUSCODES (2034), CHUNKING and
 * BINARYMIME (3030), DSN (3461: NOTIFY, RET, ENVID, ORCPT kept with the
 * queued message), STARTTLS (3207), AUTH (4954, under TLS on the submission
 * ports only) and REQUIRETLS (8689, under TLS only).
 *
 * End of data is <CRLF>.<CRLF> and nothing else. A message with a bare LF or
 * a bare CR (every "SMTP smuggling" variant has one) is read to its real end
 * and refused with 550 5.6.0; nothing in it is ever taken as a command.
 */
#ifndef PETREL_PROTO_SMTP_H
#define PETREL_PROTO_SMTP_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/*
 * Limits a client controls. The configurable ones (struct config, keys
 * smtp_*: command line length, message size, recipients, errors, data
 * rate, timeouts, the pregreet delay) are not here.
 */
#define SMTP_AUTH_LINE_MAX 12288    /* a SASL response line (base64) */
#define SMTP_HEADER_MAX (256 * 1024) /* the top-level header section */
#define SMTP_RECEIVED_MAX 50        /* Received: fields: more is a loop */
#define SMTP_FLUSH_SIZE (256 * 1024) /* message bytes held before writing them out */
/* Client addresses that passed the MX pregreet test are remembered this
 * long. */
#define SMTP_PREGREET_TTL_S (24 * 3600)

#define SMTP_LOCAL_MAX 64           /* octets of a local part (RFC 5321 4.5.3.1.1) */
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
#define SMTP_ENVID_MAX 100          /* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX 500          /* RFC 3461 4.2 */

/* --- MAIL and RCPT arguments (smtp_parse.c) ---------------------------- */

/* What the session offers, for the parameters it accepts. */
enum {
	SMTP_EXT_ESMTP = 1 << 0,        /* EHLO was used: parameters allowed */
	SMTP_EXT_REQUIRETLS = 1 << 1,   /* under TLS */
	SMTP_EXT_SMTPUTF8 = 1 << 2,     /* RCPT: the MAIL had SMTPUTF8 */
};

enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

/* NOTIFY bits; the same values as QUEUE_NOTIFY_*. */
enum {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};

struct smtp_mail {
	char *sender;               /* "" for <>; allocated */
	uint64_t size;              /* SIZE=, 0 when not given (UINT64_MAX: too big
	                             * to count; the session compares it with
	                             * its limit) */
	enum smtp_body body;
	enum smtp_ret ret;
	char *envid;                /* ENVID= as received (valid xtext), or NULL */
	unsigned smtputf8 : 1;
	unsigned requiretls : 1;
	unsigned body_given : 1;
};

struct smtp_rcpt {
	char *address;              /* allocated */
	unsigned notify;            /* SMTP_NOTIFY_*, 0 when not given */
	char *orcpt;                /* ORCPT= as received ("rfc822;xtext"), or NULL */
};

/* Parse what follows "MAIL " / "RCPT " ("FROM:<...> params"). On success
 * return 0 with the structure filled in (clear it with smtp_*_clear); on
 * error return -1 with *reply_r set to the whole reply line to send
 * (static). ext is a mask of SMTP_EXT_*. An address must be a plain
 * local@domain: source routes, IP literals, quoted local parts, "%", "!",
 * shell metacharacters, NULs and other control characters, (without
 * SMTPUTF8) 8-bit octets, local parts over 64 octets and domains over 255
 * are refused with 501 or 553 and a text that says which. RCPT
 * TO:<postmaster> becomes postmaster@postmaster_domain. */
int smtp_parse_mail(const char *args, unsigned ext, struct smtp_mail *mail,
    const char **reply_r);
int smtp_parse_rcpt(const char *args, unsigned ext, const char *postmaster_domain,
    struct smtp_rcpt *rcpt, const char **reply_r);
void smtp_mail_clear(struct smtp_mail *mail);
void smtp_rcpt_clear(struct smtp_rcpt *rcpt);

/* Checks an address (without angle brackets) by the rules above. 0 or -1
 * with *reply_r. */
int smtp_address_check(const char *addr, size_t len, int smtputf8, const char **reply_r);

/* --- message content (smtp_data.c) ------------------------------------- */

/*
 * The DATA state machine: takes the bytes after "354" in any split (one at a
 * time included), removes dot-stuffing and finds <CRLF>.<CRLF>. The content
 * keeps its line ends as sent. A line starts only after CRLF: a bare LF or
 * a bare CR never starts one, so "\n.\n", "\r.\r", "\n.\r\n" and the rest are
 * content, flagged in bare_lf / bare_cr. The same machine without dots
 * (dotted 0) checks BDAT chunks.
 */
struct smtp_data {
	int state;
	unsigned dotted : 1;
	unsigned bare_lf : 1;       /* an LF not after CR */
	unsigned bare_cr : 1;       /* a CR not before LF */
	unsigned done : 1;          /* end of data seen */
};

void smtp_data_init(struct smtp_data *d, int dotted);
/* Consumes input up to and including the end-of-data line; appends the
 * content to out. Returns the number of bytes consumed; d->done tells
 * whether the end was reached (never with dotted 0). */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct buf *out);
/* The last chunk ended (BDAT LAST): a CR still waiting for its LF is bare
 * (flagged, and appended to out). */
void smtp_data_finish(struct smtp_data *d, struct buf *out);

/* --- the header section (smtp_header.c) -------------------------------- */

struct smtp_header_info {
	unsigned received;          /* Received: fields */
	unsigned from_fields;       /* From: fields */
	unsigned has_date : 1;
	unsigned has_message_id : 1;
	char **from;                /* addresses of the From: field(s), as written */
	size_t nfrom;
	unsigned from_bad : 1;      /* a From: that would not parse */
};

/* Length of the header section at the start of msg, blank line included;
 * 0 while it has not ended within len. Bytes before `from` were looked at
 * by an earlier call (pass 0 the first time). */
size_t smtp_header_end(const char *msg, size_t len, size_t from);
/* Reads the fields of a header section. */
void smtp_header_scan(const char *hdr, size_t len, struct smtp_header_info *info);
void smtp_header_info_clear(struct smtp_header_info *info);
/* The addr-specs of an RFC 5322 address list (From: value, unfolded or not):
 * display names, comments and groups skipped. -1 when it does not parse. */
int smtp_address_list(const char *value, size_t len, char ***addrs_r, size_t *count_r);

#endif
