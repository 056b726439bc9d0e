/*
 * Unit tests of the authentication service: the penalty arithmetic and
 * address grouping, the bounded tables, and auth.c end to end on a real
 * net_loop with a directory in a temporary folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/auth.h"
#include "auth/cache.h"
#include "auth/lru.h"
#include "auth/password.h"
#include "auth/penalty.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/log.h"
#include "directory/directory.h"
#include "net/loop.h"

/* --- penalties ---------------------------------------------------------- */

static void
test_penalty_delay(void **state)
{
	assert_int_equal(penalty_delay(2000, 15000, 0), 0);
	assert_int_equal(penalty_delay(2000, 15000, 1), 2000);
	assert_int_equal(penalty_delay(2000, 15000, 2), 4000);
	assert_int_equal(penalty_delay(2000, 15000, 3), 8000);
	assert_int_equal(penalty_delay(2000, 15000, 4), 15000);
	assert_int_equal(penalty_delay(2000, 15000, 63), 15000);
	assert_int_equal(penalty_delay(2000, 15000, 64), 15000);
	assert_int_equal(penalty_delay(2000, 15000, 65), 15000);
	assert_int_equal(penalty_delay(2000, 15000, UINT32_MAX), 15000);
	assert_int_equal(penalty_delay(2000, 16000, 4), 16000);
	assert_int_equal(penalty_delay(0, 15000, 5), 0);
	assert_int_equal(penalty_delay(1, UINT64_MAX, 64), (uint64_t)1 << 63);
	assert_int_equal(penalty_delay(3, UINT64_MAX, 64), UINT64_MAX);
	assert_int_equal(penalty_delay(UINT64_MAX, UINT64_MAX, 2), UINT64_MAX);
	/* A max below initial wins. */
	assert_int_equal(penalty_delay(2000, 1000, 1), 1000);
}

static size_t
key_of(const char *ip, unsigned char key[PENALTY_KEY_MAX])
{
	memset(key, 0xee, PENALTY_KEY_MAX);
	return penalty_key(ip, key);
}

static int
same_key(const char *a, const char *b)
{
	unsigned char ka[PENALTY_KEY_MAX], kb[PENALTY_KEY_MAX];
	size_t la = key_of(a, ka), lb = key_of(b, kb);

	return la == lb && memcmp(ka, kb, la) == 0;
}

static void
test_penalty_key(void **state)
{
	assert_true(same_key("192.0.2.1", "192.0.2.1"));
	assert_false(same_key("192.0.2.1", "192.0.2.2"));
	assert_true(same_key("192.0.2.1", "::ffff:192.0.2.1"));
	assert_false(same_key("192.0.2.1", "::ffff:192.0.2.2"));
	/* One /48 is one site. */
	assert_true(same_key("2001:db8:1::1", "2001:db8:1:ffff:ffff:ffff:ffff:ffff"));
	assert_true(same_key("2001:db8:1::1", "2001:0DB8:0001:0002::"));
	assert_false(same_key("2001:db8:1::1", "2001:db8:2::1"));
	assert_false(same_key("2001:db8::1", "2001:db9::1"));
	/* IPv4 and IPv6 whose bytes look alike stay apart. */
	assert_false(same_key("32.1.13.184", "2001:db8::"));
	/* Garbage shares one key, distinct from real addresses. */
	assert_true(same_key("garbage", ""));
	assert_true(same_key("garbage", NULL));
	assert_false(same_key("garbage", "0.0.0.0"));
}

