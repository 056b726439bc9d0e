#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/conn.h"
#include "proto/pop3/pop3.h"
#include "proto/pop3/pop3_internal.h"
#include "proto/proto.h"

/* The states a command is valid in. */
#define POP3_IN_AUTHORIZATION 0x01
#define POP3_IN_TRANSACTION 0x02
#define POP3_IN_ANY (POP3_IN_AUTHORIZATION | POP3_IN_TRANSACTION)
/* Logins are only taken under TLS (RFC 2595 section 2.2). */
#define POP3_NEEDS_TLS 0x04

struct pop3_command {
	const char *name;
	/* NULL for commands pop3_command() always refuses. */
	void (*handler)(struct pop3_session *s, char *args);
	int flags;
};

void
pop3_reply(struct pop3_session *s, const char *line)
{
	net_conn_puts(s->conn, line);
	net_conn_puts(s->conn, "\r\n");
}

void
pop3_close(struct pop3_session *s, const char *line)
{
	if (line != NULL)
		pop3_reply(s, line);
	net_conn_close(s->conn);
	s->closing = 1;
}

void
pop3_error(struct pop3_session *s, const char *line)
{
	pop3_reply(s, line);
	if (++s->errors >= POP3_ERRORS_MAX)
		pop3_close(s, "-ERR Too many errors");
}

static int
pop3_state_mask(struct pop3_session *s)
{
	return s->state == POP3_TRANSACTION ? POP3_IN_TRANSACTION : POP3_IN_AUTHORIZATION;
}

static void
cmd_capa(struct pop3_session *s, char *args)
{
	int tls = net_conn_is_tls(s->conn);

	if (*args != '\0') {
		pop3_error(s, "-ERR Syntax: CAPA");
		return;
	}
	/* RFC 2449: what is announced before login is announced after it. */
	pop3_reply(s, "+OK Capability list follows");
	if (tls) {
		pop3_reply(s, "USER");
		net_conn_printf(s->conn, "SASL %s\r\n", auth_mechanisms());
	} else {
		pop3_reply(s, "STLS");
	}
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	/* We never delete mail on our own. */
	pop3_reply(s, "EXPIRE NEVER");
	pop3_reply(s, "IMPLEMENTATION Petrel");
	pop3_reply(s, ".");
}

