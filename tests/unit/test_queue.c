/*
 * The queue's pure parts: SMTP reply parsing (split at every byte, hostile
 * input), EHLO keywords, envelope files, SRS, quoted-printable conversion, DSN text, retry
 * delays, MX record and address parsing. And the spool's crash recovery
 * when more than one process has the queue open.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "dns/dns.h"
#include "queue/queue.h"
#include "queue/queue_backend.h"
#include "queue/queue_dsn.h"
#include "queue/queue_runner.h"
#include "queue/queue_srs.h"
#include "smtpc/smtpc.h"

/* Feeds text split at `split` (0: whole); returns the last feed result. */
static int
feed_split(struct smtpc_reply_parser *p, const char *text, size_t split, size_t *total)
{
	size_t len = strlen(text), off = 0, used;
	int r = 0;

	*total = 0;
	while (off < len) {
		size_t n = split == 0 || off + split > len ? len - off : split;

		r = smtpc_reply_feed(p, text + off, n, &used);
		*total += used;
		if (r != 0)
			return r;
		off += n;
	}
	return r;
}

static void
test_reply_multiline_any_split(void **state)
{
	const char *text = "250-mx.example.net Hello\r\n250-PIPELINING\r\n250 2.0.0 OK\r\n";
	size_t split, used;

	for (split = 0; split <= strlen(text); split++) {
		struct smtpc_reply_parser p;

		memset(&p, 0, sizeof(p));
		assert_int_equal(feed_split(&p, text, split, &used), 1);
		assert_int_equal(used, strlen(text));
		assert_int_equal(p.reply.code, 250);
		assert_int_equal(p.nlines, 3);
		assert_string_equal(p.reply.status, "");
	}
}

static void
test_reply_status_and_rest(void **state)
{
	struct smtpc_reply_parser p;
	const char *text = "550 5.1.1 No such user\r\n250 next\r\n";
	size_t used;

	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, text, strlen(text), &used), 1);
	assert_int_equal(used, 24);
	assert_int_equal(p.reply.code, 550);
	assert_string_equal(p.reply.status, "5.1.1");
	assert_string_equal(p.reply.text, "550 5.1.1 No such user");
	smtpc_reply_reset(&p);
	assert_int_equal(smtpc_reply_feed(&p, text + used, strlen(text) - used, &used), 1);
	assert_int_equal(p.reply.code, 250);
	/* a status of another class is not one */
	smtpc_reply_reset(&p);
	assert_int_equal(smtpc_reply_feed(&p, "451 5.1.1 x\r\n", 13, &used), 1);
	assert_string_equal(p.reply.status, "");
}

static void
test_reply_hostile(void **state)
{
	struct smtpc_reply_parser p;
	struct buf b = BUF_INIT;
	size_t used, i;

	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, "GARBAGE\r\n", 9, &used), -1);
	assert_non_null(p.error);
	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, "250-a\r\n251 b\r\n", 14, &used), -1);
	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, "650 x\r\n", 7, &used), -1);
	/* endless multi-line */
	for (i = 0; i <= SMTPC_REPLY_LINES_MAX; i++)
		buf_puts(&b, "250-x\r\n");
	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, b.data, b.len, &used), -1);
	/* overlong line */
	buf_reset(&b);
	buf_puts(&b, "250 ");
	for (i = 0; i < SMTPC_LINE_MAX; i++)
		buf_putc(&b, 'x');
	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, b.data, b.len, &used), -1);
	/* NUL and control bytes: refused or made printable */
	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, "250 a\0b\r\n", 9, &used), -1);
	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, "250 a\x01\xff\r\n", 9, &used), 1);
	assert_string_equal(p.reply.text, "250 a??");
	/* bare code */
	memset(&p, 0, sizeof(p));
	assert_int_equal(smtpc_reply_feed(&p, "220\n", 4, &used), 1);
	assert_int_equal(p.reply.code, 220);
	buf_free(&b);
}

static void
test_ehlo_keywords(void **state)
{
	static const char *const lines[] = {
		"PIPELINING", "8bitmime", "SIZE 35882577", "AUTH LOGIN PLAIN", "STARTTLS",
		"REQUIRETLS", "DSN", "CHUNKING", "SMTPUTF8", "X-UNKNOWN something",
		"SIZE", "ENHANCEDSTATUSCODES",
	};
	struct smtpc_caps caps;
	size_t i;

	memset(&caps, 0, sizeof(caps));
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		smtpc_caps_parse_line(&caps, lines[i], strlen(lines[i]));
	assert_true(caps.pipelining && caps.eightbitmime && caps.auth_plain && caps.starttls &&
	    caps.requiretls && caps.dsn && caps.chunking && caps.smtputf8 && caps.size_ext);
	assert_false(caps.binarymime);
	assert_int_equal(caps.size, 0);     /* the last SIZE gave no number */
	memset(&caps, 0, sizeof(caps));
	smtpc_caps_parse_line(&caps, "SIZE 1000x", 10);
	smtpc_caps_parse_line(&caps, "AUTH LOGIN", 10);
	smtpc_caps_parse_line(&caps, "REQUIRETLSX", 11);
	assert_true(caps.size_ext);
	assert_int_equal(caps.size, 0);
	assert_false(caps.auth_plain || caps.requiretls);
	smtpc_caps_parse_line(&caps, "SIZE 52428800", 13);
	assert_int_equal(caps.size, 52428800);
}

