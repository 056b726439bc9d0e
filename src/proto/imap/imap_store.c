/*
 * STORE and UID STORE (RFC 9051 6.4.6), with UNCHANGEDSINCE and MODIFIED
 * of CONDSTORE (RFC 7162).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_seqset.h"

struct imap_store_job {
	struct store_account *acct;
	int64_t mailbox_id;
	uint32_t *uids;
	size_t nuids;
	enum store_flag_mode mode;
	unsigned flags;
	char **keywords;
	uint64_t unchangedsince;
	uint32_t *failed;
	size_t nfailed;
	struct store_message *after;    /* the messages' state afterwards */
	size_t nafter;
	struct imap_result res;
	unsigned silent : 1;
	unsigned uid_cmd : 1;
};

static void
imap_store_work(void *arg)
{
	struct imap_store_job *j = arg;
	const char *error;

	if (store_message_set_flags(j->acct, j->mailbox_id, j->uids, j->nuids, j->mode,
	    j->flags, (const char *const *)j->keywords, j->unchangedsince, &j->failed,
	    &j->nfailed, &error) < 0) {
		imap_result_fail(&j->res, error);
		return;
	}
	if (store_message_list(j->acct, j->mailbox_id, j->uids[0], j->uids[j->nuids - 1],
	    &j->after, &j->nafter, &error) < 0)
		imap_result_fail(&j->res, error);
}

static void
imap_store_job_free(struct imap_store_job *j)
{
	if (j->after != NULL)
		store_messages_free(&j->after, j->nafter);
	imap_keywords_free(&j->keywords);
	imap_result_clear(&j->res);
	free(j->failed);
	free(j->uids);
	free(j);
}

static int
imap_uid_listed(const uint32_t *uids, size_t n, uint32_t uid)
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

static int
imap_u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void
imap_store_done(struct imap_session *s, void *arg)
{
	struct imap_store_job *j = arg;
	struct imap_view *v;
	struct buf out = BUF_INIT;
	uint32_t *modified = NULL;
	size_t i, nmodified = 0;
	int new_keyword = 0;

	if (s == NULL) {
		imap_store_job_free(j);
		return;
	}
	if (j->res.failed) {
		imap_finish_result(s, &j->res);
		imap_store_job_free(j);
		return;
	}
	v = s->view;
	if (j->nfailed > 1)
		qsort(j->failed, j->nfailed, sizeof(*j->failed), imap_u32_cmp);
	for (i = 0; i < j->nafter; i++) {
		const struct store_message *a = &j->after[i];
		int64_t idx;
		struct imap_msg *m;

		if (!imap_uid_listed(j->uids, j->nuids, a->uid) ||
		    (idx = imap_view_find_uid(v, a->uid)) < 0)
			continue;
		m = &v->msgs[idx];
		if (m->expunged)
			continue;
		imap_view_set_flags(v, m, a->flags, (const char *const *)a->keywords,
		    &new_keyword);
		if (a->modseq > m->modseq)
			m->modseq = a->modseq;
		if (imap_uid_listed(j->failed, j->nfailed, a->uid)) {
			/* MODIFIED: the client's sequence numbers or UIDs. */
			modified = xreallocarray(modified, nmodified + 1, sizeof(*modified));
			modified[nmodified++] = j->uid_cmd ? a->uid : (uint32_t)idx + 1;
			continue;
		}
		if (j->silent && !v->condstore)
			continue;
		buf_printf(&out, "* %u FETCH (", (uint32_t)idx + 1);
		if (j->uid_cmd)
			buf_printf(&out, "UID %u ", a->uid);
		if (v->condstore)
			buf_printf(&out, "MODSEQ (%llu)%s", (unsigned long long)m->modseq,
			    j->silent ? "" : " ");
		if (!j->silent) {
			buf_puts(&out, "FLAGS ");
			imap_view_format_flags(v, m, &out);
		}
		buf_puts(&out, ")\r\n");
	}
	if (new_keyword)
		imap_view_write_flags(s, 1);
	net_conn_write(s->conn, out.data, out.len);
	buf_free(&out);
	if (nmodified > 0) {
		struct buf set = BUF_INIT;

		qsort(modified, nmodified, sizeof(*modified), imap_u32_cmp);
		imap_seqset_format(&set, modified, nmodified);
		imap_finish(s, "OK [MODIFIED %s] Conditional STORE failed", buf_cstr(&set));
		buf_free(&set);
	} else {
		imap_finish(s, "OK STORE completed");
	}
	free(modified);
	imap_store_job_free(j);
}

