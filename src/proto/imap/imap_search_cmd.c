/*
 * SEARCH and UID SEARCH: evaluating a program (imap_search.c) over the
 * selected mailbox on a worker, and the SEARCH / ESEARCH responses.
 *
 * BODY and TEXT go to the store's full-text index once per key; header
 * keys read the fields the store kept (decoded from RFC 2047), other
 * header fields the message's header block. Matching is a case-insensitive
 * substring match with i;unicode-casemap (I18NLEVEL=1), as RFC 9051 and
 * RFC 5255 ask.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "mail/charset.h"
#include "mail/mime.h"
#include "proto/imap/imap_fetch_body.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_search.h"
#include "proto/imap/imap_sort.h"
#include "proto/imap/imap_seqset.h"

#define IMAP_SEARCH_HEADER_MAX (256 * 1024)    /* header bytes read per message */

/* What the evaluation of one message has loaded so far. */
struct imap_search_msg {
	uint32_t idx;
	const struct imap_msg *m;
	const struct store_message *meta;
	struct mime_summary *summary;
	int summary_tried;
	struct buf header;
	int header_tried;
};

static int
imap_u32_bsearch(const uint32_t *v, size_t n, uint32_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < x)
			lo = mid + 1;
		else if (v[mid] > x)
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

/* Case-insensitive substring: i;unicode-casemap (I18NLEVEL=1, RFC 5255),
 * as imap_sort.h approximates it. */
static int
imap_contains(const char *hay, size_t hlen, const char *needle)
{
	return imap_casemap_contains(hay, hlen, needle);
}

/* Resolves sets and runs the full-text searches before the per-message
 * pass. Returns 0 or -1. */
static int
imap_search_prepare(struct imap_search_job *j, struct imap_search_key *k)
{
	const struct imap_view *v = j->view;
	const char *error;

	for (; k != NULL; k = k->next) {
		switch (k->op) {
		case IMAP_SK_SEQSET:
		case IMAP_SK_UIDSET:
			k->set = xcalloc(1, sizeof(struct imap_seqset));
			if (imap_seqset_parse(k->str, k->set, &error) < 0)
				return -1;
			imap_seqset_resolve(k->set, k->op == IMAP_SK_SEQSET ? v->count :
			    v->count > 0 ? v->msgs[v->count - 1].uid : 0);
			break;
		case IMAP_SK_BODY:
		case IMAP_SK_TEXT:
			if (store_search_text(j->acct, j->mailbox_id, k->str, k->op == IMAP_SK_BODY,
			    &k->uids, &k->nuids, &error) < 0) {
				imap_result_fail(&j->res, error);
				return -1;
			}
			if (k->nuids > 1)
				qsort(k->uids, k->nuids, sizeof(*k->uids), imap_u32_cmp);
			break;
		case IMAP_SK_LARGER:
		case IMAP_SK_SMALLER:
		case IMAP_SK_EMAILID:
		case IMAP_SK_THREADID:
		case IMAP_SK_BEFORE:
		case IMAP_SK_ON:
		case IMAP_SK_SINCE:
			j->need_meta = 1;
			break;
		case IMAP_SK_HEADER:
		case IMAP_SK_SENTBEFORE:
		case IMAP_SK_SENTON:
		case IMAP_SK_SENTSINCE:
			j->need_summary = 1;
			break;
		default:
			break;
		}
		/* The children and their siblings. */
		if (k->child != NULL && imap_search_prepare(j, k->child) < 0)
			return -1;
	}
	return 0;
}

static const struct mime_summary *
imap_search_summary(struct imap_search_job *j, struct imap_search_msg *sm)
{
	const char *error;

	if (!sm->summary_tried) {
		sm->summary_tried = 1;
		if (store_message_summary(j->acct, j->mailbox_id, sm->m->uid, &sm->summary,
		    &error) < 0)
			sm->summary = NULL;
	}
	return sm->summary;
}

/* The raw value of a header field the summary keeps (NULL when the
 * message has none). Returns 0 for a field it does not keep. */
