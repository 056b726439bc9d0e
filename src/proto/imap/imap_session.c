#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/conn.h"
#include "proto/imap/imap.h"
#include "proto/imap/imap_parse.h"
#include "proto/proto.h"

enum imap_state {
	IMAP_NOT_AUTHENTICATED,
	IMAP_AUTHENTICATED,
	IMAP_SASL,              /* AUTHENTICATE: reading response lines */
	IMAP_WAITING,           /* the auth service is working */
};

/* The states a command is valid in (RFC 3501 section 6). The selected
 * state needs the mail store, so it is never entered yet. */
#define IMAP_IN_NOT_AUTH 0x01
#define IMAP_IN_AUTH 0x02
#define IMAP_IN_SELECTED 0x04
#define IMAP_IN_ANY (IMAP_IN_NOT_AUTH | IMAP_IN_AUTH | IMAP_IN_SELECTED)
/* Only under TLS (RFC 3501 section 11.1: LOGINDISABLED). */
#define IMAP_NEEDS_TLS 0x10
/* Needs the mail store: answered NO [UNAVAILABLE] for now. */
#define IMAP_NEEDS_STORE 0x20

#define IMAP_UNAVAILABLE "NO [UNAVAILABLE] Mailbox access is not available on this server yet"

struct imap_session {
	struct net_conn *conn;
	struct proto_context *ctx;
	const struct config *cfg;
	enum imap_state state;
	struct imap_parser *parser;
	char *user;                     /* after login */
	struct auth_request *auth;
	char *auth_tag;                 /* of the LOGIN or AUTHENTICATE under way */
	int auth_failures;
	int errors;
	unsigned closing : 1;           /* said goodbye: read nothing more */
	unsigned tls_starting : 1;      /* STARTTLS accepted, handshake to come */
	unsigned stopping : 1;          /* server shutdown: close when idle */
};

struct imap_verb {
	const char *name;
	/* NULL for commands imap_verb_check() always refuses. */
	void (*handler)(struct imap_session *s, const struct imap_command *cmd);
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
};

static void
imap_close(struct imap_session *s, const char *text)
{
	net_conn_printf(s->conn, "* BYE %s\r\n", text);
	net_conn_close(s->conn);
	s->closing = 1;
}

static void
imap_reply(struct imap_session *s, const char *tag, const char *text)
{
	net_conn_printf(s->conn, "%s %s\r\n", tag != NULL ? tag : "*", text);
}

/* A BAD reply; too many of them and we hang up. */
static void
imap_bad(struct imap_session *s, const char *tag, const char *text)
{
	net_conn_printf(s->conn, "%s BAD %s\r\n", tag != NULL ? tag : "*", text);
	if (++s->errors >= IMAP_ERRORS_MAX)
		imap_close(s, "Too many errors");
}

static int
imap_state_mask(struct imap_session *s)
{
	return s->user != NULL ? IMAP_IN_AUTH : IMAP_IN_NOT_AUTH;
}

/* The capabilities for the session's state, without the leading space. */
static void
imap_capability(struct imap_session *s, struct buf *out)
{
	const char *mechs, *end;

	buf_puts(out, "IMAP4rev1");
	if (s->user != NULL) {
		buf_puts(out, " LITERAL- ID");
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

static void
cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf caps = BUF_INIT;

	if (cmd->nargs != 0) {
		imap_bad(s, cmd->tag, "Syntax: CAPABILITY");
		return;
	}
	imap_capability(s, &caps);
	net_conn_printf(s->conn, "* CAPABILITY %s\r\n", buf_cstr(&caps));
	imap_reply(s, cmd->tag, "OK CAPABILITY completed");
	buf_free(&caps);
}

static void
cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 0) {
		imap_bad(s, cmd->tag, "Syntax: NOOP");
		return;
	}
	imap_reply(s, cmd->tag, "OK NOOP completed");
}

static void
cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 0) {
		imap_bad(s, cmd->tag, "Syntax: LOGOUT");
		return;
	}
	net_conn_puts(s->conn, "* BYE Logging out\r\n");
	imap_reply(s, cmd->tag, "OK LOGOUT completed");
	net_conn_close(s->conn);
	s->closing = 1;
}

