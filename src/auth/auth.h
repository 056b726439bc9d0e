/*
 * The authentication service, used by every protocol.
 *
 * It runs SASL exchanges (PLAIN, LOGIN, SCRAM-SHA-256) and plain user/password
 * logins (IMAP LOGIN, POP3 USER/PASS), checks passwords on the worker pool,
 * delays failures per client address (2 s doubling to 15 s; IPv6 by /48),
 * answers unknown users and wrong passwords alike in content and timing,
 * remembers successful password checks briefly, and rehashes imported
 * hashes to Argon2id on a successful login.
 *
 * The protocol does the framing ("334 ..." / "+ ..." continuation lines); the
 * service works with the base64 text of each client line and each challenge.
 *
 * The callback is never called from inside an auth_* call: always later, on
 * the loop the request was started on. After auth_request_free() it is never
 * called. The callback may free the request; after a final status nothing
 * but auth_request_user(), auth_request_account_id() and
 * auth_request_free() may be called on it.
 * challenge is set only with AUTH_CONTINUE.
 *
 * SCRAM-SHA-256's server-final message ("v=...") comes as one more
 * AUTH_CONTINUE challenge; the client answers it with an empty line, then
 * AUTH_OK follows. That works in SMTP, IMAP and POP3 alike.
 *
 * Each outcome is logged once, tagged with the session id:
 * event=auth-ok|auth-failed|auth-malformed|auth-cancelled|auth-tempfail with
 * user, mech, ip, and for failures reason= (unknown-user, wrong-password,
 * no-password, no-scram-keys, bad-hash, authzid) and penalty_ms=.
 */
#ifndef PETREL_AUTH_AUTH_H
#define PETREL_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct auth;
struct auth_request;
struct directory;
struct net_loop;

/* Most bytes of decoded SASL data the service accepts in one step. */
#define AUTH_SASL_DATA_MAX 8192

struct auth_settings {
	uint64_t penalty_initial_ms;
	uint64_t penalty_max_ms;
	uint64_t penalty_reset_ms;
	uint64_t cache_ttl_ms;
};

enum auth_status {
	AUTH_CONTINUE,   /* send the challenge (base64, may be "") and read a line */
	AUTH_OK,         /* authenticated: auth_request_user() says who */
	AUTH_FAILED,     /* wrong user or password: one reply for both */
	AUTH_MALFORMED,  /* not valid SASL for the mechanism, bad base64, too long */
	AUTH_CANCELLED,  /* the client sent "*" */
	AUTH_TEMPFAIL,   /* our fault (database error): try again later */
};

typedef void auth_callback(void *ctx, enum auth_status status, const char *challenge);

/* Makes one Argon2id hash (password_init()): call it at start-up. */
struct auth *auth_new(struct directory *dir, const struct auth_settings *settings);
/* Sets the secret that keys the fake SCRAM salts of unknown users; it must
 * be the same across restarts (the daemon keeps it in the data directory).
 * Call before the first request. */
void auth_set_scram_secret(struct auth *auth, const unsigned char *secret, size_t len);
/* Takes new settings (SIGHUP). Callable from any thread. */
void auth_set_settings(struct auth *auth, const struct auth_settings *settings);
/* Every request must have been freed and its work finished (net_workers_free)
 * first. */
void auth_free(struct auth **auth);

/* The mechanisms offered, space-separated ("PLAIN LOGIN SCRAM-SHA-256"). */
const char *auth_mechanisms(void);
/* 1 when name (case-insensitive) is one of them. */
int auth_mechanism_supported(const char *name);

/* Starts a SASL exchange. initial is the initial response in base64 ("=" for
 * an empty one) or NULL when the client sent none. Returns NULL (and no
 * callback) only for an unsupported mechanism. */
struct auth_request *auth_sasl_start(struct auth *auth, struct net_loop *loop,
    const char *mechanism, const char *initial, const char *client_ip,
    const char *session_id, auth_callback *cb, void *ctx);
/* The client's answer to an AUTH_CONTINUE challenge (base64, or "*"; "" and
 * "=" are empty data). Only after AUTH_CONTINUE, once per challenge. */
void auth_sasl_continue(struct auth_request *req, const char *line);

/* A plain user/password login (IMAP LOGIN, POP3 USER/PASS); logged as
 * mech=password. */
struct auth_request *auth_login(struct auth *auth, struct net_loop *loop,
    const char *user, const char *password, const char *client_ip,
    const char *session_id, auth_callback *cb, void *ctx);

/* After AUTH_OK: the account's address and id. */
const char *auth_request_user(const struct auth_request *req);
int64_t auth_request_account_id(const struct auth_request *req);

/* Cancels (no callback after this) and frees. */
void auth_request_free(struct auth_request **req);

#endif