static void
test_penalty_table(void **state)
{
	struct penalty *p = penalty_new(1000);
	const uint64_t I = 2000, M = 15000, R = 60000;

	assert_int_equal(penalty_fail(p, "192.0.2.1", 1000, I, M, R), 2000);
	assert_int_equal(penalty_fail(p, "192.0.2.1", 2000, I, M, R), 4000);
	assert_int_equal(penalty_fail(p, "192.0.2.1", 3000, I, M, R), 8000);
	assert_int_equal(penalty_fail(p, "192.0.2.1", 4000, I, M, R), 15000);
	assert_int_equal(penalty_fail(p, "192.0.2.1", 5000, I, M, R), 15000);
	assert_int_equal(penalty_failures(p, "192.0.2.1", 5000, R), 5);
	/* Another address is not affected. */
	assert_int_equal(penalty_fail(p, "192.0.2.2", 5000, I, M, R), 2000);
	/* The /48 shares a count. */
	assert_int_equal(penalty_fail(p, "2001:db8:1::1", 5000, I, M, R), 2000);
	assert_int_equal(penalty_fail(p, "2001:db8:1:2::3", 5000, I, M, R), 4000);
	/* Forgotten after R quiet milliseconds, not a millisecond earlier. */
	assert_int_equal(penalty_failures(p, "192.0.2.1", 5000 + R - 1, R), 5);
	assert_int_equal(penalty_failures(p, "192.0.2.1", 5000 + R, R), 0);
	assert_int_equal(penalty_fail(p, "192.0.2.1", 5000 + R - 1, I, M, R), 15000);
	assert_int_equal(penalty_fail(p, "192.0.2.1", 5000 + 2 * R, I, M, R), 2000);
	/* A success forgets the count. */
	assert_int_equal(penalty_fail(p, "192.0.2.1", 5000 + 2 * R, I, M, R), 4000);
	penalty_success(p, "192.0.2.1");
	assert_int_equal(penalty_failures(p, "192.0.2.1", 5000 + 2 * R, R), 0);
	assert_int_equal(penalty_fail(p, "192.0.2.1", 5000 + 2 * R, I, M, R), 2000);
	penalty_success(p, "198.51.100.1");
	/* Quiet entries are dropped when failures come in. */
	assert_int_equal(penalty_fail(p, "198.51.100.7", 100000000, I, M, R), 2000);
	assert_int_equal(penalty_count(p), 1);
	penalty_free(&p);
	assert_null(p);
}

static void
test_penalty_bounded(void **state)
{
	struct penalty *p = penalty_new(4);
	char ip[32];
	int i;

	for (i = 1; i <= 5; i++) {
		snprintf(ip, sizeof(ip), "10.0.0.%d", i);
		assert_int_equal(penalty_fail(p, ip, 1000 + i, 10, 100, 60000), 10);
	}
	assert_int_equal(penalty_count(p), 4);
	/* The oldest went. */
	assert_int_equal(penalty_failures(p, "10.0.0.1", 2000, 60000), 0);
	assert_int_equal(penalty_failures(p, "10.0.0.2", 2000, 60000), 1);
	/* A new failure makes an address the newest: 10.0.0.3 goes next. */
	assert_int_equal(penalty_fail(p, "10.0.0.2", 2000, 10, 100, 60000), 20);
	assert_int_equal(penalty_fail(p, "10.0.0.6", 2000, 10, 100, 60000), 10);
	assert_int_equal(penalty_failures(p, "10.0.0.3", 2000, 60000), 0);
	assert_int_equal(penalty_failures(p, "10.0.0.2", 2000, 60000), 2);
	penalty_free(&p);
}

/* --- tables ------------------------------------------------------------- */

struct test_entry {
	struct auth_lru_entry lru;
	int value;
};

static void
test_lru(void **state)
{
	struct auth_lru *lru = auth_lru_new(100, sizeof(struct test_entry));
	struct test_entry *e;
	int i, j;

	for (i = 0; i < 1000; i++) {
		e = auth_lru_put(lru, &i, sizeof(i));
		assert_int_equal(e->value, 0);
		e->value = i + 1;
	}
	assert_int_equal(auth_lru_count(lru), 100);
	for (i = 0; i < 1000; i++) {
		e = auth_lru_get(lru, &i, sizeof(i));
		if (i < 900)
			assert_null(e);
		else
			assert_int_equal(e->value, i + 1);
	}
	e = auth_lru_oldest(lru);
	assert_int_equal(e->value, 901);
	i = 900;
	auth_lru_touch(lru, auth_lru_get(lru, &i, sizeof(i)));
	e = auth_lru_oldest(lru);
	assert_int_equal(e->value, 902);
	for (i = 950; i < 960; i++)
		auth_lru_remove(lru, auth_lru_get(lru, &i, sizeof(i)));
	assert_int_equal(auth_lru_count(lru), 90);
	j = 955;
	assert_null(auth_lru_get(lru, &j, sizeof(j)));
	auth_lru_clear(lru);
	assert_int_equal(auth_lru_count(lru), 0);
	assert_null(auth_lru_oldest(lru));
	auth_lru_free(&lru);
	assert_null(lru);
}

