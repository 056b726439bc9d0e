/*
 * Modified UTF-7: printable ASCII stands for itself ('&' as "&-"); runs of
 * other characters are UTF-16BE in base64 (',' for '/', no padding) between
 * '&' and '-'.
 */
#include "proto/imap/imap_utf7.h"

#include <stdint.h>
#include <string.h>

#include "mail/charset.h"

static const char imap_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Decodes one UTF-8 character at s; returns its length, 0 when invalid. */
static size_t
imap_utf8_char(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	uint32_t cp, min;
	size_t n, i;

	if (len == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp_r = s[0];
		return s[0] == 0 ? 0 : 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

int
imap_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	while (len > 0) {
		if ((n = imap_utf8_char(p, len, &cp)) == 0)
			return 0;
		p += n;
		len -= n;
	}
	return 1;
}

/* The base64 state of a shifted run. */
struct imap_utf7_run {
	uint32_t bits;
	int nbits;
	int open;
};

static void
imap_utf7_unit(struct buf *out, struct imap_utf7_run *r, uint16_t unit)
{
	if (!r->open) {
		buf_putc(out, '&');
		r->open = 1;
		r->bits = 0;
		r->nbits = 0;
	}
	r->bits = (r->bits << 16) | unit;
	r->nbits += 16;
	while (r->nbits >= 6) {
		r->nbits -= 6;
		buf_putc(out, imap_b64[(r->bits >> r->nbits) & 0x3f]);
	}
}

static void
imap_utf7_close(struct buf *out, struct imap_utf7_run *r)
{
	if (!r->open)
		return;
	if (r->nbits > 0)
		buf_putc(out, imap_b64[(r->bits << (6 - r->nbits)) & 0x3f]);
	buf_putc(out, '-');
	r->open = 0;
}

int
imap_utf7_encode(const char *utf8, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)utf8;
	struct imap_utf7_run run = { 0, 0, 0 };
	size_t len = strlen(utf8), n;
	uint32_t cp;

	while (len > 0) {
		if (*p >= 0x20 && *p < 0x7f) {
			imap_utf7_close(out, &run);
			if (*p == '&')
				buf_puts(out, "&-");
			else
				buf_putc(out, (char)*p);
			p++;
			len--;
			continue;
		}
		if ((n = imap_utf8_char(p, len, &cp)) == 0)
			return -1;
		p += n;
		len -= n;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			imap_utf7_unit(out, &run, (uint16_t)(0xd800 | (cp >> 10)));
			imap_utf7_unit(out, &run, (uint16_t)(0xdc00 | (cp & 0x3ff)));
		} else {
			imap_utf7_unit(out, &run, (uint16_t)cp);
		}
	}
	imap_utf7_close(out, &run);
	return 0;
}

static int
imap_b64_value(unsigned char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(imap_b64, c)) == NULL)
		return -1;
	return (int)(p - imap_b64);
}


/* Decodes the base64 run at *pp (after '&') up to its '-'. */
static int
imap_utf7_decode_run(const unsigned char **pp, struct buf *out)
{
	const unsigned char *p = *pp;
	uint32_t bits = 0, high = 0, unit;
	int nbits = 0, v, nunits = 0;

	for (; *p != '-'; p++) {
		if ((v = imap_b64_value(*p)) < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unit = (bits >> nbits) & 0xffff;
		nunits++;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return -1;
			mail_utf8_putcp(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return -1;
		} else if (unit >= 0x20 && unit < 0x7f) {
			return -1;      /* printable ASCII must not be shifted */
		} else {
			mail_utf8_putcp(out, unit);
		}
	}
	/* Leftover bits must be fewer than a sextet's worth and zero. */
	if (nunits == 0 || high != 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	*pp = p + 1;
	return 0;
}

int
imap_utf7_decode(const char *utf7, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)utf7;
	int after_run = 0;

	while (*p != '\0') {
		if (*p < 0x20 || *p >= 0x7f)
			return -1;
		if (*p != '&') {
			buf_putc(out, (char)*p++);
			after_run = 0;
			continue;
		}
		p++;
		if (*p == '-') {
			buf_putc(out, '&');
			p++;
			after_run = 0;
			continue;
		}
		/* Two runs back to back are one run spelled differently. */
		if (after_run)
			return -1;
		if (imap_utf7_decode_run(&p, out) < 0)
			return -1;
		after_run = 1;
	}
	return 0;
}
