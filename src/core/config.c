#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/buf.h"
#include "core/parse.h"
#include "core/xmalloc.h"

#define CONFIG_LINE_MAX 4096

enum key_type {
	KEY_STRING, KEY_PATH, KEY_BOOL, KEY_INT, KEY_SIZE, KEY_DURATION, KEY_ENUM, KEY_LISTEN,
	KEY_TLS_POLICY  /* a string, also parsed into queue_tls_rules */
};

struct key_def {
	const char *name;
	enum key_type type;
	size_t offset;
	const char *def;
	long long min, max;            /* KEY_INT, KEY_SIZE */
	const char *const *choices;    /* KEY_ENUM: index is the stored int */
	const char *doc;
};

static const char *const log_choices[] = { "auto", "stderr", "syslog", NULL };
static const char *const level_choices[] = { "debug", "info", "warn", "error", NULL };
static const char *const tls_version_choices[] = { "1.2", "1.3", NULL };

#define OFF(field) offsetof(struct config, field)

static const struct key_def keys[] = {
	{ "hostname", KEY_STRING, OFF(hostname), "", 0, 0, NULL,
	  "The name this server uses for itself in greetings and Received: headers.\n"
	  "Empty means the system's host name." },
	{ "data_dir", KEY_PATH, OFF(data_dir), ".", 0, 0, NULL,
	  "Where the databases, mail and certificates live. A relative path is\n"
	  "relative to the directory of this file." },
	{ "user", KEY_STRING, OFF(user), "petrel", 0, 0, NULL,
	  "The unprivileged user the daemon switches to once its ports are bound\n"
	  "(when started as root). The data directory must belong to it." },
	{ "allow_root", KEY_BOOL, OFF(allow_root), "no", 0, 0, NULL,
	  "Keep running as root instead of switching to `user`. Not recommended." },
	{ "io_threads", KEY_INT, OFF(io_threads), "0", 0, 256, NULL,
	  "Threads that run connections, each with its own event loop and\n"
	  "listening sockets. 0 means one per CPU core." },
	{ "worker_threads", KEY_INT, OFF(worker_threads), "32", 1, 256, NULL,
	  "Threads for blocking work (deliveries, database writes, password\n"
	  "hashing). Most of it waits for the disk: each delivery holds a thread\n"
	  "until its group commit is durable, so this bounds the deliveries in\n"
	  "flight. Password hashes run at most one per core whatever this is." },
	{ "max_connections", KEY_INT, OFF(max_connections), "10000", 1, 1000000, NULL,
	  "Connections served at once, all listeners together. Past it, a new\n"
	  "client gets a protocol-level \"too many connections\" reply." },
	{ "max_connections_per_ip", KEY_INT, OFF(max_connections_per_ip), "50", 1, 1000000, NULL,
	  "Connections served at once from one client address (IPv6: one /64)." },
	{ "log", KEY_ENUM, OFF(log), "auto", 0, 0, log_choices,
	  "Where log lines go: stderr, syslog (facility mail), or auto: stderr\n"
	  "when it is open to a terminal, pipe or file, else syslog." },
	{ "log_level", KEY_ENUM, OFF(log_level), "info", 0, 0, level_choices,
	  "The least important lines logged: debug, info, warn or error." },
	{ "tls_certificate", KEY_PATH, OFF(tls_certificate), "tls/cert.pem", 0, 0, NULL,
	  "Default certificate chain (PEM), served when the client sends no\n"
	  "server name or one no other certificate matches. Relative to data_dir." },
	{ "tls_key", KEY_PATH, OFF(tls_key), "tls/key.pem", 0, 0, NULL,
	  "Private key of tls_certificate (PEM). Relative to data_dir." },
	{ "tls_sni_dir", KEY_PATH, OFF(tls_sni_dir), "tls/sni", 0, 0, NULL,
	  "Per-domain certificates chosen by SNI: each NAME.pem file in this\n"
	  "directory holds a private key and its certificate chain; it is served\n"
	  "to clients asking for any name the certificate covers. Relative to\n"
	  "data_dir; a missing directory means none." },
	{ "tls_ciphers", KEY_STRING, OFF(tls_ciphers),
	  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	  "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
	  "DHE-RSA-CHACHA20-POLY1305", 0, 0, NULL,
	  "TLS 1.2 cipher list (OpenSSL syntax). The default is Mozilla's\n"
	  "\"intermediate\" profile." },
	{ "tls_ciphersuites", KEY_STRING, OFF(tls_ciphersuites),
	  "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
	  0, 0, NULL, "TLS 1.3 cipher suites (OpenSSL syntax)." },
	{ "tls_min_version", KEY_ENUM, OFF(tls_min_version), "1.2", 0, 0, tls_version_choices,
	  "Oldest TLS version accepted: 1.2 or 1.3. Older versions are never\n"
	  "accepted." },
	{ "auth_penalty_initial", KEY_DURATION, OFF(auth_penalty_initial_ms), "2s", 0, 0, NULL,
	  "Delay before answering a failed login; it doubles with each further\n"
	  "failure from the same client address (IPv6: the same /48)." },
	{ "auth_penalty_max", KEY_DURATION, OFF(auth_penalty_max_ms), "15s", 0, 0, NULL,
	  "The most a failed login is delayed." },
	{ "auth_penalty_reset", KEY_DURATION, OFF(auth_penalty_reset_ms), "15m", 0, 0, NULL,
	  "An address's failure count is forgotten after this long without a\n"
	  "failure, or at once after a successful login from it." },
	{ "auth_cache_ttl", KEY_DURATION, OFF(auth_cache_ttl_ms), "60s", 0, 0, NULL,
	  "How long a successful password check is remembered, so that clients\n"
	  "that reconnect often do not pay the full hash each time. A password\n"
	  "change takes effect at once regardless. 0 disables the cache." },
	{ "auth_max_failures", KEY_INT, OFF(auth_max_failures), "3", 1, 100, NULL,
	  "Failed logins on one connection before it is closed." },
	{ "timeout_smtp", KEY_DURATION, OFF(timeout_smtp_ms), "5m", 0, 0, NULL,
	  "An SMTP client idle this long between commands is disconnected." },
	{ "timeout_smtp_data", KEY_DURATION, OFF(timeout_smtp_data_ms), "10m", 0, 0, NULL,
	  "While an SMTP client sends a message (DATA, BDAT), it is disconnected\n"
	  "when idle this long." },
	{ "smtp_max_line_length", KEY_INT, OFF(smtp_max_line_length), "2048", 512, 65536, NULL,
	  "Longest SMTP command line in octets. A longer one is answered with 500\n"
	  "and skipped up to its end." },
	{ "smtp_max_message_size", KEY_SIZE, OFF(smtp_max_message_size), "25M", 1024,
	  (long long)1 << 40, NULL,
	  "Largest message accepted (K, M, G: powers of 1024). Announced with the\n"
	  "SIZE keyword and enforced while the message streams in (552)." },
	{ "smtp_max_recipients", KEY_INT, OFF(smtp_max_recipients), "1000", 1, 100000, NULL,
	  "Recipients per message; further RCPTs get 452 4.5.3." },
	{ "smtp_soft_error_limit", KEY_INT, OFF(smtp_soft_error_limit), "10", 1, 1000, NULL,
	  "After this many errors in an SMTP session (bad commands, refused\n"
	  "recipients), every reply waits smtp_error_delay." },
	{ "smtp_hard_error_limit", KEY_INT, OFF(smtp_hard_error_limit), "20", 1, 1000, NULL,
	  "At this many errors an SMTP session is closed (421)." },
	{ "smtp_error_delay", KEY_DURATION, OFF(smtp_error_delay_ms), "10s", 0, 0, NULL,
	  "The delay before each reply once smtp_soft_error_limit is reached." },
	{ "smtp_min_data_rate", KEY_SIZE, OFF(smtp_min_data_rate), "1K", 0,
	  (long long)1 << 40, NULL,
	  "Octets per second an SMTP client must send a message at, measured over\n"
	  "each smtp_data_rate_window from the start of DATA/BDAT; a slower one\n"
	  "is disconnected (421 4.4.2). 0 means no minimum." },
	{ "smtp_data_rate_window", KEY_DURATION, OFF(smtp_data_rate_window_ms), "30s", 0, 0,
	  NULL, "The period smtp_min_data_rate is measured over." },
	{ "smtp_pregreet_delay", KEY_DURATION, OFF(smtp_pregreet_delay_ms), "500ms", 0, 0, NULL,
	  "On the MX port, a client address not seen in the last day waits this\n"
	  "long for the greeting; a client that talks first is refused. 0 turns\n"
	  "the test off." },
	{ "smtp_min_free_space", KEY_SIZE, OFF(smtp_min_free_space), "100M", 0,
	  (long long)1 << 50, NULL,
	  "Free space the data directory's file system must keep: MAIL and DATA\n"
	  "are refused with 452 4.3.1 when less than this plus the announced\n"
	  "message SIZE is free. 0 turns the check off." },
	{ "smtp_received_auth", KEY_BOOL, OFF(smtp_received_auth), "no", 0, 0, NULL,
	  "Name the authenticated user in the Received: field of mail sent on the\n"
	  "submission ports (\"(Authenticated sender: USER)\")." },
	{ "timeout_imap", KEY_DURATION, OFF(timeout_imap_ms), "30m", 0, 0, NULL,
	  "An IMAP client idle this long (outside IDLE) is disconnected." },
	{ "timeout_pop3", KEY_DURATION, OFF(timeout_pop3_ms), "10m", 0, 0, NULL,
	  "A POP3 client idle this long is disconnected." },
	{ "shutdown_grace", KEY_DURATION, OFF(shutdown_grace_ms), "30s", 0, 0, NULL,
	  "On SIGTERM, how long transactions in flight may take to finish\n"
	  "before the remaining connections are closed." },
	/* --- the outbound queue (src/queue) --- */
	{ "queue_delivery", KEY_BOOL, OFF(queue_delivery), "yes", 0, 0, NULL,
	  "Deliver queued mail. `no` keeps everything in the queue, untouched\n"
	  "(maintenance, tests that look at the spool); `petrel queue` still\n"
	  "lists it." },
	{ "queue_dns_resolver", KEY_STRING, OFF(queue_dns_resolver), "system", 0, 0, NULL,
	  "DNS server the queue asks for MX and address records: `system` (the\n"
	  "servers in /etc/resolv.conf) or an address, IP or IP:PORT\n"
	  "(IPv6 in brackets: [::1]:53), queried directly." },
	{ "queue_smtp_port", KEY_INT, OFF(queue_smtp_port), "25", 1, 65535, NULL,
	  "Port of the mail exchangers the queue delivers to." },
	{ "queue_retry_initial", KEY_DURATION, OFF(queue_retry_initial_ms), "5m", 0, 0, NULL,
	  "Wait after a first temporary failure (4xx reply, unreachable server)\n"
	  "before the next attempt; it doubles after each failure up to\n"
	  "queue_retry_max." },
	{ "queue_retry_max", KEY_DURATION, OFF(queue_retry_max_ms), "1h", 0, 0, NULL,
	  "The longest wait between two attempts." },
	{ "queue_lifetime", KEY_DURATION, OFF(queue_lifetime_ms), "5d", 0, 0, NULL,
	  "How long a message is retried before it is bounced to its sender." },
	{ "queue_delay_notice", KEY_DURATION, OFF(queue_delay_notice_ms), "4h", 0, 0, NULL,
	  "After this long undelivered, the sender gets one \"delayed\" notice\n"
	  "(RFC 3464) per recipient, if the recipient's NOTIFY allows it.\n"
	  "0 sends none." },
	{ "queue_connect_timeout", KEY_DURATION, OFF(queue_connect_timeout_ms), "30s", 0, 0,
	  NULL, "How long to wait for a TCP connection to a mail exchanger." },
	{ "queue_command_timeout", KEY_DURATION, OFF(queue_command_timeout_ms), "5m", 0, 0,
	  NULL, "How long to wait for the greeting and for each reply to a command\n"
	  "(RFC 5321 4.5.3.2), TLS handshakes included." },
	{ "queue_data_timeout", KEY_DURATION, OFF(queue_data_timeout_ms), "10m", 0, 0, NULL,
	  "How long to wait while sending the message and for the reply after it." },
	{ "queue_max_connections", KEY_INT, OFF(queue_max_connections), "100", 1, 100000,
	  NULL, "Outgoing SMTP connections open at once." },
	{ "queue_max_connections_per_domain", KEY_INT, OFF(queue_max_connections_per_domain),
	  "10", 1, 10000, NULL, "Outgoing SMTP connections open at once to one destination\n"
	  "domain (or to the relay host)." },
	{ "queue_max_messages_per_connection", KEY_INT,
	  OFF(queue_max_messages_per_connection), "100", 1, 100000, NULL,
	  "Messages sent over one connection before it is closed; waiting\n"
	  "messages for the same destination reuse an open connection." },
	{ "queue_relayhost", KEY_STRING, OFF(queue_relayhost), "", 0, 0, NULL,
	  "Send all remote mail through this server (a smarthost) instead of the\n"
	  "recipients' mail exchangers: HOST or HOST:PORT (port 25 by default;\n"
	  "HOST may be an IP address, IPv6 in brackets). Empty: deliver directly." },
	{ "queue_relayhost_user", KEY_STRING, OFF(queue_relayhost_user), "", 0, 0, NULL,
	  "User name for AUTH PLAIN at the relay host (only over TLS). Empty:\n"
	  "no authentication." },
	{ "queue_relayhost_password_file", KEY_STRING, OFF(queue_relayhost_password_file),
	  "", 0, 0, NULL,
	  "File whose first line is the relay host password. Relative to data_dir." },
	{ "queue_tls_ca_file", KEY_STRING, OFF(queue_tls_ca_file), "", 0, 0, NULL,
	  "CA certificates (PEM) that verify mail exchangers when a message asks\n"
	  "for REQUIRETLS or queue_tls_policy says verify (otherwise TLS is\n"
	  "opportunistic and unverified, the relay host included). Empty: the\n"
	  "system's. Relative to data_dir." },
	{ "queue_tls_policy", KEY_TLS_POLICY, OFF(queue_tls_policy), "", 0, 0, NULL,
	  "TLS the queue requires per destination, as DOMAIN:LEVEL entries\n"
	  "separated by commas: `example.org:verify, .example.net:encrypt`.\n"
	  "LEVEL is none (never STARTTLS), may (STARTTLS when offered, any\n"
	  "certificate: the default), encrypt (TLS required, any certificate) or\n"
	  "verify (TLS required; the certificate must chain to queue_tls_ca_file\n"
	  "and name the MX host). DOMAIN is a recipient domain, `.example.net`\n"
	  "for every domain under example.net, or `*` for all others; with a\n"
	  "relay host, the relay host's name is looked up instead. Mail to a\n"
	  "destination whose servers cannot give what its level requires is\n"
	  "deferred (then bounced at queue_lifetime), never sent in clear.\n"
	  "MX records are not DNSSEC-validated: verify defeats a man in the\n"
	  "middle of the connection, not a forged MX record." },
	{ "queue_srs_domain", KEY_STRING, OFF(queue_srs_domain), "", 0, 0, NULL,
	  "Domain of the SRS addresses (Sender Rewriting Scheme) that replace\n"
	  "the sender of mail forwarded to other domains, so that SPF passes\n"
	  "there. Empty: hostname. Its MX must be this server." },
	{ "listen", KEY_LISTEN, 0, NULL, 0, 0, NULL,
	  "A listening socket: `listen = SERVICE ADDRESS:PORT`, repeated once per\n"
	  "socket. SERVICE is mx (SMTP from the Internet, port 25), submission\n"
	  "(587 and the alternate 2525, STARTTLS), submissions (465, implicit\n"
	  "TLS), imap (143, STARTTLS), imaps (993), pop3 (110, STLS) or pop3s\n"
	  "(995). IPv6 addresses go in brackets: [::1]:143." },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct {
	const char *name;
	int implicit_tls;
	int port;
} services[SERVICE_COUNT] = {
	[SERVICE_MX] = { "mx", 0, 25 },
	[SERVICE_SUBMISSION] = { "submission", 0, 587 },
	[SERVICE_SUBMISSIONS] = { "submissions", 1, 465 },
	[SERVICE_IMAP] = { "imap", 0, 143 },
	[SERVICE_IMAPS] = { "imaps", 1, 993 },
	[SERVICE_POP3] = { "pop3", 0, 110 },
	[SERVICE_POP3S] = { "pop3s", 1, 995 },
};

const char *
config_service_name(enum config_service service)
{
	return services[service].name;
}

int
config_service_implicit_tls(enum config_service service)
{
	return services[service].implicit_tls;
}

int
config_service_standard_port(enum config_service service)
{
	return services[service].port;
}

static const struct key_def *
key_find(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* "ADDR:PORT" or "[ADDR]:PORT" with a numeric address. */
static int
parse_listen(const char *value, struct config_listen *l, const char **why)
{
	char service[32], rest[256], addr[INET6_ADDRSTRLEN + 1];
	const char *colon;
	unsigned char tmp[16];
	long long port;
	size_t alen;
	int i;

	if (sscanf(value, "%31s %255s", service, rest) != 2) {
		*why = "expected `listen = SERVICE ADDRESS:PORT`";
		return -1;
	}
	for (i = 0; i < SERVICE_COUNT; i++)
		if (strcmp(service, services[i].name) == 0)
			break;
	if (i == SERVICE_COUNT) {
		*why = "unknown service (expected mx, submission, submissions, "
		       "imap, imaps, pop3 or pop3s)";
		return -1;
	}
	colon = strrchr(rest, ':');
	if (colon == NULL) {
		*why = "the address needs a port (ADDRESS:PORT)";
		return -1;
	}
	if (rest[0] == '[') {
		if (colon == rest || colon[-1] != ']') {
			*why = "bad bracketed IPv6 address";
			return -1;
		}
		alen = (size_t)(colon - rest) - 2;
		if (alen >= sizeof(addr)) {
			*why = "bad IPv6 address";
			return -1;
		}
		memcpy(addr, rest + 1, alen);
	} else {
		alen = (size_t)(colon - rest);
		if (alen >= sizeof(addr)) {
			*why = "bad address";
			return -1;
		}
		memcpy(addr, rest, alen);
	}
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, tmp) != 1 && inet_pton(AF_INET6, addr, tmp) != 1) {
		*why = "the address must be a numeric IPv4 or IPv6 address";
		return -1;
	}
	if (parse_int(colon + 1, 1, 65535, &port) < 0) {
		*why = "the port must be a number from 1 to 65535";
		return -1;
	}
	l->service = (enum config_service)i;
	l->address = xstrdup(addr);
	l->port = (int)port;
	return 0;
}