static void
test_cache(void **state)
{
	struct auth_cache *cache = auth_cache_new(2);
	unsigned char k1[32], k2[32], k3[32], s1[32], out[32];
	int64_t id;

	memset(k1, 1, 32);
	memset(k2, 2, 32);
	memset(k3, 3, 32);
	memset(s1, 9, 32);
	assert_int_equal(auth_cache_lookup(cache, k1, 0, &id, out), 0);
	auth_cache_insert(cache, k1, 42, s1, 1000);
	assert_int_equal(auth_cache_lookup(cache, k1, 999, &id, out), 1);
	assert_int_equal(id, 42);
	assert_memory_equal(out, s1, 32);
	/* Expired: a miss, and gone. */
	assert_int_equal(auth_cache_lookup(cache, k1, 1000, &id, out), 0);
	assert_int_equal(auth_cache_count(cache), 0);
	/* Bounded. */
	auth_cache_insert(cache, k1, 1, s1, 1000);
	auth_cache_insert(cache, k2, 2, s1, 1000);
	auth_cache_insert(cache, k3, 3, s1, 1000);
	assert_int_equal(auth_cache_count(cache), 2);
	assert_int_equal(auth_cache_lookup(cache, k1, 0, &id, out), 0);
	assert_int_equal(auth_cache_lookup(cache, k3, 0, &id, out), 1);
	assert_int_equal(id, 3);
	auth_cache_remove(cache, k3);
	assert_int_equal(auth_cache_lookup(cache, k3, 0, &id, out), 0);
	auth_cache_clear(cache);
	assert_int_equal(auth_cache_count(cache), 0);
	auth_cache_free(&cache);
}

/* --- the service, end to end ------------------------------------------- */

#define SHA512_PENCIL "{SHA512-CRYPT}$6$abcdefgh$BPABm5D7ZFU2YVfMLyE5XRqe91qwdcZ6APg7kB/" \
	"YBeADxUUqXXhg3mlHBbjpyHcrE9xl/9BuqqivCjN2qGEi30"

struct fixture {
	char dir_path[64];
	char db_path[128];
	struct directory *dir;
	struct net_workers *workers;
	struct net_loop *loop;
	struct auth *auth;
	struct auth_settings settings;
	int64_t alice_id;
};

/* What a callback saw. */
struct result {
	struct fixture *f;
	int calls;
	enum auth_status status;
	char challenge[1024];
	char user[DIRECTORY_ADDRESS_MAX + 1];
	int64_t account_id;
	struct auth_request **req;  /* freed from the callback when final */
	uint64_t at_ms;
};

static int inside_auth_call;

