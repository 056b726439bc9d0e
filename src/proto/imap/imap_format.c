/*
 * Flags, dates and strings as IMAP writes them (RFC 9051 section 9).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"

static const struct {
	const char *name;
	unsigned flag;
} imap_system_flags[] = {
	{ "\\Seen", STORE_FLAG_SEEN },
	{ "\\Answered", STORE_FLAG_ANSWERED },
	{ "\\Flagged", STORE_FLAG_FLAGGED },
	{ "\\Deleted", STORE_FLAG_DELETED },
	{ "\\Draft", STORE_FLAG_DRAFT },
};

/* A keyword is an atom: no atom-specials (RFC 9051 flag-keyword). */
static int
imap_keyword_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > STORE_KEYWORD_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

static int
imap_flag_one(const struct imap_arg *a, unsigned *flags, char ***kw, size_t *nkw,
    const char **error_r)
{
	size_t i;

	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid flag";
		return -1;
	}
	if (a->str[0] == '\\') {
		for (i = 0; i < sizeof(imap_system_flags) / sizeof(imap_system_flags[0]); i++) {
			if (strcasecmp(a->str, imap_system_flags[i].name) == 0) {
				*flags |= imap_system_flags[i].flag;
				return 0;
			}
		}
		*error_r = strcasecmp(a->str, "\\Recent") == 0 ? "\\Recent cannot be set" :
		    "Invalid system flag";
		return -1;
	}
	if (!imap_keyword_valid(a->str, a->len)) {
		*error_r = "Invalid keyword";
		return -1;
	}
	for (i = 0; i < *nkw; i++) {
		if (strcasecmp((*kw)[i], a->str) == 0)
			return 0;
	}
	if (*nkw >= STORE_KEYWORDS_MAX) {
		*error_r = "Too many keywords";
		return -1;
	}
	*kw = xreallocarray(*kw, *nkw + 2, sizeof(**kw));
	(*kw)[(*nkw)++] = xstrdup(a->str);
	(*kw)[*nkw] = NULL;
	return 0;
}

int
imap_flags_parse(const struct imap_arg *arg, unsigned *flags_r, char ***keywords_r,
    const char **error_r)
{
	const struct imap_arg *a;
	char **kw = NULL;
	size_t nkw = 0;
	unsigned flags = 0;

	if (arg->type == IMAP_ARG_LIST) {
		for (a = arg->list; a != NULL; a = a->next) {
			if (imap_flag_one(a, &flags, &kw, &nkw, error_r) < 0)
				goto fail;
		}
	} else if (imap_flag_one(arg, &flags, &kw, &nkw, error_r) < 0) {
		goto fail;
	}
	*flags_r = flags;
	*keywords_r = kw;
	return 0;
fail:
	imap_keywords_free(&kw);
	return -1;
}

void
imap_keywords_free(char ***keywords)
{
	char **kw = *keywords;
	size_t i;

	if (kw == NULL)
		return;
	for (i = 0; kw[i] != NULL; i++)
		free(kw[i]);
	free(kw);
	*keywords = NULL;
}

char **
imap_keywords_dup(const char *const *keywords)
{
	char **kw;
	size_t n, i;

	if (keywords == NULL || keywords[0] == NULL)
		return NULL;
	for (n = 0; keywords[n] != NULL; n++)
		;
	kw = xreallocarray(NULL, n + 1, sizeof(*kw));
	for (i = 0; i < n; i++)
		kw[i] = xstrdup(keywords[i]);
	kw[n] = NULL;
	return kw;
}

void
imap_flags_format(struct buf *out, unsigned flags, const char *const *keywords)
{
	/* Once per message of a listing: the system flags are put together
	 * here and appended at once. */
	char sys[64];
	size_t i, n = 0, len;

	sys[n++] = '(';
	for (i = 0; i < sizeof(imap_system_flags) / sizeof(imap_system_flags[0]); i++) {
		if (flags & imap_system_flags[i].flag) {
			len = strlen(imap_system_flags[i].name);
			if (n > 1)
				sys[n++] = ' ';
			memcpy(sys + n, imap_system_flags[i].name, len);
			n += len;
		}
	}
	buf_append(out, sys, n);
	for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		if (n > 1)
			buf_putc(out, ' ');
		buf_puts(out, keywords[i]);
		n = 2;
	}
	buf_putc(out, ')');
}

static const char *const imap_months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Reads 1*2DIGIT "-" month "-" 4DIGIT at *pp. */
static int
imap_date_part(const char **pp, struct tm *tm)
{
	const char *p = *pp;
	int day = 0, year = 0, i, n;

	if (*p == ' ')
		p++;
	for (n = 0; n < 2 && *p >= '0' && *p <= '9'; n++, p++)
		day = day * 10 + (*p - '0');
	if (n == 0 || *p++ != '-' || day < 1 || day > 31)
		return -1;
	for (i = 0; i < 12; i++) {
		if (strncasecmp(p, imap_months[i], 3) == 0)
			break;
	}
	if (i == 12)
		return -1;
	p += 3;
	if (*p++ != '-')
		return -1;
	for (n = 0; n < 4; n++, p++) {
		if (*p < '0' || *p > '9')
			return -1;
		year = year * 10 + (*p - '0');
	}
	if (year < 1900)
		return -1;
	memset(tm, 0, sizeof(*tm));
	tm->tm_mday = day;
	tm->tm_mon = i;
	tm->tm_year = year - 1900;
	*pp = p;
	return 0;
}

int
imap_date_parse(const char *s, int64_t *t_r)
{
	struct tm tm;

	if (imap_date_part(&s, &tm) < 0 || *s != '\0')
		return -1;
	*t_r = (int64_t)timegm(&tm);
	return 0;
}

static int
imap_2digits(const char *p, int max, int *v)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return -1;
	*v = (p[0] - '0') * 10 + (p[1] - '0');
	return *v <= max ? 0 : -1;
}

int
imap_datetime_parse(const char *s, int64_t *t_r)
{
	struct tm tm;
	int h, m, sec, zh, zm, sign;

	if (imap_date_part(&s, &tm) < 0 || *s++ != ' ')
		return -1;
	if (imap_2digits(s, 23, &h) < 0 || s[2] != ':' ||
	    imap_2digits(s + 3, 59, &m) < 0 || s[5] != ':' ||
	    imap_2digits(s + 6, 60, &sec) < 0 || s[8] != ' ')
		return -1;
	s += 9;
	if (*s != '+' && *s != '-')
		return -1;
	sign = *s == '-' ? -1 : 1;
	if (imap_2digits(s + 1, 99, &zh) < 0 || imap_2digits(s + 3, 59, &zm) < 0 ||
	    s[5] != '\0')
		return -1;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*t_r = (int64_t)timegm(&tm) - sign * (zh * 3600 + zm * 60);
	return 0;
}

void
imap_datetime_format(struct buf *out, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
	    imap_months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
imap_write_string(struct buf *out, const char *s, size_t len)
{
	size_t i;
	int quotable = len < 1024;

	for (i = 0; i < len && quotable; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
			quotable = 0;
	}
	if (!quotable) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_putc(out, '"');
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_putc(out, '\\');
		buf_putc(out, s[i]);
	}
	buf_putc(out, '"');
}

void
imap_write_nstring(struct buf *out, const char *s)
{
	if (s == NULL)
		buf_puts(out, "NIL");
	else
		imap_write_string(out, s, strlen(s));
}

int
imap_arg_astring(const struct imap_arg *arg, size_t max)
{
	return arg != NULL && imap_arg_is_astring(arg) && arg->len <= max &&
	    strlen(arg->str) == arg->len;
}
