/*
 * libunbound behind dns.h. unbound resolves on its own thread (ub_ctx_async)
 * and signals results on ub_fd(), which the event loop watches; ub_process()
 * then runs the callbacks on the loop's thread.
 *
 * An address query is two unbound queries (AAAA and A) answered together.
 */
#include "dns/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "core/xmalloc.h"

#define RR_A 1
#define RR_MX 15
#define RR_AAAA 28

struct dns_part {
	struct dns_query *q;
	int id;                 /* unbound's async id */
	int pending;
	enum dns_status status;
	char error[96];
};

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *prev, *next;
	int is_mx;
	dns_mx_fn *mx_fn;
	dns_addr_fn *addr_fn;
	void *arg;
	int port;
	struct dns_part parts[2];   /* MX: [0]; address: AAAA [0], A [1] */
	struct dns_mx mx[DNS_MX_MAX];
	size_t nmx;
	struct dns_addr addrs[DNS_ADDR_MAX];
	size_t naddrs;
	struct dns_addr v4[DNS_ADDR_MAX];  /* A answers, appended after AAAA */
	size_t nv4;
};

struct dns_resolver {
	struct ub_ctx *ctx;
	struct event *ev;
	struct dns_query *queries;
};

int
dns_parse_ip_port(const char *s, int default_port, struct dns_addr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_s = NULL, *end;
	size_t len;
	long port = default_port;
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return -1;
		len = (size_t)(end - s - 1);
		memcpy(host, s + 1, len < sizeof(host) ? len : 0);
		if (len >= sizeof(host))
			return -1;
		host[len] = '\0';
		if (end[1] == ':')
			port_s = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else {
		end = strchr(s, ':');
		if (end != NULL && strchr(end + 1, ':') != NULL)
			end = NULL;     /* a bare IPv6 address */
		len = end != NULL ? (size_t)(end - s) : strlen(s);
		if (len >= sizeof(host))
			return -1;
		memcpy(host, s, len);
		host[len] = '\0';
		if (end != NULL)
			port_s = end + 1;
	}
	if (port_s != NULL) {
		char *e;

		port = strtol(port_s, &e, 10);
		if (*port_s == '\0' || *e != '\0' || port < 1 || port > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

const char *
dns_addr_str(const struct dns_addr *a, char *out, size_t size)
{
	const void *p = a->sa.ss_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)&a->sa)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)&a->sa)->sin_addr;

	if (inet_ntop(a->sa.ss_family, p, out, (socklen_t)size) == NULL)
		snprintf(out, size, "?");
	return out;
}

static void
resolver_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;

	ub_process(r->ctx);
}

int
dns_resolver_new(struct event_base *base, const char *server, struct dns_resolver **r_r,
    char **error_r)
{
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	int err;

	if ((r->ctx = ub_ctx_create()) == NULL) {
		free(r);
		*error_r = xstrdup("dns: cannot create a resolver");
		return -1;
	}
	/* Test servers run on loopback; unbound refuses to ask it by default. */
	ub_ctx_set_option(r->ctx, "do-not-query-localhost:", "no");
	if (strcmp(server, "system") == 0) {
		if ((err = ub_ctx_resolvconf(r->ctx, NULL)) != 0) {
			*error_r = xasprintf("dns: /etc/resolv.conf: %s", ub_strerror(err));
			goto fail;
		}
	} else {
		struct dns_addr a;
		char ip[INET6_ADDRSTRLEN], fwd[INET6_ADDRSTRLEN + 8];
		int port;

		if (dns_parse_ip_port(server, 53, &a) < 0) {
			*error_r = xasprintf("dns: bad resolver address '%s' (expected system, "
			    "IP or IP:PORT)", server);
			goto fail;
		}
		port = ntohs(a.sa.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&a.sa)->sin6_port :
		    ((struct sockaddr_in *)&a.sa)->sin_port);
		snprintf(fwd, sizeof(fwd), "%s@%d", dns_addr_str(&a, ip, sizeof(ip)), port);
		/* The server given is trusted with every name, the special-use
		 * test. (RFC 6761) included, which unbound otherwise answers
		 * itself with NXDOMAIN: test set-ups publish their MX there. */
		ub_ctx_set_option(r->ctx, "local-zone:", "test. transparent");
		if ((err = ub_ctx_set_fwd(r->ctx, fwd)) != 0) {
			*error_r = xasprintf("dns: %s: %s", fwd, ub_strerror(err));
			goto fail;
		}
	}
	if ((err = ub_ctx_async(r->ctx, 1)) != 0) {
		*error_r = xasprintf("dns: %s", ub_strerror(err));
		goto fail;
	}
	r->ev = event_new(base, ub_fd(r->ctx), EV_READ | EV_PERSIST, resolver_readable, r);
	if (r->ev == NULL || event_add(r->ev, NULL) < 0) {
		*error_r = xstrdup("dns: cannot watch the resolver");
		goto fail;
	}
	*r_r = r;
	return 0;
