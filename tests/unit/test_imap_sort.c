/*
 * Unit tests of src/proto/imap/imap_sort.c and imap_thread.c: case folding,
 * RFC 5256 base subjects, sent dates, sort criteria, and both threading
 * algorithms on crafted mailboxes (hostile ones included).
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
#include "proto/imap/imap_sort.h"

static void
check_fold(const char *in, const char *expect)
{
	struct buf out = BUF_INIT;

	imap_casemap(in, strlen(in), &out);
	assert_string_equal(buf_cstr(&out), expect);
	buf_free(&out);
}

static void
test_casemap(void **state)
{
	check_fold("Hello WORLD", "hello world");
	/* ÄPFEL ÖL: folded and decomposed (a U+0308). */
	check_fold("\xc3\x84PFEL \xc3\x96L", "a\xcc\x88pfel o\xcc\x88l");
	check_fold("\xc3\x86\xc3\x9f\xc3\xbf", "\xc3\xa6\xc3\x9fy\xcc\x88");    /* Æßÿ */
	check_fold("\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91",                  /* ΣΟΦΙΑ */
	    "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1");
	check_fold("\xd0\x9c\xd0\x98\xd0\xa0 \xd0\x81", "\xd0\xbc\xd0\xb8\xd1\x80 \xd1\x91");
	check_fold("\xc5\x81\xc3\x93" "D\xc5\xb9", "\xc5\x82o\xcc\x81""d\xc5\xba");  /* ŁÓDŹ */
	check_fold("\xef\xbc\xa1", "\xef\xbd\x81");                             /* Ａ */
	check_fold("\xff\xc3(bad", "\xff\xc3(bad");                            /* bytes kept */
	assert_true(imap_casemap_contains("Gr\xc3\xbc\xc3\x9f""e aus M\xc3\x9cNCHEN", 7 + 14,
	    "m\xc3\xbcnchen"));
	assert_false(imap_casemap_contains("abc", 3, "abcd"));
	assert_true(imap_casemap_contains("abc", 3, ""));
}

static void
check_subject(const char *raw, const char *expect, int reply)
{
	struct buf out = BUF_INIT;

	assert_int_equal(imap_base_subject(raw, &out), reply);
	assert_string_equal(buf_cstr(&out), expect);
	buf_free(&out);
}

static void
test_base_subject(void **state)
{
	check_subject("Hello", "hello", 0);
	check_subject("Re: Hello", "hello", 1);
	check_subject("RE: re: Fwd: Hello", "hello", 1);
	check_subject("Re[2]: Hello", "hello", 1);
	check_subject("[list] Re: Hello (fwd)", "hello", 1);
	check_subject("[list] Hello", "hello", 0);
	check_subject("[list]", "[list]", 0);           /* the blob is all there is */
	check_subject("  Hello \t  world  ", "hello world", 0);
	check_subject("[fwd: Re: Hello]", "hello", 1);
	check_subject("Fw: [fwd: [x] hello (fwd)]", "hello", 1);
	check_subject("Reply: hello", "reply: hello", 0);
	check_subject("=?utf-8?q?R=C3=A9sum=C3=A9?=", "re\xcc\x81sume\xcc\x81", 0);
	check_subject("", "", 0);
	check_subject(NULL, "", 0);
	check_subject("re:", "", 1);
}

static void
test_sent_date(void **state)
{
	/* 1 Jul 2003 10:52:37 +0200 = 08:52:37 UTC. */
	assert_int_equal(imap_sent_date("Tue, 1 Jul 2003 10:52:37 +0200"), 1057049557);
	assert_int_equal(imap_sent_date("1 Jul 2003 08:52:37 GMT"), 1057049557);
	assert_int_equal(imap_sent_date(" Tue,  1 Jul 03 04:52:37 EDT (comment)"), 1057049557);
	assert_int_equal(imap_sent_date("01 Jul 2003 08:52 +0000"), 1057049520);
	assert_int_equal(imap_sent_date("Tue, 1 Jul 2003"), -1);
	assert_int_equal(imap_sent_date("yesterday"), -1);
	assert_int_equal(imap_sent_date(NULL), -1);
}

static const struct imap_arg *
parse_args(struct imap_parser **p, const char *line)
{
	static const struct imap_parse_limits lim = { 8192, 64, 8, 0, 0 };
	size_t used;

	*p = imap_parser_new(&lim);
	assert_int_equal(imap_parse(*p, line, strlen(line), &used), IMAP_PARSE_DONE);
	return imap_parser_command(*p)->args;
}

