/*
 * The mail store: every account's mailboxes and messages, with the state IMAP
 * needs (UIDVALIDITY, UIDs, MODSEQ, flags, keywords, expunge records), quotas,
 * parsed metadata, full-text search and change notifications.
 *
 * Callers see only this interface. The backend (files + SQLite in the data
 * directory today; PostgreSQL + object storage later) lives behind the
 * vtable in store_backend.h; nothing outside src/store knows file paths or
 * SQL.
 *
 * Threads: every function may block (disk, fsync, database) and must be
 * called off the I/O threads (net_loop_submit). All objects may be used from
 * several threads; one struct store_account is shared by every session of
 * that account.
 *
 * Durability: a function that changes state returns 0 only once the change
 * is durable (message files fsynced and renamed, directories fsynced, index
 * transaction committed). Concurrent writers share their fsyncs (group
 * commit). An I/O or fsync error fails the operation and leaves nothing
 * half-visible.
 *
 * Errors: -1 with *error_r set to a message safe to show a client (static,
 * or owned by the store for the calling thread until its next call); the
 * cause is logged. store_error_code() tells the kind.
 */
#ifndef PETREL_STORE_STORE_H
#define PETREL_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct store_account;
struct store_writer;
struct store_watch;

#define STORE_MAILBOX_NAME_MAX 1024   /* bytes of UTF-8 in a full name */
#define STORE_MAILBOX_DEPTH_MAX 32    /* levels of hierarchy */
#define STORE_MAILBOXES_MAX 10000     /* per account */
#define STORE_KEYWORD_MAX 128         /* bytes in one keyword */
#define STORE_KEYWORDS_MAX 256        /* distinct keywords per mailbox */
#define STORE_MESSAGE_MAX (1ull << 30) /* bytes in one message */
#define STORE_SEPARATOR '/'

/* System flags. */
enum {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};

/* Special-use roles (RFC 6154). */
enum {
	STORE_SPECIAL_SENT = 1 << 0,
	STORE_SPECIAL_DRAFTS = 1 << 1,
	STORE_SPECIAL_TRASH = 1 << 2,
	STORE_SPECIAL_JUNK = 1 << 3,
	STORE_SPECIAL_ARCHIVE = 1 << 4,
	STORE_SPECIAL_ALL = 1 << 5,
	STORE_SPECIAL_FLAGGED = 1 << 6,
};

enum store_error {
	STORE_OK,
	STORE_ERR_NOT_FOUND,      /* no such mailbox / message */
	STORE_ERR_EXISTS,         /* mailbox already exists */
	STORE_ERR_INVALID,        /* bad name, bad argument */
	STORE_ERR_QUOTA,          /* would exceed the account's quota */
	STORE_ERR_LIMIT,          /* too many mailboxes, keywords, too big */
	STORE_ERR_CONFLICT,       /* e.g. deleting INBOX, a mailbox with children */
	STORE_ERR_TEMP,           /* I/O or database trouble: try again later */
};

/* --- the store --------------------------------------------------------- */

/* Opens the store kept in data_dir (mail/ and tmp/ below it; created when
 * missing). Removes what crashed writers left in tmp/ (files untouched for
 * an hour). */
int store_open(const char *data_dir, struct store **store_r, const char **error_r);
/* Closes every account (idle ones included; still-referenced ones are a
 * caller's bug, logged). */
void store_close(struct store **store);
/* Changes made by other processes reach this one's watches (the daemon):
 * store_signal_others in a process that writes to accounts (the CLI)
 * leaves a mark in DATA/notify for each account it changed, and
 * store_watch_others (the daemon) watches for them (store_others.c). */
int store_signal_others(struct store *store, const char *data_dir, const char **error_r);
int store_watch_others(struct store *store, const char *data_dir, const char **error_r);
/* Waits until the background work queued so far is done: the files of
 * expunged and moved messages are removed and new search text is indexed
 * after the call returns. A shutdown does not wait for the indexing (it is
 * resumed when the account is next opened); an import should. */
void store_flush(struct store *store);

#define STORE_ACCOUNT_CACHE_MAX 1000      /* idle accounts kept open */
#define STORE_ACCOUNT_CACHE_IDLE 300      /* seconds an idle account stays */
#define STORE_ACCOUNT_HELD_OPEN 16        /* unused held accounts kept open */
/* Sets the idle-account cache (see store_account_open): at most max idle
 * accounts (0: none; an account is closed with its last reference), each
 * for at most idle_seconds. Defaults: STORE_ACCOUNT_CACHE_MAX, lowered to
 * keep idle accounts under a quarter of RLIMIT_NOFILE, and
 * STORE_ACCOUNT_CACHE_IDLE. Accounts over the new limits are closed now. */
