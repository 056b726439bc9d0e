/*
 * The queue's front: argument checks, then the backend. Also the envelope
 * text format and xtext, which every backend that stores files shares.
 */
#include "queue/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/parse.h"
#include "core/xmalloc.h"
#include "queue/queue_backend.h"

struct queue {
	const struct queue_backend_ops *ops;
	struct queue_backend *be;
	char *req_dir;          /* DATA/queue/req: administrative requests */
	pthread_mutex_t hook_lock;
	queue_commit_fn *hook;
	void *hook_arg;
};

struct queue_writer {
	struct queue *q;
	const struct queue_backend_ops *ops;
	struct queue_backend_writer *bw;
};

int
queue_open(const char *data_dir, struct queue **q_r, char **error_r)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	q->ops = &queue_spool_ops;
	if (q->ops->open(data_dir, &q->be, error_r) < 0) {
		free(q);
		return -1;
	}
	q->req_dir = xasprintf("%s/queue/req", data_dir);
	if (mkdir(q->req_dir, 0700) < 0 && errno != EEXIST) {
		*error_r = xasprintf("%s: %s", q->req_dir, strerror(errno));
		q->ops->close(q->be);
		free(q->req_dir);
		free(q);
		return -1;
	}
	pthread_mutex_init(&q->hook_lock, NULL);
	*q_r = q;
	return 0;
}

void
queue_close(struct queue **qp)
{
	struct queue *q = *qp;

	if (q == NULL)
		return;
	q->ops->close(q->be);
	pthread_mutex_destroy(&q->hook_lock);
	free(q->req_dir);
	free(q);
	*qp = NULL;
}

int
queue_writer_new(struct queue *q, struct queue_writer **w_r, const char **error_r)
{
	struct queue_writer *w = xcalloc(1, sizeof(*w));

	w->q = q;
	w->ops = q->ops;
	if (q->ops->writer_new(q->be, &w->bw, error_r) < 0) {
		free(w);
		return -1;
	}
	*w_r = w;
	return 0;
}

int
queue_writer_write(struct queue_writer *w, const void *data, size_t len, const char **error_r)
{
	return w->ops->writer_write(w->bw, data, len, error_r);
}

uint64_t
queue_writer_size(const struct queue_writer *w)
{
	return w->ops->writer_size(w->bw);
}

int
queue_writer_commit(struct queue_writer *w, struct queue_envelope *env, const char **error_r)
{
	if (env->nrcpts == 0 || env->nrcpts > QUEUE_RCPTS_MAX || env->sender == NULL) {
		*error_r = "invalid envelope";
		return -1;
	}
	if (w->ops->writer_commit(w->bw, env, error_r) < 0)
		return -1;
	pthread_mutex_lock(&w->q->hook_lock);
	if (w->q->hook != NULL)
		w->q->hook(w->q->hook_arg, env);
	pthread_mutex_unlock(&w->q->hook_lock);
	return 0;
}

void
queue_set_commit_hook(struct queue *q, queue_commit_fn *fn, void *arg)
{
	pthread_mutex_lock(&q->hook_lock);
	q->hook = fn;
	q->hook_arg = arg;
	pthread_mutex_unlock(&q->hook_lock);
}

void
queue_writer_free(struct queue_writer **wp)
{
	struct queue_writer *w = *wp;

	if (w == NULL)
		return;
	w->ops->writer_free(w->bw);
	free(w);
	*wp = NULL;
}

int
queue_list(struct queue *q, struct queue_envelope **list_r, size_t *count_r,
    const char **error_r)
{
	return q->ops->list(q->be, list_r, count_r, error_r);
}

int
queue_get(struct queue *q, const char *id, struct queue_envelope *env_r, const char **error_r)
{
	if (!queue_id_valid(id))
		return 0;
	return q->ops->get(q->be, id, env_r, error_r);
}

int
queue_update(struct queue *q, const struct queue_envelope *env, const char **error_r)
{
	if (!queue_id_valid(env->id) || env->nrcpts == 0 || env->nrcpts > QUEUE_RCPTS_MAX) {
		*error_r = "invalid envelope";
		return -1;
	}
	return q->ops->update(q->be, env, error_r);
}

int
queue_message_open(struct queue *q, const char *id, const char **error_r)
{
	if (!queue_id_valid(id)) {
		*error_r = "invalid queue id";
		return -1;
	}
	return q->ops->message_open(q->be, id, error_r);
}

