/*
 * Allocation helpers that never return NULL: running out of memory is not a
 * condition a mail server can recover from one allocation at a time, so these
 * abort with a message instead of making every caller check.
 */
#ifndef PETREL_CORE_XMALLOC_H
#define PETREL_CORE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array of nmemb elements of size bytes, checking for overflow. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees *p and sets it to NULL. */
#define xfree(p) do { free(*(p)); *(p) = NULL; } while (0)

#endif
