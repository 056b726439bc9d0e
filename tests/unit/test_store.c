/* Unit tests of src/store: accounts, mailboxes, messages, flags, copy/move/
 * expunge, changes, quota, search, concurrency, notifications, rebuild,
 * I/O failures, kept UIDs (imports) and the sweeping of what crashes leave
 * behind. Each test gets its own data directory under /tmp. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/mime.h"
#include "store/store.h"
#include "store/store_backend.h"

struct fixture {
	char dir[64];
	struct store *store;
	struct store_account *acct;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error;

	strcpy(f->dir, "/tmp/petrel-test-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if (store_open(f->dir, &f->store, &error) < 0) {
		fprintf(stderr, "store_open: %s\n", error);
		return -1;
	}
	if (store_account_open(f->store, 1, NULL, &f->acct, &error) < 0) {
		fprintf(stderr, "store_account_open: %s\n", error);
		return -1;
	}
	*state = f;
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	store_account_close(&f->acct);
	store_close(&f->store);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int64_t
mailbox_id(struct store_account *acct, const char *name)
{
	struct store_mailbox m;
	const char *error;
	int64_t id;

	assert_int_equal(store_mailbox_get(acct, name, &m, &error), 1);
	id = m.id;
	store_mailbox_clear(&m);
	return id;
}

static struct store_mailbox
mailbox(struct store_account *acct, const char *name)
{
	struct store_mailbox m;
	const char *error;

	assert_int_equal(store_mailbox_get(acct, name, &m, &error), 1);
	free(m.name);
	m.name = NULL;
	return m;
}

/* Writes text (in pieces of 7 bytes) and commits it to one mailbox. */
static uint32_t
append(struct store *store, struct store_account *acct, const char *mbox, const char *text,
    unsigned flags, const char *const *keywords)
{
	struct store_writer *w;
	struct store_target t;
	const char *error;
	size_t len = strlen(text), off;

	assert_int_equal(store_writer_new(store, &w, &error), 0);
	for (off = 0; off < len; off += 7)
		assert_int_equal(store_writer_write(w, text + off, len - off < 7 ? len - off : 7,
		    &error), 0);
	assert_int_equal(store_writer_size(w), len);
	memset(&t, 0, sizeof(t));
	t.acct = acct;
	t.mailbox_name = mbox;
	t.flags = flags;
	t.keywords = keywords;
	t.internaldate = 1700000000;
	assert_int_equal(store_writer_commit(w, &t, 1, &error), 1);
	assert_int_equal(t.error, STORE_OK);
	assert_true(t.uid > 0);
	assert_true(t.uidvalidity > 0);
	store_writer_free(&w);
	return t.uid;
}

static const char msg1[] = "From: a@example.com\r\nSubject: Hello there\r\n"
    "Message-ID: <one@example.com>\r\n\r\nThe quick brown fox jumps.\r\n";
static const char msg2[] = "From: b@example.com\r\nSubject: Re: Hello there\r\n"
    "Message-ID: <two@example.com>\r\nIn-Reply-To: <one@example.com>\r\n\r\n"
    "Lazy dogs sleep all day.\r\n";
static const char msg3[] = "From: c@example.com\r\nSubject: Other\r\n"
    "Message-ID: <three@example.com>\r\n\r\nNothing to see: Zq.\r\n";

/* --- names ------------------------------------------------------------ */

