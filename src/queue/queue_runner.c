/*
 * The runner's scheduling: the messages it knows, a heap of them by the
 * time their next recipient is due, one timer, the attempts under way and
 * the administrative requests. See queue_runner.h.
 */
#include "queue/queue_runner_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/xmalloc.h"

#define QR_WORKERS 4
#define QR_ACTIVE_PER_CONN 4    /* messages under way per allowed connection */

int64_t
qr_now(void)
{
	return (int64_t)time(NULL);
}

uint64_t
queue_retry_delay_ms(unsigned failures, uint64_t initial_ms, uint64_t max_ms)
{
	uint64_t d = initial_ms;
	unsigned i;

	for (i = 1; i < failures && d < max_ms; i++)
		d *= 2;
	return d > max_ms ? max_ms : d;
}

const struct queue_srs *
queue_runner_srs(const struct queue_runner *r)
{
	return r->srs;
}

/* --- the heap ------------------------------------------------------------ */

static void
heap_swap(struct queue_runner *r, size_t a, size_t b)
{
	struct qmsg *t = r->heap[a];

	r->heap[a] = r->heap[b];
	r->heap[b] = t;
	r->heap[a]->heap_idx = a;
	r->heap[b]->heap_idx = b;
}

static void
heap_up(struct queue_runner *r, size_t i)
{
	while (i > 0 && r->heap[(i - 1) / 2]->due > r->heap[i]->due) {
		heap_swap(r, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct queue_runner *r, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, s = i;

		if (l < r->nheap && r->heap[l]->due < r->heap[s]->due)
			s = l;
		if (l + 1 < r->nheap && r->heap[l + 1]->due < r->heap[s]->due)
			s = l + 1;
		if (s == i)
			return;
		heap_swap(r, i, s);
		i = s;
	}
}

static void
heap_remove(struct queue_runner *r, struct qmsg *m)
{
	size_t i = m->heap_idx;

	if (i == QR_NO_HEAP)
		return;
	m->heap_idx = QR_NO_HEAP;
	r->nheap--;
	if (i == r->nheap)
		return;
	r->heap[i] = r->heap[r->nheap];
	r->heap[i]->heap_idx = i;
	heap_down(r, i);
	heap_up(r, i);
}

static void
heap_push(struct queue_runner *r, struct qmsg *m)
{
	if (r->nheap == r->heapcap) {
		r->heapcap = r->heapcap == 0 ? 64 : r->heapcap * 2;
		r->heap = xreallocarray(r->heap, r->heapcap, sizeof(*r->heap));
	}
	m->heap_idx = r->nheap;
	r->heap[r->nheap++] = m;
	heap_up(r, m->heap_idx);
}

/* --- scheduling ---------------------------------------------------------- */

static int
rcpt_open(const struct queue_rcpt *q)
{
	return q->state == QUEUE_RCPT_PENDING || q->state == QUEUE_RCPT_DEFERRED;
}

static void start_attempt(struct qmsg *m);
static void start_finish(struct qmsg *m);

static void
arm_timer(struct queue_runner *r)
{
	int64_t now = qr_now(), wait;

	if (r->nheap == 0 || r->stopping) {
		net_timer_stop(r->timer);
		return;
	}
	wait = r->heap[0]->due - now;
	net_timer_start(r->timer, wait <= 0 ? 0 : (uint64_t)wait * 1000);
}

/* Puts an idle message where it belongs: in the heap by its next due
 * recipient, or through a finish job when nothing is left to do. */
void
qr_schedule(struct qmsg *m)
{
	struct queue_runner *r = m->r;
	size_t i;
	int64_t due = 0;
	int open = 0;

	heap_remove(r, m);
	if (m->busy || m->removed || r->stopping)
		return;
	for (i = 0; i < m->env.nrcpts; i++) {
		const struct queue_rcpt *q = &m->env.rcpts[i];

		if (!rcpt_open(q))
			continue;
		if (!open || q->next_attempt < due)
			due = q->next_attempt;
		open = 1;
	}
	if (!open) {
		start_finish(m);    /* every recipient done: remove it */
		return;
	}
	if (m->env.hold)
		return;
	m->due = due;
	heap_push(r, m);
	arm_timer(r);
}

static size_t
max_active(const struct queue_runner *r)
{
	return (size_t)r->set.max_conns * QR_ACTIVE_PER_CONN;
}

/* Starts the attempts that are due, as far as the limits allow. */
void
qr_kick(struct queue_runner *r)
{
	int64_t now = qr_now();

	while (!r->stopping && r->nheap > 0 && r->heap[0]->due <= now &&
	    r->nactive < max_active(r)) {
		struct qmsg *m = r->heap[0];

		heap_remove(r, m);
		start_attempt(m);
	}
	arm_timer(r);
}

static void
timer_fired(void *arg)
{
	qr_kick(arg);
}

/* --- messages ------------------------------------------------------------ */

static struct qmsg *
msg_find(struct queue_runner *r, const char *id)
{
	struct qmsg *m;

	for (m = r->msgs; m != NULL; m = m->next)
		if (strcmp(m->env.id, id) == 0)
			return m;
	return NULL;
}

static void
msg_add(struct queue_runner *r, struct queue_envelope *env)
{
	struct qmsg *m;

	if (msg_find(r, env->id) != NULL) {
		queue_envelope_clear(env);
		return;
	}
	m = xcalloc(1, sizeof(*m));
	m->r = r;
	m->env = *env;
	memset(env, 0, sizeof(*env));
	m->heap_idx = QR_NO_HEAP;
	m->fd = -1;
	m->next = r->msgs;
	if (r->msgs != NULL)
		r->msgs->prev = m;
	r->msgs = m;
	r->nmsgs++;
	qr_schedule(m);
}

void
qr_msg_free(struct qmsg *m)
{
	struct queue_runner *r = m->r;

	heap_remove(r, m);
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		r->msgs = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	r->nmsgs--;
	qw_release(m);
	queue_envelope_clear(&m->env);
	free(m);
}

static void
run_free(struct qmsg *m)
{
	size_t i;

	if (m->run == NULL)
		return;
	for (i = 0; i < m->env.nrcpts; i++) {
		free(m->run[i].reply);
		free(m->run[i].mta);
	}
	free(m->run);
	m->run = NULL;
}

static void
attempt_prepared(void *arg)
{
	struct qmsg *m = arg;

	if (m->r->stopping)
		return;
	qa_start(m);
}

static void
start_attempt(struct qmsg *m)
{
	struct queue_runner *r = m->r;
	int64_t now = qr_now();
	size_t i, n = 0;

	m->run = xcalloc(m->env.nrcpts, sizeof(*m->run));
	for (i = 0; i < m->env.nrcpts; i++) {
		const struct queue_rcpt *q = &m->env.rcpts[i];

		if (rcpt_open(q) && q->next_attempt <= now) {
			m->run[i].due = 1;
			n++;
		}
	}
	if (n == 0) {
		run_free(m);
		qr_schedule(m);
		return;
	}
	m->busy = 1;
	r->nactive++;
	log_debug(m->env.id, "event=queue-attempt rcpts=%zu", n);
	net_loop_submit(r->loop, qw_prepare, attempt_prepared, m);
}

void
qr_rcpt_result(struct qmsg *m, size_t i, enum qr_outcome o, const char *reply,
    int from_server, const char *mta, const char *status)
{
	struct qr_rcpt_run *rr = &m->run[i];

	rr->outcome = o;
	free(rr->reply);
	free(rr->mta);
	rr->reply = reply != NULL ? xstrdup(reply) : NULL;
	rr->from_server = from_server;
	rr->mta = mta != NULL ? xstrdup(mta) : NULL;
	snprintf(rr->status, sizeof(rr->status), "%s", status != NULL ? status : "");
}

static int
wants(unsigned notify, unsigned what)
{
	if (notify & QUEUE_NOTIFY_NEVER)
		return 0;
	/* No NOTIFY: FAILURE and DELAY (RFC 3461 4.1 leaves DELAY to us). */
	return notify == 0 ? what != QUEUE_NOTIFY_SUCCESS : (notify & what) != 0;
}

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s != NULL ? xstrdup(s) : NULL;
}

