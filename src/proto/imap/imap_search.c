#include "proto/imap/imap_search.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_seqset.h"

static void
imap_search_key_free(struct imap_search_key *k)
{
	struct imap_search_key *c, *next;

	if (k == NULL)
		return;
	for (c = k->child; c != NULL; c = next) {
		next = c->next;
		imap_search_key_free(c);
	}
	if (k->set != NULL) {
		imap_seqset_free(k->set);
		free(k->set);
	}
	free(k->uids);
	free(k->str);
	free(k->field);
	free(k);
}

void
imap_search_program_free(struct imap_search_program *prog)
{
	imap_search_key_free(prog->root);
	memset(prog, 0, sizeof(*prog));
}

static struct imap_search_key *
imap_key_new(enum imap_search_op op)
{
	struct imap_search_key *k = xcalloc(1, sizeof(*k));

	k->op = op;
	return k;
}

static const struct {
	const char *name;
	unsigned flag;
	int negate;
} imap_search_flags[] = {
	{ "ANSWERED", STORE_FLAG_ANSWERED, 0 }, { "UNANSWERED", STORE_FLAG_ANSWERED, 1 },
	{ "DELETED", STORE_FLAG_DELETED, 0 }, { "UNDELETED", STORE_FLAG_DELETED, 1 },
	{ "DRAFT", STORE_FLAG_DRAFT, 0 }, { "UNDRAFT", STORE_FLAG_DRAFT, 1 },
	{ "FLAGGED", STORE_FLAG_FLAGGED, 0 }, { "UNFLAGGED", STORE_FLAG_FLAGGED, 1 },
	{ "SEEN", STORE_FLAG_SEEN, 0 }, { "UNSEEN", STORE_FLAG_SEEN, 1 },
};

static const struct {
	const char *name;
	enum imap_search_op op;
} imap_search_dates[] = {
	{ "BEFORE", IMAP_SK_BEFORE }, { "ON", IMAP_SK_ON }, { "SINCE", IMAP_SK_SINCE },
	{ "SENTBEFORE", IMAP_SK_SENTBEFORE }, { "SENTON", IMAP_SK_SENTON },
	{ "SENTSINCE", IMAP_SK_SENTSINCE },
};

/* The header keys that are HEADER <field> <string>. */
static const char *const imap_search_headers[] = {
	"FROM", "TO", "CC", "BCC", "SUBJECT",
};

static struct imap_search_key *
imap_key_not(struct imap_search_key *k)
{
	struct imap_search_key *n = imap_key_new(IMAP_SK_NOT);

	n->child = k;
	return n;
}

static int
imap_search_string(const struct imap_arg *a, char **out)
{
	if (a == NULL || !imap_arg_astring(a, IMAP_SEARCH_STRING_MAX))
		return -1;
	*out = xstrdup(a->str);
	return 0;
}

static int
imap_search_number(const struct imap_arg *a, uint64_t max, uint64_t *n_r)
{
	const char *p;
	uint64_t n = 0;

	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 20)
		return -1;
	for (p = a->str; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > max)
			return -1;
	}
	*n_r = n;
	return 0;
}

static int imap_search_key(const struct imap_arg **ap, unsigned depth,
    struct imap_search_key **key_r, struct imap_search_program *prog, const char **error_r);

/* Keys up to the end of the list, ANDed under parent. */
static int
imap_search_keys(const struct imap_arg *a, unsigned depth, struct imap_search_key *parent,
    struct imap_search_program *prog, const char **error_r)
{
	struct imap_search_key **tail = &parent->child, *k;

	while (a != NULL) {
		if (imap_search_key(&a, depth, &k, prog, error_r) < 0)
			return -1;
		*tail = k;
		tail = &k->next;
	}
	return 0;
}

static int
imap_search_key(const struct imap_arg **ap, unsigned depth, struct imap_search_key **key_r,
    struct imap_search_program *prog, const char **error_r)
{
	const struct imap_arg *a = *ap, *v = a->next;
	struct imap_search_key *k = NULL, *x;
	const char *name = a->str;
	size_t i;
	int used = 1;                   /* arguments after the key's name */

