/*
 * The IMAP session: reading commands, the command table, running commands
 * on the worker pool, and the end of every command (view updates, then the
 * tagged reply).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"

struct imap_verb {
	const char *name;
	void (*handler)(struct imap_session *s, const struct imap_cmd *cmd);
	int flags;
};

static const struct imap_parse_limits imap_limits_prelogin = {
	.command_max = IMAP_COMMAND_MAX_PRELOGIN,
	.args_max = IMAP_ARGS_MAX_PRELOGIN,
	.depth_max = IMAP_DEPTH_MAX,
};

static const struct imap_parse_limits imap_limits = {
	.command_max = IMAP_COMMAND_MAX,
	.args_max = IMAP_ARGS_MAX,
	.depth_max = IMAP_DEPTH_MAX,
	.stream_append = 1,
	.literal_plus = 1,
};

#define S IMAP_NEEDS_STORE
static const struct imap_verb imap_verbs[] = {
	{ "CAPABILITY", imap_cmd_capability, IMAP_IN_ANY },
	{ "NOOP", imap_cmd_noop, IMAP_IN_ANY },
	{ "LOGOUT", imap_cmd_logout, IMAP_IN_ANY },
	{ "ID", imap_cmd_id, IMAP_IN_ANY },
	{ "STARTTLS", imap_cmd_starttls, IMAP_IN_NOT_AUTH },
	{ "LOGIN", imap_cmd_login, IMAP_IN_NOT_AUTH | IMAP_NEEDS_TLS },
	{ "AUTHENTICATE", imap_cmd_authenticate, IMAP_IN_NOT_AUTH | IMAP_NEEDS_TLS },
	/* Authenticated state. */
	{ "ENABLE", imap_cmd_enable, IMAP_IN_AUTH | S },
	{ "SELECT", imap_cmd_select, IMAP_IN_LOGGED | S },
	{ "EXAMINE", imap_cmd_examine, IMAP_IN_LOGGED | S },
	{ "CREATE", imap_cmd_create, IMAP_IN_LOGGED | S },
	{ "DELETE", imap_cmd_delete, IMAP_IN_LOGGED | S },
	{ "RENAME", imap_cmd_rename, IMAP_IN_LOGGED | S },
	{ "SUBSCRIBE", imap_cmd_subscribe, IMAP_IN_LOGGED | S },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, IMAP_IN_LOGGED | S },
	{ "LIST", imap_cmd_list, IMAP_IN_LOGGED | S },
	{ "LSUB", imap_cmd_lsub, IMAP_IN_LOGGED | S },
	{ "NAMESPACE", imap_cmd_namespace, IMAP_IN_LOGGED | S },
	{ "STATUS", imap_cmd_status, IMAP_IN_LOGGED | S },
	{ "APPEND", imap_cmd_append, IMAP_IN_LOGGED | S },
	{ "IDLE", imap_cmd_idle, IMAP_IN_LOGGED | S },
	{ "GETQUOTA", imap_cmd_getquota, IMAP_IN_LOGGED | S },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, IMAP_IN_LOGGED | S },
	{ "SETQUOTA", imap_cmd_setquota, IMAP_IN_LOGGED | S },
	/* Selected state. */
	{ "CHECK", imap_cmd_noop, IMAP_IN_SELECTED | S },
	{ "CLOSE", imap_cmd_close, IMAP_IN_SELECTED | S },
	{ "UNSELECT", imap_cmd_unselect, IMAP_IN_SELECTED | S },
	{ "EXPUNGE", imap_cmd_expunge, IMAP_IN_SELECTED | S | IMAP_HAS_UID },
	{ "SEARCH", imap_cmd_search, IMAP_IN_SELECTED | S | IMAP_NO_EXPUNGE | IMAP_HAS_UID },
	{ "SORT", imap_cmd_sort, IMAP_IN_SELECTED | S | IMAP_NO_EXPUNGE | IMAP_HAS_UID },
	{ "THREAD", imap_cmd_thread, IMAP_IN_SELECTED | S | IMAP_NO_EXPUNGE | IMAP_HAS_UID },
	{ "FETCH", imap_cmd_fetch, IMAP_IN_SELECTED | S | IMAP_NO_EXPUNGE | IMAP_HAS_UID },
	{ "STORE", imap_cmd_store, IMAP_IN_SELECTED | S | IMAP_NO_EXPUNGE | IMAP_HAS_UID },
	{ "COPY", imap_cmd_copy, IMAP_IN_SELECTED | S | IMAP_HAS_UID },
	{ "MOVE", imap_cmd_move, IMAP_IN_SELECTED | S | IMAP_HAS_UID },
	{ "UID", NULL, IMAP_IN_SELECTED | S },
};
#undef S

