#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

SSL_CTX *
conn_tls_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* Every connection does a full handshake, against every server alike. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	return ctx;
}

static void
seterr(struct conn *c, const char *what)
{
	unsigned long e = ERR_get_error();
	if (e != 0) {
		char tmp[160];
		ERR_error_string_n(e, tmp, sizeof tmp);
		snprintf(c->err, sizeof c->err, "%s: %s", what, tmp);
		ERR_clear_error();
	} else if (errno != 0) {
		snprintf(c->err, sizeof c->err, "%s: %s", what,
		    errno == EAGAIN ? "timed out" : strerror(errno));
	} else {
		snprintf(c->err, sizeof c->err, "%s: connection closed", what);
	}
}

int
conn_open(struct conn *c, const char *host, int port, enum tls_mode mode,
    SSL_CTX *ctx, int timeout_s)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		snprintf(c->err, sizeof c->err, "bad IPv4 address %s", host);
		return -1;
	}
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		seterr(c, "socket");
		return -1;
	}
	struct timeval tv = { .tv_sec = timeout_s };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	errno = 0;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		seterr(c, "connect");
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	if (mode == TLS_IMPLICIT) {
		c->ssl = SSL_new(ctx);
		if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd)) {
			seterr(c, "SSL_new");
			conn_close(c);
			return -1;
		}
		SSL_set_tlsext_host_name(c->ssl, "localhost");
		errno = 0;
		if (SSL_connect(c->ssl) != 1) {
			seterr(c, "TLS handshake");
			conn_close(c);
			return -1;
		}
	}
	c->cap = 16384;
	c->buf = malloc(c->cap);
	if (c->buf == NULL) {
		snprintf(c->err, sizeof c->err, "out of memory");
		conn_close(c);
		return -1;
	}
	return 0;
}

void
conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(c->fd);
		c->fd = -1;
	}
	free(c->buf);
	c->buf = NULL;
	c->pos = c->len = c->cap = 0;
}

int
conn_write(struct conn *c, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		errno = 0;
		ssize_t n;
		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p, (int)(len > (1u << 30) ? (1u << 30) : len));
			n = r > 0 ? r : -1;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0) {
			seterr(c, "write");
			return -1;
		}
		p += n;
		len -= (size_t)n;
		c->bytes_out += (uint64_t)n;
	}
	return 0;
}

int
conn_printf(struct conn *c, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		snprintf(c->err, sizeof c->err, "command too long");
		return -1;
	}
	return conn_write(c, tmp, (size_t)n);
}

/* Appends whatever the socket has to the buffer. */
static int
fill(struct conn *c)
{
	if (c->pos > 0 && c->pos == c->len)
		c->pos = c->len = 0;
	if (c->len == c->cap) {
		if (c->pos > 0) {
			memmove(c->buf, c->buf + c->pos, c->len - c->pos);
			c->len -= c->pos;
			c->pos = 0;
		} else {
			char *nb = realloc(c->buf, c->cap * 2);
			if (nb == NULL) {
				snprintf(c->err, sizeof c->err, "out of memory");
				return -1;
			}
			c->buf = nb;
			c->cap *= 2;
		}
	}
	for (;;) {
		errno = 0;
		ssize_t n;
		if (c->ssl != NULL) {
			int r = SSL_read(c->ssl, c->buf + c->len, (int)(c->cap - c->len));
			n = r > 0 ? r : -1;
		} else {
			n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0) {
			seterr(c, "read");
			return -1;
		}
		c->len += (size_t)n;
		c->bytes_in += (uint64_t)n;
		return 0;
	}
}

long
conn_readline(struct conn *c, char **line, size_t max)
{
	size_t scanned = 0;
	for (;;) {
		char *start = c->buf + c->pos;
		size_t avail = c->len - c->pos;
		char *nl = memchr(start + scanned, '\n', avail - scanned);
		if (nl != NULL) {
			size_t l = (size_t)(nl - start);
			c->pos += l + 1;
			if (l > 0 && start[l - 1] == '\r')
				l--;
			start[l] = '\0';
			*line = start;
			return (long)l;
		}
		scanned = avail;
		if (avail > max) {
			snprintf(c->err, sizeof c->err, "line longer than %zu bytes", max);
			return -1;
		}
		/* Keep the partial line at the start of the buffer while filling. */
		if (c->pos > 0) {
			memmove(c->buf, c->buf + c->pos, avail);
			c->len = avail;
			c->pos = 0;
		}
		if (fill(c) < 0)
			return -1;
	}
}

int
conn_skip(struct conn *c, size_t n)
{
	return conn_skip_keep(c, n, NULL, 0, NULL);
}

int
conn_skip_keep(struct conn *c, size_t n, char *head, size_t cap, size_t *kept)
{
	size_t got = 0;
	while (n > 0) {
		size_t avail = c->len - c->pos;
		if (avail == 0) {
			c->pos = c->len = 0;
			if (fill(c) < 0)
				return -1;
			continue;
		}
		size_t take = avail < n ? avail : n;
		if (got < cap) {
			size_t k = take < cap - got ? take : cap - got;
			memcpy(head + got, c->buf + c->pos, k);
			got += k;
		}
		c->pos += take;
		n -= take;
	}
	if (kept != NULL)
		*kept = got;
	return 0;
}