	*error_r = "Invalid search key";
	if (depth > IMAP_SEARCH_DEPTH_MAX) {
		*error_r = "Search program nested too deeply";
		return -1;
	}
	if (a->type == IMAP_ARG_LIST) {
		k = imap_key_new(IMAP_SK_AND);
		if (a->list == NULL || imap_search_keys(a->list, depth + 1, k, prog, error_r) < 0)
			goto bad;
		*ap = a->next;
		*key_r = k;
		return 0;
	}
	if (a->type != IMAP_ARG_ATOM)
		return -1;
	for (i = 0; i < sizeof(imap_search_flags) / sizeof(imap_search_flags[0]); i++) {
		if (strcasecmp(name, imap_search_flags[i].name) == 0) {
			k = imap_key_new(IMAP_SK_FLAG);
			k->num = imap_search_flags[i].flag;
			if (imap_search_flags[i].negate)
				k = imap_key_not(k);
			used = 0;
			goto done;
		}
	}
	for (i = 0; i < sizeof(imap_search_dates) / sizeof(imap_search_dates[0]); i++) {
		if (strcasecmp(name, imap_search_dates[i].name) == 0) {
			k = imap_key_new(imap_search_dates[i].op);
			if (v == NULL || (v->type != IMAP_ARG_ATOM && v->type != IMAP_ARG_QUOTED) ||
			    imap_date_parse(v->str, &k->date) < 0) {
				*error_r = "Invalid search date";
				goto bad;
			}
			goto done;
		}
	}
	for (i = 0; i < sizeof(imap_search_headers) / sizeof(imap_search_headers[0]); i++) {
		if (strcasecmp(name, imap_search_headers[i]) == 0) {
			k = imap_key_new(IMAP_SK_HEADER);
			k->field = xstrdup(imap_search_headers[i]);
			if (imap_search_string(v, &k->str) < 0)
				goto bad;
			goto done;
		}
	}
	if (strcasecmp(name, "ALL") == 0 || strcasecmp(name, "OLD") == 0) {
		k = imap_key_new(IMAP_SK_ALL);
		used = 0;
	} else if (strcasecmp(name, "RECENT") == 0 || strcasecmp(name, "NEW") == 0) {
		k = imap_key_new(IMAP_SK_NONE);
		used = 0;
	} else if (strcasecmp(name, "KEYWORD") == 0 || strcasecmp(name, "UNKEYWORD") == 0) {
		k = imap_key_new(IMAP_SK_KEYWORD);
		if (v == NULL || v->type != IMAP_ARG_ATOM || v->len > STORE_KEYWORD_MAX)
			goto bad;
		k->str = xstrdup(v->str);
		if (name[0] == 'U' || name[0] == 'u')
			k = imap_key_not(k);
	} else if (strcasecmp(name, "LARGER") == 0 || strcasecmp(name, "SMALLER") == 0) {
		k = imap_key_new(name[0] == 'L' || name[0] == 'l' ? IMAP_SK_LARGER :
		    IMAP_SK_SMALLER);
		if (imap_search_number(v, UINT64_MAX / 10, &k->num) < 0)
			goto bad;
	} else if (strcasecmp(name, "HEADER") == 0) {
		k = imap_key_new(IMAP_SK_HEADER);
		if (imap_search_string(v, &k->field) < 0 || k->field[0] == '\0' ||
		    strchr(k->field, ':') != NULL || imap_search_string(v->next, &k->str) < 0)
			goto bad;
		used = 2;
	} else if (strcasecmp(name, "BODY") == 0 || strcasecmp(name, "TEXT") == 0) {
		k = imap_key_new(name[0] == 'B' || name[0] == 'b' ? IMAP_SK_BODY : IMAP_SK_TEXT);
		if (imap_search_string(v, &k->str) < 0)
			goto bad;
	} else if (strcasecmp(name, "UID") == 0) {
		struct imap_seqset set;

		k = imap_key_new(IMAP_SK_UIDSET);
		if (v == NULL || v->type != IMAP_ARG_ATOM)
			goto bad;
		if (strcmp(v->str, "$") == 0) {
			k->op = IMAP_SK_SAVED;
		} else {
			if (imap_seqset_parse(v->str, &set, error_r) < 0)
				goto bad;
			imap_seqset_free(&set);
			k->str = xstrdup(v->str);
		}
	} else if (strcasecmp(name, "NOT") == 0) {
		const struct imap_arg *rest = v;

		if (rest == NULL || imap_search_key(&rest, depth + 1, &x, prog, error_r) < 0)
			return -1;
		*ap = rest;
		*key_r = imap_key_not(x);
		return 0;
	} else if (strcasecmp(name, "OR") == 0) {
		const struct imap_arg *rest = v;
		struct imap_search_key *y;

		if (rest == NULL || imap_search_key(&rest, depth + 1, &x, prog, error_r) < 0)
			return -1;
		if (rest == NULL || imap_search_key(&rest, depth + 1, &y, prog, error_r) < 0) {
			imap_search_key_free(x);
			return -1;
		}
		k = imap_key_new(IMAP_SK_OR);
		k->child = x;
		x->next = y;
		*ap = rest;
		*key_r = k;
		return 0;
	} else if (strcasecmp(name, "EMAILID") == 0 || strcasecmp(name, "THREADID") == 0) {
		/* OBJECTID (RFC 8474 6): an objectid atom. */
		size_t n;

		k = imap_key_new(name[0] == 'E' || name[0] == 'e' ? IMAP_SK_EMAILID :
		    IMAP_SK_THREADID);
		if (v == NULL || !imap_arg_is_astring(v) || v->len == 0 || v->len > 255)
			goto bad;
		for (n = 0; n < v->len; n++) {
			char c = v->str[n];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_' || c == '-'))
				goto bad;
		}
		k->str = xstrdup(v->str);
	} else if (strcasecmp(name, "MODSEQ") == 0) {
		k = imap_key_new(IMAP_SK_MODSEQ);
		/* MODSEQ ["/flags/\\Seen" all|priv|shared] n: the entry is
		 * accepted and ignored (one modseq per message here). */
		if (v != NULL && imap_arg_is_string(v) && v->next != NULL &&
		    v->next->next != NULL) {
			v = v->next->next;
			used = 3;
		}
		if (imap_search_number(v, INT64_MAX, &k->num) < 0)
			goto bad;
		prog->has_modseq = 1;
	} else if (strcmp(name, "$") == 0) {
		k = imap_key_new(IMAP_SK_SAVED);
		used = 0;
	} else {
		struct imap_seqset set;

		/* A sequence set. */
		if (imap_seqset_parse(name, &set, error_r) < 0) {
			*error_r = "Invalid search key";
			return -1;
		}
		imap_seqset_free(&set);
		k = imap_key_new(IMAP_SK_SEQSET);
		k->str = xstrdup(name);
		used = 0;
	}
done:
	for (a = a->next; used > 0; used--) {
		if (a == NULL)
			goto bad;
		a = a->next;
	}
	*ap = a;
	*key_r = k;
	return 0;
bad:
	imap_search_key_free(k);
	return -1;
}

