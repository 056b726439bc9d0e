/*
 * The streaming MIME parser (see mime.h).
 *
 * Input is split into lines. At the start of a line inside a multipart, up
 * to "--" + the longest open boundary + "--" octets are held back to see
 * whether the line is a delimiter; otherwise bytes go straight to the part
 * on top of the stack: to its header (field by field, only the fields we
 * keep are buffered) or to its body (only text bodies are decoded, and
 * only while the search text or a preview still wants them).
 *
 * Delimiters: a line that starts with "--" + boundary is one (RFC 2046
 * 5.1.1 asks for prefix matching); when several open boundaries match, the
 * longest wins, so a boundary that is a prefix of another does not steal its
 * lines. The line break before a delimiter belongs to it, except right after
 * another delimiter line. Parts nested in a part that a delimiter ends are
 * ended there too; nothing here recurses on input.
 */
#include "mail/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "mail/charset.h"
#include "mail/decode.h"
#include "mail/mime_int.h"

enum line_mode {
	LINE_START,
	LINE_CANDIDATE,         /* holding back a line that may be a delimiter */
	LINE_CONTENT,
	LINE_DELIMITER,         /* the rest of a delimiter line */
};

enum field_state {
	FIELD_NAME,
	FIELD_VALUE,            /* a field we keep */
	FIELD_SKIP,
};

enum cte {
	CTE_IDENTITY,
	CTE_QP,
	CTE_BASE64,
};

struct frame {
	uint32_t part;
	char *boundary;         /* of a multipart whose delimiters we look for */
	size_t blen;
	int header;             /* still in the part's header */
	uint64_t nlf_body;      /* LFs in the message before the body */
};

struct mime_parser {
	struct mime_part *parts;
	struct mime_meta *meta;
	uint32_t *subtree_end;  /* one past the last part of each subtree */
	uint32_t nparts, cap;

	struct frame stack[MIME_DEPTH_MAX + 1];
	unsigned nframes;
	size_t blen_max;        /* longest open boundary, 0 when none */

	uint64_t off;           /* octets consumed */
	uint64_t nlf;           /* LFs consumed */
	uint64_t line_start;
	uint64_t eol_start;     /* where the last line break started */
	uint64_t eol_nlf;       /* LFs before it */
	uint64_t region_start;  /* first octet after the last delimiter line */
	size_t line_len;        /* octets of the current line so far */
	unsigned char last_c;
	enum line_mode mode;
	int pending_child;      /* a delimiter opens a part at the end of its line */
	char lbuf[2 + MIME_BOUNDARY_MAX + 2];
	size_t lbuf_len;

	/* The header being read (always the top part's). */
	uint64_t hdr_bytes;
	int hdr_cut;
	enum field_state field;
	char name[32];
	size_t name_len;        /* sizeof(name) once too long to be kept */
	int field_id;
	int field_eol;          /* a line of the field ended: folding decides */
	int want_env;
	struct buf value;
	char *raw[MIME_F_COUNT];
	char *references;

	/* Decoding of the top part's text. */
	int text_on;
	enum cte cte;
	struct mail_qp qp;
	struct mail_b64 b64;
	struct mail_conv conv;
	int html;
	struct mime_html hs;
	struct mime_preview *pv;
	struct buf dec, utf8, stripped;

	struct buf text;
	int text_full;
	struct mime_preview pv_plain, pv_html;
	int seen_plain, seen_html;

	unsigned has_8bit : 1;
	unsigned has_nul : 1;
	unsigned truncated : 1;
};

static struct frame *
top(struct mime_parser *p)
{
	return &p->stack[p->nframes - 1];
}

static void
blen_update(struct mime_parser *p)
{
	unsigned i;

	p->blen_max = 0;
	for (i = 0; i < p->nframes; i++)
		if (p->stack[i].boundary != NULL && p->stack[i].blen > p->blen_max)
			p->blen_max = p->stack[i].blen;
}