static int
imap_summary_field(const struct mime_summary *s, const char *field, const char **value_r)
{
	static const struct {
		const char *name;
		size_t offset;
	} kept[] = {
		{ "FROM", offsetof(struct mime_summary, from) },
		{ "TO", offsetof(struct mime_summary, to) },
		{ "CC", offsetof(struct mime_summary, cc) },
		{ "BCC", offsetof(struct mime_summary, bcc) },
		{ "SUBJECT", offsetof(struct mime_summary, subject) },
		{ "SENDER", offsetof(struct mime_summary, sender) },
		{ "REPLY-TO", offsetof(struct mime_summary, reply_to) },
		{ "DATE", offsetof(struct mime_summary, date) },
		{ "MESSAGE-ID", offsetof(struct mime_summary, message_id) },
		{ "IN-REPLY-TO", offsetof(struct mime_summary, in_reply_to) },
		{ "REFERENCES", offsetof(struct mime_summary, references) },
	};
	size_t i;

	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		if (strcasecmp(field, kept[i].name) == 0) {
			*value_r = *(char *const *)((const char *)s + kept[i].offset);
			return 1;
		}
	}
	return 0;
}

/* HEADER field string: from the summary, or from the header block. */
static int
imap_search_header(struct imap_search_job *j, struct imap_search_msg *sm,
    const struct imap_search_key *k)
{
	const struct mime_summary *s = imap_search_summary(j, sm);
	const char *value;
	struct buf dec = BUF_INIT, fields = BUF_INIT;
	char *names[1];
	int match;

	if (s == NULL)
		return 0;
	if (imap_summary_field(s, k->field, &value)) {
		if (value == NULL)
			return 0;
		mail_header_decode(value, strlen(value), &dec);
		match = imap_contains(buf_cstr(&dec), dec.len, k->str);
		buf_free(&dec);
		return match;
	}
	/* Not a field the summary keeps: read the header block. */
	if (!sm->header_tried) {
		struct store_blob *blob;
		const char *error;
		size_t len = s->header_size < IMAP_SEARCH_HEADER_MAX ? (size_t)s->header_size :
		    IMAP_SEARCH_HEADER_MAX, done = 0;
		ssize_t r;

		sm->header_tried = 1;
		if (store_blob_open(j->acct, j->mailbox_id, sm->m->uid, &blob, &error) == 0) {
			buf_reserve(&sm->header, len);
			while (done < len && (r = store_blob_read(blob, done,
			    sm->header.data + done, len - done)) > 0)
				done += (size_t)r;
			sm->header.len = done;
			sm->header.data[done] = '\0';
			store_blob_close(&blob);
		}
	}
	names[0] = k->field;
	imap_header_filter(buf_cstr(&sm->header), sm->header.len, names, 1, 0, &fields);
	/* "Name: value\r\n..." per field: decode and match the values. */
	{
		const char *p = buf_cstr(&fields), *end = p + fields.len;

		match = 0;
		while (p < end && !match && *p != '\r' && *p != '\n') {
			const char *colon = memchr(p, ':', (size_t)(end - p));
			const char *next = colon;

			if (colon == NULL)
				break;
			while (next < end) {
				const char *nl = memchr(next, '\n', (size_t)(end - next));

				next = nl != NULL ? nl + 1 : end;
				if (next >= end || (*next != ' ' && *next != '\t'))
					break;
			}
			buf_reset(&dec);
			mail_header_decode(colon + 1, (size_t)(next - colon - 1), &dec);
			match = imap_contains(buf_cstr(&dec), dec.len, k->str);
			p = next;
		}
	}
	buf_free(&dec);
	buf_free(&fields);
	return match;
}

