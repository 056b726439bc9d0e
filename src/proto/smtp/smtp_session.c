/*
 * The SMTP session: greeting, the command table and the commands that are
 * not part of a mail transaction (smtp_txn.c has those).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "proto/smtp/smtp_internal.h"

/* Command flags. */
enum {
	CMD_NEEDS_HELO = 1 << 0,  /* only after EHLO/HELO */
	CMD_SYNC = 1 << 1,        /* must end a pipelined group (RFC 2920 3.1) */
};

struct smtp_command {
	const char *name;
	void (*handler)(struct smtp_session *s, char *args);
	unsigned flags;
};

static void smtp_process(struct smtp_session *s);

const char *
smtp_host(struct smtp_session *s)
{
	return s->cfg->hostname;
}

int
smtp_is_submission(struct smtp_session *s)
{
	enum config_service svc = net_conn_service(s->conn);

	return svc == SERVICE_SUBMISSION || svc == SERVICE_SUBMISSIONS;
}

void
smtp_reply(struct smtp_session *s, const char *line)
{
	net_conn_puts(s->conn, line);
	net_conn_puts(s->conn, "\r\n");
}

void
smtp_close_conn(struct smtp_session *s)
{
	s->closed = 1;
	net_conn_close(s->conn);
}

int
smtp_error_count(struct smtp_session *s)
{
	if (s->closed)
		return 1;
	if (++s->errors < s->cfg->smtp_hard_error_limit)
		return 0;
	log_info(net_conn_id(s->conn), "event=too-many-errors ip=%s errors=%d",
	    net_conn_peer_ip(s->conn), s->errors);
	net_conn_printf(s->conn, "421 4.7.0 %s Too many errors, closing connection\r\n",
	    smtp_host(s));
	smtp_close_conn(s);
	return 1;
}

void
smtp_error(struct smtp_session *s, const char *line)
{
	smtp_reply(s, line);
	smtp_error_count(s);
}

/* --- the error delay ----------------------------------------------------- */

static void
smtp_delay_over(void *arg)
{
	struct smtp_session *s = arg;

	s->delaying = 0;
	s->delay_done = 1;
	if (!s->closed)
		net_conn_resume(s->conn);
}

/* 1 when the next command must wait: the session is paused and resumes
 * when the delay is over (Postfix's smtpd_soft_error_limit). */
static int
smtp_delay(struct smtp_session *s)
{
	if (s->delay_done || s->errors < s->cfg->smtp_soft_error_limit ||
	    s->cfg->smtp_error_delay_ms == 0)
		return 0;
	if (evbuffer_get_length(net_conn_input(s->conn)) == 0)
		return 1;    /* nothing to answer yet */
	if (s->delay_timer == NULL)
		s->delay_timer = net_timer_new(net_conn_loop(s->conn), smtp_delay_over, s);
	s->delaying = 1;
	net_conn_pause(s->conn);
	net_timer_start(s->delay_timer, s->cfg->smtp_error_delay_ms);
	return 1;
}

/* --- jobs on the worker pool ------------------------------------------- */

struct smtp_job *
smtp_job_new(struct smtp_session *s)
{
	struct smtp_job *job = xcalloc(1, sizeof(*job));

	job->s = s;
	job->txn = s->txn;
	job->svc.dir = s->ctx->dir;
	job->svc.store = s->ctx->store;
	job->svc.queue = s->ctx->queue;
	job->svc.srs = s->ctx->srs;
	job->svc.hostname = s->cfg->hostname;
	job->svc.cache = s->ctx->rcpt_cache;
	return job;
}

static void
job_work(void *arg)
{
	struct smtp_job *job = arg;

	job->work(job);
}

void
smtp_job_free(struct smtp_job *job)
{
	delivery_rcpt_clear(&job->rcpt);
	free(job->address);
	free(job);
}

static void
job_done(void *arg)
{
	struct smtp_job *job = arg;
	struct smtp_session *s = job->s;

	if (s == NULL) {
		/* The client left meanwhile: the transaction is ours to free. */
		smtp_txn_free(&job->txn, NULL);
		smtp_job_free(job);
		return;
	}
	s->job = NULL;
	job->done(s, job);
	smtp_job_free(job);
	if (s->closed || s->job != NULL)
		return;
	if (s->stopping && s->state != SMTP_DATA && s->state != SMTP_BDAT) {
		net_conn_printf(s->conn, "421 4.3.2 %s Service shutting down\r\n", smtp_host(s));
		smtp_close_conn(s);
		return;
	}
	net_conn_resume(s->conn);
}

void
smtp_job_start(struct smtp_session *s, struct smtp_job *job, smtp_job_fn *work,
    smtp_job_done_fn *done)
{
	job->work = work;
	job->done = done;
	s->job = job;
	net_conn_pause(s->conn);
	net_loop_submit(net_conn_loop(s->conn), job_work, job_done, job);
}

