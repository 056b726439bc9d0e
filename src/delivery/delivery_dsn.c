/*
 * Delivery status notifications (RFC 3464) for what happens inside the
 * transaction: a mailbox that failed at commit while others succeeded
 * (failure), and NOTIFY=SUCCESS for local deliveries (delivered). They go to
 * the queue like any message to a remote address, from the null sender.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "delivery/delivery.h"

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

static void
rfc5322_date(char *out, size_t size)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* The addr-type;xtext of ORCPT, decoded for the report. */
static void
put_orcpt(struct buf *b, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	char *dec;

	if (semi == NULL || (dec = queue_xtext_decode(semi + 1)) == NULL)
		return;
	buf_printf(b, "Original-Recipient: %.*s;%s\r\n", (int)(semi - orcpt), orcpt, dec);
	free(dec);
}

int
delivery_dsn_queue(const struct delivery_services *svc, const struct delivery_envelope *env,
    int success, const char **error_r)
{
	struct buf b = BUF_INIT;
	struct queue_writer *w = NULL;
	struct queue_envelope qe;
	struct queue_rcpt qr;
	char date[64], boundary[LOG_ID_SIZE], mid[LOG_ID_SIZE];
	size_t i, count = 0;
	int r;

	if (*env->sender == '\0')
		return 0;   /* never a DSN about a DSN */
	for (i = 0; i < env->nrcpts; i++)
		if (wants(&env->rcpts[i], success))
			count++;
	if (count == 0)
		return 0;
	rfc5322_date(date, sizeof(date));
	log_new_id(boundary);
	log_new_id(mid);
	buf_printf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: %s\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%s.dsn@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s/%s\"\r\n\r\n",
	    svc->hostname, env->sender,
	    success ? "Delivery Status Notification (Success)" :
	    "Undelivered Mail Returned to Sender", date, mid, svc->hostname, boundary,
	    svc->hostname);
	buf_printf(&b, "--%s/%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
	    boundary, svc->hostname);
	if (success)
		buf_printf(&b, "This is the mail system at %s.\r\n\r\nYour message was delivered "
		    "to the following recipients:\r\n\r\n", svc->hostname);
	else
		buf_printf(&b, "This is the mail system at %s.\r\n\r\nYour message could not be "
		    "delivered to the following recipients:\r\n\r\n", svc->hostname);
	for (i = 0; i < env->nrcpts; i++)
		if (wants(&env->rcpts[i], success))
			buf_printf(&b, "  <%s>%s\r\n", env->rcpts[i].address,
			    success ? "" : env->rcpts[i].full ? ": mailbox full" :
			    ": mailbox unavailable");
	buf_printf(&b, "\r\n--%s/%s\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; %s\r\n", boundary, svc->hostname, svc->hostname);
	if (env->envid != NULL) {
		char *dec = queue_xtext_decode(env->envid);

		if (dec != NULL)
			buf_printf(&b, "Original-Envelope-Id: %s\r\n", dec);
		free(dec);
	}
	buf_printf(&b, "Arrival-Date: %s\r\n", date);
	for (i = 0; i < env->nrcpts; i++) {
		const struct delivery_rcpt *rc = &env->rcpts[i];

		if (!wants(rc, success))
			continue;
		buf_puts(&b, "\r\n");
		if (rc->orcpt != NULL)
			put_orcpt(&b, rc->orcpt);
		buf_printf(&b, "Final-Recipient: %s;%s\r\n",
		    env->smtputf8 ? "utf-8" : "rfc822", rc->address);
		if (success)
			buf_puts(&b, "Action: delivered\r\nStatus: 2.0.0\r\n");
		else if (rc->full)
			buf_puts(&b, "Action: failed\r\nStatus: 5.2.2\r\n"
			    "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n");
		else
			buf_puts(&b, "Action: failed\r\nStatus: 5.3.0\r\n"
			    "Diagnostic-Code: smtp; 554 5.3.0 Mailbox unavailable\r\n");
	}
	/* The original header section only (what RET=HDRS asks; RET=FULL is
	 * honored by the queue's own bounces, which have the message). */
	buf_printf(&b, "\r\n--%s/%s\r\nContent-Type: %s\r\n\r\n", boundary, svc->hostname,
	    env->smtputf8 ? "message/global-headers" : "text/rfc822-headers");
	if (env->header != NULL)
		buf_append(&b, env->header, env->header_len);
	buf_printf(&b, "\r\n--%s/%s--\r\n", boundary, svc->hostname);

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