/* Records what the attempt did in the envelope (the finish job writes it). */
static void
apply_outcomes(struct qmsg *m)
{
	const struct qr_settings *set = &m->r->set;
	int64_t now = qr_now(), age = now - m->env.arrival;
	int has_sender = m->env.sender[0] != '\0';
	size_t i;

	m->retry_until = m->env.arrival + (int64_t)(set->lifetime_ms / 1000);
	for (i = 0; i < m->env.nrcpts; i++) {
		struct queue_rcpt *q = &m->env.rcpts[i];
		struct qr_rcpt_run *rr = &m->run[i];

		switch (rr->outcome) {
		case QR_NONE:
			break;
		case QR_DELIVERED:
			q->state = QUEUE_RCPT_DELIVERED;
			set_str(&q->last_reply, rr->reply);
			set_str(&q->remote_mta, rr->mta);
			log_info(m->env.id, "event=delivered to=<%.320s> relay=%s reply=\"%.200s\"",
			    q->address, rr->mta != NULL ? rr->mta : "local",
			    rr->reply != NULL ? rr->reply : "");
			if (!has_sender || !wants(q->notify, QUEUE_NOTIFY_SUCCESS))
				rr->dsn_relayed = 0;
			break;
		case QR_FAILED:
			q->state = QUEUE_RCPT_FAILED;
			set_str(&q->last_reply, rr->reply);
			set_str(&q->remote_mta, rr->mta);
			rr->dsn_failed = has_sender && wants(q->notify, QUEUE_NOTIFY_FAILURE);
			log_info(m->env.id, "event=failed to=<%.320s> relay=%s reply=\"%.200s\"",
			    q->address, rr->mta != NULL ? rr->mta : "none",
			    rr->reply != NULL ? rr->reply : "");
			break;
		case QR_DEFERRED:
			q->attempts++;
			q->state = QUEUE_RCPT_DEFERRED;
			q->next_attempt = now + (int64_t)(queue_retry_delay_ms(q->attempts,
			    set->retry_initial_ms, set->retry_max_ms) / 1000);
			if (q->next_attempt <= now)
				q->next_attempt = now + 1;
			set_str(&q->last_reply, rr->reply);
			set_str(&q->remote_mta, rr->mta);
			if ((uint64_t)(age > 0 ? age : 0) * 1000 >= set->lifetime_ms) {
				q->state = QUEUE_RCPT_FAILED;
				rr->outcome = QR_FAILED;
				rr->dsn_failed = has_sender && wants(q->notify, QUEUE_NOTIFY_FAILURE);
				log_info(m->env.id, "event=expired to=<%.320s> reply=\"%.200s\"",
				    q->address, rr->reply != NULL ? rr->reply : "");
				break;
			}
			if (set->delay_notice_ms > 0 && !q->delayed &&
			    (uint64_t)(age > 0 ? age : 0) * 1000 >= set->delay_notice_ms &&
			    has_sender && wants(q->notify, QUEUE_NOTIFY_DELAY)) {
				q->delayed = 1;
				rr->dsn_delayed = 1;
			}
			log_info(m->env.id, "event=deferred to=<%.320s> attempts=%u next=%+llds "
			    "reply=\"%.200s\"", q->address, q->attempts,
			    (long long)(q->next_attempt - now), rr->reply != NULL ? rr->reply : "");
			break;
		}
	}
	if (m->bounce_now) {
		for (i = 0; i < m->env.nrcpts; i++) {
			struct queue_rcpt *q = &m->env.rcpts[i];
			struct qr_rcpt_run *rr = &m->run[i];

			if (!rcpt_open(q))
				continue;
			q->state = QUEUE_RCPT_FAILED;
			rr->outcome = QR_FAILED;
			if (rr->reply == NULL)
				rr->reply = xstrdup(q->last_reply != NULL ? q->last_reply :
				    "returned to the sender by the administrator");
			rr->from_server = q->last_reply != NULL && q->remote_mta != NULL;
			if (rr->mta == NULL && q->remote_mta != NULL)
				rr->mta = xstrdup(q->remote_mta);
			rr->dsn_failed = has_sender && wants(q->notify, QUEUE_NOTIFY_FAILURE);
			log_info(m->env.id, "event=bounced to=<%.320s> reason=admin", q->address);
		}
		m->bounce_now = 0;
	}
	m->write_env = 1;
}

