/*
 * THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 sections 3 and 4).
 *
 * Containers live in one array and link by index; Message-IDs are found
 * through an open-addressing hash table, so threading a mailbox costs
 * O(n + references) plus the sorts. Loops in hostile References fields
 * are refused link by link (a link that would make a container its own
 * ancestor is skipped), and the walks are iterative where depth is up to
 * the sender.
 */
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_sort.h"

#define IMAP_THREAD_REFS_MAX 100        /* Message-IDs read from one References */

struct imap_container {
	char *id;                       /* normalized Message-ID, or NULL */
	int64_t msg;                    /* index into the messages; -1: dummy */
	int64_t parent, child, next;    /* -1: none */
	/* Sort key: the message's (or the first child's) date and seq. */
	int64_t date;
	uint32_t seq;
};

struct imap_threader {
	const struct imap_thread_msg *msgs;
	struct imap_container *c;
	size_t n, cap;
	int64_t *table;                 /* hash of ids: container index, -1 */
	size_t tcap;
	char **subjects;                /* base subjects per message */
	int *reply;
};

static uint64_t
imap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int64_t
imap_container_new(struct imap_threader *t, const char *id)
{
	struct imap_container *c;

	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 64 : t->cap * 2;
		t->c = xreallocarray(t->c, t->cap, sizeof(*t->c));
	}
	c = &t->c[t->n];
	memset(c, 0, sizeof(*c));
	c->id = id != NULL ? xstrdup(id) : NULL;
	c->msg = c->parent = c->child = c->next = -1;
	return (int64_t)t->n++;
}

static void
imap_table_grow(struct imap_threader *t)
{
	size_t i, cap = t->tcap == 0 ? 256 : t->tcap * 2;
	int64_t *table = xreallocarray(NULL, cap, sizeof(*table));

	for (i = 0; i < cap; i++)
		table[i] = -1;
	for (i = 0; i < t->tcap; i++) {
		size_t h;

		if (t->table[i] < 0)
			continue;
		h = imap_hash(t->c[t->table[i]].id) & (cap - 1);
		while (table[h] >= 0)
			h = (h + 1) & (cap - 1);
		table[h] = t->table[i];
	}
	free(t->table);
	t->table = table;
	t->tcap = cap;
}

/* The container of a Message-ID, made (empty) when it is new. */
static int64_t
imap_container_find(struct imap_threader *t, const char *id, int create)
{
	size_t h;
	int64_t k;

	if (t->tcap == 0 || (t->n + 1) * 2 > t->tcap)
		imap_table_grow(t);
	for (h = imap_hash(id) & (t->tcap - 1); t->table[h] >= 0; h = (h + 1) & (t->tcap - 1)) {
		if (strcmp(t->c[t->table[h]].id, id) == 0)
			return t->table[h];
	}
	if (!create)
		return -1;
	k = imap_container_new(t, id);
	t->table[h] = k;
	return k;
}

/* The Message-IDs "<...>" of a header value, normalized (angle brackets
 * kept, whitespace and comments out). Returns how many (at most max). */
static size_t
imap_msgids(const char *v, char **ids, size_t max)
{
	size_t n = 0;

	while (v != NULL && *v != '\0' && n < max) {
		const char *lt = strchr(v, '<'), *gt;
		struct buf id = BUF_INIT;

		if (lt == NULL || (gt = strchr(lt + 1, '>')) == NULL)
			break;
		for (v = lt; v <= gt; v++) {
			if (*v != ' ' && *v != '\t' && *v != '\r' && *v != '\n')
				buf_putc(&id, *v);
		}
		if (id.len > 2 && memchr(id.data + 1, '<', id.len - 1) == NULL)
			ids[n++] = buf_steal(&id);
		else
			buf_free(&id);
		v = gt + 1;
	}
	return n;
}

/* 1 when a is b or one of b's ancestors. */
static int
imap_is_ancestor(const struct imap_threader *t, int64_t a, int64_t b)
{
	for (; b >= 0; b = t->c[b].parent) {
		if (b == a)
			return 1;
	}
	return 0;
}

static void
imap_unlink(struct imap_threader *t, int64_t k)
{
	int64_t p = t->c[k].parent, *pp;

	if (p < 0)
		return;
	for (pp = &t->c[p].child; *pp >= 0; pp = &t->c[*pp].next) {
		if (*pp == k) {
			*pp = t->c[k].next;
			break;
		}
	}
	t->c[k].parent = -1;
	t->c[k].next = -1;
}

/* Appends k to p's children (RFC order does not matter: they are sorted). */
static void
imap_link(struct imap_threader *t, int64_t p, int64_t k)
{
	imap_unlink(t, k);
	t->c[k].parent = p;
	t->c[k].next = t->c[p].child;
	t->c[p].child = k;
}

