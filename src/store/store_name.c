/*
 * Mailbox names and keywords: what the store accepts, and the one spelling
 * it keeps. A name is a row in the index, never a path, but it still has to
 * be unambiguous: no empty, "." or ".." component, no control characters,
 * valid UTF-8 only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "store/store_backend.h"

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when invalid
 * (overlong forms, surrogates and values past U+10FFFF included); the code
 * point in *cp. */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c = s[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

char *
store_name_normalize(const char *name, const char **error_r)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t len, i, step, comp_start = 0, depth = 1;
	uint32_t cp;
	char *out;

	if (name == NULL || name[0] == '\0') {
		store_fail(STORE_ERR_INVALID, error_r, "empty mailbox name");
		return NULL;
	}
	len = strlen(name);
	if (len > STORE_MAILBOX_NAME_MAX) {
		store_fail(STORE_ERR_LIMIT, error_r, "mailbox name too long");
		return NULL;
	}
	for (i = 0; i <= len; i += step) {
		step = 1;
		if (i == len || s[i] == STORE_SEPARATOR) {
			size_t clen = i - comp_start;

			if (clen == 0 || (clen == 1 && s[comp_start] == '.') ||
			    (clen == 2 && s[comp_start] == '.' && s[comp_start + 1] == '.')) {
				store_fail(STORE_ERR_INVALID, error_r,
				    "invalid mailbox name: empty, \".\" or \"..\" level");
				return NULL;
			}
			if (i < len && ++depth > STORE_MAILBOX_DEPTH_MAX) {
				store_fail(STORE_ERR_LIMIT, error_r,
				    "mailbox name has too many levels");
				return NULL;
			}
			comp_start = i + 1;
			continue;
		}
		if ((step = utf8_next(s + i, len - i, &cp)) == 0) {
			store_fail(STORE_ERR_INVALID, error_r,
			    "invalid mailbox name: not UTF-8");
			return NULL;
		}
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
		    cp == 0x2028 || cp == 0x2029) {
			store_fail(STORE_ERR_INVALID, error_r,
			    "invalid mailbox name: control character");
			return NULL;
		}
	}
	out = xstrdup(name);
	/* INBOX, in any case, as the first level is INBOX. */
	if (strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == STORE_SEPARATOR))
		memcpy(out, "INBOX", 5);
	return out;
}

/* IMAP atoms without the characters that mean something in flag lists
 * (RFC 3501 flag-keyword = atom), not starting with '\'. */
int
store_keyword_valid(const char *kw)
{
	size_t i;

	if (kw == NULL || kw[0] == '\0' || kw[0] == '\\')
		return 0;
	for (i = 0; kw[i] != '\0'; i++) {
		unsigned char c = (unsigned char)kw[i];

		if (i >= STORE_KEYWORD_MAX)
			return 0;
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

int
store_keyword_equal(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}
