#include "proto/pop3/pop3_dot.h"

#include <string.h>

void
pop3_dot_init(struct pop3_dot *d, int top, uint64_t body_lines)
{
	memset(d, 0, sizeof(*d));
	d->top = top != 0;
	d->lines_left = body_lines;
	d->bol = 1;
}

/* A line ended (its CRLF is written); empty says nothing came before it. */
static void
pop3_dot_line_end(struct pop3_dot *d, int empty)
{
	d->bol = 1;
	if (!d->in_body) {
		/* The first empty line separates the header from the body. */
		if (empty)
			d->in_body = 1;
	} else if (d->top && d->lines_left > 0) {
		d->lines_left--;
	}
	if (d->top && d->in_body && d->lines_left == 0)
		d->done = 1;
}

size_t
pop3_dot_encode(struct pop3_dot *d, const void *in, size_t len, char *out, size_t *used_r)
{
	const unsigned char *p = in;
	size_t i = 0, o = 0, j;

	while (i < len && !d->done) {
		unsigned char c = p[i];

		if (d->cr) {
			d->cr = 0;
			if (c == '\n') {
				out[o++] = '\r';
				out[o++] = '\n';
				i++;
				pop3_dot_line_end(d, d->bol);
				continue;
			}
			/* A CR on its own is data. */
			out[o++] = '\r';
			d->bol = 0;
		}
		if (c == '\r') {
			d->cr = 1;
			i++;
			continue;
		}
		if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			i++;
			pop3_dot_line_end(d, d->bol);
			continue;
		}
		if (d->bol && c == '.')
			out[o++] = '.';
		d->bol = 0;
		/* The rest of the line up to its end, as it is. */
		for (j = i + 1; j < len && p[j] != '\r' && p[j] != '\n'; j++)
			;
		memcpy(out + o, p + i, j - i);
		o += j - i;
		i = j;
	}
	*used_r = i;
	return o;
}

size_t
pop3_dot_finish(struct pop3_dot *d, char *out)
{
	size_t o = 0;

	if (!d->done) {
		if (d->cr) {
			out[o++] = '\r';
			d->cr = 0;
			d->bol = 0;
		}
		if (!d->bol) {
			out[o++] = '\r';
			out[o++] = '\n';
		}
	}
	memcpy(out + o, ".\r\n", 3);
	d->done = 1;
	return o + 3;
}

uint32_t
pop3_parse_msgno(const char *arg, size_t count)
{
	uint64_t n = 0;

	if (*arg == '\0')
		return 0;
	for (; *arg != '\0'; arg++) {
		if (*arg < '0' || *arg > '9')
			return 0;
		n = n * 10 + (uint64_t)(*arg - '0');
		if (n > count || n > UINT32_MAX)
			return 0;
	}
	return (uint32_t)n;
}

int
pop3_parse_lines(const char *arg, uint64_t *lines_r)
{
	uint64_t n = 0;

	if (*arg == '\0')
		return -1;
	for (; *arg != '\0'; arg++) {
		if (*arg < '0' || *arg > '9')
			return -1;
		if (n > (UINT64_MAX - 9) / 10)
			n = UINT64_MAX;
		else
			n = n * 10 + (uint64_t)(*arg - '0');
	}
	*lines_r = n;
	return 0;
}
