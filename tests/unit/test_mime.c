/*
 * Unit tests of the MIME parser (src/mail/mime.c and its helpers). Every
 * message is parsed whole, one byte at a time and in random chunk sizes,
 * and the summaries must be identical; the part layout must also survive
 * mime_parts_encode / mime_parts_decode. Expected sizes and structures were
 * counted by hand and compared with Dovecot 2.3 (types, subtypes and
 * encodings compared case-insensitively, as Dovecot sends them as written).
 *
 * With PETREL_MIME_DUMP=DIR set, each message is also written to DIR, for
 * such a comparison.
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
#include "mail/address.h"
#include "mail/charset.h"
#include "mail/decode.h"
#include "mail/envelope.h"
#include "mail/mime.h"

/* --- helpers ------------------------------------------------------------ */

static uint32_t rng_state;

static uint32_t
rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

static struct mime_summary *
parse_chunks(const char *msg, size_t len, int mode, uint32_t seed)
{
	struct mime_parser *p = mime_parser_new();
	size_t i = 0, n;

	rng_state = seed;
	while (i < len) {
		if (mode == 0)
			n = len - i;
		else if (mode == 1)
			n = 1;
		else
			n = 1 + rng() % (seed % 2 ? 7 : 300);
		if (n > len - i)
			n = len - i;
		mime_parser_feed(p, msg + i, n);
		i += n;
	}
	if (mode == 0)
		mime_parser_feed(p, "", 0);     /* an empty feed changes nothing */
	return mime_parser_finish(&p);
}

static void
assert_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_summary_equal(const struct mime_summary *a, const struct mime_summary *b)
{
	uint32_t i;

	assert_int_equal(a->size, b->size);
	assert_int_equal(a->header_size, b->header_size);
	assert_str_eq(a->date, b->date);
	assert_str_eq(a->subject, b->subject);
	assert_str_eq(a->from, b->from);
	assert_str_eq(a->sender, b->sender);
	assert_str_eq(a->reply_to, b->reply_to);
	assert_str_eq(a->to, b->to);
	assert_str_eq(a->cc, b->cc);
	assert_str_eq(a->bcc, b->bcc);
	assert_str_eq(a->in_reply_to, b->in_reply_to);
	assert_str_eq(a->message_id, b->message_id);
	assert_str_eq(a->references, b->references);
	assert_str_eq(a->bodystructure, b->bodystructure);
	assert_str_eq(a->body, b->body);
	assert_int_equal(a->nparts, b->nparts);
	for (i = 0; i < a->nparts; i++) {
		assert_int_equal(a->parts[i].header_offset, b->parts[i].header_offset);
		assert_int_equal(a->parts[i].body_offset, b->parts[i].body_offset);
		assert_int_equal(a->parts[i].body_end, b->parts[i].body_end);
		assert_int_equal(a->parts[i].body_lines, b->parts[i].body_lines);
		assert_int_equal(a->parts[i].parent, b->parts[i].parent);
		assert_int_equal(a->parts[i].nchildren, b->parts[i].nchildren);
		assert_int_equal(a->parts[i].depth, b->parts[i].depth);
		assert_int_equal(a->parts[i].message_rfc822, b->parts[i].message_rfc822);
		assert_int_equal(a->parts[i].multipart, b->parts[i].multipart);
	}
	assert_int_equal(a->text.len, b->text.len);
	if (a->text.len > 0)
		assert_memory_equal(a->text.data, b->text.data, a->text.len);
	assert_str_eq(a->preview, b->preview);
	assert_int_equal(a->has_8bit, b->has_8bit);
	assert_int_equal(a->has_nul, b->has_nul);
	assert_int_equal(a->truncated, b->truncated);
}

/* Checks what must hold of every summary: a consistent tree within the
 * limits, and a layout that encodes and decodes to itself. */
static void
assert_summary_sane(const struct mime_summary *s)
{
	struct buf blob = BUF_INIT;
	struct mime_part *parts;
	uint32_t nparts, i;
	size_t depth = 0;
	const char *c;

	assert_non_null(s->bodystructure);
	assert_non_null(s->body);
	assert_non_null(s->preview);
	assert_true(s->nparts >= 1 && s->nparts <= MIME_PARTS_MAX);
	assert_int_equal(s->parts[0].header_offset, 0);
	assert_int_equal(s->parts[0].body_end, s->size);
	assert_int_equal(s->parts[0].body_offset, s->header_size);
	assert_true(s->text.len <= MIME_TEXT_MAX);
	for (i = 0; i < s->nparts; i++) {
		assert_true(s->parts[i].header_offset <= s->parts[i].body_offset);
		assert_true(s->parts[i].body_offset <= s->parts[i].body_end);
		assert_true(s->parts[i].depth <= MIME_DEPTH_MAX);
	}
	/* Parentheses balance (outside quoted strings and literals). */
	for (c = s->bodystructure; *c != '\0'; c++) {
		if (*c == '"') {
			for (c++; *c != '"'; c++)
				if (*c == '\\')
					c++;
		} else if (*c == '{') {
			c = strchr(c, '}') + 2 + strtoul(c + 1, NULL, 10);
		} else if (*c == '(') {
			depth++;
		} else if (*c == ')') {
			assert_true(depth > 0);
			depth--;
		}
	}
	assert_int_equal(depth, 0);

	mime_parts_encode(s->parts, s->nparts, &blob);
	assert_int_equal(mime_parts_decode(blob.data, blob.len, &parts, &nparts), 0);
	assert_int_equal(nparts, s->nparts);
	for (i = 0; i < nparts; i++) {
		assert_int_equal(parts[i].header_offset, s->parts[i].header_offset);
		assert_int_equal(parts[i].body_offset, s->parts[i].body_offset);
		assert_int_equal(parts[i].body_end, s->parts[i].body_end);
		assert_int_equal(parts[i].body_lines, s->parts[i].body_lines);
		assert_int_equal(parts[i].parent, s->parts[i].parent);
		assert_int_equal(parts[i].nchildren, s->parts[i].nchildren);
		assert_int_equal(parts[i].depth, s->parts[i].depth);
		assert_int_equal(parts[i].message_rfc822, s->parts[i].message_rfc822);
		assert_int_equal(parts[i].multipart, s->parts[i].multipart);
	}
	free(parts);
	buf_free(&blob);
}

static void
dump_message(const char *msg, size_t len)
{
	static int counter;
	const char *dir = getenv("PETREL_MIME_DUMP");
	char *path;
	FILE *f;

	if (dir == NULL)
		return;
	path = xasprintf("%s/msg%03d.eml", dir, ++counter);
	if ((f = fopen(path, "wb")) != NULL) {
		fwrite(msg, 1, len, f);
		fclose(f);
	}
	free(path);
}

