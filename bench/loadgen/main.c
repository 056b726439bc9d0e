/* bench-loadgen: IMAP and POP3 load generator for bench/run.
 *
 *   bench-loadgen --proto imap|pop3
 *       --scenario mix|login|bigbox|download|delete|idle
 *       --port N [--host 127.0.0.1] [--tls] --clients N --duration S
 *       [--max-sessions N] --user FMT --password P [--users N] [--user-first N]
 *       [--fetch-bodies N] [--expect-messages N] [--append-size BYTES]
 *       [--retr-max N] [--connections N] [--no-idle] [--timeout S]
 *
 * Prints one JSON object on stdout: totals, operations/s, MB/s, bytes of
 * checked message bodies (bigbox) and p50/p99 latency per operation
 * ("session": whole bigbox sessions), errors. Exits 1 when any response was an error or
 * any connection failed: such a run is not a result.
 *
 * The idle scenario opens --connections connections (over --clients opener
 * threads; it stops opening after --open-time seconds), prints "ready N"
 * (how many it holds) on stdout, holds them until stdin reaches EOF
 * (or --duration passes), then checks each one still answers (DONE, LOGOUT),
 * or with --liveness-only that the server has not closed it.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "loadgen.h"

const char *const op_names[OP_COUNT] = {
	[OP_CONNECT] = "connect", [OP_LOGIN] = "login", [OP_SELECT] = "select",
	[OP_FETCH_FLAGS] = "fetch_flags", [OP_FETCH_BODY] = "fetch_body",
	[OP_STORE] = "store", [OP_APPEND] = "append", [OP_EXPUNGE] = "expunge",
	[OP_LOGOUT] = "logout", [OP_IDLE] = "idle", [OP_NOOP] = "noop",
	[OP_STAT] = "stat", [OP_LIST] = "list", [OP_RETR] = "retr", [OP_QUIT] = "quit",
	[OP_DELE] = "dele", [OP_SESSION] = "session",
};

struct timespec g_deadline;
volatile int g_stop;

double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
past_deadline(void)
{
	struct timespec ts;
	if (g_stop)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec > g_deadline.tv_sec ||
	    (ts.tv_sec == g_deadline.tv_sec && ts.tv_nsec >= g_deadline.tv_nsec);
}

void
record(struct client *cl, enum op op, double start)
{
	struct samples *s = &cl->s[op];
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		uint32_t *nu = realloc(s->us, cap * sizeof *nu);
		if (nu == NULL)
			return;
		s->us = nu;
		s->cap = cap;
	}
	double us = (now_s() - start) * 1e6;
	s->us[s->n++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

void
fail(struct client *cl, enum op op, const char *fmt, ...)
{
	cl->s[op].errors++;
	if (cl->failed)
		return;
	cl->failed = 1;
	int n = snprintf(cl->error, sizeof cl->error, "client %d, %s: ", cl->id,
	    op_names[op]);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cl->error + n, sizeof cl->error - (size_t)n, fmt, ap);
	va_end(ap);
	if (cl->o->verbose)
		fprintf(stderr, "loadgen: %s\n", cl->error);
}

void
user_name(const struct client *cl, char *out, size_t len)
{
	const struct opts *o = cl->o;
	int users = o->users > 0 ? o->users : 1;
	snprintf(out, len, "%s%0*d%s", o->user_prefix, o->user_width,
	    o->user_first + cl->id % users, o->user_suffix);
}

/* Splits a user name format "PREFIX%[0N]dSUFFIX" into its parts. */
static int
parse_userfmt(struct opts *o)
{
	static char prefix[128];
	const char *pct = strchr(o->userfmt, '%');
	if (pct == NULL || (size_t)(pct - o->userfmt) >= sizeof prefix)
		return -1;
	memcpy(prefix, o->userfmt, (size_t)(pct - o->userfmt));
	prefix[pct - o->userfmt] = '\0';
	char *end;
	long w = strtol(pct + 1, &end, 10);
	if (*end != 'd' || w < 0 || w > 20 || strchr(end + 1, '%') != NULL)
		return -1;
	o->user_prefix = prefix;
	o->user_width = (int)w;
	o->user_suffix = end + 1;
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double
pct(const uint32_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i] / 1000.0;
}

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

struct thread_arg {
	struct client *cl;
	int count; /* idle: connections to open */
	int phase; /* idle: 0 open, 1 close */
};

static void *
run_client(void *p)
{
	struct thread_arg *a = p;
	struct client *cl = a->cl;
	const struct opts *o = cl->o;
	if (strcmp(o->proto, "pop3") == 0)
		pop3_download(cl);
	else if (strcmp(o->scenario, "mix") == 0)
		imap_mix(cl);
	else if (strcmp(o->scenario, "login") == 0)
		imap_login(cl);
	else if (strcmp(o->scenario, "bigbox") == 0)
		imap_bigbox(cl);
	else if (a->phase == 0)
		imap_idle_open(cl, a->count);
	else
		imap_idle_close(cl);
	return NULL;
}

