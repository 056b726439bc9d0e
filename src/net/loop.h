/*
 * I/O threads and the worker pool.
 *
 * Each I/O thread runs one libevent loop (struct net_loop); a connection lives
 * on one loop for its whole life and everything about it runs on that thread.
 * Work that blocks (password hashing, database writes, fsync, DNS) goes to the
 * worker pool with net_loop_submit(): `work` runs on a worker thread, then
 * `done` runs back on the loop's thread. The two never run at the same time,
 * so `arg` needs no locking between them.
 */
#ifndef PETREL_NET_LOOP_H
#define PETREL_NET_LOOP_H

#include <stdint.h>

struct event_base;
struct net_loop;
struct net_timer;
struct net_workers;

typedef void net_work_fn(void *arg);

/* Runs work(arg) on a worker thread, then done(arg) on the loop's thread.
 * Callable only from the loop's own thread. */
void net_loop_submit(struct net_loop *loop, net_work_fn *work, net_work_fn *done, void *arg);

/* Runs fn(arg) on the loop's thread at its next turn. Callable from any
 * thread (this is how other threads hand work to a loop). */
void net_loop_post(struct net_loop *loop, net_work_fn *fn, void *arg);

struct event_base *net_loop_base(struct net_loop *loop);
/* Index of the loop (0..n-1), for logs. */
int net_loop_index(const struct net_loop *loop);

/* A one-shot timer on a loop. */
struct net_timer *net_timer_new(struct net_loop *loop, net_work_fn *fn, void *arg);
void net_timer_start(struct net_timer *t, uint64_t ms);
void net_timer_stop(struct net_timer *t);
void net_timer_free(struct net_timer **t);

/* Monotonic milliseconds. */
uint64_t net_now_ms(void);

/* --- used by the server and by tests ---------------------------------- */

struct net_workers *net_workers_new(int nthreads);
/* Finishes the queued work and joins the threads. */
void net_workers_free(struct net_workers **w);

/* A loop that is not (yet) running on its own thread: tests drive it with
 * net_loop_run(). */
struct net_loop *net_loop_new(int index, struct net_workers *workers);
void net_loop_free(struct net_loop **loop);
/* Runs the loop on the calling thread until net_loop_stop(). */
void net_loop_run(struct net_loop *loop);
/* Callable from any thread. */
void net_loop_stop(struct net_loop *loop);

#endif
