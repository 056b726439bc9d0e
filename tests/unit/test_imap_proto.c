/*
 * Unit tests of the pure parts of the IMAP session: sequence sets,
 * modified UTF-7, LIST patterns, FETCH items and body sections, SEARCH
 * programs, HEADER.FIELDS filtering, flags and dates. Arguments are made by
 * the real command parser, fed one byte at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "mail/mime.h"
#include "proto/imap/imap_fetch.h"
#include "proto/imap/imap_fetch_body.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_search.h"
#include "proto/imap/imap_seqset.h"
#include "proto/imap/imap_utf7.h"

static const struct imap_parse_limits limits = { 65536, 4096, 8, 0, 0 };

/* Parses "tag NAME args" fed byte by byte; the parser owns the result. */
static const struct imap_command *
parse_line(struct imap_parser *p, const char *line)
{
	enum imap_parse_result r = IMAP_PARSE_MORE;
	size_t i, used, len = strlen(line);

	for (i = 0; i < len; i++) {
		r = imap_parse(p, line + i, 1, &used);
		assert_int_equal(used, 1);
		if (r != IMAP_PARSE_MORE && r != IMAP_PARSE_LITERAL)
			break;
	}
	assert_int_equal(r, IMAP_PARSE_DONE);
	return imap_parser_command(p);
}

/* --- sequence sets --------------------------------------------------------- */

static char *
seqset_text(const char *in, uint32_t max)
{
	struct imap_seqset set;
	struct buf out = BUF_INIT;
	const char *error;
	size_t i;

	if (imap_seqset_parse(in, &set, &error) < 0)
		return xstrdup("ERR");
	imap_seqset_resolve(&set, max);
	for (i = 0; i < set.count; i++)
		buf_printf(&out, "%s%u:%u", i > 0 ? "," : "", set.ranges[i].lo, set.ranges[i].hi);
	imap_seqset_free(&set);
	return buf_steal(&out);
}

static void
test_seqset(void **state)
{
	static const struct {
		const char *in;
		uint32_t max;
		const char *out;
	} cases[] = {
		{ "1", 10, "1:1" },
		{ "1:3,5", 10, "1:3,5:5" },
		{ "5,1:3,2", 10, "1:3,5:5" },
		{ "3:1", 10, "1:3" },
		{ "*", 10, "10:10" },
		{ "7:*", 5, "5:7" },
		{ "1:*", 0, "0:1" },
		{ "1,2,3,4", 9, "1:4" },
		{ "4294967294", 1, "4294967294:4294967294" },
		{ "0", 10, "ERR" },
		{ "", 10, "ERR" },
		{ "1,", 10, "ERR" },
		{ ",1", 10, "ERR" },
		{ "1:", 10, "ERR" },
		{ "1::2", 10, "ERR" },
		{ "4294967295", 10, "ERR" },
		{ "99999999999", 10, "ERR" },
		{ "a", 10, "ERR" },
		{ "1 2", 10, "ERR" },
		{ "$", 10, "ERR" },
		{ "-1", 10, "ERR" },
	};
	struct imap_seqset set;
	struct buf out = BUF_INIT;
	const char *error;
	uint32_t nums[] = { 1, 2, 3, 5, 7, 8 };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = seqset_text(cases[i].in, cases[i].max);

		if (strcmp(got, cases[i].out) != 0)
			fail_msg("\"%s\": got %s, expected %s", cases[i].in, got, cases[i].out);
		free(got);
	}
	assert_int_equal(imap_seqset_parse("2:4,9", &set, &error), 0);
	imap_seqset_resolve(&set, 20);
	assert_false(imap_seqset_contains(&set, 1));
	assert_true(imap_seqset_contains(&set, 3));
	assert_true(imap_seqset_contains(&set, 9));
	assert_false(imap_seqset_contains(&set, 10));
	imap_seqset_free(&set);
	imap_seqset_format(&out, nums, 6);
	assert_string_equal(buf_cstr(&out), "1:3,5,7:8");
	buf_free(&out);
}

/* --- modified UTF-7 ------------------------------------------------------ */

