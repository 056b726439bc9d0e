/* Decoding never crashes, and whatever decodes re-encodes to the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf dec = BUF_INIT, enc = BUF_INIT;

	if (base64_decode(&dec, (const char *)data, size) == 0) {
		base64_encode(&enc, dec.data, dec.len);
		if (enc.len != size || (size > 0 && memcmp(enc.data, data, size) != 0))
			abort();
	}
	buf_free(&dec);
	buf_free(&enc);
	return 0;
}
