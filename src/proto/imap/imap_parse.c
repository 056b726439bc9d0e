/*
 * A byte-at-a-time state machine. Arguments are kept in one growing array
 * and linked by index while the command is read (the array and the value
 * buffer may move); the pointers of struct imap_arg are filled in once the
 * command is complete.
 */
#include "proto/imap/imap_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/xmalloc.h"

enum imap_parse_state {
	PS_TAG,
	PS_NAME,
	PS_ARG_START,           /* after a space or '(': an argument, or ')' */
	PS_ARG_END,             /* after an argument: space, ')' or line end */
	PS_ATOM,
	PS_QUOTED,
	PS_QUOTED_ESCAPE,
	PS_LIT8,                /* "~": "{" must follow (literal8, RFC 3516) */
	PS_LIT_LEN,             /* "{" and digits */
	PS_LIT_PLUS,            /* "{n+": '}' must follow */
	PS_LIT_CLOSE,           /* "{n}": the line must end */
	PS_LIT_DATA,
	PS_SKIP,                /* a bad command: discard up to the line end */
	PS_SKIP_LITERAL,        /* discard a non-synchronizing literal's bytes */
	PS_STREAM,              /* STREAM was returned: the caller reads */
	PS_FINISHED,            /* DONE or ERROR was returned */
	PS_FATAL,
};

/*
 * While skipping a bad line, watches for a literal announced at its end: a
 * client that sent "{n+}" sends n bytes that are not a command, so they are
 * skipped too. After "{n}" the client waits for us, so nothing follows.
 */
enum imap_skip_literal {
	SKIP_LIT_NONE,
	SKIP_LIT_DIGITS,
	SKIP_LIT_PLUS,
	SKIP_LIT_CLOSED,
};

struct imap_parser {
	struct imap_parse_limits limits;
	enum imap_parse_state state;
	size_t size;                    /* bytes of this command so far */
	const char *error;
	unsigned cr : 1;                /* a CR was read: LF must follow */
	unsigned in_section : 1;        /* inside an atom's [...] */
	unsigned literal_sync : 1;
	unsigned have_tag : 1;
	unsigned have_name : 1;
	unsigned streaming : 1;         /* the literal being read is streamed */
	unsigned literal8 : 1;          /* "~{n}": NUL allowed */

	char tag[IMAP_TAG_MAX + 1];
	size_t tag_len;
	char name[IMAP_NAME_MAX + 1];
	size_t name_len;

	struct imap_arg *args;
	unsigned nargs, args_cap;
	int *open;                      /* the open lists, innermost last */
	unsigned depth;
	int top_first, top_last;
	unsigned top_count;
	struct buf values;              /* argument values, each NUL-terminated */

	uint64_t literal_len;
	unsigned literal_digits;
	size_t literal_left;

	enum imap_skip_literal skip_lit;
	uint64_t skip_len;
	unsigned skip_digits;

	struct imap_command cmd;
};

/* ATOM-CHAR of RFC 3501: any CHAR except atom-specials. */
static int
imap_is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* What this parser reads as an atom argument: see imap_parse.h. */
static int
imap_is_lenient_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){\"", c) == NULL;
}

/* ASTRING-CHAR except '+' (RFC 3501 tag). */
static int
imap_is_tag_char(unsigned char c)
{
	return c != '+' && (imap_is_atom_char(c) || c == ']');
}

static void
imap_parser_clear(struct imap_parser *p)
{
	if (p->values.len > 0)
		explicit_bzero(p->values.data, p->values.len);
	buf_reset(&p->values);
	p->state = PS_TAG;
	p->size = 0;
	p->error = NULL;
	p->cr = 0;
	p->in_section = 0;
	p->literal_sync = 0;
	p->have_tag = 0;
	p->have_name = 0;
	p->streaming = 0;
	p->literal8 = 0;
	p->tag_len = 0;
	p->tag[0] = '\0';
	p->name_len = 0;
	p->name[0] = '\0';
	p->nargs = 0;
	p->depth = 0;
	p->top_first = p->top_last = -1;
	p->top_count = 0;
	p->literal_len = 0;
	p->literal_digits = 0;
	p->literal_left = 0;
	p->skip_lit = SKIP_LIT_NONE;
	memset(&p->cmd, 0, sizeof(p->cmd));
}