/* --- sorting siblings by date, then sequence ------------------------------- */

static int
imap_container_cmp(const void *x, const void *y, void *arg)
{
	const struct imap_threader *t = arg;
	const struct imap_container *a = &t->c[*(const int64_t *)x];
	const struct imap_container *b = &t->c[*(const int64_t *)y];

	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sorts a sibling list, starting at *head; returns nothing, relinks. */
static void
imap_sort_siblings(struct imap_threader *t, int64_t *head)
{
	int64_t *v = NULL, k;
	size_t n = 0, cap = 0, i;

	for (k = *head; k >= 0; k = t->c[k].next) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = k;
	}
	if (n > 1)
		qsort_r(v, n, sizeof(*v), imap_container_cmp, t);
	for (i = 0; i < n; i++)
		t->c[v[i]].next = i + 1 < n ? v[i + 1] : -1;
	if (n > 0)
		*head = v[0];
	free(v);
}

/* Sets every container's sort key and sorts every level below the roots
 * (post-order, iteratively: the depth is up to the messages). */
static void
imap_sort_tree(struct imap_threader *t, int64_t *roots)
{
	int64_t *stack = NULL, k;
	unsigned char *seen = xcalloc(t->n + 1, 1);
	size_t sp = 0, cap = 0;

	for (k = *roots; k >= 0; k = t->c[k].next) {
		if (sp == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			stack = xreallocarray(stack, cap, sizeof(*stack));
		}
		stack[sp++] = k;
	}
	while (sp > 0) {
		int64_t c;

		k = stack[sp - 1];
		if (!seen[k]) {
			seen[k] = 1;
			for (c = t->c[k].child; c >= 0; c = t->c[c].next) {
				if (sp == cap) {
					cap *= 2;
					stack = xreallocarray(stack, cap, sizeof(*stack));
				}
				stack[sp++] = c;
			}
			continue;
		}
		sp--;
		imap_sort_siblings(t, &t->c[k].child);
		if (t->c[k].msg < 0 && t->c[k].child >= 0) {
			/* A dummy sorts as its first child. */
			t->c[k].date = t->c[t->c[k].child].date;
			t->c[k].seq = t->c[t->c[k].child].seq;
		}
	}
	imap_sort_siblings(t, roots);
	free(stack);
	free(seen);
}

/* --- writing -------------------------------------------------------------- */

/* Before a number or "(": a space when a number precedes. */
static void
imap_thread_sep(struct buf *out)
{
	if (out->len > 0 && out->data[out->len - 1] >= '0' && out->data[out->len - 1] <= '9')
		buf_putc(out, ' ');
}

/* "(3 6 (4 23)(44 7 96))": a node, then its only child inline, or each
 * child in parentheses. Iterative: a chain can be as long as the mailbox.
 * The stack holds k >= 0 (write node k), -1 (write ")") and -2 - k (write
 * "(" then node k). */
static void
imap_thread_write(const struct imap_threader *t, int64_t root, struct buf *out)
{
	int64_t *stack, k, c;
	size_t sp = 0, cap = 64, nkids, i;

	stack = xreallocarray(NULL, cap, sizeof(*stack));
	stack[sp++] = -1;
	stack[sp++] = -2 - root;
	while (sp > 0) {
		k = stack[--sp];
		if (k == -1) {
			buf_putc(out, ')');
			continue;
		}
		if (k <= -2) {
			imap_thread_sep(out);
			buf_putc(out, '(');
			k = -2 - k;
		}
		if (t->c[k].msg >= 0) {
			imap_thread_sep(out);
			buf_printf(out, "%u", t->msgs[t->c[k].msg].num);
		}
		nkids = 0;
		for (c = t->c[k].child; c >= 0; c = t->c[c].next)
			nkids++;
		if (sp + nkids * 2 + 1 > cap) {
			cap = sp + nkids * 2 + 64;
			stack = xreallocarray(stack, cap, sizeof(*stack));
		}
		if (nkids == 1) {
			stack[sp++] = t->c[k].child;
			continue;
		}
		/* Pushed last child first, so that the first is written first. */
		sp += nkids * 2;
		for (i = 0, c = t->c[k].child; c >= 0; c = t->c[c].next, i++) {
			stack[sp - 1 - 2 * i] = -2 - c;
			stack[sp - 2 - 2 * i] = -1;
		}
	}
	free(stack);
}

/* --- the algorithms ---------------------------------------------------------- */

