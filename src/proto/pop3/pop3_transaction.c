/*
 * The TRANSACTION and UPDATE states (RFC 1939 sections 5 and 6): the
 * maildrop's commands, and the store work behind them.
 *
 * Every store call blocks, so it runs on the worker pool in a struct
 * pop3_job while the session is paused (s->busy). A job keeps a pointer to
 * its session; when the connection goes away meanwhile, the session's close
 * clears it and hands the job what the session owned, and the job's
 * completion lets go of it.
 *
 * RETR and TOP stream: the message is read in chunks of POP3_CHUNK bytes
 * and dot-stuffed on a worker, and the next chunk is read only once the
 * output has fallen below POP3_OUTPUT_LOWAT, so a session never holds more
 * than about POP3_OUTPUT_LOWAT + 2 * POP3_CHUNK bytes of a message.
 *
 * Read ahead: the job that finishes a RETR also reads the messages after
 * it that fit a chunk, up to POP3_AHEAD_MAX octets, ready to send. The next
 * RETR of the first of them sends it from the loop thread, without a job
 * (clients download in order, and the hop to a worker and back was most
 * of a small message's RETR latency). They are dropped when RETR asks for
 * another message, when INBOX changed since they were read
 * (md->changes), and at the end of the session.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/conn.h"
#include "net/loop.h"
#include "proto/pop3/pop3.h"
#include "proto/pop3/pop3_dot.h"
#include "proto/pop3/pop3_internal.h"
#include "proto/pop3/pop3_maildrop.h"
#include "proto/proto.h"
#include "store/store.h"

enum pop3_job_kind {
	POP3_JOB_OPEN,          /* login: lock, open the account, snapshot */
	POP3_JOB_READ,          /* RETR/TOP: the next chunk */
	POP3_JOB_UPDATE,        /* QUIT: expunge, \Seen, close */
	POP3_JOB_RELEASE,       /* the session is gone: close what it had */
};

/* Room for the "+OK <size> octets" line before a message's first chunk. */
#define POP3_RETR_HEAD_MAX 48

/* A RETR or TOP being sent, or a message read ahead. */
struct pop3_retr {
	struct pop3_retr *next;         /* read ahead: the following one */
	struct store_blob *blob;
	size_t msg;                     /* index into the maildrop */
	uint32_t uid;
	uint64_t offset;                /* next byte of the message to read */
	struct pop3_dot dot;
	unsigned char *in;              /* chunk bytes */
	char *out;                      /* the chunk, dot-stuffed */
	size_t chunk;                   /* bytes read at a time */
	size_t outlen;
	/* Before the first chunk: the "+OK" line at the start of out, so that
	 * the reply and (all of) a small message go out in one write. */
	size_t headlen;
	enum store_error error;         /* why it failed */
	unsigned top : 1;
	unsigned started : 1;           /* "+OK" was sent */
	unsigned failed : 1;
	unsigned eof : 1;               /* the last chunk is in out */
};

struct pop3_job {
	struct pop3_session *s;         /* NULL once the session is gone */
	enum pop3_job_kind kind;
	char *id;                       /* the session's, for logs */
	/* Borrowed from the session while it lives, owned once it is gone;
	 * owned by OPEN (its result), UPDATE and RELEASE jobs. */
	struct pop3_maildrop *md;
	struct pop3_retr *retr;
	/* READ of a RETR: the messages after it, read ahead (owned) */
	struct pop3_retr *ahead;
	unsigned ahead_changes;         /* md->changes before they were read */
	/* OPEN */
	struct store *store;
	struct directory *dir;
	int64_t account_id;
	enum pop3_maildrop_status status;
	/* OPEN and UPDATE */
	int result;
	const char *error;
};

static struct pop3_job *
pop3_job_new(struct pop3_session *s, enum pop3_job_kind kind)
{
	struct pop3_job *job = xcalloc(1, sizeof(*job));

	job->s = s;
	job->kind = kind;
	job->id = xstrdup(net_conn_id(s->conn));
	return job;
}

static void
pop3_job_free(struct pop3_job **jobp)
{
	struct pop3_job *job = *jobp;

	free(job->id);
	free(job);
	*jobp = NULL;
}

/* Runs job on a worker with the session paused; done follows on the
 * session's loop. */
static void
pop3_job_submit(struct pop3_session *s, struct pop3_job *job, net_work_fn *work,
    net_work_fn *done)
{
	s->job = job;
	s->busy = 1;
	net_conn_pause(s->conn);
	net_loop_submit(net_conn_loop(s->conn), work, done, job);
}