struct imap_parser *
imap_parser_new(const struct imap_parse_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	imap_parser_reset(p, limits);
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	buf_wipe(&p->values);
	free(p->args);
	free(p->open);
	free(p);
}

void
imap_parser_reset(struct imap_parser *p, const struct imap_parse_limits *limits)
{
	if (limits != NULL) {
		p->limits = *limits;
		free(p->open);
		p->open = xreallocarray(NULL, limits->depth_max + 1, sizeof(*p->open));
	}
	imap_parser_clear(p);
}

/* Records the first error; the rest of the line is skipped. */
static void
imap_parse_error(struct imap_parser *p, const char *msg)
{
	if (p->error == NULL)
		p->error = msg;
	p->state = PS_SKIP;
	p->skip_lit = SKIP_LIT_NONE;
}

static void
imap_parse_fatal(struct imap_parser *p, const char *msg, enum imap_parse_result *r)
{
	p->error = msg;
	p->state = PS_FATAL;
	*r = IMAP_PARSE_ERROR;
}

static int
imap_arg_new(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg *a;
	int i;

	if (p->nargs >= p->limits.args_max) {
		imap_parse_error(p, "Too many arguments");
		return -1;
	}
	if (p->nargs == p->args_cap) {
		p->args_cap = p->args_cap == 0 ? 8 : p->args_cap * 2;
		p->args = xreallocarray(p->args, p->args_cap, sizeof(*p->args));
	}
	i = (int)p->nargs++;
	a = &p->args[i];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->value_off = p->values.len;
	a->first_i = a->last_i = a->next_i = -1;
	if (p->depth == 0) {
		if (p->top_last < 0)
			p->top_first = i;
		else
			p->args[p->top_last].next_i = i;
		p->top_last = i;
		p->top_count++;
	} else {
		struct imap_arg *list = &p->args[p->open[p->depth - 1]];

		if (list->last_i < 0)
			list->first_i = i;
		else
			p->args[list->last_i].next_i = i;
		list->last_i = i;
		list->count++;
	}
	return i;
}

/* Ends the value of the argument being read (the last one made). */
static void
imap_arg_end_value(struct imap_parser *p)
{
	struct imap_arg *a = &p->args[p->nargs - 1];

	buf_putc(&p->values, '\0');
	a->len = p->values.len - 1 - a->value_off;
	p->state = PS_ARG_END;
}

/* Fills in the pointers of the arguments read so far. */
static void
imap_parse_link(struct imap_parser *p)
{
	unsigned i;

	for (i = 0; i < p->nargs; i++) {
		struct imap_arg *a = &p->args[i];

		a->str = a->type == IMAP_ARG_LIST ? "" : p->values.data + a->value_off;
		a->list = a->first_i >= 0 ? &p->args[a->first_i] : NULL;
		a->next = a->next_i >= 0 ? &p->args[a->next_i] : NULL;
	}
	p->cmd.tag = p->tag;
	p->cmd.name = p->name;
	p->cmd.args = p->top_first >= 0 ? &p->args[p->top_first] : NULL;
	p->cmd.nargs = p->top_count;
}

static void
imap_parse_finish(struct imap_parser *p, enum imap_parse_result *r)
{
	imap_parse_link(p);
	p->state = PS_FINISHED;
	*r = IMAP_PARSE_DONE;
}

