/*
 * A bounded hash table that forgets its oldest entries: the store behind the
 * failure penalties and the password cache. Keys are short byte strings,
 * hashed with SipHash under a random key so that clients cannot aim at one
 * bucket. Not thread-safe: its users lock.
 *
 * Users embed struct auth_lru_entry as the first member of their entry type
 * and give its size to auth_lru_new(); the table allocates and frees entries.
 */
#ifndef PETREL_AUTH_LRU_H
#define PETREL_AUTH_LRU_H

#include <stddef.h>

#define AUTH_LRU_KEY_MAX 32

struct auth_lru_entry {
	struct auth_lru_entry *hash_next;
	struct auth_lru_entry *prev, *next;     /* oldest first */
	size_t key_len;
	unsigned char key[AUTH_LRU_KEY_MAX];
};

struct auth_lru;

/* A table of at most max_entries entries of entry_size bytes each. */
struct auth_lru *auth_lru_new(size_t max_entries, size_t entry_size);
void auth_lru_free(struct auth_lru **lru);

/* The entry with this key, or NULL. Keys longer than AUTH_LRU_KEY_MAX are
 * cut to that length, here and in auth_lru_put(). */
void *auth_lru_get(struct auth_lru *lru, const void *key, size_t key_len);
/* The entry with this key, made (zeroed past the header) when missing; the
 * oldest entry goes when the table is full. Either way it becomes the
 * newest. */
void *auth_lru_put(struct auth_lru *lru, const void *key, size_t key_len);
/* Makes entry the newest. */
void auth_lru_touch(struct auth_lru *lru, void *entry);
void auth_lru_remove(struct auth_lru *lru, void *entry);
/* The oldest entry, or NULL when empty. */
void *auth_lru_oldest(struct auth_lru *lru);
size_t auth_lru_count(const struct auth_lru *lru);
/* Removes every entry. */
void auth_lru_clear(struct auth_lru *lru);

#endif
