/*
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, without channel binding.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "auth/password.h"
#include "auth/sasl_internal.h"
#include "core/base64.h"
#include "core/log.h"
#include "core/parse.h"
#include "core/xmalloc.h"

#define SCRAM_SERVER_NONCE_SIZE 24

static void
scram_hmac(const unsigned char *key, size_t key_len, const void *data, size_t len,
    unsigned char out[SCRAM_KEY_SIZE])
{
	unsigned int out_len;

	if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) == NULL) {
		log_error(NULL, "msg=\"HMAC-SHA-256 failed\"");
		abort();
	}
}

void
sasl_scram_clear(struct sasl *sasl)
{
	free(sasl->gs2_header);
	free(sasl->client_first_bare);
	free(sasl->server_first);
	free(sasl->nonce);
	free(sasl->test_server_nonce);
	sasl->gs2_header = sasl->client_first_bare = sasl->server_first = NULL;
	sasl->nonce = sasl->test_server_nonce = NULL;
	OPENSSL_cleanse(sasl->stored_key, sizeof(sasl->stored_key));
	OPENSSL_cleanse(sasl->server_key, sizeof(sasl->server_key));
}

void
sasl_scram_set_server_nonce(struct sasl *sasl, const char *nonce)
{
	free(sasl->test_server_nonce);
	sasl->test_server_nonce = xstrdup(nonce);
}

/*
 * Reads a saslname (RFC 5802: "=2C" for ',' and "=3D" for '=') from
 * s[0..len) up to the next ',' or the end. Returns the unescaped, allocated
 * name and sets *end_r, or NULL when it is empty, badly escaped, too long or
 * not UTF-8.
 */
static char *
scram_saslname(const char *s, size_t len, size_t *end_r)
{
	struct buf out = BUF_INIT;
	size_t i;

	for (i = 0; i < len && s[i] != ','; i++) {
		if (s[i] == '=') {
			if (len - i < 3)
				goto bad;
			if (s[i + 1] == '2' && s[i + 2] == 'C')
				buf_putc(&out, ',');
			else if (s[i + 1] == '3' && s[i + 2] == 'D')
				buf_putc(&out, '=');
			else
				goto bad;
			i += 2;
		} else
			buf_putc(&out, s[i]);
		if (out.len > SASL_USER_MAX)
			goto bad;
	}
	if (out.len == 0 || !sasl_utf8_valid(out.data, out.len))
		goto bad;
	*end_r = i;
	return buf_steal(&out);
bad:
	buf_free(&out);
	return NULL;
}

/* Length of a nonce at s: printable ASCII but ','. */
static size_t
scram_nonce_len(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i] >= 0x21 && s[i] <= 0x7e && s[i] != ','; i++)
		;
	return i;
}

/*
 * client-first-message = gs2-header client-first-message-bare
 * gs2-header = ("n" / "y" / "p=" cb-name) "," ["a=" saslname] ","
 * client-first-message-bare = ["m=" ext ","] "n=" saslname "," "r=" nonce
 *     ["," extensions]
 */
static enum sasl_step
scram_input_first(struct sasl *sasl, const char *s, size_t len)
{
	char *authzid = NULL;
	size_t i = 0, end, n;

	sasl->state = SASL_STATE_DONE;
	if (memchr(s, '\0', len) != NULL || len < 3)
		return SASL_STEP_MALFORMED;
	/* Channel binding: "p=" means the client wants it, and we offer no
	 * -PLUS mechanism; "y" means it could but thinks we cannot. */
	if ((s[0] != 'n' && s[0] != 'y') || s[1] != ',')
		return SASL_STEP_MALFORMED;
	i = 2;
	if (len - i >= 2 && s[i] == 'a' && s[i + 1] == '=') {
		i += 2;
		if ((authzid = scram_saslname(s + i, len - i, &end)) == NULL)
			return SASL_STEP_MALFORMED;
		i += end;
	}
	if (i >= len || s[i] != ',')
		goto malformed;
	i++;
	sasl->gs2_header = xstrndup(s, i);

	/* The bare message: "m=" must make us fail (RFC 5802 5.1). */
	sasl->client_first_bare = xstrndup(s + i, len - i);
	if (len - i < 2 || s[i] != 'n' || s[i + 1] != '=')
		goto malformed;
	i += 2;
	if ((sasl->user = scram_saslname(s + i, len - i, &end)) == NULL)
		goto malformed;
	i += end;
	if (len - i < 3 || s[i] != ',' || s[i + 1] != 'r' || s[i + 2] != '=')
		goto malformed;
	i += 3;
	n = scram_nonce_len(s + i, len - i);
	/* No extensions after the nonce: we know none. */
	if (n == 0 || n > SASL_NONCE_MAX || i + n != len)
		goto malformed;
	sasl->nonce = xstrndup(s + i, n);

	if (authzid != NULL) {
		int same = strcasecmp(authzid, sasl->user) == 0;

		free(authzid);
		if (!same)
			return SASL_STEP_FAILED;
	}
	sasl->state = SASL_STATE_SCRAM_LOOKUP;
	return SASL_STEP_NEED_SCRAM;
malformed:
	free(authzid);
	return SASL_STEP_MALFORMED;
}

