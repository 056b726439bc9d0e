/*
 * Unit tests of src/proto/imap/imap_parse.c. Every input is parsed whole,
 * one byte at a time, and split in two at every position; all must give the
 * same results, written out as text: each command as "tag NAME args; ", each
 * synchronizing literal as "+ ", each error as "ERR(tag):message; " ("!"
 * after a fatal one), and "MORE" when the input ends inside a command.
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
#include "proto/imap/imap_parse.h"

static const struct imap_parse_limits default_limits = { 8192, 64, 8, 0, 0 };
static const struct imap_parse_limits small_limits = { 64, 4, 2, 0, 0 };
static const struct imap_parse_limits stream_limits = { 64, 16, 2, 1, 0 };
static const struct imap_parse_limits plus_limits = { 8192, 64, 8, 0, 1 };
static const struct imap_parse_limits plus_stream_limits = { 64, 16, 2, 1, 1 };

struct parse_case {
	const char *input;
	size_t len;                     /* 0: strlen(input) */
	const char *expect;
	const struct imap_parse_limits *limits;
};

static void
dump_value(struct buf *out, const struct imap_arg *a)
{
	size_t i;

	for (i = 0; i < a->len; i++) {
		unsigned char c = (unsigned char)a->str[i];

		if (c < 0x20 || c > 0x7e)
			buf_printf(out, "\\x%02x", c);
		else
			buf_putc(out, (char)c);
	}
}

static void
dump_args(struct buf *out, const struct imap_arg *a)
{
	for (; a != NULL; a = a->next) {
		switch (a->type) {
		case IMAP_ARG_ATOM:
			buf_puts(out, "a:");
			dump_value(out, a);
			break;
		case IMAP_ARG_QUOTED:
			buf_puts(out, "q:");
			dump_value(out, a);
			break;
		case IMAP_ARG_LITERAL:
			buf_puts(out, "l:");
			dump_value(out, a);
			break;
		case IMAP_ARG_LIST: {
			const struct imap_arg *e;
			unsigned n = 0;

			for (e = a->list; e != NULL; e = e->next)
				n++;
			assert_int_equal(n, a->count);
			buf_putc(out, '(');
			dump_args(out, a->list);
			buf_putc(out, ')');
			break;
		}
		}
		if (a->next != NULL)
			buf_putc(out, ' ');
	}
}

/* Parses input fed in the pieces that split[] delimits and returns the
 * results as text (caller frees). */
static char *
run(const struct parse_case *c, const size_t *split, size_t nsplit)
{
	const struct imap_parse_limits *lim = c->limits ? c->limits : &default_limits;
	struct imap_parser *p = imap_parser_new(lim);
	size_t len = c->len ? c->len : strlen(c->input), pos = 0, piece = 0, end, used;
	struct buf out = BUF_INIT;
	int fatal = 0;

	while (pos < len && !fatal) {
		enum imap_parse_result r;
		const struct imap_command *cmd;
		const char *err;

		while (piece < nsplit && split[piece] <= pos)
			piece++;
		end = piece < nsplit ? split[piece] : len;
		r = imap_parse(p, c->input + pos, end - pos, &used);
		assert_true(used <= end - pos);
		pos += used;
		switch (r) {
		case IMAP_PARSE_MORE:
			assert_int_equal(pos, end);
			break;
		case IMAP_PARSE_LITERAL:
			assert_true(imap_parser_literal_left(p) > 0 ||
			    imap_parser_size(p) > 0);
			buf_puts(&out, "+ ");
			break;
		case IMAP_PARSE_DONE:
			cmd = imap_parser_command(p);
			assert_int_equal(imap_parser_literal_left(p), 0);
			buf_printf(&out, "%s %s", cmd->tag, cmd->name);
			if (cmd->args != NULL) {
				buf_putc(&out, ' ');
				dump_args(&out, cmd->args);
			}
			buf_puts(&out, "; ");
			break;
		case IMAP_PARSE_STREAM: {
			/* The caller reads the literal itself: skip its bytes. */
			size_t n = imap_parser_stream_size(p);

			cmd = imap_parser_command(p);
			buf_printf(&out, "S%zu%s(%s %u) ", n,
			    imap_parser_stream_sync(p) ? "" : "+", cmd->name, cmd->nargs);
			assert_int_equal(imap_parse(p, "x", 1, &used), IMAP_PARSE_STREAM);
			assert_int_equal(used, 0);
			pos += n < len - pos ? n : len - pos;
			imap_parser_stream_done(p);
			break;
		}
		case IMAP_PARSE_ERROR:
			err = imap_parser_error(p, &fatal);
			assert_non_null(err);
			buf_printf(&out, "ERR(%s):%s%s; ",
			    imap_parser_tag(p) ? imap_parser_tag(p) : "*", err, fatal ? "!" : "");
			if (fatal) {
				/* It stays fatal and consumes nothing. */
				assert_int_equal(imap_parse(p, "a NOOP\r\n", 8, &used),
				    IMAP_PARSE_ERROR);
				assert_int_equal(used, 0);
			}
			break;
		}
	}
	if (!fatal && imap_parser_size(p) > 0)
		buf_puts(&out, "MORE");
	imap_parser_free(&p);
	assert_null(p);
	return buf_steal(&out);
}

