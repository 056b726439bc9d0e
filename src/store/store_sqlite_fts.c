/*
 * Keeping the trigram index (the FTS5 table "search") in step with the
 * search text, outside the commits that change the text.
 *
 * A delivery stores its message's search text (search_text) in its own
 * commit; a trigger lists the row in fts_pending_add. Indexing it there
 * was the costliest part of a delivery: FTS5 writes a new segment per
 * transaction, ~90 WAL pages for one 4 KiB message. Here the pending rows
 * are indexed later, SSQL_FTS_BATCH per transaction, by the background
 * threads (store_sqlite_unlink.c queues the work for when the account has
 * had no new text for half a minute, so that a busy account's deliveries
 * share transactions and messages deleted meanwhile cost nothing), or at
 * once by a search that needs them (ssql_fts_catch_up).
 *
 * The same threads remove the text of expunged messages listed in
 * fts_pending_delete (deleting FTS5 rows was the costliest part of an
 * expunge). Searches join the messages table, so such text is never found.
 *
 * Nothing here is needed for durability: the text is committed with its
 * message, and the lists survive a crash; an account's pending work is
 * queued again when it is opened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "store/store_sqlite.h"

#define SSQL_FTS_BATCH 200   /* rows indexed or removed per transaction */

static int
fts_exec(sqlite3 *db, const char *sql, const char *json)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (json != NULL)
		sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The first SSQL_FTS_BATCH ids of a pending table as a JSON array; the
 * number of ids, or -1. */
static int
pending_ids(sqlite3 *db, const char *table, struct buf *json)
{
	sqlite3_stmt *st;
	char sql[96];
	int rc, n = 0;

	snprintf(sql, sizeof(sql), "SELECT id FROM %s ORDER BY id LIMIT %d", table,
	    SSQL_FTS_BATCH);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	buf_reset(json);
	buf_putc(json, '[');
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		buf_printf(json, n++ > 0 ? ",%lld" : "%lld",
		    (long long)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	buf_putc(json, ']');
	return rc == SQLITE_DONE ? n : -1;
}

/* Inside a write transaction: up to SSQL_FTS_BATCH pending rows removed.
 * The guard on messages keeps text a message refers to again (it is only
 * ever removed with the last message of its body). */
static int
purge_step(sqlite3 *db)
{
	struct buf json = BUF_INIT;
	int n;

	if ((n = pending_ids(db, "fts_pending_delete", &json)) > 0 &&
	    (fts_exec(db, "DELETE FROM search_text WHERE id IN"
	    " (SELECT value FROM json_each(?1)) AND NOT EXISTS"
	    " (SELECT 1 FROM messages WHERE body_id = search_text.id)", buf_cstr(&json)) < 0 ||
	    fts_exec(db, "DELETE FROM fts_pending_delete WHERE id IN"
	    " (SELECT value FROM json_each(?1))", buf_cstr(&json)) < 0))
		n = -1;
	buf_free(&json);
	return n;
}

/* Inside a write transaction: up to SSQL_FTS_BATCH pending rows indexed. */
static int
index_step(sqlite3 *db)
{
	struct buf json = BUF_INIT;
	int n;

	if ((n = pending_ids(db, "fts_pending_add", &json)) > 0 &&
	    (fts_exec(db, "INSERT INTO search (rowid, header, body)"
	    " SELECT id, header, body FROM search_text WHERE id IN"
	    " (SELECT value FROM json_each(?1))", buf_cstr(&json)) < 0 ||
	    fts_exec(db, "DELETE FROM fts_pending_add WHERE id IN"
	    " (SELECT value FROM json_each(?1))", buf_cstr(&json)) < 0))
		n = -1;
	buf_free(&json);
	return n;
}

/* One transaction of step on a connection of our own: 1 when rows were
 * done, 0 when none were left, -1 on an error. */
static int
own_transaction(sqlite3 *db, int (*step)(sqlite3 *))
{
	int n;

	if (fts_exec(db, "BEGIN IMMEDIATE", NULL) < 0)
		return -1;
	if ((n = step(db)) < 0 || fts_exec(db, "COMMIT", NULL) < 0) {
		if (!sqlite3_get_autocommit(db))
			fts_exec(db, "ROLLBACK", NULL);
		return -1;
	}
	return n > 0;
}

int
ssql_fts_maintain(const char *db_path, int64_t account_id)
{
	sqlite3 *db;
	int rc;

	/* Gone (the account deleted meanwhile): nothing to do. */
	if (access(db_path, F_OK) < 0)
		return 0;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return 0;
	}
	ssql_busy_setup(db);
	if (fts_exec(db, "PRAGMA synchronous = FULL", NULL) < 0) {
		rc = -1;
		goto out;
	}
	while ((rc = own_transaction(db, purge_step)) > 0)
		;
	if (rc == 0)
		while ((rc = own_transaction(db, index_step)) > 0)
			;
out:
	if (rc < 0)
		log_warn(NULL, "event=store-fts-failed account=%lld reason=\"%s\"",
		    (long long)account_id, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

int
ssql_fts_pending(struct ssql_conn *c, int adds_only)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(c->db, adds_only ? "SELECT 1 FROM fts_pending_add LIMIT 1" :
	    "SELECT 1 FROM fts_pending_add UNION ALL SELECT 1 FROM fts_pending_delete LIMIT 1",
	    -1, &st, NULL) != SQLITE_OK)
		return 0;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW;
}

int
ssql_fts_catch_up(struct store_backend_account *ba, const char **error_r)
{
	struct ssql_conn *c;
	int n;

	do {
		if ((c = ssql_wbegin(ba, error_r)) == NULL)
			return -1;
		if ((n = index_step(c->db)) < 0) {
			ssql_error(c, sqlite3_errcode(c->db), error_r);
			ssql_wrollback(ba);
			return -1;
		}
		if (ssql_wcommit(ba, error_r) < 0)
			return -1;
	} while (n == SSQL_FTS_BATCH);
	return 0;
}