/* --- RETR and TOP streams ------------------------------------------------- */

static struct pop3_retr *
pop3_retr_new(size_t msg, uint32_t uid, uint64_t size, int top, uint64_t lines)
{
	struct pop3_retr *r = xcalloc(1, sizeof(*r));

	r->msg = msg;
	r->uid = uid;
	r->top = top != 0;
	pop3_dot_init(&r->dot, top, lines);
	/* A small message is read whole, into buffers no bigger than it
	 * needs (buffers of POP3_CHUNK would be mapped and unmapped each
	 * time). */
	r->chunk = size < POP3_CHUNK ? (size_t)size + 1 : POP3_CHUNK;
	r->in = xmalloc(r->chunk);
	r->out = xmalloc(POP3_RETR_HEAD_MAX + POP3_DOT_OUT_MAX(r->chunk) + POP3_DOT_FINISH_MAX);
	r->headlen = (size_t)snprintf(r->out, POP3_RETR_HEAD_MAX, "+OK %" PRIu64 " octets\r\n",
	    size);
	return r;
}

/* Blocking when the message is still open. */
static void
pop3_retr_free(struct pop3_retr **rp)
{
	struct pop3_retr *r = *rp;

	if (r == NULL)
		return;
	store_blob_close(&r->blob);
	free(r->in);
	free(r->out);
	free(r);
	*rp = NULL;
}

/* Frees a list of messages read ahead (their files are closed). */
static void
pop3_ahead_free(struct pop3_retr **list)
{
	struct pop3_retr *r;

	while ((r = *list) != NULL) {
		*list = r->next;
		pop3_retr_free(&r);
	}
}

/* Blocking. Reads and dot-stuffs r's next chunk; failures are logged
 * unless quiet. */
static void
pop3_retr_step(struct pop3_maildrop *md, struct pop3_retr *r, const char *id, int quiet)
{
	const char *error;
	size_t used;
	ssize_t n;

	r->outlen = 0;
	if (r->blob == NULL &&
	    store_blob_open_guid(md->acct, md->mailbox_id, r->uid, md->msgs[r->msg].guid,
	    &r->blob, &error) < 0) {
		r->error = store_error_code();
		r->failed = 1;
		if (r->error != STORE_ERR_NOT_FOUND && !quiet)
			log_warn(id, "event=pop3-read-failed uid=%" PRIu32 " reason=\"%s\"",
			    r->uid, error);
		return;
	}
	n = store_blob_read(r->blob, r->offset, r->in, r->chunk);
	if (n < 0) {
		r->error = STORE_ERR_TEMP;
		r->failed = 1;
		if (!quiet)
			log_warn(id, "event=pop3-read-failed uid=%" PRIu32 " offset=%" PRIu64,
			    r->uid, r->offset);
		store_blob_close(&r->blob);
		return;
	}
	r->offset += (uint64_t)n;
	r->outlen = r->headlen + pop3_dot_encode(&r->dot, r->in, (size_t)n,
	    r->out + r->headlen, &used);
	/* Known to be the end without another read: one job for a message
	 * that fits a chunk. */
	if (n == 0 || r->dot.done || r->offset >= store_blob_size(r->blob)) {
		r->outlen += pop3_dot_finish(&r->dot, r->out + r->outlen);
		r->eof = 1;
		store_blob_close(&r->blob);
	}
}

/* Blocking. After RETR of message i: the messages after it that each fit
 * one chunk, POP3_AHEAD_MAX octets at most, read whole (clients download
 * in order, and RETR sends these without a job). Stops at the first one
 * that does not fit or cannot be read; its RETR reports that. */
static void
pop3_read_ahead(struct pop3_job *job, size_t i)
{
	struct pop3_maildrop *md = job->md;
	struct pop3_retr *r, **tail = &job->ahead;
	uint64_t budget = POP3_AHEAD_MAX;

	/* Taken first: a change committed while the files are read makes
	 * RETR drop them (an expunge by another session, say). */
	job->ahead_changes = atomic_load(&md->changes);
	for (i++; i < md->count; i++) {
		if (md->msgs[i].deleted)
			continue;
		if (md->msgs[i].size >= POP3_CHUNK || md->msgs[i].size > budget)
			break;
		r = pop3_retr_new(i, md->msgs[i].uid, md->msgs[i].size, 0, 0);
		pop3_retr_step(md, r, job->id, 1);
		if (r->failed || !r->eof) {
			pop3_retr_free(&r);
			break;
		}
		free(r->in);
		r->in = NULL;
		budget -= md->msgs[i].size;
		*tail = r;
		tail = &r->next;
	}
}

