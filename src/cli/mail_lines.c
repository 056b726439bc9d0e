#include "cli/mail_lines.h"

#include <string.h>

void
mail_lines_init(struct mail_lines *ml, mail_lines_fn *fn, void *ctx)
{
	memset(ml, 0, sizeof(*ml));
	ml->fn = fn;
	ml->ctx = ctx;
}

int
mail_lines_feed(struct mail_lines *ml, const void *data, size_t len)
{
	const char *p = data, *end = p + len, *nl;
	size_t take;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl != NULL && ml->part.len == 0) {
			/* A whole line in the input: no copy. */
			if (ml->fn(ml->ctx, p, (size_t)(nl + 1 - p), !ml->continued, 1) < 0)
				return -1;
			ml->continued = 0;
			p = nl + 1;
			continue;
		}
		take = nl != NULL ? (size_t)(nl + 1 - p) : (size_t)(end - p);
		if (take > MAIL_LINES_MAX - ml->part.len)
			take = MAIL_LINES_MAX - ml->part.len;
		buf_append(&ml->part, p, take);
		p += take;
		if (ml->part.data[ml->part.len - 1] == '\n') {
			if (ml->fn(ml->ctx, ml->part.data, ml->part.len, !ml->continued, 1) < 0)
				return -1;
			ml->continued = 0;
			buf_reset(&ml->part);
		} else if (ml->part.len == MAIL_LINES_MAX) {
			if (ml->fn(ml->ctx, ml->part.data, ml->part.len, !ml->continued, 0) < 0)
				return -1;
			ml->continued = 1;
			buf_reset(&ml->part);
		}
	}
	return 0;
}

int
mail_lines_finish(struct mail_lines *ml)
{
	int rc = 0;

	if (ml->part.len > 0)
		rc = ml->fn(ml->ctx, ml->part.data, ml->part.len, !ml->continued, 1);
	ml->continued = 0;
	buf_reset(&ml->part);
	return rc;
}

void
mail_lines_free(struct mail_lines *ml)
{
	buf_free(&ml->part);
}

int
mail_lines_is_from(const char *data, size_t len, size_t *n)
{
	size_t i = 0;

	while (i < len && data[i] == '>')
		i++;
	*n = i;
	return len - i >= 5 && memcmp(data + i, "From ", 5) == 0;
}

int
mail_lines_is_blank(const char *data, size_t len, int first, int last)
{
	if (!first || !last)
		return 0;
	return (len == 1 && data[0] == '\n') || (len == 2 && data[0] == '\r' &&
	    data[1] == '\n');
}
