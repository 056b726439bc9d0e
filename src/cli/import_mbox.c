/*
 * petrel import mbox ADDR FILE [--mailbox NAME]: messages from an mbox file.
 *
 * A message starts at a "From " line that begins the file or follows an
 * empty line; the empty line before it ends the previous message and is not
 * part of it. ">From ", ">>From "... lose one '>' (mboxrd; in an mboxo file
 * those lines were not quoted, and unquoting them is what every reader
 * does). The mbox metadata header fields written by mail readers and mbox
 * servers (Status, X-Status, X-Keywords, X-UID, X-IMAP, X-IMAPbase) give the
 * flags and are left out of the stored message: `petrel export mbox` writes
 * them back from the flags. The internal date is the From_ line's date.
 *
 * The journal key of a message is the offset of its From_ line.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_mail.h"
#include "cli/mail_import.h"
#include "cli/mail_lines.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define MBOX_READ_CHUNK 65536
#define MBOX_KEYWORDS_MAX 64

enum mbox_meta {
	MBOX_META_NONE,
	MBOX_META_STATUS,
	MBOX_META_XSTATUS,
	MBOX_META_KEYWORDS,
	MBOX_META_OTHER,        /* dropped, meaning nothing here */
};

struct mbox_import {
	struct mail_import *imp;
	uint64_t offset;        /* of the next line */
	int at_start;           /* nothing read yet */
	int in_message;
	int skip;               /* stored by an earlier run: read through it */
	int in_header;
	enum mbox_meta meta;    /* the header field being left out */
	char blank[2];          /* an empty line held back */
	size_t blank_len;
	char key[32];
	unsigned flags;
	int64_t internaldate;
	char *keywords[MBOX_KEYWORDS_MAX + 1];
	size_t nkeywords;
};

static const struct {
	const char *name;
	enum mbox_meta meta;
} mbox_meta_fields[] = {
	{ "Status", MBOX_META_STATUS },
	{ "X-Status", MBOX_META_XSTATUS },
	{ "X-Keywords", MBOX_META_KEYWORDS },
	{ "X-UID", MBOX_META_OTHER },
	{ "X-IMAP", MBOX_META_OTHER },
	{ "X-IMAPbase", MBOX_META_OTHER },
};

static void
mbox_keyword(struct mbox_import *mi, const char *s, size_t len)
{
	char *kw = xstrndup(s, len);
	size_t i;

	for (i = 0; i < mi->nkeywords; i++)
		if (strcasecmp(mi->keywords[i], kw) == 0)
			break;
	if (i < mi->nkeywords || mi->nkeywords == MBOX_KEYWORDS_MAX ||
	    !cli_mail_keyword_ok(kw)) {
		free(kw);
		return;
	}
	mi->keywords[mi->nkeywords++] = kw;
	mi->keywords[mi->nkeywords] = NULL;
}

/* The value of a metadata field (or a continuation line of one). */
static void
mbox_meta_value(struct mbox_import *mi, const char *v, size_t len)
{
	size_t i, start;

	for (i = 0; i < len; i++) {
		switch (mi->meta) {
		case MBOX_META_STATUS:
			if (v[i] == 'R')
				mi->flags |= STORE_FLAG_SEEN;
			break;
		case MBOX_META_XSTATUS:
			if (v[i] == 'A')
				mi->flags |= STORE_FLAG_ANSWERED;
			else if (v[i] == 'F')
				mi->flags |= STORE_FLAG_FLAGGED;
			else if (v[i] == 'T')
				mi->flags |= STORE_FLAG_DRAFT;
			else if (v[i] == 'D')
				mi->flags |= STORE_FLAG_DELETED;
			break;
		case MBOX_META_KEYWORDS:
			if (strchr(" \t\r\n,", v[i]) != NULL)
				break;
			for (start = i; i < len && strchr(" \t\r\n,", v[i]) == NULL; i++)
				;
			mbox_keyword(mi, v + start, i - start);
			break;
		default:
			return;
		}
	}
}

/* Is this header line one of the metadata fields? */
static enum mbox_meta
mbox_meta_field(struct mbox_import *mi, const char *data, size_t len)
{
	const char *colon;
	size_t i, namelen;

	if ((colon = memchr(data, ':', len)) == NULL)
		return MBOX_META_NONE;
	for (namelen = (size_t)(colon - data); namelen > 0 && (data[namelen - 1] == ' ' ||
	    data[namelen - 1] == '\t'); namelen--)
		;
	for (i = 0; i < sizeof(mbox_meta_fields) / sizeof(mbox_meta_fields[0]); i++) {
		if (strlen(mbox_meta_fields[i].name) != namelen ||
		    strncasecmp(mbox_meta_fields[i].name, data, namelen) != 0)
			continue;
		mi->meta = mbox_meta_fields[i].meta;
		mbox_meta_value(mi, colon + 1, len - (size_t)(colon + 1 - data));
		return mi->meta;
	}
	return MBOX_META_NONE;
}