static void
cmd_stls(struct pop3_session *s, char *args)
{
	if (*args != '\0') {
		pop3_error(s, "-ERR Syntax: STLS");
		return;
	}
	if (net_conn_is_tls(s->conn)) {
		pop3_error(s, "-ERR Command not permitted when TLS active");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	/* Whatever the client pipelined after STLS is discarded. */
	s->tls_starting = 1;
	net_conn_starttls(s->conn);
}

static void
pop3_auth_done(void *arg, enum auth_status status, const char *challenge)
{
	struct pop3_session *s = arg;

	switch (status) {
	case AUTH_CONTINUE:
		net_conn_printf(s->conn, "+ %s\r\n", challenge);
		s->state = POP3_SASL;
		net_conn_resume(s->conn);
		return;
	case AUTH_OK:
		s->user = xstrdup(auth_request_user(s->auth));
		s->account_id = auth_request_account_id(s->auth);
		auth_request_free(&s->auth);
		/* The reply comes once the maildrop is open. */
		pop3_transaction_begin(s);
		return;
	case AUTH_FAILED:
		s->auth_failures++;
		pop3_reply(s, "-ERR [AUTH] Authentication failed");
		break;
	case AUTH_MALFORMED:
		pop3_error(s, "-ERR Malformed authentication data");
		break;
	case AUTH_CANCELLED:
		pop3_reply(s, "-ERR Authentication cancelled");
		break;
	case AUTH_TEMPFAIL:
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure, try again later");
		break;
	}
	auth_request_free(&s->auth);
	s->state = POP3_AUTHORIZATION;
	pop3_authorization_next(s);
}

void
pop3_authorization_next(struct pop3_session *s)
{
	if (s->closing)
		return;
	if (s->auth_failures >= s->cfg->auth_max_failures) {
		pop3_close(s, "-ERR [AUTH] Too many authentication failures");
		return;
	}
	if (s->stopping) {
		pop3_close(s, "-ERR [SYS/TEMP] Server shutting down");
		return;
	}
	net_conn_resume(s->conn);
}

static void
pop3_auth_wait(struct pop3_session *s)
{
	s->state = POP3_WAITING;
	net_conn_pause(s->conn);
}

static void
cmd_user(struct pop3_session *s, char *args)
{
	size_t n;

	n = strlen(args);
	while (n > 0 && args[n - 1] == ' ')
		args[--n] = '\0';
	if (*args == '\0' || strchr(args, ' ') != NULL) {
		pop3_error(s, "-ERR Syntax: USER name");
		return;
	}
	s->user_name = xstrdup(args);
	pop3_reply(s, "+OK Send PASS");
}

static void
cmd_pass(struct pop3_session *s, char *args)
{
	char *name;

	if (s->user_name == NULL) {
		pop3_error(s, "-ERR Send USER first");
		return;
	}
	/* RFC 1939: the password is the rest of the line, spaces included. */
	if (*args == '\0') {
		pop3_error(s, "-ERR Syntax: PASS password");
		return;
	}
	name = s->user_name;
	s->user_name = NULL;
	s->auth = auth_login(s->ctx->auth, net_conn_loop(s->conn), name, args,
	    net_conn_peer_ip(s->conn), net_conn_id(s->conn), pop3_auth_done, s);
	free(name);
	pop3_auth_wait(s);
}

static void
cmd_auth(struct pop3_session *s, char *args)
{
	char *mech = args, *initial;
	const char *m;
	size_t n;

	if (*mech == '\0') {
		/* RFC 1734: AUTH alone lists the mechanisms, one a line. */
		pop3_reply(s, "+OK Supported mechanisms follow");
		for (m = auth_mechanisms(); *m != '\0'; m += n) {
			m += strspn(m, " ");
			if ((n = strcspn(m, " ")) > 0)
				net_conn_printf(s->conn, "%.*s\r\n", (int)n, m);
		}
		pop3_reply(s, ".");
		return;
	}
	initial = strchr(mech, ' ');
	if (initial != NULL) {
		*initial++ = '\0';
		if (*initial == '\0' || strchr(initial, ' ') != NULL) {
			pop3_error(s, "-ERR Syntax: AUTH mechanism [initial-response]");
			return;
		}
	}
	if (!auth_mechanism_supported(mech)) {
		pop3_reply(s, "-ERR Unrecognized authentication mechanism");
		return;
	}
	s->auth = auth_sasl_start(s->ctx->auth, net_conn_loop(s->conn), mech, initial,
	    net_conn_peer_ip(s->conn), net_conn_id(s->conn), pop3_auth_done, s);
	if (s->auth == NULL) {
		pop3_reply(s, "-ERR Unrecognized authentication mechanism");
		return;
	}
	pop3_auth_wait(s);
}

static void
cmd_noop(struct pop3_session *s, char *args)
{
	if (*args != '\0') {
		pop3_error(s, "-ERR Syntax: NOOP");
		return;
	}
	pop3_reply(s, "+OK");
}

static void
cmd_quit(struct pop3_session *s, char *args)
{
	if (*args != '\0') {
		pop3_error(s, "-ERR Syntax: QUIT");
		return;
	}
	if (s->state == POP3_TRANSACTION)
		pop3_cmd_update(s);
	else
		pop3_close(s, "+OK Bye");
}

void
pop3_command_done(struct pop3_session *s)
{
	s->busy = 0;
	if (s->closing)
		return;
	if (s->stopping) {
		pop3_close(s, "-ERR [SYS/TEMP] Server shutting down");
		return;
	}
	net_conn_resume(s->conn);
}

static const struct pop3_command pop3_commands[] = {
	{ "CAPA", cmd_capa, POP3_IN_ANY },
	{ "QUIT", cmd_quit, POP3_IN_ANY },
	{ "STLS", cmd_stls, POP3_IN_AUTHORIZATION },
	{ "USER", cmd_user, POP3_IN_AUTHORIZATION | POP3_NEEDS_TLS },
	{ "PASS", cmd_pass, POP3_IN_AUTHORIZATION | POP3_NEEDS_TLS },
	{ "AUTH", cmd_auth, POP3_IN_AUTHORIZATION | POP3_NEEDS_TLS },
	{ "NOOP", cmd_noop, POP3_IN_TRANSACTION },
	{ "STAT", pop3_cmd_stat, POP3_IN_TRANSACTION },
	{ "LIST", pop3_cmd_list, POP3_IN_TRANSACTION },
	{ "RETR", pop3_cmd_retr, POP3_IN_TRANSACTION },
	{ "DELE", pop3_cmd_dele, POP3_IN_TRANSACTION },
	{ "RSET", pop3_cmd_rset, POP3_IN_TRANSACTION },
	{ "TOP", pop3_cmd_top, POP3_IN_TRANSACTION },
	{ "UIDL", pop3_cmd_uidl, POP3_IN_TRANSACTION },
};

static void
pop3_command(struct pop3_session *s, char *line, size_t len)
{
	const struct pop3_command *cmd = NULL;
	char *args;
	size_t i, n;

	if (strlen(line) != len) {
		pop3_error(s, "-ERR NUL byte in command");
		return;
	}
	n = strcspn(line, " ");
	/* One space separates the keyword from its arguments; PASS keeps the
	 * rest of the line as it is. */
	args = line[n] == ' ' ? line + n + 1 : line + n;
	for (i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++) {
		if (strlen(pop3_commands[i].name) == n &&
		    strncasecmp(line, pop3_commands[i].name, n) == 0) {
			cmd = &pop3_commands[i];
			break;
		}
	}
	/* RFC 1939: PASS must follow USER directly. */
	if (cmd == NULL || cmd->handler != cmd_pass)
		xfree(&s->user_name);
	if (cmd == NULL) {
		pop3_error(s, "-ERR Unknown command");
		return;
	}
	if ((cmd->flags & pop3_state_mask(s)) == 0) {
		pop3_error(s, "-ERR Command not valid in this state");
		return;
	}
	if ((cmd->flags & POP3_NEEDS_TLS) && !net_conn_is_tls(s->conn)) {
		pop3_reply(s, "-ERR [AUTH] Plaintext authentication disallowed, use STLS");
		return;
	}
	if (cmd->handler != cmd_pass) {
		/* Trailing spaces are not part of the arguments. */
		n = strlen(args);
		while (n > 0 && args[n - 1] == ' ')
			args[--n] = '\0';
	}
	cmd->handler(s, args);
}

static void
pop3_process(struct pop3_session *s)
{
	char *line;
	size_t len;
	int r;

	while (s->state != POP3_WAITING && !s->busy && !s->closing && !s->tls_starting) {
		size_t max = s->state == POP3_SASL ? POP3_AUTH_LINE_MAX : POP3_LINE_MAX;

		r = net_conn_read_line(s->conn, max, &line, &len);
		if (r == 0)
			return;
		if (r < 0) {
			if (s->state == POP3_SASL) {
				auth_request_free(&s->auth);
				s->state = POP3_AUTHORIZATION;
				pop3_error(s, "-ERR Authentication exchange line is too long");
			} else {
				pop3_error(s, "-ERR Line too long");
			}
			continue;
		}
		if (s->state == POP3_SASL) {
			if (strlen(line) != len) {
				auth_request_free(&s->auth);
				s->state = POP3_AUTHORIZATION;
				pop3_error(s, "-ERR Malformed authentication data");
				continue;
			}
			s->state = POP3_WAITING;
			net_conn_pause(s->conn);
			auth_sasl_continue(s->auth, line);
			return;
		}
		pop3_command(s, line, len);
	}
}

static void *
pop3_open(struct net_conn *conn)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->conn = conn;
	s->ctx = net_conn_app(conn);
	s->cfg = net_conn_config(conn);
	s->state = POP3_AUTHORIZATION;
	net_conn_set_timeout(conn, s->cfg->timeout_pop3_ms);
	/* No APOP timestamp: APOP is not offered. */
	pop3_reply(s, "+OK Petrel POP3 ready");
	return s;
}