static void
test_sort_parse(void **state)
{
	struct imap_sort_criterion crit[IMAP_SORT_KEYS_MAX];
	struct imap_parser *p;
	const char *error;

	assert_int_equal(imap_sort_parse(parse_args(&p, "a SORT (REVERSE DATE SUBJECT "
	    "DISPLAYFROM)\r\n"), crit, &error), 3);
	assert_int_equal(crit[0].key, IMAP_SORT_DATE);
	assert_true(crit[0].reverse);
	assert_int_equal(crit[2].key, IMAP_SORT_DISPLAYFROM);
	assert_false(crit[2].reverse);
	imap_parser_free(&p);
	assert_int_equal(imap_sort_parse(parse_args(&p, "a SORT (DATE REVERSE)\r\n"), crit,
	    &error), -1);
	imap_parser_free(&p);
	assert_int_equal(imap_sort_parse(parse_args(&p, "a SORT ()\r\n"), crit, &error), -1);
	imap_parser_free(&p);
	assert_int_equal(imap_sort_parse(parse_args(&p, "a SORT (REVERSE REVERSE DATE)\r\n"),
	    crit, &error), -1);
	imap_parser_free(&p);
	assert_int_equal(imap_sort_parse(parse_args(&p, "a SORT (COLOR)\r\n"), crit, &error), -1);
	imap_parser_free(&p);
}

static void
test_sort_run(void **state)
{
	struct imap_sort_criterion crit[2] = { { IMAP_SORT_FROM, 0 }, { IMAP_SORT_SIZE, 1 } };
	struct imap_sort_msg m[4];
	size_t i;

	memset(m, 0, sizeof(m));
	for (i = 0; i < 4; i++) {
		m[i].seq = m[i].num = (uint32_t)i + 1;
		m[i].size = i * 10;
	}
	imap_sort_msg_strings(&m[0], crit, 2, NULL, "Zed <zed@x.test>", NULL, NULL);
	imap_sort_msg_strings(&m[1], crit, 2, NULL, "\"Amy\" <BOB@x.test>", NULL, NULL);
	imap_sort_msg_strings(&m[2], crit, 2, NULL, "amy@x.test", NULL, NULL);
	imap_sort_msg_strings(&m[3], crit, 2, NULL, "bob@y.test", NULL, NULL);
	imap_sort_run(m, 4, crit, 2);
	/* FROM is the local part: amy, then bob (4 before 2: REVERSE SIZE). */
	assert_int_equal(m[0].num, 3);
	assert_int_equal(m[1].num, 4);
	assert_int_equal(m[2].num, 2);
	assert_int_equal(m[3].num, 1);
	for (i = 0; i < 4; i++)
		imap_sort_msg_clear(&m[i]);
	/* DISPLAYFROM: the display name, else the address. */
	crit[0].key = IMAP_SORT_DISPLAYFROM;
	memset(m, 0, sizeof(m));
	imap_sort_msg_strings(&m[0], crit, 1, NULL, "=?utf-8?q?=C3=89mile?= <e@x.test>", NULL,
	    NULL);
	imap_sort_msg_strings(&m[1], crit, 1, NULL, "zoe@x.test", NULL, NULL);
	imap_sort_msg_strings(&m[2], crit, 1, NULL, NULL, NULL, NULL);
	assert_string_equal(m[0].str[IMAP_SORT_DISPLAYFROM], "e\xcc\x81mile");
	assert_string_equal(m[1].str[IMAP_SORT_DISPLAYFROM], "zoe@x.test");
	assert_string_equal(m[2].str[IMAP_SORT_DISPLAYFROM], "");
	for (i = 0; i < 3; i++)
		imap_sort_msg_clear(&m[i]);
}

struct tmsg {
	const char *subject, *id, *refs;
	int64_t date;
};

static char *
thread(enum imap_thread_algorithm alg, const struct tmsg *in, size_t n)
{
	struct imap_thread_msg *m = xcalloc(n + 1, sizeof(*m));
	struct buf out = BUF_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		m[i].num = m[i].seq = (uint32_t)i + 1;
		m[i].date = in[i].date;
		m[i].subject = in[i].subject;
		m[i].message_id = in[i].id;
		m[i].references = in[i].refs;
	}
	imap_thread_run(alg, m, n, &out);
	free(m);
	buf_putc(&out, '\0');
	return buf_steal(&out);
}

