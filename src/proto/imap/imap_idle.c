/*
 * IDLE (RFC 2177, RFC 9051 6.3.13): the client waits; changes to the
 * selected mailbox are pushed as they are committed, EXPUNGE included,
 * until the client sends DONE. Meanwhile "* OK Still here" goes out every
 * few minutes (imap.h) so that NATs keep the connection open.
 */
#include <string.h>
#include <strings.h>

#include "proto/imap/imap_private.h"

/* The session waits: its account's index need not stay open for it (the
 * store keeps a few open; notifications need none), nor its parser. */
static void
imap_idle_rest(struct imap_session *s)
{
	if (s->input != IMAP_INPUT_IDLE)
		return;
	if (s->acct != NULL)
		store_account_rest(s->acct);
	imap_session_rest(s);
}

void
imap_cmd_idle(struct imap_session *s, const struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_finish_bad(s, "Syntax: IDLE");
		return;
	}
	net_conn_puts(s->conn, "+ idling\r\n");
	s->input = IMAP_INPUT_IDLE;
	imap_keepalive_start(s);
	imap_idle_rest(s);
	net_conn_resume(s->conn);
	/* Whatever happened since the last command goes out now. */
	if (s->view != NULL && (s->view->dirty || s->view->npending > 0 ||
	    s->view->dirty_exists))
		imap_idle_changed(s);
}

static void
imap_idle_synced(struct imap_session *s)
{
	/* Input stays IDLE: the job's end resumes reading for DONE. */
	imap_idle_rest(s);
}

void
imap_idle_changed(struct imap_session *s)
{
	imap_view_sync(s, 0, 1, imap_idle_synced);
}

int
imap_idle_read(struct imap_session *s)
{
	char *line;
	size_t len;
	int n;

	n = net_conn_read_line(s->conn, 64, &line, &len);
	if (n == 0)
		return 0;
	imap_keepalive_stop(s);
	if (n > 0 && strcasecmp(line, "DONE") == 0)
		imap_finish(s, "OK IDLE terminated");
	else
		imap_finish_bad(s, "Expected DONE");
	return 1;
}
