/*
 * What crashes leave behind in the files + SQLite backend, and its removal.
 *
 * Writers' temporary files (DATA/tmp/<guid>.tmp): a process killed while
 * writing a message leaves its file. Those untouched for an hour go at
 * store open: neither the mtime (a committing writer's is the message's
 * internal date, often old) nor the ctime (every write, futimens and link
 * sets it) may be older, so a live writer in another process is safe
 * unless it stalled for an hour, and then its commit fails cleanly.
 *
 * Orphan message files: a message file is linked inside the write
 * transaction that adds its row (commit batches, copies and moves) and
 * unlinked after the transaction that removed the row committed. A crash
 * between the link and the COMMIT, or between the COMMIT and the unlink,
 * leaves a file without a row, which a later rebuild would bring back (or
 * trip over: its UID may have been given again). At an account's first
 * open in the process, if the index was not closed cleanly (its WAL is
 * there: a process died with it open, or has it open now), the sweep
 * holds the account's write transaction (BEGIN IMMEDIATE): no process is
 * then between a link and its COMMIT, so every message file without a
 * committed row (same mailbox, UID and GUID) is an orphan, and so is every
 * mailbox directory without a mailbox row (a deletion interrupted after
 * its commit, a creation rolled back). Files whose names are not message
 * names are left alone. The other way round, a committed row whose file is
 * missing is a delivery whose COMMIT reached the disk before its directory
 * entry did (the two are flushed side by side) and that was never
 * acknowledged: it is expunged.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_sqlite.h"

#define SSQL_TMP_MAX_AGE 3600      /* seconds untouched before a temp file is stale */

/* --- account id sets -------------------------------------------------------- */

static size_t
idset_slot(const struct ssql_idset *set, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & (set->cap - 1);
}

void
ssql_idset_add(struct ssql_idset *set, int64_t id)
{
	int64_t *old = set->slots;
	size_t oldcap = set->cap, i, j;

	if (ssql_idset_has(set, id))
		return;
	if ((set->count + 1) * 2 > set->cap) {
		set->cap = set->cap == 0 ? 64 : set->cap * 2;
		set->slots = xcalloc(set->cap, sizeof(*set->slots));
		for (i = 0; i < oldcap; i++) {
			if (old[i] == 0)
				continue;
			for (j = idset_slot(set, old[i]); set->slots[j] != 0;
			    j = (j + 1) & (set->cap - 1))
				;
			set->slots[j] = old[i];
		}
		free(old);
	}
	for (j = idset_slot(set, id); set->slots[j] != 0; j = (j + 1) & (set->cap - 1))
		;
	set->slots[j] = id;
	set->count++;
}

int
ssql_idset_has(const struct ssql_idset *set, int64_t id)
{
	size_t j;

	if (set->cap == 0)
		return 0;
	for (j = idset_slot(set, id); set->slots[j] != 0; j = (j + 1) & (set->cap - 1))
		if (set->slots[j] == id)
			return 1;
	return 0;
}

void
ssql_idset_free(struct ssql_idset *set)
{
	free(set->slots);
	memset(set, 0, sizeof(*set));
}

/* --- temporary files ---------------------------------------------------------- */

