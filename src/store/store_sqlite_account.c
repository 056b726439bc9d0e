/*
 * Accounts in the files + SQLite backend: opening (checks, rebuilds,
 * the orphan sweep), the trimming of the idle accounts that
 * store_account.c keeps open, closing and deleting.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_sqlite.h"

static void
account_free(struct store_backend_account *ba)
{
	struct ssql_conn *c;

	ssql_conn_close(ba->w);
	while ((c = ba->readers) != NULL) {
		ba->readers = c->next;
		ssql_conn_close(c);
	}
	if (ba->msg_fd >= 0)
		close(ba->msg_fd);
	pthread_mutex_destroy(&ba->wlock);
	pthread_mutex_destroy(&ba->rlock);
	free(ba->dir);
	free(ba->db_path);
	free(ba);
}

/* 1 when msg/ holds anything an index could be rebuilt from. */
static int
account_has_files(struct store_backend_account *ba)
{
	struct dirent *de;
	DIR *d;
	int fd, found = 0;

	if ((fd = dup(ba->msg_fd)) < 0)
		return 0;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while (!found && (de = readdir(d)) != NULL)
		found = de->d_name[0] != '.';
	closedir(d);
	return found;
}

/* 1 when the index is sound, 0 when it is damaged. Cheap (the header and
 * schema can be read, the account row is there) unless thorough, a full
 * PRAGMA quick_check, which costs a read of the whole index: done when an
 * earlier run saw damage (mark_damaged). */
static int
index_check(const char *path, int thorough)
{
	static const char *const cheap[] = { "SELECT count(*) FROM sqlite_schema",
	    "PRAGMA user_version", "SELECT count(*) FROM account" };
	sqlite3 *db;
	sqlite3_stmt *st;
	const unsigned char *r;
	size_t i;
	int ok = 0, rc;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return 0;
	}
	sqlite3_busy_timeout(db, SSQL_BUSY_TIMEOUT_MS);
	for (i = 0; i < sizeof(cheap) / sizeof(cheap[0]); i++) {
		if (sqlite3_prepare_v2(db, cheap[i], -1, &st, NULL) != SQLITE_OK) {
			/* No account table yet: a new index, interrupted. */
			ok = i == 2 && sqlite3_errcode(db) == SQLITE_ERROR;
			goto out;
		}
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW)
			goto out;
	}
	ok = 1;
	if (thorough && sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st,
	    NULL) == SQLITE_OK) {
		r = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
		ok = r != NULL && strcmp((const char *)r, "ok") == 0;
		sqlite3_finalize(st);
	}
out:
	sqlite3_close(db);
	return ok;
}

/* Moves a damaged index (and its WAL) aside, for whoever wants to look. */
static int
index_set_aside(struct store_backend_account *ba, const char **error_r)
{
	char *to = xasprintf("%s.broken-%lld", ba->db_path, (long long)time(NULL));
	char *from2, *to2;
	static const char *const sfx[] = { "-wal", "-shm" };
	size_t i;
	int rc = 0;

	if (rename(ba->db_path, to) < 0)
		rc = store_fail_temp(error_r, "event=store-io-error op=rename path=%s "
		    "reason=\"%s\"", ba->db_path, strerror(errno));
	for (i = 0; rc == 0 && i < 2; i++) {
		from2 = xasprintf("%s%s", ba->db_path, sfx[i]);
		to2 = xasprintf("%s%s", to, sfx[i]);
		if (rename(from2, to2) < 0 && errno != ENOENT)
			rc = store_fail_temp(error_r, "event=store-io-error op=rename "
			    "path=%s reason=\"%s\"", from2, strerror(errno));
		free(from2);
		free(to2);
	}
	log_warn(NULL, "event=store-index-damaged account=%lld moved-to=%s",
	    (long long)ba->id, to);
	free(to);
	return rc;
}

/* 1 when the index may not have been closed cleanly, so that orphans may
 * exist: its WAL is there (SQLite removes it when the last connection
 * closes; a process that died with the index open leaves it, and so does
 * one that has it open now), or a sweep failed. Looked at before this
 * process opens the index. */
