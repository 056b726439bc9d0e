/*
 * What the files of the IMAP session share (not for use outside
 * src/proto/imap): the session, the command context, the selected-mailbox
 * view, and the helpers every command uses.
 *
 * Threads. A session lives on its connection's loop thread. Every store call
 * blocks, so a command that needs the store packs what it needs into its own
 * struct and runs it with imap_submit(): the work function runs on a worker
 * thread and may only touch that struct; the done function runs back on the
 * loop thread. While a job runs the session reads no input. If the client
 * goes away meanwhile, done is called with a NULL session and must only free
 * its struct.
 *
 * A command ends with exactly one imap_finish*() call, which brings the view
 * up to date (untagged EXISTS / EXPUNGE / FETCH) when the RFC allows it and
 * then writes the tagged reply.
 */
#ifndef PETREL_PROTO_IMAP_PRIVATE_H
#define PETREL_PROTO_IMAP_PRIVATE_H

#include <stdint.h>

#include "core/buf.h"
#include "net/conn.h"
#include "net/loop.h"
#include "proto/imap/imap.h"
#include "proto/imap/imap_parse.h"
#include "proto/imap/imap_search.h"
#include "proto/proto.h"
#include "store/store.h"

enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
};

/* What the session does with the next input bytes. */
enum imap_input {
	IMAP_INPUT_COMMAND,     /* command lines */
	IMAP_INPUT_NONE,        /* a command is running: input waits */
	IMAP_INPUT_SASL,        /* an AUTHENTICATE response line */
	IMAP_INPUT_IDLE,        /* "DONE" */
	IMAP_INPUT_LITERAL,     /* the message of an APPEND */
};

/* Extensions the client turned on (ENABLE, or implicitly for CONDSTORE). */
#define IMAP_ENABLED_REV2 0x01
#define IMAP_ENABLED_UTF8 0x02
#define IMAP_ENABLED_CONDSTORE 0x04
#define IMAP_ENABLED_QRESYNC 0x08       /* implies CONDSTORE; VANISHED */

/* Command table flags: the states a command is valid in (RFC 3501 6), and
 * what it needs. */
#define IMAP_IN_NOT_AUTH 0x01
#define IMAP_IN_AUTH 0x02
#define IMAP_IN_SELECTED 0x04
#define IMAP_IN_ANY (IMAP_IN_NOT_AUTH | IMAP_IN_AUTH | IMAP_IN_SELECTED)
#define IMAP_IN_LOGGED (IMAP_IN_AUTH | IMAP_IN_SELECTED)
#define IMAP_NEEDS_TLS 0x10     /* LOGINDISABLED before TLS */
#define IMAP_NEEDS_STORE 0x20   /* NO [UNAVAILABLE] without a mail store */
#define IMAP_NO_EXPUNGE 0x40    /* no EXPUNGE responses (FETCH, STORE, SEARCH) */
#define IMAP_HAS_UID 0x80       /* valid after "UID" */
#define IMAP_SYNC_FORCE 0x100   /* set by a command: ask the store for changes */

#define IMAP_FETCH_OUTPUT_HIGH (256 * 1024)  /* pending output that pauses FETCH */

struct imap_cmd {
	const char *tag;
	const char *name;               /* upper case, without "UID " */
	const struct imap_arg *args;
	unsigned nargs;
	unsigned uid : 1;               /* "UID FETCH" and friends */
};

/* One message of the selected mailbox, in sequence-number order. */
struct imap_msg {
	uint32_t uid;
	uint8_t flags;                  /* STORE_FLAG_* */
	uint8_t expunged;               /* gone, EXPUNGE not sent yet */
	uint16_t kwset;                 /* index into view->kwsets; 0: none */
	uint64_t modseq;
};

struct imap_notify;

/* The session's picture of the selected mailbox. */
struct imap_view {
	int64_t mailbox_id;
	char *name;                     /* UTF-8 */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t modseq;                /* the store's changes up to here are in */
	struct imap_msg *msgs;
	uint32_t count, cap;
	uint32_t npending;              /* messages with expunged set */
	/* Interned keyword sets (NULL-terminated string arrays); [0] unused. */
	char ***kwsets;
	uint32_t nkwsets;
	/* Every keyword announced in FLAGS. */
	char **keywords;
	uint32_t nkeywords;
	struct store_watch *watch;
	/* SEARCHRES (RFC 5182): the UIDs "$" stands for. */
	uint32_t *saved;
	size_t nsaved;
	unsigned readonly : 1;
	unsigned dirty : 1;             /* the store said something changed */
	unsigned dirty_exists : 1;      /* messages came: EXISTS is due */
	unsigned condstore : 1;         /* SELECT (CONDSTORE) or enabled */
};

struct imap_append;
struct imap_fetch;

