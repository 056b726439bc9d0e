/*
 * QUOTA (RFC 9208): one quota root, "", for the whole account, with the
 * STORAGE (KiB) and MESSAGE resources of the account's directory entry.
 * Limits are set by the administrator, so SETQUOTA is refused.
 */
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "directory/directory.h"
#include "proto/imap/imap_private.h"

struct imap_quota_job {
	struct proto_context *ctx;
	struct store_account *acct;
	int64_t account_id;
	struct store_quota quota;
	struct store_usage usage;
	char *mailbox;                  /* GETQUOTAROOT's argument */
	int mailbox_found;
	struct imap_result res;
};

static void
imap_quota_work(void *arg)
{
	struct imap_quota_job *j = arg;
	struct directory_account a;
	struct store_mailbox mbox;
	const char *error;
	int r;

	if (j->mailbox != NULL) {
		if ((r = store_mailbox_get(j->acct, j->mailbox, &mbox, &error)) < 0) {
			imap_result_fail(&j->res, error);
			return;
		}
		if (r > 0)
			store_mailbox_clear(&mbox);
		j->mailbox_found = r > 0;
	}
	memset(&a, 0, sizeof(a));
	if ((r = directory_account_get_by_id(j->ctx->dir, j->account_id, &a, &error)) < 0) {
		imap_result_fail(&j->res, error);
		return;
	}
	if (r > 0) {
		j->quota.bytes_limit = a.quota_bytes;
		j->quota.messages_limit = a.quota_messages;
		directory_account_clear(&a);
	}
	if (store_account_usage(j->acct, &j->usage, &error) < 0)
		imap_result_fail(&j->res, error);
}

static int
imap_quota_has_root(const struct store_quota *q)
{
	return q->bytes_limit > 0 || q->messages_limit > 0;
}

static void
imap_quota_write(struct imap_session *s, const struct imap_quota_job *j)
{
	const char *sep = "";

	net_conn_puts(s->conn, "* QUOTA \"\" (");
	if (j->quota.bytes_limit > 0) {
		net_conn_printf(s->conn, "STORAGE %llu %llu",
		    (unsigned long long)((j->usage.bytes + 1023) / 1024),
		    (unsigned long long)(j->quota.bytes_limit / 1024));
		sep = " ";
	}
	if (j->quota.messages_limit > 0)
		net_conn_printf(s->conn, "%sMESSAGE %llu %llu", sep,
		    (unsigned long long)j->usage.messages,
		    (unsigned long long)j->quota.messages_limit);
	net_conn_puts(s->conn, ")\r\n");
}

static void
imap_quota_done(struct imap_session *s, void *arg)
{
	struct imap_quota_job *j = arg;
	struct buf out = BUF_INIT;

	if (s == NULL)
		goto out;
	if (j->res.failed) {
		imap_finish_result(s, &j->res);
		goto out;
	}
	s->quota = j->quota;
	if (j->mailbox != NULL) {
		if (!j->mailbox_found) {
			imap_finish(s, "NO [NONEXISTENT] No such mailbox");
			goto out;
		}
		buf_puts(&out, "* QUOTAROOT ");
		imap_mailbox_write(s, &out, j->mailbox);
		if (imap_quota_has_root(&j->quota))
			buf_puts(&out, " \"\"");
		buf_puts(&out, "\r\n");
		net_conn_write(s->conn, out.data, out.len);
		buf_free(&out);
		if (imap_quota_has_root(&j->quota))
			imap_quota_write(s, j);
		imap_finish(s, "OK GETQUOTAROOT completed");
		goto out;
	}
	if (!imap_quota_has_root(&j->quota)) {
		imap_finish(s, "NO [NONEXISTENT] No such quota root");
		goto out;
	}
	imap_quota_write(s, j);
	imap_finish(s, "OK GETQUOTA completed");
out:
	imap_result_clear(&j->res);
	free(j->mailbox);
	free(j);
}

static struct imap_quota_job *
imap_quota_job_new(struct imap_session *s)
{
	struct imap_quota_job *j = xcalloc(1, sizeof(*j));

	j->ctx = s->ctx;
	j->acct = s->acct;
	j->account_id = s->account_id;
	return j;
}

void
imap_cmd_getquota(struct imap_session *s, const struct imap_cmd *cmd)
{
	if (cmd->nargs != 1 || !imap_arg_astring(cmd->args, 1024)) {
		imap_finish_bad(s, "Syntax: GETQUOTA root");
		return;
	}
	if (cmd->args->len != 0) {
		imap_finish(s, "NO [NONEXISTENT] No such quota root");
		return;
	}
	imap_submit(s, imap_quota_work, imap_quota_done, imap_quota_job_new(s));
}

void
imap_cmd_getquotaroot(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_quota_job *j;
	const char *error;
	char *name;

	if (cmd->nargs != 1) {
		imap_finish_bad(s, "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	if (imap_mailbox_arg(s, cmd->args, &name, &error) < 0) {
		imap_finish_mailbox_error(s, error);
		return;
	}
	j = imap_quota_job_new(s);
	j->mailbox = name;
	imap_submit(s, imap_quota_work, imap_quota_done, j);
}

void
imap_cmd_setquota(struct imap_session *s, const struct imap_cmd *cmd)
{
	if (cmd->nargs != 2) {
		imap_finish_bad(s, "Syntax: SETQUOTA root (resources)");
		return;
	}
	imap_finish(s, "NO [NOPERM] Quotas are set by the administrator");
}
