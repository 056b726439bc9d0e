#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/net_internal.h"

/* Input buffered while a session does not read (paused, or mid-handshake)
 * stops being read from the socket past this. */
#define CONN_INPUT_HIGH (256 * 1024)
/* The longest a TLS handshake or a closing flush may take. */
#define CONN_HANDSHAKE_TIMEOUT_MS 60000
#define CONN_CLOSE_TIMEOUT_MS 30000

struct net_conn {
	struct net_conn *prev, *next;       /* in io->conns */
	struct net_io *io;
	struct net_runtime *rt;
	const struct net_proto *proto;
	enum config_service service;
	void *session;
	struct bufferevent *bev;
	SSL *ssl;
	int fd;
	unsigned owns_fd : 1;               /* the plaintext bufferevent does not close it */
	struct event *kick;                 /* deferred work: resume, destroy */
	struct buf line;
	struct net_limit_slot slot;
	uint64_t timeout_ms;
	unsigned skipping : 1;              /* discarding an over-long line */
	unsigned closing : 1;
	unsigned paused : 1;
	unsigned notify_drained : 1;
	unsigned starttls : 1;              /* upgrade asked, waiting to flush */
	unsigned handshaking : 1;
	unsigned busy : 1;                  /* over a limit: refuse and close */
	unsigned destroy_pending : 1;
	char id[LOG_ID_SIZE];
	char peer_ip[INET6_ADDRSTRLEN];
	char local_ip[INET6_ADDRSTRLEN];
	int peer_port, local_port;
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

static void
set_timeouts(struct net_conn *c, uint64_t read_ms, uint64_t write_ms)
{
	struct timeval r = { (time_t)(read_ms / 1000), (suseconds_t)(read_ms % 1000) * 1000 };
	struct timeval w = { (time_t)(write_ms / 1000), (suseconds_t)(write_ms % 1000) * 1000 };

	bufferevent_set_timeouts(c->bev, read_ms ? &r : NULL, write_ms ? &w : NULL);
}

static void
addr_string(const struct sockaddr *sa, char *out, size_t outsize, int *port)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)outsize);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)outsize);
		*port = ntohs(s6->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)outsize);
		*port = ntohs(s4->sin_port);
	} else {
		snprintf(out, outsize, "unknown");
		*port = 0;
	}
}

static void
conn_setup_bev(struct net_conn *c)
{
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_HIGH);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Runs things that must not happen inside a session's own call: freeing the
 * connection, and input that was buffered while the session was paused. */
static void
conn_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct net_conn *c = arg;

	if (c->destroy_pending) {
		net_conn_destroy(c);
		return;
	}
	if (c->notify_drained && c->session != NULL && !c->closing &&
	    net_conn_output_pending(c) == 0) {
		c->notify_drained = 0;
		c->proto->event(c->session, NET_EV_DRAINED);
	}
	if (!c->paused && !c->closing && c->session != NULL &&
	    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		c->proto->event(c->session, NET_EV_INPUT);
}

static void
conn_destroy_later(struct net_conn *c)
{
	c->destroy_pending = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	event_active(c->kick, EV_TIMEOUT, 0);
}

static void
conn_start_session(struct net_conn *c)
{
	if (c->busy) {
		c->proto->busy(c);
		net_conn_close(c);
		return;
	}
	c->session = c->proto->open(c);
}

