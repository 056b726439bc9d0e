/*
 * The default store backend: message files plus one SQLite index per
 * account, all in the data directory:
 *
 *   DATA/tmp/<random>.tmp                    a message being written
 *   DATA/mail/<account-id>/index.db          the index (WAL)
 *   DATA/mail/<account-id>/msg/mailboxes     mailbox ids, names, UIDVALIDITY,
 *                                            UIDNEXT, roles and subscriptions,
 *                                            rewritten atomically on every
 *                                            change
 *   DATA/mail/<account-id>/msg/<mailbox-id>/<uid>.<guid>
 *                                            a message, written once
 *
 * A message's file name carries what the index would need to be rebuilt:
 * its mailbox (the directory), UID and GUID; its mtime is the internal date.
 * A copy is a hard link under its own name. Only flags, keywords and MODSEQs
 * live in the index alone (store_sqlite_rebuild.c). Message files are
 * linked only inside the write transaction that adds their rows, and
 * unlinked only after the one that removed them committed (by background
 * threads, store_sqlite_unlink.c): a file without a row is an orphan of a
 * crash, or about to go (store_sqlite_sweep.c removes orphans).
 *
 * Files: store_sqlite.c (open, schema, connections), store_sqlite_account.c
 * (opening, trimming idle accounts, deleting), store_sqlite_mailbox.c,
 * store_sqlite_message.c, store_sqlite_commit.c (writers and group commit),
 * store_sqlite_rebuild.c, store_sqlite_sweep.c (what crashes leave behind),
 * store_sqlite_unlink.c (removing files, background work) and
 * store_sqlite_fts.c (the search index and text search).
 */
#ifndef PETREL_STORE_STORE_SQLITE_H
#define PETREL_STORE_STORE_SQLITE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "core/buf.h"
#include "store/store_backend.h"

#define SSQL_GUID_SIZE 33          /* 32 hex digits and a NUL */
#define SSQL_FILE_NAME_MAX 64      /* "<mailbox-id>/<uid>.<guid>" */

enum ssql_stmt {
	SST_BEGIN_READ,
	SST_BEGIN_WRITE,
	SST_COMMIT,
	SST_ROLLBACK,
	SST_ACCOUNT_USAGE,
	SST_ACCOUNT_ADD_USAGE,
	SST_ACCOUNT_NEXT_UIDVALIDITY,
	SST_ACCOUNT_RAISE_UIDVALIDITY,
	SST_MBOX_LIST,
	SST_MBOX_BY_NAME,
	SST_MBOX_BY_ID,
	SST_MBOX_INSERT,
	SST_MBOX_COUNT,
	SST_MBOX_CHILDREN,
	SST_MBOX_RENAME,
	SST_MBOX_DELETE,
	SST_MBOX_ALLOC,
	SST_MBOX_ALLOC_AT,
	SST_MBOX_SET_UIDVALIDITY,
	SST_MBOX_RAISE_UIDNEXT,
	SST_MBOX_IDS,
	SST_MBOX_ADD_COUNTS,
	SST_MBOX_FILE_LIST,
	SST_SUB_ADD,
	SST_SUB_DELETE,
	SST_SUB_LIST,
	SST_SUB_RENAME,
	SST_BODY_INSERT,
	SST_BODY_SET_THREAD,
	SST_TEXT_INSERT,
	SST_BODY_GC_TEXT,
	SST_BODY_GC,
	SST_FTS_PENDING_ADD,
	SST_MSGID_GET,
	SST_MSGID_PUT,
	SST_MSG_INSERT,
	SST_MSG_LIST,
	SST_MSG_GET,
	SST_MSG_SET_FLAGS,
	SST_MSG_DELETE,
	SST_MSG_CHANGED,
	SST_MSG_OF_MBOX,
	SST_MSG_DELETE_MBOX,
	SST_MSG_SUMMARY,
	SST_MSG_NAMES,
	SST_EXP_INSERT,
	SST_EXP_SINCE,
	SST_EXP_DELETE_MBOX,
	SST_EXP_ANY,
	SST_KW_HAS,
	SST_KW_COUNT,
	SST_KW_ADD,
	SST_KW_DELETE_MBOX,
	SST_COUNT
};

