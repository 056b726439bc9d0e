/*
 * The IMAP command parser, fed the input in pieces whose sizes come from
 * the input itself, with APPEND literals streamed; every complete command's
 * arguments then go through the argument parsers of the session (sequence
 * sets, FETCH items, SEARCH programs, flags, dates, mailbox names). Nothing
 * may crash, leak or read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proto/imap/imap_fetch.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_search.h"
#include "proto/imap/imap_seqset.h"
#include "proto/imap/imap_utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_args(const struct imap_command *cmd)
{
	const struct imap_arg *a;
	struct imap_search_program prog;
	struct imap_fetch_spec spec;
	struct imap_seqset set;
	const char *error;
	char **kw;
	unsigned flags;
	int64_t t;

	if (imap_search_parse(cmd->args, &prog, &error) == 0)
		imap_search_program_free(&prog);
	for (a = cmd->args; a != NULL; a = a->next) {
		struct buf b = BUF_INIT;

		if (imap_fetch_parse(a, a->next, &spec, &error) == 0)
			imap_fetch_spec_clear(&spec);
		if (imap_flags_parse(a, &flags, &kw, &error) == 0)
			imap_keywords_free(&kw);
		if (imap_seqset_parse(a->str, &set, &error) == 0) {
			imap_seqset_resolve(&set, 100);
			(void)imap_seqset_contains(&set, 7);
			imap_seqset_free(&set);
		}
		(void)imap_datetime_parse(a->str, &t);
		if (imap_utf7_decode(a->str, &b) == 0) {
			struct buf back = BUF_INIT;

			/* What decodes encodes back to the same text. */
			if (imap_utf7_encode(buf_cstr(&b), &back) < 0 ||
			    strcmp(buf_cstr(&back), a->str) != 0)
				abort();
			buf_free(&back);
		}
		(void)imap_list_match(a->str, "INBOX/a/b");
		buf_free(&b);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_parse_limits limits = { 4096, 64, 8, 1 };
	struct imap_parser *p = imap_parser_new(&limits);
	size_t pos = 1, used, chunk;

	if (size == 0) {
		imap_parser_free(&p);
		return 0;
	}
	chunk = (size_t)data[0] % 17 + 1;
	while (pos < size) {
		size_t n = size - pos < chunk ? size - pos : chunk;
		enum imap_parse_result r = imap_parse(p, data + pos, n, &used);

		if (used > n)
			abort();
		pos += used;
		if (r == IMAP_PARSE_DONE)
			fuzz_args(imap_parser_command(p));
		else if (r == IMAP_PARSE_STREAM) {
			size_t skip = imap_parser_stream_size(p);

			pos += skip < size - pos ? skip : size - pos;
			imap_parser_stream_done(p);
		} else if (r == IMAP_PARSE_ERROR) {
			int fatal;

			(void)imap_parser_error(p, &fatal);
			if (fatal)
				break;
		} else if (used == 0 && r == IMAP_PARSE_MORE) {
			break;
		}
	}
	imap_parser_free(&p);
	return 0;
}
