#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "core/buf.h"

static enum log_target log_target = LOG_TARGET_STDERR;
static _Atomic int log_level = LOG_LEVEL_INFO;
static atomic_uint_fast64_t log_id_counter;
static uint64_t log_id_base;
static pthread_once_t log_id_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_open(enum log_target target, enum log_level level)
{
	log_target = target;
	log_level = level;
	if (target == LOG_TARGET_SYSLOG)
		openlog("petrel", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

static void
log_id_init(void)
{
	if (RAND_bytes((unsigned char *)&log_id_base, sizeof(log_id_base)) != 1)
		log_id_base = (uint64_t)time(NULL) * 2654435761u;
}

void
log_new_id(char id[LOG_ID_SIZE])
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
	uint64_t v;
	int i;

	pthread_once(&log_id_once, log_id_init);
	/* A counter mixed with a per-process random base: unique within the
	 * process, and distinct processes almost never collide. */
	v = (atomic_fetch_add(&log_id_counter, 1) + 1) * 0x9e3779b97f4a7c15ull;
	v ^= log_id_base;
	for (i = LOG_ID_SIZE - 2; i >= 0; i--) {
		id[i] = digits[v % 36];
		v /= 36;
	}
	id[LOG_ID_SIZE - 1] = '\0';
}

void
log_vmsg(enum log_level level, const char *id, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
	struct buf line = BUF_INIT;

	if ((int)level < log_level)
		return;
	if (log_target == LOG_TARGET_STDERR) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		buf_printf(&line, "%s.%03ldZ ", when, ts.tv_nsec / 1000000);
	}
	buf_printf(&line, "%s", level_names[level]);
	if (id != NULL)
		buf_printf(&line, " session=%s", id);
	buf_putc(&line, ' ');
	buf_vprintf(&line, fmt, ap);
	if (log_target == LOG_TARGET_SYSLOG) {
		syslog(prio[level], "%s", buf_cstr(&line));
	} else {
		buf_putc(&line, '\n');
		/* One write per line so that threads never interleave. */
		if (write(STDERR_FILENO, line.data, line.len) < 0) {
			/* nowhere left to report it */
		}
	}
	buf_free(&line);
}

void
log_msg(enum log_level level, const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, id, fmt, ap);
	va_end(ap);
}

#define LOG_FN(name, level)                                   \
	void name(const char *id, const char *fmt, ...)       \
	{                                                     \
		va_list ap;                                   \
		va_start(ap, fmt);                            \
		log_vmsg(level, id, fmt, ap);                 \
		va_end(ap);                                   \
	}
LOG_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_error, LOG_LEVEL_ERROR)

void
fatal(const char *fmt, ...)
{
	va_list ap;
	struct buf msg = BUF_INIT;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (log_target == LOG_TARGET_SYSLOG)
		syslog(LOG_ERR, "fatal %s", buf_cstr(&msg));
	fprintf(stderr, "petrel: %s\n", buf_cstr(&msg));
	buf_free(&msg);
	exit(1);
}

const char *
log_quote(char *out, size_t outsize, const char *s, size_t max)
{
	size_t i, o = 0;
	int quote = 0;

	if (outsize < 4) {
		if (outsize > 0)
			out[0] = '\0';
		return out;
	}
	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0' && i < max; i++)
		if (s[i] == ' ' || s[i] == '"' || s[i] == '=')
			quote = 1;
	if (s[0] == '\0')
		quote = 1;
	if (quote)
		out[o++] = '"';
	for (i = 0; s[i] != '\0' && i < max && o + 3 < outsize; i++) {
		unsigned char c = (unsigned char)s[i];

		out[o++] = (c < 0x20 || c >= 0x7f || c == '"') ? '?' : (char)c;
	}
	if (quote)
		out[o++] = '"';
	out[o] = '\0';
	return out;
}
