/* Unit tests of src/core: buffers, base64, value parsing, config files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/parse.h"

static void
test_buf(void **state)
{
	struct buf b = BUF_INIT;
	int i;

	assert_string_equal(buf_cstr(&b), "");
	/* Reserving space keeps the (empty) contents a valid C string. */
	buf_reserve(&b, 10);
	assert_string_equal(buf_cstr(&b), "");
	for (i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	assert_int_equal(b.len, strlen(b.data));
	assert_memory_equal(b.data, "0,1,2,", 6);
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_append(&b, "a\0b", 3);
	assert_int_equal(b.len, 3);
	buf_free(&b);
}

/* buf_put_u64 writes what %llu does. */
static void
test_buf_put_u64(void **state)
{
	static const unsigned long long values[] = {
		0, 1, 9, 10, 99, 100, 4294967295ULL, 4294967296ULL, 18446744073709551615ULL,
	};
	struct buf b = BUF_INIT;
	char want[32];
	size_t i;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		buf_reset(&b);
		buf_putc(&b, 'x');
		buf_put_u64(&b, values[i]);
		snprintf(want, sizeof(want), "x%llu", values[i]);
		assert_string_equal(buf_cstr(&b), want);
		assert_int_equal(b.len, strlen(want));
	}
	buf_free(&b);
}

static void
test_base64_roundtrip(void **state)
{
	unsigned char data[256];
	struct buf enc = BUF_INIT, dec = BUF_INIT;
	size_t n;

	for (n = 0; n < sizeof(data); n++)
		data[n] = (unsigned char)(n * 7 + 3);
	for (n = 0; n <= sizeof(data); n++) {
		buf_reset(&enc);
		buf_reset(&dec);
		base64_encode(&enc, data, n);
		assert_int_equal(enc.len % 4, 0);
		assert_int_equal(base64_decode(&dec, enc.data ? enc.data : "", enc.len), 0);
		assert_int_equal(dec.len, n);
		if (n > 0)
			assert_memory_equal(dec.data, data, n);
	}
	buf_free(&enc);
	buf_free(&dec);
}

static void
test_base64_strict(void **state)
{
	static const char *const bad[] = {
		"A", "AB", "ABC", "AB=C", "A===", "====", "AB==AB==", "AB C", "AB\n=",
		"AB=", "ABC*", "AB==\n", "AR==", "ABD=",
	};
	struct buf out = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(base64_decode(&out, bad[i], strlen(bad[i])), -1);
		assert_int_equal(out.len, 0);
	}
	assert_int_equal(base64_decode(&out, "AGZvbwBiYXI=", 12), 0);
	assert_int_equal(out.len, 8);
	assert_memory_equal(out.data, "\0foo\0bar", 8);
	buf_free(&out);
}

