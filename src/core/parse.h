/*
 * Parsing of the small values that appear in the config file and on the
 * command line. All return 0 on success and -1 on a malformed or out-of-range
 * value, leaving *out untouched.
 */
#ifndef PETREL_CORE_PARSE_H
#define PETREL_CORE_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* A decimal integer in [min, max]. */
int parse_int(const char *s, long long min, long long max, long long *out);
/* A size: a number with an optional unit K, M, G or T (powers of 1024),
 * case-insensitive, optional trailing "B" ("10M", "512KiB", "2GB"). */
int parse_size(const char *s, uint64_t *out);
/* A duration in milliseconds: a number with a unit ms, s, m, h or d;
 * a bare number means seconds. */
int parse_duration(const char *s, uint64_t *out_ms);
/* yes/no, true/false, on/off, 1/0. */
int parse_bool(const char *s, int *out);

/* Constant-time comparison of two byte strings of the same length. */
int ct_equal(const void *a, const void *b, size_t len);

#endif
