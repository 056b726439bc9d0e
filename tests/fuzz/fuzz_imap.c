/*
 * The IMAP command parser, fed the input in pieces whose sizes come from
 * the input itself, with APPEND literals streamed; every complete command's
 * arguments then go through the argument parsers of the session (sequence
 * sets, FETCH items, SEARCH programs, flags, dates, mailbox names, SORT
 * criteria), and their strings through the base-subject, sent-date and
 * case-folding code and, taken three by three as Subject, Message-ID and
 * References, through both threading algorithms. Nothing may crash, leak or
 * read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "proto/imap/imap_fetch.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_search.h"
#include "proto/imap/imap_seqset.h"
#include "proto/imap/imap_sort.h"
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

	struct imap_sort_criterion crit[IMAP_SORT_KEYS_MAX];
	struct imap_thread_msg tm[24];
	size_t ntm = 0, k;

	if (imap_search_parse(cmd->args, &prog, &error) == 0)
		imap_search_program_free(&prog);
	if (cmd->args != NULL && imap_search_parse_sort(NULL, cmd->args->next, &prog, &error) == 0)
		imap_search_program_free(&prog);
	memset(tm, 0, sizeof(tm));
	for (a = cmd->args, k = 0; a != NULL; a = a->next, k++) {
		struct imap_sort_msg sm;
		struct buf b = BUF_INIT;

		(void)imap_sort_parse(a, crit, &error);
		(void)imap_sent_date(a->str);
		memset(&sm, 0, sizeof(sm));
		for (ntm = 0; ntm < IMAP_SORT_DISPLAYTO + 1; ntm++)
			crit[ntm % IMAP_SORT_KEYS_MAX].key = (enum imap_sort_key)ntm;
		imap_sort_msg_strings(&sm, crit, IMAP_SORT_DISPLAYTO + 1, a->str, a->str, a->str,
		    a->str);
		imap_sort_msg_clear(&sm);
		if (k / 3 < sizeof(tm) / sizeof(tm[0])) {
			struct imap_thread_msg *m = &tm[k / 3];

			m->num = m->seq = (uint32_t)(k / 3 + 1);
			m->date = (int64_t)(a->len % 5);
			if (k % 3 == 0)
				m->subject = a->str;
			else if (k % 3 == 1)
				m->message_id = a->str;
			else
				m->references = m->in_reply_to = a->str;
		}

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
	ntm = k / 3 + (k % 3 != 0);
	if (ntm > sizeof(tm) / sizeof(tm[0]))
		ntm = sizeof(tm) / sizeof(tm[0]);
	{
		struct buf out = BUF_INIT;

		imap_thread_run(IMAP_THREAD_REFERENCES, tm, ntm, &out);
		buf_reset(&out);
		imap_thread_run(IMAP_THREAD_ORDEREDSUBJECT, tm, ntm, &out);
		buf_free(&out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_parse_limits minus = { 4096, 64, 8, 1, 0 };
	static const struct imap_parse_limits plus = { 4096, 64, 8, 1, 1 };
	struct imap_parser *p;
	size_t pos = 1, used, chunk;

	if (size == 0)
		return 0;
	/* The top bit picks LITERAL- (before login) or LITERAL+ rules. */
	p = imap_parser_new(data[0] & 0x80 ? &plus : &minus);
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
