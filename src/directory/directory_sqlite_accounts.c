/*
 * The SQLite directory backend: accounts, aliases and catch-alls. Each
 * operation takes the connection's lock; those that check before they write
 * do both in one write transaction.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xmalloc.h"
#include "directory/directory_sqlite.h"

/* Binds password and SCRAM columns at first .. first + 4. */
static void
bind_credentials(sqlite3_stmt *st, int first, const struct directory_credentials *cred)
{
	if (cred == NULL)
		return;
	if (cred->password != NULL)
		sqlite3_bind_text(st, first, cred->password, -1, SQLITE_STATIC);
	if (!cred->has_scram)
		return;
	sqlite3_bind_blob(st, first + 1, cred->scram_salt, (int)cred->scram_salt_len,
	    SQLITE_STATIC);
	sqlite3_bind_int64(st, first + 2, cred->scram_iterations);
	sqlite3_bind_blob(st, first + 3, cred->scram_stored_key, SCRAM_KEY_SIZE,
	    SQLITE_STATIC);
	sqlite3_bind_blob(st, first + 4, cred->scram_server_key, SCRAM_KEY_SIZE,
	    SQLITE_STATIC);
}

static void
read_account(sqlite3_stmt *st, struct directory_account *a)
{
	struct directory_credentials *cred = &a->cred;
	const void *salt, *stored, *server;
	int salt_len;
	sqlite3_int64 iterations;

	memset(a, 0, sizeof(*a));
	a->id = sqlite3_column_int64(st, 0);
	a->address = dsql_column_strdup(st, 1);
	a->domain = dsql_column_strdup(st, 2);
	cred->password = dsql_column_strdup(st, 3);
	salt = sqlite3_column_blob(st, 4);
	salt_len = sqlite3_column_bytes(st, 4);
	iterations = sqlite3_column_int64(st, 5);
	stored = sqlite3_column_blob(st, 6);
	server = sqlite3_column_blob(st, 7);
	/* Anything malformed reads as "no SCRAM keys": the user can still log
	 * in with the password and get new ones. */
	if (salt != NULL && salt_len > 0 && salt_len <= SCRAM_SALT_MAX &&
	    iterations > 0 && iterations <= UINT32_MAX &&
	    stored != NULL && sqlite3_column_bytes(st, 6) == SCRAM_KEY_SIZE &&
	    server != NULL && sqlite3_column_bytes(st, 7) == SCRAM_KEY_SIZE) {
		cred->has_scram = 1;
		memcpy(cred->scram_salt, salt, (size_t)salt_len);
		cred->scram_salt_len = (size_t)salt_len;
		cred->scram_iterations = (uint32_t)iterations;
		memcpy(cred->scram_stored_key, stored, SCRAM_KEY_SIZE);
		memcpy(cred->scram_server_key, server, SCRAM_KEY_SIZE);
	}
	a->quota_bytes = (uint64_t)sqlite3_column_int64(st, 8);
	a->quota_messages = (uint64_t)sqlite3_column_int64(st, 9);
	a->created = sqlite3_column_int64(st, 10);
}

/* Accounts */

static int
account_insert(struct directory_backend *be, const char *address, int64_t domain_id,
    const struct directory_credentials *cred, uint64_t quota_bytes,
    uint64_t quota_messages, int64_t *id_r, const char **error_r)
{
	sqlite3_stmt *st;

	if ((st = dsql_stmt(be, STMT_ACCOUNT_INSERT, error_r)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, domain_id);
	bind_credentials(st, 3, cred);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)quota_bytes);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)quota_messages);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)time(NULL));
	if (dsql_step_done(be, st, error_r) < 0) {
		if (be->last_rc == SQLITE_CONSTRAINT_UNIQUE)
			return directory_error(error_r, "account %s already exists", address);
		return -1;
	}
	if (id_r != NULL)
		*id_r = sqlite3_last_insert_rowid(be->db);
	return 0;
}

