/*
 * Entering and leaving the selected state: SELECT and EXAMINE (with the
 * CONDSTORE parameter of RFC 7162), CLOSE, UNSELECT (RFC 3691), and
 * EXPUNGE / UID EXPUNGE (UIDPLUS, RFC 4315).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"

struct imap_select_job {
	struct store_account *acct;
	struct imap_notify *notify;
	char *name;
	struct store_watch *old_watch;  /* of the mailbox selected before */
	struct store_watch *watch;
	struct store_mailbox mbox;
	int found;
	struct store_message *msgs;
	size_t nmsgs;
	struct imap_result res;
	unsigned readonly : 1;
	unsigned condstore : 1;
};

static void
imap_select_work(void *arg)
{
	struct imap_select_job *j = arg;
	const char *error;
	int r;

	if (j->old_watch != NULL)
		store_watch_remove(&j->old_watch);
	if ((r = store_mailbox_get(j->acct, j->name, &j->mbox, &error)) <= 0) {
		if (r < 0)
			imap_result_fail(&j->res, error);
		return;
	}
	j->found = 1;
	/* Watch first, then read: a change after the listing is announced. */
	j->watch = store_watch_add(j->acct, j->mbox.id, imap_notify_fire, j->notify);
	if (store_message_list(j->acct, j->mbox.id, 0, UINT32_MAX, &j->msgs, &j->nmsgs,
	    &error) < 0) {
		imap_result_fail(&j->res, error);
		store_watch_remove(&j->watch);
	}
}

static void
imap_select_job_free(struct imap_select_job *j)
{
	if (j->watch != NULL)
		store_watch_remove(&j->watch);
	if (j->msgs != NULL)
		store_messages_free(&j->msgs, j->nmsgs);
	if (j->found)
		store_mailbox_clear(&j->mbox);
	imap_result_clear(&j->res);
	free(j->name);
	free(j);
}

static void
imap_select_done(struct imap_session *s, void *arg)
{
	struct imap_select_job *j = arg;
	struct imap_view *v;
	uint32_t i, unseen = 0;

	if (s == NULL) {
		imap_select_job_free(j);
		return;
	}
	if (j->res.failed || !j->found) {
		if (!j->found && !j->res.failed)
			imap_finish(s, "NO [NONEXISTENT] No such mailbox");
		else
			imap_finish_result(s, &j->res);
		imap_select_job_free(j);
		return;
	}
	v = imap_view_new(&j->mbox, j->readonly);
	v->watch = j->watch;
	j->watch = NULL;
	v->condstore = j->condstore || (s->enabled & IMAP_ENABLED_CONDSTORE) != 0;
	imap_view_load(v, j->msgs, j->nmsgs);
	s->view = v;
	s->state = IMAP_STATE_SELECTED;
	imap_view_write_flags(s, 1);
	net_conn_printf(s->conn, "* %u EXISTS\r\n", v->count);
	if (!imap_rev2(s))
		net_conn_puts(s->conn, "* 0 RECENT\r\n");
	for (i = 0; i < v->count && !imap_rev2(s); i++) {
		if (!(v->msgs[i].flags & STORE_FLAG_SEEN)) {
			unseen = i + 1;
			break;
		}
	}
	if (unseen > 0)
		net_conn_printf(s->conn, "* OK [UNSEEN %u] First unseen\r\n", unseen);
	net_conn_printf(s->conn, "* OK [UIDVALIDITY %u] UIDs valid\r\n", v->uidvalidity);
	net_conn_printf(s->conn, "* OK [UIDNEXT %u] Predicted next UID\r\n", v->uidnext);
	net_conn_printf(s->conn, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	    (unsigned long long)v->modseq);
	if (imap_rev2(s) || imap_utf8_mode(s)) {
		struct buf out = BUF_INIT;

		buf_puts(&out, "* LIST () \"/\" ");
		imap_mailbox_write(s, &out, v->name);
		buf_puts(&out, "\r\n");
		net_conn_write(s->conn, out.data, out.len);
		buf_free(&out);
	}
	imap_finish(s, "OK [%s] %s completed", v->readonly ? "READ-ONLY" : "READ-WRITE",
	    j->readonly ? "EXAMINE" : "SELECT");
	imap_select_job_free(j);
}

/* Leaves the selected state; the watch goes to *watch_r for a job to
 * remove (store calls stay off the loop thread). */
static void
imap_deselect(struct imap_session *s, struct store_watch **watch_r)
{
	*watch_r = NULL;
	if (s->view == NULL)
		return;
	*watch_r = s->view->watch;
	s->view->watch = NULL;
	imap_view_free(&s->view);
	s->state = IMAP_STATE_AUTH;
}

