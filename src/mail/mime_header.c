/* Parsing of the MIME header fields (RFC 2045, 2183, 2231, 3282). */
#include "mail/mime_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"

static const char *const field_names[MIME_F_COUNT] = {
	[MIME_F_CONTENT_TYPE] = "content-type",
	[MIME_F_CTE] = "content-transfer-encoding",
	[MIME_F_CONTENT_ID] = "content-id",
	[MIME_F_CONTENT_DESCRIPTION] = "content-description",
	[MIME_F_CONTENT_DISPOSITION] = "content-disposition",
	[MIME_F_CONTENT_LANGUAGE] = "content-language",
	[MIME_F_CONTENT_LOCATION] = "content-location",
	[MIME_F_CONTENT_MD5] = "content-md5",
	[MIME_F_ENV + MIME_ENV_DATE] = "date",
	[MIME_F_ENV + MIME_ENV_SUBJECT] = "subject",
	[MIME_F_ENV + MIME_ENV_FROM] = "from",
	[MIME_F_ENV + MIME_ENV_SENDER] = "sender",
	[MIME_F_ENV + MIME_ENV_REPLY_TO] = "reply-to",
	[MIME_F_ENV + MIME_ENV_TO] = "to",
	[MIME_F_ENV + MIME_ENV_CC] = "cc",
	[MIME_F_ENV + MIME_ENV_BCC] = "bcc",
	[MIME_F_ENV + MIME_ENV_IN_REPLY_TO] = "in-reply-to",
	[MIME_F_ENV + MIME_ENV_MESSAGE_ID] = "message-id",
	[MIME_F_REFERENCES] = "references",
};

int
mime_field_lookup(const char *name, size_t len)
{
	int i;

	for (i = 0; i < MIME_F_COUNT; i++)
		if (strlen(field_names[i]) == len && strncasecmp(field_names[i], name, len) == 0)
			return i;
	return -1;
}

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *
mime_trim_dup(const char *s, size_t len)
{
	while (len > 0 && is_wsp(*s)) {
		s++;
		len--;
	}
	while (len > 0 && is_wsp(s[len - 1]))
		len--;
	return xstrndup(s, len);
}

/* Skips white space and comments (nested, counted, not recursed). */
static const char *
skip_cfws(const char *s)
{
	int depth;

	for (;;) {
		while (is_wsp(*s))
			s++;
		if (*s != '(')
			return s;
		depth = 0;
		do {
			if (*s == '\\' && s[1] != '\0')
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')')
				depth--;
			s++;
		} while (*s != '\0' && depth > 0);
	}
}

