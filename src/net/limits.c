#include "net/limits.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

struct ip_count {
	struct ip_count *next;
	unsigned char key[16];
	int count;
};

#define LIMITS_BUCKETS 4096

struct net_limits {
	pthread_mutex_t lock;
	int max_total, max_per_ip;
	int total;
	struct ip_count *buckets[LIMITS_BUCKETS];
};

struct net_limits *
net_limits_new(void)
{
	struct net_limits *l = xcalloc(1, sizeof(*l));

	pthread_mutex_init(&l->lock, NULL);
	l->max_total = l->max_per_ip = 1 << 30;
	return l;
}

void
net_limits_free(struct net_limits **lp)
{
	struct net_limits *l = *lp;
	struct ip_count *c, *next;
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < LIMITS_BUCKETS; i++)
		for (c = l->buckets[i]; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	pthread_mutex_destroy(&l->lock);
	free(l);
	*lp = NULL;
}

void
net_limits_set(struct net_limits *l, int max_total, int max_per_ip)
{
	pthread_mutex_lock(&l->lock);
	l->max_total = max_total;
	l->max_per_ip = max_per_ip;
	pthread_mutex_unlock(&l->lock);
}

static void
make_key(const struct sockaddr *addr, unsigned char key[16])
{
	memset(key, 0, 16);
	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)addr;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(key + 12, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			memcpy(key, &s6->sin6_addr, 8);  /* the /64 */
			key[15] = 6;
		}
	} else if (addr->sa_family == AF_INET) {
		memcpy(key + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
	}
}

static size_t
bucket_of(const unsigned char key[16])
{
	uint32_t h = 2166136261u;
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h % LIMITS_BUCKETS;
}

enum net_limit_result
net_limits_acquire(struct net_limits *l, const struct sockaddr *addr,
    struct net_limit_slot *slot)
{
	struct ip_count *c;
	size_t b;
	enum net_limit_result res = NET_LIMIT_OK;

	make_key(addr, slot->key);
	slot->held = 0;
	b = bucket_of(slot->key);
	pthread_mutex_lock(&l->lock);
	for (c = l->buckets[b]; c != NULL; c = c->next)
		if (memcmp(c->key, slot->key, 16) == 0)
			break;
	if (l->total >= l->max_total) {
		res = NET_LIMIT_TOTAL;
	} else if (c != NULL && c->count >= l->max_per_ip) {
		res = NET_LIMIT_PER_IP;
	} else {
		if (c == NULL) {
			c = xcalloc(1, sizeof(*c));
			memcpy(c->key, slot->key, 16);
			c->next = l->buckets[b];
			l->buckets[b] = c;
		}
		c->count++;
		l->total++;
		slot->held = 1;
	}
	pthread_mutex_unlock(&l->lock);
	return res;
}

void
net_limits_release(struct net_limits *l, struct net_limit_slot *slot)
{
	struct ip_count **cp, *c;
	size_t b;

	if (!slot->held)
		return;
	slot->held = 0;
	b = bucket_of(slot->key);
	pthread_mutex_lock(&l->lock);
	for (cp = &l->buckets[b]; (c = *cp) != NULL; cp = &c->next) {
		if (memcmp(c->key, slot->key, 16) != 0)
			continue;
		if (--c->count == 0) {
			*cp = c->next;
			free(c);
		}
		break;
	}
	l->total--;
	pthread_mutex_unlock(&l->lock);
}

int
net_limits_total(struct net_limits *l)
{
	int n;

	pthread_mutex_lock(&l->lock);
	n = l->total;
	pthread_mutex_unlock(&l->lock);
	return n;
}
