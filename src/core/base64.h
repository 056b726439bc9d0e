/*
 * Base64 (RFC 4648, standard alphabet, with padding), strict: the decoder
 * refuses whitespace, missing or misplaced padding and non-zero trailing bits,
 * because it reads what clients send in SASL exchanges.
 */
#ifndef PETREL_CORE_BASE64_H
#define PETREL_CORE_BASE64_H

#include <stddef.h>

#include "core/buf.h"

/* Appends the encoding of data to out. */
void base64_encode(struct buf *out, const void *data, size_t len);
/* Appends the decoding of in[0..len) to out. Returns 0, or -1 when the input
 * is not valid base64 (out is then left as it was). */
int base64_decode(struct buf *out, const char *in, size_t len);

#endif
