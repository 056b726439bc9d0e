#include "auth/cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/lru.h"
#include "core/xmalloc.h"

struct auth_cache_entry {
	struct auth_lru_entry lru;
	int64_t account_id;
	unsigned char stored[AUTH_CACHE_DIGEST_SIZE];
	uint64_t expires_ms;
};

struct auth_cache {
	pthread_mutex_t lock;
	struct auth_lru *table;
};

struct auth_cache *
auth_cache_new(size_t max_entries)
{
	struct auth_cache *cache = xcalloc(1, sizeof(*cache));

	pthread_mutex_init(&cache->lock, NULL);
	cache->table = auth_lru_new(max_entries, sizeof(struct auth_cache_entry));
	return cache;
}

void
auth_cache_free(struct auth_cache **cache_p)
{
	struct auth_cache *cache = *cache_p;

	if (cache == NULL)
		return;
	auth_lru_free(&cache->table);
	pthread_mutex_destroy(&cache->lock);
	free(cache);
	*cache_p = NULL;
}

int
auth_cache_lookup(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_DIGEST_SIZE],
    uint64_t now_ms, int64_t *account_id_r, unsigned char stored_r[AUTH_CACHE_DIGEST_SIZE])
{
	struct auth_cache_entry *e;
	int found = 0;

	pthread_mutex_lock(&cache->lock);
	if ((e = auth_lru_get(cache->table, key, AUTH_CACHE_DIGEST_SIZE)) != NULL) {
		if (now_ms >= e->expires_ms)
			auth_lru_remove(cache->table, e);
		else {
			*account_id_r = e->account_id;
			memcpy(stored_r, e->stored, AUTH_CACHE_DIGEST_SIZE);
			found = 1;
		}
	}
	pthread_mutex_unlock(&cache->lock);
	return found;
}

void
auth_cache_insert(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_DIGEST_SIZE],
    int64_t account_id, const unsigned char stored[AUTH_CACHE_DIGEST_SIZE],
    uint64_t expires_ms)
{
	struct auth_cache_entry *e;

	pthread_mutex_lock(&cache->lock);
	e = auth_lru_put(cache->table, key, AUTH_CACHE_DIGEST_SIZE);
	e->account_id = account_id;
	memcpy(e->stored, stored, AUTH_CACHE_DIGEST_SIZE);
	e->expires_ms = expires_ms;
	pthread_mutex_unlock(&cache->lock);
}

void
auth_cache_remove(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_DIGEST_SIZE])
{
	struct auth_cache_entry *e;

	pthread_mutex_lock(&cache->lock);
	if ((e = auth_lru_get(cache->table, key, AUTH_CACHE_DIGEST_SIZE)) != NULL)
		auth_lru_remove(cache->table, e);
	pthread_mutex_unlock(&cache->lock);
}

void
auth_cache_clear(struct auth_cache *cache)
{
	pthread_mutex_lock(&cache->lock);
	auth_lru_clear(cache->table);
	pthread_mutex_unlock(&cache->lock);
}

size_t
auth_cache_count(struct auth_cache *cache)
{
	size_t n;

	pthread_mutex_lock(&cache->lock);
	n = auth_lru_count(cache->table);
	pthread_mutex_unlock(&cache->lock);
	return n;
}
