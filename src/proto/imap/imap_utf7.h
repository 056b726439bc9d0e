/*
 * Mailbox names on the wire (RFC 3501 5.1.3, RFC 9051 5.1, RFC 6855).
 *
 * The store names mailboxes in UTF-8. IMAP4rev1 clients see them in
 * modified UTF-7; clients that enabled IMAP4rev2 or UTF8=ACCEPT see UTF-8.
 * The decoder is strict: anything that is not the one canonical encoding of
 * a UTF-8 string (printable ASCII shifted, unterminated shifts, bad base64,
 * stray bits, lone surrogates, 8-bit octets) is refused, so that two
 * spellings never name one mailbox.
 */
#ifndef PETREL_PROTO_IMAP_UTF7_H
#define PETREL_PROTO_IMAP_UTF7_H

#include <stddef.h>

#include "core/buf.h"

/* Appends the modified UTF-7 form of a UTF-8 string to out. Returns 0, or
 * -1 when utf8 is not valid UTF-8 (out then holds a partial result). */
int imap_utf7_encode(const char *utf8, struct buf *out);
/* Appends the UTF-8 form of a modified UTF-7 string. Returns 0 or -1. */
int imap_utf7_decode(const char *utf7, struct buf *out);
/* 1 when s[0..len) is well-formed UTF-8 without NUL or overlong forms. */
int imap_utf8_valid(const char *s, size_t len);

#endif