/* A database connection with its prepared statements. */
struct ssql_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[SST_COUNT];
	struct store_backend_account *ba;
	struct ssql_conn *next;
};

/* Threads that run the parts of commit batches that wait for the disk
 * (directory fsyncs, index commits) side by side: the filesystem merges
 * concurrent flushes, so N of them cost about one flush, not N. Several
 * batches (of different accounts) may use it at once. */
struct ssql_pool_run;
struct ssql_pool {
	pthread_mutex_t lock;
	pthread_cond_t work;
	pthread_t *threads;
	size_t nthreads, idle;        /* idle: waiting for work */
	struct ssql_pool_run *runs;   /* with items not yet taken */
	size_t waiting;               /* items queued, not yet taken */
	int quit;
};

/* Threads removing the files of committed removals (store_sqlite_unlink.c). */
struct ssql_unlink_job;
struct ssql_fts_job;
struct ssql_unlinker {
	pthread_mutex_t lock;
	pthread_cond_t work, idle;
	pthread_t *threads;
	size_t nthreads;
	struct ssql_unlink_job *head, **tail;   /* with names not yet taken */
	struct ssql_fts_job *fts_head, **fts_tail;   /* not yet taken */
	size_t jobs;                            /* not finished */
	int flushing;                           /* index jobs due at once */
	int quit;
};

/* A set of account ids (open addressing; 0 is an empty slot). */
struct ssql_idset {
	int64_t *slots;
	size_t cap, count;
};

struct store_backend {
	char *data_dir;
	char *mail_dir;
	char *tmp_dir;
	int mail_fd;               /* O_DIRECTORY */
	int tmp_fd;
	enum store_sync_mode sync_mode;
	int (*fsync)(int fd);
	int tmpfile;               /* writers use O_TMPFILE (else <guid>.tmp) */
	struct ssql_pool pool;
	atomic_int batches;        /* commit batches in flight */
	struct ssql_unlinker unlinker;
	pthread_mutex_t swept_lock;
	struct ssql_idset swept;   /* accounts swept of orphans by this process */
};

struct store_backend_account {
	struct store_backend *be;
	int64_t id;
	char *dir;                 /* mail/<id> */
	char *db_path;
	int msg_fd;                /* mail/<id>/msg, O_DIRECTORY */
	pthread_mutex_t wlock;     /* the write connection and the mailboxes file */
	struct ssql_conn *w;
	pthread_mutex_t rlock;
	struct ssql_conn *readers; /* idle read connections */
	dev_t db_dev;              /* the index file opened */
	ino_t db_ino;
	atomic_int damaged;        /* SQLite reported corruption */
};

struct store_backend_writer {
	struct store_backend *be;
	int fd;
	int anonymous;             /* O_TMPFILE: name is /proc/self/fd/<fd> */
	char name[48];             /* in tmp/, or the /proc path */
	char guid[SSQL_GUID_SIZE];
	uint64_t size;
};

/* A mailbox row. */
struct ssql_mailbox {
	int64_t id;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
};

/* A message row, as the write paths need it. */
struct ssql_message {
	uint32_t uid;
	uint64_t modseq;
	unsigned flags;
	char *keywords;            /* space-separated, NULL when none */
	int64_t internaldate;
	uint64_t size;
	char guid[SSQL_GUID_SIZE];
	int64_t thread_id;
	int64_t body_id;
};

/* Links made during a transaction, undone if it fails; or files to unlink
 * once it committed. Names are relative to msg/. */
struct ssql_names {
	char (*names)[SSQL_FILE_NAME_MAX];
	size_t n;
};

#define SSQL_BUSY_TIMEOUT_MS 10000
/* Every connection that deletes rows runs this. Debian's SQLite is built
 * with secure_delete on, which zeroes every freed page and writes it: an
 * expunge of 500 messages (their search text and parsed data) wrote
 * megabytes of zeroes to the WAL and cost more CPU than serving them over
 * POP3. FAST still clears deleted content in the pages a change writes
 * anyway, not the pages it frees (they are reused later; the message files
 * themselves are unlinked without being overwritten either). */