/* Search text: appends s (valid UTF-8) while there is room. */
static void
text_append(struct mime_parser *p, const char *s, size_t len)
{
	size_t room, i;

	if (p->text_full || len == 0)
		return;
	room = MIME_TEXT_MAX - p->text.len;
	if (len > room) {
		len = mail_utf8_cut(s, room);
		p->text_full = 1;
		p->truncated = 1;
	}
	/* The index wants words: CRs are dropped, NULs become spaces. */
	buf_reserve(&p->text, len);
	for (i = 0; i < len; i++) {
		if (s[i] == '\r')
			continue;
		p->text.data[p->text.len++] = s[i] == '\0' ? ' ' : s[i];
	}
	p->text.data[p->text.len] = '\0';
}

static void
text_separate(struct mime_parser *p)
{
	if (p->text.len > 0 && p->text.data[p->text.len - 1] != '\n')
		text_append(p, "\n", 1);
}

/* Opens a part as a child of parent (UINT32_MAX for the root) and makes it
 * the top of the stack, reading its header. */
static void
part_open(struct mime_parser *p, uint32_t parent, uint64_t offset)
{
	struct mime_part *mp;
	struct frame *f;
	uint32_t idx = p->nparts;

	if (p->nparts == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 8;
		if (p->cap > MIME_PARTS_MAX)
			p->cap = MIME_PARTS_MAX;
		p->parts = xreallocarray(p->parts, p->cap, sizeof(*p->parts));
		p->meta = xreallocarray(p->meta, p->cap, sizeof(*p->meta));
		p->subtree_end = xreallocarray(p->subtree_end, p->cap,
		    sizeof(*p->subtree_end));
	}
	p->nparts++;
	mp = &p->parts[idx];
	memset(mp, 0, sizeof(*mp));
	memset(&p->meta[idx], 0, sizeof(p->meta[idx]));
	p->subtree_end[idx] = idx + 1;
	mp->header_offset = mp->body_offset = mp->body_end = offset;
	if (parent != UINT32_MAX) {
		mp->parent = parent;
		mp->depth = (uint16_t)(p->parts[parent].depth + 1);
		p->parts[parent].nchildren++;
	}
	p->want_env = idx == 0 || p->parts[parent].message_rfc822;

	f = &p->stack[p->nframes++];
	memset(f, 0, sizeof(*f));
	f->part = idx;
	f->header = 1;

	p->hdr_bytes = 0;
	p->hdr_cut = 0;
	p->field = FIELD_NAME;
	p->name_len = 0;
	p->field_eol = 0;
	buf_reset(&p->value);
}

/* Whether the top part may have a child (depth and count limits). */
static int
child_allowed(struct mime_parser *p)
{
	if (p->nparts >= MIME_PARTS_MAX || p->nframes > MIME_DEPTH_MAX ||
	    p->parts[top(p)->part].depth >= MIME_DEPTH_MAX) {
		p->truncated = 1;
		return 0;
	}
	return 1;
}

static void
field_end(struct mime_parser *p)
{
	size_t i;

	if (p->field == FIELD_VALUE && p->raw[p->field_id] == NULL) {
		/* Kept values are C strings: a NUL becomes a space. */
		for (i = 0; i < p->value.len; i++)
			if (p->value.data[i] == '\0')
				p->value.data[i] = ' ';
		p->raw[p->field_id] = mime_trim_dup(p->value.data ? p->value.data : "",
		    p->value.len);
	}
	p->field = FIELD_NAME;
	p->name_len = 0;
}

static void
field_name_end(struct mime_parser *p)
{
	int id = -1;

	while (p->name_len > 0 && p->name_len < sizeof(p->name) &&
	    (p->name[p->name_len - 1] == ' ' || p->name[p->name_len - 1] == '\t'))
		p->name_len--;
	if (p->name_len < sizeof(p->name))
		id = mime_field_lookup(p->name, p->name_len);
	if (id >= MIME_F_ENV && !p->want_env)
		id = -1;
	if (id < 0 || p->raw[id] != NULL) {
		p->field = FIELD_SKIP;
		return;
	}
	p->field = FIELD_VALUE;
	p->field_id = id;
	buf_reset(&p->value);
}