/* --- replies ------------------------------------------------------------ */

void
imap_close(struct imap_session *s, const char *text)
{
	net_conn_printf(s->conn, "* BYE %s\r\n", text);
	net_conn_close(s->conn);
	s->closing = 1;
}

/* A BAD reply outside a running command; too many and we hang up. */
static void
imap_bad(struct imap_session *s, const char *tag, const char *text)
{
	net_conn_printf(s->conn, "%s BAD %s\r\n", tag != NULL ? tag : "*", text);
	if (++s->errors >= IMAP_ERRORS_MAX)
		imap_close(s, "Too many errors");
}

int
imap_utf8_mode(const struct imap_session *s)
{
	return (s->enabled & (IMAP_ENABLED_REV2 | IMAP_ENABLED_UTF8)) != 0;
}

int
imap_rev2(const struct imap_session *s)
{
	return (s->enabled & IMAP_ENABLED_REV2) != 0;
}

/* What a logged-in session with the mail store is offered. */
static const char imap_caps_store[] =
    " ENABLE IDLE BINARY NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE"
    " CREATE-SPECIAL-USE CONDSTORE QRESYNC LIST-EXTENDED LIST-STATUS STATUS=SIZE"
    " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE UTF8=ACCEPT ESEARCH SEARCHRES"
    " APPENDLIMIT=1073741824 MULTIAPPEND SORT SORT=DISPLAY ESORT THREAD=REFERENCES"
    " THREAD=ORDEREDSUBJECT I18NLEVEL=1 PREVIEW OBJECTID";

void
imap_capability(struct imap_session *s, struct buf *out)
{
	const char *mechs, *end;

	/* IMAP4rev2 is announced once its whole base is here: with the mail
	 * store. Before login we cannot know, so both are announced. */
	buf_puts(out, "IMAP4rev1");
	if (s->ctx->store != NULL)
		buf_puts(out, " IMAP4rev2");
	if (s->user != NULL) {
		/* LITERAL+ after login, LITERAL- (4 KiB) before: an anonymous
		 * client cannot make us read big literals it was not asked for. */
		buf_puts(out, " LITERAL+ ID");
		if (s->acct != NULL)
			buf_puts(out, imap_caps_store);
		return;
	}
	buf_puts(out, " SASL-IR LITERAL- ID");
	if (!net_conn_is_tls(s->conn)) {
		buf_puts(out, " STARTTLS LOGINDISABLED");
		return;
	}
	for (mechs = auth_mechanisms(); *mechs != '\0'; mechs = end) {
		while (*mechs == ' ')
			mechs++;
		end = mechs + strcspn(mechs, " ");
		if (end > mechs)
			buf_printf(out, " AUTH=%.*s", (int)(end - mechs), mechs);
	}
}

/* --- timeouts ------------------------------------------------------------ */

static uint64_t
imap_prelogin_timeout(const struct config *cfg)
{
	uint64_t ms = cfg->timeout_imap_ms / 2;

	return ms > 0 && ms < IMAP_PRELOGIN_TIMEOUT_MS ? ms : IMAP_PRELOGIN_TIMEOUT_MS;
}

static uint64_t
imap_keepalive_interval(const struct config *cfg)
{
	uint64_t ms = cfg->timeout_imap_ms / 3;

	return ms > 0 && ms < IMAP_IDLE_KEEPALIVE_MS ? ms : IMAP_IDLE_KEEPALIVE_MS;
}

static void
imap_keepalive_fire(void *arg)
{
	struct imap_session *s = arg;

	if (s->input != IMAP_INPUT_IDLE || s->closing || s->conn == NULL)
		return;
	net_conn_puts(s->conn, "* OK Still here\r\n");
	net_timer_start(s->keepalive, imap_keepalive_interval(s->cfg));
}