static void
on_result(void *ctx, enum auth_status status, const char *challenge)
{
	struct result *r = ctx;

	/* Never from inside an auth_* call. */
	assert_int_equal(inside_auth_call, 0);
	r->calls++;
	r->status = status;
	r->at_ms = net_now_ms();
	r->challenge[0] = '\0';
	if (challenge != NULL) {
		assert_true(strlen(challenge) < sizeof(r->challenge));
		strcpy(r->challenge, challenge);
	}
	if (status == AUTH_OK) {
		snprintf(r->user, sizeof(r->user), "%s", auth_request_user(*r->req));
		r->account_id = auth_request_account_id(*r->req);
	}
	/* Like a protocol: free the request from its own callback. */
	if (status != AUTH_CONTINUE)
		auth_request_free(r->req);
	net_loop_stop(r->f->loop);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct directory_credentials cred;
	const char *error;
	char *err;

	log_set_level(LOG_LEVEL_WARN);
	strcpy(f->dir_path, "/tmp/petrel-test-auth-XXXXXX");
	assert_non_null(mkdtemp(f->dir_path));
	snprintf(f->db_path, sizeof(f->db_path), "%s/petrel.db", f->dir_path);
	if (directory_open(f->db_path, 1, &f->dir, &err) < 0)
		fail_msg("directory_open: %s", err);
	assert_int_equal(directory_domain_add(f->dir, "example.org", &error), 0);

	assert_int_equal(password_make_credentials("secret", &cred, &error), 0);
	assert_int_equal(directory_account_add(f->dir, "alice@example.org", &cred, 0, 0,
	    &f->alice_id, &error), 0);
	directory_credentials_clear(&cred);

	/* Imported: SHA512-CRYPT, no SCRAM keys. */
	memset(&cred, 0, sizeof(cred));
	cred.password = SHA512_PENCIL;
	assert_int_equal(directory_account_add(f->dir, "bob@example.org", &cred, 0, 0,
	    NULL, &error), 0);
	/* No password at all. */
	assert_int_equal(directory_account_add(f->dir, "nopw@example.org", NULL, 0, 0,
	    NULL, &error), 0);

	f->workers = net_workers_new(2);
	f->loop = net_loop_new(0, f->workers);
	f->settings.penalty_initial_ms = 20;
	f->settings.penalty_max_ms = 80;
	f->settings.penalty_reset_ms = 60000;
	f->settings.cache_ttl_ms = 60000;
	f->auth = auth_new(f->dir, &f->settings);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[160];

	net_workers_free(&f->workers);
	net_loop_free(&f->loop);
	auth_free(&f->auth);
	directory_close(&f->dir);
	snprintf(path, sizeof(path), "rm -rf '%s'", f->dir_path);
	assert_int_equal(system(path), 0);
	free(f);
	return 0;
}

/* Runs the loop until the callback stops it; returns the status. */
static enum auth_status
wait_result(struct fixture *f, struct result *r)
{
	int calls = r->calls;

	net_loop_run(f->loop);
	assert_int_equal(r->calls, calls + 1);
	return r->status;
}

static enum auth_status
login(struct fixture *f, struct result *r, struct auth_request **req, const char *user,
    const char *password, const char *ip)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->req = req;
	inside_auth_call = 1;
	*req = auth_login(f->auth, f->loop, user, password, ip, "testsession1", on_result, r);
	inside_auth_call = 0;
	assert_non_null(*req);
	return wait_result(f, r);
}

static enum auth_status
begin(struct fixture *f, struct result *r, struct auth_request **req, const char *mech,
    const char *initial, const char *ip)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->req = req;
	inside_auth_call = 1;
	*req = auth_sasl_start(f->auth, f->loop, mech, initial, ip, "testsession2", on_result, r);
	inside_auth_call = 0;
	assert_non_null(*req);
	return wait_result(f, r);
}

static enum auth_status
answer(struct fixture *f, struct result *r, struct auth_request **req,
    const char *line)
{
	inside_auth_call = 1;
	auth_sasl_continue(*req, line);
	inside_auth_call = 0;
	return wait_result(f, r);
}

static char *
b64(const void *data, size_t len)
{
	struct buf b = BUF_INIT;

	if (len == 0)
		return strdup("");
	base64_encode(&b, data, len);
	return buf_steal(&b);
}

static char *
unb64(const char *s)
{
	struct buf b = BUF_INIT;

	assert_int_equal(base64_decode(&b, s, strlen(s)), 0);
	buf_putc(&b, '\0');
	return buf_steal(&b);
}

