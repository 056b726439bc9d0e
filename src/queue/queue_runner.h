/*
 * The queue runner: delivers queued messages (DESIGN.md, "Life of a
 * message", step 6).
 *
 * It runs on a thread of its own with its own event loop: DNS (libunbound),
 * the outgoing SMTP connections (src/smtpc) and the retry timer live there;
 * everything that blocks (reading envelopes and messages, fsyncing envelope
 * updates, local deliveries through src/delivery, bounces) runs on a small
 * worker pool of its own, never on the daemon's I/O threads.
 *
 * At start it reads every envelope in the spool and schedules each
 * message's recipients that are pending or deferred; a message committed
 * while it runs is scheduled at once (queue_set_commit_hook). Each attempt
 * ends in one durable envelope update (or the message's removal once every
 * recipient is delivered or failed), made after any DSN it causes is itself
 * durable. A crash at any point leaves every recipient either done or still
 * to be tried: a remote server may receive a message twice (if we die after
 * its 250 and before the update), never zero times.
 *
 * Recipients in domains hosted here (bounces to local senders, mostly) are
 * delivered through delivery_msg like mail from SMTP. Others go to their
 * domain's MX hosts (or the relay host): mail for one domain is sent in one
 * transaction, connections per destination are limited and reused.
 */
#ifndef PETREL_QUEUE_QUEUE_RUNNER_H
#define PETREL_QUEUE_QUEUE_RUNNER_H

#include "core/config.h"
#include "delivery/delivery.h"
#include "queue/queue.h"

struct queue_runner;

/* Starts the runner on cfg's queue_* settings (copied). svc must stay valid
 * until queue_runner_stop; its queue is the one delivered. svc->srs is not
 * read: the runner's local deliveries use its own keys (queue_runner_srs).
 * *error_r is allocated. */
int queue_runner_start(const struct config *cfg, const struct delivery_services *svc,
    struct queue_runner **r_r, char **error_r);
/* Takes cfg's queue_* settings (relay host, retry timing, lifetime, delay
 * notices, timeouts, connection limits, TLS policy and CA file) from now
 * on; connections under way finish with the old ones. The host name, the
 * DNS resolver and the SRS keys stay as they were at start. Called from
 * the thread that loaded cfg (the daemon's SIGHUP); the swap happens on
 * the runner's thread. 0, or -1 with *error_r (allocated) and nothing
 * changed (an unreadable CA or password file, a bad relay host). */
int queue_runner_reload(struct queue_runner *r, const struct config *cfg, char **error_r);
/* Takes the administrative requests waiting (queue_request_post) and
 * applies them. Callable from any thread (the daemon calls it on SIGUSR1). */
void queue_runner_wakeup(struct queue_runner *r);
/* Stops: connections are dropped, work in flight finishes, what was not
 * recorded is tried again at the next start. */
void queue_runner_stop(struct queue_runner **r);

/* The SRS keys the runner rewrites forwards with: SMTP's RCPT resolution
 * reverses bounces to them with queue_srs_reverse() (queue_srs.h). Valid
 * until queue_runner_stop. */
const struct queue_srs *queue_runner_srs(const struct queue_runner *r);

/* The retry wait after `failures` failed attempts (1, 2, ...): initial,
 * doubling, at most max. */
uint64_t queue_retry_delay_ms(unsigned failures, uint64_t initial_ms, uint64_t max_ms);

#endif