void
imap_keepalive_start(struct imap_session *s)
{
	if (s->keepalive == NULL)
		s->keepalive = net_timer_new(net_conn_loop(s->conn), imap_keepalive_fire, s);
	net_timer_start(s->keepalive, imap_keepalive_interval(s->cfg));
}

void
imap_keepalive_stop(struct imap_session *s)
{
	if (s->keepalive != NULL)
		net_timer_stop(s->keepalive);
}

/* --- the end of a command ------------------------------------------------ */

static void
imap_finish_write(struct imap_session *s)
{
	if (s->tag != NULL && s->conn != NULL && !s->closing)
		net_conn_printf(s->conn, "%s\r\n", s->tag);
	xfree(&s->tag);
	s->cmd_flags = 0;
	s->input = IMAP_INPUT_COMMAND;
}

/* s->tag holds the whole tagged line from here on. */
void
imap_finish(struct imap_session *s, const char *fmt, ...)
{
	struct buf line = BUF_INIT;
	va_list ap;
	int expunge_ok = (s->cmd_flags & IMAP_NO_EXPUNGE) == 0;

	buf_printf(&line, "%s ", s->tag != NULL ? s->tag : "*");
	va_start(ap, fmt);
	buf_vprintf(&line, fmt, ap);
	va_end(ap);
	free(s->tag);
	s->tag = buf_steal(&line);
	if (s->view != NULL && s->state == IMAP_STATE_SELECTED && !s->closing) {
		imap_view_sync(s, (s->cmd_flags & IMAP_SYNC_FORCE) != 0, expunge_ok,
		    imap_finish_write);
		return;
	}
	imap_finish_write(s);
}

void
imap_finish_bad(struct imap_session *s, const char *text)
{
	if (++s->errors >= IMAP_ERRORS_MAX) {
		net_conn_printf(s->conn, "%s BAD %s\r\n", s->tag, text);
		xfree(&s->tag);
		imap_close(s, "Too many errors");
		return;
	}
	s->cmd_flags |= IMAP_NO_EXPUNGE;
	imap_finish(s, "BAD %s", text);
}

void
imap_result_fail(struct imap_result *r, const char *error)
{
	r->failed = 1;
	r->code = store_error_code();
	free(r->error);
	r->error = xstrdup(error != NULL ? error : "Internal error");
}

void
imap_result_clear(struct imap_result *r)
{
	xfree(&r->error);
	r->failed = 0;
}

void
imap_finish_result(struct imap_session *s, const struct imap_result *r)
{
	static const char *const codes[] = {
		[STORE_OK] = "",
		[STORE_ERR_NOT_FOUND] = "[NONEXISTENT] ",
		[STORE_ERR_EXISTS] = "[ALREADYEXISTS] ",
		[STORE_ERR_INVALID] = "[CANNOT] ",
		[STORE_ERR_QUOTA] = "[OVERQUOTA] ",
		[STORE_ERR_LIMIT] = "[LIMIT] ",
		[STORE_ERR_CONFLICT] = "[INUSE] ",
		[STORE_ERR_TEMP] = "[UNAVAILABLE] ",
	};
	const char *code = "";
	char text[200];
	size_t i;

	if ((unsigned)r->code < sizeof(codes) / sizeof(codes[0]))
		code = codes[r->code];
	/* The text goes on a single line. */
	snprintf(text, sizeof(text), "%s", r->error != NULL ? r->error : "Failed");
	for (i = 0; text[i] != '\0'; i++) {
		if ((unsigned char)text[i] < 0x20)
			text[i] = ' ';
	}
	imap_finish(s, "NO %s%s", code, text);
}

void
imap_input_commands(struct imap_session *s)
{
	s->input = IMAP_INPUT_COMMAND;
	if (!s->busy && !s->closing)
		net_conn_resume(s->conn);
}

/* --- jobs on the worker pool ---------------------------------------------- */

struct imap_job {
	struct imap_session *s;
	net_work_fn *work;
	imap_done_fn *done;
	void *arg;
};

static void imap_session_free(struct imap_session *s);

static void
imap_job_work(void *arg)
{
	struct imap_job *job = arg;

	job->work(job->arg);
}

