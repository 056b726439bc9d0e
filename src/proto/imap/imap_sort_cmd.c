/*
 * SORT, UID SORT (RFC 5256 with SORT=DISPLAY of RFC 5957 and ESORT's
 * RETURN of RFC 5267), THREAD and UID THREAD: a search (imap_search_cmd.c)
 * then, on the same worker, the sort keys or threading fields of each
 * match from the summary the store kept, and the pure work of imap_sort.c
 * and imap_thread.c.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "mail/mime.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_sort.h"

struct imap_sort_job {
	struct imap_search_job *search;
	int thread;                     /* THREAD, else SORT */
	enum imap_thread_algorithm alg;
	struct imap_sort_criterion crit[IMAP_SORT_KEYS_MAX];
	int ncrit;
	unsigned need_summary : 1;
	/* Out. */
	struct imap_sort_msg *msgs;
	size_t n;
	struct buf threads;
};

static const struct store_message *
imap_sort_meta(const struct imap_search_job *j, uint32_t uid)
{
	size_t lo = 0, hi = j->nmeta;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (j->meta[mid].uid < uid)
			lo = mid + 1;
		else if (j->meta[mid].uid > uid)
			hi = mid;
		else
			return &j->meta[mid];
	}
	return NULL;
}

/* What THREAD keeps of a summary. */
struct imap_thread_fields {
	char *subject, *message_id, *references, *in_reply_to;
};

static char *
imap_dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
imap_sort_work(void *arg)
{
	struct imap_sort_job *j = arg;
	struct imap_search_job *sj = j->search;
	struct imap_thread_msg *tm = NULL;
	struct imap_thread_fields *tf = NULL;
	const char *error;
	size_t i;

	imap_search_job_run(sj);
	if (sj->res.failed)
		return;
	j->n = sj->nhits;
	j->msgs = xcalloc(j->n + 1, sizeof(*j->msgs));
	if (j->thread) {
		tm = xcalloc(j->n + 1, sizeof(*tm));
		tf = xcalloc(j->n + 1, sizeof(*tf));
	}
	for (i = 0; i < j->n; i++) {
		const struct imap_msg *m = &sj->view->msgs[sj->hits[i]];
		const struct store_message *meta = imap_sort_meta(sj, m->uid);
		struct imap_sort_msg *sm = &j->msgs[i];
		struct mime_summary *sum = NULL;

		sm->seq = sj->hits[i] + 1;
		sm->num = sj->uid_cmd ? m->uid : sm->seq;
		if (meta != NULL) {
			sm->arrival = meta->internaldate;
			sm->size = meta->size;
		}
		sm->date = sm->arrival;
		if (j->need_summary &&
		    store_message_summary(sj->acct, sj->mailbox_id, m->uid, &sum, &error) == 0) {
			int64_t d = imap_sent_date(sum->date);

			/* RFC 5256 2.2: without a usable Date:, the arrival. */
			if (d >= 0)
				sm->date = d;
			if (j->thread) {
				tf[i].subject = imap_dup_or_null(sum->subject);
				tf[i].message_id = imap_dup_or_null(sum->message_id);
				tf[i].references = imap_dup_or_null(sum->references);
				tf[i].in_reply_to = imap_dup_or_null(sum->in_reply_to);
			} else {
				imap_sort_msg_strings(sm, j->crit, j->ncrit, sum->cc, sum->from,
				    sum->subject, sum->to);
			}
			mime_summary_free(&sum);
		}
		if (!j->thread)
			imap_sort_msg_strings(sm, j->crit, j->ncrit, NULL, NULL, NULL, NULL);
		if (j->thread) {
			tm[i].num = sm->num;
			tm[i].seq = sm->seq;
			tm[i].date = sm->date;
			tm[i].subject = tf[i].subject;
			tm[i].message_id = tf[i].message_id;
			tm[i].references = tf[i].references;
			tm[i].in_reply_to = tf[i].in_reply_to;
		}
	}
	if (!j->thread) {
		imap_sort_run(j->msgs, j->n, j->crit, j->ncrit);
		return;
	}
	imap_thread_run(j->alg, tm, j->n, &j->threads);
	for (i = 0; i < j->n; i++) {
		free(tf[i].subject);
		free(tf[i].message_id);
		free(tf[i].references);
		free(tf[i].in_reply_to);
	}
	free(tf);
	free(tm);
}

static void
imap_sort_job_free(struct imap_sort_job *j)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		imap_sort_msg_clear(&j->msgs[i]);
	free(j->msgs);
	buf_free(&j->threads);
	imap_search_job_free(j->search);
	free(j);
}

/* ESORT's ALL: the numbers in sort order, runs of n, n+1... as n:m. */
static void
imap_sort_write_all(struct buf *out, const struct imap_sort_msg *msgs, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		for (k = i; k + 1 < n && msgs[k + 1].num == msgs[k].num + 1; k++)
			;
		buf_printf(out, "%s%u", i > 0 ? "," : "", msgs[i].num);
		if (k > i)
			buf_printf(out, ":%u", msgs[k].num);
		i = k + 1;
	}
}

