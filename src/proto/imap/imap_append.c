/*
 * APPEND (RFC 9051 6.3.12) with APPENDUID (UIDPLUS) and APPENDLIMIT.
 *
 * The message literal never sits in memory whole: the parser hands it over
 * (IMAP_PARSE_STREAM) and its bytes go to a store writer in chunks, each
 * written by a worker while the session reads nothing. Before the client
 * is told to send a synchronizing literal, the size is checked against
 * APPENDLIMIT and the quota and the mailbox must exist, so a refusal costs
 * the client nothing (NO [TOOBIG] / [OVERQUOTA] / [TRYCREATE]). A
 * non-synchronizing literal (LITERAL-, 4 KiB at most) that is refused is
 * read and dropped, and the refusal comes when the command ends.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"

#define IMAP_APPEND_CHUNK (256 * 1024)

struct imap_append {
	char *tag;
	char *mailbox;                  /* UTF-8 */
	int64_t mailbox_id;
	unsigned flags;
	char **keywords;
	int64_t date;
	uint64_t size, left;
	int sync;
	int skipping;                   /* refused: drop the bytes */
	char *fail;                     /* the reply for a refused message */
	int messages;                   /* literals seen in this command */
	struct store_writer *writer;
	struct buf chunk;
	/* Out of the jobs. */
	struct imap_result res;
	uint32_t uid, uidvalidity;
	int found;
	struct store_usage usage;
	/* Job inputs. */
	struct proto_context *ctx;
	struct store_account *acct;
	struct store_quota quota;
	struct buf writing;             /* the chunk a worker is writing */
};

void
imap_append_free(struct imap_append **ap)
{
	struct imap_append *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	if (a->writer != NULL)
		store_writer_free(&a->writer);
	imap_keywords_free(&a->keywords);
	imap_result_clear(&a->res);
	buf_free(&a->chunk);
	buf_free(&a->writing);
	free(a->fail);
	free(a->mailbox);
	free(a->tag);
	free(a);
}

/* Refuses the message: before a synchronizing literal the command ends
 * here; otherwise the bytes are dropped and the refusal waits. */
static void
imap_append_refuse(struct imap_session *s, const char *text)
{
	struct imap_append *a = s->append;

	if (a->sync) {
		net_conn_printf(s->conn, "%s %s\r\n", a->tag, text);
		imap_parser_reset(s->parser, NULL);
		imap_append_free(&s->append);
		imap_input_commands(s);
		return;
	}
	free(a->fail);
	a->fail = xstrdup(text);
	a->skipping = 1;
	if (a->writer != NULL)
		store_writer_free(&a->writer);
	s->input = IMAP_INPUT_LITERAL;
	net_conn_resume(s->conn);
}

/* --- before the bytes: limits, quota, mailbox, writer ------------------------ */

static void
imap_append_begin_work(void *arg)
{
	struct imap_append *a = arg;
	struct store_mailbox mbox;
	const char *error;
	int r;

	if ((r = store_mailbox_get(a->acct, a->mailbox, &mbox, &error)) < 0) {
		imap_result_fail(&a->res, error);
		return;
	}
	a->found = r > 0;
	if (!a->found)
		return;
	a->mailbox_id = mbox.id;
	store_mailbox_clear(&mbox);
	if ((a->quota.bytes_limit > 0 || a->quota.messages_limit > 0) &&
	    store_account_usage(a->acct, &a->usage, &error) < 0) {
		imap_result_fail(&a->res, error);
		return;
	}
	if (store_writer_new(a->ctx->store, &a->writer, &error) < 0)
		imap_result_fail(&a->res, error);
}