static void
mbox_emit(struct mbox_import *mi, const char *data, size_t len)
{
	if (!mi->skip)
		mail_import_write(mi->imp, data, len);
}

static void
mbox_clear_message(struct mbox_import *mi)
{
	size_t i;

	for (i = 0; i < mi->nkeywords; i++)
		free(mi->keywords[i]);
	mi->nkeywords = 0;
	mi->keywords[0] = NULL;
	mi->in_message = 0;
	mi->skip = 0;
	mi->flags = 0;
	mi->meta = MBOX_META_NONE;
}

static int
mbox_end_message(struct mbox_import *mi)
{
	int rc = 0;

	if (!mi->in_message)
		return 0;
	mi->blank_len = 0;      /* the separator's empty line */
	if (mi->skip)
		mail_import_skipped(mi->imp);
	else
		rc = mail_import_commit(mi->imp, mi->key, mi->flags,
		    (const char *const *)mi->keywords, mi->internaldate);
	mbox_clear_message(mi);
	return rc;
}

static int
mbox_start_message(struct mbox_import *mi, const char *line, size_t len, uint64_t at)
{
	mbox_clear_message(mi);
	snprintf(mi->key, sizeof(mi->key), "%" PRIu64, at);
	if (cli_mail_parse_from_line(line, len, &mi->internaldate) < 0)
		mi->internaldate = 0;
	mi->in_message = 1;
	mi->in_header = 1;
	if (mail_import_is_done(mi->imp, mi->key)) {
		mi->skip = 1;
		return 0;
	}
	return mail_import_begin(mi->imp);
}

static int
mbox_line(void *ctx, const char *data, size_t len, int first, int last)
{
	struct mbox_import *mi = ctx;
	uint64_t at = mi->offset;
	size_t quotes;

	mi->offset += len;
	if (first && mail_lines_is_from(data, len, &quotes) && quotes == 0 &&
	    (mi->at_start || mi->blank_len > 0)) {
		mi->at_start = 0;
		if (mbox_end_message(mi) < 0)
			return -1;
		return mbox_start_message(mi, data, len, at);
	}
	if (mi->at_start) {
		mail_import_warn(mi->imp, 0, "not an mbox file (it does not start with a "
		    "\"From \" line)");
		return -1;
	}
	if (mi->blank_len > 0) {
		mbox_emit(mi, mi->blank, mi->blank_len);
		mi->blank_len = 0;
	}
	if (mail_lines_is_blank(data, len, first, last)) {
		memcpy(mi->blank, data, len);
		mi->blank_len = len;
		mi->in_header = 0;
		mi->meta = MBOX_META_NONE;
		return 0;
	}
	if (mi->in_header) {
		if (!first || data[0] == ' ' || data[0] == '\t') {
			if (mi->meta != MBOX_META_NONE) {
				mbox_meta_value(mi, data, len);
				return 0;
			}
		} else if (mbox_meta_field(mi, data, len) != MBOX_META_NONE) {
			return 0;
		} else {
			mi->meta = MBOX_META_NONE;
		}
	}
	if (first && quotes > 0 && mail_lines_is_from(data, len, &quotes)) {
		data++;
		len--;
	}
	mbox_emit(mi, data, len);
	return 0;
}

int
import_mbox(struct cli *cli, const char *address, const char *file, const char *mailbox,
    int fresh)
{
	struct mail_import imp;
	struct mbox_import mi;
	struct mail_lines ml;
	char real[PATH_MAX], *source_id, *chunk;
	ssize_t n;
	int fd, ok = 0;

	/* Opened before the account (and the switch away from root). */
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0 || realpath(file, real) == NULL) {
		cli_error("%s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	source_id = xasprintf("%s\n%s", real, mailbox);
	if (mail_import_open(&imp, cli, address, "mbox", file, source_id, fresh) < 0 ||
	    mail_import_select(&imp, mailbox) < 0) {
		free(source_id);
		close(fd);
		mail_import_close(&imp, 0);
		return 1;
	}
	free(source_id);
	memset(&mi, 0, sizeof(mi));
	mi.imp = &imp;
	mi.at_start = 1;
	mail_lines_init(&ml, mbox_line, &mi);
	chunk = xmalloc(MBOX_READ_CHUNK);
	for (;;) {
		if ((n = read(fd, chunk, MBOX_READ_CHUNK)) < 0) {
			if (errno == EINTR)
				continue;
			cli_error("%s: %s", file, strerror(errno));
			break;
		}
		if (n == 0) {
			ok = mail_lines_finish(&ml) == 0 && mbox_end_message(&mi) == 0;
			break;
		}
		if (mail_lines_feed(&ml, chunk, (size_t)n) < 0)
			break;
	}
	mbox_clear_message(&mi);
	mail_lines_free(&ml);
	free(chunk);
	close(fd);
	return mail_import_close(&imp, ok);
}
