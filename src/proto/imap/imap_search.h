/*
 * SEARCH programs (RFC 9051 6.4.4, ESEARCH's RETURN of RFC 4731, MODSEQ of
 * RFC 7162): the arguments become a tree of keys, evaluated per message
 * by imap_search_cmd.c. Pure: no I/O, unit-tested.
 */
#ifndef PETREL_PROTO_IMAP_SEARCH_H
#define PETREL_PROTO_IMAP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "proto/imap/imap_parse.h"

#define IMAP_SEARCH_DEPTH_MAX 64        /* nesting of NOT, OR and lists */
#define IMAP_SEARCH_STRING_MAX 1024     /* bytes of a string to look for */

enum imap_search_op {
	IMAP_SK_ALL,
	IMAP_SK_NONE,                   /* RECENT, NEW: nothing is recent */
	IMAP_SK_AND,                    /* every child */
	IMAP_SK_OR,                     /* either of two children */
	IMAP_SK_NOT,
	IMAP_SK_FLAG,                   /* num: STORE_FLAG_* set */
	IMAP_SK_KEYWORD,                /* str set */
	IMAP_SK_SEQSET,                 /* str: a sequence set */
	IMAP_SK_UIDSET,                 /* str: a UID set */
	IMAP_SK_LARGER,                 /* num */
	IMAP_SK_SMALLER,
	IMAP_SK_BEFORE,                 /* date: internal date, by day (UTC) */
	IMAP_SK_ON,
	IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE,             /* date: the Date: header, by day */
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_HEADER,                 /* field contains str */
	IMAP_SK_BODY,                   /* str, full-text */
	IMAP_SK_TEXT,
	IMAP_SK_MODSEQ,                 /* num: modseq >= num */
	IMAP_SK_SAVED,                  /* "$": the saved result (SEARCHRES) */
	IMAP_SK_EMAILID,                /* str: "M<guid>" (OBJECTID) */
	IMAP_SK_THREADID,               /* str: "T<thread id>" */
};

struct imap_search_key {
	enum imap_search_op op;
	struct imap_search_key *child;  /* operands of AND, OR, NOT */
	struct imap_search_key *next;   /* the next operand of the parent */
	char *str;
	char *field;                    /* HEADER's field name */
	uint64_t num;
	int64_t date;                   /* Unix time of the day's 00:00 UTC */
	/* Filled in by the evaluator. */
	uint32_t *uids;                 /* BODY / TEXT matches, sorted */
	size_t nuids;
	void *set;                      /* SEQSET / UIDSET resolved */
};

/* ESEARCH result options. */
#define IMAP_SEARCH_RET_MIN 0x01
#define IMAP_SEARCH_RET_MAX 0x02
#define IMAP_SEARCH_RET_ALL 0x04
#define IMAP_SEARCH_RET_COUNT 0x08
#define IMAP_SEARCH_RET_SAVE 0x10

struct imap_search_program {
	struct imap_search_key *root;   /* an AND of the top-level keys */
	unsigned ret;                   /* IMAP_SEARCH_RET_* */
	unsigned esearch : 1;           /* RETURN was given */
	unsigned has_modseq : 1;        /* a MODSEQ key is present */
};

/* Parses [RETURN (...)] [CHARSET name] key... Returns 0; -1 with *error_r
 * for a bad program; -2 for an unsupported charset (NO [BADCHARSET]). */
int imap_search_parse(const struct imap_arg *args, struct imap_search_program *prog,
    const char **error_r);
/* SORT and THREAD (RFC 5256, ESORT of RFC 5267): ret is the RETURN
 * option list or NULL, args the bare charset then the keys. Returns as
 * imap_search_parse. */
int imap_search_parse_sort(const struct imap_arg *ret, const struct imap_arg *args,
    struct imap_search_program *prog, const char **error_r);
void imap_search_program_free(struct imap_search_program *prog);
/* The day (00:00 UTC) of an RFC 5322 Date: value, or -1. */
int64_t imap_search_sent_day(const char *date);

#endif
