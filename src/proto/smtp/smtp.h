/*
 * SMTP sessions (RFC 5321) on the MX and submission listeners.
 *
 * This is the part of the protocol that stands on the foundation: greeting,
 * EHLO/HELO, STARTTLS (RFC 3207), AUTH (RFC 4954: PLAIN, LOGIN,
 * SCRAM-SHA-256, only under TLS and only on the submission ports), RSET,
 * NOOP, HELP, VRFY (252, reveals nothing), EXPN (refused) and QUIT. Mail
 * transactions (MAIL, RCPT, DATA, BDAT) come with the mail store and the
 * delivery service; until then they are answered 502 and no EHLO keyword
 * that depends on them is announced.
 */
#ifndef PETREL_PROTO_SMTP_H
#define PETREL_PROTO_SMTP_H

#define SMTP_LINE_MAX 4096          /* a command line, without CRLF */
#define SMTP_AUTH_LINE_MAX 12288    /* a SASL response line (base64) */
#define SMTP_ERRORS_MAX 20          /* bad commands before we hang up */

#endif
