/*
 * Conversion of text to UTF-8 for the search text and the preview, with
 * glibc's iconv. Nothing here fails: bytes that are invalid in their charset
 * become U+FFFD, and an unknown charset is read as UTF-8 (which US-ASCII is a
 * subset of).
 */
#ifndef PETREL_MAIL_CHARSET_H
#define PETREL_MAIL_CHARSET_H

#include <stddef.h>

#include "core/buf.h"

#define MAIL_CHARSET_NAME_MAX 48

/* A streaming converter: the input may be split anywhere, even inside a
 * multi-byte character. Zero-initialise, then mail_conv_open. */
struct mail_conv {
	void *cd;               /* iconv_t, or NULL when reading UTF-8 */
	char name[MAIL_CHARSET_NAME_MAX];
	unsigned char pend[16]; /* an incomplete character from the last feed */
	size_t npend;
};

/* Prepares to convert from charset (NULL: UTF-8). Reuses the iconv
 * descriptor when the charset is the one already open. */
void mail_conv_open(struct mail_conv *c, const char *charset);
/* Appends the UTF-8 of in[0..len) to out. */
void mail_conv_feed(struct mail_conv *c, const void *in, size_t len, struct buf *out);
/* Ends one text: an incomplete character becomes U+FFFD, shift states are
 * reset. The converter stays open for the next text. */
void mail_conv_flush(struct mail_conv *c, struct buf *out);
void mail_conv_close(struct mail_conv *c);

/* Appends s[0..len) to out, replacing invalid UTF-8 with U+FFFD. */
void mail_utf8_append(struct buf *out, const void *s, size_t len);
/* Length of the longest prefix of s[0..len) that does not end inside a
 * UTF-8 character (s is valid UTF-8). */
size_t mail_utf8_cut(const char *s, size_t len);
/* Appends the UTF-8 encoding of the code point cp (U+FFFD if invalid). */
void mail_utf8_putcp(struct buf *out, unsigned long cp);

/* Decodes the RFC 2047 encoded-words of a header value into UTF-8; the rest
 * is taken as UTF-8. */
void mail_header_decode(const char *s, size_t len, struct buf *out);

#endif
