/*
 * store_bench: the mail store's durable append rate and the cost of listing
 * a big mailbox, beside the raw write+fsync rate of the same disk.
 *
 *   store_bench [-d DIR] [-s SECONDS] [-n MESSAGES] [-t THREADS] [-a ACCOUNTS]
 *       [-p PARTS] [-k]
 *
 * PARTS: a comma-separated subset of raw, writer, leader, syncfs, list,
 * cache, expunge (default: all). -k keeps DIR.
 * DIR (default: a new directory under /tmp) should be on the disk to
 * measure. Output: one "key=value" line per measurement.
 *
 *   raw        write 4 KiB + fsync + close, new file each time, 1 and
 *              THREADS threads (what one durable file costs on this disk)
 *   append     store_writer_commit of a 4 KiB message with full durability,
 *              1 and THREADS threads, each sync strategy; THREADS threads
 *              into one account and into one account each
 *   list       open a fresh store and account with a MESSAGES-message
 *              INBOX, list all flags: time and memory
 *   cache      open + 4 KiB delivery + close (SMTP delivery), one thread,
 *              with and without the idle-account cache; heap, RSS and
 *              descriptors per idle account, ACCOUNTS of them
 *   expunge    1 and 10 accounts of 200 messages, each expunged in one
 *              call at the same time (POP3 QUIT): latency
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include "store/store_backend.h"

#define MSG_SIZE 4096
#define THREADS_MAX 256

static char message[MSG_SIZE];
static atomic_int stop;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: what a listing costs whatever else the machine
 * runs. */
static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
make_message(void)
{
	static const char head[] = "From: Bench <bench@example.com>\r\n"
	    "To: user@example.com\r\nSubject: benchmark message\r\n"
	    "Message-ID: <bench@example.com>\r\nContent-Type: text/plain\r\n\r\n";
	size_t i;

	memcpy(message, head, sizeof(head) - 1);
	for (i = sizeof(head) - 1; i < MSG_SIZE; i++)
		message[i] = (i % 64 == 63) ? '\n' : (char)('a' + (i * 7) % 26);
	message[MSG_SIZE - 2] = '\r';
	message[MSG_SIZE - 1] = '\n';
}

/* --- raw ------------------------------------------------------------------ */

struct raw_arg {
	const char *dir;
	int index;
	long count;
};

static void *
raw_thread(void *p)
{
	struct raw_arg *a = p;
	char path[512];
	int fd;

	while (!atomic_load(&stop)) {
		snprintf(path, sizeof(path), "%s/raw-%d-%ld", a->dir, a->index, a->count);
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
		    write(fd, message, MSG_SIZE) != MSG_SIZE || fsync(fd) < 0 || close(fd) < 0) {
			perror(path);
			exit(1);
		}
		a->count++;
	}
	return NULL;
}

static void
run_raw(const char *dir, int threads, double seconds)
{
	struct raw_arg args[THREADS_MAX];
	pthread_t th[THREADS_MAX];
	char *sub = xasprintf("%s/raw-%d", dir, threads);
	double t0, t;
	long total = 0;
	int i;

	mkdir(sub, 0700);
	atomic_store(&stop, 0);
	t0 = now();
	for (i = 0; i < threads; i++) {
		args[i].dir = sub;
		args[i].index = i;
		args[i].count = 0;
		pthread_create(&th[i], NULL, raw_thread, &args[i]);
	}
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, 1);
	for (i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += args[i].count;
	}
	t = now() - t0;
	printf("bench=raw-write-fsync threads=%d files=%ld seconds=%.2f per_second=%.0f\n",
	    threads, total, t, (double)total / t);
	fflush(stdout);
	free(sub);
}

/* --- appends -------------------------------------------------------------- */

struct append_arg {
	struct store *store;
	struct store_account *acct;
	long count;
	long limit;                /* 0: until stop */
	double max_latency;
};

