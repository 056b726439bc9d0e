/*
 * Logging: one line per event, as key=value pairs, every line tagged with the
 * id of the session or queue entry it belongs to. Lines go to stderr (with a
 * timestamp) when Petrel runs in the foreground, to syslog otherwise.
 *
 * Never log a password, a SASL response or message content.
 */
#ifndef PETREL_CORE_LOG_H
#define PETREL_CORE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_target { LOG_TARGET_STDERR, LOG_TARGET_SYSLOG };

/* Length of a session id including the NUL. */
#define LOG_ID_SIZE 13

void log_open(enum log_target target, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Makes a new id, unique for the life of the process and unlikely to repeat
 * across restarts: 12 characters of [0-9a-z]. Thread-safe. */
void log_new_id(char id[LOG_ID_SIZE]);

/* id may be NULL for lines that belong to no session. fmt should produce
 * key=value pairs; values with spaces are quoted by the caller (log_quote). */
void log_msg(enum log_level level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *id, const char *fmt, va_list ap);
void log_debug(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_info(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_error(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logs and exits with status 1. Only for start-up errors. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Makes s safe as a log value: printable ASCII only, quoted if it contains
 * spaces, at most max bytes. Writes into out (size outsize) and returns it. */
const char *log_quote(char *out, size_t outsize, const char *s, size_t max);

#endif