static void
imap_job_done(void *arg)
{
	struct imap_job *job = arg;
	struct imap_session *s = job->s;

	s->busy = 0;
	if (s->orphaned) {
		job->done(NULL, job->arg);
		free(job);
		imap_session_free(s);
		return;
	}
	job->done(s, job->arg);
	free(job);
	if (s->busy || s->closing)
		return;
	if (s->stopping && s->input == IMAP_INPUT_COMMAND && s->tag == NULL) {
		imap_close(s, "Server shutting down");
		return;
	}
	if (s->input != IMAP_INPUT_NONE)
		net_conn_resume(s->conn);
}

void
imap_submit(struct imap_session *s, net_work_fn *work, imap_done_fn *done, void *arg)
{
	struct imap_job *job = xcalloc(1, sizeof(*job));

	job->s = s;
	job->work = work;
	job->done = done;
	job->arg = arg;
	s->busy = 1;
	net_conn_pause(s->conn);
	net_loop_submit(net_conn_loop(s->conn), imap_job_work, imap_job_done, job);
}

/* --- dispatch ------------------------------------------------------------ */

static int
imap_state_mask(const struct imap_session *s)
{
	switch (s->state) {
	case IMAP_STATE_NOT_AUTH:
		return IMAP_IN_NOT_AUTH;
	case IMAP_STATE_AUTH:
		return IMAP_IN_AUTH;
	case IMAP_STATE_SELECTED:
		return IMAP_IN_SELECTED;
	}
	return 0;
}

static const struct imap_verb *
imap_verb_find(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(imap_verbs) / sizeof(imap_verbs[0]); i++) {
		if (strcasecmp(name, imap_verbs[i].name) == 0)
			return &imap_verbs[i];
	}
	return NULL;
}

/*
 * Validating apart from acting: finds the command and checks that it may
 * run now. Replies and returns NULL when it may not. This runs before a
 * synchronizing literal is accepted too, so that the client does not send
 * a literal (a password, say) for a command we refuse anyway. sub is the
 * word after "UID" when known.
 */
static const struct imap_verb *
imap_verb_check(struct imap_session *s, const char *tag, const char *name, const char *sub)
{
	const struct imap_verb *v = imap_verb_find(name);

	if (v == NULL) {
		imap_bad(s, tag, "Unknown command");
		return NULL;
	}
	if ((v->flags & imap_state_mask(s)) == 0) {
		imap_bad(s, tag, "Command not valid in this state");
		return NULL;
	}
	if ((v->flags & IMAP_NEEDS_TLS) && !net_conn_is_tls(s->conn)) {
		net_conn_printf(s->conn, "%s NO [PRIVACYREQUIRED] Plaintext authentication "
		    "disallowed, use STARTTLS\r\n", tag);
		return NULL;
	}
	if ((v->flags & IMAP_NEEDS_STORE) && s->acct == NULL) {
		net_conn_printf(s->conn, "%s NO [UNAVAILABLE] Mailbox access is not "
		    "available\r\n", tag);
		return NULL;
	}
	if (v->handler == NULL && sub != NULL) {
		const struct imap_verb *u = imap_verb_find(sub);

		if (u == NULL || (u->flags & IMAP_HAS_UID) == 0) {
			imap_bad(s, tag, "Unknown UID command");
			return NULL;
		}
		return u;
	}
	return v;
}

static void
imap_dispatch(struct imap_session *s, const struct imap_command *pc)
{
	const struct imap_verb *v;
	struct imap_cmd cmd;
	const char *sub = NULL;
	char name[IMAP_NAME_MAX + 1];
	size_t i;

	memset(&cmd, 0, sizeof(cmd));
	cmd.tag = pc->tag;
	cmd.args = pc->args;
	cmd.nargs = pc->nargs;
	if (strcasecmp(pc->name, "UID") == 0) {
		if (pc->nargs == 0 || pc->args->type != IMAP_ARG_ATOM) {
			if (imap_verb_check(s, pc->tag, pc->name, NULL) != NULL)
				imap_bad(s, pc->tag, "Syntax: UID command arguments");
			return;
		}
		sub = pc->args->str;
		cmd.uid = 1;
		cmd.args = pc->args->next;
		cmd.nargs--;
	}
	if ((v = imap_verb_check(s, pc->tag, pc->name, sub)) == NULL)
		return;
	for (i = 0; v->name[i] != '\0' && i < IMAP_NAME_MAX; i++)
		name[i] = v->name[i];
	name[i] = '\0';
	cmd.name = name;
	s->tag = xstrdup(pc->tag);
	s->cmd_flags = v->flags;
	/* The UID forms may see EXPUNGE responses (RFC 9051 7.5.1). */
	if (cmd.uid)
		s->cmd_flags &= ~IMAP_NO_EXPUNGE;
	s->input = IMAP_INPUT_NONE;
	v->handler(s, &cmd);
}

