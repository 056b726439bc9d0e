/*
 * Unit tests of the SMTP session's pure parts: MAIL/RCPT arguments, the
 * end-of-data state machine (every input fed whole, one byte at a time and
 * split at every position), the header scan and the address list parser,
 * and the queue's envelope format and xtext.
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
#include "proto/smtp/smtp.h"
#include "queue/queue.h"
#include "queue/queue_backend.h"

/* --- MAIL -------------------------------------------------------------- */

static const char *
mail_reply(const char *args, unsigned ext)
{
	struct smtp_mail m;
	const char *reply;

	if (smtp_parse_mail(args, ext, &m, &reply) == 0) {
		smtp_mail_clear(&m);
		return "OK";
	}
	return reply;
}

static void
test_mail_ok(void **state)
{
	struct smtp_mail m;
	const char *reply;
	unsigned ext = SMTP_EXT_ESMTP | SMTP_EXT_REQUIRETLS;

	assert_int_equal(smtp_parse_mail("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME "
	    "RET=HDRS ENVID=QQ+2B1 SMTPUTF8 REQUIRETLS AUTH=<>", ext, &m, &reply), 0);
	assert_string_equal(m.sender, "a@b.example");
	assert_int_equal(m.size, 1000);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);
	assert_int_equal(m.ret, SMTP_RET_HDRS);
	assert_string_equal(m.envid, "QQ+2B1");
	assert_true(m.smtputf8);
	assert_true(m.requiretls);
	smtp_mail_clear(&m);

	assert_int_equal(smtp_parse_mail("from: <>", 0, &m, &reply), 0);
	assert_string_equal(m.sender, "");
	smtp_mail_clear(&m);

	assert_int_equal(smtp_parse_mail("FROM:<j\xc3\xb6rg@b.example> SMTPUTF8", ext, &m,
	    &reply), 0);
	smtp_mail_clear(&m);
	/* SIZE is compared with the configured limit by the session; values
	 * too big to hold read as UINT64_MAX. */
	assert_int_equal(smtp_parse_mail("FROM:<a@b.example> SIZE=999999999999", ext, &m,
	    &reply), 0);
	assert_true(m.size == 999999999999ull);
	smtp_mail_clear(&m);
	assert_int_equal(smtp_parse_mail("FROM:<a@b.example> SIZE=99999999999999999999", ext,
	    &m, &reply), 0);
	assert_true(m.size == UINT64_MAX);
	smtp_mail_clear(&m);
	assert_string_equal(mail_reply("FROM:<a@b.example> body=binarymime", ext), "OK");
	assert_string_equal(mail_reply("FROM:<o'brien+tag@b.example>", ext), "OK");
}