int
dsql_account_add(struct directory_backend *be, const char *address,
    const struct directory_credentials *cred, uint64_t quota_bytes,
    uint64_t quota_messages, int64_t *id_r, const char **error_r)
{
	int64_t domain_id;

	dsql_lock(be);
	if (dsql_begin(be, error_r) < 0) {
		dsql_unlock(be);
		return -1;
	}
	if (dsql_domain_require(be, directory_address_domain(address), &domain_id, error_r) < 0 ||
	    account_insert(be, address, domain_id, cred, quota_bytes, quota_messages,
	    id_r, error_r) < 0 || dsql_commit(be, error_r) < 0) {
		dsql_rollback(be);
		dsql_unlock(be);
		return -1;
	}
	dsql_unlock(be);
	return 0;
}

/* Runs a one-statement update or delete of the account `address`; a missing
 * account is an error. Lock held by the caller. */
static int
account_change(struct directory_backend *be, sqlite3_stmt *st, const char *address,
    const char **error_r)
{
	if (dsql_step_done(be, st, error_r) < 0)
		return -1;
	if (sqlite3_changes(be->db) == 0)
		return directory_error(error_r, "no account %s", address);
	return 0;
}

int
dsql_account_remove(struct directory_backend *be, const char *address,
    const char **error_r)
{
	sqlite3_stmt *st;
	int ret = -1;

	dsql_lock(be);
	if ((st = dsql_stmt(be, STMT_ACCOUNT_DELETE, error_r)) != NULL) {
		sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
		ret = account_change(be, st, address, error_r);
	}
	dsql_unlock(be);
	return ret;
}

int
dsql_account_list(struct directory_backend *be, const char *domain,
    struct directory_account **accounts_r, size_t *count_r, const char **error_r)
{
	struct directory_account *accounts = NULL;
	sqlite3_stmt *st;
	size_t count = 0, cap = 0;
	int rc;

	dsql_lock(be);
	st = dsql_stmt(be, domain == NULL ? STMT_ACCOUNT_LIST_ALL : STMT_ACCOUNT_LIST_DOMAIN,
	    error_r);
	if (st == NULL) {
		dsql_unlock(be);
		return -1;
	}
	if (domain != NULL)
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			accounts = xreallocarray(accounts, cap, sizeof(*accounts));
		}
		read_account(st, &accounts[count++]);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		dsql_error(be, rc, error_r);
		dsql_unlock(be);
		directory_accounts_free(&accounts, count);
		return -1;
	}
	dsql_unlock(be);
	*accounts_r = accounts;
	*count_r = count;
	return 0;
}

int
dsql_account_get(struct directory_backend *be, const char *address, int64_t id,
    struct directory_account *account_r, const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	dsql_lock(be);
	st = dsql_stmt(be, address != NULL ? STMT_ACCOUNT_BY_ADDRESS : STMT_ACCOUNT_BY_ID,
	    error_r);
	if (st != NULL) {
		if (address != NULL)
			sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, 1, id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			read_account(st, account_r);
			ret = 1;
		} else if (rc == SQLITE_DONE) {
			ret = 0;
		} else {
			dsql_error(be, rc, error_r);
		}
		sqlite3_reset(st);
	}
	dsql_unlock(be);
	return ret;
}

int
dsql_account_find(struct directory_backend *be, const char *address, int64_t *id_r,
    const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret = -1;

	dsql_lock(be);
	if ((st = dsql_stmt(be, STMT_ACCOUNT_FIND, error_r)) != NULL) {
		sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*id_r = sqlite3_column_int64(st, 0);
			ret = 1;
		} else if (rc == SQLITE_DONE) {
			ret = 0;
		} else {
			dsql_error(be, rc, error_r);
		}
		sqlite3_reset(st);
	}
	dsql_unlock(be);
	return ret;
}

int
dsql_account_set_credentials(struct directory_backend *be, const char *address,
    const struct directory_credentials *cred, const char **error_r)
{
	sqlite3_stmt *st;
	int ret = -1;

	dsql_lock(be);
	if ((st = dsql_stmt(be, STMT_ACCOUNT_SET_CRED, error_r)) != NULL) {
		bind_credentials(st, 1, cred);
		sqlite3_bind_text(st, 6, address, -1, SQLITE_STATIC);
		ret = account_change(be, st, address, error_r);
	}
	dsql_unlock(be);
	return ret;
}

