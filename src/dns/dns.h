/*
 * DNS lookups for the queue: MX records and host addresses, asynchronous,
 * on an event loop, with libunbound.
 *
 * A struct dns_resolver belongs to one event loop (its thread): queries are
 * started and their callbacks run there. The resolver asks either the
 * servers of /etc/resolv.conf ("system") or one given server (IP[:PORT]),
 * which is how tests point it at a DNS server they run on loopback. No
 * DNSSEC validation yet.
 *
 * A callback runs exactly once per query, unless the query is cancelled
 * (dns_cancel) or the resolver freed first; its arrays are only valid during
 * the call.
 */
#ifndef PETREL_DNS_DNS_H
#define PETREL_DNS_DNS_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns_resolver;
struct dns_query;

enum dns_status {
	DNS_OK,         /* records found */
	DNS_NODATA,     /* the name exists, without records of that type */
	DNS_NXDOMAIN,   /* no such name */
	DNS_TEMPFAIL,   /* server failure, timeout: try again later */
};

#define DNS_MX_MAX 32       /* MX records kept per domain */
#define DNS_ADDR_MAX 16     /* addresses kept per host */
#define DNS_NAME_MAX 255

struct dns_mx {
	unsigned preference;
	char host[DNS_NAME_MAX + 1]; /* "" for the null MX's "." (RFC 7505) */
};

struct dns_addr {
	struct sockaddr_storage sa;
	socklen_t len;
};

/* MX records, sorted by preference (ties in random order). */
typedef void dns_mx_fn(void *arg, enum dns_status status, const struct dns_mx *mx,
    size_t count, const char *error);
/* AAAA then A addresses. DNS_OK when either query found some; error names
 * the failure otherwise. */
typedef void dns_addr_fn(void *arg, enum dns_status status, const struct dns_addr *addrs,
    size_t count, const char *error);

/* server: "system" or an IP address with an optional port ("127.0.0.53:5353",
 * "[::1]:53"). *error_r is allocated. */
int dns_resolver_new(struct event_base *base, const char *server,
    struct dns_resolver **r_r, char **error_r);
/* Cancels every query in flight (their callbacks never run). */
void dns_resolver_free(struct dns_resolver **r);

/* Both return a handle valid until the callback runs (for dns_cancel), or
 * NULL when the query could not start: the callback then already ran with
 * DNS_TEMPFAIL. */
struct dns_query *dns_query_mx(struct dns_resolver *r, const char *domain,
    dns_mx_fn *fn, void *arg);
/* port is put in each address. */
struct dns_query *dns_query_addr(struct dns_resolver *r, const char *host, int port,
    dns_addr_fn *fn, void *arg);
void dns_cancel(struct dns_query **q);

/* Parses "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT" into out (the port
 * default_port when absent). 0, or -1 when not a numeric address. */
int dns_parse_ip_port(const char *s, int default_port, struct dns_addr *out);
/* Numeric form of an address, for logs ("192.0.2.1", "2001:db8::1"). */
const char *dns_addr_str(const struct dns_addr *a, char *out, size_t size);

/* Wire-format parse of MX rdata (for tests): 0, or -1 when malformed. */
int dns_parse_mx_rdata(const unsigned char *data, size_t len, struct dns_mx *out);

#endif