#define SSQL_SECURE_DELETE "PRAGMA secure_delete = FAST"
#define SSQL_CHECK_MARKER "index.check"   /* in mail/<id>/: check the index fully */
#define SSQL_SWEEP_MARKER "index.sweep"   /* sweep orphans (a sweep failed) */

/* store_sqlite.c */
int ssql_error(struct ssql_conn *c, int rc, const char **error_r);
/* SQLite's busy handler for the store's connections: short sleeps first. */
void ssql_busy_setup(sqlite3 *db);
/* Leaves a mark for the next open to check the index thoroughly. */
void ssql_mark_damaged(struct store_backend_account *ba);
struct ssql_conn *ssql_conn_open(struct store_backend_account *ba, const char **error_r);
void ssql_conn_close(struct ssql_conn *c);
/* Empties an idle connection (its statements, its page cache). */
void ssql_conn_trim(struct ssql_conn *c);
/* Brings the schema up to date; a new index gets the default mailboxes, or
 * what the files hold when rebuild is set. */
int ssql_schema_init(struct store_backend_account *ba, int rebuild, const char **error_r);
sqlite3_stmt *ssql_stmt(struct ssql_conn *c, enum ssql_stmt id, const char **error_r);
int ssql_step_done(struct ssql_conn *c, sqlite3_stmt *st, const char **error_r);
int ssql_exec(struct ssql_conn *c, const char *sql, const char **error_r);
/* The write connection, locked and in a BEGIN IMMEDIATE transaction; NULL
 * on error (nothing locked). */
struct ssql_conn *ssql_wbegin(struct store_backend_account *ba, const char **error_r);
/* Commits and unlocks; on failure rolls back, unlocks and returns -1. */
int ssql_wcommit(struct store_backend_account *ba, const char **error_r);
void ssql_wrollback(struct store_backend_account *ba);
/* Unlocks after a COMMIT done by another thread (commit batches). */
void ssql_wunlock(struct store_backend_account *ba);
struct ssql_conn *ssql_reader(struct store_backend_account *ba, const char **error_r);
void ssql_reader_put(struct store_backend_account *ba, struct ssql_conn *c);
char *ssql_column_strdup(sqlite3_stmt *st, int col);
int ssql_fsync_dir(struct store_backend *be, int dirfd, const char *name,
    const char **error_r);
void ssql_names_add(struct ssql_names *names, int64_t mailbox_id, uint32_t uid,
    const char *guid);
/* Unlinks (after a rollback) and fsyncs the directories; errors are
 * logged only. */
void ssql_names_unlink(struct store_backend_account *ba, struct ssql_names *names);
void ssql_names_free(struct ssql_names *names);
void ssql_message_name(char out[SSQL_FILE_NAME_MAX], int64_t mailbox_id, uint32_t uid,
    const char *guid);
void ssql_random_hex(char *out, size_t bytes);
int ssql_remove_tree(int dirfd, const char *name);

/* store_sqlite_mailbox.c */
/* 1 found, 0 not, -1 error. name NULL: by id. */
int ssql_mailbox_find(struct ssql_conn *c, const char *name, int64_t id,
    struct ssql_mailbox *mbox_r, const char **error_r);
int ssql_mailbox_insert(struct store_backend_account *ba, struct ssql_conn *c,
    const char *name, unsigned special_use, uint32_t uidvalidity, int64_t id,
    int64_t *id_r, const char **error_r);
int ssql_mailboxes_file_write(struct store_backend_account *ba, struct ssql_conn *c,
    const char **error_r);
int ssql_add_usage(struct ssql_conn *c, int64_t bytes, int64_t messages,
    const char **error_r);
int ssql_mailbox_add_counts(struct ssql_conn *c, int64_t mailbox_id, int64_t messages,
    int64_t unseen, int64_t deleted, int64_t size, const char **error_r);
