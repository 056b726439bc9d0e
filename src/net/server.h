/*
 * The network side of `petrel serve`: the listening sockets (one per
 * configured address and I/O thread, with SO_REUSEPORT so the kernel spreads
 * connections), the I/O threads, connection limits, TLS, reload and orderly
 * shutdown.
 *
 * Use: net_server_new() as root (it binds the ports and reads the keys), drop
 * privileges, net_server_start(), then reload / shutdown from the main thread.
 */
#ifndef PETREL_NET_SERVER_H
#define PETREL_NET_SERVER_H

#include <stdint.h>

#include "core/config.h"
#include "net/conn.h"

struct net_server;

/* Takes over the contents of *cfg (which is zeroed). protos[service] is the
 * protocol served on that kind of listener; app is what net_conn_app()
 * returns. On error returns NULL with *error_r (allocated). */
struct net_server *net_server_new(struct config *cfg,
    const struct net_proto *const protos[SERVICE_COUNT], void *app, char **error_r);
/* Starts the I/O threads and the worker pool. */
void net_server_start(struct net_server *srv);
/* The configuration now in force (main thread only). */
const struct config *net_server_config(const struct net_server *srv);
/* Takes over *cfg as the new configuration for new connections: new TLS
 * certificates, limits and timeouts. Listeners and thread counts change only
 * at a restart (a warning is logged). On error (e.g. an unreadable key) the
 * old configuration stays, *cfg is freed and -1 is returned with *error_r. */
int net_server_reload(struct net_server *srv, struct config *cfg, char **error_r);
/* Stops accepting, asks every session to finish (NET_EV_SHUTDOWN), waits up
 * to grace_ms for them, closes the rest and stops the threads. */
void net_server_shutdown(struct net_server *srv, uint64_t grace_ms);
void net_server_free(struct net_server **srv);
/* Connections now open. */
int net_server_connections(struct net_server *srv);

#endif