struct imap_session {
	struct net_conn *conn;
	struct proto_context *ctx;
	const struct config *cfg;
	enum imap_state state;
	enum imap_input input;
	struct imap_parser *parser;     /* NULL in IDLE (imap_session_rest) */
	unsigned enabled;               /* IMAP_ENABLED_* */

	/* Authentication. */
	struct auth_request *auth;
	int auth_failures;
	char *user;
	int64_t account_id;
	struct store_account *acct;
	struct store_quota quota;

	/* The command running, from dispatch to imap_finish(). */
	char *tag;
	int cmd_flags;
	struct imap_view *view;
	struct imap_notify *notify;
	struct imap_append *append;
	struct imap_fetch *fetch;       /* a FETCH waiting for output to drain */
	char *idle_tag;
	struct net_timer *keepalive;    /* IDLE's "* OK Still here" */

	int errors;
	unsigned busy : 1;              /* a job is on the worker pool */
	unsigned orphaned : 1;          /* closed while busy: free after it */
	unsigned closing : 1;
	unsigned tls_starting : 1;
	unsigned stopping : 1;
};

/* What a worker saw go wrong, carried back to the loop thread. */
struct imap_result {
	int failed;
	enum store_error code;
	char *error;
};

/* --- imap_session.c ---------------------------------------------------- */

typedef void imap_done_fn(struct imap_session *s, void *arg);
void imap_submit(struct imap_session *s, net_work_fn *work, imap_done_fn *done, void *arg);
/* Writes the tagged reply "TAG text" of the running command once the view is
 * up to date, and goes on reading commands. */
