/*
 * COPY and MOVE (RFC 6851), UID forms, with COPYUID of UIDPLUS (RFC 4315).
 */
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"

struct imap_copy_job {
	struct store_account *acct;
	int64_t from_id;
	char *to;
	uint32_t *uids;
	size_t nuids;
	uint32_t *new_uids;
	uint32_t uidvalidity;
	int found;
	struct imap_result res;
	unsigned move : 1;
};

static void
imap_copy_work(void *arg)
{
	struct imap_copy_job *j = arg;
	struct store_mailbox mbox;
	const char *error;
	int r;

	if ((r = store_mailbox_get(j->acct, j->to, &mbox, &error)) <= 0) {
		if (r < 0)
			imap_result_fail(&j->res, error);
		return;
	}
	j->found = 1;
	if (store_message_copy(j->acct, j->from_id, j->uids, j->nuids, mbox.id, j->move,
	    &j->new_uids, &j->uidvalidity, &error) < 0)
		imap_result_fail(&j->res, error);
	store_mailbox_clear(&mbox);
}

static void
imap_copy_job_free(struct imap_copy_job *j)
{
	imap_result_clear(&j->res);
	free(j->new_uids);
	free(j->uids);
	free(j->to);
	free(j);
}

/* "1:3,7 10:12,13": runs consecutive in both lists collapse. */
static void
imap_copyuid_sets(struct buf *src, struct buf *dst, const uint32_t *a, const uint32_t *b,
    size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		for (k = i; k + 1 < n && a[k + 1] == a[k] + 1 && b[k + 1] == b[k] + 1; k++)
			;
		if (i > 0) {
			buf_putc(src, ',');
			buf_putc(dst, ',');
		}
		if (k > i) {
			buf_printf(src, "%u:%u", a[i], a[k]);
			buf_printf(dst, "%u:%u", b[i], b[k]);
		} else {
			buf_printf(src, "%u", a[i]);
			buf_printf(dst, "%u", b[i]);
		}
		i = k + 1;
	}
}

static void
imap_copy_done(struct imap_session *s, void *arg)
{
	struct imap_copy_job *j = arg;
	struct buf src = BUF_INIT, dst = BUF_INIT;

	if (s == NULL) {
		imap_copy_job_free(j);
		return;
	}
	if (!j->found && !j->res.failed) {
		imap_finish(s, "NO [TRYCREATE] No such mailbox");
	} else if (j->res.failed) {
		if (j->res.code == STORE_ERR_NOT_FOUND)
			imap_finish(s, "NO [TRYCREATE] No such mailbox");
		else
			imap_finish_result(s, &j->res);
	} else {
		imap_copyuid_sets(&src, &dst, j->uids, j->new_uids, j->nuids);
		if (j->move) {
			/* COPYUID goes first, then the EXPUNGEs (RFC 6851 4.3). */
			net_conn_printf(s->conn, "* OK [COPYUID %u %s %s] Moved\r\n",
			    j->uidvalidity, buf_cstr(&src), buf_cstr(&dst));
			imap_view_mark_expunged(s->view, j->uids, j->nuids);
			imap_finish(s, "OK MOVE completed");
		} else {
			imap_finish(s, "OK [COPYUID %u %s %s] COPY completed", j->uidvalidity,
			    buf_cstr(&src), buf_cstr(&dst));
		}
	}
	buf_free(&src);
	buf_free(&dst);
	imap_copy_job_free(j);
}

static void
imap_copy_start(struct imap_session *s, const struct imap_cmd *cmd, int move)
{
	struct imap_copy_job *j;
	const char *error;
	uint32_t *idx;
	size_t n, i;

	if (cmd->nargs != 2 || cmd->args->type != IMAP_ARG_ATOM) {
		imap_finish_bad(s, move ? "Syntax: MOVE set mailbox" : "Syntax: COPY set mailbox");
		return;
	}
	if (imap_view_resolve(s->view, cmd->args->str, cmd->uid, &idx, &n, &error) < 0) {
		imap_finish_bad(s, error);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	if (imap_mailbox_arg(s, cmd->args->next, &j->to, &error) < 0) {
		free(idx);
		imap_copy_job_free(j);
		imap_finish_mailbox_error(s, error);
		return;
	}
	if (move && s->view->readonly) {
		free(idx);
		imap_copy_job_free(j);
		imap_finish(s, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	j->uids = xreallocarray(NULL, n + 1, sizeof(*j->uids));
	for (i = 0; i < n; i++) {
		if (!s->view->msgs[idx[i]].expunged)
			j->uids[j->nuids++] = s->view->msgs[idx[i]].uid;
	}
	free(idx);
	if (j->nuids == 0) {
		imap_copy_job_free(j);
		/* RFC 9051 6.4.7: nothing to copy is not an error for UID. */
		imap_finish(s, "OK %s completed", move ? "MOVE" : "COPY");
		return;
	}
	j->acct = s->acct;
	j->from_id = s->view->mailbox_id;
	j->move = move ? 1 : 0;
	imap_submit(s, imap_copy_work, imap_copy_done, j);
}

void
imap_cmd_copy(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_copy_start(s, cmd, 0);
}

void
imap_cmd_move(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_copy_start(s, cmd, 1);
}