static void
test_parse(void **state)
{
	uint64_t v;
	long long n;
	int b;

	assert_int_equal(parse_size("10M", &v), 0);
	assert_int_equal(v, 10u << 20);
	assert_int_equal(parse_size("512KiB", &v), 0);
	assert_int_equal(v, 512u << 10);
	assert_int_equal(parse_size("7", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(parse_size("2gb", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(parse_size("", &v), -1);
	assert_int_equal(parse_size("M", &v), -1);
	assert_int_equal(parse_size("-1", &v), -1);
	assert_int_equal(parse_size("10X", &v), -1);
	assert_int_equal(parse_size("99999999999999999999", &v), -1);
	assert_int_equal(parse_size("16777216T", &v), -1);

	assert_int_equal(parse_duration("30", &v), 0);
	assert_int_equal(v, 30000);
	assert_int_equal(parse_duration("500ms", &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(parse_duration("15m", &v), 0);
	assert_int_equal(v, 900000);
	assert_int_equal(parse_duration("1h", &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(parse_duration("1w", &v), -1);

	assert_int_equal(parse_int("42", 0, 100, &n), 0);
	assert_int_equal(n, 42);
	assert_int_equal(parse_int("101", 0, 100, &n), -1);
	assert_int_equal(parse_int(" 1", 0, 100, &n), -1);
	assert_int_equal(parse_int("1x", 0, 100, &n), -1);

	assert_int_equal(parse_bool("yes", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(parse_bool("off", &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(parse_bool("maybe", &b), -1);
}

/* Writes text to a temporary config file and loads it. */
static int
load_text(const char *text, struct config *cfg, char **error)
{
	char path[] = "/tmp/petrel-test-config-XXXXXX";
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	rc = config_load(path, cfg, error);
	unlink(path);
	return rc;
}

static void
test_config_template_loads(void **state)
{
	struct config_init init = { "mail.example.test", "127.0.0.1,::1", 10000 };
	struct config cfg;
	char *text = NULL, *error = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	config_write_template(fp, &init);
	fclose(fp);
	assert_int_equal(load_text(text, &cfg, &error), 0);
	assert_null(error);
	assert_string_equal(cfg.hostname, "mail.example.test");
	assert_int_equal(cfg.nlisten, 16);
	assert_int_equal(cfg.listen[0].service, SERVICE_MX);
	assert_int_equal(cfg.listen[0].port, 10025);
	assert_string_equal(cfg.listen[0].address, "127.0.0.1");
	assert_int_equal(cfg.listen[3].port, 12525);
	assert_int_equal(cfg.listen[8].port, 10025);
	assert_string_equal(cfg.listen[8].address, "::1");
	assert_int_equal(cfg.tls_min_version, 12);
	assert_int_equal(cfg.auth_penalty_initial_ms, 2000);
	assert_int_equal(cfg.auth_penalty_max_ms, 15000);
	assert_true(cfg.io_threads >= 1);
	assert_true(cfg.data_dir[0] == '/');
	config_free(&cfg);
	free(text);
}

static void
test_config_errors(void **state)
{
	static const struct {
		const char *text;
		const char *expect;   /* substring of the message */
	} cases[] = {
		{ "listen = imap 127.0.0.1:143\nbogus = 1\n", ":2: unknown key 'bogus'" },
		{ "# c\n\nio_threads = many\nlisten = imap 127.0.0.1:143\n", ":3: bad value for 'io_threads'" },
		{ "listen = imap 127.0.0.1:143\nlisten = pop3 127.0.0.1:143\n", ":2: 127.0.0.1:143 is already used on line 1" },
		{ "listen = imap4 127.0.0.1:143\n", ":1: bad value for 'listen': unknown service" },
		{ "listen = imap localhost:143\n", ":1: bad value for 'listen': the address must be" },
		{ "listen = imap 127.0.0.1:99999\n", ":1: bad value for 'listen': the port" },
		{ "listen = imap [::1:143\n", ":1: bad value for 'listen'" },
		{ "hostname = a\nhostname = b\nlisten = imap 127.0.0.1:1\n", ":2: 'hostname' is set twice" },
		{ "log_level = loud\nlisten = imap 127.0.0.1:1\n", ":1: bad value for 'log_level'" },
		{ "timeout_smtp = 5 weeks\nlisten = imap 127.0.0.1:1\n", ":1: bad value for 'timeout_smtp'" },
		{ "allow_root = perhaps\nlisten = imap 127.0.0.1:1\n", ":1: bad value for 'allow_root'" },
		{ "just words\n", ":1: expected `key = value`" },
		{ "hostname = x\n", "no `listen =` line" },
		{ "queue_tls_policy = example.org\nlisten = imap 127.0.0.1:1\n", ":1: bad value for 'queue_tls_policy': expected DOMAIN:LEVEL" },
		{ "queue_tls_policy = a.test:secure\nlisten = imap 127.0.0.1:1\n", ":1: bad value for 'queue_tls_policy': bad level" },
		{ "queue_tls_policy = a..b:may\nlisten = imap 127.0.0.1:1\n", "bad domain" },
		{ "queue_tls_policy = a.b:may, A.B:none\nlisten = imap 127.0.0.1:1\n", "listed twice" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char *error = NULL;

		assert_int_equal(load_text(cases[i].text, &cfg, &error), -1);
		assert_non_null(error);
		if (strstr(error, cases[i].expect) == NULL)
			fail_msg("case %zu: '%s' does not contain '%s'", i, error, cases[i].expect);
		assert_true(strncmp(error, "/tmp/petrel-test-config-", 24) == 0);
		free(error);
	}
}

static void
test_config_missing_file(void **state)
{
	struct config cfg;
	char *error = NULL;

	assert_int_equal(config_load("/nonexistent/petrel.conf", &cfg, &error), -1);
	assert_non_null(strstr(error, "/nonexistent/petrel.conf: cannot open"));
	free(error);
}

static void
test_config_tls_policy(void **state)
{
	struct config cfg;
	char *error = NULL;
	const struct config_tls_rule *r;
	size_t n;

	assert_int_equal(load_text("queue_tls_policy = Example.ORG:verify,.example.net:encrypt "
	    "*:may, sub.example.net:none,x.test:NONE\nlisten = imap 127.0.0.1:1\n", &cfg,
	    &error), 0);
	r = cfg.queue_tls_rules;
	n = cfg.nqueue_tls_rules;
	assert_int_equal(n, 5);
	assert_string_equal(r[0].domain, "example.org");
	assert_int_equal(config_tls_level_for(r, n, "example.org"), CONFIG_TLS_VERIFY);
	assert_int_equal(config_tls_level_for(r, n, "EXAMPLE.org."), CONFIG_TLS_VERIFY);
	/* ".example.org" is not listed: a subdomain falls to "*" */
	assert_int_equal(config_tls_level_for(r, n, "mx.example.org"), CONFIG_TLS_MAY);
	assert_int_equal(config_tls_level_for(r, n, "example.net"), CONFIG_TLS_MAY);
	assert_int_equal(config_tls_level_for(r, n, "a.b.example.net"), CONFIG_TLS_ENCRYPT);
	assert_int_equal(config_tls_level_for(r, n, "sub.example.net"), CONFIG_TLS_NONE);
	assert_int_equal(config_tls_level_for(r, n, "x.test"), CONFIG_TLS_NONE);
	assert_int_equal(config_tls_level_for(NULL, 0, "x.test"), CONFIG_TLS_MAY);
	assert_string_equal(config_tls_level_name(CONFIG_TLS_ENCRYPT), "encrypt");
	config_free(&cfg);
	assert_int_equal(load_text("queue_tls_policy = \nlisten = imap 127.0.0.1:1\n", &cfg,
	    &error), 0);
	assert_int_equal(cfg.nqueue_tls_rules, 0);
	config_free(&cfg);
}

static void
test_log_ids(void **state)
{
	char a[LOG_ID_SIZE], b[LOG_ID_SIZE], q[32];

	log_new_id(a);
	log_new_id(b);
	assert_int_equal(strlen(a), LOG_ID_SIZE - 1);
	assert_string_not_equal(a, b);
	assert_string_equal(log_quote(q, sizeof(q), "a b", 100), "\"a b\"");
	assert_string_equal(log_quote(q, sizeof(q), "x\r\ny", 100), "x??y");
	assert_string_equal(log_quote(q, 8, "abcdefghij", 100), "abcde");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_buf_put_u64),
		cmocka_unit_test(test_base64_roundtrip),
		cmocka_unit_test(test_base64_strict),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_config_template_loads),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_missing_file),
		cmocka_unit_test(test_config_tls_policy),
		cmocka_unit_test(test_log_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