/* Parses msg whole, byte by byte and in random chunks; all must agree. */
static struct mime_summary *
parse_len(const char *msg, size_t len, int byte_at_a_time)
{
	struct mime_summary *whole, *other;
	uint32_t seed;

	dump_message(msg, len);
	whole = parse_chunks(msg, len, 0, 0);
	assert_summary_sane(whole);
	if (byte_at_a_time) {
		other = parse_chunks(msg, len, 1, 0);
		assert_summary_equal(whole, other);
		mime_summary_free(&other);
	}
	for (seed = 1; seed <= 4; seed++) {
		other = parse_chunks(msg, len, 2, seed);
		assert_summary_equal(whole, other);
		mime_summary_free(&other);
	}
	return whole;
}

static struct mime_summary *
parse(const char *msg)
{
	return parse_len(msg, strlen(msg), 1);
}

static void
assert_envelope(const struct mime_summary *s, const char *expect)
{
	struct buf b = BUF_INIT;

	mime_envelope(s, &b);
	assert_string_equal(b.data, expect);
	buf_free(&b);
}

static int
text_has(const struct mime_summary *s, const char *needle)
{
	return s->text.data != NULL && strstr(s->text.data, needle) != NULL;
}

/* --- well-formed messages ---------------------------------------------- */

static void
test_simple_text(void **state)
{
	/* Header: 29 + 21 + 16 + 38 + 29 + 2 = 135 octets; body: 2 x 13. */
	const char *msg =
	    "From: Ann <ann@example.com>\r\n"
	    "To: bob@example.org\r\n"
	    "Subject: hello\r\n"
	    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
	    "Message-ID: <1@example.com>\r\n"
	    "\r\n"
	    "body line 1\r\n"
	    "body line 2\r\n";
	struct mime_summary *s = parse(msg);

	assert_int_equal(s->size, 161);
	assert_int_equal(s->header_size, 135);
	assert_string_equal(s->bodystructure,
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 26 2"
	    " NIL NIL NIL NIL)");
	assert_string_equal(s->body,
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 26 2)");
	assert_envelope(s,
	    "(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"hello\""
	    " ((\"Ann\" NIL \"ann\" \"example.com\"))"
	    " ((\"Ann\" NIL \"ann\" \"example.com\"))"
	    " ((\"Ann\" NIL \"ann\" \"example.com\"))"
	    " ((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL \"<1@example.com>\")");
	assert_string_equal(s->from, "Ann <ann@example.com>");
	assert_string_equal(s->subject, "hello");
	assert_string_equal(s->message_id, "<1@example.com>");
	assert_null(s->sender);
	assert_null(s->references);
	assert_int_equal(s->nparts, 1);
	assert_int_equal(s->parts[0].body_lines, 2);
	assert_string_equal(s->preview, "body line 1 body line 2");
	assert_true(text_has(s, "hello\n"));
	assert_true(text_has(s, "Ann <ann@example.com>\n"));
	assert_true(text_has(s, "body line 1\nbody line 2\n"));
	assert_false(s->has_8bit);
	assert_false(s->has_nul);
	assert_false(s->truncated);
	mime_summary_free(&s);
}

static void
test_bare_lf(void **state)
{
	/* The same shapes with LF alone: header 12 + 1, body 4 + 4. */
	const char *msg =
	    "Subject: lf\n"
	    "\n"
	    "one\n"
	    "two\n";
	const char *mp =
	    "Content-Type: multipart/mixed; boundary=b\n"     /* 42 */
	    "\n"                                              /* 43 */
	    "--b\n"                                           /* 47 */
	    "\n"                                              /* 48 */
	    "a\n"
	    "b\n"                                             /* body "a\nb" */
	    "--b--\n";
	struct mime_summary *s = parse(msg);

	assert_int_equal(s->header_size, 13);
	assert_string_equal(s->body,
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 8 2)");
	assert_string_equal(s->subject, "lf");
	mime_summary_free(&s);

	s = parse(mp);
	assert_int_equal(s->nparts, 2);
	assert_int_equal(s->parts[1].header_offset, 47);
	assert_int_equal(s->parts[1].body_offset, 48);
	assert_int_equal(s->parts[1].body_end, 51);
	assert_int_equal(s->parts[1].body_lines, 1);
	mime_summary_free(&s);
}

static void
test_alternative(void **state)
{
	const char *msg =
	    "Content-Type: multipart/alternative; boundary=\"b1\"\r\n"
	    "\r\n"
	    "--b1\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "Hello there\r\n"
	    "--b1\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "<p>Hi=\r\n"
	    "<b>you</b> &amp; me</p>\r\n"
	    "--b1--\r\n";
	struct mime_summary *s = parse(msg);

	assert_string_equal(s->bodystructure,
	    "((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 11 0"
	    " NIL NIL NIL NIL)"
	    "(\"TEXT\" \"HTML\" (\"charset\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\""
	    " 31 1 NIL NIL NIL NIL)"
	    " \"ALTERNATIVE\" (\"boundary\" \"b1\") NIL NIL NIL)");
	assert_string_equal(s->body,
	    "((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 11 0)"
	    "(\"TEXT\" \"HTML\" (\"charset\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\""
	    " 31 1) \"ALTERNATIVE\")");
	assert_int_equal(s->nparts, 3);
	assert_true(s->parts[0].multipart);
	assert_int_equal(s->parts[0].nchildren, 2);
	assert_string_equal(s->preview, "Hello there");
	assert_true(text_has(s, "Hello there"));
	assert_true(text_has(s, "Hiyou & me"));     /* soft break joins */
	assert_false(text_has(s, "<b>"));
	mime_summary_free(&s);
}

static void
test_mixed_attachments(void **state)
{
	const char *msg =
	    "From: a@b\r\n"
	    "Subject: files\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=XYZ\r\n"
	    "\r\n"
	    "This is a preamble.\r\n"
	    "--XYZ\r\n"
	    "\r\n"
	    "See attached.\r\n"
	    "--XYZ\r\n"
	    "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
	    "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Description: Q3 report\r\n"
	    "\r\n"
	    "JVBERi0xLjQK\r\n"
	    "JVBERi0xLjQK\r\n"
	    "--XYZ\r\n"
	    "Content-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-ID: <img1@x>\r\n"
	    "Content-Disposition: inline\r\n"
	    "\r\n"
	    "iVBORw0KGgo=\r\n"
	    "--XYZ\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Disposition: attachment; filename=notes.txt\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "bm90ZXMgaW4gYSBmaWxl\r\n"
	    "--XYZ--\r\n"
	    "epilogue\r\n";
	struct mime_summary *s = parse(msg);

	assert_string_equal(s->bodystructure,
	    "((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 13 0"
	    " NIL NIL NIL NIL)"
	    "(\"APPLICATION\" \"PDF\" (\"name\" \"report.pdf\") NIL \"Q3 report\""
	    " \"BASE64\" 26 NIL (\"ATTACHMENT\" (\"filename\" \"report.pdf\")) NIL NIL)"
	    "(\"IMAGE\" \"PNG\" NIL \"<img1@x>\" NIL \"BASE64\" 12 NIL"
	    " (\"INLINE\" NIL) NIL NIL)"
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"BASE64\" 20 0 NIL"
	    " (\"ATTACHMENT\" (\"filename\" \"notes.txt\")) NIL NIL)"
	    " \"MIXED\" (\"boundary\" \"XYZ\") NIL NIL NIL)");
	assert_int_equal(s->nparts, 5);
	/* The preamble and epilogue belong to the multipart only. */
	assert_int_equal(s->parts[0].body_end, strlen(msg));
	assert_int_equal(s->parts[1].header_offset,
	    strstr(msg, "--XYZ\r\n\r\nSee") - msg + 7);
	assert_int_equal(s->parts[1].body_offset, s->parts[1].header_offset + 2);
	/* A text attachment is searchable but not the preview. */
	assert_string_equal(s->preview, "See attached.");
	assert_true(text_has(s, "notes in a file"));
	assert_false(text_has(s, "preamble"));
	assert_false(text_has(s, "epilogue"));
	assert_false(text_has(s, "JVBER"));
	mime_summary_free(&s);
}

