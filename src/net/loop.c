#include "net/loop.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "core/log.h"
#include "core/xmalloc.h"

struct net_job {
	struct net_job *next;
	net_work_fn *work;
	net_work_fn *done;
	void *arg;
	struct net_loop *loop;
};

struct net_workers {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct net_job *head, **tail;
	int stopping;
	int nthreads;
	pthread_t *threads;
};

struct net_loop {
	int index;
	struct event_base *base;
	struct net_workers *workers;
	/* Functions posted from other threads, run by post_ev on this one. */
	pthread_mutex_t post_lock;
	struct net_job *post_head, **post_tail;
	struct event *post_ev;
};

struct net_timer {
	struct event *ev;
	net_work_fn *fn;
	void *arg;
};

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;

static void
evthread_setup(void)
{
	if (evthread_use_pthreads() < 0)
		fatal("libevent has no pthreads support");
}

uint64_t
net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- worker pool ------------------------------------------------------ */

static void *
worker_main(void *arg)
{
	struct net_workers *w = arg;
	struct net_job *job;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (w->head == NULL && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->head == NULL) {
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		job = w->head;
		w->head = job->next;
		if (w->head == NULL)
			w->tail = &w->head;
		pthread_mutex_unlock(&w->lock);

		job->work(job->arg);
		if (job->done != NULL)
			net_loop_post(job->loop, job->done, job->arg);
		free(job);
	}
}

struct net_workers *
net_workers_new(int nthreads)
{
	struct net_workers *w = xcalloc(1, sizeof(*w));
	int i, err;

	pthread_once(&evthread_once, evthread_setup);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->tail = &w->head;
	w->nthreads = nthreads < 1 ? 1 : nthreads;
	w->threads = xcalloc((size_t)w->nthreads, sizeof(*w->threads));
	for (i = 0; i < w->nthreads; i++) {
		if ((err = pthread_create(&w->threads[i], NULL, worker_main, w)) != 0)
			fatal("cannot start worker thread: error %d", err);
	}
	return w;
}

void
net_workers_free(struct net_workers **wp)
{
	struct net_workers *w = *wp;
	int i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->threads);
	free(w);
	*wp = NULL;
}

void
net_loop_submit(struct net_loop *loop, net_work_fn *work, net_work_fn *done, void *arg)
{
	struct net_workers *w = loop->workers;
	struct net_job *job = xcalloc(1, sizeof(*job));

	job->work = work;
	job->done = done;
	job->arg = arg;
	job->loop = loop;
	pthread_mutex_lock(&w->lock);
	*w->tail = job;
	w->tail = &job->next;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* --- loops ------------------------------------------------------------ */

static void
post_run(evutil_socket_t fd, short what, void *arg)
{
	struct net_loop *loop = arg;
	struct net_job *list, *job;

	pthread_mutex_lock(&loop->post_lock);
	list = loop->post_head;
	loop->post_head = NULL;
	loop->post_tail = &loop->post_head;
	pthread_mutex_unlock(&loop->post_lock);
	while ((job = list) != NULL) {
		list = job->next;
		job->work(job->arg);
		free(job);
	}
}

void
net_loop_post(struct net_loop *loop, net_work_fn *fn, void *arg)
{
	struct net_job *job = xcalloc(1, sizeof(*job));
	int wake;

	job->work = fn;
	job->arg = arg;
	pthread_mutex_lock(&loop->post_lock);
	wake = loop->post_head == NULL;
	*loop->post_tail = job;
	loop->post_tail = &job->next;
	pthread_mutex_unlock(&loop->post_lock);
	if (wake)
		event_active(loop->post_ev, EV_READ, 0);
}

struct net_loop *
net_loop_new(int index, struct net_workers *workers)
{
	struct net_loop *loop = xcalloc(1, sizeof(*loop));

	pthread_once(&evthread_once, evthread_setup);
	loop->index = index;
	loop->workers = workers;
	if ((loop->base = event_base_new()) == NULL)
		fatal("cannot create an event loop");
	pthread_mutex_init(&loop->post_lock, NULL);
	loop->post_tail = &loop->post_head;
	loop->post_ev = event_new(loop->base, -1, 0, post_run, loop);
	return loop;
}

void
net_loop_free(struct net_loop **lp)
{
	struct net_loop *loop = *lp;

	if (loop == NULL)
		return;
	/* Run what is still posted so that its memory is released. */
	post_run(-1, 0, loop);
	event_free(loop->post_ev);
	event_base_free(loop->base);
	pthread_mutex_destroy(&loop->post_lock);
	free(loop);
	*lp = NULL;
}

void
net_loop_run(struct net_loop *loop)
{
	event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY);
}

static void
loop_break(void *arg)
{
	struct net_loop *loop = arg;

	event_base_loopbreak(loop->base);
}

void
net_loop_stop(struct net_loop *loop)
{
	net_loop_post(loop, loop_break, loop);
}

struct event_base *
net_loop_base(struct net_loop *loop)
{
	return loop->base;
}

int
net_loop_index(const struct net_loop *loop)
{
	return loop->index;
}

/* --- timers ----------------------------------------------------------- */

static void
timer_fire(evutil_socket_t fd, short what, void *arg)
{
	struct net_timer *t = arg;

	t->fn(t->arg);
}

struct net_timer *
net_timer_new(struct net_loop *loop, net_work_fn *fn, void *arg)
{
	struct net_timer *t = xcalloc(1, sizeof(*t));

	t->fn = fn;
	t->arg = arg;
	t->ev = evtimer_new(loop->base, timer_fire, t);
	return t;
}

void
net_timer_start(struct net_timer *t, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(t->ev, &tv);
}

void
net_timer_stop(struct net_timer *t)
{
	evtimer_del(t->ev);
}

void
net_timer_free(struct net_timer **tp)
{
	if (*tp == NULL)
		return;
	event_free((*tp)->ev);
	free(*tp);
	*tp = NULL;
}
