/*
 * The authentication service: drives the SASL machines, checks passwords
 * and looks up accounts on the worker pool, delays failures and caches
 * successes.
 *
 * A request lives on the loop that started it. Its callback is only ever
 * called from its timer (delay 0 for an immediate answer, the penalty for a
 * failure), so it is never called from inside an auth_* call, and freeing
 * the request frees the timer. While work is on the worker pool the request
 * cannot be freed: auth_request_free() marks it and the work's completion
 * frees it.
 */
#include "auth/auth.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "auth/cache.h"
#include "auth/password.h"
#include "auth/penalty.h"
#include "auth/sasl.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/parse.h"
#include "core/xmalloc.h"
#include "directory/directory.h"
#include "net/loop.h"

#define AUTH_PENALTY_ENTRIES 65536
#define AUTH_CACHE_ENTRIES 16384
#define AUTH_SECRET_SIZE 32
/* Base64 characters that decode to AUTH_SASL_DATA_MAX bytes. */
#define AUTH_SASL_LINE_MAX ((AUTH_SASL_DATA_MAX + 2) / 3 * 4)
/* The mechanism name logged for auth_login(). */
#define AUTH_MECH_PASSWORD "password"

struct auth {
	struct directory *dir;
	pthread_mutex_t lock;                   /* guards settings */
	struct auth_settings settings;
	struct penalty *penalty;
	struct auth_cache *cache;
	/* Keys the cache; new at every start. */
	unsigned char secret[AUTH_SECRET_SIZE];
	/* Keys the fake SCRAM salts of unknown users. It must outlive restarts
	 * (auth_set_scram_secret), or an unknown user's salt would change at a
	 * restart while a real user's does not. */
	unsigned char scram_secret[SASL_SECRET_SIZE];
};

enum auth_work_kind {
	AUTH_WORK_NONE,
	AUTH_WORK_PASSWORD,     /* check user/password */
	AUTH_WORK_SCRAM,        /* fetch the user's SCRAM credentials */
};

struct auth_request {
	struct auth *auth;
	struct net_loop *loop;
	auth_callback *cb;
	void *ctx;
	char *client_ip;
	char *session_id;
	const char *mech;
	struct sasl *sasl;              /* NULL for auth_login() */
	struct net_timer *timer;

	int busy;                       /* on the worker pool */
	int freed;                      /* auth_request_free() while busy */
	int want_input;                 /* AUTH_CONTINUE sent, no answer yet */
	int finished;                   /* final status sent or on its timer */

	/* What the timer delivers. */
	enum auth_status deliver_status;
	char *deliver_challenge;

	/* Input of the work. */
	enum auth_work_kind work;
	char *user;                     /* as the client gave it */
	char *password;

	/* Output of the work. */
	enum auth_status result;
	const char *reason;             /* static, for the log */
	char *error;                    /* a database error, for the log */
	int found;                      /* the account exists */
	int has_scram;                  /* ... and has SCRAM keys */
	int cached;                     /* accepted from the cache */
	int rehashed;
	int64_t account_id;
	char *account_address;
	struct directory_credentials scram;
};

/* --- settings and lifetime --------------------------------------------- */

static void
auth_get_settings(struct auth *auth, struct auth_settings *s)
{
	pthread_mutex_lock(&auth->lock);
	*s = auth->settings;
	pthread_mutex_unlock(&auth->lock);
}

struct auth *
auth_new(struct directory *dir, const struct auth_settings *settings)
{
	struct auth *auth = xcalloc(1, sizeof(*auth));

	/* Makes the dummy hash now rather than at the first unknown user. */
	password_init();
	auth->dir = dir;
	pthread_mutex_init(&auth->lock, NULL);
	auth->settings = *settings;
	auth->penalty = penalty_new(AUTH_PENALTY_ENTRIES);
	auth->cache = auth_cache_new(AUTH_CACHE_ENTRIES);
	if (RAND_bytes(auth->secret, sizeof(auth->secret)) != 1 ||
	    RAND_bytes(auth->scram_secret, sizeof(auth->scram_secret)) != 1)
		fatal("no random bytes for the authentication secret");
	return auth;
}

