/* IMAP sessions of the load generator: the session mix, the login loop, the
 * big-mailbox read loop and held idle connections. Every command's tagged
 * response must be OK. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "loadgen.h"

#define MAX_LINE (1u << 20)
#define BODY_HEAD 4096 /* bytes of a body searched for its size header */
#define SIZE_HEADER "X-Bench-Size: "

struct imap {
	struct conn c;
	unsigned tag;
	long exists;
	unsigned long appenduid;
	long fetches;      /* untagged FETCH responses since the command */
	long literals;     /* literals since the command */
	int check_bodies;  /* each literal is a whole message: check its size */
	uint64_t body_bytes;
	char last[256]; /* the tagged response line */
};

struct held {
	struct imap s;
	int open, idling;
};

/* The size of a literal announced at the end of a line ("{123}" or
 * "{123+}"), or -1. */
static long
literal_size(const char *line, long len)
{
	if (len < 3 || line[len - 1] != '}')
		return -1;
	long i = len - 2;
	if (line[i] == '+')
		i--;
	long end = i;
	while (i >= 0 && line[i] >= '0' && line[i] <= '9')
		i--;
	if (i < 0 || line[i] != '{' || i == end)
		return -1;
	return strtol(line + i + 1, NULL, 10);
}

static void
untagged(struct imap *s, const char *line)
{
	char *end;
	long n = strtol(line + 2, &end, 10);
	if (end != line + 2 && strncasecmp(end, " FETCH ", 7) == 0)
		s->fetches++;
	else if (end != line + 2 && strncasecmp(end, " EXISTS", 7) == 0)
		s->exists = n;
	else if (end != line + 2 && strncasecmp(end, " EXPUNGE", 8) == 0 && s->exists > 0)
		s->exists--;
}

/* Reads responses up to the tagged one for tag s->tag. 0 when it is OK. With
 * want_cont, stops (returning 1) at a "+" continuation request instead. */
/* A whole message's literal of lit bytes: the message says its own size
 * in an "X-Bench-Size: N" header within its first BODY_HEAD bytes. */
static int
check_body(struct client *cl, struct imap *s, enum op op, long lit)
{
	char head[BODY_HEAD + 1];
	size_t kept;
	if (conn_skip_keep(&s->c, (size_t)lit, head, BODY_HEAD, &kept) < 0) {
		fail(cl, op, "%s", s->c.err);
		return -1;
	}
	head[kept] = '\0';
	const char *h = strstr(head, SIZE_HEADER);
	if (h == NULL || (h != head && h[-1] != '\n')) {
		fail(cl, op, "body of %ld bytes without its " SIZE_HEADER "header", lit);
		return -1;
	}
	long want = strtol(h + strlen(SIZE_HEADER), NULL, 10);
	if (want != lit) {
		fail(cl, op, "body of %ld bytes, but the message has %ld", lit, want);
		return -1;
	}
	s->body_bytes += (uint64_t)lit;
	return 0;
}

static int
read_response(struct client *cl, struct imap *s, enum op op, int want_cont)
{
	char tag[16];
	int taglen = snprintf(tag, sizeof tag, "a%u ", s->tag);
	for (;;) {
		char *line;
		long len = conn_readline(&s->c, &line, MAX_LINE);
		if (len < 0) {
			fail(cl, op, "%s", s->c.err);
			return -1;
		}
		if (want_cont && line[0] == '+') {
			return 1;
		}
		if (strncmp(line, tag, (size_t)taglen) == 0) {
			snprintf(s->last, sizeof s->last, "%s", line);
			const char *st = line + taglen;
			if (strncasecmp(st, "OK", 2) != 0 || (st[2] != ' ' && st[2] != '\0')) {
				fail(cl, op, "%s", line);
				return -1;
			}
			const char *au = strstr(st, "[APPENDUID ");
			if (au != NULL) {
				char *e;
				strtoul(au + 11, &e, 10);
				s->appenduid = strtoul(e, NULL, 10);
			}
			return 0;
		}
		if (line[0] == '*' && line[1] == ' ') {
			if (strncasecmp(line, "* BYE", 5) == 0 && op != OP_LOGOUT) {
				fail(cl, op, "%s", line);
				return -1;
			}
			untagged(s, line);
		} else if (line[0] != '+') {
			fail(cl, op, "unexpected line: %.200s", line);
			return -1;
		}
		/* Literals may follow one another within one response. */
		for (long lit = literal_size(line, len); lit >= 0;
		     lit = literal_size(line, len)) {
			s->literals++;
			if (s->check_bodies) {
				if (check_body(cl, s, op, lit) < 0)
					return -1;
			} else if (conn_skip(&s->c, (size_t)lit) < 0) {
				fail(cl, op, "%s", s->c.err);
				return -1;
			}
			len = conn_readline(&s->c, &line, MAX_LINE);
			if (len < 0) {
				fail(cl, op, "%s", s->c.err);
				return -1;
			}
		}
	}
}

