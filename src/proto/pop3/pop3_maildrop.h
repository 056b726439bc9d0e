/*
 * A POP3 maildrop: the account's INBOX as it was at login (RFC 1939 section
 * 8: numbers and sizes do not change during a session), the deletion marks,
 * and the lock that keeps a second POP3 session of the account out.
 *
 * The lock is a table in this process, keyed by account id. (Several Petrel
 * processes sharing a store would need the lock in the store; there is one
 * process today.)
 *
 * The functions marked "blocking" call the mail store and run on the worker
 * pool; the others only look at the snapshot and may run anywhere. A
 * maildrop is used by one thread at a time.
 */
#ifndef PETREL_PROTO_POP3_MAILDROP_H
#define PETREL_PROTO_POP3_MAILDROP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct directory;
struct store;
struct store_account;
struct store_watch;

/* Longest UIDL value we make, with its NUL: a 32-digit GUID, "-" and a
 * UID (RFC 1939 allows 70 characters). */
#define POP3_UIDL_SIZE 48

struct pop3_msg {
	uint64_t size;
	uint32_t uid;
	unsigned deleted : 1;      /* DELE: expunged at QUIT */
	unsigned retrieved : 1;    /* RETR: gets \Seen at QUIT */
	unsigned seen : 1;         /* had \Seen at login */
	unsigned dup_guid : 1;     /* an earlier message has the same GUID */
	char guid[33];
};

struct pop3_maildrop {
	int64_t account_id;
	struct store_account *acct;
	int64_t mailbox_id;        /* INBOX */
	struct pop3_msg *msgs;     /* by message number - 1 */
	size_t count;
	size_t ndeleted;
	uint64_t size;             /* octets of all messages */
	uint64_t deleted_size;     /* octets of those marked deleted */
	/* Counts the changes committed to INBOX since login (any thread
	 * bumps it): what was read ahead is good while it has not moved. */
	atomic_uint changes;
	struct store_watch *watch;
	unsigned locked : 1;
};

enum pop3_maildrop_status {
	POP3_MAILDROP_OK,
	POP3_MAILDROP_IN_USE,      /* another POP3 session has it */
	POP3_MAILDROP_TEMP,        /* the store or directory failed */
};

/* Blocking. Takes the lock, opens the account (quota from the directory)
 * and snapshots INBOX. On failure nothing stays locked or open and
 * *error_r is a message safe for the client. */
enum pop3_maildrop_status pop3_maildrop_open(struct store *store, struct directory *dir,
    int64_t account_id, const char *session_id, struct pop3_maildrop **md_r,
    const char **error_r);

/* Blocking. The UPDATE state: expunges the messages marked deleted in one
 * store operation, then sets \Seen on those retrieved and kept. Returns 0,
 * or -1 when the expunge failed (nothing was deleted). A failure to set
 * \Seen is only logged. */
int pop3_maildrop_update(struct pop3_maildrop *md, const char *session_id,
    const char **error_r);

/* Releases the lock (cheap, not blocking); pop3_maildrop_free() does it
 * too. */
void pop3_maildrop_unlock(struct pop3_maildrop *md);

/* Blocking (closes the account). Unlocks and frees; NULL is fine. */
void pop3_maildrop_free(struct pop3_maildrop **md);

/* Marks and unmarks (RSET). */
void pop3_maildrop_delete(struct pop3_maildrop *md, size_t i);
void pop3_maildrop_reset(struct pop3_maildrop *md);

/* Message i's UIDL (RFC 1939 section 7): its GUID, which the store keeps
 * for the message's life; a copy that shares the GUID of an earlier
 * message in the maildrop gets "-<uid>" after it. */
void pop3_maildrop_uidl(const struct pop3_maildrop *md, size_t i, char out[POP3_UIDL_SIZE]);

#endif
