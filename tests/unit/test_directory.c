/* Unit tests of src/directory: CRUD, normalization, resolution, concurrency. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/xmalloc.h"
#include "directory/directory.h"

struct fixture {
	char dirpath[64];
	char *dbpath;
	struct directory *dir;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL;

	strcpy(f->dirpath, "/tmp/petrel-test-directory-XXXXXX");
	if (mkdtemp(f->dirpath) == NULL)
		return -1;
	f->dbpath = xasprintf("%s/petrel.db", f->dirpath);
	if (directory_open(f->dbpath, 1, &f->dir, &error) < 0) {
		fprintf(stderr, "directory_open: %s\n", error);
		free(error);
		return -1;
	}
	*state = f;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	directory_close(&f->dir);
	nftw(f->dirpath, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f->dbpath);
	free(f);
	return 0;
}

/* Helpers that fail the test on error. */
static void
ok(int ret, const char *error)
{
	if (ret < 0)
		fail_msg("unexpected error: %s", error != NULL ? error : "(none)");
}

static void
add_domain(struct directory *dir, const char *name)
{
	const char *error = NULL;

	ok(directory_domain_add(dir, name, &error), error);
}

static int64_t
add_account(struct directory *dir, const char *address)
{
	const char *error = NULL;
	int64_t id = 0;

	ok(directory_account_add(dir, address, NULL, 0, 0, &id, &error), error);
	assert_true(id > 0);
	return id;
}

static void
add_alias(struct directory *dir, const char *address, const char *target)
{
	const char *error = NULL;

	ok(directory_alias_add(dir, address, target, &error), error);
}

static void
resolve(struct directory *dir, const char *address, struct directory_resolution *res)
{
	const char *error = NULL;

	ok(directory_resolve(dir, address, res, &error), error);
}

/* 1 when res has a target of that kind and address. */
static int
has_target(const struct directory_resolution *res, enum directory_target_kind kind,
    const char *address)
{
	size_t i;

	for (i = 0; i < res->ntargets; i++)
		if (res->targets[i].kind == kind && strcmp(res->targets[i].address, address) == 0)
			return 1;
	return 0;
}