static int
index_unclean(struct store_backend_account *ba)
{
	char *wal = xasprintf("%s-wal", ba->db_path);
	char *marker = xasprintf("%s/" SSQL_SWEEP_MARKER, ba->dir);
	int unclean;

	unclean = access(wal, F_OK) == 0 || errno != ENOENT || access(marker, F_OK) == 0;
	free(wal);
	free(marker);
	return unclean;
}

/* Sweeps the account's orphan files at its first open in this process,
 * when the index was not closed cleanly (a clean close leaves none, and
 * the sweep reads the whole of msg/ and of the index: most of the time to
 * open a big mailbox) and not rebuilt (a rebuild made a row of every
 * file). A failed sweep is tried again at the next open (a marker tells
 * other processes); the account opens anyway. store.c never opens an
 * account twice at once, so the test and the add need not be atomic. */
static void
orphans_sweep_once(struct store_backend_account *ba, int rebuilt, int unclean)
{
	struct store_backend *be = ba->be;
	const char *error;
	char *marker;
	int done, fd;

	pthread_mutex_lock(&be->swept_lock);
	done = ssql_idset_has(&be->swept, ba->id);
	pthread_mutex_unlock(&be->swept_lock);
	if (done)
		return;
	if (!rebuilt && unclean) {
		marker = xasprintf("%s/" SSQL_SWEEP_MARKER, ba->dir);
		if (ssql_sweep_orphans(ba, &error) < 0) {
			log_warn(NULL, "event=store-orphan-sweep-failed account=%lld "
			    "reason=\"%s\"", (long long)ba->id, error);
			if ((fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) >= 0)
				close(fd);
			free(marker);
			return;
		}
		unlink(marker);
		free(marker);
	}
	pthread_mutex_lock(&be->swept_lock);
	ssql_idset_add(&be->swept, ba->id);
	pthread_mutex_unlock(&be->swept_lock);
}

