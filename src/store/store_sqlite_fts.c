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
 * ssql_search_text, the store's full-text search, is here too.
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
#include "core/xmalloc.h"
#include "store/store_sqlite.h"

#define SSQL_FTS_BATCH 200   /* rows indexed or removed per transaction */
/* Needles shorter than this (in characters) cannot use the trigram index. */
#define SSQL_TRIGRAM_MIN 3

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
	if (fts_exec(db, "PRAGMA synchronous = FULL", NULL) < 0 ||
	    sqlite3_exec(db, SSQL_SECURE_DELETE, NULL, NULL, NULL) != SQLITE_OK) {
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

/* --- searching ------------------------------------------------------------ */

/* Characters (not bytes) of UTF-8 text. */
static size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

int
ssql_search_text(struct store_backend_account *ba, int64_t mailbox_id, const char *needle,
    int body_only, uint32_t **uids_r, size_t *count_r, const char **error_r)
{
	struct buf pat = BUF_INIT;
	struct ssql_conn *c;
	sqlite3_stmt *st = NULL;
	const char *sql, *p;
	uint32_t *uids = NULL;
	size_t n = 0, cap = 0, chars = utf8_chars(needle);
	int rc;

	if (chars >= SSQL_TRIGRAM_MIN) {
		/* An FTS5 string: "..." with " doubled; with the trigram
		 * tokenizer a phrase matches as a substring. */
		buf_puts(&pat, body_only ? "body : \"" : "{header body} : \"");
		for (p = needle; *p != '\0'; p++) {
			if (*p == '"')
				buf_putc(&pat, '"');
			buf_putc(&pat, *p);
		}
		buf_putc(&pat, '"');
		sql = "SELECT m.uid FROM messages m WHERE m.mailbox_id = ?1 AND m.body_id IN"
		    " (SELECT rowid FROM search WHERE search MATCH ?2) ORDER BY m.uid";
	} else if (chars == 0) {
		sql = "SELECT uid FROM messages WHERE mailbox_id = ?1 ORDER BY uid";
	} else {
		/* Too short for trigrams: a scan of the stored text. */
		buf_putc(&pat, '%');
		for (p = needle; *p != '\0'; p++) {
			if (*p == '%' || *p == '_' || *p == '\\')
				buf_putc(&pat, '\\');
			buf_putc(&pat, *p);
		}
		buf_putc(&pat, '%');
		sql = body_only ?
		    "SELECT m.uid FROM messages m JOIN search_text t ON t.id = m.body_id"
		    " WHERE m.mailbox_id = ?1 AND t.body LIKE ?2 ESCAPE '\\' ORDER BY m.uid" :
		    "SELECT m.uid FROM messages m JOIN search_text t ON t.id = m.body_id"
		    " WHERE m.mailbox_id = ?1 AND (t.body LIKE ?2 ESCAPE '\\'"
		    " OR t.header LIKE ?2 ESCAPE '\\') ORDER BY m.uid";
	}
	if ((c = ssql_reader(ba, error_r)) == NULL) {
		buf_free(&pat);
		return -1;
	}
	/* Text delivered since the background indexer last ran is indexed
	 * first, so that the trigram search sees every message. */
	if (chars >= SSQL_TRIGRAM_MIN && ssql_fts_pending(c, 1)) {
		ssql_reader_put(ba, c);
		if (ssql_fts_catch_up(ba, error_r) < 0 ||
		    (c = ssql_reader(ba, error_r)) == NULL) {
			buf_free(&pat);
			return -1;
		}
	}
	if ((rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL)) != SQLITE_OK) {
		ssql_error(c, rc, error_r);
		goto fail;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (chars > 0)
		sqlite3_bind_text(st, 2, buf_cstr(&pat), (int)pat.len, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			uids = xreallocarray(uids, cap, sizeof(*uids));
		}
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		ssql_error(c, rc, error_r);
		goto fail;
	}
	sqlite3_finalize(st);
	ssql_reader_put(ba, c);
	buf_free(&pat);
	*uids_r = uids;
	*count_r = n;
	return 0;
fail:
	sqlite3_finalize(st);
	ssql_reader_put(ba, c);
	buf_free(&pat);
	free(uids);
	return -1;
}