static void
test_mail_refused(void **state)
{
	unsigned ext = SMTP_EXT_ESMTP;
	static const struct {
		const char *args;
		const char *code;
	} cases[] = {
		{ "FROM:a@b.example", "501 5.5.4" },
		{ "FROM:<a@b.example", "501 5.5.4" },
		{ "TO:<a@b.example>", "501 5.5.4" },
		{ "FROM:<a@b.example>SIZE=1", "501 5.5.4" },
		{ "FROM:<a@b.example> SIZE=", "501 5.5.4" },
		{ "FROM:<a@b.example> SIZE=12x", "501 5.5.4" },
		{ "FROM:<a@b.example> SIZE=1 SIZE=2", "501 5.5.4" },
		{ "FROM:<a@b.example> BODY=9BIT", "501 5.5.4" },
		{ "FROM:<a@b.example> RET=ALL", "501 5.5.4" },
		{ "FROM:<a@b.example> ENVID=a+ZZ", "501 5.5.4" },
		{ "FROM:<a@b.example> SMTPUTF8=yes", "501 5.5.4" },
		{ "FROM:<a@b.example> REQUIRETLS", "530 5.7.10" },
		{ "FROM:<a@b.example> XFOO=1", "555 5.5.4" },
		{ "FROM:<a@b.example> =1", "501 5.5.4" },
		{ "FROM:<j\xc3\xb6rg@b.example>", "553 5.6.7" },
		{ "FROM:<j\xc3@b.example> SMTPUTF8", "553 5.6.7" },
		{ "FROM:<a`id`@b.example>", "553 5.1.3" },
		{ "FROM:<a$(x)@b.example>", "553 5.1.3" },
		{ "FROM:<a|b@b.example>", "553 5.1.3" },
		{ "FROM:<a;b@b.example>", "553 5.1.3" },
		{ "FROM:<@a:b@c.example>", "553 5.7.1" },
		{ "FROM:<a@[127.0.0.1]>", "553 5.7.1" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *r = mail_reply(cases[i].args, ext);

		if (strncmp(r, cases[i].code, strlen(cases[i].code)) != 0)
			fail_msg("%s: got \"%s\", want %s", cases[i].args, r, cases[i].code);
	}
	/* Parameters need EHLO. */
	assert_string_equal(mail_reply("FROM:<a@b.example> SIZE=1", 0),
	    "555 5.5.4 MAIL parameters need EHLO");
}

/* --- RCPT -------------------------------------------------------------- */

static const char *
rcpt_reply(const char *args, unsigned ext)
{
	static char out[200];
	struct smtp_rcpt r;
	const char *reply;

	if (smtp_parse_rcpt(args, ext, "mx.example", &r, &reply) == 0) {
		snprintf(out, sizeof(out), "OK %s %u %s", r.address, r.notify,
		    r.orcpt != NULL ? r.orcpt : "-");
		smtp_rcpt_clear(&r);
		return out;
	}
	return reply;
}

static void
test_rcpt(void **state)
{
	unsigned ext = SMTP_EXT_ESMTP;
	static const struct {
		const char *args;
		const char *want;   /* a prefix of the result */
	} cases[] = {
		{ "TO:<b@c.example>", "OK b@c.example 0 -" },
		{ "to:<b@c.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40c.example",
		  "OK b@c.example 6 rfc822;b+40c.example" },
		{ "TO:<b@c.example> NOTIFY=NEVER", "OK b@c.example 1 -" },
		{ "TO:<Postmaster>", "OK postmaster@mx.example 0 -" },
		{ "TO:<b@c.example> NOTIFY=NEVER,SUCCESS", "501 5.5.4" },
		{ "TO:<b@c.example> NOTIFY=SUCCESS,SUCCESS", "501 5.5.4" },
		{ "TO:<b@c.example> NOTIFY=SUCCESS,", "501 5.5.4" },
		{ "TO:<b@c.example> NOTIFY=sometimes", "501 5.5.4" },
		{ "TO:<b@c.example> ORCPT=b@c.example", "501 5.5.4" },
		{ "TO:<b@c.example> ORCPT=rfc822;", "501 5.5.4" },
		{ "TO:<b@c.example> SIZE=1", "555 5.5.4" },
		{ "TO:<>", "553 5.1.3" },
		/* The classic relay probes. */
		{ "TO:<user%other.example@c.example>", "553 5.7.1" },
		{ "TO:<other.example!user@c.example>", "553 5.7.1" },
		{ "TO:<other.example!user>", "553" },
		{ "TO:<\"user@other.example\"@c.example>", "553 5.1.3" },
		{ "TO:<\"user\"@c.example>", "553 5.1.3" },
		{ "TO:<@c.example:user@other.example>", "553 5.7.1" },
		{ "TO:<@c.example,@d.example:user@other.example>", "553 5.7.1" },
		{ "TO:<user@other.example@c.example>", "553 5.7.1" },
		{ "TO:<user@[192.0.2.1]>", "553 5.7.1" },
		{ "TO:<user@[IPv6:2001:db8::1]>", "553 5.7.1" },
		{ "TO:<@c.example>", "553 5.1.3" },
		{ "TO:<user>", "553 5.1.3" },
		{ "TO:<user@>", "553 5.1.3" },
		{ "TO:<user@c..example>", "553 5.1.3" },
		{ "TO:<user@-c.example>", "553 5.1.3" },
		{ "TO:<.user@c.example>", "553 5.1.3" },
		{ "TO:<us..er@c.example>", "553 5.1.3" },
		{ "TO:<us er@c.example>", "553 5.1.3" },
		{ "TO:<us\ter@c.example>", "553 5.1.3" },
		{ "TO:<b@c.example> NOTIFY=SUCCESS NOTIFY=FAILURE", "501 5.5.4" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *r = rcpt_reply(cases[i].args, ext);

		if (strncmp(r, cases[i].want, strlen(cases[i].want)) != 0)
			fail_msg("%s: got \"%s\", want %s", cases[i].args, r, cases[i].want);
	}
}

static void
test_address_limits(void **state)
{
	char addr[400];
	const char *reply;

	memset(addr, 'a', 65);
	strcpy(addr + 65, "@c.example");
	assert_int_equal(smtp_address_check(addr, strlen(addr), 0, &reply), -1);
	assert_string_equal(reply, "553 5.1.3 Local part too long (at most 64 octets)");
	memset(addr, 'a', 64);
	strcpy(addr + 64, "@c.example");
	assert_int_equal(smtp_address_check(addr, strlen(addr), 0, &reply), 0);
	/* A label is at most 63 octets. */
	strcpy(addr, "a@");
	memset(addr + 2, 'b', 64);
	strcpy(addr + 66, ".example");
	assert_int_equal(smtp_address_check(addr, strlen(addr), 0, &reply), -1);
	assert_string_equal(reply, "553 5.1.3 Domain label too long");
	assert_int_equal(smtp_address_check("a\0b@c.example", 13, 0, &reply), -1);
	assert_string_equal(reply, "501 5.5.2 NUL byte in address");
	assert_int_equal(smtp_address_check("ab@c.exam\0ple", 13, 0, &reply), -1);
	assert_string_equal(reply, "501 5.5.2 NUL byte in address");
	/* A domain of 256 octets (labels of 63). */
	strcpy(addr, "a@");
	memset(addr + 2, 'b', 256);
	addr[2 + 256] = '\0';
	addr[2 + 63] = addr[2 + 127] = addr[2 + 191] = '.';
	assert_int_equal(smtp_address_check(addr, strlen(addr), 0, &reply), -1);
	assert_string_equal(reply, "553 5.1.3 Domain too long (at most 255 octets)");
	/* 64 + 1 + 189 = 254 octets: the most a path (with <>) holds. */
	memset(addr, 'a', 64);
	addr[64] = '@';
	memset(addr + 65, 'b', 189);
	addr[65 + 189] = '\0';
	addr[65 + 63] = addr[65 + 127] = '.';
	assert_int_equal(smtp_address_check(addr, 254, 0, &reply), 0);
	addr[254] = 'c';
	addr[255] = '\0';
	assert_int_equal(smtp_address_check(addr, 255, 0, &reply), -1);
	assert_string_equal(reply, "553 5.1.3 Address too long (at most 254 octets)");
}

/* Shell metacharacters, control characters and 8-bit octets, alone and in
 * the local part and in the domain. */
static void
test_address_characters(void **state)
{
	static const struct {
		const char *addr;
		int smtputf8;
		const char *reply;  /* NULL: accepted */
	} cases[] = {
		{ "a|b@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "|/bin/sh@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a`id`@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a$(id)@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a${IFS}@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a&b@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a;b@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a<b@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a>b@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a\\b@c.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "ab@c`id`.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "ab@c|d.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "ab@c$d.example", 0, "553 5.1.3 Shell metacharacters" },
		{ "a,b@c.example", 0, "553 5.1.3 Invalid character in local part" },
		{ "a\x01b@c.example", 0, "553 5.1.3 Control character" },
		{ "a\x7f@c.example", 0, "553 5.1.3 Control character" },
		{ "a\r\nRCPT@c.example", 0, "553 5.1.3 Control character" },
		{ "j\xc3\xb6rg@c.example", 0, "553 5.6.7 Non-ASCII address needs SMTPUTF8" },
		{ "jorg@\xc3\xa9.example", 0, "553 5.6.7 Non-ASCII address needs SMTPUTF8" },
		{ "j\xf6rg@c.example", 0, "553 5.6.7 Non-ASCII address needs SMTPUTF8" },
		{ "j\xc3\xb6rg@c.example", 1, NULL },
		{ "jorg@\xc3\xa9.example", 1, NULL },
		{ "j\xf6rg@c.example", 1, "553 5.6.7 Invalid UTF-8" },
		{ "j\xed\xa0\x80@c.example", 1, "553 5.6.7 Invalid UTF-8" },     /* a surrogate */
		{ "j\xc0\xaf@c.example", 1, "553 5.6.7 Invalid UTF-8" },         /* overlong */
		{ "o'brien+x=y?z#^_~*/@c.example", 0, NULL },
	};
	const char *reply;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = smtp_address_check(cases[i].addr, strlen(cases[i].addr),
		    cases[i].smtputf8, &reply);

		if (cases[i].reply == NULL) {
			if (r != 0)
				fail_msg("%s: refused: %s", cases[i].addr, reply);
		} else if (r == 0 || strncmp(reply, cases[i].reply, strlen(cases[i].reply)) != 0) {
			fail_msg("%s: got \"%s\", want %s", cases[i].addr, r == 0 ? "OK" : reply,
			    cases[i].reply);
		}
	}
	/* Through the RCPT parser: 8-bit needs the MAIL's SMTPUTF8. */
	assert_string_equal(rcpt_reply("TO:<j\xc3\xb6rg@c.example>", SMTP_EXT_ESMTP),
	    "553 5.6.7 Non-ASCII address needs SMTPUTF8");
	assert_string_equal(rcpt_reply("TO:<j\xc3\xb6rg@c.example>",
	    SMTP_EXT_ESMTP | SMTP_EXT_SMTPUTF8), "OK j\xc3\xb6rg@c.example 0 -");
	assert_string_equal(rcpt_reply("TO:<a|b@c.example>", SMTP_EXT_ESMTP),
	    "553 5.1.3 Shell metacharacters are not allowed in addresses");
	assert_string_equal(mail_reply("FROM:<a`id`@c.example>", SMTP_EXT_ESMTP),
	    "553 5.1.3 Shell metacharacters are not allowed in addresses");
}

/* --- DATA -------------------------------------------------------------- */

/* Feeds in whole, one byte at a time, and split at every position; all
 * must agree. Returns the content, "|DONE" and the consumed count, and the
 * flags. */
static char *
run_data(const char *in, size_t len, int dotted)
{
	struct buf ref = BUF_INIT;
	size_t split, i;

	for (split = 0; split <= len + 1; split++) {
		struct smtp_data d;
		struct buf out = BUF_INIT, res = BUF_INIT;
		size_t used = 0;

		smtp_data_init(&d, dotted);
		if (split == len + 1) {
			for (i = 0; i < len && !d.done; i++)
				used += smtp_data_feed(&d, in + i, 1, &out);
		} else {
			used = smtp_data_feed(&d, in, split, &out);
			if (!d.done)
				used += smtp_data_feed(&d, in + split, len - split, &out);
		}
		if (!dotted)
			smtp_data_finish(&d, &out);
		buf_append(&res, out.data != NULL ? out.data : "", out.len);
		buf_printf(&res, "|%s%zu%s%s", d.done ? "DONE" : "MORE", used,
		    d.bare_lf ? " LF" : "", d.bare_cr ? " CR" : "");
		if (split == 0) {
			buf_append(&ref, res.data, res.len);
		} else if (res.len != ref.len || memcmp(res.data, ref.data, res.len) != 0) {
			fail_msg("split %zu: \"%s\" != \"%s\"", split, res.data, ref.data);
		}
		buf_free(&out);
		buf_free(&res);
	}
	return buf_steal(&ref);
}

static void
check_data(const char *in, int dotted, const char *want)
{
	char *got = run_data(in, strlen(in), dotted);

	if (strcmp(got, want) != 0)
		fail_msg("input \"%s\": got \"%s\", want \"%s\"", in, got, want);
	free(got);
}

static void
test_data_end(void **state)
{
	check_data(".\r\n", 1, "|DONE3");
	check_data("a\r\n.\r\n", 1, "a\r\n|DONE6");
	check_data("a\r\n.\r\nMAIL FROM:<x@y>\r\n", 1, "a\r\n|DONE6");
	check_data("a\r\n..b\r\n.\r\n", 1, "a\r\n.b\r\n|DONE11");
	check_data("a\r\n.b\r\n.\r\n", 1, "a\r\nb\r\n|DONE10");
	check_data("a\r\n..\r\n.\r\n", 1, "a\r\n.\r\n|DONE10");
	check_data("a\r\nb", 1, "a\r\nb|MORE4");
	check_data("a\r\n.", 1, "a\r\n|MORE4");
	check_data("a\r\n.\r", 1, "a\r\n|MORE5");
}

/* Every smuggling variant: nothing ends the data but CRLF.CRLF, and the
 * odd line ends are flagged. */
static void
test_data_smuggling(void **state)
{
	check_data("a\n.\nMAIL", 1, "a\n.\nMAIL|MORE8 LF");
	check_data("a\r.\rMAIL", 1, "a\r.\rMAIL|MORE8 CR");
	check_data("a\r.\r\nMAIL", 1, "a\r.\r\nMAIL|MORE9 CR");
	check_data("a\r\n.\nMAIL", 1, "a\r\n\nMAIL|MORE9 LF");
	check_data("a\r\n.\rMAIL", 1, "a\r\n\rMAIL|MORE9 CR");
	check_data("a\n.\r\nMAIL", 1, "a\n.\r\nMAIL|MORE9 LF");
	check_data("a\r.\nMAIL", 1, "a\r.\nMAIL|MORE8 LF CR");
	check_data("a\n\r.\r\nMAIL", 1, "a\n\r.\r\nMAIL|MORE10 LF CR");
	check_data("a\r\r\n.\r\n", 1, "a\r\r\n|DONE7 CR");
	check_data("a\r\n.\r\r\n.\r\n", 1, "a\r\n\r\r\n|DONE10 CR");
	check_data("\n.\r\n", 1, "\n.\r\n|MORE4 LF");
	check_data("a\r\n.\r.\r\n", 1, "a\r\n\r.\r\n|MORE8 CR");
	/* The real end after a smuggling attempt. */
	check_data("a\n.\nMAIL\r\n.\r\n", 1, "a\n.\nMAIL\r\n|DONE13 LF");
}

static void
test_data_bdat(void **state)
{
	check_data("a\r\n.\r\nb", 0, "a\r\n.\r\nb|MORE7");
	check_data("a\nb", 0, "a\nb|MORE3 LF");
	check_data("a\rb", 0, "a\rb|MORE3 CR");
	check_data("a\r", 0, "a\r|MORE2 CR");
	check_data("a\r\n", 0, "a\r\n|MORE3");
}

/* --- headers ----------------------------------------------------------- */

static void
test_header_end(void **state)
{
	const char *m = "A: b\r\nC: d\r\n\r\nbody";

	assert_int_equal(smtp_header_end(m, strlen(m), 0), 14);
	assert_int_equal(smtp_header_end(m, 13, 0), 0);
	assert_int_equal(smtp_header_end(m, 14, 12), 14);
	assert_int_equal(smtp_header_end("\r\nbody", 6, 0), 2);
	assert_int_equal(smtp_header_end("A: b\n\nbody", 10, 0), 0);
}

static void
test_header_scan(void **state)
{
	struct smtp_header_info info;
	const char *h = "Received: x\r\nreceived: y\r\nFrom: \"Demo, D.\" <demo@example.test>,\r\n"
	    " other@example.test (Other)\r\nDate: now\r\nMessage-Id: <1@x>\r\n\r\n";

	smtp_header_scan(h, strlen(h), &info);
	assert_int_equal(info.received, 2);
	assert_int_equal(info.from_fields, 1);
	assert_true(info.has_date);
	assert_true(info.has_message_id);
	assert_false(info.from_bad);
	assert_int_equal(info.nfrom, 2);
	assert_string_equal(info.from[0], "demo@example.test");
	assert_string_equal(info.from[1], "other@example.test");
	smtp_header_info_clear(&info);

	h = "Subject: x\r\nFrom: <a@b>\r\nFrom: c@d\r\n\r\n";
	smtp_header_scan(h, strlen(h), &info);
	assert_int_equal(info.from_fields, 2);
	assert_false(info.has_date);
	smtp_header_info_clear(&info);

	/* The body starts at a line that is not a field. */
	h = "Subject: x\r\nnot a field\r\nFrom: a@b\r\n\r\n";
	smtp_header_scan(h, strlen(h), &info);
	assert_int_equal(info.from_fields, 0);
	smtp_header_info_clear(&info);
}

static const char *
list1(const char *value)
{
	static char out[300];
	char **addrs;
	size_t n, i;

	if (smtp_address_list(value, strlen(value), &addrs, &n) < 0)
		return "ERR";
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		strncat(out, addrs[i], sizeof(out) - strlen(out) - 2);
		strcat(out, ";");
		free(addrs[i]);
	}
	free(addrs);
	return out;
}