static void
imap_sort_done(struct imap_session *s, void *arg)
{
	struct imap_sort_job *j = arg;
	struct imap_search_job *sj = j->search;
	struct buf out = BUF_INIT;
	size_t i;

	if (s == NULL) {
		imap_sort_job_free(j);
		return;
	}
	if (sj->res.failed) {
		imap_finish_result(s, &sj->res);
		imap_sort_job_free(j);
		return;
	}
	if (j->thread) {
		buf_printf(&out, "* THREAD %s\r\n", buf_cstr(&j->threads));
	} else if (sj->esearch) {
		unsigned ret = sj->prog.ret;

		/* RFC 5267 3.2: MIN and MAX are the first and last in the sort
		 * order, ALL is in that order. */
		buf_printf(&out, "* ESEARCH (TAG \"%s\")%s", s->tag, sj->uid_cmd ? " UID" : "");
		if ((ret & IMAP_SEARCH_RET_MIN) && j->n > 0)
			buf_printf(&out, " MIN %u", j->msgs[0].num);
		if ((ret & IMAP_SEARCH_RET_MAX) && j->n > 0)
			buf_printf(&out, " MAX %u", j->msgs[j->n - 1].num);
		if (ret & IMAP_SEARCH_RET_COUNT)
			buf_printf(&out, " COUNT %zu", j->n);
		if ((ret & IMAP_SEARCH_RET_ALL) && j->n > 0) {
			buf_puts(&out, " ALL ");
			imap_sort_write_all(&out, j->msgs, j->n);
		}
		buf_puts(&out, "\r\n");
	} else {
		buf_puts(&out, "* SORT");
		for (i = 0; i < j->n; i++)
			buf_printf(&out, " %u", j->msgs[i].num);
		buf_puts(&out, "\r\n");
	}
	net_conn_write(s->conn, out.data, out.len);
	buf_free(&out);
	imap_finish(s, "OK %s completed", j->thread ? "THREAD" : "SORT");
	imap_sort_job_free(j);
}

/* The search part, common to both: charset and keys. */
static void
imap_sort_start(struct imap_session *s, const struct imap_cmd *cmd, struct imap_sort_job *j,
    const struct imap_arg *ret, const struct imap_arg *args)
{
	struct imap_search_program prog;
	const char *error;
	int r;

	if ((r = imap_search_parse_sort(ret, args, &prog, &error)) < 0) {
		free(j);
		if (r == -2)
			imap_finish(s, "%s", error);
		else
			imap_finish_bad(s, error);
		return;
	}
	if (prog.ret & IMAP_SEARCH_RET_SAVE) {
		imap_search_program_free(&prog);
		free(j);
		imap_finish_bad(s, "RETURN (SAVE) is for SEARCH");
		return;
	}
	if (prog.has_modseq) {
		s->enabled |= IMAP_ENABLED_CONDSTORE;
		s->view->condstore = 1;
	}
	j->search = imap_search_job_new(s, cmd->uid);
	j->search->prog = prog;
	j->search->esearch = prog.esearch;
	/* ARRIVAL and SIZE, and the fallback of DATE. */
	j->search->need_meta = 1;
	imap_submit(s, imap_sort_work, imap_sort_done, j);
}

void
imap_cmd_sort(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_sort_job *j = xcalloc(1, sizeof(*j));
	const struct imap_arg *args = cmd->args, *ret = NULL;
	const char *error;
	int i;

	/* SORT [RETURN (options)] (criteria) charset keys */
	if (args != NULL && args->type == IMAP_ARG_ATOM && strcasecmp(args->str, "RETURN") == 0) {
		ret = args->next;
		if (ret == NULL || ret->type != IMAP_ARG_LIST) {
			free(j);
			imap_finish_bad(s, "Syntax: SORT [RETURN (options)] (criteria) charset keys");
			return;
		}
		args = ret->next;
	}
	if ((j->ncrit = imap_sort_parse(args, j->crit, &error)) < 0) {
		free(j);
		imap_finish_bad(s, error);
		return;
	}
	for (i = 0; i < j->ncrit; i++) {
		if (j->crit[i].key != IMAP_SORT_ARRIVAL && j->crit[i].key != IMAP_SORT_SIZE)
			j->need_summary = 1;
	}
	imap_sort_start(s, cmd, j, ret, args->next);
}

void
imap_cmd_thread(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_sort_job *j = xcalloc(1, sizeof(*j));
	const struct imap_arg *args = cmd->args;

	/* THREAD algorithm charset keys */
	j->thread = 1;
	j->need_summary = 1;
	if (args == NULL || args->type != IMAP_ARG_ATOM) {
		free(j);
		imap_finish_bad(s, "Syntax: THREAD algorithm charset keys");
		return;
	}
	if (strcasecmp(args->str, "REFERENCES") == 0) {
		j->alg = IMAP_THREAD_REFERENCES;
	} else if (strcasecmp(args->str, "ORDEREDSUBJECT") == 0) {
		j->alg = IMAP_THREAD_ORDEREDSUBJECT;
	} else {
		free(j);
		imap_finish_bad(s, "Unknown THREAD algorithm");
		return;
	}
	imap_sort_start(s, cmd, j, NULL, args->next);
}
