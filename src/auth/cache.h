/*
 * The cache of successful password checks, so that a client that logs in
 * again and again (POP3 polling, IMAP clients opening several connections)
 * does not cost an Argon2id hash each time.
 *
 * The caller makes both digests with a secret of its own: the key from the
 * user and password, the stored digest from the account's password hash at
 * the time of success. A hit is only a hint: the caller still reads the
 * account and accepts only if its hash is unchanged (so `passwd` works at
 * once). Bounded (the oldest entries go first). Thread-safe.
 */
#ifndef PETREL_AUTH_CACHE_H
#define PETREL_AUTH_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_CACHE_DIGEST_SIZE 32

struct auth_cache;

struct auth_cache *auth_cache_new(size_t max_entries);
void auth_cache_free(struct auth_cache **cache);

/* Returns 1 and fills *account_id_r and stored_r when key is cached and has
 * not expired at now_ms, else 0. */
int auth_cache_lookup(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_DIGEST_SIZE],
    uint64_t now_ms, int64_t *account_id_r, unsigned char stored_r[AUTH_CACHE_DIGEST_SIZE]);
void auth_cache_insert(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_DIGEST_SIZE],
    int64_t account_id, const unsigned char stored[AUTH_CACHE_DIGEST_SIZE],
    uint64_t expires_ms);
void auth_cache_remove(struct auth_cache *cache, const unsigned char key[AUTH_CACHE_DIGEST_SIZE]);
void auth_cache_clear(struct auth_cache *cache);
size_t auth_cache_count(struct auth_cache *cache);

#endif
