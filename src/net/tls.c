#include "net/tls.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/xmalloc.h"

#define SNI_MAX 10000

struct net_tls_sni {
	SSL_CTX *ctx;
	X509 *cert;
};

struct net_tls {
	atomic_int refs;
	SSL_CTX *ctx;                 /* default certificate */
	struct net_tls_sni *sni;
	int nsni;
	net_tls_alpn_fn *alpn;
};

static int net_tls_index = -1;
static pthread_once_t net_tls_once = PTHREAD_ONCE_INIT;

static void
tls_index_init(void)
{
	net_tls_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static char *
openssl_error(const char *what, const char *path)
{
	char msg[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	return xasprintf("%s%s%s: %s", path != NULL ? path : "", path != NULL ? ": " : "",
	    what, e != 0 ? msg : "unknown error");
}

/* ALPN: pick the first protocol the client offers that the listener serves;
 * a client offering ALPN without any of ours is refused with an alert. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct net_tls *tls = arg;
	const char *const *ours = tls->alpn(ssl);
	unsigned int i;
	size_t k;

	for (i = 0; i < inlen; i += 1u + in[i]) {
		unsigned int len = in[i];

		if (i + 1 + len > inlen)
			break;
		for (k = 0; ours != NULL && ours[k] != NULL; k++) {
			if (strlen(ours[k]) == len && memcmp(ours[k], in + i + 1, len) == 0) {
				*out = in + i + 1;
				*outlen = (unsigned char)len;
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int
sni_select(SSL *ssl, int *alert, void *arg)
{
	struct net_tls *tls = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	int i;

	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; i < tls->nsni; i++) {
		if (X509_check_host(tls->sni[i].cert, name, 0, 0, NULL) == 1) {
			SSL_set_SSL_CTX(ssl, tls->sni[i].ctx);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	/* Unknown names get the default certificate, as other servers do. */
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
ctx_new(const struct config *cfg, struct net_tls *tls, const char *cert, const char *key,
    char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		*error_r = openssl_error("cannot create TLS context", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, cfg->tls_min_version == 13 ?
	    TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Idle connections keep no read or write buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_dh_auto(ctx, 1);
	if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		*error_r = openssl_error("bad tls_ciphers", cfg->path);
		goto fail;
	}
	if (SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1) {
		*error_r = openssl_error("bad tls_ciphersuites", cfg->path);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		*error_r = openssl_error("cannot load certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		*error_r = openssl_error("cannot load private key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = openssl_error("key does not match the certificate", key);
		goto fail;
	}
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"petrel", 6);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, tls);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_select);
	SSL_CTX_set_tlsext_servername_arg(ctx, tls);
	SSL_CTX_set_ex_data(ctx, net_tls_index, tls);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int
load_sni_dir(const struct config *cfg, struct net_tls *tls, char **error_r)
{
	DIR *d = opendir(cfg->tls_sni_dir);
	struct dirent *de;

	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("%s: %s", cfg->tls_sni_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char *path;
		SSL_CTX *ctx;

		if (len < 5 || strcmp(de->d_name + len - 4, ".pem") != 0 || de->d_name[0] == '.')
			continue;
		if (tls->nsni == SNI_MAX) {
			*error_r = xasprintf("%s: more than %d certificates", cfg->tls_sni_dir, SNI_MAX);
			closedir(d);
			return -1;
		}
		path = xasprintf("%s/%s", cfg->tls_sni_dir, de->d_name);
		ctx = ctx_new(cfg, tls, path, path, error_r);
		free(path);
		if (ctx == NULL) {
			closedir(d);
			return -1;
		}
		tls->sni = xreallocarray(tls->sni, (size_t)tls->nsni + 1, sizeof(*tls->sni));
		tls->sni[tls->nsni].ctx = ctx;
		tls->sni[tls->nsni].cert = SSL_CTX_get0_certificate(ctx);
		tls->nsni++;
	}
	closedir(d);
	return 0;
}

struct net_tls *
net_tls_new(const struct config *cfg, net_tls_alpn_fn *alpn, char **error_r)
{
	struct net_tls *tls = xcalloc(1, sizeof(*tls));

	pthread_once(&net_tls_once, tls_index_init);
	atomic_init(&tls->refs, 1);
	tls->alpn = alpn;
	tls->ctx = ctx_new(cfg, tls, cfg->tls_certificate, cfg->tls_key, error_r);
	if (tls->ctx == NULL || load_sni_dir(cfg, tls, error_r) < 0) {
		net_tls_unref(&tls);
		return NULL;
	}
	return tls;
}

void
net_tls_ref(struct net_tls *tls)
{
	atomic_fetch_add(&tls->refs, 1);
}

void
net_tls_unref(struct net_tls **tlsp)
{
	struct net_tls *tls = *tlsp;
	int i;

	*tlsp = NULL;
	if (tls == NULL || atomic_fetch_sub(&tls->refs, 1) != 1)
		return;
	for (i = 0; i < tls->nsni; i++)
		SSL_CTX_free(tls->sni[i].ctx);
	free(tls->sni);
	SSL_CTX_free(tls->ctx);
	free(tls);
}

SSL *
net_tls_ssl_new(struct net_tls *tls)
{
	return SSL_new(tls->ctx);
}

int
net_tls_sni_count(const struct net_tls *tls)
{
	return tls->nsni;
}

static int
write_pem(const char *path, mode_t mode, int (*writer)(FILE *, void *), void *obj,
    char **error_r)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *fp;
	int ok;

	if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
		*error_r = xasprintf("%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(tmp);
		return -1;
	}
	ok = writer(fp, obj) == 1 && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
	if (fclose(fp) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) < 0) {
		*error_r = xasprintf("%s: cannot write: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

static int
write_key(FILE *fp, void *key)
{
	return PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
}

static int
write_cert(FILE *fp, void *cert)
{
	return PEM_write_X509(fp, cert);
}

int
net_tls_make_self_signed(const char *hostname, const char *cert_path,
    const char *key_path, char **error_r)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	X509 *cert = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	char *san = xasprintf("DNS:%s%sIP:127.0.0.1,IP:::1", hostname,
	    strcmp(hostname, "localhost") == 0 ? "," : ",DNS:localhost,");
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int rc = -1;

	if (key == NULL || cert == NULL) {
		*error_r = openssl_error("cannot make a key", NULL);
		goto out;
	}
	X509_set_version(cert, 2);
	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 86400);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"Petrel self-signed", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(cert, name);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san)) == NULL) {
		*error_r = openssl_error("bad host name for a certificate", NULL);
		goto out;
	}
	X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE")) != NULL) {
		X509_add_ext(cert, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(cert, key, EVP_sha256()) == 0) {
		*error_r = openssl_error("cannot sign the certificate", NULL);
		goto out;
	}
	if (write_pem(key_path, 0600, write_key, key, error_r) < 0 ||
	    write_pem(cert_path, 0644, write_cert, cert, error_r) < 0)
		goto out;
	rc = 0;
out:
	BN_free(bn);
	free(san);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}
