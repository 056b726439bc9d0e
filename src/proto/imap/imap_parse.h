/*
 * The IMAP command parser (RFC 3501 section 9, RFC 9051, LITERAL+ and
 * LITERAL- of RFC 7888): tag, command name and arguments, which are atoms, quoted strings,
 * literals and parenthesized lists of them.
 *
 * The parser is resumable and does no I/O: imap_parse() takes whatever bytes
 * have arrived, consumes as many as belong to the current command, and says
 * whether the command is complete, needs more bytes, waits for the client's
 * synchronizing literal, or is bad. Feeding a command in one piece or one
 * byte at a time gives the same result.
 *
 * A literal's length must fit in 32 bits (RFC 9051 number). A literal8
 * ("~{n}", RFC 3516) may hold NUL; it is otherwise a literal.
 *
 * Every length and count the client controls has a limit; past it the
 * command is bad, and the parser discards the rest of the line so that the
 * next command starts in sync. A non-synchronizing literal that is too big
 * cannot be skipped safely, so that error is fatal: the session must hang up.
 *
 * Atoms are read leniently so that commands for later parts of the server
 * survive parsing: '%', '*', ']' and '\' are accepted in atoms, and a '['
 * opens a section (as in BODY[HEADER.FIELDS (DATE)]) that may hold spaces and
 * parentheses up to its ']'.
 */
#ifndef PETREL_PROTO_IMAP_PARSE_H
#define PETREL_PROTO_IMAP_PARSE_H

#include <stddef.h>

#define IMAP_TAG_MAX 64                 /* bytes of a tag */
#define IMAP_NAME_MAX 32                /* bytes of a command name */
#define IMAP_LITERAL_DIGITS_MAX 10      /* digits of a literal's length */
#define IMAP_LITERAL_MINUS_MAX 4096     /* a non-synchronizing literal (LITERAL-) */

struct imap_parse_limits {
	size_t command_max;     /* bytes of a command: lines, line ends, literals */
	unsigned args_max;      /* arguments, list elements included */
	unsigned depth_max;     /* nesting of parenthesized lists */
	/* Hand APPEND's message literals to the caller (IMAP_PARSE_STREAM)
	 * instead of reading them; they do not count toward command_max. */
	unsigned stream_append;
	/* LITERAL+ (RFC 7888): non-synchronizing literals of any size up to
	 * command_max (streamed APPEND messages: up to 4 GiB). Without it,
	 * LITERAL- rules: at most IMAP_LITERAL_MINUS_MAX bytes. */
	unsigned literal_plus;
};

enum imap_parse_result {
	IMAP_PARSE_MORE,        /* all input consumed; the command goes on */
	IMAP_PARSE_DONE,        /* a whole command: see imap_parser_command() */
	IMAP_PARSE_LITERAL,     /* a synchronizing literal was announced: send a
	                         * continuation request, then feed its bytes */
	IMAP_PARSE_ERROR,       /* a bad command: see imap_parser_error() */
	IMAP_PARSE_STREAM,      /* a message literal of APPEND was announced:
	                         * the caller reads its bytes itself, then calls
	                         * imap_parser_stream_done() */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,          /* NIL is an atom: see imap_arg_is_nil() */
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	const char *str;                /* the value, NUL-terminated ("" for a list) */
	size_t len;
	const struct imap_arg *list;    /* a list's first element (NULL if empty) */
	unsigned count;                 /* a list's number of elements */
	const struct imap_arg *next;    /* the next argument at the same level */

	/* The parser's own links while the command is incomplete. */
	size_t value_off;
	int first_i, last_i, next_i;
};

struct imap_command {
	const char *tag;
	const char *name;               /* as the client wrote it */
	const struct imap_arg *args;    /* the first argument, NULL when none */
	unsigned nargs;
};

struct imap_parser;

struct imap_parser *imap_parser_new(const struct imap_parse_limits *limits);
void imap_parser_free(struct imap_parser **p);
/* Forgets the command in progress; the next byte starts a new one. Takes
 * new limits when limits is not NULL. */
void imap_parser_reset(struct imap_parser *p, const struct imap_parse_limits *limits);

/* Parses data[0..len). *consumed_r is how many bytes were used; the rest
 * belongs to what follows the result (pipelined commands, or literal bytes
 * the client sends after the continuation request). After DONE or a
 * non-fatal ERROR, the next call starts a new command. After a fatal ERROR
 * every call returns ERROR and consumes nothing. */
enum imap_parse_result imap_parse(struct imap_parser *p, const void *data, size_t len,
    size_t *consumed_r);

/* After DONE: the command. Valid until the next imap_parse() or reset. */
const struct imap_command *imap_parser_command(const struct imap_parser *p);
/* The tag and command name once they have been read, else NULL. */
const char *imap_parser_tag(const struct imap_parser *p);
const char *imap_parser_name(const struct imap_parser *p);
/* After ERROR: a message safe to send to the client ("Invalid tag"), and
 * whether the session cannot resynchronize and must hang up. */
const char *imap_parser_error(const struct imap_parser *p, int *fatal_r);
/* After STREAM: the literal's length and whether it is synchronizing (the
 * caller then sends the continuation request, or refuses and resets).
 * imap_parser_command() gives the command so far; its last argument is the
 * literal, empty. Until imap_parser_stream_done(), imap_parse() consumes
 * nothing and returns STREAM again. */
size_t imap_parser_stream_size(const struct imap_parser *p);
int imap_parser_stream_sync(const struct imap_parser *p);
void imap_parser_stream_done(struct imap_parser *p);
/* Bytes of literal data the parser is waiting for: the caller reads them
 * as raw bytes rather than as lines. */
size_t imap_parser_literal_left(const struct imap_parser *p);
/* Bytes of the command in progress consumed so far (0 between commands). */
size_t imap_parser_size(const struct imap_parser *p);

/* 1 for the atom NIL (any case). */
int imap_arg_is_nil(const struct imap_arg *arg);
/* 1 for a quoted string or literal; imap_arg_is_astring() adds atoms. */
int imap_arg_is_string(const struct imap_arg *arg);
int imap_arg_is_astring(const struct imap_arg *arg);

#endif
