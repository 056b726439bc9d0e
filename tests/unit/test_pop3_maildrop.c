/* Unit tests of the POP3 maildrop on a real store: the snapshot, the lock
 * (one session per maildrop), UIDL values, and the UPDATE state (expunge,
 * \Seen, nothing deleted when the expunge fails). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "core/xmalloc.h"
#include "directory/directory.h"
#include "proto/pop3/pop3_maildrop.h"
#include "store/store.h"
#include "store/store_backend.h"
#include "store/store_internal.h"

struct fixture {
	char dir[64];
	struct directory *dir_db;
	struct store *store;
	struct store_account *acct;     /* the account, as another session has it */
	int64_t id, other_id;
};

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error;
	char *err = NULL, *path;

	strcpy(f->dir, "/tmp/petrel-test-pop3-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	path = xasprintf("%s/directory.db", f->dir);
	if (directory_open(path, 1, &f->dir_db, &err) < 0) {
		fprintf(stderr, "directory_open: %s\n", err);
		return -1;
	}
	free(path);
	if (directory_domain_add(f->dir_db, "example.test", &error) < 0 ||
	    directory_account_add(f->dir_db, "a@example.test", NULL, 0, 0, &f->id, &error) < 0 ||
	    directory_account_add(f->dir_db, "b@example.test", NULL, 0, 0, &f->other_id,
	    &error) < 0) {
		fprintf(stderr, "directory: %s\n", error);
		return -1;
	}
	if (store_open(f->dir, &f->store, &error) < 0 ||
	    store_account_open(f->store, f->id, NULL, &f->acct, &error) < 0) {
		fprintf(stderr, "store: %s\n", error);
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
	directory_close(&f->dir_db);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int64_t
inbox_id(struct store_account *acct)
{
	struct store_mailbox m;
	const char *error;
	int64_t id;

	assert_int_equal(store_mailbox_get(acct, "INBOX", &m, &error), 1);
	id = m.id;
	store_mailbox_clear(&m);
	return id;
}

static void
append(struct fixture *f, const char *text)
{
	struct store_writer *w;
	struct store_target t;
	const char *error;

	assert_int_equal(store_writer_new(f->store, &w, &error), 0);
	assert_int_equal(store_writer_write(w, text, strlen(text), &error), 0);
	memset(&t, 0, sizeof(t));
	t.acct = f->acct;
	t.mailbox_name = "INBOX";
	assert_int_equal(store_writer_commit(w, &t, 1, &error), 1);
	store_writer_free(&w);
}

static const char *const msgs[] = {
	"Subject: one\r\n\r\nfirst\r\n",
	"Subject: two\r\n\r\nsecond message\r\n",
	"Subject: three\r\n\r\nthird\r\n.\r\n",
};

static struct pop3_maildrop *
open_ok(struct fixture *f, int64_t id)
{
	struct pop3_maildrop *md;
	const char *error;

	assert_int_equal(pop3_maildrop_open(f->store, f->dir_db, id, "test", &md, &error),
	    POP3_MAILDROP_OK);
	assert_non_null(md);
	return md;
}

static void
test_snapshot_and_lock(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *md, *md2 = NULL, *other;
	const char *error;
	size_t i;

	for (i = 0; i < 3; i++)
		append(f, msgs[i]);
	md = open_ok(f, f->id);
	assert_int_equal(md->count, 3);
	assert_int_equal(md->msgs[1].size, strlen(msgs[1]));
	assert_int_equal(md->size, strlen(msgs[0]) + strlen(msgs[1]) + strlen(msgs[2]));
	for (i = 0; i < 3; i++)
		assert_int_equal(strlen(md->msgs[i].guid), 32);
	/* One POP3 session per maildrop; other accounts are not affected. */
	assert_int_equal(pop3_maildrop_open(f->store, f->dir_db, f->id, "test", &md2, &error),
	    POP3_MAILDROP_IN_USE);
	assert_null(md2);
	other = open_ok(f, f->other_id);
	assert_int_equal(other->count, 0);
	pop3_maildrop_free(&other);
	/* Mail that arrives later is not in this maildrop. */
	append(f, msgs[0]);
	assert_int_equal(md->count, 3);
	pop3_maildrop_free(&md);
	assert_null(md);
	md = open_ok(f, f->id);
	assert_int_equal(md->count, 4);
	/* Unlocking early (the session went away) frees the maildrop for the
	 * next session at once. */
	pop3_maildrop_unlock(md);
	md2 = open_ok(f, f->id);
	pop3_maildrop_free(&md2);
	pop3_maildrop_free(&md);
}

static void
test_delete_reset(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *md;
	size_t i;

	for (i = 0; i < 3; i++)
		append(f, msgs[i]);
	md = open_ok(f, f->id);
	pop3_maildrop_delete(md, 1);
	pop3_maildrop_delete(md, 1);
	assert_int_equal(md->ndeleted, 1);
	assert_int_equal(md->deleted_size, strlen(msgs[1]));
	pop3_maildrop_reset(md);
	assert_int_equal(md->ndeleted, 0);
	assert_int_equal(md->deleted_size, 0);
	assert_false(md->msgs[1].deleted);
	pop3_maildrop_free(&md);
}

static void
test_update(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *md;
	struct store_message *list;
	const char *error;
	char guid[33];
	size_t i, n;

	for (i = 0; i < 3; i++)
		append(f, msgs[i]);
	md = open_ok(f, f->id);
	memcpy(guid, md->msgs[2].guid, sizeof(guid));
	pop3_maildrop_delete(md, 0);
	md->msgs[0].retrieved = 1;
	md->msgs[1].retrieved = 1;
	assert_int_equal(pop3_maildrop_update(md, "test", &error), 0);
	pop3_maildrop_free(&md);

	assert_int_equal(store_message_list(f->acct, inbox_id(f->acct), 0, UINT32_MAX, &list,
	    &n, &error), 0);
	assert_int_equal(n, 2);
	/* Retrieved and kept: \Seen. Not retrieved: unchanged. */
	assert_true(list[0].flags & STORE_FLAG_SEEN);
	assert_false(list[1].flags & STORE_FLAG_SEEN);
	store_messages_free(&list, n);

	md = open_ok(f, f->id);
	assert_int_equal(md->count, 2);
	/* UIDL values stay what they were. */
	assert_string_equal(md->msgs[1].guid, guid);
	pop3_maildrop_free(&md);
}

/* md->changes moves with every change committed to INBOX by anyone: what
 * RETR read ahead is dropped then. */
static void
test_changes_counted(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *md;
	const char *error;
	uint32_t uid = 1;
	unsigned before;

	append(f, msgs[0]);
	append(f, msgs[1]);
	md = open_ok(f, f->id);
	before = atomic_load(&md->changes);
	append(f, msgs[2]);
	assert_true(atomic_load(&md->changes) > before);
	before = atomic_load(&md->changes);
	assert_int_equal(store_message_expunge(f->acct, inbox_id(f->acct), &uid, 1, &error), 0);
	assert_true(atomic_load(&md->changes) > before);
	pop3_maildrop_free(&md);
}

/* The backend's expunge, failing as on an I/O error. */
static int
expunge_fails(struct store_backend_account *ba, int64_t mailbox_id, const uint32_t *uids,
    size_t nuids, int *changed_r, const char **error_r)
{
	return store_fail_temp(error_r, "event=test-failure");
}

static void
test_update_failure_deletes_nothing(void **state)
{
	struct fixture *f = *state;
	const struct store_backend_ops *ops = f->store->ops;
	struct store_backend_ops failing = *ops;
	struct pop3_maildrop *md;
	const char *error = NULL;
	size_t i;
	int r;

	for (i = 0; i < 3; i++)
		append(f, msgs[i]);
	md = open_ok(f, f->id);
	pop3_maildrop_delete(md, 0);
	pop3_maildrop_delete(md, 2);
	failing.message_expunge = expunge_fails;
	f->store->ops = &failing;
	r = pop3_maildrop_update(md, "test", &error);
	f->store->ops = ops;
	pop3_maildrop_free(&md);
	assert_int_equal(r, -1);
	assert_non_null(error);
	md = open_ok(f, f->id);
	assert_int_equal(md->count, 3);
	pop3_maildrop_free(&md);
}

static void
test_uidl_of_copies(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *md;
	char a[POP3_UIDL_SIZE], b[POP3_UIDL_SIZE], c[POP3_UIDL_SIZE];
	uint32_t uid = 1, *new_uids = NULL, uidvalidity;
	const char *error;
	int64_t inbox;

	append(f, msgs[0]);
	append(f, msgs[1]);
	inbox = inbox_id(f->acct);
	assert_int_equal(store_message_copy(f->acct, inbox, &uid, 1, inbox, 0, &new_uids,
	    &uidvalidity, &error), 0);
	free(new_uids);
	md = open_ok(f, f->id);
	assert_int_equal(md->count, 3);
	pop3_maildrop_uidl(md, 0, a);
	pop3_maildrop_uidl(md, 1, b);
	pop3_maildrop_uidl(md, 2, c);
	/* The copy shares the GUID; its UIDL differs. */
	assert_string_equal(md->msgs[0].guid, md->msgs[2].guid);
	assert_string_equal(a, md->msgs[0].guid);
	assert_string_not_equal(a, c);
	assert_string_not_equal(b, c);
	assert_true(strncmp(c, a, 32) == 0 && c[32] == '-');
	pop3_maildrop_free(&md);
}

static void
test_account_gone(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *md = NULL;
	const char *error;

	/* An id the directory does not know: a temporary failure, and the lock
	 * is not kept. */
	assert_int_equal(pop3_maildrop_open(f->store, f->dir_db, 999, "test", &md, &error),
	    POP3_MAILDROP_TEMP);
	assert_null(md);
	assert_int_equal(pop3_maildrop_open(f->store, f->dir_db, 999, "test", &md, &error),
	    POP3_MAILDROP_TEMP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_snapshot_and_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_failure_deletes_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_uidl_of_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_account_gone, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