static void
imap_threader_init(struct imap_threader *t, const struct imap_thread_msg *msgs, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i;

	memset(t, 0, sizeof(*t));
	t->msgs = msgs;
	t->subjects = xcalloc(n + 1, sizeof(*t->subjects));
	t->reply = xcalloc(n + 1, sizeof(*t->reply));
	for (i = 0; i < n; i++) {
		t->reply[i] = imap_base_subject(msgs[i].subject, &b);
		buf_putc(&b, '\0');
		t->subjects[i] = buf_steal(&b);
	}
	buf_free(&b);
}

static void
imap_threader_free(struct imap_threader *t, size_t n)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->c[i].id);
	for (i = 0; i < n; i++)
		free(t->subjects[i]);
	free(t->subjects);
	free(t->reply);
	free(t->table);
	free(t->c);
}

static void
imap_container_set_msg(struct imap_threader *t, int64_t k, size_t i)
{
	t->c[k].msg = (int64_t)i;
	t->c[k].date = t->msgs[i].date;
	t->c[k].seq = t->msgs[i].seq;
}

static int
imap_msg_subject_cmp(const void *x, const void *y, void *arg)
{
	const struct imap_threader *t = arg;
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int r = strcmp(t->subjects[a], t->subjects[b]);

	if (r != 0)
		return r;
	if (t->msgs[a].date != t->msgs[b].date)
		return t->msgs[a].date < t->msgs[b].date ? -1 : 1;
	return (t->msgs[a].seq > t->msgs[b].seq) - (t->msgs[a].seq < t->msgs[b].seq);
}

/* RFC 5256 3: by base subject, then date; the first of each subject is
 * the parent of the others. */
static int64_t
imap_thread_orderedsubject(struct imap_threader *t, size_t n)
{
	size_t *order = xreallocarray(NULL, n + 1, sizeof(*order)), i;
	int64_t roots = -1, parent = -1, last = -1, k;

	for (i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), imap_msg_subject_cmp, t);
	for (i = 0; i < n; i++) {
		k = imap_container_new(t, NULL);
		imap_container_set_msg(t, k, order[i]);
		if (i > 0 && parent >= 0 &&
		    strcmp(t->subjects[order[i]], t->subjects[order[i - 1]]) == 0) {
			/* Children in date order: appended at the end. */
			t->c[k].parent = parent;
			if (last == parent)
				t->c[parent].child = k;
			else
				t->c[last].next = k;
			last = k;
			continue;
		}
		t->c[k].next = roots;
		roots = k;
		parent = last = k;
	}
	free(order);
	return roots;
}

/* RFC 5256 4 (1): links from References (or In-Reply-To). */
static void
imap_thread_link(struct imap_threader *t, size_t n)
{
	char *ids[IMAP_THREAD_REFS_MAX], *own[1];
	size_t i, j, nids;

	for (i = 0; i < n; i++) {
		const struct imap_thread_msg *m = &t->msgs[i];
		int64_t k = -1, prev = -1, r;

		/* A message without an id, or with one already seen, gets a
		 * container of its own. */
		if (imap_msgids(m->message_id, own, 1) == 1) {
			k = imap_container_find(t, own[0], 1);
			free(own[0]);
			if (t->c[k].msg >= 0)
				k = -1;
		}
		if (k < 0)
			k = imap_container_new(t, NULL);
		imap_container_set_msg(t, k, i);
		nids = imap_msgids(m->references, ids, IMAP_THREAD_REFS_MAX);
		if (nids == 0)
			nids = imap_msgids(m->in_reply_to, ids, 1);
		/* (A) Each reference is the parent of the next, unless linked. */
		for (j = 0; j < nids; j++) {
			r = imap_container_find(t, ids[j], 1);
			free(ids[j]);
			if (r == k) {
				prev = -1;      /* a message referring to itself */
				continue;
			}
			/* A container without children is nobody's ancestor. */
			if (prev >= 0 && t->c[r].parent < 0 &&
			    (t->c[r].child < 0 ? r != prev : !imap_is_ancestor(t, r, prev)))
				imap_link(t, prev, r);
			prev = r;
		}
		/* (B) The last reference is the message's parent. */
		imap_unlink(t, k);
		if (prev >= 0 && (t->c[k].child < 0 ? k != prev : !imap_is_ancestor(t, k, prev)))
			imap_link(t, prev, k);
	}
}

/* RFC 5256 4 (4): empty dummies go; a dummy's children move up, but not
 * to the root level unless it has only one. Iterative over the sibling
 * lists (a stack of list heads; the array does not move meanwhile). */