static void
header_bytes(struct mime_parser *p, const unsigned char *s, size_t n)
{
	const unsigned char *lf;
	size_t i, run;

	if (p->hdr_cut)
		return;
	if (n > MIME_HEADER_MAX - p->hdr_bytes) {
		/* Past the limit the header is not read, only skipped. */
		header_bytes(p, s, MIME_HEADER_MAX - p->hdr_bytes);
		p->hdr_cut = 1;
		p->truncated = 1;
		p->field = FIELD_NAME;
		p->name_len = 0;
		return;
	}
	p->hdr_bytes += n;
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (p->field_eol) {
			p->field_eol = 0;
			if (c != ' ' && c != '\t')
				field_end(p);
		}
		if (c == '\n') {
			if (p->field == FIELD_VALUE && p->value.len > 0 &&
			    p->value.data[p->value.len - 1] == '\r')
				p->value.data[--p->value.len] = '\0';
			p->field_eol = 1;
			continue;
		}
		switch (p->field) {
		case FIELD_NAME:
			if (c == ':')
				field_name_end(p);
			else if (p->name_len < sizeof(p->name))
				p->name[p->name_len++] = (char)c;
			break;
		case FIELD_VALUE:
			lf = memchr(s + i, '\n', n - i);
			run = lf ? (size_t)(lf - (s + i)) : n - i;
			buf_append(&p->value, s + i, run);
			i += run - 1;
			break;
		case FIELD_SKIP:
			lf = memchr(s + i, '\n', n - i);
			i = lf ? (size_t)(lf - s) - 1 : n - 1;
			break;
		}
	}
}

static void
header_text(struct mime_parser *p, char **env)
{
	static const int fields[] = { MIME_ENV_SUBJECT, MIME_ENV_FROM, MIME_ENV_TO,
	    MIME_ENV_CC, MIME_ENV_BCC };
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (env[fields[i]] == NULL)
			continue;
		buf_reset(&b);
		mail_header_decode(env[fields[i]], strlen(env[fields[i]]), &b);
		text_separate(p);
		text_append(p, b.data ? b.data : "", b.len);
	}
	buf_free(&b);
}

static char *
take_raw(struct mime_parser *p, int id)
{
	char *v = p->raw[id];

	p->raw[id] = NULL;
	return v;
}