void
ssql_sweep_tmp(struct store_backend *be, int64_t now)
{
	struct dirent *de;
	struct stat st;
	size_t len, removed = 0;
	DIR *d;
	int fd;

	if ((fd = dup(be->tmp_fd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		/* An account deletion that was interrupted. */
		if (strncmp(de->d_name, "deleted-", 8) == 0) {
			ssql_remove_tree(be->tmp_fd, de->d_name);
			continue;
		}
		if (len < 5 || strcmp(de->d_name + len - 4, ".tmp") != 0)
			continue;
		if (fstatat(be->tmp_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && (int64_t)st.st_mtime + SSQL_TMP_MAX_AGE < now &&
		    (int64_t)st.st_ctime + SSQL_TMP_MAX_AGE < now &&
		    unlinkat(be->tmp_fd, de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	if (removed > 0)
		log_info(NULL, "event=store-tmp-removed count=%zu", removed);
}

/* --- orphan message files ------------------------------------------------------- */

struct sweep_row {
	uint32_t uid;
	int found;                 /* its file is there */
	char guid[SSQL_GUID_SIZE];
};

/* Rows whose files are missing, of one mailbox. */
struct sweep_missing {
	int64_t mailbox_id;
	uint32_t *uids;
	size_t n;
};

/* "<uid>.<guid>" as ssql_message_name makes them; 0 for other names. */
static uint32_t
message_name_parse(const char *name, const char **guid_r)
{
	unsigned long long uid;
	const char *p;
	char *end;
	size_t i;

	if (!isdigit((unsigned char)name[0]) || name[0] == '0')
		return 0;
	errno = 0;
	uid = strtoull(name, &end, 10);
	if (errno != 0 || *end != '.' || uid >= UINT32_MAX)
		return 0;
	p = end + 1;
	for (i = 0; i < SSQL_GUID_SIZE - 1; i++)
		if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
			return 0;
	if (p[i] != '\0')
		return 0;
	*guid_r = p;
	return (uint32_t)uid;
}

static int
row_cmp(const void *key, const void *elem)
{
	uint32_t uid = *(const uint32_t *)key;
	const struct sweep_row *r = elem;

	return uid < r->uid ? -1 : uid > r->uid;
}

/* The committed (uid, guid) of a mailbox, by UID. */
static int
mailbox_rows(struct ssql_conn *c, int64_t mailbox_id, struct sweep_row **rows_r,
    size_t *n_r, const char **error_r)
{
	struct sweep_row *rows = NULL;
	const unsigned char *guid;
	sqlite3_stmt *st;
	size_t n = 0, cap = 0;
	int rc;

	if ((st = ssql_stmt(c, SST_MSG_NAMES, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			rows = xreallocarray(rows, cap, sizeof(*rows));
		}
		rows[n].uid = (uint32_t)sqlite3_column_int64(st, 0);
		rows[n].found = 0;
		guid = sqlite3_column_text(st, 1);
		snprintf(rows[n].guid, sizeof(rows[n].guid), "%s",
		    guid != NULL ? (const char *)guid : "");
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(rows);
		return ssql_error(c, rc, error_r);
	}
	*rows_r = rows;
	*n_r = n;
	return 0;
}

/* Unlinks the files of msg/<dirname> that have no row; adds to *count_r.
 * Rows without a file go into *missing (a crash after a batch's COMMIT
 * and before its directory fsync: store_sqlite_commit.c). */
static int
sweep_mailbox(struct store_backend_account *ba, struct ssql_conn *c, int64_t mailbox_id,
    const char *dirname, size_t *count_r, struct sweep_missing *missing,
    const char **error_r)
{
	struct sweep_row *rows = NULL, *r;
	struct dirent *de;
	const char *guid;
	size_t nrows = 0, removed = 0;
	uint32_t uid;
	DIR *d;
	int fd, rc = 0;

	if ((fd = openat(ba->msg_fd, dirname, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) < 0)
		return 0;   /* not a directory; a rebuild ignores it too */
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return store_fail_temp(error_r, "event=store-io-error op=opendir "
		    "account=%lld dir=%s reason=\"%s\"", (long long)ba->id, dirname,
		    strerror(errno));
	}
	if (mailbox_rows(c, mailbox_id, &rows, &nrows, error_r) < 0) {
		closedir(d);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if ((uid = message_name_parse(de->d_name, &guid)) == 0)
			continue;
		r = bsearch(&uid, rows, nrows, sizeof(*rows), row_cmp);
		if (r != NULL && strcmp(r->guid, guid) == 0) {
			r->found = 1;
			continue;
		}
		if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			if (errno == ENOENT)
				continue;
			rc = store_fail_temp(error_r, "event=store-io-error op=unlink "
			    "account=%lld file=%s/%s reason=\"%s\"", (long long)ba->id, dirname,
			    de->d_name, strerror(errno));
			break;
		}
		removed++;
	}
	if (removed > 0 && ba->be->fsync(dirfd(d)) < 0 && rc == 0)
		rc = store_fail_temp(error_r, "event=store-io-error op=fsync-dir account=%lld "
		    "dir=%s reason=\"%s\"", (long long)ba->id, dirname, strerror(errno));
	missing->mailbox_id = mailbox_id;
	missing->n = 0;
	for (size_t i = 0; rc == 0 && i < nrows; i++) {
		if (rows[i].found)
			continue;
		missing->uids = xreallocarray(missing->uids, missing->n + 1,
		    sizeof(*missing->uids));
		missing->uids[missing->n++] = rows[i].uid;
	}
	closedir(d);
	free(rows);
	*count_r += removed;
	return rc;
}

/* Removes msg/<dirname>, a mailbox directory the index does not know;
 * adds its message files to *count_r. */
static int
sweep_directory(struct store_backend_account *ba, const char *dirname, size_t *count_r,
    const char **error_r)
{
	struct dirent *de;
	const char *guid;
	size_t files = 0;
	DIR *d;
	int fd;

	if ((fd = openat(ba->msg_fd, dirname, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) < 0)
		return 0;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL)
		files += message_name_parse(de->d_name, &guid) != 0;
	closedir(d);
	if (ssql_remove_tree(ba->msg_fd, dirname) < 0)
		return store_fail_temp(error_r, "event=store-io-error op=remove-dir "
		    "account=%lld dir=%s reason=\"%s\"", (long long)ba->id, dirname,
		    strerror(errno));
	log_info(NULL, "event=store-orphan-mailbox-removed account=%lld mailbox=%s files=%zu",
	    (long long)ba->id, dirname, files);
	*count_r += files;
	return 0;
}

static int
id_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Expunges rows whose message files are missing: never acknowledged
 * deliveries (see sweep_mailbox), or files lost some other way, which no
 * client could read anyway. */
static void
expunge_missing(struct store_backend_account *ba, struct sweep_missing *missing,
    size_t nmissing)
{
	const char *error;
	size_t i;
	int changed;

	for (i = 0; i < nmissing; i++) {
		if (missing[i].n == 0)
			continue;
		if (ssql_message_expunge(ba, missing[i].mailbox_id, missing[i].uids,
		    missing[i].n, &changed, &error) < 0)
			log_warn(NULL, "event=store-missing-files-expunge-failed account=%lld "
			    "mailbox=%lld reason=\"%s\"", (long long)ba->id,
			    (long long)missing[i].mailbox_id, error);
		else
			log_warn(NULL, "event=store-missing-files-expunged account=%lld "
			    "mailbox=%lld count=%zu", (long long)ba->id,
			    (long long)missing[i].mailbox_id, missing[i].n);
	}
}

static void
missing_free(struct sweep_missing *missing, size_t nmissing)
{
	size_t i;

	for (i = 0; i < nmissing; i++)
		free(missing[i].uids);
	free(missing);
}

int
ssql_sweep_orphans(struct store_backend_account *ba, const char **error_r)
{
	struct sweep_missing *missing = NULL;
	size_t nmissing = 0;
	struct ssql_conn *c;
	struct dirent *de;
	sqlite3_stmt *st;
	int64_t *ids = NULL, id;
	size_t nids = 0, cap = 0, count = 0;
	char *end;
	DIR *d = NULL;
	int fd, rc, dirs_removed = 0;

	if ((c = ssql_wbegin(ba, error_r)) == NULL)
		return -1;
	if ((st = ssql_stmt(c, SST_MBOX_IDS, error_r)) == NULL)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (nids == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			ids = xreallocarray(ids, cap, sizeof(*ids));
		}
		ids[nids++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		goto fail;
	}
	if ((fd = dup(ba->msg_fd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		store_fail_temp(error_r, "event=store-io-error op=readdir account=%lld "
		    "reason=\"%s\"", (long long)ba->id, strerror(errno));
		goto fail;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]) || de->d_name[0] == '0')
			continue;
		errno = 0;
		id = strtoll(de->d_name, &end, 10);
		if (errno != 0 || *end != '\0')
			continue;
		if (bsearch(&id, ids, nids, sizeof(*ids), id_cmp) != NULL) {
			missing = xreallocarray(missing, nmissing + 1, sizeof(*missing));
			memset(&missing[nmissing], 0, sizeof(*missing));
			rc = sweep_mailbox(ba, c, id, de->d_name, &count, &missing[nmissing++],
			    error_r);
		} else if ((rc = sweep_directory(ba, de->d_name, &count, error_r)) == 0)
			dirs_removed = 1;
		if (rc < 0)
			goto fail;
	}
	if (dirs_removed && ssql_fsync_dir(ba->be, ba->msg_fd, NULL, error_r) < 0)
		goto fail;
	/* Nothing was written to the index: the transaction was for the lock. */
	ssql_wrollback(ba);
	closedir(d);
	free(ids);
	if (count > 0)
		log_info(NULL, "event=orphans-removed count=%zu account=%lld", count,
		    (long long)ba->id);
	expunge_missing(ba, missing, nmissing);
	missing_free(missing, nmissing);
	return 0;
fail:
	ssql_wrollback(ba);
	if (d != NULL)
		closedir(d);
	free(ids);
	missing_free(missing, nmissing);
	return -1;
}
