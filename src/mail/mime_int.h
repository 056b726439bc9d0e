/*
 * Shared by the files of the MIME parser (mime.c, mime_header.c,
 * mime_text.c, bodystructure.c); not part of its contract.
 */
#ifndef PETREL_MAIL_MIME_INT_H
#define PETREL_MAIL_MIME_INT_H

#include <stddef.h>

#include "core/buf.h"
#include "mail/envelope.h"
#include "mail/mime.h"

/* The longest boundary recognised (RFC 2046 allows 70; a line has 998). */
#define MIME_BOUNDARY_MAX 998
/* RFC 2231 continuations past this section number are ignored. */
#define MIME_SECTION_MAX 1000
/* Parameters (or language tags) read from one field; the rest is ignored. */
#define MIME_PARAMS_MAX 100

struct mime_param {
	char *name;     /* lower-case */
	char *value;
};

struct mime_params {
	struct mime_param *v;
	size_t n;
};

/* The header fields the parser keeps, by index. */
enum mime_field {
	MIME_F_CONTENT_TYPE,
	MIME_F_CTE,
	MIME_F_CONTENT_ID,
	MIME_F_CONTENT_DESCRIPTION,
	MIME_F_CONTENT_DISPOSITION,
	MIME_F_CONTENT_LANGUAGE,
	MIME_F_CONTENT_LOCATION,
	MIME_F_CONTENT_MD5,
	MIME_F_ENV,     /* MIME_F_ENV + enum mime_env_field */
	MIME_F_REFERENCES = MIME_F_ENV + MIME_ENV_NFIELDS,
	MIME_F_COUNT
};

/* What BODYSTRUCTURE needs of one part's header. */
struct mime_meta {
	char *type, *subtype;           /* upper-case, never NULL once parsed */
	struct mime_params params;
	char *id, *description, *md5, *location;
	char *encoding;                 /* upper-case; NULL means 7BIT */
	char *disposition;              /* upper-case, NULL when absent */
	struct mime_params dparams;
	char **langs;
	size_t nlangs;
	char **env;     /* MIME_ENV_NFIELDS raw fields of a message's header */
};

/* Returns the enum mime_field of a header field name, or -1. */
int mime_field_lookup(const char *name, size_t len);
/* Returns s without leading and trailing white space, as a new string. */
char *mime_trim_dup(const char *s, size_t len);

/* Content-Type (RFC 2045 section 5.1): returns 0, or -1 when there is no
 * valid type "/" subtype (params are then empty). Type and subtype come back
 * upper-case; parameters per RFC 2231 (see mime_params_parse). */
int mime_content_type_parse(const char *s, char **type_r, char **subtype_r,
    struct mime_params *params);
/* Content-Disposition (RFC 2183): returns 0, or -1 without a type. */
int mime_disposition_parse(const char *s, char **type_r, struct mime_params *params);
/* A single token, upper-case (Content-Transfer-Encoding); NULL if none. */
char *mime_token_parse(const char *s);
/* Content-Language (RFC 3282): the language tags. */
void mime_language_parse(const char *s, char ***langs_r, size_t *n_r);
const char *mime_params_get(const struct mime_params *params, const char *name);
void mime_params_add(struct mime_params *params, const char *name, const char *value);
void mime_params_free(struct mime_params *params);
void mime_meta_free(struct mime_meta *m);

/* Writes BODYSTRUCTURE (ext = 1) or BODY (ext = 0) of the part tree. */
void mime_body_write(const struct mime_part *parts, const struct mime_meta *meta,
    const uint32_t *subtree_end, uint32_t nparts, int ext, struct buf *out);

/* Crude HTML to text for search and preview (mime_text.c). */
struct mime_html {
	int state;
	int skip;               /* inside <style> or <script> */
	char tag[16];
	size_t ntag;
	char ent[12];
	size_t nent;
	int dashes;             /* "-" run, to find the end of a comment */
};

/* Appends the text of html[0..len) (UTF-8) to out. */
void mime_html_feed(struct mime_html *h, const char *html, size_t len, struct buf *out);
/* Ends a document: a dangling entity is kept as text. */
void mime_html_finish(struct mime_html *h, struct buf *out);

/* The preview being built: collapsed white space, whole characters. */
struct mime_preview {
	struct buf text;
	size_t nchars;
	int space;              /* a space is owed before the next character */
	int done;
};

/* Adds UTF-8 text; returns 1 once MIME_PREVIEW_MAX characters are in. */
int mime_preview_add(struct mime_preview *pv, const char *s, size_t len);

#endif
