/*
 * What a store backend implements. Only src/store includes this.
 *
 * store.c validates every argument before calling a backend: mailbox names
 * arrive normalized (store_name_normalize), keywords valid, flags masked,
 * UID lists non-empty. The backend does the storage, its own locking (its
 * operations are called from many threads at once) and the durability
 * promised in store.h. store.c owns the account table, notifications and the
 * group-commit queue: it hands the backend whole batches of commits.
 *
 * Return conventions are those of store.h; errors are set with store_fail()
 * or store_fail_temp().
 */
#ifndef PETREL_STORE_STORE_BACKEND_H
#define PETREL_STORE_STORE_BACKEND_H

#include <pthread.h>
#include <stdarg.h>

#include "store/store.h"

struct mime_summary;
struct store_backend;
struct store_backend_account;
struct store_backend_writer;
struct store_backend_blob;

/* How the temporary files of a commit batch reach the disk (see
 * store_sqlite_commit.c for the measurements behind the default). */
enum store_sync_mode {
	STORE_SYNC_WRITER,   /* each committing thread fsyncs its own file */
	STORE_SYNC_LEADER,   /* the batch leader fsyncs every file */
	STORE_SYNC_SYNCFS,   /* the batch leader calls syncfs() once */
};

/* One store_writer_commit, as handed to the backend in a batch. */
struct store_commit {
	struct store_backend_writer *bw;
	const struct mime_summary *summary;
	uint64_t size;
	struct store_target *targets;
	size_t n;
	char **names;              /* normalized mailbox names (NULL: by id) */
	int64_t *mailbox_ids;      /* out: the mailbox each stored target went to */
	/* store.c's own. */
	struct store_commit *next;
	int done;
	int waiting;               /* its committer waits on wake */
	pthread_cond_t *wake;
};

struct store_backend_ops {
	const char *name;

	int (*open)(const char *data_dir, struct store_backend **be_r, const char **error_r);
	void (*close)(struct store_backend *be);
	void (*set_sync_mode)(struct store_backend *be, enum store_sync_mode mode);
	void (*set_fsync)(struct store_backend *be, int (*fn)(int fd));
	/* Waits for the background work queued so far (removing the files of
	 * committed removals). */
	void (*flush)(struct store_backend *be);

	int (*account_open)(struct store_backend *be, int64_t id,
	    struct store_backend_account **ba_r, const char **error_r);
	void (*account_close)(struct store_backend_account *ba);
	/* The last reference went: trims what an idle account holds. 1 when
	 * it may stay open for reuse, 0 when it must be closed (the index
	 * turned out damaged). No other call on ba runs meanwhile (store.c
	 * holds no lock). */
	int (*account_park)(struct store_backend_account *ba);
	/* Before an idle account is reused: 1 when it still is what a fresh
	 * open would give (its index was not removed or replaced), else 0
	 * (store.c closes it and opens it again). Quick. */
	int (*account_valid)(struct store_backend_account *ba);
	/* File descriptors an idle account holds: the cache keeps their sum
	 * well under RLIMIT_NOFILE. */
	unsigned idle_account_fds;
	int (*account_delete)(struct store_backend *be, int64_t id, const char **error_r);
	int (*account_usage)(struct store_backend_account *ba, struct store_usage *usage,
	    const char **error_r);

	int (*mailbox_list)(struct store_backend_account *ba, struct store_mailbox **list_r,
	    size_t *count_r, const char **error_r);
	/* By name, or by id when name is NULL. 1/0/-1. */
	int (*mailbox_get)(struct store_backend_account *ba, const char *name, int64_t id,
	    struct store_mailbox *mbox_r, const char **error_r);
	int (*mailbox_create)(struct store_backend_account *ba, const char *name,
	    unsigned special_use, int64_t *id_r, const char **error_r);
	/* Sets changed_r[0..1] to the mailboxes whose messages changed (0: none). */
	int (*mailbox_rename)(struct store_backend_account *ba, const char *from,
	    const char *to, int64_t changed_r[2], const char **error_r);
	int (*mailbox_delete)(struct store_backend_account *ba, const char *name,
	    int64_t *id_r, const char **error_r);
	int (*mailbox_subscribe)(struct store_backend_account *ba, const char *name,
	    int subscribed, const char **error_r);
	/* The checks of store_mailbox_set_uidvalidity are the backend's (it
	 * alone knows whether the mailbox ever held a message). */
	int (*mailbox_set_uidvalidity)(struct store_backend_account *ba,
	    int64_t mailbox_id, uint32_t uidvalidity, uint32_t uidnext_min,
	    const char **error_r);
	int (*mailbox_raise_uidnext)(struct store_backend_account *ba, int64_t mailbox_id,
	    uint32_t uidnext, const char **error_r);
	int (*subscriptions)(struct store_backend_account *ba, char ***names_r,
	    size_t *count_r, const char **error_r);