int
queue_remove(struct queue *q, const char *id, const char **error_r)
{
	if (!queue_id_valid(id))
		return 0;
	return q->ops->remove(q->be, id, error_r);
}

void
queue_envelope_clear(struct queue_envelope *env)
{
	size_t i;

	free(env->sender);
	free(env->envid);
	for (i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].address);
		free(env->rcpts[i].orcpt);
		free(env->rcpts[i].last_reply);
		free(env->rcpts[i].remote_mta);
	}
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

void
queue_envelope_copy(struct queue_envelope *dst, const struct queue_envelope *src)
{
	size_t i;

	*dst = *src;
	dst->sender = xstrdup(src->sender);
	dst->envid = src->envid != NULL ? xstrdup(src->envid) : NULL;
	dst->rcpts = xcalloc(src->nrcpts > 0 ? src->nrcpts : 1, sizeof(*dst->rcpts));
	for (i = 0; i < src->nrcpts; i++) {
		const struct queue_rcpt *s = &src->rcpts[i];
		struct queue_rcpt *d = &dst->rcpts[i];

		*d = *s;
		d->address = xstrdup(s->address);
		d->orcpt = s->orcpt != NULL ? xstrdup(s->orcpt) : NULL;
		d->last_reply = s->last_reply != NULL ? xstrdup(s->last_reply) : NULL;
		d->remote_mta = s->remote_mta != NULL ? xstrdup(s->remote_mta) : NULL;
	}
}

void
queue_envelopes_free(struct queue_envelope **list, size_t count)
{
	size_t i;

	if (*list == NULL)
		return;
	for (i = 0; i < count; i++)
		queue_envelope_clear(&(*list)[i]);
	free(*list);
	*list = NULL;
}

int
queue_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z')))
			return 0;
	return i == QUEUE_ID_SIZE - 1;
}

/* --- xtext ------------------------------------------------------------- */

void
queue_xtext_encode(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < '!' || c > '~' || c == '+' || c == '=')
			buf_printf(out, "+%02X", c);
		else
			buf_putc(out, (char)c);
	}
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
queue_xtext_decode(const char *s)
{
	struct buf out = BUF_INIT;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '+') {
			int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			buf_putc(&out, (char)(hi * 16 + lo));
			s += 2;
		} else if (c < '!' || c > '~' || c == '=') {
			goto bad;
		} else {
			buf_putc(&out, (char)c);
		}
	}
	return out.data != NULL ? buf_steal(&out) : xstrdup("");
bad:
	buf_free(&out);
	return NULL;
}

/* --- envelope files ---------------------------------------------------- */

/*
 * One field per line, "key value"; values that could hold any byte are
 * xtext. A recipient is one line of key=value pairs:
 *
 *   petrel-queue 1
 *   id 0a1b2c3d4e5f
 *   arrival 1700000000
 *   size 4096
 *   sender user+40x@example.org     (xtext; "sender" alone: <>)
 *   envid ABC                       (optional)
 *   ret hdrs                        (optional)
 *   body 8bitmime
 *   smtputf8 0
 *   requiretls 0
 *   hold 1                          (optional)
 *   rcpt to=b@example.net state=pending attempts=0 next=0 notify=24 orcpt=rfc822;b@example.net
 *        (and, once tried: reply=... mta=... delayed=1)
 *   end
 *
 * "end" makes a truncated file detectable.
 */

static const char *const ret_names[] = { "none", "full", "hdrs" };
static const char *const body_names[] = { "7bit", "8bitmime", "binarymime" };
static const char *const state_names[] = { "pending", "delivered", "failed", "deferred" };

