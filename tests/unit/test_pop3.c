/* Unit tests of POP3's pure parts: dot-stuffing (fed whole, split at every
 * byte, and one byte at a time), TOP's line counting, and argument
 * parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"
#include "proto/pop3/pop3_dot.h"

/* Encodes msg cut into pieces of at most step bytes, plus a cut at split
 * (0: none); returns the whole response. */
static char *
encode(const char *msg, int top, uint64_t lines, size_t split, size_t step)
{
	struct pop3_dot d;
	struct buf b = BUF_INIT;
	size_t len = strlen(msg), off = 0, n, used, out_len;
	char *out;

	pop3_dot_init(&d, top, lines);
	while (off < len && !d.done) {
		n = len - off;
		if (split > off && split - off < n)
			n = split - off;
		if (step > 0 && n > step)
			n = step;
		out = malloc(POP3_DOT_OUT_MAX(n));
		out_len = pop3_dot_encode(&d, msg + off, n, out, &used);
		assert_true(out_len <= POP3_DOT_OUT_MAX(n));
		assert_true(used <= n);
		if (!d.done)
			assert_int_equal(used, n);
		buf_append(&b, out, out_len);
		free(out);
		off += n;
	}
	out = malloc(POP3_DOT_FINISH_MAX);
	out_len = pop3_dot_finish(&d, out);
	assert_true(out_len <= POP3_DOT_FINISH_MAX);
	buf_append(&b, out, out_len);
	free(out);
	if (b.data == NULL)
		return strdup("");
	return buf_steal(&b);
}

/* The same response whole, split at every byte, and byte by byte. */
static void
check(const char *msg, int top, uint64_t lines, const char *want)
{
	size_t split, len = strlen(msg);
	char *got;

	got = encode(msg, top, lines, 0, 0);
	assert_string_equal(got, want);
	free(got);
	for (split = 1; split < len; split++) {
		got = encode(msg, top, lines, split, 0);
		assert_string_equal(got, want);
		free(got);
	}
	got = encode(msg, top, lines, 0, 1);
	assert_string_equal(got, want);
	free(got);
}

static void
test_dot_stuffing(void **state)
{
	check("", 0, 0, ".\r\n");
	check("a\r\n", 0, 0, "a\r\n.\r\n");
	check(".\r\n", 0, 0, "..\r\n.\r\n");
	check("a\r\n.b\r\n..\r\n", 0, 0, "a\r\n..b\r\n...\r\n.\r\n");
	/* Only a dot that starts a line is doubled. */
	check("a.b\r\nx .\r\n", 0, 0, "a.b\r\nx .\r\n.\r\n");
	/* A lone CR is data: the dot after it does not start a line. */
	check("a\r.b\r\n", 0, 0, "a\r.b\r\n.\r\n");
	check("\r.\r\n", 0, 0, "\r.\r\n.\r\n");
	check("a\r\r\n.\r\n", 0, 0, "a\r\r\n..\r\n.\r\n");
}

static void
test_dot_line_endings(void **state)
{
	/* Bare LF lines become CRLF lines, also mixed with CRLF. */
	check("a\nb\n", 0, 0, "a\r\nb\r\n.\r\n");
	check("a\n.\nb\r\n.c\n", 0, 0, "a\r\n..\r\nb\r\n..c\r\n.\r\n");
	check("\n\n", 0, 0, "\r\n\r\n.\r\n");
	/* The last line gets its CRLF before the terminating dot. */
	check("a", 0, 0, "a\r\n.\r\n");
	check("a\r\nb", 0, 0, "a\r\nb\r\n.\r\n");
	check(".", 0, 0, "..\r\n.\r\n");
	check("a\r", 0, 0, "a\r\r\n.\r\n");
	check("\r", 0, 0, "\r\r\n.\r\n");
}

