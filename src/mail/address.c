#include "mail/address.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/xmalloc.h"

enum token {
	TOK_END,
	TOK_WORD,       /* atom, dot-atom text, quoted string, domain literal */
	TOK_COMMENT,
	TOK_SPECIAL,    /* one of < > @ , ; : */
};

struct lexer {
	const char *s;
	size_t len, pos;
	struct buf text;        /* the token's text */
	char special;
};

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_structural(char c)
{
	return c == '(' || c == '"' || c == '[' || c == '<' || c == '>' || c == '@' ||
	    c == ',' || c == ';' || c == ':';
}

/* Reads a quoted string, comment or domain literal whose opening character
 * is at lx->pos, up to its closing one (or the end); nested comments are
 * counted, not recursed into. */
static void
lex_delimited(struct lexer *lx, char open, char close, int keep_delims)
{
	int depth = 1;

	if (keep_delims)
		buf_putc(&lx->text, open);
	lx->pos++;
	while (lx->pos < lx->len) {
		char c = lx->s[lx->pos++];

		if (c == '\\' && lx->pos < lx->len) {
			c = lx->s[lx->pos++];
			if (keep_delims)
				buf_putc(&lx->text, '\\');
		} else if (c == close) {
			if (--depth == 0) {
				if (keep_delims)
					buf_putc(&lx->text, close);
				return;
			}
		} else if (c == open && open == '(') {
			depth++;
		} else if (c == '\r' || c == '\n') {
			continue;       /* folding left in the value */
		}
		buf_putc(&lx->text, c);
	}
	if (keep_delims)
		buf_putc(&lx->text, close);
}

static enum token
lex(struct lexer *lx)
{
	char c;

	buf_reset(&lx->text);
	while (lx->pos < lx->len && is_space(lx->s[lx->pos]))
		lx->pos++;
	if (lx->pos >= lx->len)
		return TOK_END;
	c = lx->s[lx->pos];
	switch (c) {
	case '(':
		lex_delimited(lx, '(', ')', 0);
		return TOK_COMMENT;
	case '"':
		lex_delimited(lx, '"', '"', 0);
		return TOK_WORD;
	case '[':
		lex_delimited(lx, '[', ']', 1);
		return TOK_WORD;
	case '<': case '>': case '@': case ',': case ';': case ':':
		lx->special = c;
		lx->pos++;
		return TOK_SPECIAL;
	}
	while (lx->pos < lx->len && !is_space(lx->s[lx->pos]) &&
	    !is_structural(lx->s[lx->pos]))
		buf_putc(&lx->text, lx->s[lx->pos++]);
	return TOK_WORD;
}

enum state {
	ST_WORDS,       /* words not yet known to be a name or a local part */
	ST_DOMAIN,      /* after the "@" of a bare addr-spec */
	ST_ANGLE,       /* just after "<" */
	ST_ROUTE,
	ST_ALOCAL,
	ST_ADOMAIN,
	ST_AFTER,       /* after ">" */
};

struct parser {
	struct mail_address *list;
	size_t n, cap;
	int truncated;
	enum state st;
	struct buf spaced, tight;       /* the words, joined with and without spaces */
	size_t nwords;
	/* Where the last run of words joined by dots starts ("a b.c" before an
	 * "@": "a" is a display name, "b.c" the local part). */
	size_t run_spaced, run_tight;
	int dot_end;
	struct buf name, route, local, domain, comment;
	int angle;
};

static char *
dup_or_null(const struct buf *b)
{
	return b->len > 0 ? xstrdup(b->data) : NULL;
}

static void
emit(struct parser *ps, char *name, char *route, char *mailbox, char *host)
{
	struct mail_address *a;

	if (ps->n >= MAIL_ADDRESS_MAX) {
		ps->truncated = 1;
		free(name);
		free(route);
		free(mailbox);
		free(host);
		return;
	}
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 4;
		ps->list = xreallocarray(ps->list, ps->cap, sizeof(*ps->list));
	}
	a = &ps->list[ps->n++];
	a->name = name;
	a->route = route;
	a->mailbox = mailbox;
	a->host = host;
}

static char *
or_missing(const struct buf *b, const char *missing)
{
	return xstrdup(b->len > 0 ? b->data : missing);
}

static void
element_reset(struct parser *ps)
{
	ps->st = ST_WORDS;
	buf_reset(&ps->spaced);
	buf_reset(&ps->tight);
	ps->nwords = 0;
	ps->run_spaced = ps->run_tight = 0;
	ps->dot_end = 0;
	buf_reset(&ps->name);
	buf_reset(&ps->route);
	buf_reset(&ps->local);
	buf_reset(&ps->domain);
	buf_reset(&ps->comment);
	ps->angle = 0;
}

/* Ends one address: what it was depends on how far it got. */
static void
element_end(struct parser *ps)
{
	const struct buf *name;

	if (ps->angle) {
		name = ps->name.len > 0 ? &ps->name : &ps->comment;
		emit(ps, dup_or_null(name), dup_or_null(&ps->route),
		    or_missing(&ps->local, MAIL_ADDRESS_NO_MAILBOX),
		    or_missing(&ps->domain, MAIL_ADDRESS_NO_HOST));
	} else if (ps->st == ST_DOMAIN) {
		name = ps->name.len > 0 ? &ps->name : &ps->comment;
		emit(ps, dup_or_null(name), NULL,
		    or_missing(&ps->local, MAIL_ADDRESS_NO_MAILBOX),
		    or_missing(&ps->domain, MAIL_ADDRESS_NO_HOST));
	} else if (ps->nwords == 1) {
		emit(ps, dup_or_null(&ps->comment), NULL, xstrdup(ps->tight.data),
		    xstrdup(MAIL_ADDRESS_NO_HOST));
	} else if (ps->nwords > 1) {
		emit(ps, xstrdup(ps->spaced.data), NULL, xstrdup(MAIL_ADDRESS_NO_MAILBOX),
		    xstrdup(MAIL_ADDRESS_NO_HOST));
	}
	element_reset(ps);
}

