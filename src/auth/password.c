/*
 * Password hashes: Argon2id for new ones (libsodium), crypt(3) schemes and
 * {PLAIN} for imported ones, and the SCRAM-SHA-256 keys.
 */
#include "auth/password.h"

#include <crypt.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sodium.h>

#include "core/log.h"
#include "core/parse.h"
#include "core/xmalloc.h"

/* Our current Argon2id cost: OWASP's recommended minimum (19 MiB, 2
 * passes, 1 lane). libsodium's "interactive" preset (64 MiB) took ~95 ms
 * per login here against ~20 ms, capped the login rate of a mail server
 * whose clients reconnect all day, and needed 64 MiB per hash in flight. */
#define PASSWORD_OPSLIMIT 2ull
#define PASSWORD_MEMLIMIT (19ull * 1024 * 1024)

#define PASSWORD_STR(x) #x
#define PASSWORD_XSTR(x) PASSWORD_STR(x)
#define PASSWORD_MAX_TEXT PASSWORD_XSTR(PASSWORD_MAX)

/* No stored hash we accept is longer than this. */
#define PASSWORD_STORED_MAX 1024

enum password_scheme {
	PASSWORD_SCHEME_UNKNOWN,
	PASSWORD_SCHEME_ARGON2ID,
	PASSWORD_SCHEME_ARGON2I,
	PASSWORD_SCHEME_SHA512_CRYPT,
	PASSWORD_SCHEME_SHA256_CRYPT,
	PASSWORD_SCHEME_BLF_CRYPT,
	PASSWORD_SCHEME_PLAIN,
};

static const struct {
	const char *name;
	enum password_scheme scheme;
} password_schemes[] = {
	{ "ARGON2ID", PASSWORD_SCHEME_ARGON2ID },
	{ "ARGON2I", PASSWORD_SCHEME_ARGON2I },
	{ "SHA512-CRYPT", PASSWORD_SCHEME_SHA512_CRYPT },
	{ "SHA256-CRYPT", PASSWORD_SCHEME_SHA256_CRYPT },
	{ "BLF-CRYPT", PASSWORD_SCHEME_BLF_CRYPT },
	{ "PLAIN", PASSWORD_SCHEME_PLAIN },
	/* Dovecot's other names for PLAIN. */
	{ "CLEAR", PASSWORD_SCHEME_PLAIN },
	{ "CLEARTEXT", PASSWORD_SCHEME_PLAIN },
};

/* Slow hashes computed at once: one per core. The worker threads that
 * run them are many (most of their work is waiting for the disk), but a
 * login storm must not run dozens of 19 MiB Argon2id hashes side by side;
 * the rest wait their turn. */
static pthread_once_t password_slots_once = PTHREAD_ONCE_INIT;
static sem_t password_slots;

static void
password_slots_init(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (sem_init(&password_slots, 0, n < 1 ? 1 : n > 64 ? 64 : (unsigned)n) < 0)
		fatal("sem_init failed");
}

static void
slow_hash_enter(void)
{
	pthread_once(&password_slots_once, password_slots_init);
	while (sem_wait(&password_slots) < 0)
		;
}

static void
slow_hash_leave(void)
{
	sem_post(&password_slots);
}

static pthread_once_t password_sodium_once = PTHREAD_ONCE_INIT;
static pthread_once_t password_dummy_once = PTHREAD_ONCE_INIT;
static char password_dummy_hash[crypto_pwhash_STRBYTES];

static void
password_sodium_init(void)
{
	if (sodium_init() < 0) {
		log_error(NULL, "msg=\"libsodium initialisation failed\"");
		abort();
	}
}

static void
password_dummy_init(void)
{
	unsigned char secret[32];

	/* A hash of a random password nobody knows: verifying against it
	 * costs exactly what a real verification with our parameters costs. */
	randombytes_buf(secret, sizeof(secret));
	if (crypto_pwhash_str(password_dummy_hash, (const char *)secret, sizeof(secret),
	    PASSWORD_OPSLIMIT, PASSWORD_MEMLIMIT) != 0) {
		log_error(NULL, "msg=\"cannot make the dummy Argon2id hash\"");
		abort();
	}
	sodium_memzero(secret, sizeof(secret));
}

void
password_init(void)
{
	pthread_once(&password_sodium_once, password_sodium_init);
	pthread_once(&password_dummy_once, password_dummy_init);
}

