/*
 * LIST (RFC 9051 6.3.9, with LIST-EXTENDED of RFC 5258, CHILDREN of RFC
 * 3348, SPECIAL-USE of RFC 6154 and LIST-STATUS of RFC 5819) and LSUB.
 *
 * One store call lists every mailbox of the account (with its counters, so
 * RETURN (STATUS ...) costs nothing more) and one lists the subscriptions;
 * the matching is done here.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_utf7.h"

#define IMAP_LIST_PATTERN_MAX 1024      /* bytes of one pattern */
#define IMAP_LIST_PATTERNS_MAX 32       /* patterns of one LIST */

/* Selection and return options. */
#define LIST_SEL_SUBSCRIBED 0x01
#define LIST_SEL_RECURSIVE 0x02
#define LIST_SEL_SPECIAL 0x04
#define LIST_RET_SUBSCRIBED 0x10
#define LIST_RET_CHILDREN 0x20
#define LIST_RET_SPECIAL 0x40
#define LIST_RET_STATUS 0x80
#define LIST_EXTENDED 0x100             /* any of the above syntax was used */
#define LIST_LSUB 0x200

int
imap_list_match(const char *pattern, const char *name)
{
	size_t plen = strlen(pattern), i;
	unsigned char *cur, *next;
	const char *c;
	int match;

	cur = xcalloc(plen + 1, 1);
	next = xcalloc(plen + 1, 1);
	cur[0] = 1;
	for (c = name;; c++) {
		/* Wildcards may match nothing. */
		for (i = 0; i < plen; i++) {
			if (cur[i] && (pattern[i] == '*' || pattern[i] == '%'))
				cur[i + 1] = 1;
		}
		if (*c == '\0')
			break;
		memset(next, 0, plen + 1);
		for (i = 0; i < plen; i++) {
			if (!cur[i])
				continue;
			if (pattern[i] == '*' || (pattern[i] == '%' && *c != '/'))
				next[i] = 1;
			else if (pattern[i] == *c)
				next[i + 1] = 1;
		}
		memcpy(cur, next, plen + 1);
	}
	match = cur[plen];
	free(cur);
	free(next);
	return match;
}

struct imap_list_job {
	struct store_account *acct;
	int want_subs;
	struct store_mailbox *mboxes;
	size_t nmboxes;
	char **subs;
	size_t nsubs;
	struct imap_result res;
	/* The request. */
	unsigned opts;
	unsigned status_items;
	char **patterns;                /* UTF-8, reference prepended */
	size_t npatterns;
	int delimiter_query;            /* LIST "" "" */
};

static void
imap_list_work(void *arg)
{
	struct imap_list_job *j = arg;
	const char *error;

	if (store_mailbox_list(j->acct, &j->mboxes, &j->nmboxes, &error) < 0) {
		imap_result_fail(&j->res, error);
		return;
	}
	if (j->want_subs && store_subscriptions(j->acct, &j->subs, &j->nsubs, &error) < 0)
		imap_result_fail(&j->res, error);
}

static void
imap_list_job_free(struct imap_list_job *j)
{
	size_t i;

	if (j->mboxes != NULL)
		store_mailboxes_free(&j->mboxes, j->nmboxes);
	if (j->subs != NULL)
		store_subscriptions_free(&j->subs, j->nsubs);
	for (i = 0; i < j->npatterns; i++)
		free(j->patterns[i]);
	free(j->patterns);
	imap_result_clear(&j->res);
	free(j);
}

/* A name to report: a mailbox, a subscription, or a parent of either. */
struct imap_list_entry {
	const char *name;
	const struct store_mailbox *mbox;   /* NULL: does not exist */
	unsigned subscribed : 1;
	unsigned has_children : 1;
	unsigned child_subscribed : 1;      /* CHILDINFO ("SUBSCRIBED") */
	unsigned listed : 1;
};

static int
imap_entry_cmp(const void *a, const void *b)
{
	const struct imap_list_entry *x = a, *y = b;
	int xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;

	if (xi != yi)
		return yi - xi;
	return strcmp(x->name, y->name);
}

struct imap_list_set {
	struct imap_list_entry *e;
	size_t n, cap;
	char **owned;                       /* parent names made here */
	size_t nowned;
};

static struct imap_list_entry *
imap_list_find(struct imap_list_set *set, const char *name)
{
	size_t i;

	/* Lists are small; sorted lookups come after the set is built. */
	for (i = 0; i < set->n; i++) {
		if (strcmp(set->e[i].name, name) == 0)
			return &set->e[i];
	}
	return NULL;
}

