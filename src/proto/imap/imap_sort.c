/*
 * The pure half of SORT and THREAD: case folding, base subjects, sent
 * dates, the sort comparator and the threading algorithms (RFC 5256).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/xmalloc.h"
#include "mail/address.h"
#include "mail/charset.h"
#include "proto/imap/imap_sort.h"

/* --- i;unicode-casemap, approximated ---------------------------------------- */

/* Folds one code point (simple case folding of the ranges imap_sort.h
 * lists). */
static uint32_t
imap_fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c < 0x100) {
		if (c == 0xB5)
			return 0x3BC;
		return c >= 0xC0 && c <= 0xDE && c != 0xD7 ? c + 32 : c;
	}
	if (c < 0x180) {
		if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149)
			return c;
		if (c == 0x178)
			return 0xFF;
		if (c == 0x17F)
			return 's';
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
			return c % 2 == 1 ? c + 1 : c;
		return c % 2 == 0 ? c + 1 : c;
	}
	if (c < 0x250) {
		if (c >= 0x1CD && c <= 0x1DC)
			return c % 2 == 1 ? c + 1 : c;
		if ((c >= 0x1DE && c <= 0x1EF) || (c >= 0x1F8 && c <= 0x21F) ||
		    (c >= 0x222 && c <= 0x233) || (c >= 0x246 && c <= 0x24F))
			return c % 2 == 0 ? c + 1 : c;
		return c;
	}
	if (c >= 0x370 && c < 0x400) {
		if (c == 0x386)
			return 0x3AC;
		if (c >= 0x388 && c <= 0x38A)
			return c + 37;
		if (c == 0x38C)
			return 0x3CC;
		if (c == 0x38E || c == 0x38F)
			return c + 63;
		if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB))
			return c + 32;
		if (c == 0x3C2)
			return 0x3C3;
		if (c >= 0x3D8 && c <= 0x3EF)
			return c % 2 == 0 ? c + 1 : c;
		return c;
	}
	if (c >= 0x400 && c < 0x530) {
		if (c <= 0x40F)
			return c + 80;
		if (c <= 0x42F)
			return c + 32;
		if (c == 0x4C0)
			return 0x4CF;
		if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) ||
		    (c >= 0x4D0 && c <= 0x52F))
			return c % 2 == 0 ? c + 1 : c;
		if (c >= 0x4C1 && c <= 0x4CE)
			return c % 2 == 1 ? c + 1 : c;
		return c;
	}
	if (c >= 0x531 && c <= 0x556)
		return c + 48;
	if (c >= 0x1E00 && c <= 0x1EFF) {
		if (c == 0x1E9E)
			return 0xDF;
		if (c <= 0x1E95 || c >= 0x1EA0)
			return c % 2 == 0 ? c + 1 : c;
		return c;
	}
	if (c >= 0x2160 && c <= 0x216F)
		return c + 16;
	if (c >= 0x24B6 && c <= 0x24CF)
		return c + 26;
	if (c >= 0xFF21 && c <= 0xFF3A)
		return c + 32;
	return c;
}

/* Decodes one UTF-8 sequence at s[0..len); returns its length, or 0 when
 * it is not valid UTF-8. */
static size_t
imap_utf8_next(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	uint32_t c;
	size_t n, i;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		c = s[0] & 0x1F;
		n = 2;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		c = s[0] & 0x0F;
		n = 3;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		c = s[0] & 0x07;
		n = 4;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
	    (n == 4 && (c < 0x10000 || c > 0x10FFFF)))
		return 0;
	*cp_r = c;
	return n;
}


/* Canonical decomposition of the folded Latin-1 letters (U+00E0-U+00FF):
 * the base letter, and the combining mark as an offset from U+0300 (0:
 * the letter does not decompose). What NFKD does to the letters most
 * Western mail uses, so that "é" sorts with "e". */
static const char imap_latin1_base[32] = "aaaaaa\0ceeeeiiii\0nooooo\0\0uuuuy\0y";
static const unsigned char imap_latin1_mark[32] = {
	0x00, 0x01, 0x02, 0x03, 0x08, 0x0A, 0, 0x27, 0x00, 0x01, 0x02, 0x08, 0x00, 0x01,
	0x02, 0x08, 0, 0x03, 0x00, 0x01, 0x02, 0x03, 0x08, 0, 0, 0x00, 0x01, 0x02, 0x08,
	0x01, 0, 0x08,
};