/* Reserves nuids UIDs and nmodseq MODSEQs: the first of each. */
int ssql_mailbox_alloc(struct ssql_conn *c, int64_t mailbox_id, uint32_t nuids,
    uint64_t nmodseq, uint32_t *uid_r, uint64_t *modseq_r, const char **error_r);
/* Reserves the UID uid (>= UIDNEXT, < UINT32_MAX; UIDNEXT becomes uid + 1)
 * and one MODSEQ. */
int ssql_mailbox_alloc_uid(struct ssql_conn *c, int64_t mailbox_id, uint32_t uid,
    uint64_t *modseq_r, const char **error_r);
int ssql_keywords_register(struct ssql_conn *c, int64_t mailbox_id, const char *keywords,
    const char **error_r);
int ssql_create_defaults(struct store_backend_account *ba, struct ssql_conn *c,
    const char **error_r);

/* store_sqlite_message.c */
int ssql_message_get(struct ssql_conn *c, int64_t mailbox_id, uint32_t uid,
    struct ssql_message *msg_r, const char **error_r);
int ssql_message_insert(struct ssql_conn *c, int64_t mailbox_id,
    const struct ssql_message *msg, const char **error_r);
int ssql_bodies_gc(struct ssql_conn *c, const int64_t *ids, size_t n, const char **error_r);
/* The same, but the search text is only recorded in fts_pending_delete, for
 * ssql_fts_purge_later after the commit. */
int ssql_bodies_gc_deferred(struct ssql_conn *c, const int64_t *ids, size_t n,
    const char **error_r);
/* Moves every message of a mailbox to another (renaming INBOX), in the
 * write transaction c. */
int ssql_move_all(struct store_backend_account *ba, struct ssql_conn *c, int64_t from_id,
    int64_t to_id, struct ssql_names *linked, struct ssql_names *unlink_after,
    const char **error_r);
/* Joins keyword lists into the stored form (NULL when empty). */
char *ssql_keywords_join(const char *const *keywords);

/* store_sqlite_commit.c */
void ssql_pool_init(struct ssql_pool *pool);
void ssql_pool_destroy(struct ssql_pool *pool);
/* Runs fn(arg, i) for i in [0, n) on the pool and the calling thread;
 * returns when all are done. */
void ssql_pool_run(struct ssql_pool *pool, size_t n, void (*fn)(void *arg, size_t i),
    void *arg);
/* Inserts the parsed metadata of a new message file; sets *body_id_r and
 * *thread_id_r. */
int ssql_body_insert(struct ssql_conn *c, const char *guid, uint64_t size,
    const struct mime_summary *s, int64_t *body_id_r, int64_t *thread_id_r,
    const char **error_r);

/* store_sqlite_unlink.c */
void ssql_unlinker_init(struct ssql_unlinker *u);
/* Waits for the jobs queued so far. */
void ssql_unlinker_flush(struct ssql_unlinker *u);
/* Finishes the jobs queued, stops the threads. */
void ssql_unlinker_destroy(struct ssql_unlinker *u);
/* Unlinks the files of a committed removal in the background (the
 * directories fsynced once after), taking over names (left empty). */
void ssql_names_unlink_later(struct store_backend_account *ba, struct ssql_names *names);
/* Removes the search text listed in fts_pending_delete, then indexes the
 * text in fts_pending_add, in the background on a connection of its own
 * (at once when there are no threads). */
void ssql_fts_purge_later(struct store_backend_account *ba);
/* The same, once the account had no new text for half a minute:
 * deliveries in the meantime share it. */
void ssql_fts_index_later(struct store_backend_account *ba);

/* store_sqlite_fts.c */
/* Removes then indexes what is pending, now, on a connection to db_path;
 * -1 on an error. */
int ssql_fts_maintain(const char *db_path, int64_t account_id);
/* 1 when search text waits to be indexed (or, unless adds_only, removed). */
int ssql_fts_pending(struct ssql_conn *c, int adds_only);
/* Indexes the pending search text now, on the write connection. */
int ssql_fts_catch_up(struct store_backend_account *ba, const char **error_r);