static void
test_utf7(void **state)
{
	static const struct {
		const char *utf8, *utf7;
	} pairs[] = {
		{ "INBOX", "INBOX" },
		{ "a&b", "a&-b" },
		{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
		{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		    "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
		{ "\xf0\x9f\x98\x80", "&2D3eAA-" },
		{ "\xc3\xa9\xc3\xa9\xc3\xa9", "&AOkA6QDp-" },
		{ "", "" },
	};
	static const char *const bad7[] = {
		"&", "&AGE-", "&Jjo", "&Jjo!-", "&U,BTFw-&ZeVnLIqe-", "a\x80", "&2D0-",
		"&3gA-", "&AOk", "&AOkA-", "\x01", "&-&AP-",
	};
	static const char *const bad8[] = { "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xff" };
	size_t i, j;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct buf a = BUF_INIT, b = BUF_INIT;

		assert_int_equal(imap_utf7_encode(pairs[i].utf8, &a), 0);
		assert_string_equal(buf_cstr(&a), pairs[i].utf7);
		assert_int_equal(imap_utf7_decode(pairs[i].utf7, &b), 0);
		assert_string_equal(buf_cstr(&b), pairs[i].utf8);
		buf_free(&a);
		buf_free(&b);
	}
	for (i = 0; i < sizeof(bad7) / sizeof(bad7[0]); i++) {
		struct buf b = BUF_INIT;

		if (imap_utf7_decode(bad7[i], &b) == 0)
			fail_msg("\"%s\" decoded to \"%s\"", bad7[i], buf_cstr(&b));
		buf_free(&b);
	}
	for (i = 0; i < sizeof(bad8) / sizeof(bad8[0]); i++) {
		struct buf b = BUF_INIT;

		assert_int_equal(imap_utf7_encode(bad8[i], &b), -1);
		assert_false(imap_utf8_valid(bad8[i], strlen(bad8[i])));
		buf_free(&b);
	}
	/* Every BMP character (but surrogates) round-trips, alone and in a run. */
	for (i = 0x80; i < 0x10000; i += 7) {
		struct buf u = BUF_INIT, a = BUF_INIT, b = BUF_INIT;

		if (i >= 0xd800 && i < 0xe000)
			continue;
		for (j = 0; j < 3; j++) {
			char tmp[8];
			unsigned long cp = (unsigned long)i + j;

			if (cp < 0x800) {
				tmp[0] = (char)(0xc0 | (cp >> 6));
				tmp[1] = (char)(0x80 | (cp & 0x3f));
				tmp[2] = '\0';
			} else {
				tmp[0] = (char)(0xe0 | (cp >> 12));
				tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
				tmp[2] = (char)(0x80 | (cp & 0x3f));
				tmp[3] = '\0';
			}
			if (cp >= 0xd800 && cp < 0xe000)
				continue;
			buf_puts(&u, tmp);
		}
		assert_int_equal(imap_utf7_encode(buf_cstr(&u), &a), 0);
		assert_int_equal(imap_utf7_decode(buf_cstr(&a), &b), 0);
		assert_string_equal(buf_cstr(&b), buf_cstr(&u));
		buf_free(&u);
		buf_free(&a);
		buf_free(&b);
	}
}

/* --- LIST patterns ---------------------------------------------------------- */

static void
test_list_match(void **state)
{
	assert_true(imap_list_match("*", "a/b/c"));
	assert_true(imap_list_match("%", "INBOX"));
	assert_false(imap_list_match("%", "a/b"));
	assert_true(imap_list_match("a/%", "a/b"));
	assert_false(imap_list_match("a/%", "a/b/c"));
	assert_true(imap_list_match("a/*", "a/b/c"));
	assert_false(imap_list_match("a/*", "a"));
	assert_true(imap_list_match("a*c", "abbbc"));
	assert_true(imap_list_match("%/%", "x/y"));
	assert_false(imap_list_match("", "x"));
	assert_true(imap_list_match("", ""));
	assert_true(imap_list_match("*%*%*", "abc"));
	assert_false(imap_list_match("x", "X"));
}

/* --- FETCH items and sections ------------------------------------------------ */

static char *
section_text(const char *item)
{
	struct imap_section sec;
	struct buf out = BUF_INIT;
	const char *error;
	unsigned i;

	if (imap_section_parse(item, &sec, &error) < 0)
		return xstrdup("ERR");
	buf_printf(&out, "%s k%d n%u", sec.name, (int)sec.kind, sec.npart);
	for (i = 0; i < sec.npart; i++)
		buf_printf(&out, ".%u", sec.part[i]);
	if (sec.partial)
		buf_printf(&out, " <%llu.%llu>", (unsigned long long)sec.offset,
		    (unsigned long long)sec.length);
	if (sec.peek)
		buf_puts(&out, " peek");
	imap_section_clear(&sec);
	return buf_steal(&out);
}

static void
test_sections(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "BODY[]", "BODY[] k0 n0" },
		{ "body.peek[]<0.100>", "BODY[] k0 n0 <0.100> peek" },
		{ "BODY[1.2.3]", "BODY[1.2.3] k0 n3.1.2.3" },
		{ "BODY[HEADER]", "BODY[HEADER] k1 n0" },
		{ "BODY[2.HEADER]", "BODY[2.HEADER] k1 n1.2" },
		{ "BODY[header.fields (From \"To\" X-A)]",
		    "BODY[HEADER.FIELDS (From To X-A)] k2 n0" },
		{ "BODY[1.HEADER.FIELDS.NOT (Subject)]<5.1>",
		    "BODY[1.HEADER.FIELDS.NOT (Subject)] k3 n1.1 <5.1>" },
		{ "BODY[TEXT]", "BODY[TEXT] k4 n0" },
		{ "BODY[1.MIME]", "BODY[1.MIME] k5 n1.1" },
		{ "BODY[MIME]", "ERR" },
		{ "BODY[0]", "ERR" },
		{ "BODY[1.]", "ERR" },
		{ "BODY[1..2]", "ERR" },
		{ "BODY[1.2.x]", "ERR" },
		{ "BODY[HEADER.FIELDS ()]", "ERR" },
		{ "BODY[HEADER.FIELDS (A:B)]", "ERR" },
		{ "BODY[HEADER.FIELDS A]", "ERR" },
		{ "BODY[]<1.0>", "ERR" },
		{ "BODY[]<1>", "ERR" },
		{ "BODY[]x", "ERR" },
		{ "BODY[TEXT", "ERR" },
		{ "BODY[4294967296]", "ERR" },
		{ "BINARY[1.2]<0.5>", "BINARY[1.2] k0 n2.1.2 <0.5>" },
		{ "binary.peek[]", "BINARY[] k0 n0 peek" },
		{ "BINARY.SIZE[3]", "BINARY.SIZE[3] k0 n1.3 peek" },
		{ "BINARY[HEADER]", "ERR" },
		{ "BINARY[1.TEXT]", "ERR" },
		{ "BINARY.SIZE[1]<0.5>", "ERR" },
	};
	struct imap_parser *p = imap_parser_new(&limits);
	struct imap_fetch_spec spec;
	const struct imap_command *cmd;
	const char *error;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = section_text(cases[i].in);

		if (strcmp(got, cases[i].out) != 0)
			fail_msg("\"%s\": got \"%s\", expected \"%s\"", cases[i].in, got,
			    cases[i].out);
		free(got);
	}
	cmd = parse_line(p, "a FETCH 1 (UID FLAGS RFC822 RFC822.HEADER BODY.PEEK[1]) "
	    "(CHANGEDSINCE 5)\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, cmd->args->next->next, &spec, &error),
	    0);
	assert_int_equal(spec.items, IMAP_FETCH_UID | IMAP_FETCH_FLAGS | IMAP_FETCH_MODSEQ);
	assert_int_equal(spec.nsections, 3);
	assert_string_equal(spec.sections[0].name, "RFC822");
	assert_false(spec.sections[0].peek);
	assert_string_equal(spec.sections[1].name, "RFC822.HEADER");
	assert_true(spec.sections[1].peek);
	assert_true(imap_fetch_sets_seen(&spec));
	assert_int_equal(spec.changedsince, 5);
	imap_fetch_spec_clear(&spec);
	cmd = parse_line(p, "a FETCH 1 FULL\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, NULL, &spec, &error), 0);
	assert_true(spec.items & IMAP_FETCH_BODY);
	assert_false(imap_fetch_sets_seen(&spec));
	imap_fetch_spec_clear(&spec);
	cmd = parse_line(p, "a FETCH 1 (FLAGS ALL)\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, NULL, &spec, &error), -1);
	cmd = parse_line(p, "a FETCH 1 ()\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, NULL, &spec, &error), -1);
	cmd = parse_line(p, "a FETCH 1 NOSUCH\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, NULL, &spec, &error), -1);
	cmd = parse_line(p, "a FETCH 1 FLAGS (CHANGEDSINCE x)\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, cmd->args->next->next, &spec,
	    &error), -1);
	/* QRESYNC's VANISHED, only with CHANGEDSINCE; PREVIEW (LAZY). */
	cmd = parse_line(p, "a FETCH 1:* (FLAGS PREVIEW (LAZY) EMAILID) "
	    "(VANISHED CHANGEDSINCE 9)\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, cmd->args->next->next, &spec,
	    &error), 0);
	assert_int_equal(spec.items, IMAP_FETCH_FLAGS | IMAP_FETCH_PREVIEW | IMAP_FETCH_EMAILID |
	    IMAP_FETCH_MODSEQ);
	assert_true(spec.vanished);
	assert_int_equal(spec.changedsince, 9);
	imap_fetch_spec_clear(&spec);
	cmd = parse_line(p, "a FETCH 1 FLAGS (VANISHED)\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, cmd->args->next->next, &spec,
	    &error), -1);
	cmd = parse_line(p, "a FETCH 1 (PREVIEW (EAGER))\r\n");
	assert_int_equal(imap_fetch_parse(cmd->args->next, NULL, &spec, &error), -1);
	imap_parser_free(&p);
}