static void
test_names(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = { "", "/a", "a/", "a//b", "..", ".", "a/../b", "a/./b",
	    "a\001b", "tab\there", "del\x7f", "nl\n", "\xff\xfe", "\xc0\xaf", "a\xc2\x85",
	    "\xed\xa0\x80" };
	char *longname, *deep;
	const char *error;
	int64_t id;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(store_mailbox_create(f->acct, bad[i], 0, &id, &error), -1);
		assert_int_equal(store_error_code(), STORE_ERR_INVALID);
	}
	assert_int_equal(store_mailbox_create(f->acct, NULL, 0, &id, &error), -1);
	longname = xmalloc(STORE_MAILBOX_NAME_MAX + 2);
	memset(longname, 'x', STORE_MAILBOX_NAME_MAX + 1);
	longname[STORE_MAILBOX_NAME_MAX + 1] = '\0';
	assert_int_equal(store_mailbox_create(f->acct, longname, 0, &id, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_LIMIT);
	longname[STORE_MAILBOX_NAME_MAX] = '\0';
	assert_int_equal(store_mailbox_create(f->acct, longname, 0, &id, &error), 0);
	free(longname);
	deep = xmalloc(2 * (STORE_MAILBOX_DEPTH_MAX + 1) + 1);
	for (i = 0; i < STORE_MAILBOX_DEPTH_MAX + 1; i++)
		memcpy(deep + 2 * i, "d/", 2);
	deep[2 * (STORE_MAILBOX_DEPTH_MAX + 1) - 1] = '\0';
	assert_int_equal(store_mailbox_create(f->acct, deep, 0, &id, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_LIMIT);
	deep[2 * STORE_MAILBOX_DEPTH_MAX - 1] = '\0';
	assert_int_equal(store_mailbox_create(f->acct, deep, 0, &id, &error), 0);
	free(deep);

	/* INBOX in any case; UTF-8 and odd but valid names. */
	assert_int_equal(store_mailbox_create(f->acct, "inbox", 0, &id, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_create(f->acct, "iNbOx/Sub", 0, &id, &error), 0);
	assert_int_equal(mailbox_id(f->acct, "INBOX/Sub"), id);
	assert_int_equal(mailbox_id(f->acct, "inbox/Sub"), id);
	assert_int_equal(store_mailbox_create(f->acct, "Inboxes", 0, &id, &error), 0);
	assert_int_equal(mailbox_id(f->acct, "Inboxes"), id);
	assert_int_equal(store_mailbox_create(f->acct, "Ünïcödé/日本語", 0, &id, &error), 0);
	assert_int_equal(mailbox_id(f->acct, "Ünïcödé/日本語"), id);
	assert_int_equal(store_mailbox_create(f->acct, "a.b/...x", 0, &id, &error), 0);
	/* Names are case-sensitive apart from INBOX. */
	assert_int_equal(store_mailbox_create(f->acct, "sent", 0, &id, &error), 0);
}

/* --- accounts --------------------------------------------------------- */

static void
test_account_defaults(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox *list;
	struct store_account *again;
	struct store_usage usage;
	char **subs;
	size_t n, nsubs, i;
	const char *error;
	static const struct {
		const char *name;
		unsigned special;
	} want[] = {
		{ "Archive", STORE_SPECIAL_ARCHIVE }, { "Drafts", STORE_SPECIAL_DRAFTS },
		{ "INBOX", 0 }, { "Junk", STORE_SPECIAL_JUNK }, { "Sent", STORE_SPECIAL_SENT },
		{ "Trash", STORE_SPECIAL_TRASH },
	};

	assert_int_equal(store_mailbox_list(f->acct, &list, &n, &error), 0);
	assert_int_equal(n, 6);
	for (i = 0; i < n; i++) {
		assert_string_equal(list[i].name, want[i].name);
		assert_int_equal(list[i].special_use, want[i].special);
		assert_true(list[i].subscribed);
		assert_true(list[i].uidvalidity != 0);
		assert_int_equal(list[i].uidnext, 1);
		assert_int_equal(list[i].messages, 0);
	}
	store_mailboxes_free(&list, n);
	assert_int_equal(store_subscriptions(f->acct, &subs, &nsubs, &error), 0);
	assert_int_equal(nsubs, 6);
	store_subscriptions_free(&subs, nsubs);
	assert_null(subs);

	assert_int_equal(store_account_usage(f->acct, &usage, &error), 0);
	assert_int_equal(usage.bytes, 0);
	assert_int_equal(usage.messages, 0);

	/* One shared object per account. */
	assert_int_equal(store_account_open(f->store, 1, NULL, &again, &error), 0);
	assert_ptr_equal(again, f->acct);
	store_account_close(&again);
	assert_null(again);
	assert_int_equal(store_account_open(f->store, 0, NULL, &again, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_INVALID);

	/* Deleting needs the account closed. */
	assert_int_equal(store_account_delete(f->store, 1, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_CONFLICT);
	assert_int_equal(store_account_open(f->store, 2, NULL, &again, &error), 0);
	append(f->store, again, "INBOX", msg1, 0, NULL);
	store_account_close(&again);
	assert_int_equal(store_account_delete(f->store, 2, &error), 0);
	assert_int_equal(store_account_open(f->store, 2, NULL, &again, &error), 0);
	assert_int_equal(store_account_usage(again, &usage, &error), 0);
	assert_int_equal(usage.messages, 0);
	store_account_close(&again);
	assert_int_equal(store_account_delete(f->store, 99, &error), 0);
}

/* --- mailboxes -------------------------------------------------------- */

static void
test_mailboxes(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox m, *list;
	struct store_message *msgs;
	char **subs;
	size_t n, nsubs, i;
	const char *error;
	int64_t id, inbox, oldid;
	uint32_t uid;

	assert_int_equal(store_mailbox_create(f->acct, "a/b/c", STORE_SPECIAL_FLAGGED, &id,
	    &error), 0);
	assert_int_equal(store_mailbox_get(f->acct, "a", &m, &error), 1);
	store_mailbox_clear(&m);
	assert_int_equal(store_mailbox_get(f->acct, "a/b", &m, &error), 1);
	store_mailbox_clear(&m);
	assert_int_equal(store_mailbox_get(f->acct, "a/b/c", &m, &error), 1);
	assert_int_equal(m.id, id);
	assert_int_equal(m.special_use, STORE_SPECIAL_FLAGGED);
	assert_false(m.subscribed);
	store_mailbox_clear(&m);
	assert_int_equal(store_mailbox_get_by_id(f->acct, id, &m, &error), 1);
	assert_string_equal(m.name, "a/b/c");
	store_mailbox_clear(&m);
	assert_int_equal(store_mailbox_get(f->acct, "nope", &m, &error), 0);
	assert_int_equal(store_mailbox_get_by_id(f->acct, 12345, &m, &error), 0);
	assert_int_equal(store_mailbox_create(f->acct, "a/b", 0, NULL, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_create(f->acct, "x", 1 << 20, NULL, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_INVALID);

	/* Subscriptions are independent of existence. */
	assert_int_equal(store_mailbox_subscribe(f->acct, "a/b", 1, &error), 0);
	assert_int_equal(store_mailbox_subscribe(f->acct, "ghost", 1, &error), 0);
	assert_int_equal(store_mailbox_subscribe(f->acct, "Junk", 0, &error), 0);
	assert_int_equal(store_subscriptions(f->acct, &subs, &nsubs, &error), 0);
	assert_int_equal(nsubs, 7);
	for (i = 0; i < nsubs; i++)
		assert_string_not_equal(subs[i], "Junk");
	store_subscriptions_free(&subs, nsubs);

	/* Rename with children; the id stays; subscriptions follow. */
	assert_int_equal(store_mailbox_rename(f->acct, "a", "z/y", &error), 0);
	assert_int_equal(store_mailbox_get(f->acct, "a", &m, &error), 0);
	assert_int_equal(store_mailbox_get(f->acct, "a/b/c", &m, &error), 0);
	assert_int_equal(mailbox_id(f->acct, "z/y/b/c"), id);
	assert_int_equal(store_mailbox_get(f->acct, "z/y/b", &m, &error), 1);
	assert_true(m.subscribed);
	store_mailbox_clear(&m);
	assert_int_equal(store_mailbox_get(f->acct, "z", &m, &error), 1);
	store_mailbox_clear(&m);
	assert_int_equal(store_mailbox_rename(f->acct, "z/y", "z/y/b/q", &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_INVALID);
	assert_int_equal(store_mailbox_rename(f->acct, "z/y", "Sent", &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_EXISTS);
	assert_int_equal(store_mailbox_rename(f->acct, "nope", "zz", &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);
	assert_int_equal(store_mailbox_rename(f->acct, "Sent", "inbox", &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_EXISTS);
	/* Same name (a sibling with a similar prefix stays). */
	assert_int_equal(store_mailbox_create(f->acct, "z/y2", 0, NULL, &error), 0);
	assert_int_equal(store_mailbox_rename(f->acct, "z/y", "w", &error), 0);
	assert_int_equal(store_mailbox_get(f->acct, "z/y2", &m, &error), 1);
	store_mailbox_clear(&m);

	/* Delete: not INBOX, not with children. */
	assert_int_equal(store_mailbox_delete(f->acct, "INBOX", &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_CONFLICT);
	assert_int_equal(store_mailbox_delete(f->acct, "w", &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_CONFLICT);
	assert_int_equal(store_mailbox_delete(f->acct, "nope", &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);
	append(f->store, f->acct, "w/b/c", msg1, 0, NULL);
	assert_int_equal(store_mailbox_delete(f->acct, "w/b/c", &error), 0);
	assert_int_equal(store_mailbox_delete(f->acct, "w/b", &error), 0);
	assert_int_equal(store_mailbox_delete(f->acct, "w", &error), 0);
	{
		struct store_usage u;

		assert_int_equal(store_account_usage(f->acct, &u, &error), 0);
		assert_int_equal(u.messages, 0);
		assert_int_equal(u.bytes, 0);
	}
	/* A new mailbox of an old name gets a new UIDVALIDITY. */
	assert_int_equal(store_mailbox_create(f->acct, "w", 0, &id, &error), 0);
	assert_int_equal(store_mailbox_get(f->acct, "w", &m, &error), 1);
	assert_true(m.uidvalidity > mailbox(f->acct, "Trash").uidvalidity);
	store_mailbox_clear(&m);

	/* Renaming INBOX moves its messages to a new mailbox and leaves INBOX,
	 * with its children, in place. */
	inbox = mailbox_id(f->acct, "INBOX");
	uid = append(f->store, f->acct, "INBOX", msg1, STORE_FLAG_SEEN, NULL);
	append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	assert_int_equal(store_mailbox_create(f->acct, "INBOX/kid", 0, NULL, &error), 0);
	assert_int_equal(store_mailbox_rename(f->acct, "INBOX", "Old Inbox", &error), 0);
	assert_int_equal(mailbox_id(f->acct, "INBOX"), inbox);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 0);
	assert_int_equal(mailbox(f->acct, "INBOX").uidnext, uid + 2);
	assert_int_equal(store_mailbox_get(f->acct, "INBOX/kid", &m, &error), 1);
	store_mailbox_clear(&m);
	oldid = mailbox_id(f->acct, "Old Inbox");
	assert_int_equal(mailbox(f->acct, "Old Inbox").messages, 2);
	assert_int_equal(mailbox(f->acct, "Old Inbox").unseen, 1);
	assert_int_equal(store_message_list(f->acct, oldid, 1, UINT32_MAX, &msgs, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN);
	store_messages_free(&msgs, n);
	{
		struct store_changes ch;

		assert_int_equal(store_changes_since(f->acct, inbox, 1, &ch, &error), 0);
		assert_int_equal(ch.nexpunged, 2);
		store_changes_clear(&ch);
	}
	assert_int_equal(store_mailbox_rename(f->acct, "INBOX", "INBOX/older", &error), 0);

	assert_int_equal(store_mailbox_list(f->acct, &list, &n, &error), 0);
	for (i = 1; i < n; i++)
		assert_true(strcmp(list[i - 1].name, list[i].name) < 0);
	store_mailboxes_free(&list, n);
}

/* --- messages --------------------------------------------------------- */

static void
test_append_read(void **state)
{
	struct fixture *f = *state;
	static const char *const kw[] = { "$Forwarded", "work", "$forwarded", NULL };
	struct store_message *msgs;
	struct store_blob *blob;
	struct mime_summary *s;
	struct store_usage usage;
	struct store_mailbox m;
	const char *error;
	char buf[256];
	size_t n;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	uint32_t u1, u2;

	u1 = append(f->store, f->acct, "INBOX", msg1, STORE_FLAG_FLAGGED, kw);
	u2 = append(f->store, f->acct, "inbox", msg2, STORE_FLAG_SEEN, NULL);
	assert_int_equal(u1, 1);
	assert_int_equal(u2, 2);
	m = mailbox(f->acct, "INBOX");
	assert_int_equal(m.messages, 2);
	assert_int_equal(m.unseen, 1);
	assert_int_equal(m.size, strlen(msg1) + strlen(msg2));
	assert_int_equal(m.uidnext, 3);
	assert_int_equal(store_account_usage(f->acct, &usage, &error), 0);
	assert_int_equal(usage.messages, 2);
	assert_int_equal(usage.bytes, strlen(msg1) + strlen(msg2));

	assert_int_equal(store_message_list(f->acct, inbox, 0, UINT32_MAX, &msgs, &n, &error),
	    0);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].uid, 1);
	assert_int_equal(msgs[0].flags, STORE_FLAG_FLAGGED);
	assert_int_equal(msgs[0].internaldate, 1700000000);
	assert_int_equal(msgs[0].size, strlen(msg1));
	assert_non_null(msgs[0].keywords);
	assert_string_equal(msgs[0].keywords[0], "$Forwarded");
	assert_string_equal(msgs[0].keywords[1], "work");
	assert_null(msgs[0].keywords[2]);
	assert_null(msgs[1].keywords);
	assert_int_equal(strlen(msgs[0].guid), 32);
	assert_string_not_equal(msgs[0].guid, msgs[1].guid);
	assert_true(msgs[0].modseq < msgs[1].modseq);
	/* Threading: msg2 answers msg1. */
	assert_int_equal(msgs[0].thread_id, msgs[1].thread_id);
	/* Opened by the GUID of a listing, without the index: the right
	 * message, and nothing for a wrong or malformed GUID. */
	assert_int_equal(store_blob_open_guid(f->acct, inbox, u1, msgs[0].guid, &blob,
	    &error), 0);
	assert_int_equal(store_blob_size(blob), strlen(msg1));
	store_blob_close(&blob);
	assert_int_equal(store_blob_open_guid(f->acct, inbox, u1, msgs[1].guid, &blob,
	    &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);
	assert_int_equal(store_blob_open_guid(f->acct, inbox, u1, "../../../../etc/passwd",
	    &blob, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);
	store_messages_free(&msgs, n);
	assert_null(msgs);
	assert_int_equal(store_message_list(f->acct, inbox, 2, 2, &msgs, &n, &error), 0);
	assert_int_equal(n, 1);
	store_messages_free(&msgs, n);
	assert_int_equal(store_message_list(f->acct, 9999, 1, 2, &msgs, &n, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);

	assert_int_equal(store_blob_open(f->acct, inbox, u1, &blob, &error), 0);
	assert_int_equal(store_blob_size(blob), strlen(msg1));
	assert_int_equal(store_blob_read(blob, 0, buf, sizeof(buf)), strlen(msg1));
	assert_memory_equal(buf, msg1, strlen(msg1));
	assert_int_equal(store_blob_read(blob, 6, buf, 13), 13);
	assert_memory_equal(buf, "a@example.com", 13);
	assert_int_equal(store_blob_read(blob, strlen(msg1), buf, 10), 0);
	assert_int_equal(store_blob_read(blob, strlen(msg1) - 2, buf, 10), 2);
	store_blob_close(&blob);
	assert_null(blob);
	assert_int_equal(store_blob_open(f->acct, inbox, 77, &blob, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);

	assert_int_equal(store_message_summary(f->acct, inbox, u2, &s, &error), 0);
	assert_int_equal(s->size, strlen(msg2));
	assert_non_null(s->subject);
	assert_string_equal(s->subject, "Re: Hello there");
	assert_true(s->nparts >= 1);
	mime_summary_free(&s);
	assert_int_equal(store_message_summary(f->acct, inbox, 99, &s, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);
}

static void
test_writer(void **state)
{
	struct fixture *f = *state;
	struct store_writer *w;
	struct store_target t[4];
	static const char *const badkw[] = { "bad kw", NULL };
	const char *error;
	static char dummy[1];
	int64_t junk = mailbox_id(f->acct, "Junk");

	/* Too big: refused before anything is read. */
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, "x", 1, &error), 0);
	assert_int_equal(store_writer_write(w, dummy, STORE_MESSAGE_MAX, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_LIMIT);
	assert_int_equal(store_writer_commit(w, t, 0, &error), -1);
	store_writer_free(&w);
	assert_null(w);

	/* Per-target failures. */
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, msg3, strlen(msg3), &error), 0);
	memset(t, 0, sizeof(t));
	t[0].acct = f->acct;
	t[0].mailbox_name = "No such";
	t[1].acct = f->acct;
	t[1].mailbox_id = junk;
	t[1].flags = STORE_FLAG_SEEN | STORE_FLAG_DRAFT;
	t[2].acct = f->acct;
	t[2].mailbox_name = "a//b";
	t[3].acct = f->acct;
	t[3].mailbox_name = "INBOX";
	t[3].keywords = badkw;
	assert_int_equal(store_writer_commit(w, t, 4, &error), 1);
	assert_int_equal(t[0].error, STORE_ERR_NOT_FOUND);
	assert_int_equal(t[1].error, STORE_OK);
	assert_int_equal(t[1].uid, 1);
	assert_int_equal(t[1].uidvalidity, mailbox(f->acct, "Junk").uidvalidity);
	assert_int_equal(t[2].error, STORE_ERR_INVALID);
	assert_int_equal(t[3].error, STORE_ERR_INVALID);
	/* No writes after a commit; more commits, to other accounts (a
	 * delivery to more accounts than it opens at once), store the same
	 * file again. */
	assert_int_equal(store_writer_write(w, "x", 1, &error), -1);
	{
		struct store_account *other;

		assert_int_equal(store_account_open(f->store, 2, NULL, &other, &error), 0);
		memset(t, 0, sizeof(t));
		t[0].acct = other;
		t[0].mailbox_name = "INBOX";
		assert_int_equal(store_writer_commit(w, t, 1, &error), 1);
		assert_int_equal(t[0].error, STORE_OK);
		assert_int_equal(t[0].uid, 1);
		assert_int_equal(mailbox(other, "INBOX").messages, 1);
		assert_int_equal(mailbox(other, "INBOX").size, mailbox(f->acct, "Junk").size);
		store_account_close(&other);
	}
	store_writer_free(&w);
	assert_int_equal(mailbox(f->acct, "Junk").unseen, 0);

	/* Nothing stored, no I/O trouble: 0. */
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	memset(t, 0, sizeof(t));
	t[0].acct = f->acct;
	t[0].mailbox_name = "No such";
	assert_int_equal(store_writer_commit(w, t, 1, &error), 0);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);
	store_writer_free(&w);

	/* An empty message is a message; uncommitted writers leave nothing. */
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	memset(t, 0, sizeof(t));
	t[0].acct = f->acct;
	t[0].mailbox_name = "Drafts";
	assert_int_equal(store_writer_commit(w, t, 1, &error), 1);
	store_writer_free(&w);
	assert_int_equal(mailbox(f->acct, "Drafts").messages, 1);
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, msg1, strlen(msg1), &error), 0);
	store_writer_free(&w);
	{
		char *tmp = xasprintf("%s/tmp", f->dir);
		DIR *d = opendir(tmp);
		struct dirent *de;
		int files = 0;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			files += de->d_name[0] != '.';
		closedir(d);
		free(tmp);
		assert_int_equal(files, 0);
	}
}

/* --- flags ------------------------------------------------------------ */

static void
test_flags(void **state)
{
	struct fixture *f = *state;
	static const char *const kw1[] = { "one", "two", NULL };
	static const char *const kw2[] = { "TWO", NULL };
	struct store_message *msgs;
	struct store_changes ch;
	struct store_mailbox m;
	uint32_t uids[3], *failed;
	size_t n, nfailed;
	uint64_t ms;
	const char *error;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	char kw[32];
	int i;

	uids[0] = append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	uids[1] = append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	uids[2] = append(f->store, f->acct, "INBOX", msg3, 0, NULL);
	ms = mailbox(f->acct, "INBOX").highestmodseq;

	assert_int_equal(store_message_set_flags(f->acct, inbox, uids, 2, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN | STORE_FLAG_DELETED, kw1, 0, &failed, &nfailed, &error), 0);
	assert_int_equal(nfailed, 0);
	free(failed);
	m = mailbox(f->acct, "INBOX");
	assert_int_equal(m.unseen, 1);
	assert_int_equal(m.deleted, 2);
	assert_int_equal(m.highestmodseq, ms + 1);
	assert_int_equal(store_message_list(f->acct, inbox, uids[0], uids[0], &msgs, &n,
	    &error), 0);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN | STORE_FLAG_DELETED);
	assert_int_equal(msgs[0].modseq, ms + 1);
	assert_string_equal(msgs[0].keywords[0], "one");
	assert_string_equal(msgs[0].keywords[1], "two");
	store_messages_free(&msgs, n);

	/* Remove (keywords are case-insensitive). */
	assert_int_equal(store_message_set_flags(f->acct, inbox, uids, 1, STORE_FLAGS_REMOVE,
	    STORE_FLAG_DELETED, kw2, 0, NULL, NULL, &error), 0);
	assert_int_equal(store_message_list(f->acct, inbox, uids[0], uids[0], &msgs, &n,
	    &error), 0);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(msgs[0].keywords[0], "one");
	assert_null(msgs[0].keywords[1]);
	store_messages_free(&msgs, n);
	assert_int_equal(mailbox(f->acct, "INBOX").deleted, 1);

	/* No change: no new MODSEQ. */
	ms = mailbox(f->acct, "INBOX").highestmodseq;
	assert_int_equal(store_message_set_flags(f->acct, inbox, uids, 1, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, NULL, 0, NULL, NULL, &error), 0);
	assert_int_equal(mailbox(f->acct, "INBOX").highestmodseq, ms);

	/* CONDSTORE: a message changed after UNCHANGEDSINCE fails, alone. */
	assert_int_equal(store_message_set_flags(f->acct, inbox, &uids[2], 1, STORE_FLAGS_SET,
	    STORE_FLAG_ANSWERED, NULL, 0, NULL, NULL, &error), 0);
	ms = mailbox(f->acct, "INBOX").highestmodseq;
	assert_int_equal(store_message_set_flags(f->acct, inbox, uids, 3, STORE_FLAGS_SET,
	    STORE_FLAG_FLAGGED, NULL, ms - 1, &failed, &nfailed, &error), 0);
	assert_int_equal(nfailed, 1);
	assert_int_equal(failed[0], uids[2]);
	free(failed);

	/* Changes since. */
	assert_int_equal(store_changes_since(f->acct, inbox, ms, &ch, &error), 0);
	assert_int_equal(ch.nchanged, 2);
	assert_int_equal(ch.changed[0].uid, uids[0]);
	assert_int_equal(ch.changed[1].uid, uids[1]);
	assert_int_equal(ch.changed[1].flags, STORE_FLAG_FLAGGED);
	assert_int_equal(ch.changed[1].modseq, ms + 1);
	assert_int_equal(ch.nexpunged, 0);
	assert_int_equal(ch.highestmodseq, ms + 1);
	store_changes_clear(&ch);
	assert_int_equal(mailbox(f->acct, "INBOX").deleted, 0);
	assert_int_equal(mailbox(f->acct, "INBOX").unseen, 3);

	/* Errors. */
	assert_int_equal(store_message_set_flags(f->acct, inbox, uids, 1, STORE_FLAGS_ADD,
	    1 << 9, NULL, 0, NULL, NULL, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_INVALID);
	assert_int_equal(store_message_set_flags(f->acct, 4242, uids, 1, STORE_FLAGS_ADD,
	    STORE_FLAG_SEEN, NULL, 0, NULL, NULL, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);

	/* The keyword limit per mailbox. */
	for (i = 0; i < STORE_KEYWORDS_MAX - 2; i++) {
		const char *one[2] = { kw, NULL };

		snprintf(kw, sizeof(kw), "k%d", i);
		assert_int_equal(store_message_set_flags(f->acct, inbox, uids, 1,
		    STORE_FLAGS_SET, 0, one, 0, NULL, NULL, &error), 0);
	}
	{
		const char *one[2] = { "onemore", NULL };

		assert_int_equal(store_message_set_flags(f->acct, inbox, uids, 1,
		    STORE_FLAGS_ADD, 0, one, 0, NULL, NULL, &error), -1);
		assert_int_equal(store_error_code(), STORE_ERR_LIMIT);
		one[0] = "k5";
		assert_int_equal(store_message_set_flags(f->acct, inbox, uids, 1,
		    STORE_FLAGS_ADD, 0, one, 0, NULL, NULL, &error), 0);
	}
}

/* --- copy, move, expunge ---------------------------------------------- */

static void
test_copy_move_expunge(void **state)
{
	struct fixture *f = *state;
	static const char *const kw[] = { "$label1", NULL };
	struct store_message *msgs;
	struct store_changes ch;
	struct store_usage usage;
	struct store_blob *blob;
	uint32_t uids[4], *nu, uv;
	size_t n;
	uint64_t ms, ms_trash;
	const char *error;
	int64_t inbox = mailbox_id(f->acct, "INBOX"), arch = mailbox_id(f->acct, "Archive");
	int64_t trash = mailbox_id(f->acct, "Trash");
	char buf[256];

	uids[0] = append(f->store, f->acct, "INBOX", msg1, STORE_FLAG_SEEN, kw);
	uids[1] = append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	uids[2] = append(f->store, f->acct, "INBOX", msg3, STORE_FLAG_DELETED, NULL);
	uids[3] = 999;   /* not there: new UID 0 */
	ms = mailbox(f->acct, "INBOX").highestmodseq;

	assert_int_equal(store_message_copy(f->acct, inbox, uids, 4, arch, 0, &nu, &uv,
	    &error), 0);
	assert_int_equal(uv, mailbox(f->acct, "Archive").uidvalidity);
	assert_int_equal(nu[0], 1);
	assert_int_equal(nu[1], 2);
	assert_int_equal(nu[2], 3);
	assert_int_equal(nu[3], 0);
	free(nu);
	assert_int_equal(mailbox(f->acct, "Archive").messages, 3);
	assert_int_equal(mailbox(f->acct, "Archive").unseen, 2);
	assert_int_equal(mailbox(f->acct, "Archive").deleted, 1);
	assert_int_equal(store_account_usage(f->acct, &usage, &error), 0);
	assert_int_equal(usage.messages, 6);
	assert_int_equal(store_message_list(f->acct, arch, 1, 3, &msgs, &n, &error), 0);
	assert_int_equal(n, 3);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN);
	assert_string_equal(msgs[0].keywords[0], "$label1");
	assert_int_equal(msgs[0].internaldate, 1700000000);
	store_messages_free(&msgs, n);
	assert_int_equal(mailbox(f->acct, "INBOX").highestmodseq, ms);

	/* Move: new UIDs in Trash, expunges (with one MODSEQ) in INBOX. */
	ms_trash = mailbox(f->acct, "Trash").highestmodseq;
	assert_int_equal(store_message_copy(f->acct, inbox, uids, 2, trash, 1, &nu, &uv,
	    &error), 0);
	assert_int_equal(nu[0], 1);
	assert_int_equal(nu[1], 2);
	free(nu);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 1);
	assert_int_equal(mailbox(f->acct, "INBOX").unseen, 1);
	assert_int_equal(mailbox(f->acct, "INBOX").size, strlen(msg3));
	assert_int_equal(mailbox(f->acct, "Trash").messages, 2);
	assert_true(mailbox(f->acct, "Trash").highestmodseq > ms_trash);
	assert_int_equal(store_account_usage(f->acct, &usage, &error), 0);
	assert_int_equal(usage.messages, 6);
	assert_int_equal(store_changes_since(f->acct, inbox, ms, &ch, &error), 0);
	assert_int_equal(ch.nexpunged, 2);
	assert_int_equal(ch.expunged[0], uids[0]);
	assert_int_equal(ch.expunged[1], uids[1]);
	assert_int_equal(ch.nchanged, 0);
	assert_int_equal(ch.highestmodseq, ms + 1);
	store_changes_clear(&ch);
	assert_int_equal(store_blob_open(f->acct, trash, 1, &blob, &error), 0);
	assert_int_equal(store_blob_read(blob, 0, buf, sizeof(buf)), strlen(msg1));
	assert_memory_equal(buf, msg1, strlen(msg1));
	store_blob_close(&blob);
	assert_int_equal(store_blob_open(f->acct, inbox, uids[0], &blob, &error), -1);
	assert_int_equal(store_message_copy(f->acct, inbox, uids, 1, inbox, 1, NULL, &uv,
	    &error), -1);
	assert_int_equal(store_message_copy(f->acct, inbox, uids, 1, 777, 0, NULL, &uv,
	    &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);

	/* A blob open across an expunge still reads. */
	assert_int_equal(store_blob_open(f->acct, arch, 2, &blob, &error), 0);
	/* Expunge. */
	ms = mailbox(f->acct, "Archive").highestmodseq;
	{
		uint32_t e[] = { 2, 3, 50 };

		assert_int_equal(store_message_expunge(f->acct, arch, e, 3, &error), 0);
	}
	assert_int_equal(store_blob_read(blob, 0, buf, sizeof(buf)), strlen(msg2));
	store_blob_close(&blob);
	assert_int_equal(mailbox(f->acct, "Archive").messages, 1);
	assert_int_equal(mailbox(f->acct, "Archive").unseen, 0);
	assert_int_equal(mailbox(f->acct, "Archive").deleted, 0);
	assert_int_equal(mailbox(f->acct, "Archive").size, strlen(msg1));
	assert_int_equal(mailbox(f->acct, "Archive").highestmodseq, ms + 1);
	assert_int_equal(store_changes_since(f->acct, arch, ms, &ch, &error), 0);
	assert_int_equal(ch.nexpunged, 2);
	store_changes_clear(&ch);
	assert_int_equal(store_changes_since(f->acct, arch, 0, &ch, &error), 0);
	assert_int_equal(ch.nchanged, 1);
	store_changes_clear(&ch);
	assert_int_equal(store_account_usage(f->acct, &usage, &error), 0);
	assert_int_equal(usage.messages, 4);
	assert_int_equal(usage.bytes, 2 * strlen(msg1) + strlen(msg2) + strlen(msg3));
	assert_int_equal(store_changes_since(f->acct, 4711, 0, &ch, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);

	/* UIDs are never reused. */
	assert_int_equal(append(f->store, f->acct, "Archive", msg3, 0, NULL), 4);
}

/* --- quota ------------------------------------------------------------ */

static void
test_quota(void **state)
{
	struct fixture *f = *state;
	struct store_quota q = { 0, 0 };
	struct store_account *b;
	struct store_writer *w;
	struct store_target t[2];
	struct store_usage u;
	const char *error;
	size_t len = strlen(msg1);
	uint32_t uid, *nu, uv;

	/* Exactly at the limit is fine; one byte over is not. */
	q.bytes_limit = 2 * len;
	store_account_set_quota(f->acct, &q);
	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, "x", 1, &error), 0);
	memset(t, 0, sizeof(t));
	t[0].acct = f->acct;
	t[0].mailbox_name = "INBOX";
	assert_int_equal(store_writer_commit(w, t, 1, &error), 0);
	assert_int_equal(t[0].error, STORE_ERR_QUOTA);
	assert_int_equal(store_error_code(), STORE_ERR_QUOTA);
	store_writer_free(&w);
	assert_int_equal(store_account_usage(f->acct, &u, &error), 0);
	assert_int_equal(u.bytes, 2 * len);
	/* Copies count; moves don't. */
	uid = 1;
	assert_int_equal(store_message_copy(f->acct, mailbox_id(f->acct, "INBOX"), &uid, 1,
	    mailbox_id(f->acct, "Trash"), 0, &nu, &uv, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_QUOTA);
	assert_int_equal(store_message_copy(f->acct, mailbox_id(f->acct, "INBOX"), &uid, 1,
	    mailbox_id(f->acct, "Trash"), 1, &nu, &uv, &error), 0);
	free(nu);

	/* Message count, and one target failing in a multi-target commit. */
	q.bytes_limit = 0;
	q.messages_limit = 3;
	assert_int_equal(store_account_open(f->store, 2, &q, &b, &error), 0);
	store_account_set_quota(f->acct, &q);
	append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, msg3, strlen(msg3), &error), 0);
	memset(t, 0, sizeof(t));
	t[0].acct = f->acct;
	t[0].mailbox_name = "INBOX";
	t[1].acct = b;
	t[1].mailbox_name = "INBOX";
	assert_int_equal(store_writer_commit(w, t, 2, &error), 1);
	assert_int_equal(t[0].error, STORE_ERR_QUOTA);
	assert_int_equal(t[1].error, STORE_OK);
	assert_int_equal(t[1].uid, 1);
	store_writer_free(&w);
	assert_int_equal(store_account_usage(f->acct, &u, &error), 0);
	assert_int_equal(u.messages, 3);
	assert_int_equal(store_account_usage(b, &u, &error), 0);
	assert_int_equal(u.messages, 1);
	assert_int_equal(u.bytes, strlen(msg3));
	/* Unlimited again. */
	memset(&q, 0, sizeof(q));
	store_account_set_quota(f->acct, &q);
	append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	store_account_close(&b);
}

/* --- search ----------------------------------------------------------- */

static void
test_search(void **state)
{
	struct fixture *f = *state;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	uint32_t *uids;
	size_t n;
	const char *error;

	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	append(f->store, f->acct, "INBOX", msg3, 0, NULL);
	append(f->store, f->acct, "Sent", msg1, 0, NULL);

	assert_int_equal(store_search_text(f->acct, inbox, "QUICK brown", 0, &uids, &n,
	    &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 1);
	free(uids);
	assert_int_equal(store_search_text(f->acct, inbox, "hello", 0, &uids, &n, &error), 0);
	assert_int_equal(n, 2);
	free(uids);
	assert_int_equal(store_search_text(f->acct, inbox, "dogs", 1, &uids, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 2);
	free(uids);
	/* BODY does not see the header; TEXT does, decoded. */
	assert_int_equal(store_search_text(f->acct, inbox, "hello", 1, &uids, &n, &error), 0);
	assert_int_equal(n, 0);
	free(uids);
	assert_int_equal(store_search_text(f->acct, inbox, "b@example", 0, &uids, &n, &error),
	    0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 2);
	free(uids);
	append(f->store, f->acct, "INBOX", "Subject: =?UTF-8?B?w5xiZXJyYXNjaHVuZw==?=\r\n"
	    "Content-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe aus K=F6ln\r\n",
	    0, NULL);
	assert_int_equal(store_search_text(f->acct, inbox, "überrasch", 0, &uids, &n, &error),
	    0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 4);
	free(uids);
	assert_int_equal(store_search_text(f->acct, inbox, "grüße aus KÖLN", 1, &uids, &n,
	    &error), 0);
	assert_int_equal(n, 1);
	free(uids);
	/* Short needles: a scan, still case-insensitive. */
	assert_int_equal(store_search_text(f->acct, inbox, "zQ", 0, &uids, &n, &error), 0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 3);
	free(uids);
	assert_int_equal(store_search_text(f->acct, inbox, "%", 0, &uids, &n, &error), 0);
	assert_int_equal(n, 0);
	free(uids);
	assert_int_equal(store_search_text(f->acct, inbox, "\"quoted\" \"", 0, &uids, &n,
	    &error), 0);
	assert_int_equal(n, 0);
	free(uids);
	assert_int_equal(store_search_text(f->acct, inbox, "", 0, &uids, &n, &error), 0);
	assert_int_equal(n, 4);
	free(uids);
	assert_int_equal(store_search_text(f->acct, inbox, "nowhere to be found", 0, &uids,
	    &n, &error), 0);
	assert_int_equal(n, 0);
	free(uids);
}

/* An integer the account's index gives for sql. */
static int64_t
index_count(struct fixture *f, const char *sql)
{
	char *path = xasprintf("%s/mail/1/index.db", f->dir);
	sqlite3_stmt *st;
	sqlite3 *db;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(path);
	return v;
}

/* FTS5's check of the trigram index against the search text: 1 when the
 * index holds exactly the text's rows. */
static int
index_integrity(struct fixture *f)
{
	char *path = xasprintf("%s/mail/1/index.db", f->dir);
	sqlite3 *db;
	int rc;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	rc = sqlite3_exec(db, "INSERT INTO search (search, rank) VALUES ('integrity-check', 1)",
	    NULL, NULL, NULL);
	sqlite3_close(db);
	free(path);
	return rc == SQLITE_OK;
}

static void
search_count(struct fixture *f, int64_t mailbox_id, const char *needle, size_t want)
{
	uint32_t *uids;
	size_t n;
	const char *error;

	assert_int_equal(store_search_text(f->acct, mailbox_id, needle, 0, &uids, &n, &error),
	    0);
	assert_int_equal(n, want);
	free(uids);
}

/* The search text of expunged messages goes after the commit; meanwhile
 * searches do not find them, and text a copy still shares stays. */
static void
test_expunge_search_text(void **state)
{
	struct fixture *f = *state;
	int64_t inbox = mailbox_id(f->acct, "INBOX"), trash = mailbox_id(f->acct, "Trash");
	uint32_t uids[2] = { 1, 2 };
	const char *error;
	int64_t before;

	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	append(f->store, f->acct, "INBOX", msg3, 0, NULL);
	assert_int_equal(store_message_copy(f->acct, inbox, uids, 1, trash, 0, NULL, NULL,
	    &error), 0);
	store_flush(f->store);
	before = index_count(f, "SELECT count(*) FROM search_text");

	assert_int_equal(store_message_expunge(f->acct, inbox, uids, 2, &error), 0);
	/* At once, before or after the background removal. */
	search_count(f, inbox, "quick brown", 0);
	search_count(f, inbox, "lazy dogs", 0);
	search_count(f, inbox, "zy", 0);             /* the LIKE scan */
	search_count(f, trash, "quick brown", 1);    /* the copy keeps its text */

	store_flush(f->store);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending_delete"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM search_text"), before - 1);
	assert_int_equal(index_count(f, "SELECT count(*) FROM search"
	    " WHERE search MATCH '\"lazy dogs\"'"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM search"
	    " WHERE search MATCH '\"quick brown\"'"), 1);
	search_count(f, trash, "quick brown", 1);

	/* The last copy gone, its text goes too. */
	assert_int_equal(store_message_expunge(f->acct, trash, uids, 1, &error), 0);
	search_count(f, trash, "quick brown", 0);
	store_flush(f->store);
	assert_int_equal(index_count(f, "SELECT count(*) FROM search"
	    " WHERE search MATCH '\"quick brown\"'"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM search_text"), before - 2);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending_delete"), 0);
}

/* New search text is indexed in the background a second after its commit;
 * a search before that indexes it first, and text removed before it was
 * indexed leaves the index consistent. */
static void
test_search_pending_index(void **state)
{
	struct fixture *f = *state;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	uint32_t uid1, uid2;
	const char *error;

	uid1 = append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	append(f->store, f->acct, "INBOX", msg3, 0, NULL);
	/* Not indexed yet: the background job waits for a quiet account. */
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending_add"), 2);
	assert_int_equal(index_count(f, "SELECT count(*) FROM search"
	    " WHERE search MATCH '\"quick brown\"'"), 0);
	/* A search indexes what is pending, then finds it. */
	search_count(f, inbox, "quick brown", 1);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending_add"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM search"
	    " WHERE search MATCH '\"quick brown\"'"), 1);

	/* Delivered, then expunged and purged before it was ever indexed. */
	uid2 = append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending_add"), 1);
	assert_int_equal(store_message_expunge(f->acct, inbox, &uid2, 1, &error), 0);
	store_flush(f->store);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending_add"), 0);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending_delete"), 0);
	assert_int_equal(index_integrity(f), 1);
	search_count(f, inbox, "quick brown", 1);

	/* The background job indexes without a search. */
	append(f->store, f->acct, "INBOX", msg3, 0, NULL);
	store_flush(f->store);
	assert_int_equal(index_count(f, "SELECT count(*) FROM fts_pending_add"), 0);
	assert_int_equal(store_message_expunge(f->acct, inbox, &uid1, 1, &error), 0);
	store_flush(f->store);
	search_count(f, inbox, "quick brown", 0);
	assert_int_equal(index_integrity(f), 1);
}

/* Frames in the account's WAL; truncate empties it first. */
static int64_t
wal_frames(struct fixture *f, int truncate)
{
	char *path = xasprintf("%s/mail/1/index.db", f->dir);
	sqlite3_stmt *st;
	sqlite3 *db;
	int64_t v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, truncate ? "PRAGMA wal_checkpoint(TRUNCATE)" :
	    "PRAGMA wal_checkpoint(PASSIVE)", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), 0);     /* not busy */
	v = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(path);
	return v;
}

/* Expunging big messages and removing their search text writes the pages
 * that change, not the ones freed (SQLite's secure_delete as Debian builds
 * it wrote every freed page, zeroed: 2 MiB here). */
#define BIG_MESSAGES 8
#define BIG_MESSAGE_SIZE (256 * 1024)

static void
test_expunge_writes_no_freed_pages(void **state)
{
	static const char line[] = "The quick brown fox jumps over the lazy dog again.\r\n";
	struct fixture *f = *state;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	uint32_t uids[BIG_MESSAGES];
	const char *error;
	char *text;
	size_t len, i;

	text = xmalloc(BIG_MESSAGE_SIZE + 1);
	len = (size_t)snprintf(text, BIG_MESSAGE_SIZE, "Subject: big\r\n\r\n");
	while (len + sizeof(line) < BIG_MESSAGE_SIZE) {
		memcpy(text + len, line, sizeof(line) - 1);
		len += sizeof(line) - 1;
	}
	text[len] = '\0';
	for (i = 0; i < BIG_MESSAGES; i++)
		uids[i] = append(f->store, f->acct, "INBOX", text, 0, NULL);
	free(text);
	store_flush(f->store);
	assert_int_equal(wal_frames(f, 1), 0);

	assert_int_equal(store_message_expunge(f->acct, inbox, uids, BIG_MESSAGES, &error), 0);
	store_flush(f->store);
	assert_int_equal(index_count(f, "SELECT count(*) FROM search_text"), 0);
	/* 4 KiB pages: the text alone is 512 of them. */
	assert_in_range(wal_frames(f, 0), 1, 128);
}

/* --- concurrency and notifications ------------------------------------ */

#define CONC_THREADS 8
#define CONC_MESSAGES 40

struct conc_arg {
	struct fixture *f;
	struct store_account *own;
	int index;
	uint32_t uids[CONC_MESSAGES];
};

static void *
conc_thread(void *p)
{
	struct conc_arg *a = p;
	struct store_writer *w;
	struct store_target t[2];
	const char *error;
	char text[128];
	int i;

	for (i = 0; i < CONC_MESSAGES; i++) {
		snprintf(text, sizeof(text), "Subject: t%d m%d\r\n\r\nbody %d %d\r\n", a->index,
		    i, a->index, i);
		if (store_writer_new(a->f->store, &w, &error) < 0 ||
		    store_writer_write(w, text, strlen(text), &error) < 0)
			return "write";
		memset(t, 0, sizeof(t));
		t[0].acct = a->f->acct;
		t[0].mailbox_name = "INBOX";
		t[0].flags = i % 2 ? STORE_FLAG_SEEN : 0;
		t[1].acct = a->own;
		t[1].mailbox_name = "INBOX";
		if (store_writer_commit(w, t, 2, &error) != 2)
			return "commit";
		a->uids[i] = t[0].uid;
		if (i > 0 && a->uids[i] <= a->uids[i - 1])
			return "order";
		if (t[1].uid != (uint32_t)i + 1)
			return "own uid";
		store_writer_free(&w);
	}
	return NULL;
}

static atomic_int notified;

static void
count_cb(void *ctx)
{
	atomic_fetch_add(&notified, 1);
	(void)ctx;
}

static void
test_concurrent(void **state)
{
	struct fixture *f = *state;
	struct conc_arg args[CONC_THREADS];
	pthread_t th[CONC_THREADS];
	struct store_watch *watch, *other;
	struct store_message *msgs;
	struct store_usage u;
	struct store_mailbox m;
	const char *error;
	void *res;
	size_t n, i;
	int k;
	char seen[CONC_THREADS * CONC_MESSAGES + 1];

	atomic_store(&notified, 0);
	watch = store_watch_add(f->acct, mailbox_id(f->acct, "INBOX"), count_cb, NULL);
	other = store_watch_add(f->acct, mailbox_id(f->acct, "Sent"), count_cb, NULL);
	for (k = 0; k < CONC_THREADS; k++) {
		args[k].f = f;
		args[k].index = k;
		assert_int_equal(store_account_open(f->store, 100 + k, NULL, &args[k].own,
		    &error), 0);
		assert_int_equal(pthread_create(&th[k], NULL, conc_thread, &args[k]), 0);
	}
	for (k = 0; k < CONC_THREADS; k++) {
		assert_int_equal(pthread_join(th[k], &res), 0);
		if (res != NULL)
			fail_msg("thread %d: %s", k, (const char *)res);
	}
	store_watch_remove(&watch);
	store_watch_remove(&other);
	assert_null(watch);
	/* Every batch woke the INBOX watcher at least once; Sent's never. */
	assert_true(atomic_load(&notified) >= 1);
	assert_true(atomic_load(&notified) <= CONC_THREADS * CONC_MESSAGES);

	memset(seen, 0, sizeof(seen));
	assert_int_equal(store_message_list(f->acct, mailbox_id(f->acct, "INBOX"), 1,
	    UINT32_MAX, &msgs, &n, &error), 0);
	assert_int_equal(n, CONC_THREADS * CONC_MESSAGES);
	for (i = 0; i < n; i++) {
		assert_int_equal(msgs[i].uid, i + 1);
		assert_true(i == 0 || msgs[i].modseq > msgs[i - 1].modseq);
		seen[msgs[i].uid] = 1;
	}
	store_messages_free(&msgs, n);
	m = mailbox(f->acct, "INBOX");
	assert_int_equal(m.messages, CONC_THREADS * CONC_MESSAGES);
	assert_int_equal(m.unseen, CONC_THREADS * CONC_MESSAGES / 2);
	assert_int_equal(m.uidnext, CONC_THREADS * CONC_MESSAGES + 1);
	assert_int_equal(store_account_usage(f->acct, &u, &error), 0);
	assert_int_equal(u.messages, CONC_THREADS * CONC_MESSAGES);
	assert_int_equal(u.bytes, m.size);
	for (k = 0; k < CONC_THREADS; k++) {
		for (i = 0; i < CONC_MESSAGES; i++)
			assert_int_equal(seen[args[k].uids[i]], 1);
		assert_int_equal(mailbox(args[k].own, "INBOX").messages, CONC_MESSAGES);
		store_account_close(&args[k].own);
	}
}

struct slow_watch {
	atomic_int running, done, calls;
};

static void
slow_cb(void *ctx)
{
	struct slow_watch *s = ctx;

	atomic_store(&s->running, 1);
	atomic_fetch_add(&s->calls, 1);
	usleep(200 * 1000);
	atomic_store(&s->running, 0);
	atomic_store(&s->done, 1);
}

static void *
notify_thread(void *p)
{
	struct fixture *f = p;

	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	return NULL;
}

static void
test_notifications(void **state)
{
	struct fixture *f = *state;
	struct slow_watch s;
	struct store_watch *w, *all;
	pthread_t th;
	const char *error;
	uint32_t uid;
	int i;

	memset(&s, 0, sizeof(s));
	atomic_store(&notified, 0);
	w = store_watch_add(f->acct, mailbox_id(f->acct, "INBOX"), slow_cb, &s);
	all = store_watch_add(f->acct, 0, count_cb, NULL);
	assert_int_equal(pthread_create(&th, NULL, notify_thread, f), 0);
	for (i = 0; i < 2000 && !atomic_load(&s.running); i++)
		usleep(1000);
	assert_true(atomic_load(&s.running));
	/* Removal waits for the running callback. */
	store_watch_remove(&w);
	assert_false(atomic_load(&s.running));
	assert_true(atomic_load(&s.done));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&notified), 1);
	/* Not called after removal; account-wide watches see every mailbox and
	 * every kind of change. */
	uid = append(f->store, f->acct, "Sent", msg2, 0, NULL);
	assert_int_equal(atomic_load(&s.calls), 1);
	assert_int_equal(atomic_load(&notified), 2);
	assert_int_equal(store_message_set_flags(f->acct, mailbox_id(f->acct, "Sent"), &uid, 1,
	    STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, NULL, NULL, &error), 0);
	assert_int_equal(atomic_load(&notified), 3);
	assert_int_equal(store_message_expunge(f->acct, mailbox_id(f->acct, "Sent"), &uid, 1,
	    &error), 0);
	assert_int_equal(atomic_load(&notified), 4);
	assert_int_equal(store_mailbox_create(f->acct, "New", 0, NULL, &error), 0);
	assert_int_equal(atomic_load(&notified), 5);
	store_watch_remove(&all);
	store_watch_remove(&all);
}

