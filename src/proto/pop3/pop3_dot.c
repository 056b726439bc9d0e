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
	d->cr = 0;
	d->lone_cr = 0;
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

/* Line by line: memchr() finds each LF and the bytes before it are copied
 * as they are. A CR is copied at once; if an LF follows (in this chunk or
 * the next), it was the line's end, otherwise it was data, and the output
 * is the same either way. */
size_t
pop3_dot_encode(struct pop3_dot *d, const void *in, size_t len, char *out, size_t *used_r)
{
	const unsigned char *p = in, *lf;
	size_t i = 0, o = 0, n;

	while (i < len && !d->done) {
		if (d->bol && p[i] == '.')
			out[o++] = '.';
		lf = memchr(p + i, '\n', len - i);
		n = (lf != NULL ? (size_t)(lf - p) : len) - i;
		if (n > 0) {
			memcpy(out + o, p + i, n);
			o += n;
			d->lone_cr = d->bol && n == 1 && p[i] == '\r';
			d->cr = p[i + n - 1] == '\r';
			d->bol = 0;
			i += n;
		}
		if (lf == NULL)
			break;
		/* A bare LF becomes CRLF. */
		if (!d->cr)
			out[o++] = '\r';
		out[o++] = '\n';
		i++;
		pop3_dot_line_end(d, d->bol || d->lone_cr);
	}
	*used_r = i;
	return o;
}

size_t
pop3_dot_finish(struct pop3_dot *d, char *out)
{
	size_t o = 0;

	if (!d->done) {
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