static void
test_login_ok(void **state)
{
	struct fixture *f = *state;
	struct auth_request *req;
	struct result r;

	assert_int_equal(login(f, &r, &req, "alice@example.org", "secret", "192.0.2.1"),
	    AUTH_OK);
	assert_null(req);
	assert_string_equal(r.user, "alice@example.org");
	assert_int_equal(r.account_id, f->alice_id);
	assert_string_equal(r.challenge, "");
	/* Case does not matter in the address; it does in the password. */
	assert_int_equal(login(f, &r, &req, "Alice@EXAMPLE.org", "secret", "192.0.2.1"),
	    AUTH_OK);
	assert_string_equal(r.user, "alice@example.org");
	assert_int_equal(login(f, &r, &req, "alice@example.org", "Secret", "192.0.2.99"),
	    AUTH_FAILED);
}

static void
test_login_failures(void **state)
{
	struct fixture *f = *state;
	struct auth_request *req;
	struct result r;
	uint64_t start;

	/* Wrong password, unknown user, no password, not an address: the
	 * same answer, with a growing delay. */
	start = net_now_ms();
	assert_int_equal(login(f, &r, &req, "alice@example.org", "wrong", "198.51.100.1"),
	    AUTH_FAILED);
	assert_true(r.at_ms - start >= 20);
	start = net_now_ms();
	assert_int_equal(login(f, &r, &req, "nobody@example.org", "wrong", "198.51.100.1"),
	    AUTH_FAILED);
	assert_true(r.at_ms - start >= 40);
	start = net_now_ms();
	assert_int_equal(login(f, &r, &req, "nopw@example.org", "x", "198.51.100.1"),
	    AUTH_FAILED);
	assert_true(r.at_ms - start >= 80);
	assert_int_equal(login(f, &r, &req, "not an address", "x", "198.51.100.1"),
	    AUTH_FAILED);
	assert_int_equal(login(f, &r, &req, "x@unknown.example", "x", "198.51.100.1"),
	    AUTH_FAILED);

	/* Successes are not delayed, and reset the count. */
	start = net_now_ms();
	assert_int_equal(login(f, &r, &req, "alice@example.org", "secret", "198.51.100.1"),
	    AUTH_OK);
	assert_true(r.at_ms - start < 1000);
	start = net_now_ms();
	assert_int_equal(login(f, &r, &req, "alice@example.org", "wrong", "198.51.100.1"),
	    AUTH_FAILED);
	assert_true(r.at_ms - start >= 20 && r.at_ms - start < 40 + 1000);

	/* Malformed logins are answered at once. */
	assert_int_equal(login(f, &r, &req, "", "x", "198.51.100.1"), AUTH_MALFORMED);
	assert_int_equal(login(f, &r, &req, "alice@example.org", "", "198.51.100.1"),
	    AUTH_MALFORMED);
}

static void
test_rehash(void **state)
{
	struct fixture *f = *state;
	struct directory_account account;
	struct auth_request *req;
	struct result r;
	const char *error;

	assert_int_equal(login(f, &r, &req, "bob@example.org", "pencil", "192.0.2.7"), AUTH_OK);
	assert_int_equal(directory_account_get(f->dir, "bob@example.org", &account, &error), 1);
	assert_memory_equal(account.cred.password, "{ARGON2ID}$argon2id$", 20);
	assert_int_equal(password_needs_rehash(account.cred.password), 0);
	assert_int_equal(account.cred.has_scram, 1);
	directory_account_clear(&account);
	/* The new hash works (from the cache, and then without it). */
	assert_int_equal(login(f, &r, &req, "bob@example.org", "pencil", "192.0.2.7"), AUTH_OK);
	f->settings.cache_ttl_ms = 0;
	auth_set_settings(f->auth, &f->settings);
	assert_int_equal(login(f, &r, &req, "bob@example.org", "pencil", "192.0.2.7"), AUTH_OK);
	assert_int_equal(login(f, &r, &req, "bob@example.org", "pencil2", "192.0.2.8"),
	    AUTH_FAILED);
}