static void
test_thread_orderedsubject(void **state)
{
	static const struct tmsg msgs[] = {
		{ "b", NULL, NULL, 10 },
		{ "a", NULL, NULL, 20 },
		{ "Re: b", NULL, NULL, 30 },
		{ "c", NULL, NULL, 5 },
		{ "re: a", NULL, NULL, 15 },
		{ "B", NULL, NULL, 40 },
	};
	char *got = thread(IMAP_THREAD_ORDEREDSUBJECT, msgs, 6);

	/* Threads by their first date: c (5), b (10), a (15). */
	assert_string_equal(got, "(4)(1 (3)(6))(5 2)");
	free(got);
	got = thread(IMAP_THREAD_ORDEREDSUBJECT, msgs, 0);
	assert_string_equal(got, "");
	free(got);
}

static void
test_thread_references(void **state)
{
	static const struct tmsg msgs[] = {
		/* 1 */ { "Hello", "<1@x>", NULL, 10 },
		/* 2 */ { "Re: Hello", "<2@x>", "<1@x>", 20 },
		/* 3 */ { "Re: Hello", "<3@x>", "<1@x> <2@x>", 30 },
		/* 4 */ { "Re: Hello", "<4@x>", "<1@x>", 40 },
		/* 5: its parent never arrived; the grandparent did not either. */
		{ "Other", "<5@x>", "<missing@x>", 5 },
		/* 6: sibling of 5 under the missing parent. */
		{ "Re: Other", "<6@x>", "<missing@x>", 6 },
		/* 7: same subject as 1's thread, no references: joins it. */
		{ "Re: Hello", "<7@x>", NULL, 50 },
		/* 8: a duplicate Message-ID is a message of its own. */
		{ "Lonely", "<1@x>", NULL, 60 },
	};
	char *got = thread(IMAP_THREAD_REFERENCES, msgs, 8);

	assert_string_equal(got, "((5)(6))(1 (2 3)(4)(7))(8)");
	free(got);
}

static void
test_thread_hostile(void **state)
{
	/* Reference loops, self references, a message referring to its own
	 * descendant: every message still shows exactly once. */
	static const struct tmsg loops[] = {
		{ "a", "<a@x>", "<b@x> <a@x>", 1 },
		{ "b", "<b@x>", "<a@x>", 2 },
		{ "c", "<c@x>", "<c@x>", 3 },
		{ "d", "<d@x>", "<e@x> <d@x> <e@x>", 4 },
		{ "e", NULL, "garbage <unterminated", 5 },
	};
	char *got = thread(IMAP_THREAD_REFERENCES, loops, 5);
	size_t n = 0, i, k;
	struct tmsg *chain;

	for (i = 1; i <= 5; i++) {
		char num[8];

		snprintf(num, sizeof(num), "%zu", i);
		assert_non_null(strstr(got, num));
	}
	free(got);
	/* A chain 20,000 deep: no recursion to blow the stack. */
	k = 20000;
	chain = xcalloc(k, sizeof(*chain));
	for (i = 0; i < k; i++) {
		char *id = xcalloc(1, 32), *ref = xcalloc(1, 32);

		snprintf(id, 32, "<%zu@x>", i);
		snprintf(ref, 32, "<%zu@x>", i - 1);
		chain[i].subject = "deep";
		chain[i].id = id;
		chain[i].refs = i > 0 ? ref : NULL;
		if (i == 0)
			free(ref);
		chain[i].date = (int64_t)i;
	}
	got = thread(IMAP_THREAD_REFERENCES, chain, k);
	for (i = 0; got[i] != '\0'; i++)
		n += got[i] == ' ';
	assert_int_equal(n, k - 1);
	assert_int_equal(strncmp(got, "(1 2 3 ", 7), 0);
	free(got);
	got = thread(IMAP_THREAD_ORDEREDSUBJECT, chain, k);
	assert_int_equal(strncmp(got, "(1 (2)(3)", 9), 0);
	free(got);
	for (i = 0; i < k; i++) {
		free((char *)chain[i].id);
		free((char *)chain[i].refs);
	}
	free(chain);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_casemap),
		cmocka_unit_test(test_base_subject),
		cmocka_unit_test(test_sent_date),
		cmocka_unit_test(test_sort_parse),
		cmocka_unit_test(test_sort_run),
		cmocka_unit_test(test_thread_orderedsubject),
		cmocka_unit_test(test_thread_references),
		cmocka_unit_test(test_thread_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
