/*
 * The DATA state machine against an oracle: the data ends exactly at the
 * first CRLF "." CRLF (the DATA command's CRLF counts as the one before
 * the first line), and feeding the input in two pieces changes nothing.
 * The MAIL and RCPT argument parsers get the same bytes as a command line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proto/smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
oracle_end(const char *in, size_t len)
{
	size_t i;

	if (len >= 3 && memcmp(in, ".\r\n", 3) == 0)
		return 3;
	for (i = 0; i + 5 <= len; i++)
		if (memcmp(in + i, "\r\n.\r\n", 5) == 0)
			return i + 5;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct smtp_data a, b;
	struct buf outa = BUF_INIT, outb = BUF_INIT;
	size_t used_a, used_b, split, end;
	char *line;

	smtp_data_init(&a, 1);
	used_a = smtp_data_feed(&a, in, size, &outa);
	end = oracle_end(in, size);
	if (end != 0 && (!a.done || used_a != end))
		abort();
	if (end == 0 && (a.done || used_a != size))
		abort();
	split = size > 0 ? data[0] % (size + 1) : 0;
	smtp_data_init(&b, 1);
	used_b = smtp_data_feed(&b, in, split, &outb);
	if (!b.done)
		used_b += smtp_data_feed(&b, in + split, size - split, &outb);
	if (used_a != used_b || a.done != b.done || a.bare_lf != b.bare_lf ||
	    a.bare_cr != b.bare_cr || outa.len != outb.len ||
	    (outa.len > 0 && memcmp(outa.data, outb.data, outa.len) != 0))
		abort();
	/* Content is never longer than its input. */
	if (outa.len > used_a)
		abort();
	buf_free(&outa);
	buf_free(&outb);

	line = malloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';
	{
		struct smtp_mail m;
		struct smtp_rcpt r;
		const char *reply;

		if (smtp_parse_mail(line, SMTP_EXT_ESMTP | SMTP_EXT_REQUIRETLS, &m, &reply) == 0)
			smtp_mail_clear(&m);
		if (smtp_parse_rcpt(line, SMTP_EXT_ESMTP | SMTP_EXT_SMTPUTF8, "mx.example", &r,
		    &reply) == 0)
			smtp_rcpt_clear(&r);
	}
	free(line);
	return 0;
}