static int
imap_search_eval(struct imap_search_job *j, struct imap_search_msg *sm,
    const struct imap_search_key *k)
{
	const struct imap_search_key *c;
	const struct mime_summary *s;
	const char *const *kw;
	int64_t day;

	switch (k->op) {
	case IMAP_SK_ALL:
		return 1;
	case IMAP_SK_NONE:
		return 0;
	case IMAP_SK_AND:
		for (c = k->child; c != NULL; c = c->next) {
			if (!imap_search_eval(j, sm, c))
				return 0;
		}
		return 1;
	case IMAP_SK_OR:
		return imap_search_eval(j, sm, k->child) || imap_search_eval(j, sm, k->child->next);
	case IMAP_SK_NOT:
		return !imap_search_eval(j, sm, k->child);
	case IMAP_SK_FLAG:
		return (sm->m->flags & k->num) != 0;
	case IMAP_SK_KEYWORD:
		for (kw = imap_view_keywords(j->view, sm->m); kw != NULL && *kw != NULL; kw++) {
			if (strcasecmp(*kw, k->str) == 0)
				return 1;
		}
		return 0;
	case IMAP_SK_SEQSET:
		return imap_seqset_contains(k->set, sm->idx + 1);
	case IMAP_SK_UIDSET:
		return imap_seqset_contains(k->set, sm->m->uid);
	case IMAP_SK_LARGER:
		return sm->meta != NULL && sm->meta->size > k->num;
	case IMAP_SK_SMALLER:
		return sm->meta != NULL && sm->meta->size < k->num;
	case IMAP_SK_BEFORE:
	case IMAP_SK_ON:
	case IMAP_SK_SINCE:
		if (sm->meta == NULL)
			return 0;
		day = sm->meta->internaldate - (sm->meta->internaldate % 86400 + 86400) % 86400;
		return k->op == IMAP_SK_BEFORE ? day < k->date :
		    k->op == IMAP_SK_ON ? day == k->date : day >= k->date;
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		if ((s = imap_search_summary(j, sm)) == NULL ||
		    (day = imap_search_sent_day(s->date)) < 0)
			return 0;
		return k->op == IMAP_SK_SENTBEFORE ? day < k->date :
		    k->op == IMAP_SK_SENTON ? day == k->date : day >= k->date;
	case IMAP_SK_HEADER:
		return imap_search_header(j, sm, k);
	case IMAP_SK_BODY:
	case IMAP_SK_TEXT:
		return imap_u32_bsearch(k->uids, k->nuids, sm->m->uid);
	case IMAP_SK_MODSEQ:
		return sm->m->modseq >= k->num;
	case IMAP_SK_SAVED:
		return imap_u32_bsearch(j->saved, j->nsaved, sm->m->uid);
	case IMAP_SK_EMAILID:
		return sm->meta != NULL && k->str[0] == 'M' &&
		    strcmp(sm->meta->guid, k->str + 1) == 0;
	case IMAP_SK_THREADID: {
		char id[32];

		if (sm->meta == NULL || sm->meta->thread_id <= 0)
			return 0;
		snprintf(id, sizeof(id), "T%lld", (long long)sm->meta->thread_id);
		return strcmp(id, k->str) == 0;
	}
	}
	return 0;
}

static const struct store_message *
imap_search_meta(struct imap_search_job *j, uint32_t uid)
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

void
imap_search_job_run(struct imap_search_job *j)
{
	const struct imap_view *v = j->view;
	const char *error;
	uint32_t i;

	if (imap_search_prepare(j, j->prog.root) < 0) {
		if (!j->res.failed)
			imap_result_fail(&j->res, "Invalid search");
		return;
	}
	if (j->need_meta && store_message_list(j->acct, j->mailbox_id, 0, UINT32_MAX, &j->meta,
	    &j->nmeta, &error) < 0) {
		imap_result_fail(&j->res, error);
		return;
	}
	j->hits = xreallocarray(NULL, v->count + 1, sizeof(*j->hits));
	for (i = 0; i < v->count; i++) {
		struct imap_search_msg sm;
		int match;

		if (v->msgs[i].expunged)
			continue;
		memset(&sm, 0, sizeof(sm));
		sm.idx = i;
		sm.m = &v->msgs[i];
		if (j->need_meta)
			sm.meta = imap_search_meta(j, sm.m->uid);
		match = imap_search_eval(j, &sm, j->prog.root);
		if (sm.summary != NULL)
			mime_summary_free(&sm.summary);
		buf_free(&sm.header);
		if (!match)
			continue;
		j->hits[j->nhits++] = i;
		if (sm.m->modseq > j->highest)
			j->highest = sm.m->modseq;
	}
}

static void
imap_search_work(void *arg)
{
	imap_search_job_run(arg);
}

struct imap_search_job *
imap_search_job_new(struct imap_session *s, int uid_cmd)
{
	struct imap_search_job *j = xcalloc(1, sizeof(*j));

	j->acct = s->acct;
	j->mailbox_id = s->view->mailbox_id;
	j->view = s->view;
	j->uid_cmd = uid_cmd ? 1 : 0;
	if (s->view->nsaved > 0) {
		j->saved = xreallocarray(NULL, s->view->nsaved, sizeof(*j->saved));
		memcpy(j->saved, s->view->saved, s->view->nsaved * sizeof(*j->saved));
		j->nsaved = s->view->nsaved;
		qsort(j->saved, j->nsaved, sizeof(*j->saved), imap_u32_cmp);
	}
	return j;
}

void
imap_search_job_free(struct imap_search_job *j)
{
	imap_search_program_free(&j->prog);
	if (j->meta != NULL)
		store_messages_free(&j->meta, j->nmeta);
	imap_result_clear(&j->res);
	free(j->saved);
	free(j->hits);
	free(j);
}

/* SEARCHRES: what "$" stands for from now on (MIN and MAX alone save just
 * those, RFC 5182 2.1). A failed SAVE search empties it. */