/* Returns 1 when c was consumed, 0 when it must be seen again (by PS_SKIP). */
static int
imap_parse_skip(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	if (c == '\n') {
		if (p->skip_lit == SKIP_LIT_CLOSED) {
			p->skip_lit = SKIP_LIT_NONE;
			if (p->skip_len > (p->limits.literal_plus ? UINT32_MAX :
			    IMAP_LITERAL_MINUS_MAX)) {
				imap_parse_fatal(p, "[TOOBIG] Literal too big", r);
				return 1;
			}
			if (p->skip_len > 0) {
				p->literal_left = (size_t)p->skip_len;
				p->state = PS_SKIP_LITERAL;
			}
			return 1;
		}
		p->state = PS_FINISHED;
		*r = IMAP_PARSE_ERROR;
		return 1;
	}
	if (c == '{') {
		p->skip_lit = SKIP_LIT_DIGITS;
		p->skip_len = 0;
		p->skip_digits = 0;
		return 1;
	}
	switch (p->skip_lit) {
	case SKIP_LIT_NONE:
		break;
	case SKIP_LIT_DIGITS:
		if (c >= '0' && c <= '9' && p->skip_digits < IMAP_LITERAL_DIGITS_MAX) {
			p->skip_len = p->skip_len * 10 + (uint64_t)(c - '0');
			p->skip_digits++;
		} else if (c == '+' && p->skip_digits > 0) {
			p->skip_lit = SKIP_LIT_PLUS;
		} else {
			p->skip_lit = SKIP_LIT_NONE;
		}
		break;
	case SKIP_LIT_PLUS:
		p->skip_lit = c == '}' ? SKIP_LIT_CLOSED : SKIP_LIT_NONE;
		break;
	case SKIP_LIT_CLOSED:
		if (c != '\r')
			p->skip_lit = SKIP_LIT_NONE;
		break;
	}
	return 1;
}

static int
imap_parse_tag(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	if (c == '\n') {
		if (p->tag_len == 0) {
			imap_parse_error(p, "Empty command line");
		} else {
			p->have_tag = 1;
			imap_parse_error(p, "Missing command");
		}
		return 0;
	}
	if (c == ' ') {
		if (p->tag_len == 0) {
			imap_parse_error(p, "Invalid tag");
			return 0;
		}
		p->have_tag = 1;
		p->state = PS_NAME;
		return 1;
	}
	if (!imap_is_tag_char(c) || p->tag_len == IMAP_TAG_MAX) {
		imap_parse_error(p, "Invalid tag");
		return 0;
	}
	p->tag[p->tag_len++] = (char)c;
	p->tag[p->tag_len] = '\0';
	return 1;
}

static int
imap_parse_name(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	if (c == '\n' || c == ' ') {
		if (p->name_len == 0) {
			imap_parse_error(p, "Missing command");
			return 0;
		}
		p->have_name = 1;
		if (c == '\n')
			imap_parse_finish(p, r);
		else
			p->state = PS_ARG_START;
		return 1;
	}
	if (!imap_is_atom_char(c) || p->name_len == IMAP_NAME_MAX) {
		imap_parse_error(p, "Invalid command name");
		return 0;
	}
	p->name[p->name_len++] = (char)c;
	p->name[p->name_len] = '\0';
	return 1;
}

static int
imap_parse_close_list(struct imap_parser *p)
{
	if (p->depth == 0) {
		imap_parse_error(p, "Unexpected )");
		return 0;
	}
	p->depth--;
	p->state = PS_ARG_END;
	return 1;
}

static int
imap_parse_arg_end(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	switch (c) {
	case ' ':
		p->state = PS_ARG_START;
		return 1;
	case ')':
		return imap_parse_close_list(p);
	case '\n':
		if (p->depth > 0) {
			imap_parse_error(p, "Missing )");
			return 0;
		}
		imap_parse_finish(p, r);
		return 1;
	default:
		imap_parse_error(p, "Missing space between arguments");
		return 0;
	}
}