void
auth_set_scram_secret(struct auth *auth, const unsigned char *secret, size_t len)
{
	/* Derived, so any length of stored secret gives a full-size key. */
	SHA256(secret, len, auth->scram_secret);
}

void
auth_set_settings(struct auth *auth, const struct auth_settings *settings)
{
	pthread_mutex_lock(&auth->lock);
	auth->settings = *settings;
	pthread_mutex_unlock(&auth->lock);
	if (settings->cache_ttl_ms == 0)
		auth_cache_clear(auth->cache);
}

void
auth_free(struct auth **auth_p)
{
	struct auth *auth = *auth_p;

	if (auth == NULL)
		return;
	penalty_free(&auth->penalty);
	auth_cache_free(&auth->cache);
	pthread_mutex_destroy(&auth->lock);
	OPENSSL_cleanse(auth, sizeof(*auth));
	free(auth);
	*auth_p = NULL;
}

const char *
auth_mechanisms(void)
{
	return "PLAIN LOGIN SCRAM-SHA-256";
}

int
auth_mechanism_supported(const char *name)
{
	enum sasl_mechanism mech;

	return sasl_mechanism_lookup(name, &mech) == 0;
}

/* --- requests ---------------------------------------------------------- */

static void auth_timer_fire(void *arg);

static struct auth_request *
auth_request_new(struct auth *auth, struct net_loop *loop, const char *client_ip,
    const char *session_id, auth_callback *cb, void *ctx)
{
	struct auth_request *req = xcalloc(1, sizeof(*req));

	req->auth = auth;
	req->loop = loop;
	req->cb = cb;
	req->ctx = ctx;
	req->client_ip = xstrdup(client_ip != NULL ? client_ip : "");
	req->session_id = session_id != NULL ? xstrdup(session_id) : NULL;
	req->timer = net_timer_new(loop, auth_timer_fire, req);
	req->account_id = -1;
	return req;
}

static void
auth_wipe_password(struct auth_request *req)
{
	if (req->password != NULL) {
		OPENSSL_cleanse(req->password, strlen(req->password));
		xfree(&req->password);
	}
}

static void
auth_request_destroy(struct auth_request *req)
{
	net_timer_free(&req->timer);
	sasl_free(&req->sasl);
	auth_wipe_password(req);
	free(req->user);
	free(req->client_ip);
	free(req->session_id);
	free(req->deliver_challenge);
	free(req->error);
	free(req->account_address);
	free(req->scram.password);
	OPENSSL_cleanse(&req->scram, sizeof(req->scram));
	free(req);
}

void
auth_request_free(struct auth_request **req_p)
{
	struct auth_request *req = *req_p;

	if (req == NULL)
		return;
	*req_p = NULL;
	req->cb = NULL;
	if (req->busy) {
		/* The work's completion frees it. */
		net_timer_stop(req->timer);
		req->freed = 1;
		return;
	}
	auth_request_destroy(req);
}

const char *
auth_request_user(const struct auth_request *req)
{
	return req->account_address;
}

int64_t
auth_request_account_id(const struct auth_request *req)
{
	return req->account_id;
}

/* --- answering --------------------------------------------------------- */

static void
auth_timer_fire(void *arg)
{
	struct auth_request *req = arg;
	auth_callback *cb = req->cb;

	if (cb == NULL)
		return;
	if (req->deliver_status == AUTH_CONTINUE)
		req->want_input = 1;
	/* The callback may free req: nothing touches it afterwards. */
	cb(req->ctx, req->deliver_status, req->deliver_challenge);
}