static void
test_cache_follows_passwd(void **state)
{
	struct fixture *f = *state;
	struct directory_credentials cred;
	struct auth_request *req;
	struct result r;
	const char *error;

	assert_int_equal(login(f, &r, &req, "alice@example.org", "secret", "192.0.2.1"),
	    AUTH_OK);
	assert_int_equal(login(f, &r, &req, "alice@example.org", "secret", "192.0.2.1"),
	    AUTH_OK);
	/* `petrel account passwd`: the cached success no longer counts. */
	assert_int_equal(password_make_credentials("new secret", &cred, &error), 0);
	assert_int_equal(directory_account_set_credentials(f->dir, "alice@example.org", &cred,
	    &error), 0);
	directory_credentials_clear(&cred);
	assert_int_equal(login(f, &r, &req, "alice@example.org", "secret", "192.0.2.2"),
	    AUTH_FAILED);
	assert_int_equal(login(f, &r, &req, "alice@example.org", "new secret", "192.0.2.1"),
	    AUTH_OK);
}

static void
test_plain(void **state)
{
	struct fixture *f = *state;
	struct auth_request *req;
	struct result r;
	char *ir;

	ir = b64("\0alice@example.org\0secret", 25);
	assert_int_equal(begin(f, &r, &req, "PLAIN", ir, "192.0.2.1"), AUTH_OK);
	assert_string_equal(r.user, "alice@example.org");
	free(ir);

	/* Without an initial response. */
	assert_int_equal(begin(f, &r, &req, "plain", NULL, "192.0.2.1"), AUTH_CONTINUE);
	assert_string_equal(r.challenge, "");
	ir = b64("alice@example.org\0alice@example.org\0secret", 42);
	assert_int_equal(answer(f, &r, &req, ir), AUTH_OK);
	free(ir);

	/* Wrong password; proxy authorization. */
	ir = b64("\0alice@example.org\0secreT", 25);
	assert_int_equal(begin(f, &r, &req, "PLAIN", ir, "192.0.2.3"), AUTH_FAILED);
	free(ir);
	ir = b64("bob@example.org\0alice@example.org\0secret", 40);
	assert_int_equal(begin(f, &r, &req, "PLAIN", ir, "192.0.2.3"), AUTH_FAILED);
	free(ir);

	/* Malformed: bad base64, wrong NUL count, empty. */
	assert_int_equal(begin(f, &r, &req, "PLAIN", "AGFsaWNl!", "192.0.2.1"),
	    AUTH_MALFORMED);
	assert_int_equal(begin(f, &r, &req, "PLAIN", "AGFsaWNl", "192.0.2.1"),
	    AUTH_MALFORMED);
	assert_int_equal(begin(f, &r, &req, "PLAIN", "=", "192.0.2.1"), AUTH_MALFORMED);
	assert_int_equal(begin(f, &r, &req, "PLAIN", NULL, "192.0.2.1"), AUTH_CONTINUE);
	assert_int_equal(answer(f, &r, &req, "YWxpY2U="), AUTH_MALFORMED);
	/* Cancelled. */
	assert_int_equal(begin(f, &r, &req, "PLAIN", NULL, "192.0.2.1"), AUTH_CONTINUE);
	assert_int_equal(answer(f, &r, &req, "*"), AUTH_CANCELLED);

	/* Unknown mechanism: NULL, no callback. */
	assert_null(auth_sasl_start(f->auth, f->loop, "CRAM-MD5", NULL, "192.0.2.1", "x",
	    on_result, &r));
	assert_int_equal(auth_mechanism_supported("cram-md5"), 0);
	assert_int_equal(auth_mechanism_supported("scram-sha-256"), 1);
	assert_string_equal(auth_mechanisms(), "PLAIN LOGIN SCRAM-SHA-256");
}

static void
test_oversized(void **state)
{
	struct fixture *f = *state;
	struct auth_request *req;
	struct result r;
	char *line;
	size_t n = (AUTH_SASL_DATA_MAX + 3) / 3 * 4 + 4;

	line = malloc(n + 1);
	memset(line, 'A', n);
	line[n] = '\0';
	assert_int_equal(begin(f, &r, &req, "PLAIN", line, "192.0.2.1"), AUTH_MALFORMED);
	assert_int_equal(begin(f, &r, &req, "LOGIN", NULL, "192.0.2.1"), AUTH_CONTINUE);
	assert_int_equal(answer(f, &r, &req, line), AUTH_MALFORMED);
	free(line);
}

