/*
 * SASL mechanisms as pure state machines: PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login) and SCRAM-SHA-256 (RFC 5802, RFC 7677).
 *
 * A machine takes the decoded client data of one step and says what comes
 * next: a challenge to send, a password to check, SCRAM credentials to look
 * up, success, failure or malformed input. It does no I/O, no base64 and no
 * directory access (auth.c does), so it can be unit-tested step by step.
 *
 * SCRAM-SHA-256 without channel binding only: "n" and "y" gs2 flags are
 * accepted, "p=" is refused (we do not offer -PLUS). Usernames and passwords
 * are taken as UTF-8 bytes without SASLprep normalisation: a client that
 * normalises (most do nothing for ASCII) derives the same keys as we did
 * from the password given to `petrel account passwd`, but a password whose
 * SASLprep form differs from its bytes (e.g. non-NFKC Unicode) only works
 * with PLAIN and LOGIN. Proxy authorization is not supported: an authzid
 * must be empty or name the authenticating user.
 *
 * The SCRAM server-final message ("v=...") is returned as a challenge; the
 * client answers it with empty data, then the machine reports success. That
 * framing works in every protocol (SMTP has no room for data with 235).
 */
#ifndef PETREL_AUTH_SASL_H
#define PETREL_AUTH_SASL_H

#include <stddef.h>
#include <stdint.h>

#include "directory/directory.h"

#define SASL_USER_MAX 1024         /* bytes in a username */
#define SASL_NONCE_MAX 256         /* bytes in a SCRAM client nonce */
#define SASL_SECRET_SIZE 32        /* bytes of the server secret (fake salts) */

enum sasl_mechanism {
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
	SASL_MECH_SCRAM_SHA_256,
};

enum sasl_step {
	SASL_STEP_CHALLENGE,       /* send sasl_challenge(), feed the answer */
	SASL_STEP_CHECK_PASSWORD,  /* check sasl_user()/sasl_password(): the end */
	SASL_STEP_NEED_SCRAM,      /* look up sasl_user(), then sasl_scram_credentials() */
	SASL_STEP_SUCCESS,         /* authenticated as sasl_user() */
	SASL_STEP_FAILED,          /* wrong credentials or refused authzid */
	SASL_STEP_MALFORMED,       /* not valid for the mechanism */
};

struct sasl;

/* The mechanism called name (case-insensitive). Returns 0, or -1 when we do
 * not offer it. */
int sasl_mechanism_lookup(const char *name, enum sasl_mechanism *mech_r);
const char *sasl_mechanism_name(enum sasl_mechanism mech);

/* secret keys the fake SCRAM salts of unknown users (SCRAM only; may be
 * NULL for the others). */
struct sasl *sasl_new(enum sasl_mechanism mech, const unsigned char *secret);
/* Wipes the password and keys and frees. */
void sasl_free(struct sasl **sasl);

/* The first step: data is the initial response, or NULL when the client
 * sent none. */
enum sasl_step sasl_start(struct sasl *sasl, const void *data, size_t len);
/* The client's answer to a challenge. */
enum sasl_step sasl_input(struct sasl *sasl, const void *data, size_t len);

/* After SASL_STEP_CHALLENGE: the raw (not yet base64) challenge. */
const void *sasl_challenge(const struct sasl *sasl, size_t *len_r);
/* The authentication identity as the client sent it (unescaped for SCRAM),
 * NULL before it is known. */
const char *sasl_user(const struct sasl *sasl);
/* After SASL_STEP_CHECK_PASSWORD: the password (NUL-free). */
const char *sasl_password(const struct sasl *sasl);

/* After SASL_STEP_NEED_SCRAM: the user's credentials, or NULL when the user
 * does not exist or has no SCRAM keys. Either way the exchange goes on (with
 * a salt derived from the username and the secret when cred is NULL) and an
 * unknown user fails only at the proof, like a wrong password. */
enum sasl_step sasl_scram_credentials(struct sasl *sasl,
    const struct directory_credentials *cred);

/* For tests: use nonce as the server part of the SCRAM nonce instead of 24
 * random bytes. Call before sasl_scram_credentials(). */
void sasl_scram_set_server_nonce(struct sasl *sasl, const char *nonce);

#endif
