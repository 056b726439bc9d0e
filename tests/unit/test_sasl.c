/*
 * Unit tests of the SASL machines (src/auth/sasl*.c): good, malformed and
 * hostile input for PLAIN, LOGIN and SCRAM-SHA-256, and the exchange of
 * RFC 7677 section 3 reproduced byte for byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth/password.h"
#include "auth/sasl.h"
#include "core/base64.h"
#include "core/buf.h"

static const unsigned char secret[SASL_SECRET_SIZE] = "0123456789abcdef0123456789abcdef";

/* Runs one PLAIN response through a fresh machine. */
static enum sasl_step
plain_once(const char *data, size_t len, struct sasl **sasl_r)
{
	struct sasl *sasl = sasl_new(SASL_MECH_PLAIN, NULL);
	enum sasl_step step = sasl_start(sasl, data, len);

	if (sasl_r != NULL)
		*sasl_r = sasl;
	else
		sasl_free(&sasl);
	return step;
}

#define PLAIN(s) plain_once(s, sizeof(s) - 1, NULL)

static void
test_mechanism_names(void **state)
{
	enum sasl_mechanism m;

	assert_int_equal(sasl_mechanism_lookup("plain", &m), 0);
	assert_int_equal(m, SASL_MECH_PLAIN);
	assert_int_equal(sasl_mechanism_lookup("LOGIN", &m), 0);
	assert_int_equal(m, SASL_MECH_LOGIN);
	assert_int_equal(sasl_mechanism_lookup("Scram-Sha-256", &m), 0);
	assert_int_equal(m, SASL_MECH_SCRAM_SHA_256);
	assert_int_equal(sasl_mechanism_lookup("SCRAM-SHA-256-PLUS", &m), -1);
	assert_int_equal(sasl_mechanism_lookup("CRAM-MD5", &m), -1);
	assert_int_equal(sasl_mechanism_lookup("", &m), -1);
	assert_string_equal(sasl_mechanism_name(SASL_MECH_SCRAM_SHA_256), "SCRAM-SHA-256");
}

