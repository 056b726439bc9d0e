/*
 * The selected mailbox as the session has shown it to the client: the
 * messages in sequence-number order with their UIDs, flags and MODSEQs.
 *
 * The store tells us something changed (a store_watch posts to the loop);
 * at the next point the RFC allows, we ask store_changes_since() for the
 * details and turn them into untagged FETCH FLAGS, EXISTS and EXPUNGE. A
 * message expunged by someone else stays in the view, marked, until EXPUNGE
 * responses may be sent (not during FETCH, STORE or SEARCH: RFC 9051 7.5.1),
 * so sequence numbers never shift under the client mid-command.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_seqset.h"

/* --- notifications ------------------------------------------------------- */

/*
 * The watch's context. The store calls imap_notify_fire() on any thread; it
 * posts at most one run at a time to the session's loop. The object
 * outlives the session while a run is posted: refs counts the session and
 * each posted run.
 */
struct imap_notify {
	atomic_int refs;
	atomic_int posted;
	struct net_loop *loop;
	struct imap_session *s;         /* loop thread only; NULL once gone */
};

static void
imap_notify_unref(struct imap_notify *n)
{
	if (atomic_fetch_sub(&n->refs, 1) == 1)
		free(n);
}

struct imap_notify *
imap_notify_new(struct imap_session *s)
{
	struct imap_notify *n = xcalloc(1, sizeof(*n));

	atomic_init(&n->refs, 1);
	atomic_init(&n->posted, 0);
	n->loop = net_conn_loop(s->conn);
	n->s = s;
	return n;
}

void
imap_notify_detach(struct imap_notify **np)
{
	struct imap_notify *n = *np;

	if (n == NULL)
		return;
	*np = NULL;
	n->s = NULL;
	imap_notify_unref(n);
}

static void
imap_notify_run(void *arg)
{
	struct imap_notify *n = arg;
	struct imap_session *s = n->s;

	atomic_store(&n->posted, 0);
	if (s != NULL && s->view != NULL) {
		s->view->dirty = 1;
		if (s->input == IMAP_INPUT_IDLE && !s->busy && !s->closing)
			imap_idle_changed(s);
	}
	imap_notify_unref(n);
}

void
imap_notify_fire(void *ctx)
{
	struct imap_notify *n = ctx;

	if (atomic_exchange(&n->posted, 1) != 0)
		return;
	atomic_fetch_add(&n->refs, 1);
	net_loop_post(n->loop, imap_notify_run, n);
}

/* --- the view ------------------------------------------------------------ */

struct imap_view *
imap_view_new(const struct store_mailbox *mbox, int readonly)
{
	struct imap_view *v = xcalloc(1, sizeof(*v));

	v->mailbox_id = mbox->id;
	v->name = xstrdup(mbox->name);
	v->uidvalidity = mbox->uidvalidity;
	v->uidnext = mbox->uidnext;
	v->modseq = mbox->highestmodseq;
	v->readonly = readonly ? 1 : 0;
	v->nkwsets = 1;
	v->kwsets = xcalloc(1, sizeof(*v->kwsets));
	return v;
}

void
imap_view_free(struct imap_view **vp)
{
	struct imap_view *v = *vp;
	uint32_t i;

	if (v == NULL)
		return;
	*vp = NULL;
	for (i = 1; i < v->nkwsets; i++)
		imap_keywords_free(&v->kwsets[i]);
	free(v->kwsets);
	for (i = 0; i < v->nkeywords; i++)
		free(v->keywords[i]);
	free(v->keywords);
	free(v->msgs);
	free(v->saved);
	free(v->name);
	free(v);
}

static int
imap_str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds keywords the view has not announced yet; returns 1 if any. */
static int
imap_view_learn_keywords(struct imap_view *v, char **kw)
{
	uint32_t i;
	int added = 0;

	for (; *kw != NULL; kw++) {
		for (i = 0; i < v->nkeywords; i++) {
			if (strcmp(v->keywords[i], *kw) == 0)
				break;
		}
		if (i < v->nkeywords)
			continue;
		v->keywords = xreallocarray(v->keywords, v->nkeywords + 1, sizeof(*v->keywords));
		v->keywords[v->nkeywords++] = xstrdup(*kw);
		added = 1;
	}
	return added;
}

