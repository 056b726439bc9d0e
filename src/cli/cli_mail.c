/*
 * Shared by the mail commands: opening an account's store, flag names and
 * the small encodings of the Maildir and mbox formats.
 */
#include "cli/cli_mail.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/xmalloc.h"
#include "mail/charset.h"
#include "store/store.h"

int
cli_mail_open(struct cli *cli, const char *address, struct cli_mail *m)
{
	struct store_quota quota;
	const char *error;
	int ret;

	memset(m, 0, sizeof(*m));
	if (cli_open_directory(cli, &m->dir) < 0)
		return -1;
	if ((ret = directory_account_get(m->dir, address, &m->account, &error)) <= 0) {
		if (ret < 0)
			cli_error("%s", error);
		else
			cli_error("no account %s", address);
		goto fail;
	}
	/* The store outlives nothing of the directory: close it early. */
	directory_close(&m->dir);
	if (store_open(cli->cfg.data_dir, &m->store, &error) < 0) {
		cli_error("cannot open the mail store: %s", error);
		goto fail;
	}
	/* A running daemon's sessions (IMAP IDLE) hear of what this changes. */
	if (store_signal_others(m->store, cli->cfg.data_dir, &error) < 0)
		fprintf(stderr, "petrel: warning: %s (a running daemon's IDLE sessions "
		    "see these changes only at their next command)\n", error);
	quota.bytes_limit = m->account.quota_bytes;
	quota.messages_limit = m->account.quota_messages;
	if (store_account_open(m->store, m->account.id, &quota, &m->acct, &error) < 0) {
		cli_error("%s: cannot open the mail: %s", m->account.address, error);
		goto fail;
	}
	return 0;
fail:
	cli_mail_close(m);
	return -1;
}

void
cli_mail_close(struct cli_mail *m)
{
	if (m->acct != NULL)
		store_account_close(&m->acct);
	if (m->store != NULL)
		store_close(&m->store);
	if (m->dir != NULL)
		directory_close(&m->dir);
	directory_account_clear(&m->account);
}

int
cli_mail_mailbox(struct cli_mail *m, const char *name, struct store_mailbox *mbox_r)
{
	const char *error;
	int ret;

	memset(mbox_r, 0, sizeof(*mbox_r));
	if ((ret = store_mailbox_get(m->acct, name, mbox_r, &error)) < 0)
		cli_error("%s", error);
	else if (ret == 0)
		cli_error("%s: no mailbox '%s'", m->account.address, name);
	return ret;
}

int
cli_mail_dispatch(const struct cli_mail_subcommand *table, struct cli *cli, int argc,
    char **argv)
{
	const struct cli_mail_subcommand *s;

	if (argc < 2)
		return 2;
	for (s = table; s->name != NULL; s++)
		if (strcmp(s->name, argv[1]) == 0)
			return s->run(cli, argc - 2, argv + 2);
	cli_error("unknown subcommand '%s %s'", argv[0], argv[1]);
	return 2;
}

static const struct {
	unsigned flag;
	const char *name;
	char letter;            /* in a Maildir info field */
} mail_flags[] = {
	{ STORE_FLAG_SEEN, "\\Seen", 'S' },
	{ STORE_FLAG_ANSWERED, "\\Answered", 'R' },
	{ STORE_FLAG_FLAGGED, "\\Flagged", 'F' },
	{ STORE_FLAG_DELETED, "\\Deleted", 'T' },
	{ STORE_FLAG_DRAFT, "\\Draft", 'D' },
};
#define NFLAGS (sizeof(mail_flags) / sizeof(mail_flags[0]))

void
cli_mail_format_flags(unsigned flags, char *const *keywords, struct buf *out)
{
	size_t i;

	for (i = 0; i < NFLAGS; i++) {
		if ((flags & mail_flags[i].flag) == 0)
			continue;
		if (out->len > 0)
			buf_putc(out, ' ');
		buf_puts(out, mail_flags[i].name);
	}
	for (i = 0; keywords != NULL && keywords[i] != NULL; i++) {
		if (out->len > 0)
			buf_putc(out, ' ');
		buf_puts(out, keywords[i]);
	}
	if (out->data == NULL)
		buf_puts(out, "");
}

void
cli_mail_maildir_letters(unsigned flags, int forwarded, struct buf *out)
{
	/* Dovecot writes them in ASCII order. */
	if (flags & STORE_FLAG_DRAFT)
		buf_putc(out, 'D');
	if (flags & STORE_FLAG_FLAGGED)
		buf_putc(out, 'F');
	if (forwarded)
		buf_putc(out, 'P');
	if (flags & STORE_FLAG_ANSWERED)
		buf_putc(out, 'R');
	if (flags & STORE_FLAG_SEEN)
		buf_putc(out, 'S');
	if (flags & STORE_FLAG_DELETED)
		buf_putc(out, 'T');
}