static void
add_word(struct parser *ps, const struct buf *w)
{
	int dot_start = w->len > 0 && w->data[0] == '.';

	if (ps->spaced.len > 0)
		buf_putc(&ps->spaced, ' ');
	if (ps->nwords > 0 && !ps->dot_end && !dot_start) {
		ps->run_spaced = ps->spaced.len;
		ps->run_tight = ps->tight.len;
	}
	ps->dot_end = w->len > 0 && w->data[w->len - 1] == '.';
	buf_append(&ps->spaced, w->data ? w->data : "", w->len);
	buf_append(&ps->tight, w->data ? w->data : "", w->len);
	ps->nwords++;
}

static void
start_angle(struct parser *ps)
{
	buf_reset(&ps->name);
	buf_append(&ps->name, ps->spaced.data ? ps->spaced.data : "", ps->spaced.len);
	buf_reset(&ps->local);
	buf_reset(&ps->domain);
	ps->angle = 1;
	ps->st = ST_ANGLE;
}

size_t
mail_address_parse(const char *s, size_t len, struct mail_address **list_r,
    int *truncated_r)
{
	struct lexer lx = { .s = s, .len = len };
	struct parser ps = { 0 };
	enum token t;
	int in_group = 0;

	element_reset(&ps);
	for (;;) {
		t = lex(&lx);
		if (t == TOK_END)
			break;
		if (t == TOK_COMMENT) {
			if (ps.st != ST_ALOCAL && ps.st != ST_ADOMAIN && ps.st != ST_ROUTE) {
				buf_reset(&ps.comment);
				buf_append(&ps.comment, lx.text.data ? lx.text.data : "",
				    lx.text.len);
			}
			continue;
		}
		if (t == TOK_SPECIAL && (lx.special == ',' || lx.special == ';') &&
		    !(lx.special == ',' && ps.st == ST_ROUTE)) {
			element_end(&ps);
			if (lx.special == ';' && in_group) {
				emit(&ps, NULL, NULL, NULL, NULL);
				in_group = 0;
			}
			continue;
		}
		switch (ps.st) {
		case ST_WORDS:
			if (t == TOK_WORD) {
				add_word(&ps, &lx.text);
			} else if (lx.special == '@') {
				/* Words before the local part are a display
				 * name without its angle brackets. */
				if (ps.run_spaced > 0)
					buf_append(&ps.name, ps.spaced.data, ps.run_spaced - 1);
				buf_append(&ps.local, ps.tight.data + ps.run_tight,
				    ps.tight.len - ps.run_tight);
				ps.st = ST_DOMAIN;
			} else if (lx.special == '<') {
				start_angle(&ps);
			} else if (lx.special == ':') {
				if (in_group)
					emit(&ps, NULL, NULL, NULL, NULL);
				emit(&ps, NULL, NULL, xstrdup(ps.spaced.data ? ps.spaced.data :
				    ""), NULL);
				in_group = 1;
				element_reset(&ps);
			}
			break;
		case ST_DOMAIN:
			if (t == TOK_WORD)
				buf_append(&ps.domain, lx.text.data ? lx.text.data : "",
				    lx.text.len);
			else if (lx.special == '<')
				start_angle(&ps);
			break;
		case ST_ANGLE:
			if (t == TOK_SPECIAL && lx.special == '@') {
				buf_putc(&ps.route, '@');
				ps.st = ST_ROUTE;
				break;
			}
			ps.st = ST_ALOCAL;
			/* FALLTHROUGH */
		case ST_ALOCAL:
			if (t == TOK_WORD)
				buf_append(&ps.local, lx.text.data ? lx.text.data : "",
				    lx.text.len);
			else if (lx.special == '@')
				ps.st = ST_ADOMAIN;
			else if (lx.special == '>')
				ps.st = ST_AFTER;
			break;
		case ST_ROUTE:
			if (t == TOK_WORD)
				buf_append(&ps.route, lx.text.data ? lx.text.data : "",
				    lx.text.len);
			else if (lx.special == '@' || lx.special == ',')
				buf_putc(&ps.route, lx.special);
			else if (lx.special == ':')
				ps.st = ST_ALOCAL;
			else if (lx.special == '>')
				ps.st = ST_AFTER;
			break;
		case ST_ADOMAIN:
			if (t == TOK_WORD)
				buf_append(&ps.domain, lx.text.data ? lx.text.data : "",
				    lx.text.len);
			else if (lx.special == '>')
				ps.st = ST_AFTER;
			break;
		case ST_AFTER:
			break;
		}
	}
	element_end(&ps);
	if (in_group)
		emit(&ps, NULL, NULL, NULL, NULL);

	buf_free(&lx.text);
	buf_free(&ps.spaced);
	buf_free(&ps.tight);
	buf_free(&ps.name);
	buf_free(&ps.route);
	buf_free(&ps.local);
	buf_free(&ps.domain);
	buf_free(&ps.comment);
	if (truncated_r != NULL)
		*truncated_r = ps.truncated;
	*list_r = ps.list;
	return ps.n;
}

void
mail_address_free(struct mail_address **list, size_t n)
{
	size_t i;

	if (*list == NULL)
		return;
	for (i = 0; i < n; i++) {
		free((*list)[i].name);
		free((*list)[i].route);
		free((*list)[i].mailbox);
		free((*list)[i].host);
	}
	xfree(list);
}
