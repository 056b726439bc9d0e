/*
 * What every mail import (Maildir, mbox) shares: the account, the message
 * being streamed into a store writer, progress on stderr, totals, and the
 * journal that makes an interrupted import resumable without duplicates.
 *
 * The journal (data_dir/import/<account>-<created>-<source hash>.journal,
 * one per account and source) gets, for each message identified by a key
 * stable across runs (a Maildir file's base name, an mbox From_ offset):
 *
 *   P <key> <mailbox id> <min uid> <size> <sha256>   before the commit
 *   D <key> <mailbox id> <uidvalidity> <uid>         after it succeeded
 *   X <key>                                          not stored after all
 *
 * A later run skips keys with a D line whose mailbox still exists with that
 * UIDVALIDITY. A P line without an answer (the process died during the
 * commit) is settled by looking in the mailbox for a message at or above
 * <min uid> with that size and SHA-256. Lines are written with write(2), not
 * fsynced: they survive the process being killed; a power loss may lose the
 * last ones, and the messages they named are then imported again.
 */
#ifndef PETREL_CLI_MAIL_IMPORT_H
#define PETREL_CLI_MAIL_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/cli_mail.h"
#include "core/buf.h"

struct cli;
struct store_writer;
struct evp_md_ctx_st;

#define MAIL_IMPORT_PROGRESS 1000   /* messages between progress lines */

struct mail_import_keyset {
	uint64_t *slots;        /* open addressing; 0 is empty */
	size_t cap, count;
};

struct mail_import {
	struct cli *cli;
	struct cli_mail mail;
	const char *format;     /* "maildir", "mbox" */
	const char *source;     /* as given on the command line */
	int journal_fd;
	char *journal_path;
	struct mail_import_keyset done;

	/* Where messages go now. */
	char *mbox_name;
	int64_t mbox_id;
	uint32_t min_uid;       /* every UID we get from now on is >= this */

	/* The message being written. */
	struct store_writer *w;
	struct evp_md_ctx_st *sha;
	struct buf write_error; /* the first write error, empty when none */

	uint64_t imported, already, failed, bytes;
	json_t *errors;         /* with --json */
	json_t *mailboxes;      /* mailboxes created */
};

/* Opens the account (dropping root) and the journal for this source. `source_id`
 * names the source for the journal (an absolute path, plus the target mailbox
 * for an mbox). fresh: forget what earlier runs did. Prints errors; -1 on
 * failure. */
int mail_import_open(struct mail_import *imp, struct cli *cli, const char *address,
    const char *format, const char *source, const char *source_id, int fresh);
/* Selects, creating it when missing, the mailbox the next messages go to. */
int mail_import_select(struct mail_import *imp, const char *name);
/* Gives the selected mailbox the source's UIDVALIDITY, so that the
 * source's UIDs can be kept: possible when the mailbox has never held a
 * message, or has that UIDVALIDITY already (an earlier run of the import
 * set it). first_uid: the lowest UID the import will ask for (UIDNEXT is
 * raised to it). Returns 1 when UIDs can be kept, 0 when the mailbox's
 * messages get new UIDs (said on stderr: a merge into a mailbox that has
 * messages). Once the messages are in, mail_import_uidnext gives it the
 * source's UIDNEXT. */
int mail_import_keep_uids(struct mail_import *imp, uint32_t uidvalidity, uint32_t first_uid);
/* Raises the selected mailbox's UIDNEXT to uidnext (a warning on error). */
void mail_import_uidnext(struct mail_import *imp, uint32_t uidnext);
/* 1 when an earlier run stored the message with this key. */
int mail_import_is_done(struct mail_import *imp, const char *key);
/* Starts a message; then mail_import_write its bytes and mail_import_commit
 * (or mail_import_abort). */
int mail_import_begin(struct mail_import *imp);
void mail_import_write(struct mail_import *imp, const void *data, size_t len);
/* Stores the message. Returns 0 when stored or when only this message
 * failed (reported, counted), -1 when the import must stop (I/O trouble, the
 * quota: printed). keywords: NULL-terminated or NULL. */
int mail_import_commit(struct mail_import *imp, const char *key, unsigned flags,
    const char *const *keywords, int64_t internaldate);
/* The same, with the UID the message should have (0: the next one; see
 * mail_import_keep_uids). Returns 1, having stored nothing and counted
 * nothing, when the mailbox's UIDNEXT is already above uid: the caller
 * imports the message again without it. */
int mail_import_commit_uid(struct mail_import *imp, const char *key, unsigned flags,
    const char *const *keywords, int64_t internaldate, uint32_t uid);
void mail_import_abort(struct mail_import *imp);
/* Counts a message skipped because an earlier run stored it. */
void mail_import_skipped(struct mail_import *imp);
/* Reports a problem with one message or folder (it is counted as failed
 * when `failed`). */
void mail_import_warn(struct mail_import *imp, int failed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints the totals (stdout) and closes everything. ok: the source was read
 * to its end. Returns the exit status. */
int mail_import_close(struct mail_import *imp, int ok);

/* The formats (import_maildir.c, import_mbox.c): exit status. */
int import_maildir(struct cli *cli, const char *address, const char *dir, int fresh);
int import_mbox(struct cli *cli, const char *address, const char *file,
    const char *mailbox, int fresh);

#endif