static int
run_threads(struct client *cls, struct thread_arg *args, int n, int phase)
{
	pthread_t *th = calloc((size_t)n, sizeof *th);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (int i = 0; i < n; i++) {
		args[i].cl = &cls[i];
		args[i].phase = phase;
		if (pthread_create(&th[i], &attr, run_client, &args[i]) != 0) {
			fprintf(stderr, "loadgen: pthread_create failed\n");
			exit(2);
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	free(th);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench-loadgen --proto imap|pop3\n"
	    "  --scenario mix|login|bigbox|download|delete|idle\n"
	    "  --port N [--host ADDR] [--tls] --clients N --duration S [--max-sessions N]\n"
	    "  --user FMT --password P [--users N] [--user-first N] [--fetch-bodies N]\n"
	    "  [--expect-messages N]\n"
	    "  [--append-size BYTES] [--retr-max N] [--connections N] [--no-idle]\n"
	    "  [--no-select] [--liveness-only] [--open-time S]\n"
	    "  [--timeout S] [--verbose]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct opts o = {
		.proto = "imap", .scenario = "mix", .host = "127.0.0.1", .tls = TLS_NONE,
		.clients = 1, .duration = 10, .userfmt = "u%05d@bench.test",
		.password = "", .user_first = 1, .users = 0, .fetch_bodies = 5,
		.append_size = 4096, .retr_max = 1000, .idle = 1, .select = 1, .timeout = 30,
		.open_time = 86400,
	};
	int connections = 0;
	static const struct option lo[] = {
		{ "proto", 1, 0, 'P' }, { "scenario", 1, 0, 'S' }, { "host", 1, 0, 'h' },
		{ "port", 1, 0, 'p' }, { "tls", 0, 0, 'T' }, { "clients", 1, 0, 'c' },
		{ "duration", 1, 0, 'd' }, { "max-sessions", 1, 0, 'm' },
		{ "user", 1, 0, 'u' }, { "password", 1, 0, 'w' }, { "users", 1, 0, 'U' },
		{ "user-first", 1, 0, 'F' }, { "fetch-bodies", 1, 0, 'b' },
		{ "append-size", 1, 0, 'a' }, { "retr-max", 1, 0, 'r' },
		{ "connections", 1, 0, 'n' }, { "no-idle", 0, 0, 'I' },
		{ "liveness-only", 0, 0, 'L' }, { "open-time", 1, 0, 'O' },
		{ "no-select", 0, 0, 'N' }, { "timeout", 1, 0, 't' },
		{ "verbose", 0, 0, 'v' }, { "expect-messages", 1, 0, 'e' },
		{ 0, 0, 0, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'P': o.proto = optarg; break;
		case 'S': o.scenario = optarg; break;
		case 'h': o.host = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'T': o.tls = TLS_IMPLICIT; break;
		case 'c': o.clients = atoi(optarg); break;
		case 'd': o.duration = atof(optarg); break;
		case 'm': o.max_sessions = atol(optarg); break;
		case 'u': o.userfmt = optarg; break;
		case 'w': o.password = optarg; break;
		case 'U': o.users = atoi(optarg); break;
		case 'F': o.user_first = atoi(optarg); break;
		case 'b': o.fetch_bodies = atoi(optarg); break;
		case 'a': o.append_size = atoi(optarg); break;
		case 'r': o.retr_max = atoi(optarg); break;
		case 'n': connections = atoi(optarg); break;
		case 'I': o.idle = 0; break;
		case 'L': o.liveness_only = 1; break;
		case 'O': o.open_time = atof(optarg); break;
		case 'N': o.select = 0; break;
		case 't': o.timeout = atoi(optarg); break;
		case 'v': o.verbose = 1; break;
		case 'e': o.expect_messages = atol(optarg); break;
		default: usage();
		}
	}
	int idle = strcmp(o.scenario, "idle") == 0;
	if (o.port <= 0 || o.clients <= 0 || o.duration <= 0 || o.append_size < 256 ||
	    (strcmp(o.proto, "imap") != 0 && strcmp(o.proto, "pop3") != 0) ||
	    (idle && connections <= 0))
		usage();
	if (parse_userfmt(&o) < 0) {
		fprintf(stderr, "loadgen: --user wants PREFIX%%dSUFFIX or PREFIX%%05dSUFFIX\n");
		return 2;
	}
	if (o.users <= 0)
		o.users = idle ? connections : o.clients;

	/* Enough descriptors for every held connection. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	SSL_CTX *ctx = conn_tls_ctx();
	if (ctx == NULL) {
		fprintf(stderr, "loadgen: cannot create a TLS context\n");
		return 2;
	}
	struct client *cls = calloc((size_t)o.clients, sizeof *cls);
	struct thread_arg *args = calloc((size_t)o.clients, sizeof *args);
	if (cls == NULL || args == NULL)
		return 2;
	for (int i = 0; i < o.clients; i++) {
		cls[i].id = i;
		cls[i].o = &o;
		cls[i].ctx = ctx;
		cls[i].seed = 0x9e3779b9u * (unsigned)(i + 1);
		args[i].count = connections / o.clients + (i < connections % o.clients);
	}

	clock_gettime(CLOCK_MONOTONIC, &g_deadline);
	double start = now_s();
	double elapsed;
	if (!idle) {
		g_deadline.tv_sec += (time_t)o.duration;
		g_deadline.tv_nsec += (long)((o.duration - (double)(time_t)o.duration) * 1e9);
		if (g_deadline.tv_nsec >= 1000000000L) {
			g_deadline.tv_sec++;
			g_deadline.tv_nsec -= 1000000000L;
		}
		run_threads(cls, args, o.clients, 0);
		elapsed = now_s() - start;
	} else {
		/* Opening stops at --open-time: "ready" then says how many. */
		g_deadline.tv_sec += (time_t)o.open_time;
		run_threads(cls, args, o.clients, 0);
		elapsed = now_s() - start;
		int held = 0, failed = 0;
		for (int i = 0; i < o.clients; i++) {
			held += cls[i].nheld;
			failed |= cls[i].failed;
		}
		printf("ready %d%s\n", held, failed ? " with-errors" : "");
		fflush(stdout);
		/* Hold until stdin closes, at most --duration seconds. */
		double hold_end = now_s() + o.duration;
		while (!failed && now_s() < hold_end) {
			fd_set rf;
			FD_ZERO(&rf);
			FD_SET(0, &rf);
			struct timeval tv = { .tv_sec = 1 };
			int r = select(1, &rf, NULL, NULL, &tv);
			if (r > 0) {
				char b[256];
				ssize_t n = read(0, b, sizeof b);
				if (n <= 0)
					break;
			} else if (r < 0 && errno != EINTR) {
				break;
			}
		}
		run_threads(cls, args, o.clients, 1);
	}

	/* Totals. */
	uint64_t sessions = 0, bytes_in = 0, bytes_out = 0, body_bytes = 0, errors = 0;
	uint64_t ops = 0;
	const char *first_error = NULL;
	for (int i = 0; i < o.clients; i++) {
		sessions += cls[i].sessions;
		bytes_in += cls[i].bytes_in;
		bytes_out += cls[i].bytes_out;
		body_bytes += cls[i].body_bytes;
		if (cls[i].failed && first_error == NULL)
			first_error = cls[i].error;
		for (int k = 0; k < OP_COUNT; k++) {
			errors += cls[i].s[k].errors;
			if (k != OP_CONNECT && k != OP_SESSION)
				ops += cls[i].s[k].n;
		}
	}
	printf("{\"proto\":\"%s\",\"scenario\":\"%s\",\"clients\":%d,", o.proto,
	    o.scenario, o.clients);
	printf("\"elapsed_s\":%.3f,\"sessions\":%llu,\"ops\":%llu,", elapsed,
	    (unsigned long long)sessions, (unsigned long long)ops);
	printf("\"sessions_per_s\":%.2f,\"ops_per_s\":%.2f,", sessions / elapsed,
	    ops / elapsed);
	printf("\"bytes_in\":%llu,\"bytes_out\":%llu,\"mb_per_s\":%.3f,",
	    (unsigned long long)bytes_in, (unsigned long long)bytes_out,
	    (double)(bytes_in + bytes_out) / elapsed / 1e6);
	printf("\"body_bytes\":%llu,\"body_mb_per_s\":%.3f,",
	    (unsigned long long)body_bytes, (double)body_bytes / elapsed / 1e6);
	printf("\"errors\":%llu,\"first_error\":", (unsigned long long)errors);
	json_string(first_error ? first_error : "");
	printf(",\"per_op\":{");
	int firstop = 1;
	for (int k = 0; k < OP_COUNT; k++) {
		size_t n = 0;
		uint64_t errs = 0;
		for (int i = 0; i < o.clients; i++) {
			n += cls[i].s[k].n;
			errs += cls[i].s[k].errors;
		}
		if (n == 0 && errs == 0)
			continue;
		uint32_t *all = malloc((n ? n : 1) * sizeof *all);
		size_t at = 0;
		for (int i = 0; i < o.clients; i++) {
			memcpy(all + at, cls[i].s[k].us, cls[i].s[k].n * sizeof *all);
			at += cls[i].s[k].n;
		}
		qsort(all, n, sizeof *all, cmp_u32);
		printf("%s\"%s\":{\"count\":%zu,\"per_s\":%.2f,\"p50_ms\":%.3f,"
		    "\"p99_ms\":%.3f,\"errors\":%llu}", firstop ? "" : ",", op_names[k],
		    n, n / elapsed, pct(all, n, 0.5), pct(all, n, 0.99),
		    (unsigned long long)errs);
		firstop = 0;
		free(all);
	}
	printf("}}\n");
	fflush(stdout);
	if (first_error != NULL)
		fprintf(stderr, "loadgen: %s\n", first_error);
	return errors > 0 || first_error != NULL ? 1 : 0;
}
