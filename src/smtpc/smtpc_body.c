/*
 * 8-bit content for a server without 8BITMIME (RFC 6152 says the client
 * must then convert or bounce). Only the simple, common case is converted:
 * one text/plain body, re-encoded as quoted-printable (RFC 2045 6.7) with
 * its headers left as they are. Anything else (multipart, message types, 8-bit
 * header fields) is refused and the queue bounces it.
 */
#include "smtpc/smtpc.h"

#include <string.h>
#include <strings.h>

#include "core/buf.h"

int
smtpc_body_is_8bit(const unsigned char *data, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (data[i] & 0x80)
			return 1;
	return 0;
}

/* The end of the header section: offset of the body, or len. */
static size_t
header_end(const unsigned char *d, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (d[i] == '\n' && d[i + 1] == '\n')
			return i + 2;
		if (d[i] == '\n' && d[i + 1] == '\r' && i + 2 < len && d[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/* 1 when the field line at p is named name. */
static int
field_is(const unsigned char *p, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && strncasecmp((const char *)p, name, n) == 0 && p[n] == ':';
}

/* The unfolded value of the field starting at p (within the header section
 * of length hlen), lower-cased, whitespace-trimmed, into out. */
static void
field_value(const unsigned char *p, const unsigned char *end, char *out, size_t size)
{
	const unsigned char *q = memchr(p, ':', (size_t)(end - p));
	size_t o = 0;

	if (q == NULL) {
		out[0] = '\0';
		return;
	}
	for (q++; q < end; q++) {
		if (*q == '\n' && (q + 1 >= end || (q[1] != ' ' && q[1] != '\t')))
			break;
		if (*q == '\r' || *q == '\n')
			continue;
		if (o == 0 && (*q == ' ' || *q == '\t'))
			continue;
		if (o + 1 < size)
			out[o++] = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	out[o] = '\0';
}

/* The end of the field (with its continuation lines) starting at p. */
static const unsigned char *
field_end(const unsigned char *p, const unsigned char *end)
{
	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL)
			return end;
		p = nl + 1;
		if (p >= end || (*p != ' ' && *p != '\t'))
			return p;
	}
	return end;
}

static void
qp_line(struct buf *out, const unsigned char *s, size_t len)
{
	size_t i, col = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = s[i];
		int last = i + 1 == len;
		char enc[4];
		size_t w;

		if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
			enc[0] = (char)c;
			w = 1;
		} else {
			enc[0] = '=';
			enc[1] = "0123456789ABCDEF"[c >> 4];
			enc[2] = "0123456789ABCDEF"[c & 15];
			w = 3;
		}
		/* Soft line break: lines stay within 76 characters. */
		if (col + w > 75) {
			buf_puts(out, "=\r\n");
			col = 0;
		}
		buf_append(out, enc, w);
		col += w;
	}
	buf_puts(out, "\r\n");
}

int
smtpc_body_to_qp(const unsigned char *d, size_t len, struct buf *out)
{
	size_t hlen = header_end(d, len), i;
	const unsigned char *p = d, *hend = d + hlen, *next;
	char value[256];
	int have_ct = 0, have_mime = 0;

	if (smtpc_body_is_8bit(d, hlen))
		return -1;
	for (p = d; p < hend; p = next) {
		next = field_end(p, hend);
		if (field_is(p, (size_t)(next - p), "content-type")) {
			field_value(p, next, value, sizeof(value));
			if (strncmp(value, "text/plain", 10) != 0 ||
			    (value[10] != '\0' && value[10] != ';' && value[10] != ' '))
				return -1;
			have_ct = 1;
		} else if (field_is(p, (size_t)(next - p), "content-transfer-encoding")) {
			field_value(p, next, value, sizeof(value));
			if (strcmp(value, "7bit") != 0 && strcmp(value, "8bit") != 0)
				return -1;
		} else if (field_is(p, (size_t)(next - p), "mime-version")) {
			have_mime = 1;
		}
	}
	buf_reset(out);
	buf_reserve(out, len + len / 4 + 256);
	for (p = d; p < hend; p = next) {
		next = field_end(p, hend);
		if (field_is(p, (size_t)(next - p), "content-transfer-encoding"))
			continue;
		if (*p == '\r' || *p == '\n')
			break;  /* the blank line */
		buf_append(out, p, (size_t)(next - p));
	}
	if (!have_mime)
		buf_puts(out, "MIME-Version: 1.0\r\n");
	if (!have_ct)
		buf_puts(out, "Content-Type: text/plain; charset=utf-8\r\n");
	buf_puts(out, "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	for (p = d + hlen; p < d + len; p = next) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(d + len - p));
		size_t l;

		next = nl != NULL ? nl + 1 : d + len;
		l = (size_t)((nl != NULL ? nl : d + len) - p);
		if (l > 0 && p[l - 1] == '\r')
			l--;
		for (i = 0; i < l; i++)
			if (p[i] == '\0' || p[i] == '\r')
				return -1;  /* binary, not text */
		qp_line(out, p, l);
	}
	return 0;
}
