/*
 * Helpers shared by the commands that reach an account's mail (mailbox,
 * message, import maildir|mbox, export): opening an account's store, flag
 * names, the mail formats' small encodings (modified UTF-7 mailbox names,
 * Maildir flag letters, mbox From_ lines).
 */
#ifndef PETREL_CLI_CLI_MAIL_H
#define PETREL_CLI_CLI_MAIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "directory/directory.h"

struct cli;
struct store;
struct store_account;
struct store_mailbox;

/* An account's mail, opened from the command line. */
struct cli_mail {
	struct directory *dir;
	struct directory_account account;
	struct store *store;
	struct store_account *acct;
};

/* Opens the directory (dropping root, see cli_open_directory), finds the
 * account and opens its store with the directory's quota. Prints the error
 * and returns -1 on failure (everything closed). */
int cli_mail_open(struct cli *cli, const char *address, struct cli_mail *m);
void cli_mail_close(struct cli_mail *m);

/* Finds a mailbox by name (case-insensitive "INBOX"). 1 found, 0 not found
 * (message printed), -1 error (message printed). */
int cli_mail_mailbox(struct cli_mail *m, const char *name, struct store_mailbox *mbox_r);

/* A subcommand table: the first argument after the command picks one. */
struct cli_mail_subcommand {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
};
int cli_mail_dispatch(const struct cli_mail_subcommand *table, struct cli *cli, int argc,
    char **argv);

/* IMAP-style flag list: "\Seen \Flagged $Forwarded" (system flags first, then
 * keywords), "" when none. */
void cli_mail_format_flags(unsigned flags, char *const *keywords, struct buf *out);

/* Modified UTF-7 (RFC 3501 5.1.3) to UTF-8 and back. Decoding returns an
 * allocated string or NULL when s is not valid modified UTF-7 (or does not
 * decode to valid, NUL-free UTF-8). Encoding takes valid UTF-8 and also
 * encodes every character of `also` (e.g. "." for Maildir++ names) as a
 * base64 run. */
char *cli_mail_utf7_decode(const char *s, size_t len);
void cli_mail_utf7_encode(const char *s, const char *also, struct buf *out);

/* Maildir flag letters (":2,DFPRST" minus what is not set; keywords as
 * 'a'+index are the caller's business) and back. P (passed) is the
 * $Forwarded keyword, T (trashed) is \Deleted. */
#define CLI_MAIL_FORWARDED "$Forwarded"
void cli_mail_maildir_letters(unsigned flags, int forwarded, struct buf *out);
/* Sets *flags and *forwarded from the system letters of an info field (the
 * part after ":2,"); lower-case letters are left to the caller. */
void cli_mail_maildir_parse(const char *info, unsigned *flags, int *forwarded);

/* 1 when a keyword is acceptable to IMAP (an atom of at most
 * STORE_KEYWORD_MAX bytes, not starting with '\'). */
int cli_mail_keyword_ok(const char *kw);

/* The date of an mbox From_ line ("Thu Jan  1 00:00:00 2024", UTC) and back.
 * Parsing accepts the asctime form, optionally with a zone between the
 * time and the year; returns -1 when there is none. */
void cli_mail_from_date(int64_t t, char *buf, size_t bufsize);
int cli_mail_parse_from_line(const char *line, size_t len, int64_t *t_r);

/* 1 when s[0..len) is UTF-8 without NUL or malformed sequences. */
int cli_mail_utf8_valid(const char *s, size_t len);
/* Header text fit for a terminal or JSON: control characters become
 * spaces, and in text that is not UTF-8 every non-ASCII byte becomes '?'.
 * NULL gives "". Allocated. */
char *cli_mail_printable(const char *s);
/* A JSON string of cli_mail_printable(s). */
struct json_t;
struct json_t *cli_mail_json_text(const char *s);

/* Lower-case hex of a SHA-256 digest (65 bytes with the NUL). */
void cli_mail_hex(const unsigned char *bin, size_t len, char *out);

#endif
