/*
 * IMAP BODYSTRUCTURE and BODY (RFC 3501 / RFC 9051 section 7.4.2) from the
 * parsed part tree.
 *
 * Conventions: type, subtype, encoding and disposition type are sent
 * upper-case, parameter names lower-case, values as they were sent (RFC 2231
 * continuations joined). A text part always has a charset (us-ascii by default).
 * A multipart whose children could not be tracked (no delimiter found, or a
 * limit reached) gets one empty text/plain child, as the grammar wants at
 * least one; likewise an encapsulated message that was not parsed. Extension
 * data is always complete: md5, dsp, lang, loc for single parts and params,
 * dsp, lang, loc for multiparts.
 */
#include "mail/mime_int.h"

#include <inttypes.h>
#include <string.h>

#define EMPTY_PART "(\"TEXT\" \"PLAIN\" (\"charset\" \"us-ascii\") NIL NIL \"7BIT\" 0 0"
#define EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

struct writer {
	const struct mime_part *parts;
	const struct mime_meta *meta;
	const uint32_t *subtree_end;
	int ext;
	struct buf *out;
};

static void
write_params(struct buf *out, const struct mime_params *params)
{
	size_t i;

	if (params->n == 0) {
		buf_puts(out, "NIL");
		return;
	}
	buf_putc(out, '(');
	for (i = 0; i < params->n; i++) {
		if (i > 0)
			buf_putc(out, ' ');
		mime_imap_nstring(out, params->v[i].name);
		buf_putc(out, ' ');
		mime_imap_nstring(out, params->v[i].value);
	}
	buf_putc(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
write_dsp_lang_loc(struct buf *out, const struct mime_meta *m)
{
	size_t i;

	if (m->disposition == NULL) {
		buf_puts(out, "NIL");
	} else {
		buf_putc(out, '(');
		mime_imap_nstring(out, m->disposition);
		buf_putc(out, ' ');
		write_params(out, &m->dparams);
		buf_putc(out, ')');
	}
	buf_putc(out, ' ');
	if (m->nlangs == 0) {
		buf_puts(out, "NIL");
	} else {
		buf_putc(out, '(');
		for (i = 0; i < m->nlangs; i++) {
			if (i > 0)
				buf_putc(out, ' ');
			mime_imap_nstring(out, m->langs[i]);
		}
		buf_putc(out, ')');
	}
	buf_putc(out, ' ');
	mime_imap_nstring(out, m->location);
}

static void
write_empty_part(struct writer *w)
{
	buf_puts(w->out, EMPTY_PART);
	if (w->ext)
		buf_puts(w->out, " NIL NIL NIL NIL");
	buf_putc(w->out, ')');
}

/* Recurses once per nesting level, which the parser bounds by
 * MIME_DEPTH_MAX. */
static void
write_part(struct writer *w, uint32_t i)
{
	const struct mime_part *mp = &w->parts[i];
	const struct mime_meta *m = &w->meta[i];
	struct buf *out = w->out;
	uint32_t c;

	buf_putc(out, '(');
	if (mp->multipart) {
		if (mp->nchildren == 0)
			write_empty_part(w);
		for (c = i + 1; c < w->subtree_end[i]; c = w->subtree_end[c])
			write_part(w, c);
		buf_putc(out, ' ');
		mime_imap_nstring(out, m->subtype);
		if (w->ext) {
			buf_putc(out, ' ');
			write_params(out, &m->params);
			buf_putc(out, ' ');
			write_dsp_lang_loc(out, m);
		}
		buf_putc(out, ')');
		return;
	}
	mime_imap_nstring(out, m->type);
	buf_putc(out, ' ');
	mime_imap_nstring(out, m->subtype);
	buf_putc(out, ' ');
	write_params(out, &m->params);
	buf_putc(out, ' ');
	mime_imap_nstring(out, m->id);
	buf_putc(out, ' ');
	mime_imap_nstring(out, m->description);
	buf_putc(out, ' ');
	mime_imap_nstring(out, m->encoding != NULL ? m->encoding : "7BIT");
	buf_printf(out, " %" PRIu64, mp->body_end - mp->body_offset);
	if (mp->message_rfc822) {
		buf_putc(out, ' ');
		if (mp->nchildren > 0) {
			mime_envelope_fields(w->meta[i + 1].env, out);
			buf_putc(out, ' ');
			write_part(w, i + 1);
		} else {
			buf_puts(out, EMPTY_ENVELOPE " ");
			write_empty_part(w);
		}
		buf_printf(out, " %" PRIu64, mp->body_lines);
	} else if (strcmp(m->type, "TEXT") == 0) {
		buf_printf(out, " %" PRIu64, mp->body_lines);
	}
	if (w->ext) {
		buf_putc(out, ' ');
		mime_imap_nstring(out, m->md5);
		buf_putc(out, ' ');
		write_dsp_lang_loc(out, m);
	}
	buf_putc(out, ')');
}

void
mime_body_write(const struct mime_part *parts, const struct mime_meta *meta,
    const uint32_t *subtree_end, uint32_t nparts, int ext, struct buf *out)
{
	struct writer w = { parts, meta, subtree_end, ext, out };

	if (nparts > 0)
		write_part(&w, 0);
}