/* --- commands ---------------------------------------------------------- */

/* A hostname or address literal as EHLO/HELO give it: printable ASCII, no
 * spaces. What it says is not checked (it goes into Received: as said). */
static int
helo_valid(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if (*s <= ' ' || *s >= 0x7f || *s == '(' || *s == ')')
			return 0;
	return n > 0 && n <= SMTP_DOMAIN_MAX;
}

static void
cmd_ehlo(struct smtp_session *s, char *args)
{
	int tls = net_conn_is_tls(s->conn);

	if (!helo_valid(args)) {
		smtp_error(s, "501 5.5.4 Syntax: EHLO hostname");
		return;
	}
	smtp_txn_reset(s);
	free(s->helo);
	s->helo = xstrdup(args);
	s->esmtp = 1;
	s->state = SMTP_READY;
	net_conn_printf(s->conn, "250-%s Hello %s\r\n", smtp_host(s), s->helo);
	net_conn_puts(s->conn, "250-PIPELINING\r\n");
	net_conn_printf(s->conn, "250-SIZE %llu\r\n",
	    (unsigned long long)s->cfg->smtp_max_message_size);
	net_conn_puts(s->conn, "250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n"
	    "250-BINARYMIME\r\n250-DSN\r\n");
	if (!tls)
		net_conn_puts(s->conn, "250-STARTTLS\r\n");
	if (tls && smtp_is_submission(s) && s->user == NULL)
		net_conn_printf(s->conn, "250-AUTH %s\r\n", auth_mechanisms());
	if (tls)
		net_conn_puts(s->conn, "250-REQUIRETLS\r\n");
	net_conn_puts(s->conn, "250 ENHANCEDSTATUSCODES\r\n");
}

