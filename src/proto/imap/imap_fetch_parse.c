#include "proto/imap/imap_fetch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/xmalloc.h"

void
imap_section_clear(struct imap_section *sec)
{
	unsigned i;

	for (i = 0; i < sec->nfields; i++)
		free(sec->fields[i]);
	free(sec->fields);
	free(sec->name);
	memset(sec, 0, sizeof(*sec));
}

void
imap_fetch_spec_clear(struct imap_fetch_spec *spec)
{
	unsigned i;

	for (i = 0; i < spec->nsections; i++)
		imap_section_clear(&spec->sections[i]);
	free(spec->sections);
	memset(spec, 0, sizeof(*spec));
}

static int
imap_number(const char **pp, uint64_t max, uint64_t *n_r)
{
	const char *p = *pp;
	uint64_t n = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > max)
			return -1;
	}
	*n_r = n;
	*pp = p;
	return 0;
}

/* A header field name: printable ASCII except ':' and space. */
static int
imap_field_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != ':';
}

/* "(NAME NAME ...)" of HEADER.FIELDS; names may be quoted. */
static int
imap_section_fields(const char **pp, struct imap_section *sec)
{
	const char *p = *pp;

	if (*p++ != '(')
		return -1;
	for (;;) {
		struct buf name = BUF_INIT;

		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				if (!imap_field_char((unsigned char)*p)) {
					buf_free(&name);
					return -1;
				}
				buf_putc(&name, *p);
			}
			p++;
		} else {
			for (; *p != ' ' && *p != ')' && *p != '\0'; p++) {
				if (!imap_field_char((unsigned char)*p) || *p == '(') {
					buf_free(&name);
					return -1;
				}
				buf_putc(&name, *p);
			}
		}
		if (name.len == 0 || sec->nfields == IMAP_SECTION_FIELDS_MAX) {
			buf_free(&name);
			return -1;
		}
		sec->fields = xreallocarray(sec->fields, sec->nfields + 1, sizeof(*sec->fields));
		sec->fields[sec->nfields++] = buf_steal(&name);
		if (*p == ')')
			break;
		if (*p++ != ' ')
			return -1;
	}
	*pp = p + 1;
	return 0;
}

static void
imap_section_name(struct imap_section *sec)
{
	struct buf b = BUF_INIT;
	unsigned i;

	buf_puts(&b, sec->binary_size ? "BINARY.SIZE[" : sec->binary ? "BINARY[" : "BODY[");
	for (i = 0; i < sec->npart; i++)
		buf_printf(&b, "%s%u", i > 0 ? "." : "", sec->part[i]);
	if (sec->npart > 0 && sec->kind != IMAP_SECTION_ALL)
		buf_putc(&b, '.');
	switch (sec->kind) {
	case IMAP_SECTION_ALL:
		break;
	case IMAP_SECTION_HEADER:
		buf_puts(&b, "HEADER");
		break;
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		buf_puts(&b, sec->kind == IMAP_SECTION_HEADER_FIELDS ? "HEADER.FIELDS (" :
		    "HEADER.FIELDS.NOT (");
		for (i = 0; i < sec->nfields; i++)
			buf_printf(&b, "%s%s", i > 0 ? " " : "", sec->fields[i]);
		buf_putc(&b, ')');
		break;
	case IMAP_SECTION_TEXT:
		buf_puts(&b, "TEXT");
		break;
	case IMAP_SECTION_MIME:
		buf_puts(&b, "MIME");
		break;
	}
	buf_putc(&b, ']');
	sec->name = buf_steal(&b);
}