static void
test_envelope_roundtrip(void **state)
{
	struct queue_envelope env, back;
	struct queue_rcpt r[2];
	struct buf text = BUF_INIT;

	memset(&env, 0, sizeof(env));
	memset(r, 0, sizeof(r));
	memcpy(env.id, "abcdefghijk0", QUEUE_ID_SIZE);
	env.sender = "a+b=c@example.org";
	env.envid = "ENV+2B1";
	env.ret = QUEUE_RET_HDRS;
	env.body = QUEUE_BODY_8BITMIME;
	env.hold = 1;
	env.arrival = 1700000000;
	r[0].address = "x@example.net";
	r[0].state = QUEUE_RCPT_DEFERRED;
	r[0].attempts = 3;
	r[0].next_attempt = 1700000600;
	r[0].last_reply = "451 4.7.1 try later, please";
	r[0].remote_mta = "mx.example.net";
	r[0].delayed = 1;
	r[0].notify = QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY;
	r[1].address = "y@example.net";
	r[1].state = QUEUE_RCPT_FAILED;
	r[1].orcpt = "rfc822;y@example.net";
	env.rcpts = r;
	env.nrcpts = 2;
	queue_envelope_format(&text, &env);
	assert_int_equal(queue_envelope_parse(text.data, text.len, &back), 0);
	assert_string_equal(back.sender, env.sender);
	assert_string_equal(back.envid, env.envid);
	assert_int_equal(back.hold, 1);
	assert_int_equal(back.ret, QUEUE_RET_HDRS);
	assert_int_equal(back.nrcpts, 2);
	assert_int_equal(back.rcpts[0].state, QUEUE_RCPT_DEFERRED);
	assert_int_equal(back.rcpts[0].attempts, 3);
	assert_int_equal(back.rcpts[0].next_attempt, 1700000600);
	assert_string_equal(back.rcpts[0].last_reply, r[0].last_reply);
	assert_string_equal(back.rcpts[0].remote_mta, r[0].remote_mta);
	assert_int_equal(back.rcpts[0].delayed, 1);
	assert_int_equal(back.rcpts[1].state, QUEUE_RCPT_FAILED);
	assert_string_equal(back.rcpts[1].orcpt, r[1].orcpt);
	queue_envelope_clear(&back);
	/* truncated: refused */
	assert_int_equal(queue_envelope_parse(text.data, text.len - 4, &back), -1);
	buf_free(&text);
}