/* The index of a keyword set, interned (sorted) in the view. */
static uint16_t
imap_view_kwset(struct imap_view *v, const char *const *keywords, int *new_keyword_r)
{
	char **kw;
	size_t n, i;
	uint32_t j;

	if (keywords == NULL || keywords[0] == NULL)
		return 0;
	kw = imap_keywords_dup(keywords);
	for (n = 0; kw[n] != NULL; n++)
		;
	qsort(kw, n, sizeof(*kw), imap_str_cmp);
	for (j = 1; j < v->nkwsets; j++) {
		char **k = v->kwsets[j];

		for (i = 0; i < n && k[i] != NULL && strcmp(k[i], kw[i]) == 0; i++)
			;
		if (i == n && k[i] == NULL) {
			imap_keywords_free(&kw);
			return (uint16_t)j;
		}
	}
	if (v->nkwsets > UINT16_MAX) {
		/* Not reachable with STORE_KEYWORDS_MAX sets in practice. */
		imap_keywords_free(&kw);
		return 0;
	}
	if (imap_view_learn_keywords(v, kw) && new_keyword_r != NULL)
		*new_keyword_r = 1;
	v->kwsets = xreallocarray(v->kwsets, v->nkwsets + 1, sizeof(*v->kwsets));
	v->kwsets[v->nkwsets] = kw;
	return (uint16_t)v->nkwsets++;
}

static void
imap_view_append(struct imap_view *v, const struct store_message *sm, int *new_keyword_r)
{
	struct imap_msg *m;

	if (v->count == v->cap) {
		v->cap = v->cap == 0 ? 64 : v->cap * 2;
		v->msgs = xreallocarray(v->msgs, v->cap, sizeof(*v->msgs));
	}
	m = &v->msgs[v->count++];
	memset(m, 0, sizeof(*m));
	m->uid = sm->uid;
	m->flags = (uint8_t)sm->flags;
	m->modseq = sm->modseq;
	m->kwset = imap_view_kwset(v, (const char *const *)sm->keywords, new_keyword_r);
	if (sm->uid >= v->uidnext)
		v->uidnext = sm->uid + 1;
}

void
imap_view_load(struct imap_view *v, const struct store_message *msgs, size_t n)
{
	size_t i;

	/* Exactly what the listing needs: a session may keep its view for
	 * hours (IDLE), and most mailboxes then change little. */
	if (v->count == 0 && n > v->cap && n <= UINT32_MAX) {
		v->msgs = xreallocarray(v->msgs, n, sizeof(*v->msgs));
		v->cap = (uint32_t)n;
	}
	for (i = 0; i < n; i++) {
		if (v->count > 0 && msgs[i].uid <= v->msgs[v->count - 1].uid)
			continue;
		imap_view_append(v, &msgs[i], NULL);
	}
}

void
imap_view_load_view(struct imap_view *v, const struct imap_view *from)
{
	uint32_t i;

	v->msgs = xreallocarray(v->msgs, from->count > 0 ? from->count : 1, sizeof(*v->msgs));
	memcpy(v->msgs, from->msgs, from->count * sizeof(*v->msgs));
	v->count = from->count;
	v->cap = from->count > 0 ? from->count : 1;
	v->npending = from->npending;
	v->kwsets = xreallocarray(v->kwsets, from->nkwsets, sizeof(*v->kwsets));
	v->kwsets[0] = NULL;
	for (i = 1; i < from->nkwsets; i++)
		v->kwsets[i] = imap_keywords_dup((const char *const *)from->kwsets[i]);
	v->nkwsets = from->nkwsets;
	v->keywords = xreallocarray(NULL, from->nkeywords > 0 ? from->nkeywords : 1,
	    sizeof(*v->keywords));
	for (i = 0; i < from->nkeywords; i++)
		v->keywords[i] = xstrdup(from->keywords[i]);
	v->nkeywords = from->nkeywords;
	if (from->uidnext > v->uidnext)
		v->uidnext = from->uidnext;
}