/* --- durability ------------------------------------------------------- */

static atomic_int fsync_fail;

/* fsync_fail 1: every fsync fails; 2: only directories'. */
static int
failing_fsync(int fd)
{
	struct stat st;
	int mode = atomic_load(&fsync_fail);

	if (mode == 1 || (mode == 2 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

static int
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
test_fsync_failure(void **state)
{
	struct fixture *f = *state;
	static const enum store_sync_mode modes[] = { STORE_SYNC_WRITER, STORE_SYNC_LEADER,
	    STORE_SYNC_SYNCFS };
	struct store_writer *w;
	struct store_target t;
	struct store_usage u;
	const char *error;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	char *dir = xasprintf("%s/mail/1/msg/%lld", f->dir, (long long)inbox);
	size_t i;

	store_set_fsync(f->store, failing_fsync);
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		store_set_sync_mode(f->store, modes[i]);
		atomic_store(&fsync_fail, 1);
		assert_int_equal(store_writer_new(f->store, &w, &error), 0);
		assert_int_equal(store_writer_write(w, msg1, strlen(msg1), &error), 0);
		memset(&t, 0, sizeof(t));
		t.acct = f->acct;
		t.mailbox_id = inbox;
		assert_int_equal(store_writer_commit(w, &t, 1, &error), -1);
		assert_int_equal(store_error_code(), STORE_ERR_TEMP);
		assert_int_equal(t.error, STORE_ERR_TEMP);
		assert_int_equal(t.uid, 0);
		store_writer_free(&w);
		assert_int_equal(mailbox(f->acct, "INBOX").messages, i);
		assert_int_equal(count_files(dir), (int)i);
		/* A mailbox operation fails likewise. */
		assert_int_equal(store_mailbox_create(f->acct, "Failing", 0, NULL, &error), -1);
		assert_int_equal(store_error_code(), STORE_ERR_TEMP);
		assert_int_equal(store_mailbox_get(f->acct, "Failing", NULL, &error), 0);
		atomic_store(&fsync_fail, 0);
		append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	}
	/* The directory's fsync fails after the link was made: the delivery
	 * fails; its row, committed side by side with the fsync, is expunged
	 * again and its file removed (its UID stays spent). A copy fails with
	 * nothing committed. */
	store_set_sync_mode(f->store, STORE_SYNC_WRITER);
	atomic_store(&fsync_fail, 2);
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, msg2, strlen(msg2), &error), 0);
	memset(&t, 0, sizeof(t));
	t.acct = f->acct;
	t.mailbox_name = "INBOX";
	assert_int_equal(store_writer_commit(w, &t, 1, &error), -1);
	store_writer_free(&w);
	{
		uint32_t uid = 1, *nu = NULL, uv;
		char *trash = xasprintf("%s/mail/1/msg/%lld", f->dir,
		    (long long)mailbox_id(f->acct, "Trash"));

		assert_int_equal(store_message_copy(f->acct, inbox, &uid, 1,
		    mailbox_id(f->acct, "Trash"), 0, &nu, &uv, &error), -1);
		assert_int_equal(store_error_code(), STORE_ERR_TEMP);
		assert_int_equal(count_files(trash), 0);
		assert_int_equal(mailbox(f->acct, "Trash").messages, 0);
		free(trash);
	}
	atomic_store(&fsync_fail, 0);
	store_flush(f->store);
	assert_int_equal(store_account_usage(f->acct, &u, &error), 0);
	assert_int_equal(u.messages, 3);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 3);
	assert_int_equal(mailbox(f->acct, "INBOX").uidnext, 5);
	assert_int_equal(count_files(dir), 3);
	store_set_fsync(f->store, NULL);
	free(dir);
}

