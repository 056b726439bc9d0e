/*
 * FETCH and UID FETCH.
 *
 * Messages are rendered by a worker in batches into a buffer the loop
 * thread then writes. A FETCH of only FLAGS, UID and MODSEQ needs nothing
 * but the view: the loop thread renders it itself, IMAP_FETCH_BATCH_BYTES
 * at a time, without a worker job per IMAP_FETCH_BATCH messages (a FETCH
 * 1:* (FLAGS) of 10,000 messages was a hundred jobs, each waiting its turn
 * in the worker queue). A body section small enough is read whole; a larger
 * one is announced as a literal and streamed from store_blob_read() a chunk
 * per job. Before each job the session checks its pending output: past
 * IMAP_FETCH_OUTPUT_HIGH it waits for NET_EV_DRAINED, so a slow reader
 * holds at most a few chunks of memory however big the messages are.
 *
 * While a FETCH runs, the view is not changed (the session is busy and
 * untagged updates wait for the command's end), so the worker reads the
 * view's flags and keywords directly.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/decode.h"
#include "mail/envelope.h"
#include "mail/mime.h"
#include "proto/imap/imap_fetch.h"
#include "proto/imap/imap_fetch_body.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_seqset.h"

#define IMAP_FETCH_BATCH 100                    /* messages per job */
#define IMAP_FETCH_BATCH_BYTES (256 * 1024)     /* output per job */
#define IMAP_FETCH_INLINE_MAX (64 * 1024)       /* sections read whole */
#define IMAP_FETCH_CHUNK (256 * 1024)           /* streamed per job */
#define IMAP_FETCH_HEADER_MAX (2 * 1024 * 1024) /* read for HEADER.FIELDS */
#define IMAP_FETCH_MIME_MAX (64 * 1024)         /* part header read for its CTE */

enum { IMAP_CTE_NONE, IMAP_CTE_BASE64, IMAP_CTE_QP, IMAP_CTE_UNKNOWN };

struct imap_fetch {
	struct imap_fetch_spec spec;
	struct store_account *acct;
	int64_t mailbox_id;
	const struct imap_view *view;   /* read-only while a job runs */
	uint32_t *idx;                  /* view indices to fetch */
	size_t n, pos;
	unsigned set_seen : 1;          /* read-write and a non-PEEK section */
	unsigned need_meta : 1;
	unsigned need_summary : 1;
	unsigned need_blob : 1;
	unsigned view_only : 1;         /* none of the above nor \Seen to set */
	unsigned in_msg : 1;            /* msgs[pos]'s response is open */
	unsigned seen_now : 1;          /* \Seen was set on it */
	unsigned item_first : 1;        /* nothing written in its list yet */
	unsigned sec_pos;
	struct mime_summary *summary;
	struct store_blob *blob;
	unsigned streaming : 1;         /* a literal is being streamed */
	uint64_t stream_off, stream_left;
	/* BINARY: the content-transfer decoding of the streamed part. */
	int decode;                     /* IMAP_CTE_* */
	struct mail_b64 b64;
	struct mail_qp qp;
	uint64_t dec_skip, dec_left;    /* decoded octets to skip, to send */
	uint64_t dec_end;               /* where the part ends (QP's last line) */
	unsigned unknown_cte : 1;
	/* store_message_list() of the batch (INTERNALDATE, sizes, ids). */
	struct store_message *meta;
	size_t nmeta;
	uint32_t meta_last;             /* highest UID the listing covers */
	struct buf out;
	uint32_t *seen_uids;
	size_t nseen;
	/* UID FETCH (CHANGEDSINCE m VANISHED): the UID set asked for, and
	 * the highest UID '*' stands for; cleared once answered. */
	char *vanished_set;
	uint32_t vanished_max;
	struct imap_result res;
};

void
imap_fetch_free(struct imap_fetch **fp)
{
	struct imap_fetch *f = *fp;

	if (f == NULL)
		return;
	*fp = NULL;
	imap_fetch_spec_clear(&f->spec);
	if (f->summary != NULL)
		mime_summary_free(&f->summary);
	if (f->blob != NULL)
		store_blob_close(&f->blob);
	if (f->meta != NULL)
		store_messages_free(&f->meta, f->nmeta);
	buf_free(&f->out);
	imap_result_clear(&f->res);
	free(f->seen_uids);
	free(f->vanished_set);
	free(f->idx);
	free(f);
}