	int (*message_list)(struct store_backend_account *ba, int64_t mailbox_id,
	    uint32_t uid_first, uint32_t uid_last, struct store_message **msgs_r,
	    size_t *count_r, const char **error_r);
	int (*message_summary)(struct store_backend_account *ba, int64_t mailbox_id,
	    uint32_t uid, struct mime_summary **summary_r, const char **error_r);
	/* *changed_r: 1 when some message changed (to notify). */
	int (*message_set_flags)(struct store_backend_account *ba, int64_t mailbox_id,
	    const uint32_t *uids, size_t nuids, enum store_flag_mode mode, unsigned flags,
	    const char *const *keywords, uint64_t unchangedsince, uint32_t **failed_r,
	    size_t *nfailed_r, int *changed_r, const char **error_r);
	int (*message_copy)(struct store_backend_account *ba, int64_t from_mailbox_id,
	    const uint32_t *uids, size_t nuids, int64_t to_mailbox_id, int move,
	    const struct store_quota *quota, uint32_t **new_uids_r, uint32_t *uidvalidity_r,
	    const char **error_r);
	int (*message_expunge)(struct store_backend_account *ba, int64_t mailbox_id,
	    const uint32_t *uids, size_t nuids, int *changed_r, const char **error_r);
	int (*changes_since)(struct store_backend_account *ba, int64_t mailbox_id,
	    uint64_t modseq, struct store_changes *changes_r, const char **error_r);
	int (*search_text)(struct store_backend_account *ba, int64_t mailbox_id,
	    const char *needle, int body_only, uint32_t **uids_r, size_t *count_r,
	    const char **error_r);

	/* guid: the message's, when the caller knows it (no index lookup), or
	 * NULL. */
	int (*blob_open)(struct store_backend_account *ba, int64_t mailbox_id, uint32_t uid,
	    const char *guid, struct store_backend_blob **bb_r, uint64_t *size_r,
	    const char **error_r);
	ssize_t (*blob_read)(struct store_backend_blob *bb, uint64_t offset, void *buf,
	    size_t len);
	void (*blob_close)(struct store_backend_blob *bb);

	int (*writer_new)(struct store_backend *be, struct store_backend_writer **bw_r,
	    const char **error_r);
	int (*writer_write)(struct store_backend_writer *bw, const void *data, size_t len,
	    const char **error_r);
	/* In the committing thread, before the commit joins a batch. */
	int (*writer_prepare)(struct store_backend_writer *bw, int64_t internaldate,
	    const char **error_r);
	void (*writer_free)(struct store_backend_writer *bw);
	/* Commits a batch: fills in every target's uid (honouring a wanted
	 * one, see struct store_target), uidvalidity and error
	 * (STORE_ERR_TEMP for targets lost to an I/O or database error) and
	 * mailbox_ids. Never fails as a whole. */
	void (*commit_batch)(struct store_backend *be, struct store_commit **batch, size_t n);

	/* Removes the temporary files of writers that have not been touched
	 * for an hour before `now` (done at open; tests call it with a later
	 * now). */
	void (*sweep_tmp)(struct store_backend *be, int64_t now);
};

extern const struct store_backend_ops store_sqlite_ops;

/* Sets this thread's error (a message safe for a client) and returns -1. */
int store_fail(enum store_error code, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Logs the cause (fmt, key=value) and fails with STORE_ERR_TEMP and a
 * generic message. */
int store_fail_temp(const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The code of an error just set (for backends that pass errors through). */
void store_set_error_code(enum store_error code);

/* What backends may know of a struct store_account. */
struct store_backend_account *store_account_backend(struct store_account *acct);
void store_account_quota(struct store_account *acct, struct store_quota *quota);
int64_t store_account_id(const struct store_account *acct);

/* Names (store_name.c). store_name_normalize returns an allocated copy with
 * INBOX spelled "INBOX", or NULL with the error set (STORE_ERR_INVALID or
 * STORE_ERR_LIMIT). */
char *store_name_normalize(const char *name, const char **error_r);
int store_keyword_valid(const char *kw);
/* 1 when the strings are the same keyword (keywords are case-insensitive). */
int store_keyword_equal(const char *a, const char *b);

/* For tests and benchmarks (store_debug.h would be overkill): the sync
 * strategy of commit batches, and the fsync the backend calls for files and
 * directories (to simulate failures). */
void store_set_sync_mode(struct store *store, enum store_sync_mode mode);
void store_set_fsync(struct store *store, int (*fn)(int fd));
/* Runs the clean-up of stale writer files as if the time were `now`. */
void store_sweep_tmp(struct store *store, int64_t now);
/* Accounts with their index open (in use, idle or quiet) and idle ones. */
void store_account_cache_count(struct store *store, size_t *open_r, size_t *idle_r);
/* Idle accounts already trimmed (store_account.c: STORE_IDLE_PARK_MS). */
size_t store_account_parked_count(struct store *store);
/* Held accounts nothing uses: with their index open (quiet) and closed
 * (dormant). */
void store_account_held_count(struct store *store, size_t *quiet_r, size_t *dormant_r);

#endif