void
cli_mail_maildir_parse(const char *info, unsigned *flags, int *forwarded)
{
	size_t i;

	for (; *info != '\0'; info++) {
		if (*info == 'P') {
			*forwarded = 1;
			continue;
		}
		for (i = 0; i < NFLAGS; i++)
			if (*info == mail_flags[i].letter)
				*flags |= mail_flags[i].flag;
	}
}

int
cli_mail_keyword_ok(const char *kw)
{
	size_t len = strlen(kw), i;

	if (len == 0 || len > STORE_KEYWORD_MAX || kw[0] == '\\')
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)kw[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

/* Modified UTF-7 */

static const char utf7_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
utf7_value(char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(utf7_alphabet, c)) == NULL)
		return -1;
	return (int)(p - utf7_alphabet);
}


/* One base64 run (after '&', up to and excluding '-'). -1 when invalid. */
static int
utf7_decode_run(const char *s, size_t len, struct buf *out)
{
	uint32_t bits = 0, unit, high = 0;
	unsigned nbits = 0;
	size_t i, nunits = 0;
	int v;

	for (i = 0; i < len; i++) {
		if ((v = utf7_value(s[i])) < 0)
			return -1;
		bits = ((bits << 6) | (uint32_t)v) & 0xffffff;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unit = (bits >> nbits) & 0xffff;
		nunits++;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return -1;
			mail_utf8_putcp(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if ((unit >= 0xdc00 && unit <= 0xdfff) || unit == 0) {
			return -1;
		} else {
			mail_utf8_putcp(out, unit);
		}
	}
	/* Leftover bits must be padding zeros, fewer than a base64 digit. */
	if (nunits == 0 || high != 0 || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	return 0;
}

char *
cli_mail_utf7_decode(const char *s, size_t len)
{
	struct buf out = BUF_INIT;
	const char *end;
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c > 0x7e)
			goto fail;
		if (c != '&') {
			buf_putc(&out, (char)c);
			i++;
			continue;
		}
		if (i + 1 < len && s[i + 1] == '-') {
			buf_putc(&out, '&');
			i += 2;
			continue;
		}
		if ((end = memchr(s + i + 1, '-', len - i - 1)) == NULL ||
		    utf7_decode_run(s + i + 1, (size_t)(end - (s + i + 1)), &out) < 0)
			goto fail;
		i = (size_t)(end - s) + 1;
	}
	if (out.data == NULL)
		buf_puts(&out, "");
	return buf_steal(&out);
fail:
	buf_free(&out);
	return NULL;
}

/* Next code point of UTF-8 text; U+FFFD for a malformed sequence. */
static uint32_t
utf8_next(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t cp;
	int n, i;

	if (p[0] < 0x80) {
		*pp = p + 1;
		return p[0];
	}
	if ((p[0] & 0xe0) == 0xc0) {
		cp = p[0] & 0x1f;
		n = 1;
	} else if ((p[0] & 0xf0) == 0xe0) {
		cp = p[0] & 0x0f;
		n = 2;
	} else if ((p[0] & 0xf8) == 0xf0) {
		cp = p[0] & 0x07;
		n = 3;
	} else {
		*pp = p + 1;
		return 0xfffd;
	}
	for (i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*pp = p + i;
			return 0xfffd;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	*pp = p + n + 1;
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0xfffd;
	return cp;
}

static int
utf7_direct(unsigned char c, const char *also)
{
	return c >= 0x20 && c <= 0x7e && (also == NULL || strchr(also, c) == NULL);
}

void
cli_mail_utf7_encode(const char *s, const char *also, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t bits, cp, units[2];
	unsigned nbits;
	int nunits, u;

	while (*p != '\0') {
		if (utf7_direct(*p, also)) {
			if (*p == '&')
				buf_puts(out, "&-");
			else
				buf_putc(out, (char)*p);
			p++;
			continue;
		}
		buf_putc(out, '&');
		bits = 0;
		nbits = 0;
		while (*p != '\0' && !utf7_direct(*p, also)) {
			cp = utf8_next(&p);
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = 0xd800 + (cp >> 10);
				units[1] = 0xdc00 + (cp & 0x3ff);
				nunits = 2;
			} else {
				units[0] = cp;
				nunits = 1;
			}
			for (u = 0; u < nunits; u++) {
				bits = ((bits << 16) | units[u]) & 0xffffff;
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					buf_putc(out, utf7_alphabet[(bits >> nbits) & 0x3f]);
				}
			}
		}
		if (nbits > 0)
			buf_putc(out, utf7_alphabet[(bits << (6 - nbits)) & 0x3f]);
		buf_putc(out, '-');
	}
	if (out->data == NULL)
		buf_puts(out, "");
}

