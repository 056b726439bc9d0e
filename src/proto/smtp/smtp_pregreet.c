/*
 * Addresses that waited for the MX greeting recently, so that only a
 * client's first connection of the day waits SMTP_PREGREET_MS. Shared by
 * every I/O thread: a small hash table under a mutex, entries overwritten
 * when their slot is needed.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "proto/smtp/smtp_internal.h"

#define PREGREET_SLOTS 4096

struct pregreet_entry {
	char ip[46];
	time_t passed;
};

static pthread_mutex_t pregreet_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pregreet_entry pregreet_table[PREGREET_SLOTS];

static size_t
pregreet_slot(const char *ip)
{
	uint32_t h = 2166136261u;

	for (; *ip != '\0'; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % PREGREET_SLOTS;
}

int
smtp_pregreet_passed(const char *ip)
{
	struct pregreet_entry *e = &pregreet_table[pregreet_slot(ip)];
	time_t now = time(NULL);
	int passed;

	pthread_mutex_lock(&pregreet_lock);
	passed = strcmp(e->ip, ip) == 0 && now - e->passed < SMTP_PREGREET_TTL_S;
	pthread_mutex_unlock(&pregreet_lock);
	return passed;
}

void
smtp_pregreet_pass(const char *ip)
{
	struct pregreet_entry *e = &pregreet_table[pregreet_slot(ip)];

	pthread_mutex_lock(&pregreet_lock);
	strncpy(e->ip, ip, sizeof(e->ip) - 1);
	e->ip[sizeof(e->ip) - 1] = '\0';
	e->passed = time(NULL);
	pthread_mutex_unlock(&pregreet_lock);
}
