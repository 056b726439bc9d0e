/*
 * Connection limits shared by all I/O threads: a total and a per-address
 * count (IPv6 addresses counted by their /64, since one host usually has a
 * whole /64).
 */
#ifndef PETREL_NET_LIMITS_H
#define PETREL_NET_LIMITS_H

#include <stdint.h>
#include <sys/socket.h>

struct net_limits;

enum net_limit_result { NET_LIMIT_OK, NET_LIMIT_PER_IP, NET_LIMIT_TOTAL };

/* A counted connection: the key its address counts under. */
struct net_limit_slot {
	unsigned char key[16];
	int held;
};

struct net_limits *net_limits_new(void);
void net_limits_free(struct net_limits **limits);
/* Changes the maxima (SIGHUP); connections over a lowered limit stay. */
void net_limits_set(struct net_limits *limits, int max_total, int max_per_ip);

/* Counts a new connection from addr unless a limit is reached. */
enum net_limit_result net_limits_acquire(struct net_limits *limits,
    const struct sockaddr *addr, struct net_limit_slot *slot);
void net_limits_release(struct net_limits *limits, struct net_limit_slot *slot);
/* Connections currently counted. */
int net_limits_total(struct net_limits *limits);

#endif