static void
check(const struct parse_case *c)
{
	size_t len = c->len ? c->len : strlen(c->input), i;
	size_t *bytes = xcalloc(len + 1, sizeof(*bytes));
	char *whole, *got;

	whole = run(c, NULL, 0);
	if (strcmp(whole, c->expect) != 0)
		fail_msg("input \"%s\": got \"%s\", expected \"%s\"", c->input, whole,
		    c->expect);
	/* One byte at a time. */
	for (i = 0; i < len; i++)
		bytes[i] = i + 1;
	got = run(c, bytes, len);
	if (strcmp(got, whole) != 0)
		fail_msg("input \"%s\" byte by byte: got \"%s\", expected \"%s\"", c->input,
		    got, whole);
	free(got);
	/* Two pieces, split everywhere. */
	for (i = 1; i < len; i++) {
		got = run(c, &i, 1);
		if (strcmp(got, whole) != 0)
			fail_msg("input \"%s\" split at %zu: got \"%s\", expected \"%s\"",
			    c->input, i, got, whole);
		free(got);
	}
	free(whole);
	free(bytes);
}

static void
check_all(const struct parse_case *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		check(&cases[i]);
}

#define CHECK_ALL(cases) check_all(cases, sizeof(cases) / sizeof(cases[0]))

static void
test_atoms(void **state)
{
	static const struct parse_case cases[] = {
		{ "a1 NOOP\r\n", 0, "a1 NOOP; ", NULL },
		{ "a2 login user pass\r\n", 0, "a2 login a:user a:pass; ", NULL },
		{ "a3 NOOP\n", 0, "a3 NOOP; ", NULL },
		{ "a4 NOOP \r\n", 0, "a4 NOOP; ", NULL },
		{ "b1 NOOP\r\nb2 CAPABILITY\r\n", 0, "b1 NOOP; b2 CAPABILITY; ", NULL },
		{ "a5 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.10>)\r\n", 0,
		    "a5 FETCH a:1:* (a:FLAGS a:BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.10>); ",
		    NULL },
		{ "a6 STORE 1 +FLAGS (\\Seen \\Deleted)\r\n", 0,
		    "a6 STORE a:1 a:+FLAGS (a:\\Seen a:\\Deleted); ", NULL },
		{ "a7 LIST \"\" %\r\n", 0, "a7 LIST q: a:%; ", NULL },
		{ "a8 AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n", 0,
		    "a8 AUTHENTICATE a:PLAIN a:AHVzZXIAcGFzcw==; ", NULL },
		{ "a9 NOOP", 0, "MORE", NULL },
		{ "c1 FETCH 1 BODY[TEXT\r\nc2 NOOP\r\n", 0, "ERR(c1):Missing ]; c2 NOOP; ",
		    NULL },
		{ "c3 X a\x01 b\r\n", 0, "ERR(c3):Invalid characters in atom; ", NULL },
		{ "c4 X a\xc3\xa9\r\n", 0, "ERR(c4):Invalid characters in atom; ", NULL },
		{ "c5 X a{1}\r\n", 0, "ERR(c5):Invalid characters in atom; ", NULL },
		{ "c6 X a  b\r\n", 0, "ERR(c6):Unexpected space; ", NULL },
		{ "c7 NOOP\rx\r\nc8 NOOP\r\n", 0, "ERR(c7):CR not followed by LF; c8 NOOP; ",
		    NULL },
	};

	CHECK_ALL(cases);
}