static void
imap_thread_prune(struct imap_threader *t, int64_t *roots)
{
	int64_t **stack, *pp, k;
	size_t sp = 0, cap = 64;

	stack = xreallocarray(NULL, cap, sizeof(*stack));
	stack[sp++] = roots;
	while (sp > 0) {
		int64_t *head = stack[--sp];

		pp = head;
		while ((k = *pp) >= 0) {
			struct imap_container *c = &t->c[k];

			if (c->msg < 0 && c->child < 0) {
				*pp = c->next;
				continue;
			}
			if (c->msg < 0 && (head != roots || t->c[c->child].next < 0)) {
				/* Splice the children in place of the dummy. */
				int64_t first = c->child, last = first, p = c->parent;

				for (;;) {
					t->c[last].parent = p;
					if (t->c[last].next < 0)
						break;
					last = t->c[last].next;
				}
				t->c[last].next = c->next;
				*pp = first;
				c->child = -1;
				continue;       /* the promoted children come next */
			}
			if (c->child >= 0) {
				if (sp == cap) {
					cap *= 2;
					stack = xreallocarray(stack, cap, sizeof(*stack));
				}
				stack[sp++] = &c->child;
			}
			pp = &c->next;
		}
	}
	free(stack);
}

/* The message a root stands for (a dummy: its first child's). */
static int64_t
imap_root_msg(const struct imap_threader *t, int64_t k)
{
	return t->c[k].msg >= 0 ? t->c[k].msg : t->c[t->c[k].child].msg;
}

/* RFC 5256 4 (5)(B)-(C): roots with the same base subject are merged. */
static void
imap_thread_subjects(struct imap_threader *t, int64_t *roots)
{
	struct imap_threader table;
	int64_t *pp, k;

	/* A second hash table, of subjects: container ids are reused. */
	memset(&table, 0, sizeof(table));
	for (k = *roots; k >= 0; k = t->c[k].next) {
		int64_t m = imap_root_msg(t, k), e;
		const char *subj = m >= 0 ? t->subjects[m] : "";

		if (subj[0] == '\0')
			continue;
		e = imap_container_find(&table, subj, 1);
		if (table.c[e].msg < 0) {
			table.c[e].msg = k;
			continue;
		}
		{
			int64_t old = table.c[e].msg;
			int old_dummy = t->c[old].msg < 0, new_dummy = t->c[k].msg < 0;

			if ((new_dummy && !old_dummy) ||
			    (!new_dummy && !old_dummy && t->reply[imap_root_msg(t, old)] &&
			    !t->reply[m]))
				table.c[e].msg = k;
		}
	}
	for (pp = roots; (k = *pp) >= 0;) {
		int64_t m = imap_root_msg(t, k), e, o;
		const char *subj = m >= 0 ? t->subjects[m] : "";

		if (subj[0] == '\0' || (e = imap_container_find(&table, subj, 0)) < 0 ||
		    (o = table.c[e].msg) == k) {
			pp = &t->c[k].next;
			continue;
		}
		/* Take k out of the roots; it joins o. */
		*pp = t->c[k].next;
		t->c[k].next = -1;
		if (t->c[o].msg < 0 && t->c[k].msg < 0) {
			while (t->c[k].child >= 0)
				imap_link(t, o, t->c[k].child);
		} else if (t->c[o].msg < 0) {
			imap_link(t, o, k);
		} else if (!t->reply[t->c[o].msg] && t->reply[m]) {
			imap_link(t, o, k);
		} else {
			/* A new dummy holds both, where o was. */
			int64_t d = imap_container_new(t, NULL), *qq;

			for (qq = roots; *qq != o; qq = &t->c[*qq].next)
				;
			*qq = d;
			t->c[d].next = t->c[o].next;
			t->c[o].next = -1;
			imap_link(t, d, o);
			imap_link(t, d, k);
			table.c[e].msg = d;
		}
	}
	for (k = 0; (size_t)k < table.n; k++)
		free(table.c[k].id);
	free(table.c);
	free(table.table);
}

void
imap_thread_run(enum imap_thread_algorithm alg, const struct imap_thread_msg *msgs,
    size_t n, struct buf *out)
{
	struct imap_threader t;
	int64_t roots = -1, k;
	size_t i;

	imap_threader_init(&t, msgs, n);
	if (alg == IMAP_THREAD_ORDEREDSUBJECT) {
		roots = imap_thread_orderedsubject(&t, n);
	} else {
		imap_thread_link(&t, n);
		/* (2) The root set, (4) pruned. */
		for (i = t.n; i > 0; i--) {
			if (t.c[i - 1].parent < 0) {
				t.c[i - 1].next = roots;
				roots = (int64_t)(i - 1);
			}
		}
		imap_thread_prune(&t, &roots);
		/* (5) Sorted, merged by subject, (6) sorted again. */
		imap_sort_tree(&t, &roots);
		imap_thread_subjects(&t, &roots);
	}
	imap_sort_tree(&t, &roots);
	for (k = roots; k >= 0; k = t.c[k].next)
		imap_thread_write(&t, k, out);
	imap_threader_free(&t, n);
}