static void
imap_parsed(struct imap_session *s, enum imap_parse_result r)
{
	const struct imap_command *cmd;
	const char *error;
	int fatal;

	switch (r) {
	case IMAP_PARSE_MORE:
		break;
	case IMAP_PARSE_LITERAL:
		/* A command we refuse is refused before the client sends the
		 * literal: it waits for our go-ahead, so nothing follows. */
		if (imap_verb_check(s, imap_parser_tag(s->parser),
		    imap_parser_name(s->parser), NULL) == NULL) {
			imap_parser_reset(s->parser, NULL);
			break;
		}
		net_conn_puts(s->conn, "+ Ready for literal\r\n");
		break;
	case IMAP_PARSE_STREAM:
		cmd = imap_parser_command(s->parser);
		if (imap_verb_check(s, cmd->tag, cmd->name, NULL) == NULL) {
			if (imap_parser_stream_sync(s->parser)) {
				imap_parser_reset(s->parser, NULL);
				break;
			}
			imap_close(s, "Cannot resynchronize, closing connection");
			break;
		}
		{
			struct imap_cmd c = { cmd->tag, "APPEND", cmd->args, cmd->nargs, 0 };

			imap_append_literal(s, &c);
		}
		break;
	case IMAP_PARSE_ERROR:
		error = imap_parser_error(s->parser, &fatal);
		if (s->append != NULL)
			imap_append_free(&s->append);
		if (fatal) {
			/* The literal's bytes are on their way and could hold
			 * anything: there is no finding the next command. */
			net_conn_printf(s->conn, "%s BAD %s\r\n",
			    imap_parser_tag(s->parser) != NULL ? imap_parser_tag(s->parser) : "*",
			    error);
			imap_close(s, "Cannot resynchronize, closing connection");
			break;
		}
		imap_bad(s, imap_parser_tag(s->parser), error);
		break;
	case IMAP_PARSE_DONE:
		imap_dispatch(s, imap_parser_command(s->parser));
		break;
	}
}

/* Reads and parses what there is of the next command: its lines, and the
 * bytes of its literals. Returns 0 when more input is needed. */
static int
imap_read_command(struct imap_session *s)
{
	enum imap_parse_result r;
	size_t left, used, len;
	char *line;
	int n;

	if (s->parser == NULL)
		s->parser = imap_parser_new(s->state == IMAP_STATE_NOT_AUTH ?
		    &imap_limits_prelogin : &imap_limits);
	left = imap_parser_literal_left(s->parser);
	if (left > 0) {
		struct evbuffer *in = net_conn_input(s->conn);
		struct evbuffer_iovec v;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return 0;
		r = imap_parse(s->parser, v.iov_base, v.iov_len < left ? v.iov_len : left,
		    &used);
		evbuffer_drain(in, used);
		imap_parsed(s, r);
		return 1;
	}
	n = net_conn_read_line(s->conn,
	    (s->user != NULL ? IMAP_COMMAND_MAX : IMAP_COMMAND_MAX_PRELOGIN) -
	    imap_parser_size(s->parser), &line, &len);
	if (n == 0)
		return 0;
	if (n < 0) {
		char *tag = NULL;

		/* The network layer discards the line up to its end. */
		if (imap_parser_size(s->parser) > 0 && imap_parser_tag(s->parser) != NULL)
			tag = xstrdup(imap_parser_tag(s->parser));
		imap_parser_reset(s->parser, NULL);
		imap_append_free(&s->append);
		imap_bad(s, tag, "Line too long");
		free(tag);
		return 1;
	}
	r = imap_parse(s->parser, line, len, &used);
	if (r == IMAP_PARSE_MORE)
		r = imap_parse(s->parser, "\r\n", 2, &used);
	imap_parsed(s, r);
	return 1;
}

