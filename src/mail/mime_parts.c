/*
 * The part layout as a compact blob for the index:
 *
 *   version (1 octet, 1), nparts (varint), then per part in pre-order:
 *   header_offset - previous part's header_offset, body_offset -
 *   header_offset, body_end - body_offset, body_lines, parent, nchildren
 *   (varints: LEB128, 7 bits a byte, low first) and a flags octet (1:
 *   message/rfc822, 2: multipart). Depth is implied by the parents.
 *
 * The decoder checks that the blob describes a tree the parser could have
 * produced (pre-order, children inside their parent's body and in order,
 * counts that match, the limits of mime.h), so a damaged index row is
 * refused instead of leading IMAP astray.
 */
#include "mail/mime.h"

#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

#define PARTS_VERSION 1
#define FLAG_RFC822 1
#define FLAG_MULTIPART 2

static void
put_varint(struct buf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	buf_append(out, b, n);
}

void
mime_parts_encode(const struct mime_part *parts, uint32_t nparts, struct buf *out)
{
	uint64_t prev = 0;
	uint32_t i;

	buf_putc(out, PARTS_VERSION);
	put_varint(out, nparts);
	for (i = 0; i < nparts; i++) {
		const struct mime_part *mp = &parts[i];

		put_varint(out, mp->header_offset - prev);
		put_varint(out, mp->body_offset - mp->header_offset);
		put_varint(out, mp->body_end - mp->body_offset);
		put_varint(out, mp->body_lines);
		put_varint(out, mp->parent);
		put_varint(out, mp->nchildren);
		buf_putc(out, (char)((mp->message_rfc822 ? FLAG_RFC822 : 0) |
		    (mp->multipart ? FLAG_MULTIPART : 0)));
		prev = mp->header_offset;
	}
}

struct reader {
	const unsigned char *s;
	size_t len, pos;
};

static int
get_varint(struct reader *r, uint64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0;
	unsigned char c;

	do {
		if (r->pos >= r->len || shift > 63)
			return -1;
		c = r->s[r->pos++];
		if (shift == 63 && (c & 0x7e) != 0)
			return -1;      /* more than 64 bits */
		x |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	*v = x;
	return 0;
}

static int
add_ok(uint64_t a, uint64_t b, uint64_t *sum)
{
	if (a > UINT64_MAX - b)
		return 0;
	*sum = a + b;
	return 1;
}

int
mime_parts_decode(const void *blob, size_t len, struct mime_part **parts_r,
    uint32_t *nparts_r)
{
	struct reader r = { blob, len, 0 };
	struct mime_part *parts = NULL, *mp, *pp;
	uint64_t n, v[6], prev = 0;
	uint64_t *last_end = NULL;      /* end of each part's last child so far */
	uint32_t *chain = NULL, nchain = 0, *seen = NULL;
	uint32_t i;
	unsigned char flags;
	int k;

	*parts_r = NULL;
	*nparts_r = 0;
	if (len < 2 || r.s[r.pos++] != PARTS_VERSION)
		return -1;
	if (get_varint(&r, &n) < 0 || n == 0 || n > MIME_PARTS_MAX)
		return -1;
	/* Each part takes at least 7 octets: refuse a count the blob cannot
	 * hold before allocating for it. */
	if (n > (len - r.pos) / 7)
		return -1;
	parts = xcalloc(n, sizeof(*parts));
	last_end = xcalloc(n, sizeof(*last_end));
	chain = xcalloc(n, sizeof(*chain));
	seen = xcalloc(n, sizeof(*seen));
	for (i = 0; i < n; i++) {
		mp = &parts[i];
		for (k = 0; k < 6; k++)
			if (get_varint(&r, &v[k]) < 0)
				goto bad;
		if (r.pos >= len)
			goto bad;
		flags = r.s[r.pos++];
		if ((flags & ~(FLAG_RFC822 | FLAG_MULTIPART)) != 0 ||
		    flags == (FLAG_RFC822 | FLAG_MULTIPART))
			goto bad;
		if (!add_ok(prev, v[0], &mp->header_offset) ||
		    !add_ok(mp->header_offset, v[1], &mp->body_offset) ||
		    !add_ok(mp->body_offset, v[2], &mp->body_end))
			goto bad;
		if (v[3] > v[2] || v[4] >= UINT32_MAX || v[5] > MIME_PARTS_MAX)
			goto bad;
		mp->body_lines = v[3];
		mp->parent = (uint32_t)v[4];
		mp->nchildren = (uint32_t)v[5];
		mp->message_rfc822 = (flags & FLAG_RFC822) != 0;
		mp->multipart = (flags & FLAG_MULTIPART) != 0;
		prev = mp->header_offset;
		if (i == 0) {
			if (mp->parent != 0 || mp->header_offset != 0)
				goto bad;
			chain[nchain++] = 0;
			continue;
		}
		/* Pre-order: the parent is on the path to the previous part. */
		while (nchain > 0 && chain[nchain - 1] != mp->parent)
			nchain--;
		if (nchain == 0)
			goto bad;
		pp = &parts[mp->parent];
		if (!pp->multipart && !pp->message_rfc822)
			goto bad;
		if (pp->message_rfc822 && (seen[mp->parent] > 0 ||
		    mp->header_offset != pp->body_offset || mp->body_end != pp->body_end))
			goto bad;
		if (pp->depth >= MIME_DEPTH_MAX)
			goto bad;
		mp->depth = (uint16_t)(pp->depth + 1);
		if (mp->header_offset < pp->body_offset || mp->body_end > pp->body_end ||
		    (seen[mp->parent] > 0 && mp->header_offset < last_end[mp->parent]))
			goto bad;
		last_end[mp->parent] = mp->body_end;
		seen[mp->parent]++;
		chain[nchain++] = i;
	}
	if (r.pos != len)
		goto bad;
	for (i = 0; i < n; i++)
		if (seen[i] != parts[i].nchildren)
			goto bad;
	free(last_end);
	free(chain);
	free(seen);
	*parts_r = parts;
	*nparts_r = (uint32_t)n;
	return 0;
bad:
	free(parts);
	free(last_end);
	free(chain);
	free(seen);
	return -1;
}
