/*
 * A streaming parser of RFC 5322 / MIME messages (RFC 2045-2049, 2231).
 *
 * The store feeds a message through it while the message is being written
 * (mime_parser_feed may be given any split of the bytes, one byte at a time
 * included) and keeps what it finds in the index, so that IMAP's ENVELOPE,
 * BODYSTRUCTURE, section fetches, threading, SEARCH and PREVIEW never parse a
 * message again.
 *
 * Hard limits: MIME_DEPTH_MAX nesting, MIME_PARTS_MAX parts, MIME_HEADER_MAX
 * bytes of header per part. Past a limit the parser does not fail: the rest
 * is treated as opaque content of the innermost part it still tracks, as a
 * hostile message must still be storable and fetchable byte for byte.
 * Malformed input (unterminated boundaries, NULs, 8-bit headers, bad
 * encodings) is likewise tolerated; the parser never rejects a message.
 */
#ifndef PETREL_MAIL_MIME_H
#define PETREL_MAIL_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define MIME_DEPTH_MAX 100
#define MIME_PARTS_MAX 10000
#define MIME_HEADER_MAX (1024 * 1024)
#define MIME_TEXT_MAX (1024 * 1024)    /* decoded text kept for search */
#define MIME_PREVIEW_MAX 200           /* characters of PREVIEW (RFC 8970) */

/* One part; offsets are octets from the start of the message. */
struct mime_part {
	uint64_t header_offset;    /* first octet of the part's header */
	uint64_t body_offset;      /* first octet after the blank line */
	uint64_t body_end;         /* one past the last octet of the body */
	uint64_t body_lines;       /* lines in the body (IMAP's body-fld-lines):
	                            * its LF octets, as Dovecot counts them */
	uint32_t parent;           /* index of the parent part; 0 for the root */
	uint32_t nchildren;
	uint16_t depth;
	unsigned message_rfc822 : 1;  /* body is an encapsulated message */
	unsigned multipart : 1;
};

/* What the store keeps of a message. All strings are allocated, NUL-
 * terminated; NULL when absent. */
struct mime_summary {
	uint64_t size;             /* octets */
	uint64_t header_size;      /* of the top-level header incl. blank line */
	/* Raw (unfolded, undecoded) values of the top-level header fields
	 * ENVELOPE needs. */
	char *date, *subject, *from, *sender, *reply_to, *to, *cc, *bcc;
	char *in_reply_to, *message_id, *references;
	/* IMAP BODYSTRUCTURE and BODY (no extension data), ready to send. */
	char *bodystructure;
	char *body;
	/* Part layout, in pre-order (parts[0] is the whole message). A
	 * message/rfc822 part has one child, the message it holds, and a
	 * multipart its body parts; either may have none when a limit was
	 * reached or no delimiter was found (BODYSTRUCTURE then shows an empty
	 * text/plain part, as its grammar needs one). The line break before a
	 * delimiter line belongs to the delimiter, so a part may also end
	 * inside its header (body_offset == body_end then). */
	struct mime_part *parts;
	uint32_t nparts;
	/* Decoded (charset-converted to UTF-8) header text and the text parts,
	 * for the full-text index; at most MIME_TEXT_MAX bytes. */
	struct buf text;
	/* RFC 8970 preview: the start of the first text/plain part that is no
	 * attachment (else of the first such text/html one, tags stripped),
	 * UTF-8, at most MIME_PREVIEW_MAX characters, whitespace collapsed;
	 * "" when there is none. */
	char *preview;
	/* 1 when the header or body has 8-bit octets / NULs (for SMTP). */
	unsigned has_8bit : 1;
	unsigned has_nul : 1;
	/* 1 when a limit was reached (logged by the store). */
	unsigned truncated : 1;
};

struct mime_parser;

struct mime_parser *mime_parser_new(void);
/* Never fails; any bytes are a message. */
void mime_parser_feed(struct mime_parser *p, const void *data, size_t len);
/* Ends the message and hands over what was found (caller frees with
 * mime_summary_free). The parser is freed. */
struct mime_summary *mime_parser_finish(struct mime_parser **p);
void mime_parser_free(struct mime_parser **p);
void mime_summary_free(struct mime_summary **s);

/* Serializes the part layout to a compact byte string (for the index) and
 * back. Returns 0, or -1 for a malformed blob. */
void mime_parts_encode(const struct mime_part *parts, uint32_t nparts, struct buf *out);
int mime_parts_decode(const void *blob, size_t len, struct mime_part **parts_r,
    uint32_t *nparts_r);

#endif