static struct imap_list_entry *
imap_list_add(struct imap_list_set *set, const char *name)
{
	struct imap_list_entry *e = imap_list_find(set, name);

	if (e != NULL)
		return e;
	if (set->n == set->cap) {
		set->cap = set->cap == 0 ? 32 : set->cap * 2;
		set->e = xreallocarray(set->e, set->cap, sizeof(*set->e));
	}
	e = &set->e[set->n++];
	memset(e, 0, sizeof(*e));
	e->name = name;
	return e;
}

/* Adds the parents of name (as entries that may not exist). */
static void
imap_list_add_parents(struct imap_list_set *set, const char *name, int subscribed_child)
{
	const char *p;

	for (p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/')) {
		char *parent = xstrndup(name, (size_t)(p - name));
		struct imap_list_entry *e = imap_list_find(set, parent);

		if (e == NULL) {
			set->owned = xreallocarray(set->owned, set->nowned + 1,
			    sizeof(*set->owned));
			set->owned[set->nowned++] = parent;
			e = imap_list_add(set, parent);
		} else {
			free(parent);
		}
		e->has_children = 1;
		if (subscribed_child)
			e->child_subscribed = 1;
	}
}

static const struct {
	unsigned flag;
	const char *attr;
} imap_special_attrs[] = {
	{ STORE_SPECIAL_SENT, "\\Sent" }, { STORE_SPECIAL_DRAFTS, "\\Drafts" },
	{ STORE_SPECIAL_TRASH, "\\Trash" }, { STORE_SPECIAL_JUNK, "\\Junk" },
	{ STORE_SPECIAL_ARCHIVE, "\\Archive" }, { STORE_SPECIAL_ALL, "\\All" },
	{ STORE_SPECIAL_FLAGGED, "\\Flagged" },
};

