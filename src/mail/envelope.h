/*
 * IMAP's ENVELOPE (RFC 3501 / RFC 9051 section 7.4.2 and 7.5.2) from the raw
 * header fields the MIME parser keeps, and the IMAP string syntax used by it
 * and by BODYSTRUCTURE.
 */
#ifndef PETREL_MAIL_ENVELOPE_H
#define PETREL_MAIL_ENVELOPE_H

#include "core/buf.h"
#include "mail/mime.h"

/* The header fields of an ENVELOPE, in its order. */
enum mime_env_field {
	MIME_ENV_DATE,
	MIME_ENV_SUBJECT,
	MIME_ENV_FROM,
	MIME_ENV_SENDER,
	MIME_ENV_REPLY_TO,
	MIME_ENV_TO,
	MIME_ENV_CC,
	MIME_ENV_BCC,
	MIME_ENV_IN_REPLY_TO,
	MIME_ENV_MESSAGE_ID,
	MIME_ENV_NFIELDS
};

/* Appends the ENVELOPE of a message, "(" ... ")", to out. */
void mime_envelope(const struct mime_summary *s, struct buf *out);
/* The same from raw (unfolded, trimmed) field values, NULL when absent;
 * fields may be NULL for a message without any. Sender and Reply-To default
 * to From; address fields that hold no address are NIL. */
void mime_envelope_fields(char *const *fields, struct buf *out);

/* Appends s as an IMAP nstring: NIL for NULL, a quoted string when it can be
 * one (no CR, LF or 8-bit octet), else a literal. */
void mime_imap_nstring(struct buf *out, const char *s);
/* Appends s[0..len) as an IMAP string (quoted or literal); NULs become
 * spaces, as no IMAP string may hold one. */
void mime_imap_string(struct buf *out, const char *s, size_t len);

#endif