static int
imap_search_return(const struct imap_arg *list, struct imap_search_program *prog,
    const char **error_r)
{
	const struct imap_arg *a;

	prog->esearch = 1;
	for (a = list->list; a != NULL; a = a->next) {
		if (a->type != IMAP_ARG_ATOM)
			goto bad;
		if (strcasecmp(a->str, "MIN") == 0)
			prog->ret |= IMAP_SEARCH_RET_MIN;
		else if (strcasecmp(a->str, "MAX") == 0)
			prog->ret |= IMAP_SEARCH_RET_MAX;
		else if (strcasecmp(a->str, "ALL") == 0)
			prog->ret |= IMAP_SEARCH_RET_ALL;
		else if (strcasecmp(a->str, "COUNT") == 0)
			prog->ret |= IMAP_SEARCH_RET_COUNT;
		else if (strcasecmp(a->str, "SAVE") == 0)
			prog->ret |= IMAP_SEARCH_RET_SAVE;
		else
			goto bad;
	}
	/* RETURN () is ALL; SAVE alone returns nothing (RFC 5182 2.1). */
	if (prog->ret == 0)
		prog->ret = IMAP_SEARCH_RET_ALL;
	return 0;
bad:
	*error_r = "Unsupported RETURN option";
	return -1;
}

