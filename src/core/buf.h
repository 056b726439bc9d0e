/*
 * A growable byte string, the one string type used everywhere. The data is
 * always NUL-terminated (not counted in len) so it can be passed as a C string
 * when it holds text.
 */
#ifndef PETREL_CORE_BUF_H
#define PETREL_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Appends n in decimal (what "%llu" writes, without printf's cost: for
 * output written once per message of a big listing). */
void buf_put_u64(struct buf *b, unsigned long long n);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Returns the contents as a C string ("" when empty); the buffer owns it. */
const char *buf_cstr(const struct buf *b);
/* Zeroes the memory (for secrets) and frees it. */
void buf_wipe(struct buf *b);
void buf_free(struct buf *b);
/* Hands the data to the caller (who frees it) and empties the buffer. */
char *buf_steal(struct buf *b);

#endif