/* RFC 2045 token characters; 8-bit octets are let through. */
static int
is_token(char ch)
{
	unsigned char c = (unsigned char)ch;

	if (c <= 0x20 || c == 0x7f)
		return 0;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

static char *
token(const char **sp)
{
	const char *s = *sp, *t = s;

	while (is_token(*s))
		s++;
	*sp = s;
	return s > t ? xstrndup(t, (size_t)(s - t)) : NULL;
}

static void
upcase(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

static void
downcase(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* A parameter value: a quoted string (unescaped) or, leniently, anything up
 * to white space or ";" (unquoted values with "=" or "/" are common). */
static char *
param_value(const char **sp)
{
	const char *s = *sp;
	struct buf b = BUF_INIT;

	if (*s == '"') {
		s++;
		while (*s != '\0' && *s != '"') {
			if (*s == '\\' && s[1] != '\0')
				s++;
			if (*s != '\r' && *s != '\n')
				buf_putc(&b, *s);
			s++;
		}
		if (*s == '"')
			s++;
	} else {
		while (*s != '\0' && *s != ';' && !is_wsp(*s) && *s != '"' && *s != '(')
			buf_putc(&b, *s++);
	}
	*sp = s;
	if (b.data == NULL)
		return xstrdup("");
	return buf_steal(&b);
}

void
mime_params_add(struct mime_params *params, const char *name, const char *value)
{
	params->v = xreallocarray(params->v, params->n + 1, sizeof(*params->v));
	params->v[params->n].name = xstrdup(name);
	params->v[params->n].value = xstrdup(value);
	params->n++;
}

const char *
mime_params_get(const struct mime_params *params, const char *name)
{
	size_t i;

	for (i = 0; i < params->n; i++)
		if (strcmp(params->v[i].name, name) == 0)
			return params->v[i].value;
	return NULL;
}

void
mime_params_free(struct mime_params *params)
{
	size_t i;

	for (i = 0; i < params->n; i++) {
		free(params->v[i].name);
		free(params->v[i].value);
	}
	free(params->v);
	params->v = NULL;
	params->n = 0;
}

/* RFC 2231 attribute-char: what an extended value may hold unescaped. */
static int
is_attr_char(char c)
{
	return is_token(c) && c != '*' && c != '\'' && c != '%' && (unsigned char)c < 0x80;
}

struct raw_param {
	char *name;             /* lower-case, as sent */
	char *value;
	size_t baselen;         /* length of the name before any "*" */
	long section;           /* -1: none */
	int extended;           /* ends with "*" */
	int used;
};

/* Splits an RFC 2231 attribute: "name", "name*", "name*N", "name*N*". */
static void
raw_param_split(struct raw_param *rp)
{
	const char *star = strchr(rp->name, '*');
	const char *s;
	long n = 0;

	rp->baselen = star ? (size_t)(star - rp->name) : strlen(rp->name);
	rp->section = -1;
	rp->extended = 0;
	if (star == NULL)
		return;
	if (star[1] == '\0') {
		rp->extended = 1;
		return;
	}
	for (s = star + 1; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (*s - '0');
		if (n > MIME_SECTION_MAX)
			break;
	}
	if (s == star + 1 || n > MIME_SECTION_MAX || (*s != '\0' && strcmp(s, "*") != 0) ||
	    (star[1] == '0' && s - star > 2)) {
		/* Not RFC 2231 syntax: keep the name as it is. */
		rp->baselen = strlen(rp->name);
		return;
	}
	rp->section = n;
	rp->extended = *s == '*';
}

/*
 * Joins the RFC 2231 continuations of one parameter (sections 0, 1, ... up
 * to the first missing one). When any section is extended the result is one
 * extended value, "charset'language'%XX...", as RFC 2231 clients read it:
 * plain sections are percent-encoded into it.
 */
static void
join_sections(struct raw_param *rps, size_t n, size_t first, struct mime_params *out)
{
	const struct raw_param *base = &rps[first];
	struct buf name = BUF_INIT, value = BUF_INIT;
	size_t i, j;
	long sec;
	int any_ext = 0, found;
	const char *v;

	for (sec = 0;; sec++) {
		found = 0;
		for (i = first; i < n; i++)
			if (!rps[i].used && rps[i].section == sec &&
			    rps[i].baselen == base->baselen &&
			    strncmp(rps[i].name, base->name, base->baselen) == 0) {
				found = 1;
				any_ext |= rps[i].extended;
				break;
			}
		if (!found)
			break;
	}
	/* sec sections, 0 .. sec-1, are present. */
	for (j = 0; j < (size_t)sec; j++) {
		for (i = first; i < n; i++)
			if (!rps[i].used && rps[i].section == (long)j &&
			    rps[i].baselen == base->baselen &&
			    strncmp(rps[i].name, base->name, base->baselen) == 0)
				break;
		rps[i].used = 1;
		v = rps[i].value;
		if (!any_ext || rps[i].extended) {
			buf_puts(&value, v);
			continue;
		}
		if (j == 0)
			buf_puts(&value, "''");
		for (; *v != '\0'; v++) {
			if (is_attr_char(*v))
				buf_putc(&value, *v);
			else
				buf_printf(&value, "%%%02X", (unsigned char)*v);
		}
	}
	/* Later duplicates of the sections are dropped. */
	for (i = first; i < n; i++)
		if (rps[i].section >= 0 && rps[i].baselen == base->baselen &&
		    strncmp(rps[i].name, base->name, base->baselen) == 0)
			rps[i].used = 1;
	if (sec == 0)
		return;
	buf_append(&name, base->name, base->baselen);
	if (any_ext)
		buf_putc(&name, '*');
	if (mime_params_get(out, name.data) == NULL)
		mime_params_add(out, name.data, value.data ? value.data : "");
	buf_free(&name);
	buf_free(&value);
}

/* Reads ";" attribute "=" value pairs, then applies RFC 2231. Parameters
 * keep the order of their first appearance; a repeated name is dropped. */
static void
params_parse(const char *s, struct mime_params *params)
{
	struct raw_param *rps = NULL;
	size_t n = 0, i;
	char *name, *value;

	for (;;) {
		s = skip_cfws(s);
		if (*s == '\0')
			break;
		if (*s == ';') {
			s = skip_cfws(s + 1);
			continue;
		}
		name = token(&s);
		if (name == NULL) {
			s++;    /* stray character */
			continue;
		}
		s = skip_cfws(s);
		if (*s != '=') {
			free(name);
			continue;
		}
		s = skip_cfws(s + 1);
		value = param_value(&s);
		if (n == MIME_PARAMS_MAX) {
			free(name);
			free(value);
			break;
		}
		downcase(name);
		rps = xreallocarray(rps, n + 1, sizeof(*rps));
		rps[n].name = name;
		rps[n].value = value;
		rps[n].used = 0;
		raw_param_split(&rps[n]);
		n++;
	}
	for (i = 0; i < n; i++) {
		if (rps[i].used)
			continue;
		if (rps[i].section >= 0) {
			join_sections(rps, n, i, params);
			continue;
		}
		rps[i].used = 1;
		if (mime_params_get(params, rps[i].name) == NULL)
			mime_params_add(params, rps[i].name, rps[i].value);
	}
	for (i = 0; i < n; i++) {
		free(rps[i].name);
		free(rps[i].value);
	}
	free(rps);
}

int
mime_content_type_parse(const char *s, char **type_r, char **subtype_r,
    struct mime_params *params)
{
	char *type, *subtype;

	*type_r = *subtype_r = NULL;
	s = skip_cfws(s);
	if ((type = token(&s)) == NULL)
		return -1;
	s = skip_cfws(s);
	if (*s != '/') {
		free(type);
		return -1;
	}
	s = skip_cfws(s + 1);
	if ((subtype = token(&s)) == NULL) {
		free(type);
		return -1;
	}
	upcase(type);
	upcase(subtype);
	*type_r = type;
	*subtype_r = subtype;
	params_parse(s, params);
	return 0;
}

int
mime_disposition_parse(const char *s, char **type_r, struct mime_params *params)
{
	char *type;

	*type_r = NULL;
	s = skip_cfws(s);
	if ((type = token(&s)) == NULL)
		return -1;
	upcase(type);
	*type_r = type;
	params_parse(s, params);
	return 0;
}

char *
mime_token_parse(const char *s)
{
	char *t;

	s = skip_cfws(s);
	if ((t = token(&s)) != NULL)
		upcase(t);
	return t;
}

void
mime_language_parse(const char *s, char ***langs_r, size_t *n_r)
{
	char **langs = NULL, *t;
	size_t n = 0;

	for (;;) {
		s = skip_cfws(s);
		if (*s == '\0')
			break;
		if ((t = token(&s)) == NULL) {
			s++;    /* "," or a stray character */
			continue;
		}
		if (n == MIME_PARAMS_MAX) {
			free(t);
			break;
		}
		langs = xreallocarray(langs, n + 1, sizeof(*langs));
		langs[n++] = t;
	}
	*langs_r = langs;
	*n_r = n;
}

void
mime_meta_free(struct mime_meta *m)
{
	size_t i;

	free(m->type);
	free(m->subtype);
	mime_params_free(&m->params);
	free(m->id);
	free(m->description);
	free(m->md5);
	free(m->location);
	free(m->encoding);
	free(m->disposition);
	mime_params_free(&m->dparams);
	for (i = 0; i < m->nlangs; i++)
		free(m->langs[i]);
	free(m->langs);
	if (m->env != NULL) {
		for (i = 0; i < MIME_ENV_NFIELDS; i++)
			free(m->env[i]);
		free(m->env);
	}
	memset(m, 0, sizeof(*m));
}