/* RFC 2971: checks the client's list, logs who it is, says who we are. */
static void
cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *list = cmd->args, *key, *val;
	const char *name = NULL, *version = NULL;
	char qname[64], qversion[64];

	if (cmd->nargs != 1 || (!imap_arg_is_nil(list) && list->type != IMAP_ARG_LIST)) {
		imap_bad(s, cmd->tag, "Syntax: ID (field value ...) or ID NIL");
		return;
	}
	if (list->type == IMAP_ARG_LIST) {
		if (list->count % 2 != 0 || list->count / 2 > IMAP_ID_PAIRS_MAX) {
			imap_bad(s, cmd->tag, "Invalid ID list");
			return;
		}
		for (key = list->list; key != NULL; key = val->next) {
			val = key->next;
			if (!imap_arg_is_astring(key) || imap_arg_is_nil(key) ||
			    key->len > IMAP_ID_STRING_MAX ||
			    (!imap_arg_is_string(val) && !imap_arg_is_nil(val)) ||
			    val->len > IMAP_ID_STRING_MAX) {
				imap_bad(s, cmd->tag, "Invalid ID list");
				return;
			}
			if (imap_arg_is_nil(val))
				continue;
			if (strcasecmp(key->str, "name") == 0)
				name = val->str;
			else if (strcasecmp(key->str, "version") == 0)
				version = val->str;
		}
	}
	if (name != NULL || version != NULL)
		log_info(net_conn_id(s->conn), "event=id name=%s version=%s",
		    log_quote(qname, sizeof(qname), name != NULL ? name : "", 60),
		    log_quote(qversion, sizeof(qversion), version != NULL ? version : "", 60));
	net_conn_puts(s->conn, "* ID (\"name\" \"Petrel\")\r\n");
	imap_reply(s, cmd->tag, "OK ID completed");
}

static void
cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->nargs != 0) {
		imap_bad(s, cmd->tag, "Syntax: STARTTLS");
		return;
	}
	if (net_conn_is_tls(s->conn)) {
		imap_bad(s, cmd->tag, "TLS is already active");
		return;
	}
	imap_reply(s, cmd->tag, "OK Begin TLS negotiation now");
	/* Whatever the client pipelined after STARTTLS is discarded. */
	s->tls_starting = 1;
	imap_parser_reset(s->parser, NULL);
	net_conn_starttls(s->conn);
}

static void
imap_auth_done(void *arg, enum auth_status status, const char *challenge)
{
	struct imap_session *s = arg;
	struct buf caps = BUF_INIT;

	switch (status) {
	case AUTH_CONTINUE:
		net_conn_printf(s->conn, "+ %s\r\n", challenge);
		s->state = IMAP_SASL;
		net_conn_resume(s->conn);
		return;
	case AUTH_OK:
		s->user = xstrdup(auth_request_user(s->auth));
		imap_parser_reset(s->parser, &imap_limits);
		imap_capability(s, &caps);
		net_conn_printf(s->conn, "%s OK [CAPABILITY %s] Logged in\r\n", s->auth_tag,
		    buf_cstr(&caps));
		buf_free(&caps);
		break;
	case AUTH_FAILED:
		s->auth_failures++;
		imap_reply(s, s->auth_tag, "NO [AUTHENTICATIONFAILED] Authentication failed");
		break;
	case AUTH_MALFORMED:
		imap_bad(s, s->auth_tag, "Malformed authentication data");
		break;
	case AUTH_CANCELLED:
		imap_reply(s, s->auth_tag, "BAD Authentication cancelled");
		break;
	case AUTH_TEMPFAIL:
		imap_reply(s, s->auth_tag,
		    "NO [UNAVAILABLE] Temporary authentication failure, try again later");
		break;
	}
	auth_request_free(&s->auth);
	xfree(&s->auth_tag);
	s->state = s->user != NULL ? IMAP_AUTHENTICATED : IMAP_NOT_AUTHENTICATED;
	if (s->closing)
		return;
	if (s->auth_failures >= s->cfg->auth_max_failures) {
		imap_close(s, "Too many authentication failures");
		return;
	}
	if (s->stopping) {
		imap_close(s, "Server shutting down");
		return;
	}
	net_conn_resume(s->conn);
}