/* Worker: reads and dot-stuffs the next chunk; at the end of a RETR, reads
 * the next messages ahead. */
static void
pop3_read_work(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_retr *r = job->retr;

	pop3_retr_step(job->md, r, job->id, 0);
	if (r->eof && !r->failed && !r->top)
		pop3_read_ahead(job, r->msg);
}

static void pop3_read_done(void *arg);

static void
pop3_read_next(struct pop3_session *s)
{
	struct pop3_job *job = pop3_job_new(s, POP3_JOB_READ);

	job->md = s->md;
	job->retr = s->retr;
	pop3_job_submit(s, job, pop3_read_work, pop3_read_done);
}

static void
pop3_read_done(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;
	struct pop3_retr *r = job->retr;

	if (s == NULL) {
		/* The client left mid-message. Rare: what the session had is
		 * closed here, on the loop, rather than queued to a worker pool
		 * that may be stopping. */
		pop3_ahead_free(&job->ahead);
		pop3_retr_free(&job->retr);
		pop3_maildrop_free(&job->md);
		pop3_job_free(&job);
		return;
	}
	s->job = NULL;
	if (job->ahead != NULL) {
		pop3_ahead_free(&s->ahead);
		s->ahead = job->ahead;
		s->ahead_changes = job->ahead_changes;
	}
	pop3_job_free(&job);
	if (r->failed) {
		s->retr = NULL;
		if (r->started) {
			/* Half a message is out: the client must not take it
			 * for a whole one. */
			pop3_retr_free(&r);
			s->busy = 0;
			pop3_close(s, NULL);
			return;
		}
		if (r->error == STORE_ERR_NOT_FOUND)
			pop3_reply(s, "-ERR Message was deleted by another session");
		else
			pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the message, try again later");
		pop3_retr_free(&r);
		pop3_command_done(s);
		return;
	}
	/* The "+OK" line is in out before the first chunk. */
	net_conn_write(s->conn, r->out, r->outlen);
	r->started = 1;
	r->headlen = 0;
	if (r->eof) {
		if (!r->top)
			s->md->msgs[r->msg].retrieved = 1;
		s->retr = NULL;
		pop3_retr_free(&r);
		pop3_command_done(s);
		return;
	}
	/* Read ahead while the client keeps up; otherwise wait for it. */
	if (net_conn_output_pending(s->conn) < POP3_OUTPUT_LOWAT)
		pop3_read_next(s);
	else
		net_conn_notify_drained(s->conn);
}

void
pop3_transaction_drained(struct pop3_session *s)
{
	if (s->retr != NULL && s->job == NULL && !s->closing)
		pop3_read_next(s);
}

int
pop3_transaction_streaming(const struct pop3_session *s)
{
	return s->retr != NULL && s->retr->started;
}

/* --- login and logout ------------------------------------------------------ */

static void
pop3_open_work(void *arg)
{
	struct pop3_job *job = arg;

	job->status = pop3_maildrop_open(job->store, job->dir, job->account_id, job->id,
	    &job->md, &job->error);
}

static void
pop3_open_done(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;

	if (s == NULL) {
		pop3_maildrop_free(&job->md);
		pop3_job_free(&job);
		return;
	}
	s->job = NULL;
	s->busy = 0;
	switch (job->status) {
	case POP3_MAILDROP_OK:
		s->md = job->md;
		s->state = POP3_TRANSACTION;
		log_info(job->id, "event=pop3-maildrop user=%s messages=%zu octets=%" PRIu64,
		    s->user, s->md->count, s->md->size);
		net_conn_printf(s->conn, "+OK Logged in, %zu messages (%" PRIu64 " octets)\r\n",
		    s->md->count, s->md->size);
		break;
	case POP3_MAILDROP_IN_USE:
		net_conn_printf(s->conn, "-ERR [IN-USE] %s\r\n", job->error);
		break;
	case POP3_MAILDROP_TEMP:
		net_conn_printf(s->conn, "-ERR [SYS/TEMP] %s\r\n", job->error);
		break;
	}
	pop3_job_free(&job);
	if (s->md == NULL) {
		/* RFC 1939 section 4: back to AUTHORIZATION. */
		xfree(&s->user);
		s->state = POP3_AUTHORIZATION;
	}
	pop3_authorization_next(s);
}

