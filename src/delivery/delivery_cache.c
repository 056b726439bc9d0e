/*
 * Recent recipient resolutions, so that an SMTP session can answer RCPT on
 * its I/O thread instead of sending every lookup to the worker pool (a
 * thread hop and a directory query per recipient: about a fifth of the
 * context switches of a delivered message).
 *
 * An entry is what delivery_resolve() found for an address: the accounts
 * (with their quotas) and outside addresses it leads to. It is used only
 * while the directory's stamp is the one taken before that lookup (any
 * write to the directory, from any process, changes it) and for at most
 * DELIVERY_CACHE_TTL_MS. Resolutions that needed more than the directory
 * are not kept: a mailbox with a quota (RCPT checks its usage in the
 * store) and SRS bounce addresses (their validity depends on the time).
 */
#include "delivery/delivery.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/xmalloc.h"
#include "directory/directory.h"
#include "queue/queue_srs.h"

#define DELIVERY_CACHE_BUCKETS 1024
#define DELIVERY_CACHE_MAX 4096      /* entries; when full, all go */
#define DELIVERY_CACHE_TTL_MS 10000

struct cache_entry {
	struct cache_entry *next;
	char *key;                   /* normalized address, then relay flag */
	struct directory_stamp stamp;
	uint64_t expires_ms;
	struct delivery_mailbox *mailboxes;
	size_t nmailboxes;
	char **external;
	size_t nexternal;
};

struct delivery_cache {
	pthread_mutex_t lock;
	struct cache_entry *buckets[DELIVERY_CACHE_BUCKETS];
	size_t count;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t
bucket_of(const char *key)
{
	uint64_t h = 1469598103934665603ull;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return (size_t)(h % DELIVERY_CACHE_BUCKETS);
}

static void
entry_free(struct cache_entry *e)
{
	size_t i;

	for (i = 0; i < e->nexternal; i++)
		free(e->external[i]);
	free(e->external);
	free(e->mailboxes);
	free(e->key);
	free(e);
}

static void
cache_clear(struct delivery_cache *c)
{
	struct cache_entry *e;
	size_t i;

	for (i = 0; i < DELIVERY_CACHE_BUCKETS; i++) {
		while ((e = c->buckets[i]) != NULL) {
			c->buckets[i] = e->next;
			entry_free(e);
		}
	}
	c->count = 0;
}

struct delivery_cache *
delivery_cache_new(void)
{
	struct delivery_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void
delivery_cache_free(struct delivery_cache **cp)
{
	struct delivery_cache *c = *cp;

	if (c == NULL)
		return;
	cache_clear(c);
	pthread_mutex_destroy(&c->lock);
	free(c);
	*cp = NULL;
}

/* The key of an address: NULL when it cannot be cached (SRS bounces, or an
 * address the directory cannot hold). */
static char *
cache_key(const struct delivery_services *svc, const char *address, int relay)
{
	const char *at = strrchr(address, '@');
	char *norm, *key;

	if (svc->srs != NULL && at != NULL &&
	    strcasecmp(at + 1, queue_srs_domain(svc->srs)) == 0)
		return NULL;
	if ((norm = directory_normalize_address(address)) == NULL)
		return NULL;
	key = xasprintf("%s %d", norm, relay != 0);
	free(norm);
	return key;
}

/* Unlinks and returns the entry for key, NULL if none. Lock held. */
static struct cache_entry *
cache_take(struct delivery_cache *c, const char *key)
{
	struct cache_entry **pp, *e;

	for (pp = &c->buckets[bucket_of(key)]; (e = *pp) != NULL; pp = &e->next) {
		if (strcmp(e->key, key) == 0) {
			*pp = e->next;
			c->count--;
			return e;
		}
	}
	return NULL;
}

void
delivery_cache_put(const struct delivery_services *svc, const char *address, int relay,
    const struct directory_stamp *stamp, const struct delivery_rcpt *rcpt)
{
	struct delivery_cache *c = svc->cache;
	struct cache_entry *e, *old;
	size_t i, b;
	char *key;

	if (c == NULL)
		return;
	for (i = 0; i < rcpt->nmailboxes; i++)
		if (rcpt->mailboxes[i].quota.bytes_limit != 0 ||
		    rcpt->mailboxes[i].quota.messages_limit != 0)
			return;
	if ((key = cache_key(svc, address, relay)) == NULL)
		return;
	e = xcalloc(1, sizeof(*e));
	e->key = key;
	e->stamp = *stamp;
	e->expires_ms = now_ms() + DELIVERY_CACHE_TTL_MS;
	if (rcpt->nmailboxes > 0) {
		e->mailboxes = xcalloc(rcpt->nmailboxes, sizeof(*e->mailboxes));
		memcpy(e->mailboxes, rcpt->mailboxes, rcpt->nmailboxes * sizeof(*e->mailboxes));
		e->nmailboxes = rcpt->nmailboxes;
	}
	if (rcpt->nexternal > 0) {
		e->external = xcalloc(rcpt->nexternal, sizeof(*e->external));
		for (i = 0; i < rcpt->nexternal; i++)
			e->external[i] = xstrdup(rcpt->external[i]);
		e->nexternal = rcpt->nexternal;
	}
	pthread_mutex_lock(&c->lock);
	if ((old = cache_take(c, key)) != NULL)
		entry_free(old);
	if (c->count >= DELIVERY_CACHE_MAX)
		cache_clear(c);
	b = bucket_of(key);
	e->next = c->buckets[b];
	c->buckets[b] = e;
	c->count++;
	pthread_mutex_unlock(&c->lock);
}

int
delivery_resolve_cached(const struct delivery_services *svc, const char *address, int relay,
    struct delivery_rcpt *rcpt)
{
	struct delivery_cache *c = svc->cache;
	struct directory_stamp stamp;
	struct cache_entry *e;
	char *key;
	size_t i;
	int hit = 0;

	if (c == NULL || (key = cache_key(svc, address, relay)) == NULL)
		return 0;
	directory_stamp(svc->dir, &stamp);
	pthread_mutex_lock(&c->lock);
	if ((e = cache_take(c, key)) != NULL) {
		if (directory_stamp_equal(&e->stamp, &stamp) && now_ms() < e->expires_ms) {
			if (e->nmailboxes > 0) {
				rcpt->mailboxes = xcalloc(e->nmailboxes, sizeof(*rcpt->mailboxes));
				memcpy(rcpt->mailboxes, e->mailboxes,
				    e->nmailboxes * sizeof(*rcpt->mailboxes));
				rcpt->nmailboxes = e->nmailboxes;
			}
			if (e->nexternal > 0) {
				rcpt->external = xcalloc(e->nexternal, sizeof(*rcpt->external));
				for (i = 0; i < e->nexternal; i++)
					rcpt->external[i] = xstrdup(e->external[i]);
				rcpt->nexternal = e->nexternal;
			}
			hit = 1;
			/* Back at the head of its chain. */
			e->next = c->buckets[bucket_of(key)];
			c->buckets[bucket_of(key)] = e;
			c->count++;
		} else
			entry_free(e);
	}
	pthread_mutex_unlock(&c->lock);
	free(key);
	return hit;
}
