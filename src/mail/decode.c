#include "mail/decode.h"

#include <string.h>

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void
mail_qp_decode(struct mail_qp *qp, const void *in, size_t len, struct buf *out)
{
	const unsigned char *s = in;
	size_t i, run;
	char pair[2];
	int h;

	buf_reserve(out, len);
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		switch (qp->state) {
		case 0:
			/* Copy the run up to the next "=" in one go. */
			run = i;
			while (run < len && s[run] != '=')
				run++;
			buf_append(out, s + i, run - i);
			i = run;
			if (i < len)
				qp->state = 1;
			break;
		case 1:
			if (c == '\n') {
				qp->state = 0;          /* soft line break, bare LF */
			} else if (c == '\r') {
				qp->state = 3;
			} else if (hexval(c) >= 0) {
				qp->hex = c;
				qp->state = 2;
			} else {
				/* Not an escape: keep the "=" and read c again. */
				buf_putc(out, '=');
				qp->state = 0;
				i--;
			}
			break;
		case 2:
			h = hexval(c);
			if (h >= 0) {
				buf_putc(out, (char)(hexval(qp->hex) << 4 | h));
				qp->state = 0;
			} else {
				pair[0] = '=';
				pair[1] = (char)qp->hex;
				buf_append(out, pair, 2);
				qp->state = 0;
				i--;
			}
			break;
		case 3:
			qp->state = 0;
			if (c != '\n') {
				buf_append(out, "=\r", 2);
				i--;
			}
			break;
		}
	}
}

void
mail_qp_finish(struct mail_qp *qp, struct buf *out)
{
	if (qp->state == 1)
		buf_putc(out, '=');
	else if (qp->state == 2) {
		buf_putc(out, '=');
		buf_putc(out, (char)qp->hex);
	} else if (qp->state == 3)
		buf_append(out, "=\r", 2);
	qp->state = 0;
}

static const signed char b64_table[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
	['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
	['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
	['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
	['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

void
mail_b64_decode(struct mail_b64 *b, const void *in, size_t len, struct buf *out)
{
	const unsigned char *s = in;
	size_t i;
	int v;

	buf_reserve(out, len / 4 * 3 + 3);
	for (i = 0; i < len; i++) {
		if (s[i] == '=') {
			/* Padding: what is left of the quantum is not data. */
			b->bits = 0;
			b->nbits = 0;
			continue;
		}
		v = b64_table[s[i]];
		if (v == 0)
			continue;
		b->bits = (b->bits << 6 | (uint32_t)(v - 1)) & 0xffffff;
		b->nbits += 6;
		if (b->nbits >= 8) {
			b->nbits -= 8;
			buf_putc(out, (char)(b->bits >> b->nbits & 0xff));
		}
	}
}

void
mail_q_decode(const char *in, size_t len, struct buf *out)
{
	size_t i;
	int h1, h2;

	for (i = 0; i < len; i++) {
		if (in[i] == '_') {
			buf_putc(out, ' ');
		} else if (in[i] == '=' && i + 2 < len &&
		    (h1 = hexval((unsigned char)in[i + 1])) >= 0 &&
		    (h2 = hexval((unsigned char)in[i + 2])) >= 0) {
			buf_putc(out, (char)(h1 << 4 | h2));
			i += 2;
		} else {
			buf_putc(out, in[i]);
		}
	}
}