fail:
	if (r->ev != NULL)
		event_free(r->ev);
	ub_ctx_delete(r->ctx);
	free(r);
	return -1;
}

static void
query_unlink(struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		q->r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
}

void
dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;
	struct dns_query *q;

	if (r == NULL)
		return;
	while ((q = r->queries) != NULL)
		dns_cancel(&q);
	event_free(r->ev);
	ub_ctx_delete(r->ctx);
	free(r);
	*rp = NULL;
}

void
dns_cancel(struct dns_query **qp)
{
	struct dns_query *q = *qp;
	int i;

	if (q == NULL)
		return;
	for (i = 0; i < 2; i++)
		if (q->parts[i].pending)
			ub_cancel(q->r->ctx, q->parts[i].id);
	query_unlink(q);
	free(q);
	*qp = NULL;
}

/* A domain name in wire format, uncompressed (unbound hands rdata so). */
static int
wire_name(const unsigned char *p, size_t len, size_t *used, char *out, size_t outsize)
{
	size_t i = 0, o = 0;

	for (;;) {
		unsigned lab;

		if (i >= len)
			return -1;
		lab = p[i++];
		if (lab == 0)
			break;
		if (lab > 63 || i + lab > len || o + lab + 2 > outsize)
			return -1;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, p + i, lab);
		o += lab;
		i += lab;
	}
	out[o] = '\0';
	*used = i;
	return 0;
}

int
dns_parse_mx_rdata(const unsigned char *data, size_t len, struct dns_mx *out)
{
	size_t used;
	size_t i;

	if (len < 3)
		return -1;
	out->preference = (unsigned)data[0] << 8 | data[1];
	if (wire_name(data + 2, len - 2, &used, out->host, sizeof(out->host)) < 0 ||
	    used != len - 2)
		return -1;
	for (i = 0; out->host[i] != '\0'; i++) {
		unsigned char c = (unsigned char)out->host[i];

		/* A host name is letters, digits, hyphens and dots (RFC 1123). */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return -1;
	}
	return 0;
}

static enum dns_status
result_status(struct dns_part *p, int err, struct ub_result *res)
{
	if (err != 0) {
		snprintf(p->error, sizeof(p->error), "%s", ub_strerror(err));
		return DNS_TEMPFAIL;
	}
	if (res->rcode == 3 || res->nxdomain) {
		snprintf(p->error, sizeof(p->error), "NXDOMAIN");
		return DNS_NXDOMAIN;
	}
	if (res->rcode != 0) {
		snprintf(p->error, sizeof(p->error), "DNS rcode %d", res->rcode);
		return DNS_TEMPFAIL;
	}
	if (!res->havedata) {
		snprintf(p->error, sizeof(p->error), "no records");
		return DNS_NODATA;
	}
	return DNS_OK;
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;

	return x->preference < y->preference ? -1 : x->preference > y->preference;
}

static void
mx_done(void *data, int err, struct ub_result *res)
{
	struct dns_part *p = data;
	struct dns_query *q = p->q;
	size_t i, j;

	p->pending = 0;
	p->status = result_status(p, err, res);
	if (p->status == DNS_OK) {
		for (i = 0; res->data[i] != NULL && q->nmx < DNS_MX_MAX; i++)
			if (dns_parse_mx_rdata((unsigned char *)res->data[i], (size_t)res->len[i],
			    &q->mx[q->nmx]) == 0)
				q->nmx++;
		if (q->nmx == 0) {
			p->status = DNS_TEMPFAIL;
			snprintf(p->error, sizeof(p->error), "malformed MX records");
		}
		/* Shuffle, then a stable sort: equal preferences share the load. */
		for (i = q->nmx; i > 1; i--) {
			struct dns_mx t;

			j = (size_t)random() % i;
			t = q->mx[i - 1];
			q->mx[i - 1] = q->mx[j];
			q->mx[j] = t;
		}
		for (i = 1; i < q->nmx; i++)
			for (j = i; j > 0 && mx_cmp(&q->mx[j - 1], &q->mx[j]) > 0; j--) {
				struct dns_mx t = q->mx[j];

				q->mx[j] = q->mx[j - 1];
				q->mx[j - 1] = t;
			}
	}
	if (res != NULL)
		ub_resolve_free(res);
	query_unlink(q);
	q->mx_fn(q->arg, p->status, q->mx, q->nmx, p->status == DNS_OK ? NULL : p->error);
	free(q);
}