static void
cmd_helo(struct smtp_session *s, char *args)
{
	if (!helo_valid(args)) {
		smtp_error(s, "501 5.5.4 Syntax: HELO hostname");
		return;
	}
	smtp_txn_reset(s);
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
	smtp_txn_reset(s);
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
		s->account_id = auth_request_account_id(s->auth);
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
		smtp_close_conn(s);
		return;
	}
	if (s->stopping) {
		net_conn_printf(s->conn, "421 4.3.2 %s Service shutting down\r\n", smtp_host(s));
		smtp_close_conn(s);
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
	if (s->txn != NULL) {
		smtp_error(s, "503 5.5.1 AUTH not allowed during a mail transaction");
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
	smtp_txn_reset(s);
	smtp_reply(s, "250 2.0.0 OK");
}

static void
cmd_quit(struct smtp_session *s, char *args)
{
	net_conn_printf(s->conn, "221 2.0.0 %s Bye\r\n", smtp_host(s));
	smtp_close_conn(s);
}

static void
cmd_help(struct smtp_session *s, char *args)
{
	smtp_reply(s, "214 2.0.0 See RFC 5321; commands: EHLO HELO STARTTLS AUTH MAIL RCPT "
	    "DATA BDAT RSET NOOP VRFY QUIT");
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

static const struct smtp_command smtp_commands[] = {
	{ "EHLO", cmd_ehlo, CMD_SYNC },
	{ "HELO", cmd_helo, CMD_SYNC },
	{ "STARTTLS", cmd_starttls, 0 },
	{ "AUTH", cmd_auth, CMD_NEEDS_HELO },
	{ "NOOP", cmd_noop, 0 },
	{ "RSET", cmd_rset, 0 },
	{ "QUIT", cmd_quit, 0 },
	{ "HELP", cmd_help, 0 },
	{ "VRFY", cmd_vrfy, 0 },
	{ "EXPN", cmd_expn, 0 },
	{ "MAIL", smtp_cmd_mail, CMD_NEEDS_HELO },
	{ "RCPT", smtp_cmd_rcpt, CMD_NEEDS_HELO },
	{ "DATA", smtp_cmd_data, CMD_NEEDS_HELO | CMD_SYNC },
	{ "BDAT", smtp_cmd_bdat, CMD_NEEDS_HELO },
};

/* The client sent more after a command that must end a pipelined group
 * (EHLO, HELO, DATA), or pipelined at all in a HELO session: it is not
 * speaking SMTP as agreed, or is trying to smuggle something. Before
 * EHLO/HELO a batch like "NOOP QUIT" is tolerated (tools send it). */
static int
smtp_out_of_sync(struct smtp_session *s, const struct smtp_command *cmd)
{
	if (evbuffer_get_length(net_conn_input(s->conn)) == 0)
		return 0;
	if (!(cmd->flags & CMD_SYNC) && (s->esmtp || s->state == SMTP_CONNECTED))
		return 0;
	log_info(net_conn_id(s->conn), "event=pipelining-violation ip=%s command=%s",
	    net_conn_peer_ip(s->conn), cmd->name);
	net_conn_printf(s->conn, "554 5.5.0 %s SMTP protocol synchronization error "
	    "(commands sent before the reply)\r\n", smtp_host(s));
	smtp_close_conn(s);
	return 1;
}

static void
smtp_command(struct smtp_session *s, char *line, size_t len)
{
	const struct smtp_command *cmd = NULL;
	char *args;
	size_t i, n;

	n = strcspn(line, " ");
	if (strlen(line) != len) {
		/* In the verb: not a command. After it: bad arguments, and the
		 * address is where a NUL would do harm. */
		if (line[n] != ' ')
			smtp_error(s, "500 5.5.2 NUL byte in command");
		else if ((n == 4 && strncasecmp(line, "MAIL", 4) == 0) ||
		    (n == 4 && strncasecmp(line, "RCPT", 4) == 0))
			smtp_error(s, "501 5.5.2 NUL byte in address");
		else
			smtp_error(s, "501 5.5.2 NUL byte in arguments");
		return;
	}
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
	if (cmd->handler != cmd_quit && smtp_out_of_sync(s, cmd))
		return;
	/* Trailing spaces are not part of the arguments. */
	n = strlen(args);
	while (n > 0 && args[n - 1] == ' ')
		args[--n] = '\0';
	if ((cmd->flags & CMD_NEEDS_HELO) && s->state == SMTP_CONNECTED) {
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

	while (!s->closed) {
		size_t max;

		if (s->state == SMTP_WAITING || s->state == SMTP_PREGREET || s->job != NULL ||
		    s->delaying)
			return;
		if (s->state == SMTP_DATA || s->state == SMTP_BDAT) {
			if (!smtp_message_read(s))
				return;
			continue;
		}
		if (smtp_delay(s))
			return;
		max = s->state == SMTP_AUTH ? SMTP_AUTH_LINE_MAX :
		    (size_t)s->cfg->smtp_max_line_length;
		r = net_conn_read_line(s->conn, max, &line, &len);
		if (r == 0)
			return;
		s->delay_done = 0;
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

/* --- the connection ---------------------------------------------------- */

static void
smtp_greet(struct smtp_session *s)
{
	s->state = SMTP_CONNECTED;
	net_conn_printf(s->conn, "220 %s ESMTP Petrel\r\n", smtp_host(s));
}

static void
smtp_pregreet_over(void *arg)
{
	struct smtp_session *s = arg;

	if (s->state != SMTP_PREGREET || s->closed)
		return;
	smtp_pregreet_pass(net_conn_peer_ip(s->conn));
	smtp_greet(s);
	net_conn_resume(s->conn);
}

static void *
smtp_open(struct net_conn *conn)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->conn = conn;
	s->ctx = net_conn_app(conn);
	s->cfg = net_conn_config(conn);
	net_conn_set_timeout(conn, s->cfg->timeout_smtp_ms);
	if (net_conn_service(conn) == SERVICE_MX && s->cfg->smtp_pregreet_delay_ms > 0 &&
	    !smtp_pregreet_passed(net_conn_peer_ip(conn))) {
		/* Input is looked at (and refused) when it comes, not read. */
		s->state = SMTP_PREGREET;
		s->timer = net_timer_new(net_conn_loop(conn), smtp_pregreet_over, s);
		net_timer_start(s->timer, s->cfg->smtp_pregreet_delay_ms);
		return s;
	}
	smtp_greet(s);
	return s;
}

static void
smtp_event(void *arg, enum net_event ev)
{
	struct smtp_session *s = arg;

	switch (ev) {
	case NET_EV_INPUT:
		if (s->state == SMTP_PREGREET) {
			log_info(net_conn_id(s->conn), "event=pregreet ip=%s",
			    net_conn_peer_ip(s->conn));
			net_conn_printf(s->conn, "554 5.5.0 %s SMTP protocol error: client "
			    "talked before the greeting\r\n", smtp_host(s));
			smtp_close_conn(s);
			return;
		}
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
		smtp_close_conn(s);
		break;
	case NET_EV_SHUTDOWN:
		s->stopping = 1;
		if (s->state != SMTP_WAITING && s->job == NULL) {
			net_conn_printf(s->conn, "421 4.3.2 %s Service shutting down\r\n",
			    smtp_host(s));
			smtp_close_conn(s);
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

	if (s->job != NULL) {
		/* The job finishes on its own and frees the transaction. */
		s->job->s = NULL;
		s->txn = NULL;
	}
	smtp_txn_free(&s->txn, NULL);
	net_timer_free(&s->timer);
	net_timer_free(&s->delay_timer);
	net_timer_free(&s->rate_timer);
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