/* The header of the top part is complete (or cut short): its meta. */
static void
header_end(struct mime_parser *p)
{
	struct frame *f = top(p);
	uint32_t idx = f->part;
	struct mime_part *mp = &p->parts[idx];
	struct mime_meta *m = &p->meta[idx];
	const struct mime_meta *pm;
	const char *boundary;
	char *ct;
	int i, in_digest = 0;

	if (p->field == FIELD_VALUE)
		field_end(p);
	p->field = FIELD_NAME;
	p->name_len = 0;
	p->field_eol = 0;
	f->header = 0;

	if (idx > 0) {
		pm = &p->meta[mp->parent];
		in_digest = p->parts[mp->parent].multipart && pm->subtype != NULL &&
		    strcmp(pm->subtype, "DIGEST") == 0;
	}
	ct = take_raw(p, MIME_F_CONTENT_TYPE);
	if (ct != NULL && mime_content_type_parse(ct, &m->type, &m->subtype,
	    &m->params) == 0 && strcmp(m->type, "MULTIPART") == 0) {
		/* A multipart needs a usable boundary, else it is not one. */
		boundary = mime_params_get(&m->params, "boundary");
		if (boundary == NULL || *boundary == '\0' ||
		    strlen(boundary) > MIME_BOUNDARY_MAX) {
			xfree(&m->type);
			xfree(&m->subtype);
			mime_params_free(&m->params);
		}
	}
	if (m->type == NULL) {
		mime_params_free(&m->params);
		if (ct == NULL && in_digest) {
			m->type = xstrdup("MESSAGE");
			m->subtype = xstrdup("RFC822");
		} else {
			m->type = xstrdup("TEXT");
			m->subtype = xstrdup("PLAIN");
		}
	}
	free(ct);
	if (strcmp(m->type, "TEXT") == 0 && mime_params_get(&m->params, "charset") == NULL)
		mime_params_add(&m->params, "charset", "us-ascii");
	mp->multipart = strcmp(m->type, "MULTIPART") == 0;
	mp->message_rfc822 = strcmp(m->type, "MESSAGE") == 0 &&
	    strcmp(m->subtype, "RFC822") == 0;

	if (p->raw[MIME_F_CTE] != NULL) {
		m->encoding = mime_token_parse(p->raw[MIME_F_CTE]);
		xfree(&p->raw[MIME_F_CTE]);
	}
	m->id = take_raw(p, MIME_F_CONTENT_ID);
	m->description = take_raw(p, MIME_F_CONTENT_DESCRIPTION);
	m->md5 = take_raw(p, MIME_F_CONTENT_MD5);
	m->location = take_raw(p, MIME_F_CONTENT_LOCATION);
	if (p->raw[MIME_F_CONTENT_DISPOSITION] != NULL) {
		mime_disposition_parse(p->raw[MIME_F_CONTENT_DISPOSITION], &m->disposition,
		    &m->dparams);
		xfree(&p->raw[MIME_F_CONTENT_DISPOSITION]);
	}
	if (p->raw[MIME_F_CONTENT_LANGUAGE] != NULL) {
		mime_language_parse(p->raw[MIME_F_CONTENT_LANGUAGE], &m->langs, &m->nlangs);
		xfree(&p->raw[MIME_F_CONTENT_LANGUAGE]);
	}
	if (p->want_env) {
		m->env = xcalloc(MIME_ENV_NFIELDS, sizeof(*m->env));
		for (i = 0; i < MIME_ENV_NFIELDS; i++)
			m->env[i] = take_raw(p, MIME_F_ENV + i);
		if (idx == 0)
			p->references = take_raw(p, MIME_F_REFERENCES);
		header_text(p, m->env);
	}
	for (i = 0; i < MIME_F_COUNT; i++)
		xfree(&p->raw[i]);
}

static void
text_start(struct mime_parser *p)
{
	const struct mime_meta *m = &p->meta[top(p)->part];
	int plain, attachment;

	if (strcmp(m->type, "TEXT") != 0)
		return;
	plain = strcmp(m->subtype, "PLAIN") == 0;
	p->html = strcmp(m->subtype, "HTML") == 0;
	attachment = m->disposition != NULL && strcmp(m->disposition, "ATTACHMENT") == 0;
	p->pv = NULL;
	if (!attachment && plain && !p->seen_plain) {
		p->seen_plain = 1;
		p->pv = &p->pv_plain;
	} else if (!attachment && p->html && !p->seen_html) {
		p->seen_html = 1;
		p->pv = &p->pv_html;
	}
	if (p->text_full && p->pv == NULL)
		return;
	p->text_on = 1;
	p->cte = CTE_IDENTITY;
	if (m->encoding != NULL && strcmp(m->encoding, "QUOTED-PRINTABLE") == 0)
		p->cte = CTE_QP;
	else if (m->encoding != NULL && strcmp(m->encoding, "BASE64") == 0)
		p->cte = CTE_BASE64;
	memset(&p->qp, 0, sizeof(p->qp));
	memset(&p->b64, 0, sizeof(p->b64));
	memset(&p->hs, 0, sizeof(p->hs));
	mail_conv_open(&p->conv, mime_params_get(&m->params, "charset"));
	text_separate(p);
}

