#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/conn.h"
#include "proto/proto.h"
#include "proto/smtp/smtp.h"

enum smtp_state {
	SMTP_CONNECTED,   /* greeting sent, no EHLO yet */
	SMTP_READY,       /* EHLO/HELO done */
	SMTP_AUTH,        /* SASL exchange: reading response lines */
	SMTP_WAITING,     /* the auth service is working */
};

struct smtp_session {
	struct net_conn *conn;
	struct proto_context *ctx;
	const struct config *cfg;
	enum smtp_state state;
	char *helo;
	char *user;                      /* after AUTH */
	struct auth_request *auth;
	int auth_failures;
	int errors;
	unsigned esmtp : 1;
	unsigned stopping : 1;           /* server shutdown: close when idle */
};

struct smtp_command {
	const char *name;
	void (*handler)(struct smtp_session *s, char *args);
	int needs_helo;
};

static void smtp_process(struct smtp_session *s);

static const char *
smtp_host(struct smtp_session *s)
{
	return s->cfg->hostname;
}

static int
smtp_is_submission(struct smtp_session *s)
{
	enum config_service svc = net_conn_service(s->conn);

	return svc == SERVICE_SUBMISSION || svc == SERVICE_SUBMISSIONS;
}

static void
smtp_reply(struct smtp_session *s, const char *line)
{
	net_conn_puts(s->conn, line);
	net_conn_puts(s->conn, "\r\n");
}

static void
smtp_error(struct smtp_session *s, const char *line)
{
	smtp_reply(s, line);
	if (++s->errors >= SMTP_ERRORS_MAX) {
		net_conn_printf(s->conn, "421 4.7.0 %s Too many errors, closing connection\r\n",
		    smtp_host(s));
		net_conn_close(s->conn);
	}
}

