/*
 * Sender Rewriting Scheme for mail forwarded to other domains.
 *
 * A message from a@example.org that a forwarder here sends on to another
 * domain leaves with the envelope sender
 *
 *   SRS0=HHHHHH=TT=example.org=a@SRS-DOMAIN
 *
 * (HHHHHH: 30 bits of an HMAC-SHA256 over the rest, with a key kept in
 * DATA/srs.key; TT: the day, base32, mod 1024), so that SPF at the
 * destination checks our domain, and a bounce can find its way back.
 *
 * queue_srs_reverse() is for SMTP's RCPT: an address in SRS-DOMAIN whose
 * local part starts with SRS0= is a bounce of a forward; when its hash and
 * age (21 days at most) check out, the original sender is where it goes
 * (relay it there), else refuse it (550 5.1.1).
 *
 * Thread-safe once made.
 */
#ifndef PETREL_QUEUE_QUEUE_SRS_H
#define PETREL_QUEUE_QUEUE_SRS_H

#include <stdint.h>

struct queue_srs;

/* Reads DATA/srs.key, making it on first use. domain: the SRS domain.
 * *error_r is allocated. */
int queue_srs_open(const char *data_dir, const char *domain, struct queue_srs **srs_r,
    char **error_r);
void queue_srs_free(struct queue_srs **srs);
const char *queue_srs_domain(const struct queue_srs *srs);

/* The rewritten sender (allocated); sender unchanged (copied) when it is
 * "" or has no domain. now: Unix time. */
char *queue_srs_forward(const struct queue_srs *srs, const char *sender, int64_t now);
/* 1: address is a valid SRS address of ours, *orig_r the original sender
 * (allocated); 0: not an SRS address of ours; -1: looks like one but the
 * hash or the age does not check out. */
int queue_srs_reverse(const struct queue_srs *srs, const char *address, int64_t now,
    char **orig_r);

#endif