void store_set_account_cache(struct store *store, size_t max, unsigned idle_seconds);
/* How many held accounts (store_account_hold) that nothing uses keep their
 * index open (default STORE_ACCOUNT_HELD_OPEN, at most the idle cache's
 * size); the others' are closed now. */
void store_set_held_cache(struct store *store, size_t max);
enum store_error store_error_code(void);   /* of this thread's last failure */

/* --- accounts ---------------------------------------------------------- */

struct store_quota {
	uint64_t bytes_limit;      /* 0: unlimited */
	uint64_t messages_limit;   /* 0: unlimited */
};

struct store_usage {
	uint64_t bytes;
	uint64_t messages;
};

/* Opens (creating on first use, with INBOX, Sent, Drafts, Trash, Junk and
 * Archive, all subscribed) the account's store. The quota comes from the
 * directory; store_account_set_quota updates it. Reference-counted: every
 * open needs a store_account_close. The first open in a process removes
 * the message files a crash left without an index entry, when the index
 * was not closed cleanly (it waits for other processes' commits in
 * progress; log: event=orphans-removed).
 *
 * When its last reference goes an account stays open, idle, in a cache
 * (least recently used first out): the next open of it (the next delivery,
 * the next login) costs no index open. An idle account keeps a few file
 * descriptors and little memory; it is closed when the cache is full, when
 * it has been idle for longer than the cache allows (checked at every open
 * and close), at store_account_delete and at store_close. */
int store_account_open(struct store *store, int64_t account_id,
    const struct store_quota *quota, struct store_account **acct_r, const char **error_r);
void store_account_close(struct store_account **acct);
/*
 * Held accounts: a reference for a holder that may wait for hours between
 * uses (an IMAP session, in IDLE or between commands). Unlike a
 * store_account_open reference, a held one does not keep the account's
 * index open: when no call on the account runs and nobody has it open,
 * the store may close its index (it keeps the STORE_ACCOUNT_HELD_OPEN most
 * recently used ones open, each for at most the idle cache's time), and
 * the next call opens it again (blocking, like every store call). Watches
 * and notifications do not need the index: they keep working.
 *
 * store_account_hold adds a held reference to an account the caller has a
 * reference to (any kind); it never blocks. store_account_release drops
 * it (the last reference may close the index, like store_account_close).
 */
struct store_account *store_account_hold(struct store_account *acct);
void store_account_release(struct store_account **acct);
/* The holder of an account is going to wait (an IMAP session entering
 * IDLE): if nothing uses the account, its index need not stay open for
 * the grace after the last call; it is closed at the next trim, unless it
 * is among the STORE_ACCOUNT_HELD_OPEN most recently used. Never blocks. */
void store_account_rest(struct store_account *acct);
/* Keeps the index of an account open (reopening it if it was closed) until
 * store_account_unpin: what store_writer_commit needs of the accounts of
 * its targets. References from store_account_open are pinned already. */
int store_account_pin(struct store_account *acct, const char **error_r);
void store_account_unpin(struct store_account *acct);
void store_account_set_quota(struct store_account *acct, const struct store_quota *quota);
int store_account_usage(struct store_account *acct, struct store_usage *usage,
    const char **error_r);
/* Removes all of an account's mail (the account is gone from the directory). */
int store_account_delete(struct store *store, int64_t account_id, const char **error_r);

/* --- mailboxes --------------------------------------------------------- */

struct store_mailbox {
	int64_t id;                /* stable for the mailbox's life, even across RENAME */
	char *name;                /* full UTF-8 name, '/'-separated, "INBOX" */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;           /* messages without \Seen */
	uint32_t deleted;          /* messages with \Deleted */
	uint64_t size;             /* octets of all messages */
	unsigned special_use;      /* STORE_SPECIAL_* */
	unsigned subscribed : 1;
};

/* Names: UTF-8, no NUL or control characters, no empty component, no leading
 * or trailing '/', no "." or ".." component, case-insensitive "INBOX" is
 * INBOX. The store refuses others with STORE_ERR_INVALID. */
int store_mailbox_list(struct store_account *acct, struct store_mailbox **list_r,
    size_t *count_r, const char **error_r);
/* 1 found, 0 not found, -1 error. */
int store_mailbox_get(struct store_account *acct, const char *name,
    struct store_mailbox *mbox_r, const char **error_r);
int store_mailbox_get_by_id(struct store_account *acct, int64_t id,
    struct store_mailbox *mbox_r, const char **error_r);