/* Stores value for key k into cfg; *why explains a refusal. */
static int
set_value(struct config *cfg, const struct key_def *k, const char *value,
    int line, const char **why)
{
	void *field = (char *)cfg + k->offset;
	long long n;
	uint64_t ms;
	int b, i;

	switch (k->type) {
	case KEY_STRING:
	case KEY_PATH:
		if (k->type == KEY_PATH && value[0] == '\0') {
			*why = "a path cannot be empty";
			return -1;
		}
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case KEY_BOOL:
		if (parse_bool(value, &b) < 0) {
			*why = "expected yes or no";
			return -1;
		}
		*(int *)field = b;
		return 0;
	case KEY_INT:
		if (parse_int(value, k->min, k->max, &n) < 0) {
			static char msg[96];

			snprintf(msg, sizeof(msg), "expected a whole number from %lld to %lld",
			    k->min, k->max);
			*why = msg;
			return -1;
		}
		*(int *)field = (int)n;
		return 0;
	case KEY_SIZE: {
		uint64_t size;

		if (parse_size(value, &size) < 0 || size < (uint64_t)k->min ||
		    size > (uint64_t)k->max) {
			*why = "expected a size such as 512K, 25M or 1G (within the key's range)";
			return -1;
		}
		*(uint64_t *)field = size;
		return 0;
	}
	case KEY_DURATION:
		if (parse_duration(value, &ms) < 0) {
			*why = "expected a duration such as 500ms, 30s, 5m, 1h or 2d";
			return -1;
		}
		*(uint64_t *)field = ms;
		return 0;
	case KEY_ENUM:
		for (i = 0; k->choices[i] != NULL; i++) {
			if (strcmp(value, k->choices[i]) == 0) {
				*(int *)field = i;
				return 0;
			}
		}
		*why = "not one of the allowed values (see the comment above the key)";
		return -1;
	case KEY_TLS_POLICY: {
		struct config_tls_rule *rules;
		size_t nrules;

		if (config_tls_policy_parse(value, &rules, &nrules, why) < 0)
			return -1;
		config_tls_rules_free(&cfg->queue_tls_rules, cfg->nqueue_tls_rules);
		cfg->queue_tls_rules = rules;
		cfg->nqueue_tls_rules = nrules;
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	}
	case KEY_LISTEN: {
		struct config_listen l;

		if (parse_listen(value, &l, why) < 0)
			return -1;
		l.line = line;
		cfg->listen = xreallocarray(cfg->listen, (size_t)cfg->nlisten + 1,
		    sizeof(*cfg->listen));
		cfg->listen[cfg->nlisten++] = l;
		return 0;
	}
	}
	return -1;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static char *
absolute_path(const char *base_dir, const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	if (strcmp(path, ".") == 0)
		return xstrdup(base_dir);
	return xasprintf("%s/%s", base_dir, path);
}

static char *
dir_of(const char *path)
{
	char cwd[PATH_MAX];
	const char *slash = strrchr(path, '/');
	char *dir;

	if (slash == NULL)
		dir = xstrdup(".");
	else if (slash == path)
		dir = xstrdup("/");
	else
		dir = xstrndup(path, (size_t)(slash - path));
	if (dir[0] != '/') {
		char *abs;

		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return dir;
		abs = strcmp(dir, ".") == 0 ? xstrdup(cwd) : xasprintf("%s/%s", cwd, dir);
		free(dir);
		dir = abs;
	}
	return dir;
}

static int
load_defaults(struct config *cfg)
{
	const char *why;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NKEYS; i++)
		if (keys[i].def != NULL && set_value(cfg, &keys[i], keys[i].def, 0, &why) < 0)
			abort(); /* a default in the table is wrong */
	return 0;
}

