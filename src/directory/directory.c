/*
 * The directory's public functions: argument checks and normalization, the
 * dispatch to the backend, and the backend-independent logic of address
 * resolution.
 */
#include "directory/directory.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "directory/directory_backend.h"

#define DIRECTORY_ERROR_SIZE 1024
#define DIRECTORY_LOCAL_MAX 64
#define DIRECTORY_DOMAIN_MAX 253
#define DIRECTORY_LABEL_MAX 63
#define DIRECTORY_PASSWORD_FIELD_MAX 4096
/* Addresses a single resolution may look up, whatever the other limits.
 * (Normalized addresses have no spaces or quotes: safe as log values.) */
#define DIRECTORY_RESOLVE_LOOKUPS_MAX (4 * DIRECTORY_RESOLVE_TARGETS_MAX)
#define DIRECTORY_SUBADDRESS_SEP '+'

struct directory {
	const struct directory_backend_ops *ops;
	struct directory_backend *be;
};

static _Thread_local char directory_errbuf[DIRECTORY_ERROR_SIZE];

int
directory_error(const char **error_r, const char *fmt, ...)
{
	char tmp[DIRECTORY_ERROR_SIZE];
	va_list ap;

	/* Through tmp: an argument may point into directory_errbuf. */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(directory_errbuf, tmp, sizeof(tmp));
	*error_r = directory_errbuf;
	return -1;
}

/* Quotes what the user gave for an error message: printable ASCII only,
 * truncated. */
static const char *
directory_quote(char *out, size_t outsize, const char *s)
{
	size_t i, n = 0, max = 80;

	for (i = 0; s[i] != '\0' && n + 4 < outsize; i++) {
		if (i == max) {
			memcpy(out + n, "...", 3);
			n += 3;
			break;
		}
		out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	}
	out[n] = '\0';
	return out;
}

static int
directory_error_invalid(const char **error_r, const char *what, const char *s)
{
	char q[100];

	return directory_error(error_r, "invalid %s '%s'", what,
	    directory_quote(q, sizeof(q), s));
}