static void
cmd_ehlo(struct smtp_session *s, char *args)
{
	int tls = net_conn_is_tls(s->conn);

	if (*args == '\0' || strchr(args, ' ') != NULL) {
		smtp_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	free(s->helo);
	s->helo = xstrdup(args);
	s->esmtp = 1;
	s->state = SMTP_READY;
	net_conn_printf(s->conn, "250-%s Hello %s\r\n", smtp_host(s), s->helo);
	if (!tls)
		net_conn_puts(s->conn, "250-STARTTLS\r\n");
	if (tls && smtp_is_submission(s) && s->user == NULL)
		net_conn_printf(s->conn, "250-AUTH %s\r\n", auth_mechanisms());
	net_conn_puts(s->conn, "250 ENHANCEDSTATUSCODES\r\n");
}

static void
cmd_helo(struct smtp_session *s, char *args)
{
	if (*args == '\0' || strchr(args, ' ') != NULL) {
		smtp_error(s, "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	free(s->helo);
	s->helo = xstrdup(args);
	s->esmtp = 0;
	s->state = SMTP_READY;
	net_conn_printf(s->conn, "250 %s\r\n", smtp_host(s));
}

static void
cmd_starttls(struct smtp_session *s, char *args)
{
	if (*args != '\0') {
		smtp_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (net_conn_is_tls(s->conn)) {
		smtp_error(s, "503 5.5.1 TLS already active");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* Whatever the client pipelined after STARTTLS is discarded. */
	net_conn_starttls(s->conn);
}

static void
smtp_auth_done(void *arg, enum auth_status status, const char *challenge)
{
	struct smtp_session *s = arg;

	switch (status) {
	case AUTH_CONTINUE:
		net_conn_printf(s->conn, "334 %s\r\n", challenge);
		s->state = SMTP_AUTH;
		net_conn_resume(s->conn);
		return;
	case AUTH_OK:
		s->user = xstrdup(auth_request_user(s->auth));
		smtp_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_FAILED:
		s->auth_failures++;
		smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
		break;
	case AUTH_MALFORMED:
		smtp_reply(s, "501 5.5.2 Malformed authentication data");
		break;
	case AUTH_CANCELLED:
		smtp_reply(s, "501 5.0.0 Authentication cancelled");
		break;
	case AUTH_TEMPFAIL:
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	auth_request_free(&s->auth);
	s->state = SMTP_READY;
	if (s->auth_failures >= s->cfg->auth_max_failures) {
		net_conn_printf(s->conn, "421 4.7.0 %s Too many authentication failures\r\n",
		    smtp_host(s));
		net_conn_close(s->conn);
		return;
	}
	if (s->stopping) {
		net_conn_printf(s->conn, "421 4.3.2 %s Service shutting down\r\n", smtp_host(s));
		net_conn_close(s->conn);
		return;
	}
	net_conn_resume(s->conn);
}

static void
cmd_auth(struct smtp_session *s, char *args)
{
	char *mech = args, *initial;

	if (!smtp_is_submission(s)) {
		smtp_error(s, "503 5.5.1 AUTH is only available on the submission ports");
		return;
	}
	if (!net_conn_is_tls(s->conn)) {
		smtp_error(s, "538 5.7.11 Encryption required for requested authentication mechanism");
		return;
	}
	if (s->user != NULL) {
		smtp_error(s, "503 5.5.1 Already authenticated");
		return;
	}
	if (!s->esmtp) {
		smtp_error(s, "503 5.5.1 Send EHLO first");
		return;
	}
	if (*mech == '\0') {
		smtp_error(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
		return;
	}
	initial = strchr(mech, ' ');
	if (initial != NULL) {
		*initial++ = '\0';
		if (*initial == '\0' || strchr(initial, ' ') != NULL) {
			smtp_error(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
			return;
		}
	}
	if (!auth_mechanism_supported(mech)) {
		smtp_error(s, "504 5.5.4 Unrecognized authentication mechanism");
		return;
	}
	s->auth = auth_sasl_start(s->ctx->auth, net_conn_loop(s->conn), mech, initial,
	    net_conn_peer_ip(s->conn), net_conn_id(s->conn), smtp_auth_done, s);
	s->state = SMTP_WAITING;
	net_conn_pause(s->conn);
}

static void
cmd_noop(struct smtp_session *s, char *args)
{
	smtp_reply(s, "250 2.0.0 OK");
}

static void
cmd_rset(struct smtp_session *s, char *args)
{
	if (*args != '\0') {
		smtp_error(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	smtp_reply(s, "250 2.0.0 OK");
}

static void
cmd_quit(struct smtp_session *s, char *args)
{
	net_conn_printf(s->conn, "221 2.0.0 %s Bye\r\n", smtp_host(s));
	net_conn_close(s->conn);
}

static void
cmd_help(struct smtp_session *s, char *args)
{
	smtp_reply(s, "214 2.0.0 See RFC 5321; commands: EHLO HELO STARTTLS AUTH RSET NOOP "
	    "VRFY QUIT");
}

static void
cmd_vrfy(struct smtp_session *s, char *args)
{
	smtp_reply(s, "252 2.5.0 Cannot verify the user, but will accept mail for hosted "
	    "addresses");
}

static void
cmd_expn(struct smtp_session *s, char *args)
{
	smtp_error(s, "502 5.5.1 EXPN is disabled");
}

static void
cmd_transaction(struct smtp_session *s, char *args)
{
	/* The mail store and delivery service are not part of this build yet. */
	smtp_error(s, "502 5.5.1 Mail transactions are not available on this server yet");
}

static const struct smtp_command smtp_commands[] = {
	{ "EHLO", cmd_ehlo, 0 },
	{ "HELO", cmd_helo, 0 },
	{ "STARTTLS", cmd_starttls, 0 },
	{ "AUTH", cmd_auth, 1 },
	{ "NOOP", cmd_noop, 0 },
	{ "RSET", cmd_rset, 0 },
	{ "QUIT", cmd_quit, 0 },
	{ "HELP", cmd_help, 0 },
	{ "VRFY", cmd_vrfy, 0 },
	{ "EXPN", cmd_expn, 0 },
	{ "MAIL", cmd_transaction, 1 },
	{ "RCPT", cmd_transaction, 1 },
	{ "DATA", cmd_transaction, 1 },
	{ "BDAT", cmd_transaction, 1 },
};

static void
smtp_command(struct smtp_session *s, char *line, size_t len)
{
	const struct smtp_command *cmd = NULL;
	char *args;
	size_t i, n;

	if (strlen(line) != len) {
		smtp_error(s, "500 5.5.2 NUL byte in command");
		return;
	}
	n = strcspn(line, " ");
	args = line + n;
	while (*args == ' ')
		args++;
	for (i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++) {
		if (strlen(smtp_commands[i].name) == n &&
		    strncasecmp(line, smtp_commands[i].name, n) == 0) {
			cmd = &smtp_commands[i];
			break;
		}
	}
	if (cmd == NULL) {
		smtp_error(s, "500 5.5.2 Syntax error, command unrecognized");
		return;
	}
	/* Trailing spaces are not part of the arguments. */
	n = strlen(args);
	while (n > 0 && args[n - 1] == ' ')
		args[--n] = '\0';
	if (cmd->needs_helo && s->state == SMTP_CONNECTED) {
		smtp_error(s, "503 5.5.1 Send EHLO first");
		return;
	}
	cmd->handler(s, args);
}

static void
smtp_process(struct smtp_session *s)
{
	char *line;
	size_t len;
	int r;

	while (s->state != SMTP_WAITING) {
		size_t max = s->state == SMTP_AUTH ? SMTP_AUTH_LINE_MAX : SMTP_LINE_MAX;

		r = net_conn_read_line(s->conn, max, &line, &len);
		if (r == 0)
			return;
		if (r < 0) {
			if (s->state == SMTP_AUTH) {
				auth_request_free(&s->auth);
				s->state = SMTP_READY;
				smtp_error(s, "500 5.5.6 Authentication exchange line is too long");
			} else {
				smtp_error(s, "500 5.5.2 Line too long");
			}
			continue;
		}
		if (s->state == SMTP_AUTH) {
			s->state = SMTP_WAITING;
			net_conn_pause(s->conn);
			auth_sasl_continue(s->auth, line);
			return;
		}
		smtp_command(s, line, len);
	}
}

static void *
smtp_open(struct net_conn *conn)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->conn = conn;
	s->ctx = net_conn_app(conn);
	s->cfg = net_conn_config(conn);
	s->state = SMTP_CONNECTED;
	net_conn_set_timeout(conn, s->cfg->timeout_smtp_ms);
	net_conn_printf(conn, "220 %s ESMTP Petrel\r\n", smtp_host(s));
	return s;
}

static void
smtp_event(void *arg, enum net_event ev)
{
	struct smtp_session *s = arg;

	switch (ev) {
	case NET_EV_INPUT:
		smtp_process(s);
		break;
	case NET_EV_TLS_READY:
		/* RFC 3207: forget everything learnt before TLS. */
		free(s->helo);
		s->helo = NULL;
		s->esmtp = 0;
		s->state = SMTP_CONNECTED;
		break;
	case NET_EV_TIMEOUT:
		net_conn_printf(s->conn, "421 4.4.2 %s Timeout exceeded, closing connection\r\n",
		    smtp_host(s));
		net_conn_close(s->conn);
		break;
	case NET_EV_SHUTDOWN:
		s->stopping = 1;
		if (s->state != SMTP_WAITING) {
			net_conn_printf(s->conn, "421 4.3.2 %s Service shutting down\r\n",
			    smtp_host(s));
			net_conn_close(s->conn);
		}
		break;
	case NET_EV_DRAINED:
		break;
	}
}

static void
smtp_close(void *arg)
{
	struct smtp_session *s = arg;

	auth_request_free(&s->auth);
	free(s->helo);
	free(s->user);
	free(s);
}

static void
smtp_busy(struct net_conn *conn)
{
	const struct config *cfg = net_conn_config(conn);

	net_conn_printf(conn, "421 4.7.0 %s Too many connections, try again later\r\n",
	    cfg->hostname);
}

static const char *const smtp_alpn[] = { "smtp", NULL };

const struct net_proto proto_smtp = {
	.name = "smtp",
	.alpn = smtp_alpn,
	.open = smtp_open,
	.event = smtp_event,
	.close = smtp_close,
	.busy = smtp_busy,
};
