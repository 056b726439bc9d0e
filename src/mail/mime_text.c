/* Text for search and preview: crude HTML stripping, the preview. */
#include "mail/mime_int.h"

#include <stdlib.h>
#include <string.h>

#include "mail/charset.h"

enum {
	HTML_TEXT,
	HTML_TAG,
	HTML_COMMENT,
	HTML_ENTITY,
};

/* Tags after which words must not run together. */
static int
is_block_tag(const char *name)
{
	static const char *const tags[] = { "br", "p", "div", "tr", "td", "th", "li",
	    "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote",
	    "hr", "title", "pre", "dd", "dt" };
	size_t i;

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (strcmp(name, tags[i]) == 0)
			return 1;
	return 0;
}

static void
tag_end(struct mime_html *h, struct buf *out)
{
	char name[sizeof(h->tag)];
	size_t i = 0, n = 0;
	int closing = 0;

	if (h->ntag > 0 && h->tag[0] == '/') {
		closing = 1;
		i = 1;
	}
	for (; i < h->ntag && n < sizeof(name) - 1; i++) {
		char c = h->tag[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			break;
		name[n++] = c;
	}
	name[n] = '\0';
	if (strcmp(name, "style") == 0 || strcmp(name, "script") == 0)
		h->skip = !closing;
	else if (!h->skip && is_block_tag(name))
		buf_putc(out, '\n');
}

static void
entity_end(struct mime_html *h, struct buf *out)
{
	static const struct {
		const char *name;
		const char *text;
	} names[] = {
		{ "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" },
		{ "apos", "'" }, { "nbsp", " " },
	};
	unsigned long cp = 0;
	size_t i;
	char *start, *end;

	h->ent[h->nent] = '\0';
	if (h->skip)
		return;
	if (h->ent[0] == '#' && h->nent > 1) {
		start = h->ent + 1;
		if (*start == 'x' || *start == 'X')
			cp = strtoul(++start, &end, 16);
		else
			cp = strtoul(start, &end, 10);
		if (*end == '\0' && end > start) {
			mail_utf8_putcp(out, cp == 0xa0 ? ' ' : cp);
			return;
		}
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(h->ent, names[i].name) == 0) {
			buf_puts(out, names[i].text);
			return;
		}
	buf_printf(out, "&%s;", h->ent);
}

void
mime_html_feed(struct mime_html *h, const char *html, size_t len, struct buf *out)
{
	size_t i, run;

	for (i = 0; i < len; i++) {
		char c = html[i];

		switch (h->state) {
		case HTML_TEXT:
			run = i;
			while (run < len && html[run] != '<' && html[run] != '&')
				run++;
			if (!h->skip)
				buf_append(out, html + i, run - i);
			i = run;
			if (i == len)
				break;
			if (html[i] == '<') {
				h->state = HTML_TAG;
				h->ntag = 0;
			} else {
				h->state = HTML_ENTITY;
				h->nent = 0;
			}
			break;
		case HTML_TAG:
			if (h->skip && h->ntag == 0 && c != '/') {
				/* "<" in a script or style is not a tag. */
				h->state = HTML_TEXT;
				i--;
				break;
			}
			if (c == '>') {
				tag_end(h, out);
				h->state = HTML_TEXT;
				break;
			}
			if (h->ntag < sizeof(h->tag))
				h->tag[h->ntag++] = c;
			if (h->ntag == 3 && memcmp(h->tag, "!--", 3) == 0) {
				h->state = HTML_COMMENT;
				h->dashes = 0;
			}
			break;
		case HTML_COMMENT:
			if (c == '-')
				h->dashes++;
			else if (c == '>' && h->dashes >= 2)
				h->state = HTML_TEXT;
			else
				h->dashes = 0;
			break;
		case HTML_ENTITY:
			if (c == ';') {
				entity_end(h, out);
				h->state = HTML_TEXT;
			} else if (h->nent < sizeof(h->ent) - 1 && (c == '#' ||
			    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9'))) {
				h->ent[h->nent++] = c;
			} else {
				/* Not an entity: the text as it was. */
				if (!h->skip) {
					buf_putc(out, '&');
					buf_append(out, h->ent, h->nent);
				}
				h->state = HTML_TEXT;
				i--;
			}
			break;
		}
	}
}

void
mime_html_finish(struct mime_html *h, struct buf *out)
{
	if (h->state == HTML_ENTITY && !h->skip) {
		buf_putc(out, '&');
		buf_append(out, h->ent, h->nent);
	}
	memset(h, 0, sizeof(*h));
}

int
mime_preview_add(struct mime_preview *pv, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && !pv->done; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f) {
			if (pv->nchars > 0)
				pv->space = 1;
			continue;
		}
		if ((c & 0xc0) == 0x80) {
			/* The rest of a character already counted. */
			if (pv->nchars > 0)
				buf_putc(&pv->text, (char)c);
			continue;
		}
		if (pv->nchars + (size_t)pv->space + 1 > MIME_PREVIEW_MAX) {
			pv->done = 1;
			break;
		}
		if (pv->space) {
			buf_putc(&pv->text, ' ');
			pv->nchars++;
			pv->space = 0;
		}
		buf_putc(&pv->text, (char)c);
		pv->nchars++;
	}
	return pv->done;
}