void
net_conn_accept(struct net_io *io, const struct config_listen *listen, int fd,
    const struct sockaddr *addr, socklen_t addrlen)
{
	struct net_server *srv = io->srv;
	struct net_conn *c;
	struct sockaddr_storage local;
	socklen_t locallen = sizeof(local);
	struct event_base *base = net_loop_base(io->loop);
	enum net_limit_result lim;
	int opts = BEV_OPT_DEFER_CALLBACKS, one = 1;

	c = xcalloc(1, sizeof(*c));
	c->io = io;
	c->fd = fd;
	/* Replies are written whole; waiting to coalesce them only adds
	 * latency to pipelined clients. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		log_debug(NULL, "event=warning reason=\"TCP_NODELAY: %s\"", strerror(errno));
	c->rt = net_server_runtime(srv);
	c->service = listen->service;
	c->proto = srv->protos[listen->service];
	log_new_id(c->id);
	addr_string(addr, c->peer_ip, sizeof(c->peer_ip), &c->peer_port);
	if (getsockname(fd, (struct sockaddr *)&local, &locallen) == 0)
		addr_string((struct sockaddr *)&local, c->local_ip, sizeof(c->local_ip),
		    &c->local_port);
	(void)addrlen;

	lim = net_limits_acquire(srv->limits, addr, &c->slot);
	if (lim != NET_LIMIT_OK) {
		c->busy = 1;
		log_warn(c->id, "event=refused ip=%s service=%s reason=%s", c->peer_ip,
		    config_service_name(c->service),
		    lim == NET_LIMIT_TOTAL ? "max_connections" : "max_connections_per_ip");
	}

	if (config_service_implicit_tls(c->service)) {
		c->ssl = net_tls_ssl_new(c->rt->tls);
		SSL_set_app_data(c->ssl, c);
		c->bev = bufferevent_openssl_socket_new(base, fd, c->ssl,
		    BUFFEREVENT_SSL_ACCEPTING, opts | BEV_OPT_CLOSE_ON_FREE);
		c->handshaking = 1;
	} else {
		/* Kept open when STARTTLS replaces this bufferevent. */
		c->bev = bufferevent_socket_new(base, fd, opts);
		c->owns_fd = 1;
	}
	if (c->bev == NULL) {
		log_error(c->id, "event=error reason=\"cannot create a buffered connection\"");
		if (c->ssl != NULL)
			SSL_free(c->ssl);
		close(fd);
		atomic_fetch_sub(&io->nconns, 1);
		net_limits_release(srv->limits, &c->slot);
		net_runtime_unref(&c->rt);
		free(c);
		return;
	}
	c->kick = event_new(base, -1, 0, conn_kick_cb, c);
	c->next = io->conns;
	if (io->conns != NULL)
		io->conns->prev = c;
	io->conns = c;

	conn_setup_bev(c);
	if (!c->busy)
		log_info(c->id, "event=connect ip=%s port=%d service=%s local=%s:%d io=%d",
		    c->peer_ip, c->peer_port, config_service_name(c->service), c->local_ip,
		    c->local_port, io->index);
	if (c->handshaking) {
		set_timeouts(c, CONN_HANDSHAKE_TIMEOUT_MS, CONN_HANDSHAKE_TIMEOUT_MS);
		return;
	}
	conn_start_session(c);
}

