/*
 * APPEND (RFC 9051 6.3.12) with APPENDUID (UIDPLUS), APPENDLIMIT and
 * MULTIAPPEND (RFC 3502).
 *
 * The message literal never sits in memory whole: the parser hands it over
 * (IMAP_PARSE_STREAM) and its bytes go to a store writer in chunks, each
 * written by a worker while the session reads nothing. Before the client
 * is told to send a synchronizing literal, the size is checked against
 * APPENDLIMIT and the quota and the mailbox must exist, so a refusal costs
 * the client nothing (NO [TOOBIG] / [OVERQUOTA] / [TRYCREATE]). A
 * non-synchronizing literal (LITERAL-, 4 KiB at most) that is refused is
 * read and dropped, and the refusal comes when the command ends.
 *
 * MULTIAPPEND: each message streams into a store writer of its own; none
 * is committed until the command's last byte is in, so a refusal or a
 * client gone mid-command stores nothing. The store commits one writer at
 * a time (store_writer_commit), so the commits go one after the other and
 * a failure among them is rolled back by expunging the messages already
 * committed: other sessions may glimpse them, and a crash between two
 * commits keeps the first ones. (A store call committing several writers
 * in one transaction would close both gaps.)
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_seqset.h"

#define IMAP_APPEND_CHUNK (256 * 1024)
#define IMAP_APPEND_MESSAGES_MAX 1000   /* messages in one MULTIAPPEND */

/* One message of the command. */
struct imap_append_msg {
	struct store_writer *writer;
	unsigned flags;
	char **keywords;
	int64_t date;
	uint64_t size;
	uint32_t uid;                   /* once committed */
};

struct imap_append {
	char *tag;
	char *mailbox;                  /* UTF-8 */
	int64_t mailbox_id;
	struct imap_append_msg *msgs;
	unsigned nmsgs;                 /* the last is the one being read */
	uint64_t total;                 /* octets of all messages */
	uint64_t left;
	int sync;
	int skipping;                   /* refused: drop the bytes */
	char *fail;                     /* the reply for a refused command */
	struct buf chunk;
	/* Out of the jobs. */
	struct imap_result res;
	uint32_t uidvalidity;
	int found;
	struct store_usage usage;
	/* Job inputs. */
	struct proto_context *ctx;
	struct store_account *acct;
	struct store_quota quota;
	struct store_writer *writer;    /* the current message's (in msgs) */
	struct buf writing;             /* the chunk a worker is writing */
};

void
imap_append_free(struct imap_append **ap)
{
	struct imap_append *a = *ap;
	unsigned i;

	if (a == NULL)
		return;
	*ap = NULL;
	for (i = 0; i < a->nmsgs; i++) {
		if (a->msgs[i].writer != NULL)
			store_writer_free(&a->msgs[i].writer);
		imap_keywords_free(&a->msgs[i].keywords);
	}
	free(a->msgs);
	imap_result_clear(&a->res);
	buf_free(&a->chunk);
	buf_free(&a->writing);
	free(a->fail);
	free(a->mailbox);
	free(a->tag);
	free(a);
}

static struct imap_append_msg *
imap_append_cur(struct imap_append *a)
{
	return &a->msgs[a->nmsgs - 1];
}

/* Refuses the message: before a synchronizing literal the command ends
 * here; otherwise the bytes are dropped and the refusal waits. */