static void
test_quoted(void **state)
{
	static const struct parse_case cases[] = {
		{ "a1 LOGIN \"us\\\"er\" \"pa\\\\ss word\"\r\n", 0,
		    "a1 LOGIN q:us\"er q:pa\\ss word; ", NULL },
		{ "a2 LOGIN \"\" \"\"\r\n", 0, "a2 LOGIN q: q:; ", NULL },
		{ "a3 LOGIN \"\xc3\xa9t\xc3\xa9\" x\r\n", 0,
		    "a3 LOGIN q:\\xc3\\xa9t\\xc3\\xa9 a:x; ", NULL },
		{ "a4 X \"(a) {5}\"\r\n", 0, "a4 X q:(a) {5}; ", NULL },
		{ "c1 LOGIN \"abc\r\nc2 NOOP\r\n", 0,
		    "ERR(c1):Unterminated quoted string; c2 NOOP; ", NULL },
		{ "c3 LOGIN \"a\\b\" x\r\n", 0, "ERR(c3):Invalid escape in quoted string; ",
		    NULL },
		{ "c4 X \"a\"\"b\"\r\n", 0, "ERR(c4):Missing space between arguments; ",
		    NULL },
		{ "c5 X \"a\0b\"\r\nc6 NOOP\r\n", 21,
		    "ERR(c5):NUL in quoted string; c6 NOOP; ", NULL },
		{ "c7 X \"ab\\\r\n", 0, "ERR(c7):Unterminated quoted string; ", NULL },
	};

	CHECK_ALL(cases);
}

static void
test_lists(void **state)
{
	static const struct parse_case cases[] = {
		{ "a1 ID (\"name\" \"x\" \"version\" NIL)\r\n", 0,
		    "a1 ID (q:name q:x q:version a:NIL); ", NULL },
		{ "a2 X (() (a (b)))\r\n", 0, "a2 X (() (a:a (a:b))); ", NULL },
		{ "a3 X ( a )\r\n", 0, "ERR(a3):Unexpected space; ", NULL },
		{ "a4 X (a )\r\n", 0, "a4 X (a:a); ", NULL },
		{ "c1 X (a\r\n", 0, "ERR(c1):Missing ); ", NULL },
		{ "c2 X a)\r\n", 0, "ERR(c2):Unexpected ); ", NULL },
		{ "c3 X (a)(b)\r\n", 0, "ERR(c3):Missing space between arguments; ", NULL },
		{ "c4 X (a \r\n", 0, "ERR(c4):Missing ); ", NULL },
	};

	CHECK_ALL(cases);
}