int
ssql_account_open(struct store_backend *be, int64_t id, struct store_backend_account **ba_r,
    const char **error_r)
{
	struct store_backend_account *ba = xcalloc(1, sizeof(*ba));
	struct stat st;
	char *msg_dir, *marker = NULL;
	int rebuild = 0, thorough = 0, unclean;

	ba->be = be;
	ba->id = id;
	ba->msg_fd = -1;
	pthread_mutex_init(&ba->wlock, NULL);
	pthread_mutex_init(&ba->rlock, NULL);
	ba->dir = xasprintf("%s/%lld", be->mail_dir, (long long)id);
	ba->db_path = xasprintf("%s/index.db", ba->dir);
	msg_dir = xasprintf("%s/msg", ba->dir);
	if (mkdir(ba->dir, 0700) == 0) {
		if (ssql_fsync_dir(be, be->mail_fd, NULL, error_r) < 0)
			goto fail;
	} else if (errno != EEXIST) {
		store_fail_temp(error_r, "event=store-io-error op=mkdir path=%s reason=\"%s\"",
		    ba->dir, strerror(errno));
		goto fail;
	}
	if (mkdir(msg_dir, 0700) == 0) {
		if (ssql_fsync_dir(be, be->mail_fd, ba->dir + strlen(be->mail_dir) + 1,
		    error_r) < 0)
			goto fail;
	} else if (errno != EEXIST) {
		store_fail_temp(error_r, "event=store-io-error op=mkdir path=%s reason=\"%s\"",
		    msg_dir, strerror(errno));
		goto fail;
	}
	if ((ba->msg_fd = open(msg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		store_fail_temp(error_r, "event=store-io-error op=open path=%s reason=\"%s\"",
		    msg_dir, strerror(errno));
		goto fail;
	}
	unclean = index_unclean(ba);
	marker = xasprintf("%s/" SSQL_CHECK_MARKER, ba->dir);
	thorough = access(marker, F_OK) == 0;
	if (access(ba->db_path, F_OK) == 0) {
		if (!index_check(ba->db_path, thorough)) {
			if (index_set_aside(ba, error_r) < 0)
				goto fail;
			rebuild = 1;
		} else if (thorough)
			log_info(NULL, "event=store-index-checked account=%lld result=ok",
			    (long long)id);
	} else if (account_has_files(ba)) {
		log_warn(NULL, "event=store-index-missing account=%lld", (long long)id);
		rebuild = 1;
	}
	/* A rebuild must not bring back files about to be removed. */
	if (rebuild)
		ssql_unlinker_flush(&be->unlinker);
	if ((ba->w = ssql_conn_open(ba, error_r)) == NULL)
		goto fail;
	if (ssql_schema_init(ba, rebuild, error_r) < 0)
		goto fail;
	if (stat(ba->db_path, &st) < 0) {
		store_fail_temp(error_r, "event=store-io-error op=stat path=%s reason=\"%s\"",
		    ba->db_path, strerror(errno));
		goto fail;
	}
	ba->db_dev = st.st_dev;
	ba->db_ino = st.st_ino;
	if (thorough)
		unlink(marker);
	orphans_sweep_once(ba, rebuild, unclean);
	/* Search text left to remove or to index (a crash, a close first, or
	 * an import by another process). */
	if (ssql_fts_pending(ba->w, 0))
		ssql_fts_index_later(ba);
	free(marker);
	free(msg_dir);
	*ba_r = ba;
	return 0;
fail:
	free(marker);
	free(msg_dir);
	account_free(ba);
	return -1;
}

void
ssql_account_close(struct store_backend_account *ba)
{
	account_free(ba);
}

/* An idle account keeps its write connection (deliveries) and one read
 * connection (logins), both trimmed: what it holds is 4 to 6 file
 * descriptors and 30 to 60 KiB (bench/store_bench, part cache). */
int
ssql_account_park(struct store_backend_account *ba)
{
	struct ssql_conn *c, *extra;

	if (atomic_load(&ba->damaged))
		return 0;
	pthread_mutex_lock(&ba->rlock);
	extra = ba->readers != NULL ? ba->readers->next : NULL;
	if (ba->readers != NULL) {
		ba->readers->next = NULL;
		ssql_conn_trim(ba->readers);
	}
	pthread_mutex_unlock(&ba->rlock);
	while ((c = extra) != NULL) {
		extra = c->next;
		ssql_conn_close(c);
	}
	pthread_mutex_lock(&ba->wlock);
	ssql_conn_trim(ba->w);
	pthread_mutex_unlock(&ba->wlock);
	return 1;
}

int
ssql_account_valid(struct store_backend_account *ba)
{
	struct stat st;

	return !atomic_load(&ba->damaged) && stat(ba->db_path, &st) == 0 &&
	    st.st_dev == ba->db_dev && st.st_ino == ba->db_ino;
}

int
ssql_account_delete(struct store_backend *be, int64_t id, const char **error_r)
{
	char name[32], gone[64], rnd[17];

	snprintf(name, sizeof(name), "%lld", (long long)id);
	ssql_random_hex(rnd, 8);
	snprintf(gone, sizeof(gone), "deleted-%lld-%s", (long long)id, rnd);
	/* One rename makes the deletion atomic; the removal may then be
	 * interrupted without harm (tmp/ is cleaned at start). */
	if (renameat(be->mail_fd, name, be->tmp_fd, gone) < 0) {
		if (errno == ENOENT)
			return 0;
		return store_fail_temp(error_r, "event=store-io-error op=rename account=%lld "
		    "reason=\"%s\"", (long long)id, strerror(errno));
	}
	if (ssql_fsync_dir(be, be->mail_fd, NULL, error_r) < 0)
		return -1;
	if (ssql_remove_tree(be->tmp_fd, gone) < 0)
		log_warn(NULL, "event=store-account-delete-incomplete account=%lld left=%s/%s",
		    (long long)id, be->tmp_dir, gone);
	log_info(NULL, "event=store-account-deleted account=%lld", (long long)id);
	return 0;
}

int
ssql_account_usage(struct store_backend_account *ba, struct store_usage *usage,
    const char **error_r)
{
	struct ssql_conn *c;
	sqlite3_stmt *st;
	int rc;

	if ((c = ssql_reader(ba, error_r)) == NULL)
		return -1;
	if ((st = ssql_stmt(c, SST_ACCOUNT_USAGE, error_r)) == NULL) {
		ssql_reader_put(ba, c);
		return -1;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		usage->bytes = (uint64_t)sqlite3_column_int64(st, 0);
		usage->messages = (uint64_t)sqlite3_column_int64(st, 1);
		rc = 0;
	} else
		rc = ssql_error(c, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, error_r);
	sqlite3_reset(st);
	ssql_reader_put(ba, c);
	return rc;
}