/* "(UNCHANGEDSINCE n)" */
static int
imap_store_modifiers(const struct imap_arg *list, uint64_t *unchangedsince_r)
{
	const struct imap_arg *a = list->list;
	char *end;

	if (a == NULL || a->type != IMAP_ARG_ATOM || strcasecmp(a->str, "UNCHANGEDSINCE") != 0 ||
	    a->next == NULL || a->next->type != IMAP_ARG_ATOM || a->next->next != NULL)
		return -1;
	a = a->next;
	if (a->str[0] < '0' || a->str[0] > '9')
		return -1;
	*unchangedsince_r = strtoull(a->str, &end, 10);
	return *end == '\0' && a->len <= 19 ? 0 : -1;
}

void
imap_cmd_store(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *a = cmd->args, *what;
	struct imap_store_job *j;
	const char *error, *name;
	uint32_t *idx;
	size_t n, i;
	int has_modifier = 0;
	uint64_t unchangedsince = 0;

	if (cmd->nargs < 3 || cmd->nargs > 4 || a->type != IMAP_ARG_ATOM) {
		imap_finish_bad(s, "Syntax: STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags");
		return;
	}
	what = a->next;
	if (what->type == IMAP_ARG_LIST) {
		if (imap_store_modifiers(what, &unchangedsince) < 0) {
			imap_finish_bad(s, "Invalid STORE modifier");
			return;
		}
		has_modifier = 1;
		what = what->next;
	}
	if (what->type != IMAP_ARG_ATOM || what->next == NULL || what->next->next != NULL) {
		imap_finish_bad(s, "Syntax: STORE set [(UNCHANGEDSINCE n)] [+-]FLAGS[.SILENT] flags");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	name = what->str;
	j->mode = STORE_FLAGS_SET;
	if (*name == '+' || *name == '-') {
		j->mode = *name == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		name++;
	}
	if (strcasecmp(name, "FLAGS.SILENT") == 0)
		j->silent = 1;
	else if (strcasecmp(name, "FLAGS") != 0) {
		free(j);
		imap_finish_bad(s, "Unknown STORE item");
		return;
	}
	if (imap_flags_parse(what->next, &j->flags, &j->keywords, &error) < 0) {
		free(j);
		imap_finish_bad(s, error);
		return;
	}
	if (imap_view_resolve(s->view, a->str, cmd->uid, &idx, &n, &error) < 0) {
		imap_store_job_free(j);
		imap_finish_bad(s, error);
		return;
	}
	if (s->view->readonly) {
		free(idx);
		imap_store_job_free(j);
		imap_finish(s, "NO [READ-ONLY] Mailbox is read-only");
		return;
	}
	if (has_modifier) {
		s->enabled |= IMAP_ENABLED_CONDSTORE;
		s->view->condstore = 1;
		/* UNCHANGEDSINCE 0 can never hold (RFC 7162 3.1.3). */
		j->unchangedsince = unchangedsince == 0 ? 1 : unchangedsince;
	}
	j->uids = xreallocarray(NULL, n + 1, sizeof(*j->uids));
	for (i = 0; i < n; i++) {
		if (!s->view->msgs[idx[i]].expunged)
			j->uids[j->nuids++] = s->view->msgs[idx[i]].uid;
	}
	free(idx);
	if (j->nuids == 0) {
		imap_store_job_free(j);
		imap_finish(s, "OK STORE completed");
		return;
	}
	j->acct = s->acct;
	j->mailbox_id = s->view->mailbox_id;
	j->uid_cmd = cmd->uid;
	imap_submit(s, imap_store_work, imap_store_done, j);
}