void
queue_envelope_format(struct buf *out, const struct queue_envelope *env)
{
	size_t i;

	buf_printf(out, "petrel-queue 1\nid %s\narrival %" PRId64 "\nsize %" PRIu64 "\nsender ",
	    env->id, env->arrival, env->size);
	queue_xtext_encode(out, env->sender);
	buf_putc(out, '\n');
	if (env->envid != NULL) {
		buf_puts(out, "envid ");
		queue_xtext_encode(out, env->envid);
		buf_putc(out, '\n');
	}
	buf_printf(out, "ret %s\nbody %s\nsmtputf8 %d\nrequiretls %d\n", ret_names[env->ret],
	    body_names[env->body], env->smtputf8 ? 1 : 0, env->requiretls ? 1 : 0);
	if (env->hold)
		buf_puts(out, "hold 1\n");
	for (i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];

		buf_puts(out, "rcpt to=");
		queue_xtext_encode(out, r->address);
		buf_printf(out, " state=%s attempts=%u next=%" PRId64 " notify=%u",
		    state_names[r->state], r->attempts, r->next_attempt, r->notify);
		if (r->orcpt != NULL) {
			buf_puts(out, " orcpt=");
			queue_xtext_encode(out, r->orcpt);
		}
		if (r->last_reply != NULL) {
			buf_puts(out, " reply=");
			queue_xtext_encode(out, r->last_reply);
		}
		if (r->remote_mta != NULL) {
			buf_puts(out, " mta=");
			queue_xtext_encode(out, r->remote_mta);
		}
		if (r->delayed)
			buf_puts(out, " delayed=1");
		buf_putc(out, '\n');
	}
	buf_puts(out, "end\n");
}

static int
name_index(const char *const *names, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static int
envelope_rcpt(char *val, struct queue_envelope *env)
{
	struct queue_rcpt r;
	char *tok, *save = NULL;
	long long n;
	int idx;

	if (env->nrcpts >= QUEUE_RCPTS_MAX)
		return -1;
	memset(&r, 0, sizeof(r));
	for (tok = strtok_r(val, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		char **dst = NULL;

		if (eq == NULL)
			goto bad;
		*eq++ = '\0';
		if (strcmp(tok, "to") == 0) {
			dst = &r.address;
		} else if (strcmp(tok, "orcpt") == 0) {
			dst = &r.orcpt;
		} else if (strcmp(tok, "reply") == 0) {
			dst = &r.last_reply;
		} else if (strcmp(tok, "mta") == 0) {
			dst = &r.remote_mta;
		} else if (strcmp(tok, "delayed") == 0) {
			r.delayed = strcmp(eq, "1") == 0;
		} else if (strcmp(tok, "state") == 0) {
			if ((idx = name_index(state_names, 4, eq)) < 0)
				goto bad;
			r.state = (enum queue_rcpt_state)idx;
		} else if (strcmp(tok, "attempts") == 0) {
			if (parse_int(eq, 0, UINT32_MAX, &n) < 0)
				goto bad;
			r.attempts = (unsigned)n;
		} else if (strcmp(tok, "next") == 0) {
			if (parse_int(eq, 0, INT64_MAX, &n) < 0)
				goto bad;
			r.next_attempt = n;
		} else if (strcmp(tok, "notify") == 0) {
			if (parse_int(eq, 0, 15, &n) < 0)
				goto bad;
			r.notify = (unsigned)n;
		}	/* unknown keys: from a newer version, ignored */
		if (dst != NULL) {
			free(*dst);
			if ((*dst = queue_xtext_decode(eq)) == NULL)
				goto bad;
		}
	}
	if (r.address == NULL || *r.address == '\0')
		goto bad;
	env->rcpts = xreallocarray(env->rcpts, env->nrcpts + 1, sizeof(*env->rcpts));
	env->rcpts[env->nrcpts++] = r;
	return 0;
bad:
	free(r.address);
	free(r.orcpt);
	free(r.last_reply);
	free(r.remote_mta);
	return -1;
}

int
queue_envelope_parse(const char *text, size_t len, struct queue_envelope *env)
{
	char *copy = xstrndup(text, len), *line, *save = NULL;
	int seen_end = 0, first = 1;
	long long n;

	memset(env, 0, sizeof(*env));
	if (strlen(copy) != len)
		goto bad;
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *val = strchr(line, ' ');
		int idx;

		if (seen_end)
			goto bad;
		if (val != NULL)
			*val++ = '\0';
		else
			val = line + strlen(line);
		if (first) {
			if (strcmp(line, "petrel-queue") != 0 || strcmp(val, "1") != 0)
				goto bad;
			first = 0;
		} else if (strcmp(line, "id") == 0) {
			if (!queue_id_valid(val))
				goto bad;
			memcpy(env->id, val, QUEUE_ID_SIZE);
		} else if (strcmp(line, "arrival") == 0) {
			if (parse_int(val, 0, INT64_MAX, &n) < 0)
				goto bad;
			env->arrival = n;
		} else if (strcmp(line, "size") == 0) {
			if (parse_int(val, 0, INT64_MAX, &n) < 0)
				goto bad;
			env->size = (uint64_t)n;
		} else if (strcmp(line, "sender") == 0) {
			free(env->sender);
			if ((env->sender = queue_xtext_decode(val)) == NULL)
				goto bad;
		} else if (strcmp(line, "envid") == 0) {
			free(env->envid);
			if ((env->envid = queue_xtext_decode(val)) == NULL)
				goto bad;
		} else if (strcmp(line, "ret") == 0) {
			if ((idx = name_index(ret_names, 3, val)) < 0)
				goto bad;
			env->ret = (enum queue_ret)idx;
		} else if (strcmp(line, "body") == 0) {
			if ((idx = name_index(body_names, 3, val)) < 0)
				goto bad;
			env->body = (enum queue_body)idx;
		} else if (strcmp(line, "smtputf8") == 0) {
			env->smtputf8 = strcmp(val, "1") == 0;
		} else if (strcmp(line, "requiretls") == 0) {
			env->requiretls = strcmp(val, "1") == 0;
		} else if (strcmp(line, "hold") == 0) {
			env->hold = strcmp(val, "1") == 0;
		} else if (strcmp(line, "rcpt") == 0) {
			if (envelope_rcpt(val, env) < 0)
				goto bad;
		} else if (strcmp(line, "end") == 0) {
			seen_end = 1;
		}
	}
	if (!seen_end || env->id[0] == '\0' || env->sender == NULL || env->nrcpts == 0)
		goto bad;
	free(copy);
	return 0;
bad:
	free(copy);
	queue_envelope_clear(env);
	return -1;
}

/* --- administrative requests -------------------------------------------- */

/*
 * One file per request in DATA/queue/req, named <time>.<random> so that
 * names sort by age, holding "verb id\n". Written to a temporary name and
 * renamed, so the daemon never reads half a request.
 */

static int
verb_valid(const char *verb)
{
	static const char *const verbs[] = { "flush", "hold", "release", "delete", "bounce" };
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i]) == 0)
			return 1;
	return 0;
}