static void *
append_thread(void *p)
{
	struct append_arg *a = p;
	struct store_writer *w;
	struct store_target t;
	const char *error;
	double t0, lat;

	while (!atomic_load(&stop) && (a->limit == 0 || a->count < a->limit)) {
		t0 = now();
		if (store_writer_new(a->store, &w, &error) < 0 ||
		    store_writer_write(w, message, MSG_SIZE, &error) < 0) {
			fprintf(stderr, "write: %s\n", error);
			exit(1);
		}
		memset(&t, 0, sizeof(t));
		t.acct = a->acct;
		t.mailbox_name = "INBOX";
		if (store_writer_commit(w, &t, 1, &error) != 1) {
			fprintf(stderr, "commit: %s\n", error);
			exit(1);
		}
		store_writer_free(&w);
		lat = now() - t0;
		if (lat > a->max_latency)
			a->max_latency = lat;
		a->count++;
	}
	return NULL;
}

static const char *
mode_name(enum store_sync_mode mode)
{
	return mode == STORE_SYNC_WRITER ? "writer" : mode == STORE_SYNC_LEADER ? "leader" :
	    "syncfs";
}

static void
run_append(const char *dir, enum store_sync_mode mode, int threads, int shared,
    double seconds)
{
	struct append_arg args[THREADS_MAX];
	pthread_t th[THREADS_MAX];
	struct store *store;
	struct store_account *accts[THREADS_MAX];
	const char *error;
	static int64_t next_account = 1;
	double t0, t, maxlat = 0;
	long total = 0;
	int i, naccts = shared ? 1 : threads;

	if (store_open(dir, &store, &error) < 0) {
		fprintf(stderr, "store_open: %s\n", error);
		exit(1);
	}
	store_set_sync_mode(store, mode);
	for (i = 0; i < naccts; i++) {
		if (store_account_open(store, next_account++, NULL, &accts[i], &error) < 0) {
			fprintf(stderr, "account: %s\n", error);
			exit(1);
		}
	}
	atomic_store(&stop, 0);
	t0 = now();
	for (i = 0; i < threads; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].store = store;
		args[i].acct = accts[shared ? 0 : i];
		pthread_create(&th[i], NULL, append_thread, &args[i]);
	}
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, 1);
	for (i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += args[i].count;
		if (args[i].max_latency > maxlat)
			maxlat = args[i].max_latency;
	}
	t = now() - t0;
	printf("bench=append sync=%s threads=%d accounts=%d messages=%ld seconds=%.2f "
	    "per_second=%.0f max_latency_ms=%.1f\n", mode_name(mode), threads, naccts, total,
	    t, (double)total / t, maxlat * 1e3);
	fflush(stdout);
	for (i = 0; i < naccts; i++)
		store_account_close(&accts[i]);
	store_close(&store);
}

/* --- listing a big mailbox ---------------------------------------------- */

static int
no_fsync(int fd)
{
	(void)fd;
	return 0;
}

