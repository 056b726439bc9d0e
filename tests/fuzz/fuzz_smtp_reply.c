/*
 * The SMTP client's reply parser: any bytes, in two pieces, never crash,
 * never read past the input, and a reply it accepts is bounded.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtpc/smtpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpc_reply_parser p;
	size_t split = size > 0 ? data[0] % (size + 1) : 0, off = 0, used;
	int r;

	memset(&p, 0, sizeof(p));
	while (off < size) {
		size_t end = off < split ? split : size;

		r = smtpc_reply_feed(&p, (const char *)data + off, end - off, &used);
		if (r < 0)
			break;
		if (r == 1) {
			if (p.reply.code < 200 || p.reply.code > 599 ||
			    strlen(p.reply.text) > SMTPC_TEXT_MAX)
				__builtin_trap();
			smtpc_reply_reset(&p);
		}
		off += used;
	}
	return 0;
}
