/*
 * TLS contexts: the default certificate plus per-domain certificates chosen
 * by SNI, TLS 1.2 and 1.3 only, the configured ciphers, and ALPN checked
 * against the protocol of the listener (a client that names only protocols
 * we do not serve on that port is refused: the ALPACA cross-protocol attack).
 *
 * A struct net_tls is immutable once made and reference-counted, so a reload
 * makes a new one while connections keep using the old one.
 */
#ifndef PETREL_NET_TLS_H
#define PETREL_NET_TLS_H

#include <openssl/ssl.h>

#include "core/config.h"

struct net_tls;

/* Called during the handshake to learn which ALPN ids the connection's
 * listener serves (NULL-terminated). */
typedef const char *const *net_tls_alpn_fn(SSL *ssl);

struct net_tls *net_tls_new(const struct config *cfg, net_tls_alpn_fn *alpn,
    char **error_r);
void net_tls_ref(struct net_tls *tls);
void net_tls_unref(struct net_tls **tls);

/* A new server-side SSL object. */
SSL *net_tls_ssl_new(struct net_tls *tls);
/* Number of SNI certificates loaded (for the ready line). */
int net_tls_sni_count(const struct net_tls *tls);

/* Writes a self-signed certificate (RSA 2048, SHA-256, 10 years, with the
 * hostname and "localhost" as subject alternative names) and its key. */
int net_tls_make_self_signed(const char *hostname, const char *cert_path,
    const char *key_path, char **error_r);

#endif