static long
rss_kib(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	long size, resident = 0;

	if (fp == NULL)
		return 0;
	if (fscanf(fp, "%ld %ld", &size, &resident) != 2)
		resident = 0;
	fclose(fp);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void
run_list(const char *dir, long messages, int threads)
{
	struct append_arg args[THREADS_MAX];
	pthread_t th[THREADS_MAX];
	struct store *store;
	struct store_account *acct;
	struct store_mailbox mbox;
	struct store_message *msgs;
	struct mallinfo2 mi0, mi1;
	const char *error;
	char *sub = xasprintf("%s/list", dir), *path;
	double t0, c0, t_fill, t_open, t_list, t_list2, c_list;
	long rss0, rss1, per;
	size_t n;
	int i;

	mkdir(sub, 0700);
	/* Fill fast: this part is not what is measured. A directory kept (-k)
	 * from an earlier run is used as it is. */
	path = xasprintf("%s/mail/1/index.db", sub);
	if (access(path, F_OK) == 0)
		messages = 0;
	free(path);
	if (store_open(sub, &store, &error) < 0 ||
	    store_account_open(store, 1, NULL, &acct, &error) < 0) {
		fprintf(stderr, "open: %s\n", error);
		exit(1);
	}
	store_set_fsync(store, no_fsync);
	atomic_store(&stop, 0);
	t0 = now();
	per = messages / threads;
	if (messages == 0)
		threads = 0;
	for (i = 0; i < threads; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].store = store;
		args[i].acct = acct;
		args[i].limit = per + (i == 0 ? messages % threads : 0);
		pthread_create(&th[i], NULL, append_thread, &args[i]);
	}
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t_fill = now() - t0;
	store_account_close(&acct);
	store_close(&store);

	malloc_trim(0);
	rss0 = rss_kib();
	mi0 = mallinfo2();
	t0 = now();
	if (store_open(sub, &store, &error) < 0 ||
	    store_account_open(store, 1, NULL, &acct, &error) < 0 ||
	    store_mailbox_get(acct, "INBOX", &mbox, &error) != 1) {
		fprintf(stderr, "open: %s\n", error);
		exit(1);
	}
	t_open = now() - t0;
	t0 = now();
	c0 = cpu_now();
	if (store_message_list(acct, mbox.id, 1, UINT32_MAX, &msgs, &n, &error) < 0) {
		fprintf(stderr, "list: %s\n", error);
		exit(1);
	}
	t_list = now() - t0;
	c_list = cpu_now() - c0;
	mi1 = mallinfo2();
	rss1 = rss_kib();
	store_messages_free(&msgs, n);
	t0 = now();
	if (store_message_list(acct, mbox.id, 1, UINT32_MAX, &msgs, &n, &error) < 0)
		exit(1);
	t_list2 = now() - t0;
	store_messages_free(&msgs, n);
	printf("bench=list messages=%zu fill_seconds=%.1f open_ms=%.1f list_ms=%.1f "
	    "list_cpu_ms=%.1f list_again_ms=%.1f open_plus_list_ms=%.1f heap_kib=%zu "
	    "rss_growth_kib=%ld array_kib=%zu\n", n, t_fill, t_open * 1e3, t_list * 1e3,
	    c_list * 1e3, t_list2 * 1e3, (t_open + t_list) * 1e3, (mi1.uordblks + mi1.hblkhd - mi0.uordblks - mi0.hblkhd) / 1024, rss1 - rss0,
	    n * sizeof(*msgs) / 1024);
	store_mailbox_clear(&mbox);
	store_account_close(&acct);
	store_close(&store);
	free(sub);
}

/* --- the idle-account cache ---------------------------------------------- */