static void
imap_process(struct imap_session *s)
{
	while (!s->closing && !s->tls_starting && !s->busy) {
		switch (s->input) {
		case IMAP_INPUT_NONE:
			net_conn_pause(s->conn);
			return;
		case IMAP_INPUT_SASL:
			if (!imap_auth_read(s))
				return;
			break;
		case IMAP_INPUT_IDLE:
			if (!imap_idle_read(s))
				return;
			break;
		case IMAP_INPUT_LITERAL:
			if (!imap_append_read(s))
				return;
			break;
		case IMAP_INPUT_COMMAND:
			if (!imap_read_command(s))
				return;
			break;
		}
	}
}

void
imap_session_logged_in(struct imap_session *s)
{
	imap_parser_reset(s->parser, &imap_limits);
	s->state = IMAP_STATE_AUTH;
	net_conn_set_timeout(s->conn, s->cfg->timeout_imap_ms);
	if (s->acct != NULL)
		s->notify = imap_notify_new(s);
}

void
imap_session_rest(struct imap_session *s)
{
	/* Between commands the parser holds nothing but its buffers, about
	 * a kilobyte; the next command line gets a new one. */
	imap_parser_free(&s->parser);
}

void
imap_session_tls_reset(struct imap_session *s)
{
	imap_parser_reset(s->parser, &imap_limits_prelogin);
}

/* --- the connection -------------------------------------------------------- */

static void *
imap_open(struct net_conn *conn)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct buf caps = BUF_INIT;

	s->conn = conn;
	s->ctx = net_conn_app(conn);
	s->cfg = net_conn_config(conn);
	s->state = IMAP_STATE_NOT_AUTH;
	s->input = IMAP_INPUT_COMMAND;
	s->parser = imap_parser_new(&imap_limits_prelogin);
	net_conn_set_timeout(conn, imap_prelogin_timeout(s->cfg));
	imap_capability(s, &caps);
	net_conn_printf(conn, "* OK [CAPABILITY %s] Petrel ready.\r\n", buf_cstr(&caps));
	buf_free(&caps);
	return s;
}

static void
imap_event(void *arg, enum net_event ev)
{
	struct imap_session *s = arg;

	switch (ev) {
	case NET_EV_INPUT:
		imap_process(s);
		break;
	case NET_EV_TLS_READY:
		/* RFC 3501 6.2.1: forget everything learnt before TLS. */
		s->tls_starting = 0;
		s->state = IMAP_STATE_NOT_AUTH;
		s->input = IMAP_INPUT_COMMAND;
		imap_session_tls_reset(s);
		break;
	case NET_EV_TIMEOUT:
		if (!s->closing)
			imap_close(s, "Autologout; idle for too long");
		break;
	case NET_EV_SHUTDOWN:
		s->stopping = 1;
		if (s->closing)
			break;
		/* Idle sessions go now; busy ones after their command. */
		if (!s->busy && s->auth == NULL && s->append == NULL &&
		    (s->input == IMAP_INPUT_COMMAND || s->input == IMAP_INPUT_IDLE) &&
		    (s->parser == NULL || imap_parser_size(s->parser) == 0))
			imap_close(s, "Server shutting down");
		break;
	case NET_EV_DRAINED:
		if (s->fetch != NULL && !s->busy && !s->closing)
			imap_fetch_drained(s);
		break;
	}
}

static void
imap_session_free(struct imap_session *s)
{
	auth_request_free(&s->auth);
	net_timer_free(&s->keepalive);
	imap_parser_free(&s->parser);
	imap_append_free(&s->append);
	imap_fetch_free(&s->fetch);
	imap_notify_detach(&s->notify);
	if (s->view != NULL && s->view->watch != NULL)
		store_watch_remove(&s->view->watch);
	imap_view_free(&s->view);
	store_account_release(&s->acct);
	free(s->idle_tag);
	free(s->tag);
	free(s->user);
	free(s);
}

static void
imap_session_close(void *arg)
{
	struct imap_session *s = arg;

	s->conn = NULL;
	s->closing = 1;
	if (s->busy) {
		/* The job's completion frees the session. */
		s->orphaned = 1;
		return;
	}
	imap_session_free(s);
}

static void
imap_busy(struct net_conn *conn)
{
	net_conn_puts(conn, "* BYE Too many connections, try again later\r\n");
}

static const char *const imap_alpn[] = { "imap", NULL };

const struct net_proto proto_imap = {
	.name = "imap",
	.alpn = imap_alpn,
	.open = imap_open,
	.event = imap_event,
	.close = imap_session_close,
	.busy = imap_busy,
};