static void
test_rebuild(void **state)
{
	struct fixture *f = *state;
	struct store_message *before, *after;
	struct store_mailbox *mb_before, *mb_after;
	size_t nb, na, nmb, nma, i;
	const char *error;
	char *path;
	uint32_t uids[2] = { 1, 2 }, *nu, uv;
	int64_t inbox = mailbox_id(f->acct, "INBOX"), work;
	struct store_usage u;

	assert_int_equal(store_mailbox_create(f->acct, "Work/Projects", 0, &work, &error), 0);
	append(f->store, f->acct, "INBOX", msg1, STORE_FLAG_SEEN, NULL);
	append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	append(f->store, f->acct, "INBOX", msg3, 0, NULL);
	assert_int_equal(store_message_copy(f->acct, inbox, uids, 2, work, 0, &nu, &uv, &error),
	    0);
	free(nu);
	assert_int_equal(store_message_expunge(f->acct, inbox, uids, 1, &error), 0);
	assert_int_equal(store_mailbox_subscribe(f->acct, "Junk", 0, &error), 0);
	assert_int_equal(store_message_list(f->acct, inbox, 1, UINT32_MAX, &before, &nb,
	    &error), 0);
	assert_int_equal(store_mailbox_list(f->acct, &mb_before, &nmb, &error), 0);
	store_account_close(&f->acct);

	path = xasprintf("%s/mail/1/index.db", f->dir);
	assert_int_equal(unlink(path), 0);
	free(path);
	path = xasprintf("%s/mail/1/index.db-wal", f->dir);
	unlink(path);
	free(path);
	path = xasprintf("%s/mail/1/index.db-shm", f->dir);
	unlink(path);
	free(path);

	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_int_equal(store_mailbox_list(f->acct, &mb_after, &nma, &error), 0);
	assert_int_equal(nma, nmb);
	for (i = 0; i < nma; i++) {
		assert_string_equal(mb_after[i].name, mb_before[i].name);
		assert_int_equal(mb_after[i].id, mb_before[i].id);
		assert_int_equal(mb_after[i].uidvalidity, mb_before[i].uidvalidity);
		assert_int_equal(mb_after[i].special_use, mb_before[i].special_use);
		assert_int_equal(mb_after[i].subscribed, mb_before[i].subscribed);
		assert_int_equal(mb_after[i].messages, mb_before[i].messages);
		assert_int_equal(mb_after[i].size, mb_before[i].size);
		assert_true(mb_after[i].highestmodseq > mb_before[i].highestmodseq);
	}
	store_mailboxes_free(&mb_before, nmb);
	store_mailboxes_free(&mb_after, nma);
	assert_int_equal(store_message_list(f->acct, inbox, 1, UINT32_MAX, &after, &na,
	    &error), 0);
	assert_int_equal(na, nb);
	for (i = 0; i < na; i++) {
		assert_int_equal(after[i].uid, before[i].uid);
		assert_string_equal(after[i].guid, before[i].guid);
		assert_int_equal(after[i].size, before[i].size);
		assert_int_equal(after[i].internaldate, before[i].internaldate);
	}
	store_messages_free(&before, nb);
	store_messages_free(&after, na);
	assert_int_equal(mailbox(f->acct, "Work/Projects").messages, 2);
	assert_int_equal(store_account_usage(f->acct, &u, &error), 0);
	assert_int_equal(u.messages, 4);
	/* New messages continue after the highest UID. */
	assert_int_equal(append(f->store, f->acct, "INBOX", msg1, 0, NULL), 4);

	/* A damaged index is set aside and rebuilt (once really closed: an
	 * open connection would not read the damaged header again). */
	store_account_close(&f->acct);
	store_set_account_cache(f->store, 0, 0);
	path = xasprintf("%s/mail/1/index.db", f->dir);
	{
		FILE *fp = fopen(path, "r+");

		assert_non_null(fp);
		fputs("this is not an SQLite database at all....", fp);
		fclose(fp);
	}
	free(path);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 3);
	assert_int_equal(mailbox(f->acct, "Work/Projects").messages, 2);
}

