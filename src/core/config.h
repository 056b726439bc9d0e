/*
 * The configuration file: `key = value` lines, `#` comments. Every key is
 * described once, in the table in config.c, which is also what `petrel init`
 * writes (each key commented, with its default) and what docs/CONFIG.md
 * documents. An unknown key, a bad value or a missing file is an error that
 * names the file and line.
 *
 * There is no global configuration: the daemon loads a struct config and
 * passes it (or the parts a module needs) down; SIGHUP loads a new one.
 */
#ifndef PETREL_CORE_CONFIG_H
#define PETREL_CORE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "core/log.h"

/* What a listener serves; each service has a fixed TLS mode. */
enum config_service {
	SERVICE_MX,          /* SMTP from the Internet, STARTTLS offered */
	SERVICE_SUBMISSION,  /* SMTP from users' clients, STARTTLS */
	SERVICE_SUBMISSIONS, /* SMTP from users' clients, implicit TLS */
	SERVICE_IMAP,        /* STARTTLS */
	SERVICE_IMAPS,       /* implicit TLS */
	SERVICE_POP3,        /* STLS */
	SERVICE_POP3S,       /* implicit TLS */
	SERVICE_COUNT
};

struct config_listen {
	enum config_service service;
	char *address;  /* numeric IPv4 or IPv6 address, no brackets */
	int port;
	int line;       /* where it was configured, for messages */
};

enum config_log { CONFIG_LOG_AUTO, CONFIG_LOG_STDERR, CONFIG_LOG_SYSLOG };

/* How much TLS the queue insists on for a destination (queue_tls_policy),
 * weakest first. */
enum config_tls_level {
	CONFIG_TLS_NONE,        /* never STARTTLS */
	CONFIG_TLS_MAY,         /* STARTTLS when offered (the default) */
	CONFIG_TLS_ENCRYPT,     /* TLS required, any certificate */
	CONFIG_TLS_VERIFY,      /* TLS required, certificate verified (CA and name) */
};

/* One `DOMAIN:LEVEL` entry of queue_tls_policy. */
struct config_tls_rule {
	char *domain;   /* lower case: "example.org", ".example.org" (every name
	                 * under it) or "*" (every other destination) */
	enum config_tls_level level;
};

struct config {
	char *path;             /* the file this was loaded from */
	char *hostname;
	char *data_dir;         /* absolute */
	char *user;
	int allow_root;
	int io_threads;         /* resolved: never 0 after load */
	int worker_threads;
	int max_connections;
	int max_connections_per_ip;
	enum config_log log;
	enum log_level log_level;

	char *tls_certificate;  /* absolute */
	char *tls_key;          /* absolute */
	char *tls_sni_dir;      /* absolute */
	char *tls_ciphers;
	char *tls_ciphersuites;
	int tls_min_version;    /* 12 or 13 */

	uint64_t auth_penalty_initial_ms;
	uint64_t auth_penalty_max_ms;
	uint64_t auth_penalty_reset_ms;
	uint64_t auth_cache_ttl_ms;
	int auth_max_failures;

	uint64_t timeout_smtp_ms;
	uint64_t timeout_smtp_data_ms;
	uint64_t timeout_imap_ms;
	uint64_t timeout_pop3_ms;
	uint64_t shutdown_grace_ms;

	/* SMTP limits (proto/smtp). Sizes in octets. */
	int smtp_max_line_length;
	uint64_t smtp_max_message_size;
	int smtp_max_recipients;
	int smtp_soft_error_limit;
	int smtp_hard_error_limit;
	uint64_t smtp_error_delay_ms;
	uint64_t smtp_min_data_rate;        /* octets per second; 0: no minimum */
	uint64_t smtp_data_rate_window_ms;
	uint64_t smtp_pregreet_delay_ms;    /* 0: no pregreet test */
	uint64_t smtp_min_free_space;
	int smtp_received_auth;

	/* The outbound queue (src/queue). */
	int queue_delivery;         /* 0: keep everything queued */
	char *queue_dns_resolver;   /* "system" or IP[:PORT] */
	int queue_smtp_port;
	uint64_t queue_retry_initial_ms;
	uint64_t queue_retry_max_ms;
	uint64_t queue_lifetime_ms;
	uint64_t queue_delay_notice_ms;     /* 0: none */
	uint64_t queue_connect_timeout_ms;
	uint64_t queue_command_timeout_ms;
	uint64_t queue_data_timeout_ms;
	int queue_max_connections;
	int queue_max_connections_per_domain;
	int queue_max_messages_per_connection;
	char *queue_relayhost;      /* "" or HOST[:PORT] */
	char *queue_relayhost_user;
	char *queue_relayhost_password_file; /* absolute, or "" */
	char *queue_tls_ca_file;    /* absolute, or "": the system's */
	char *queue_tls_policy;     /* as written; parsed: */
	struct config_tls_rule *queue_tls_rules;
	size_t nqueue_tls_rules;
	char *queue_srs_domain;     /* "": hostname */

	struct config_listen *listen;
	int nlisten;
};

/* The name a service is configured with ("mx", "imaps", ...). */
const char *config_service_name(enum config_service service);
/* 1 when the service's listener does TLS from the first byte. */
int config_service_implicit_tls(enum config_service service);
/* The port a service has on a standard install (25, 587, ...). */
int config_service_standard_port(enum config_service service);

/* Loads path into *cfg. On error returns -1 and sets *error_r (allocated,
 * caller frees) to "FILE:LINE: message". */
int config_load(const char *path, struct config *cfg, char **error_r);
void config_free(struct config *cfg);

/* Parses a queue_tls_policy value ("example.org:verify, .example.net:encrypt,
 * *:may"; commas or spaces between entries) into an allocated array. 0, or
 * -1 with *why_r saying what is wrong (static text). */
int config_tls_policy_parse(const char *text, struct config_tls_rule **rules_r, size_t *n_r,
    const char **why_r);
void config_tls_rules_free(struct config_tls_rule **rules, size_t n);
/* The level for a destination domain (or host name): an exact entry, else
 * the closest ".parent" entry, else "*", else CONFIG_TLS_MAY. */
enum config_tls_level config_tls_level_for(const struct config_tls_rule *rules, size_t n,
    const char *domain);
const char *config_tls_level_name(enum config_tls_level level);

/* Finds the config file: the given path, else ./petrel.conf, else
 * /etc/petrel/petrel.conf. Returns an allocated string, or NULL with
 * *error_r set when none exists. */
char *config_locate(const char *given, char **error_r);

/* Values that `petrel init` puts in place of the built-in defaults. */
struct config_init {
	const char *hostname;
	const char *bind;       /* address(es) for listeners, comma-separated */
	int port_base;
};

/* Writes the documented config file that `petrel init` creates. */
void config_write_template(FILE *out, const struct config_init *init);
/* Writes the reference (Markdown) of every key; it is docs/CONFIG.md. */
void config_write_reference(FILE *out);

#endif