static void
finished(void *arg)
{
	struct qmsg *m = arg;
	struct queue_runner *r = m->r;

	if (r->stopping)
		return;
	qw_release(m);
	run_free(m);
	m->busy = 0;
	m->write_env = 0;
	if (m->removed) {
		qr_msg_free(m);
		qr_kick(r);
		return;
	}
	if (m->req_delete || m->req_bounce || m->req_hold || m->req_release) {
		m->busy = 1;
		start_finish(m);
		return;
	}
	if (m->req_flush) {
		size_t i;

		m->req_flush = 0;
		for (i = 0; i < m->env.nrcpts; i++)
			m->env.rcpts[i].next_attempt = 0;
	}
	qr_schedule(m);
	qr_kick(r);
}

/* Applies outcomes and pending requests, then writes (finish job). The
 * message is busy. */
static void
finish(struct qmsg *m)
{
	struct queue_runner *r = m->r;

	if (m->run == NULL)
		m->run = xcalloc(m->env.nrcpts, sizeof(*m->run));
	m->job_delete = m->req_delete;
	m->req_delete = 0;
	if (m->req_bounce) {
		m->req_bounce = 0;
		m->bounce_now = 1;
	}
	if (m->req_hold || m->req_release) {
		m->env.hold = m->req_hold;
		m->req_hold = m->req_release = 0;
	}
	apply_outcomes(m);
	net_loop_submit(r->loop, qw_finish, finished, m);
}