/* --- kept UIDs (imports) ------------------------------------------------ */

/* Commits text to the mailbox with the wanted UID; returns the number of
 * targets stored and the target in *t. */
static int
append_uid(struct fixture *f, int64_t mbox, const char *text, uint32_t uid,
    struct store_target *t)
{
	struct store_writer *w;
	const char *error;
	int n;

	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, text, strlen(text), &error), 0);
	memset(t, 0, sizeof(*t));
	t->acct = f->acct;
	t->mailbox_id = mbox;
	t->uid = uid;
	n = store_writer_commit(w, t, 1, &error);
	store_writer_free(&w);
	return n;
}

static void
test_keep_uids(void **state)
{
	struct fixture *f = *state;
	struct store_writer *w;
	struct store_target t, tt[3];
	struct store_message *msgs;
	const char *error;
	char *path;
	size_t n;
	int64_t imp, other, empty, later;
	uint32_t uid;

	assert_int_equal(store_mailbox_create(f->acct, "Import", 0, &imp, &error), 0);
	assert_int_equal(store_mailbox_create(f->acct, "Other", 0, &other, &error), 0);
	assert_int_equal(store_mailbox_create(f->acct, "Empty", 0, &empty, &error), 0);

	/* UIDVALIDITY: only 0 and unknown mailboxes are refused while empty. */
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, imp, 0, 0, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_INVALID);
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, 9999, 5, 0, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, imp, 12345, 0, &error), 0);
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, imp, 1234, 0, &error), 0);
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, imp, 12345, 0, &error), 0);
	assert_int_equal(mailbox(f->acct, "Import").uidvalidity, 12345);
	assert_int_equal(mailbox(f->acct, "Import").uidnext, 1);
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, empty, 777, 100, &error), 0);
	assert_int_equal(mailbox(f->acct, "Empty").uidnext, 100);

	/* Wanted UIDs at or above UIDNEXT are given; UIDNEXT follows. */
	assert_int_equal(append_uid(f, imp, msg1, 5, &t), 1);
	assert_int_equal(t.uid, 5);
	assert_int_equal(t.uidvalidity, 12345);
	assert_int_equal(mailbox(f->acct, "Import").uidnext, 6);
	assert_int_equal(append_uid(f, imp, msg2, 6, &t), 1);
	assert_int_equal(t.uid, 6);
	/* Below UIDNEXT: refused, not renumbered. */
	assert_int_equal(append_uid(f, imp, msg3, 6, &t), 0);
	assert_int_equal(t.error, STORE_ERR_CONFLICT);
	assert_int_equal(t.uid, 0);
	assert_int_equal(store_error_code(), STORE_ERR_CONFLICT);
	assert_int_equal(append_uid(f, imp, msg3, 2, &t), 0);
	assert_int_equal(t.error, STORE_ERR_CONFLICT);
	assert_int_equal(append_uid(f, imp, msg3, UINT32_MAX, &t), 0);
	assert_int_equal(t.error, STORE_ERR_LIMIT);
	assert_int_equal(mailbox(f->acct, "Import").messages, 2);
	assert_int_equal(mailbox(f->acct, "Import").uidnext, 7);
	/* 0: the next UID, as always. */
	assert_int_equal(append_uid(f, imp, msg3, 0, &t), 1);
	assert_int_equal(t.uid, 7);
	assert_int_equal(append_uid(f, empty, msg3, 0, &t), 1);
	assert_int_equal(t.uid, 100);
	assert_int_equal(t.uidvalidity, 777);

	/* Targets fail one by one: the second wants the UID the first took. */
	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, msg1, strlen(msg1), &error), 0);
	memset(tt, 0, sizeof(tt));
	tt[0].acct = tt[1].acct = tt[2].acct = f->acct;
	tt[0].mailbox_id = tt[1].mailbox_id = imp;
	tt[0].uid = tt[1].uid = 50;
	tt[2].mailbox_id = other;
	tt[2].uid = 3;
	assert_int_equal(store_writer_commit(w, tt, 3, &error), 2);
	store_writer_free(&w);
	assert_int_equal(tt[0].error, STORE_OK);
	assert_int_equal(tt[0].uid, 50);
	assert_int_equal(tt[1].error, STORE_ERR_CONFLICT);
	assert_int_equal(tt[1].uid, 0);
	assert_int_equal(tt[2].error, STORE_OK);
	assert_int_equal(tt[2].uid, 3);
	assert_int_equal(mailbox(f->acct, "Other").uidnext, 4);

	/* A mailbox that has held messages keeps its UIDVALIDITY, even empty. */
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, imp, 1, 0, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_CONFLICT);
	uid = 3;
	assert_int_equal(store_message_expunge(f->acct, other, &uid, 1, &error), 0);
	assert_int_equal(mailbox(f->acct, "Other").messages, 0);
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, other, 1, 0, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_CONFLICT);

	/* UIDNEXT only goes up. */
	assert_int_equal(store_mailbox_raise_uidnext(f->acct, imp, 60, &error), 0);
	assert_int_equal(mailbox(f->acct, "Import").uidnext, 60);
	assert_int_equal(store_mailbox_raise_uidnext(f->acct, imp, 10, &error), 0);
	assert_int_equal(mailbox(f->acct, "Import").uidnext, 60);
	assert_int_equal(store_mailbox_raise_uidnext(f->acct, 9999, 10, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_NOT_FOUND);

	/* A UIDVALIDITY set from outside is never given again to a new
	 * mailbox. */
	assert_int_equal(store_mailbox_create(f->acct, "Later", 0, &later, &error), 0);
	assert_int_equal(store_mailbox_set_uidvalidity(f->acct, later, 4000000000u, 0,
	    &error), 0);
	assert_int_equal(store_mailbox_delete(f->acct, "Later", &error), 0);
	assert_int_equal(store_mailbox_create(f->acct, "Later", 0, &later, &error), 0);
	assert_true(mailbox(f->acct, "Later").uidvalidity > 4000000000u);

	/* A rebuild gets the UIDs, UIDVALIDITY and UIDNEXT back. */
	store_account_close(&f->acct);
	path = xasprintf("%s/mail/1/index.db", f->dir);
	assert_int_equal(unlink(path), 0);
	free(path);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_int_equal(mailbox(f->acct, "Import").uidvalidity, 12345);
	assert_int_equal(mailbox(f->acct, "Import").uidnext, 60);
	assert_int_equal(mailbox(f->acct, "Empty").uidvalidity, 777);
	assert_int_equal(mailbox(f->acct, "Empty").uidnext, 101);
	assert_int_equal(store_message_list(f->acct, imp, 1, UINT32_MAX, &msgs, &n, &error),
	    0);
	assert_int_equal(n, 4);
	assert_int_equal(msgs[0].uid, 5);
	assert_int_equal(msgs[1].uid, 6);
	assert_int_equal(msgs[2].uid, 7);
	assert_int_equal(msgs[3].uid, 50);
	store_messages_free(&msgs, n);
	assert_int_equal(append_uid(f, imp, msg1, 0, &t), 1);
	assert_int_equal(t.uid, 60);
}

