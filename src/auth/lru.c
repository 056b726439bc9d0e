#include "auth/lru.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sodium.h>

#include "core/log.h"
#include "core/xmalloc.h"

struct auth_lru {
	struct auth_lru_entry **buckets;
	size_t nbuckets;                        /* a power of two */
	size_t count, max_entries, entry_size;
	struct auth_lru_entry *oldest, *newest;
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
};

struct auth_lru *
auth_lru_new(size_t max_entries, size_t entry_size)
{
	struct auth_lru *lru = xcalloc(1, sizeof(*lru));

	if (sodium_init() < 0) {
		log_error(NULL, "msg=\"libsodium initialisation failed\"");
		abort();
	}
	lru->max_entries = max_entries < 1 ? 1 : max_entries;
	lru->entry_size = entry_size;
	for (lru->nbuckets = 16; lru->nbuckets < lru->max_entries; lru->nbuckets *= 2)
		;
	lru->buckets = xcalloc(lru->nbuckets, sizeof(*lru->buckets));
	randombytes_buf(lru->hash_key, sizeof(lru->hash_key));
	return lru;
}

void
auth_lru_free(struct auth_lru **lru_p)
{
	struct auth_lru *lru = *lru_p;

	if (lru == NULL)
		return;
	auth_lru_clear(lru);
	free(lru->buckets);
	free(lru);
	*lru_p = NULL;
}

static size_t
auth_lru_bucket(const struct auth_lru *lru, const void *key, size_t key_len)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, key, key_len, lru->hash_key);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (lru->nbuckets - 1));
}

static void
auth_lru_unlink(struct auth_lru *lru, struct auth_lru_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		lru->oldest = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		lru->newest = e->prev;
	e->prev = e->next = NULL;
}

static void
auth_lru_append(struct auth_lru *lru, struct auth_lru_entry *e)
{
	e->prev = lru->newest;
	e->next = NULL;
	if (lru->newest != NULL)
		lru->newest->next = e;
	else
		lru->oldest = e;
	lru->newest = e;
}

void *
auth_lru_get(struct auth_lru *lru, const void *key, size_t key_len)
{
	struct auth_lru_entry *e;

	if (key_len > AUTH_LRU_KEY_MAX)
		key_len = AUTH_LRU_KEY_MAX;
	for (e = lru->buckets[auth_lru_bucket(lru, key, key_len)]; e != NULL; e = e->hash_next) {
		if (e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
			return e;
	}
	return NULL;
}

void *
auth_lru_put(struct auth_lru *lru, const void *key, size_t key_len)
{
	struct auth_lru_entry *e;
	size_t b;

	if (key_len > AUTH_LRU_KEY_MAX)
		key_len = AUTH_LRU_KEY_MAX;
	if ((e = auth_lru_get(lru, key, key_len)) != NULL) {
		auth_lru_touch(lru, e);
		return e;
	}
	if (lru->count >= lru->max_entries)
		auth_lru_remove(lru, lru->oldest);
	e = xcalloc(1, lru->entry_size);
	e->key_len = key_len;
	memcpy(e->key, key, key_len);
	b = auth_lru_bucket(lru, key, key_len);
	e->hash_next = lru->buckets[b];
	lru->buckets[b] = e;
	auth_lru_append(lru, e);
	lru->count++;
	return e;
}

void
auth_lru_touch(struct auth_lru *lru, void *entry)
{
	struct auth_lru_entry *e = entry;

	if (lru->newest == e)
		return;
	auth_lru_unlink(lru, e);
	auth_lru_append(lru, e);
}

void
auth_lru_remove(struct auth_lru *lru, void *entry)
{
	struct auth_lru_entry *e = entry, **pp;

	if (e == NULL)
		return;
	for (pp = &lru->buckets[auth_lru_bucket(lru, e->key, e->key_len)]; *pp != NULL;
	    pp = &(*pp)->hash_next) {
		if (*pp == e) {
			*pp = e->hash_next;
			break;
		}
	}
	auth_lru_unlink(lru, e);
	lru->count--;
	/* Entries may hold digests of secrets. */
	OPENSSL_cleanse(e, lru->entry_size);
	free(e);
}

void *
auth_lru_oldest(struct auth_lru *lru)
{
	return lru->oldest;
}

size_t
auth_lru_count(const struct auth_lru *lru)
{
	return lru->count;
}

void
auth_lru_clear(struct auth_lru *lru)
{
	while (lru->oldest != NULL)
		auth_lru_remove(lru, lru->oldest);
}