/* Sends decoded bytes through charset conversion and HTML stripping. */
static void
text_convert(struct mime_parser *p, const void *s, size_t len, int last)
{
	const struct buf *out = &p->utf8;

	buf_reset(&p->utf8);
	mail_conv_feed(&p->conv, s, len, &p->utf8);
	if (last)
		mail_conv_flush(&p->conv, &p->utf8);
	if (p->html) {
		buf_reset(&p->stripped);
		mime_html_feed(&p->hs, p->utf8.data ? p->utf8.data : "", p->utf8.len,
		    &p->stripped);
		if (last)
			mime_html_finish(&p->hs, &p->stripped);
		out = &p->stripped;
	}
	if (out->len == 0)
		return;
	if (p->pv != NULL && !p->pv->done)
		mime_preview_add(p->pv, out->data, out->len);
	text_append(p, out->data, out->len);
}

static void
text_feed(struct mime_parser *p, const void *s, size_t len)
{
	if (p->text_full && (p->pv == NULL || p->pv->done)) {
		p->text_on = 0;         /* nothing more is wanted */
		return;
	}
	switch (p->cte) {
	case CTE_IDENTITY:
		text_convert(p, s, len, 0);
		break;
	case CTE_QP:
		buf_reset(&p->dec);
		mail_qp_decode(&p->qp, s, len, &p->dec);
		text_convert(p, p->dec.data, p->dec.len, 0);
		break;
	case CTE_BASE64:
		buf_reset(&p->dec);
		mail_b64_decode(&p->b64, s, len, &p->dec);
		text_convert(p, p->dec.data, p->dec.len, 0);
		break;
	}
}

static void
text_end(struct mime_parser *p)
{
	buf_reset(&p->dec);
	if (p->cte == CTE_QP)
		mail_qp_finish(&p->qp, &p->dec);
	text_convert(p, p->dec.data, p->dec.len, 1);
	p->text_on = 0;
	p->pv = NULL;
}

/* The top part's header ended with its blank line at p->off. */
static void
body_start(struct mime_parser *p)
{
	struct frame *f;
	struct mime_part *mp;
	const char *boundary;

	header_end(p);
	f = top(p);
	mp = &p->parts[f->part];
	mp->body_offset = mp->body_end = p->off;
	f->nlf_body = p->nlf;
	if (mp->multipart) {
		if (!child_allowed(p))
			return;
		boundary = mime_params_get(&p->meta[f->part].params, "boundary");
		f->boundary = xstrdup(boundary);
		f->blen = strlen(boundary);
		blen_update(p);
	} else if (mp->message_rfc822) {
		if (child_allowed(p))
			part_open(p, f->part, p->off);
	} else {
		text_start(p);
	}
}

/* Ends the top part at part_end (nlf_end LFs before it). */
static void
part_close(struct mime_parser *p, uint64_t part_end, uint64_t nlf_end)
{
	struct frame *f = top(p);
	struct mime_part *mp = &p->parts[f->part];
	int empty = f->header;

	if (f->header)
		header_end(p);
	else if (p->text_on)
		text_end(p);
	if (mp->header_offset > part_end)
		mp->header_offset = part_end;
	if (empty || mp->body_offset > part_end) {
		mp->body_offset = part_end;
		mp->body_lines = 0;
	} else {
		mp->body_lines = nlf_end - f->nlf_body;
	}
	mp->body_end = part_end;
	p->subtree_end[f->part] = p->nparts;
	if (f->boundary != NULL) {
		free(f->boundary);
		f->boundary = NULL;
		p->nframes--;
		blen_update(p);
	} else {
		p->nframes--;
	}
}

static void
content(struct mime_parser *p, const void *s, size_t len)
{
	if (len == 0)
		return;
	if (top(p)->header)
		header_bytes(p, s, len);
	else if (p->text_on)
		text_feed(p, s, len);
}