static void
imap_select_start(struct imap_session *s, const struct imap_cmd *cmd, int readonly)
{
	struct imap_select_job *j;
	const char *error;
	int condstore = 0;

	if (cmd->nargs == 2 && cmd->args->next->type == IMAP_ARG_LIST) {
		const struct imap_arg *p;

		for (p = cmd->args->next->list; p != NULL; p = p->next) {
			if (p->type != IMAP_ARG_ATOM || strcasecmp(p->str, "CONDSTORE") != 0) {
				imap_finish_bad(s, "Unknown SELECT parameter");
				return;
			}
			condstore = 1;
		}
	} else if (cmd->nargs != 1) {
		imap_finish_bad(s, "Syntax: SELECT mailbox [(CONDSTORE)]");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	if (imap_mailbox_arg(s, cmd->args, &j->name, &error) < 0) {
		free(j);
		imap_finish_mailbox_error(s, error);
		return;
	}
	if (s->view != NULL && imap_rev2(s))
		net_conn_puts(s->conn, "* OK [CLOSED] Previous mailbox closed\r\n");
	imap_deselect(s, &j->old_watch);
	if (condstore)
		s->enabled |= IMAP_ENABLED_CONDSTORE;
	j->acct = s->acct;
	j->notify = s->notify;
	j->readonly = readonly ? 1 : 0;
	j->condstore = condstore ? 1 : 0;
	imap_submit(s, imap_select_work, imap_select_done, j);
}

void
imap_cmd_select(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_select_start(s, cmd, 0);
}

void
imap_cmd_examine(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_select_start(s, cmd, 1);
}

/* --- EXPUNGE, CLOSE, UNSELECT ---------------------------------------------- */

struct imap_expunge_job {
	struct store_account *acct;
	int64_t mailbox_id;
	uint32_t *only;                 /* UID EXPUNGE: these UIDs, sorted */
	size_t nonly;
	int restrict_uids;
	struct store_watch *watch;      /* CLOSE: removed after expunging */
	uint32_t *expunged;
	size_t nexpunged;
	struct imap_result res;
	int do_expunge;
	const char *cmd;
};

static int
imap_uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (uids[mid] < uid)
			lo = mid + 1;
		else if (uids[mid] > uid)
			hi = mid;
		else
			return 1;
	}
	return 0;
}

static void
imap_expunge_work(void *arg)
{
	struct imap_expunge_job *j = arg;
	struct store_message *msgs = NULL;
	size_t n = 0, i;
	const char *error;

	if (j->do_expunge) {
		if (store_message_list(j->acct, j->mailbox_id, 0, UINT32_MAX, &msgs, &n,
		    &error) < 0) {
			imap_result_fail(&j->res, error);
			goto out;
		}
		j->expunged = xreallocarray(NULL, n + 1, sizeof(*j->expunged));
		for (i = 0; i < n; i++) {
			if (!(msgs[i].flags & STORE_FLAG_DELETED))
				continue;
			if (j->restrict_uids && !imap_uid_in(j->only, j->nonly, msgs[i].uid))
				continue;
			j->expunged[j->nexpunged++] = msgs[i].uid;
		}
		store_messages_free(&msgs, n);
		if (j->nexpunged > 0 && store_message_expunge(j->acct, j->mailbox_id,
		    j->expunged, j->nexpunged, &error) < 0) {
			imap_result_fail(&j->res, error);
			j->nexpunged = 0;
		}
	}
out:
	if (j->watch != NULL)
		store_watch_remove(&j->watch);
}

static void
imap_expunge_job_free(struct imap_expunge_job *j)
{
	if (j->watch != NULL)
		store_watch_remove(&j->watch);
	imap_result_clear(&j->res);
	free(j->only);
	free(j->expunged);
	free(j);
}

static void
imap_expunge_done(struct imap_session *s, void *arg)
{
	struct imap_expunge_job *j = arg;

	if (s == NULL) {
		imap_expunge_job_free(j);
		return;
	}
	if (strcmp(j->cmd, "EXPUNGE") == 0) {
		if (j->res.failed) {
			imap_finish_result(s, &j->res);
		} else {
			imap_view_mark_expunged(s->view, j->expunged, j->nexpunged);
			imap_finish(s, "OK EXPUNGE completed");
		}
	} else {
		/* CLOSE and UNSELECT: the view was dropped already. */
		imap_finish(s, "OK %s completed", j->cmd);
	}
	imap_expunge_job_free(j);
}

void
imap_cmd_expunge(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_expunge_job *j;
	const char *error;
	uint32_t *idx;
	size_t n, i;

	if (cmd->nargs != (cmd->uid ? 1u : 0u)) {
		imap_finish_bad(s, cmd->uid ? "Syntax: UID EXPUNGE uid-set" : "Syntax: EXPUNGE");
		return;
	}
	if (s->view->readonly) {
		imap_finish(s, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->acct = s->acct;
	j->mailbox_id = s->view->mailbox_id;
	j->do_expunge = 1;
	j->cmd = "EXPUNGE";
	if (cmd->uid) {
		if (cmd->args->type != IMAP_ARG_ATOM ||
		    imap_view_resolve(s->view, cmd->args->str, 1, &idx, &n, &error) < 0) {
			free(j);
			imap_finish_bad(s, "Invalid UID set");
			return;
		}
		j->restrict_uids = 1;
		j->only = xreallocarray(NULL, n + 1, sizeof(*j->only));
		for (i = 0; i < n; i++)
			j->only[i] = s->view->msgs[idx[i]].uid;
		j->nonly = n;
		free(idx);
	}
	imap_submit(s, imap_expunge_work, imap_expunge_done, j);
}

static void
imap_close_start(struct imap_session *s, const struct imap_cmd *cmd, int expunge)
{
	struct imap_expunge_job *j;

	if (cmd->nargs != 0) {
		imap_finish_bad(s, "Syntax: CLOSE / UNSELECT");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->acct = s->acct;
	j->mailbox_id = s->view->mailbox_id;
	/* CLOSE expunges silently, and only in read-write mode. */
	j->do_expunge = expunge && !s->view->readonly;
	j->cmd = expunge ? "CLOSE" : "UNSELECT";
	imap_deselect(s, &j->watch);
	imap_submit(s, imap_expunge_work, imap_expunge_done, j);
}

void
imap_cmd_close(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_close_start(s, cmd, 1);
}

void
imap_cmd_unselect(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_close_start(s, cmd, 0);
}
