/* The IMAP and POP3 load generator: shared types.
 *
 * Each client thread loops a scripted session until the run's deadline or
 * its session budget. Every operation's latency is recorded under the
 * operation's name; every server response is checked, and a failed one ends
 * that client with an error (errors are reported, never counted as work). */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <stdint.h>
#include <time.h>

#include "conn.h"

enum op {
	OP_CONNECT, /* TCP connect + TLS handshake + greeting */
	OP_LOGIN,
	OP_SELECT,
	OP_FETCH_FLAGS,
	OP_FETCH_BODY,
	OP_STORE,
	OP_APPEND,
	OP_EXPUNGE,
	OP_LOGOUT,
	OP_IDLE,
	OP_NOOP,
	OP_STAT,
	OP_LIST,
	OP_RETR,
	OP_QUIT,
	OP_DELE,
	OP_SESSION, /* a whole session, connect to LOGOUT (bigbox scenario) */
	OP_COUNT
};

extern const char *const op_names[OP_COUNT];

struct samples {
	uint32_t *us; /* latencies in microseconds */
	size_t n, cap;
	uint64_t errors;
};

struct opts {
	const char *proto;    /* imap | pop3 */
	const char *scenario; /* mix | login | bigbox | download | delete | idle */
	const char *host;
	int port;
	enum tls_mode tls;
	int clients;
	double duration;      /* seconds; the run stops starting work after it */
	long max_sessions;    /* per client; 0 = unbounded (duration bounds it) */
	const char *userfmt;  /* user name: PREFIX%dSUFFIX or PREFIX%05dSUFFIX */
	const char *user_prefix, *user_suffix;
	int user_width;
	const char *password;
	int user_first, users; /* client i uses user user_first + i % users */
	int fetch_bodies;     /* IMAP mix, bigbox: BODY[] fetches per session */
	long expect_messages; /* bigbox: INBOX holds exactly this many (0: any) */
	int append_size;      /* IMAP mix: bytes of the appended message */
	int retr_max;         /* POP3: messages retrieved per session at most */
	int idle;             /* idle scenario: send IDLE (else stay selected) */
	int select;           /* idle scenario: SELECT INBOX after LOGIN */
	int liveness_only;    /* idle scenario: end without DONE/LOGOUT */
	double open_time;     /* idle scenario: seconds to open connections */
	int timeout;          /* per read/write, seconds */
	int verbose;
};

struct client {
	int id;
	const struct opts *o;
	SSL_CTX *ctx;
	struct samples s[OP_COUNT];
	uint64_t sessions, bytes_in, bytes_out;
	uint64_t body_bytes; /* bigbox: bytes of the checked BODY[] literals */
	int failed;
	char error[512];
	unsigned int seed;
	/* idle scenario: connections held open */
	struct held *held;
	int nheld;
};

extern struct timespec g_deadline;
extern volatile int g_stop;

double now_s(void);
int past_deadline(void);
void record(struct client *cl, enum op op, double start);
/* Records a failure on op: the client stops with this message. */
void fail(struct client *cl, enum op op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void user_name(const struct client *cl, char *out, size_t len);

void imap_mix(struct client *cl);
void imap_login(struct client *cl);
void imap_bigbox(struct client *cl);
void imap_idle_open(struct client *cl, int count);
void imap_idle_close(struct client *cl);
void pop3_download(struct client *cl);

#endif
