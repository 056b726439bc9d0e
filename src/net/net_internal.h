/* Shared between conn.c and server.c; not for protocols. */
#ifndef PETREL_NET_INTERNAL_H
#define PETREL_NET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "core/config.h"
#include "net/conn.h"
#include "net/limits.h"
#include "net/loop.h"
#include "net/tls.h"

/* What a connection needs from the configuration in force when it was
 * accepted; replaced as a whole on reload. */
struct net_runtime {
	atomic_int refs;
	struct config cfg;
	struct net_tls *tls;
};

void net_runtime_unref(struct net_runtime **rt);

struct net_io;

/* One listening socket on one I/O thread. */
struct net_listener {
	struct net_io *io;
	const struct config_listen *listen;  /* in the server's first config */
	int fd;
	struct evconnlistener *evl;
};

/* An I/O thread. */
struct net_io {
	struct net_server *srv;
	struct net_loop *loop;
	pthread_t thread;
	struct net_listener *listeners;
	int nlisteners;
	struct net_conn *conns;       /* all open connections of this thread */
	atomic_int nconns;            /* those, and ones handed to it not yet open */
	int index;
	int shutting_down;
};

struct net_server {
	struct config first_cfg;      /* listeners are bound from this one */
	pthread_mutex_t rt_lock;
	struct net_runtime *rt;
	const struct net_proto *protos[SERVICE_COUNT];
	void *app;
	struct net_limits *limits;
	struct net_workers *workers;
	struct net_io *ios;
	int nios;
	int started;
};

/* Takes a reference to the runtime in force. */
struct net_runtime *net_server_runtime(struct net_server *srv);

/* Accepts fd (from a listener of io) as a new connection. */
void net_conn_accept(struct net_io *io, const struct config_listen *listen, int fd,
    const struct sockaddr *addr, socklen_t addrlen);
/* The next connection in its thread's list. */
struct net_conn *net_conn_next(struct net_conn *c);
/* Sends NET_EV_SHUTDOWN to the connection's session. */
void net_conn_shutdown(struct net_conn *c);
/* Closes at once, without flushing. */
void net_conn_destroy(struct net_conn *c);
/* The ALPN ids of the SSL object's connection. */
const char *const *net_conn_alpn(SSL *ssl);

#endif