static void
resolve(struct config *cfg)
{
	char *base = dir_of(cfg->path), *p;

	p = absolute_path(base, cfg->data_dir);
	free(cfg->data_dir);
	cfg->data_dir = p;
	p = absolute_path(cfg->data_dir, cfg->tls_certificate);
	free(cfg->tls_certificate);
	cfg->tls_certificate = p;
	p = absolute_path(cfg->data_dir, cfg->tls_key);
	free(cfg->tls_key);
	cfg->tls_key = p;
	p = absolute_path(cfg->data_dir, cfg->tls_sni_dir);
	free(cfg->tls_sni_dir);
	cfg->tls_sni_dir = p;
	free(base);
	if (cfg->queue_relayhost_password_file[0] != '\0') {
		p = absolute_path(cfg->data_dir, cfg->queue_relayhost_password_file);
		free(cfg->queue_relayhost_password_file);
		cfg->queue_relayhost_password_file = p;
	}
	if (cfg->queue_tls_ca_file[0] != '\0') {
		p = absolute_path(cfg->data_dir, cfg->queue_tls_ca_file);
		free(cfg->queue_tls_ca_file);
		cfg->queue_tls_ca_file = p;
	}

	if (cfg->hostname[0] == '\0') {
		char host[256];

		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		free(cfg->hostname);
		cfg->hostname = xstrdup(host);
	}
	if (cfg->io_threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->io_threads = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
	}
	/* tls_min_version is stored as the choice index. */
	cfg->tls_min_version = cfg->tls_min_version == 1 ? 13 : 12;
}