static void
test_address_list(void **state)
{
	assert_string_equal(list1(" a@b"), "a@b;");
	assert_string_equal(list1("A B <a@b>"), "a@b;");
	assert_string_equal(list1("\"x <y@z>\" <a@b>"), "a@b;");
	assert_string_equal(list1("(c <q@r>) a@b (d)"), "a@b;");
	assert_string_equal(list1("a@b, c@d"), "a@b;c@d;");
	assert_string_equal(list1("grp: a@b, c@d;"), "a@b;c@d;");
	assert_string_equal(list1("<@route:a@b>"), "a@b;");
	assert_string_equal(list1("\"q\"@b"), "\"q\"@b;");
	assert_string_equal(list1("a@b <c@d>"), "c@d;");
	assert_string_equal(list1("<a@b> c@d"), "ERR");
	assert_string_equal(list1("<a@b"), "ERR");
	assert_string_equal(list1("nobody"), "ERR");
	assert_string_equal(list1("(unterminated a@b"), "ERR");
}

/* --- queue envelopes --------------------------------------------------- */

static void
test_xtext(void **state)
{
	struct buf b = BUF_INIT;
	char *dec;

	queue_xtext_encode(&b, "a+b=c d\xc3\xa9");
	assert_string_equal(buf_cstr(&b), "a+2Bb+3Dc+20d+C3+A9");
	dec = queue_xtext_decode(b.data);
	assert_string_equal(dec, "a+b=c d\xc3\xa9");
	free(dec);
	assert_null(queue_xtext_decode("a+2"));
	assert_null(queue_xtext_decode("a+zz"));
	assert_null(queue_xtext_decode("a+00"));
	assert_null(queue_xtext_decode("a=b"));
	buf_free(&b);
}