/* --- the worker ------------------------------------------------------------ */

static const struct store_message *
imap_fetch_meta(struct imap_fetch *f, uint32_t uid)
{
	size_t lo = 0, hi;
	const char *error;

	if (f->meta == NULL || uid > f->meta_last) {
		size_t last = f->pos + IMAP_FETCH_BATCH - 1;

		if (f->meta != NULL)
			store_messages_free(&f->meta, f->nmeta);
		if (last >= f->n)
			last = f->n - 1;
		f->meta_last = f->view->msgs[f->idx[last]].uid;
		if (store_message_list(f->acct, f->mailbox_id, uid, f->meta_last, &f->meta,
		    &f->nmeta, &error) < 0) {
			f->meta = NULL;
			f->nmeta = 0;
			return NULL;
		}
	}
	hi = f->nmeta;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->meta[mid].uid < uid)
			lo = mid + 1;
		else if (f->meta[mid].uid > uid)
			hi = mid;
		else
			return &f->meta[mid];
	}
	return NULL;
}

static void
imap_fetch_sep(struct imap_fetch *f, int *first)
{
	if (!*first)
		buf_putc(&f->out, ' ');
	*first = 0;
}

/* Opens the response of msgs[pos] and writes its simple items. Returns 0,
 * or -1 when the message is gone (it is skipped). */
static int
imap_fetch_begin(struct imap_fetch *f)
{
	const struct imap_msg *m = &f->view->msgs[f->idx[f->pos]];
	const struct store_message *meta = NULL;
	unsigned items = f->spec.items;
	const char *error;
	int first = 1;

	if (m->expunged)
		return -1;
	if (f->need_meta && (meta = imap_fetch_meta(f, m->uid)) == NULL)
		return -1;
	if (f->need_summary &&
	    store_message_summary(f->acct, f->mailbox_id, m->uid, &f->summary, &error) < 0)
		return -1;
	if (f->need_blob &&
	    store_blob_open(f->acct, f->mailbox_id, m->uid, &f->blob, &error) < 0) {
		if (f->summary != NULL)
			mime_summary_free(&f->summary);
		return -1;
	}
	f->seen_now = 0;
	if (f->set_seen && !(m->flags & STORE_FLAG_SEEN)) {
		uint32_t *failed = NULL;
		size_t nfailed = 0;

		if (store_message_set_flags(f->acct, f->mailbox_id, &m->uid, 1, STORE_FLAGS_ADD,
		    STORE_FLAG_SEEN, NULL, 0, &failed, &nfailed, &error) == 0) {
			f->seen_now = 1;
			f->seen_uids = xreallocarray(f->seen_uids, f->nseen + 1,
			    sizeof(*f->seen_uids));
			f->seen_uids[f->nseen++] = m->uid;
			items |= IMAP_FETCH_FLAGS;
		}
		free(failed);
	}
	/* Written for each message of a listing: no printf. */
	buf_append(&f->out, "* ", 2);
	buf_put_u64(&f->out, f->idx[f->pos] + 1);
	buf_append(&f->out, " FETCH (", 8);
	if (items & IMAP_FETCH_UID) {
		imap_fetch_sep(f, &first);
		buf_append(&f->out, "UID ", 4);
		buf_put_u64(&f->out, m->uid);
	}
	if (items & IMAP_FETCH_FLAGS) {
		imap_fetch_sep(f, &first);
		buf_puts(&f->out, "FLAGS ");
		imap_flags_format(&f->out, m->flags | (f->seen_now ? STORE_FLAG_SEEN : 0),
		    imap_view_keywords(f->view, m));
	}
	if (items & IMAP_FETCH_INTERNALDATE) {
		imap_fetch_sep(f, &first);
		buf_puts(&f->out, "INTERNALDATE ");
		imap_datetime_format(&f->out, meta->internaldate);
	}
	if (items & IMAP_FETCH_RFC822_SIZE) {
		imap_fetch_sep(f, &first);
		buf_printf(&f->out, "RFC822.SIZE %llu", (unsigned long long)meta->size);
	}
	if (items & IMAP_FETCH_MODSEQ) {
		imap_fetch_sep(f, &first);
		buf_append(&f->out, "MODSEQ (", 8);
		buf_put_u64(&f->out, m->modseq);
		buf_putc(&f->out, ')');
	}
	if (items & IMAP_FETCH_EMAILID) {
		imap_fetch_sep(f, &first);
		buf_printf(&f->out, "EMAILID (M%s)", meta->guid);
	}
	if (items & IMAP_FETCH_THREADID) {
		imap_fetch_sep(f, &first);
		if (meta->thread_id > 0)
			buf_printf(&f->out, "THREADID (T%lld)", (long long)meta->thread_id);
		else
			buf_puts(&f->out, "THREADID NIL");
	}
	if (items & IMAP_FETCH_PREVIEW) {
		/* RFC 8970: the text the store made when the message came. */
		imap_fetch_sep(f, &first);
		buf_puts(&f->out, "PREVIEW ");
		if (f->summary != NULL && f->summary->preview != NULL)
			imap_write_string(&f->out, f->summary->preview,
			    strlen(f->summary->preview));
		else
			buf_puts(&f->out, "NIL");
	}
	if (items & IMAP_FETCH_ENVELOPE) {
		imap_fetch_sep(f, &first);
		buf_puts(&f->out, "ENVELOPE ");
		mime_envelope(f->summary, &f->out);
	}
	if (items & IMAP_FETCH_BODYSTRUCTURE) {
		imap_fetch_sep(f, &first);
		buf_printf(&f->out, "BODYSTRUCTURE %s", f->summary->bodystructure != NULL ?
		    f->summary->bodystructure : "NIL");
	}
	if (items & IMAP_FETCH_BODY) {
		imap_fetch_sep(f, &first);
		buf_printf(&f->out, "BODY %s", f->summary->body != NULL ? f->summary->body : "NIL");
	}
	f->item_first = first;
	f->in_msg = 1;
	f->sec_pos = 0;
	return 0;
}