int
config_load(const char *path, struct config *cfg, char **error_r)
{
	char line[CONFIG_LINE_MAX + 2];
	unsigned char seen[NKEYS];
	FILE *fp;
	int lineno = 0, i, j;

	*error_r = NULL;
	load_defaults(cfg);
	cfg->path = xstrdup(path);
	memset(seen, 0, sizeof(seen));
	if ((fp = fopen(path, "r")) == NULL) {
		*error_r = xasprintf("%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		const struct key_def *k;
		char *s, *eq, *key, *value;
		const char *why;
		size_t len = strlen(line);

		lineno++;
		if (len > CONFIG_LINE_MAX && line[len - 1] != '\n') {
			*error_r = xasprintf("%s:%d: line longer than %d bytes", path,
			    lineno, CONFIG_LINE_MAX);
			goto fail;
		}
		if (memchr(line, '\0', len) != NULL || strlen(line) != len) {
			*error_r = xasprintf("%s:%d: NUL byte in line", path, lineno);
			goto fail;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			*error_r = xasprintf("%s:%d: expected `key = value`", path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if ((k = key_find(key)) == NULL) {
			*error_r = xasprintf("%s:%d: unknown key '%s'", path, lineno, key);
			goto fail;
		}
		if (k->type != KEY_LISTEN) {
			if (seen[k - keys]) {
				*error_r = xasprintf("%s:%d: '%s' is set twice", path, lineno, key);
				goto fail;
			}
			seen[k - keys] = 1;
		}
		if (set_value(cfg, k, value, lineno, &why) < 0) {
			*error_r = xasprintf("%s:%d: bad value for '%s': %s", path, lineno,
			    key, why);
			goto fail;
		}
	}
	if (ferror(fp)) {
		*error_r = xasprintf("%s: read error: %s", path, strerror(errno));
		goto fail;
	}
	fclose(fp);
	fp = NULL;
	if (cfg->nlisten == 0) {
		*error_r = xasprintf("%s: no `listen =` line: nothing to serve", path);
		goto fail;
	}
	for (i = 0; i < cfg->nlisten; i++) {
		for (j = 0; j < i; j++) {
			if (cfg->listen[i].port == cfg->listen[j].port &&
			    strcmp(cfg->listen[i].address, cfg->listen[j].address) == 0) {
				*error_r = xasprintf("%s:%d: %s:%d is already used on line %d",
				    path, cfg->listen[i].line, cfg->listen[i].address,
				    cfg->listen[i].port, cfg->listen[j].line);
				goto fail;
			}
		}
	}
	if (cfg->queue_retry_max_ms < cfg->queue_retry_initial_ms) {
		*error_r = xasprintf("%s: queue_retry_max is below queue_retry_initial", path);
		goto fail;
	}
	if (cfg->auth_penalty_max_ms < cfg->auth_penalty_initial_ms) {
		*error_r = xasprintf("%s: auth_penalty_max is below auth_penalty_initial", path);
		goto fail;
	}
	resolve(cfg);
	return 0;
fail:
	if (fp != NULL)
		fclose(fp);
	config_free(cfg);
	return -1;
}

void
config_free(struct config *cfg)
{
	size_t i;
	int l;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].type == KEY_STRING || keys[i].type == KEY_PATH ||
		    keys[i].type == KEY_TLS_POLICY)
			free(*(char **)((char *)cfg + keys[i].offset));
	config_tls_rules_free(&cfg->queue_tls_rules, cfg->nqueue_tls_rules);
	for (l = 0; l < cfg->nlisten; l++)
		free(cfg->listen[l].address);
	free(cfg->listen);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

/* --- queue_tls_policy ----------------------------------------------------- */

static const char *const tls_level_names[] = { "none", "may", "encrypt", "verify", NULL };

const char *
config_tls_level_name(enum config_tls_level level)
{
	return tls_level_names[level];
}

void
config_tls_rules_free(struct config_tls_rule **rules, size_t n)
{
	size_t i;

	if (*rules == NULL)
		return;
	for (i = 0; i < n; i++)
		free((*rules)[i].domain);
	free(*rules);
	*rules = NULL;
}

/* A domain, ".domain" or "*": letters, digits, '-' and '.' (IPv4 literals
 * of relay hosts fit). */
static int
tls_rule_domain_ok(const char *d, size_t len)
{
	size_t i;

	if (len == 1 && d[0] == '*')
		return 1;
	if (len == 0 || len > 255 || (len == 1 && d[0] == '.'))
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (!isalnum(c) && c != '-' && c != '.')
			return 0;
		if (c == '.' && i + 1 < len && d[i + 1] == '.')
			return 0;
	}
	return d[len - 1] != '.';
}

int
config_tls_policy_parse(const char *text, struct config_tls_rule **rules_r, size_t *n_r,
    const char **why_r)
{
	struct config_tls_rule *rules = NULL;
	size_t n = 0, i;
	const char *p = text;

	*rules_r = NULL;
	*n_r = 0;
	for (;;) {
		const char *start, *colon, *end;
		char *domain;
		int level;

		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p))
			p++;
		end = p;
		colon = memchr(start, ':', (size_t)(end - start));
		if (colon == NULL) {
			*why_r = "expected DOMAIN:LEVEL entries (example.org:verify)";
			goto fail;
		}
		if (!tls_rule_domain_ok(start, (size_t)(colon - start))) {
			*why_r = "bad domain (a domain, .domain for its subdomains, or *)";
			goto fail;
		}
		for (level = 0; tls_level_names[level] != NULL; level++)
			if (strlen(tls_level_names[level]) == (size_t)(end - colon - 1) &&
			    strncasecmp(colon + 1, tls_level_names[level],
			    (size_t)(end - colon - 1)) == 0)
				break;
		if (tls_level_names[level] == NULL) {
			*why_r = "bad level (none, may, encrypt or verify)";
			goto fail;
		}
		domain = xstrndup(start, (size_t)(colon - start));
		for (i = 0; domain[i] != '\0'; i++)
			domain[i] = (char)tolower((unsigned char)domain[i]);
		for (i = 0; i < n; i++) {
			if (strcmp(rules[i].domain, domain) == 0) {
				free(domain);
				*why_r = "a domain is listed twice";
				goto fail;
			}
		}
		rules = xreallocarray(rules, n + 1, sizeof(*rules));
		rules[n].domain = domain;
		rules[n].level = (enum config_tls_level)level;
		n++;
	}
	*rules_r = rules;
	*n_r = n;
	return 0;