/* An attempt's groups are all done (loop thread). */
void
qr_attempt_done(struct qmsg *m)
{
	m->r->nactive--;
	finish(m);
}

/* A finish job for an idle message (nothing left, or a request). */
static void
start_finish(struct qmsg *m)
{
	heap_remove(m->r, m);
	m->busy = 1;
	finish(m);
}

/* --- requests ------------------------------------------------------------ */

static void
apply_request(struct queue_runner *r, const char *verb, const char *id)
{
	struct qmsg *m, *next;

	log_info(id[0] != '\0' ? id : NULL, "event=queue-request verb=%s", verb);
	if (strcmp(verb, "flush") == 0) {
		for (m = r->msgs; m != NULL; m = next) {
			size_t i;

			next = m->next;
			if (id[0] != '\0' && strcmp(m->env.id, id) != 0)
				continue;
			if (m->busy) {
				m->req_flush = 1;
				continue;
			}
			for (i = 0; i < m->env.nrcpts; i++)
				m->env.rcpts[i].next_attempt = 0;
			qr_schedule(m);
		}
		return;
	}
	if ((m = msg_find(r, id)) == NULL)
		return;
	if (strcmp(verb, "delete") == 0)
		m->req_delete = 1;
	else if (strcmp(verb, "bounce") == 0)
		m->req_bounce = 1;
	else if (strcmp(verb, "hold") == 0)
		m->req_hold = 1;
	else if (strcmp(verb, "release") == 0)
		m->req_release = 1;
	if (!m->busy)
		start_finish(m);
}

static void
take_requests(void *arg)
{
	struct queue_runner *r = arg;
	char verb[16], id[QUEUE_ID_SIZE + 1];
	const char *error;
	int n, count = 0;

	if (r->stopping || !r->loaded)
		return;
	while (count++ < 1000 && (n = queue_request_take(r->q, verb, sizeof(verb), id,
	    sizeof(id), &error)) == 1) {
		if (verb[0] != '\0')
			apply_request(r, verb, id);
	}
	qr_kick(r);
}

void
queue_runner_wakeup(struct queue_runner *r)
{
	net_loop_post(r->loop, take_requests, r);
}

/* --- new messages, and the spool at start -------------------------------- */

static void
committed_post(void *arg)
{
	struct queue_envelope *env = arg;
	struct queue_runner *r;

	memcpy(&r, (char *)env + sizeof(*env), sizeof(r));
	if (!r->stopping && !r->loaded) {
		/* Kept until the spool is read: delivered and removed before
		 * that, it would come back from the (older) listing as a
		 * message without files. */
		r->early = xreallocarray(r->early, r->nearly + 1, sizeof(*r->early));
		r->early[r->nearly++] = env;
		return;
	}
	if (!r->stopping) {
		msg_add(r, env);
		qr_kick(r);
	} else {
		queue_envelope_clear(env);
	}
	free(env);
}

static void
early_free(struct queue_runner *r)
{
	size_t i;

	for (i = 0; i < r->nearly; i++) {
		queue_envelope_clear(r->early[i]);
		free(r->early[i]);
	}
	free(r->early);
	r->early = NULL;
	r->nearly = 0;
}

/* queue_commit_fn: on the committing thread; hands a copy to the loop. */
static void
committed(void *arg, const struct queue_envelope *env)
{
	struct queue_runner *r = arg;
	struct queue_envelope *copy = xmalloc(sizeof(*copy) + sizeof(r));

	queue_envelope_copy(copy, env);
	memcpy((char *)copy + sizeof(*copy), &r, sizeof(r));
	net_loop_post(r->loop, committed_post, copy);
}

struct load_job {
	struct queue_runner *r;
	struct queue_envelope *list;
	size_t count;
	const char *error;
	int rc;
};

static void
load_work(void *arg)
{
	struct load_job *j = arg;

	j->rc = queue_list(j->r->q, &j->list, &j->count, &j->error);
}

static void
load_done(void *arg)
{
	struct load_job *j = arg;
	struct queue_runner *r = j->r;
	size_t i;

	if (j->rc < 0)
		log_error(NULL, "event=queue-load-failed reason=\"%s\"", j->error);
	for (i = 0; i < j->count && !r->stopping; i++)
		msg_add(r, &j->list[i]);
	queue_envelopes_free(&j->list, j->count);
	for (i = 0; i < r->nearly && !r->stopping; i++)
		msg_add(r, r->early[i]);    /* a no-op for those listed */
	early_free(r);
	log_info(NULL, "event=queue-loaded messages=%zu", r->nmsgs);
	r->loaded = 1;
	free(j);
	take_requests(r);
}