static void
addr_done(void *data, int err, struct ub_result *res)
{
	struct dns_part *p = data;
	struct dns_query *q = p->q;
	int v6 = p == &q->parts[0];
	enum dns_status st;
	const char *error = NULL;
	size_t i;

	p->pending = 0;
	p->status = result_status(p, err, res);
	if (p->status == DNS_OK) {
		for (i = 0; res->data[i] != NULL; i++) {
			struct dns_addr *a;

			if (v6 && res->len[i] == 16 && q->naddrs < DNS_ADDR_MAX) {
				struct sockaddr_in6 *s6;

				a = &q->addrs[q->naddrs++];
				memset(a, 0, sizeof(*a));
				s6 = (struct sockaddr_in6 *)&a->sa;
				s6->sin6_family = AF_INET6;
				s6->sin6_port = htons((uint16_t)q->port);
				memcpy(&s6->sin6_addr, res->data[i], 16);
				a->len = sizeof(*s6);
			} else if (!v6 && res->len[i] == 4 && q->nv4 < DNS_ADDR_MAX) {
				struct sockaddr_in *s4;

				a = &q->v4[q->nv4++];
				memset(a, 0, sizeof(*a));
				s4 = (struct sockaddr_in *)&a->sa;
				s4->sin_family = AF_INET;
				s4->sin_port = htons((uint16_t)q->port);
				memcpy(&s4->sin_addr, res->data[i], 4);
				a->len = sizeof(*s4);
			}
		}
	}
	if (res != NULL)
		ub_resolve_free(res);
	if (q->parts[0].pending || q->parts[1].pending)
		return;
	for (i = 0; i < q->nv4 && q->naddrs < DNS_ADDR_MAX; i++)
		q->addrs[q->naddrs++] = q->v4[i];
	if (q->naddrs > 0) {
		st = DNS_OK;
	} else {
		/* The worse of the two says what to do: a failure may hide records. */
		struct dns_part *w = q->parts[0].status == DNS_TEMPFAIL ? &q->parts[0] :
		    &q->parts[1];

		st = w->status == DNS_OK ? DNS_NODATA : w->status;
		if (q->parts[0].status == DNS_TEMPFAIL)
			st = DNS_TEMPFAIL;
		error = w->error[0] != '\0' ? w->error : "no addresses";
	}
	query_unlink(q);
	q->addr_fn(q->arg, st, q->addrs, q->naddrs, error);
	free(q);
}

static struct dns_query *
query_new(struct dns_resolver *r, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->r = r;
	q->arg = arg;
	q->parts[0].q = q;
	q->parts[1].q = q;
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->prev = q;
	r->queries = q;
	return q;
}

struct dns_query *
dns_query_mx(struct dns_resolver *r, const char *domain, dns_mx_fn *fn, void *arg)
{
	struct dns_query *q = query_new(r, arg);
	int err;

	q->is_mx = 1;
	q->mx_fn = fn;
	q->parts[0].pending = 1;
	err = ub_resolve_async(r->ctx, domain, RR_MX, 1, &q->parts[0], mx_done, &q->parts[0].id);
	if (err != 0) {
		q->parts[0].pending = 0;
		query_unlink(q);
		free(q);
		fn(arg, DNS_TEMPFAIL, NULL, 0, ub_strerror(err));
		return NULL;
	}
	return q;
}

struct dns_query *
dns_query_addr(struct dns_resolver *r, const char *host, int port, dns_addr_fn *fn,
    void *arg)
{
	struct dns_query *q = query_new(r, arg);
	int err;

	q->addr_fn = fn;
	q->port = port;
	q->parts[0].pending = q->parts[1].pending = 1;
	err = ub_resolve_async(r->ctx, host, RR_AAAA, 1, &q->parts[0], addr_done,
	    &q->parts[0].id);
	if (err != 0) {
		q->parts[0].pending = q->parts[1].pending = 0;
		query_unlink(q);
		free(q);
		fn(arg, DNS_TEMPFAIL, NULL, 0, ub_strerror(err));
		return NULL;
	}
	err = ub_resolve_async(r->ctx, host, RR_A, 1, &q->parts[1], addr_done, &q->parts[1].id);
	if (err != 0) {
		/* The AAAA answer completes the query alone. */
		q->parts[1].pending = 0;
		q->parts[1].status = DNS_TEMPFAIL;
		snprintf(q->parts[1].error, sizeof(q->parts[1].error), "%s", ub_strerror(err));
	}
	return q;
}
