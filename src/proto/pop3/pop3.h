/*
 * POP3 sessions (RFC 1939) on the pop3 and pop3s listeners.
 *
 * AUTHORIZATION: greeting, CAPA (RFC 2449), STLS (RFC 2595), USER/PASS and
 * AUTH (RFC 5034: PLAIN, LOGIN, SCRAM-SHA-256), all only under TLS, with
 * the response codes of RFC 2449 and RFC 3206. APOP is not offered.
 *
 * TRANSACTION: the maildrop is the account's INBOX as it was at login
 * (pop3_maildrop.h); one POP3 session per maildrop, a second one gets
 * -ERR [IN-USE]. STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP. UIDL values
 * are the store's message GUIDs, permanent across restarts and index
 * rebuilds. RETR and TOP stream the message dot-stuffed with CRLF line
 * endings, chunk by chunk, never whole in memory. The job that reads a RETR's
 * message also reads the following small ones ahead (POP3_AHEAD_MAX
 * octets), so that a client downloading in order gets most messages
 * without waiting for a worker; a change committed to INBOX meanwhile
 * drops what was read ahead, so a message that another session expunged
 * is reported as below. A message expunged by another (IMAP) session
 * after login still counts in STAT and LIST; RETR and TOP of it answer
 * "-ERR Message was deleted by another session".
 *
 * UPDATE (QUIT): the messages marked with DELE are expunged in one durable
 * store operation before "+OK"; if that fails, -ERR [SYS/TEMP] and nothing
 * is deleted. Retrieved (RETR, not TOP) messages that are kept get \Seen
 * then, as Dovecot does. A connection that ends without QUIT changes
 * nothing.
 *
 * The protocol table is proto_pop3 (src/proto/proto.h).
 */
#ifndef PETREL_PROTO_POP3_H
#define PETREL_PROTO_POP3_H

#define POP3_LINE_MAX 512           /* a command line (RFC 2449 says 255) */
#define POP3_AUTH_LINE_MAX 12288    /* a SASL response line (base64) */
#define POP3_ERRORS_MAX 10          /* bad commands before we hang up */
#define POP3_CHUNK (64 * 1024)      /* bytes of a message read at a time */
/* RETR reads ahead while less than this is waiting to be sent. */
#define POP3_OUTPUT_LOWAT (128 * 1024)
/* Octets of the messages after a RETR's that its job reads too (each
 * smaller than POP3_CHUNK), for the next RETRs to send without a job. */
#define POP3_AHEAD_MAX (128 * 1024)

#endif