static void
start_load(void *arg)
{
	struct queue_runner *r = arg;
	struct load_job *j = xcalloc(1, sizeof(*j));

	j->r = r;
	net_loop_submit(r->loop, load_work, load_done, j);
}

/* --- start and stop ------------------------------------------------------ */

static void *
runner_main(void *arg)
{
	struct queue_runner *r = arg;

	net_loop_run(r->loop);
	return NULL;
}

int
queue_runner_start(const struct config *cfg, const struct delivery_services *svc,
    struct queue_runner **r_r, char **error_r)
{
	struct queue_runner *r = xcalloc(1, sizeof(*r));
	const char *srs_domain;
	int err;

	if (qr_settings_from(cfg, &r->set, error_r) < 0)
		goto fail;
	r->svc = *svc;
	r->svc.hostname = r->set.hostname;
	r->q = svc->queue;
	srs_domain = cfg->queue_srs_domain[0] != '\0' ? cfg->queue_srs_domain : cfg->hostname;
	if (queue_srs_open(cfg->data_dir, srs_domain, &r->srs, error_r) < 0)
		goto fail;
	/* Bounces the runner delivers locally may go to its own SRS senders;
	 * svc->srs is not set yet (it comes from this runner). */
	r->svc.srs = r->srs;
	if ((r->tls = qr_client_tls(cfg, error_r)) == NULL)
		goto fail;
	r->workers = net_workers_new(QR_WORKERS);
	r->loop = net_loop_new(-1, r->workers);
	if (dns_resolver_new(net_loop_base(r->loop), cfg->queue_dns_resolver, &r->dns,
	    error_r) < 0)
		goto fail;
	r->dns_server = xstrdup(cfg->queue_dns_resolver);
	r->smtpc.helo = r->set.hostname;
	r->smtpc.connect_ms = cfg->queue_connect_timeout_ms;
	r->smtpc.command_ms = cfg->queue_command_timeout_ms;
	r->smtpc.data_ms = cfg->queue_data_timeout_ms;
	r->smtpc.tls = r->tls;
	r->timer = net_timer_new(r->loop, timer_fired, r);
	queue_set_commit_hook(r->q, committed, r);
	net_loop_post(r->loop, start_load, r);
	if ((err = pthread_create(&r->thread, NULL, runner_main, r)) != 0) {
		*error_r = xasprintf("cannot start the queue thread: %s", strerror(err));
		queue_set_commit_hook(r->q, NULL, NULL);
		goto fail;
	}
	log_info(NULL, "event=queue-started resolver=%s relayhost=%s", cfg->queue_dns_resolver,
	    r->set.relayhost[0] != '\0' ? r->set.relayhost : "-");
	*r_r = r;
	return 0;
fail:
	net_timer_free(&r->timer);
	dns_resolver_free(&r->dns);
	net_loop_free(&r->loop);
	net_workers_free(&r->workers);
	if (r->tls != NULL)
		SSL_CTX_free(r->tls);
	queue_srs_free(&r->srs);
	qr_settings_free(&r->set);
	free(r->dns_server);
	free(r);
	return -1;
}

static void
stop_on_loop(void *arg)
{
	struct queue_runner *r = arg;

	r->stopping = 1;
	net_timer_stop(r->timer);
	qa_stop_all(r);
	net_loop_stop(r->loop);
}

void
queue_runner_stop(struct queue_runner **rp)
{
	struct queue_runner *r = *rp;
	struct qdest *d;

	if (r == NULL)
		return;
	*rp = NULL;
	queue_set_commit_hook(r->q, NULL, NULL);
	net_loop_post(r->loop, stop_on_loop, r);
	pthread_join(r->thread, NULL);
	/* Jobs under way finish (an envelope write completes); their `done`
	 * halves then only run to release memory. */
	net_workers_free(&r->workers);
	net_timer_free(&r->timer);
	dns_resolver_free(&r->dns);
	net_loop_free(&r->loop);
	while (r->msgs != NULL) {
		run_free(r->msgs);
		qr_msg_free(r->msgs);
	}
	early_free(r);
	while ((d = r->dests) != NULL) {
		r->dests = d->next;
		free(d->name);
		free(d);
	}
	free(r->heap);
	SSL_CTX_free(r->tls);
	queue_srs_free(&r->srs);
	qr_settings_free(&r->set);
	free(r->dns_server);
	free(r);
	log_info(NULL, "event=queue-stopped");
}