static void
imap_casemap_put(struct buf *out, uint32_t c)
{
	c = imap_fold_cp(c);
	if (c >= 0xE0 && c <= 0xFF && imap_latin1_base[c - 0xE0] != '\0') {
		buf_putc(out, imap_latin1_base[c - 0xE0]);
		mail_utf8_putcp(out, 0x300 + imap_latin1_mark[c - 0xE0]);
		return;
	}
	mail_utf8_putcp(out, c);
}

void
imap_casemap(const char *s, size_t len, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t c;

	buf_reserve(out, len);
	while (i < len) {
		if ((n = imap_utf8_next(p + i, len - i, &c)) == 0) {
			buf_putc(out, (char)p[i++]);
			continue;
		}
		imap_casemap_put(out, c);
		i += n;
	}
}

int
imap_casemap_contains(const char *hay, size_t hlen, const char *needle)
{
	struct buf h = BUF_INIT, nd = BUF_INIT;
	int found;

	imap_casemap(needle, strlen(needle), &nd);
	if (nd.len == 0) {
		buf_free(&nd);
		return 1;
	}
	imap_casemap(hay, hlen, &h);
	found = h.len >= nd.len && memmem(h.data, h.len, nd.data, nd.len) != NULL;
	buf_free(&h);
	buf_free(&nd);
	return found;
}

/* --- base subject (RFC 5256 2.1) ------------------------------------------- */

static int
imap_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at s; returns its length or 0. */
static size_t
imap_subj_blob(const char *s)
{
	size_t i = 1;

	if (s[0] != '[')
		return 0;
	while (s[i] != '\0' && s[i] != '[' && s[i] != ']')
		i++;
	if (s[i] != ']')
		return 0;
	for (i++; imap_wsp(s[i]); i++)
		;
	return i;
}

/* *subj-blob subj-refwd at s ("[x] re [y]:"); returns its length or 0. */
static size_t
imap_subj_refwd(const char *s)
{
	size_t i = 0, n;

	while ((n = imap_subj_blob(s + i)) > 0)
		i += n;
	if (strncmp(s + i, "re", 2) == 0)
		i += 2;
	else if (strncmp(s + i, "fwd", 3) == 0)
		i += 3;
	else if (strncmp(s + i, "fw", 2) == 0)
		i += 2;
	else
		return 0;
	while (imap_wsp(s[i]))
		i++;
	i += imap_subj_blob(s + i);
	return s[i] == ':' ? i + 1 : 0;
}

int
imap_base_subject(const char *raw, struct buf *out)
{
	struct buf dec = BUF_INIT, fold = BUF_INIT;
	char *s, *end;
	size_t i, n;
	int reply = 0, changed;

	buf_reset(out);
	if (raw == NULL)
		return 0;
	mail_header_decode(raw, strlen(raw), &dec);
	imap_casemap(buf_cstr(&dec), dec.len, &fold);
	buf_free(&dec);
	/* (1) Whitespace runs (folding included) become one space. */
	s = fold.data != NULL ? fold.data : (char *)"";
	for (i = 0, n = 0; i < fold.len; i++) {
		char c = s[i] == '\t' || s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];

		if (c == ' ' && (n == 0 || s[n - 1] == ' '))
			continue;
		s[n++] = c;
	}
	s[n] = '\0';
	end = s + n;
	for (;;) {
		/* (2) Trailing "(fwd)" and whitespace. */
		for (;;) {
			if (end > s && end[-1] == ' ') {
				end--;
			} else if (end - s >= 5 && strncmp(end - 5, "(fwd)", 5) == 0) {
				end -= 5;
				reply = 1;
			} else {
				break;
			}
		}
		*end = '\0';
		/* (3)-(5) Leading "re:", "[blob]"... */
		do {
			changed = 0;
			while (*s == ' ') {
				s++;
				changed = 1;
			}
			if ((n = imap_subj_refwd(s)) > 0) {
				s += n;
				reply = 1;
				changed = 1;
			}
			n = imap_subj_blob(s);
			if (n > 0 && s[n] != '\0') {
				s += n;
				changed = 1;
			}
		} while (changed);
		/* (6) "[fwd: subject]". */
		if (strncmp(s, "[fwd:", 5) == 0 && end > s + 5 && end[-1] == ']') {
			s += 5;
			*--end = '\0';
			reply = 1;
			continue;
		}
		break;
	}
	buf_append(out, s, (size_t)(end - s));
	buf_free(&fold);
	return reply;
}

/* --- sent dates ----------------------------------------------------------- */

static const char *const imap_months[] = {
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
};

