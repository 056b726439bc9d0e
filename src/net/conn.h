/*
 * A client connection, as a protocol session sees it.
 *
 * A protocol plugs into the network layer with a struct net_proto: `open`
 * makes the session when a client connects (and writes the greeting), `event`
 * is called for everything that happens to the connection, and `close` frees
 * the session when the connection is gone. The session reads lines or raw
 * bytes from the connection's input and writes replies; it never touches the
 * socket or OpenSSL.
 *
 * Everything here is called on the connection's loop thread only.
 */
#ifndef PETREL_NET_CONN_H
#define PETREL_NET_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct evbuffer;
struct net_conn;
struct net_loop;

enum net_event {
	NET_EV_INPUT,      /* new input is buffered */
	NET_EV_DRAINED,    /* all output written (after net_conn_notify_drained) */
	NET_EV_TLS_READY,  /* the STARTTLS handshake completed */
	NET_EV_TIMEOUT,    /* idle timeout: the session says goodbye, then closes */
	NET_EV_SHUTDOWN,   /* the server is stopping: close when not mid-transaction */
};

struct net_proto {
	const char *name;          /* "smtp", "imap", "pop3" */
	/* ALPN protocol ids the service accepts (NULL-terminated). A client
	 * that offers ALPN without any of them is refused (ALPACA). */
	const char *const *alpn;
	/* A new connection: create the session and write the greeting. */
	void *(*open)(struct net_conn *conn);
	void (*event)(void *session, enum net_event ev);
	/* The connection is closing: free the session. No I/O is possible. */
	void (*close)(void *session);
	/* Writes the refusal sent when the connection limits are reached; the
	 * connection is closed once it is written. */
	void (*busy)(struct net_conn *conn);
};

/* Reading. A line ends at LF; a CR before the LF is removed. Returns 1 with
 * *line (NUL-terminated, valid until the next read) and *len, 0 when no whole
 * line is buffered yet, -1 when the line is longer than max: it is discarded
 * up to its LF (the session answers with an error and stays in sync). */
int net_conn_read_line(struct net_conn *c, size_t max, char **line, size_t *len);
/* The raw input buffer, for sessions that read data rather than lines. */
struct evbuffer *net_conn_input(struct net_conn *c);

/* Writing. Output is buffered and flushed by the loop. */
void net_conn_write(struct net_conn *c, const void *data, size_t len);
void net_conn_puts(struct net_conn *c, const char *s);
void net_conn_printf(struct net_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Bytes written but not yet sent. */
size_t net_conn_output_pending(struct net_conn *c);
/* Asks for one NET_EV_DRAINED when the output buffer is empty. */
void net_conn_notify_drained(struct net_conn *c);

/* Stops and resumes NET_EV_INPUT events (e.g. while waiting for the worker
 * pool); input keeps being buffered up to a limit. */
void net_conn_pause(struct net_conn *c);
void net_conn_resume(struct net_conn *c);

/* Starts TLS after the session wrote its "go ahead" reply: the reply is
 * flushed, everything the client sent after the command is discarded (the
 * STARTTLS injection attack), and NET_EV_TLS_READY follows the handshake. A
 * failed handshake closes the connection. */
void net_conn_starttls(struct net_conn *c);
int net_conn_is_tls(const struct net_conn *c);
/* "TLSv1.3", "TLS_AES_256_GCM_SHA384" (NULL without TLS). */
const char *net_conn_tls_version(const struct net_conn *c);
const char *net_conn_tls_cipher(const struct net_conn *c);

/* Sets the idle timeout (0: none). Any input restarts it. */
void net_conn_set_timeout(struct net_conn *c, uint64_t ms);

/* Closes after the pending output is written. The session's close callback
 * follows; the session must not use the connection after this. */
void net_conn_close(struct net_conn *c);

/* Identity. */
const char *net_conn_id(const struct net_conn *c);       /* for logs */
const char *net_conn_peer_ip(const struct net_conn *c);  /* numeric */
int net_conn_peer_port(const struct net_conn *c);
const char *net_conn_local_ip(const struct net_conn *c);
int net_conn_local_port(const struct net_conn *c);
enum config_service net_conn_service(const struct net_conn *c);
struct net_loop *net_conn_loop(struct net_conn *c);
/* The configuration current when the connection was accepted. */
const struct config *net_conn_config(const struct net_conn *c);
/* The opaque pointer the server was started with (the protocols' shared
 * context: struct proto_context). */
void *net_conn_app(const struct net_conn *c);

#endif