int
imap_section_parse(const char *item, struct imap_section *sec, const char **error_r)
{
	const char *p;
	uint64_t n;
	int dot;

	memset(sec, 0, sizeof(*sec));
	if (strncasecmp(item, "BODY.PEEK[", 10) == 0) {
		sec->peek = 1;
		p = item + 10;
	} else if (strncasecmp(item, "BODY[", 5) == 0) {
		p = item + 5;
	} else if (strncasecmp(item, "BINARY.PEEK[", 12) == 0) {
		sec->binary = sec->peek = 1;
		p = item + 12;
	} else if (strncasecmp(item, "BINARY.SIZE[", 12) == 0) {
		sec->binary = sec->binary_size = sec->peek = 1;
		p = item + 12;
	} else if (strncasecmp(item, "BINARY[", 7) == 0) {
		sec->binary = 1;
		p = item + 7;
	} else {
		goto bad;
	}
	/* section-part */
	dot = 0;
	while (*p >= '0' && *p <= '9') {
		if (imap_number(&p, UINT32_MAX, &n) < 0 || n == 0 ||
		    sec->npart == IMAP_SECTION_DEPTH_MAX)
			goto bad;
		sec->part[sec->npart++] = (uint32_t)n;
		if (*p != '.')
			break;
		p++;
		dot = 1;
		if (*p < '0' || *p > '9')
			break;  /* ".HEADER" and friends follow */
		dot = 0;
	}
	if (*p == ']' && !dot) {
		sec->kind = IMAP_SECTION_ALL;
	} else if (strncasecmp(p, "HEADER.FIELDS.NOT ", 18) == 0) {
		sec->kind = IMAP_SECTION_HEADER_FIELDS_NOT;
		p += 18;
		if (imap_section_fields(&p, sec) < 0)
			goto bad;
	} else if (strncasecmp(p, "HEADER.FIELDS ", 14) == 0) {
		sec->kind = IMAP_SECTION_HEADER_FIELDS;
		p += 14;
		if (imap_section_fields(&p, sec) < 0)
			goto bad;
	} else if (strncasecmp(p, "HEADER]", 7) == 0) {
		sec->kind = IMAP_SECTION_HEADER;
		p += 6;
	} else if (strncasecmp(p, "TEXT]", 5) == 0) {
		sec->kind = IMAP_SECTION_TEXT;
		p += 4;
	} else if (strncasecmp(p, "MIME]", 5) == 0 && sec->npart > 0) {
		sec->kind = IMAP_SECTION_MIME;
		p += 4;
	} else {
		goto bad;
	}
	/* A part number not followed by ']' needs a text part after its '.'. */
	if (*p != ']')
		goto bad;
	p++;
	/* BINARY takes part numbers only; BINARY.SIZE no partial. */
	if (sec->binary && sec->kind != IMAP_SECTION_ALL)
		goto bad;
	if (*p == '<' && !sec->binary_size) {
		p++;
		if (imap_number(&p, UINT32_MAX, &sec->offset) < 0 || *p++ != '.' ||
		    imap_number(&p, UINT32_MAX, &sec->length) < 0 || sec->length == 0 ||
		    *p++ != '>')
			goto bad;
		sec->partial = 1;
	}
	if (*p != '\0')
		goto bad;
	imap_section_name(sec);
	return 0;
bad:
	imap_section_clear(sec);
	*error_r = "Invalid body section";
	return -1;
}

static struct imap_section *
imap_fetch_add_section(struct imap_fetch_spec *spec)
{
	struct imap_section *sec;

	spec->sections = xreallocarray(spec->sections, spec->nsections + 1,
	    sizeof(*spec->sections));
	sec = &spec->sections[spec->nsections++];
	memset(sec, 0, sizeof(*sec));
	return sec;
}