void
pop3_transaction_begin(struct pop3_session *s)
{
	struct pop3_job *job;

	if (s->ctx->store == NULL) {
		xfree(&s->user);
		s->state = POP3_AUTHORIZATION;
		pop3_reply(s, "-ERR [SYS/TEMP] Mailbox access is not available, try again later");
		pop3_authorization_next(s);
		return;
	}
	job = pop3_job_new(s, POP3_JOB_OPEN);
	job->store = s->ctx->store;
	job->dir = s->ctx->dir;
	job->account_id = s->account_id;
	s->state = POP3_WAITING;
	pop3_job_submit(s, job, pop3_open_work, pop3_open_done);
}

static void
pop3_update_work(void *arg)
{
	struct pop3_job *job = arg;

	job->result = pop3_maildrop_update(job->md, job->id, &job->error);
	/* Unlocked before the reply: a client that logs in again right after
	 * QUIT finds the maildrop free. */
	pop3_maildrop_free(&job->md);
}

static void
pop3_update_done(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;
	char line[160];

	if (s != NULL) {
		s->job = NULL;
		s->busy = 0;
		if (job->result == 0) {
			pop3_close(s, "+OK Bye");
		} else {
			snprintf(line, sizeof(line), "-ERR [SYS/TEMP] %s", job->error);
			pop3_close(s, line);
		}
	}
	pop3_job_free(&job);
}

void
pop3_cmd_update(struct pop3_session *s)
{
	struct pop3_job *job = pop3_job_new(s, POP3_JOB_UPDATE);

	/* The UPDATE state (RFC 1939 section 6). */
	pop3_ahead_free(&s->ahead);
	job->md = s->md;
	s->md = NULL;
	pop3_job_submit(s, job, pop3_update_work, pop3_update_done);
}

static void
pop3_release_work(void *arg)
{
	struct pop3_job *job = arg;

	pop3_retr_free(&job->retr);
	pop3_maildrop_free(&job->md);
	pop3_job_free(&job);
}

void
pop3_transaction_end(struct pop3_session *s)
{
	struct pop3_job *job;

	pop3_ahead_free(&s->ahead);
	if (s->job != NULL) {
		/* The job in flight takes over what the session had. */
		s->job->s = NULL;
		if (s->job->kind == POP3_JOB_READ) {
			s->job->md = s->md;
			s->job->retr = s->retr;
		}
		s->job = NULL;
		s->md = NULL;
		s->retr = NULL;
		return;
	}
	if (s->md == NULL && s->retr == NULL)
		return;
	/* Nothing changes: a dropped connection deletes nothing (RFC 1939
	 * section 6). Another session may take the maildrop at once; closing
	 * the account may block, so a worker does it. */
	pop3_maildrop_unlock(s->md);
	job = pop3_job_new(s, POP3_JOB_RELEASE);
	job->md = s->md;
	job->retr = s->retr;
	job->s = NULL;
	s->md = NULL;
	s->retr = NULL;
	net_loop_submit(net_conn_loop(s->conn), pop3_release_work, NULL, job);
}

/* --- commands ------------------------------------------------------------- */

/* A message number argument; NULL (and the reply sent) when there is no
 * such message or it is marked deleted. */
static struct pop3_msg *
pop3_msg_arg(struct pop3_session *s, const char *arg, size_t *index_r)
{
	struct pop3_maildrop *md = s->md;
	size_t i;
	uint32_t n;

	if (arg[0] == '\0' || strspn(arg, "0123456789") != strlen(arg)) {
		pop3_error(s, "-ERR Invalid message number");
		return NULL;
	}
	if ((n = pop3_parse_msgno(arg, md->count)) == 0) {
		pop3_reply(s, "-ERR No such message");
		return NULL;
	}
	i = n - 1;
	if (md->msgs[i].deleted) {
		pop3_reply(s, "-ERR Message is deleted");
		return NULL;
	}
	*index_r = i;
	return &md->msgs[i];
}

void
pop3_cmd_stat(struct pop3_session *s, char *args)
{
	struct pop3_maildrop *md = s->md;

	if (*args != '\0') {
		pop3_error(s, "-ERR Syntax: STAT");
		return;
	}
	net_conn_printf(s->conn, "+OK %zu %" PRIu64 "\r\n", md->count - md->ndeleted,
	    md->size - md->deleted_size);
}