static void
test_envelope(void **state)
{
	struct queue_envelope env, back;
	struct queue_rcpt rcpts[2];
	struct buf b = BUF_INIT;

	memset(&env, 0, sizeof(env));
	memset(rcpts, 0, sizeof(rcpts));
	strcpy(env.id, "abcdefghij01");
	env.sender = "s @x";
	env.envid = "E+2B";
	env.ret = QUEUE_RET_HDRS;
	env.body = QUEUE_BODY_8BITMIME;
	env.requiretls = 1;
	env.arrival = 1700000000;
	env.size = 42;
	rcpts[0].address = "r1@y";
	rcpts[0].notify = QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE;
	rcpts[0].orcpt = "rfc822;r1+40y";
	rcpts[1].address = "r2@y";
	rcpts[1].state = QUEUE_RCPT_FAILED;
	rcpts[1].attempts = 3;
	rcpts[1].last_reply = "550 no\nway";
	env.rcpts = rcpts;
	env.nrcpts = 2;
	queue_envelope_format(&b, &env);
	assert_int_equal(queue_envelope_parse(b.data, b.len, &back), 0);
	assert_string_equal(back.id, env.id);
	assert_string_equal(back.sender, "s @x");
	assert_string_equal(back.envid, "E+2B");
	assert_int_equal(back.ret, QUEUE_RET_HDRS);
	assert_int_equal(back.body, QUEUE_BODY_8BITMIME);
	assert_true(back.requiretls);
	assert_int_equal(back.arrival, 1700000000);
	assert_int_equal(back.size, 42);
	assert_int_equal(back.nrcpts, 2);
	assert_string_equal(back.rcpts[0].orcpt, "rfc822;r1+40y");
	assert_int_equal(back.rcpts[0].notify, 6);
	assert_int_equal(back.rcpts[1].state, QUEUE_RCPT_FAILED);
	assert_int_equal(back.rcpts[1].attempts, 3);
	assert_string_equal(back.rcpts[1].last_reply, "550 no\nway");
	queue_envelope_clear(&back);
	/* Truncated: no "end". */
	assert_int_equal(queue_envelope_parse(b.data, b.len - 4, &back), -1);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mail_ok),
		cmocka_unit_test(test_mail_refused),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_address_limits),
		cmocka_unit_test(test_address_characters),
		cmocka_unit_test(test_data_end),
		cmocka_unit_test(test_data_smuggling),
		cmocka_unit_test(test_data_bdat),
		cmocka_unit_test(test_header_end),
		cmocka_unit_test(test_header_scan),
		cmocka_unit_test(test_address_list),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_envelope),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
