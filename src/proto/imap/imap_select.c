/*
 * Entering and leaving the selected state: SELECT and EXAMINE (with the
 * CONDSTORE and QRESYNC parameters of RFC 7162), CLOSE, UNSELECT (RFC
 * 3691), and EXPUNGE / UID EXPUNGE (UIDPLUS, RFC 4315).
 *
 * QRESYNC: the store keeps every expunge with its MODSEQ, so the client's
 * known-uids narrow the VANISHED (EARLIER) answer and its seq-match data
 * (only a hint for servers that forget expunges) is checked and ignored.
 *
 * A mailbox of IMAP_LISTING_MIN messages or more is listed through the
 * cache of imap_listing.c: its state is read again once the watch is in
 * place, and a listing of exactly that state, if cached, is used instead of
 * reading the messages from the store.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_seqset.h"

struct imap_select_job {
	struct store_account *acct;
	int64_t account_id;
	struct imap_notify *notify;
	char *name;
	struct store_watch *old_watch;  /* of the mailbox selected before */
	struct store_watch *watch;
	struct store_mailbox mbox;
	int found;
	struct store_message *msgs;
	size_t nmsgs;
	struct imap_listing *listing;   /* instead of msgs */
	struct imap_result res;
	unsigned readonly : 1;
	unsigned condstore : 1;
	/* QRESYNC (uidvalidity modseq [known-uids]): */
	unsigned qresync : 1;
	uint32_t q_uidvalidity;
	uint64_t q_modseq;
	char *q_known;                  /* NULL: 1:* */
	struct store_changes q_changes; /* since q_modseq, when UIDVALIDITY matched */
	unsigned q_match : 1;
};

/* Reads the mailbox's state again into *mbox (same id, else -1). */
static int
imap_select_state(struct imap_select_job *j, struct store_mailbox *mbox)
{
	struct store_mailbox now;
	const char *error;

	if (store_mailbox_get(j->acct, j->name, &now, &error) <= 0)
		return -1;
	if (now.id != mbox->id) {
		store_mailbox_clear(&now);
		return -1;
	}
	store_mailbox_clear(mbox);
	*mbox = now;
	return 0;
}

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
	if (j->mbox.messages >= IMAP_LISTING_MIN &&
	    imap_select_state(j, &j->mbox) == 0 &&
	    (j->listing = imap_listing_get(j->account_id, &j->mbox)) != NULL) {
		/* Cached: exactly this state, read after the watch was in place. */
	} else if (store_message_list(j->acct, j->mbox.id, 0, UINT32_MAX, &j->msgs,
	    &j->nmsgs, &error) < 0) {
		imap_result_fail(&j->res, error);
		store_watch_remove(&j->watch);
		return;
	} else if (j->mbox.messages >= IMAP_LISTING_MIN) {
		struct store_mailbox after;

		/* Cached only if nothing changed while it was read. */
		if (store_mailbox_get(j->acct, j->name, &after, &error) > 0) {
			if (imap_listing_same(&after, &j->mbox))
				j->listing = imap_listing_put(j->account_id, &j->mbox, j->msgs,
				    j->nmsgs);
			store_mailbox_clear(&after);
		}
	}
	if (j->qresync && j->q_uidvalidity == j->mbox.uidvalidity) {
		if (store_changes_since(j->acct, j->mbox.id, j->q_modseq, &j->q_changes,
		    &error) < 0) {
			imap_result_fail(&j->res, error);
			store_watch_remove(&j->watch);
			return;
		}
		j->q_match = 1;
	}
}

static void
imap_select_job_free(struct imap_select_job *j)
{
	if (j->watch != NULL)
		store_watch_remove(&j->watch);
	if (j->msgs != NULL)
		store_messages_free(&j->msgs, j->nmsgs);
	imap_listing_release(&j->listing);
	if (j->found)
		store_mailbox_clear(&j->mbox);
	imap_result_clear(&j->res);
	store_changes_clear(&j->q_changes);
	free(j->q_known);
	free(j->name);
	free(j);
}

/* RFC 7162 3.2.5.1: what the client missed since its MODSEQ, expunges
 * first, then the messages whose flags changed (or that are new). */