void
net_conn_destroy(struct net_conn *c)
{
	struct net_io *io = c->io;

	if (c->session != NULL) {
		void *session = c->session;

		c->session = NULL;
		c->proto->close(session);
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		io->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	atomic_fetch_sub(&io->nconns, 1);
	if (!c->busy)
		log_info(c->id, "event=disconnect ip=%s", c->peer_ip);
	/* A TLS session ends with close_notify (best effort, non-blocking). */
	if (c->ssl != NULL && !c->handshaking && !c->starttls)
		SSL_shutdown(c->ssl);
	/* Frees the SSL object (if any) and, for TLS, closes the socket. */
	bufferevent_free(c->bev);
	if (c->owns_fd)
		close(c->fd);
	event_free(c->kick);
	buf_free(&c->line);
	net_limits_release(io->srv->limits, &c->slot);
	net_runtime_unref(&c->rt);
	free(c);
}

struct net_conn *
net_conn_next(struct net_conn *c)
{
	return c->next;
}

void
net_conn_shutdown(struct net_conn *c)
{
	if (c->closing)
		return;
	if (c->session == NULL) {
		net_conn_close(c);
		return;
	}
	c->proto->event(c->session, NET_EV_SHUTDOWN);
}

const char *const *
net_conn_alpn(SSL *ssl)
{
	struct net_conn *c = SSL_get_app_data(ssl);

	return c != NULL ? c->proto->alpn : NULL;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->closing || c->destroy_pending || c->starttls) {
		/* Nothing a client sends now is read; after STARTTLS it would
		 * be plaintext injected before the handshake. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (c->paused || c->session == NULL)
		return;
	c->proto->event(c->session, NET_EV_INPUT);
}

static void
conn_do_starttls(struct net_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct event_base *base = net_loop_base(c->io->loop);
	struct bufferevent *tls;

	c->starttls = 0;
	/* Plaintext the client sent after the STARTTLS command is dropped with
	 * the plaintext bufferevent; TLS then runs directly on the socket, so
	 * that "output written" means written to the socket. */
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_free(c->bev);
	c->bev = NULL;
	c->ssl = net_tls_ssl_new(c->rt->tls);
	SSL_set_app_data(c->ssl, c);
	tls = bufferevent_openssl_socket_new(base, c->fd, c->ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		log_error(c->id, "event=error reason=\"cannot start TLS\"");
		SSL_free(c->ssl);
		c->ssl = NULL;
		/* Nothing left to flush: close the socket and go. */
		c->bev = bufferevent_socket_new(base, c->fd, BEV_OPT_DEFER_CALLBACKS);
		conn_destroy_later(c);
		return;
	}
	c->owns_fd = 0;
	c->bev = tls;
	c->handshaking = 1;
	conn_setup_bev(c);
	set_timeouts(c, CONN_HANDSHAKE_TIMEOUT_MS, CONN_HANDSHAKE_TIMEOUT_MS);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct net_conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (c->closing) {
		conn_destroy_later(c);
		return;
	}
	if (c->starttls) {
		conn_do_starttls(c);
		return;
	}
	if (c->notify_drained && c->session != NULL) {
		c->notify_drained = 0;
		c->proto->event(c->session, NET_EV_DRAINED);
	}
}

static void
conn_handshake_done(struct net_conn *c)
{
	c->handshaking = 0;
	set_timeouts(c, c->timeout_ms, c->timeout_ms);
	log_info(c->id, "event=tls version=%s cipher=%s", SSL_get_version(c->ssl),
	    SSL_get_cipher_name(c->ssl));
	if (c->session == NULL)
		conn_start_session(c);
	else
		c->proto->event(c->session, NET_EV_TLS_READY);
	/* Input that arrived with the handshake's last flight. */
	if (c->session != NULL && !c->closing)
		event_active(c->kick, EV_TIMEOUT, 0);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct net_conn *c = arg;

	if (c->destroy_pending)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		conn_handshake_done(c);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && !c->handshaking && !c->closing &&
	    c->session != NULL) {
		log_info(c->id, "event=timeout ip=%s", c->peer_ip);
		/* The session says goodbye and closes. */
		c->proto->event(c->session, NET_EV_TIMEOUT);
		if (!c->closing)
			net_conn_close(c);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && !c->handshaking &&
	    net_conn_output_pending(c) > 0) {
		/* The client stopped sending; let it have the replies it asked
		 * for before closing. */
		if (!c->closing) {
			c->closing = 1;
			bufferevent_disable(c->bev, EV_READ);
			set_timeouts(c, 0, CONN_CLOSE_TIMEOUT_MS);
		}
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);

		if (c->handshaking || e != 0) {
			char msg[160] = "";

			if (e != 0)
				ERR_error_string_n(e, msg, sizeof(msg));
			while (bufferevent_get_openssl_error(bev) != 0)
				;
			log_info(c->id, "event=tls-failed ip=%s reason=\"%s\"", c->peer_ip,
			    e != 0 ? msg : "connection closed during handshake");
		}
	}
	net_conn_destroy(c);
}