static void
test_nested_rfc822(void **state)
{
	const char *inner =
	    "From: Inner Person <inner@example.net>\r\n"
	    "To: \"Team\": x@example.net, \"Y, Z\" <y@example.net>;\r\n"
	    "Subject: =?utf-8?B?SGVsbG8gd29ybGQ=?=\r\n"
	    "Date: Tue, 2 Feb 2021 10:00:00 +0000\r\n"
	    "Message-ID: <inner@example.net>\r\n"
	    "Content-Type: multipart/alternative; boundary=inner\r\n"
	    "\r\n"
	    "--inner\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "inner text\r\n"
	    "--inner\r\n"
	    "Content-Type: text/html\r\n"
	    "\r\n"
	    "<i>inner</i>\r\n"
	    "--inner--";
	struct buf msg = BUF_INIT, expect = BUF_INIT;
	struct mime_summary *s;
	size_t lines = 0;
	const char *c;

	buf_puts(&msg,
	    "From: outer@example.com\r\n"
	    "Subject: fwd\r\n"
	    "Content-Type: multipart/mixed; boundary=outer\r\n"
	    "\r\n"
	    "--outer\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "See below.\r\n"
	    "--outer\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "Content-Disposition: inline\r\n"
	    "\r\n");
	buf_puts(&msg, inner);
	buf_puts(&msg, "\r\n--outer--\r\n");
	/* The message is inner plus the line break after its close delimiter:
	 * a delimiter right after a delimiter line does not take the break
	 * before it (as Dovecot counts): 365 + 2 octets, 15 + 1 lines. */
	for (c = inner; *c != '\0'; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 15);
	assert_int_equal(strlen(inner), 365);

	s = parse(msg.data);
	assert_string_equal(s->bodystructure,
	    "((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 10 0"
	    " NIL NIL NIL NIL)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 367"
	    " (\"Tue, 2 Feb 2021 10:00:00 +0000\" \"=?utf-8?B?SGVsbG8gd29ybGQ=?=\""
	    " ((\"Inner Person\" NIL \"inner\" \"example.net\"))"
	    " ((\"Inner Person\" NIL \"inner\" \"example.net\"))"
	    " ((\"Inner Person\" NIL \"inner\" \"example.net\"))"
	    " ((NIL NIL \"Team\" NIL)(NIL NIL \"x\" \"example.net\")"
	    "(\"Y, Z\" NIL \"y\" \"example.net\")(NIL NIL NIL NIL))"
	    " NIL NIL NIL \"<inner@example.net>\")"
	    " ((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 10 0"
	    " NIL NIL NIL NIL)"
	    "(\"TEXT\" \"HTML\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 12 0"
	    " NIL NIL NIL NIL)"
	    " \"ALTERNATIVE\" (\"boundary\" \"inner\") NIL NIL NIL)"
	    " 16 NIL (\"INLINE\" NIL) NIL NIL)"
	    " \"MIXED\" (\"boundary\" \"outer\") NIL NIL NIL)");
	/* BODY has the same envelope and no extension data anywhere. */
	buf_puts(&expect,
	    "((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 10 0)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 367 ");
	assert_memory_equal(s->body, expect.data, expect.len);
	assert_non_null(strstr(s->body,
	    " ((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 10 0)"
	    "(\"TEXT\" \"HTML\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 12 0)"
	    " \"ALTERNATIVE\") 16) \"MIXED\")"));

	/* Parts: 0 mixed, 1 text, 2 message, 3 its multipart, 4 and 5. */
	assert_int_equal(s->nparts, 6);
	assert_true(s->parts[2].message_rfc822);
	assert_int_equal(s->parts[2].nchildren, 1);
	assert_int_equal(s->parts[3].parent, 2);
	assert_int_equal(s->parts[3].depth, 2);
	assert_int_equal(s->parts[3].header_offset, s->parts[2].body_offset);
	assert_int_equal(s->parts[3].body_end, s->parts[2].body_end);
	assert_int_equal(s->parts[4].parent, 3);
	assert_int_equal(s->parts[5].depth, 3);
	assert_int_equal(s->parts[2].body_offset, strstr(msg.data, inner) - msg.data);
	assert_int_equal(s->parts[2].body_end - s->parts[2].body_offset, 367);
	/* The envelope of the top level. */
	assert_envelope(s,
	    "(NIL \"fwd\" ((NIL NIL \"outer\" \"example.com\"))"
	    " ((NIL NIL \"outer\" \"example.com\")) ((NIL NIL \"outer\" \"example.com\"))"
	    " NIL NIL NIL NIL NIL)");
	/* Search text: both headers (decoded) and all text parts. */
	assert_true(text_has(s, "fwd"));
	assert_true(text_has(s, "Hello world"));
	assert_true(text_has(s, "inner text"));
	assert_string_equal(s->preview, "See below.");
	mime_summary_free(&s);
	buf_free(&msg);
	buf_free(&expect);
}

static void
test_digest(void **state)
{
	const char *msg =
	    "Content-Type: multipart/digest; boundary=\"d\"\r\n"
	    "\r\n"
	    "--d\r\n"
	    "\r\n"
	    "From: one@x\r\n"
	    "Subject: first\r\n"
	    "\r\n"
	    "Body one\r\n"
	    "--d\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "\r\n"
	    "From: two@x\r\n"
	    "Subject: second\r\n"
	    "\r\n"
	    "Body two\r\n"
	    "--d\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "not a message\r\n"
	    "--d--\r\n";
	struct mime_summary *s = parse(msg);

	assert_string_equal(s->bodystructure,
	    "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 39"
	    " (NIL \"first\" ((NIL NIL \"one\" \"x\")) ((NIL NIL \"one\" \"x\"))"
	    " ((NIL NIL \"one\" \"x\")) NIL NIL NIL NIL NIL)"
	    " (\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 8 0"
	    " NIL NIL NIL NIL) 3 NIL NIL NIL NIL)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 40"
	    " (NIL \"second\" ((NIL NIL \"two\" \"x\")) ((NIL NIL \"two\" \"x\"))"
	    " ((NIL NIL \"two\" \"x\")) NIL NIL NIL NIL NIL)"
	    " (\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 8 0"
	    " NIL NIL NIL NIL) 3 NIL NIL NIL NIL)"
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 13 0"
	    " NIL NIL NIL NIL)"
	    " \"DIGEST\" (\"boundary\" \"d\") NIL NIL NIL)");
	assert_int_equal(s->nparts, 6);
	/* The digest's first child has an empty header: just its blank line. */
	assert_int_equal(s->parts[1].body_offset - s->parts[1].header_offset, 2);
	assert_true(s->parts[1].message_rfc822);
	assert_true(s->parts[3].message_rfc822);
	assert_false(s->parts[5].message_rfc822);
	mime_summary_free(&s);
}