fail:
	config_tls_rules_free(&rules, n);
	return -1;
}

static const struct config_tls_rule *
tls_rule_find(const struct config_tls_rule *rules, size_t n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(rules[i].domain) == len && strncasecmp(rules[i].domain, name, len) == 0)
			return &rules[i];
	return NULL;
}

enum config_tls_level
config_tls_level_for(const struct config_tls_rule *rules, size_t n, const char *domain)
{
	const struct config_tls_rule *r;
	size_t len = strlen(domain);
	const char *dot;

	while (len > 0 && domain[len - 1] == '.')
		len--;
	if ((r = tls_rule_find(rules, n, domain, len)) != NULL)
		return r->level;
	/* ".parent" entries, the closest parent first */
	for (dot = memchr(domain, '.', len); dot != NULL;
	    dot = memchr(dot + 1, '.', len - (size_t)(dot + 1 - domain))) {
		if ((r = tls_rule_find(rules, n, dot, len - (size_t)(dot - domain))) != NULL)
			return r->level;
	}
	if ((r = tls_rule_find(rules, n, "*", 1)) != NULL)
		return r->level;
	return CONFIG_TLS_MAY;
}

char *
config_locate(const char *given, char **error_r)
{
	*error_r = NULL;
	if (given != NULL)
		return xstrdup(given);
	if (access("petrel.conf", F_OK) == 0)
		return xstrdup("petrel.conf");
	if (access("/etc/petrel/petrel.conf", F_OK) == 0)
		return xstrdup("/etc/petrel/petrel.conf");
	*error_r = xstrdup("no config file: ./petrel.conf and /etc/petrel/petrel.conf "
	    "do not exist (use -c FILE, or create one with `petrel init DIR`)");
	return NULL;
}

