/*
 * The spool: the queue as files under DATA/queue/.
 *
 *   queue/tmp/       files being written (removed at open: never committed)
 *   queue/msg/<id>   message bytes, written once
 *   queue/env/<id>   the envelope (queue.c's text format); its rename is
 *                    the commit point, and queue_update replaces it the same
 *                    way
 *
 *   queue/lock       flock()ed: shared by every process that has the queue
 *                    open, exclusive while open removes leftovers
 *
 * A message file without an envelope is a commit that never finished (and
 * was never acknowledged): open removes it, with the files in tmp/, but only
 * when no other process has the queue open. The daemon, `petrel queue` and
 * a second daemon start all open it; the files of another process's commit
 * under way look exactly like a crash's leftovers, and removing them lost
 * that commit ("cannot store an envelope: No such file or directory", or an
 * envelope whose message file was gone). Writes follow the usual rule:
 * temporary file, write, fsync, rename, fsync the directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "queue/queue_backend.h"

struct queue_backend {
	char *root;             /* DATA/queue */
	int tmp_fd, msg_fd, env_fd;  /* the three directories */
	int lock_fd;            /* queue/lock, held shared while open */
};

struct queue_backend_writer {
	struct queue_backend *be;
	int fd;
	char tmp[64];           /* name in tmp/ */
	uint64_t size;
	int failed;
};

static __thread char spool_error[256];

static int
spool_fail(const char **error_r, const char *what, int err)
{
	snprintf(spool_error, sizeof(spool_error), "queue: %s: %s", what, strerror(err));
	log_error(NULL, "event=queue-error reason=\"%s\"", spool_error);
	*error_r = spool_error;
	return -1;
}

