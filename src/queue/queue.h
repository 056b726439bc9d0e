/*
 * The outbound queue: messages accepted for recipients that are not
 * delivered into a local mailbox inside the SMTP transaction (other
 * domains, forwarders to outside addresses, delivery status notifications).
 *
 * A queued message is a message file plus an envelope: the sender, each
 * recipient with its DSN parameters (RFC 3461) and delivery state, and the
 * transaction's ENVID, RET, BODY, SMTPUTF8 and REQUIRETLS. queue_writer_commit
 * returns only once both are durable (written to a temporary file, fsynced,
 * renamed, directory fsynced); the envelope's rename is the commit point, so
 * a crash at any moment leaves either a whole queued message or nothing.
 *
 * The backend (a spool under DATA/queue/ today) sits behind the vtable in
 * queue_backend.h; nothing outside src/queue knows paths or file formats.
 *
 * Threads: every function may block and must run off the I/O threads. A
 * struct queue may be used from several threads at once; a queue_writer by
 * one thread at a time.
 *
 * Errors: -1 with *error_r set to a message safe to log and to show a
 * client (static or owned by the queue for the calling thread until its next
 * call).
 *
 * Delivery is queue_runner.h's job; this is the storage it works on.
 */
#ifndef PETREL_QUEUE_QUEUE_H
#define PETREL_QUEUE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct queue;
struct queue_writer;

#define QUEUE_ID_SIZE 13            /* 12 characters of [0-9a-z] and the NUL */
#define QUEUE_RCPTS_MAX 10000       /* recipients in one envelope */
#define QUEUE_ENVELOPE_MAX (4u << 20) /* bytes of one envelope file */

/* DSN NOTIFY (RFC 3461 4.1); 0 means the client gave none. */
enum {
	QUEUE_NOTIFY_NEVER = 1 << 0,
	QUEUE_NOTIFY_SUCCESS = 1 << 1,
	QUEUE_NOTIFY_FAILURE = 1 << 2,
	QUEUE_NOTIFY_DELAY = 1 << 3,
};

enum queue_ret { QUEUE_RET_NONE, QUEUE_RET_FULL, QUEUE_RET_HDRS };
enum queue_body { QUEUE_BODY_7BIT, QUEUE_BODY_8BITMIME, QUEUE_BODY_BINARYMIME };

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING,     /* to be delivered, not tried yet */
	QUEUE_RCPT_DELIVERED,   /* done */
	QUEUE_RCPT_FAILED,      /* given up (a DSN was or is to be sent) */
	QUEUE_RCPT_DEFERRED,    /* tried, failed temporarily: next_attempt, last_reply */
};

struct queue_rcpt {
	char *address;          /* where to deliver */
	char *orcpt;            /* DSN ORCPT as received ("rfc822;xtext"), or NULL */
	unsigned notify;        /* QUEUE_NOTIFY_* */
	enum queue_rcpt_state state;
	unsigned attempts;
	int64_t next_attempt;   /* Unix time; 0: as soon as possible */
	char *last_reply;       /* the last remote reply or error, or NULL */
	char *remote_mta;       /* the server that gave last_reply, or NULL */
	int delayed;            /* a "delayed" DSN was sent */
};

struct queue_envelope {
	char id[QUEUE_ID_SIZE]; /* set by queue_writer_commit */
	char *sender;           /* "" for the null sender <> */
	char *envid;            /* DSN ENVID as received (xtext), or NULL */
	enum queue_ret ret;
	enum queue_body body;
	int smtputf8;
	int requiretls;         /* RFC 8689: deliver only over verified TLS */
	int hold;               /* set by `petrel queue hold`: not tried */
	int64_t arrival;        /* Unix time */
	uint64_t size;          /* octets of the message file */
	struct queue_rcpt *rcpts;
	size_t nrcpts;
};

/* Opens (creating when missing) the queue kept in data_dir/queue. Several
 * processes may have it open at once (the daemon and `petrel queue`).
 * Leftovers of a crash (temporary files, message files without an envelope,
 * which were never acknowledged) are removed, but only when no other process
 * has the queue open (they could be its commits under way); otherwise they
 * stay until a later open. *error_r is allocated: the caller frees it. */
int queue_open(const char *data_dir, struct queue **q_r, char **error_r);
void queue_close(struct queue **q);

/* A message being written: create a writer, write the bytes (any split),
 * then commit once with the envelope, or free it to drop the message. */
int queue_writer_new(struct queue *q, struct queue_writer **w_r, const char **error_r);
int queue_writer_write(struct queue_writer *w, const void *data, size_t len,
    const char **error_r);
uint64_t queue_writer_size(const struct queue_writer *w);
/* Makes the message and env durable and fills in env->id (env->size is set
 * from the bytes written). The writer can be committed once; free it after. */
int queue_writer_commit(struct queue_writer *w, struct queue_envelope *env,
    const char **error_r);
/* Drops an uncommitted message (its temporary file is removed). */
void queue_writer_free(struct queue_writer **w);

/* Every queued envelope, oldest first. */
int queue_list(struct queue *q, struct queue_envelope **list_r, size_t *count_r,
    const char **error_r);
/* 1 found (env_r filled in), 0 not found, -1 error. */
int queue_get(struct queue *q, const char *id, struct queue_envelope *env_r,
    const char **error_r);
/* Replaces a queued message's envelope (recipient states), durably. */
int queue_update(struct queue *q, const struct queue_envelope *env, const char **error_r);
/* Opens the queued message's bytes for reading (a file descriptor the
 * caller closes), -1 on error. */
int queue_message_open(struct queue *q, const char *id, const char **error_r);
/* Removes a queued message (delivered, bounced, or taken back). 0 also when
 * it was not there. */
int queue_remove(struct queue *q, const char *id, const char **error_r);

/* Called after every successful queue_writer_commit, on the committing
 * thread, with the committed envelope (valid during the call only). The
 * queue runner uses it to start delivery at once. */
typedef void queue_commit_fn(void *arg, const struct queue_envelope *env);
void queue_set_commit_hook(struct queue *q, queue_commit_fn *fn, void *arg);

/* Administrative requests (`petrel queue hold ID` ...) for the daemon: a
 * request is stored durably, then the daemon takes them (at start and on
 * SIGUSR1) and applies them. verb is "flush", "hold", "release", "delete"
 * or "bounce"; id may be "" for every message (flush only). */
int queue_request_post(struct queue *q, const char *verb, const char *id,
    char *name_r, size_t name_size, const char **error_r);
/* 1 while the request file name_r of queue_request_post is not taken yet. */
int queue_request_pending(struct queue *q, const char *name);
/* Takes the oldest waiting request: 1 with verb and id filled in (and
 * the request removed), 0 when none waits, -1 on error. */
int queue_request_take(struct queue *q, char *verb, size_t verb_size, char *id,
    size_t id_size, const char **error_r);

void queue_envelope_clear(struct queue_envelope *env);
/* Deep copy. */
void queue_envelope_copy(struct queue_envelope *dst, const struct queue_envelope *src);
void queue_envelopes_free(struct queue_envelope **list, size_t count);

/* xtext (RFC 3461 4): bytes outside "!".."~", "+" and "=" as "+HH". */
void queue_xtext_encode(struct buf *out, const char *s);
/* Decodes xtext; NULL when malformed. Returns an allocated string. */
char *queue_xtext_decode(const char *s);

#endif
