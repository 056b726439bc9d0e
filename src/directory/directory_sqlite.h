/*
 * Internals shared by the files of the SQLite directory backend
 * (directory_sqlite.c: connection, schema, statements, domains;
 * directory_sqlite_accounts.c: accounts, aliases, catch-alls).
 */
#ifndef PETREL_DIRECTORY_DIRECTORY_SQLITE_H
#define PETREL_DIRECTORY_DIRECTORY_SQLITE_H

#include <pthread.h>

#include <sqlite3.h>

#include "directory/directory_backend.h"

enum stmt_id {
	STMT_BEGIN_READ,
	STMT_BEGIN_WRITE,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_DOMAIN_INSERT,
	STMT_DOMAIN_GET,
	STMT_DOMAIN_LIST,
	STMT_DOMAIN_COUNTS,
	STMT_DOMAIN_DELETE,
	STMT_DOMAIN_SET_CATCHALL,
	STMT_ACCOUNT_INSERT,
	STMT_ACCOUNT_DELETE,
	STMT_ACCOUNT_BY_ADDRESS,
	STMT_ACCOUNT_BY_ID,
	STMT_ACCOUNT_LIST_ALL,
	STMT_ACCOUNT_LIST_DOMAIN,
	STMT_ACCOUNT_FIND,
	STMT_ACCOUNT_SET_CRED,
	STMT_ACCOUNT_UPGRADE_CRED,
	STMT_ACCOUNT_SET_QUOTA,
	STMT_ACCOUNT_IMPORT_UPDATE,
	STMT_ALIAS_INSERT,
	STMT_ALIAS_DELETE_ONE,
	STMT_ALIAS_DELETE_ALL,
	STMT_ALIAS_LIST_ALL,
	STMT_ALIAS_LIST_DOMAIN,
	STMT_ALIAS_TARGETS,
	STMT_COUNT
};

struct directory_backend {
	sqlite3 *db;
	char *path;
	char *wal_path;
	pthread_mutex_t lock;
	sqlite3_stmt *stmts[STMT_COUNT];
	int last_rc;            /* of the last failed step, for callers to refine */
};

/* Helpers. All but lock/unlock expect the lock held. Those returning int
 * return 0, or -1 with *error_r set. */
void dsql_lock(struct directory_backend *be);
void dsql_unlock(struct directory_backend *be);
/* Sets *error_r from the connection's last error (rc kept in be->last_rc). */
int dsql_error(struct directory_backend *be, int rc, const char **error_r);
/* The cached statement, reset and with no bindings; NULL on error. */
sqlite3_stmt *dsql_stmt(struct directory_backend *be, enum stmt_id id,
    const char **error_r);
/* Steps a statement that returns no row. */
int dsql_step_done(struct directory_backend *be, sqlite3_stmt *st, const char **error_r);
/* Write transactions (BEGIN IMMEDIATE). dsql_rollback is a no-op outside one. */
int dsql_begin(struct directory_backend *be, const char **error_r);
int dsql_commit(struct directory_backend *be, const char **error_r);
void dsql_rollback(struct directory_backend *be);
char *dsql_column_strdup(sqlite3_stmt *st, int col);

/* 1 with *id_r (when not NULL) and domain_r (when not NULL) filled in,
 * 0 not found, -1 error. */
int dsql_domain_lookup(struct directory_backend *be, const char *name, int64_t *id_r,
    struct directory_domain *domain_r, const char **error_r);
/* Like dsql_domain_lookup, but a missing domain is an error. */
int dsql_domain_require(struct directory_backend *be, const char *name, int64_t *id_r,
    const char **error_r);
int dsql_domain_insert(struct directory_backend *be, const char *name, int64_t *id_r,
    const char **error_r);

/* Operations in directory_sqlite_accounts.c (see directory_backend.h). */
int dsql_account_add(struct directory_backend *be, const char *address,
    const struct directory_credentials *cred, uint64_t quota_bytes,
    uint64_t quota_messages, int64_t *id_r, const char **error_r);
int dsql_account_remove(struct directory_backend *be, const char *address,
    const char **error_r);
int dsql_account_list(struct directory_backend *be, const char *domain,
    struct directory_account **accounts_r, size_t *count_r, const char **error_r);
int dsql_account_get(struct directory_backend *be, const char *address, int64_t id,
    struct directory_account *account_r, const char **error_r);
int dsql_account_find(struct directory_backend *be, const char *address, int64_t *id_r,
    const char **error_r);
int dsql_account_set_credentials(struct directory_backend *be, const char *address,
    const struct directory_credentials *cred, const char **error_r);
int dsql_account_upgrade_credentials(struct directory_backend *be, int64_t id,
    const char *expected, const struct directory_credentials *cred,
    const char **error_r);
int dsql_account_set_quota(struct directory_backend *be, const char *address,
    uint64_t quota_bytes, uint64_t quota_messages, const char **error_r);
int dsql_account_import(struct directory_backend *be, const struct directory_import *rec,
    int *domain_created_r, int *account_created_r, const char **error_r);
int dsql_alias_add(struct directory_backend *be, const char *address, const char *target,
    const char **error_r);
int dsql_alias_remove(struct directory_backend *be, const char *address,
    const char *target, const char **error_r);
int dsql_alias_list(struct directory_backend *be, const char *domain,
    struct directory_alias **aliases_r, size_t *count_r, const char **error_r);
int dsql_alias_targets(struct directory_backend *be, const char *address,
    char ***targets_r, size_t *count_r, const char **error_r);
int dsql_catchall_set(struct directory_backend *be, const char *domain,
    const char *target, const char **error_r);

#endif