/* A message/rfc822 inside a multipart, as mime.c lays it out. */
static void
test_section_locate(void **state)
{
	static const char msg[] =
	    "Subject: outer\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n"
	    "\r\n"
	    "--b\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "first\r\n"
	    "--b\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "\r\n"
	    "Subject: inner\r\n"
	    "\r\n"
	    "inner body\r\n"
	    "--b--\r\n";
	struct mime_parser *mp = mime_parser_new();
	struct mime_summary *s;
	struct imap_section sec;
	struct imap_section_range r;
	const char *error;
	size_t i;
	static const struct {
		const char *item, *want;
	} cases[] = {
		{ "BODY[1]", "first" },
		{ "BODY[1.MIME]", "Content-Type: text/plain\r\n\r\n" },
		{ "BODY[2.HEADER]", "Subject: inner\r\n\r\n" },
		{ "BODY[2.TEXT]", "inner body" },
		{ "BODY[2.1]", "inner body" },
		{ "BODY[HEADER]", NULL },
		{ "BODY[3]", "-" },
		{ "BODY[1.1]", "-" },
		{ "BODY[1.HEADER]", "-" },
	};

	for (i = 0; i < sizeof(msg) - 1; i++)
		mime_parser_feed(mp, msg + i, 1);
	s = mime_parser_finish(&mp);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		assert_int_equal(imap_section_parse(cases[i].item, &sec, &error), 0);
		rc = imap_section_locate(s, &sec, &r);
		if (cases[i].want != NULL && strcmp(cases[i].want, "-") == 0) {
			if (rc != -1)
				fail_msg("%s: found %llu..%llu", cases[i].item,
				    (unsigned long long)r.start, (unsigned long long)r.end);
		} else if (cases[i].want != NULL) {
			size_t len = strlen(cases[i].want);

			assert_int_equal(rc, 0);
			if (r.end - r.start != len ||
			    memcmp(msg + r.start, cases[i].want, len) != 0)
				fail_msg("%s: got \"%.*s\"", cases[i].item,
				    (int)(r.end - r.start), msg + r.start);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(r.start, 0);
			assert_int_equal(r.end, s->header_size);
		}
		imap_section_clear(&sec);
	}
	mime_summary_free(&s);
}

