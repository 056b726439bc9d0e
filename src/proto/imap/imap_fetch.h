/*
 * FETCH items (RFC 9051 6.4.5): parsed once into a struct imap_fetch_spec
 * that the worker follows for every message. Pure: no I/O, unit-tested.
 */
#ifndef PETREL_PROTO_IMAP_FETCH_H
#define PETREL_PROTO_IMAP_FETCH_H

#include <stdint.h>

#include "proto/imap/imap_parse.h"

#define IMAP_SECTION_DEPTH_MAX 32       /* numbers in "1.2.3" */
#define IMAP_SECTION_FIELDS_MAX 256     /* names in HEADER.FIELDS (...) */
#define IMAP_FETCH_SECTIONS_MAX 64      /* body sections in one FETCH */

/* Simple items. */
#define IMAP_FETCH_FLAGS 0x001
#define IMAP_FETCH_INTERNALDATE 0x002
#define IMAP_FETCH_RFC822_SIZE 0x004
#define IMAP_FETCH_UID 0x008
#define IMAP_FETCH_ENVELOPE 0x010
#define IMAP_FETCH_BODYSTRUCTURE 0x020
#define IMAP_FETCH_BODY 0x040           /* BODY without a section */
#define IMAP_FETCH_MODSEQ 0x080
#define IMAP_FETCH_EMAILID 0x100
#define IMAP_FETCH_THREADID 0x200
#define IMAP_FETCH_PREVIEW 0x400

enum imap_section_kind {
	IMAP_SECTION_ALL,               /* BODY[] or BODY[1.2]: the part's body */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};

struct imap_section {
	uint32_t part[IMAP_SECTION_DEPTH_MAX];
	unsigned npart;
	enum imap_section_kind kind;
	char **fields;                  /* HEADER.FIELDS names */
	unsigned nfields;
	uint64_t offset, length;        /* <offset.length> */
	unsigned partial : 1;
	unsigned peek : 1;              /* no implicit \Seen */
	unsigned binary : 1;            /* BINARY[]: content-transfer-decoded */
	unsigned binary_size : 1;       /* BINARY.SIZE[]: its decoded size */
	/* What the response calls it, without the <origin>: "BODY[1.MIME]",
	 * "RFC822.HEADER". */
	char *name;
};

struct imap_fetch_spec {
	unsigned items;                 /* IMAP_FETCH_* */
	struct imap_section *sections;
	unsigned nsections;
	uint64_t changedsince;          /* CHANGEDSINCE modifier; 0: none */
	unsigned has_changedsince : 1;
	unsigned vanished : 1;          /* VANISHED modifier (QRESYNC) */
};

/* Parses the FETCH item argument (an atom or a list; PREVIEW may be
 * followed by "(LAZY)") and the optional modifier list (CHANGEDSINCE n,
 * VANISHED). Returns 0, or -1 with *error_r. */
int imap_fetch_parse(const struct imap_arg *items, const struct imap_arg *modifiers,
    struct imap_fetch_spec *spec, const char **error_r);
/* Parses one item such as "BODY.PEEK[1.HEADER.FIELDS (A B)]<0.10>",
 * "BINARY.PEEK[1.2]<0.10>" or "BINARY.SIZE[3]" into sec. Returns 0 or -1. */
int imap_section_parse(const char *item, struct imap_section *sec, const char **error_r);
void imap_section_clear(struct imap_section *sec);
void imap_fetch_spec_clear(struct imap_fetch_spec *spec);
/* 1 when a FETCH of this spec sets \Seen on the messages it reads. */
int imap_fetch_sets_seen(const struct imap_fetch_spec *spec);

#endif