/* Answers after delay_ms, from the loop. */
static void
auth_deliver(struct auth_request *req, enum auth_status status, const char *challenge,
    uint64_t delay_ms)
{
	free(req->deliver_challenge);
	req->deliver_challenge = challenge != NULL ? xstrdup(challenge) : NULL;
	req->deliver_status = status;
	if (status != AUTH_CONTINUE)
		req->finished = 1;
	net_timer_start(req->timer, delay_ms);
}

/* A user name made safe for the log. */
static const char *
auth_log_user(const struct auth_request *req, char *out, size_t outsize)
{
	const char *user = req->account_address != NULL ? req->account_address : req->user;

	return log_quote(out, outsize, user != NULL ? user : "", DIRECTORY_ADDRESS_MAX);
}

static void
auth_finish_ok(struct auth_request *req)
{
	char user[DIRECTORY_ADDRESS_MAX + 3], ip[64];

	penalty_success(req->auth->penalty, req->client_ip);
	log_info(req->session_id, "event=auth-ok user=%s mech=%s ip=%s%s%s",
	    auth_log_user(req, user, sizeof(user)), req->mech,
	    log_quote(ip, sizeof(ip), req->client_ip, 48),
	    req->cached ? " cached=yes" : "", req->rehashed ? " rehashed=yes" : "");
	auth_deliver(req, AUTH_OK, NULL, 0);
}

static void
auth_finish_failed(struct auth_request *req, const char *reason)
{
	struct auth_settings s;
	char user[DIRECTORY_ADDRESS_MAX + 3], ip[64];
	uint64_t delay;

	auth_get_settings(req->auth, &s);
	delay = penalty_fail(req->auth->penalty, req->client_ip, net_now_ms(),
	    s.penalty_initial_ms, s.penalty_max_ms, s.penalty_reset_ms);
	log_info(req->session_id, "event=auth-failed user=%s mech=%s ip=%s reason=%s "
	    "penalty_ms=%llu", auth_log_user(req, user, sizeof(user)), req->mech,
	    log_quote(ip, sizeof(ip), req->client_ip, 48), reason,
	    (unsigned long long)delay);
	auth_deliver(req, AUTH_FAILED, NULL, delay);
}

/* Malformed input, a cancel or our own failure: answered at once. */
static void
auth_finish_other(struct auth_request *req, enum auth_status status, const char *detail)
{
	char user[DIRECTORY_ADDRESS_MAX + 3], ip[64], quoted[256];
	const char *event;

	switch (status) {
	case AUTH_MALFORMED:
		event = "auth-malformed";
		break;
	case AUTH_CANCELLED:
		event = "auth-cancelled";
		break;
	default:
		event = "auth-tempfail";
		break;
	}
	if (status == AUTH_TEMPFAIL)
		log_warn(req->session_id, "event=%s user=%s mech=%s ip=%s error=%s", event,
		    auth_log_user(req, user, sizeof(user)), req->mech,
		    log_quote(ip, sizeof(ip), req->client_ip, 48),
		    log_quote(quoted, sizeof(quoted), detail != NULL ? detail : "", 200));
	else
		log_info(req->session_id, "event=%s user=%s mech=%s ip=%s", event,
		    auth_log_user(req, user, sizeof(user)), req->mech,
		    log_quote(ip, sizeof(ip), req->client_ip, 48));
	auth_deliver(req, status, NULL, 0);
}

/* --- work on the worker pool -------------------------------------------- */

/* HMAC-SHA-256 under the process secret of the parts, each followed by a
 * NUL so that ("ab", "c") and ("a", "bc") differ. */
static void
auth_digest(const struct auth *auth, const char *a, const char *b,
    unsigned char out[AUTH_CACHE_DIGEST_SIZE])
{
	struct buf msg = BUF_INIT;
	unsigned int len;

	buf_puts(&msg, a);
	buf_putc(&msg, '\0');
	if (b != NULL) {
		buf_puts(&msg, b);
		buf_putc(&msg, '\0');
	}
	if (HMAC(EVP_sha256(), auth->secret, sizeof(auth->secret),
	    (const unsigned char *)msg.data, msg.len, out, &len) == NULL) {
		log_error(NULL, "msg=\"HMAC-SHA-256 failed\"");
		abort();
	}
	buf_wipe(&msg);
}

