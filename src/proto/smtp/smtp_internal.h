/*
 * What the files of the SMTP session share. Only src/proto/smtp includes
 * this.
 *
 *   smtp_session.c   the session: greeting, command table, EHLO ... QUIT
 *   smtp_txn.c       MAIL, RCPT, DATA, BDAT, RSET: the transaction
 *   smtp_message.c   message content: reading, trace fields, delivery jobs
 *   smtp_pregreet.c  the MX port's "talked before the greeting" test
 *
 * Blocking work (directory, store, queue) runs as a struct smtp_job on the
 * worker pool with the session paused; one job at a time. When the
 * connection closes during a job, the session is freed and the job,
 * detached (job->s NULL), frees the transaction when it completes.
 */
#ifndef PETREL_PROTO_SMTP_INTERNAL_H
#define PETREL_PROTO_SMTP_INTERNAL_H

#include <stdint.h>

#include "core/buf.h"
#include "core/log.h"
#include "delivery/delivery.h"
#include "net/conn.h"
#include "net/loop.h"
#include "proto/proto.h"
#include "proto/smtp/smtp.h"

enum smtp_state {
	SMTP_PREGREET,    /* MX: waiting before the greeting */
	SMTP_CONNECTED,   /* greeting sent, no EHLO yet */
	SMTP_READY,       /* EHLO/HELO done */
	SMTP_AUTH,        /* SASL exchange: reading response lines */
	SMTP_WAITING,     /* a service is working; input paused */
	SMTP_DATA,        /* reading a dot-terminated message */
	SMTP_BDAT,        /* reading a BDAT chunk */
};

/* One mail transaction, from MAIL to the final reply. */
struct smtp_txn {
	char id[LOG_ID_SIZE];
	struct delivery_services svc;   /* what the message is delivered with */
	struct smtp_mail mail;
	struct delivery_rcpt *rcpts;
	size_t nrcpts;
	struct delivery_envelope env;
	struct delivery_msg *msg;       /* once content arrives */
	struct smtp_data data;          /* end-of-data / line-end checker */
	struct buf chunk;               /* content being decoded */
	struct buf hdr;                 /* the header section (kept for DSNs) */
	size_t hdr_len;                 /* its length once complete, else 0 */
	size_t hdr_scanned;
	struct buf out;                 /* content waiting to be written */
	uint64_t size;                  /* content octets received */
	struct smtp_header_info info;
	const char *reject;             /* reply at the end instead of delivering */
	unsigned hdr_done : 1;
	unsigned bdat : 1;              /* BDAT used: DATA no longer allowed */
	unsigned last : 1;              /* BDAT LAST seen */
	unsigned from_checked : 1;      /* submission: MAIL FROM is the user's */
};

struct smtp_job;
struct smtp_session;
typedef void smtp_job_fn(struct smtp_job *job);
typedef void smtp_job_done_fn(struct smtp_session *s, struct smtp_job *job);

struct smtp_job {
	struct smtp_session *s;         /* NULL once the session is gone */
	struct smtp_txn *txn;           /* the job's while it runs */
	struct delivery_services svc;
	smtp_job_fn *work;
	smtp_job_done_fn *done;
	/* Inputs and results, per kind of job. */
	struct delivery_rcpt rcpt;
	enum delivery_resolve_status status;
	char *address;
	int64_t account_id;
	int relay;
	int result;
	int commit;                     /* write, then deliver */
	int reply_chunk;                /* BDAT: answer the chunk when written */
	const char *error;              /* a reply instead of delivering */
	struct delivery_outcome outcome;
};

struct smtp_session {
	struct net_conn *conn;
	struct proto_context *ctx;
	const struct config *cfg;
	enum smtp_state state;
	char *helo;
	char *user;                      /* after AUTH */
	int64_t account_id;
	struct auth_request *auth;
	struct smtp_txn *txn;
	struct smtp_job *job;            /* in flight */
	struct net_timer *timer;         /* pregreet */
	struct net_timer *delay_timer;   /* the error delay (tarpit) */
	struct net_timer *rate_timer;    /* smtp_min_data_rate, while a message comes */
	uint64_t data_octets;            /* message octets read (DATA, BDAT) */
	uint64_t rate_mark;              /* data_octets (and buffered) at the window's start */
	uint64_t bdat_left;              /* octets of the current chunk still to read */
	const char *bdat_reply;          /* a chunk read only to be refused */
	int auth_failures;
	int errors;
	unsigned delaying : 1;           /* waiting out the error delay */
	unsigned delay_done : 1;         /* ... done: the next command goes now */
	unsigned esmtp : 1;
	unsigned stopping : 1;           /* server shutdown: close when idle */
	unsigned closed : 1;             /* net_conn_close called */
};

/* smtp_session.c */
void smtp_reply(struct smtp_session *s, const char *line);
/* Replies, and counts the reply as a client error. */
void smtp_error(struct smtp_session *s, const char *line);
/* Counts a client error (a bad command, a refused recipient). At
 * smtp_hard_error_limit it says goodbye and closes: returns 1 then. From
 * smtp_soft_error_limit on, every command is answered after
 * smtp_error_delay. */
int smtp_error_count(struct smtp_session *s);
int smtp_is_submission(struct smtp_session *s);
const char *smtp_host(struct smtp_session *s);
void smtp_close_conn(struct smtp_session *s);
/* Runs work on the worker pool with the session paused; done runs on the
 * loop thread afterwards (not when the session closed meanwhile), then
 * input resumes unless done started another job or closed. */
void smtp_job_start(struct smtp_session *s, struct smtp_job *job, smtp_job_fn *work,
    smtp_job_done_fn *done);
struct smtp_job *smtp_job_new(struct smtp_session *s);
/* Frees a job that was never started. */
void smtp_job_free(struct smtp_job *job);

/* smtp_txn.c */
/* NULL when the data directory's file system has room for size more
 * octets above smtp_min_free_space, else the 452 4.3.1 reply. */
const char *smtp_disk_full(struct smtp_session *s, uint64_t size);
void smtp_cmd_mail(struct smtp_session *s, char *args);
void smtp_cmd_rcpt(struct smtp_session *s, char *args);
void smtp_cmd_data(struct smtp_session *s, char *args);
void smtp_cmd_bdat(struct smtp_session *s, char *args);
/* Ends the transaction (RSET, EHLO, STARTTLS, after the final reply). */
void smtp_txn_reset(struct smtp_session *s);
void smtp_txn_free(struct smtp_txn **txn, struct net_loop *loop);

/* smtp_message.c */
/* Starts reading the content (DATA: dotted 1; the first BDAT: 0), with
 * the data timeout and the minimum data rate in force until the end. */
void smtp_message_begin(struct smtp_session *s, int dotted);
/* Back to command mode (the command timeout); stops the rate check. */
void smtp_message_stop(struct smtp_session *s);
/* Reads message content from the input; returns 1 to go on reading
 * commands, 0 when waiting for more input or for a job. */
int smtp_message_read(struct smtp_session *s);

/* smtp_pregreet.c */
int smtp_pregreet_passed(const char *ip);
void smtp_pregreet_pass(const char *ip);

#endif