/* A delimiter of the multipart at stack level k starts at line_start. */
static void
delimiter(struct mime_parser *p, unsigned k, int close)
{
	struct frame *f;
	uint64_t end = p->line_start, nlf_end = p->nlf;

	if (p->line_start > p->region_start) {
		end = p->eol_start;
		nlf_end = p->eol_nlf;
	}
	while (p->nframes - 1 > k)
		part_close(p, end, nlf_end);
	f = top(p);
	if (close) {
		free(f->boundary);
		f->boundary = NULL;
		blen_update(p);
		p->pending_child = 0;
	} else {
		p->pending_child = 1;
	}
}

/* Decides whether the held-back line start is a delimiter. */
static void
candidate_decide(struct mime_parser *p)
{
	unsigned i, k = 0;
	size_t best = 0, blen;
	int close;

	if (p->lbuf_len >= 2 && p->lbuf[0] == '-' && p->lbuf[1] == '-') {
		for (i = p->nframes; i-- > 0;) {
			blen = p->stack[i].blen;
			if (p->stack[i].boundary == NULL || blen <= best ||
			    p->lbuf_len < 2 + blen ||
			    memcmp(p->lbuf + 2, p->stack[i].boundary, blen) != 0)
				continue;
			best = blen;
			k = i;
		}
	}
	if (best == 0) {
		p->mode = LINE_CONTENT;
		content(p, p->lbuf, p->lbuf_len);
		return;
	}
	close = p->lbuf_len >= 2 + best + 2 && p->lbuf[2 + best] == '-' &&
	    p->lbuf[3 + best] == '-';
	p->mode = LINE_DELIMITER;
	delimiter(p, k, close);
}

static void
delimiter_line_end(struct mime_parser *p)
{
	p->region_start = p->off;
	if (p->pending_child) {
		p->pending_child = 0;
		if (child_allowed(p))
			part_open(p, top(p)->part, p->off);
	}
}

/* An LF ended a content line (p->off is just past it). */
static void
line_end(struct mime_parser *p, int cr)
{
	int empty = p->line_len == 0 || (p->line_len == 1 && cr);

	p->nlf++;
	p->eol_start = p->off - 1 - (cr ? 1 : 0);
	p->eol_nlf = p->nlf - 1;
	p->mode = LINE_START;
	if (empty && top(p)->header)
		body_start(p);
}

struct mime_parser *
mime_parser_new(void)
{
	struct mime_parser *p = xcalloc(1, sizeof(*p));

	part_open(p, UINT32_MAX, 0);
	return p;
}

void
mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
	const unsigned char *s = data, *lf;
	size_t i, n;
	int cr;

	for (i = 0; i < len && !(p->has_8bit && p->has_nul); i++) {
		if (s[i] & 0x80)
			p->has_8bit = 1;
		else if (s[i] == 0)
			p->has_nul = 1;
	}
	while (len > 0) {
		switch (p->mode) {
		case LINE_START:
			p->line_start = p->off;
			p->line_len = 0;
			p->lbuf_len = 0;
			p->mode = p->blen_max > 0 ? LINE_CANDIDATE : LINE_CONTENT;
			break;
		case LINE_CANDIDATE:
			if (*s == '\n' || p->lbuf_len == 2 + p->blen_max + 2 ||
			    (p->lbuf_len < 2 && *s != '-')) {
				candidate_decide(p);
				break;
			}
			p->lbuf[p->lbuf_len++] = (char)*s;
			p->last_c = *s;
			p->line_len++;
			p->off++;
			s++;
			len--;
			break;
		case LINE_CONTENT:
			lf = memchr(s, '\n', len);
			n = lf ? (size_t)(lf - s) + 1 : len;
			content(p, s, n);
			p->off += n;
			if (lf == NULL) {
				p->line_len += n;
				p->last_c = s[n - 1];
			} else {
				cr = n >= 2 ? s[n - 2] == '\r' : p->line_len > 0 && p->last_c == '\r';
				p->line_len += n - 1;
				line_end(p, cr);
			}
			s += n;
			len -= n;
			break;
		case LINE_DELIMITER:
			lf = memchr(s, '\n', len);
			n = lf ? (size_t)(lf - s) + 1 : len;
			p->off += n;
			s += n;
			len -= n;
			if (lf != NULL) {
				p->nlf++;
				p->mode = LINE_START;
				delimiter_line_end(p);
			}
			break;
		}
	}
}