/* Splits "{SCHEME}rest": returns the scheme and sets *rest_r. */
static enum password_scheme
password_parse_scheme(const char *stored, const char **rest_r)
{
	const char *end;
	size_t len, i;

	if (stored == NULL || stored[0] != '{')
		return PASSWORD_SCHEME_UNKNOWN;
	if ((end = strchr(stored, '}')) == NULL)
		return PASSWORD_SCHEME_UNKNOWN;
	len = (size_t)(end - stored - 1);
	for (i = 0; i < sizeof(password_schemes) / sizeof(password_schemes[0]); i++) {
		if (strlen(password_schemes[i].name) == len &&
		    strncasecmp(password_schemes[i].name, stored + 1, len) == 0) {
			*rest_r = end + 1;
			return password_schemes[i].scheme;
		}
	}
	return PASSWORD_SCHEME_UNKNOWN;
}

/* 1 when the hash part looks right for its scheme. */
static int
password_hash_well_formed(enum password_scheme scheme, const char *hash)
{
	if (strlen(hash) > PASSWORD_STORED_MAX)
		return 0;
	switch (scheme) {
	case PASSWORD_SCHEME_ARGON2ID:
		/* needs_rehash decodes the string: -1 means it cannot. libsodium's
		 * string buffers are crypto_pwhash_STRBYTES long. */
		return strlen(hash) < crypto_pwhash_STRBYTES &&
		    strncmp(hash, "$argon2id$", 10) == 0 &&
		    crypto_pwhash_argon2id_str_needs_rehash(hash, PASSWORD_OPSLIMIT,
		    PASSWORD_MEMLIMIT) != -1;
	case PASSWORD_SCHEME_ARGON2I:
		return strlen(hash) < crypto_pwhash_STRBYTES &&
		    strncmp(hash, "$argon2i$", 9) == 0 &&
		    crypto_pwhash_argon2i_str_needs_rehash(hash,
		    crypto_pwhash_argon2i_OPSLIMIT_INTERACTIVE,
		    crypto_pwhash_argon2i_MEMLIMIT_INTERACTIVE) != -1;
	case PASSWORD_SCHEME_SHA512_CRYPT:
		return strncmp(hash, "$6$", 3) == 0;
	case PASSWORD_SCHEME_SHA256_CRYPT:
		return strncmp(hash, "$5$", 3) == 0;
	case PASSWORD_SCHEME_BLF_CRYPT:
		return strncmp(hash, "$2y$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
		    strncmp(hash, "$2a$", 4) == 0;
	case PASSWORD_SCHEME_PLAIN:
		return 1;
	case PASSWORD_SCHEME_UNKNOWN:
		break;
	}
	return 0;
}

int
password_scheme_supported(const char *stored)
{
	enum password_scheme scheme;
	const char *hash;

	pthread_once(&password_sodium_once, password_sodium_init);
	scheme = password_parse_scheme(stored, &hash);
	return scheme != PASSWORD_SCHEME_UNKNOWN && password_hash_well_formed(scheme, hash);
}

static int
password_verify_crypt(const char *hash, const char *plain)
{
	struct crypt_data *data;
	const char *out;
	size_t len = strlen(hash);
	int ret;

	/* crypt_rn (libxcrypt) is crypt_r that returns NULL instead of a
	 * failure token; sanitizers do not intercept it, so the ASan build
	 * still links libcrypt. */
	data = xcalloc(1, sizeof(*data));
	slow_hash_enter();
	out = crypt_rn(plain, hash, data, (int)sizeof(*data));
	slow_hash_leave();
	if (out == NULL || out[0] == '*')
		ret = -1;
	else
		ret = strlen(out) == len && ct_equal(out, hash, len);
	OPENSSL_cleanse(data, sizeof(*data));
	free(data);
	return ret;
}

static int
password_verify_plain(const char *hash, const char *plain)
{
	unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
	int ret;

	/* Comparing digests keeps the length of the stored password secret. */
	SHA256((const unsigned char *)hash, strlen(hash), a);
	SHA256((const unsigned char *)plain, strlen(plain), b);
	ret = ct_equal(a, b, sizeof(a));
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return ret;
}

int
password_verify(const char *stored, const char *plain)
{
	enum password_scheme scheme;
	const char *hash;
	int ok;

	pthread_once(&password_sodium_once, password_sodium_init);
	scheme = password_parse_scheme(stored, &hash);
	if (scheme == PASSWORD_SCHEME_UNKNOWN || !password_hash_well_formed(scheme, hash))
		return -1;
	if (plain == NULL || strlen(plain) > PASSWORD_MAX)
		return 0;
	switch (scheme) {
	case PASSWORD_SCHEME_ARGON2ID:
	case PASSWORD_SCHEME_ARGON2I:
		slow_hash_enter();
		ok = crypto_pwhash_str_verify(hash, plain, strlen(plain)) == 0;
		slow_hash_leave();
		return ok;
	case PASSWORD_SCHEME_SHA512_CRYPT:
	case PASSWORD_SCHEME_SHA256_CRYPT:
	case PASSWORD_SCHEME_BLF_CRYPT:
		return password_verify_crypt(hash, plain);
	case PASSWORD_SCHEME_PLAIN:
		return password_verify_plain(hash, plain);
	case PASSWORD_SCHEME_UNKNOWN:
		break;
	}
	return -1;
}

void
password_verify_dummy(const char *plain)
{
	size_t len;

	password_init();
	len = plain == NULL ? 0 : strlen(plain);
	if (len > PASSWORD_MAX)
		len = PASSWORD_MAX;
	/* The result is meaningless; only the time spent matters. */
	slow_hash_enter();
	if (crypto_pwhash_str_verify(password_dummy_hash, plain == NULL ? "" : plain,
	    len) == 0)
		log_warn(NULL, "msg=\"dummy password hash matched\"");
	slow_hash_leave();
}

int
password_needs_rehash(const char *stored)
{
	enum password_scheme scheme;
	const char *hash;

	pthread_once(&password_sodium_once, password_sodium_init);
	scheme = password_parse_scheme(stored, &hash);
	if (scheme != PASSWORD_SCHEME_ARGON2ID)
		return 1;
	return crypto_pwhash_str_needs_rehash(hash, PASSWORD_OPSLIMIT,
	    PASSWORD_MEMLIMIT) != 0;
}

void
scram_derive_keys(const char *plain, const unsigned char *salt, size_t salt_len,
    uint32_t iterations, unsigned char stored_key[SCRAM_KEY_SIZE],
    unsigned char server_key[SCRAM_KEY_SIZE])
{
	unsigned char salted[SCRAM_KEY_SIZE], client_key[SCRAM_KEY_SIZE];
	unsigned int len;

	if (PKCS5_PBKDF2_HMAC(plain, (int)strlen(plain), salt, (int)salt_len,
	    (int)iterations, EVP_sha256(), sizeof(salted), salted) != 1 ||
	    HMAC(EVP_sha256(), salted, sizeof(salted),
	    (const unsigned char *)"Client Key", 10, client_key, &len) == NULL ||
	    HMAC(EVP_sha256(), salted, sizeof(salted),
	    (const unsigned char *)"Server Key", 10, server_key, &len) == NULL) {
		/* Only an allocation failure gets here: treat like xmalloc. */
		log_error(NULL, "msg=\"SCRAM key derivation failed\"");
		abort();
	}
	SHA256(client_key, sizeof(client_key), stored_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
}

int
password_make_credentials(const char *plain, struct directory_credentials *cred,
    const char **error_r)
{
	char hash[crypto_pwhash_STRBYTES];
	size_t len;

	pthread_once(&password_sodium_once, password_sodium_init);
	memset(cred, 0, sizeof(*cred));
	len = strlen(plain);
	if (len == 0 || len > PASSWORD_MAX) {
		*error_r = "the password must be 1 to " PASSWORD_MAX_TEXT " bytes";
		return -1;
	}
	slow_hash_enter();
	if (crypto_pwhash_str(hash, plain, len, PASSWORD_OPSLIMIT, PASSWORD_MEMLIMIT) != 0) {
		slow_hash_leave();
		*error_r = "Argon2id hashing failed (out of memory?)";
		return -1;
	}
	slow_hash_leave();
	if (RAND_bytes(cred->scram_salt, SCRAM_SALT_SIZE) != 1) {
		*error_r = "no random bytes for the SCRAM salt";
		return -1;
	}
	cred->password = xasprintf("{ARGON2ID}%s", hash);
	cred->scram_salt_len = SCRAM_SALT_SIZE;
	cred->scram_iterations = SCRAM_ITERATIONS;
	scram_derive_keys(plain, cred->scram_salt, cred->scram_salt_len,
	    cred->scram_iterations, cred->scram_stored_key, cred->scram_server_key);
	cred->has_scram = 1;
	return 0;
}