static void
test_plain_good(void **state)
{
	struct sasl *sasl;
	const void *ch;
	size_t len;

	assert_int_equal(plain_once("\0tim\0tanstaaftanstaaf", 21, &sasl),
	    SASL_STEP_CHECK_PASSWORD);
	assert_string_equal(sasl_user(sasl), "tim");
	assert_string_equal(sasl_password(sasl), "tanstaaftanstaaf");
	/* Nothing more is accepted. */
	assert_int_equal(sasl_input(sasl, "x", 1), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
	assert_null(sasl);

	/* authzid equal to authcid (case aside) is fine. */
	assert_int_equal(plain_once("Tim@x.org\0tim@x.org\0pw", 22, &sasl),
	    SASL_STEP_CHECK_PASSWORD);
	assert_string_equal(sasl_user(sasl), "tim@x.org");
	sasl_free(&sasl);

	/* No initial response: an empty challenge first. */
	sasl = sasl_new(SASL_MECH_PLAIN, NULL);
	assert_int_equal(sasl_start(sasl, NULL, 0), SASL_STEP_CHALLENGE);
	ch = sasl_challenge(sasl, &len);
	assert_int_equal(len, 0);
	assert_non_null(ch);
	assert_int_equal(sasl_input(sasl, "\0u\0p", 4), SASL_STEP_CHECK_PASSWORD);
	assert_string_equal(sasl_user(sasl), "u");
	assert_string_equal(sasl_password(sasl), "p");
	sasl_free(&sasl);

	/* UTF-8 usernames are taken as they are. */
	assert_int_equal(PLAIN("\0j\xc3\xbcrgen\0p"), SASL_STEP_CHECK_PASSWORD);
	/* Passwords need not be UTF-8. */
	assert_int_equal(PLAIN("\0u\0\xe9t\xe9"), SASL_STEP_CHECK_PASSWORD);
}

static void
test_plain_bad(void **state)
{
	char *big;

	assert_int_equal(plain_once("", 0, NULL), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("timpassword"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0timpassword"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("tim\0password"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0tim\0pass\0word"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0tim\0password\0"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0\0password"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0tim\0"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0\0"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0\0\0"), SASL_STEP_MALFORMED);
	/* Bad UTF-8 in the username: overlong, stray continuation, surrogate. */
	assert_int_equal(PLAIN("\0\xc0\xaf\0p"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0a\x80\0p"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0\xed\xa0\x80\0p"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0\xf4\x90\x80\x80\0p"), SASL_STEP_MALFORMED);
	assert_int_equal(PLAIN("\0\xe2\x82\0p"), SASL_STEP_MALFORMED);
	/* Proxy authorization is refused. */
	assert_int_equal(PLAIN("admin\0tim\0password"), SASL_STEP_FAILED);
	assert_int_equal(PLAIN("tim2\0tim\0password"), SASL_STEP_FAILED);

	/* Over-long username and password. */
	big = malloc(SASL_USER_MAX + PASSWORD_MAX + 8);
	memset(big, 'a', SASL_USER_MAX + PASSWORD_MAX + 8);
	big[0] = '\0';
	big[SASL_USER_MAX + 2] = '\0';
	assert_int_equal(plain_once(big, SASL_USER_MAX + 4, NULL), SASL_STEP_MALFORMED);
	big[SASL_USER_MAX + 2] = 'a';
	big[SASL_USER_MAX + 1] = '\0';
	assert_int_equal(plain_once(big, SASL_USER_MAX + 3, NULL), SASL_STEP_CHECK_PASSWORD);
	big[SASL_USER_MAX + 1] = 'a';
	big[2] = '\0';
	assert_int_equal(plain_once(big, 3 + PASSWORD_MAX, NULL), SASL_STEP_CHECK_PASSWORD);
	assert_int_equal(plain_once(big, 4 + PASSWORD_MAX, NULL), SASL_STEP_MALFORMED);
	free(big);
}

static void
test_login(void **state)
{
	struct sasl *sasl;
	const char *ch;
	size_t len;

	sasl = sasl_new(SASL_MECH_LOGIN, NULL);
	assert_int_equal(sasl_start(sasl, NULL, 0), SASL_STEP_CHALLENGE);
	ch = sasl_challenge(sasl, &len);
	assert_int_equal(len, 9);
	assert_memory_equal(ch, "Username:", 9);
	assert_int_equal(sasl_input(sasl, "tim", 3), SASL_STEP_CHALLENGE);
	ch = sasl_challenge(sasl, &len);
	assert_int_equal(len, 9);
	assert_memory_equal(ch, "Password:", 9);
	assert_int_equal(sasl_input(sasl, "secret", 6), SASL_STEP_CHECK_PASSWORD);
	assert_string_equal(sasl_user(sasl), "tim");
	assert_string_equal(sasl_password(sasl), "secret");
	assert_int_equal(sasl_input(sasl, "x", 1), SASL_STEP_MALFORMED);
	sasl_free(&sasl);

	/* The initial response is the username; an empty one counts as none. */
	sasl = sasl_new(SASL_MECH_LOGIN, NULL);
	assert_int_equal(sasl_start(sasl, "tim", 3), SASL_STEP_CHALLENGE);
	ch = sasl_challenge(sasl, &len);
	assert_memory_equal(ch, "Password:", 9);
	assert_int_equal(sasl_input(sasl, "secret", 6), SASL_STEP_CHECK_PASSWORD);
	sasl_free(&sasl);
	sasl = sasl_new(SASL_MECH_LOGIN, NULL);
	assert_int_equal(sasl_start(sasl, "", 0), SASL_STEP_CHALLENGE);
	ch = sasl_challenge(sasl, &len);
	assert_memory_equal(ch, "Username:", 9);
	sasl_free(&sasl);

	/* Empty or NUL-carrying answers. */
	sasl = sasl_new(SASL_MECH_LOGIN, NULL);
	assert_int_equal(sasl_start(sasl, NULL, 0), SASL_STEP_CHALLENGE);
	assert_int_equal(sasl_input(sasl, "", 0), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
	sasl = sasl_new(SASL_MECH_LOGIN, NULL);
	assert_int_equal(sasl_start(sasl, "t\0m", 3), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
	sasl = sasl_new(SASL_MECH_LOGIN, NULL);
	assert_int_equal(sasl_start(sasl, "tim", 3), SASL_STEP_CHALLENGE);
	assert_int_equal(sasl_input(sasl, "se\0cret", 7), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
	sasl = sasl_new(SASL_MECH_LOGIN, NULL);
	assert_int_equal(sasl_start(sasl, "tim", 3), SASL_STEP_CHALLENGE);
	assert_int_equal(sasl_input(sasl, "", 0), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
}

/* --- SCRAM-SHA-256 ------------------------------------------------------ */

/* RFC 7677 section 3. */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
	"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void
rfc_credentials(struct directory_credentials *cred)
{
	struct buf salt = BUF_INIT;

	memset(cred, 0, sizeof(*cred));
	assert_int_equal(base64_decode(&salt, "W22ZaJ0SNY7soEsUEjb6gQ==", 24), 0);
	memcpy(cred->scram_salt, salt.data, salt.len);
	cred->scram_salt_len = salt.len;
	cred->scram_iterations = 4096;
	cred->has_scram = 1;
	scram_derive_keys("pencil", cred->scram_salt, cred->scram_salt_len, 4096,
	    cred->scram_stored_key, cred->scram_server_key);
	buf_free(&salt);
}

static void
assert_challenge(struct sasl *sasl, const char *want)
{
	const char *ch;
	size_t len;

	ch = sasl_challenge(sasl, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(ch, want, len);
}

/* A SCRAM machine that has read client_first and been given cred. */
static struct sasl *
scram_to_final(const char *client_first, const struct directory_credentials *cred)
{
	struct sasl *sasl = sasl_new(SASL_MECH_SCRAM_SHA_256, secret);

	assert_int_equal(sasl_start(sasl, client_first, strlen(client_first)),
	    SASL_STEP_NEED_SCRAM);
	sasl_scram_set_server_nonce(sasl, RFC_SERVER_NONCE);
	assert_int_equal(sasl_scram_credentials(sasl, cred), SASL_STEP_CHALLENGE);
	return sasl;
}

static void
test_scram_rfc7677(void **state)
{
	struct directory_credentials cred;
	struct sasl *sasl;

	rfc_credentials(&cred);
	sasl = scram_to_final(RFC_CLIENT_FIRST, &cred);
	assert_string_equal(sasl_user(sasl), "user");
	assert_challenge(sasl, RFC_SERVER_FIRST);
	assert_int_equal(sasl_input(sasl, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL)),
	    SASL_STEP_CHALLENGE);
	assert_challenge(sasl, RFC_SERVER_FINAL);
	assert_int_equal(sasl_input(sasl, "", 0), SASL_STEP_SUCCESS);
	assert_int_equal(sasl_input(sasl, "", 0), SASL_STEP_MALFORMED);
	sasl_free(&sasl);

	/* The same without an initial response. */
	sasl = sasl_new(SASL_MECH_SCRAM_SHA_256, secret);
	assert_int_equal(sasl_start(sasl, NULL, 0), SASL_STEP_CHALLENGE);
	assert_challenge(sasl, "");
	assert_int_equal(sasl_input(sasl, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST)),
	    SASL_STEP_NEED_SCRAM);
	sasl_scram_set_server_nonce(sasl, RFC_SERVER_NONCE);
	assert_int_equal(sasl_scram_credentials(sasl, &cred), SASL_STEP_CHALLENGE);
	assert_challenge(sasl, RFC_SERVER_FIRST);
	assert_int_equal(sasl_input(sasl, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL)),
	    SASL_STEP_CHALLENGE);
	assert_challenge(sasl, RFC_SERVER_FINAL);
	/* Data where the empty acknowledgement belongs. */
	assert_int_equal(sasl_input(sasl, "v=x", 3), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
}

static void
test_scram_random_nonce(void **state)
{
	struct directory_credentials cred;
	struct sasl *sasl;
	const char *ch;
	size_t len;

	rfc_credentials(&cred);
	sasl = sasl_new(SASL_MECH_SCRAM_SHA_256, secret);
	assert_int_equal(sasl_start(sasl, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST)),
	    SASL_STEP_NEED_SCRAM);
	assert_int_equal(sasl_scram_credentials(sasl, &cred), SASL_STEP_CHALLENGE);
	ch = sasl_challenge(sasl, &len);
	/* r= client nonce (18) + 32 base64 characters of 24 random bytes. */
	assert_memory_equal(ch, "r=rOprNGfwEbeRWgbNEkqO", 22);
	assert_int_equal(len, strlen("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
	    "i=4096") + 32);
	/* The RFC's final message carries another nonce now. */
	assert_int_equal(sasl_input(sasl, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL)),
	    SASL_STEP_MALFORMED);
	sasl_free(&sasl);
}

static void
test_scram_wrong_proof(void **state)
{
	static const char *const finals[] = {
		/* Another password's proof. */
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	};
	struct directory_credentials cred;
	struct sasl *sasl;
	size_t i;

	rfc_credentials(&cred);
	for (i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		sasl = scram_to_final(RFC_CLIENT_FIRST, &cred);
		assert_int_equal(sasl_input(sasl, finals[i], strlen(finals[i])),
		    SASL_STEP_FAILED);
		assert_int_equal(sasl_input(sasl, "", 0), SASL_STEP_MALFORMED);
		sasl_free(&sasl);
	}
}

static void
test_scram_unknown_user(void **state)
{
	struct directory_credentials cred;
	struct sasl *sasl;
	char first1[256], first2[256], first3[256];
	const char *ch;
	size_t len;

	/* The right proof for "user" fails when the user is unknown. */
	sasl = scram_to_final(RFC_CLIENT_FIRST, NULL);
	ch = sasl_challenge(sasl, &len);
	assert_true(len < sizeof(first1));
	memcpy(first1, ch, len);
	first1[len] = '\0';
	assert_memory_equal(first1, "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=",
	    54);
	assert_non_null(strstr(first1, ",i=4096"));
	assert_int_equal(sasl_input(sasl, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL)),
	    SASL_STEP_FAILED);
	sasl_free(&sasl);

	/* The fake salt is stable for a name, and differs between names. */
	sasl = scram_to_final(RFC_CLIENT_FIRST, NULL);
	ch = sasl_challenge(sasl, &len);
	memcpy(first2, ch, len);
	first2[len] = '\0';
	sasl_free(&sasl);
	assert_string_equal(first1, first2);
	sasl = scram_to_final("n,,n=other,r=rOprNGfwEbeRWgbNEkqO", NULL);
	ch = sasl_challenge(sasl, &len);
	memcpy(first3, ch, len);
	first3[len] = '\0';
	sasl_free(&sasl);
	assert_string_not_equal(first1, first3);

	/* An account without SCRAM keys looks the same as an unknown one. */
	memset(&cred, 0, sizeof(cred));
	sasl = scram_to_final(RFC_CLIENT_FIRST, &cred);
	ch = sasl_challenge(sasl, &len);
	memcpy(first2, ch, len);
	first2[len] = '\0';
	assert_string_equal(first1, first2);
	sasl_free(&sasl);
}

static void
test_scram_gs2(void **state)
{
	struct directory_credentials cred;
	struct sasl *sasl;
	struct buf final = BUF_INIT;

	rfc_credentials(&cred);
	/* "y,," is accepted; its c= must then be base64("y,,"). The RFC proof
	 * is over another AuthMessage, so it fails, but it is well-formed. */
	sasl = scram_to_final("y,,n=user,r=rOprNGfwEbeRWgbNEkqO", &cred);
	buf_puts(&final, "c=eSws,r=rOprNGfwEbeRWgbNEkqO" RFC_SERVER_NONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	assert_int_equal(sasl_input(sasl, final.data, final.len), SASL_STEP_FAILED);
	sasl_free(&sasl);
	/* ... and "c=biws" after "y,," is a downgrade: refused. */
	sasl = scram_to_final("y,,n=user,r=rOprNGfwEbeRWgbNEkqO", &cred);
	assert_int_equal(sasl_input(sasl, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL)),
	    SASL_STEP_MALFORMED);
	sasl_free(&sasl);

	/* An authzid naming the user himself. */
	sasl = scram_to_final("n,a=user,n=user,r=abc", &cred);
	assert_string_equal(sasl_user(sasl), "user");
	sasl_free(&sasl);
	buf_free(&final);
}

static void
test_scram_escaping(void **state)
{
	struct sasl *sasl;

	sasl = scram_to_final("n,,n=a=2Cb=3Dc@x.org,r=abc", NULL);
	assert_string_equal(sasl_user(sasl), "a,b=c@x.org");
	sasl_free(&sasl);
	sasl = scram_to_final("n,a=a=2Cb,n=a=2Cb,r=abc", NULL);
	assert_string_equal(sasl_user(sasl), "a,b");
	sasl_free(&sasl);
	sasl = scram_to_final("n,,n=j\xc3\xbcrgen,r=abc", NULL);
	assert_string_equal(sasl_user(sasl), "j\xc3\xbcrgen");
	sasl_free(&sasl);
}

static enum sasl_step
scram_first(const char *s, size_t len)
{
	struct sasl *sasl = sasl_new(SASL_MECH_SCRAM_SHA_256, secret);
	enum sasl_step step = sasl_start(sasl, s, len);

	sasl_free(&sasl);
	return step;
}

static void
test_scram_first_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"n",
		"n,",
		"n,,",
		"p=tls-unique,,n=user,r=abc",
		"p=tls-server-end-point,,n=user,r=abc",
		"x,,n=user,r=abc",
		"N,,n=user,r=abc",
		"n,,m=ext,n=user,r=abc",
		"n,,n=user,r=abc,x=ext",
		"n,,n=user,r=abc,m=ext",
		"n,,n=user,r=abc,",
		"n,,n=user,r=",
		"n,,n=user",
		"n,,n=user,",
		"n,,n=,r=abc",
		"n,,r=abc,n=user",
		"n,,n=us=er,r=abc",
		"n,,n=us=2Der,r=abc",
		"n,,n=user=2,r=abc",
		"n,,n=user=,r=abc",
		"n,,n=user,r=a b",
		"n,,n=user,r=a\x7f",
		"n,,n=\xc3,r=abc",
		"n,,n=\xff,r=abc",
		"n,a=,n=user,r=abc",
		"n,a=user",
		"n,b=user,n=user,r=abc",
		"n,,,n=user,r=abc",
		",,n=user,r=abc",
		" n,,n=user,r=abc",
		"n,,n=user,r=abc ",
		"n,,n=user,r=abc\r\n",
	};
	char big[SASL_NONCE_MAX + 64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(scram_first(bad[i], strlen(bad[i])), SASL_STEP_MALFORMED);
	}
	assert_int_equal(scram_first("n,,n=u\0er,r=abc", 15), SASL_STEP_MALFORMED);
	assert_int_equal(scram_first("n,,n=user,r=ab\0", 15), SASL_STEP_MALFORMED);
	/* Proxy authorization. */
	assert_int_equal(scram_first("n,a=admin,n=user,r=abc", 22), SASL_STEP_FAILED);

	/* Nonce bounds. */
	memcpy(big, "n,,n=user,r=", 12);
	memset(big + 12, 'x', SASL_NONCE_MAX + 1);
	assert_int_equal(scram_first(big, 12 + SASL_NONCE_MAX), SASL_STEP_NEED_SCRAM);
	assert_int_equal(scram_first(big, 12 + SASL_NONCE_MAX + 1), SASL_STEP_MALFORMED);

	/* Every truncation of a good message is refused or a shorter nonce. */
	for (i = 0; i < strlen(RFC_CLIENT_FIRST); i++) {
		enum sasl_step step = scram_first(RFC_CLIENT_FIRST, i);

		if (i > strlen("n,,n=user,r="))
			assert_int_equal(step, SASL_STEP_NEED_SCRAM);
		else
			assert_int_equal(step, SASL_STEP_MALFORMED);
	}
}

static void
test_scram_final_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"c=biws",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=",
		/* Wrong nonce: the client's only, ours changed, another. */
		"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0x,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		/* Channel binding data that is not our gs2 header. */
		"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biw,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		/* Extensions, reordered or repeated attributes. */
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=1,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,p=dHzbZapWIk4jUhN+"
		    "Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,",
		/* Proofs that are not 32 bytes or not strict base64. */
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV==",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVR=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=AAAA",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
		    "p= dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	};
	struct directory_credentials cred;
	struct sasl *sasl;
	size_t i;

	rfc_credentials(&cred);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sasl = scram_to_final(RFC_CLIENT_FIRST, &cred);
		assert_int_equal(sasl_input(sasl, bad[i], strlen(bad[i])),
		    SASL_STEP_MALFORMED);
		assert_int_equal(sasl_input(sasl, "", 0), SASL_STEP_MALFORMED);
		sasl_free(&sasl);
	}
	/* A NUL inside. */
	sasl = scram_to_final(RFC_CLIENT_FIRST, &cred);
	assert_int_equal(sasl_input(sasl, "c=biws\0", 7), SASL_STEP_MALFORMED);
	sasl_free(&sasl);

	/* No truncation of the good message gets anywhere. */
	for (i = 0; i < strlen(RFC_CLIENT_FINAL); i++) {
		enum sasl_step step;

		sasl = scram_to_final(RFC_CLIENT_FIRST, &cred);
		step = sasl_input(sasl, RFC_CLIENT_FINAL, i);
		assert_true(step == SASL_STEP_MALFORMED || step == SASL_STEP_FAILED);
		sasl_free(&sasl);
	}
}

static void
test_scram_out_of_order(void **state)
{
	struct directory_credentials cred;
	struct sasl *sasl;

	rfc_credentials(&cred);
	/* Credentials before the client-first message. */
	sasl = sasl_new(SASL_MECH_SCRAM_SHA_256, secret);
	assert_int_equal(sasl_scram_credentials(sasl, &cred), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
	/* Input while the lookup is pending. */
	sasl = sasl_new(SASL_MECH_SCRAM_SHA_256, secret);
	assert_int_equal(sasl_start(sasl, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST)),
	    SASL_STEP_NEED_SCRAM);
	assert_int_equal(sasl_input(sasl, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL)),
	    SASL_STEP_MALFORMED);
	assert_int_equal(sasl_scram_credentials(sasl, &cred), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
	/* Starting twice. */
	sasl = sasl_new(SASL_MECH_PLAIN, NULL);
	assert_int_equal(sasl_start(sasl, NULL, 0), SASL_STEP_CHALLENGE);
	assert_int_equal(sasl_start(sasl, NULL, 0), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
	/* Input before starting. */
	sasl = sasl_new(SASL_MECH_LOGIN, NULL);
	assert_int_equal(sasl_input(sasl, "x", 1), SASL_STEP_MALFORMED);
	sasl_free(&sasl);
}

/* Garbage of every length and a few byte patterns: never a crash, never
 * more than malformed or failed. */
static void
test_garbage(void **state)
{
	static const enum sasl_mechanism mechs[] = {
		SASL_MECH_PLAIN, SASL_MECH_LOGIN, SASL_MECH_SCRAM_SHA_256,
	};
	unsigned char data[300];
	size_t m, n, i;
	uint32_t x = 12345;

	for (m = 0; m < 3; m++) {
		for (n = 0; n < sizeof(data); n++) {
			struct sasl *sasl = sasl_new(mechs[m], secret);
			enum sasl_step step;

			for (i = 0; i < n; i++) {
				x = x * 1103515245 + 12345;
				data[i] = (unsigned char)(x >> 16);
			}
			step = sasl_start(sasl, data, n);
			if (step == SASL_STEP_CHALLENGE)
				step = sasl_input(sasl, data, n);
			if (step == SASL_STEP_NEED_SCRAM) {
				step = sasl_scram_credentials(sasl, NULL);
				assert_int_equal(step, SASL_STEP_CHALLENGE);
				step = sasl_input(sasl, data, n);
				assert_true(step == SASL_STEP_MALFORMED ||
				    step == SASL_STEP_FAILED);
			}
			assert_int_not_equal(step, SASL_STEP_SUCCESS);
			sasl_free(&sasl);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechanism_names),
		cmocka_unit_test(test_plain_good),
		cmocka_unit_test(test_plain_bad),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_scram_rfc7677),
		cmocka_unit_test(test_scram_random_nonce),
		cmocka_unit_test(test_scram_wrong_proof),
		cmocka_unit_test(test_scram_unknown_user),
		cmocka_unit_test(test_scram_gs2),
		cmocka_unit_test(test_scram_escaping),
		cmocka_unit_test(test_scram_first_bad),
		cmocka_unit_test(test_scram_final_bad),
		cmocka_unit_test(test_scram_out_of_order),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