static void
auth_work_set_error(struct auth_request *req, const char *error)
{
	free(req->error);
	req->error = xstrdup(error != NULL ? error : "unknown error");
	req->result = AUTH_TEMPFAIL;
}

/* After a successful check of a hash that is not our current Argon2id (or
 * an account without SCRAM keys): store new credentials, unless someone
 * changed the password meanwhile. Never fails the login. */
static void
auth_work_rehash(struct auth_request *req, struct directory_account *account)
{
	struct directory_credentials cred;
	const char *error;
	int r;

	if (password_make_credentials(req->password, &cred, &error) < 0) {
		log_warn(req->session_id, "event=rehash-failed account=%lld error=\"%s\"",
		    (long long)account->id, error);
		return;
	}
	r = directory_account_upgrade_credentials(req->auth->dir, account->id,
	    account->cred.password, &cred, &error);
	if (r < 0) {
		char quoted[256];

		log_warn(req->session_id, "event=rehash-failed account=%lld error=%s",
		    (long long)account->id, log_quote(quoted, sizeof(quoted),
		    error != NULL ? error : "", 200));
	} else if (r > 0) {
		req->rehashed = 1;
		/* The account now holds the new hash: what the cache compares. */
		free(account->cred.password);
		account->cred.password = cred.password;
		cred.password = NULL;
	}
	free(cred.password);
	OPENSSL_cleanse(&cred, sizeof(cred));
}