static void
test_srs(void **state)
{
	char dir[] = "/tmp/petrel-srs-XXXXXX";
	struct queue_srs *srs;
	char *error = NULL, *fwd, *orig = NULL, *copy;
	int64_t now = 1700000000;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(queue_srs_open(dir, "fwd.example", &srs, &error), 0);
	fwd = queue_srs_forward(srs, "alice@example.org", now);
	assert_true(strncmp(fwd, "SRS0=", 5) == 0);
	assert_non_null(strstr(fwd, "=example.org=alice@fwd.example"));
	assert_int_equal(queue_srs_reverse(srs, fwd, now + 86400, &orig), 1);
	assert_string_equal(orig, "alice@example.org");
	free(orig);
	/* case changed on the way: still valid */
	copy = strdup(fwd);
	for (char *p = copy; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	assert_int_equal(queue_srs_reverse(srs, copy, now, &orig), 1);
	free(orig);
	free(copy);
	/* tampered, expired, not ours */
	copy = strdup(fwd);
	copy[5] = copy[5] == 'a' ? 'b' : 'a';
	assert_int_equal(queue_srs_reverse(srs, copy, now, &orig), -1);
	free(copy);
	assert_int_equal(queue_srs_reverse(srs, fwd, now + 30 * 86400, &orig), -1);
	assert_int_equal(queue_srs_reverse(srs, "bob@fwd.example", now, &orig), 0);
	assert_int_equal(queue_srs_reverse(srs, "SRS0=x=y=z=w@other.example", now, &orig), 0);
	free(fwd);
	/* the null sender stays */
	fwd = queue_srs_forward(srs, "", now);
	assert_string_equal(fwd, "");
	free(fwd);
	queue_srs_free(&srs);
	/* the key persists */
	assert_int_equal(queue_srs_open(dir, "fwd.example", &srs, &error), 0);
	queue_srs_free(&srs);
	{
		char path[64];

		snprintf(path, sizeof(path), "%s/srs.key", dir);
		unlink(path);
		rmdir(dir);
	}
}

static void
test_qp(void **state)
{
	const char *msg = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 = ok \r\n.\r\n";
	struct buf out = BUF_INIT;

	assert_true(smtpc_body_is_8bit((const unsigned char *)msg, strlen(msg)));
	assert_int_equal(smtpc_body_to_qp((const unsigned char *)msg, strlen(msg), &out), 0);
	assert_false(smtpc_body_is_8bit((const unsigned char *)out.data, out.len));
	assert_non_null(strstr(out.data, "Content-Transfer-Encoding: quoted-printable\r\n"));
	assert_null(strstr(out.data, "8bit"));
	assert_non_null(strstr(out.data, "caf=C3=A9 =3D ok=20\r\n.\r\n"));
	/* multipart: refused */
	assert_int_equal(smtpc_body_to_qp((const unsigned char *)
	    "Content-Type: multipart/mixed; boundary=x\r\n\r\n\xc3\r\n", 48, &out), -1);
	/* 8-bit header: refused */
	assert_int_equal(smtpc_body_to_qp((const unsigned char *)"Subject: \xc3\xa9\r\n\r\nx\r\n",
	    18, &out), -1);
	buf_free(&out);
}

static void
test_dsn_text(void **state)
{
	struct queue_dsn d;
	struct queue_dsn_rcpt r;
	struct buf b = BUF_INIT;
	char st[16];

	memset(&d, 0, sizeof(d));
	memset(&r, 0, sizeof(r));
	r.address = "x@example.net";
	r.remote_mta = "mx.example.net";
	r.diagnostic = "550 5.1.1 no such user";
	d.hostname = "mail.example.org";
	d.to = "a@example.org";
	d.action = QUEUE_DSN_FAILED;
	d.rcpts = &r;
	d.nrcpts = 1;
	d.original = "Subject: hi\r\n\r\nbody\r\n";
	d.original_len = strlen(d.original);
	d.headers_only = 1;
	queue_dsn_format(&b, &d);
	assert_non_null(strstr(b.data, "report-type=delivery-status"));
	assert_non_null(strstr(b.data, "Reporting-MTA: dns; mail.example.org\r\n"));
	assert_non_null(strstr(b.data, "Final-Recipient: rfc822;x@example.net\r\n"));
	assert_non_null(strstr(b.data, "Action: failed\r\nStatus: 5.1.1\r\n"));
	assert_non_null(strstr(b.data, "Remote-MTA: dns; mx.example.net\r\n"));
	assert_non_null(strstr(b.data, "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
	assert_non_null(strstr(b.data, "text/rfc822-headers"));
	assert_null(strstr(b.data, "body"));
	buf_free(&b);
	queue_dsn_status(st, NULL, "451 try later", QUEUE_DSN_DELAYED);
	assert_string_equal(st, "4.0.0");
	queue_dsn_status(st, NULL, NULL, QUEUE_DSN_FAILED);
	assert_string_equal(st, "5.0.0");
	queue_dsn_status(st, "5.7.30", NULL, QUEUE_DSN_FAILED);
	assert_string_equal(st, "5.7.30");
}

static void
test_retry_delay(void **state)
{
	uint64_t m = 60000;

	assert_int_equal(queue_retry_delay_ms(1, 5 * m, 60 * m), 5 * m);
	assert_int_equal(queue_retry_delay_ms(2, 5 * m, 60 * m), 10 * m);
	assert_int_equal(queue_retry_delay_ms(4, 5 * m, 60 * m), 40 * m);
	assert_int_equal(queue_retry_delay_ms(5, 5 * m, 60 * m), 60 * m);
	assert_int_equal(queue_retry_delay_ms(500, 5 * m, 60 * m), 60 * m);
}

static void
test_dns_parsers(void **state)
{
	static const unsigned char mx[] = { 0, 10, 2, 'm', 'x', 7, 'e', 'x', 'a', 'm', 'p', 'l',
	    'e', 3, 'n', 'e', 't', 0 };
	static const unsigned char null_mx[] = { 0, 0, 0 };
	static const unsigned char bad[] = { 0, 10, 5, 'm', 'x', 0 };
	struct dns_mx out;
	struct dns_addr a;
	char ip[64];

	assert_int_equal(dns_parse_mx_rdata(mx, sizeof(mx), &out), 0);
	assert_int_equal(out.preference, 10);
	assert_string_equal(out.host, "mx.example.net");
	assert_int_equal(dns_parse_mx_rdata(null_mx, sizeof(null_mx), &out), 0);
	assert_string_equal(out.host, "");
	assert_int_equal(dns_parse_mx_rdata(bad, sizeof(bad), &out), -1);
	assert_int_equal(dns_parse_ip_port("127.0.0.53:5353", 53, &a), 0);
	assert_string_equal(dns_addr_str(&a, ip, sizeof(ip)), "127.0.0.53");
	assert_int_equal(dns_parse_ip_port("[::1]:25", 53, &a), 0);
	assert_string_equal(dns_addr_str(&a, ip, sizeof(ip)), "::1");
	assert_int_equal(dns_parse_ip_port("2001:db8::1", 53, &a), 0);
	assert_int_equal(dns_parse_ip_port("mx.example.net", 25, &a), -1);
	assert_int_equal(dns_parse_ip_port("1.2.3.4:99999", 25, &a), -1);
}

/* --- the spool, opened by two processes --------------------------------- */

static void
spool_dir(char *dir, size_t size)
{
	snprintf(dir, size, "/tmp/petrel-test-queue-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static int
spool_exists(const char *dir, const char *sub, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/queue/%s/%s", dir, sub, name);
	return stat(path, &st) == 0;
}

static void
spool_touch(const char *dir, const char *sub, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/queue/%s/%s", dir, sub, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
}

static void
spool_rmdir(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* `petrel queue flush` opens the queue while the daemon commits a message:
 * that open must not take the daemon's files under way for a crash's
 * leftovers (it removed them, and the commit failed). A separate open
 * stands for the other process: flock() locks belong to the open file. */
static void
test_spool_second_open_keeps_commits_under_way(void **state)
{
	struct queue *daemon = NULL, *cli = NULL;
	struct queue_writer *w = NULL;
	struct queue_envelope env, got;
	struct queue_rcpt rcpt;
	const char *error = NULL, *body = "Subject: x\r\n\r\nbody\r\n";
	char *oerror = NULL, dir[64];
	int fd;

	spool_dir(dir, sizeof(dir));
	assert_int_equal(queue_open(dir, &daemon, &oerror), 0);
	assert_int_equal(queue_writer_new(daemon, &w, &error), 0);
	assert_int_equal(queue_writer_write(w, body, strlen(body), &error), 0);
	assert_int_equal(queue_open(dir, &cli, &oerror), 0);
	memset(&env, 0, sizeof(env));
	memset(&rcpt, 0, sizeof(rcpt));
	env.sender = "a@example.org";
	rcpt.address = "b@example.net";
	env.rcpts = &rcpt;
	env.nrcpts = 1;
	assert_int_equal(queue_writer_commit(w, &env, &error), 0);
	queue_writer_free(&w);
	assert_int_equal(queue_get(cli, env.id, &got, &error), 1);
	queue_envelope_clear(&got);
	fd = queue_message_open(cli, env.id, &error);
	assert_true(fd >= 0);
	close(fd);
	/* a third open while both are open: leftovers stay */
	spool_touch(dir, "tmp", "leftover.1");
	spool_touch(dir, "msg", "abcdefghijk0");
	queue_close(&cli);
	assert_int_equal(queue_open(dir, &cli, &oerror), 0);
	assert_true(spool_exists(dir, "tmp", "leftover.1"));
	assert_true(spool_exists(dir, "msg", "abcdefghijk0"));
	queue_close(&cli);
	queue_close(&daemon);
	/* alone: leftovers go, committed messages stay */
	assert_int_equal(queue_open(dir, &daemon, &oerror), 0);
	assert_false(spool_exists(dir, "tmp", "leftover.1"));
	assert_false(spool_exists(dir, "msg", "abcdefghijk0"));
	assert_true(spool_exists(dir, "msg", env.id));
	assert_true(spool_exists(dir, "env", env.id));
	queue_close(&daemon);
	spool_rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_multiline_any_split),
		cmocka_unit_test(test_reply_status_and_rest),
		cmocka_unit_test(test_reply_hostile),
		cmocka_unit_test(test_ehlo_keywords),
		cmocka_unit_test(test_envelope_roundtrip),
		cmocka_unit_test(test_srs),
		cmocka_unit_test(test_qp),
		cmocka_unit_test(test_dsn_text),
		cmocka_unit_test(test_retry_delay),
		cmocka_unit_test(test_dns_parsers),
		cmocka_unit_test(test_spool_second_open_keeps_commits_under_way),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