static void
test_login_mech(void **state)
{
	struct fixture *f = *state;
	struct auth_request *req;
	struct result r;

	assert_int_equal(begin(f, &r, &req, "LOGIN", NULL, "192.0.2.1"), AUTH_CONTINUE);
	assert_string_equal(r.challenge, "VXNlcm5hbWU6");
	assert_int_equal(answer(f, &r, &req, "YWxpY2VAZXhhbXBsZS5vcmc="), AUTH_CONTINUE);
	assert_string_equal(r.challenge, "UGFzc3dvcmQ6");
	assert_int_equal(answer(f, &r, &req, "c2VjcmV0"), AUTH_OK);
	assert_string_equal(r.user, "alice@example.org");

	assert_int_equal(begin(f, &r, &req, "LOGIN", "YWxpY2VAZXhhbXBsZS5vcmc=",
	    "192.0.2.1"), AUTH_CONTINUE);
	assert_string_equal(r.challenge, "UGFzc3dvcmQ6");
	assert_int_equal(answer(f, &r, &req, "d3Jvbmc="), AUTH_FAILED);
}

/* The client side of SCRAM-SHA-256, for the tests. Returns the final status. */
static enum auth_status
scram_login(struct fixture *f, const char *user, const char *password, const char *ip,
    int tamper)
{
	struct auth_request *req;
	struct result r;
	unsigned char salted[32], client_key[32], stored_key[32], signature[32];
	unsigned char server_key[32], proof[32];
	char client_first[512], final_wo_proof[512], auth_message[2048], *line, *server_first;
	char *salt_b64, *nonce, *final, *server_final;
	struct buf salt = BUF_INIT, msg = BUF_INIT;
	unsigned int len, iterations;
	enum auth_status st;
	int i;

	snprintf(client_first, sizeof(client_first), "n,,n=%s,r=fyko+d2lbbFgONRv9qkxdawL",
	    user);
	line = b64(client_first, strlen(client_first));
	st = begin(f, &r, &req, "SCRAM-SHA-256", line, ip);
	free(line);
	if (st != AUTH_CONTINUE)
		return st;
	server_first = unb64(r.challenge);
	/* r=<nonce>,s=<salt>,i=<n> */
	assert_memory_equal(server_first, "r=fyko+d2lbbFgONRv9qkxdawL", 26);
	nonce = strdup(server_first + 2);
	*strchr(nonce, ',') = '\0';
	salt_b64 = strdup(strstr(server_first, ",s=") + 3);
	*strchr(salt_b64, ',') = '\0';
	iterations = (unsigned int)atoi(strstr(server_first, ",i=") + 3);
	assert_int_equal(base64_decode(&salt, salt_b64, strlen(salt_b64)), 0);

	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), (unsigned char *)salt.data,
	    (int)salt.len, (int)iterations, EVP_sha256(), 32, salted);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, client_key, &len);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, server_key, &len);
	SHA256(client_key, 32, stored_key);
	snprintf(final_wo_proof, sizeof(final_wo_proof), "c=biws,r=%s", nonce);
	snprintf(auth_message, sizeof(auth_message), "%s,%s,%s", client_first + 3,
	    server_first, final_wo_proof);
	HMAC(EVP_sha256(), stored_key, 32, (unsigned char *)auth_message,
	    strlen(auth_message), signature, &len);
	for (i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ signature[i];
	if (tamper)
		proof[0] ^= 1;
	buf_printf(&msg, "%s,p=", final_wo_proof);
	base64_encode(&msg, proof, 32);
	final = b64(msg.data, msg.len);
	st = answer(f, &r, &req, final);
	free(final);
	if (st == AUTH_CONTINUE) {
		/* v=<ServerSignature> */
		HMAC(EVP_sha256(), server_key, 32, (unsigned char *)auth_message,
		    strlen(auth_message), signature, &len);
		buf_reset(&msg);
		buf_puts(&msg, "v=");
		base64_encode(&msg, signature, 32);
		server_final = unb64(r.challenge);
		assert_string_equal(server_final, msg.data);
		free(server_final);
		st = answer(f, &r, &req, "");
		if (st == AUTH_OK)
			assert_string_equal(r.user, user);
	}
	buf_free(&salt);
	buf_free(&msg);
	free(server_first);
	free(nonce);
	free(salt_b64);
	return st;
}