enum sasl_step
sasl_scram_start(struct sasl *sasl, const void *data, size_t len)
{
	if (data == NULL) {
		sasl->state = SASL_STATE_SCRAM_CLIENT_FIRST;
		sasl_set_challenge(sasl, "");
		return SASL_STEP_CHALLENGE;
	}
	return scram_input_first(sasl, data, len);
}

/* The salt of a user we do not know: the same for every attempt at the
 * same name, and unrelated to any real one. */
static void
scram_fake_salt(struct sasl *sasl, unsigned char salt[SCRAM_SALT_SIZE])
{
	unsigned char mac[SCRAM_KEY_SIZE];
	struct buf msg = BUF_INIT;

	buf_puts(&msg, "scram-fake-salt");
	buf_putc(&msg, '\0');
	buf_puts(&msg, sasl->user);
	scram_hmac(sasl->secret, sizeof(sasl->secret), msg.data, msg.len, mac);
	memcpy(salt, mac, SCRAM_SALT_SIZE);
	buf_free(&msg);
}

enum sasl_step
sasl_scram_credentials(struct sasl *sasl, const struct directory_credentials *cred)
{
	unsigned char fake_salt[SCRAM_SALT_SIZE], rnd[SCRAM_SERVER_NONCE_SIZE];
	const unsigned char *salt;
	size_t salt_len;
	uint32_t iterations;
	struct buf b = BUF_INIT;

	if (sasl->state != SASL_STATE_SCRAM_LOOKUP) {
		sasl->state = SASL_STATE_DONE;
		return SASL_STEP_MALFORMED;
	}
	if (cred != NULL && cred->has_scram && cred->scram_salt_len > 0 &&
	    cred->scram_salt_len <= SCRAM_SALT_MAX && cred->scram_iterations > 0) {
		salt = cred->scram_salt;
		salt_len = cred->scram_salt_len;
		iterations = cred->scram_iterations;
		memcpy(sasl->stored_key, cred->scram_stored_key, SCRAM_KEY_SIZE);
		memcpy(sasl->server_key, cred->scram_server_key, SCRAM_KEY_SIZE);
	} else {
		if (!sasl->have_secret) {
			/* Without a secret the fake salt would be guessable. */
			RAND_bytes(sasl->secret, sizeof(sasl->secret));
			sasl->have_secret = 1;
		}
		scram_fake_salt(sasl, fake_salt);
		salt = fake_salt;
		salt_len = sizeof(fake_salt);
		iterations = SCRAM_ITERATIONS;
		RAND_bytes(sasl->stored_key, SCRAM_KEY_SIZE);
		RAND_bytes(sasl->server_key, SCRAM_KEY_SIZE);
		sasl->scram_unknown = 1;
	}

	/* The full nonce: the client's and ours. */
	buf_puts(&b, sasl->nonce);
	if (sasl->test_server_nonce != NULL)
		buf_puts(&b, sasl->test_server_nonce);
	else {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			log_error(NULL, "msg=\"no random bytes for a SCRAM nonce\"");
			abort();
		}
		base64_encode(&b, rnd, sizeof(rnd));
	}
	free(sasl->nonce);
	sasl->nonce = buf_steal(&b);

	buf_printf(&b, "r=%s,s=", sasl->nonce);
	base64_encode(&b, salt, salt_len);
	buf_printf(&b, ",i=%u", (unsigned int)iterations);
	sasl->server_first = buf_steal(&b);
	sasl_set_challenge(sasl, sasl->server_first);
	sasl->state = SASL_STATE_SCRAM_CLIENT_FINAL;
	return SASL_STEP_CHALLENGE;
}

/*
 * client-final-message = "c=" base64(gs2-header) "," "r=" nonce
 *     ["," extensions] "," "p=" base64(proof)
 */
