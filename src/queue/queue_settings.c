/*
 * The runner's settings: read from the config (queue_* keys, the relay
 * host's password file, the TLS client context with queue_tls_ca_file) at
 * start and again on SIGHUP, when they are swapped in on the runner's
 * thread. See queue_runner_reload() in queue_runner.h.
 */
#include "queue/queue_runner_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/err.h>

#include "core/log.h"
#include "core/xmalloc.h"

static int
read_password(const char *path, char **pw_r, char **error_r)
{
	char line[1024];
	FILE *fp = fopen(path, "r");

	if (fp == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	line[strcspn(line, "\r\n")] = '\0';
	*pw_r = xstrdup(line);
	return 0;
}

int
qr_settings_from(const struct config *cfg, struct qr_settings *s, char **error_r)
{
	memset(s, 0, sizeof(*s));
	s->hostname = xstrdup(cfg->hostname);
	s->smtp_port = cfg->queue_smtp_port;
	s->retry_initial_ms = cfg->queue_retry_initial_ms;
	s->retry_max_ms = cfg->queue_retry_max_ms;
	s->lifetime_ms = cfg->queue_lifetime_ms;
	s->delay_notice_ms = cfg->queue_delay_notice_ms;
	s->max_conns = cfg->queue_max_connections;
	s->max_per_dest = cfg->queue_max_connections_per_domain;
	s->max_msgs_per_conn = cfg->queue_max_messages_per_connection;
	s->relayhost = xstrdup(cfg->queue_relayhost);
	s->relay_user = xstrdup(cfg->queue_relayhost_user);
	{
		const char *why;

		/* A copy of the rules: the config is the caller's. */
		if (config_tls_policy_parse(cfg->queue_tls_policy, &s->tls_rules, &s->ntls_rules,
		    &why) < 0) {
			*error_r = xasprintf("queue_tls_policy: %s", why);
			return -1;
		}
	}
	if (s->relayhost[0] != '\0') {
		struct dns_addr a;
		const char *h = s->relayhost, *colon;
		size_t len;

		s->relay_port = 25;
		if (dns_parse_ip_port(h, 25, &a) == 0) {
			/* an IP address, maybe with a port */
			if (h[0] == '[') {
				len = strcspn(h + 1, "]");
				snprintf(s->relay_host, sizeof(s->relay_host), "%.*s", (int)len, h + 1);
			} else {
				len = strchr(h, ':') != NULL && strchr(h, ':') == strrchr(h, ':') ?
				    (size_t)(strchr(h, ':') - h) : strlen(h);
				snprintf(s->relay_host, sizeof(s->relay_host), "%.*s", (int)len, h);
			}
			s->relay_port = ntohs(a.sa.ss_family == AF_INET6 ?
			    ((struct sockaddr_in6 *)&a.sa)->sin6_port :
			    ((struct sockaddr_in *)&a.sa)->sin_port);
		} else {
			colon = strrchr(h, ':');
			len = colon != NULL ? (size_t)(colon - h) : strlen(h);
			if (len == 0 || len > DNS_NAME_MAX) {
				*error_r = xasprintf("queue_relayhost: bad host '%s'", h);
				return -1;
			}
			snprintf(s->relay_host, sizeof(s->relay_host), "%.*s", (int)len, h);
			if (colon != NULL) {
				char *e;
				long p = strtol(colon + 1, &e, 10);

				if (*e != '\0' || p < 1 || p > 65535) {
					*error_r = xasprintf("queue_relayhost: bad port in '%s'", h);
					return -1;
				}
				s->relay_port = (int)p;
			}
		}
	}
	if (s->relay_user[0] != '\0') {
		if (cfg->queue_relayhost_password_file[0] == '\0') {
			*error_r = xstrdup("queue_relayhost_user needs "
			    "queue_relayhost_password_file");
			return -1;
		}
		if (read_password(cfg->queue_relayhost_password_file, &s->relay_password,
		    error_r) < 0)
			return -1;
	}
	return 0;
}

void
qr_settings_free(struct qr_settings *s)
{
	free(s->hostname);
	free(s->relayhost);
	free(s->relay_user);
	config_tls_rules_free(&s->tls_rules, s->ntls_rules);
	if (s->relay_password != NULL) {
		OPENSSL_cleanse(s->relay_password, strlen(s->relay_password));
		free(s->relay_password);
	}
	memset(s, 0, sizeof(*s));
}

SSL_CTX *
qr_client_tls(const struct config *cfg, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char err[200];

	if (ctx == NULL) {
		*error_r = xstrdup("cannot create a TLS client context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (cfg->queue_tls_ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, cfg->queue_tls_ca_file, NULL) != 1) {
			ERR_error_string_n(ERR_get_error(), err, sizeof(err));
			*error_r = xasprintf("queue_tls_ca_file %s: %s", cfg->queue_tls_ca_file,
			    err);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else {
		SSL_CTX_set_default_verify_paths(ctx);
	}
	ERR_clear_error();
	return ctx;
}

/* --- reload ---------------------------------------------------------------- */

struct qr_reload {
	struct queue_runner *r;
	struct qr_settings set;
	SSL_CTX *tls;
	uint64_t connect_ms, command_ms, data_ms;
};

static void
reload_free(struct qr_reload *u)
{
	qr_settings_free(&u->set);
	if (u->tls != NULL)
		SSL_CTX_free(u->tls);
	free(u);
}

/* On the loop thread: the new settings replace the old. Connections under
 * way keep what they started with (a session copies its settings). */
static void
reload_on_loop(void *arg)
{
	struct qr_reload *u = arg;
	struct queue_runner *r = u->r;
	struct qr_settings old;
	SSL_CTX *old_tls;

	if (r->stopping) {
		reload_free(u);
		return;
	}
	/* The host name stays: workers read it (DSNs, local deliveries). */
	old = r->set;
	r->set = u->set;
	free(r->set.hostname);
	r->set.hostname = old.hostname;
	old.hostname = NULL;
	memset(&u->set, 0, sizeof(u->set));
	old_tls = r->tls;
	r->tls = u->tls;
	u->tls = old_tls;
	r->smtpc.tls = r->tls;
	r->smtpc.connect_ms = u->connect_ms;
	r->smtpc.command_ms = u->command_ms;
	r->smtpc.data_ms = u->data_ms;
	u->set = old;
	reload_free(u);
	log_info(NULL, "event=queue-reloaded relayhost=%s tls_policy_rules=%zu "
	    "max_connections=%d", r->set.relayhost[0] != '\0' ? r->set.relayhost : "-",
	    r->set.ntls_rules, r->set.max_conns);
	qa_reloaded(r);
	qr_kick(r);
}

int
queue_runner_reload(struct queue_runner *r, const struct config *cfg, char **error_r)
{
	struct qr_reload *u = xcalloc(1, sizeof(*u));

	u->r = r;
	if (qr_settings_from(cfg, &u->set, error_r) < 0 ||
	    (u->tls = qr_client_tls(cfg, error_r)) == NULL) {
		reload_free(u);
		return -1;
	}
	u->connect_ms = cfg->queue_connect_timeout_ms;
	u->command_ms = cfg->queue_command_timeout_ms;
	u->data_ms = cfg->queue_data_timeout_ms;
	if (strcmp(cfg->queue_dns_resolver, r->dns_server) != 0)
		log_warn(NULL, "event=warning reason=\"queue_dns_resolver changes at the next "
		    "restart\"");
	net_loop_post(r->loop, reload_on_loop, u);
	return 0;
}