static void
pop3_event(void *arg, enum net_event ev)
{
	struct pop3_session *s = arg;

	switch (ev) {
	case NET_EV_INPUT:
		pop3_process(s);
		break;
	case NET_EV_TLS_READY:
		/* RFC 2595 section 4: back to a fresh AUTHORIZATION state. */
		s->tls_starting = 0;
		xfree(&s->user_name);
		s->state = POP3_AUTHORIZATION;
		break;
	case NET_EV_TIMEOUT:
		/* Nothing can be said in the middle of a message. */
		if (!s->closing)
			pop3_close(s, pop3_transaction_streaming(s) ? NULL :
			    "-ERR Autologout; idle for too long");
		break;
	case NET_EV_SHUTDOWN:
		/* A command under way finishes first (pop3_command_done). */
		s->stopping = 1;
		if (s->state != POP3_WAITING && !s->busy && !s->closing)
			pop3_close(s, "-ERR [SYS/TEMP] Server shutting down");
		break;
	case NET_EV_DRAINED:
		pop3_transaction_drained(s);
		break;
	}
}

static void
pop3_session_close(void *arg)
{
	struct pop3_session *s = arg;

	auth_request_free(&s->auth);
	pop3_transaction_end(s);
	free(s->user_name);
	free(s->user);
	free(s);
}

static void
pop3_busy(struct net_conn *conn)
{
	net_conn_puts(conn, "-ERR [SYS/TEMP] Too many connections, try again later\r\n");
}

static const char *const pop3_alpn[] = { "pop3", NULL };

const struct net_proto proto_pop3 = {
	.name = "pop3",
	.alpn = pop3_alpn,
	.open = pop3_open,
	.event = pop3_event,
	.close = pop3_session_close,
	.busy = pop3_busy,
};