int64_t
imap_view_find_uid(const struct imap_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else if (v->msgs[mid].uid > uid)
			hi = mid;
		else
			return mid;
	}
	return -1;
}

/* The first index whose UID is >= uid. */
static uint32_t
imap_view_lower_bound(const struct imap_view *v, uint32_t uid)
{
	uint32_t lo = 0, hi = v->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (v->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const char *const *
imap_view_keywords(const struct imap_view *v, const struct imap_msg *m)
{
	return m->kwset != 0 ? (const char *const *)v->kwsets[m->kwset] : NULL;
}

int
imap_view_set_flags(struct imap_view *v, struct imap_msg *m, unsigned flags,
    const char *const *keywords, int *new_keyword_r)
{
	uint16_t kwset = imap_view_kwset(v, keywords, new_keyword_r);
	int changed = m->flags != (uint8_t)flags || m->kwset != kwset;

	m->flags = (uint8_t)flags;
	m->kwset = kwset;
	return changed;
}

void
imap_view_format_flags(const struct imap_view *v, const struct imap_msg *m,
    struct buf *out)
{
	imap_flags_format(out, m->flags, imap_view_keywords(v, m));
}

void
imap_view_write_flags(struct imap_session *s, int permanent)
{
	struct imap_view *v = s->view;
	struct buf out = BUF_INIT;
	uint32_t i;

	buf_puts(&out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (i = 0; i < v->nkeywords; i++)
		buf_printf(&out, " %s", v->keywords[i]);
	buf_puts(&out, ")\r\n");
	if (permanent) {
		if (v->readonly) {
			buf_puts(&out, "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
		} else {
			buf_puts(&out, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted "
			    "\\Seen \\Draft");
			for (i = 0; i < v->nkeywords; i++)
				buf_printf(&out, " %s", v->keywords[i]);
			buf_puts(&out, " \\*)] Flags permitted\r\n");
		}
	}
	net_conn_write(s->conn, out.data, out.len);
	buf_free(&out);
}

void
imap_view_mark_expunged(struct imap_view *v, const uint32_t *uids, size_t n)
{
	size_t i;
	int64_t idx;

	for (i = 0; i < n; i++) {
		if ((idx = imap_view_find_uid(v, uids[i])) >= 0 && !v->msgs[idx].expunged) {
			v->msgs[idx].expunged = 1;
			v->npending++;
		}
	}
}

void
imap_view_flush_expunges(struct imap_session *s)
{
	struct imap_view *v = s->view;
	struct buf out = BUF_INIT;
	uint32_t i, j;

	if (v == NULL || v->npending == 0)
		return;
	if (s->enabled & IMAP_ENABLED_QRESYNC) {
		/* RFC 7162 3.2.10: VANISHED, never EXPUNGE, once enabled. */
		uint32_t *uids = xreallocarray(NULL, v->npending, sizeof(*uids)), n = 0;

		for (i = 0; i < v->count; i++) {
			if (v->msgs[i].expunged)
				uids[n++] = v->msgs[i].uid;
		}
		buf_puts(&out, "* VANISHED ");
		imap_seqset_format(&out, uids, n);
		buf_puts(&out, "\r\n");
		free(uids);
	} else {
		/* Highest first, so each number is still right when it is read. */
		for (i = v->count; i > 0; i--) {
			if (v->msgs[i - 1].expunged)
				buf_printf(&out, "* %u EXPUNGE\r\n", i);
		}
	}
	for (i = 0, j = 0; i < v->count; i++) {
		if (!v->msgs[i].expunged)
			v->msgs[j++] = v->msgs[i];
	}
	v->count = j;
	v->npending = 0;
	net_conn_write(s->conn, out.data, out.len);
	buf_free(&out);
}

static int imap_uid_cmp(const void *a, const void *b);

void
imap_view_vanished_earlier(const struct imap_view *v, uint32_t *uids, size_t n,
    const struct imap_seqset *within, struct buf *out)
{
	size_t i, k = 0;

	if (n > 1)
		qsort(uids, n, sizeof(*uids), imap_uid_cmp);
	for (i = 0; i < n; i++) {
		if ((k > 0 && uids[k - 1] == uids[i]) || imap_view_find_uid(v, uids[i]) >= 0 ||
		    (within != NULL && !imap_seqset_contains(within, uids[i])))
			continue;
		uids[k++] = uids[i];
	}
	if (k == 0)
		return;
	buf_puts(out, "* VANISHED (EARLIER) ");
	imap_seqset_format(out, uids, k);
	buf_puts(out, "\r\n");
}

/* --- catching up with the store -------------------------------------------- */

struct imap_sync {
	struct store_account *acct;
	int64_t mailbox_id;
	uint64_t since;
	struct store_changes ch;
	struct imap_result res;
	int expunge_ok;
	void (*then)(struct imap_session *s);
};

static void
imap_sync_work(void *arg)
{
	struct imap_sync *job = arg;
	const char *error;

	if (store_changes_since(job->acct, job->mailbox_id, job->since, &job->ch, &error) < 0)
		imap_result_fail(&job->res, error);
}

static int
imap_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int
imap_msg_uid_cmp(const void *a, const void *b)
{
	const struct store_message *x = a, *y = b;

	return (x->uid > y->uid) - (x->uid < y->uid);
}

/* Merges the store's changes into the view, writing FLAGS, FETCH and
 * EXISTS responses (EXPUNGE comes with imap_view_flush_expunges). */
static void
imap_view_apply(struct imap_session *s, struct store_changes *ch)
{
	struct imap_view *v = s->view;
	struct buf out = BUF_INIT;
	uint32_t *report = NULL, nreport = 0, count_before = v->count, i, last;
	size_t k;
	int new_keyword = 0;

	imap_view_mark_expunged(v, ch->expunged, ch->nexpunged);
	if (ch->nexpunged > 1)
		qsort(ch->expunged, ch->nexpunged, sizeof(*ch->expunged), imap_uid_cmp);
	if (ch->nchanged > 1)
		qsort(ch->changed, ch->nchanged, sizeof(*ch->changed), imap_msg_uid_cmp);
	report = xreallocarray(NULL, ch->nchanged + 1, sizeof(*report));
	last = v->count > 0 ? v->msgs[v->count - 1].uid : 0;
	for (k = 0; k < ch->nchanged; k++) {
		const struct store_message *c = &ch->changed[k];
		int64_t idx = imap_view_find_uid(v, c->uid);

		if (idx >= 0) {
			struct imap_msg *m = &v->msgs[idx];
			int changed;

			if (m->expunged)
				continue;
			changed = imap_view_set_flags(v, m, c->flags,
			    (const char *const *)c->keywords, &new_keyword);
			if (c->modseq > m->modseq) {
				if (v->condstore)
					changed = 1;
				m->modseq = c->modseq;
			}
			if (changed)
				report[nreport++] = (uint32_t)idx;
			continue;
		}
		/* New, unless it is already gone again. */
		if (c->uid <= last || bsearch(&c->uid, ch->expunged, ch->nexpunged,
		    sizeof(*ch->expunged), imap_uid_cmp) != NULL)
			continue;
		imap_view_append(v, c, &new_keyword);
		last = c->uid;
	}
	if (new_keyword)
		imap_view_write_flags(s, 1);
	for (i = 0; i < nreport; i++) {
		struct imap_msg *m = &v->msgs[report[i]];

		buf_printf(&out, "* %u FETCH (UID %u FLAGS ", report[i] + 1, m->uid);
		imap_view_format_flags(v, m, &out);
		if (v->condstore)
			buf_printf(&out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
		buf_puts(&out, ")\r\n");
	}
	net_conn_write(s->conn, out.data, out.len);
	buf_free(&out);
	free(report);
	if (ch->highestmodseq > v->modseq)
		v->modseq = ch->highestmodseq;
	if (v->count != count_before)
		v->dirty_exists = 1;
}

static void
imap_view_write_exists(struct imap_session *s)
{
	struct imap_view *v = s->view;

	if (v->dirty_exists) {
		net_conn_printf(s->conn, "* %u EXISTS\r\n", v->count);
		v->dirty_exists = 0;
	}
}

static void
imap_sync_done(struct imap_session *s, void *arg)
{
	struct imap_sync *job = arg;

	if (s != NULL && s->view != NULL && s->view->mailbox_id == job->mailbox_id &&
	    job->res.failed && job->res.code == STORE_ERR_NOT_FOUND) {
		/* Another session deleted the mailbox (or renamed INBOX away
		 * and back): there is no view to keep consistent. */
		log_info(net_conn_id(s->conn), "event=imap-selected-deleted");
		imap_close(s, "Selected mailbox was deleted, have to disconnect");
	} else if (s != NULL && s->view != NULL && s->view->mailbox_id == job->mailbox_id) {
		if (job->res.failed)
			log_warn(net_conn_id(s->conn), "event=imap-sync-failed error=\"%s\"",
			    job->res.error);
		else
			imap_view_apply(s, &job->ch);
		if (job->expunge_ok)
			imap_view_flush_expunges(s);
		imap_view_write_exists(s);
	}
	if (s != NULL)
		job->then(s);
	store_changes_clear(&job->ch);
	imap_result_clear(&job->res);
	free(job);
}

void
imap_view_sync(struct imap_session *s, int force, int expunge_ok,
    void (*then)(struct imap_session *s))
{
	struct imap_view *v = s->view;
	struct imap_sync *job;

	if (v == NULL || (!v->dirty && !force)) {
		if (v != NULL) {
			if (expunge_ok)
				imap_view_flush_expunges(s);
			imap_view_write_exists(s);
		}
		then(s);
		return;
	}
	v->dirty = 0;
	job = xcalloc(1, sizeof(*job));
	job->acct = s->acct;
	job->mailbox_id = v->mailbox_id;
	job->since = v->modseq;
	job->expunge_ok = expunge_ok;
	job->then = then;
	imap_submit(s, imap_sync_work, imap_sync_done, job);
}

/* --- sequence sets against the view ----------------------------------------- */

int
imap_view_resolve(const struct imap_view *v, const char *text, int uid, uint32_t **idx_r,
    size_t *count_r, const char **error_r)
{
	struct imap_seqset set;
	uint32_t *idx = NULL;
	size_t n = 0, cap = 0, r;
	int64_t k;

	if (strcmp(text, "$") == 0) {
		/* The saved UIDs still in the view, in order. */
		idx = xreallocarray(NULL, v->nsaved + 1, sizeof(*idx));
		for (r = 0; r < v->nsaved; r++) {
			if ((k = imap_view_find_uid(v, v->saved[r])) >= 0)
				idx[n++] = (uint32_t)k;
		}
		*idx_r = idx;
		*count_r = n;
		return 0;
	}
	if (imap_seqset_parse(text, &set, error_r) < 0)
		return -1;
	if (uid) {
		imap_seqset_resolve(&set, v->count > 0 ? v->msgs[v->count - 1].uid : 0);
	} else if (v->count == 0 && set.has_star) {
		/* "1:*" of an empty mailbox: nothing. */
		set.count = 0;
	} else {
		imap_seqset_resolve(&set, v->count);
		if (set.count > 0 && set.ranges[set.count - 1].hi > v->count) {
			imap_seqset_free(&set);
			*error_r = "Invalid message sequence number";
			return -1;
		}
	}
	for (r = 0; r < set.count; r++) {
		uint32_t i = uid ? imap_view_lower_bound(v, set.ranges[r].lo) :
		    set.ranges[r].lo - 1;

		for (; i < v->count; i++) {
			if (uid ? v->msgs[i].uid > set.ranges[r].hi : i >= set.ranges[r].hi)
				break;
			if (n == cap) {
				cap = cap == 0 ? 16 : cap * 2;
				idx = xreallocarray(idx, cap, sizeof(*idx));
			}
			idx[n++] = i;
		}
	}
	imap_seqset_free(&set);
	*idx_r = idx;
	*count_r = n;
	return 0;
}