static void
imap_select_qresync(struct imap_session *s, struct imap_select_job *j)
{
	struct imap_view *v = s->view;
	struct imap_seqset known, *within = NULL;
	struct buf out = BUF_INIT;
	const char *error;
	uint32_t i;

	if (j->q_known != NULL && imap_seqset_parse(j->q_known, &known, &error) == 0) {
		imap_seqset_resolve(&known, v->uidnext > 0 ? v->uidnext - 1 : 0);
		within = &known;
	}
	imap_view_vanished_earlier(v, j->q_changes.expunged, j->q_changes.nexpunged, within,
	    &out);
	for (i = 0; i < v->count; i++) {
		const struct imap_msg *m = &v->msgs[i];

		if (m->modseq <= j->q_modseq ||
		    (within != NULL && m->uid < v->uidnext && !imap_seqset_contains(within, m->uid) &&
		    m->uid <= known.ranges[known.count - 1].hi))
			continue;
		buf_printf(&out, "* %u FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_view_format_flags(v, m, &out);
		buf_printf(&out, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
	}
	if (within != NULL)
		imap_seqset_free(&known);
	net_conn_write(s->conn, out.data, out.len);
	buf_free(&out);
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
	if (j->listing != NULL)
		imap_view_load_view(v, imap_listing_view(j->listing));
	else
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
	net_conn_printf(s->conn, "* OK [MAILBOXID (F%lld)] Ok\r\n", (long long)v->mailbox_id);
	if (imap_rev2(s) || imap_utf8_mode(s)) {
		struct buf out = BUF_INIT;

		buf_puts(&out, "* LIST () \"/\" ");
		imap_mailbox_write(s, &out, v->name);
		buf_puts(&out, "\r\n");
		net_conn_write(s->conn, out.data, out.len);
		buf_free(&out);
	}
	if (j->q_match)
		imap_select_qresync(s, j);
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

/* A number atom in 1..max. */
static int
imap_select_number(const struct imap_arg *a, uint64_t max, uint64_t *n_r)
{
	const char *p;
	uint64_t n = 0;

	if (a == NULL || a->type != IMAP_ARG_ATOM || a->str[0] == '\0')
		return -1;
	for (p = a->str; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || n > (max - (uint64_t)(*p - '0')) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n == 0)
		return -1;
	*n_r = n;
	return 0;
}

/* (QRESYNC (uidvalidity modseq [known-uids [(seq-match)]])) of RFC 7162
 * 3.2.5. Returns 0 or -1. */
static int
imap_select_qresync_parse(const struct imap_arg *list, struct imap_select_job *j)
{
	const struct imap_arg *a = list->list;
	struct imap_seqset set;
	const char *error;
	uint64_t n;

	if (list->type != IMAP_ARG_LIST || list->count < 2 || list->count > 4)
		return -1;
	if (imap_select_number(a, UINT32_MAX, &n) < 0)
		return -1;
	j->q_uidvalidity = (uint32_t)n;
	a = a->next;
	if (imap_select_number(a, INT64_MAX, &j->q_modseq) < 0)
		return -1;
	a = a->next;
	if (a != NULL && a->type == IMAP_ARG_ATOM) {
		if (imap_seqset_parse(a->str, &set, &error) < 0)
			return -1;
		imap_seqset_free(&set);
		j->q_known = xstrdup(a->str);
		a = a->next;
	}
	if (a != NULL) {
		/* seq-match-data: (known-sequence-set known-uid-set). */
		const struct imap_arg *x = a->list;

		if (a->type != IMAP_ARG_LIST || a->count != 2 || a->next != NULL)
			return -1;
		for (; x != NULL; x = x->next) {
			if (x->type != IMAP_ARG_ATOM || imap_seqset_parse(x->str, &set, &error) < 0)
				return -1;
			imap_seqset_free(&set);
		}
	}
	j->qresync = 1;
	return 0;
}

static void
imap_select_start(struct imap_session *s, const struct imap_cmd *cmd, int readonly)
{
	struct imap_select_job *j;
	const char *error;
	int condstore = 0;

	j = xcalloc(1, sizeof(*j));
	if (cmd->nargs == 2 && cmd->args->next->type == IMAP_ARG_LIST) {
		const struct imap_arg *p;

		for (p = cmd->args->next->list; p != NULL; p = p->next) {
			if (p->type == IMAP_ARG_ATOM && strcasecmp(p->str, "CONDSTORE") == 0) {
				condstore = 1;
				continue;
			}
			if (p->type == IMAP_ARG_ATOM && strcasecmp(p->str, "QRESYNC") == 0 &&
			    !j->qresync && p->next != NULL) {
				/* RFC 7162 3.2.5: only once ENABLEd. */
				if (!(s->enabled & IMAP_ENABLED_QRESYNC)) {
					imap_select_job_free(j);
					imap_finish_bad(s, "QRESYNC is not enabled");
					return;
				}
				p = p->next;
				if (imap_select_qresync_parse(p, j) < 0) {
					imap_select_job_free(j);
					imap_finish_bad(s, "Invalid QRESYNC parameter");
					return;
				}
				continue;
			}
			imap_select_job_free(j);
			imap_finish_bad(s, "Unknown SELECT parameter");
			return;
		}
	} else if (cmd->nargs != 1) {
		imap_select_job_free(j);
		imap_finish_bad(s, "Syntax: SELECT mailbox [(CONDSTORE | QRESYNC (...))]");
		return;
	}
	if (imap_mailbox_arg(s, cmd->args, &j->name, &error) < 0) {
		imap_select_job_free(j);
		imap_finish_mailbox_error(s, error);
		return;
	}
	if (s->view != NULL && (imap_rev2(s) || (s->enabled & IMAP_ENABLED_QRESYNC)))
		net_conn_puts(s->conn, "* OK [CLOSED] Previous mailbox closed\r\n");
	imap_deselect(s, &j->old_watch);
	if (condstore)
		s->enabled |= IMAP_ENABLED_CONDSTORE;
	j->acct = s->acct;
	j->account_id = s->account_id;
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
