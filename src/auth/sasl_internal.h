/*
 * What the SASL mechanism files share. Not for use outside src/auth/sasl*.c.
 */
#ifndef PETREL_AUTH_SASL_INTERNAL_H
#define PETREL_AUTH_SASL_INTERNAL_H

#include "auth/sasl.h"
#include "core/buf.h"

enum sasl_state {
	SASL_STATE_START,
	SASL_STATE_PLAIN_RESPONSE,     /* PLAIN: empty challenge sent */
	SASL_STATE_LOGIN_USER,         /* LOGIN: "Username:" sent */
	SASL_STATE_LOGIN_PASSWORD,     /* LOGIN: "Password:" sent */
	SASL_STATE_SCRAM_CLIENT_FIRST, /* SCRAM: empty challenge sent */
	SASL_STATE_SCRAM_LOOKUP,       /* SCRAM: waiting for the credentials */
	SASL_STATE_SCRAM_CLIENT_FINAL, /* SCRAM: server-first sent */
	SASL_STATE_SCRAM_ACK,          /* SCRAM: server-final sent */
	SASL_STATE_DONE,               /* no more input accepted */
};

struct sasl {
	enum sasl_mechanism mech;
	enum sasl_state state;
	struct buf challenge;
	char *user;
	char *password;

	/* SCRAM */
	unsigned char secret[SASL_SECRET_SIZE];
	int have_secret;
	char *gs2_header;          /* "n,," and the like */
	char *client_first_bare;
	char *server_first;
	char *nonce;               /* client nonce + server nonce */
	char *test_server_nonce;
	int scram_unknown;         /* fail at the proof */
	unsigned char stored_key[SCRAM_KEY_SIZE];
	unsigned char server_key[SCRAM_KEY_SIZE];
};

/* 1 when s[0..len) is well-formed UTF-8 without NUL. */
int sasl_utf8_valid(const char *s, size_t len);
/* Sets the challenge to s. */
void sasl_set_challenge(struct sasl *sasl, const char *s);

enum sasl_step sasl_scram_start(struct sasl *sasl, const void *data, size_t len);
enum sasl_step sasl_scram_input(struct sasl *sasl, const void *data, size_t len);
void sasl_scram_clear(struct sasl *sasl);

#endif