/* APPEND's message literals go to the caller, whatever their size. */
static void
test_stream(void **state)
{
	static const struct parse_case cases[] = {
		{ "a1 APPEND INBOX {5}\r\nhello\r\n", 0,
		    "S5(APPEND 2) a1 APPEND a:INBOX l:; ", &stream_limits },
		{ "a2 APPEND INBOX (\\Seen) \"1-Jan-2020 00:00:00 +0000\" {3+}\r\nabc\r\n", 0,
		    "S3+(APPEND 4) a2 APPEND a:INBOX (a:\\Seen) q:1-Jan-2020 00:00:00 +0000 l:; ",
		    &stream_limits },
		/* Bigger than command_max: still streamed. */
		{ "a3 APPEND INBOX {100000}\r\n", 0, "S100000(APPEND 2) MORE", &stream_limits },
		/* The mailbox itself is an ordinary literal. */
		{ "a4 APPEND {5}\r\nINBOX {2}\r\nhi\r\n", 0,
		    "+ S2(APPEND 2) a4 APPEND l:INBOX l:; ", &stream_limits },
		/* MULTIAPPEND: two messages. */
		{ "a5 APPEND INBOX {1}\r\nx {1}\r\ny\r\n", 0,
		    "S1(APPEND 2) S1(APPEND 3) a5 APPEND a:INBOX l: l:; ", &stream_limits },
		/* Other commands, and no streaming without the limit flag. */
		{ "a6 LOGIN {1}\r\nx y\r\n", 0, "+ a6 LOGIN l:x a:y; ", &stream_limits },
		{ "a7 APPEND INBOX {2}\r\nhi\r\n", 0, "+ a7 APPEND a:INBOX l:hi; ", NULL },
		/* literal8 (RFC 3516): NUL allowed; '~' alone starts an atom. */
		{ "a8 APPEND INBOX ~{3}\r\nx\0y\r\n", 27, "S3(APPEND 2) a8 APPEND a:INBOX l:; ",
		    &stream_limits },
		{ "a9 X ~{3}\r\nx\0y\r\n", 16, "+ a9 X l:x\\x00y; ", NULL },
		{ "b1 CREATE ~peter/x ~\r\n", 0, "b1 CREATE a:~peter/x a:~; ", NULL },
		/* Sizes past 32 bits. */
		{ "c1 APPEND INBOX {4294967296}\r\nc2 NOOP\r\n", 0,
		    "ERR(c1):Invalid literal size; c2 NOOP; ", &stream_limits },
		{ "c3 APPEND INBOX {4294967295}\r\n", 0, "S4294967295(APPEND 2) MORE",
		    &stream_limits },
		{ "c4 APPEND INBOX {99999999999}\r\nc5 NOOP\r\n", 0,
		    "ERR(c4):Invalid literal; c5 NOOP; ", &stream_limits },
	};

	CHECK_ALL(cases);
}

static void
test_literals(void **state)
{
	static const struct parse_case cases[] = {
		{ "a1 LOGIN {4}\r\nuser {5+}\r\npa\r\ns\r\n", 0,
		    "+ a1 LOGIN l:user l:pa\\x0d\\x0as; ", NULL },
		{ "a2 X {0}\r\n\r\n", 0, "+ a2 X l:; ", NULL },
		{ "a3 X {0+}\r\n {1}\r\n)\r\n", 0, "+ a3 X l: l:); ", NULL },
		{ "a4 X {2}\r\nab c\r\n", 0, "+ a4 X l:ab a:c; ", NULL },
		{ "a5 X ({1}\r\na)\r\n", 0, "+ a5 X (l:a); ", NULL },
		{ "a6 X {3}\n\"{}\n", 0, "+ a6 X l:\"{}; ", NULL },
		{ "a7 X {3}\r\nab", 0, "+ MORE", NULL },
		{ "c1 X {1a}\r\nc2 NOOP\r\n", 0, "ERR(c1):Invalid literal; c2 NOOP; ", NULL },
		{ "c3 X {}\r\n", 0, "ERR(c3):Invalid literal; ", NULL },
		{ "c4 X {+}\r\n", 0, "ERR(c4):Invalid literal; ", NULL },
		{ "c5 X {1} a\r\n", 0, "ERR(c5):Invalid literal; ", NULL },
		{ "c6 X {12345678901}\r\n", 0, "ERR(c6):Invalid literal; ", NULL },
		/* NUL in a literal: the rest of it and of the line are skipped. */
		{ "d1 LOGIN {3}\r\na\0b x\r\nd2 NOOP\r\n", 30,
		    "+ ERR(d1):NUL in literal; d2 NOOP; ", NULL },
		/* A bad line announcing a non-synchronizing literal: its bytes
		 * are skipped, even when they hold line ends. */
		{ "e1 X a\x01 {4+}\r\nx\r\ny\r\ne2 NOOP\r\n", 0,
		    "ERR(e1):Invalid characters in atom; e2 NOOP; ", NULL },
		/* ... but after a synchronizing one, the client waits. */
		{ "e3 X a\x01 {5}\r\ne4 NOOP\r\n", 0,
		    "ERR(e3):Invalid characters in atom; e4 NOOP; ", NULL },
	};

	CHECK_ALL(cases);
}

