/*
 * Delivery status notifications (RFC 3464): a multipart/report with a
 * human-readable part, a message/delivery-status part (Reporting-MTA, and
 * per recipient Final-Recipient, Action, Status, Remote-MTA,
 * Diagnostic-Code) and the original message or its header section.
 *
 * Used by the queue runner (failures, delays, relays of remote deliveries)
 * and by delivery (mailboxes that failed at commit, NOTIFY=SUCCESS).
 * Pure formatting: no I/O.
 */
#ifndef PETREL_QUEUE_QUEUE_DSN_H
#define PETREL_QUEUE_QUEUE_DSN_H

#include <stddef.h>
#include <stdint.h>

struct buf;

enum queue_dsn_action {
	QUEUE_DSN_FAILED,
	QUEUE_DSN_DELAYED,
	QUEUE_DSN_DELIVERED,
	QUEUE_DSN_RELAYED,      /* handed to a server that does not do DSN */
};

struct queue_dsn_rcpt {
	const char *address;
	const char *orcpt;      /* "type;xtext" as received, or NULL */
	const char *status;     /* "5.1.1"; NULL: derived from diagnostic or action */
	const char *remote_mta; /* host name, or NULL */
	const char *diagnostic; /* the server's reply ("550 5.1.1 ..."), or NULL */
	const char *reason;     /* our own explanation when there is no reply */
};

struct queue_dsn {
	const char *hostname;   /* Reporting-MTA, and the From: domain */
	const char *to;         /* the envelope sender being told */
	const char *envid;      /* xtext, or NULL */
	int64_t arrival;        /* Unix time, 0: unknown */
	int64_t retry_until;    /* delayed: the last attempt's time, 0: unknown */
	int smtputf8;
	enum queue_dsn_action action;
	const struct queue_dsn_rcpt *rcpts;
	size_t nrcpts;
	const char *original;   /* message bytes, or NULL */
	size_t original_len;
	int headers_only;       /* RET=HDRS (or a message too big to return) */
};

/* Writes the whole notification (header and body, CRLF line ends). */
void queue_dsn_format(struct buf *out, const struct queue_dsn *d);
/* The status to report: st if it is a valid "X.Y.Z", else one derived from
 * a reply text ("550 5.1.1 ..." or "550 ..."), else from the action. */
void queue_dsn_status(char out[16], const char *st, const char *reply,
    enum queue_dsn_action action);

#endif
