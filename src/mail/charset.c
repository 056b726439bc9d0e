#include "mail/charset.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "mail/decode.h"

#define REPLACEMENT "\xef\xbf\xbd"

/*
 * Returns the length of the UTF-8 character at s (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), 0 when s[0..n) is a valid but
 * incomplete start, -1 when s[0] starts no valid character.
 */
static int
utf8_char(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return -1;
	for (i = 1; i <= need; i++) {
		if ((size_t)i >= n)
			return 0;
		if (s[i] < lo || s[i] > hi)
			return -1;
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

/* Appends the valid UTF-8 of s[0..len); returns how many bytes at the end
 * form an incomplete character (not appended). */
static size_t
utf8_append_part(struct buf *out, const unsigned char *s, size_t len)
{
	size_t i = 0, run = 0;
	int n;

	buf_reserve(out, len);
	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		n = utf8_char(s + i, len - i);
		if (n > 0) {
			i += (size_t)n;
			continue;
		}
		buf_append(out, s + run, i - run);
		if (n == 0)
			return len - i;
		buf_puts(out, REPLACEMENT);
		i++;
		run = i;
	}
	buf_append(out, s + run, i - run);
	return 0;
}

void
mail_utf8_append(struct buf *out, const void *s, size_t len)
{
	size_t left = utf8_append_part(out, s, len);

	if (left > 0)
		buf_puts(out, REPLACEMENT);
}

size_t
mail_utf8_cut(const char *s, size_t len)
{
	size_t i = len;

	/* Back up over continuation bytes to the start of the last character. */
	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && len - i < 3)
		i--;
	if (i == 0)
		return 0;
	if (utf8_char((const unsigned char *)s + i - 1, len - (i - 1)) > 0)
		return len;
	return i - 1;
}

void
mail_utf8_putcp(struct buf *out, unsigned long cp)
{
	char u[4];

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		buf_puts(out, REPLACEMENT);
	} else if (cp < 0x80) {
		buf_putc(out, (char)cp);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		buf_append(out, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		buf_append(out, u, 3);
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		buf_append(out, u, 4);
	}
}

/* Charsets read as UTF-8: US-ASCII is a subset, and mislabelled 8-bit text
 * is far more often UTF-8 than anything else. */
static int
charset_is_utf8(const char *name)
{
	static const char *const names[] = { "utf-8", "utf8", "us-ascii", "ascii",
	    "ansi_x3.4-1968", "iso646-us", "us", "unknown-8bit", "x-unknown" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/* Only plain names reach iconv_open: no "/" (which would select glibc's
 * "//TRANSLIT"-style suffixes) and nothing odd. */
static int
charset_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n >= MAIL_CHARSET_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == ':' || c == '+'))
			return 0;
	}
	return 1;
}

void
mail_conv_open(struct mail_conv *c, const char *charset)
{
	const char *name = charset;
	iconv_t cd;

	c->npend = 0;
	if (name == NULL || !charset_name_ok(name) || charset_is_utf8(name)) {
		mail_conv_close(c);
		return;
	}
	/* ISO-8859-1's 0x80-0x9f are unused control codes; mail labelled
	 * Latin-1 that has them is windows-1252 (as browsers also assume). */
	if (strcasecmp(name, "iso-8859-1") == 0 || strcasecmp(name, "latin1") == 0 ||
	    strcasecmp(name, "iso_8859-1") == 0 || strcasecmp(name, "l1") == 0)
		name = "WINDOWS-1252";
	if (c->cd != NULL && strcasecmp(c->name, name) == 0) {
		iconv((iconv_t)c->cd, NULL, NULL, NULL, NULL);
		return;
	}
	mail_conv_close(c);
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return;
	c->cd = cd;
	strcpy(c->name, name);     /* checked above: fits */
}

void
mail_conv_close(struct mail_conv *c)
{
	if (c->cd != NULL)
		iconv_close((iconv_t)c->cd);
	c->cd = NULL;
	c->name[0] = '\0';
	c->npend = 0;
}

void
mail_conv_feed(struct mail_conv *c, const void *in, size_t len, struct buf *out)
{
	const unsigned char *s = in;
	char stage[4096], obuf[4096];
	char *ip, *op;
	size_t take, il, ol, left;

	if (c->cd == NULL) {
		/* UTF-8: complete a pending character first. */
		while (c->npend > 0 && len > 0) {
			c->pend[c->npend++] = *s++;
			len--;
			left = utf8_append_part(out, c->pend, c->npend);
			if (left == 0) {
				c->npend = 0;
			} else if (left < c->npend) {
				/* Impossible for one incomplete character; be safe. */
				memmove(c->pend, c->pend + c->npend - left, left);
				c->npend = left;
			}
		}
		if (len == 0)
			return;
		left = utf8_append_part(out, s, len);
		memcpy(c->pend, s + len - left, left);
		c->npend = left;
		return;
	}

	while (len > 0) {
		take = sizeof(stage) - c->npend;
		if (take > len)
			take = len;
		memcpy(stage, c->pend, c->npend);
		memcpy(stage + c->npend, s, take);
		s += take;
		len -= take;
		ip = stage;
		il = c->npend + take;
		c->npend = 0;
		while (il > 0) {
			op = obuf;
			ol = sizeof(obuf);
			if (iconv((iconv_t)c->cd, &ip, &il, &op, &ol) != (size_t)-1) {
				buf_append(out, obuf, (size_t)(op - obuf));
				break;
			}
			buf_append(out, obuf, (size_t)(op - obuf));
			if (errno == E2BIG)
				continue;
			if (errno == EINVAL && il < sizeof(c->pend)) {
				/* Incomplete character: wait for more. */
				memcpy(c->pend, ip, il);
				c->npend = il;
				break;
			}
			buf_puts(out, REPLACEMENT);
			ip++;
			il--;
		}
	}
}

