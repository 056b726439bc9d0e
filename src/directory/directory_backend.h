/*
 * What a directory backend implements. Only src/directory includes this.
 *
 * directory.c validates and normalizes every argument before calling a
 * backend: names and addresses arrive lower-cased and well formed, quotas fit
 * in an int64_t. The backend does the storage, the existence checks that
 * need its data (hosted domain, duplicates) and its own locking: its
 * operations may be called from several threads at once.
 *
 * Return conventions are those of directory.h; errors are set with
 * directory_error().
 */
#ifndef PETREL_DIRECTORY_DIRECTORY_BACKEND_H
#define PETREL_DIRECTORY_DIRECTORY_BACKEND_H

#include "directory/directory.h"

struct directory_backend;

struct directory_backend_ops {
	const char *name;

	int (*open)(const char *path, int create, struct directory_backend **be_r,
	    char **error_r);
	void (*close)(struct directory_backend *be);

	/* Brackets a series of lookups that must see one consistent state
	 * (directory_resolve). Calls may nest other lookups in between, from
	 * the same thread. */
	int (*read_begin)(struct directory_backend *be, const char **error_r);
	void (*read_end)(struct directory_backend *be);
	/* What changes whenever the directory does (directory_stamp); must
	 * not touch the database. */
	void (*stamp)(struct directory_backend *be, struct directory_stamp *stamp);

	int (*domain_add)(struct directory_backend *be, const char *name,
	    const char **error_r);
	int (*domain_remove)(struct directory_backend *be, const char *name, int force,
	    const char **error_r);
	int (*domain_list)(struct directory_backend *be, struct directory_domain **domains_r,
	    size_t *count_r, const char **error_r);
	/* 1 found (domain_r filled in, may be NULL), 0 not found, -1 error. */
	int (*domain_get)(struct directory_backend *be, const char *name,
	    struct directory_domain *domain_r, const char **error_r);

	int (*account_add)(struct directory_backend *be, const char *address,
	    const struct directory_credentials *cred, uint64_t quota_bytes,
	    uint64_t quota_messages, int64_t *id_r, const char **error_r);
	int (*account_remove)(struct directory_backend *be, const char *address,
	    const char **error_r);
	int (*account_list)(struct directory_backend *be, const char *domain,
	    struct directory_account **accounts_r, size_t *count_r, const char **error_r);
	/* 1/0/-1. address or id selects the account (the other is NULL / 0). */
	int (*account_get)(struct directory_backend *be, const char *address, int64_t id,
	    struct directory_account *account_r, const char **error_r);
	/* 1 found with *id_r set, 0 not found, -1 error: the cheap lookup that
	 * resolution needs. */
	int (*account_find)(struct directory_backend *be, const char *address,
	    int64_t *id_r, const char **error_r);
	/* cred NULL: remove the password and SCRAM keys. */
	int (*account_set_credentials)(struct directory_backend *be, const char *address,
	    const struct directory_credentials *cred, const char **error_r);
	int (*account_upgrade_credentials)(struct directory_backend *be, int64_t id,
	    const char *expected, const struct directory_credentials *cred,
	    const char **error_r);
	int (*account_set_quota)(struct directory_backend *be, const char *address,
	    uint64_t quota_bytes, uint64_t quota_messages, const char **error_r);
	int (*account_import)(struct directory_backend *be,
	    const struct directory_import *rec, int *domain_created_r,
	    int *account_created_r, const char **error_r);

	int (*alias_add)(struct directory_backend *be, const char *address,
	    const char *target, const char **error_r);
	int (*alias_remove)(struct directory_backend *be, const char *address,
	    const char *target, const char **error_r);
	int (*alias_list)(struct directory_backend *be, const char *domain,
	    struct directory_alias **aliases_r, size_t *count_r, const char **error_r);
	/* The targets of address (allocated array of allocated strings; empty
	 * when the address is no alias). */
	int (*alias_targets)(struct directory_backend *be, const char *address,
	    char ***targets_r, size_t *count_r, const char **error_r);

	/* target NULL: clear. The domain must exist. */
	int (*catchall_set)(struct directory_backend *be, const char *domain,
	    const char *target, const char **error_r);
};

extern const struct directory_backend_ops directory_backend_sqlite;

/* Formats a message into a per-thread buffer, points *error_r at it and
 * returns -1. The message stays valid until the next directory call from the
 * same thread. */
int directory_error(const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The domain part of a normalized address. */
const char *directory_address_domain(const char *address);

#endif