static void
test_dot_chunk_boundaries(void **state)
{
	struct pop3_dot d;
	char out[64];
	size_t n, used;

	/* A chunk that ends in CRLF, then one that starts with a dot. */
	pop3_dot_init(&d, 0, 0);
	n = pop3_dot_encode(&d, "x\r\n", 3, out, &used);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "x\r\n", 3);
	n = pop3_dot_encode(&d, ".y\r\n", 4, out, &used);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "..y\r\n", 5);
	/* A chunk that ends between CR and LF: the CR goes out at once, and
	 * the LF after it gets no second CR. */
	n = pop3_dot_encode(&d, "z\r", 2, out, &used);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "z\r", 2);
	n = pop3_dot_encode(&d, "\n.", 2, out, &used);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "\n..", 3);
	n = pop3_dot_finish(&d, out);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "\r\n.\r\n", 5);
	/* Empty chunks change nothing. */
	pop3_dot_init(&d, 0, 0);
	assert_int_equal(pop3_dot_encode(&d, "", 0, out, &used), 0);
	assert_int_equal(pop3_dot_finish(&d, out), 3);
}

static void
test_dot_worst_case(void **state)
{
	/* Every byte doubles: the output bound holds. */
	check("\n.\n.\n.", 0, 0, "\r\n..\r\n..\r\n..\r\n.\r\n");
	check(".\n.\n", 0, 0, "..\r\n..\r\n.\r\n");
}

static void
test_top(void **state)
{
	const char *msg = "Subject: x\r\nFrom: y\r\n\r\nline1\r\n.line2\r\nline3\r\n";

	check(msg, 1, 0, "Subject: x\r\nFrom: y\r\n\r\n.\r\n");
	check(msg, 1, 1, "Subject: x\r\nFrom: y\r\n\r\nline1\r\n.\r\n");
	check(msg, 1, 2, "Subject: x\r\nFrom: y\r\n\r\nline1\r\n..line2\r\n.\r\n");
	check(msg, 1, 3, "Subject: x\r\nFrom: y\r\n\r\nline1\r\n..line2\r\nline3\r\n.\r\n");
	check(msg, 1, 100, "Subject: x\r\nFrom: y\r\n\r\nline1\r\n..line2\r\nline3\r\n.\r\n");
	check(msg, 1, UINT64_MAX,
	    "Subject: x\r\nFrom: y\r\n\r\nline1\r\n..line2\r\nline3\r\n.\r\n");
	/* LF-only messages, and a body whose last line has no line end. */
	check("A: 1\n\nb1\nb2", 1, 1, "A: 1\r\n\r\nb1\r\n.\r\n");
	check("A: 1\n\nb1\nb2", 1, 2, "A: 1\r\n\r\nb1\r\nb2\r\n.\r\n");
	/* No blank line: all of it is header. */
	check("A: 1\r\nB: 2\r\n", 1, 0, "A: 1\r\nB: 2\r\n.\r\n");
	/* A lone CR line is not the blank line. */
	check("A: 1\r\n\r.\r\n\r\nbody\r\n", 1, 0, "A: 1\r\n\r.\r\n\r\n.\r\n");
	/* Empty body lines count as lines. */
	check("A: 1\r\n\r\n\r\n\r\nx\r\n", 1, 2, "A: 1\r\n\r\n\r\n\r\n.\r\n");
}