static int
imap_parse_atom(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	if (p->in_section) {
		if (c == '\n') {
			imap_parse_error(p, "Missing ]");
			return 0;
		}
		if (c < 0x20 || c >= 0x7f) {
			imap_parse_error(p, "Invalid characters in atom");
			return 0;
		}
		if (c == ']')
			p->in_section = 0;
		buf_putc(&p->values, (char)c);
		return 1;
	}
	if (c == ' ' || c == ')' || c == '\n') {
		imap_arg_end_value(p);
		return imap_parse_arg_end(p, c, r);
	}
	if (!imap_is_lenient_atom_char(c)) {
		imap_parse_error(p, "Invalid characters in atom");
		return 0;
	}
	if (c == '[')
		p->in_section = 1;
	buf_putc(&p->values, (char)c);
	return 1;
}

static int
imap_parse_arg_start(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	switch (c) {
	case '\n':
		/* A space before the line end is tolerated. */
		if (p->depth > 0) {
			imap_parse_error(p, "Missing )");
			return 0;
		}
		imap_parse_finish(p, r);
		return 1;
	case ')':
		return imap_parse_close_list(p);
	case ' ':
		imap_parse_error(p, "Unexpected space");
		return 0;
	case '"':
		if (imap_arg_new(p, IMAP_ARG_QUOTED) < 0)
			return 0;
		p->state = PS_QUOTED;
		return 1;
	case '~':
		p->state = PS_LIT8;
		return 1;
	case '{':
		/* APPEND mailbox [flags] [date] literal: any literal after the
		 * mailbox at the top level is a message. */
		if (p->state != PS_LIT8)
			p->literal8 = 0;
		p->streaming = p->limits.stream_append && p->depth == 0 &&
		    p->top_count >= 1 && strcasecmp(p->name, "APPEND") == 0;
		if (imap_arg_new(p, IMAP_ARG_LITERAL) < 0)
			return 0;
		p->literal_len = 0;
		p->literal_digits = 0;
		p->state = PS_LIT_LEN;
		return 1;
	case '(': {
		int i;

		if (p->depth >= p->limits.depth_max) {
			imap_parse_error(p, "Lists nested too deeply");
			return 0;
		}
		if ((i = imap_arg_new(p, IMAP_ARG_LIST)) < 0)
			return 0;
		p->open[p->depth++] = i;
		p->state = PS_ARG_START;
		return 1;
	}
	default:
		if (!imap_is_lenient_atom_char(c)) {
			imap_parse_error(p, "Invalid characters in atom");
			return 0;
		}
		if (imap_arg_new(p, IMAP_ARG_ATOM) < 0)
			return 0;
		p->in_section = 0;
		p->state = PS_ATOM;
		return imap_parse_atom(p, c, r);
	}
}

static int
imap_parse_quoted(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	if (p->state == PS_QUOTED_ESCAPE) {
		if (c == '\n') {
			imap_parse_error(p, "Unterminated quoted string");
			return 0;
		}
		if (c != '"' && c != '\\') {
			imap_parse_error(p, "Invalid escape in quoted string");
			return 0;
		}
		buf_putc(&p->values, (char)c);
		p->state = PS_QUOTED;
		return 1;
	}
	switch (c) {
	case '"':
		imap_arg_end_value(p);
		return 1;
	case '\\':
		p->state = PS_QUOTED_ESCAPE;
		return 1;
	case '\n':
		imap_parse_error(p, "Unterminated quoted string");
		return 0;
	case '\0':
		imap_parse_error(p, "NUL in quoted string");
		return 0;
	default:
		buf_putc(&p->values, (char)c);
		return 1;
	}
}

