/*
 * Delivery status notifications (RFC 3464) for what happens inside the
 * transaction: a mailbox that failed at commit while others succeeded
 * (failure), and NOTIFY=SUCCESS for local deliveries (delivered). They go to
 * the queue like any message to a remote address, from the null sender;
 * the queue runner puts those for local senders into their mailbox. The
 * text is queue_dsn.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "delivery/delivery.h"
#include "queue/queue_dsn.h"

static int
wants(const struct delivery_rcpt *r, int success)
{
	if (r->notify & QUEUE_NOTIFY_NEVER)
		return 0;
	if (success)
		return !r->failed && r->nmailboxes > 0 && (r->notify & QUEUE_NOTIFY_SUCCESS);
	/* No NOTIFY means FAILURE (and DELAY) (RFC 3461 4.1). */
	return r->failed && (r->notify == 0 || (r->notify & QUEUE_NOTIFY_FAILURE));
}

int
delivery_dsn_queue(const struct delivery_services *svc, const struct delivery_envelope *env,
    int success, const char **error_r)
{
	struct buf b = BUF_INIT;
	struct queue_writer *w = NULL;
	struct queue_envelope qe;
	struct queue_rcpt qr;
	struct queue_dsn d;
	struct queue_dsn_rcpt *dr;
	size_t i, count = 0;
	int r;

	if (*env->sender == '\0')
		return 0;   /* never a DSN about a DSN */
	for (i = 0; i < env->nrcpts; i++)
		if (wants(&env->rcpts[i], success))
			count++;
	if (count == 0)
		return 0;
	dr = xcalloc(count, sizeof(*dr));
	count = 0;
	for (i = 0; i < env->nrcpts; i++) {
		const struct delivery_rcpt *rc = &env->rcpts[i];

		if (!wants(rc, success))
			continue;
		dr[count].address = rc->address;
		dr[count].orcpt = rc->orcpt;
		if (success) {
			dr[count].status = "2.0.0";
		} else if (rc->full) {
			dr[count].status = "5.2.2";
			dr[count].diagnostic = "552 5.2.2 Mailbox full";
		} else {
			dr[count].status = "5.3.0";
			dr[count].diagnostic = "554 5.3.0 Mailbox unavailable";
		}
		count++;
	}
	memset(&d, 0, sizeof(d));
	d.hostname = svc->hostname;
	d.to = env->sender;
	d.envid = env->envid;
	d.smtputf8 = env->smtputf8;
	d.action = success ? QUEUE_DSN_DELIVERED : QUEUE_DSN_FAILED;
	d.rcpts = dr;
	d.nrcpts = count;
	/* The original header section only (what RET=HDRS asks; RET=FULL is
	 * honored by the queue's own bounces, which have the message). */
	d.original = env->header != NULL ? env->header : "";
	d.original_len = env->header != NULL ? env->header_len : 0;
	d.headers_only = 1;
	queue_dsn_format(&b, &d);
	free(dr);

	memset(&qe, 0, sizeof(qe));
	memset(&qr, 0, sizeof(qr));
	qe.sender = "";
	qe.body = env->smtputf8 || env->body != QUEUE_BODY_7BIT ? QUEUE_BODY_8BITMIME :
	    QUEUE_BODY_7BIT;
	qe.smtputf8 = env->smtputf8;
	qr.address = (char *)env->sender;
	qr.notify = QUEUE_NOTIFY_NEVER;
	qe.rcpts = &qr;
	qe.nrcpts = 1;
	r = queue_writer_new(svc->queue, &w, error_r);
	if (r == 0)
		r = queue_writer_write(w, b.data, b.len, error_r);
	if (r == 0)
		r = queue_writer_commit(w, &qe, error_r);
	queue_writer_free(&w);
	buf_free(&b);
	if (r == 0)
		log_info(env->id, "event=dsn kind=%s to=<%.320s> queue_id=%s",
		    success ? "delivered" : "failed", env->sender, qe.id);
	return r;
}