static int
domain_valid(const char *name)
{
	size_t len, label = 0, i;

	len = strlen(name);
	if (len == 0 || len > DIRECTORY_DOMAIN_MAX)
		return 0;
	for (i = 0; i <= len; i++) {
		char c = name[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || name[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (c == '-' && label == 0)
			return 0;
		if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-')
			return 0;
		if (++label > DIRECTORY_LABEL_MAX)
			return 0;
	}
	return 1;
}

char *
directory_normalize_domain(const char *name)
{
	char *copy;
	size_t i;

	if (name == NULL || strlen(name) > DIRECTORY_DOMAIN_MAX)
		return NULL;
	copy = xstrdup(name);
	for (i = 0; copy[i] != '\0'; i++)
		copy[i] = (char)tolower((unsigned char)copy[i]);
	if (!domain_valid(copy)) {
		free(copy);
		return NULL;
	}
	return copy;
}

/* Characters refused in a local part: controls, space, and what would need
 * quoting in an address (RFC 5322 specials). */
static int
local_char_valid(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return 0;
	return strchr("\"(),:;<>@[\\]", c) == NULL;
}

char *
directory_normalize_address(const char *address)
{
	const char *at;
	char *copy;
	size_t len, i, local_len;

	if (address == NULL)
		return NULL;
	len = strlen(address);
	if (len > DIRECTORY_ADDRESS_MAX || (at = strchr(address, '@')) == NULL ||
	    strchr(at + 1, '@') != NULL)
		return NULL;
	local_len = (size_t)(at - address);
	if (local_len == 0 || local_len > DIRECTORY_LOCAL_MAX)
		return NULL;
	for (i = 0; i < local_len; i++)
		if (!local_char_valid((unsigned char)address[i]))
			return NULL;
	copy = xstrdup(address);
	for (i = 0; i < len; i++)
		copy[i] = (char)tolower((unsigned char)copy[i]);
	if (!domain_valid(copy + local_len + 1)) {
		free(copy);
		return NULL;
	}
	return copy;
}

const char *
directory_address_domain(const char *address)
{
	const char *at = strrchr(address, '@');

	return at == NULL ? address + strlen(address) : at + 1;
}

static int
quota_valid(uint64_t quota_bytes, uint64_t quota_messages, const char **error_r)
{
	if (quota_bytes > INT64_MAX || quota_messages > INT64_MAX)
		return directory_error(error_r, "quota too large");
	return 0;
}

static int
credentials_valid(const struct directory_credentials *cred, const char **error_r)
{
	if (cred == NULL)
		return 0;
	if (cred->password != NULL && (cred->password[0] == '\0' ||
	    strlen(cred->password) > DIRECTORY_PASSWORD_FIELD_MAX ||
	    strpbrk(cred->password, "\r\n") != NULL))
		return directory_error(error_r, "malformed password hash");
	if (cred->has_scram && (cred->scram_salt_len == 0 ||
	    cred->scram_salt_len > SCRAM_SALT_MAX || cred->scram_iterations == 0))
		return directory_error(error_r, "malformed SCRAM credentials");
	return 0;
}

int
directory_open(const char *path, int create, struct directory **dir_r, char **error_r)
{
	const struct directory_backend_ops *ops = &directory_backend_sqlite;
	struct directory_backend *be;
	struct directory *dir;

	*error_r = NULL;
	if (ops->open(path, create, &be, error_r) < 0)
		return -1;
	dir = xcalloc(1, sizeof(*dir));
	dir->ops = ops;
	dir->be = be;
	*dir_r = dir;
	return 0;
}

void
directory_close(struct directory **dirp)
{
	struct directory *dir = *dirp;

	if (dir == NULL)
		return;
	dir->ops->close(dir->be);
	free(dir);
	*dirp = NULL;
}

void
directory_stamp(struct directory *dir, struct directory_stamp *stamp)
{
	dir->ops->stamp(dir->be, stamp);
}

int
directory_stamp_equal(const struct directory_stamp *a, const struct directory_stamp *b)
{
	return memcmp(a->v, b->v, sizeof(a->v)) == 0;
}

/* Domains */

int
directory_domain_add(struct directory *dir, const char *name, const char **error_r)
{
	char *norm;
	int ret;

	if ((norm = directory_normalize_domain(name)) == NULL)
		return directory_error_invalid(error_r, "domain name", name);
	ret = dir->ops->domain_add(dir->be, norm, error_r);
	free(norm);
	return ret;
}

int
directory_domain_remove(struct directory *dir, const char *name, int force,
    const char **error_r)
{
	char *norm;
	int ret;

	if ((norm = directory_normalize_domain(name)) == NULL)
		return directory_error_invalid(error_r, "domain name", name);
	ret = dir->ops->domain_remove(dir->be, norm, force, error_r);
	free(norm);
	return ret;
}

int
directory_domain_list(struct directory *dir, struct directory_domain **domains_r,
    size_t *count_r, const char **error_r)
{
	return dir->ops->domain_list(dir->be, domains_r, count_r, error_r);
}

int
directory_domain_exists(struct directory *dir, const char *name, const char **error_r)
{
	char *norm;
	int ret;

	/* A name that cannot be a domain is not one of ours. */
	if ((norm = directory_normalize_domain(name)) == NULL)
		return 0;
	ret = dir->ops->domain_get(dir->be, norm, NULL, error_r);
	free(norm);
	return ret;
}

/* Accounts */

int
directory_account_add(struct directory *dir, const char *address,
    const struct directory_credentials *cred, uint64_t quota_bytes,
    uint64_t quota_messages, int64_t *id_r, const char **error_r)
{
	char *norm;
	int64_t id;
	int ret;

	if ((norm = directory_normalize_address(address)) == NULL)
		return directory_error_invalid(error_r, "address", address);
	if (quota_valid(quota_bytes, quota_messages, error_r) < 0 ||
	    credentials_valid(cred, error_r) < 0) {
		free(norm);
		return -1;
	}
	ret = dir->ops->account_add(dir->be, norm, cred, quota_bytes, quota_messages,
	    &id, error_r);
	free(norm);
	if (ret == 0 && id_r != NULL)
		*id_r = id;
	return ret;
}

int
directory_account_remove(struct directory *dir, const char *address,
    const char **error_r)
{
	char *norm;
	int ret;

	if ((norm = directory_normalize_address(address)) == NULL)
		return directory_error_invalid(error_r, "address", address);
	ret = dir->ops->account_remove(dir->be, norm, error_r);
	free(norm);
	return ret;
}

int
directory_account_list(struct directory *dir, const char *domain,
    struct directory_account **accounts_r, size_t *count_r, const char **error_r)
{
	char *norm = NULL;
	int ret;

	if (domain != NULL && (norm = directory_normalize_domain(domain)) == NULL)
		return directory_error_invalid(error_r, "domain name", domain);
	ret = dir->ops->account_list(dir->be, norm, accounts_r, count_r, error_r);
	free(norm);
	return ret;
}

int
directory_account_get(struct directory *dir, const char *address,
    struct directory_account *account_r, const char **error_r)
{
	char *norm;
	int ret;

	if ((norm = directory_normalize_address(address)) == NULL)
		return 0;
	ret = dir->ops->account_get(dir->be, norm, 0, account_r, error_r);
	free(norm);
	return ret;
}

int
directory_account_get_by_id(struct directory *dir, int64_t id,
    struct directory_account *account_r, const char **error_r)
{
	if (id <= 0)
		return 0;
	return dir->ops->account_get(dir->be, NULL, id, account_r, error_r);
}

int
directory_account_set_credentials(struct directory *dir, const char *address,
    const struct directory_credentials *cred, const char **error_r)
{
	char *norm;
	int ret;

	if ((norm = directory_normalize_address(address)) == NULL)
		return directory_error_invalid(error_r, "address", address);
	if (credentials_valid(cred, error_r) < 0) {
		free(norm);
		return -1;
	}
	ret = dir->ops->account_set_credentials(dir->be, norm, cred, error_r);
	free(norm);
	return ret;
}

int
directory_account_upgrade_credentials(struct directory *dir, int64_t id,
    const char *expected, const struct directory_credentials *cred,
    const char **error_r)
{
	if (cred == NULL || cred->password == NULL)
		return directory_error(error_r, "no new password to store");
	if (credentials_valid(cred, error_r) < 0)
		return -1;
	return dir->ops->account_upgrade_credentials(dir->be, id, expected, cred, error_r);
}

int
directory_account_set_quota(struct directory *dir, const char *address,
    uint64_t quota_bytes, uint64_t quota_messages, const char **error_r)
{
	char *norm;
	int ret;

	if ((norm = directory_normalize_address(address)) == NULL)
		return directory_error_invalid(error_r, "address", address);
	if (quota_valid(quota_bytes, quota_messages, error_r) < 0) {
		free(norm);
		return -1;
	}
	ret = dir->ops->account_set_quota(dir->be, norm, quota_bytes, quota_messages,
	    error_r);
	free(norm);
	return ret;
}

int
directory_account_import(struct directory *dir, const struct directory_import *rec,
    int *domain_created_r, int *account_created_r, const char **error_r)
{
	struct directory_credentials cred;
	struct directory_import norm_rec = *rec;
	char *norm;
	int domain_created = 0, account_created = 0, ret;

	if ((norm = directory_normalize_address(rec->address)) == NULL)
		return directory_error_invalid(error_r, "address", rec->address);
	memset(&cred, 0, sizeof(cred));
	cred.password = (char *)rec->password;
	if (credentials_valid(&cred, error_r) < 0 ||
	    quota_valid(rec->has_quota_bytes ? rec->quota_bytes : 0,
	    rec->has_quota_messages ? rec->quota_messages : 0, error_r) < 0) {
		free(norm);
		return -1;
	}
	norm_rec.address = norm;
	ret = dir->ops->account_import(dir->be, &norm_rec, &domain_created,
	    &account_created, error_r);
	free(norm);
	if (ret == 0) {
		if (domain_created_r != NULL)
			*domain_created_r = domain_created;
		if (account_created_r != NULL)
			*account_created_r = account_created;
	}
	return ret;
}

/* Aliases and catch-alls */

int
directory_alias_add(struct directory *dir, const char *address, const char *target,
    const char **error_r)
{
	char *norm, *norm_target;
	int ret;

	if ((norm = directory_normalize_address(address)) == NULL)
		return directory_error_invalid(error_r, "address", address);
	if ((norm_target = directory_normalize_address(target)) == NULL) {
		free(norm);
		return directory_error_invalid(error_r, "target address", target);
	}
	ret = dir->ops->alias_add(dir->be, norm, norm_target, error_r);
	free(norm);
	free(norm_target);
	return ret;
}

int
directory_alias_remove(struct directory *dir, const char *address, const char *target,
    const char **error_r)
{
	char *norm, *norm_target = NULL;
	int ret;

	if ((norm = directory_normalize_address(address)) == NULL)
		return directory_error_invalid(error_r, "address", address);
	if (target != NULL && (norm_target = directory_normalize_address(target)) == NULL) {
		free(norm);
		return directory_error_invalid(error_r, "target address", target);
	}
	ret = dir->ops->alias_remove(dir->be, norm, norm_target, error_r);
	free(norm);
	free(norm_target);
	return ret;
}

int
directory_alias_list(struct directory *dir, const char *domain,
    struct directory_alias **aliases_r, size_t *count_r, const char **error_r)
{
	char *norm = NULL;
	int ret;

	if (domain != NULL && (norm = directory_normalize_domain(domain)) == NULL)
		return directory_error_invalid(error_r, "domain name", domain);
	ret = dir->ops->alias_list(dir->be, norm, aliases_r, count_r, error_r);
	free(norm);
	return ret;
}

int
directory_catchall_set(struct directory *dir, const char *domain, const char *target,
    const char **error_r)
{
	char *norm, *norm_target;
	int ret;

	if ((norm = directory_normalize_domain(domain)) == NULL)
		return directory_error_invalid(error_r, "domain name", domain);
	if ((norm_target = directory_normalize_address(target)) == NULL) {
		free(norm);
		return directory_error_invalid(error_r, "target address", target);
	}
	ret = dir->ops->catchall_set(dir->be, norm, norm_target, error_r);
	free(norm);
	free(norm_target);
	return ret;
}

int
directory_catchall_clear(struct directory *dir, const char *domain, const char **error_r)
{
	char *norm;
	int ret;

	if ((norm = directory_normalize_domain(domain)) == NULL)
		return directory_error_invalid(error_r, "domain name", domain);
	ret = dir->ops->catchall_set(dir->be, norm, NULL, error_r);
	free(norm);
	return ret;
}

/*
 * Resolution. A breadth-first walk over the alias graph: breadth first so
 * that every address is reached by its shortest chain and the depth limit
 * cuts as little as possible. One set of seen addresses both cuts loops and
 * removes duplicates, since every address is expanded at most once.
 */

struct addr_set {
	char **slots;
	size_t cap;     /* a power of two */
	size_t count;
};

struct resolve_node {
	const char *address;    /* owned by the set */
	int depth;
};

struct resolver {
	struct directory *dir;
	struct directory_resolution *res;
	const char *origin;     /* for log lines */
	struct addr_set seen;
	struct resolve_node *queue;
	size_t qhead, qlen, qcap;
	size_t lookups;
	size_t targets_cap;
	int warned_depth, warned_targets, warned_lookups;
};

static uint64_t
addr_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void
addr_set_grow(struct addr_set *set)
{
	char **old = set->slots;
	size_t oldcap = set->cap, i, j;

	set->cap = oldcap == 0 ? 64 : oldcap * 2;
	set->slots = xcalloc(set->cap, sizeof(*set->slots));
	for (i = 0; i < oldcap; i++) {
		if (old[i] == NULL)
			continue;
		j = addr_hash(old[i]) & (set->cap - 1);
		while (set->slots[j] != NULL)
			j = (j + 1) & (set->cap - 1);
		set->slots[j] = old[i];
	}
	free(old);
}

/* Adds s; returns the set's copy, or NULL when it was already there. */
static const char *
addr_set_add(struct addr_set *set, const char *s)
{
	size_t j;

	if ((set->count + 1) * 2 > set->cap)
		addr_set_grow(set);
	j = addr_hash(s) & (set->cap - 1);
	while (set->slots[j] != NULL) {
		if (strcmp(set->slots[j], s) == 0)
			return NULL;
		j = (j + 1) & (set->cap - 1);
	}
	set->slots[j] = xstrdup(s);
	set->count++;
	return set->slots[j];
}

static void
addr_set_free(struct addr_set *set)
{
	size_t i;

	for (i = 0; i < set->cap; i++)
		free(set->slots[i]);
	free(set->slots);
	memset(set, 0, sizeof(*set));
}

static void
resolver_push(struct resolver *r, const char *address, int depth)
{
	if (r->qlen == r->qcap) {
		r->qcap = r->qcap == 0 ? 16 : r->qcap * 2;
		r->queue = xreallocarray(r->queue, r->qcap, sizeof(*r->queue));
	}
	r->queue[r->qlen].address = address;
	r->queue[r->qlen].depth = depth;
	r->qlen++;
}

static void
resolver_add_target(struct resolver *r, enum directory_target_kind kind, int64_t id,
    const char *address)
{
	struct directory_resolution *res = r->res;
	struct directory_target *t;

	if (res->ntargets >= DIRECTORY_RESOLVE_TARGETS_MAX) {
		if (!r->warned_targets)
			log_warn(NULL, "msg=\"resolve: too many targets, rest left out\" "
			    "address=%s limit=%d", r->origin, DIRECTORY_RESOLVE_TARGETS_MAX);
		r->warned_targets = 1;
		return;
	}
	if (res->ntargets == r->targets_cap) {
		r->targets_cap = r->targets_cap == 0 ? 4 : r->targets_cap * 2;
		res->targets = xreallocarray(res->targets, r->targets_cap,
		    sizeof(*res->targets));
	}
	t = &res->targets[res->ntargets++];
	t->kind = kind;
	t->account_id = kind == DIRECTORY_TARGET_MAILBOX ? id : 0;
	t->address = xstrdup(address);
}

/* Looks up one address: its mailbox and its alias targets. Hosted targets
 * are queued, outside ones added. Sets *matched when the address exists as
 * an account or an alias. */
static int
resolver_lookup(struct resolver *r, const char *address, int depth, int *matched,
    const char **error_r)
{
	const struct directory_backend_ops *ops = r->dir->ops;
	char **targets = NULL;
	const char *copy;
	size_t ntargets = 0, nfollow, i;
	int64_t id;
	int ret;

	*matched = 0;
	if (++r->lookups > DIRECTORY_RESOLVE_LOOKUPS_MAX) {
		if (!r->warned_lookups)
			log_warn(NULL, "msg=\"resolve: too many lookups, rest left out\" "
			    "address=%s limit=%d", r->origin, DIRECTORY_RESOLVE_LOOKUPS_MAX);
		r->warned_lookups = 1;
		return 0;
	}
	if ((ret = ops->account_find(r->dir->be, address, &id, error_r)) < 0)
		return -1;
	if (ret == 1) {
		*matched = 1;
		resolver_add_target(r, DIRECTORY_TARGET_MAILBOX, id, address);
	}
	if (ops->alias_targets(r->dir->be, address, &targets, &ntargets, error_r) < 0)
		return -1;
	if (ntargets > 0)
		*matched = 1;
	nfollow = ntargets;
	if (ntargets > 0 && depth >= DIRECTORY_ALIAS_DEPTH_MAX) {
		if (!r->warned_depth)
			log_warn(NULL, "msg=\"resolve: alias chain too deep, cut\" "
			    "address=%s alias=%s limit=%d", r->origin, address,
			    DIRECTORY_ALIAS_DEPTH_MAX);
		r->warned_depth = 1;
		nfollow = 0;
	}
	ret = 0;
	for (i = 0; i < nfollow; i++) {
		if ((copy = addr_set_add(&r->seen, targets[i])) == NULL)
			continue;
		ret = ops->domain_get(r->dir->be, directory_address_domain(copy), NULL,
		    error_r);
		if (ret < 0)
			break;
		if (ret == 1)
			resolver_push(r, copy, depth + 1);
		else
			resolver_add_target(r, DIRECTORY_TARGET_EXTERNAL, 0, copy);
		ret = 0;
	}
	for (i = 0; i < ntargets; i++)
		free(targets[i]);
	free(targets);
	return ret;
}

/* "local+tag@domain" -> "local@domain", or NULL when there is no tag. */
static char *
subaddress_base(const char *address, const char **tag_r)
{
	const char *sep, *at = strrchr(address, '@');

	sep = memchr(address, DIRECTORY_SUBADDRESS_SEP, (size_t)(at - address));
	if (sep == NULL || sep == address)
		return NULL;
	if (tag_r != NULL)
		*tag_r = sep + 1;
	return xasprintf("%.*s%s", (int)(sep - address), address, at);
}

/* Empties the queue. Addresses queued from aliases get the +tag fallback. */
static int
resolver_run(struct resolver *r, const char **error_r)
{
	struct resolve_node node;
	const char *copy;
	char *base;
	int matched;

	while (r->qhead < r->qlen) {
		node = r->queue[r->qhead++];
		if (resolver_lookup(r, node.address, node.depth, &matched, error_r) < 0)
			return -1;
		if (matched || node.depth == 0 ||
		    (base = subaddress_base(node.address, NULL)) == NULL)
			continue;
		copy = addr_set_add(&r->seen, base);
		free(base);
		if (copy != NULL && resolver_lookup(r, copy, node.depth, &matched,
		    error_r) < 0)
			return -1;
	}
	return 0;
}

static int
resolve_walk(struct resolver *r, const char *address, const char **error_r)
{
	struct directory_resolution *res = r->res;
	struct directory_domain domain;
	const char *copy, *tag = NULL;
	char *base;
	int ret;

	memset(&domain, 0, sizeof(domain));
	ret = r->dir->ops->domain_get(r->dir->be, directory_address_domain(address),
	    &domain, error_r);
	if (ret <= 0) {
		res->status = DIRECTORY_NOT_LOCAL;
		return ret;
	}
	copy = addr_set_add(&r->seen, address);
	resolver_push(r, copy, 0);
	if (resolver_run(r, error_r) < 0)
		goto fail;

	if (res->ntargets == 0 && (base = subaddress_base(address, &tag)) != NULL) {
		if ((copy = addr_set_add(&r->seen, base)) != NULL)
			resolver_push(r, copy, 0);
		free(base);
		if (resolver_run(r, error_r) < 0)
			goto fail;
		if (res->ntargets > 0)
			res->subaddress = xstrndup(tag, (size_t)(strrchr(tag, '@') - tag));
	}

	if (res->ntargets == 0 && domain.catchall != NULL &&
	    (copy = addr_set_add(&r->seen, domain.catchall)) != NULL) {
		ret = r->dir->ops->domain_get(r->dir->be, directory_address_domain(copy),
		    NULL, error_r);
		if (ret < 0)
			goto fail;
		if (ret == 1)
			resolver_push(r, copy, 1);
		else
			resolver_add_target(r, DIRECTORY_TARGET_EXTERNAL, 0, copy);
		if (resolver_run(r, error_r) < 0)
			goto fail;
	}
	res->status = res->ntargets > 0 ? DIRECTORY_FOUND : DIRECTORY_UNKNOWN;
	free(domain.name);
	free(domain.catchall);
	return 0;
fail:
	free(domain.name);
	free(domain.catchall);
	return -1;
}

int
directory_resolve(struct directory *dir, const char *address,
    struct directory_resolution *res, const char **error_r)
{
	struct resolver r;
	char *norm;
	int ret;

	memset(res, 0, sizeof(*res));
	if ((norm = directory_normalize_address(address)) == NULL)
		return directory_error_invalid(error_r, "address", address);
	memset(&r, 0, sizeof(r));
	r.dir = dir;
	r.res = res;
	r.origin = norm;
	if (dir->ops->read_begin(dir->be, error_r) < 0) {
		free(norm);
		return -1;
	}
	ret = resolve_walk(&r, norm, error_r);
	dir->ops->read_end(dir->be);
	addr_set_free(&r.seen);
	free(r.queue);
	free(norm);
	if (ret < 0)
		directory_resolution_clear(res);
	return ret;
}

/* Freeing */

void
directory_credentials_clear(struct directory_credentials *cred)
{
	if (cred->password != NULL) {
		explicit_bzero(cred->password, strlen(cred->password));
		free(cred->password);
	}
	explicit_bzero(cred, sizeof(*cred));
}

void
directory_account_clear(struct directory_account *account)
{
	free(account->address);
	free(account->domain);
	directory_credentials_clear(&account->cred);
	memset(account, 0, sizeof(*account));
}

void
directory_accounts_free(struct directory_account **accounts, size_t count)
{
	size_t i;

	if (*accounts == NULL)
		return;
	for (i = 0; i < count; i++)
		directory_account_clear(&(*accounts)[i]);
	free(*accounts);
	*accounts = NULL;
}

void
directory_aliases_free(struct directory_alias **aliases, size_t count)
{
	size_t i;

	if (*aliases == NULL)
		return;
	for (i = 0; i < count; i++) {
		free((*aliases)[i].address);
		free((*aliases)[i].target);
	}
	free(*aliases);
	*aliases = NULL;
}

void
directory_domains_free(struct directory_domain **domains, size_t count)
{
	size_t i;

	if (*domains == NULL)
		return;
	for (i = 0; i < count; i++) {
		free((*domains)[i].name);
		free((*domains)[i].catchall);
	}
	free(*domains);
	*domains = NULL;
}

void
directory_resolution_clear(struct directory_resolution *res)
{
	size_t i;

	for (i = 0; i < res->ntargets; i++)
		free(res->targets[i].address);
	free(res->targets);
	free(res->subaddress);
	memset(res, 0, sizeof(*res));
}