static void
write_comment(FILE *out, const char *prefix, const char *text)
{
	const char *p = text, *nl;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		fprintf(out, "%s%.*s\n", prefix, (int)(nl - p), p);
		p = *nl == '\n' ? nl + 1 : nl;
	}
}

static void
write_listen_lines(FILE *out, const struct config_init *init)
{
	static const enum config_service order[] = {
		SERVICE_MX, SERVICE_SUBMISSION, SERVICE_SUBMISSIONS, SERVICE_SUBMISSION,
		SERVICE_IMAP, SERVICE_IMAPS, SERVICE_POP3, SERVICE_POP3S,
	};
	const char *bind = init->bind != NULL ? init->bind : "0.0.0.0,::";
	char *copy = xstrdup(bind), *save = NULL, *addr;
	size_t i;

	for (addr = strtok_r(copy, ",", &save); addr != NULL;
	     addr = strtok_r(NULL, ",", &save)) {
		int v6 = strchr(addr, ':') != NULL;

		for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
			/* The second submission listener is the alternate port. */
			int port = i == 3 ? 2525 : config_service_standard_port(order[i]);

			fprintf(out, "listen = %-11s %s%s%s:%d\n", config_service_name(order[i]),
			    v6 ? "[" : "", addr, v6 ? "]" : "", init->port_base + port);
		}
	}
	free(copy);
}

