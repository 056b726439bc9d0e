#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "net/net_internal.h"

#define LISTEN_BACKLOG 1024

void
net_runtime_unref(struct net_runtime **rtp)
{
	struct net_runtime *rt = *rtp;

	*rtp = NULL;
	if (rt == NULL || atomic_fetch_sub(&rt->refs, 1) != 1)
		return;
	net_tls_unref(&rt->tls);
	config_free(&rt->cfg);
	free(rt);
}

struct net_runtime *
net_server_runtime(struct net_server *srv)
{
	struct net_runtime *rt;

	pthread_mutex_lock(&srv->rt_lock);
	rt = srv->rt;
	atomic_fetch_add(&rt->refs, 1);
	pthread_mutex_unlock(&srv->rt_lock);
	return rt;
}

/* Makes a runtime from cfg (taking its contents). */
static struct net_runtime *
runtime_new(struct config *cfg, char **error_r)
{
	struct net_runtime *rt;
	struct net_tls *tls = net_tls_new(cfg, net_conn_alpn, error_r);

	if (tls == NULL)
		return NULL;
	rt = xcalloc(1, sizeof(*rt));
	atomic_init(&rt->refs, 1);
	rt->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	rt->tls = tls;
	return rt;
}

static int
bind_one(const struct config_listen *l, char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, l->address, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)l->port);
		sslen = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_pton(AF_INET6, l->address, &s6->sin6_addr);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)l->port);
		sslen = sizeof(*s6);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss, sslen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	*error_r = xasprintf("cannot listen on %s%s%s:%d (%s, line %d): %s",
	    strchr(l->address, ':') ? "[" : "", l->address, strchr(l->address, ':') ? "]" : "",
	    l->port, config_service_name(l->service), l->line, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* A connection accepted by one I/O thread for another. */
struct handoff {
	struct net_io *io;
	const struct config_listen *listen;
	int fd;
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

static void
handoff_cb(void *arg)
{
	struct handoff *h = arg;

	if (h->io->shutting_down) {
		close(h->fd);
		atomic_fetch_sub(&h->io->nconns, 1);
	} else
		net_conn_accept(h->io, h->listen, h->fd, (struct sockaddr *)&h->addr,
		    h->addrlen);
	free(h);
}

/* Each thread's listener takes the connections the kernel gives it
 * (SO_REUSEPORT hashes them, so a few long connections, 10 POP3 clients
 * say, often split 7 to 3); one that has more than the thread with the
 * fewest hands the new one over (a post to that loop), so the threads
 * share the work. */
static void
accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *addr,
    int addrlen, void *arg)
{
	struct net_listener *l = arg;
	struct net_server *srv = l->io->srv;
	struct net_io *to = l->io;
	struct handoff *h;
	int i;

	(void)evl;
	for (i = 0; i < srv->nios; i++)
		if (atomic_load(&srv->ios[i].nconns) < atomic_load(&to->nconns))
			to = &srv->ios[i];
	atomic_fetch_add(&to->nconns, 1);
	if (to == l->io) {
		net_conn_accept(l->io, l->listen, fd, addr, (socklen_t)addrlen);
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->io = to;
	h->listen = l->listen;
	h->fd = fd;
	memcpy(&h->addr, addr, (size_t)addrlen);
	h->addrlen = (socklen_t)addrlen;
	net_loop_post(to->loop, handoff_cb, h);
}

static void
accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct net_listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	/* Out of descriptors or memory: pause briefly instead of spinning. */
	log_error(NULL, "event=accept-error listen=%s:%d reason=\"%s\"", l->listen->address,
	    l->listen->port, evutil_socket_error_to_string(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
		evconnlistener_disable(evl);
}

struct net_server *
net_server_new(struct config *cfg, const struct net_proto *const protos[SERVICE_COUNT],
    void *app, char **error_r)
{
	struct net_server *srv = xcalloc(1, sizeof(*srv));
	struct config copy;
	char *err2 = NULL;
	int i, j;

	*error_r = NULL;
	/* Two copies: one fixed (listeners), one replaced on reload. */
	if (config_load(cfg->path, &copy, &err2) < 0) {
		*error_r = err2;
		free(srv);
		return NULL;
	}
	srv->first_cfg = copy;
	pthread_mutex_init(&srv->rt_lock, NULL);
	if ((srv->rt = runtime_new(cfg, error_r)) == NULL)
		goto fail;
	memcpy(srv->protos, protos, sizeof(srv->protos));
	srv->app = app;
	srv->limits = net_limits_new();
	net_limits_set(srv->limits, srv->rt->cfg.max_connections,
	    srv->rt->cfg.max_connections_per_ip);
	srv->nios = srv->first_cfg.io_threads;
	srv->ios = xcalloc((size_t)srv->nios, sizeof(*srv->ios));
	for (i = 0; i < srv->nios; i++) {
		struct net_io *io = &srv->ios[i];

		io->srv = srv;
		io->index = i;
		io->nlisteners = srv->first_cfg.nlisten;
		io->listeners = xcalloc((size_t)io->nlisteners, sizeof(*io->listeners));
		for (j = 0; j < io->nlisteners; j++) {
			io->listeners[j].io = io;
			io->listeners[j].listen = &srv->first_cfg.listen[j];
			io->listeners[j].fd = -1;
		}
	}
	/* Bind everything now, while privileged; a port in use stops start-up. */
	for (i = 0; i < srv->nios; i++)
		for (j = 0; j < srv->ios[i].nlisteners; j++)
			if ((srv->ios[i].listeners[j].fd =
			    bind_one(srv->ios[i].listeners[j].listen, error_r)) < 0)
				goto fail;
	return srv;
fail:
	net_server_free(&srv);
	return NULL;
}

static void *
io_main(void *arg)
{
	struct net_io *io = arg;

	net_loop_run(io->loop);
	return NULL;
}

void
net_server_start(struct net_server *srv)
{
	int i, j, err;

	srv->workers = net_workers_new(srv->rt->cfg.worker_threads);
	for (i = 0; i < srv->nios; i++) {
		struct net_io *io = &srv->ios[i];

		io->loop = net_loop_new(i, srv->workers);
		for (j = 0; j < io->nlisteners; j++) {
			struct net_listener *l = &io->listeners[j];

			l->evl = evconnlistener_new(net_loop_base(io->loop), accept_cb, l,
			    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, l->fd);
			if (l->evl == NULL)
				fatal("cannot watch listening socket %s:%d", l->listen->address,
				    l->listen->port);
			evconnlistener_set_error_cb(l->evl, accept_error_cb);
		}
	}
	for (i = 0; i < srv->nios; i++)
		if ((err = pthread_create(&srv->ios[i].thread, NULL, io_main, &srv->ios[i])) != 0)
			fatal("cannot start I/O thread: error %d", err);
	srv->started = 1;
}

const struct config *
net_server_config(const struct net_server *srv)
{
	return &srv->rt->cfg;
}

static int
listeners_differ(const struct config *a, const struct config *b)
{
	int i;

	if (a->nlisten != b->nlisten || a->io_threads != b->io_threads)
		return 1;
	for (i = 0; i < a->nlisten; i++)
		if (a->listen[i].service != b->listen[i].service ||
		    a->listen[i].port != b->listen[i].port ||
		    strcmp(a->listen[i].address, b->listen[i].address) != 0)
			return 1;
	return 0;
}

int
net_server_reload(struct net_server *srv, struct config *cfg, char **error_r)
{
	struct net_runtime *rt, *old;

	if (listeners_differ(&srv->first_cfg, cfg))
		log_warn(NULL, "event=reload warning=\"listeners and io_threads change only at a restart\"");
	if ((rt = runtime_new(cfg, error_r)) == NULL) {
		config_free(cfg);
		return -1;
	}
	net_limits_set(srv->limits, rt->cfg.max_connections, rt->cfg.max_connections_per_ip);
	pthread_mutex_lock(&srv->rt_lock);
	old = srv->rt;
	srv->rt = rt;
	pthread_mutex_unlock(&srv->rt_lock);
	net_runtime_unref(&old);
	return 0;
}

static void
io_stop_accepting(void *arg)
{
	struct net_io *io = arg;
	struct net_conn *c, *next;
	int j;

	io->shutting_down = 1;
	for (j = 0; j < io->nlisteners; j++) {
		if (io->listeners[j].evl != NULL) {
			evconnlistener_free(io->listeners[j].evl);
			io->listeners[j].evl = NULL;
			io->listeners[j].fd = -1;
		}
	}
	for (c = io->conns; c != NULL; c = next) {
		next = net_conn_next(c);
		net_conn_shutdown(c);
	}
}

static void
io_close_all(void *arg)
{
	struct net_io *io = arg;

	while (io->conns != NULL)
		net_conn_destroy(io->conns);
	net_loop_stop(io->loop);
}

int
net_server_connections(struct net_server *srv)
{
	return net_limits_total(srv->limits);
}

void
net_server_shutdown(struct net_server *srv, uint64_t grace_ms)
{
	uint64_t deadline = net_now_ms() + grace_ms;
	int i, left;

	if (!srv->started)
		return;
	for (i = 0; i < srv->nios; i++)
		net_loop_post(srv->ios[i].loop, io_stop_accepting, &srv->ios[i]);
	while ((left = net_server_connections(srv)) > 0 && net_now_ms() < deadline) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	if (left > 0)
		log_warn(NULL, "event=shutdown closing=%d reason=\"grace period over\"", left);
	for (i = 0; i < srv->nios; i++)
		net_loop_post(srv->ios[i].loop, io_close_all, &srv->ios[i]);
	for (i = 0; i < srv->nios; i++)
		pthread_join(srv->ios[i].thread, NULL);
	/* Work still queued finishes; its completions are dropped with the loops. */
	net_workers_free(&srv->workers);
	srv->started = 0;
}

void
net_server_free(struct net_server **srvp)
{
	struct net_server *srv = *srvp;
	int i, j;

	if (srv == NULL)
		return;
	if (srv->started)
		net_server_shutdown(srv, 0);
	for (i = 0; i < srv->nios; i++) {
		struct net_io *io = &srv->ios[i];

		for (j = 0; j < io->nlisteners; j++) {
			if (io->listeners[j].evl != NULL)
				evconnlistener_free(io->listeners[j].evl);
			else if (io->listeners[j].fd >= 0)
				close(io->listeners[j].fd);
		}
		free(io->listeners);
		net_loop_free(&io->loop);
	}
	free(srv->ios);
	net_limits_free(&srv->limits);
	net_runtime_unref(&srv->rt);
	config_free(&srv->first_cfg);
	pthread_mutex_destroy(&srv->rt_lock);
	free(srv);
	*srvp = NULL;
}
