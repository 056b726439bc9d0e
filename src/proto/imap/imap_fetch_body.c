/*
 * Where a body section lies in a message (from the part layout the store
 * kept when the message arrived), and HEADER.FIELDS filtering. Pure.
 */
#include <string.h>
#include <strings.h>

#include "mail/mime.h"
#include "proto/imap/imap_fetch_body.h"

/* The k-th (1-based) child of part p, or -1. Children follow their parent
 * in pre-order, each after the previous child's subtree. */
static int64_t
imap_part_child(const struct mime_summary *s, uint32_t p, uint32_t k)
{
	uint32_t i, seen = 0;

	for (i = p + 1; i < s->nparts && s->parts[i].depth > s->parts[p].depth; i++) {
		if (s->parts[i].parent == p && s->parts[i].depth == s->parts[p].depth + 1) {
			if (++seen == k)
				return i;
		}
	}
	return -1;
}

int
imap_section_locate(const struct mime_summary *s, const struct imap_section *sec,
    struct imap_section_range *r)
{
	uint32_t cur = 0, i, x;
	int64_t c;

	memset(r, 0, sizeof(*r));
	if (s == NULL || s->nparts == 0)
		return -1;
	/* Walk the part numbers (RFC 9051 6.4.5: "Every message has at least
	 * one part number"; a message/rfc822 part's numbers are those of the
	 * message it holds). */
	for (i = 0; i < sec->npart; i++) {
		x = cur;
		if (i > 0) {
			if (s->parts[x].message_rfc822) {
				if ((c = imap_part_child(s, x, 1)) < 0)
					return -1;
				x = (uint32_t)c;
			} else if (!s->parts[x].multipart) {
				return -1;
			}
		}
		if (s->parts[x].multipart) {
			if ((c = imap_part_child(s, x, sec->part[i])) < 0)
				return -1;
			cur = (uint32_t)c;
		} else if (sec->part[i] == 1) {
			cur = x;
		} else {
			return -1;
		}
	}
	switch (sec->kind) {
	case IMAP_SECTION_ALL:
		if (sec->npart == 0) {
			r->start = 0;
			r->end = s->size;
		} else {
			r->start = s->parts[cur].body_offset;
			r->end = s->parts[cur].body_end;
		}
		break;
	case IMAP_SECTION_MIME:
		r->start = s->parts[cur].header_offset;
		r->end = s->parts[cur].body_offset;
		break;
	case IMAP_SECTION_HEADER:
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
	case IMAP_SECTION_TEXT:
		/* Of the message, or of the message a message/rfc822 part holds. */
		if (sec->npart > 0) {
			if (!s->parts[cur].message_rfc822 || (c = imap_part_child(s, cur, 1)) < 0)
				return -1;
			cur = (uint32_t)c;
		}
		if (sec->kind == IMAP_SECTION_TEXT) {
			r->start = s->parts[cur].body_offset;
			r->end = s->parts[cur].body_end;
		} else {
			r->start = s->parts[cur].header_offset;
			r->end = s->parts[cur].body_offset;
			r->filter = sec->kind != IMAP_SECTION_HEADER;
		}
		break;
	}
	if (r->end < r->start)
		r->end = r->start;
	return 0;
}

static int
imap_field_wanted(const char *name, size_t len, char *const *fields, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (strlen(fields[i]) == len && strncasecmp(fields[i], name, len) == 0)
			return 1;
	}
	return 0;
}

void
imap_header_filter(const char *hdr, size_t len, char *const *fields, unsigned nfields,
    int exclude, struct buf *out)
{
	size_t pos = 0;

	while (pos < len) {
		size_t start = pos, end, name_len;
		const char *colon;

		/* A blank line ends the header. */
		if (hdr[pos] == '\n' || (hdr[pos] == '\r' && pos + 1 < len && hdr[pos + 1] == '\n'))
			break;
		/* The field and its continuation lines. */
		end = pos;
		do {
			const char *nl = memchr(hdr + end, '\n', len - end);

			end = nl != NULL ? (size_t)(nl - hdr) + 1 : len;
		} while (end < len && (hdr[end] == ' ' || hdr[end] == '\t'));
		pos = end;
		colon = memchr(hdr + start, ':', end - start);
		if (colon == NULL)
			continue;
		name_len = (size_t)(colon - (hdr + start));
		while (name_len > 0 && (hdr[start + name_len - 1] == ' ' ||
		    hdr[start + name_len - 1] == '\t'))
			name_len--;
		if (imap_field_wanted(hdr + start, name_len, fields, nfields) != exclude)
			buf_append(out, hdr + start, end - start);
	}
	buf_puts(out, "\r\n");
}