void
pop3_cmd_list(struct pop3_session *s, char *args)
{
	struct pop3_maildrop *md = s->md;
	struct pop3_msg *m;
	size_t i;

	if (*args != '\0') {
		if ((m = pop3_msg_arg(s, args, &i)) != NULL)
			net_conn_printf(s->conn, "+OK %zu %" PRIu64 "\r\n", i + 1, m->size);
		return;
	}
	net_conn_printf(s->conn, "+OK %zu messages (%" PRIu64 " octets)\r\n",
	    md->count - md->ndeleted, md->size - md->deleted_size);
	for (i = 0; i < md->count; i++) {
		if (!md->msgs[i].deleted)
			net_conn_printf(s->conn, "%zu %" PRIu64 "\r\n", i + 1, md->msgs[i].size);
	}
	pop3_reply(s, ".");
}

void
pop3_cmd_uidl(struct pop3_session *s, char *args)
{
	struct pop3_maildrop *md = s->md;
	char uidl[POP3_UIDL_SIZE];
	size_t i;

	if (*args != '\0') {
		if (pop3_msg_arg(s, args, &i) != NULL) {
			pop3_maildrop_uidl(md, i, uidl);
			net_conn_printf(s->conn, "+OK %zu %s\r\n", i + 1, uidl);
		}
		return;
	}
	pop3_reply(s, "+OK Unique-ID listing follows");
	for (i = 0; i < md->count; i++) {
		if (!md->msgs[i].deleted) {
			pop3_maildrop_uidl(md, i, uidl);
			net_conn_printf(s->conn, "%zu %s\r\n", i + 1, uidl);
		}
	}
	pop3_reply(s, ".");
}

static void
pop3_send(struct pop3_session *s, size_t i, int top, uint64_t lines)
{
	s->retr = pop3_retr_new(i, s->md->msgs[i].uid, s->md->msgs[i].size, top, lines);
	pop3_read_next(s);
}

/* RETR of message i when it is the next one read ahead and INBOX has not
 * changed since: sent at once. Otherwise what was read ahead goes. */
static int
pop3_ahead_send(struct pop3_session *s, size_t i)
{
	struct pop3_retr *r = s->ahead;

	if (r == NULL)
		return 0;
	if (r->msg != i || atomic_load(&s->md->changes) != s->ahead_changes) {
		pop3_ahead_free(&s->ahead);
		return 0;
	}
	s->ahead = r->next;
	net_conn_write(s->conn, r->out, r->outlen);
	s->md->msgs[i].retrieved = 1;
	pop3_retr_free(&r);
	return 1;
}

void
pop3_cmd_retr(struct pop3_session *s, char *args)
{
	size_t i;

	if (*args == '\0' || strchr(args, ' ') != NULL) {
		pop3_error(s, "-ERR Syntax: RETR message");
		return;
	}
	if (pop3_msg_arg(s, args, &i) != NULL && !pop3_ahead_send(s, i))
		pop3_send(s, i, 0, 0);
}

void
pop3_cmd_top(struct pop3_session *s, char *args)
{
	char *lines_arg;
	uint64_t lines;
	size_t i;

	lines_arg = strchr(args, ' ');
	if (lines_arg == NULL || strchr(lines_arg + 1, ' ') != NULL) {
		pop3_error(s, "-ERR Syntax: TOP message lines");
		return;
	}
	*lines_arg++ = '\0';
	if (pop3_parse_lines(lines_arg, &lines) < 0) {
		pop3_error(s, "-ERR Invalid number of lines");
		return;
	}
	if (pop3_msg_arg(s, args, &i) != NULL)
		pop3_send(s, i, 1, lines);
}

void
pop3_cmd_dele(struct pop3_session *s, char *args)
{
	size_t i;

	if (*args == '\0' || strchr(args, ' ') != NULL) {
		pop3_error(s, "-ERR Syntax: DELE message");
		return;
	}
	if (pop3_msg_arg(s, args, &i) == NULL)
		return;
	pop3_maildrop_delete(s->md, i);
	net_conn_printf(s->conn, "+OK Message %zu deleted\r\n", i + 1);
}

void
pop3_cmd_rset(struct pop3_session *s, char *args)
{
	struct pop3_maildrop *md = s->md;

	if (*args != '\0') {
		pop3_error(s, "-ERR Syntax: RSET");
		return;
	}
	pop3_maildrop_reset(md);
	net_conn_printf(s->conn, "+OK %zu messages (%" PRIu64 " octets)\r\n", md->count,
	    md->size);
}
