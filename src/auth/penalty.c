#include "auth/penalty.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/lru.h"
#include "core/xmalloc.h"

struct penalty_entry {
	struct auth_lru_entry lru;
	unsigned int failures;
	uint64_t last_ms;
};

struct penalty {
	pthread_mutex_t lock;
	struct auth_lru *table;
};

struct penalty *
penalty_new(size_t max_entries)
{
	struct penalty *p = xcalloc(1, sizeof(*p));

	pthread_mutex_init(&p->lock, NULL);
	p->table = auth_lru_new(max_entries, sizeof(struct penalty_entry));
	return p;
}

void
penalty_free(struct penalty **p_p)
{
	struct penalty *p = *p_p;

	if (p == NULL)
		return;
	auth_lru_free(&p->table);
	pthread_mutex_destroy(&p->lock);
	free(p);
	*p_p = NULL;
}

uint64_t
penalty_delay(uint64_t initial_ms, uint64_t max_ms, unsigned int n)
{
	if (n == 0 || initial_ms == 0)
		return 0;
	/* Stop doubling before it overflows or passes max. */
	if (n - 1 >= 64 || initial_ms > max_ms >> (n - 1))
		return max_ms;
	return initial_ms << (n - 1);
}

size_t
penalty_key(const char *ip, unsigned char key[PENALTY_KEY_MAX])
{
	unsigned char a[16];
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};

	if (ip != NULL && inet_pton(AF_INET, ip, a) == 1) {
		key[0] = 4;
		memcpy(key + 1, a, 4);
		return 5;
	}
	if (ip != NULL && inet_pton(AF_INET6, ip, a) == 1) {
		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
			return 5;
		}
		key[0] = 6;
		memcpy(key + 1, a, 6);          /* the /48 */
		return 7;
	}
	key[0] = 0;
	return 1;
}

/* The entry's count, or 0 when it has been quiet for reset_ms. */
static unsigned int
penalty_live_failures(const struct penalty_entry *e, uint64_t now_ms, uint64_t reset_ms)
{
	if (now_ms >= e->last_ms && now_ms - e->last_ms >= reset_ms)
		return 0;
	return e->failures;
}

uint64_t
penalty_fail(struct penalty *p, const char *ip, uint64_t now_ms, uint64_t initial_ms,
    uint64_t max_ms, uint64_t reset_ms)
{
	unsigned char key[PENALTY_KEY_MAX];
	size_t key_len = penalty_key(ip, key);
	struct penalty_entry *e;
	unsigned int n;

	pthread_mutex_lock(&p->lock);
	/* Forget the addresses that have been quiet long enough; they are
	 * the oldest, so this stops at the first one still counting. */
	while ((e = auth_lru_oldest(p->table)) != NULL &&
	    penalty_live_failures(e, now_ms, reset_ms) == 0)
		auth_lru_remove(p->table, e);
	e = auth_lru_put(p->table, key, key_len);
	n = penalty_live_failures(e, now_ms, reset_ms);
	if (n < UINT32_MAX)
		n++;
	e->failures = n;
	e->last_ms = now_ms;
	pthread_mutex_unlock(&p->lock);
	return penalty_delay(initial_ms, max_ms, n);
}

void
penalty_success(struct penalty *p, const char *ip)
{
	unsigned char key[PENALTY_KEY_MAX];
	size_t key_len = penalty_key(ip, key);
	struct penalty_entry *e;

	pthread_mutex_lock(&p->lock);
	if ((e = auth_lru_get(p->table, key, key_len)) != NULL)
		auth_lru_remove(p->table, e);
	pthread_mutex_unlock(&p->lock);
}

unsigned int
penalty_failures(struct penalty *p, const char *ip, uint64_t now_ms, uint64_t reset_ms)
{
	unsigned char key[PENALTY_KEY_MAX];
	size_t key_len = penalty_key(ip, key);
	struct penalty_entry *e;
	unsigned int n = 0;

	pthread_mutex_lock(&p->lock);
	if ((e = auth_lru_get(p->table, key, key_len)) != NULL)
		n = penalty_live_failures(e, now_ms, reset_ms);
	pthread_mutex_unlock(&p->lock);
	return n;
}

size_t
penalty_count(struct penalty *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = auth_lru_count(p->table);
	pthread_mutex_unlock(&p->lock);
	return n;
}