static void
test_header_filter(void **state)
{
	static const char hdr[] =
	    "From: a@b\r\n"
	    "Subject: one\r\n two\r\n"
	    "to: c@d\r\n"
	    "X-Empty:\r\n"
	    "\r\n"
	    "Body: not a header\r\n";
	char *want[] = { "SUBJECT", "To" };
	char *none[] = { "x-empty" };
	struct buf out = BUF_INIT;

	imap_header_filter(hdr, sizeof(hdr) - 1, want, 2, 0, &out);
	assert_string_equal(buf_cstr(&out), "Subject: one\r\n two\r\nto: c@d\r\n\r\n");
	buf_reset(&out);
	imap_header_filter(hdr, sizeof(hdr) - 1, none, 1, 1, &out);
	assert_string_equal(buf_cstr(&out), "From: a@b\r\nSubject: one\r\n two\r\nto: c@d\r\n\r\n");
	buf_reset(&out);
	imap_header_filter("", 0, want, 2, 0, &out);
	assert_string_equal(buf_cstr(&out), "\r\n");
	buf_free(&out);
}

/* --- SEARCH programs ------------------------------------------------------ */

static void
dump_key(struct buf *out, const struct imap_search_key *k)
{
	const struct imap_search_key *c;

	switch (k->op) {
	case IMAP_SK_AND:
		buf_putc(out, '(');
		for (c = k->child; c != NULL; c = c->next) {
			dump_key(out, c);
			if (c->next != NULL)
				buf_putc(out, ' ');
		}
		buf_putc(out, ')');
		return;
	case IMAP_SK_OR:
		buf_puts(out, "OR ");
		dump_key(out, k->child);
		buf_putc(out, ' ');
		dump_key(out, k->child->next);
		return;
	case IMAP_SK_NOT:
		buf_puts(out, "NOT ");
		dump_key(out, k->child);
		return;
	default:
		break;
	}
	buf_printf(out, "k%d", (int)k->op);
	if (k->field != NULL)
		buf_printf(out, "[%s]", k->field);
	if (k->str != NULL)
		buf_printf(out, "=%s", k->str);
	if (k->num != 0)
		buf_printf(out, "#%llu", (unsigned long long)k->num);
	if (k->date != 0)
		buf_printf(out, "@%lld", (long long)k->date);
}