static void
auth_work_password(struct auth_request *req)
{
	struct auth *auth = req->auth;
	struct directory_account account;
	struct auth_settings s;
	unsigned char key[AUTH_CACHE_DIGEST_SIZE], stored[AUTH_CACHE_DIGEST_SIZE];
	unsigned char cached_stored[AUTH_CACHE_DIGEST_SIZE];
	int64_t cached_id = -1;
	int hit = 0, r;
	const char *error = NULL;
	char *address;

	memset(&account, 0, sizeof(account));
	req->result = AUTH_FAILED;
	if ((address = directory_normalize_address(req->user)) == NULL) {
		/* Cannot be an account: still burn the time of a check. */
		password_verify_dummy(req->password);
		req->reason = "unknown-user";
		return;
	}
	req->account_address = address;

	auth_get_settings(auth, &s);
	if (s.cache_ttl_ms > 0) {
		auth_digest(auth, address, req->password, key);
		hit = auth_cache_lookup(auth->cache, key, net_now_ms(), &cached_id,
		    cached_stored);
	}

	r = directory_account_get(auth->dir, address, &account, &error);
	if (r < 0) {
		auth_work_set_error(req, error);
		goto out;
	}
	if (r == 0 || account.cred.password == NULL) {
		password_verify_dummy(req->password);
		req->reason = r == 0 ? "unknown-user" : "no-password";
		req->found = r > 0;
		goto out;
	}
	req->found = 1;

	if (hit) {
		/* Only while the account still has the hash we checked. */
		auth_digest(auth, account.cred.password, NULL, stored);
		if (cached_id == account.id && ct_equal(stored, cached_stored, sizeof(stored))) {
			req->cached = 1;
			req->result = AUTH_OK;
			req->account_id = account.id;
			goto out;
		}
		auth_cache_remove(auth->cache, key);
	}

	switch (password_verify(account.cred.password, req->password)) {
	case 1:
		break;
	case 0:
		req->reason = "wrong-password";
		goto out;
	default:
		log_error(req->session_id, "event=bad-password-hash account=%lld "
		    "msg=\"unsupported or malformed password hash\"", (long long)account.id);
		password_verify_dummy(req->password);
		req->reason = "bad-hash";
		goto out;
	}
	req->result = AUTH_OK;
	req->account_id = account.id;
	if (password_needs_rehash(account.cred.password) || !account.cred.has_scram)
		auth_work_rehash(req, &account);
	if (s.cache_ttl_ms > 0) {
		auth_digest(auth, account.cred.password, NULL, stored);
		auth_cache_insert(auth->cache, key, account.id, stored,
		    net_now_ms() + s.cache_ttl_ms);
	}
out:
	if (req->result == AUTH_OK && account.address != NULL) {
		free(req->account_address);
		req->account_address = xstrdup(account.address);
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(cached_stored, sizeof(cached_stored));
	directory_account_clear(&account);
}

static void
auth_work_scram(struct auth_request *req)
{
	struct directory_account account;
	const char *error = NULL;
	char *address;
	int r;

	memset(&account, 0, sizeof(account));
	req->result = AUTH_CONTINUE;
	if ((address = directory_normalize_address(req->user)) == NULL)
		return;
	req->account_address = address;
	r = directory_account_get(req->auth->dir, address, &account, &error);
	if (r < 0) {
		auth_work_set_error(req, error);
		return;
	}
	if (r > 0) {
		req->found = 1;
		req->account_id = account.id;
		free(req->account_address);
		req->account_address = xstrdup(account.address);
		req->scram = account.cred;
		req->has_scram = account.cred.has_scram;
		/* Only the SCRAM part is kept. */
		req->scram.password = NULL;
	}
	directory_account_clear(&account);
}

static void
auth_work(void *arg)
{
	struct auth_request *req = arg;

	if (req->work == AUTH_WORK_PASSWORD)
		auth_work_password(req);
	else
		auth_work_scram(req);
	auth_wipe_password(req);
}

static void auth_step(struct auth_request *req, enum sasl_step step);

static void
auth_work_done(void *arg)
{
	struct auth_request *req = arg;

	req->busy = 0;
	if (req->freed) {
		auth_request_destroy(req);
		return;
	}
	if (req->result == AUTH_TEMPFAIL) {
		auth_finish_other(req, AUTH_TEMPFAIL, req->error);
		return;
	}
	if (req->work == AUTH_WORK_SCRAM) {
		enum sasl_step step;

		step = sasl_scram_credentials(req->sasl, req->has_scram ? &req->scram : NULL);
		OPENSSL_cleanse(&req->scram, sizeof(req->scram));
		auth_step(req, step);
		return;
	}
	if (req->result == AUTH_OK)
		auth_finish_ok(req);
	else
		auth_finish_failed(req, req->reason != NULL ? req->reason : "wrong-password");
}

static void
auth_submit(struct auth_request *req, enum auth_work_kind kind)
{
	req->work = kind;
	req->busy = 1;
	net_loop_submit(req->loop, auth_work, auth_work_done, req);
}

/* --- the SASL exchange ------------------------------------------------- */

static void
auth_step(struct auth_request *req, enum sasl_step step)
{
	struct buf b = BUF_INIT;
	const void *challenge;
	size_t len;

	switch (step) {
	case SASL_STEP_CHALLENGE:
		challenge = sasl_challenge(req->sasl, &len);
		/* Encoding nothing leaves a buffer without its NUL. */
		if (len > 0)
			base64_encode(&b, challenge, len);
		auth_deliver(req, AUTH_CONTINUE, len > 0 ? buf_cstr(&b) : "", 0);
		buf_free(&b);
		return;
	case SASL_STEP_CHECK_PASSWORD:
		free(req->user);
		req->user = xstrdup(sasl_user(req->sasl));
		req->password = xstrdup(sasl_password(req->sasl));
		auth_submit(req, AUTH_WORK_PASSWORD);
		return;
	case SASL_STEP_NEED_SCRAM:
		free(req->user);
		req->user = xstrdup(sasl_user(req->sasl));
		auth_submit(req, AUTH_WORK_SCRAM);
		return;
	case SASL_STEP_SUCCESS:
		auth_finish_ok(req);
		return;
	case SASL_STEP_FAILED:
		if (req->user == NULL && sasl_user(req->sasl) != NULL)
			req->user = xstrdup(sasl_user(req->sasl));
		if (req->work == AUTH_WORK_SCRAM && !req->found)
			auth_finish_failed(req, "unknown-user");
		else if (req->work == AUTH_WORK_SCRAM && !req->has_scram)
			auth_finish_failed(req, "no-scram-keys");
		else if (req->work == AUTH_WORK_SCRAM)
			auth_finish_failed(req, "wrong-password");
		else
			auth_finish_failed(req, "authzid");
		return;
	case SASL_STEP_MALFORMED:
		auth_finish_other(req, AUTH_MALFORMED, NULL);
		return;
	}
}

/* Decodes a client line: "" and "=" are empty data. Returns 0 or -1. */
static int
auth_decode(const char *line, struct buf *out)
{
	size_t len = strlen(line);

	if (len == 0 || strcmp(line, "=") == 0)
		return 0;
	if (len > AUTH_SASL_LINE_MAX)
		return -1;
	if (base64_decode(out, line, len) < 0)
		return -1;
	return out->len <= AUTH_SASL_DATA_MAX ? 0 : -1;
}

struct auth_request *
auth_sasl_start(struct auth *auth, struct net_loop *loop, const char *mechanism,
    const char *initial, const char *client_ip, const char *session_id,
    auth_callback *cb, void *ctx)
{
	struct auth_request *req;
	enum sasl_mechanism mech;
	struct buf data = BUF_INIT;

	if (sasl_mechanism_lookup(mechanism, &mech) < 0)
		return NULL;
	req = auth_request_new(auth, loop, client_ip, session_id, cb, ctx);
	req->mech = sasl_mechanism_name(mech);
	req->sasl = sasl_new(mech, auth->scram_secret);
	if (initial == NULL)
		auth_step(req, sasl_start(req->sasl, NULL, 0));
	else if (auth_decode(initial, &data) < 0)
		auth_finish_other(req, AUTH_MALFORMED, NULL);
	else
		auth_step(req, sasl_start(req->sasl, buf_cstr(&data), data.len));
	buf_wipe(&data);
	return req;
}

void
auth_sasl_continue(struct auth_request *req, const char *line)
{
	struct buf data = BUF_INIT;

	if (req->sasl == NULL || !req->want_input || req->finished || req->busy) {
		log_error(req->session_id, "msg=\"auth_sasl_continue() out of turn\"");
		return;
	}
	req->want_input = 0;
	if (strcmp(line, "*") == 0)
		auth_finish_other(req, AUTH_CANCELLED, NULL);
	else if (auth_decode(line, &data) < 0)
		auth_finish_other(req, AUTH_MALFORMED, NULL);
	else
		auth_step(req, sasl_input(req->sasl, buf_cstr(&data), data.len));
	buf_wipe(&data);
}

struct auth_request *
auth_login(struct auth *auth, struct net_loop *loop, const char *user,
    const char *password, const char *client_ip, const char *session_id,
    auth_callback *cb, void *ctx)
{
	struct auth_request *req;
	size_t user_len = strlen(user), password_len = strlen(password);

	req = auth_request_new(auth, loop, client_ip, session_id, cb, ctx);
	req->mech = AUTH_MECH_PASSWORD;
	req->user = xstrndup(user, user_len > SASL_USER_MAX ? SASL_USER_MAX : user_len);
	if (user_len == 0 || user_len > SASL_USER_MAX || password_len == 0 ||
	    password_len > PASSWORD_MAX) {
		auth_finish_other(req, AUTH_MALFORMED, NULL);
		return req;
	}
	req->password = xstrdup(password);
	auth_submit(req, AUTH_WORK_PASSWORD);
	return req;
}
