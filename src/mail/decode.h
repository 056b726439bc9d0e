/*
 * Lenient, streaming decoders of the MIME content transfer encodings, for
 * the search text and the preview: they take any split of the input, never
 * fail, and skip what they cannot read (RFC 2045 6.7 and 6.8 ask decoders
 * to be robust). The strict base64 of core/base64.h is for protocol input.
 */
#ifndef PETREL_MAIL_DECODE_H
#define PETREL_MAIL_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct mail_qp {
	int state;              /* 0 text, 1 after "=", 2 after "=X", 3 after "=\r" */
	unsigned char hex;      /* the first digit after "=" */
};

/* Appends the decoding of in[0..len) to out. */
void mail_qp_decode(struct mail_qp *qp, const void *in, size_t len, struct buf *out);
/* Ends the input: a dangling "=" or "=X" is kept as it was. */
void mail_qp_finish(struct mail_qp *qp, struct buf *out);

struct mail_b64 {
	uint32_t bits;
	int nbits;
};

/* Appends the decoding of in[0..len) to out, ignoring characters outside
 * the alphabet; padding ends a quantum. */
void mail_b64_decode(struct mail_b64 *b, const void *in, size_t len, struct buf *out);

/* Decodes a whole RFC 2047 "Q" encoded text ("_" is a space). */
void mail_q_decode(const char *in, size_t len, struct buf *out);

#endif
