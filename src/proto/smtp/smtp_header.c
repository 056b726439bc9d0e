/*
 * What SMTP needs to know about a message's header section before it adds
 * its own fields: the Received: count (loops), whether Date: and
 * Message-ID: are there (submission adds them), and the From: addresses
 * (submission checks the user owns them).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "proto/smtp/smtp.h"

#define FROM_ADDRESSES_MAX 100

size_t
smtp_header_end(const char *msg, size_t len, size_t from)
{
	size_t i;

	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 2;
	i = from > 3 ? from - 3 : 0;
	for (; i + 4 <= len; i++) {
		const char *p = memchr(msg + i, '\r', len - i);

		if (p == NULL)
			return 0;
		i = (size_t)(p - msg);
		if (i + 4 <= len && memcmp(p, "\r\n\r\n", 4) == 0)
			return i + 4;
	}
	return 0;
}

static int
name_is(const char *line, size_t namelen, const char *name)
{
	return strlen(name) == namelen && strncasecmp(line, name, namelen) == 0;
}

void
smtp_header_scan(const char *hdr, size_t len, struct smtp_header_info *info)
{
	struct buf from = BUF_INIT;
	size_t pos = 0;
	int in_from = 0;

	memset(info, 0, sizeof(*info));
	while (pos < len) {
		const char *line = hdr + pos, *nl = memchr(line, '\n', len - pos);
		size_t linelen = nl != NULL ? (size_t)(nl - line) : len - pos, n;

		pos += linelen + (nl != NULL);
		if (linelen > 0 && line[linelen - 1] == '\r')
			linelen--;
		if (linelen == 0)
			break;                  /* the blank line */
		if (line[0] == ' ' || line[0] == '\t') {
			if (in_from)
				buf_append(&from, line, linelen);
			continue;
		}
		if (in_from) {
			buf_putc(&from, '\0');  /* one field ends */
			in_from = 0;
		}
		for (n = 0; n < linelen && line[n] != ':' && line[n] > ' ' && line[n] < 0x7f; n++)
			;
		{
			size_t name = n;

			while (n < linelen && (line[n] == ' ' || line[n] == '\t'))
				n++;
			if (name == 0 || n >= linelen || line[n] != ':')
				break;          /* not a field: the body starts here */
			if (name_is(line, name, "Received")) {
				info->received++;
			} else if (name_is(line, name, "Date")) {
				info->has_date = 1;
			} else if (name_is(line, name, "Message-ID")) {
				info->has_message_id = 1;
			} else if (name_is(line, name, "From")) {
				info->from_fields++;
				in_from = 1;
				buf_append(&from, line + n + 1, linelen - n - 1);
			}
		}
	}
	if (in_from)
		buf_putc(&from, '\0');
	/* Each From: value, NUL-separated. */
	for (pos = 0; pos < from.len;) {
		size_t l = strlen(from.data + pos), i, count;
		char **addrs;

		if (smtp_address_list(from.data + pos, l, &addrs, &count) < 0 || count == 0) {
			info->from_bad = 1;
		} else {
			for (i = 0; i < count; i++) {
				if (info->nfrom == FROM_ADDRESSES_MAX) {
					info->from_bad = 1;
					free(addrs[i]);
					continue;
				}
				info->from = xreallocarray(info->from, info->nfrom + 1,
				    sizeof(*info->from));
				info->from[info->nfrom++] = addrs[i];
			}
			free(addrs);
		}
		pos += l + 1;
	}
	buf_free(&from);
}

void
smtp_header_info_clear(struct smtp_header_info *info)
{
	size_t i;

	for (i = 0; i < info->nfrom; i++)
		free(info->from[i]);
	free(info->from);
	memset(info, 0, sizeof(*info));
}

/* Takes the mailbox gathered so far: the angle address if there was one,
 * else the text without whitespace. */
