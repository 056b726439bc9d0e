/*
 * Failure penalties per client address: the answer to a failed login is
 * held back initial * 2^(n-1) milliseconds, at most max, where n counts the
 * failures from the address (this one included). The count is forgotten
 * after `reset` milliseconds without a failure, or at a successful login
 * from the address. Successes are never delayed, so an attacker cannot lock
 * the real user out.
 *
 * Addresses are grouped as IPv4 addresses and IPv6 /48 prefixes (one site;
 * IPv4-mapped IPv6 counts as IPv4). The table is bounded: past max_entries
 * the address that failed longest ago is forgotten.
 *
 * The clock is the caller's (now_ms), so tests need not sleep. Thread-safe.
 */
#ifndef PETREL_AUTH_PENALTY_H
#define PETREL_AUTH_PENALTY_H

#include <stddef.h>
#include <stdint.h>

#define PENALTY_KEY_MAX 7          /* family byte + up to 6 address bytes */

struct penalty;

struct penalty *penalty_new(size_t max_entries);
void penalty_free(struct penalty **p);

/* Records a failure from ip at now_ms and returns its delay. */
uint64_t penalty_fail(struct penalty *p, const char *ip, uint64_t now_ms,
    uint64_t initial_ms, uint64_t max_ms, uint64_t reset_ms);
/* A successful login from ip: its count is forgotten. */
void penalty_success(struct penalty *p, const char *ip);
/* Failures counted for ip at now_ms (0 once forgotten). */
unsigned int penalty_failures(struct penalty *p, const char *ip, uint64_t now_ms,
    uint64_t reset_ms);
size_t penalty_count(struct penalty *p);

/* initial * 2^(n-1) capped at max; 0 for n = 0. */
uint64_t penalty_delay(uint64_t initial_ms, uint64_t max_ms, unsigned int n);
/* The key ip is counted under (see above); an address that does not parse
 * gets a key of its own shared by all such. Returns the key length. */
size_t penalty_key(const char *ip, unsigned char key[PENALTY_KEY_MAX]);

#endif