int
net_conn_read_line(struct net_conn *c, size_t max, char **line, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (c->starttls || c->closing || c->destroy_pending) {
		/* Lines pipelined after STARTTLS or QUIT are never commands. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return 0;
	}
	for (;;) {
		struct evbuffer_ptr eol;
		size_t eol_len, n;

		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			size_t have = evbuffer_get_length(in);

			if (c->skipping) {
				evbuffer_drain(in, have);
				return 0;
			}
			if (have > max) {
				evbuffer_drain(in, have);
				c->skipping = 1;
				return -1;
			}
			return 0;
		}
		n = (size_t)eol.pos;
		if (c->skipping) {
			evbuffer_drain(in, n + eol_len);
			c->skipping = 0;
			continue;
		}
		if (n > max + 1) {
			evbuffer_drain(in, n + eol_len);
			return -1;
		}
		buf_reset(&c->line);
		buf_reserve(&c->line, n + 1);
		evbuffer_remove(in, c->line.data, n);
		evbuffer_drain(in, eol_len);
		if (n > 0 && c->line.data[n - 1] == '\r')
			n--;
		if (n > max)
			return -1;
		c->line.len = n;
		c->line.data[n] = '\0';
		*line = c->line.data;
		*len = n;
		return 1;
	}
}

struct evbuffer *
net_conn_input(struct net_conn *c)
{
	return bufferevent_get_input(c->bev);
}

void
net_conn_write(struct net_conn *c, const void *data, size_t len)
{
	if (c->closing || c->destroy_pending)
		return;
	bufferevent_write(c->bev, data, len);
}

void
net_conn_puts(struct net_conn *c, const char *s)
{
	net_conn_write(c, s, strlen(s));
}

void
net_conn_printf(struct net_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->closing || c->destroy_pending)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

size_t
net_conn_output_pending(struct net_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void
net_conn_notify_drained(struct net_conn *c)
{
	c->notify_drained = 1;
	if (net_conn_output_pending(c) == 0)
		event_active(c->kick, EV_TIMEOUT, 0);
}

void
net_conn_pause(struct net_conn *c)
{
	c->paused = 1;
}

void
net_conn_resume(struct net_conn *c)
{
	if (!c->paused)
		return;
	c->paused = 0;
	event_active(c->kick, EV_TIMEOUT, 0);
}

void
net_conn_starttls(struct net_conn *c)
{
	if (c->ssl != NULL || c->closing)
		return;
	c->starttls = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (net_conn_output_pending(c) == 0)
		conn_do_starttls(c);
}

int
net_conn_is_tls(const struct net_conn *c)
{
	return c->ssl != NULL && !c->handshaking;
}

const char *
net_conn_tls_version(const struct net_conn *c)
{
	return net_conn_is_tls(c) ? SSL_get_version(c->ssl) : NULL;
}

const char *
net_conn_tls_cipher(const struct net_conn *c)
{
	return net_conn_is_tls(c) ? SSL_get_cipher_name(c->ssl) : NULL;
}

void
net_conn_set_timeout(struct net_conn *c, uint64_t ms)
{
	c->timeout_ms = ms;
	if (!c->handshaking && !c->closing)
		set_timeouts(c, ms, ms);
}

void
net_conn_close(struct net_conn *c)
{
	if (c->closing || c->destroy_pending)
		return;
	c->closing = 1;
	c->starttls = 0;
	bufferevent_disable(c->bev, EV_READ);
	if (net_conn_output_pending(c) == 0) {
		conn_destroy_later(c);
		return;
	}
	set_timeouts(c, 0, CONN_CLOSE_TIMEOUT_MS);
}

const char *
net_conn_id(const struct net_conn *c)
{
	return c->id;
}

const char *
net_conn_peer_ip(const struct net_conn *c)
{
	return c->peer_ip;
}

int
net_conn_peer_port(const struct net_conn *c)
{
	return c->peer_port;
}

const char *
net_conn_local_ip(const struct net_conn *c)
{
	return c->local_ip;
}

int
net_conn_local_port(const struct net_conn *c)
{
	return c->local_port;
}

enum config_service
net_conn_service(const struct net_conn *c)
{
	return c->service;
}

struct net_loop *
net_conn_loop(struct net_conn *c)
{
	return c->io->loop;
}

const struct config *
net_conn_config(const struct net_conn *c)
{
	return &c->rt->cfg;
}

void *
net_conn_app(const struct net_conn *c)
{
	return c->io->srv->app;
}