static void
test_rfc2231(void **state)
{
	const char *msg =
	    "Content-Type: application/octet-stream;\r\n"
	    " name*0*=utf-8''%C3%A9t%C3%A9;\r\n"
	    " name*1*=%20x.bin\r\n"
	    "Content-Disposition: attachment;\r\n"
	    "\tfilename*1=\"part two%.txt\"; filename*0*=us-ascii'en'part%20one;\r\n"
	    "\tsize=3; title*=iso-8859-1'fr'%E9t%E9; long*0=\"a b \"; long*1=c;\r\n"
	    "\tgap*0=x; gap*2=z; SIZE=4\r\n"
	    "\r\n"
	    "AAEC\r\n";
	struct mime_summary *s = parse(msg);

	assert_string_equal(s->bodystructure,
	    "(\"APPLICATION\" \"OCTET-STREAM\""
	    " (\"name*\" \"utf-8''%C3%A9t%C3%A9%20x.bin\") NIL NIL \"7BIT\" 6 NIL"
	    " (\"ATTACHMENT\" (\"filename*\" \"us-ascii'en'part%20onepart%20two%25.txt\""
	    " \"size\" \"3\" \"title*\" \"iso-8859-1'fr'%E9t%E9\" \"long\" \"a b c\""
	    " \"gap\" \"x\")) NIL NIL)");
	mime_summary_free(&s);
}

static void
test_content_type_defaults(void **state)
{
	struct mime_summary *s;

	/* Syntactically invalid: text/plain; charset=us-ascii (RFC 2045 5.2). */
	s = parse("Content-Type: foo\r\n\r\nx\r\n");
	assert_string_equal(s->body,
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 3 1)");
	mime_summary_free(&s);
	/* A multipart without a boundary cannot be one. */
	s = parse("Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nx\r\n");
	assert_string_equal(s->body,
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 10 3)");
	mime_summary_free(&s);
	/* Case, comments, quoting; charset added after the others. */
	s = parse("Content-Type: (c) Text / HTML (c) ; Format = \"flow\\\"ed\" (x)\r\n"
	    "Content-Transfer-Encoding: (c) Base64\r\n"
	    "Content-Language: en-GB (English), fr\r\n"
	    "Content-Location: http://example.com/a\r\n"
	    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
	    "\r\n"
	    "PGI+eDwvYj4=\r\n");
	assert_string_equal(s->bodystructure,
	    "(\"TEXT\" \"HTML\" (\"format\" \"flow\\\"ed\" \"charset\" \"us-ascii\") NIL"
	    " NIL \"BASE64\" 14 1 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" NIL (\"en-GB\" \"fr\")"
	    " \"http://example.com/a\")");
	assert_string_equal(s->preview, "x");
	mime_summary_free(&s);
	/* A message/rfc822 whose header the body never ends. */
	s = parse("Content-Type: message/rfc822\r\n\r\n");
	assert_string_equal(s->body,
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 0"
	    " (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
	    " (\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0) 0)");
	mime_summary_free(&s);
}

/* --- decoding ------------------------------------------------------------ */

static void
test_encoded_words(void **state)
{
	struct mime_summary *s;

	s = parse("Subject: =?iso-8859-1?q?caf=E9?= =?UTF-8?B?w6l0w6k=?=\r\n"
	    "From: =?windows-1252?Q?=93Quoted=94?= <q@x>\r\n"
	    "To: =?utf-8?q?J=C3=B6rg?= <j@x>, =?utf-8?b?5pc=?= =?utf-8?b?peacrA==?= <n@x>\r\n"
	    "Cc: =?iso-8859-15?q?=A4uro?= <e@x>\r\n"
	    "Bcc: =?unknown-charset?q?plain?= =?utf-8?q?bad=FF?= x@y\r\n"
	    "\r\n");
	/* ENVELOPE keeps the words as they are. */
	assert_string_equal(s->subject, "=?iso-8859-1?q?caf=E9?= =?UTF-8?B?w6l0w6k=?=");
	/* Search text: decoded; space between two words dropped; a character
	 * split across two words ("日本" as e6 97 a5 / e6 9c ac) kept whole;
	 * iso-8859-1 read as windows-1252. */
	assert_true(text_has(s, "caf\xc3\xa9\xc3\xa9t\xc3\xa9\n"));
	assert_true(text_has(s, "\xe2\x80\x9cQuoted\xe2\x80\x9d <q@x>"));
	assert_true(text_has(s, "J\xc3\xb6rg <j@x>, \xe6\x97\xa5\xe6\x9c\xac <n@x>"));
	assert_true(text_has(s, "\xe2\x82\xacuro <e@x>"));
	assert_true(text_has(s, "plainbad\xef\xbf\xbd x@y"));
	mime_summary_free(&s);
}

static void
test_body_charsets(void **state)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=c\r\n"
	    "\r\n"
	    "--c\r\n"
	    "Content-Type: text/plain; charset=ISO-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "caf=E9 =3D ok=\r\n"
	    "!\r\n"
	    "--c\r\n"
	    "Content-Type: text/plain; charset=windows-1252\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n"
	    "\r\n"
	    "\x93smart\x94 \x80\r\n"
	    "--c\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "w6nDqQ==\r\n"
	    "--c\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "\r\n"
	    "bad \xff\xfe utf8 \xe2\x82\r\n"
	    "--c\r\n"
	    "Content-Type: text/plain; charset=x-no-such-charset\r\n"
	    "\r\n"
	    "unknown \xc3\xa9\r\n"
	    "--c\r\n"
	    "Content-Type: text/plain; charset=iso-2022-jp\r\n"
	    "\r\n"
	    "\x1b$BF|K\\\x1b(B\r\n"
	    "--c--\r\n";
	struct mime_summary *s = parse(msg);

	assert_true(s->has_8bit);
	assert_true(text_has(s, "caf\xc3\xa9 = ok!"));
	assert_true(text_has(s, "\xe2\x80\x9csmart\xe2\x80\x9d \xe2\x82\xac"));
	assert_true(text_has(s, "\xc3\xa9\xc3\xa9"));
	assert_true(text_has(s, "bad \xef\xbf\xbd\xef\xbf\xbd utf8 \xef\xbf\xbd"));
	assert_true(text_has(s, "unknown \xc3\xa9"));
	assert_true(text_has(s, "\xe6\x97\xa5\xe6\x9c\xac"));  /* 日本 */
	assert_string_equal(s->preview, "caf\xc3\xa9 = ok!");
	mime_summary_free(&s);
}