/* Reads [start, start+len) of the blob onto out; pads a short read so
 * that the literal keeps its announced length. */
static void
imap_fetch_read(struct imap_fetch *f, uint64_t start, size_t len)
{
	size_t done = 0;
	ssize_t r;

	buf_reserve(&f->out, len);
	while (done < len) {
		r = store_blob_read(f->blob, start + done, f->out.data + f->out.len + done,
		    len - done);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	if (done < len) {
		f->res.failed = 1;
		memset(f->out.data + f->out.len + done, ' ', len - done);
	}
	f->out.len += len;
	f->out.data[f->out.len] = '\0';
}

/* --- BINARY (RFC 3516) ------------------------------------------------------- */

/* The Content-Transfer-Encoding of a part, from its MIME header. */
static int
imap_fetch_cte(struct imap_fetch *f, const struct imap_section *sec)
{
	struct imap_section mime = *sec;
	struct imap_section_range r;
	struct buf hdr = BUF_INIT, field = BUF_INIT;
	char *name[] = { "Content-Transfer-Encoding" };
	const char *v;
	size_t off, len;
	int cte = IMAP_CTE_NONE;

	if (sec->npart == 0)
		return IMAP_CTE_NONE;           /* BINARY[]: the message as it is */
	mime.kind = IMAP_SECTION_MIME;
	if (imap_section_locate(f->summary, &mime, &r) < 0)
		return IMAP_CTE_NONE;
	len = (size_t)(r.end - r.start);
	if (len > IMAP_FETCH_MIME_MAX)
		len = IMAP_FETCH_MIME_MAX;
	off = f->out.len;
	imap_fetch_read(f, r.start, len);
	buf_append(&hdr, f->out.data + off, len);
	f->out.len = off;
	f->out.data[off] = '\0';
	imap_header_filter(buf_cstr(&hdr), hdr.len, name, 1, 0, &field);
	v = strchr(buf_cstr(&field), ':');
	if (v != NULL) {
		for (v++; *v == ' ' || *v == '\t' || *v == '\r' || *v == '\n'; v++)
			;
		len = strcspn(v, " \t\r\n;(");
		if (len == 6 && strncasecmp(v, "base64", 6) == 0)
			cte = IMAP_CTE_BASE64;
		else if (len == 16 && strncasecmp(v, "quoted-printable", 16) == 0)
			cte = IMAP_CTE_QP;
		else if (len != 0 && !(len == 4 && strncasecmp(v, "7bit", 4) == 0) &&
		    !(len == 4 && strncasecmp(v, "8bit", 4) == 0) &&
		    !(len == 6 && strncasecmp(v, "binary", 6) == 0))
			cte = IMAP_CTE_UNKNOWN;
	}
	buf_free(&hdr);
	buf_free(&field);
	return cte;
}

static void
imap_decode_reset(struct imap_fetch *f, int cte)
{
	f->decode = cte;
	memset(&f->b64, 0, sizeof(f->b64));
	memset(&f->qp, 0, sizeof(f->qp));
}

static void
imap_decode(struct imap_fetch *f, const void *in, size_t len, int last, struct buf *out)
{
	if (f->decode == IMAP_CTE_BASE64) {
		mail_b64_decode(&f->b64, in, len, out);
	} else if (f->decode == IMAP_CTE_QP) {
		mail_qp_decode(&f->qp, in, len, out);
		if (last)
			mail_qp_finish(&f->qp, out);
	} else {
		buf_append(out, in, len);
	}
}

/* Decodes [start, end) of the part a chunk at a time (the part ends at
 * f->dec_end). Without out, returns the decoded size; with it, skips *skip
 * decoded octets, then appends at most *max, updating both. */
static uint64_t
imap_decode_range(struct imap_fetch *f, uint64_t start, uint64_t end, uint64_t *skip,
    uint64_t *max, struct buf *out)
{
	struct buf dec = BUF_INIT;
	uint64_t total = 0;
	size_t off;

	while (start < end && (out == NULL || *max > 0)) {
		size_t len = end - start < IMAP_FETCH_CHUNK ? (size_t)(end - start) :
		    IMAP_FETCH_CHUNK;

		off = f->out.len;
		imap_fetch_read(f, start, len);
		start += len;
		buf_reset(&dec);
		imap_decode(f, f->out.data + off, len, start == f->dec_end, &dec);
		f->out.len = off;
		f->out.data[off] = '\0';
		total += dec.len;
		if (out != NULL) {
			size_t from = *skip < dec.len ? (size_t)*skip : dec.len;
			size_t take = dec.len - from < *max ? dec.len - from : (size_t)*max;

			*skip -= from;
			buf_append(out, dec.data + from, take);
			*max -= take;
		}
	}
	buf_free(&dec);
	return total;
}

/* Writes a BINARY or BINARY.SIZE item. Returns 1 when it is streamed. */
static int
imap_fetch_binary(struct imap_fetch *f, const struct imap_section *sec,
    const struct imap_section_range *r)
{
	int cte = imap_fetch_cte(f, sec);
	uint64_t total, skip = 0, len;

	if (cte == IMAP_CTE_UNKNOWN) {
		f->unknown_cte = 1;
		buf_puts(&f->out, sec->binary_size ? "0" : "NIL");
		return 0;
	}
	imap_decode_reset(f, cte);
	f->dec_end = r->end;
	total = cte == IMAP_CTE_NONE ? r->end - r->start :
	    imap_decode_range(f, r->start, r->end, NULL, NULL, NULL);
	if (sec->binary_size) {
		buf_printf(&f->out, "%llu", (unsigned long long)total);
		return 0;
	}
	if (sec->partial)
		skip = sec->offset < total ? sec->offset : total;
	len = total - skip;
	if (sec->partial && sec->length < len)
		len = sec->length;
	if (len == 0) {
		buf_puts(&f->out, "\"\"");
		return 0;
	}
	buf_printf(&f->out, "~{%llu}\r\n", (unsigned long long)len);
	imap_decode_reset(f, cte);
	if (cte == IMAP_CTE_NONE) {
		/* Nothing to decode: a byte range, as for BODY[]. */
		if (len <= IMAP_FETCH_INLINE_MAX) {
			imap_fetch_read(f, r->start + skip, (size_t)len);
			return 0;
		}
		f->stream_off = r->start + skip;
		f->stream_left = len;
		f->streaming = 1;
		return 1;
	}
	if (r->end - r->start <= IMAP_FETCH_INLINE_MAX) {
		struct buf win = BUF_INIT;

		imap_decode_range(f, r->start, r->end, &skip, &len, &win);
		buf_append(&f->out, win.data, win.len);
		buf_free(&win);
		return 0;
	}
	f->stream_off = r->start;
	f->stream_left = r->end - r->start;
	f->dec_skip = skip;
	f->dec_left = len;
	f->streaming = 1;
	return 1;
}

/* One chunk of a streamed, decoded BINARY literal. */
static void
imap_fetch_binary_chunk(struct imap_fetch *f)
{
	struct buf win = BUF_INIT;

	while (f->dec_left > 0 && f->stream_left > 0 && win.len < IMAP_FETCH_CHUNK) {
		uint64_t len = f->stream_left < IMAP_FETCH_CHUNK ? f->stream_left :
		    IMAP_FETCH_CHUNK;

		imap_decode_range(f, f->stream_off, f->stream_off + len, &f->dec_skip,
		    &f->dec_left, &win);
		f->stream_off += len;
		f->stream_left -= len;
	}
	buf_append(&f->out, win.data, win.len);
	buf_free(&win);
	if (f->stream_left == 0 && f->dec_left > 0) {
		/* Shorter than measured: keep the literal's length. */
		f->res.failed = 1;
		buf_reserve(&f->out, (size_t)f->dec_left);
		memset(f->out.data + f->out.len, ' ', (size_t)f->dec_left);
		f->out.len += (size_t)f->dec_left;
		f->out.data[f->out.len] = '\0';
		f->dec_left = 0;
	}
	if (f->dec_left == 0) {
		f->streaming = 0;
		f->decode = IMAP_CTE_NONE;
	}
}

/* Writes one section of the open message. Returns 1 when it is to be
 * streamed (stream_off/left set), else 0. */
static int
imap_fetch_section(struct imap_fetch *f, const struct imap_section *sec)
{
	struct imap_section_range r;
	struct buf filtered = BUF_INIT;
	uint64_t len;

	buf_printf(&f->out, "%s%s", f->item_first ? "" : " ", sec->name);
	f->item_first = 0;
	if (sec->partial)
		buf_printf(&f->out, "<%llu>", (unsigned long long)sec->offset);
	buf_putc(&f->out, ' ');
	if (f->summary == NULL && sec->kind == IMAP_SECTION_ALL && sec->npart == 0) {
		r.start = 0;
		r.end = store_blob_size(f->blob);
		r.filter = 0;
	} else if (imap_section_locate(f->summary, sec, &r) < 0) {
		buf_puts(&f->out, sec->binary_size ? "0" : "\"\"");
		return 0;
	}
	if (r.end > store_blob_size(f->blob))
		r.end = store_blob_size(f->blob);
	if (r.start > r.end)
		r.start = r.end;
	if (sec->binary)
		return imap_fetch_binary(f, sec, &r);
	if (r.filter) {
		size_t hlen = (size_t)(r.end - r.start), off;

		if (hlen > IMAP_FETCH_HEADER_MAX)
			hlen = IMAP_FETCH_HEADER_MAX;
		off = f->out.len;
		imap_fetch_read(f, r.start, hlen);
		imap_header_filter(f->out.data + off, hlen, sec->fields, sec->nfields,
		    sec->kind == IMAP_SECTION_HEADER_FIELDS_NOT, &filtered);
		f->out.len = off;
		f->out.data[off] = '\0';
		len = filtered.len;
		off = sec->partial ? (sec->offset < len ? (size_t)sec->offset : len) : 0;
		len = len - off;
		if (sec->partial && sec->length < len)
			len = sec->length;
		buf_printf(&f->out, "{%llu}\r\n", (unsigned long long)len);
		buf_append(&f->out, filtered.data + off, (size_t)len);
		buf_free(&filtered);
		return 0;
	}
	len = r.end - r.start;
	if (sec->partial) {
		uint64_t skip = sec->offset < len ? sec->offset : len;

		r.start += skip;
		len -= skip;
		if (sec->length < len)
			len = sec->length;
	}
	if (len == 0) {
		buf_puts(&f->out, "\"\"");
		return 0;
	}
	buf_printf(&f->out, "{%llu}\r\n", (unsigned long long)len);
	if (len <= IMAP_FETCH_INLINE_MAX) {
		imap_fetch_read(f, r.start, (size_t)len);
		return 0;
	}
	f->stream_off = r.start;
	f->stream_left = len;
	f->decode = IMAP_CTE_NONE;
	f->streaming = 1;
	return 1;
}

static void
imap_fetch_end_message(struct imap_fetch *f)
{
	buf_puts(&f->out, ")\r\n");
	if (f->summary != NULL)
		mime_summary_free(&f->summary);
	if (f->blob != NULL)
		store_blob_close(&f->blob);
	f->in_msg = 0;
	f->pos++;
}

/* RFC 7162 3.2.6: the UIDs of the set expunged since CHANGEDSINCE, as
 * VANISHED (EARLIER), before the FETCH responses. */
static void
imap_fetch_vanished(struct imap_fetch *f)
{
	struct store_changes ch;
	struct imap_seqset set;
	const char *error;

	if (imap_seqset_parse(f->vanished_set, &set, &error) == 0) {
		imap_seqset_resolve(&set, f->vanished_max);
		if (store_changes_since(f->acct, f->mailbox_id, f->spec.changedsince, &ch,
		    &error) == 0) {
			imap_view_vanished_earlier(f->view, ch.expunged, ch.nexpunged, &set, &f->out);
			store_changes_clear(&ch);
		}
		imap_seqset_free(&set);
	}
	xfree(&f->vanished_set);
}

static void
imap_fetch_work(void *arg)
{
	struct imap_fetch *f = arg;
	size_t count = 0;

	if (f->vanished_set != NULL)
		imap_fetch_vanished(f);

	if (f->streaming && f->decode != IMAP_CTE_NONE) {
		imap_fetch_binary_chunk(f);
		return;
	}
	if (f->streaming) {
		size_t len = f->stream_left < IMAP_FETCH_CHUNK ? (size_t)f->stream_left :
		    IMAP_FETCH_CHUNK;

		imap_fetch_read(f, f->stream_off, len);
		f->stream_off += len;
		f->stream_left -= len;
		if (f->stream_left == 0)
			f->streaming = 0;
		return;
	}
	while (f->pos < f->n && (count < IMAP_FETCH_BATCH || f->view_only) &&
	    f->out.len < IMAP_FETCH_BATCH_BYTES) {
		if (!f->in_msg && imap_fetch_begin(f) < 0) {
			f->pos++;       /* expunged meanwhile: nothing to say */
			continue;
		}
		while (f->sec_pos < f->spec.nsections) {
			if (imap_fetch_section(f, &f->spec.sections[f->sec_pos++]))
				return;
		}
		imap_fetch_end_message(f);
		count++;
	}
}

/* --- the loop thread ------------------------------------------------------- */

static void imap_fetch_next(struct imap_session *s);

static void
imap_fetch_done(struct imap_session *s, void *arg)
{
	struct imap_fetch *f = arg;

	if (s == NULL)
		return;         /* the session frees s->fetch */
	if (f->out.len > 0)
		net_conn_write(s->conn, f->out.data, f->out.len);
	buf_reset(&f->out);
	imap_fetch_next(s);
}

static void
imap_fetch_complete(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;
	size_t i;
	int64_t idx;

	/* The \Seen we set is part of the view now. */
	for (i = 0; i < f->nseen; i++) {
		if ((idx = imap_view_find_uid(s->view, f->seen_uids[i])) >= 0)
			s->view->msgs[idx].flags |= STORE_FLAG_SEEN;
	}
	if (f->res.failed)
		log_warn(net_conn_id(s->conn), "event=fetch-short-read");
	if (f->unknown_cte) {
		imap_fetch_free(&s->fetch);
		imap_finish(s, "NO [UNKNOWN-CTE] Cannot decode a part's transfer encoding");
		return;
	}
	imap_fetch_free(&s->fetch);
	imap_finish(s, "OK FETCH completed");
}

static void
imap_fetch_next(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;

	for (;;) {
		if (!f->streaming && !f->in_msg && f->pos >= f->n && f->vanished_set == NULL) {
			imap_fetch_complete(s);
			return;
		}
		if (net_conn_output_pending(s->conn) > IMAP_FETCH_OUTPUT_HIGH) {
			net_conn_notify_drained(s->conn);
			return;
		}
		if (!f->view_only) {
			imap_submit(s, imap_fetch_work, imap_fetch_done, f);
			return;
		}
		/* From memory only: rendered here until the output is past the mark. */
		imap_fetch_work(f);
		net_conn_write(s->conn, f->out.data, f->out.len);
		buf_reset(&f->out);
	}
}

void
imap_fetch_drained(struct imap_session *s)
{
	imap_fetch_next(s);
	/* A view-only FETCH may have ended here, outside any job: what the
	 * end of a job does (imap_job_done) is to be done here. */
	if (s->fetch != NULL || s->busy || s->closing)
		return;
	if (s->stopping && s->input == IMAP_INPUT_COMMAND && s->tag == NULL)
		imap_close(s, "Server shutting down");
	else if (s->input != IMAP_INPUT_NONE)
		net_conn_resume(s->conn);
}

void
imap_cmd_fetch(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_fetch *f;
	const char *error;
	size_t i, k;
	unsigned j;

	if (cmd->nargs < 2 || cmd->nargs > 3 || cmd->args->type != IMAP_ARG_ATOM) {
		imap_finish_bad(s, "Syntax: FETCH set items [(modifiers)]");
		return;
	}
	f = xcalloc(1, sizeof(*f));
	if (imap_fetch_parse(cmd->args->next, cmd->args->next->next, &f->spec, &error) < 0 ||
	    imap_view_resolve(s->view, cmd->args->str, cmd->uid, &f->idx, &f->n, &error) < 0) {
		imap_fetch_free(&f);
		imap_finish_bad(s, error);
		return;
	}
	if (f->spec.vanished) {
		if (!cmd->uid || !(s->enabled & IMAP_ENABLED_QRESYNC) ||
		    strcmp(cmd->args->str, "$") == 0) {
			imap_fetch_free(&f);
			imap_finish_bad(s, "VANISHED needs UID FETCH and ENABLE QRESYNC");
			return;
		}
		f->vanished_set = xstrdup(cmd->args->str);
		f->vanished_max = s->view->uidnext > 0 ? s->view->uidnext - 1 : 0;
	}
	if (cmd->uid)
		f->spec.items |= IMAP_FETCH_UID;
	if (f->spec.items & IMAP_FETCH_MODSEQ) {
		s->enabled |= IMAP_ENABLED_CONDSTORE;
		s->view->condstore = 1;
	}
	if (f->spec.has_changedsince) {
		for (i = 0, k = 0; i < f->n; i++) {
			if (s->view->msgs[f->idx[i]].modseq > f->spec.changedsince)
				f->idx[k++] = f->idx[i];
		}
		f->n = k;
	}
	f->acct = s->acct;
	f->mailbox_id = s->view->mailbox_id;
	f->view = s->view;
	f->set_seen = !s->view->readonly && imap_fetch_sets_seen(&f->spec);
	f->need_meta = (f->spec.items & (IMAP_FETCH_INTERNALDATE | IMAP_FETCH_RFC822_SIZE |
	    IMAP_FETCH_EMAILID | IMAP_FETCH_THREADID)) != 0;
	f->need_summary = (f->spec.items & (IMAP_FETCH_ENVELOPE | IMAP_FETCH_BODYSTRUCTURE |
	    IMAP_FETCH_BODY | IMAP_FETCH_PREVIEW)) != 0;
	f->need_blob = f->spec.nsections > 0;
	for (j = 0; j < f->spec.nsections; j++) {
		if (f->spec.sections[j].kind != IMAP_SECTION_ALL || f->spec.sections[j].npart > 0)
			f->need_summary = 1;
	}
	f->view_only = !f->need_meta && !f->need_summary && !f->need_blob && !f->set_seen &&
	    f->vanished_set == NULL;
	s->fetch = f;
	imap_fetch_next(s);
}
