/*
 * POP3 sessions (RFC 1939) on the pop3 and pop3s listeners.
 *
 * This is the part of the protocol that stands on the foundation: greeting,
 * CAPA (RFC 2449), STLS (RFC 2595), USER/PASS and AUTH (RFC 5034: PLAIN,
 * LOGIN, SCRAM-SHA-256), all only under TLS, with the response codes of
 * RFC 2449 and RFC 3206, and QUIT. The maildrop comes with the mail store;
 * until then, after login, STAT, LIST, RETR, DELE, RSET, TOP and UIDL are
 * answered -ERR [SYS/TEMP] and no capability that depends on the maildrop
 * (TOP, UIDL, EXPIRE) is announced. APOP is not offered.
 *
 * The protocol table is proto_pop3 (src/proto/proto.h).
 */
#ifndef PETREL_PROTO_POP3_H
#define PETREL_PROTO_POP3_H

#define POP3_LINE_MAX 512           /* a command line (RFC 2449 says 255) */
#define POP3_AUTH_LINE_MAX 12288    /* a SASL response line (base64) */
#define POP3_ERRORS_MAX 10          /* bad commands before we hang up */

#endif
