/*
 * The directory: domains, accounts, aliases (forwarders), catch-alls and
 * quotas, and the lookup "which mailboxes or outside addresses does this
 * address reach".
 *
 * Callers see only this interface; the backend (SQLite in the data
 * directory, later PostgreSQL) is chosen by directory_open() and lives
 * behind a vtable in directory_backend.h. Every function may block (it reads
 * a database), so I/O threads call it from the worker pool.
 *
 * A struct directory may be used from several threads at once.
 *
 * Addresses are compared case-insensitively and stored lower-cased.
 * Return convention: 0 success, -1 error with *error_r set to a message the
 * CLI can print (static or owned by the directory: valid until the next call
 * from the same thread). Lookups return 1 found, 0 not found, -1 error.
 */
#ifndef PETREL_DIRECTORY_DIRECTORY_H
#define PETREL_DIRECTORY_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

struct directory;

/* Limits on what the resolver follows. */
#define DIRECTORY_ALIAS_DEPTH_MAX 10     /* alias -> alias -> ... */
#define DIRECTORY_RESOLVE_TARGETS_MAX 1000 /* mailboxes + outside addresses */
#define DIRECTORY_ADDRESS_MAX 320        /* bytes in an address */

#define SCRAM_KEY_SIZE 32                /* SHA-256 */
#define SCRAM_SALT_MAX 64

/* What is stored to check a user's password. */
struct directory_credentials {
	char *password;         /* "{SCHEME}hash", NULL: no password login */
	int has_scram;
	unsigned char scram_salt[SCRAM_SALT_MAX];
	size_t scram_salt_len;
	uint32_t scram_iterations;
	unsigned char scram_stored_key[SCRAM_KEY_SIZE];
	unsigned char scram_server_key[SCRAM_KEY_SIZE];
};

struct directory_account {
	int64_t id;
	char *address;          /* "user@example.com" */
	char *domain;
	struct directory_credentials cred;
	uint64_t quota_bytes;   /* 0: unlimited */
	uint64_t quota_messages;/* 0: unlimited */
	int64_t created;        /* Unix time */
};

struct directory_alias {
	char *address;          /* the alias */
	char *target;           /* a local or outside address */
};

struct directory_domain {
	int64_t id;
	char *name;
	char *catchall;         /* target address, NULL when none */
	int64_t created;
	size_t naccounts;       /* filled in by directory_domain_list() */
	size_t naliases;        /* alias rows (address -> target pairs) */
};

/* One account as read from another server's user list (an import). */
struct directory_import {
	const char *address;
	const char *password;   /* "{SCHEME}hash" stored as is; NULL: none for a
	                         * new account, unchanged for an existing one */
	int has_quota_bytes;    /* else: 0 for a new account, kept for an old one */
	uint64_t quota_bytes;
	int has_quota_messages;
	uint64_t quota_messages;
};

/* Where an address leads. */
enum directory_target_kind { DIRECTORY_TARGET_MAILBOX, DIRECTORY_TARGET_EXTERNAL };
struct directory_target {
	enum directory_target_kind kind;
	int64_t account_id;     /* MAILBOX */
	char *address;          /* MAILBOX: the account's address; EXTERNAL: where to forward */
};

enum directory_resolve_status {
	DIRECTORY_NOT_LOCAL,    /* the domain is not hosted here */
	DIRECTORY_UNKNOWN,      /* hosted domain, but nothing matches: refuse at RCPT */
	DIRECTORY_FOUND,        /* targets filled in */
};

struct directory_resolution {
	enum directory_resolve_status status;
	char *subaddress;       /* the +tag, if the address had one, else NULL */
	struct directory_target *targets;
	size_t ntargets;
};

/* Opens (and with create, creates) the directory database at path. Without
 * create, a missing or uninitialized database is an error and nothing is
 * written. *error_r is allocated: the caller frees it. */
int directory_open(const char *path, int create, struct directory **dir_r, char **error_r);
void directory_close(struct directory **dir);

/* Domains. Removing a domain that still has accounts or aliases fails
 * unless force is set, in which case they go too. */
int directory_domain_add(struct directory *dir, const char *name, const char **error_r);
int directory_domain_remove(struct directory *dir, const char *name, int force,
    const char **error_r);
/* Sorted by name. */
int directory_domain_list(struct directory *dir, struct directory_domain **domains_r,
    size_t *count_r, const char **error_r);
/* 1 when the domain is hosted here. */
int directory_domain_exists(struct directory *dir, const char *name, const char **error_r);

/* Accounts. The domain must exist. cred may be NULL (no password yet). */
int directory_account_add(struct directory *dir, const char *address,
    const struct directory_credentials *cred, uint64_t quota_bytes,
    uint64_t quota_messages, int64_t *id_r, const char **error_r);
int directory_account_remove(struct directory *dir, const char *address,
    const char **error_r);