static int
imap_date_digits(const char **pp, int min, int max, int *n_r)
{
	const char *p = *pp;
	int n = 0, d = 0;

	while (*p >= '0' && *p <= '9' && d < max) {
		n = n * 10 + (*p++ - '0');
		d++;
	}
	if (d < min)
		return -1;
	*pp = p;
	*n_r = n;
	return 0;
}

static void
imap_date_skip(const char **pp)
{
	const char *p = *pp;
	int depth = 0;

	/* Whitespace and comments, "(CET)" and the like. */
	while (*p != '\0') {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			break;
		p++;
	}
	*pp = p;
}

int64_t
imap_sent_date(const char *date)
{
	static const struct {
		const char *name;
		int minutes;
	} zones[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 }, { "EST", -300 }, { "EDT", -240 },
		{ "CST", -360 }, { "CDT", -300 }, { "MST", -420 }, { "MDT", -360 },
		{ "PST", -480 }, { "PDT", -420 },
	};
	const char *p = date;
	struct tm tm;
	int day, mon, year, hour, min, sec = 0, off = 0, n;
	size_t i;

	if (p == NULL)
		return -1;
	imap_date_skip(&p);
	if (((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) && strchr(p, ',') != NULL)
		p = strchr(p, ',') + 1;
	imap_date_skip(&p);
	if (imap_date_digits(&p, 1, 2, &day) < 0 || day < 1 || day > 31)
		return -1;
	imap_date_skip(&p);
	for (mon = 0; mon < 12 && strncasecmp(p, imap_months[mon], 3) != 0; mon++)
		;
	if (mon == 12)
		return -1;
	while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
		p++;
	imap_date_skip(&p);
	n = (int)strspn(p, "0123456789");
	if (imap_date_digits(&p, 2, 4, &year) < 0)
		return -1;
	if (n == 2)
		year += year < 50 ? 2000 : 1900;       /* RFC 5322 4.3 */
	else if (n == 3)
		year += 1900;
	imap_date_skip(&p);
	if (imap_date_digits(&p, 1, 2, &hour) < 0 || *p++ != ':' ||
	    imap_date_digits(&p, 2, 2, &min) < 0 || hour > 23 || min > 59)
		return -1;
	if (*p == ':' && (p++, imap_date_digits(&p, 2, 2, &sec) < 0 || sec > 60))
		return -1;
	imap_date_skip(&p);
	if (*p == '+' || *p == '-') {
		int z, sign = *p == '-' ? -1 : 1;
		const char *q = p + 1;

		if (strspn(q, "0123456789") >= 4 && imap_date_digits(&q, 4, 4, &z) == 0)
			off = sign * ((z / 100) * 60 + z % 100);
	} else {
		for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
			size_t len = strlen(zones[i].name);

			if (strncasecmp(p, zones[i].name, len) == 0 &&
			    !((p[len] >= 'A' && p[len] <= 'Z') || (p[len] >= 'a' && p[len] <= 'z'))) {
				off = zones[i].minutes;
				break;
			}
		}
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	return (int64_t)timegm(&tm) - (int64_t)off * 60;
}

/* --- SORT ---------------------------------------------------------------- */

int
imap_sort_parse(const struct imap_arg *list, struct imap_sort_criterion *crit,
    const char **error_r)
{
	static const struct {
		const char *name;
		enum imap_sort_key key;
	} keys[] = {
		{ "ARRIVAL", IMAP_SORT_ARRIVAL }, { "CC", IMAP_SORT_CC },
		{ "DATE", IMAP_SORT_DATE }, { "FROM", IMAP_SORT_FROM },
		{ "SIZE", IMAP_SORT_SIZE }, { "SUBJECT", IMAP_SORT_SUBJECT },
		{ "TO", IMAP_SORT_TO }, { "DISPLAYFROM", IMAP_SORT_DISPLAYFROM },
		{ "DISPLAYTO", IMAP_SORT_DISPLAYTO },
	};
	const struct imap_arg *a;
	int n = 0, reverse = 0;
	size_t i;

	*error_r = "Invalid sort criteria";
	if (list == NULL || list->type != IMAP_ARG_LIST || list->list == NULL)
		return -1;
	for (a = list->list; a != NULL; a = a->next) {
		if (a->type != IMAP_ARG_ATOM)
			return -1;
		if (strcasecmp(a->str, "REVERSE") == 0) {
			if (reverse)
				return -1;
			reverse = 1;
			continue;
		}
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (strcasecmp(a->str, keys[i].name) == 0)
				break;
		}
		if (i == sizeof(keys) / sizeof(keys[0]) || n == IMAP_SORT_KEYS_MAX)
			return -1;
		crit[n].key = keys[i].key;
		crit[n].reverse = reverse ? 1 : 0;
		n++;
		reverse = 0;
	}
	if (reverse || n == 0)
		return -1;
	return n;
}