static void
test_tags(void **state)
{
	static const struct parse_case cases[] = {
		{ "\r\n", 0, "ERR(*):Empty command line; ", NULL },
		{ "\n\r\nz NOOP\r\n", 0,
		    "ERR(*):Empty command line; ERR(*):Empty command line; z NOOP; ", NULL },
		{ "+x NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a+ NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ " NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a*b NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a%b NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a\"b NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a{1} NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a(b NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a\\b NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a\xc3\xa9 NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
		{ "a]b.1 NOOP\r\n", 0, "a]b.1 NOOP; ", NULL },
		{ "abc\r\n", 0, "ERR(abc):Missing command; ", NULL },
		{ "abc \r\n", 0, "ERR(abc):Missing command; ", NULL },
		{ "abc  NOOP\r\n", 0, "ERR(abc):Missing command; ", NULL },
		{ "abc NO\"OP\r\n", 0, "ERR(abc):Invalid command name; ", NULL },
		{ "abc NOOP[1]\r\n", 0, "ERR(abc):Invalid command name; ", NULL },
		{ "a {1+}\r\nx\r\nb NOOP\r\n", 0, "ERR(a):Invalid command name; b NOOP; ",
		    NULL },
		{ "{1+}\r\nx\r\nb NOOP\r\n", 0, "ERR(*):Invalid tag; b NOOP; ", NULL },
		{ "a\tb NOOP\r\n", 0, "ERR(*):Invalid tag; ", NULL },
	};
	struct parse_case c = { NULL, 0, NULL, NULL };
	char input[256], expect[256];

	CHECK_ALL(cases);

	/* IMAP_TAG_MAX bytes is fine, one more is not. */
	memset(input, 't', IMAP_TAG_MAX);
	snprintf(input + IMAP_TAG_MAX, sizeof(input) - IMAP_TAG_MAX, " NOOP\r\n");
	snprintf(expect, sizeof(expect), "%.*s NOOP; ", IMAP_TAG_MAX, input);
	c.input = input;
	c.expect = expect;
	check(&c);
	memset(input, 't', IMAP_TAG_MAX + 1);
	snprintf(input + IMAP_TAG_MAX + 1, sizeof(input) - IMAP_TAG_MAX - 1, " NOOP\r\n");
	c.expect = "ERR(*):Invalid tag; ";
	check(&c);

	/* The same for command names. */
	memcpy(input, "t ", 2);
	memset(input + 2, 'N', IMAP_NAME_MAX);
	snprintf(input + 2 + IMAP_NAME_MAX, sizeof(input) - 2 - IMAP_NAME_MAX, "\r\n");
	snprintf(expect, sizeof(expect), "t %.*s; ", IMAP_NAME_MAX, input + 2);
	c.expect = expect;
	check(&c);
	memset(input + 2, 'N', IMAP_NAME_MAX + 1);
	snprintf(input + 3 + IMAP_NAME_MAX, sizeof(input) - 3 - IMAP_NAME_MAX, "\r\n");
	c.expect = "ERR(t):Invalid command name; ";
	check(&c);
}

static void
test_limits(void **state)
{
	static const struct parse_case cases[] = {
		/* 64 bytes per command. */
		{ "a1 X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
		    "a2 NOOP\r\n", 0, "ERR(a1):Command too long; a2 NOOP; ", &small_limits },
		{ "a3 X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 0,
		    "a3 X a:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; ",
		    &small_limits },
		/* Refused: a client that sends the literal anyway sends junk. */
		{ "a4 X {54}\r\nxx\r\na5 NOOP\r\n", 0,
		    "ERR(a4):[TOOBIG] Literal too big; ERR(xx):Missing command; a5 NOOP; ",
		    &small_limits },
		{ "a6 X {53}\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 0,
		    "+ ERR(a6):Command too long; ", &small_limits },
		{ "a7 X {51}\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 0,
		    "+ a7 X l:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; ",
		    &small_limits },
		{ "a8 X {54+}\r\n", 0, "ERR(a8):[TOOBIG] Literal too big!; ", &small_limits },
		/* Arguments: 4, lists and their elements included. */
		{ "b1 X a b c d\r\n", 0, "b1 X a:a a:b a:c a:d; ", &small_limits },
		{ "b2 X a b c d e\r\nb3 NOOP\r\n", 0, "ERR(b2):Too many arguments; b3 NOOP; ",
		    &small_limits },
		{ "b4 X (a (b))\r\n", 0, "b4 X (a:a (a:b)); ", &small_limits },
		{ "b5 X (a (b)) d\r\n", 0, "ERR(b5):Too many arguments; ", &small_limits },
		{ "b6 X a b c d {1+}\r\nx\r\nb7 NOOP\r\n", 0,
		    "ERR(b6):Too many arguments; b7 NOOP; ", &small_limits },
		/* Depth: 2. */
		{ "c1 X (())\r\n", 0, "c1 X (()); ", &small_limits },
		{ "c2 X ((()))\r\n", 0, "ERR(c2):Lists nested too deeply; ", &small_limits },
		/* LITERAL-: at most 4096 bytes without synchronizing. */
		{ "d1 LOGIN {4097+}\r\n", 0,
		    "ERR(d1):[TOOBIG] Non-synchronizing literal too big!; ", NULL },
		{ "d2 X a\x01 {5000+}\r\n", 0, "ERR(d2):[TOOBIG] Literal too big!; ", NULL },
		{ "d3 LOGIN {9000}\r\nd4 NOOP\r\n", 0,
		    "ERR(d3):[TOOBIG] Literal too big; d4 NOOP; ", NULL },
		/* LITERAL+: up to the command limit; a streamed message any size;
		 * a bad line's literal is skipped whatever its size. */
		{ "e1 LOGIN {5+}\r\nabcde x\r\n", 0, "e1 LOGIN l:abcde a:x; ", &plus_limits },
		{ "e2 LOGIN {9000+}\r\n", 0, "ERR(e2):[TOOBIG] Literal too big!; ",
		    &plus_limits },
		{ "e3 APPEND INBOX {5000000+}\r\n", 0, "S5000000+(APPEND 2) MORE",
		    &plus_stream_limits },
		{ "e4 X a\x01 {6+}\r\nabcdef\r\ne5 NOOP\r\n", 0,
		    "ERR(e4):Invalid characters in atom; e5 NOOP; ", &plus_limits },
	};

	CHECK_ALL(cases);
}

static void
test_literal_minus_max(void **state)
{
	struct buf in = BUF_INIT, expect = BUF_INIT;
	struct parse_case c = { NULL, 0, NULL, NULL };
	size_t i;

	buf_puts(&in, "a1 APPEND INBOX {4096+}\r\n");
	buf_puts(&expect, "a1 APPEND a:INBOX l:");
	for (i = 0; i < IMAP_LITERAL_MINUS_MAX; i++) {
		buf_putc(&in, (char)('a' + i % 26));
		buf_putc(&expect, (char)('a' + i % 26));
	}
	buf_puts(&in, "\r\n");
	buf_puts(&expect, "; ");
	c.input = in.data;
	c.expect = expect.data;
	/* Whole and byte by byte only: splitting everywhere is slow here. */
	{
		size_t *bytes = xcalloc(in.len, sizeof(*bytes));
		char *got = run(&c, NULL, 0);

		assert_string_equal(got, expect.data);
		free(got);
		for (i = 0; i < in.len; i++)
			bytes[i] = i + 1;
		got = run(&c, bytes, in.len);
		assert_string_equal(got, expect.data);
		free(got);
		free(bytes);
	}
	buf_free(&in);
	buf_free(&expect);
}

/* The parser stops at the end of each command, and after a synchronizing
 * literal's announcement, leaving the rest for later. */
static void
test_stops(void **state)
{
	struct imap_parser *p = imap_parser_new(&default_limits);
	const char *in = "a NOOP\r\nb LOGIN {4}\r\nuser x\r\n";
	size_t used;

	assert_int_equal(imap_parse(p, in, strlen(in), &used), IMAP_PARSE_DONE);
	assert_int_equal(used, 8);
	assert_string_equal(imap_parser_command(p)->name, "NOOP");
	assert_int_equal(imap_parser_size(p), 0);
	in += used;
	assert_int_equal(imap_parse(p, in, strlen(in), &used), IMAP_PARSE_LITERAL);
	assert_int_equal(used, 13);
	assert_string_equal(imap_parser_tag(p), "b");
	assert_string_equal(imap_parser_name(p), "LOGIN");
	assert_int_equal(imap_parser_literal_left(p), 4);
	assert_int_equal(imap_parser_size(p), 13);
	in += used;
	assert_int_equal(imap_parse(p, in, 2, &used), IMAP_PARSE_MORE);
	assert_int_equal(imap_parser_literal_left(p), 2);
	in += used;

	/* Forgetting the command in progress. */
	imap_parser_reset(p, NULL);
	assert_null(imap_parser_tag(p));
	assert_int_equal(imap_parser_literal_left(p), 0);
	in = "c NOOP\r\n";
	assert_int_equal(imap_parse(p, in, strlen(in), &used), IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_command(p)->tag, "c");
	imap_parser_free(&p);
}

static void
test_arg_helpers(void **state)
{
	struct imap_parser *p = imap_parser_new(&default_limits);
	const char *in = "a X nil \"NIL\" {3+}\r\nNIL (x)\r\n";
	const struct imap_arg *a;
	size_t used;

	assert_int_equal(imap_parse(p, in, strlen(in), &used), IMAP_PARSE_DONE);
	assert_int_equal(imap_parser_command(p)->nargs, 4);
	a = imap_parser_command(p)->args;
	assert_true(imap_arg_is_nil(a));
	assert_true(imap_arg_is_astring(a));
	assert_false(imap_arg_is_string(a));
	a = a->next;
	assert_false(imap_arg_is_nil(a));
	assert_true(imap_arg_is_string(a));
	a = a->next;
	assert_false(imap_arg_is_nil(a));
	assert_true(imap_arg_is_string(a));
	assert_int_equal(a->len, 3);
	a = a->next;
	assert_int_equal(a->type, IMAP_ARG_LIST);
	assert_false(imap_arg_is_astring(a));
	assert_int_equal(a->count, 1);
	assert_string_equal(a->list->str, "x");
	assert_null(a->next);
	imap_parser_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_atoms),
		cmocka_unit_test(test_quoted),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_literal_minus_max),
		cmocka_unit_test(test_stops),
		cmocka_unit_test(test_arg_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
