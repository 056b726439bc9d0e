/*
 * The MIME parser never crashes, gives the same summary however the input
 * is split, and its part layout survives mime_parts_encode / decode; the
 * blob decoder never crashes on anything. The first octet of the input
 * picks the split pattern, the rest is the message (and also a blob).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "mail/address.h"
#include "mail/envelope.h"
#include "mail/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
	if (!ok)
		abort();
}

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
parts_eq(const struct mime_part *a, const struct mime_part *b, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (a[i].header_offset != b[i].header_offset ||
		    a[i].body_offset != b[i].body_offset ||
		    a[i].body_end != b[i].body_end || a[i].body_lines != b[i].body_lines ||
		    a[i].parent != b[i].parent || a[i].nchildren != b[i].nchildren ||
		    a[i].depth != b[i].depth || a[i].message_rfc822 != b[i].message_rfc822 ||
		    a[i].multipart != b[i].multipart)
			return 0;
	return 1;
}

static void
same_summary(const struct mime_summary *a, const struct mime_summary *b)
{
	check(a->size == b->size && a->header_size == b->header_size);
	check(str_eq(a->date, b->date) && str_eq(a->subject, b->subject) &&
	    str_eq(a->from, b->from) && str_eq(a->sender, b->sender) &&
	    str_eq(a->reply_to, b->reply_to) && str_eq(a->to, b->to) &&
	    str_eq(a->cc, b->cc) && str_eq(a->bcc, b->bcc) &&
	    str_eq(a->in_reply_to, b->in_reply_to) &&
	    str_eq(a->message_id, b->message_id) && str_eq(a->references, b->references));
	check(str_eq(a->bodystructure, b->bodystructure) && str_eq(a->body, b->body));
	check(a->nparts == b->nparts && parts_eq(a->parts, b->parts, a->nparts));
	check(a->text.len == b->text.len &&
	    (a->text.len == 0 || memcmp(a->text.data, b->text.data, a->text.len) == 0));
	check(str_eq(a->preview, b->preview));
	check(a->has_8bit == b->has_8bit && a->has_nul == b->has_nul &&
	    a->truncated == b->truncated);
}

static struct mime_summary *
parse_split(const uint8_t *msg, size_t len, uint8_t pattern)
{
	struct mime_parser *p = mime_parser_new();
	uint32_t state = pattern * 2654435761u + 1;
	size_t i = 0, n;

	while (i < len) {
		if (pattern == 0) {
			n = 1;
		} else {
			state = state * 1103515245u + 12345u;
			n = 1 + (state >> 16) % (pattern < 128 ? 16u : 4096u);
		}
		if (n > len - i)
			n = len - i;
		mime_parser_feed(p, msg + i, n);
		i += n;
	}
	return mime_parser_finish(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_parser *p;
	struct mime_summary *whole, *split;
	struct mime_part *parts;
	struct mail_address *list;
	struct buf b = BUF_INIT;
	uint32_t nparts;
	size_t n;

	if (mime_parts_decode(data, size, &parts, &nparts) == 0) {
		/* Whatever decodes re-encodes to the same layout. */
		mime_parts_encode(parts, nparts, &b);
		free(parts);
		check(mime_parts_decode(b.data, b.len, &parts, &nparts) == 0);
		free(parts);
		buf_reset(&b);
	}
	n = mail_address_parse((const char *)data, size, &list, NULL);
	mail_address_free(&list, n);
	if (size == 0)
		return 0;

	p = mime_parser_new();
	mime_parser_feed(p, data + 1, size - 1);
	whole = mime_parser_finish(&p);
	split = parse_split(data + 1, size - 1, data[0]);
	same_summary(whole, split);

	check(whole->text.len <= MIME_TEXT_MAX);
	check(whole->nparts >= 1 && whole->nparts <= MIME_PARTS_MAX);
	mime_parts_encode(whole->parts, whole->nparts, &b);
	check(mime_parts_decode(b.data, b.len, &parts, &nparts) == 0);
	check(nparts == whole->nparts && parts_eq(parts, whole->parts, nparts));
	free(parts);
	buf_reset(&b);
	mime_envelope(whole, &b);

	buf_free(&b);
	mime_summary_free(&whole);
	mime_summary_free(&split);
	return 0;
}