int
queue_request_post(struct queue *q, const char *verb, const char *id, char *name_r,
    size_t name_size, const char **error_r)
{
	char rnd[LOG_ID_SIZE], tmp[96], *path, *tpath, line[64];
	int fd, n;

	if (!verb_valid(verb) || (id[0] != '\0' && !queue_id_valid(id))) {
		*error_r = "invalid request";
		return -1;
	}
	log_new_id(rnd);
	snprintf(name_r, name_size, "%014lld.%s", (long long)time(NULL), rnd);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name_r);
	n = snprintf(line, sizeof(line), "%s %s\n", verb, id);
	path = xasprintf("%s/%s", q->req_dir, name_r);
	tpath = xasprintf("%s/%s", q->req_dir, tmp);
	fd = open(tpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0 || close(fd) < 0 ||
	    rename(tpath, path) < 0) {
		*error_r = "cannot write a queue request";
		unlink(tpath);
		free(path);
		free(tpath);
		return -1;
	}
	free(path);
	free(tpath);
	return 0;
}

int
queue_request_pending(struct queue *q, const char *name)
{
	char *path = xasprintf("%s/%s", q->req_dir, name);
	int r = access(path, F_OK) == 0;

	free(path);
	return r;
}

int
queue_request_take(struct queue *q, char *verb, size_t verb_size, char *id, size_t id_size,
    const char **error_r)
{
	DIR *d = opendir(q->req_dir);
	struct dirent *de;
	char best[NAME_MAX + 1] = "", line[128], *path, *sp;
	ssize_t n;
	int fd;

	if (d == NULL) {
		*error_r = "cannot read the queue requests";
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (best[0] == '\0' || strcmp(de->d_name, best) < 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	closedir(d);
	if (best[0] == '\0')
		return 0;
	path = xasprintf("%s/%s", q->req_dir, best);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(path);
	verb[0] = id[0] = '\0';
	if (n <= 0)
		return 1;   /* gone or empty: an empty request */
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	sp = strchr(line, ' ');
	if (sp != NULL)
		*sp++ = '\0';
	if (!verb_valid(line) || (sp != NULL && *sp != '\0' && !queue_id_valid(sp)))
		return 1;
	snprintf(verb, verb_size, "%s", line);
	snprintf(id, id_size, "%s", sp != NULL ? sp : "");
	return 1;
}