static void
imap_search_save(struct imap_session *s, const struct imap_search_job *j)
{
	struct imap_view *v = s->view;
	unsigned ret = j->prog.ret;
	size_t i;

	free(v->saved);
	v->saved = NULL;
	v->nsaved = 0;
	if (j->res.failed || j->nhits == 0)
		return;
	v->saved = xreallocarray(NULL, j->nhits, sizeof(*v->saved));
	if (ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) {
		if (ret & IMAP_SEARCH_RET_MIN)
			v->saved[v->nsaved++] = v->msgs[j->hits[0]].uid;
		if ((ret & IMAP_SEARCH_RET_MAX) && (v->nsaved == 0 || j->nhits > 1))
			v->saved[v->nsaved++] = v->msgs[j->hits[j->nhits - 1]].uid;
		return;
	}
	for (i = 0; i < j->nhits; i++)
		v->saved[v->nsaved++] = v->msgs[j->hits[i]].uid;
}

static void
imap_search_done(struct imap_session *s, void *arg)
{
	struct imap_search_job *j = arg;
	const struct imap_view *v;
	struct buf out = BUF_INIT;
	uint32_t *nums;
	size_t i;

	if (s == NULL) {
		imap_search_job_free(j);
		return;
	}
	if (j->prog.ret & IMAP_SEARCH_RET_SAVE)
		imap_search_save(s, j);
	if (j->res.failed) {
		imap_finish_result(s, &j->res);
		imap_search_job_free(j);
		return;
	}
	v = s->view;
	nums = xreallocarray(NULL, j->nhits + 1, sizeof(*nums));
	for (i = 0; i < j->nhits; i++)
		nums[i] = j->uid_cmd ? v->msgs[j->hits[i]].uid : j->hits[i] + 1;
	if (j->esearch && (j->prog.ret & ~IMAP_SEARCH_RET_SAVE) == 0) {
		/* RETURN (SAVE): no ESEARCH response. */
	} else if (j->esearch) {
		unsigned ret = j->prog.ret;

		buf_printf(&out, "* ESEARCH (TAG \"%s\")%s", s->tag, j->uid_cmd ? " UID" : "");
		if ((ret & IMAP_SEARCH_RET_MIN) && j->nhits > 0)
			buf_printf(&out, " MIN %u", nums[0]);
		if ((ret & IMAP_SEARCH_RET_MAX) && j->nhits > 0)
			buf_printf(&out, " MAX %u", nums[j->nhits - 1]);
		if (ret & IMAP_SEARCH_RET_COUNT)
			buf_printf(&out, " COUNT %zu", j->nhits);
		if ((ret & IMAP_SEARCH_RET_ALL) && j->nhits > 0) {
			buf_puts(&out, " ALL ");
			imap_seqset_format(&out, nums, j->nhits);
		}
		if (j->prog.has_modseq && j->nhits > 0)
			buf_printf(&out, " MODSEQ %llu", (unsigned long long)j->highest);
	} else {
		buf_puts(&out, "* SEARCH");
		for (i = 0; i < j->nhits; i++)
			buf_printf(&out, " %u", nums[i]);
		if (j->prog.has_modseq && j->nhits > 0)
			buf_printf(&out, " (MODSEQ %llu)", (unsigned long long)j->highest);
	}
	if (out.len > 0)
		buf_puts(&out, "\r\n");
	net_conn_write(s->conn, out.data, out.len);
	buf_free(&out);
	free(nums);
	imap_finish(s, "OK SEARCH completed");
	imap_search_job_free(j);
}

void
imap_cmd_search(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_search_job *j = xcalloc(1, sizeof(*j));
	const char *error;
	int r;

	if ((r = imap_search_parse(cmd->args, &j->prog, &error)) < 0) {
		free(j);
		if (r == -2)
			imap_finish(s, "%s", error);
		else
			imap_finish_bad(s, error);
		return;
	}
	{
		/* The program parsed, the rest of the job around it. */
		struct imap_search_job *n = imap_search_job_new(s, cmd->uid);

		n->prog = j->prog;
		free(j);
		j = n;
	}
	if (j->prog.has_modseq) {
		s->enabled |= IMAP_ENABLED_CONDSTORE;
		s->view->condstore = 1;
	}
	/* IMAP4rev2 has ESEARCH only (RFC 9051 7.3.4). */
	j->esearch = j->prog.esearch || imap_rev2(s);
	if (j->esearch && j->prog.ret == 0)
		j->prog.ret = IMAP_SEARCH_RET_ALL;
	imap_submit(s, imap_search_work, imap_search_done, j);
}
