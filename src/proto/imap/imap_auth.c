/*
 * STARTTLS, LOGIN and AUTHENTICATE (SASL-IR of RFC 4959), and opening the
 * account's mail store once the client is known.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "directory/directory.h"
#include "proto/imap/imap_private.h"

void
imap_cmd_starttls(struct imap_session *s, const struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_finish_bad(s, "Syntax: STARTTLS");
		return;
	}
	if (net_conn_is_tls(s->conn)) {
		imap_finish_bad(s, "TLS is already active");
		return;
	}
	imap_finish(s, "OK Begin TLS negotiation now");
	/* Whatever the client pipelined after STARTTLS is discarded. */
	s->tls_starting = 1;
	imap_session_tls_reset(s);
	net_conn_starttls(s->conn);
}

struct imap_account_open {
	struct proto_context *ctx;
	int64_t account_id;
	struct store_quota quota;
	struct store_account *acct;
	struct imap_result res;
};

static void
imap_account_open_work(void *arg)
{
	struct imap_account_open *job = arg;
	struct directory_account a;
	struct store_account *acct;
	const char *error;
	int r;

	memset(&a, 0, sizeof(a));
	r = directory_account_get_by_id(job->ctx->dir, job->account_id, &a, &error);
	if (r < 0) {
		imap_result_fail(&job->res, error);
		return;
	}
	if (r > 0) {
		job->quota.bytes_limit = a.quota_bytes;
		job->quota.messages_limit = a.quota_messages;
		directory_account_clear(&a);
	}
	if (store_account_open(job->ctx->store, job->account_id, &job->quota, &acct,
	    &error) < 0) {
		imap_result_fail(&job->res, error);
		return;
	}
	/* The session holds the account: its index may close while the
	 * session waits (IDLE), and each store call opens it again. */
	job->acct = store_account_hold(acct);
	store_account_close(&acct);
}

static void
imap_logged_in_reply(struct imap_session *s)
{
	struct buf caps = BUF_INIT;

	imap_session_logged_in(s);
	imap_capability(s, &caps);
	imap_finish(s, "OK [CAPABILITY %s] Logged in", buf_cstr(&caps));
	buf_free(&caps);
}

static void
imap_account_open_done(struct imap_session *s, void *arg)
{
	struct imap_account_open *job = arg;

	if (s == NULL) {
		store_account_release(&job->acct);
		imap_result_clear(&job->res);
		free(job);
		return;
	}
	if (job->res.failed) {
		log_warn(net_conn_id(s->conn), "event=store-open-failed error=\"%s\"",
		    job->res.error);
		xfree(&s->user);
		imap_finish(s, "NO [UNAVAILABLE] Mailbox access is temporarily unavailable");
	} else {
		s->acct = job->acct;
		s->quota = job->quota;
		imap_logged_in_reply(s);
	}
	imap_result_clear(&job->res);
	free(job);
}

static void
imap_auth_done(void *arg, enum auth_status status, const char *challenge)
{
	struct imap_session *s = arg;

	switch (status) {
	case AUTH_CONTINUE:
		net_conn_printf(s->conn, "+ %s\r\n", challenge);
		s->input = IMAP_INPUT_SASL;
		net_conn_resume(s->conn);
		return;
	case AUTH_OK:
		s->user = xstrdup(auth_request_user(s->auth));
		s->account_id = auth_request_account_id(s->auth);
		auth_request_free(&s->auth);
		if (s->ctx->store != NULL) {
			struct imap_account_open *job = xcalloc(1, sizeof(*job));

			job->ctx = s->ctx;
			job->account_id = s->account_id;
			imap_submit(s, imap_account_open_work, imap_account_open_done, job);
			return;
		}
		imap_logged_in_reply(s);
		break;
	case AUTH_FAILED:
		s->auth_failures++;
		imap_finish(s, "NO [AUTHENTICATIONFAILED] Authentication failed");
		break;
	case AUTH_MALFORMED:
		imap_finish_bad(s, "Malformed authentication data");
		break;
	case AUTH_CANCELLED:
		imap_finish(s, "BAD Authentication cancelled");
		break;
	case AUTH_TEMPFAIL:
		imap_finish(s, "NO [UNAVAILABLE] Temporary authentication failure, try again later");
		break;
	}
	auth_request_free(&s->auth);
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
imap_auth_wait(struct imap_session *s)
{
	s->input = IMAP_INPUT_NONE;
	net_conn_pause(s->conn);
}

void
imap_cmd_login(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *user = cmd->args, *pass;

	if (cmd->nargs != 2 || !imap_arg_is_astring(user) ||
	    !imap_arg_is_astring(pass = user->next)) {
		imap_finish_bad(s, "Syntax: LOGIN user password");
		return;
	}
	s->auth = auth_login(s->ctx->auth, net_conn_loop(s->conn), user->str, pass->str,
	    net_conn_peer_ip(s->conn), net_conn_id(s->conn), imap_auth_done, s);
	imap_auth_wait(s);
}

void
imap_cmd_authenticate(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *mech = cmd->args, *initial = NULL;

	if (cmd->nargs == 2)
		initial = mech->next;
	if (cmd->nargs < 1 || cmd->nargs > 2 || mech->type != IMAP_ARG_ATOM ||
	    (initial != NULL && initial->type != IMAP_ARG_ATOM)) {
		imap_finish_bad(s, "Syntax: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!auth_mechanism_supported(mech->str)) {
		imap_finish(s, "NO Unsupported authentication mechanism");
		return;
	}
	s->auth = auth_sasl_start(s->ctx->auth, net_conn_loop(s->conn), mech->str,
	    initial != NULL ? initial->str : NULL, net_conn_peer_ip(s->conn),
	    net_conn_id(s->conn), imap_auth_done, s);
	if (s->auth == NULL) {
		imap_finish(s, "NO Unsupported authentication mechanism");
		return;
	}
	imap_auth_wait(s);
}

int
imap_auth_read(struct imap_session *s)
{
	char *line;
	size_t len;
	int n;

	n = net_conn_read_line(s->conn, IMAP_AUTH_LINE_MAX, &line, &len);
	if (n == 0)
		return 0;
	if (n < 0 || strlen(line) != len) {
		auth_request_free(&s->auth);
		imap_finish_bad(s, n < 0 ? "Authentication line too long" :
		    "Malformed authentication data");
		return 1;
	}
	imap_auth_wait(s);
	auth_sasl_continue(s->auth, line);
	return 1;
}