/* Creates the mailbox and any missing parents. */
int store_mailbox_create(struct store_account *acct, const char *name, unsigned special_use,
    int64_t *id_r, const char **error_r);
/* Renames with its children. Renaming INBOX moves its messages into a new
 * mailbox of that name and leaves INBOX empty (RFC 3501 6.3.5). */
int store_mailbox_rename(struct store_account *acct, const char *from, const char *to,
    const char **error_r);
/* Deletes the mailbox and its messages; fails with STORE_ERR_CONFLICT for
 * INBOX and for a mailbox that has children (IMAP: \Noselect rules are the
 * protocol's business). */
int store_mailbox_delete(struct store_account *acct, const char *name, const char **error_r);
int store_mailbox_subscribe(struct store_account *acct, const char *name, int subscribed,
    const char **error_r);
/* Gives a mailbox that has never held a message (UIDNEXT 1, no expunge
 * record) another UIDVALIDITY, and raises its UIDNEXT to uidnext_min (0 or
 * 1: left at 1): what an import does to keep the UIDs clients know. A
 * mailbox that has held messages fails with STORE_ERR_CONFLICT;
 * uidvalidity 0 with STORE_ERR_INVALID. */
int store_mailbox_set_uidvalidity(struct store_account *acct, int64_t mailbox_id,
    uint32_t uidvalidity, uint32_t uidnext_min, const char **error_r);
/* Raises the mailbox's UIDNEXT to uidnext (never lowers it): the UIDs below
 * are never given. An import keeping UIDs sets the source's UIDNEXT this
 * way once the messages are in (before, it would refuse their UIDs). */
int store_mailbox_raise_uidnext(struct store_account *acct, int64_t mailbox_id,
    uint32_t uidnext, const char **error_r);
/* Subscriptions may name mailboxes that do not exist (RFC 3501). The list
 * is sorted and NULL-terminated; free it with store_subscriptions_free. */
int store_subscriptions(struct store_account *acct, char ***names_r, size_t *count_r,
    const char **error_r);
void store_subscriptions_free(char ***names, size_t count);
void store_mailbox_clear(struct store_mailbox *mbox);
void store_mailboxes_free(struct store_mailbox **list, size_t count);

/* --- messages ---------------------------------------------------------- */

struct store_message {
	uint32_t uid;
	uint64_t modseq;
	int64_t internaldate;      /* Unix time */
	uint64_t size;
	unsigned flags;            /* STORE_FLAG_* */
	char **keywords;           /* NULL-terminated, NULL when none */
	char guid[33];             /* the message's permanent id (hex): POP3 UIDL,
	                              IMAP EMAILID; equal for copies */
	int64_t thread_id;         /* IMAP THREADID */
};

/* Lists messages with uid_first <= uid <= uid_last (0, UINT32_MAX: all),
 * ordered by UID. */
int store_message_list(struct store_account *acct, int64_t mailbox_id, uint32_t uid_first,
    uint32_t uid_last, struct store_message **msgs_r, size_t *count_r,
    const char **error_r);
void store_messages_free(struct store_message **msgs, size_t count);

/* What was parsed when the message was stored (see mail/mime.h); the
 * search text is not kept there (summary->text is empty). Free with
 * mime_summary_free. */
struct mime_summary;
int store_message_summary(struct store_account *acct, int64_t mailbox_id, uint32_t uid,
    struct mime_summary **summary_r, const char **error_r);

/* Reads the message's bytes: a handle good for reads at any offset without
 * loading the message. */
struct store_blob;
int store_blob_open(struct store_account *acct, int64_t mailbox_id, uint32_t uid,
    struct store_blob **blob_r, const char **error_r);
/* The same for a message whose GUID the caller has from a listing
 * (store_message.guid): no index lookup. STORE_ERR_NOT_FOUND once the
 * message is expunged, or if the GUID is not that message's. */
int store_blob_open_guid(struct store_account *acct, int64_t mailbox_id, uint32_t uid,
    const char *guid, struct store_blob **blob_r, const char **error_r);
uint64_t store_blob_size(const struct store_blob *blob);
/* Returns bytes read (0 at the end), -1 on error. */
ssize_t store_blob_read(struct store_blob *blob, uint64_t offset, void *buf, size_t len);
void store_blob_close(struct store_blob **blob);

/* Flag changes. mode: set (replace), add or remove. unchangedsince (CONDSTORE)
 * 0 means unconditional; messages whose modseq is above it are left alone
 * and their UIDs returned in *failed_r. */