static void
imap_auth_wait(struct imap_session *s, const char *tag)
{
	s->auth_tag = xstrdup(tag);
	s->state = IMAP_WAITING;
	net_conn_pause(s->conn);
}

static void
cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *user = cmd->args, *pass;

	if (cmd->nargs != 2 || !imap_arg_is_astring(user) ||
	    !imap_arg_is_astring(pass = user->next)) {
		imap_bad(s, cmd->tag, "Syntax: LOGIN user password");
		return;
	}
	s->auth = auth_login(s->ctx->auth, net_conn_loop(s->conn), user->str, pass->str,
	    net_conn_peer_ip(s->conn), net_conn_id(s->conn), imap_auth_done, s);
	imap_auth_wait(s, cmd->tag);
}

static void
cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *mech = cmd->args, *initial = NULL;

	if (cmd->nargs == 2)
		initial = mech->next;
	if (cmd->nargs < 1 || cmd->nargs > 2 || mech->type != IMAP_ARG_ATOM ||
	    (initial != NULL && initial->type != IMAP_ARG_ATOM)) {
		imap_bad(s, cmd->tag, "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!auth_mechanism_supported(mech->str)) {
		imap_reply(s, cmd->tag, "NO Unsupported authentication mechanism");
		return;
	}
	s->auth = auth_sasl_start(s->ctx->auth, net_conn_loop(s->conn), mech->str,
	    initial != NULL ? initial->str : NULL, net_conn_peer_ip(s->conn),
	    net_conn_id(s->conn), imap_auth_done, s);
	if (s->auth == NULL) {
		imap_reply(s, cmd->tag, "NO Unsupported authentication mechanism");
		return;
	}
	imap_auth_wait(s, cmd->tag);
}