static void
test_scram(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(scram_login(f, "alice@example.org", "secret", "192.0.2.1", 0),
	    AUTH_OK);
	assert_int_equal(scram_login(f, "alice@example.org", "secret", "192.0.2.4", 1),
	    AUTH_FAILED);
	assert_int_equal(scram_login(f, "alice@example.org", "secreT", "192.0.2.4", 0),
	    AUTH_FAILED);
	assert_int_equal(scram_login(f, "nobody@example.org", "secret", "192.0.2.4", 0),
	    AUTH_FAILED);
	/* Bob has no SCRAM keys until his first password login rehashes. */
	assert_int_equal(scram_login(f, "bob@example.org", "pencil", "192.0.2.4", 0),
	    AUTH_FAILED);
}

static void
test_scram_after_rehash(void **state)
{
	struct fixture *f = *state;
	struct auth_request *req;
	struct result r;

	assert_int_equal(login(f, &r, &req, "bob@example.org", "pencil", "192.0.2.7"), AUTH_OK);
	assert_int_equal(scram_login(f, "bob@example.org", "pencil", "192.0.2.1", 0), AUTH_OK);
}

static void
stop_loop(void *arg)
{
	net_loop_stop(arg);
}

/* Runs the loop for ms milliseconds. */
static void
run_for(struct fixture *f, uint64_t ms)
{
	struct net_timer *t = net_timer_new(f->loop, stop_loop, f->loop);

	net_timer_start(t, ms);
	net_loop_run(f->loop);
	net_timer_free(&t);
}

static void
test_free_pending(void **state)
{
	struct fixture *f = *state;
	struct auth_request *req, *reqs[8];
	struct result r;
	char *ir;
	int i;

	memset(&r, 0, sizeof(r));
	r.f = f;
	r.req = &req;
	/* Freed while the password is being checked on a worker. */
	for (i = 0; i < 8; i++)
		reqs[i] = auth_login(f->auth, f->loop, "alice@example.org",
		    i % 2 ? "secret" : "wrong", "203.0.113.1", "s", on_result, &r);
	for (i = 0; i < 8; i++)
		auth_request_free(&reqs[i]);
	/* Freed before its immediate answer. */
	req = auth_sasl_start(f->auth, f->loop, "LOGIN", NULL, "203.0.113.1", "s",
	    on_result, &r);
	auth_request_free(&req);
	/* Freed during a SCRAM lookup. */
	ir = b64("n,,n=alice@example.org,r=abc", 28);
	req = auth_sasl_start(f->auth, f->loop, "SCRAM-SHA-256", ir, "203.0.113.1", "s",
	    on_result, &r);
	free(ir);
	auth_request_free(&req);
	run_for(f, 1000);
	assert_int_equal(r.calls, 0);

	/* Freed while its failure is held back by the penalty. */
	f->settings.penalty_initial_ms = 500;
	f->settings.penalty_max_ms = 500;
	auth_set_settings(f->auth, &f->settings);
	req = auth_login(f->auth, f->loop, "alice@example.org", "wrong", "203.0.113.2", "s",
	    on_result, &r);
	run_for(f, 300);
	assert_int_equal(r.calls, 0);
	auth_request_free(&req);
	run_for(f, 500);
	assert_int_equal(r.calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_penalty_delay),
		cmocka_unit_test(test_penalty_key),
		cmocka_unit_test(test_penalty_table),
		cmocka_unit_test(test_penalty_bounded),
		cmocka_unit_test(test_lru),
		cmocka_unit_test(test_cache),
		cmocka_unit_test_setup_teardown(test_login_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rehash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_follows_passwd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_login_mech, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scram_after_rehash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
