/*
 * Shared by queue_runner.c (scheduling), queue_attempt.c (remote delivery)
 * and queue_worker.c (the blocking parts). Not for use outside src/queue.
 *
 * Threads: struct queue_runner and everything it points to belong to the
 * runner's loop thread, except a qmsg while `busy` with a worker job: the
 * job then owns the message's envelope and run state, and the loop thread
 * only sets the `req_*` flags, applied once the job is done.
 */
#ifndef PETREL_QUEUE_QUEUE_RUNNER_INT_H
#define PETREL_QUEUE_QUEUE_RUNNER_INT_H

#include <pthread.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/buf.h"
#include "dns/dns.h"
#include "net/loop.h"
#include "queue/queue_dsn.h"
#include "queue/queue_runner.h"
#include "queue/queue_srs.h"
#include "smtpc/smtpc.h"

#define QR_NO_HEAP ((size_t)-1)

struct qr_settings {
	char *hostname;
	int smtp_port;
	uint64_t retry_initial_ms, retry_max_ms, lifetime_ms, delay_notice_ms;
	int max_conns, max_per_dest, max_msgs_per_conn;
	char *relayhost;                /* "" or HOST[:PORT] */
	char relay_host[DNS_NAME_MAX + 1];
	int relay_port;
	char *relay_user, *relay_password;
	struct config_tls_rule *tls_rules;  /* queue_tls_policy */
	size_t ntls_rules;
};

enum qr_outcome { QR_NONE, QR_DELIVERED, QR_DEFERRED, QR_FAILED };

/* What one attempt did to one recipient. */
struct qr_rcpt_run {
	int due;                        /* tried in this attempt */
	int remote;                     /* goes to an SMTP server */
	char domain[DNS_NAME_MAX + 1];
	enum qr_outcome outcome;
	char *reply;                    /* server reply or our reason */
	int from_server;                /* reply came from remote_mta */
	char *mta;
	char status[16];
	int dsn_relayed;                /* NOTIFY=SUCCESS, server without DSN */
	int dsn_sent;                   /* delivery sent the failure DSN itself */
	/* set when the outcome is applied to the envelope: */
	int dsn_failed, dsn_delayed;
};

struct qmsg {
	struct queue_runner *r;
	struct qmsg *prev, *next;
	struct queue_envelope env;
	int64_t due;                    /* wall-clock seconds; 0: nothing to do */
	size_t heap_idx;
	int busy;                       /* an attempt or a job is under way */
	int removed;                    /* gone from the spool: free once idle */
	int req_delete, req_bounce, req_flush, req_hold, req_release;
	int bounce_now;                 /* the job marks what is left as failed */
	int job_delete;                 /* the finish job removes the message */
	/* the attempt */
	int fd;
	unsigned char *data;            /* the message file, mapped */
	size_t size;
	char *mail_from;                /* the sender as sent (SRS) */
	struct qr_rcpt_run *run;
	size_t groups_out;
	int write_env;                  /* the finish job must write env */
	int64_t retry_until;            /* for delay notices (set on the loop thread) */
};

struct qdest;

/* Recipients of one message for one destination. */
struct qgroup {
	struct qmsg *m;
	struct qdest *dest;
	struct qgroup *next;
	size_t *idx;                    /* into m->env.rcpts */
	size_t n;
	struct smtpc_rcpt *rc;
	struct smtpc_message sm;
	struct buf converted;           /* 8-bit -> quoted-printable copy */
};

struct qdest {
	char *name;                     /* domain, or "[relay]" */
	int nconns;
	struct qgroup *wait_head, **wait_tail;
	struct qdest *next;
};

/* Everything the runner's reads of the config come from. Built by
 * settings_from() on the thread that loads the config; swapped in on the
 * loop thread. Workers only read set.hostname, which a reload keeps. */
struct queue_runner {
	struct qr_settings set;
	struct delivery_services svc;
	struct queue *q;
	struct queue_srs *srs;
	struct net_workers *workers;
	struct net_loop *loop;
	pthread_t thread;
	struct dns_resolver *dns;
	char *dns_server;               /* queue_dns_resolver at start (never changed) */
	SSL_CTX *tls;
	struct smtpc_settings smtpc;
	struct net_timer *timer;
	struct qmsg *msgs;
	size_t nmsgs;
	struct qmsg **heap;
	size_t nheap, heapcap;
	size_t nactive;                 /* messages with an attempt under way */
	struct qdest *dests;
	struct qconn *conns;
	int nconns;
	int stopping;
	int loaded;                     /* the spool has been read */
	struct queue_envelope **early;  /* committed while it was being read */
	size_t nearly;
};

/* queue_runner.c */
void qr_schedule(struct qmsg *m);
void qr_attempt_done(struct qmsg *m);
void qr_kick(struct queue_runner *r);
int64_t qr_now(void);
void qr_msg_free(struct qmsg *m);
void qr_rcpt_result(struct qmsg *m, size_t i, enum qr_outcome o, const char *reply,
    int from_server, const char *mta, const char *status);

/* queue_settings.c */
/* Fills s from cfg (s is zeroed first; on error, free it anyway). */
int qr_settings_from(const struct config *cfg, struct qr_settings *s, char **error_r);
void qr_settings_free(struct qr_settings *s);
/* The client context for outgoing STARTTLS (TLS 1.2+, queue_tls_ca_file or
 * the system's CAs). */
SSL_CTX *qr_client_tls(const struct config *cfg, char **error_r);

/* queue_attempt.c */
void qa_start(struct qmsg *m);
void qa_stop_all(struct queue_runner *r);
/* After new settings were swapped in: groups waiting for a relay host that
 * is no longer configured go back untried; waiting groups are dispatched
 * under the new limits. */
void qa_reloaded(struct queue_runner *r);

/* queue_worker.c: blocking jobs (run on the runner's workers) */
void qw_prepare(void *arg);     /* map, classify, deliver locally, SRS */
void qw_finish(void *arg);      /* DSNs, envelope update or removal */
void qw_release(struct qmsg *m);/* unmap (loop thread, after finish) */

#endif