int
dsql_account_upgrade_credentials(struct directory_backend *be, int64_t id,
    const char *expected, const struct directory_credentials *cred,
    const char **error_r)
{
	sqlite3_stmt *st;
	int ret = -1;

	dsql_lock(be);
	if ((st = dsql_stmt(be, STMT_ACCOUNT_UPGRADE_CRED, error_r)) != NULL) {
		bind_credentials(st, 1, cred);
		sqlite3_bind_int64(st, 6, id);
		if (expected != NULL)
			sqlite3_bind_text(st, 7, expected, -1, SQLITE_STATIC);
		if (dsql_step_done(be, st, error_r) == 0)
			ret = sqlite3_changes(be->db) > 0 ? 1 : 0;
	}
	dsql_unlock(be);
	return ret;
}

int
dsql_account_set_quota(struct directory_backend *be, const char *address,
    uint64_t quota_bytes, uint64_t quota_messages, const char **error_r)
{
	sqlite3_stmt *st;
	int ret = -1;

	dsql_lock(be);
	if ((st = dsql_stmt(be, STMT_ACCOUNT_SET_QUOTA, error_r)) != NULL) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)quota_bytes);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)quota_messages);
		sqlite3_bind_text(st, 3, address, -1, SQLITE_STATIC);
		ret = account_change(be, st, address, error_r);
	}
	dsql_unlock(be);
	return ret;
}

/* The body of dsql_account_import, inside its transaction. */
static int
account_import(struct directory_backend *be, const struct directory_import *rec,
    int *domain_created_r, int *account_created_r, const char **error_r)
{
	struct directory_credentials cred;
	const char *domain = directory_address_domain(rec->address);
	sqlite3_stmt *st;
	int64_t domain_id;
	int ret;

	if ((ret = dsql_domain_lookup(be, domain, &domain_id, NULL, error_r)) < 0)
		return -1;
	if (ret == 0) {
		if (dsql_domain_insert(be, domain, &domain_id, error_r) < 0)
			return -1;
		*domain_created_r = 1;
	}
	if ((st = dsql_stmt(be, STMT_ACCOUNT_IMPORT_UPDATE, error_r)) == NULL)
		return -1;
	if (rec->password != NULL)
		sqlite3_bind_text(st, 1, rec->password, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, rec->has_quota_bytes);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)rec->quota_bytes);
	sqlite3_bind_int(st, 4, rec->has_quota_messages);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)rec->quota_messages);
	sqlite3_bind_text(st, 6, rec->address, -1, SQLITE_STATIC);
	if (dsql_step_done(be, st, error_r) < 0)
		return -1;
	if (sqlite3_changes(be->db) > 0)
		return 0;
	memset(&cred, 0, sizeof(cred));
	cred.password = (char *)rec->password;
	if (account_insert(be, rec->address, domain_id, &cred,
	    rec->has_quota_bytes ? rec->quota_bytes : 0,
	    rec->has_quota_messages ? rec->quota_messages : 0, NULL, error_r) < 0)
		return -1;
	*account_created_r = 1;
	return 0;
}

int
dsql_account_import(struct directory_backend *be, const struct directory_import *rec,
    int *domain_created_r, int *account_created_r, const char **error_r)
{
	dsql_lock(be);
	if (dsql_begin(be, error_r) < 0) {
		dsql_unlock(be);
		return -1;
	}
	if (account_import(be, rec, domain_created_r, account_created_r, error_r) < 0 ||
	    dsql_commit(be, error_r) < 0) {
		dsql_rollback(be);
		dsql_unlock(be);
		*domain_created_r = *account_created_r = 0;
		return -1;
	}
	dsql_unlock(be);
	return 0;
}

/* Aliases */