/* domain NULL: all accounts. Sorted by address. */
int directory_account_list(struct directory *dir, const char *domain,
    struct directory_account **accounts_r, size_t *count_r, const char **error_r);
/* 1 found (account_r filled in: clear it with directory_account_clear),
 * 0 not found, -1 error. */
int directory_account_get(struct directory *dir, const char *address,
    struct directory_account *account_r, const char **error_r);
int directory_account_get_by_id(struct directory *dir, int64_t id,
    struct directory_account *account_r, const char **error_r);
/* cred NULL: removes the password (no password login). */
int directory_account_set_credentials(struct directory *dir, const char *address,
    const struct directory_credentials *cred, const char **error_r);
/* Replaces the password only if it is still `expected` (compare-and-swap, for
 * rehashing on login without racing a `passwd`). Returns 1 replaced, 0 not. */
int directory_account_upgrade_credentials(struct directory *dir, int64_t id,
    const char *expected, const struct directory_credentials *cred,
    const char **error_r);
int directory_account_set_quota(struct directory *dir, const char *address,
    uint64_t quota_bytes, uint64_t quota_messages, const char **error_r);
/* Adds or updates one imported account in a single transaction: creates the
 * domain when it is not hosted yet, then adds the account or, when it exists,
 * replaces its password when the record has one (dropping its SCRAM keys,
 * which belonged to the old one) and the quotas the record has. The
 * password's scheme is not checked here. *domain_created_r and *account_created_r (either may be NULL) say
 * what was created. */
int directory_account_import(struct directory *dir, const struct directory_import *rec,
    int *domain_created_r, int *account_created_r, const char **error_r);

/* Aliases (forwarders): address -> target, one row per target. The alias's
 * domain must be hosted here; the target may be anywhere. */
int directory_alias_add(struct directory *dir, const char *address, const char *target,
    const char **error_r);
/* target NULL: every target of the address. */
int directory_alias_remove(struct directory *dir, const char *address, const char *target,
    const char **error_r);
/* domain NULL: all aliases. Sorted by address, then target. */
int directory_alias_list(struct directory *dir, const char *domain,
    struct directory_alias **aliases_r, size_t *count_r, const char **error_r);

/* Catch-all: where mail for unknown addresses of a domain goes. Clearing a
 * domain without one succeeds. */
int directory_catchall_set(struct directory *dir, const char *domain, const char *target,
    const char **error_r);
int directory_catchall_clear(struct directory *dir, const char *domain, const char **error_r);

/* Resolves an address: an account; its aliases (followed recursively up to
 * the limits above, duplicates removed, loops cut); "local+tag" falls back to
 * "local" when nothing matches the full local part; the domain's catch-all
 * last. An account that is also an alias gets both its mailbox and the
 * alias targets. Returns 0 with *res filled in, -1 on error.
 *
 * Details:
 * - "Matches" means: leads to at least one target. An alias whose targets
 *   are all unknown addresses of hosted domains leads nowhere, so the +tag
 *   fallback and then the catch-all are tried.
 * - Alias targets in hosted domains are resolved the same way (including the
 *   +tag fallback, but not the target domain's catch-all); an unknown one
 *   contributes nothing. Targets in other domains are EXTERNAL.
 * - res->subaddress is set only when the +tag fallback is what matched.
 * - Targets are in breadth-first order, the address's own mailbox first;
 *   past DIRECTORY_RESOLVE_TARGETS_MAX targets or DIRECTORY_ALIAS_DEPTH_MAX
 *   alias hops the rest is left out (and logged), not an error.
 * - An address that directory_normalize_address() refuses is an error. */
int directory_resolve(struct directory *dir, const char *address,
    struct directory_resolution *res, const char **error_r);

void directory_account_clear(struct directory_account *account);
void directory_credentials_clear(struct directory_credentials *cred);
void directory_accounts_free(struct directory_account **accounts, size_t count);
void directory_aliases_free(struct directory_alias **aliases, size_t count);
void directory_domains_free(struct directory_domain **domains, size_t count);
void directory_resolution_clear(struct directory_resolution *res);

/* Changes whenever the directory's data may have changed (in this process
 * or another): callers caching what they looked up compare stamps. It
 * does not block on the database (two stat() calls): I/O threads may call
 * it. */
struct directory_stamp {
	uint64_t v[6];
};
void directory_stamp(struct directory *dir, struct directory_stamp *stamp);
int directory_stamp_equal(const struct directory_stamp *a, const struct directory_stamp *b);

/* Lower-cases and checks an address (local@domain, no spaces or controls,
 * at most DIRECTORY_ADDRESS_MAX bytes). Returns an allocated normalized copy
 * or NULL. */
char *directory_normalize_address(const char *address);
/* Lower-cases and checks a domain name (LDH labels of 1 to 63 bytes, at most
 * 253 bytes, no leading or trailing hyphen or dot). Returns an allocated
 * copy or NULL. */
char *directory_normalize_domain(const char *name);

#endif
