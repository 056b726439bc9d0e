#include "proto/imap/imap_seqset.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"

/* Reads a seq-number (nz-number or '*') at *pp. Returns 0 or -1. */
static int
imap_seqset_number(const char **pp, uint32_t *n_r)
{
	const char *p = *pp;
	uint64_t n = 0;

	if (*p == '*') {
		*n_r = IMAP_SEQ_STAR;
		*pp = p + 1;
		return 0;
	}
	if (*p < '1' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > UINT32_MAX - 1)
			return -1;      /* UINT32_MAX itself is '*' here */
	}
	*n_r = (uint32_t)n;
	*pp = p;
	return 0;
}

int
imap_seqset_parse(const char *s, struct imap_seqset *set, const char **error_r)
{
	const char *p = s;
	size_t cap = 0;

	memset(set, 0, sizeof(*set));
	for (;;) {
		uint32_t a, b;

		if (imap_seqset_number(&p, &a) < 0)
			goto bad;
		b = a;
		if (*p == ':') {
			p++;
			if (imap_seqset_number(&p, &b) < 0)
				goto bad;
		}
		if (a == IMAP_SEQ_STAR || b == IMAP_SEQ_STAR)
			set->has_star = 1;
		if (set->count == IMAP_SEQSET_RANGES_MAX) {
			*error_r = "Sequence set too long";
			imap_seqset_free(set);
			return -1;
		}
		if (set->count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			set->ranges = xreallocarray(set->ranges, cap, sizeof(*set->ranges));
		}
		set->ranges[set->count].lo = a < b ? a : b;
		set->ranges[set->count].hi = a < b ? b : a;
		set->count++;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			goto bad;
		p++;
	}
bad:
	*error_r = "Invalid sequence set";
	imap_seqset_free(set);
	return -1;
}

static int
imap_range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return (x->hi > y->hi) - (x->hi < y->hi);
}

void
imap_seqset_resolve(struct imap_seqset *set, uint32_t max)
{
	size_t i, out = 0;

	for (i = 0; i < set->count; i++) {
		struct imap_seq_range *r = &set->ranges[i];

		if (r->hi == IMAP_SEQ_STAR) {
			r->hi = max;
			if (r->lo == IMAP_SEQ_STAR)
				r->lo = max;
			/* "7:*" with 5 messages is 5:7 (RFC 9051 6.4.8). */
			if (r->lo > r->hi) {
				uint32_t t = r->lo;

				r->lo = r->hi;
				r->hi = t;
			}
		}
	}
	if (set->count > 1)
		qsort(set->ranges, set->count, sizeof(*set->ranges), imap_range_cmp);
	for (i = 0; i < set->count; i++) {
		struct imap_seq_range r = set->ranges[i];

		if (out > 0 && (uint64_t)r.lo <= (uint64_t)set->ranges[out - 1].hi + 1) {
			if (r.hi > set->ranges[out - 1].hi)
				set->ranges[out - 1].hi = r.hi;
			continue;
		}
		set->ranges[out++] = r;
	}
	set->count = out;
	set->has_star = 0;
}

int
imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n < set->ranges[mid].lo)
			hi = mid;
		else if (n > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	free(set->ranges);
	memset(set, 0, sizeof(*set));
}

void
imap_seqset_format(struct buf *out, const uint32_t *nums, size_t count)
{
	size_t i = 0, j;

	while (i < count) {
		for (j = i; j + 1 < count && nums[j + 1] == nums[j] + 1; j++)
			;
		if (i > 0)
			buf_putc(out, ',');
		if (j > i)
			buf_printf(out, "%u:%u", nums[i], nums[j]);
		else
			buf_printf(out, "%u", nums[i]);
		i = j + 1;
	}
}
