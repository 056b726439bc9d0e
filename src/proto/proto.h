/*
 * What protocol sessions share: the services they call, and the protocol
 * tables the server plugs into its listeners.
 */
#ifndef PETREL_PROTO_PROTO_H
#define PETREL_PROTO_PROTO_H

#include "net/conn.h"

struct auth;
struct delivery_cache;
struct directory;
struct store;
struct queue;
struct queue_srs;

/* Given to the network layer as the app pointer (net_conn_app). */
struct proto_context {
	struct auth *auth;
	struct directory *dir;
	struct store *store;
	struct queue *queue;
	/* Reverses SRS addresses of bounces to our forwards (NULL: none). */
	const struct queue_srs *srs;
	/* Recent recipient resolutions, for RCPT on the I/O threads. */
	struct delivery_cache *rcpt_cache;
};

extern const struct net_proto proto_smtp;
extern const struct net_proto proto_imap;
extern const struct net_proto proto_pop3;

/* The protocol served on each kind of listener. */
const struct net_proto *proto_for_service(enum config_service service);

#endif