static void
imap_append_refuse(struct imap_session *s, const char *text)
{
	struct imap_append *a = s->append;

	unsigned i;

	if (a->sync) {
		net_conn_printf(s->conn, "%s %s\r\n", a->tag, text);
		imap_parser_reset(s->parser, NULL);
		imap_append_free(&s->append);
		imap_input_commands(s);
		return;
	}
	if (text != a->fail) {
		free(a->fail);
		a->fail = xstrdup(text);
	}
	a->skipping = 1;
	/* Nothing of this command will be stored. */
	for (i = 0; i < a->nmsgs; i++) {
		if (a->msgs[i].writer != NULL)
			store_writer_free(&a->msgs[i].writer);
	}
	a->writer = NULL;
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

	/* The mailbox and the usage once per command. */
	if (a->nmsgs == 1) {
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
	}
	if (store_writer_new(a->ctx->store, &imap_append_cur(a)->writer, &error) < 0)
		imap_result_fail(&a->res, error);
	a->writer = imap_append_cur(a)->writer;
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
	if ((a->quota.bytes_limit > 0 && a->usage.bytes + a->total > a->quota.bytes_limit) ||
	    (a->quota.messages_limit > 0 &&
	    a->usage.messages + a->nmsgs > a->quota.messages_limit)) {
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
	const struct imap_arg *arg, *x;
	struct imap_append *a;
	struct imap_append_msg *m;
	const char *error;

	if (s->append == NULL) {
		s->append = xcalloc(1, sizeof(*s->append));
		s->append->tag = xstrdup(cmd->tag);
	}
	a = s->append;
	a->left = imap_parser_stream_size(s->parser);
	a->sync = imap_parser_stream_sync(s->parser);
	if (a->fail != NULL) {
		/* An earlier message was refused: so is the command. */
		imap_append_refuse(s, a->fail);
		return;
	}
	a->skipping = 0;
	a->writer = NULL;
	if (a->nmsgs == IMAP_APPEND_MESSAGES_MAX) {
		imap_append_refuse(s, "NO [LIMIT] Too many messages in one APPEND");
		return;
	}
	a->msgs = xreallocarray(a->msgs, a->nmsgs + 1, sizeof(*a->msgs));
	m = &a->msgs[a->nmsgs++];
	memset(m, 0, sizeof(*m));
	m->size = a->left;
	a->total += m->size;
	/* mailbox 1*([flags] [date-time] literal): this message's arguments
	 * follow the previous message's literal. */
	if (cmd->nargs < 2) {
		imap_append_refuse(s, "BAD Syntax: APPEND mailbox [(flags)] [date-time] message");
		return;
	}
	if (a->nmsgs == 1 && imap_mailbox_arg(s, cmd->args, &a->mailbox, &error) < 0) {
		imap_append_refuse(s, strncmp(error, "BAD ", 4) == 0 ? error :
		    "NO [TRYCREATE] Invalid mailbox name");
		return;
	}
	arg = cmd->args->next;
	for (x = arg; x->next != NULL; x = x->next) {
		if (x->type == IMAP_ARG_LITERAL)
			arg = x->next;
	}
	if (arg->type == IMAP_ARG_LIST && arg->next != NULL) {
		if (imap_flags_parse(arg, &m->flags, &m->keywords, &error) < 0) {
			imap_append_refuse(s, "BAD Invalid flags");
			return;
		}
		arg = arg->next;
	}
	if (arg->next != NULL) {
		if (arg->type != IMAP_ARG_QUOTED || imap_datetime_parse(arg->str, &m->date) < 0) {
			imap_append_refuse(s, "BAD Invalid date-time");
			return;
		}
		arg = arg->next;
	}
	if (arg->next != NULL || arg->type != IMAP_ARG_LITERAL) {
		imap_append_refuse(s, "BAD Syntax: APPEND mailbox [(flags)] [date-time] message");
		return;
	}
	if (m->size == 0) {
		imap_append_refuse(s, "NO Refusing an empty message");
		return;
	}
	if (m->size > STORE_MESSAGE_MAX) {
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
		store_writer_free(&imap_append_cur(a)->writer);
		a->writer = NULL;
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
	uint32_t *done;
	unsigned i, n = 0;

	done = xreallocarray(NULL, a->nmsgs, sizeof(*done));
	/* The session only holds its account: a commit needs its index open. */
	if (store_account_pin(a->acct, &error) < 0) {
		imap_result_fail(&a->res, error);
		free(done);
		return;
	}
	for (i = 0; i < a->nmsgs; i++) {
		struct imap_append_msg *m = &a->msgs[i];

		memset(&t, 0, sizeof(t));
		t.acct = a->acct;
		t.mailbox_id = a->mailbox_id;
		t.flags = m->flags;
		t.keywords = (const char *const *)m->keywords;
		t.internaldate = m->date;
		if (store_writer_commit(m->writer, &t, 1, &error) < 0) {
			imap_result_fail(&a->res, error);
			break;
		}
		if (t.error != STORE_OK) {
			a->res.failed = 1;
			a->res.code = t.error;
			a->res.error = xstrdup(t.error == STORE_ERR_QUOTA ? "Quota exceeded" :
			    t.error == STORE_ERR_NOT_FOUND ? "No such mailbox" :
			    "Cannot store the message");
			break;
		}
		m->uid = t.uid;
		a->uidvalidity = t.uidvalidity;
		done[n++] = t.uid;
	}
	store_account_unpin(a->acct);
	/* All or nothing: take back what went in before the failure. */
	if (a->res.failed && n > 0 &&
	    store_message_expunge(a->acct, a->mailbox_id, done, n, &error) < 0)
		log_warn(NULL, "event=append-rollback-failed mailbox=%lld messages=%u error=\"%s\"",
		    (long long)a->mailbox_id, n, error);
	free(done);
}

static void
imap_append_commit_done(struct imap_session *s, void *arg)
{
	struct imap_append *a = arg;
	struct buf uids = BUF_INIT;
	uint32_t *list;
	unsigned i;

	if (s == NULL)
		return;         /* the session frees a */
	s->append = NULL;
	if (a->res.failed) {
		if (a->res.code == STORE_ERR_NOT_FOUND)
			imap_finish(s, "NO [TRYCREATE] No such mailbox");
		else
			imap_finish_result(s, &a->res);
	} else {
		/* Our own messages show in the selected mailbox at once. */
		if (s->view != NULL && s->view->mailbox_id == a->mailbox_id)
			s->view->dirty = 1;
		list = xreallocarray(NULL, a->nmsgs, sizeof(*list));
		for (i = 0; i < a->nmsgs; i++)
			list[i] = a->msgs[i].uid;
		imap_seqset_format(&uids, list, a->nmsgs);
		free(list);
		imap_finish(s, "OK [APPENDUID %u %s] APPEND completed", a->uidvalidity,
		    buf_cstr(&uids));
		buf_free(&uids);
	}
	imap_append_free(&a);
}

void
imap_cmd_append(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_append *a = s->append;
	unsigned i;

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
	for (i = 0; i < a->nmsgs; i++) {
		if (a->msgs[i].writer == NULL) {
			imap_append_free(&s->append);
			imap_finish(s, "NO [UNAVAILABLE] Cannot store the message now");
			return;
		}
	}
	imap_submit(s, imap_append_commit_work, imap_append_commit_done, a);
}