/* mbox From_ lines */

static const char *const weekdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
    "Aug", "Sep", "Oct", "Nov", "Dec" };

void
cli_mail_from_date(int64_t t, char *buf, size_t bufsize)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(buf, bufsize, "%s %s %2d %02d:%02d:%02d %d", weekdays[tm.tm_wday % 7],
	    months[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    tm.tm_year + 1900);
}

static int
name_index(const char *tok, size_t len, const char *const *names, int n)
{
	int i;

	if (len != 3)
		return -1;
	for (i = 0; i < n; i++)
		if (strncasecmp(tok, names[i], 3) == 0)
			return i;
	return -1;
}

#define FROM_TOKENS 16

int
cli_mail_parse_from_line(const char *line, size_t len, int64_t *t_r)
{
	const char *tok[FROM_TOKENS];
	size_t toklen[FROM_TOKENS], i, ntok = 0;
	struct tm tm;
	int k, mon, day, hh, mm, ss = 0, year = -1, zone = 0, sign;
	char tmp[32];

	/* Split on blanks: "From" sender... weekday month day time [zone] year [zone]. */
	for (i = 0; i < len && ntok < FROM_TOKENS; ) {
		while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
		    line[i] == '\n'))
			i++;
		if (i == len)
			break;
		tok[ntok] = line + i;
		while (i < len && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
		    line[i] != '\n')
			i++;
		toklen[ntok] = (size_t)(line + i - tok[ntok]);
		ntok++;
	}
	for (k = 1; (size_t)k + 4 <= ntok; k++) {
		if (name_index(tok[k], toklen[k], weekdays, 7) < 0 ||
		    (mon = name_index(tok[k + 1], toklen[k + 1], months, 12)) < 0)
			continue;
		snprintf(tmp, sizeof(tmp), "%.*s", (int)toklen[k + 2], tok[k + 2]);
		day = atoi(tmp);
		snprintf(tmp, sizeof(tmp), "%.*s", (int)toklen[k + 3], tok[k + 3]);
		if (sscanf(tmp, "%d:%d:%d", &hh, &mm, &ss) < 2 || day < 1 || day > 31)
			return -1;
		for (i = (size_t)k + 4; i < ntok; i++) {
			snprintf(tmp, sizeof(tmp), "%.*s", (int)toklen[i], tok[i]);
			if ((tmp[0] == '+' || tmp[0] == '-') && strlen(tmp) == 5 &&
			    strspn(tmp + 1, "0123456789") == 4) {
				sign = tmp[0] == '-' ? -1 : 1;
				zone = sign * (((tmp[1] - '0') * 10 + tmp[2] - '0') * 3600 +
				    ((tmp[3] - '0') * 10 + tmp[4] - '0') * 60);
			} else if (strlen(tmp) == 4 && strspn(tmp, "0123456789") == 4) {
				year = atoi(tmp);
			}
		}
		if (year < 1970)
			return -1;
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = year - 1900;
		tm.tm_mon = mon;
		tm.tm_mday = day;
		tm.tm_hour = hh;
		tm.tm_min = mm;
		tm.tm_sec = ss;
		*t_r = (int64_t)timegm(&tm) - zone;
		return 0;
	}
	return -1;
}

void
cli_mail_hex(const unsigned char *bin, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[bin[i] >> 4];
		out[2 * i + 1] = digits[bin[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int
cli_mail_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	int n, i;

	while (p < end) {
		if (*p == 0)
			return 0;
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0 && *p >= 0xc2)
			n = 1;
		else if ((*p & 0xf0) == 0xe0)
			n = 2;
		else if ((*p & 0xf8) == 0xf0 && *p <= 0xf4)
			n = 3;
		else
			return 0;
		if (end - p <= n)
			return 0;
		for (i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += n + 1;
	}
	return 1;
}

char *
cli_mail_printable(const char *s)
{
	char *t;
	size_t i, len;
	int utf8;

	if (s == NULL)
		return xstrdup("");
	len = strlen(s);
	t = xstrdup(s);
	utf8 = cli_mail_utf8_valid(t, len);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c < 0x20 || c == 0x7f)
			t[i] = ' ';
		else if (c >= 0x80 && !utf8)
			t[i] = '?';
	}
	return t;
}

json_t *
cli_mail_json_text(const char *s)
{
	char *t = cli_mail_printable(s);
	json_t *j = json_string(t);

	free(t);
	return j;
}
