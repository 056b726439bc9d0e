/*
 * The end-of-data state machine. See smtp.h: only CRLF "." CRLF ends a
 * message; a line begins only after CRLF; a leading dot is removed from
 * every other line that has one.
 */
#include <string.h>

#include "core/buf.h"
#include "proto/smtp/smtp.h"

enum {
	DATA_LINE,      /* at the start of a line (after CRLF, or the first) */
	DATA_TEXT,      /* inside a line */
	DATA_CR,        /* a CR inside a line: LF makes it a line end */
	DATA_DOT,       /* "." at the start of a line */
	DATA_DOT_CR,    /* "." CR at the start of a line: LF ends the data */
};

void
smtp_data_init(struct smtp_data *d, int dotted)
{
	memset(d, 0, sizeof(*d));
	d->dotted = dotted ? 1 : 0;
	d->state = DATA_LINE;
}

size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len && !d->done) {
		char c = in[i];

		switch (d->state) {
		case DATA_TEXT: {
			/* The common case: copy up to the next CR or LF at once. */
			size_t j = i;

			while (j < len && in[j] != '\r' && in[j] != '\n')
				j++;
			buf_append(out, in + i, j - i);
			i = j;
			if (i == len)
				return i;
			c = in[i];
			if (c == '\r') {
				d->state = DATA_CR;
			} else {
				d->bare_lf = 1;
				buf_putc(out, '\n');
			}
			i++;
			break;
		}
		case DATA_LINE:
			i++;
			if (c == '.' && d->dotted) {
				d->state = DATA_DOT;
			} else if (c == '\r') {
				d->state = DATA_CR;
			} else {
				if (c == '\n')
					d->bare_lf = 1;
				buf_putc(out, c);
				d->state = DATA_TEXT;
			}
			break;
		case DATA_CR:
			i++;
			if (c == '\n') {
				buf_append(out, "\r\n", 2);
				d->state = DATA_LINE;
			} else if (c == '\r') {
				d->bare_cr = 1;
				buf_putc(out, '\r');   /* the new CR waits for its LF */
			} else {
				d->bare_cr = 1;
				buf_putc(out, '\r');
				buf_putc(out, c);
				d->state = DATA_TEXT;
			}
			break;
		case DATA_DOT:
			i++;
			if (c == '\r') {
				d->state = DATA_DOT_CR;
			} else {
				/* The dot was stuffing: drop it, keep the rest. */
				if (c == '\n')
					d->bare_lf = 1;
				buf_putc(out, c);
				d->state = DATA_TEXT;
			}
			break;
		case DATA_DOT_CR:
			if (c == '\n') {
				i++;
				d->done = 1;
				break;
			}
			/* "." CR then something else: the dot goes, the CR is
			 * bare; look at c again as the byte after a CR. */
			d->state = DATA_CR;
			break;
		}
	}
	return i;
}

void
smtp_data_finish(struct smtp_data *d, struct buf *out)
{
	if (d->state == DATA_CR) {
		d->bare_cr = 1;
		buf_putc(out, '\r');
		d->state = DATA_TEXT;
	}
}