/* --- what crashes leave behind ------------------------------------------ */

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static int
file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* The file name of a message ("<uid>.<guid>"), in a static buffer. */
static const char *
message_file(struct store_account *acct, int64_t mbox, uint32_t uid)
{
	static char name[64];
	struct store_message *msgs;
	const char *error;
	size_t n;

	assert_int_equal(store_message_list(acct, mbox, uid, uid, &msgs, &n, &error), 0);
	assert_int_equal(n, 1);
	snprintf(name, sizeof(name), "%u.%s", uid, msgs[0].guid);
	store_messages_free(&msgs, n);
	return name;
}

static void
reopen_store(struct fixture *f)
{
	const char *error;

	store_account_close(&f->acct);
	store_close(&f->store);
	assert_int_equal(store_open(f->dir, &f->store, &error), 0);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
}

/* Closes the store, then a process opens the account and dies with it
 * open (its WAL left behind: the sign of an unclean close), and the store
 * is opened again. */
static void
reopen_store_after_crash(struct fixture *f)
{
	const char *error;
	struct store *store;
	struct store_account *acct;
	pid_t pid;
	int status;

	store_account_close(&f->acct);
	store_close(&f->store);
	if ((pid = fork()) == 0) {
		if (store_open(f->dir, &store, &error) < 0 ||
		    store_account_open(store, 1, NULL, &acct, &error) < 0 ||
		    store_mailbox_get(acct, "INBOX", NULL, &error) != 1)
			_exit(1);
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(store_open(f->dir, &f->store, &error), 0);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
}

/* A crash after a delivery's COMMIT and before its directory's fsync
 * (they run side by side) can leave a row whose file is missing: the
 * delivery was never acknowledged, and the sweep after the crash expunges
 * it (clients that saw it learn of the expunge). */
static void
test_sweep_missing_file(void **state)
{
	struct fixture *f = *state;
	struct store_changes ch;
	const char *error;
	char *lost;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	uint64_t modseq;
	uint32_t uid2;

	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	uid2 = append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	append(f->store, f->acct, "INBOX", msg3, 0, NULL);
	modseq = mailbox(f->acct, "INBOX").highestmodseq;
	lost = xasprintf("%s/mail/1/msg/%lld/%s", f->dir, (long long)inbox,
	    message_file(f->acct, inbox, uid2));
	assert_int_equal(unlink(lost), 0);

	/* A clean reopen does not sweep. */
	reopen_store(f);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 3);
	reopen_store_after_crash(f);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 2);
	assert_int_equal(mailbox(f->acct, "INBOX").uidnext, 4);
	assert_int_equal(store_changes_since(f->acct, inbox, modseq, &ch, &error), 0);
	assert_int_equal(ch.nexpunged, 1);
	assert_int_equal(ch.expunged[0], uid2);
	store_changes_clear(&ch);
	free(lost);
}