static int
command(struct client *cl, struct imap *s, enum op op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
command(struct client *cl, struct imap *s, enum op op, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	double t0 = now_s();
	s->tag++;
	s->fetches = s->literals = 0;
	if (conn_printf(&s->c, "a%u %s\r\n", s->tag, cmd) < 0) {
		fail(cl, op, "%s", s->c.err);
		return -1;
	}
	if (read_response(cl, s, op, 0) < 0)
		return -1;
	record(cl, op, t0);
	return 0;
}

static int
greet(struct client *cl, struct imap *s)
{
	double t0 = now_s();
	memset(s, 0, sizeof *s);
	if (conn_open(&s->c, cl->o->host, cl->o->port, cl->o->tls, cl->ctx,
	    cl->o->timeout) < 0) {
		fail(cl, OP_CONNECT, "%s", s->c.err);
		return -1;
	}
	char *line;
	if (conn_readline(&s->c, &line, MAX_LINE) < 0) {
		fail(cl, OP_CONNECT, "%s", s->c.err);
		conn_close(&s->c);
		return -1;
	}
	if (strncasecmp(line, "* OK", 4) != 0 && strncasecmp(line, "* PREAUTH", 9) != 0) {
		fail(cl, OP_CONNECT, "greeting: %.200s", line);
		conn_close(&s->c);
		return -1;
	}
	record(cl, OP_CONNECT, t0);
	return 0;
}

static int
login(struct client *cl, struct imap *s, int user_index)
{
	char user[128];
	struct client tmp = *cl;
	tmp.id = user_index;
	user_name(&tmp, user, sizeof user);
	return command(cl, s, OP_LOGIN, "LOGIN \"%s\" \"%s\"", user, cl->o->password);
}

/* LOGIN as the client's user, then SELECT INBOX, which must not be empty
 * (with expect > 0, must hold exactly expect messages). */
static int
login_select(struct client *cl, struct imap *s, long expect)
{
	if (login(cl, s, cl->id) < 0)
		return -1;
	s->exists = -1;
	if (command(cl, s, OP_SELECT, "SELECT INBOX") < 0)
		return -1;
	if (s->exists <= 0 || (expect > 0 && s->exists != expect)) {
		fail(cl, OP_SELECT, "INBOX has %ld messages, expected %s%ld: data not loaded?",
		    s->exists, expect > 0 ? "" : "more than ", expect > 0 ? expect : 0);
		return -1;
	}
	return 0;
}

/* Another session, unless the run is over or this client's budget spent. */
static int
more_sessions(const struct client *cl)
{
	const struct opts *o = cl->o;
	return !past_deadline() && !cl->failed &&
	    (o->max_sessions == 0 || (long)cl->sessions < o->max_sessions);
}

static void
finish(struct client *cl, struct imap *s)
{
	cl->bytes_in += s->c.bytes_in;
	cl->bytes_out += s->c.bytes_out;
	conn_close(&s->c);
}

static char *
make_message(int size, int id, size_t *len)
{
	char *m = malloc((size_t)size + 512);
	if (m == NULL)
		return NULL;
	int n = snprintf(m, 512,
	    "From: bench@bench.test\r\nTo: user@bench.test\r\n"
	    "Subject: appended by loadgen client %d\r\n"
	    "Message-ID: <loadgen-%d@bench.test>\r\n"
	    "Date: Sat, 21 Nov 2026 00:00:00 +0000\r\n\r\n", id, id);
	while (n < size) {
		int l = 0;
		for (; l < 76 && n + l < size - 2; l++)
			m[n + l] = (char)('a' + (n + l) % 26);
		n += l;
		m[n++] = '\r';
		m[n++] = '\n';
	}
	*len = (size_t)n;
	return m;
}

void
imap_mix(struct client *cl)
{
	const struct opts *o = cl->o;
	size_t msglen;
	char *msg = make_message(o->append_size, cl->id, &msglen);
	if (msg == NULL) {
		fail(cl, OP_APPEND, "out of memory");
		return;
	}
	int flag_on = 0;
	while (more_sessions(cl)) {
		struct imap s;
		if (greet(cl, &s) < 0)
			break;
		int ok = 0;
		do {
			if (login_select(cl, &s, 0) < 0)
				break;
			if (command(cl, &s, OP_FETCH_FLAGS, "FETCH 1:* (FLAGS)") < 0)
				break;
			int k;
			for (k = 0; k < o->fetch_bodies; k++) {
				long seq = 1 + rand_r(&cl->seed) % s.exists;
				if (command(cl, &s, OP_FETCH_BODY, "FETCH %ld (BODY.PEEK[])", seq) < 0)
					break;
			}
			if (k < o->fetch_bodies)
				break;
			long seq = 1 + rand_r(&cl->seed) % s.exists;
			flag_on = !flag_on;
			if (command(cl, &s, OP_STORE, "STORE %ld %sFLAGS (\\Flagged)", seq,
			    flag_on ? "+" : "-") < 0)
				break;
			/* APPEND with a synchronising literal, which every server takes. */
			double t0 = now_s();
			s.tag++;
			s.appenduid = 0;
			if (conn_printf(&s.c, "a%u APPEND INBOX (\\Seen) {%zu}\r\n", s.tag,
			    msglen) < 0) {
				fail(cl, OP_APPEND, "%s", s.c.err);
				break;
			}
			int r = read_response(cl, &s, OP_APPEND, 1);
			if (r < 0)
				break;
			if (r == 0) {
				fail(cl, OP_APPEND, "no continuation: %s", s.last);
				break;
			}
			if (conn_write(&s.c, msg, msglen) < 0 || conn_write(&s.c, "\r\n", 2) < 0) {
				fail(cl, OP_APPEND, "%s", s.c.err);
				break;
			}
			if (read_response(cl, &s, OP_APPEND, 0) < 0)
				break;
			record(cl, OP_APPEND, t0);
			/* Delete what was appended, so the mailbox keeps its size. */
			if (s.appenduid != 0) {
				if (command(cl, &s, OP_STORE, "UID STORE %lu +FLAGS.SILENT (\\Deleted)",
				    s.appenduid) < 0)
					break;
			} else {
				if (command(cl, &s, OP_NOOP, "NOOP") < 0)
					break;
				if (command(cl, &s, OP_STORE, "STORE %ld +FLAGS.SILENT (\\Deleted)",
				    s.exists) < 0)
					break;
			}
			if (command(cl, &s, OP_EXPUNGE, "EXPUNGE") < 0)
				break;
			if (command(cl, &s, OP_LOGOUT, "LOGOUT") < 0)
				break;
			ok = 1;
		} while (0);
		finish(cl, &s);
		if (!ok)
			break;
		cl->sessions++;
	}
	free(msg);
}

/* The big-mailbox loop (bench/run's imap-10k scenarios): connect, LOGIN,
 * SELECT INBOX, FETCH 1:* (FLAGS), fetch_bodies FETCH BODY.PEEK[] of random
 * messages, LOGOUT. Checked: INBOX holds expect_messages messages (if set),
 * the flags listing has one FETCH per message, each body is one literal of
 * the size its X-Bench-Size header says. Each session's time is recorded. */
void
imap_bigbox(struct client *cl)
{
	const struct opts *o = cl->o;
	while (more_sessions(cl)) {
		double t0 = now_s();
		struct imap s;
		if (greet(cl, &s) < 0)
			break;
		int ok = 0;
		do {
			if (login_select(cl, &s, o->expect_messages) < 0)
				break;
			if (command(cl, &s, OP_FETCH_FLAGS, "FETCH 1:* (FLAGS)") < 0)
				break;
			if (s.fetches != s.exists) {
				fail(cl, OP_FETCH_FLAGS, "%ld FETCH responses for %ld messages",
				    s.fetches, s.exists);
				break;
			}
			int k;
			s.check_bodies = 1;
			for (k = 0; k < o->fetch_bodies; k++) {
				long seq = 1 + rand_r(&cl->seed) % s.exists;
				if (command(cl, &s, OP_FETCH_BODY, "FETCH %ld (BODY.PEEK[])", seq) < 0)
					break;
				if (s.fetches != 1 || s.literals != 1) {
					fail(cl, OP_FETCH_BODY, "FETCH %ld: %ld responses, %ld literals",
					    seq, s.fetches, s.literals);
					break;
				}
			}
			s.check_bodies = 0;
			if (k < o->fetch_bodies)
				break;
			if (command(cl, &s, OP_LOGOUT, "LOGOUT") < 0)
				break;
			ok = 1;
		} while (0);
		cl->body_bytes += s.body_bytes;
		finish(cl, &s);
		if (!ok)
			break;
		record(cl, OP_SESSION, t0);
		cl->sessions++;
	}
}

void
imap_login(struct client *cl)
{
	const struct opts *o = cl->o;
	int users = o->users > 0 ? o->users : 1;
	long n = 0;
	while (more_sessions(cl)) {
		struct imap s;
		if (greet(cl, &s) < 0)
			break;
		/* Each client walks through its own share of the users. */
		int u = (int)((cl->id + n * o->clients) % users);
		n++;
		int ok = login(cl, &s, u) == 0 && command(cl, &s, OP_LOGOUT, "LOGOUT") == 0;
		finish(cl, &s);
		if (!ok)
			break;
		cl->sessions++;
	}
}

/* Opens count connections for this client thread: connection j logs in as
 * user (id + j * clients), selects INBOX and, with o->idle, enters IDLE. */
void
imap_idle_open(struct client *cl, int count)
{
	const struct opts *o = cl->o;
	int users = o->users > 0 ? o->users : 1;
	cl->held = calloc((size_t)count, sizeof *cl->held);
	if (cl->held == NULL) {
		fail(cl, OP_CONNECT, "out of memory");
		return;
	}
	for (int j = 0; j < count && !cl->failed && !past_deadline(); j++) {
		struct held *h = &cl->held[j];
		if (greet(cl, &h->s) < 0)
			return;
		h->open = 1;
		cl->nheld++;
		int u = (int)((cl->id + (long)j * o->clients) % users);
		if (login(cl, &h->s, u) < 0)
			return;
		if (o->select && command(cl, &h->s, OP_SELECT, "SELECT INBOX") < 0)
			return;
		if (o->select && o->idle) {
			double t0 = now_s();
			h->s.tag++;
			if (conn_printf(&h->s.c, "a%u IDLE\r\n", h->s.tag) < 0) {
				fail(cl, OP_IDLE, "%s", h->s.c.err);
				return;
			}
			int r = read_response(cl, &h->s, OP_IDLE, 1);
			if (r < 0)
				return;
			if (r == 0) {
				fail(cl, OP_IDLE, "IDLE ended at once: %s", h->s.last);
				return;
			}
			record(cl, OP_IDLE, t0);
			h->idling = 1;
		}
		/* The idle connection's read buffer is not needed at its size. */
		if (h->s.c.pos == h->s.c.len) {
			char *nb = realloc(h->s.c.buf, 512);
			if (nb != NULL) {
				h->s.c.buf = nb;
				h->s.c.cap = 512;
				h->s.c.pos = h->s.c.len = 0;
			}
		}
		cl->sessions++;
	}
}

/* Without reading: the server has not closed the connection, and whatever
 * it sent meanwhile is untagged ("* OK still here"). */
static void
check_alive(struct client *cl, struct held *h)
{
	char b[512];
	ssize_t n = recv(h->s.c.fd, b, sizeof b - 1, MSG_DONTWAIT | MSG_PEEK);
	if (n == 0)
		fail(cl, OP_IDLE, "the server closed an idle connection");
	else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		fail(cl, OP_IDLE, "idle connection: %s", strerror(errno));
	else if (n > 0 && h->s.c.ssl == NULL && b[0] != '*')
		fail(cl, OP_IDLE, "unexpected data on an idle connection");
}

/* Checks every held connection is still served: DONE (after IDLE) must be
 * answered OK, then LOGOUT; with o->liveness_only, only that the server has
 * not closed it (cheap enough for ten thousand connections). */
void
imap_idle_close(struct client *cl)
{
	for (int j = 0; j < cl->nheld; j++) {
		struct held *h = &cl->held[j];
		if (!h->open)
			continue;
		if (!cl->failed && cl->o->liveness_only) {
			check_alive(cl, h);
		} else if (!cl->failed) {
			if (h->idling) {
				if (conn_write(&h->s.c, "DONE\r\n", 6) < 0)
					fail(cl, OP_IDLE, "DONE: %s", h->s.c.err);
				else
					read_response(cl, &h->s, OP_IDLE, 0);
			}
			if (!cl->failed)
				command(cl, &h->s, OP_LOGOUT, "LOGOUT");
		}
		finish(cl, &h->s);
		h->open = 0;
	}
	free(cl->held);
	cl->held = NULL;
}
