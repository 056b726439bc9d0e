/*
 * Splits a byte stream into lines for the mbox reader and writer, in bounded
 * memory: a line longer than MAIL_LINES_MAX comes in several fragments.
 * Only the first fragment of a line has `first` set and only the last has
 * `last` set; a line's terminator ("\n", "\r\n") is part of its last
 * fragment. Decisions about a line (a From_ separator, >From quoting, a
 * header name) look at its first fragment only.
 */
#ifndef PETREL_CLI_MAIL_LINES_H
#define PETREL_CLI_MAIL_LINES_H

#include <stddef.h>

#include "core/buf.h"

#define MAIL_LINES_MAX 65536

/* Returns 0 to go on, -1 to stop (mail_lines_feed then returns -1). */
typedef int mail_lines_fn(void *ctx, const char *data, size_t len, int first, int last);

struct mail_lines {
	struct buf part;        /* the start of a line not yet complete */
	int continued;          /* part's line already had a fragment out */
	mail_lines_fn *fn;
	void *ctx;
};

void mail_lines_init(struct mail_lines *ml, mail_lines_fn *fn, void *ctx);
int mail_lines_feed(struct mail_lines *ml, const void *data, size_t len);
/* Delivers an unterminated last line, if any. */
int mail_lines_finish(struct mail_lines *ml);
void mail_lines_free(struct mail_lines *ml);

/* 1 when the line's first fragment is ">*From " (n: how many '>'). */
int mail_lines_is_from(const char *data, size_t len, size_t *n);
/* 1 when the line is empty ("\n" or "\r\n"). */
int mail_lines_is_blank(const char *data, size_t len, int first, int last);

#endif