void
config_write_template(FILE *out, const struct config_init *init)
{
	size_t i;

	fprintf(out,
	    "# Petrel configuration.\n"
	    "#\n"
	    "# Every key is listed with its default value and what it does. Lines\n"
	    "# starting with # are comments. Relative paths are relative to data_dir.\n"
	    "# `petrel check` validates this file; SIGHUP makes a running server\n"
	    "# reload it.\n");
	for (i = 0; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];

		fprintf(out, "\n");
		write_comment(out, "# ", k->doc);
		if (k->type == KEY_LISTEN) {
			write_listen_lines(out, init);
			continue;
		}
		if (strcmp(k->name, "hostname") == 0 && init->hostname != NULL)
			fprintf(out, "%s = %s\n", k->name, init->hostname);
		else
			fprintf(out, "%s = %s\n", k->name, k->def);
	}
}

void
config_write_reference(FILE *out)
{
	size_t i;

	fprintf(out,
	    "# Configuration reference\n\n"
	    "Petrel reads one file, `petrel.conf` (`petrel -c FILE`, else\n"
	    "`./petrel.conf`, else `/etc/petrel/petrel.conf`). Each line is\n"
	    "`key = value`; `#` starts a comment line. `petrel init` writes the file\n"
	    "with every key, its default and its description. An unknown key, a key\n"
	    "set twice, a bad value or a missing file stops start-up with the file\n"
	    "and line. Durations take a unit (`ms`, `s`, `m`, `h`, `d`; a bare number\n"
	    "is seconds). SIGHUP reloads the file and the certificates, and the queue\n"
	    "takes its new settings (all but queue_delivery, queue_dns_resolver and\n"
	    "queue_srs_domain); listeners and thread counts only change at a restart.\n\n"
	    "This file is generated by `petrel config-reference`.\n\n"
	    "| key | default | meaning |\n|---|---|---|\n");
	for (i = 0; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];
		const char *p;

		fprintf(out, "| `%s` | %s%s%s | ", k->name, k->def != NULL && *k->def ? "`" : "",
		    k->def == NULL ? "(see `petrel init`)" : *k->def ? k->def : "(empty)",
		    k->def != NULL && *k->def ? "`" : "");
		for (p = k->doc; *p != '\0'; p++) {
			if (*p == '\n')
				fputc(' ', out);
			else if (*p == '|')
				fputs("\\|", out);
			else
				fputc(*p, out);
		}
		fprintf(out, " |\n");
	}
}