static enum sasl_step
scram_input_final(struct sasl *sasl, const char *s, size_t len)
{
	struct buf cbind = BUF_INIT, proof = BUF_INIT, auth_message = BUF_INIT;
	unsigned char signature[SCRAM_KEY_SIZE], client_key[SCRAM_KEY_SIZE];
	unsigned char stored_key[SCRAM_KEY_SIZE];
	const char *c, *r, *p;
	size_t c_len, r_len, i;
	enum sasl_step ret = SASL_STEP_MALFORMED;
	int ok;

	sasl->state = SASL_STATE_DONE;
	if (memchr(s, '\0', len) != NULL)
		return SASL_STEP_MALFORMED;
	/* Exactly three attributes, in order. */
	if (len < 2 || s[0] != 'c' || s[1] != '=')
		return SASL_STEP_MALFORMED;
	c = s + 2;
	for (i = 2; i < len && s[i] != ','; i++)
		;
	c_len = (size_t)(s + i - c);
	if (len - i < 3 || s[i + 1] != 'r' || s[i + 2] != '=')
		return SASL_STEP_MALFORMED;
	r = s + i + 3;
	for (i += 3; i < len && s[i] != ','; i++)
		;
	r_len = (size_t)(s + i - r);
	if (len - i < 3 || s[i + 1] != 'p' || s[i + 2] != '=')
		return SASL_STEP_MALFORMED;
	p = s + i + 3;
	if (memchr(p, ',', len - (size_t)(p - s)) != NULL)
		return SASL_STEP_MALFORMED;

	/* Without channel binding, c= carries the gs2 header unchanged. */
	if (base64_decode(&cbind, c, c_len) < 0 ||
	    cbind.len != strlen(sasl->gs2_header) ||
	    memcmp(cbind.data, sasl->gs2_header, cbind.len) != 0)
		goto out;
	if (r_len != strlen(sasl->nonce) || memcmp(r, sasl->nonce, r_len) != 0)
		goto out;
	if (base64_decode(&proof, p, len - (size_t)(p - s)) < 0 ||
	    proof.len != SCRAM_KEY_SIZE)
		goto out;

	/* AuthMessage = client-first-bare "," server-first "," client-final
	 * without the proof. */
	buf_printf(&auth_message, "%s,%s,", sasl->client_first_bare, sasl->server_first);
	buf_append(&auth_message, s, (size_t)(p - s) - 3);

	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof
	 * is right when H(ClientKey) is StoredKey. */
	scram_hmac(sasl->stored_key, SCRAM_KEY_SIZE, auth_message.data, auth_message.len,
	    signature);
	for (i = 0; i < SCRAM_KEY_SIZE; i++)
		client_key[i] = (unsigned char)proof.data[i] ^ signature[i];
	SHA256(client_key, sizeof(client_key), stored_key);
	ok = ct_equal(stored_key, sasl->stored_key, SCRAM_KEY_SIZE);
	if (!ok || sasl->scram_unknown) {
		ret = SASL_STEP_FAILED;
		goto out;
	}

	/* server-final-message = "v=" base64(HMAC(ServerKey, AuthMessage)) */
	scram_hmac(sasl->server_key, SCRAM_KEY_SIZE, auth_message.data, auth_message.len,
	    signature);
	buf_reset(&sasl->challenge);
	buf_puts(&sasl->challenge, "v=");
	base64_encode(&sasl->challenge, signature, sizeof(signature));
	sasl->state = SASL_STATE_SCRAM_ACK;
	ret = SASL_STEP_CHALLENGE;
out:
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(signature, sizeof(signature));
	buf_wipe(&proof);
	buf_free(&cbind);
	buf_free(&auth_message);
	return ret;
}

enum sasl_step
sasl_scram_input(struct sasl *sasl, const void *data, size_t len)
{
	switch (sasl->state) {
	case SASL_STATE_SCRAM_CLIENT_FIRST:
		return scram_input_first(sasl, data, len);
	case SASL_STATE_SCRAM_CLIENT_FINAL:
		return scram_input_final(sasl, data, len);
	case SASL_STATE_SCRAM_ACK:
		/* The client acknowledges our server-final with nothing. */
		sasl->state = SASL_STATE_DONE;
		return len == 0 ? SASL_STEP_SUCCESS : SASL_STEP_MALFORMED;
	default:
		break;
	}
	sasl->state = SASL_STATE_DONE;
	return SASL_STEP_MALFORMED;
}
