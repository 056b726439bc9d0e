/*
 * Delivery: the path from an accepted message to its mailboxes and the
 * queue (DESIGN.md, "Life of a message", steps 2-4).
 *
 * A session resolves each recipient with delivery_resolve() while the
 * transaction is open, then streams the message into a delivery_msg and
 * commits it once: one store_writer_commit for every local mailbox (one
 * durable, group-committed write) and, when there are recipients elsewhere
 * (relay, forwarders to outside addresses), one queue_writer_commit. The
 * commit returns only when all of it is durable (principle 1).
 *
 * A mailbox that fails at commit (over quota, usually) when others
 * succeeded cannot be refused any more with one reply to DATA: its
 * recipient gets a failure DSN (RFC 3464) queued to the sender. When every
 * local mailbox fails and nothing is queued, or no mailbox was written
 * because of an I/O or database error (a queued copy is then taken back),
 * the whole transaction is refused instead (DELIVERY_FULL / DELIVERY_FAILED:
 * 452 / 451 4.3.0), and nothing is kept.
 *
 * Every function blocks but delivery_resolve_cached(): call them on the
 * worker pool (net_loop_submit).
 * The services may be shared by any number of threads; a delivery_msg
 * belongs to one thread at a time.
 */
#ifndef PETREL_DELIVERY_DELIVERY_H
#define PETREL_DELIVERY_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"
#include "store/store.h"

struct directory;
struct directory_stamp;
struct delivery_cache;

struct delivery_services {
	struct directory *dir;
	struct store *store;
	struct queue *queue;
	const struct queue_srs *srs; /* bounces to our SRS senders (may be NULL) */
	const char *hostname;       /* this server, for trace and DSN fields */
	struct delivery_cache *cache; /* recent resolutions (may be NULL) */
};

/* A local mailbox a recipient reaches. */
struct delivery_mailbox {
	int64_t account_id;
	struct store_quota quota;
};

/* One accepted recipient and where it leads. */
struct delivery_rcpt {
	char *address;              /* as the client gave it */
	char *orcpt;                /* DSN ORCPT ("type;xtext"), or NULL */
	unsigned notify;            /* QUEUE_NOTIFY_*, 0: not given */
	struct delivery_mailbox *mailboxes;
	size_t nmailboxes;
	char **external;            /* addresses queued for remote delivery */
	size_t nexternal;
	/* Set by delivery_msg_commit: */
	unsigned failed : 1;        /* a mailbox of it could not be written */
	unsigned full : 1;          /* ... because of its quota */
};

enum delivery_resolve_status {
	DELIVERY_RESOLVED,          /* rcpt filled in */
	DELIVERY_UNKNOWN,           /* hosted domain, nobody by that name: 550 5.1.1 */
	DELIVERY_NOT_LOCAL,         /* not hosted here and relay not allowed */
	DELIVERY_OVER_QUOTA,        /* every mailbox it reaches is full: 452 4.2.2 */
	DELIVERY_TEMPFAIL,          /* directory or store trouble: 451 4.3.0 */
};

/* Resolves address into rcpt (address, orcpt and notify are the caller's to
 * set; this fills in mailboxes and external). relay: an address in a domain
 * not hosted here is queued as is (authenticated submission). size: the
 * SIZE= the client announced (0: unknown); a mailbox whose quota that would
 * exceed (or that is full already) counts as over quota. */
enum delivery_resolve_status delivery_resolve(const struct delivery_services *svc,
    const char *address, int relay, uint64_t size, struct delivery_rcpt *rcpt);
void delivery_rcpt_clear(struct delivery_rcpt *rcpt);

/* Recent resolutions (delivery_cache.c), shared by every thread: filled by
 * delivery_resolve() when svc->cache is set, for addresses whose mailboxes
 * have no quota. delivery_resolve_cached() fills in rcpt's mailboxes and
 * external from an entry still valid (the directory unchanged since its
 * lookup, at most 10 s old) and returns 1, else 0 (rcpt untouched). It
 * does not block: I/O threads call it, and go to the worker pool on 0. */
struct delivery_cache *delivery_cache_new(void);
void delivery_cache_free(struct delivery_cache **cache);
int delivery_resolve_cached(const struct delivery_services *svc, const char *address,
    int relay, struct delivery_rcpt *rcpt);
void delivery_cache_put(const struct delivery_services *svc, const char *address, int relay,
    const struct directory_stamp *stamp, const struct delivery_rcpt *rcpt);

/* 1 when address belongs to the account (it is the account's address, or
 * resolves, aliases and +tags included, to the account's mailbox), 0 when
 * not, -1 on error. */
int delivery_address_owned(const struct delivery_services *svc, int64_t account_id,
    const char *address);

struct delivery_envelope {
	const char *id;             /* the transaction id, for logs */
	const char *sender;         /* "" for <> */
	const char *envid;          /* DSN ENVID (xtext) or NULL */
	enum queue_ret ret;
	enum queue_body body;
	int smtputf8;
	int requiretls;
	struct delivery_rcpt *rcpts;
	size_t nrcpts;
	/* The message's header section as received (for DSNs). */
	const char *header;
	size_t header_len;
};

enum delivery_status {
	DELIVERY_OK,                /* stored and/or queued: 250 */
	DELIVERY_FULL,              /* every mailbox over quota, nothing kept: 452 4.2.2 */
	DELIVERY_FAILED,            /* I/O or database error, nothing kept: 451 4.3.0 */
};

struct delivery_outcome {
	enum delivery_status status;
	size_t stored;              /* mailboxes written */
	size_t failed;              /* mailboxes that failed (DSN queued) */
	char queue_id[QUEUE_ID_SIZE]; /* "" when nothing was queued */
};

struct delivery_msg;

/* Accounts a commit opens at once (a message for more goes in several
 * store commits of the same file). */
#define DELIVERY_ACCOUNTS_AT_ONCE 64

/* The envelope must stay valid (and unchanged) until the message is freed. */
struct delivery_msg *delivery_msg_new(const struct delivery_services *svc,
    const struct delivery_envelope *env);
/* Appends message bytes (the trace fields first). The local copy starts
 * with Return-Path: <sender>. */
int delivery_msg_write(struct delivery_msg *m, const void *data, size_t len,
    const char **error_r);
/* Delivers. Returns 0 with *out filled in; rcpts' failed/full are set. */
int delivery_msg_commit(struct delivery_msg *m, struct delivery_outcome *out);
void delivery_msg_free(struct delivery_msg **m);

/* Queues a DSN (RFC 3464) about rcpts (those with `failed` set when
 * success is 0, the others when 1) to env->sender. Not for <>, and only for
 * recipients whose NOTIFY asks for it. 0 also when nothing needed sending. */
int delivery_dsn_queue(const struct delivery_services *svc,
    const struct delivery_envelope *env, int success, const char **error_r);

#endif