void imap_finish(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* BAD for a command that was understood up to its arguments. */
void imap_finish_bad(struct imap_session *s, const char *text);
/* NO with the response code of a store failure. */
void imap_finish_result(struct imap_session *s, const struct imap_result *r);
/* In a worker: remembers the store's failure (code and message). */
void imap_result_fail(struct imap_result *r, const char *error);
void imap_result_clear(struct imap_result *r);
/* The capabilities for the session's state, without leading space. */
void imap_capability(struct imap_session *s, struct buf *out);
void imap_close(struct imap_session *s, const char *text);
int imap_utf8_mode(const struct imap_session *s);
int imap_rev2(const struct imap_session *s);
/* Goes back to reading commands after a command that read input itself. */
void imap_input_commands(struct imap_session *s);
/* Login succeeded (s->user, s->acct set): the authenticated state. */
void imap_session_logged_in(struct imap_session *s);
/* The session waits for a line that is not a command (IDLE's DONE): it
 * keeps no command parser until it reads commands again. Only between
 * commands, from a command handler or later. */
void imap_session_rest(struct imap_session *s);
/* TLS starts: the parser forgets the plaintext. */
void imap_session_tls_reset(struct imap_session *s);
/* IDLE's keepalive timer ("* OK Still here"). */
void imap_keepalive_start(struct imap_session *s);
void imap_keepalive_stop(struct imap_session *s);

/* --- imap_auth.c: STARTTLS, LOGIN, AUTHENTICATE --------------------------- */

void imap_cmd_starttls(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_login(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_authenticate(struct imap_session *s, const struct imap_cmd *cmd);
/* Reads an AUTHENTICATE response line. Returns 0 when none is buffered. */
int imap_auth_read(struct imap_session *s);

/* --- imap_misc.c: CAPABILITY, NOOP, CHECK, LOGOUT, ID, ENABLE, NAMESPACE ---- */

void imap_cmd_capability(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_noop(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_logout(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_id(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_enable(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_namespace(struct imap_session *s, const struct imap_cmd *cmd);

/* --- imap_mailbox.c: names, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, STATUS -- */

/* The store's (UTF-8) name for a mailbox argument, or -1 with a reply text. */
int imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg, char **name_r,
    const char **error_r);
/* Finishes the command with the error text of imap_mailbox_arg(). */
void imap_finish_mailbox_error(struct imap_session *s, const char *error);
/* Appends a mailbox name as the client expects it (quoted or literal). */
void imap_mailbox_write(struct imap_session *s, struct buf *out, const char *name);
void imap_cmd_create(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_delete(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_rename(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_subscribe(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_unsubscribe(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_status(struct imap_session *s, const struct imap_cmd *cmd);
#define IMAP_STATUS_MESSAGES 0x01
#define IMAP_STATUS_RECENT 0x02
#define IMAP_STATUS_UIDNEXT 0x04
#define IMAP_STATUS_UIDVALIDITY 0x08
#define IMAP_STATUS_UNSEEN 0x10
#define IMAP_STATUS_DELETED 0x20
#define IMAP_STATUS_SIZE 0x40
#define IMAP_STATUS_HIGHESTMODSEQ 0x80
#define IMAP_STATUS_MAILBOXID 0x100    /* OBJECTID (RFC 8474) */
/* STATUS items: parses the list into a mask (IMAP_STATUS_*); -1 if bad. */
int imap_status_items(const struct imap_arg *list, unsigned *items_r);
void imap_status_write(struct imap_session *s, struct buf *out,
    const struct store_mailbox *mbox, unsigned items);

/* --- imap_list.c: LIST, LSUB --------------------------------------------- */

void imap_cmd_list(struct imap_session *s, const struct imap_cmd *cmd);
/* 1 when a UTF-8 mailbox name matches a LIST pattern ('*' anything, '%'
 * anything but '/'). */
int imap_list_match(const char *pattern, const char *name);
void imap_cmd_lsub(struct imap_session *s, const struct imap_cmd *cmd);

/* --- imap_select.c: SELECT, EXAMINE, CLOSE, UNSELECT, EXPUNGE --------------- */

void imap_cmd_select(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_examine(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_close(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_unselect(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_expunge(struct imap_session *s, const struct imap_cmd *cmd);

/* --- imap_listing.c: SELECT's cache of big mailboxes' listings ---------- */

/* Mailboxes with fewer messages are listed from the store every time. */
#define IMAP_LISTING_MIN 1000

struct imap_listing;
/* The cached listing of the mailbox in exactly this state (id, UIDVALIDITY,
 * UIDNEXT, HIGHESTMODSEQ, counts) of this account, or NULL. A reference:
 * give it back with imap_listing_release. Any thread. */
struct imap_listing *imap_listing_get(int64_t account_id, const struct store_mailbox *state);
/* Makes a listing of msgs, read from the store in exactly this state (the
 * same before and after the read), caches it if it fits, and returns a
 * reference to it. */
struct imap_listing *imap_listing_put(int64_t account_id, const struct store_mailbox *state,
    const struct store_message *msgs, size_t n);
void imap_listing_release(struct imap_listing **listing);
/* 1 when two readings of a mailbox name the same state. */
int imap_listing_same(const struct store_mailbox *a, const struct store_mailbox *b);
/* Its messages, as a view to load from (imap_view_load_view). */
const struct imap_view *imap_listing_view(const struct imap_listing *listing);

/* --- imap_view.c: the selected mailbox ----------------------------------- */

struct imap_notify *imap_notify_new(struct imap_session *s);
/* The session is gone: posted notifications are dropped. */
void imap_notify_detach(struct imap_notify **n);
/* The store_watch_fn to register with ctx = the notify object. */
void imap_notify_fire(void *ctx);

struct imap_view *imap_view_new(const struct store_mailbox *mbox, int readonly);
void imap_view_free(struct imap_view **view);
/* Loads the messages from a store listing (on the loop thread). */
void imap_view_load(struct imap_view *view, const struct store_message *msgs, size_t n);
/* Loads the messages of another view of the same mailbox state (a cached
 * listing) into a new, empty view. */
void imap_view_load_view(struct imap_view *view, const struct imap_view *from);
/* 0-based index of a UID, or -1. */
int64_t imap_view_find_uid(const struct imap_view *view, uint32_t uid);
const char *const *imap_view_keywords(const struct imap_view *view,
    const struct imap_msg *m);
/* Updates a message's flags and keywords; returns 1 when they changed and
 * sets *new_keyword_r when a keyword not in FLAGS appeared. */
int imap_view_set_flags(struct imap_view *view, struct imap_msg *m, unsigned flags,
    const char *const *keywords, int *new_keyword_r);
/* Writes "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]". */
void imap_view_write_flags(struct imap_session *s, int permanent);
/* Writes the FLAGS of a message as "(\Seen kw ...)". */
void imap_view_format_flags(const struct imap_view *view, const struct imap_msg *m,
    struct buf *out);
/* Brings the view up to date from the store, writing untagged responses;
 * EXPUNGE responses only when expunge_ok. Then calls then(s). */
void imap_view_sync(struct imap_session *s, int force, int expunge_ok,
    void (*then)(struct imap_session *s));
/* Sends the EXPUNGE responses held back and drops those messages. */
void imap_view_flush_expunges(struct imap_session *s);
/* Marks the messages with these UIDs as expunged (the session's own
 * EXPUNGE or MOVE); the responses go out with imap_view_flush_expunges(). */
void imap_view_mark_expunged(struct imap_view *view, const uint32_t *uids, size_t n);

struct imap_seqset;
/* QRESYNC (RFC 7162): writes "* VANISHED (EARLIER) set" of the UIDs (sorted
 * in place) that are not in the view and, when within is not NULL, are in
 * that resolved set; nothing when none is left. */
void imap_view_vanished_earlier(const struct imap_view *view, uint32_t *uids, size_t n,
    const struct imap_seqset *within, struct buf *out);

/* --- imap_seqset.c is pure; resolving against the view: ------------------ */

/* Turns a sequence set (or UID set) argument into the 0-based indices of
 * the view's messages, ascending; "$" is the saved search result. Returns
 * 0, or -1 with an error text. */
int imap_view_resolve(const struct imap_view *view, const char *set, int uid,
    uint32_t **idx_r, size_t *count_r, const char **error_r);

/* --- imap_format.c: flags, dates, strings -------------------------------- */

/* Parses a flag list (or single flag) into system flags and keywords (a
 * NULL-terminated array the caller frees with imap_keywords_free).
 * \Recent is refused (RFC 9051). Returns 0 or -1 with an error text. */
int imap_flags_parse(const struct imap_arg *arg, unsigned *flags_r, char ***keywords_r,
    const char **error_r);
void imap_keywords_free(char ***keywords);
char **imap_keywords_dup(const char *const *keywords);
void imap_flags_format(struct buf *out, unsigned flags, const char *const *keywords);
/* "17-Jul-1996 02:44:25 -0700" (date-time) to Unix time; -1 if bad. */
int imap_datetime_parse(const char *s, int64_t *t_r);
/* "1-Feb-1994" (date) to the Unix time of that day's midnight UTC. */
int imap_date_parse(const char *s, int64_t *t_r);
void imap_datetime_format(struct buf *out, int64_t t);
/* Writes s as an IMAP string: quoted when it can be, else a literal. */
void imap_write_string(struct buf *out, const char *s, size_t len);
/* Writes s as an nstring (NIL when s is NULL). */
void imap_write_nstring(struct buf *out, const char *s);
/* An astring argument (atom, quoted or literal) of at most max bytes. */
int imap_arg_astring(const struct imap_arg *arg, size_t max);

/* --- imap_append.c ------------------------------------------------------- */

void imap_cmd_append(struct imap_session *s, const struct imap_cmd *cmd);
/* The parser announced the message literal of an APPEND: the command so far
 * is in cmd. */
void imap_append_literal(struct imap_session *s, const struct imap_cmd *cmd);
/* Reads message bytes. Returns 0 when none are buffered. */
int imap_append_read(struct imap_session *s);
void imap_append_free(struct imap_append **a);

/* --- imap_fetch.c, imap_store.c, imap_copy.c, imap_search_cmd.c ------------ */

void imap_cmd_fetch(struct imap_session *s, const struct imap_cmd *cmd);
void imap_fetch_drained(struct imap_session *s);
void imap_fetch_free(struct imap_fetch **f);
void imap_cmd_store(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_copy(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_move(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_search(struct imap_session *s, const struct imap_cmd *cmd);

/* A search over the selected mailbox, for SEARCH, SORT and THREAD: made on
 * the loop thread (the view's saved result copied), its prog filled in by
 * the caller, run on a worker. Set need_meta first to get the mailbox's
 * listing in meta (UID order) whatever the keys. */
struct imap_search_job {
	struct imap_search_program prog;
	struct store_account *acct;
	int64_t mailbox_id;
	const struct imap_view *view;   /* read-only while the job runs */
	unsigned need_meta : 1;
	unsigned need_summary : 1;
	struct store_message *meta;
	size_t nmeta;
	uint32_t *hits;                 /* view indices, ascending */
	size_t nhits;
	uint64_t highest;               /* of the hits' MODSEQs */
	uint32_t *saved;                /* "$" when the search began */
	size_t nsaved;
	struct imap_result res;
	unsigned uid_cmd : 1;
	unsigned esearch : 1;
};
struct imap_search_job *imap_search_job_new(struct imap_session *s, int uid_cmd);
/* In a worker: fills hits (and meta), or res on failure. */
void imap_search_job_run(struct imap_search_job *j);
void imap_search_job_free(struct imap_search_job *j);

/* --- imap_sort_cmd.c: SORT, THREAD (RFC 5256, 5957, ESORT of 5267) ------ */

void imap_cmd_sort(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_thread(struct imap_session *s, const struct imap_cmd *cmd);

/* --- imap_idle.c --------------------------------------------------------- */

void imap_cmd_idle(struct imap_session *s, const struct imap_cmd *cmd);
/* Reads "DONE". Returns 0 when no line is buffered. */
int imap_idle_read(struct imap_session *s);
/* A change notification arrived while idling. */
void imap_idle_changed(struct imap_session *s);

/* --- imap_quota.c -------------------------------------------------------- */

void imap_cmd_getquota(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_getquotaroot(struct imap_session *s, const struct imap_cmd *cmd);
void imap_cmd_setquota(struct imap_session *s, const struct imap_cmd *cmd);

#endif