enum store_flag_mode { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };
int store_message_set_flags(struct store_account *acct, int64_t mailbox_id,
    const uint32_t *uids, size_t nuids, enum store_flag_mode mode, unsigned flags,
    const char *const *keywords, uint64_t unchangedsince,
    uint32_t **failed_r, size_t *nfailed_r, const char **error_r);
/* Copies (or moves) messages to another mailbox of the same account; the new
 * UIDs go to new_uids_r in the order of uids (COPYUID/UIDPLUS). Returns the
 * destination UIDVALIDITY in *uidvalidity_r. */
int store_message_copy(struct store_account *acct, int64_t from_mailbox_id,
    const uint32_t *uids, size_t nuids, int64_t to_mailbox_id, int move,
    uint32_t **new_uids_r, uint32_t *uidvalidity_r, const char **error_r);
/* Expunges (removes) messages; the expunge is recorded with its MODSEQ. */
int store_message_expunge(struct store_account *acct, int64_t mailbox_id,
    const uint32_t *uids, size_t nuids, const char **error_r);

/* What changed since a MODSEQ (IMAP sessions catching up, QRESYNC): messages
 * whose modseq is above it (uid, flags, keywords, modseq) and UIDs expunged
 * since. */
struct store_changes {
	struct store_message *changed;
	size_t nchanged;
	uint32_t *expunged;
	size_t nexpunged;
	uint64_t highestmodseq;
};
int store_changes_since(struct store_account *acct, int64_t mailbox_id, uint64_t modseq,
    struct store_changes *changes_r, const char **error_r);
void store_changes_clear(struct store_changes *changes);

/* Full-text search (substring, case-insensitive, in decoded UTF-8) of header
 * text and text parts: UIDs that match, in order. what: 0 text (headers and
 * body), 1 body only. */
int store_search_text(struct store_account *acct, int64_t mailbox_id, const char *needle,
    int body_only, uint32_t **uids_r, size_t *count_r, const char **error_r);

/* --- writing new messages ---------------------------------------------- */

/* A message is written once into a writer (it is parsed as it streams in),
 * then committed into one or many mailboxes of one or many accounts with a
 * single durable write: SMTP delivery to several local recipients, IMAP
 * APPEND, imports. */
int store_writer_new(struct store *store, struct store_writer **w_r, const char **error_r);
int store_writer_write(struct store_writer *w, const void *data, size_t len,
    const char **error_r);
uint64_t store_writer_size(const struct store_writer *w);
void store_writer_free(struct store_writer **w);

struct store_target {
	struct store_account *acct;   /* open or pinned (store_account_pin) */
	int64_t mailbox_id;        /* or 0 with mailbox_name */
	const char *mailbox_name;  /* e.g. "INBOX"; used when mailbox_id is 0 */
	unsigned flags;
	const char *const *keywords;
	int64_t internaldate;      /* 0: now (the time used is written back) */
	/* In: 0 for the mailbox's next UID, or the UID wanted (imports keeping
	 * UIDs), given only if it is >= the mailbox's UIDNEXT, which becomes
	 * uid + 1; else the target fails with STORE_ERR_CONFLICT (UINT32_MAX:
	 * STORE_ERR_LIMIT) and nothing is renumbered. Out: the UID given, 0
	 * when the target failed. */
	uint32_t uid;
	/* Out: */
	uint32_t uidvalidity;
	enum store_error error;    /* STORE_OK, or why this target failed */
};

/* Commits the written message into each target. Targets fail one by one
 * (quota, missing mailbox, a UID taken) without failing the others; returns
 * the number of targets stored, or -1 when nothing could be stored because
 * of an I/O or database error. No writes after the first commit, but more
 * commits to accounts not committed to before may follow (a message for
 * more accounts than should be open at once goes in several): the same
 * file, made durable by the first. */
int store_writer_commit(struct store_writer *w, struct store_target *targets, size_t n,
    const char **error_r);

/* --- change notifications ---------------------------------------------- */

/* fn(ctx) is called after every committed change to the mailbox (new
 * messages, flags, expunges; mailbox_id 0: any mailbox of the account, and
 * mailbox creation, renaming and deletion), from whichever thread committed
 * it. It must be quick and must not call the store (store_watch_remove
 * included): typically it posts to the session's loop (net_loop_post), and
 * the session then asks store_changes_since. Only changes made by this
 * process are seen. A watch holds its account (store_account_hold) until it
 * is removed. */
typedef void store_watch_fn(void *ctx);
struct store_watch *store_watch_add(struct store_account *acct, int64_t mailbox_id,
    store_watch_fn *fn, void *ctx);
/* After this returns, fn is not running and will not be called again. */
void store_watch_remove(struct store_watch **watch);

#endif
