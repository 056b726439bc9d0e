/*
 * IMAP sessions (RFC 3501, RFC 9051) on the imap and imaps listeners.
 *
 * This is the part of the protocol that stands on the foundation: greeting,
 * CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), STARTTLS, LOGIN and AUTHENTICATE
 * (PLAIN, LOGIN, SCRAM-SHA-256, with SASL-IR of RFC 4959; only under TLS),
 * and the LITERAL- extension (RFC 7888). Mailbox access comes with the mail
 * store; until then, after login, mailbox commands are answered
 * NO [UNAVAILABLE] and no capability that depends on the store is announced.
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

#endif