static char *
search_text(struct imap_parser *p, const char *args)
{
	struct imap_search_program prog;
	struct buf line = BUF_INIT, out = BUF_INIT;
	const struct imap_command *cmd;
	const char *error;
	int r;

	buf_printf(&line, "a SEARCH %s\r\n", args);
	cmd = parse_line(p, buf_cstr(&line));
	buf_free(&line);
	if ((r = imap_search_parse(cmd->args, &prog, &error)) < 0)
		return xasprintf("ERR%d", r);
	if (prog.esearch)
		buf_printf(&out, "ret%u ", prog.ret);
	dump_key(&out, prog.root);
	imap_search_program_free(&prog);
	return buf_steal(&out);
}

static void
test_search_parse(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "ALL", "(k0)" },
		{ "UNSEEN FLAGGED", "(NOT k5#1 k5#4)" },
		{ "OR SEEN (DELETED DRAFT)", "(OR k5#1 (k5#8 k5#16))" },
		{ "NOT NOT ALL", "(NOT NOT k0)" },
		{ "FROM \"alice\" SUBJECT {5}\r\nhello", "(k17[FROM]=alice k17[SUBJECT]=hello)" },
		{ "HEADER X-Spam yes", "(k17[X-Spam]=yes)" },
		{ "BODY x TEXT y", "(k18=x k19=y)" },
		{ "1:3,5 UID 7:*", "(k7=1:3,5 k8=7:*)" },
		{ "LARGER 100 SMALLER 5", "(k9#100 k10#5)" },
		{ "SINCE 1-Feb-1994 SENTBEFORE \"2-Mar-2020\"", "(k13@760060800 k14@1583107200)" },
		{ "KEYWORD $Junk UNKEYWORD foo", "(k6=$Junk NOT k6=foo)" },
		{ "NEW OLD RECENT", "(k1 k0 k1)" },
		{ "MODSEQ 5", "(k20#5)" },
		{ "MODSEQ \"/flags/\\\\Seen\" all 7", "(k20#7)" },
		{ "CHARSET UTF-8 ALL", "(k0)" },
		{ "RETURN () ALL", "ret4 (k0)" },
		{ "RETURN (MIN COUNT) CHARSET US-ASCII SEEN", "ret9 (k5#1)" },
		{ "CHARSET KOI8-R ALL", "ERR-2" },
		{ "RETURN (SAVE) ALL", "ret16 (k0)" },
		{ "RETURN (SAVE MIN) $ UID $", "ret17 (k21 k21)" },
		{ "RETURN (FOO) ALL", "ERR-1" },
		{ "NOT", "ERR-1" },
		{ "OR ALL", "ERR-1" },
		{ "()", "ERR-1" },
		{ "FROM", "ERR-1" },
		{ "SINCE 31-Foo-2020", "ERR-1" },
		{ "LARGER x", "ERR-1" },
		{ "UID 0", "ERR-1" },
		{ "0", "ERR-1" },
		{ "BOGUS", "ERR-1" },
		{ "\"ALL\"", "ERR-1" },
		{ "HEADER \"a:b\" x", "ERR-1" },
	};
	struct imap_parser *p = imap_parser_new(&limits);
	struct buf deep = BUF_INIT;
	size_t i;
	char *got;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = search_text(p, cases[i].in);
		if (strcmp(got, cases[i].out) != 0)
			fail_msg("\"%s\": got \"%s\", expected \"%s\"", cases[i].in, got,
			    cases[i].out);
		free(got);
	}
	/* Nesting is bounded. */
	for (i = 0; i < IMAP_SEARCH_DEPTH_MAX + 5; i++)
		buf_puts(&deep, "NOT ");
	buf_puts(&deep, "ALL");
	got = search_text(p, buf_cstr(&deep));
	assert_string_equal(got, "ERR-1");
	free(got);
	buf_free(&deep);
	assert_int_equal(imap_search_sent_day("Tue, 1 Jul 2003 10:52:37 +0200"), 1057017600);
	assert_int_equal(imap_search_sent_day("1 jul 03 10:52"), 1057017600);
	assert_int_equal(imap_search_sent_day("garbage"), -1);
	assert_int_equal(imap_search_sent_day(NULL), -1);
	imap_parser_free(&p);
}