static void
test_html(void **state)
{
	const char *msg =
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "\r\n"
	    "<html><head><title>T</title><style>p { color: red; }</style>\r\n"
	    "<script>var x = 1 < 2;</script></head>\r\n"
	    "<body><!-- a <b>comment</b> --><p>Fish &amp; chips&nbsp;&#233;&#x263A;"
	    " &bogus; a&b</p><p>next</p></body></html>\r\n";
	struct mime_summary *s = parse(msg);

	assert_string_equal(s->preview,
	    "T Fish & chips \xc3\xa9\xe2\x98\xba &bogus; a&b next");
	assert_false(text_has(s, "color"));
	assert_false(text_has(s, "var x"));
	assert_false(text_has(s, "comment"));
	mime_summary_free(&s);
}

static void
test_preview_limit(void **state)
{
	struct buf msg = BUF_INIT;
	struct mime_summary *s;
	size_t i, chars = 0;
	const char *c;

	buf_puts(&msg, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	buf_puts(&msg, "  \t\r\n  lead\r\n\r\n   and  ");
	for (i = 0; i < 150; i++)
		buf_puts(&msg, "\xc3\xa9\xe2\x82\xac");      /* é€ */
	buf_puts(&msg, "\r\n");
	s = parse(msg.data);
	for (c = s->preview; *c != '\0'; c++)
		chars += ((unsigned char)*c & 0xc0) != 0x80;
	assert_int_equal(chars, MIME_PREVIEW_MAX);
	assert_memory_equal(s->preview, "lead and \xc3\xa9\xe2\x82\xac", 14);
	/* 9 ASCII + 191 characters: the last is "é", never half of one. */
	assert_int_equal(strlen(s->preview), 9 + 96 * 2 + 95 * 3);
	mime_summary_free(&s);
	buf_free(&msg);

	/* No text part: an empty preview. */
	s = parse("Content-Type: image/gif\r\n\r\nGIF89a\r\n");
	assert_string_equal(s->preview, "");
	mime_summary_free(&s);
}

static void
test_decoders(void **state)
{
	struct buf b = BUF_INIT;
	struct mail_qp qp = { 0 };
	struct mail_b64 b64 = { 0 };
	const char *in = "a=3Db=\r\nc=\nd=zz=4=\r";
	size_t i;

	for (i = 0; in[i] != '\0'; i++)
		mail_qp_decode(&qp, in + i, 1, &b);
	mail_qp_finish(&qp, &b);
	assert_string_equal(b.data, "a=bcd=zz=4=\r");
	buf_reset(&b);
	mail_b64_decode(&b64, "aGVs\r\nbG8g d29y*bGQ=", 20, &b);
	assert_string_equal(b.data, "hello world");
	buf_free(&b);
}

static void
test_charset_helpers(void **state)
{
	struct buf b = BUF_INIT;
	struct mail_conv conv = { 0 };
	const char *latin = "caf\xe9 \x80";
	size_t i;

	assert_int_equal(mail_utf8_cut("a\xc3\xa9", 3), 3);
	assert_int_equal(mail_utf8_cut("a\xc3\xa9", 2), 1);
	assert_int_equal(mail_utf8_cut("\xe2\x82\xac", 2), 0);
	/* A converter fed one byte at a time. */
	mail_conv_open(&conv, "iso-8859-1");
	for (i = 0; latin[i] != '\0'; i++)
		mail_conv_feed(&conv, latin + i, 1, &b);
	mail_conv_flush(&conv, &b);
	assert_string_equal(b.data, "caf\xc3\xa9 \xe2\x82\xac");
	buf_reset(&b);
	mail_conv_open(&conv, "utf-8");
	mail_conv_feed(&conv, "\xe2", 1, &b);
	mail_conv_feed(&conv, "\x82", 1, &b);
	mail_conv_feed(&conv, "\xac\xe2", 2, &b);
	mail_conv_flush(&conv, &b);
	assert_string_equal(b.data, "\xe2\x82\xac\xef\xbf\xbd");
	buf_reset(&b);
	/* Names that could reach glibc's suffix handling are not used. */
	mail_conv_open(&conv, "UTF-8//TRANSLIT");
	mail_conv_feed(&conv, "\xc3\xa9", 2, &b);
	mail_conv_flush(&conv, &b);
	assert_string_equal(b.data, "\xc3\xa9");
	mail_conv_close(&conv);
	buf_free(&b);
}

/* --- addresses and envelopes -------------------------------------------- */

struct addr_case {
	const char *in;
	const char *out;        /* the ENVELOPE address list */
};

static void
test_addresses(void **state)
{
	static const struct addr_case cases[] = {
		{ "a@b", "((NIL NIL \"a\" \"b\"))" },
		{ "Joe Q. Public <john.q.public@example.com>",
		    "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\"))" },
		{ "\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
		    "((\"Giant; \\\"Big\\\" Box\" NIL \"sysservices\" \"example.net\"))" },
		{ "a@b (Joe)", "((\"Joe\" NIL \"a\" \"b\"))" },
		{ "(c) Joe (d (nested)) <a@b>", "((\"Joe\" NIL \"a\" \"b\"))" },
		{ "<@r1,@r2:x@y.z>", "((NIL \"@r1,@r2\" \"x\" \"y.z\"))" },
		{ "Joe <@r1, @r2 : x @ y . z>", "((\"Joe\" \"@r1,@r2\" \"x\" \"y.z\"))" },
		{ "a . b @ c . d", "((NIL NIL \"a.b\" \"c.d\"))" },
		{ "\"john doe\"@x.y", "((NIL NIL \"john doe\" \"x.y\"))" },
		{ "a@[1.2.3.4]", "((NIL NIL \"a\" \"[1.2.3.4]\"))" },
		{ "A: b@c, D <e@f>;, g@h",
		    "((NIL NIL \"A\" NIL)(NIL NIL \"b\" \"c\")(\"D\" NIL \"e\" \"f\")"
		    "(NIL NIL NIL NIL)(NIL NIL \"g\" \"h\"))" },
		{ "undisclosed-recipients:;",
		    "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL))" },
		{ "G1: a@b; G2: c@d",
		    "((NIL NIL \"G1\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL)"
		    "(NIL NIL \"G2\" NIL)(NIL NIL \"c\" \"d\")(NIL NIL NIL NIL))" },
		{ "a@b, , c@d", "((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\"))" },
		{ "Joe", "((NIL NIL \"Joe\" \"MISSING_DOMAIN\"))" },
		{ "a b c", "((\"a b c\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
		{ "a b c.d@e, \"x\" y .z@w",
		    "((\"a b\" NIL \"c.d\" \"e\")(\"x\" NIL \"y.z\" \"w\"))" },
		{ "<>", "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
		{ "A B <a@b", "((\"A B\" NIL \"a\" \"b\"))" },
		{ "\"unterminated <a@b>",
		    "((NIL NIL \"unterminated <a@b>\" \"MISSING_DOMAIN\"))" },
		{ "(unterminated <a@b>", NULL },
		{ "=?utf-8?q?J=C3=B6?= <a@b>",
		    "((\"=?utf-8?q?J=C3=B6?=\" NIL \"a\" \"b\"))" },
		{ "J\xc3\xb6rg <j@x>", "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\"))" },
		{ "", NULL },
		{ " , ;", NULL },
	};
	char *fields[MIME_ENV_NFIELDS] = { 0 };
	struct buf b = BUF_INIT, expect = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		buf_reset(&expect);
		fields[MIME_ENV_TO] = (char *)cases[i].in;
		mime_envelope_fields(fields, &b);
		buf_printf(&expect, "(NIL NIL NIL NIL NIL %s NIL NIL NIL NIL)",
		    cases[i].out != NULL ? cases[i].out : "NIL");
		assert_string_equal(b.data, expect.data);
	}
	buf_free(&b);
	buf_free(&expect);
}

static void
test_address_limit(void **state)
{
	struct buf in = BUF_INIT;
	struct mail_address *list;
	size_t i, n;
	int truncated;

	for (i = 0; i < MAIL_ADDRESS_MAX + 10; i++)
		buf_puts(&in, "a@b,");
	n = mail_address_parse(in.data, in.len, &list, &truncated);
	assert_int_equal(n, MAIL_ADDRESS_MAX);
	assert_true(truncated);
	mail_address_free(&list, n);
	assert_null(list);
	/* Deeply nested comments are counted, not recursed into. */
	buf_reset(&in);
	for (i = 0; i < 100000; i++)
		buf_putc(&in, '(');
	buf_puts(&in, "x@y");
	n = mail_address_parse(in.data, in.len, &list, &truncated);
	assert_int_equal(n, 0);
	assert_false(truncated);
	buf_free(&in);
}

static void
test_envelope_defaults(void **state)
{
	struct mime_summary *s;

	s = parse("From: a@b\r\n"
	    "Sender: s@b\r\n"
	    "Reply-To:\r\n"
	    "To:   \r\n"
	    "Subject:\r\n"
	    "In-Reply-To: <x@y>\r\n"
	    "References: <w@y>\r\n"
	    "  <x@y>\r\n"
	    "Subject: second ignored\r\n"
	    "\r\n");
	/* Sender present; Reply-To empty: From; To empty: NIL; empty Subject
	 * is "" (present); the first of two fields wins. */
	assert_envelope(s,
	    "(NIL \"\" ((NIL NIL \"a\" \"b\")) ((NIL NIL \"s\" \"b\"))"
	    " ((NIL NIL \"a\" \"b\")) NIL NIL NIL \"<x@y>\" NIL)");
	assert_string_equal(s->references, "<w@y>  <x@y>");
	mime_summary_free(&s);

	s = parse("Subject: a\r\n  folded\r\n\tline\r\n"
	    "subject : no\r\n"
	    "X-Long-Field-Name-Longer-Than-Thirty-Two-Octets: y\r\n"
	    "\r\n");
	assert_string_equal(s->subject, "a  folded\tline");
	assert_envelope(s, "(NIL \"a  folded\tline\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	mime_summary_free(&s);
}

/* --- hostile and malformed ---------------------------------------------- */

static void
test_empty_and_headerless(void **state)
{
	struct mime_summary *s;
	static const char *empty_body =
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0)";

	s = parse_len("", 0, 1);
	assert_int_equal(s->size, 0);
	assert_int_equal(s->header_size, 0);
	assert_string_equal(s->body, empty_body);
	assert_envelope(s, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	assert_string_equal(s->preview, "");
	assert_int_equal(s->text.len, 0);
	mime_summary_free(&s);

	/* No blank line: all header, even without a final line break. */
	s = parse("Subject: x\r\n");
	assert_int_equal(s->header_size, 12);
	assert_string_equal(s->body, empty_body);
	assert_string_equal(s->subject, "x");
	mime_summary_free(&s);
	s = parse("Subject: x");
	assert_int_equal(s->header_size, 10);
	assert_string_equal(s->subject, "x");
	mime_summary_free(&s);
	/* A first line that is not a field is still header. */
	s = parse("hello world\r\n\r\nbody\r\n");
	assert_int_equal(s->header_size, 15);
	assert_string_equal(s->body,
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 6 1)");
	mime_summary_free(&s);
	/* Only the blank line. */
	s = parse("\r\n");
	assert_int_equal(s->header_size, 2);
	mime_summary_free(&s);
	/* A body line ending in CR alone is not a blank line. */
	s = parse("A: b\r\r\n\r\nx");
	assert_int_equal(s->header_size, 9);
	assert_string_equal(s->body,
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 1 0)");
	mime_summary_free(&s);
}

static void
test_boundary_edges(void **state)
{
	/* The line break before a delimiter is the delimiter's, even when it
	 * ends a header; a part's header may end at a delimiter. */
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=b\r\n"     /* 0..43 */
	    "\r\n"                                              /* 43..45 */
	    "pre\r\n"                                           /* 45..50 */
	    "--b\r\n"                                           /* 50..55 */
	    "\r\n"                                              /* 55..57 */
	    "line1\r\n"
	    "line2\r\n"                                         /* 57..71 */
	    "--b\r\n"                                           /* 71..76 */
	    "X: y\r\n"                                          /* 76..82 */
	    "--b\r\n"                                           /* 82..87 */
	    "--b\r\n"                                           /* 87..92 */
	    "Content-Type: text/plain\r\n"                      /* 92..118 */
	    "\r\n"                                              /* 118..120 */
	    "--b  trailing junk\r\n"                            /* 120..140 */
	    "\r\n"
	    "\r\n"
	    "\r\n"                                              /* 140..146 */
	    "--b--\r\n"                                         /* 146..153 */
	    "epi\r\n";                                          /* 153..158 */
	static const uint64_t want[][4] = {
		/* header_offset, body_offset, body_end, lines */
		{ 0, 45, 158, 17 },
		{ 55, 57, 69, 1 },
		{ 76, 80, 80, 0 },
		{ 87, 87, 87, 0 },
		{ 92, 118, 118, 0 },
		{ 140, 142, 144, 1 },
	};
	struct mime_summary *s = parse(msg);
	size_t i;

	assert_int_equal(s->size, 158);
	assert_int_equal(s->nparts, 6);
	for (i = 0; i < 6; i++) {
		assert_int_equal(s->parts[i].header_offset, want[i][0]);
		assert_int_equal(s->parts[i].body_offset, want[i][1]);
		assert_int_equal(s->parts[i].body_end, want[i][2]);
		assert_int_equal(s->parts[i].body_lines, want[i][3]);
	}
	mime_summary_free(&s);
}

static void
test_boundary_prefix(void **state)
{
	struct mime_summary *s;
	static const char *two_levels =
	    "(((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 1 0)"
	    " \"MIXED\")(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 1 0)"
	    " \"MIXED\")";

	/* Inner boundary longer; "--abc" ends the inner multipart. */
	s = parse("Content-Type: multipart/mixed; boundary=abc\r\n\r\n"
	    "--abc\r\nContent-Type: multipart/mixed; boundary=abcdef\r\n\r\n"
	    "--abcdef\r\n\r\nA\r\n--abc\r\n\r\nB\r\n--abc--\r\n");
	assert_string_equal(s->body, two_levels);
	mime_summary_free(&s);
	/* Inner boundary shorter: "--abcdefg" matches both; the longer
	 * (outer) wins. */
	s = parse("Content-Type: multipart/mixed; boundary=abcdef\r\n\r\n"
	    "--abcdef\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n"
	    "--abc\r\n\r\nA\r\n--abcdefg\r\n\r\nB\r\n--abcdef--\r\n");
	assert_string_equal(s->body, two_levels);
	mime_summary_free(&s);
	/* Inner longer again: "--abcdefg" is the inner's. */
	s = parse("Content-Type: multipart/mixed; boundary=abc\r\n\r\n"
	    "--abc\r\nContent-Type: multipart/mixed; boundary=abcdef\r\n\r\n"
	    "--abcdef\r\n\r\nA\r\n--abcdefg\r\n\r\nB\r\n--abc--\r\n");
	assert_string_equal(s->body,
	    "(((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 1 0)"
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 1 0)"
	    " \"MIXED\") \"MIXED\")");
	mime_summary_free(&s);
	/* The same boundary nested: the innermost takes its lines. */
	s = parse("Content-Type: multipart/mixed; boundary=x\r\n\r\n"
	    "--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
	    "--x\r\n\r\nA\r\n--x--\r\n--x--\r\n");
	assert_int_equal(s->nparts, 3);
	assert_int_equal(s->parts[2].depth, 2);
	mime_summary_free(&s);
	/* After its close delimiter a boundary is no longer looked for. */
	s = parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n\r\nA\r\n--b--\r\n--b\r\n\r\nB\r\n");
	assert_int_equal(s->nparts, 2);
	mime_summary_free(&s);
}

static void
test_unterminated(void **state)
{
	struct mime_summary *s;
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\n"
	    "Content-Type: multipart/alternative; boundary=c\r\n\r\n"
	    "--c\r\n\r\n"
	    "never closed\r\n";

	s = parse(msg);
	assert_int_equal(s->nparts, 3);
	/* Open parts end with the message, final line break included. */
	assert_int_equal(s->parts[2].body_end, strlen(msg));
	assert_int_equal(s->parts[2].body_end - s->parts[2].body_offset, 14);
	assert_int_equal(s->parts[2].body_lines, 1);
	assert_int_equal(s->parts[1].body_end, strlen(msg));
	assert_false(s->truncated);
	mime_summary_free(&s);

	/* A multipart with no delimiter at all: an empty child is shown. */
	s = parse("Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts\r\n");
	assert_int_equal(s->nparts, 1);
	assert_string_equal(s->bodystructure,
	    "((\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0"
	    " NIL NIL NIL NIL) \"MIXED\" (\"boundary\" \"zz\") NIL NIL NIL)");
	mime_summary_free(&s);

	/* A delimiter as the last line opens a part only with its line
	 * break. */
	s = parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nA\r\n--b");
	assert_int_equal(s->nparts, 2);
	assert_int_equal(s->parts[1].body_end - s->parts[1].body_offset, 1);
	mime_summary_free(&s);
	s = parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nA\r\n--b\r\n");
	assert_int_equal(s->nparts, 3);
	assert_int_equal(s->parts[2].header_offset, s->size);
	assert_int_equal(s->parts[2].body_end, s->size);
	mime_summary_free(&s);
}

static void
test_deep_nesting(void **state)
{
	struct buf msg = BUF_INIT;
	struct mime_summary *s;
	int i;

	/* 10,000 nested multiparts, each closed properly (fixed-width
	 * boundaries: none is a prefix of another). */
	for (i = 0; i < 10000; i++)
		buf_printf(&msg, "Content-Type: multipart/mixed; boundary=\"b%05d\"\r\n\r\n"
		    "--b%05d\r\n", i, i);
	buf_puts(&msg, "\r\ndeep text\r\n");
	for (i = 9999; i >= 0; i--)
		buf_printf(&msg, "--b%05d--\r\n", i);
	s = parse_len(msg.data, msg.len, 1);
	assert_true(s->truncated);
	assert_int_equal(s->nparts, MIME_DEPTH_MAX + 1);
	assert_int_equal(s->parts[MIME_DEPTH_MAX].depth, MIME_DEPTH_MAX);
	assert_true(s->parts[MIME_DEPTH_MAX].multipart);
	assert_int_equal(s->parts[MIME_DEPTH_MAX].nchildren, 0);
	/* Each level's body ends at its own close delimiter. */
	/* Each level's body ends at its parent's close delimiter; the line
	 * break before it ends the close delimiter line of its own. */
	assert_int_equal(s->parts[1].body_end,
	    strstr(msg.data, "\r\n--b00000--") - msg.data + 2);
	mime_summary_free(&s);

	/* 10,000 nested messages. */
	buf_reset(&msg);
	for (i = 0; i < 10000; i++)
		buf_puts(&msg, "Content-Type: message/rfc822\r\n\r\n");
	buf_puts(&msg, "Subject: deepest\r\n\r\nx\r\n");
	s = parse_len(msg.data, msg.len, 1);
	assert_true(s->truncated);
	assert_int_equal(s->nparts, MIME_DEPTH_MAX + 1);
	assert_true(s->parts[MIME_DEPTH_MAX].message_rfc822);
	assert_int_equal(s->parts[MIME_DEPTH_MAX].nchildren, 0);
	assert_non_null(strstr(s->bodystructure,
	    " (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\""));
	mime_summary_free(&s);
	buf_free(&msg);
}

static void
test_many_parts(void **state)
{
	struct buf msg = BUF_INIT;
	struct mime_summary *s;
	int i;

	buf_puts(&msg, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (i = 0; i < MIME_PARTS_MAX + 100; i++)
		buf_puts(&msg, "--p\r\n\r\nx\r\n");
	buf_puts(&msg, "--p--\r\nepilogue\r\n");
	s = parse_len(msg.data, msg.len, 0);
	assert_true(s->truncated);
	assert_int_equal(s->nparts, MIME_PARTS_MAX);
	assert_int_equal(s->parts[0].nchildren, MIME_PARTS_MAX - 1);
	/* Delimiters are still found: the last tracked part is one "x". */
	assert_int_equal(s->parts[MIME_PARTS_MAX - 1].body_end -
	    s->parts[MIME_PARTS_MAX - 1].body_offset, 1);
	mime_summary_free(&s);
	buf_free(&msg);
}

static void
test_huge_header(void **state)
{
	struct buf msg = BUF_INIT;
	struct mime_summary *s;
	size_t hdr;

	buf_puts(&msg, "Subject: kept\r\n");
	while (msg.len < 2 * 1024 * 1024)
		buf_puts(&msg, "X-Filler: 0123456789012345678901234567890123456789\r\n");
	buf_puts(&msg, "From: lost@x\r\n");
	buf_puts(&msg, "Content-Type: text/html\r\n\r\n");
	hdr = msg.len;
	buf_puts(&msg, "body\r\n");
	s = parse_len(msg.data, msg.len, 1);
	assert_true(s->truncated);
	assert_int_equal(s->header_size, hdr);
	assert_string_equal(s->subject, "kept");
	assert_null(s->from);
	assert_string_equal(s->body,
	    "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 6 1)");
	mime_summary_free(&s);

	/* One field of 2 MiB: dropped, offsets still exact. */
	buf_reset(&msg);
	buf_puts(&msg, "Subject: ");
	while (msg.len < 2 * 1024 * 1024)
		buf_puts(&msg, "long subject ");
	buf_puts(&msg, "\r\n\r\nbody\r\n");
	s = parse_len(msg.data, msg.len, 0);
	assert_true(s->truncated);
	assert_null(s->subject);
	assert_int_equal(s->header_size, msg.len - 6);
	mime_summary_free(&s);
	buf_free(&msg);
}

static void
test_nul_and_8bit(void **state)
{
	static const char msg[] =
	    "Subject: a\0b \xe9t\xe9\r\n"
	    "From: \"J\xc3\xb6rg\" <j@x>\r\n"
	    "\r\n"
	    "nul \0 here\r\n";
	struct mime_summary *s = parse_len(msg, sizeof(msg) - 1, 1);
	struct buf b = BUF_INIT;

	assert_true(s->has_nul);
	assert_true(s->has_8bit);
	assert_string_equal(s->subject, "a b \xe9t\xe9");
	mime_envelope(s, &b);
	assert_non_null(strstr(b.data, "{7}\r\na b \xe9t\xe9 "));
	assert_non_null(strstr(b.data, "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\"))"));
	assert_int_equal(s->parts[0].body_end - s->parts[0].body_offset, 12);
	/* The search text holds no NUL and only valid UTF-8. */
	assert_null(memchr(s->text.data, '\0', s->text.len));
	/* 8-bit header text that is not UTF-8 is read as windows-1252. */
	assert_true(text_has(s, "a b \xc3\xa9t\xc3\xa9"));
	assert_string_equal(s->preview, "nul here");
	mime_summary_free(&s);
	buf_free(&b);

	s = parse("Subject: plain\r\n\r\nascii\r\n");
	assert_false(s->has_8bit);
	assert_false(s->has_nul);
	mime_summary_free(&s);
}

static void
test_text_limit(void **state)
{
	struct buf msg = BUF_INIT;
	struct mime_summary *s;
	size_t i;

	buf_puts(&msg, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (i = 0; i < 400000; i++)
		buf_puts(&msg, "\xe2\x82\xac");
	s = parse_len(msg.data, msg.len, 0);
	assert_true(s->truncated);
	assert_true(s->text.len <= MIME_TEXT_MAX);
	assert_true(s->text.len > MIME_TEXT_MAX - 3);
	assert_int_equal(s->text.len % 3, 0);   /* whole characters */
	mime_summary_free(&s);
	buf_free(&msg);
}

/* --- mime_parts_encode / decode ------------------------------------------ */

static void
test_parts_blob(void **state)
{
	struct mime_summary *s = parse(
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nhi\r\n"
	    "--b\r\n\r\nsecond\r\n--b--\r\n");
	struct buf blob = BUF_INIT, bad = BUF_INIT;
	struct mime_part *parts;
	uint32_t nparts;
	size_t i;
	int bit;

	mime_parts_encode(s->parts, s->nparts, &blob);
	/* Every truncation is refused. */
	for (i = 0; i < blob.len; i++)
		assert_int_equal(mime_parts_decode(blob.data, i, &parts, &nparts), -1);
	/* Trailing bytes and another version are refused. */
	buf_append(&bad, blob.data, blob.len);
	buf_putc(&bad, 0);
	assert_int_equal(mime_parts_decode(bad.data, bad.len, &parts, &nparts), -1);
	bad.data[0] = 2;
	assert_int_equal(mime_parts_decode(bad.data, bad.len - 1, &parts, &nparts), -1);
	/* Any flipped bit: refused or decoded, never a crash. */
	for (i = 0; i < blob.len; i++) {
		for (bit = 0; bit < 8; bit++) {
			buf_reset(&bad);
			buf_append(&bad, blob.data, blob.len);
			bad.data[i] ^= (char)(1 << bit);
			if (mime_parts_decode(bad.data, bad.len, &parts, &nparts) == 0)
				free(parts);
		}
	}
	/* Hand-made blobs. */
	assert_int_equal(mime_parts_decode("\x01\x00", 2, &parts, &nparts), -1);
	assert_int_equal(mime_parts_decode("\x01\x01\x00\x00\x00\x00\x00\x00\x00", 9,
	    &parts, &nparts), 0);
	assert_int_equal(nparts, 1);
	free(parts);
	/* A child claiming a parent that is a plain part. */
	assert_int_equal(mime_parts_decode("\x01\x02\x00\x00\x05\x00\x00\x01\x00"
	    "\x00\x00\x00\x00\x00\x00\x00", 16, &parts, &nparts), -1);
	/* Over-long varint. */
	assert_int_equal(mime_parts_decode("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	    "\x7f", 11, &parts, &nparts), -1);
	buf_free(&blob);
	buf_free(&bad);
	mime_summary_free(&s);
}

static void
test_parser_free(void **state)
{
	const char *msg = "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
	    "Content-Type: text/plain\r\n\r\nabc";
	struct mime_parser *p = mime_parser_new();

	mime_parser_feed(p, msg, strlen(msg));
	mime_parser_free(&p);
	assert_null(p);
	mime_parser_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_text),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_alternative),
		cmocka_unit_test(test_mixed_attachments),
		cmocka_unit_test(test_nested_rfc822),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_rfc2231),
		cmocka_unit_test(test_content_type_defaults),
		cmocka_unit_test(test_encoded_words),
		cmocka_unit_test(test_body_charsets),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_preview_limit),
		cmocka_unit_test(test_decoders),
		cmocka_unit_test(test_charset_helpers),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_address_limit),
		cmocka_unit_test(test_envelope_defaults),
		cmocka_unit_test(test_empty_and_headerless),
		cmocka_unit_test(test_boundary_edges),
		cmocka_unit_test(test_boundary_prefix),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_huge_header),
		cmocka_unit_test(test_nul_and_8bit),
		cmocka_unit_test(test_text_limit),
		cmocka_unit_test(test_parts_blob),
		cmocka_unit_test(test_parser_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
