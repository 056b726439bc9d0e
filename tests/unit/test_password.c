/*
 * Unit tests of src/auth/password.c. The hashes were made with other tools:
 * `openssl passwd -6/-5`, Python's crypt module (bcrypt) and the argon2
 * reference CLI (Debian package argon2).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth/password.h"
#include "directory/directory.h"

static const char *const good_hashes[] = {
	"{SHA512-CRYPT}$6$abcdefgh$BPABm5D7ZFU2YVfMLyE5XRqe91qwdcZ6APg7kB/YBeADxUUqXXhg3mlH"
	    "BbjpyHcrE9xl/9BuqqivCjN2qGEi30",
	"{SHA512-CRYPT}$6$rounds=5000$saltsalt$rD9fW1BwIrjB90WCgCTdIQc3phTBhf04I6Iw/XlgKD9E"
	    "9aEbzqGZipjiFxGo/4wWXDA6jV6/vZO.kKdDSfUJb0",
	"{SHA256-CRYPT}$5$abcdefgh$2fBC4A6a5zMUaFynrzCXz1gz3QtUtBsVxjmcncJUE67",
	"{BLF-CRYPT}$2b$04$abcdefghijklmnopqrstuu/FyAyuZSl3DbPdvio4KrIBdz2k2yhV2",
	"{BLF-CRYPT}$2y$05$ABCDEFGHIJKLMNOPQRSTUukXcxvZYct2UejuiTKfVIfVlxbg.Q2x.",
	"{ARGON2ID}$argon2id$v=19$m=4096,t=3,p=1$b3RoZXJzYWx0c2FsdDk4Nw$dgegL4I1V15t/Fkoh3sfcc"
	    "xIULvu13EwfR1MD2JQkiE",
	"{ARGON2I}$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHRzYWx0MTIzNA$ES5HNSFWYNfXknC9cjm0s9eg"
	    "vmOQEE/NM5cpB889vOI",
	"{PLAIN}pencil",
	"{plain}pencil",
	"{CLEARTEXT}pencil",
};

static void
test_known_hashes(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(good_hashes) / sizeof(good_hashes[0]); i++) {
		assert_int_equal(password_scheme_supported(good_hashes[i]), 1);
		assert_int_equal(password_verify(good_hashes[i], "pencil"), 1);
		assert_int_equal(password_verify(good_hashes[i], "pencil2"), 0);
		assert_int_equal(password_verify(good_hashes[i], "Pencil"), 0);
		assert_int_equal(password_verify(good_hashes[i], ""), 0);
		assert_int_equal(password_needs_rehash(good_hashes[i]), 1);
	}
}

/* Made by the argon2 CLI with our parameters (t=2, 19 MiB): no rehash; with
 * libsodium's "interactive" 64 MiB (our earlier cost): verifies, rehashed. */
static void
test_argon2id_current(void **state)
{
	static const char hash[] = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzYWx0MTIzNA$vV36r1h/MHUFn7Xuhm7A47Ks2L6J0HN4K+ktrrTuvEs";
	static const char old[] = "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzY"
	    "Wx0MTIzNA$RdBXXzIONi1pK7ZEjoLH9ogG8KWW/tBvkI8WJgDO9Uo";

	assert_int_equal(password_verify(hash, "pencil"), 1);
	assert_int_equal(password_verify(hash, "pencil "), 0);
	assert_int_equal(password_needs_rehash(hash), 0);
	assert_int_equal(password_needs_rehash(hash + 1), 1);
	assert_int_equal(password_verify(old, "pencil"), 1);
	assert_int_equal(password_needs_rehash(old), 1);
}

static void
test_plain(void **state)
{
	assert_int_equal(password_verify("{PLAIN}", ""), 1);
	assert_int_equal(password_verify("{PLAIN}", "a"), 0);
	assert_int_equal(password_verify("{PLAIN}abc", "ab"), 0);
	assert_int_equal(password_verify("{PLAIN}abc", "abcd"), 0);
	assert_int_equal(password_verify("{PLAIN}{x}y", "{x}y"), 1);
}