static void
imap_append_begin_done(struct imap_session *s, void *arg)
{
	struct imap_append *a = arg;

	if (s == NULL)
		return;         /* the session frees a */
	if (a->res.failed) {
		log_warn(net_conn_id(s->conn), "event=append-failed error=\"%s\"", a->res.error);
		imap_append_refuse(s, "NO [UNAVAILABLE] Cannot store the message now");
		return;
	}
	if (!a->found) {
		imap_append_refuse(s, "NO [TRYCREATE] No such mailbox");
		return;
	}
	if ((a->quota.bytes_limit > 0 && a->usage.bytes + a->size > a->quota.bytes_limit) ||
	    (a->quota.messages_limit > 0 && a->usage.messages + 1 > a->quota.messages_limit)) {
		imap_append_refuse(s, "NO [OVERQUOTA] Quota exceeded");
		return;
	}
	if (a->sync)
		net_conn_puts(s->conn, "+ Ready for literal data\r\n");
	s->input = IMAP_INPUT_LITERAL;
}

void
imap_append_literal(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *arg = cmd->args;
	struct imap_append *a;
	const char *error;
	unsigned n = cmd->nargs;

	if (s->append == NULL) {
		s->append = xcalloc(1, sizeof(*s->append));
		s->append->tag = xstrdup(cmd->tag);
	}
	a = s->append;
	a->size = a->left = imap_parser_stream_size(s->parser);
	a->sync = imap_parser_stream_sync(s->parser);
	a->skipping = 0;
	if (++a->messages > 1) {
		imap_append_refuse(s, "NO [CANNOT] One message per APPEND (no MULTIAPPEND)");
		return;
	}
	/* mailbox [flags] [date-time] literal */
	if (n < 2 || n > 4) {
		imap_append_refuse(s, "BAD Syntax: APPEND mailbox [(flags)] [date-time] message");
		return;
	}
	if (imap_mailbox_arg(s, arg, &a->mailbox, &error) < 0) {
		imap_append_refuse(s, strncmp(error, "BAD ", 4) == 0 ? error :
		    "NO [TRYCREATE] Invalid mailbox name");
		return;
	}
	arg = arg->next;
	if (arg->type == IMAP_ARG_LIST && arg->next != NULL) {
		if (imap_flags_parse(arg, &a->flags, &a->keywords, &error) < 0) {
			imap_append_refuse(s, "BAD Invalid flags");
			return;
		}
		arg = arg->next;
	}
	if (arg->next != NULL) {
		if (arg->type != IMAP_ARG_QUOTED || imap_datetime_parse(arg->str, &a->date) < 0) {
			imap_append_refuse(s, "BAD Invalid date-time");
			return;
		}
		arg = arg->next;
	}
	if (arg->next != NULL || arg->type != IMAP_ARG_LITERAL) {
		imap_append_refuse(s, "BAD Syntax: APPEND mailbox [(flags)] [date-time] message");
		return;
	}
	if (a->size == 0) {
		imap_append_refuse(s, "NO Refusing an empty message");
		return;
	}
	if (a->size > STORE_MESSAGE_MAX) {
		imap_append_refuse(s, "NO [TOOBIG] Message too big");
		return;
	}
	a->ctx = s->ctx;
	a->acct = s->acct;
	a->quota = s->quota;
	s->input = IMAP_INPUT_NONE;
	imap_submit(s, imap_append_begin_work, imap_append_begin_done, a);
}

/* --- the bytes ------------------------------------------------------------ */

static void
imap_append_write_work(void *arg)
{
	struct imap_append *a = arg;
	const char *error;

	if (a->writing.len > 0 && store_writer_write(a->writer, a->writing.data,
	    a->writing.len, &error) < 0)
		imap_result_fail(&a->res, error);
	buf_reset(&a->writing);
}

static void imap_append_literal_end(struct imap_session *s);

static void
imap_append_write_done(struct imap_session *s, void *arg)
{
	struct imap_append *a = arg;

	if (s == NULL)
		return;         /* the session frees a */
	if (a->res.failed) {
		log_warn(net_conn_id(s->conn), "event=append-failed error=\"%s\"", a->res.error);
		free(a->fail);
		a->fail = xstrdup("NO [UNAVAILABLE] Cannot store the message now");
		a->skipping = 1;
		store_writer_free(&a->writer);
	}
	if (a->left == 0)
		imap_append_literal_end(s);
}