/* The first address of a list that is not a group marker. */
static const struct mail_address *
imap_first_address(const struct mail_address *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (list[i].host != NULL)
			return &list[i];
	}
	return NULL;
}

/* FROM, TO, CC: the first address's local part (RFC 5256 3). DISPLAY*:
 * its display name, else its addr-spec (RFC 5957 3). */
static char *
imap_sort_address(const char *raw, int display)
{
	struct mail_address *list = NULL;
	const struct mail_address *a;
	struct buf v = BUF_INIT, f = BUF_INIT;
	size_t n;

	if (raw == NULL)
		return xstrdup("");
	n = mail_address_parse(raw, strlen(raw), &list, NULL);
	if ((a = imap_first_address(list, n)) != NULL) {
		if (display && a->name != NULL && a->name[0] != '\0') {
			mail_header_decode(a->name, strlen(a->name), &v);
		} else if (display) {
			buf_printf(&v, "%s@%s", a->mailbox != NULL ? a->mailbox : "", a->host);
		} else if (a->mailbox != NULL) {
			buf_puts(&v, a->mailbox);
		}
	}
	mail_address_free(&list, n);
	imap_casemap(buf_cstr(&v), v.len, &f);
	buf_free(&v);
	buf_putc(&f, '\0');
	return buf_steal(&f);
}

void
imap_sort_msg_strings(struct imap_sort_msg *m, const struct imap_sort_criterion *crit,
    int ncrit, const char *cc, const char *from, const char *subject, const char *to)
{
	struct buf b = BUF_INIT;
	int i;

	for (i = 0; i < ncrit; i++) {
		enum imap_sort_key k = crit[i].key;

		if (m->str[k] != NULL)
			continue;
		switch (k) {
		case IMAP_SORT_CC:
			m->str[k] = imap_sort_address(cc, 0);
			break;
		case IMAP_SORT_FROM:
			m->str[k] = imap_sort_address(from, 0);
			break;
		case IMAP_SORT_TO:
			m->str[k] = imap_sort_address(to, 0);
			break;
		case IMAP_SORT_DISPLAYFROM:
			m->str[k] = imap_sort_address(from, 1);
			break;
		case IMAP_SORT_DISPLAYTO:
			m->str[k] = imap_sort_address(to, 1);
			break;
		case IMAP_SORT_SUBJECT:
			imap_base_subject(subject, &b);
			buf_putc(&b, '\0');
			m->str[k] = buf_steal(&b);
			break;
		default:
			break;
		}
	}
	buf_free(&b);
}

void
imap_sort_msg_clear(struct imap_sort_msg *m)
{
	size_t i;

	for (i = 0; i < sizeof(m->str) / sizeof(m->str[0]); i++)
		xfree(&m->str[i]);
}

struct imap_sort_ctx {
	const struct imap_sort_criterion *crit;
	int ncrit;
};

static int
imap_cmp64(int64_t a, int64_t b)
{
	return (a > b) - (a < b);
}

static int
imap_sort_cmp(const void *x, const void *y, void *arg)
{
	const struct imap_sort_msg *a = x, *b = y;
	const struct imap_sort_ctx *ctx = arg;
	int i, r = 0;

	for (i = 0; i < ctx->ncrit && r == 0; i++) {
		enum imap_sort_key k = ctx->crit[i].key;

		switch (k) {
		case IMAP_SORT_ARRIVAL:
			r = imap_cmp64(a->arrival, b->arrival);
			break;
		case IMAP_SORT_DATE:
			r = imap_cmp64(a->date, b->date);
			break;
		case IMAP_SORT_SIZE:
			r = (a->size > b->size) - (a->size < b->size);
			break;
		default:
			r = strcmp(a->str[k] != NULL ? a->str[k] : "", b->str[k] != NULL ?
			    b->str[k] : "");
			break;
		}
		if (ctx->crit[i].reverse)
			r = -r;
	}
	/* RFC 5256 3: ties go by sequence number. */
	return r != 0 ? r : (a->seq > b->seq) - (a->seq < b->seq);
}

void
imap_sort_run(struct imap_sort_msg *msgs, size_t n, const struct imap_sort_criterion *crit,
    int ncrit)
{
	struct imap_sort_ctx ctx = { crit, ncrit };

	qsort_r(msgs, n, sizeof(*msgs), imap_sort_cmp, &ctx);
}