static void
test_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"pencil",
		"{PLAIN",
		"{MD5-CRYPT}$1$abcdefgh$xxxxxxxxxxxxxxxxxxxxxx",
		"{SHA512}abc",
		"{SHA512-CRYPT}$5$abcdefgh$2fBC4A6a5zMUaFynrzCXz1gz3QtUtBsVxjmcncJUE67",
		"{SHA256-CRYPT}",
		"{BLF-CRYPT}$6$abcdefgh$x",
		"{ARGON2ID}$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHRzYWx0MTIzNA$ES5HNSFWYNf",
		"{ARGON2ID}$argon2id$v=19$m=65536,t=2",
		"{ARGON2ID}garbage",
		"{ARGON2I}",
		"{}pencil",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(password_scheme_supported(bad[i]), 0);
		assert_int_equal(password_verify(bad[i], "pencil"), -1);
		assert_int_equal(password_needs_rehash(bad[i]), 1);
	}
	assert_int_equal(password_verify(NULL, "pencil"), -1);
	/* A bcrypt hash whose setting is broken: crypt_r refuses it. */
	assert_int_equal(password_verify("{BLF-CRYPT}$2b$04$short", "pencil"), -1);
	assert_int_equal(password_verify("{BLF-CRYPT}$2y$99$abcdefghijklmnopqrstuu/FyAyuZSl3"
	    "DbPdvio4KrIBdz2k2yhV2", "pencil"), -1);
	/* An empty salt is valid for crypt: just no match. */
	assert_int_equal(password_verify("{SHA256-CRYPT}$5$", "pencil"), 0);
}

static void
test_too_long(void **state)
{
	char *pw = malloc(PASSWORD_MAX + 2);

	memset(pw, 'a', PASSWORD_MAX + 1);
	pw[PASSWORD_MAX + 1] = '\0';
	assert_int_equal(password_verify("{PLAIN}pencil", pw), 0);
	free(pw);
}

static void
test_make_credentials(void **state)
{
	struct directory_credentials cred;
	unsigned char stored[SCRAM_KEY_SIZE], server[SCRAM_KEY_SIZE];
	const char *error;

	assert_int_equal(password_make_credentials("correct horse", &cred, &error), 0);
	assert_non_null(cred.password);
	assert_memory_equal(cred.password, "{ARGON2ID}$argon2id$", 20);
	assert_int_equal(password_scheme_supported(cred.password), 1);
	assert_int_equal(password_needs_rehash(cred.password), 0);
	assert_int_equal(password_verify(cred.password, "correct horse"), 1);
	assert_int_equal(password_verify(cred.password, "correct horsf"), 0);
	assert_int_equal(cred.has_scram, 1);
	assert_int_equal(cred.scram_salt_len, SCRAM_SALT_SIZE);
	assert_int_equal(cred.scram_iterations, SCRAM_ITERATIONS);
	scram_derive_keys("correct horse", cred.scram_salt, cred.scram_salt_len,
	    cred.scram_iterations, stored, server);
	assert_memory_equal(stored, cred.scram_stored_key, SCRAM_KEY_SIZE);
	assert_memory_equal(server, cred.scram_server_key, SCRAM_KEY_SIZE);
	free(cred.password);

	assert_int_equal(password_make_credentials("", &cred, &error), -1);
	assert_non_null(error);
}

static void
test_dummy(void **state)
{
	password_init();
	password_verify_dummy("pencil");
	password_verify_dummy("");
	password_verify_dummy(NULL);
}

/* RFC 7677 section 3: user "user", password "pencil". The expected keys were
 * computed independently (Python hashlib/hmac); the whole exchange is
 * checked against the RFC in test_sasl.c. */
static void
test_scram_rfc7677(void **state)
{
	static const unsigned char salt[] = {
		0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
		0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81,
	};
	static const unsigned char want_stored[SCRAM_KEY_SIZE] = {
		0x58, 0x6e, 0x5d, 0xf2, 0x83, 0xe6, 0xdc, 0xeb, 0x5c, 0x3e, 0x79, 0x1d,
		0x8b, 0x85, 0x28, 0xec, 0x19, 0x1e, 0x66, 0x40, 0x45, 0xce, 0x97, 0x17,
		0x92, 0xe2, 0xe6, 0xb5, 0xbb, 0x13, 0xe2, 0xa6,
	};
	static const unsigned char want_server[SCRAM_KEY_SIZE] = {
		0xc1, 0xf3, 0xcb, 0xc1, 0xc1, 0x3a, 0x9d, 0x35, 0xa1, 0x4c, 0x09, 0x90,
		0xee, 0xd9, 0x76, 0x29, 0xea, 0x22, 0x58, 0x63, 0xe5, 0x66, 0xa4, 0x31,
		0x4a, 0xb9, 0x9f, 0x3f, 0x00, 0xe5, 0xd9, 0xd5,
	};
	unsigned char stored[SCRAM_KEY_SIZE], server[SCRAM_KEY_SIZE];

	scram_derive_keys("pencil", salt, sizeof(salt), 4096, stored, server);
	assert_memory_equal(stored, want_stored, SCRAM_KEY_SIZE);
	assert_memory_equal(server, want_server, SCRAM_KEY_SIZE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_hashes),
		cmocka_unit_test(test_argon2id_current),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_make_credentials),
		cmocka_unit_test(test_dummy),
		cmocka_unit_test(test_scram_rfc7677),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