static void
test_top_stops_early(void **state)
{
	struct pop3_dot d;
	char out[128];
	const char *msg = "H: 1\r\n\r\nb1\r\nb2\r\n";
	size_t n, used;

	pop3_dot_init(&d, 1, 1);
	n = pop3_dot_encode(&d, msg, strlen(msg), out, &used);
	assert_true(d.done);
	assert_int_equal(used, strlen("H: 1\r\n\r\nb1\r\n"));
	assert_int_equal(n, used);
	/* Nothing more is taken once done. */
	assert_int_equal(pop3_dot_encode(&d, "more\r\n", 6, out, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(pop3_dot_finish(&d, out), 3);
	assert_memory_equal(out, ".\r\n", 3);
}

/* The rules of the header comment, a byte at a time: what the line-wise
 * encoder must match. */
static char *
reference(const char *msg, size_t len, int top, uint64_t lines)
{
	struct buf b = BUF_INIT;
	size_t i, start;
	int in_body = 0, empty;

	for (i = 0; i < len;) {
		/* One line: up to and with its LF, or the rest. */
		start = i;
		while (i < len && msg[i] != '\n')
			i++;
		if (i > start && msg[start] == '.')
			buf_putc(&b, '.');
		buf_append(&b, msg + start, i - start);
		if (i < len && i > start && msg[i - 1] == '\r')
			b.len--;   /* the CR of a CRLF: written again below */
		buf_append(&b, "\r\n", 2);
		empty = i == start || (i < len && i - start == 1 && msg[start] == '\r');
		if (i < len)
			i++;
		if (!in_body) {
			in_body = empty;
		} else if (top && lines > 0) {
			lines--;
		}
		if (top && in_body && lines == 0)
			break;
	}
	buf_append(&b, ".\r\n", 3);
	return buf_steal(&b);
}

/* Random messages of CR, LF, dots and letters, random TOP counts, split at
 * random: the same as the reference. */
static void
test_dot_random(void **state)
{
	static const char alphabet[] = "\r\n.\r\na";
	char msg[64], *want, *got;
	unsigned seed = 12345;
	size_t len, k;
	int round, top;
	uint64_t lines;

	for (round = 0; round < 20000; round++) {
		len = (size_t)(rand_r(&seed) % (int)(sizeof(msg) - 1));
		for (k = 0; k < len; k++)
			msg[k] = alphabet[rand_r(&seed) % (int)(sizeof(alphabet) - 1)];
		msg[len] = '\0';
		top = rand_r(&seed) % 3 == 0;
		lines = (uint64_t)(rand_r(&seed) % 4);
		want = reference(msg, len, top, lines);
		got = encode(msg, top, lines, (size_t)rand_r(&seed) % (len + 1),
		    (size_t)(rand_r(&seed) % 8));
		assert_string_equal(got, want);
		free(got);
		free(want);
	}
}

static void
test_parse_msgno(void **state)
{
	assert_int_equal(pop3_parse_msgno("1", 3), 1);
	assert_int_equal(pop3_parse_msgno("3", 3), 3);
	assert_int_equal(pop3_parse_msgno("003", 3), 3);
	assert_int_equal(pop3_parse_msgno("0", 3), 0);
	assert_int_equal(pop3_parse_msgno("4", 3), 0);
	assert_int_equal(pop3_parse_msgno("1", 0), 0);
	assert_int_equal(pop3_parse_msgno("", 3), 0);
	assert_int_equal(pop3_parse_msgno("-1", 3), 0);
	assert_int_equal(pop3_parse_msgno("+1", 3), 0);
	assert_int_equal(pop3_parse_msgno(" 1", 3), 0);
	assert_int_equal(pop3_parse_msgno("1 ", 3), 0);
	assert_int_equal(pop3_parse_msgno("1a", 3), 0);
	assert_int_equal(pop3_parse_msgno("0x1", 3), 0);
	assert_int_equal(pop3_parse_msgno("4294967296", SIZE_MAX), 0);
	assert_int_equal(pop3_parse_msgno("99999999999999999999999", SIZE_MAX), 0);
	assert_int_equal(pop3_parse_msgno("4294967295", SIZE_MAX), 4294967295u);
}

static void
test_parse_lines(void **state)
{
	uint64_t n = 7;

	assert_int_equal(pop3_parse_lines("0", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pop3_parse_lines("25", &n), 0);
	assert_int_equal(n, 25);
	assert_int_equal(pop3_parse_lines("99999999999999999999999999", &n), 0);
	assert_true(n == UINT64_MAX);
	assert_int_equal(pop3_parse_lines("", &n), -1);
	assert_int_equal(pop3_parse_lines("-1", &n), -1);
	assert_int_equal(pop3_parse_lines("1x", &n), -1);
	assert_int_equal(pop3_parse_lines(" 1", &n), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_dot_line_endings),
		cmocka_unit_test(test_dot_chunk_boundaries),
		cmocka_unit_test(test_dot_worst_case),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_top_stops_early),
		cmocka_unit_test(test_dot_random),
		cmocka_unit_test(test_parse_msgno),
		cmocka_unit_test(test_parse_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
