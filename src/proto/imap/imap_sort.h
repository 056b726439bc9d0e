/*
 * SORT and THREAD (RFC 5256, SORT=DISPLAY of RFC 5957) and the comparator
 * of I18NLEVEL=1 (RFC 5255): the base subject, sent dates, sort criteria
 * and the two threading algorithms. Pure: no I/O, unit-tested.
 *
 * i;unicode-casemap (RFC 5051) is approximated by simple Unicode case
 * folding of UTF-8 with a compact table: Latin (Basic, Latin-1, Extended-A,
 * the regular pairs of Extended-B and Extended Additional), Greek, Cyrillic,
 * Armenian, Roman numerals, circled and fullwidth letters. Other scripts
 * (Georgian, Cherokee, Deseret...) compare as they are. Of RFC 5051's
 * NFKD step only the Latin-1 letters are decomposed ("é" becomes "e" and
 * U+0301, so it sorts with "e"); other precomposed letters stay as they
 * are. Invalid UTF-8 is compared byte by byte.
 */
#ifndef PETREL_PROTO_IMAP_SORT_H
#define PETREL_PROTO_IMAP_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/imap/imap_parse.h"

#define IMAP_SORT_KEYS_MAX 16           /* criteria in one SORT */

/* Appends s[0..len) case-folded (see above) to out. */
void imap_casemap(const char *s, size_t len, struct buf *out);
/* 1 when needle occurs in hay, both folded by imap_casemap first. */
int imap_casemap_contains(const char *hay, size_t hlen, const char *needle);

/* RFC 5256 2.1: the base subject of a raw Subject: value (RFC 2047 words
 * decoded), case-folded, into out (reset first). Returns 1 when a reply or
 * forward marker was removed ("Re:", "Fwd:", "(fwd)", "[fwd: ...]"). */
int imap_base_subject(const char *raw, struct buf *out);

/* An RFC 5322 Date: value as Unix time (its zone applied), or -1. */
int64_t imap_sent_date(const char *date);

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
};

struct imap_sort_criterion {
	enum imap_sort_key key;
	unsigned reverse : 1;
};

/* Parses "(REVERSE DATE SUBJECT ...)". Returns the number of criteria, or
 * -1 with *error_r. */
int imap_sort_parse(const struct imap_arg *list, struct imap_sort_criterion *crit,
    const char **error_r);

/* What sorting needs of one message; strings folded, "" when absent. */
struct imap_sort_msg {
	uint32_t num;                   /* sequence number or UID, as reported */
	uint32_t seq;                   /* the final tie-break */
	int64_t arrival, date;
	uint64_t size;
	char *str[IMAP_SORT_DISPLAYTO + 1];     /* CC, FROM, SUBJECT, TO, DISPLAY* */
};

/* Fills m->str[] for the criteria from raw header values (NULL when
 * absent). */
void imap_sort_msg_strings(struct imap_sort_msg *m, const struct imap_sort_criterion *crit,
    int ncrit, const char *cc, const char *from, const char *subject, const char *to);
void imap_sort_msg_clear(struct imap_sort_msg *m);
/* Sorts msgs[0..n) by the criteria. */
void imap_sort_run(struct imap_sort_msg *msgs, size_t n, const struct imap_sort_criterion *crit,
    int ncrit);

/* One message to thread. */
struct imap_thread_msg {
	uint32_t num;                   /* sequence number or UID, as reported */
	uint32_t seq;
	int64_t date;                   /* sent date, else arrival */
	const char *subject;            /* raw Subject:, or NULL */
	const char *message_id;         /* raw values, or NULL */
	const char *references;
	const char *in_reply_to;
};

enum imap_thread_algorithm {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

/* Appends the threads of msgs[0..n) as RFC 5256 writes them after
 * "* THREAD" ("(2)(3 6 (4 23)(44 7 96))"; "" for none). */
void imap_thread_run(enum imap_thread_algorithm alg, const struct imap_thread_msg *msgs,
    size_t n, struct buf *out);

#endif