static const struct {
	const char *name;
	unsigned items;
} imap_fetch_simple[] = {
	{ "FLAGS", IMAP_FETCH_FLAGS },
	{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
	{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE },
	{ "UID", IMAP_FETCH_UID },
	{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
	{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
	{ "BODY", IMAP_FETCH_BODY },
	{ "MODSEQ", IMAP_FETCH_MODSEQ },
	{ "EMAILID", IMAP_FETCH_EMAILID },
	{ "THREADID", IMAP_FETCH_THREADID },
	{ "PREVIEW", IMAP_FETCH_PREVIEW },
	{ "FAST", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE },
	{ "ALL", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
	    IMAP_FETCH_ENVELOPE },
	{ "FULL", IMAP_FETCH_FLAGS | IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
	    IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODY },
};

/* RFC822, RFC822.HEADER and RFC822.TEXT are body sections by other names. */
static int
imap_fetch_rfc822(const char *name, struct imap_fetch_spec *spec)
{
	struct imap_section *sec;
	enum imap_section_kind kind;
	int peek;

	if (strcasecmp(name, "RFC822") == 0) {
		kind = IMAP_SECTION_ALL;
		peek = 0;
	} else if (strcasecmp(name, "RFC822.HEADER") == 0) {
		kind = IMAP_SECTION_HEADER;
		peek = 1;
	} else if (strcasecmp(name, "RFC822.TEXT") == 0) {
		kind = IMAP_SECTION_TEXT;
		peek = 0;
	} else {
		return 0;
	}
	sec = imap_fetch_add_section(spec);
	sec->kind = kind;
	sec->peek = peek;
	sec->name = xstrdup(kind == IMAP_SECTION_ALL ? "RFC822" :
	    kind == IMAP_SECTION_HEADER ? "RFC822.HEADER" : "RFC822.TEXT");
	return 1;
}

static int
imap_fetch_item(const struct imap_arg *a, struct imap_fetch_spec *spec, int top,
    const char **error_r)
{
	size_t i;

	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid FETCH item";
		return -1;
	}
	for (i = 0; i < sizeof(imap_fetch_simple) / sizeof(imap_fetch_simple[0]); i++) {
		if (strcasecmp(a->str, imap_fetch_simple[i].name) == 0) {
			/* Macros (the last three) stand alone (RFC 9051 fetch). */
			if (!top && i >= sizeof(imap_fetch_simple) / sizeof(imap_fetch_simple[0]) - 3) {
				*error_r = "FETCH macros cannot be in a list";
				return -1;
			}
			spec->items |= imap_fetch_simple[i].items;
			return 0;
		}
	}
	if (imap_fetch_rfc822(a->str, spec))
		return 0;
	if (spec->nsections == IMAP_FETCH_SECTIONS_MAX) {
		*error_r = "Too many body sections";
		return -1;
	}
	if (strncasecmp(a->str, "BODY[", 5) == 0 || strncasecmp(a->str, "BODY.PEEK[", 10) == 0 ||
	    strncasecmp(a->str, "BINARY", 6) == 0) {
		struct imap_section sec;

		if (imap_section_parse(a->str, &sec, error_r) < 0)
			return -1;
		*imap_fetch_add_section(spec) = sec;
		return 0;
	}
	*error_r = "Unknown FETCH item";
	return -1;
}

int
imap_fetch_parse(const struct imap_arg *items, const struct imap_arg *modifiers,
    struct imap_fetch_spec *spec, const char **error_r)
{
	const struct imap_arg *a;

	memset(spec, 0, sizeof(*spec));
	if (items->type == IMAP_ARG_LIST) {
		if (items->list == NULL) {
			*error_r = "Empty FETCH item list";
			return -1;
		}
		for (a = items->list; a != NULL; a = a->next) {
			if (imap_fetch_item(a, spec, 0, error_r) < 0)
				goto fail;
			/* PREVIEW (LAZY) (RFC 8970 3.2): the preview is always at
			 * hand here, so LAZY changes nothing. */
			if (strcasecmp(a->str, "PREVIEW") == 0 && a->next != NULL &&
			    a->next->type == IMAP_ARG_LIST) {
				const struct imap_arg *m;

				a = a->next;
				for (m = a->list; m != NULL; m = m->next) {
					if (m->type != IMAP_ARG_ATOM || strcasecmp(m->str, "LAZY") != 0) {
						*error_r = "Unknown PREVIEW modifier";
						goto fail;
					}
				}
			}
		}
	} else if (imap_fetch_item(items, spec, 1, error_r) < 0) {
		goto fail;
	}
	if (modifiers != NULL) {
		if (modifiers->type != IMAP_ARG_LIST || modifiers->list == NULL)
			goto bad_mod;
		for (a = modifiers->list; a != NULL; a = a->next) {
			const char *p;

			if (a->type == IMAP_ARG_ATOM && strcasecmp(a->str, "VANISHED") == 0) {
				spec->vanished = 1;
				continue;
			}
			if (a->type != IMAP_ARG_ATOM || strcasecmp(a->str, "CHANGEDSINCE") != 0 ||
			    a->next == NULL || a->next->type != IMAP_ARG_ATOM)
				goto bad_mod;
			a = a->next;
			p = a->str;
			if (imap_number(&p, INT64_MAX, &spec->changedsince) < 0 || *p != '\0')
				goto bad_mod;
			spec->has_changedsince = 1;
			spec->items |= IMAP_FETCH_MODSEQ;
		}
		/* RFC 7162 3.2.6: VANISHED only with CHANGEDSINCE. */
		if (spec->vanished && !spec->has_changedsince)
			goto bad_mod;
	}
	return 0;
bad_mod:
	*error_r = "Invalid FETCH modifier";
fail:
	imap_fetch_spec_clear(spec);
	return -1;
}

int
imap_fetch_sets_seen(const struct imap_fetch_spec *spec)
{
	unsigned i;

	for (i = 0; i < spec->nsections; i++) {
		if (!spec->sections[i].peek)
			return 1;
	}
	return 0;
}