/* store_sqlite_rebuild.c */
/* Fills a fresh index (in a write transaction) from the files. */
int ssql_rebuild(struct store_backend_account *ba, struct ssql_conn *c,
    const char **error_r);

/* store_sqlite_sweep.c */
/* ids are > 0. */
void ssql_idset_add(struct ssql_idset *set, int64_t id);
int ssql_idset_has(const struct ssql_idset *set, int64_t id);
void ssql_idset_free(struct ssql_idset *set);
/* Removes the message files and mailbox directories that have no row in
 * the index, in a write transaction; logs how many. */
int ssql_sweep_orphans(struct store_backend_account *ba, const char **error_r);
/* Removes writers' temporary files untouched for an hour before now, and
 * account deletions left unfinished. */
void ssql_sweep_tmp(struct store_backend *be, int64_t now);

/* The operations (store_backend.h has what they do). */
int ssql_account_open(struct store_backend *, int64_t, struct store_backend_account **,
    const char **);
void ssql_account_close(struct store_backend_account *);
int ssql_account_park(struct store_backend_account *);
int ssql_account_valid(struct store_backend_account *);
int ssql_account_delete(struct store_backend *, int64_t, const char **);
int ssql_account_usage(struct store_backend_account *, struct store_usage *,
    const char **);
int ssql_mailbox_list(struct store_backend_account *, struct store_mailbox **, size_t *,
    const char **);
int ssql_mailbox_get(struct store_backend_account *, const char *, int64_t,
    struct store_mailbox *, const char **);
int ssql_mailbox_create(struct store_backend_account *, const char *, unsigned, int64_t *,
    const char **);
int ssql_mailbox_rename(struct store_backend_account *, const char *, const char *,
    int64_t[2], const char **);
int ssql_mailbox_delete(struct store_backend_account *, const char *, int64_t *,
    const char **);
int ssql_mailbox_subscribe(struct store_backend_account *, const char *, int,
    const char **);
int ssql_mailbox_set_uidvalidity(struct store_backend_account *, int64_t, uint32_t,
    uint32_t, const char **);
int ssql_mailbox_raise_uidnext(struct store_backend_account *, int64_t, uint32_t,
    const char **);
int ssql_subscriptions(struct store_backend_account *, char ***, size_t *, const char **);
int ssql_message_list(struct store_backend_account *, int64_t, uint32_t, uint32_t,
    struct store_message **, size_t *, const char **);
int ssql_message_summary(struct store_backend_account *, int64_t, uint32_t,
    struct mime_summary **, const char **);
int ssql_message_set_flags(struct store_backend_account *, int64_t, const uint32_t *,
    size_t, enum store_flag_mode, unsigned, const char *const *, uint64_t, uint32_t **,
    size_t *, int *, const char **);
int ssql_message_copy(struct store_backend_account *, int64_t, const uint32_t *, size_t,
    int64_t, int, const struct store_quota *, uint32_t **, uint32_t *, const char **);
int ssql_message_expunge(struct store_backend_account *, int64_t, const uint32_t *, size_t,
    int *, const char **);
int ssql_changes_since(struct store_backend_account *, int64_t, uint64_t,
    struct store_changes *, const char **);
int ssql_search_text(struct store_backend_account *, int64_t, const char *, int,
    uint32_t **, size_t *, const char **);
int ssql_blob_open(struct store_backend_account *, int64_t, uint32_t, const char *,
    struct store_backend_blob **, uint64_t *, const char **);
ssize_t ssql_blob_read(struct store_backend_blob *, uint64_t, void *, size_t);
void ssql_blob_close(struct store_backend_blob *);
int ssql_writer_new(struct store_backend *, struct store_backend_writer **, const char **);
int ssql_writer_write(struct store_backend_writer *, const void *, size_t, const char **);
int ssql_writer_prepare(struct store_backend_writer *, int64_t, const char **);
void ssql_writer_free(struct store_backend_writer *);
void ssql_commit_batch(struct store_backend *, struct store_commit **, size_t);

#endif
