/*
 * The SASL machines' common part, PLAIN (RFC 4616) and LOGIN.
 */
#include "auth/sasl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth/password.h"
#include "auth/sasl_internal.h"
#include "core/xmalloc.h"

static const struct {
	const char *name;
	enum sasl_mechanism mech;
} sasl_mechanisms[] = {
	{ "PLAIN", SASL_MECH_PLAIN },
	{ "LOGIN", SASL_MECH_LOGIN },
	{ "SCRAM-SHA-256", SASL_MECH_SCRAM_SHA_256 },
};

int
sasl_mechanism_lookup(const char *name, enum sasl_mechanism *mech_r)
{
	size_t i;

	for (i = 0; i < sizeof(sasl_mechanisms) / sizeof(sasl_mechanisms[0]); i++) {
		if (strcasecmp(name, sasl_mechanisms[i].name) == 0) {
			*mech_r = sasl_mechanisms[i].mech;
			return 0;
		}
	}
	return -1;
}

const char *
sasl_mechanism_name(enum sasl_mechanism mech)
{
	size_t i;

	for (i = 0; i < sizeof(sasl_mechanisms) / sizeof(sasl_mechanisms[0]); i++) {
		if (sasl_mechanisms[i].mech == mech)
			return sasl_mechanisms[i].name;
	}
	return "?";
}

int
sasl_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (p[i] == 0)
			return 0;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			n = 1;
			cp = p[i] & 0x1f;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			n = 2;
			cp = p[i] & 0x0f;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			n = 3;
			cp = p[i] & 0x07;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

void
sasl_set_challenge(struct sasl *sasl, const char *s)
{
	buf_reset(&sasl->challenge);
	buf_puts(&sasl->challenge, s);
}

struct sasl *
sasl_new(enum sasl_mechanism mech, const unsigned char *secret)
{
	struct sasl *sasl = xcalloc(1, sizeof(*sasl));

	sasl->mech = mech;
	sasl->state = SASL_STATE_START;
	if (secret != NULL) {
		memcpy(sasl->secret, secret, SASL_SECRET_SIZE);
		sasl->have_secret = 1;
	}
	return sasl;
}

static void
sasl_wipe_password(struct sasl *sasl)
{
	if (sasl->password != NULL) {
		OPENSSL_cleanse(sasl->password, strlen(sasl->password));
		xfree(&sasl->password);
	}
}

void
sasl_free(struct sasl **sasl_p)
{
	struct sasl *sasl = *sasl_p;

	if (sasl == NULL)
		return;
	sasl_wipe_password(sasl);
	sasl_scram_clear(sasl);
	buf_wipe(&sasl->challenge);
	free(sasl->user);
	OPENSSL_cleanse(sasl, sizeof(*sasl));
	free(sasl);
	*sasl_p = NULL;
}

/* A username from PLAIN or LOGIN: non-empty, bounded, UTF-8. */
static int
sasl_user_valid(const char *s, size_t len)
{
	return len > 0 && len <= SASL_USER_MAX && sasl_utf8_valid(s, len);
}

/* A password: non-empty, bounded, no NUL. Not required to be UTF-8: hashes
 * imported from older systems may have been made from other charsets. */