/* "{n}" or "{n+}" has been read: the CRLF after it, then n bytes follow. */
static int
imap_parse_literal_announced(struct imap_parser *p, enum imap_parse_result *r)
{
	size_t room = p->limits.command_max - p->size;

	if (!p->literal_sync && !p->limits.literal_plus &&
	    p->literal_len > IMAP_LITERAL_MINUS_MAX) {
		imap_parse_fatal(p, "[TOOBIG] Non-synchronizing literal too big", r);
		return 1;
	}
	if (p->literal_len > UINT32_MAX) {
		if (!p->literal_sync)
			imap_parse_fatal(p, "Invalid literal size", r);
		else
			imap_parse_error(p, "Invalid literal size");
		return 1;
	}
	if (p->streaming) {
		p->state = PS_LIT_CLOSE;
		return 1;
	}
	/* The CRLF that ends the announcement must fit as well. */
	if (room < 2 || p->literal_len > room - 2) {
		if (!p->literal_sync) {
			imap_parse_fatal(p, "[TOOBIG] Literal too big", r);
			return 1;
		}
		/* The client waits for our go-ahead: refusing keeps us in sync. */
		imap_parse_error(p, "[TOOBIG] Literal too big");
		return 1;
	}
	p->state = PS_LIT_CLOSE;
	return 1;
}

static int
imap_parse_literal_header(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	switch (p->state) {
	case PS_LIT_LEN:
		if (c >= '0' && c <= '9' && p->literal_digits < IMAP_LITERAL_DIGITS_MAX) {
			p->literal_len = p->literal_len * 10 + (uint64_t)(c - '0');
			p->literal_digits++;
			return 1;
		}
		if ((c == '+' || c == '}') && p->literal_digits > 0) {
			p->literal_sync = c == '}';
			if (c == '+') {
				p->state = PS_LIT_PLUS;
				return 1;
			}
			return imap_parse_literal_announced(p, r);
		}
		break;
	case PS_LIT_PLUS:
		if (c == '}')
			return imap_parse_literal_announced(p, r);
		break;
	case PS_LIT_CLOSE:
		if (c == '\n') {
			if (p->streaming) {
				/* The literal's (empty) value must be a string. */
				buf_reserve(&p->values, 1);
				imap_parse_link(p);
				p->state = PS_STREAM;
				*r = IMAP_PARSE_STREAM;
				return 1;
			}
			p->literal_left = (size_t)p->literal_len;
			if (p->literal_left == 0)
				imap_arg_end_value(p);
			else
				p->state = PS_LIT_DATA;
			if (p->literal_sync)
				*r = IMAP_PARSE_LITERAL;
			return 1;
		}
		break;
	default:
		break;
	}
	imap_parse_error(p, "Invalid literal");
	return 0;
}

static int
imap_parse_byte(struct imap_parser *p, unsigned char c, enum imap_parse_result *r)
{
	if (p->state == PS_SKIP)
		return imap_parse_skip(p, c, r);
	if (++p->size > p->limits.command_max) {
		imap_parse_error(p, "Command too long");
		return 0;
	}
	if (p->cr) {
		p->cr = 0;
		if (c != '\n') {
			imap_parse_error(p, "CR not followed by LF");
			return 0;
		}
	} else if (c == '\r') {
		p->cr = 1;
		return 1;
	}

	switch (p->state) {
	case PS_TAG:
		return imap_parse_tag(p, c, r);
	case PS_NAME:
		return imap_parse_name(p, c, r);
	case PS_ARG_START:
		return imap_parse_arg_start(p, c, r);
	case PS_LIT8:
		if (c != '{') {
			/* Not a literal8 after all: an atom starting with '~'. */
			if (imap_arg_new(p, IMAP_ARG_ATOM) < 0)
				return 0;
			buf_putc(&p->values, '~');
			p->in_section = 0;
			p->state = PS_ATOM;
			return imap_parse_atom(p, c, r);
		}
		p->literal8 = 1;
		return imap_parse_arg_start(p, c, r);
	case PS_ARG_END:
		return imap_parse_arg_end(p, c, r);
	case PS_ATOM:
		return imap_parse_atom(p, c, r);
	case PS_QUOTED:
	case PS_QUOTED_ESCAPE:
		return imap_parse_quoted(p, c, r);
	case PS_LIT_LEN:
	case PS_LIT_PLUS:
	case PS_LIT_CLOSE:
		return imap_parse_literal_header(p, c, r);
	case PS_LIT_DATA:
	case PS_SKIP:
	case PS_SKIP_LITERAL:
	case PS_STREAM:
	case PS_FINISHED:
	case PS_FATAL:
		break;
	}
	/* Not reached: those states never get here. */
	imap_parse_fatal(p, "Internal parser error", r);
	return 1;
}

