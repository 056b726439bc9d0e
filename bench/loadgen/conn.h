/* A blocking client connection, plain TCP or TLS, with line and byte reads.
 * Every read and write has a deadline (SO_RCVTIMEO / SO_SNDTIMEO), so a
 * stalled server makes the operation fail instead of hanging the run. */
#ifndef BENCH_CONN_H
#define BENCH_CONN_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

enum tls_mode { TLS_NONE, TLS_IMPLICIT };

struct conn {
	int fd;
	SSL *ssl;
	char *buf;     /* received, not yet consumed: buf[pos..len) */
	size_t pos, len, cap;
	uint64_t bytes_in, bytes_out;
	char err[256]; /* why the last call failed */
};

/* A client TLS context (no certificate check: loopback benchmark). */
SSL_CTX *conn_tls_ctx(void);

/* Connects, and with TLS_IMPLICIT runs the handshake. 0 or -1 (c->err). */
int conn_open(struct conn *c, const char *host, int port, enum tls_mode mode,
    SSL_CTX *ctx, int timeout_s);
/* Closes without lingering (RST), so connection churn leaves no TIME_WAIT. */
void conn_close(struct conn *c);

int conn_write(struct conn *c, const void *data, size_t len);
int conn_printf(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reads one line (CRLF or LF stripped) into *line, NUL-terminated, valid until
 * the next call. Returns its length, or -1 (c->err; also when longer than
 * max bytes). */
long conn_readline(struct conn *c, char **line, size_t max);
/* Reads exactly n bytes and discards them (literal contents). */
int conn_skip(struct conn *c, size_t n);
/* The same, keeping a copy of the first cap bytes in head (*kept: how many). */
int conn_skip_keep(struct conn *c, size_t n, char *head, size_t cap, size_t *kept);

#endif