static int
imap_search_charset(const char *name, const char **error_r)
{
	if (strcasecmp(name, "UTF-8") != 0 && strcasecmp(name, "US-ASCII") != 0) {
		*error_r = "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset";
		return -2;
	}
	return 0;
}

int
imap_search_parse_sort(const struct imap_arg *ret, const struct imap_arg *args,
    struct imap_search_program *prog, const char **error_r)
{
	memset(prog, 0, sizeof(*prog));
	if (ret != NULL && imap_search_return(ret, prog, error_r) < 0)
		return -1;
	if (args == NULL || !imap_arg_is_astring(args) || args->next == NULL) {
		*error_r = "Syntax: charset search-keys";
		return -1;
	}
	if (imap_search_charset(args->str, error_r) < 0)
		return -2;
	prog->root = imap_key_new(IMAP_SK_AND);
	if (imap_search_keys(args->next, 0, prog->root, prog, error_r) < 0) {
		imap_search_program_free(prog);
		return -1;
	}
	return 0;
}

int
imap_search_parse(const struct imap_arg *args, struct imap_search_program *prog,
    const char **error_r)
{
	const struct imap_arg *a = args;

	memset(prog, 0, sizeof(*prog));
	if (a != NULL && a->type == IMAP_ARG_ATOM && strcasecmp(a->str, "RETURN") == 0) {
		if (a->next == NULL || a->next->type != IMAP_ARG_LIST) {
			*error_r = "Syntax: RETURN (options)";
			return -1;
		}
		if (imap_search_return(a->next, prog, error_r) < 0)
			return -1;
		a = a->next->next;
	}
	if (a != NULL && a->type == IMAP_ARG_ATOM && strcasecmp(a->str, "CHARSET") == 0) {
		a = a->next;
		if (a == NULL || !imap_arg_is_astring(a)) {
			*error_r = "Syntax: CHARSET name";
			return -1;
		}
		if (imap_search_charset(a->str, error_r) < 0)
			return -2;
		a = a->next;
	}
	if (a == NULL) {
		*error_r = "Missing search keys";
		return -1;
	}
	prog->root = imap_key_new(IMAP_SK_AND);
	if (imap_search_keys(a, 0, prog->root, prog, error_r) < 0) {
		imap_search_program_free(prog);
		return -1;
	}
	return 0;
}

static const char *const imap_sent_months[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
};

int64_t
imap_search_sent_day(const char *date)
{
	const char *p = date;
	struct tm tm;
	int day = 0, year = 0, mon, n;

	if (p == NULL)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	/* An optional day name and comma. */
	if (((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) && strchr(p, ',') != NULL)
		p = strchr(p, ',') + 1;
	while (*p == ' ' || *p == '\t')
		p++;
	for (n = 0; n < 2 && *p >= '0' && *p <= '9'; n++, p++)
		day = day * 10 + (*p - '0');
	if (n == 0 || day < 1 || day > 31)
		return -1;
	while (*p == ' ' || *p == '\t' || *p == '-')
		p++;
	for (mon = 0; mon < 12; mon++) {
		if (strncasecmp(p, imap_sent_months[mon], 3) == 0)
			break;
	}
	if (mon == 12)
		return -1;
	p += 3;
	while (*p == ' ' || *p == '\t' || *p == '-')
		p++;
	for (n = 0; n < 4 && *p >= '0' && *p <= '9'; n++, p++)
		year = year * 10 + (*p - '0');
	if (n == 2)
		year += year < 50 ? 2000 : 1900;       /* RFC 5322 4.3 */
	else if (n != 4)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	return (int64_t)timegm(&tm);
}