/* Literal bytes, read or skipped in bulk. Returns how many were consumed. */
static size_t
imap_parse_literal_data(struct imap_parser *p, const unsigned char *d, size_t n)
{
	size_t take = n < p->literal_left ? n : p->literal_left;
	const unsigned char *nul;

	if (p->state == PS_SKIP_LITERAL) {
		p->literal_left -= take;
		if (p->literal_left == 0) {
			p->state = PS_SKIP;
			p->skip_lit = SKIP_LIT_NONE;
		}
		return take;
	}
	if (!p->literal8 && (nul = memchr(d, '\0', take)) != NULL) {
		/* CHAR8 excludes NUL. Skip the rest of the literal, then the line. */
		take = (size_t)(nul - d) + 1;
		p->literal_left -= take;
		imap_parse_error(p, "NUL in literal");
		if (p->literal_left > 0)
			p->state = PS_SKIP_LITERAL;
		return take;
	}
	buf_append(&p->values, d, take);
	p->size += take;
	p->literal_left -= take;
	if (p->literal_left == 0)
		imap_arg_end_value(p);
	return take;
}

enum imap_parse_result
imap_parse(struct imap_parser *p, const void *data, size_t len, size_t *consumed_r)
{
	const unsigned char *d = data;
	enum imap_parse_result r = IMAP_PARSE_MORE;
	size_t i = 0;

	if (p->state == PS_FATAL || p->state == PS_STREAM) {
		*consumed_r = 0;
		return p->state == PS_FATAL ? IMAP_PARSE_ERROR : IMAP_PARSE_STREAM;
	}
	if (p->state == PS_FINISHED)
		imap_parser_clear(p);
	while (i < len && r == IMAP_PARSE_MORE) {
		if (p->state == PS_LIT_DATA || p->state == PS_SKIP_LITERAL)
			i += imap_parse_literal_data(p, d + i, len - i);
		else
			i += (size_t)imap_parse_byte(p, d[i], &r);
	}
	*consumed_r = i;
	return r;
}

const struct imap_command *
imap_parser_command(const struct imap_parser *p)
{
	return &p->cmd;
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	return p->have_tag ? p->tag : NULL;
}

const char *
imap_parser_name(const struct imap_parser *p)
{
	return p->have_name ? p->name : NULL;
}

const char *
imap_parser_error(const struct imap_parser *p, int *fatal_r)
{
	if (fatal_r != NULL)
		*fatal_r = p->state == PS_FATAL;
	return p->error;
}

size_t
imap_parser_stream_size(const struct imap_parser *p)
{
	return p->state == PS_STREAM ? (size_t)p->literal_len : 0;
}

int
imap_parser_stream_sync(const struct imap_parser *p)
{
	return p->literal_sync;
}

void
imap_parser_stream_done(struct imap_parser *p)
{
	if (p->state != PS_STREAM)
		return;
	p->streaming = 0;
	imap_arg_end_value(p);
}

size_t
imap_parser_literal_left(const struct imap_parser *p)
{
	if (p->state == PS_LIT_DATA || p->state == PS_SKIP_LITERAL)
		return p->literal_left;
	return 0;
}

size_t
imap_parser_size(const struct imap_parser *p)
{
	return p->state == PS_FINISHED ? 0 : p->size;
}

int
imap_arg_is_nil(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, "NIL") == 0;
}

int
imap_arg_is_string(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_QUOTED || arg->type == IMAP_ARG_LITERAL;
}

int
imap_arg_is_astring(const struct imap_arg *arg)
{
	return imap_arg_is_string(arg) || arg->type == IMAP_ARG_ATOM;
}
