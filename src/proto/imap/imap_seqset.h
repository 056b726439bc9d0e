/*
 * Sequence sets (RFC 9051 sequence-set): "1:4,7,9:*" of message sequence
 * numbers or UIDs. Parsed once into sorted, merged ranges; '*' stays
 * symbolic until the set is resolved against a mailbox.
 */
#ifndef PETREL_PROTO_IMAP_SEQSET_H
#define PETREL_PROTO_IMAP_SEQSET_H

#include <stddef.h>
#include <stdint.h>

#define IMAP_SEQSET_RANGES_MAX 10000     /* ranges in one set */
#define IMAP_SEQ_STAR UINT32_MAX         /* '*' before resolving */

struct imap_seq_range {
	uint32_t lo, hi;                  /* lo <= hi; IMAP_SEQ_STAR for '*' */
};

struct imap_seqset {
	struct imap_seq_range *ranges;
	size_t count;
	unsigned has_star : 1;
};

/* Parses s. Returns 0, or -1 with *error_r for a malformed set (zero,
 * empty elements, numbers past 2^32-1, too many ranges). "$" is not a set
 * here (SEARCHRES is handled by the caller). */
int imap_seqset_parse(const char *s, struct imap_seqset *set, const char **error_r);
/* Replaces '*' by max (the highest sequence number or UID; 0 for an empty
 * mailbox), then sorts and merges the ranges. */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t max);
/* After resolving: 1 when n is in the set. */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
void imap_seqset_free(struct imap_seqset *set);
/* Appends the compact text form of sorted unique numbers ("1:3,5") to out. */
struct buf;
void imap_seqset_format(struct buf *out, const uint32_t *nums, size_t count);

#endif