void
mail_conv_flush(struct mail_conv *c, struct buf *out)
{
	char obuf[64], *op = obuf;
	size_t ol = sizeof(obuf);

	if (c->npend > 0)
		buf_puts(out, REPLACEMENT);
	c->npend = 0;
	if (c->cd != NULL) {
		if (iconv((iconv_t)c->cd, NULL, NULL, &op, &ol) != (size_t)-1)
			buf_append(out, obuf, (size_t)(op - obuf));
		iconv((iconv_t)c->cd, NULL, NULL, NULL, NULL);
	}
}

/*
 * Parses an encoded-word (RFC 2047 section 2) at s: "=?" charset ["*" lang]
 * "?" ("B" / "Q") "?" text "?=", with no white space inside. Returns its
 * length, or 0 when s does not start one.
 */
static size_t
encoded_word(const char *s, size_t len, char *charset, char *enc,
    const char **text, size_t *textlen)
{
	size_t i = 2, cs, t;

	if (len < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	cs = i;
	while (i < len && s[i] != '?' && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' &&
	    s[i] != '\n')
		i++;
	if (i == cs || i + 2 >= len || s[i] != '?' || s[i + 2] != '?')
		return 0;
	if (i - cs >= MAIL_CHARSET_NAME_MAX)
		return 0;
	memcpy(charset, s + cs, i - cs);
	charset[i - cs] = '\0';
	/* RFC 2231 section 5: a language after "*". */
	if (strchr(charset, '*') != NULL)
		*strchr(charset, '*') = '\0';
	*enc = s[i + 1];
	if (*enc != 'B' && *enc != 'b' && *enc != 'Q' && *enc != 'q')
		return 0;
	i += 3;
	t = i;
	while (i + 1 < len && !(s[i] == '?' && s[i + 1] == '=')) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')
			return 0;
		i++;
	}
	if (i + 1 >= len)
		return 0;
	*text = s + t;
	*textlen = i - t;
	return i + 2;
}

static int
utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	int n;

	while (i < len) {
		n = utf8_char((const unsigned char *)s + i, len - i);
		if (n <= 0)
			return 0;
		i += (size_t)n;
	}
	return 1;
}

/* Raw 8-bit header text: UTF-8 (RFC 6532) when it is valid, else most
 * likely a legacy single-byte charset, read as windows-1252. */
static void
raw_text(const char *s, size_t len, struct buf *out)
{
	struct mail_conv conv = { 0 };

	if (utf8_valid(s, len)) {
		buf_append(out, s, len);
		return;
	}
	mail_conv_open(&conv, "windows-1252");
	mail_conv_feed(&conv, s, len, out);
	mail_conv_flush(&conv, out);
	mail_conv_close(&conv);
}

static void
flush_words(struct buf *acc, const char *charset, struct buf *out)
{
	struct mail_conv conv = { 0 };

	if (acc->len == 0)
		return;
	mail_conv_open(&conv, charset);
	mail_conv_feed(&conv, acc->data, acc->len, out);
	mail_conv_flush(&conv, out);
	mail_conv_close(&conv);
	buf_reset(acc);
}

void
mail_header_decode(const char *s, size_t len, struct buf *out)
{
	struct buf acc = BUF_INIT;
	char charset[MAIL_CHARSET_NAME_MAX], acc_charset[MAIL_CHARSET_NAME_MAX] = "";
	char enc;
	const char *text;
	size_t i = 0, j, n, textlen;
	int after_word = 0;
	struct mail_b64 b64;

	while (i < len) {
		n = encoded_word(s + i, len - i, charset, &enc, &text, &textlen);
		if (n > 0) {
			/* Adjacent words in one charset are decoded together, as
			 * a character may be split between them. */
			if (strcasecmp(charset, acc_charset) != 0) {
				flush_words(&acc, acc_charset, out);
				strcpy(acc_charset, charset);
			}
			if (enc == 'B' || enc == 'b') {
				memset(&b64, 0, sizeof(b64));
				mail_b64_decode(&b64, text, textlen, &acc);
			} else
				mail_q_decode(text, textlen, &acc);
			i += n;
			after_word = 1;
			continue;
		}
		j = i;
		while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n'))
			j++;
		if (j > i) {
			/* White space between two encoded-words is not text. */
			if (after_word && j < len && encoded_word(s + j, len - j, charset,
			    &enc, &text, &textlen) > 0) {
				i = j;
				continue;
			}
			flush_words(&acc, acc_charset, out);
			after_word = 0;
			buf_append(out, s + i, j - i);
			i = j;
			continue;
		}
		flush_words(&acc, acc_charset, out);
		after_word = 0;
		j = i + 1;
		while (j < len && s[j] != '=' && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' &&
		    s[j] != '\n')
			j++;
		raw_text(s + i, j - i, out);
		i = j;
	}
	flush_words(&acc, acc_charset, out);
	buf_free(&acc);
}