static void
test_normalize(void **state)
{
	char local64[65], *s, *big;

	s = directory_normalize_address("Alice.Smith+Tag@Example.COM");
	assert_string_equal(s, "alice.smith+tag@example.com");
	free(s);
	s = directory_normalize_address("o'neil@sub.example-1.org");
	assert_non_null(s);
	free(s);

	assert_null(directory_normalize_address(NULL));
	assert_null(directory_normalize_address(""));
	assert_null(directory_normalize_address("nodomain"));
	assert_null(directory_normalize_address("@example.com"));
	assert_null(directory_normalize_address("a@"));
	assert_null(directory_normalize_address("a@b@example.com"));
	assert_null(directory_normalize_address("a b@example.com"));
	assert_null(directory_normalize_address("\"a\"@example.com"));
	assert_null(directory_normalize_address("a\tb@example.com"));
	assert_null(directory_normalize_address("a\x7f@example.com"));
	assert_null(directory_normalize_address("a<b@example.com"));
	assert_null(directory_normalize_address("a@exa mple.com"));
	assert_null(directory_normalize_address("a@-example.com"));
	assert_null(directory_normalize_address("a@example..com"));
	assert_null(directory_normalize_address("a@example.com."));
	assert_null(directory_normalize_address("a@[192.0.2.1]"));
	assert_null(directory_normalize_address("a@ex_ample.com"));

	memset(local64, 'x', 64);
	local64[64] = '\0';
	s = xasprintf("%s@example.com", local64);
	big = directory_normalize_address(s);
	assert_non_null(big);
	free(big);
	free(s);
	s = xasprintf("%sx@example.com", local64);
	assert_null(directory_normalize_address(s));
	free(s);

	/* 320 bytes at most. */
	big = xasprintf("%s@%.63s.%.63s.%.63s.%.63s.%.20s", local64, local64, local64,
	    local64, local64, local64);
	assert_true(strlen(big) > 320);
	assert_null(directory_normalize_address(big));
	free(big);

	s = directory_normalize_domain("Example.COM");
	assert_string_equal(s, "example.com");
	free(s);
	s = directory_normalize_domain("localhost");
	assert_string_equal(s, "localhost");
	free(s);
	s = directory_normalize_domain("xn--bcher-kva.example");
	assert_non_null(s);
	free(s);
	assert_null(directory_normalize_domain(""));
	assert_null(directory_normalize_domain("."));
	assert_null(directory_normalize_domain("example.com-"));
	assert_null(directory_normalize_domain("a-.example"));
	assert_null(directory_normalize_domain("exa$mple.com"));
	s = xasprintf("%s.com", local64);
	assert_null(directory_normalize_domain(s));
	free(s);
}

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct directory *dir = NULL;
	struct stat st;
	char *path, *wal, *error = NULL;
	FILE *fp;

	/* The database and its WAL are private to the daemon's user. */
	assert_int_equal(stat(f->dbpath, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	wal = xasprintf("%s-wal", f->dbpath);
	if (stat(wal, &st) == 0)
		assert_int_equal(st.st_mode & 0777, 0600);
	free(wal);

	/* Without create, nothing is created. */
	path = xasprintf("%s/missing.db", f->dirpath);
	assert_int_equal(directory_open(path, 0, &dir, &error), -1);
	assert_non_null(error);
	assert_non_null(strstr(error, "does not exist"));
	free(error);
	error = NULL;
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* An empty file is not a directory, and is left alone. */
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(directory_open(path, 0, &dir, &error), -1);
	assert_non_null(strstr(error, "not an initialized"));
	free(error);
	error = NULL;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	free(path);

	/* The database made by setup() opens without create. */
	if (directory_open(f->dbpath, 0, &dir, &error) < 0)
		fail_msg("%s", error);
	directory_close(&dir);
	assert_null(dir);
	/* And opening it again with create is harmless. */
	if (directory_open(f->dbpath, 1, &dir, &error) < 0)
		fail_msg("%s", error);
	directory_close(&dir);
}

static void
test_domains(void **state)
{
	struct fixture *f = *state;
	struct directory_domain *domains = NULL;
	const char *error = NULL;
	size_t n;

	add_domain(f->dir, "Example.com");
	add_domain(f->dir, "b.example");
	assert_int_equal(directory_domain_add(f->dir, "EXAMPLE.COM", &error), -1);
	assert_non_null(strstr(error, "already exists"));
	assert_int_equal(directory_domain_add(f->dir, "bad_domain", &error), -1);
	assert_non_null(strstr(error, "invalid"));

	assert_int_equal(directory_domain_exists(f->dir, "example.COM", &error), 1);
	assert_int_equal(directory_domain_exists(f->dir, "other.com", &error), 0);
	assert_int_equal(directory_domain_exists(f->dir, "not a domain", &error), 0);

	add_account(f->dir, "a@example.com");
	add_alias(f->dir, "x@example.com", "a@example.com");
	add_alias(f->dir, "x@example.com", "out@elsewhere.net");

	ok(directory_domain_list(f->dir, &domains, &n, &error), error);
	assert_int_equal(n, 2);
	assert_string_equal(domains[0].name, "b.example");
	assert_string_equal(domains[1].name, "example.com");
	assert_int_equal(domains[1].naccounts, 1);
	assert_int_equal(domains[1].naliases, 2);
	assert_null(domains[1].catchall);
	assert_true(domains[1].created > 0);
	directory_domains_free(&domains, n);
	assert_null(domains);

	/* Not removed while it has accounts or aliases, unless forced. */
	assert_int_equal(directory_domain_remove(f->dir, "example.com", 0, &error), -1);
	assert_non_null(strstr(error, "1 account"));
	assert_int_equal(directory_domain_exists(f->dir, "example.com", &error), 1);
	ok(directory_domain_remove(f->dir, "example.com", 1, &error), error);
	assert_int_equal(directory_domain_exists(f->dir, "example.com", &error), 0);
	assert_int_equal(directory_account_add(f->dir, "a@example.com", NULL, 0, 0, NULL,
	    &error), -1);
	/* Its accounts and aliases went with it. */
	add_domain(f->dir, "example.com");
	add_account(f->dir, "a@example.com");
	ok(directory_domain_list(f->dir, &domains, &n, &error), error);
	assert_int_equal(domains[1].naccounts, 1);
	assert_int_equal(domains[1].naliases, 0);
	directory_domains_free(&domains, n);

	ok(directory_domain_remove(f->dir, "b.example", 0, &error), error);
	assert_int_equal(directory_domain_remove(f->dir, "b.example", 0, &error), -1);
	assert_non_null(strstr(error, "not hosted"));
}

static void
test_accounts(void **state)
{
	struct fixture *f = *state;
	struct directory_account *accounts = NULL, a;
	struct directory_credentials cred;
	const char *error = NULL;
	int64_t id, id2;
	size_t n;

	assert_int_equal(directory_account_add(f->dir, "a@example.com", NULL, 0, 0, &id,
	    &error), -1);
	assert_non_null(strstr(error, "not hosted"));
	add_domain(f->dir, "example.com");
	add_domain(f->dir, "example.org");

	memset(&cred, 0, sizeof(cred));
	cred.password = xstrdup("{PLAIN}secret");
	cred.has_scram = 1;
	cred.scram_salt_len = 16;
	memset(cred.scram_salt, 's', 16);
	cred.scram_iterations = 4096;
	memset(cred.scram_stored_key, 1, SCRAM_KEY_SIZE);
	memset(cred.scram_server_key, 2, SCRAM_KEY_SIZE);
	ok(directory_account_add(f->dir, "Alice@Example.com", &cred, 1 << 30, 1000, &id,
	    &error), error);
	directory_credentials_clear(&cred);
	assert_null(cred.password);

	assert_int_equal(directory_account_add(f->dir, "alice@example.com", NULL, 0, 0, NULL,
	    &error), -1);
	assert_non_null(strstr(error, "already exists"));
	assert_int_equal(directory_account_add(f->dir, "bad address@example.com", NULL, 0, 0,
	    NULL, &error), -1);
	assert_int_equal(directory_account_add(f->dir, "big@example.com", NULL,
	    (uint64_t)INT64_MAX + 1, 0, NULL, &error), -1);
	id2 = add_account(f->dir, "bob@example.org");
	assert_true(id2 > id);

	assert_int_equal(directory_account_get(f->dir, "ALICE@example.com", &a, &error), 1);
	assert_int_equal(a.id, id);
	assert_string_equal(a.address, "alice@example.com");
	assert_string_equal(a.domain, "example.com");
	assert_string_equal(a.cred.password, "{PLAIN}secret");
	assert_true(a.cred.has_scram);
	assert_int_equal(a.cred.scram_salt_len, 16);
	assert_int_equal(a.cred.scram_iterations, 4096);
	assert_int_equal(a.cred.scram_stored_key[31], 1);
	assert_int_equal(a.cred.scram_server_key[0], 2);
	assert_int_equal(a.quota_bytes, 1 << 30);
	assert_int_equal(a.quota_messages, 1000);
	assert_true(a.created > 0);
	directory_account_clear(&a);

	assert_int_equal(directory_account_get(f->dir, "nobody@example.com", &a, &error), 0);
	assert_int_equal(directory_account_get(f->dir, "not an address", &a, &error), 0);
	assert_int_equal(directory_account_get_by_id(f->dir, id2, &a, &error), 1);
	assert_string_equal(a.address, "bob@example.org");
	assert_null(a.cred.password);
	assert_false(a.cred.has_scram);
	directory_account_clear(&a);
	assert_int_equal(directory_account_get_by_id(f->dir, 9999, &a, &error), 0);

	/* Quotas and credentials. */
	ok(directory_account_set_quota(f->dir, "bob@example.org", 500 << 20, 0, &error),
	    error);
	assert_int_equal(directory_account_set_quota(f->dir, "nobody@example.org", 1, 1,
	    &error), -1);
	assert_non_null(strstr(error, "no account"));
	memset(&cred, 0, sizeof(cred));
	cred.password = "{PLAIN}bob";
	ok(directory_account_set_credentials(f->dir, "bob@example.org", &cred, &error),
	    error);
	assert_int_equal(directory_account_get(f->dir, "bob@example.org", &a, &error), 1);
	assert_int_equal(a.quota_bytes, 500 << 20);
	assert_string_equal(a.cred.password, "{PLAIN}bob");
	directory_account_clear(&a);
	ok(directory_account_set_credentials(f->dir, "bob@example.org", NULL, &error), error);
	assert_int_equal(directory_account_get(f->dir, "bob@example.org", &a, &error), 1);
	assert_null(a.cred.password);
	directory_account_clear(&a);

	/* Lists. */
	add_account(f->dir, "aaron@example.com");
	ok(directory_account_list(f->dir, NULL, &accounts, &n, &error), error);
	assert_int_equal(n, 3);
	assert_string_equal(accounts[0].address, "aaron@example.com");
	assert_string_equal(accounts[1].address, "alice@example.com");
	assert_string_equal(accounts[2].address, "bob@example.org");
	directory_accounts_free(&accounts, n);
	assert_null(accounts);
	ok(directory_account_list(f->dir, "EXAMPLE.org", &accounts, &n, &error), error);
	assert_int_equal(n, 1);
	directory_accounts_free(&accounts, n);
	ok(directory_account_list(f->dir, "nowhere.example", &accounts, &n, &error), error);
	assert_int_equal(n, 0);
	directory_accounts_free(&accounts, n);

	/* Removal; ids are never reused. */
	ok(directory_account_remove(f->dir, "bob@example.org", &error), error);
	assert_int_equal(directory_account_remove(f->dir, "bob@example.org", &error), -1);
	assert_non_null(strstr(error, "no account"));
	assert_true(add_account(f->dir, "bob@example.org") > id2 + 1);
}

static void
test_aliases_catchall(void **state)
{
	struct fixture *f = *state;
	struct directory_alias *aliases = NULL;
	struct directory_domain *domains = NULL;
	const char *error = NULL;
	size_t n;

	assert_int_equal(directory_alias_add(f->dir, "x@example.com", "y@example.org",
	    &error), -1);
	assert_non_null(strstr(error, "not hosted"));
	add_domain(f->dir, "example.com");
	add_domain(f->dir, "example.net");
	add_alias(f->dir, "X@example.com", "Y@Example.org");
	add_alias(f->dir, "x@example.com", "z@example.com");
	add_alias(f->dir, "b@example.net", "x@example.com");
	assert_int_equal(directory_alias_add(f->dir, "x@example.com", "y@example.org",
	    &error), -1);
	assert_non_null(strstr(error, "already exists"));
	assert_int_equal(directory_alias_add(f->dir, "x@example.com", "bad target",
	    &error), -1);

	ok(directory_alias_list(f->dir, NULL, &aliases, &n, &error), error);
	assert_int_equal(n, 3);
	assert_string_equal(aliases[0].address, "b@example.net");
	assert_string_equal(aliases[1].address, "x@example.com");
	assert_string_equal(aliases[1].target, "y@example.org");
	assert_string_equal(aliases[2].target, "z@example.com");
	directory_aliases_free(&aliases, n);
	assert_null(aliases);
	ok(directory_alias_list(f->dir, "example.com", &aliases, &n, &error), error);
	assert_int_equal(n, 2);
	directory_aliases_free(&aliases, n);

	ok(directory_alias_remove(f->dir, "x@example.com", "Z@example.com", &error), error);
	assert_int_equal(directory_alias_remove(f->dir, "x@example.com", "z@example.com",
	    &error), -1);
	assert_non_null(strstr(error, "no alias"));
	add_alias(f->dir, "x@example.com", "w@example.com");
	ok(directory_alias_remove(f->dir, "x@example.com", NULL, &error), error);
	assert_int_equal(directory_alias_remove(f->dir, "x@example.com", NULL, &error), -1);
	ok(directory_alias_list(f->dir, "example.com", &aliases, &n, &error), error);
	assert_int_equal(n, 0);
	directory_aliases_free(&aliases, n);

	/* Catch-all. */
	assert_int_equal(directory_catchall_set(f->dir, "nowhere.example", "a@example.com",
	    &error), -1);
	assert_int_equal(directory_catchall_set(f->dir, "example.com", "not valid",
	    &error), -1);
	ok(directory_catchall_set(f->dir, "example.com", "Boss@Example.com", &error), error);
	ok(directory_domain_list(f->dir, &domains, &n, &error), error);
	assert_string_equal(domains[0].name, "example.com");
	assert_string_equal(domains[0].catchall, "boss@example.com");
	directory_domains_free(&domains, n);
	ok(directory_catchall_clear(f->dir, "example.com", &error), error);
	ok(directory_catchall_clear(f->dir, "example.com", &error), error);
	assert_int_equal(directory_catchall_clear(f->dir, "nowhere.example", &error), -1);
	ok(directory_domain_list(f->dir, &domains, &n, &error), error);
	assert_null(domains[0].catchall);
	directory_domains_free(&domains, n);
}

static void
test_resolve_basic(void **state)
{
	struct fixture *f = *state;
	struct directory_resolution res;
	const char *error = NULL;
	int64_t alice, bob;

	add_domain(f->dir, "example.com");
	alice = add_account(f->dir, "alice@example.com");
	bob = add_account(f->dir, "bob@example.com");

	resolve(f->dir, "Alice@EXAMPLE.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_int_equal(res.ntargets, 1);
	assert_int_equal(res.targets[0].kind, DIRECTORY_TARGET_MAILBOX);
	assert_int_equal(res.targets[0].account_id, alice);
	assert_string_equal(res.targets[0].address, "alice@example.com");
	assert_null(res.subaddress);
	directory_resolution_clear(&res);

	resolve(f->dir, "someone@example.org", &res);
	assert_int_equal(res.status, DIRECTORY_NOT_LOCAL);
	assert_int_equal(res.ntargets, 0);
	directory_resolution_clear(&res);

	resolve(f->dir, "nobody@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_UNKNOWN);
	assert_int_equal(res.ntargets, 0);
	directory_resolution_clear(&res);

	assert_int_equal(directory_resolve(f->dir, "not an address", &res, &error), -1);
	assert_non_null(error);

	/* An alias to a local account and a forwarder outside. */
	add_alias(f->dir, "sales@example.com", "bob@example.com");
	add_alias(f->dir, "sales@example.com", "Partner@Elsewhere.net");
	resolve(f->dir, "sales@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_int_equal(res.ntargets, 2);
	assert_true(has_target(&res, DIRECTORY_TARGET_MAILBOX, "bob@example.com"));
	assert_true(has_target(&res, DIRECTORY_TARGET_EXTERNAL, "partner@elsewhere.net"));
	assert_int_equal(res.targets[0].kind == DIRECTORY_TARGET_MAILBOX ?
	    res.targets[0].account_id : res.targets[1].account_id, bob);
	directory_resolution_clear(&res);

	/* An account that is also an alias gets both, its mailbox first. */
	add_alias(f->dir, "alice@example.com", "alice@elsewhere.net");
	add_alias(f->dir, "alice@example.com", "alice@example.com");
	resolve(f->dir, "alice@example.com", &res);
	assert_int_equal(res.ntargets, 2);
	assert_int_equal(res.targets[0].kind, DIRECTORY_TARGET_MAILBOX);
	assert_int_equal(res.targets[0].account_id, alice);
	assert_true(has_target(&res, DIRECTORY_TARGET_EXTERNAL, "alice@elsewhere.net"));
	directory_resolution_clear(&res);

	/* An alias to an unknown local address contributes nothing. */
	add_alias(f->dir, "team@example.com", "ghost@example.com");
	add_alias(f->dir, "team@example.com", "bob@example.com");
	resolve(f->dir, "team@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_int_equal(res.ntargets, 1);
	assert_true(has_target(&res, DIRECTORY_TARGET_MAILBOX, "bob@example.com"));
	directory_resolution_clear(&res);
	add_alias(f->dir, "dead@example.com", "ghost@example.com");
	resolve(f->dir, "dead@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_UNKNOWN);
	directory_resolution_clear(&res);
}

static void
test_resolve_dedupe_loops(void **state)
{
	struct fixture *f = *state;
	struct directory_resolution res;

	add_domain(f->dir, "example.com");
	add_domain(f->dir, "example.net");
	add_account(f->dir, "bob@example.com");

	/* a -> b -> a, plus bob: the loop is cut, bob found once. */
	add_alias(f->dir, "a@example.com", "b@example.net");
	add_alias(f->dir, "b@example.net", "a@example.com");
	add_alias(f->dir, "b@example.net", "bob@example.com");
	resolve(f->dir, "a@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_int_equal(res.ntargets, 1);
	assert_string_equal(res.targets[0].address, "bob@example.com");
	directory_resolution_clear(&res);

	/* A pure loop leads nowhere. */
	add_alias(f->dir, "p@example.com", "q@example.com");
	add_alias(f->dir, "q@example.com", "p@example.com");
	resolve(f->dir, "p@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_UNKNOWN);
	assert_int_equal(res.ntargets, 0);
	directory_resolution_clear(&res);

	/* Diamond: list -> x, y; x -> bob, out; y -> bob, out. */
	add_alias(f->dir, "list@example.com", "x@example.com");
	add_alias(f->dir, "list@example.com", "y@example.com");
	add_alias(f->dir, "x@example.com", "bob@example.com");
	add_alias(f->dir, "x@example.com", "out@elsewhere.org");
	add_alias(f->dir, "y@example.com", "BOB@example.com");
	add_alias(f->dir, "y@example.com", "out@elsewhere.org");
	resolve(f->dir, "list@example.com", &res);
	assert_int_equal(res.ntargets, 2);
	assert_true(has_target(&res, DIRECTORY_TARGET_MAILBOX, "bob@example.com"));
	assert_true(has_target(&res, DIRECTORY_TARGET_EXTERNAL, "out@elsewhere.org"));
	directory_resolution_clear(&res);
}

static void
test_resolve_depth(void **state)
{
	struct fixture *f = *state;
	struct directory_resolution res;
	char from[64], to[64];
	int i;

	add_domain(f->dir, "example.com");
	/* c0 -> c1 -> ... -> cN, each hop one alias. */
	for (i = 0; i < DIRECTORY_ALIAS_DEPTH_MAX + 2; i++) {
		snprintf(from, sizeof(from), "c%d@example.com", i);
		snprintf(to, sizeof(to), "c%d@example.com", i + 1);
		add_alias(f->dir, from, to);
	}
	/* The end of a chain of exactly the limit is reached... */
	snprintf(to, sizeof(to), "c%d@example.com", DIRECTORY_ALIAS_DEPTH_MAX);
	add_account(f->dir, to);
	resolve(f->dir, "c0@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_int_equal(res.ntargets, 1);
	assert_string_equal(res.targets[0].address, to);
	directory_resolution_clear(&res);
	/* ...one further is not. */
	snprintf(to, sizeof(to), "c%d@example.com", DIRECTORY_ALIAS_DEPTH_MAX + 1);
	add_account(f->dir, to);
	resolve(f->dir, "c0@example.com", &res);
	assert_int_equal(res.ntargets, 1);
	assert_false(has_target(&res, DIRECTORY_TARGET_MAILBOX, to));
	directory_resolution_clear(&res);
	/* A shorter path to it is found (breadth first). */
	add_alias(f->dir, "c0@example.com", to);
	resolve(f->dir, "c0@example.com", &res);
	assert_int_equal(res.ntargets, 2);
	assert_true(has_target(&res, DIRECTORY_TARGET_MAILBOX, to));
	directory_resolution_clear(&res);
}

static void
test_resolve_targets_limit(void **state)
{
	struct fixture *f = *state;
	struct directory_resolution res;
	char to[64];
	int i;

	add_domain(f->dir, "example.com");
	add_account(f->dir, "big@example.com");
	for (i = 0; i < DIRECTORY_RESOLVE_TARGETS_MAX + 5; i++) {
		snprintf(to, sizeof(to), "t%d@elsewhere.org", i);
		add_alias(f->dir, "big@example.com", to);
	}
	resolve(f->dir, "big@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_int_equal(res.ntargets, DIRECTORY_RESOLVE_TARGETS_MAX);
	assert_int_equal(res.targets[0].kind, DIRECTORY_TARGET_MAILBOX);
	directory_resolution_clear(&res);
}

static void
test_resolve_subaddress_catchall(void **state)
{
	struct fixture *f = *state;
	struct directory_resolution res;
	const char *error = NULL;

	add_domain(f->dir, "example.com");
	add_domain(f->dir, "example.net");
	add_account(f->dir, "alice@example.com");
	add_account(f->dir, "alice+exact@example.com");
	add_account(f->dir, "carol@example.net");

	resolve(f->dir, "Alice+Lists@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_int_equal(res.ntargets, 1);
	assert_string_equal(res.targets[0].address, "alice@example.com");
	assert_string_equal(res.subaddress, "lists");
	directory_resolution_clear(&res);

	/* The full local part wins. */
	resolve(f->dir, "alice+exact@example.com", &res);
	assert_string_equal(res.targets[0].address, "alice+exact@example.com");
	assert_null(res.subaddress);
	directory_resolution_clear(&res);

	/* Only the first '+' separates; an empty tag is a tag. */
	resolve(f->dir, "alice+a+b@example.com", &res);
	assert_string_equal(res.targets[0].address, "alice@example.com");
	assert_string_equal(res.subaddress, "a+b");
	directory_resolution_clear(&res);
	resolve(f->dir, "alice+@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_string_equal(res.subaddress, "");
	directory_resolution_clear(&res);
	resolve(f->dir, "+alice@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_UNKNOWN);
	directory_resolution_clear(&res);
	resolve(f->dir, "nobody+x@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_UNKNOWN);
	assert_null(res.subaddress);
	directory_resolution_clear(&res);

	/* An alias target with a tag reaches the account too. */
	add_alias(f->dir, "fwd@example.net", "alice+fwd@example.com");
	resolve(f->dir, "fwd@example.net", &res);
	assert_int_equal(res.ntargets, 1);
	assert_string_equal(res.targets[0].address, "alice@example.com");
	assert_null(res.subaddress);
	directory_resolution_clear(&res);

	/* Catch-all: last, only when nothing else matched. */
	ok(directory_catchall_set(f->dir, "example.com", "carol@example.net", &error), error);
	resolve(f->dir, "whoever@example.com", &res);
	assert_int_equal(res.status, DIRECTORY_FOUND);
	assert_int_equal(res.ntargets, 1);
	assert_string_equal(res.targets[0].address, "carol@example.net");
	directory_resolution_clear(&res);
	resolve(f->dir, "alice+x@example.com", &res);
	assert_string_equal(res.targets[0].address, "alice@example.com");
	assert_string_equal(res.subaddress, "x");
	directory_resolution_clear(&res);
	/* An alias leading nowhere falls through to the catch-all. */
	add_alias(f->dir, "old@example.com", "gone@example.com");
	resolve(f->dir, "old@example.com", &res);
	assert_int_equal(res.ntargets, 1);
	assert_string_equal(res.targets[0].address, "carol@example.net");
	directory_resolution_clear(&res);
	/* A target's catch-all is not used: unknown@example.com via an alias. */
	add_alias(f->dir, "via@example.net", "unknown@example.com");
	resolve(f->dir, "via@example.net", &res);
	assert_int_equal(res.status, DIRECTORY_UNKNOWN);
	directory_resolution_clear(&res);
	/* A catch-all outside. */
	ok(directory_catchall_set(f->dir, "example.com", "admin@elsewhere.org", &error),
	    error);
	resolve(f->dir, "whoever@example.com", &res);
	assert_int_equal(res.ntargets, 1);
	assert_int_equal(res.targets[0].kind, DIRECTORY_TARGET_EXTERNAL);
	assert_string_equal(res.targets[0].address, "admin@elsewhere.org");
	directory_resolution_clear(&res);
	/* A catch-all that is an alias is followed. */
	add_alias(f->dir, "postmaster@example.net", "carol@example.net");
	add_alias(f->dir, "postmaster@example.net", "ops@elsewhere.org");
	ok(directory_catchall_set(f->dir, "example.com", "postmaster@example.net", &error),
	    error);
	resolve(f->dir, "whoever@example.com", &res);
	assert_int_equal(res.ntargets, 2);
	assert_true(has_target(&res, DIRECTORY_TARGET_MAILBOX, "carol@example.net"));
	assert_true(has_target(&res, DIRECTORY_TARGET_EXTERNAL, "ops@elsewhere.org"));
	directory_resolution_clear(&res);
}

static void
test_upgrade_credentials(void **state)
{
	struct fixture *f = *state;
	struct directory_credentials cred;
	struct directory_account a;
	const char *error = NULL;
	int64_t id;

	add_domain(f->dir, "example.com");
	memset(&cred, 0, sizeof(cred));
	cred.password = "{SHA512-CRYPT}$6$old";
	ok(directory_account_add(f->dir, "u@example.com", &cred, 0, 0, &id, &error), error);

	cred.password = "{ARGON2ID}$argon2id$new";
	cred.has_scram = 1;
	cred.scram_salt_len = 16;
	cred.scram_iterations = 4096;
	/* Wrong expectation: nothing changes. */
	assert_int_equal(directory_account_upgrade_credentials(f->dir, id,
	    "{PLAIN}other", &cred, &error), 0);
	assert_int_equal(directory_account_upgrade_credentials(f->dir, id + 100,
	    "{SHA512-CRYPT}$6$old", &cred, &error), 0);
	assert_int_equal(directory_account_get_by_id(f->dir, id, &a, &error), 1);
	assert_string_equal(a.cred.password, "{SHA512-CRYPT}$6$old");
	assert_false(a.cred.has_scram);
	directory_account_clear(&a);

	assert_int_equal(directory_account_upgrade_credentials(f->dir, id,
	    "{SHA512-CRYPT}$6$old", &cred, &error), 1);
	assert_int_equal(directory_account_get_by_id(f->dir, id, &a, &error), 1);
	assert_string_equal(a.cred.password, "{ARGON2ID}$argon2id$new");
	assert_true(a.cred.has_scram);
	directory_account_clear(&a);
	/* The second rehash of the same login loses the race. */
	assert_int_equal(directory_account_upgrade_credentials(f->dir, id,
	    "{SHA512-CRYPT}$6$old", &cred, &error), 0);

	/* No password yet: expected NULL matches. */
	id = add_account(f->dir, "nopw@example.com");
	assert_int_equal(directory_account_upgrade_credentials(f->dir, id, NULL, &cred,
	    &error), 1);
	assert_int_equal(directory_account_upgrade_credentials(f->dir, id, NULL, &cred,
	    &error), 0);
	assert_int_equal(directory_account_upgrade_credentials(f->dir, id, NULL, NULL,
	    &error), -1);
}

static void
test_import(void **state)
{
	struct fixture *f = *state;
	struct directory_import rec;
	struct directory_account a;
	const char *error = NULL;
	int dcreated = -1, acreated = -1;

	memset(&rec, 0, sizeof(rec));
	rec.address = "Imp@New.Example";
	rec.password = "{SHA512-CRYPT}$6$abc";
	rec.has_quota_bytes = 1;
	rec.quota_bytes = 1 << 30;
	ok(directory_account_import(f->dir, &rec, &dcreated, &acreated, &error), error);
	assert_int_equal(dcreated, 1);
	assert_int_equal(acreated, 1);
	assert_int_equal(directory_domain_exists(f->dir, "new.example", &error), 1);
	assert_int_equal(directory_account_get(f->dir, "imp@new.example", &a, &error), 1);
	assert_string_equal(a.cred.password, "{SHA512-CRYPT}$6$abc");
	assert_int_equal(a.quota_bytes, 1 << 30);
	assert_int_equal(a.quota_messages, 0);
	directory_account_clear(&a);

	/* Again: an update; the byte quota stays, the message quota is set. */
	rec.password = "{BLF-CRYPT}$2y$05$xyz";
	rec.has_quota_bytes = 0;
	rec.has_quota_messages = 1;
	rec.quota_messages = 500;
	ok(directory_account_import(f->dir, &rec, &dcreated, &acreated, &error), error);
	assert_int_equal(dcreated, 0);
	assert_int_equal(acreated, 0);
	assert_int_equal(directory_account_get(f->dir, "imp@new.example", &a, &error), 1);
	assert_string_equal(a.cred.password, "{BLF-CRYPT}$2y$05$xyz");
	assert_int_equal(a.quota_bytes, 1 << 30);
	assert_int_equal(a.quota_messages, 500);
	directory_account_clear(&a);

	/* A record without a password keeps the one there. */
	rec.password = NULL;
	rec.has_quota_messages = 0;
	ok(directory_account_import(f->dir, &rec, &dcreated, &acreated, &error), error);
	assert_int_equal(acreated, 0);
	assert_int_equal(directory_account_get(f->dir, "imp@new.example", &a, &error), 1);
	assert_string_equal(a.cred.password, "{BLF-CRYPT}$2y$05$xyz");
	assert_int_equal(a.quota_messages, 500);
	directory_account_clear(&a);

	rec.address = "bad address";
	rec.password = "{PLAIN}x";
	assert_int_equal(directory_account_import(f->dir, &rec, NULL, NULL, &error), -1);
	rec.address = "x@bad_domain";
	assert_int_equal(directory_account_import(f->dir, &rec, NULL, NULL, &error), -1);
	rec.address = "x@fine.example";
	rec.password = "two\nlines";
	assert_int_equal(directory_account_import(f->dir, &rec, NULL, NULL, &error), -1);
	/* Nothing of a refused record is left behind. */
	assert_int_equal(directory_domain_exists(f->dir, "fine.example", &error), 0);
}

/* Several handles on one file, several threads each: no "locked" errors. */
#define THREADS 4
#define ROUNDS 60

struct worker {
	struct directory *dir;
	int n;
	char error[256];
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct directory_resolution res;
	struct directory_credentials cred;
	struct directory_account a;
	char addr[64], target[64];
	const char *error = NULL;
	int i;

	memset(&cred, 0, sizeof(cred));
	for (i = 0; i < ROUNDS; i++) {
		snprintf(addr, sizeof(addr), "w%d-%d@example.com", w->n, i);
		snprintf(target, sizeof(target), "t%d-%d@elsewhere.org", w->n, i);
		cred.password = addr;
		if (directory_account_add(w->dir, addr, &cred, 0, 0, NULL, &error) < 0 ||
		    directory_alias_add(w->dir, addr, target, &error) < 0 ||
		    directory_alias_add(w->dir, "shared@example.com", addr, &error) < 0 ||
		    directory_resolve(w->dir, addr, &res, &error) < 0)
			goto fail;
		if (res.ntargets != 2) {
			directory_resolution_clear(&res);
			snprintf(w->error, sizeof(w->error), "%s: %zu targets", addr,
			    res.ntargets);
			return NULL;
		}
		directory_resolution_clear(&res);
		if (directory_account_get(w->dir, addr, &a, &error) != 1)
			goto fail;
		if (directory_account_upgrade_credentials(w->dir, a.id, addr, &cred,
		    &error) != 1) {
			directory_account_clear(&a);
			goto fail;
		}
		directory_account_clear(&a);
		if (directory_resolve(w->dir, "shared@example.com", &res, &error) < 0)
			goto fail;
		directory_resolution_clear(&res);
	}
	return NULL;
fail:
	snprintf(w->error, sizeof(w->error), "%s", error != NULL ? error : "failed");
	return NULL;
}

static void
test_concurrent_handles(void **state)
{
	struct fixture *f = *state;
	struct directory *dir2 = NULL;
	struct directory_resolution res;
	struct worker workers[THREADS];
	pthread_t threads[THREADS];
	char *oerror = NULL;
	int i;

	add_domain(f->dir, "example.com");
	if (directory_open(f->dbpath, 0, &dir2, &oerror) < 0)
		fail_msg("%s", oerror);
	for (i = 0; i < THREADS; i++) {
		memset(&workers[i], 0, sizeof(workers[i]));
		workers[i].dir = i % 2 == 0 ? f->dir : dir2;
		workers[i].n = i;
		assert_int_equal(pthread_create(&threads[i], NULL, worker_run, &workers[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	for (i = 0; i < THREADS; i++)
		if (workers[i].error[0] != '\0')
			fail_msg("worker %d: %s", i, workers[i].error);
	resolve(dir2, "shared@example.com", &res);
	assert_int_equal(res.ntargets, 2 * THREADS * ROUNDS);
	directory_resolution_clear(&res);
	directory_close(&dir2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases_catchall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_dedupe_loops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_targets_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_subaddress_catchall, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_handles, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