static int
finish_mailbox(struct buf *cur, struct buf *angle, int had_angle, char ***addrs,
    size_t *n)
{
	struct buf out = BUF_INIT;
	const char *s;
	size_t i, len;

	if (had_angle) {
		s = angle->data != NULL ? angle->data : "";
		len = angle->len;
		/* Obsolete route "@a,@b:local@domain". */
		if (len > 0 && s[0] == '@') {
			const char *colon = memchr(s, ':', len);

			if (colon == NULL)
				return -1;
			len -= (size_t)(colon + 1 - s);
			s = colon + 1;
		}
	} else {
		s = cur->data != NULL ? cur->data : "";
		len = cur->len;
	}
	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			buf_putc(&out, s[i]);
	buf_reset(cur);
	buf_reset(angle);
	if (out.len == 0) {
		buf_free(&out);
		return had_angle ? -1 : 0;
	}
	if (memchr(out.data, '@', out.len) == NULL || *n >= FROM_ADDRESSES_MAX) {
		buf_free(&out);
		return -1;
	}
	*addrs = xreallocarray(*addrs, *n + 1, sizeof(**addrs));
	(*addrs)[(*n)++] = buf_steal(&out);
	return 0;
}

int
smtp_address_list(const char *value, size_t len, char ***addrs_r, size_t *count_r)
{
	struct buf cur = BUF_INIT, angle = BUF_INIT;
	char **addrs = NULL;
	size_t n = 0, i;
	int comment = 0, quoted = 0, in_angle = 0, had_angle = 0, group = 0;

	for (i = 0; i < len; i++) {
		char c = value[i];
		struct buf *dst = in_angle ? &angle : &cur;

		if (comment > 0) {
			if (c == '\\' && i + 1 < len)
				i++;
			else if (c == '(')
				comment++;
			else if (c == ')')
				comment--;
			continue;
		}
		if (quoted) {
			if (c == '\\' && i + 1 < len) {
				buf_putc(dst, c);
				c = value[++i];
			} else if (c == '"') {
				quoted = 0;
			}
			buf_putc(dst, c);
			continue;
		}
		switch (c) {
		case '"':
			quoted = 1;
			buf_putc(dst, c);
			break;
		case '(':
			comment = 1;
			break;
		case '<':
			if (in_angle || had_angle)
				goto bad;
			in_angle = 1;
			break;
		case '>':
			if (!in_angle)
				goto bad;
			in_angle = 0;
			had_angle = 1;
			break;
		case ',':
			if (in_angle) {
				buf_putc(dst, c);   /* inside an obsolete route */
				break;
			}
			if (finish_mailbox(&cur, &angle, had_angle, &addrs, &n) < 0)
				goto bad;
			had_angle = 0;
			break;
		case ':':
			if (in_angle) {
				buf_putc(dst, c);
				break;
			}
			if (group || had_angle)
				goto bad;
			group = 1;              /* "name:" of a group */
			buf_reset(&cur);
			break;
		case ';':
			if (in_angle || !group)
				goto bad;
			if (finish_mailbox(&cur, &angle, had_angle, &addrs, &n) < 0)
				goto bad;
			had_angle = 0;
			group = 0;
			break;
		default:
			if (had_angle && !isspace((unsigned char)c))
				goto bad;       /* text after <addr> */
			if (c == '\0')
				goto bad;
			buf_putc(dst, c);
			break;
		}
	}
	if (comment > 0 || quoted || in_angle || group)
		goto bad;
	if (finish_mailbox(&cur, &angle, had_angle, &addrs, &n) < 0)
		goto bad;
	buf_free(&cur);
	buf_free(&angle);
	*addrs_r = addrs;
	*count_r = n;
	return 0;
bad:
	buf_free(&cur);
	buf_free(&angle);
	for (i = 0; i < n; i++)
		free(addrs[i]);
	free(addrs);
	*addrs_r = NULL;
	*count_r = 0;
	return -1;
}
