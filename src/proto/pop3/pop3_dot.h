/*
 * The pure parts of POP3's TRANSACTION state, apart from any I/O so that
 * they can be tested byte by byte: turning a stored message into a
 * multi-line response, and parsing message numbers.
 *
 * A multi-line response (RFC 1939 section 3) is CRLF-terminated lines, a
 * line starting with "." gets one more "." in front, and ".\r\n" ends it.
 * pop3_dot_encode() works on a message in chunks of any size, keeping what
 * it needs across chunk boundaries (a chunk ending in "\r" or "\n", a "."
 * opening the next chunk); it copies a line at a time, not a byte. Line endings are made CRLF: a bare LF becomes
 * CRLF; a CR not followed by LF is kept as it is. For TOP it stops after the
 * header, the blank line and the requested number of body lines.
 */
#ifndef PETREL_PROTO_POP3_DOT_H
#define PETREL_PROTO_POP3_DOT_H

#include <stddef.h>
#include <stdint.h>

struct pop3_dot {
	uint64_t lines_left;       /* TOP: body lines still to send */
	unsigned top : 1;          /* stop after lines_left body lines */
	unsigned bol : 1;          /* the next byte starts a line */
	unsigned cr : 1;           /* the line so far ends in CR: an LF ends it */
	unsigned lone_cr : 1;      /* the line so far is one CR (not empty) */
	unsigned in_body : 1;      /* the header's blank line was passed */
	unsigned done : 1;         /* TOP: everything asked for was sent */
};

/* Output room pop3_dot_encode() may need for len bytes of input, and what
 * pop3_dot_finish() may write. */
#define POP3_DOT_OUT_MAX(len) (2 * (size_t)(len) + 1)
#define POP3_DOT_FINISH_MAX 6

/* RETR: the whole message (top 0). TOP: top 1 with the body lines wanted. */
void pop3_dot_init(struct pop3_dot *d, int top, uint64_t body_lines);

/* Encodes up to len bytes of in into out (room for POP3_DOT_OUT_MAX(len)
 * bytes) and returns the bytes written. *used_r says how much of in was
 * taken: all of it unless TOP finished (d->done) on the way. */
size_t pop3_dot_encode(struct pop3_dot *d, const void *in, size_t len, char *out,
    size_t *used_r);

/* Ends the response after the last chunk: a held-back CR, a CRLF when the
 * message did not end with one, and ".\r\n". Returns the bytes written. */
size_t pop3_dot_finish(struct pop3_dot *d, char *out);

/* A message number argument: 1..count in plain decimal (leading zeros
 * allowed). Returns the number, or 0 when arg is not one. */
uint32_t pop3_parse_msgno(const char *arg, size_t count);

/* TOP's line count: a non-negative decimal number; values too large to
 * hold mean "all" (UINT64_MAX). Returns 0, or -1 when arg is not a
 * number. */
int pop3_parse_lines(const char *arg, uint64_t *lines_r);

#endif