void
mime_parser_free(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	uint32_t i;
	unsigned k;

	if (p == NULL)
		return;
	for (i = 0; i < p->nparts; i++)
		mime_meta_free(&p->meta[i]);
	free(p->parts);
	free(p->meta);
	free(p->subtree_end);
	for (k = 0; k < p->nframes; k++)
		free(p->stack[k].boundary);
	buf_free(&p->value);
	for (k = 0; k < MIME_F_COUNT; k++)
		free(p->raw[k]);
	free(p->references);
	mail_conv_close(&p->conv);
	buf_free(&p->dec);
	buf_free(&p->utf8);
	buf_free(&p->stripped);
	buf_free(&p->text);
	buf_free(&p->pv_plain.text);
	buf_free(&p->pv_html.text);
	free(p);
	*pp = NULL;
}

static char *
preview_take(struct mime_preview *pv)
{
	return pv->text.len > 0 ? buf_steal(&pv->text) : NULL;
}

struct mime_summary *
mime_parser_finish(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	struct mime_summary *s;
	struct buf b = BUF_INIT;
	char **env;

	/* A delimiter line the message ends in opens no part (as in
	 * Dovecot): only its line break would. */
	if (p->mode == LINE_CANDIDATE)
		candidate_decide(p);
	p->pending_child = 0;
	while (p->nframes > 0)
		part_close(p, p->off, p->nlf);

	s = xcalloc(1, sizeof(*s));
	s->size = p->off;
	s->header_size = p->parts[0].body_offset;
	mime_body_write(p->parts, p->meta, p->subtree_end, p->nparts, 1, &b);
	s->bodystructure = buf_steal(&b);
	mime_body_write(p->parts, p->meta, p->subtree_end, p->nparts, 0, &b);
	s->body = buf_steal(&b);
	env = p->meta[0].env;
	s->date = env[MIME_ENV_DATE];
	s->subject = env[MIME_ENV_SUBJECT];
	s->from = env[MIME_ENV_FROM];
	s->sender = env[MIME_ENV_SENDER];
	s->reply_to = env[MIME_ENV_REPLY_TO];
	s->to = env[MIME_ENV_TO];
	s->cc = env[MIME_ENV_CC];
	s->bcc = env[MIME_ENV_BCC];
	s->in_reply_to = env[MIME_ENV_IN_REPLY_TO];
	s->message_id = env[MIME_ENV_MESSAGE_ID];
	memset(env, 0, MIME_ENV_NFIELDS * sizeof(*env));
	s->references = p->references;
	p->references = NULL;
	s->parts = p->parts;
	s->nparts = p->nparts;
	p->parts = NULL;
	s->text = p->text;
	memset(&p->text, 0, sizeof(p->text));
	s->preview = preview_take(&p->pv_plain);
	if (s->preview == NULL)
		s->preview = preview_take(&p->pv_html);
	if (s->preview == NULL)
		s->preview = xstrdup("");
	s->has_8bit = p->has_8bit;
	s->has_nul = p->has_nul;
	s->truncated = p->truncated;
	mime_parser_free(pp);
	return s;
}

void
mime_summary_free(struct mime_summary **sp)
{
	struct mime_summary *s = *sp;

	if (s == NULL)
		return;
	free(s->date);
	free(s->subject);
	free(s->from);
	free(s->sender);
	free(s->reply_to);
	free(s->to);
	free(s->cc);
	free(s->bcc);
	free(s->in_reply_to);
	free(s->message_id);
	free(s->references);
	free(s->bodystructure);
	free(s->body);
	free(s->parts);
	buf_free(&s->text);
	free(s->preview);
	free(s);
	*sp = NULL;
}