static int
open_dir(const char *path, int *fd_r, char **error_r)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if ((*fd_r = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Removes tmp/ files and message files that have no envelope. */
static void
spool_recover(struct queue_backend *be)
{
	DIR *d;
	struct dirent *de;
	struct stat st;
	int fd;

	if ((fd = dup(be->tmp_fd)) >= 0 && (d = fdopendir(fd)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				unlinkat(be->tmp_fd, de->d_name, 0);
		closedir(d);
	}
	if ((fd = dup(be->msg_fd)) >= 0 && (d = fdopendir(fd)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (fstatat(be->env_fd, de->d_name, &st, 0) < 0 && errno == ENOENT) {
				log_info(NULL, "event=queue-recover id=%.20s reason=\"no envelope\"",
				    de->d_name);
				unlinkat(be->msg_fd, de->d_name, 0);
			}
		}
		closedir(d);
	}
	fsync(be->tmp_fd);
	fsync(be->msg_fd);
}

/*
 * Takes queue/lock shared for as long as the queue is open, and removes
 * leftovers first when the exclusive lock can be had, i.e. when no other
 * process has the queue open. The exclusive lock then becomes the shared
 * one; flock() does that by dropping and taking again, so another process
 * may recover in between, which is safe: this one has written nothing yet,
 * and waits for the shared lock until that recovery is done.
 */
static int
spool_lock(struct queue_backend *be, char **error_r)
{
	char *path = xasprintf("%s/lock", be->root);
	int r;

	be->lock_fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	if (be->lock_fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	while ((r = flock(be->lock_fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
		;
	if (r == 0)
		spool_recover(be);
	else if (errno != EWOULDBLOCK)
		goto fail;
	else
		log_debug(NULL, "event=queue-shared reason=\"open elsewhere: leftovers kept\"");
	while ((r = flock(be->lock_fd, LOCK_SH)) < 0 && errno == EINTR)
		;
	if (r < 0)
		goto fail;
	return 0;
fail:
	*error_r = xasprintf("%s/lock: %s", be->root, strerror(errno));
	return -1;
}

static int
spool_open(const char *data_dir, struct queue_backend **be_r, char **error_r)
{
	struct queue_backend *be = xcalloc(1, sizeof(*be));
	char *path;
	int rc;

	be->tmp_fd = be->msg_fd = be->env_fd = be->lock_fd = -1;
	be->root = xasprintf("%s/queue", data_dir);
	if (open_dir(be->root, &rc, error_r) < 0)
		goto fail;
	close(rc);
	path = xasprintf("%s/tmp", be->root);
	rc = open_dir(path, &be->tmp_fd, error_r);
	free(path);
	if (rc < 0)
		goto fail;
	path = xasprintf("%s/msg", be->root);
	rc = open_dir(path, &be->msg_fd, error_r);
	free(path);
	if (rc < 0)
		goto fail;
	path = xasprintf("%s/env", be->root);
	rc = open_dir(path, &be->env_fd, error_r);
	free(path);
	if (rc < 0)
		goto fail;
	if (spool_lock(be, error_r) < 0)
		goto fail;
	*be_r = be;
	return 0;
fail:
	if (be->tmp_fd >= 0)
		close(be->tmp_fd);
	if (be->msg_fd >= 0)
		close(be->msg_fd);
	if (be->env_fd >= 0)
		close(be->env_fd);
	if (be->lock_fd >= 0)
		close(be->lock_fd);
	free(be->root);
	free(be);
	return -1;
}

static void
spool_close(struct queue_backend *be)
{
	close(be->tmp_fd);
	close(be->msg_fd);
	close(be->env_fd);
	close(be->lock_fd);     /* drops the shared lock */
	free(be->root);
	free(be);
}

static void
tmp_name(char *out, size_t size)
{
	char id[LOG_ID_SIZE];

	log_new_id(id);
	snprintf(out, size, "%s.%ld", id, (long)getpid());
}

static int
spool_writer_new(struct queue_backend *be, struct queue_backend_writer **w_r,
    const char **error_r)
{
	struct queue_backend_writer *w = xcalloc(1, sizeof(*w));

	w->be = be;
	tmp_name(w->tmp, sizeof(w->tmp));
	w->fd = openat(be->tmp_fd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		free(w);
		return spool_fail(error_r, "cannot create a message file", errno);
	}
	*w_r = w;
	return 0;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
spool_writer_write(struct queue_backend_writer *w, const void *data, size_t len,
    const char **error_r)
{
	if (w->failed) {
		*error_r = "queue: earlier write failed";
		return -1;
	}
	if (write_all(w->fd, data, len) < 0) {
		w->failed = 1;
		return spool_fail(error_r, "cannot write a message file", errno);
	}
	w->size += len;
	return 0;
}

static uint64_t
spool_writer_size(const struct queue_backend_writer *w)
{
	return w->size;
}

/* Writes env to tmp/, fsyncs it and renames it to env/<id>. */
static int
envelope_store(struct queue_backend *be, const struct queue_envelope *env,
    const char **error_r)
{
	struct buf text = BUF_INIT;
	char tmp[64];
	int fd, err;

	queue_envelope_format(&text, env);
	tmp_name(tmp, sizeof(tmp));
	fd = openat(be->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		buf_free(&text);
		return spool_fail(error_r, "cannot create an envelope", errno);
	}
	if (write_all(fd, text.data, text.len) < 0 || fsync(fd) < 0) {
		err = errno;
		close(fd);
		unlinkat(be->tmp_fd, tmp, 0);
		buf_free(&text);
		return spool_fail(error_r, "cannot write an envelope", err);
	}
	buf_free(&text);
	if (close(fd) < 0 || renameat(be->tmp_fd, tmp, be->env_fd, env->id) < 0) {
		err = errno;
		unlinkat(be->tmp_fd, tmp, 0);
		return spool_fail(error_r, "cannot store an envelope", err);
	}
	if (fsync(be->env_fd) < 0)
		return spool_fail(error_r, "cannot sync the envelope directory", errno);
	return 0;
}

static int
spool_writer_commit(struct queue_backend_writer *w, struct queue_envelope *env,
    const char **error_r)
{
	struct queue_backend *be = w->be;
	int tries, err;

	if (w->failed || w->fd < 0) {
		*error_r = "queue: message file unusable";
		return -1;
	}
	if (fsync(w->fd) < 0 || close(w->fd) < 0) {
		err = errno;
		w->fd = -1;
		w->failed = 1;
		return spool_fail(error_r, "cannot sync a message file", err);
	}
	w->fd = -1;
	for (tries = 0;; tries++) {
		log_new_id(env->id);
		if (renameat2(be->tmp_fd, w->tmp, be->msg_fd, env->id, RENAME_NOREPLACE) == 0)
			break;
		if (errno != EEXIST || tries == 5) {
			w->failed = 1;
			return spool_fail(error_r, "cannot store a message file", errno);
		}
	}
	w->tmp[0] = '\0';
	if (fsync(be->msg_fd) < 0) {
		err = errno;
		unlinkat(be->msg_fd, env->id, 0);
		w->failed = 1;
		return spool_fail(error_r, "cannot sync the message directory", err);
	}
	env->size = w->size;
	if (env->arrival == 0)
		env->arrival = (int64_t)time(NULL);
	if (envelope_store(be, env, error_r) < 0) {
		unlinkat(be->env_fd, env->id, 0);
		unlinkat(be->msg_fd, env->id, 0);
		w->failed = 1;
		return -1;
	}
	log_info(env->id, "event=queued from=<%.320s> rcpts=%zu size=%llu", env->sender,
	    env->nrcpts, (unsigned long long)env->size);
	return 0;
}

static void
spool_writer_free(struct queue_backend_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp[0] != '\0')
		unlinkat(w->be->tmp_fd, w->tmp, 0);
	free(w);
}

static int
read_file_at(int dirfd, const char *name, struct buf *out, int *err_r)
{
	char chunk[8192];
	ssize_t n;
	int fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)) < 0) {
		*err_r = errno;
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*err_r = errno;
			close(fd);
			return -1;
		}
		if (out->len + (size_t)n > QUEUE_ENVELOPE_MAX) {
			*err_r = EFBIG;
			close(fd);
			return -1;
		}
		buf_append(out, chunk, (size_t)n);
	}
	close(fd);
	return 0;
}

static int
spool_get(struct queue_backend *be, const char *id, struct queue_envelope *env_r,
    const char **error_r)
{
	struct buf text = BUF_INIT;
	int err = 0;

	if (read_file_at(be->env_fd, id, &text, &err) < 0) {
		buf_free(&text);
		if (err == ENOENT)
			return 0;
		return spool_fail(error_r, "cannot read an envelope", err);
	}
	if (queue_envelope_parse(buf_cstr(&text), text.len, env_r) < 0 ||
	    strcmp(env_r->id, id) != 0) {
		buf_free(&text);
		queue_envelope_clear(env_r);
		return spool_fail(error_r, "malformed envelope", EINVAL);
	}
	buf_free(&text);
	return 1;
}

static int
env_cmp(const void *a, const void *b)
{
	const struct queue_envelope *x = a, *y = b;

	if (x->arrival != y->arrival)
		return x->arrival < y->arrival ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int
spool_list(struct queue_backend *be, struct queue_envelope **list_r, size_t *count_r,
    const char **error_r)
{
	struct queue_envelope *list = NULL, env;
	size_t n = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(be->env_fd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return spool_fail(error_r, "cannot list the queue", errno);
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		if (spool_get(be, de->d_name, &env, error_r) != 1)
			continue;   /* removed meanwhile, or logged as malformed */
		list = xreallocarray(list, n + 1, sizeof(*list));
		list[n++] = env;
	}
	closedir(d);
	if (n > 1)
		qsort(list, n, sizeof(*list), env_cmp);
	*list_r = list;
	*count_r = n;
	return 0;
}

static int
spool_update(struct queue_backend *be, const struct queue_envelope *env, const char **error_r)
{
	struct stat st;

	if (fstatat(be->env_fd, env->id, &st, 0) < 0)
		return spool_fail(error_r, "no such queued message", errno);
	return envelope_store(be, env, error_r);
}

static int
spool_message_open(struct queue_backend *be, const char *id, const char **error_r)
{
	int fd = openat(be->msg_fd, id, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return spool_fail(error_r, "cannot open a queued message", errno);
	return fd;
}

static int
spool_remove(struct queue_backend *be, const char *id, const char **error_r)
{
	/* The envelope first: without it the message is no longer queued. */
	if (unlinkat(be->env_fd, id, 0) < 0 && errno != ENOENT)
		return spool_fail(error_r, "cannot remove an envelope", errno);
	if (fsync(be->env_fd) < 0)
		return spool_fail(error_r, "cannot sync the envelope directory", errno);
	if (unlinkat(be->msg_fd, id, 0) < 0 && errno != ENOENT)
		return spool_fail(error_r, "cannot remove a message file", errno);
	return 0;
}

const struct queue_backend_ops queue_spool_ops = {
	.name = "spool",
	.open = spool_open,
	.close = spool_close,
	.writer_new = spool_writer_new,
	.writer_write = spool_writer_write,
	.writer_size = spool_writer_size,
	.writer_commit = spool_writer_commit,
	.writer_free = spool_writer_free,
	.list = spool_list,
	.get = spool_get,
	.update = spool_update,
	.message_open = spool_message_open,
	.remove = spool_remove,
};