/* --- flags and dates ------------------------------------------------------- */

static void
test_flags_dates(void **state)
{
	struct imap_parser *p = imap_parser_new(&limits);
	const struct imap_command *cmd;
	struct buf out = BUF_INIT;
	const char *error;
	char **kw;
	unsigned flags;
	int64_t t;

	cmd = parse_line(p, "a STORE 1 FLAGS (\\Seen \\draft $Junk foo $junk)\r\n");
	assert_int_equal(imap_flags_parse(cmd->args->next->next, &flags, &kw, &error), 0);
	assert_int_equal(flags, STORE_FLAG_SEEN | STORE_FLAG_DRAFT);
	assert_string_equal(kw[0], "$Junk");
	assert_string_equal(kw[1], "foo");
	assert_null(kw[2]);
	imap_flags_format(&out, flags, (const char *const *)kw);
	assert_string_equal(buf_cstr(&out), "(\\Seen \\Draft $Junk foo)");
	imap_keywords_free(&kw);
	cmd = parse_line(p, "a STORE 1 FLAGS \\Flagged\r\n");
	assert_int_equal(imap_flags_parse(cmd->args->next->next, &flags, &kw, &error), 0);
	assert_int_equal(flags, STORE_FLAG_FLAGGED);
	assert_null(kw);
	cmd = parse_line(p, "a STORE 1 FLAGS (\\Recent)\r\n");
	assert_int_equal(imap_flags_parse(cmd->args->next->next, &flags, &kw, &error), -1);
	cmd = parse_line(p, "a STORE 1 FLAGS (\\Bogus)\r\n");
	assert_int_equal(imap_flags_parse(cmd->args->next->next, &flags, &kw, &error), -1);
	cmd = parse_line(p, "a STORE 1 FLAGS (a%b)\r\n");
	assert_int_equal(imap_flags_parse(cmd->args->next->next, &flags, &kw, &error), -1);
	cmd = parse_line(p, "a STORE 1 FLAGS (\"quoted\")\r\n");
	assert_int_equal(imap_flags_parse(cmd->args->next->next, &flags, &kw, &error), -1);

	assert_int_equal(imap_datetime_parse("17-Jul-1996 02:44:25 -0700", &t), 0);
	assert_int_equal(t, 837596665);
	assert_int_equal(imap_datetime_parse(" 7-Jul-1996 02:44:25 +0000", &t), 0);
	assert_int_equal(imap_datetime_parse("17-Jul-1996 24:44:25 -0700", &t), -1);
	assert_int_equal(imap_datetime_parse("17-Jul-1996 02:44:25", &t), -1);
	assert_int_equal(imap_datetime_parse("17-Jux-1996 02:44:25 +0000", &t), -1);
	assert_int_equal(imap_date_parse("1-Feb-1994", &t), 0);
	assert_int_equal(t, 760060800);
	assert_int_equal(imap_date_parse("1-Feb-94", &t), -1);
	buf_reset(&out);
	imap_datetime_format(&out, 837596665);
	assert_string_equal(buf_cstr(&out), "\"17-Jul-1996 09:44:25 +0000\"");
	buf_reset(&out);
	imap_write_string(&out, "a\"b\\c", 5);
	assert_string_equal(buf_cstr(&out), "\"a\\\"b\\\\c\"");
	buf_reset(&out);
	imap_write_string(&out, "a\r\nb", 4);
	assert_string_equal(buf_cstr(&out), "{4}\r\na\r\nb");
	buf_free(&out);
	imap_parser_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seqset),
		cmocka_unit_test(test_utf7),
		cmocka_unit_test(test_list_match),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_section_locate),
		cmocka_unit_test(test_header_filter),
		cmocka_unit_test(test_search_parse),
		cmocka_unit_test(test_flags_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
