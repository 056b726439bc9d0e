/*
 * Changes made by other processes (the CLI importing mail, creating or
 * renaming mailboxes) reach the daemon's sessions.
 *
 * Notifications (store_notify) are in-process: an IMAP session in IDLE
 * would not hear of a message another process added until its client
 * sent a command. So a process that writes to accounts while the daemon
 * may be running (store_signal_others) leaves a file named after each
 * account it changed in DATA/notify/ (at most every STORE_SIGNAL_MS per
 * account while it goes on, and once more at store_close); the daemon
 * (store_watch_others) watches that directory with inotify, removes each
 * file and calls every watch of that account, whose sessions then catch up
 * from the index as after any other change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store_backend.h"
#include "store/store_internal.h"

#define STORE_NOTIFY_DIR "notify"
#define STORE_SIGNAL_MS 500

struct signal_mark {
	int64_t account_id;
	uint64_t last_ms;          /* 0: a change not signalled yet */
	int pending;
};

struct store_others {
	/* Signalling side (another process writing). */
	pthread_mutex_t lock;
	int dir_fd;
	int signalling;
	struct signal_mark *marks;
	size_t nmarks;
	/* Watching side (the daemon). */
	int inotify_fd;
	int quit_pipe[2];
	pthread_t thread;
	int watching;
};

/* DATA/notify (made if missing and create); -1 with errno set on failure. */
static int
notify_dir_open(const char *path, int create)
{
	if (create && mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static struct store_others *
others_get(struct store *store)
{
	if (store->others == NULL) {
		store->others = xcalloc(1, sizeof(*store->others));
		pthread_mutex_init(&store->others->lock, NULL);
		store->others->dir_fd = -1;
		store->others->inotify_fd = -1;
		store->others->quit_pipe[0] = store->others->quit_pipe[1] = -1;
	}
	return store->others;
}

int
store_signal_others(struct store *store, const char *data_dir, const char **error_r)
{
	struct store_others *o = others_get(store);
	char *path = xasprintf("%s/%s", data_dir, STORE_NOTIFY_DIR);
	int rc = 0;

	/* The daemon makes it (as its own user) when it starts: until then
	 * there is nobody to tell. */
	if ((o->dir_fd = notify_dir_open(path, 0)) >= 0)
		o->signalling = 1;
	else if (errno != ENOENT)
		rc = store_fail(STORE_ERR_TEMP, error_r, "cannot open %s: %s", path,
		    strerror(errno));
	free(path);
	return rc;
}

static void
signal_write(struct store_others *o, int64_t account_id)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "%lld", (long long)account_id);
	fd = openat(o->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0) {
		log_warn(NULL, "event=store-signal-failed account=%lld reason=\"%s\"",
		    (long long)account_id, strerror(errno));
		return;
	}
	close(fd);
}

void
store_others_changed(struct store *store, int64_t account_id)
{
	struct store_others *o = store->others;
	struct signal_mark *m = NULL;
	uint64_t now;
	size_t i;
	int write_now = 0;

	if (o == NULL || !o->signalling)
		return;
	now = store_now_ms();
	pthread_mutex_lock(&o->lock);
	for (i = 0; i < o->nmarks; i++)
		if (o->marks[i].account_id == account_id)
			m = &o->marks[i];
	if (m == NULL) {
		o->marks = xreallocarray(o->marks, o->nmarks + 1, sizeof(*o->marks));
		m = &o->marks[o->nmarks++];
		memset(m, 0, sizeof(*m));
		m->account_id = account_id;
	}
	if (m->last_ms == 0 || now - m->last_ms >= STORE_SIGNAL_MS) {
		m->last_ms = now;
		m->pending = 0;
		write_now = 1;
	} else
		m->pending = 1;
	pthread_mutex_unlock(&o->lock);
	if (write_now)
		signal_write(o, account_id);
}

/* The daemon's side: one file per changed account. */
static void
watch_file(struct store *store, const char *name)
{
	struct store_others *o = store->others;
	char *end;
	long long id;

	errno = 0;
	id = strtoll(name, &end, 10);
	if (errno != 0 || *end != '\0' || id <= 0)
		return;
	/* Removed first: a change signalled meanwhile makes a new file. */
	if (unlinkat(o->dir_fd, name, 0) < 0 && errno != ENOENT)
		return;
	store_notify_all(store, (int64_t)id);
}

/* Every file in the directory: at start (no session to tell: removed), or
 * after the kernel's event queue overflowed (each one handled). */
static void
watch_scan(struct store *store, int handle)
{
	struct store_others *o = store->others;
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(o->dir_fd)) < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (handle)
			watch_file(store, de->d_name);
		else
			(void)unlinkat(o->dir_fd, de->d_name, 0);
	}
	closedir(d);
}

static void *
watch_main(void *arg)
{
	struct store *store = arg;
	struct store_others *o = store->others;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd pfd[2];
	const struct inotify_event *ev;
	ssize_t n;
	char *p;

	pfd[0].fd = o->inotify_fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = o->quit_pipe[0];
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents != 0)
			break;
		n = read(o->inotify_fd, buf, sizeof(buf));
		if (n <= 0)
			continue;
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				watch_scan(store, 1);
			else if (ev->len > 0)
				watch_file(store, ev->name);
		}
	}
	return NULL;
}

int
store_watch_others(struct store *store, const char *data_dir, const char **error_r)
{
	struct store_others *o = others_get(store);
	char *path = xasprintf("%s/%s", data_dir, STORE_NOTIFY_DIR);
	int rc;

	if ((o->dir_fd = notify_dir_open(path, 1)) < 0) {
		rc = store_fail(STORE_ERR_TEMP, error_r, "cannot open %s: %s", path,
		    strerror(errno));
		free(path);
		return rc;
	}
	o->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	rc = o->inotify_fd < 0 || pipe2(o->quit_pipe, O_CLOEXEC) < 0 ? -1 :
	    inotify_add_watch(o->inotify_fd, path, IN_CLOSE_WRITE | IN_MOVED_TO);
	free(path);
	if (rc < 0)
		return store_fail(STORE_ERR_TEMP, error_r, "inotify: %s", strerror(errno));
	/* Left by processes that ran while the daemon did not: nobody to tell. */
	watch_scan(store, 0);
	if ((rc = pthread_create(&o->thread, NULL, watch_main, store)) != 0)
		return store_fail(STORE_ERR_TEMP, error_r, "pthread_create: %s", strerror(rc));
	o->watching = 1;
	return 0;
}

void
store_others_close(struct store *store)
{
	struct store_others *o = store->others;
	size_t i;
	char c = 'q';

	if (o == NULL)
		return;
	if (o->watching) {
		if (write(o->quit_pipe[1], &c, 1) < 0)
			log_warn(NULL, "event=store-watch-stop-failed reason=\"%s\"",
			    strerror(errno));
		pthread_join(o->thread, NULL);
	}
	/* The last changes of a signalling process, if not signalled yet. */
	if (o->signalling)
		for (i = 0; i < o->nmarks; i++)
			if (o->marks[i].pending)
				signal_write(o, o->marks[i].account_id);
	if (o->inotify_fd >= 0)
		close(o->inotify_fd);
	if (o->quit_pipe[0] >= 0) {
		close(o->quit_pipe[0]);
		close(o->quit_pipe[1]);
	}
	if (o->dir_fd >= 0)
		close(o->dir_fd);
	free(o->marks);
	pthread_mutex_destroy(&o->lock);
	free(o);
	store->others = NULL;
}