int
dsql_alias_add(struct directory_backend *be, const char *address, const char *target,
    const char **error_r)
{
	sqlite3_stmt *st;
	int64_t domain_id;

	dsql_lock(be);
	if (dsql_begin(be, error_r) < 0) {
		dsql_unlock(be);
		return -1;
	}
	if (dsql_domain_require(be, directory_address_domain(address), &domain_id, error_r) < 0 ||
	    (st = dsql_stmt(be, STMT_ALIAS_INSERT, error_r)) == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, domain_id);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (dsql_step_done(be, st, error_r) < 0) {
		if (be->last_rc == SQLITE_CONSTRAINT_UNIQUE)
			directory_error(error_r, "alias %s -> %s already exists", address, target);
		goto fail;
	}
	if (dsql_commit(be, error_r) < 0)
		goto fail;
	dsql_unlock(be);
	return 0;
fail:
	dsql_rollback(be);
	dsql_unlock(be);
	return -1;
}

int
dsql_alias_remove(struct directory_backend *be, const char *address, const char *target,
    const char **error_r)
{
	sqlite3_stmt *st;
	int ret = -1;

	dsql_lock(be);
	st = dsql_stmt(be, target != NULL ? STMT_ALIAS_DELETE_ONE : STMT_ALIAS_DELETE_ALL,
	    error_r);
	if (st != NULL) {
		sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
		if (target != NULL)
			sqlite3_bind_text(st, 2, target, -1, SQLITE_STATIC);
		if (dsql_step_done(be, st, error_r) == 0) {
			ret = 0;
			if (sqlite3_changes(be->db) == 0 && target != NULL)
				ret = directory_error(error_r, "no alias %s -> %s", address, target);
			else if (sqlite3_changes(be->db) == 0)
				ret = directory_error(error_r, "no alias %s", address);
		}
	}
	dsql_unlock(be);
	return ret;
}

int
dsql_alias_list(struct directory_backend *be, const char *domain,
    struct directory_alias **aliases_r, size_t *count_r, const char **error_r)
{
	struct directory_alias *aliases = NULL;
	sqlite3_stmt *st;
	size_t count = 0, cap = 0;
	int rc;

	dsql_lock(be);
	st = dsql_stmt(be, domain == NULL ? STMT_ALIAS_LIST_ALL : STMT_ALIAS_LIST_DOMAIN,
	    error_r);
	if (st == NULL) {
		dsql_unlock(be);
		return -1;
	}
	if (domain != NULL)
		sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			aliases = xreallocarray(aliases, cap, sizeof(*aliases));
		}
		aliases[count].address = dsql_column_strdup(st, 0);
		aliases[count].target = dsql_column_strdup(st, 1);
		count++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		dsql_error(be, rc, error_r);
		dsql_unlock(be);
		directory_aliases_free(&aliases, count);
		return -1;
	}
	dsql_unlock(be);
	*aliases_r = aliases;
	*count_r = count;
	return 0;
}

int
dsql_alias_targets(struct directory_backend *be, const char *address,
    char ***targets_r, size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	char **targets = NULL;
	size_t count = 0, cap = 0, i;
	int rc;

	dsql_lock(be);
	if ((st = dsql_stmt(be, STMT_ALIAS_TARGETS, error_r)) == NULL) {
		dsql_unlock(be);
		return -1;
	}
	sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC);
	/* More than the resolver could ever use is not worth reading. */
	sqlite3_bind_int(st, 2, DIRECTORY_RESOLVE_TARGETS_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			targets = xreallocarray(targets, cap, sizeof(*targets));
		}
		targets[count++] = dsql_column_strdup(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		dsql_error(be, rc, error_r);
		dsql_unlock(be);
		for (i = 0; i < count; i++)
			free(targets[i]);
		free(targets);
		return -1;
	}
	dsql_unlock(be);
	*targets_r = targets;
	*count_r = count;
	return 0;
}

int
dsql_catchall_set(struct directory_backend *be, const char *domain, const char *target,
    const char **error_r)
{
	sqlite3_stmt *st;
	int ret = -1;

	dsql_lock(be);
	if ((st = dsql_stmt(be, STMT_DOMAIN_SET_CATCHALL, error_r)) != NULL) {
		if (target != NULL)
			sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, domain, -1, SQLITE_STATIC);
		if (dsql_step_done(be, st, error_r) == 0) {
			ret = 0;
			if (sqlite3_changes(be->db) == 0)
				ret = directory_error(error_r, "domain %s is not hosted here",
				    domain);
		}
	}
	dsql_unlock(be);
	return ret;
}
