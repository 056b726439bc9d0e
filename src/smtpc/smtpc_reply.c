/*
 * Server replies: "CODE-text" lines, the last one "CODE text" (RFC 5321
 * 4.2). The parser takes bytes in any split and never holds more than one
 * line; a line past SMTPC_LINE_MAX, a reply past SMTPC_REPLY_LINES_MAX lines
 * or anything that is not a reply line is an error, which ends the session.
 */
#include "smtpc/smtpc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
smtpc_reply_reset(struct smtpc_reply_parser *p)
{
	smtpc_line_fn *fn = p->line_fn;
	void *arg = p->line_arg;

	memset(p, 0, sizeof(*p));
	p->line_fn = fn;
	p->line_arg = arg;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Appends text to the reply's kept text, printable ASCII only. */
static void
keep_text(struct smtpc_reply_parser *p, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && p->textlen < SMTPC_TEXT_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		p->reply.text[p->textlen++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	p->reply.text[p->textlen] = '\0';
}

/* "X.Y.Z" at the start of text, X the code's class (RFC 3463). */
static void
enhanced_status(struct smtpc_reply_parser *p, const char *t, size_t len)
{
	size_t i = 0, parts = 0, digits;

	if (len < 5 || t[0] != "0123456789"[p->reply.code / 100] || t[1] != '.')
		return;
	for (;;) {
		for (digits = 0; i < len && is_digit(t[i]); i++)
			digits++;
		if (digits == 0 || digits > 3)
			return;
		parts++;
		if (parts == 3)
			break;
		if (i >= len || t[i] != '.')
			return;
		i++;
	}
	if (i < len && t[i] != ' ')
		return;
	memcpy(p->reply.status, t, i);
	p->reply.status[i] = '\0';
}

/* One whole line (without CRLF): 1 last line, 0 more follow, -1 malformed. */
static int
reply_line(struct smtpc_reply_parser *p, const char *line, size_t len)
{
	int code, last;
	const char *text;
	size_t tlen;

	if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) ||
	    line[0] < '2' || line[0] > '5' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
		p->error = "malformed reply line";
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	last = len == 3 || line[3] == ' ';
	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	if (p->nlines == 0) {
		p->reply.code = code;
		enhanced_status(p, text, tlen);
		keep_text(p, line, 3);
	} else if (code != p->reply.code) {
		p->error = "reply lines with different codes";
		return -1;
	}
	if (++p->nlines > SMTPC_REPLY_LINES_MAX) {
		p->error = "reply with too many lines";
		return -1;
	}
	if (tlen > 0) {
		keep_text(p, " ", 1);
		keep_text(p, text, tlen);
	}
	if (p->line_fn != NULL)
		p->line_fn(p->line_arg, text, tlen);
	return last;
}

int
smtpc_reply_feed(struct smtpc_reply_parser *p, const char *data, size_t len, size_t *used_r)
{
	size_t i;
	int r;

	*used_r = 0;
	if (p->error != NULL)
		return -1;
	for (i = 0; i < len; i++) {
		char c = data[i];

		if (c != '\n') {
			if (p->len >= SMTPC_LINE_MAX) {
				p->error = "reply line too long";
				return -1;
			}
			p->line[p->len++] = c;
			continue;
		}
		if (p->len > 0 && p->line[p->len - 1] == '\r')
			p->len--;
		p->line[p->len] = '\0';
		if (memchr(p->line, '\0', p->len) != NULL) {
			p->error = "NUL in reply";
			return -1;
		}
		r = reply_line(p, p->line, p->len);
		p->len = 0;
		if (r < 0)
			return -1;
		if (r == 1) {
			*used_r = i + 1;
			return 1;
		}
	}
	*used_r = len;
	return 0;
}

/* --- EHLO keywords ------------------------------------------------------ */

void
smtpc_caps_parse_line(struct smtpc_caps *caps, const char *text, size_t len)
{
	char kw[64], *sp;
	size_t n = len < sizeof(kw) - 1 ? len : sizeof(kw) - 1;

	memcpy(kw, text, n);
	kw[n] = '\0';
	sp = strchr(kw, ' ');
	if (sp != NULL)
		*sp++ = '\0';
	if (strcasecmp(kw, "PIPELINING") == 0)
		caps->pipelining = 1;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		caps->eightbitmime = 1;
	else if (strcasecmp(kw, "BINARYMIME") == 0)
		caps->binarymime = 1;
	else if (strcasecmp(kw, "CHUNKING") == 0)
		caps->chunking = 1;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		caps->smtputf8 = 1;
	else if (strcasecmp(kw, "DSN") == 0)
		caps->dsn = 1;
	else if (strcasecmp(kw, "REQUIRETLS") == 0)
		caps->requiretls = 1;
	else if (strcasecmp(kw, "STARTTLS") == 0)
		caps->starttls = 1;
	else if (strcasecmp(kw, "AUTH") == 0 && sp != NULL) {
		char *tok, *save = NULL;

		for (tok = strtok_r(sp, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
			if (strcasecmp(tok, "PLAIN") == 0)
				caps->auth_plain = 1;
	} else if (strcasecmp(kw, "SIZE") == 0) {
		caps->size_ext = 1;
		caps->size = 0;
		if (sp != NULL) {
			char *e;
			unsigned long long v = strtoull(sp, &e, 10);

			if (e != sp && *e == '\0')
				caps->size = v;
		}
	}
}
