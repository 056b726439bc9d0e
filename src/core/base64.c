#include "core/base64.h"

#include <stdint.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
base64_encode(struct buf *out, const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i;

	buf_reserve(out, (len + 2) / 3 * 4);
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		buf_putc(out, alphabet[v >> 18]);
		buf_putc(out, alphabet[(v >> 12) & 63]);
		buf_putc(out, alphabet[(v >> 6) & 63]);
		buf_putc(out, alphabet[v & 63]);
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		buf_putc(out, alphabet[v >> 18]);
		buf_putc(out, alphabet[(v >> 12) & 63]);
		buf_puts(out, "==");
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		buf_putc(out, alphabet[v >> 18]);
		buf_putc(out, alphabet[(v >> 12) & 63]);
		buf_putc(out, alphabet[(v >> 6) & 63]);
		buf_putc(out, '=');
	}
}

static int
value_of(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(struct buf *out, const char *in, size_t len)
{
	size_t start = out->len, i;

	if (len % 4 != 0)
		return -1;
	buf_reserve(out, len / 4 * 3);
	for (i = 0; i < len; i += 4) {
		int a = value_of((unsigned char)in[i]);
		int b = value_of((unsigned char)in[i + 1]);
		int c = value_of((unsigned char)in[i + 2]);
		int d = value_of((unsigned char)in[i + 3]);
		int last = i + 4 == len;

		if (a < 0 || b < 0)
			goto bad;
		if (c < 0 || d < 0) {
			/* Padding only in the last quantum, and only "==" or "x=". */
			if (!last || in[i + 3] != '=')
				goto bad;
			if (c < 0) {
				if (in[i + 2] != '=' || (b & 15) != 0)
					goto bad;
				buf_putc(out, (char)(a << 2 | b >> 4));
			} else {
				if ((c & 3) != 0)
					goto bad;
				buf_putc(out, (char)(a << 2 | b >> 4));
				buf_putc(out, (char)((b & 15) << 4 | c >> 2));
			}
			break;
		}
		buf_putc(out, (char)(a << 2 | b >> 4));
		buf_putc(out, (char)((b & 15) << 4 | c >> 2));
		buf_putc(out, (char)((c & 3) << 6 | d));
	}
	return 0;
bad:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return -1;
}