static void
test_orphans(void **state)
{
	struct fixture *f = *state;
	static const char guid[] = "0123456789abcdef0123456789abcdef";
	struct store_blob *blob;
	const char *error;
	char *dir, *kept, *expunged, *saved, *orphan, *reused, *other, *gone_dir, *gone;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	uint32_t uid2;
	char buf[16];

	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	uid2 = append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	dir = xasprintf("%s/mail/1/msg/%lld", f->dir, (long long)inbox);
	kept = xasprintf("%s/%s", dir, message_file(f->acct, inbox, 1));
	expunged = xasprintf("%s/%s", dir, message_file(f->acct, inbox, uid2));
	saved = xasprintf("%s/saved", f->dir);
	/* A crash between an expunge's COMMIT and its unlink. */
	assert_int_equal(link(expunged, saved), 0);
	assert_int_equal(store_message_expunge(f->acct, inbox, &uid2, 1, &error), 0);
	store_flush(f->store);
	assert_false(file_exists(expunged));
	assert_int_equal(link(saved, expunged), 0);
	/* Crashes between a link and its COMMIT: a UID never committed, a UID
	 * committed since under another GUID, a mailbox whose creation did not
	 * commit. A file that is not a message's is left alone. */
	orphan = xasprintf("%s/7.%s", dir, guid);
	reused = xasprintf("%s/1.%s", dir, guid);
	other = xasprintf("%s/notes.txt", dir);
	gone_dir = xasprintf("%s/mail/1/msg/9999", f->dir);
	gone = xasprintf("%s/1.%s", gone_dir, guid);
	write_file(orphan, msg3);
	write_file(reused, msg3);
	write_file(other, "not mail");
	assert_int_equal(mkdir(gone_dir, 0700), 0);
	write_file(gone, msg3);

	/* Only the first open in the process sweeps, and only after an
	 * unclean close. */
	store_account_close(&f->acct);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_true(file_exists(orphan));
	reopen_store(f);
	assert_true(file_exists(orphan));

	reopen_store_after_crash(f);
	assert_false(file_exists(orphan));
	assert_false(file_exists(reused));
	assert_false(file_exists(expunged));
	assert_false(file_exists(gone_dir));
	assert_true(file_exists(other));
	/* A committed message is never removed. */
	assert_true(file_exists(kept));
	assert_int_equal(store_blob_open(f->acct, inbox, 1, &blob, &error), 0);
	assert_int_equal(store_blob_read(blob, 0, buf, 5), 5);
	assert_memory_equal(buf, msg1, 5);
	store_blob_close(&blob);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 1);

	/* So a rebuild brings back what was committed, and nothing else. */
	assert_int_equal(unlink(other), 0);
	store_account_close(&f->acct);
	free(dir);
	dir = xasprintf("%s/mail/1/index.db", f->dir);
	assert_int_equal(unlink(dir), 0);
	reopen_store(f);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 1);
	assert_int_equal(store_mailbox_get(f->acct, "Recovered-9999", NULL, &error), 0);

	free(dir);
	free(kept);
	free(expunged);
	free(saved);
	free(orphan);
	free(reused);
	free(other);
	free(gone_dir);
	free(gone);
}

/* A store opening the account (another process, as far as SQLite's locks
 * go) while this one is between a link and its COMMIT (its directory fsync
 * held up here) waits for the COMMIT, and its sweep then keeps the
 * message. */
static pthread_mutex_t hold_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cond = PTHREAD_COND_INITIALIZER;
static int hold_state;   /* 1 armed, 2 holding, 3 released */

static int
holding_fsync(int fd)
{
	struct stat st;

	pthread_mutex_lock(&hold_lock);
	if (hold_state == 1 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		hold_state = 2;
		pthread_cond_broadcast(&hold_cond);
		while (hold_state != 3)
			pthread_cond_wait(&hold_cond, &hold_lock);
	}
	pthread_mutex_unlock(&hold_lock);
	return fsync(fd);
}

struct orphan_arg {
	struct fixture *f;
	struct store *store;
	struct store_account *acct;
	uint32_t uid;
	int rc;
};

static void *
orphan_append_thread(void *p)
{
	struct orphan_arg *a = p;

	a->uid = append(a->f->store, a->f->acct, "INBOX", msg2, 0, NULL);
	return NULL;
}

static void *
orphan_open_thread(void *p)
{
	struct orphan_arg *a = p;
	const char *error;

	a->rc = store_open(a->f->dir, &a->store, &error);
	if (a->rc == 0)
		a->rc = store_account_open(a->store, 1, NULL, &a->acct, &error);
	return NULL;
}

static void
test_orphans_wait_for_commit(void **state)
{
	struct fixture *f = *state;
	struct orphan_arg a;
	struct store_blob *blob;
	const char *error;
	pthread_t appender, opener;
	int64_t inbox = mailbox_id(f->acct, "INBOX");

	memset(&a, 0, sizeof(a));
	a.f = f;
	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	store_set_fsync(f->store, holding_fsync);
	hold_state = 1;
	assert_int_equal(pthread_create(&appender, NULL, orphan_append_thread, &a), 0);
	pthread_mutex_lock(&hold_lock);
	while (hold_state != 2)
		pthread_cond_wait(&hold_cond, &hold_lock);
	pthread_mutex_unlock(&hold_lock);
	/* The link is made; its directory's fsync is held, and the COMMIT,
	 * which runs beside it, may or may not be done. The sweep of the
	 * second store must neither remove the file nor expunge the row. */
	assert_int_equal(pthread_create(&opener, NULL, orphan_open_thread, &a), 0);
	usleep(300 * 1000);
	pthread_mutex_lock(&hold_lock);
	hold_state = 3;
	pthread_cond_broadcast(&hold_cond);
	pthread_mutex_unlock(&hold_lock);
	assert_int_equal(pthread_join(appender, NULL), 0);
	assert_int_equal(pthread_join(opener, NULL), 0);
	store_set_fsync(f->store, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.uid, 2);
	assert_int_equal(mailbox(a.acct, "INBOX").messages, 2);
	assert_int_equal(store_blob_open(a.acct, inbox, 2, &blob, &error), 0);
	assert_int_equal(store_blob_size(blob), strlen(msg2));
	store_blob_close(&blob);
	store_account_close(&a.acct);
	store_close(&a.store);
}

static void
test_tmp_sweep(void **state)
{
	struct fixture *f = *state;
	struct timespec old[2];
	struct store *other;
	const char *error;
	char *stale = xasprintf("%s/tmp/0123456789abcdef.tmp", f->dir);
	char *notmine = xasprintf("%s/tmp/notes.txt", f->dir);
	time_t now = time(NULL);

	write_file(stale, "half a message");
	write_file(notmine, "x");
	/* An hour-old mtime is a committing writer's internal date: kept while
	 * the ctime is young. */
	old[0].tv_sec = old[1].tv_sec = now - 7200;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, stale, old, 0), 0);
	assert_int_equal(store_open(f->dir, &other, &error), 0);
	store_close(&other);
	assert_true(file_exists(stale));
	store_sweep_tmp(f->store, now + 3000);
	assert_true(file_exists(stale));
	/* Untouched for over an hour: gone; other files stay. */
	store_sweep_tmp(f->store, now + 3700);
	assert_false(file_exists(stale));
	assert_true(file_exists(notmine));
	free(stale);
	free(notmine);
}

/* --- the idle-account cache ------------------------------------------- */

static size_t
cache_open_count(struct store *store)
{
	size_t open, idle;

	store_account_cache_count(store, &open, &idle);
	return open;
}

static size_t
cache_idle_count(struct store *store)
{
	size_t open, idle;

	store_account_cache_count(store, &open, &idle);
	return idle;
}

static size_t
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* An account closed and opened again is the one kept idle, with its data;
 * the cache keeps the most recently used, up to its size. */
static void
test_cache_reopen(void **state)
{
	struct fixture *f = *state;
	struct store_account *a[4];
	struct store_message *msgs;
	const char *error;
	size_t n;
	int64_t inbox = mailbox_id(f->acct, "INBOX");
	int i;

	append(f->store, f->acct, "INBOX", msg1, STORE_FLAG_SEEN, NULL);
	append(f->store, f->acct, "INBOX", msg2, 0, NULL);
	store_account_close(&f->acct);
	assert_int_equal(cache_open_count(f->store), 1);
	assert_int_equal(cache_idle_count(f->store), 1);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_int_equal(cache_idle_count(f->store), 0);
	assert_int_equal(store_message_list(f->acct, inbox, 1, UINT32_MAX, &msgs, &n, &error),
	    0);
	assert_int_equal(n, 2);
	assert_int_equal(msgs[0].flags, STORE_FLAG_SEEN);
	store_messages_free(&msgs, n);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 2);
	/* Reused, it takes new mail like a fresh one. */
	assert_int_equal(append(f->store, f->acct, "INBOX", msg3, 0, NULL), 3);

	/* Room for two: closing four keeps the last two closed. */
	store_set_account_cache(f->store, 2, 300);
	for (i = 0; i < 4; i++)
		assert_int_equal(store_account_open(f->store, 10 + i, NULL, &a[i], &error), 0);
	for (i = 0; i < 4; i++)
		store_account_close(&a[i]);
	assert_int_equal(cache_idle_count(f->store), 2);
	assert_int_equal(cache_open_count(f->store), 3);
	assert_int_equal(store_account_open(f->store, 12, NULL, &a[2], &error), 0);
	assert_int_equal(cache_open_count(f->store), 3);   /* 12 was kept */
	assert_int_equal(store_account_open(f->store, 10, NULL, &a[0], &error), 0);
	assert_int_equal(cache_open_count(f->store), 4);   /* 10 was not */
	store_account_close(&a[0]);
	store_account_close(&a[2]);

	/* Idle for longer than allowed: closed (every second, and at opens
	 * and closes) without anything else happening. */
	store_set_account_cache(f->store, 10, 1);
	for (i = 0; i < 100 && cache_open_count(f->store) > 1; i++)
		usleep(100 * 1000);
	assert_int_equal(cache_open_count(f->store), 1);
	assert_int_equal(cache_idle_count(f->store), 0);

	/* No cache: the last close closes. */
	store_set_account_cache(f->store, 0, 300);
	assert_int_equal(cache_open_count(f->store), 1);
	store_account_close(&f->acct);
	assert_int_equal(cache_open_count(f->store), 0);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 3);
}