static void
imap_list_write(struct imap_session *s, const struct imap_list_job *j,
    const struct imap_list_entry *e, struct buf *out)
{
	const char *sep = "";
	size_t i;

	buf_puts(out, (j->opts & LIST_LSUB) ? "* LSUB (" : "* LIST (");
#define ATTR(a) do { buf_puts(out, sep); buf_puts(out, a); sep = " "; } while (0)
	if (e->mbox == NULL) {
		if ((j->opts & LIST_EXTENDED) || imap_rev2(s))
			ATTR("\\NonExistent");
		else
			ATTR("\\Noselect");
	}
	if (!(j->opts & LIST_LSUB)) {
		ATTR(e->has_children ? "\\HasChildren" : "\\HasNoChildren");
		if (e->subscribed && (j->opts & (LIST_RET_SUBSCRIBED | LIST_SEL_SUBSCRIBED)))
			ATTR("\\Subscribed");
		for (i = 0; e->mbox != NULL &&
		    i < sizeof(imap_special_attrs) / sizeof(imap_special_attrs[0]); i++) {
			if (e->mbox->special_use & imap_special_attrs[i].flag)
				ATTR(imap_special_attrs[i].attr);
		}
	}
#undef ATTR
	buf_puts(out, ") \"/\" ");
	imap_mailbox_write(s, out, e->name);
	if ((j->opts & LIST_SEL_RECURSIVE) && e->child_subscribed && !e->subscribed)
		buf_puts(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_puts(out, "\r\n");
	if ((j->opts & LIST_RET_STATUS) && e->mbox != NULL)
		imap_status_write(s, out, e->mbox, j->status_items);
}

static int
imap_list_matches(const struct imap_list_job *j, const char *name)
{
	size_t i;

	for (i = 0; i < j->npatterns; i++) {
		if (imap_list_match(j->patterns[i], name))
			return 1;
	}
	return 0;
}

static void
imap_list_done(struct imap_session *s, void *arg)
{
	struct imap_list_job *j = arg;
	struct imap_list_set set = { NULL, 0, 0, NULL, 0 };
	struct buf out = BUF_INIT;
	size_t i, k;
	int by_subs = (j->opts & (LIST_LSUB | LIST_SEL_SUBSCRIBED)) != 0;

	if (s == NULL) {
		imap_list_job_free(j);
		return;
	}
	if (j->res.failed) {
		imap_finish_result(s, &j->res);
		imap_list_job_free(j);
		return;
	}
	for (i = 0; i < j->nmboxes; i++) {
		struct imap_list_entry *e = imap_list_add(&set, j->mboxes[i].name);

		e->mbox = &j->mboxes[i];
	}
	for (i = 0; i < j->nsubs; i++)
		imap_list_add(&set, j->subs[i])->subscribed = 1;
	/* Parents, and which of them have subscribed children. */
	for (i = 0, k = set.n; i < k; i++) {
		if (set.e[i].mbox != NULL || set.e[i].subscribed)
			imap_list_add_parents(&set, set.e[i].name, set.e[i].subscribed);
	}
	/* has_children counts existing children only (RFC 5258 4). */
	for (i = 0; i < set.n; i++)
		set.e[i].has_children = 0;
	for (i = 0; i < j->nmboxes; i++) {
		const char *name = j->mboxes[i].name, *p;

		for (p = strchr(name, '/'); p != NULL; p = strchr(p + 1, '/')) {
			char *parent = xstrndup(name, (size_t)(p - name));
			struct imap_list_entry *e = imap_list_find(&set, parent);

			if (e != NULL)
				e->has_children = 1;
			free(parent);
		}
	}
	if (set.n > 1)
		qsort(set.e, set.n, sizeof(*set.e), imap_entry_cmp);
	if (j->delimiter_query) {
		buf_printf(&out, "* %s (\\Noselect) \"/\" \"\"\r\n",
		    (j->opts & LIST_LSUB) ? "LSUB" : "LIST");
	}
	for (i = 0; i < set.n && !j->delimiter_query; i++) {
		struct imap_list_entry *e = &set.e[i];

		if (!imap_list_matches(j, e->name))
			continue;
		if (by_subs) {
			/* Subscribed ones; with RECURSIVEMATCH (or LSUB's '%'
			 * rule) also parents of subscribed ones. */
			if (!e->subscribed && !(e->child_subscribed &&
			    (j->opts & (LIST_SEL_RECURSIVE | LIST_LSUB))))
				continue;
			if ((j->opts & LIST_LSUB) && !e->subscribed) {
				/* An unsubscribed parent shows only where '%'
				 * stopped short of its subscribed child. */
				buf_puts(&out, "* LSUB (\\Noselect) \"/\" ");
				imap_mailbox_write(s, &out, e->name);
				buf_puts(&out, "\r\n");
				continue;
			}
		} else if (e->mbox == NULL && !e->has_children) {
			continue;       /* a subscription to nothing */
		}
		if ((j->opts & LIST_SEL_SPECIAL) && (e->mbox == NULL || e->mbox->special_use == 0))
			continue;
		imap_list_write(s, j, e, &out);
		if (out.len > 65536) {
			net_conn_write(s->conn, out.data, out.len);
			buf_reset(&out);
		}
	}
	net_conn_write(s->conn, out.data, out.len);
	buf_free(&out);
	for (i = 0; i < set.nowned; i++)
		free(set.owned[i]);
	free(set.owned);
	free(set.e);
	imap_finish(s, "OK %s completed", (j->opts & LIST_LSUB) ? "LSUB" : "LIST");
	imap_list_job_free(j);
}

/* Turns reference + pattern (client encoding) into a UTF-8 pattern. */
static int
imap_list_pattern(struct imap_session *s, const char *ref, const char *pat, char **out_r)
{
	struct buf raw = BUF_INIT, dec = BUF_INIT;
	size_t len;

	/* Plain concatenation, as RFC 9051 6.3.9 describes. */
	buf_puts(&raw, ref);
	buf_puts(&raw, pat);
	if (imap_utf8_mode(s)) {
		if (!imap_utf8_valid(raw.data != NULL ? raw.data : "", raw.len)) {
			buf_free(&raw);
			return -1;
		}
		buf_append(&dec, buf_cstr(&raw), raw.len);
	} else if (imap_utf7_decode(buf_cstr(&raw), &dec) < 0) {
		buf_free(&raw);
		buf_free(&dec);
		return -1;
	}
	buf_free(&raw);
	len = dec.len;
	if (len >= 5 && strncasecmp(buf_cstr(&dec), "INBOX", 5) == 0 &&
	    (len == 5 || dec.data[5] == '/' || dec.data[5] == '*' || dec.data[5] == '%'))
		memcpy(dec.data, "INBOX", 5);
	*out_r = buf_steal(&dec);
	if (*out_r == NULL)
		*out_r = xstrdup("");
	return 0;
}

static int
imap_list_options(const struct imap_arg *list, int ret, unsigned *opts, unsigned *items)
{
	const struct imap_arg *a;

	for (a = list->list; a != NULL; a = a->next) {
		if (a->type != IMAP_ARG_ATOM)
			return -1;
		if (!ret && strcasecmp(a->str, "SUBSCRIBED") == 0)
			*opts |= LIST_SEL_SUBSCRIBED | LIST_RET_SUBSCRIBED;
		else if (!ret && strcasecmp(a->str, "RECURSIVEMATCH") == 0)
			*opts |= LIST_SEL_RECURSIVE;
		else if (!ret && strcasecmp(a->str, "SPECIAL-USE") == 0)
			*opts |= LIST_SEL_SPECIAL | LIST_RET_SPECIAL;
		else if (!ret && strcasecmp(a->str, "REMOTE") == 0)
			;
		else if (ret && strcasecmp(a->str, "SUBSCRIBED") == 0)
			*opts |= LIST_RET_SUBSCRIBED;
		else if (ret && strcasecmp(a->str, "CHILDREN") == 0)
			*opts |= LIST_RET_CHILDREN;
		else if (ret && strcasecmp(a->str, "SPECIAL-USE") == 0)
			*opts |= LIST_RET_SPECIAL;
		else if (ret && strcasecmp(a->str, "STATUS") == 0) {
			if (imap_status_items(a->next, items) < 0)
				return -1;
			*opts |= LIST_RET_STATUS;
			a = a->next;
		} else
			return -1;
	}
	/* RECURSIVEMATCH needs a selection option to recurse on. */
	if ((*opts & LIST_SEL_RECURSIVE) && !(*opts & LIST_SEL_SUBSCRIBED))
		return -1;
	return 0;
}

static void
imap_list_start(struct imap_session *s, const struct imap_cmd *cmd, int lsub)
{
	struct imap_list_job *j = xcalloc(1, sizeof(*j));
	const struct imap_arg *a = cmd->args, *ref, *pat, *p;
	const char *syntax = lsub ? "Syntax: LSUB reference pattern" :
	    "Syntax: LIST [(options)] reference pattern [RETURN (options)]";
	int multi;

	j->acct = s->acct;
	if (lsub)
		j->opts |= LIST_LSUB;
	if (!lsub && a != NULL && a->type == IMAP_ARG_LIST) {
		j->opts |= LIST_EXTENDED;
		if (imap_list_options(a, 0, &j->opts, &j->status_items) < 0)
			goto bad;
		a = a->next;
	}
	if (a == NULL || !imap_arg_astring(a, IMAP_LIST_PATTERN_MAX) || a->next == NULL)
		goto bad;
	ref = a;
	pat = a->next;
	multi = pat->type == IMAP_ARG_LIST;
	if (multi) {
		if (lsub || pat->count == 0 || pat->count > IMAP_LIST_PATTERNS_MAX)
			goto bad;
		j->opts |= LIST_EXTENDED;
	}
	if ((a = pat->next) != NULL) {
		if (lsub || a->type != IMAP_ARG_ATOM || strcasecmp(a->str, "RETURN") != 0 ||
		    a->next == NULL || a->next->type != IMAP_ARG_LIST || a->next->next != NULL)
			goto bad;
		j->opts |= LIST_EXTENDED;
		if (imap_list_options(a->next, 1, &j->opts, &j->status_items) < 0)
			goto bad;
	}
	for (p = multi ? pat->list : pat; p != NULL; p = multi ? p->next : NULL) {
		char *utf8;

		if (!imap_arg_astring(p, IMAP_LIST_PATTERN_MAX))
			goto bad;
		if (p->len == 0 && !multi) {
			j->delimiter_query = 1;
			break;
		}
		if (imap_list_pattern(s, ref->str, p->str, &utf8) < 0)
			continue;       /* matches nothing */
		j->patterns = xreallocarray(j->patterns, j->npatterns + 1, sizeof(*j->patterns));
		j->patterns[j->npatterns++] = utf8;
	}
	if (j->status_items & IMAP_STATUS_HIGHESTMODSEQ)
		s->enabled |= IMAP_ENABLED_CONDSTORE;
	j->want_subs = 1;
	imap_submit(s, imap_list_work, imap_list_done, j);
	return;
bad:
	imap_list_job_free(j);
	imap_finish_bad(s, syntax);
}

void
imap_cmd_list(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_list_start(s, cmd, 0);
}

void
imap_cmd_lsub(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_list_start(s, cmd, 1);
}
