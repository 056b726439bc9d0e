/*
 * IMAP sessions (RFC 3501, RFC 9051) on the imap and imaps listeners.
 *
 * Before login: greeting, CAPABILITY, NOOP, LOGOUT, ID (RFC 2971),
 * STARTTLS, LOGIN and AUTHENTICATE (PLAIN, LOGIN, SCRAM-SHA-256, with
 * SASL-IR of RFC 4959; only under TLS), LITERAL- (RFC 7888). After login,
 * LITERAL+ and, on the mail store, the mailbox commands and extensions that
 * imap_session.c announces (CONDSTORE/QRESYNC, MULTIAPPEND, SORT/THREAD,
 * OBJECTID, PREVIEW...); without a store, mailbox commands are answered
 * NO [UNAVAILABLE] and no capability that depends on it is announced.
 *
 * The protocol table is proto_imap (src/proto/proto.h).
 */
#ifndef PETREL_PROTO_IMAP_H
#define PETREL_PROTO_IMAP_H

#define IMAP_COMMAND_MAX_PRELOGIN 8192   /* a whole command before login */
#define IMAP_COMMAND_MAX 65536           /* a whole command after login */
#define IMAP_ARGS_MAX_PRELOGIN 64        /* arguments before login */
#define IMAP_ARGS_MAX 4096               /* arguments after login */
#define IMAP_DEPTH_MAX 8                 /* nesting of parenthesized lists */
#define IMAP_AUTH_LINE_MAX 12288         /* a SASL response line (base64) */
#define IMAP_ERRORS_MAX 20               /* BAD replies before we hang up */
#define IMAP_ID_PAIRS_MAX 30             /* RFC 2971 */
#define IMAP_ID_STRING_MAX 1024          /* RFC 2971 */

/* Timeouts. After login a session may be idle for timeout_imap (30 min by
 * default: RFC 9051 5.4's minimum), IDLE included: RFC 2177 clients
 * re-issue IDLE every 29 minutes. Before login it gets half of that, at
 * most IMAP_PRELOGIN_TIMEOUT_MS. An IDLE session is sent "* OK Still
 * here" every IMAP_IDLE_KEEPALIVE_MS (a third of timeout_imap if that is
 * shorter) so that NATs keep the connection; that output does not restart
 * the timeout, only the client's input does. */
#define IMAP_PRELOGIN_TIMEOUT_MS (60 * 1000)
#define IMAP_IDLE_KEEPALIVE_MS (2 * 60 * 1000)

#endif