/* A held account: its index closes when the store has no room for it
 * unused, and opens again for each call; its watches hear of deliveries
 * all the while; the last release frees it. */
static void
test_held_account(void **state)
{
	struct fixture *f = *state;
	struct store_account *acct, *held;
	struct store_watch *watch;
	const char *error;
	size_t quiet, dormant, fds;
	int64_t inbox;

	atomic_store(&notified, 0);
	assert_int_equal(store_account_open(f->store, 7, NULL, &acct, &error), 0);
	inbox = mailbox_id(acct, "INBOX");
	held = store_account_hold(acct);
	watch = store_watch_add(held, inbox, count_cb, NULL);
	store_account_close(&acct);
	/* Unused: quiet, its index open. */
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(quiet, 1);
	assert_int_equal(dormant, 0);
	assert_int_equal(cache_open_count(f->store), 2);
	fds = open_fds();
	/* No room for quiet accounts: its index closes, the account stays. */
	store_set_held_cache(f->store, 0);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(quiet, 0);
	assert_int_equal(dormant, 1);
	assert_int_equal(cache_open_count(f->store), 1);
	assert_true(open_fds() < fds);
	assert_int_equal(store_account_delete(f->store, 7, &error), -1);

	/* A delivery opens it; the watch hears of it; dormant again after. */
	assert_int_equal(store_account_open(f->store, 7, NULL, &acct, &error), 0);
	assert_int_equal(append(f->store, acct, "INBOX", msg1, 0, NULL), 1);
	store_account_close(&acct);
	assert_int_equal(atomic_load(&notified), 1);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(dormant, 1);
	/* Calls through the held reference open it for their time. */
	assert_int_equal(mailbox(held, "INBOX").messages, 1);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(dormant, 1);
	/* A commit pins it for its time (pinned by the caller or not). */
	assert_int_equal(store_account_pin(held, &error), 0);
	assert_int_equal(append(f->store, held, "INBOX", msg2, 0, NULL), 2);
	store_account_unpin(held);
	assert_int_equal(atomic_load(&notified), 2);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(dormant, 1);
	assert_int_equal(append(f->store, held, "INBOX", msg3, 0, NULL), 3);
	assert_int_equal(atomic_load(&notified), 3);
	assert_int_equal(mailbox(held, "INBOX").messages, 3);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(dormant, 1);

	/* With room, an unused held account keeps its index. */
	store_set_held_cache(f->store, 4);
	assert_int_equal(mailbox(held, "INBOX").messages, 3);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(quiet, 1);
	assert_int_equal(dormant, 0);
	/* The last reference: idle in the cache. */
	store_watch_remove(&watch);
	store_account_release(&held);
	assert_null(held);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(quiet + dormant, 0);
	assert_int_equal(cache_idle_count(f->store), 1);

	/* Dormant when released: gone at once, with nothing to close. */
	assert_int_equal(store_account_open(f->store, 8, NULL, &acct, &error), 0);
	held = store_account_hold(acct);
	store_account_close(&acct);
	store_set_held_cache(f->store, 0);
	store_account_release(&held);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(quiet + dormant, 0);
	assert_int_equal(cache_open_count(f->store), 2);   /* 1, and 7 idle */
	assert_int_equal(store_account_open(f->store, 8, NULL, &acct, &error), 0);
	assert_int_equal(mailbox(acct, "INBOX").messages, 0);
	store_account_close(&acct);
}

/* A held account whose holder rests (IMAP IDLE) loses its index at the
 * next trim when the quiet list is over its count, without the grace; a
 * more recently used one keeps its own; calls open it again; resting an
 * account in use or already dormant changes nothing. */
static void
test_held_account_rest(void **state)
{
	struct fixture *f = *state;
	struct store_account *acct, *a, *b;
	const char *error;
	size_t quiet, dormant;

	assert_int_equal(store_account_open(f->store, 7, NULL, &acct, &error), 0);
	a = store_account_hold(acct);
	store_account_close(&acct);
	assert_int_equal(store_account_open(f->store, 8, NULL, &acct, &error), 0);
	b = store_account_hold(acct);
	/* In use: resting it does nothing. */
	store_account_rest(b);
	store_account_close(&acct);
	store_account_rest(a);
	/* One quiet index kept: a rested, so it goes, b stays. */
	store_set_held_cache(f->store, 1);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(quiet, 1);
	assert_int_equal(dormant, 1);
	/* Dormant: resting it again does nothing; a call opens it. */
	store_account_rest(a);
	assert_int_equal(mailbox(a, "INBOX").messages, 0);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(quiet + dormant, 2);
	store_account_release(&a);
	store_account_release(&b);
	store_account_held_count(f->store, &quiet, &dormant);
	assert_int_equal(quiet + dormant, 0);
}

/* Deleting an idle account closes it first; a deleted account opens
 * empty; an account in use cannot be deleted. */
static void
test_cache_delete(void **state)
{
	struct fixture *f = *state;
	const char *error;
	char *path;

	append(f->store, f->acct, "INBOX", msg1, 0, NULL);
	assert_int_equal(store_account_delete(f->store, 1, &error), -1);
	assert_int_equal(store_error_code(), STORE_ERR_CONFLICT);
	store_account_close(&f->acct);
	assert_int_equal(cache_idle_count(f->store), 1);
	assert_int_equal(store_account_delete(f->store, 1, &error), 0);
	assert_int_equal(cache_open_count(f->store), 0);
	path = xasprintf("%s/mail/1", f->dir);
	assert_false(file_exists(path));
	free(path);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 0);
	assert_int_equal(append(f->store, f->acct, "INBOX", msg2, 0, NULL), 1);

	/* An index removed behind an idle account's back (another process
	 * deleting the account) is noticed: the next open starts afresh. */
	store_account_close(&f->acct);
	path = xasprintf("%s/mail/1", f->dir);
	assert_int_equal(nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
	free(path);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 0);
	assert_int_equal(cache_open_count(f->store), 1);
}

/* store_close closes the idle accounts: their descriptors are released and
 * their WALs checkpointed away. */
static void
test_cache_store_close(void **state)
{
	struct fixture *f = *state;
	struct store_account *a[5];
	const char *error;
	char *wal;
	size_t fds;
	int i;

	store_account_close(&f->acct);
	store_close(&f->store);
	fds = open_fds();
	assert_int_equal(store_open(f->dir, &f->store, &error), 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(store_account_open(f->store, 1 + i, NULL, &a[i], &error), 0);
		append(f->store, a[i], "INBOX", msg1, 0, NULL);
		store_account_close(&a[i]);
	}
	assert_int_equal(cache_idle_count(f->store), 5);
	assert_true(open_fds() > fds);
	wal = xasprintf("%s/mail/3/index.db-wal", f->dir);
	assert_true(file_exists(wal));
	store_close(&f->store);
	assert_int_equal(open_fds(), fds);
	assert_false(file_exists(wal));
	free(wal);
	assert_int_equal(store_open(f->dir, &f->store, &error), 0);
	assert_int_equal(store_account_open(f->store, 1, NULL, &f->acct, &error), 0);
	assert_int_equal(mailbox(f->acct, "INBOX").messages, 1);
}

static int
no_fsync(int fd)
{
	(void)fd;
	return 0;
}

#define CACHE_THREADS 8
#define CACHE_ROUNDS 150
#define CACHE_ACCOUNTS 5

struct cache_arg {
	struct store *store;
	unsigned seed;
	int appended[CACHE_ACCOUNTS];
};

/* Opens, uses and closes a few accounts at random, some appends among the
 * reads, while the cache (two idle accounts at most) closes others; half
 * the time through a held reference, whose index the store closes and
 * opens again meanwhile (at most one quiet account, or none). */
static void *
cache_thread(void *p)
{
	struct cache_arg *a = p;
	struct store_account *acct, *held;
	struct store_mailbox m;
	struct store_writer *w;
	struct store_target t;
	const char *error;
	int i, k, hold;

	for (i = 0; i < CACHE_ROUNDS; i++) {
		k = (int)(rand_r(&a->seed) % CACHE_ACCOUNTS);
		hold = rand_r(&a->seed) % 2;
		if (store_account_open(a->store, 1 + k, NULL, &acct, &error) < 0)
			return "open";
		if (hold) {
			held = store_account_hold(acct);
			store_account_close(&acct);
			acct = held;
		}
		if (store_mailbox_get(acct, "INBOX", &m, &error) != 1)
			return "get";
		store_mailbox_clear(&m);
		if (rand_r(&a->seed) % 4 == 0) {
			if (store_writer_new(a->store, &w, &error) < 0 ||
			    store_writer_write(w, msg1, strlen(msg1), &error) < 0)
				return "write";
			memset(&t, 0, sizeof(t));
			t.acct = acct;
			t.mailbox_name = "INBOX";
			if (hold && store_account_pin(acct, &error) < 0)
				return "pin";
			if (store_writer_commit(w, &t, 1, &error) != 1)
				return "commit";
			if (hold)
				store_account_unpin(acct);
			store_writer_free(&w);
			a->appended[k]++;
		}
		if (hold) {
			if (store_mailbox_get(acct, "Sent", &m, &error) != 1)
				return "get";
			store_mailbox_clear(&m);
			store_account_release(&acct);
		} else
			store_account_close(&acct);
		if (i % 50 == 49)
			store_set_account_cache(a->store, (size_t)(i / 50) % 3, 300);
		if (i % 30 == 29)
			store_set_held_cache(a->store, (size_t)(i / 30) % 2);
	}
	return NULL;
}

static void
test_cache_threads(void **state)
{
	struct fixture *f = *state;
	struct cache_arg args[CACHE_THREADS];
	pthread_t th[CACHE_THREADS];
	struct store_account *acct;
	const char *error;
	void *res;
	int i, k, total;

	store_set_fsync(f->store, no_fsync);
	store_set_account_cache(f->store, 2, 300);
	for (i = 0; i < CACHE_THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].store = f->store;
		args[i].seed = (unsigned)i * 7919 + 1;
		assert_int_equal(pthread_create(&th[i], NULL, cache_thread, &args[i]), 0);
	}
	for (i = 0; i < CACHE_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], &res), 0);
		if (res != NULL)
			fail_msg("thread %d: %s", i, (const char *)res);
	}
	/* Account 1 is the fixture's, held open throughout. */
	assert_int_equal(cache_open_count(f->store) - cache_idle_count(f->store), 1);
	for (k = 0; k < CACHE_ACCOUNTS; k++) {
		for (i = 0, total = 0; i < CACHE_THREADS; i++)
			total += args[i].appended[k];
		assert_int_equal(store_account_open(f->store, 1 + k, NULL, &acct, &error), 0);
		assert_int_equal(mailbox(acct, "INBOX").messages, total);
		store_account_close(&acct);
	}
	store_set_fsync(f->store, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_account_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailboxes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_move_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunge_search_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_pending_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunge_writes_no_freed_pages, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sweep_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notifications, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_uids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_orphans_wait_for_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_sweep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_store_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_account, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_account_rest, setup, teardown),
	};

	/* The failures provoked here log errors: quiet unless asked. */
	log_open(LOG_TARGET_STDERR, getenv("PETREL_TEST_VERBOSE") != NULL ? LOG_LEVEL_DEBUG :
	    (enum log_level)(LOG_LEVEL_ERROR + 1));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