static int
sasl_password_valid(const char *s, size_t len)
{
	return len > 0 && len <= PASSWORD_MAX && memchr(s, '\0', len) == NULL;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd. */
static enum sasl_step
sasl_plain_response(struct sasl *sasl, const char *data, size_t len)
{
	const char *nul1, *nul2, *authcid, *passwd;
	size_t authzid_len, authcid_len, passwd_len;

	sasl->state = SASL_STATE_DONE;
	if ((nul1 = memchr(data, '\0', len)) == NULL)
		return SASL_STEP_MALFORMED;
	authcid = nul1 + 1;
	if ((nul2 = memchr(authcid, '\0', len - (size_t)(authcid - data))) == NULL)
		return SASL_STEP_MALFORMED;
	passwd = nul2 + 1;
	authzid_len = (size_t)(nul1 - data);
	authcid_len = (size_t)(nul2 - authcid);
	passwd_len = len - (size_t)(passwd - data);
	/* A third NUL lands in passwd and is refused there. */
	if (!sasl_user_valid(authcid, authcid_len) ||
	    !sasl_password_valid(passwd, passwd_len) ||
	    (authzid_len > 0 && !sasl_user_valid(data, authzid_len)))
		return SASL_STEP_MALFORMED;
	sasl->user = xstrndup(authcid, authcid_len);
	/* No proxy authorization: an authzid must name the user himself. */
	if (authzid_len > 0 && (authzid_len != authcid_len ||
	    strncasecmp(data, authcid, authcid_len) != 0))
		return SASL_STEP_FAILED;
	sasl->password = xstrndup(passwd, passwd_len);
	return SASL_STEP_CHECK_PASSWORD;
}

static enum sasl_step
sasl_login_user(struct sasl *sasl, const char *data, size_t len)
{
	if (!sasl_user_valid(data, len)) {
		sasl->state = SASL_STATE_DONE;
		return SASL_STEP_MALFORMED;
	}
	sasl->user = xstrndup(data, len);
	sasl->state = SASL_STATE_LOGIN_PASSWORD;
	sasl_set_challenge(sasl, "Password:");
	return SASL_STEP_CHALLENGE;
}

static enum sasl_step
sasl_login_password(struct sasl *sasl, const char *data, size_t len)
{
	sasl->state = SASL_STATE_DONE;
	if (!sasl_password_valid(data, len))
		return SASL_STEP_MALFORMED;
	sasl->password = xstrndup(data, len);
	return SASL_STEP_CHECK_PASSWORD;
}

enum sasl_step
sasl_start(struct sasl *sasl, const void *data, size_t len)
{
	if (sasl->state != SASL_STATE_START) {
		sasl->state = SASL_STATE_DONE;
		return SASL_STEP_MALFORMED;
	}
	switch (sasl->mech) {
	case SASL_MECH_PLAIN:
		if (data != NULL)
			return sasl_plain_response(sasl, data, len);
		sasl->state = SASL_STATE_PLAIN_RESPONSE;
		sasl_set_challenge(sasl, "");
		return SASL_STEP_CHALLENGE;
	case SASL_MECH_LOGIN:
		/* An empty initial response is taken as none. */
		if (data != NULL && len > 0)
			return sasl_login_user(sasl, data, len);
		sasl->state = SASL_STATE_LOGIN_USER;
		sasl_set_challenge(sasl, "Username:");
		return SASL_STEP_CHALLENGE;
	case SASL_MECH_SCRAM_SHA_256:
		return sasl_scram_start(sasl, data, len);
	}
	sasl->state = SASL_STATE_DONE;
	return SASL_STEP_MALFORMED;
}

enum sasl_step
sasl_input(struct sasl *sasl, const void *data, size_t len)
{
	if (data == NULL)
		data = "";
	switch (sasl->state) {
	case SASL_STATE_PLAIN_RESPONSE:
		return sasl_plain_response(sasl, data, len);
	case SASL_STATE_LOGIN_USER:
		return sasl_login_user(sasl, data, len);
	case SASL_STATE_LOGIN_PASSWORD:
		return sasl_login_password(sasl, data, len);
	case SASL_STATE_SCRAM_CLIENT_FIRST:
	case SASL_STATE_SCRAM_CLIENT_FINAL:
	case SASL_STATE_SCRAM_ACK:
		return sasl_scram_input(sasl, data, len);
	case SASL_STATE_START:
	case SASL_STATE_SCRAM_LOOKUP:
	case SASL_STATE_DONE:
		break;
	}
	sasl->state = SASL_STATE_DONE;
	return SASL_STEP_MALFORMED;
}

const void *
sasl_challenge(const struct sasl *sasl, size_t *len_r)
{
	*len_r = sasl->challenge.len;
	return buf_cstr(&sasl->challenge);
}

const char *
sasl_user(const struct sasl *sasl)
{
	return sasl->user;
}

const char *
sasl_password(const struct sasl *sasl)
{
	return sasl->password;
}