static size_t
heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static int
fd_count(void)
{
	char path[64];
	int fd, n = 0;

	for (fd = 0; fd < 65536; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static void
deliver_one(struct store *store, struct store_account *acct)
{
	struct store_writer *w;
	struct store_target t;
	const char *error;

	memset(&t, 0, sizeof(t));
	t.acct = acct;
	t.mailbox_name = "INBOX";
	if (store_writer_new(store, &w, &error) < 0 ||
	    store_writer_write(w, message, MSG_SIZE, &error) < 0 ||
	    store_writer_commit(w, &t, 1, &error) != 1) {
		fprintf(stderr, "deliver: %s\n", error);
		exit(1);
	}
	store_writer_free(&w);
}

/* What SMTP delivery does per message: open the recipient's account,
 * commit, close; one thread, 10 recipients in turn, with and without the
 * cache. Then what 1,000 idle accounts hold. */
static void
run_cache(const char *dir, double seconds, long accounts)
{
	struct store *store;
	struct store_account *acct;
	struct store_mailbox mbox;
	const char *error;
	char *sub = xasprintf("%s/cache", dir);
	double t0, t;
	size_t heap0, heap1, nopen, nidle;
	long n, i, rss0, rss1;
	int cached, fds0, fds1;

	mkdir(sub, 0700);
	if (store_open(sub, &store, &error) < 0) {
		fprintf(stderr, "store_open: %s\n", error);
		exit(1);
	}
	for (cached = 0; cached <= 1; cached++) {
		store_set_account_cache(store, cached ? STORE_ACCOUNT_CACHE_MAX : 0,
		    STORE_ACCOUNT_CACHE_IDLE);
		t0 = now();
		for (n = 0; now() - t0 < seconds; n++) {
			if (store_account_open(store, 1 + n % 10, NULL, &acct, &error) < 0) {
				fprintf(stderr, "open: %s\n", error);
				exit(1);
			}
			deliver_one(store, acct);
			store_account_close(&acct);
		}
		t = now() - t0;
		printf("bench=deliver-open-close cache=%s messages=%ld seconds=%.2f "
		    "per_second=%.0f\n", cached ? "on" : "off", n, t, (double)n / t);
		fflush(stdout);
	}

	/* Created and given a message, then closed for good. */
	store_set_account_cache(store, 0, STORE_ACCOUNT_CACHE_IDLE);
	store_set_fsync(store, no_fsync);
	for (i = 0; i < accounts; i++) {
		if (store_account_open(store, 1000 + i, NULL, &acct, &error) < 0) {
			fprintf(stderr, "open: %s\n", error);
			exit(1);
		}
		deliver_one(store, acct);
		store_account_close(&acct);
	}
	store_set_account_cache(store, (size_t)accounts, STORE_ACCOUNT_CACHE_IDLE);
	malloc_trim(0);
	heap0 = heap_bytes();
	rss0 = rss_kib();
	fds0 = fd_count();
	t0 = now();
	for (i = 0; i < accounts; i++) {
		/* What a delivery and a login (a read) leave in an idle account. */
		if (store_account_open(store, 1000 + i, NULL, &acct, &error) < 0 ||
		    store_mailbox_get(acct, "INBOX", &mbox, &error) != 1) {
			fprintf(stderr, "open: %s (raise ulimit -n?)\n", error);
			exit(1);
		}
		store_mailbox_clear(&mbox);
		deliver_one(store, acct);
		store_account_close(&acct);
	}
	t = now() - t0;
	heap1 = heap_bytes();
	rss1 = rss_kib();
	fds1 = fd_count();
	store_account_cache_count(store, &nopen, &nidle);
	printf("bench=idle-accounts accounts=%zu fill_seconds=%.2f heap_kib_per_account=%.1f "
	    "rss_kib_per_account=%.1f fds_per_account=%.2f\n", nidle, t,
	    (double)(heap1 - heap0) / 1024 / (double)nidle,
	    (double)(rss1 - rss0) / (double)nidle, (double)(fds1 - fds0) / (double)nidle);
	fflush(stdout);
	store_close(&store);
	free(sub);
}

/* --- expunging a maildrop (POP3 QUIT) ------------------------------------- */

#define EXPUNGE_MESSAGES 200
#define EXPUNGE_SESSIONS_MAX 64

struct expunge_arg {
	struct store_account *acct;
	int64_t inbox;
	pthread_barrier_t *start;
	double seconds, cpu;
};

static void *
expunge_thread(void *p)
{
	struct expunge_arg *a = p;
	uint32_t uids[EXPUNGE_MESSAGES];
	const char *error;
	double t0, c0;
	int i;

	for (i = 0; i < EXPUNGE_MESSAGES; i++)
		uids[i] = (uint32_t)i + 1;
	pthread_barrier_wait(a->start);
	t0 = now();
	c0 = cpu_now();
	if (store_message_expunge(a->acct, a->inbox, uids, EXPUNGE_MESSAGES, &error) < 0) {
		fprintf(stderr, "expunge: %s\n", error);
		exit(1);
	}
	a->seconds = now() - t0;
	a->cpu = cpu_now() - c0;
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* SESSIONS maildrops (accounts) of 200 messages of 4 KiB, all expunged at
 * once, each in one call: what POP3 QUIT does. */
static void
run_expunge(const char *dir, int sessions)
{
	struct expunge_arg args[EXPUNGE_SESSIONS_MAX];
	pthread_t th[EXPUNGE_SESSIONS_MAX];
	pthread_barrier_t start;
	struct store *store;
	struct store_mailbox mbox;
	const char *error;
	char *sub = xasprintf("%s/expunge-%d", dir, sessions);
	double lat[EXPUNGE_SESSIONS_MAX], cpu[EXPUNGE_SESSIONS_MAX], t0, t, t_files;
	int i, k;

	mkdir(sub, 0700);
	if (store_open(sub, &store, &error) < 0) {
		fprintf(stderr, "store_open: %s\n", error);
		exit(1);
	}
	store_set_fsync(store, no_fsync);
	for (i = 0; i < sessions; i++) {
		if (store_account_open(store, 1 + i, NULL, &args[i].acct, &error) < 0 ||
		    store_mailbox_get(args[i].acct, "INBOX", &mbox, &error) != 1) {
			fprintf(stderr, "open: %s\n", error);
			exit(1);
		}
		args[i].inbox = mbox.id;
		store_mailbox_clear(&mbox);
		for (k = 0; k < EXPUNGE_MESSAGES; k++)
			deliver_one(store, args[i].acct);
	}
	store_set_fsync(store, NULL);
	sync();
	pthread_barrier_init(&start, NULL, (unsigned)sessions + 1);
	for (i = 0; i < sessions; i++) {
		args[i].start = &start;
		pthread_create(&th[i], NULL, expunge_thread, &args[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now();
	for (i = 0; i < sessions; i++) {
		pthread_join(th[i], NULL);
		lat[i] = args[i].seconds;
		cpu[i] = args[i].cpu;
	}
	t = now() - t0;
	/* The files go in the background, after the calls returned. */
	store_flush(store);
	t_files = now() - t0;
	qsort(lat, (size_t)sessions, sizeof(lat[0]), cmp_double);
	qsort(cpu, (size_t)sessions, sizeof(cpu[0]), cmp_double);
	printf("bench=expunge sessions=%d messages_each=%d median_ms=%.1f max_ms=%.1f "
	    "wall_ms=%.1f median_cpu_ms=%.1f files_gone_ms=%.1f\n", sessions,
	    EXPUNGE_MESSAGES, lat[sessions / 2] * 1e3, lat[sessions - 1] * 1e3, t * 1e3,
	    cpu[sessions / 2] * 1e3, t_files * 1e3);
	fflush(stdout);
	pthread_barrier_destroy(&start);
	for (i = 0; i < sessions; i++)
		store_account_close(&args[i].acct);
	store_close(&store);
	free(sub);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(int argc, char **argv)
{
	static const enum store_sync_mode modes[] = { STORE_SYNC_WRITER, STORE_SYNC_LEADER,
	    STORE_SYNC_SYNCFS };
	char tmpl[] = "/tmp/petrel-store-bench-XXXXXX", *dir = NULL;
	double seconds = 3;
	long messages = 100000;
	const char *parts = "raw,writer,leader,syncfs,list,cache,expunge";
	long accounts = STORE_ACCOUNT_CACHE_MAX;
	int threads = 32, opt, keep = 0;
	size_t m;

	while ((opt = getopt(argc, argv, "d:s:n:t:p:a:k")) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'n':
			messages = atol(optarg);
			break;
		case 'a':
			accounts = atol(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'k':
			keep = 1;
			break;
		case 'p':
			parts = optarg;
			break;
		default:
			fprintf(stderr, "usage: store_bench [-d DIR] [-s SECONDS] [-n MESSAGES] "
			    "[-t THREADS] [-a ACCOUNTS] [-p PARTS] [-k]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > THREADS_MAX || seconds <= 0 || messages < 1 ||
	    accounts < 1) {
		fprintf(stderr, "store_bench: bad arguments\n");
		return 2;
	}
	if (dir == NULL) {
		if ((dir = mkdtemp(tmpl)) == NULL) {
			perror("mkdtemp");
			return 1;
		}
	} else if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	log_open(LOG_TARGET_STDERR, getenv("STORE_BENCH_DEBUG") != NULL ? LOG_LEVEL_DEBUG :
	    LOG_LEVEL_WARN);
	make_message();
	printf("bench=setup dir=%s message_size=%d threads=%d seconds=%.1f\n", dir, MSG_SIZE,
	    threads, seconds);
	fflush(stdout);

	if (strstr(parts, "raw") != NULL) {
		run_raw(dir, 1, seconds);
		run_raw(dir, threads, seconds);
	}
	for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		if (strstr(parts, mode_name(modes[m])) == NULL)
			continue;
		run_append(dir, modes[m], 1, 1, seconds);
		run_append(dir, modes[m], threads, 1, seconds);
		run_append(dir, modes[m], threads, 0, seconds);
	}
	if (strstr(parts, "list") != NULL)
		run_list(dir, messages, threads);
	if (strstr(parts, "cache") != NULL)
		run_cache(dir, seconds, accounts);
	if (strstr(parts, "expunge") != NULL) {
		run_expunge(dir, 1);
		run_expunge(dir, 10);
	}
	if (!keep)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