static const struct imap_verb imap_verbs[] = {
	{ "CAPABILITY", cmd_capability, IMAP_IN_ANY },
	{ "NOOP", cmd_noop, IMAP_IN_ANY },
	{ "LOGOUT", cmd_logout, IMAP_IN_ANY },
	{ "ID", cmd_id, IMAP_IN_ANY },
	{ "STARTTLS", cmd_starttls, IMAP_IN_NOT_AUTH },
	{ "LOGIN", cmd_login, IMAP_IN_NOT_AUTH | IMAP_NEEDS_TLS },
	{ "AUTHENTICATE", cmd_authenticate, IMAP_IN_NOT_AUTH | IMAP_NEEDS_TLS },
	/* Authenticated state (RFC 3501, and RFC 9051's base). The mail store
	 * is not part of this build yet. */
	{ "SELECT", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "EXAMINE", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "CREATE", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "DELETE", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "RENAME", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "SUBSCRIBE", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "UNSUBSCRIBE", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "LIST", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "LSUB", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "STATUS", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "APPEND", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "NAMESPACE", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "ENABLE", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "IDLE", NULL, IMAP_IN_AUTH | IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	/* Selected state. */
	{ "CHECK", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "CLOSE", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "UNSELECT", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "EXPUNGE", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "SEARCH", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "FETCH", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "STORE", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "COPY", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "MOVE", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
	{ "UID", NULL, IMAP_IN_SELECTED | IMAP_NEEDS_STORE },
};

/*
 * Validating apart from acting: finds the command and checks that it may
 * run now. Replies and returns NULL when it may not. This runs before a
 * synchronizing literal is accepted too, so that the client does not send
 * a literal (a password, say) for a command we refuse anyway.
 */
static const struct imap_verb *
imap_verb_check(struct imap_session *s, const char *tag, const char *name)
{
	const struct imap_verb *v = NULL;
	size_t i;

	for (i = 0; name != NULL && i < sizeof(imap_verbs) / sizeof(imap_verbs[0]); i++) {
		if (strcasecmp(name, imap_verbs[i].name) == 0) {
			v = &imap_verbs[i];
			break;
		}
	}
	if (v == NULL) {
		imap_bad(s, tag, "Unknown command");
		return NULL;
	}
	if ((v->flags & imap_state_mask(s)) == 0) {
		imap_bad(s, tag, "Command not valid in this state");
		return NULL;
	}
	if ((v->flags & IMAP_NEEDS_TLS) && !net_conn_is_tls(s->conn)) {
		imap_reply(s, tag, "NO [PRIVACYREQUIRED] Plaintext authentication disallowed, "
		    "use STARTTLS");
		return NULL;
	}
	if (v->flags & IMAP_NEEDS_STORE) {
		imap_reply(s, tag, IMAP_UNAVAILABLE);
		return NULL;
	}
	return v;
}

static void
imap_parsed(struct imap_session *s, enum imap_parse_result r)
{
	const struct imap_command *cmd;
	const struct imap_verb *v;
	const char *error;
	int fatal;

	switch (r) {
	case IMAP_PARSE_MORE:
		break;
	case IMAP_PARSE_LITERAL:
		/* A command we refuse is refused before the client sends the
		 * literal: it waits for our go-ahead, so nothing follows. */
		if (imap_verb_check(s, imap_parser_tag(s->parser),
		    imap_parser_name(s->parser)) == NULL) {
			imap_parser_reset(s->parser, NULL);
			break;
		}
		net_conn_puts(s->conn, "+ Ready for literal\r\n");
		break;
	case IMAP_PARSE_ERROR:
		error = imap_parser_error(s->parser, &fatal);
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
		cmd = imap_parser_command(s->parser);
		if ((v = imap_verb_check(s, cmd->tag, cmd->name)) != NULL)
			v->handler(s, cmd);
		break;
	}
}

/* Reads and parses what there is of the next command: its lines, and the
 * bytes of its literals. Returns 0 when more input is needed. */
static int
imap_read_command(struct imap_session *s)
{
	enum imap_parse_result r;
	size_t left = imap_parser_literal_left(s->parser), used, len;
	char *line;
	int n;

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

/* Reads the client's answer to an AUTHENTICATE challenge. */
static int
imap_read_sasl(struct imap_session *s)
{
	char *line;
	size_t len;
	int n;

	n = net_conn_read_line(s->conn, IMAP_AUTH_LINE_MAX, &line, &len);
	if (n == 0)
		return 0;
	if (n < 0 || strlen(line) != len) {
		auth_request_free(&s->auth);
		s->state = IMAP_NOT_AUTHENTICATED;
		imap_bad(s, s->auth_tag, n < 0 ? "Authentication line too long" :
		    "Malformed authentication data");
		xfree(&s->auth_tag);
		return 1;
	}
	s->state = IMAP_WAITING;
	net_conn_pause(s->conn);
	auth_sasl_continue(s->auth, line);
	return 1;
}

static void
imap_process(struct imap_session *s)
{
	while (!s->closing && !s->tls_starting) {
		if (s->state == IMAP_WAITING)
			return;
		if (s->state == IMAP_SASL) {
			if (!imap_read_sasl(s))
				return;
		} else if (!imap_read_command(s)) {
			return;
		}
	}
}

static void *
imap_open(struct net_conn *conn)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct buf caps = BUF_INIT;

	s->conn = conn;
	s->ctx = net_conn_app(conn);
	s->cfg = net_conn_config(conn);
	s->state = IMAP_NOT_AUTHENTICATED;
	s->parser = imap_parser_new(&imap_limits_prelogin);
	net_conn_set_timeout(conn, s->cfg->timeout_imap_ms);
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
		s->state = IMAP_NOT_AUTHENTICATED;
		imap_parser_reset(s->parser, &imap_limits_prelogin);
		break;
	case NET_EV_TIMEOUT:
		if (!s->closing)
			imap_close(s, "Autologout; idle for too long");
		break;
	case NET_EV_SHUTDOWN:
		s->stopping = 1;
		if (s->state != IMAP_WAITING && !s->closing)
			imap_close(s, "Server shutting down");
		break;
	case NET_EV_DRAINED:
		break;
	}
}

static void
imap_session_close(void *arg)
{
	struct imap_session *s = arg;

	auth_request_free(&s->auth);
	imap_parser_free(&s->parser);
	free(s->auth_tag);
	free(s->user);
	free(s);
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
