/*
 * Body sections within a stored message: where they lie (from the part
 * layout of its struct mime_summary) and the HEADER.FIELDS filter. Pure.
 */
#ifndef PETREL_PROTO_IMAP_FETCH_BODY_H
#define PETREL_PROTO_IMAP_FETCH_BODY_H

#include <stdint.h>

#include "core/buf.h"
#include "proto/imap/imap_fetch.h"

struct mime_summary;

struct imap_section_range {
	uint64_t start, end;            /* octets of the message */
	unsigned filter : 1;            /* HEADER.FIELDS (.NOT): filter it */
};

/* Finds the octets of a section. Returns 0, or -1 when the message has no
 * such part. */
int imap_section_locate(const struct mime_summary *s, const struct imap_section *sec,
    struct imap_section_range *r);
/* Appends the header fields of hdr[0..len) named (or, with exclude, not
 * named) in fields, then the blank line that ends a header. */
void imap_header_filter(const char *hdr, size_t len, char *const *fields, unsigned nfields,
    int exclude, struct buf *out);

#endif