/* Hands the chunk to a worker. */
static void
imap_append_flush(struct imap_session *s)
{
	struct imap_append *a = s->append;
	struct buf t = a->writing;

	a->writing = a->chunk;
	a->chunk = t;
	buf_reset(&a->chunk);
	imap_submit(s, imap_append_write_work, imap_append_write_done, a);
}

/* All bytes are in: the parser reads the rest of the command. */
static void
imap_append_literal_end(struct imap_session *s)
{
	imap_parser_stream_done(s->parser);
	s->input = IMAP_INPUT_COMMAND;
}

int
imap_append_read(struct imap_session *s)
{
	struct imap_append *a = s->append;
	struct evbuffer *in = net_conn_input(s->conn);
	size_t avail = evbuffer_get_length(in), take;

	if (a->left > 0 && avail == 0)
		return 0;
	take = avail < a->left ? avail : (size_t)a->left;
	if (!a->skipping) {
		size_t room = IMAP_APPEND_CHUNK - a->chunk.len;

		if (take > room)
			take = room;
		buf_reserve(&a->chunk, take);
		evbuffer_remove(in, a->chunk.data + a->chunk.len, take);
		a->chunk.len += take;
		a->chunk.data[a->chunk.len] = '\0';
	} else {
		evbuffer_drain(in, take);
	}
	a->left -= take;
	if (!a->skipping && (a->chunk.len >= IMAP_APPEND_CHUNK || a->left == 0)) {
		imap_append_flush(s);
		return 1;
	}
	if (a->left == 0)
		imap_append_literal_end(s);
	return 1;
}

/* --- the end of the command: commit ------------------------------------------ */

static void
imap_append_commit_work(void *arg)
{
	struct imap_append *a = arg;
	struct store_target t;
	const char *error;

	memset(&t, 0, sizeof(t));
	t.acct = a->acct;
	t.mailbox_id = a->mailbox_id;
	t.flags = a->flags;
	t.keywords = (const char *const *)a->keywords;
	t.internaldate = a->date;
	if (store_writer_commit(a->writer, &t, 1, &error) < 0) {
		imap_result_fail(&a->res, error);
		return;
	}
	if (t.error != STORE_OK) {
		a->res.failed = 1;
		a->res.code = t.error;
		a->res.error = xstrdup(t.error == STORE_ERR_QUOTA ? "Quota exceeded" :
		    t.error == STORE_ERR_NOT_FOUND ? "No such mailbox" : "Cannot store the message");
		return;
	}
	a->uid = t.uid;
	a->uidvalidity = t.uidvalidity;
}

static void
imap_append_commit_done(struct imap_session *s, void *arg)
{
	struct imap_append *a = arg;

	if (s == NULL)
		return;         /* the session frees a */
	s->append = NULL;
	if (a->res.failed) {
		if (a->res.code == STORE_ERR_NOT_FOUND)
			imap_finish(s, "NO [TRYCREATE] No such mailbox");
		else
			imap_finish_result(s, &a->res);
	} else {
		/* Our own message shows in the selected mailbox at once. */
		if (s->view != NULL && s->view->mailbox_id == a->mailbox_id)
			s->view->dirty = 1;
		imap_finish(s, "OK [APPENDUID %u %u] APPEND completed", a->uidvalidity, a->uid);
	}
	imap_append_free(&a);
}

void
imap_cmd_append(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_append *a = s->append;

	if (a == NULL) {
		imap_finish_bad(s, "Syntax: APPEND mailbox [(flags)] [date-time] message");
		return;
	}
	if (a->fail != NULL) {
		char *fail = a->fail;

		a->fail = NULL;
		imap_append_free(&s->append);
		if (strncmp(fail, "BAD ", 4) == 0)
			imap_finish_bad(s, fail + 4);
		else
			imap_finish(s, "%s", fail);
		free(fail);
		return;
	}
	if (a->writer == NULL) {
		imap_append_free(&s->append);
		imap_finish(s, "NO [UNAVAILABLE] Cannot store the message now");
		return;
	}
	imap_submit(s, imap_append_commit_work, imap_append_commit_done, a);
}
