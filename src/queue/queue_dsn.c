/*
 * The text of delivery status notifications. See queue_dsn.h.
 */
#include "queue/queue_dsn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "queue/queue.h"

static void
rfc5322_date(char *out, size_t size, int64_t t)
{
	time_t tt = t != 0 ? (time_t)t : time(NULL);
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

static int
status_valid(const char *s)
{
	int parts = 0, digits = 0;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
		return 0;
	for (; *s != '\0' && *s != ' '; s++) {
		if (*s >= '0' && *s <= '9') {
			if (++digits > 3)
				return 0;
		} else if (*s == '.' && digits > 0) {
			parts++;
			digits = 0;
		} else {
			return 0;
		}
	}
	return parts == 2 && digits > 0;
}

void
queue_dsn_status(char out[16], const char *st, const char *reply,
    enum queue_dsn_action action)
{
	if (status_valid(st)) {
		snprintf(out, 16, "%.15s", st);
		out[strcspn(out, " ")] = '\0';
		return;
	}
	if (reply != NULL && strlen(reply) > 4 && status_valid(reply + 4) &&
	    reply[4] == reply[0]) {
		snprintf(out, 16, "%.15s", reply + 4);
		out[strcspn(out, " ")] = '\0';
		return;
	}
	if (reply != NULL && (reply[0] == '4' || reply[0] == '5') && reply[1] >= '0' &&
	    reply[1] <= '9') {
		snprintf(out, 16, "%c.0.0", reply[0]);
		return;
	}
	switch (action) {
	case QUEUE_DSN_FAILED:
		snprintf(out, 16, "5.0.0");
		break;
	case QUEUE_DSN_DELAYED:
		snprintf(out, 16, "4.0.0");
		break;
	default:
		snprintf(out, 16, "2.0.0");
		break;
	}
}

/* Printable ASCII only, for header fields. */
static void
put_clean(struct buf *b, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		buf_putc(b, c >= 0x20 && c < 0x7f ? (char)c : '?');
	}
}

static void
put_orcpt(struct buf *b, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	char *dec;

	if (semi == NULL || (dec = queue_xtext_decode(semi + 1)) == NULL)
		return;
	buf_printf(b, "Original-Recipient: %.*s;", (int)(semi - orcpt), orcpt);
	put_clean(b, dec, 500);
	buf_puts(b, "\r\n");
	free(dec);
}

static const char *const action_names[] = { "failed", "delayed", "delivered", "relayed" };

/* The end of the header section within the message. */
static size_t
headers_len(const char *m, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (m[i] == '\n' && m[i + 1] == '\n')
			return i + 1;
		if (m[i] == '\n' && m[i + 1] == '\r' && i + 2 < len && m[i + 2] == '\n')
			return i + 1;
	}
	return len;
}

void
queue_dsn_format(struct buf *b, const struct queue_dsn *d)
{
	char date[64], boundary[LOG_ID_SIZE], mid[LOG_ID_SIZE], arrival[64], status[16];
	const char *subject, *intro;
	size_t i;

	rfc5322_date(date, sizeof(date), 0);
	log_new_id(boundary);
	log_new_id(mid);
	switch (d->action) {
	case QUEUE_DSN_FAILED:
		subject = "Undelivered Mail Returned to Sender";
		intro = "Your message could not be delivered to the following recipients.";
		break;
	case QUEUE_DSN_DELAYED:
		subject = "Delayed Mail (still being retried)";
		intro = "Your message has not been delivered yet to the following\r\n"
		    "recipients. Delivery will be tried again; you need not resend it.";
		break;
	case QUEUE_DSN_RELAYED:
		subject = "Delivery Status Notification (Relayed)";
		intro = "Your message was handed to a server that does not send delivery\r\n"
		    "notifications, for the following recipients.";
		break;
	default:
		subject = "Delivery Status Notification (Success)";
		intro = "Your message was delivered to the following recipients.";
		break;
	}
	buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <", d->hostname);
	put_clean(b, d->to, 320);
	buf_printf(b, ">\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s.dsn@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s/%s\"\r\n\r\n", subject, date, mid, d->hostname, boundary,
	    d->hostname);
	buf_printf(b, "This is a MIME-encapsulated message.\r\n\r\n--%s/%s\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "This is the mail system at %s.\r\n\r\n%s\r\n\r\n", boundary, d->hostname,
	    d->hostname, intro);
	for (i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];

		buf_puts(b, "<");
		put_clean(b, r->address, 320);
		buf_puts(b, ">");
		if (r->diagnostic != NULL) {
			buf_puts(b, ": ");
			if (r->remote_mta != NULL) {
				buf_puts(b, "host ");
				put_clean(b, r->remote_mta, 255);
				buf_puts(b, " said: ");
			}
			put_clean(b, r->diagnostic, 600);
		} else if (r->reason != NULL) {
			buf_puts(b, ": ");
			put_clean(b, r->reason, 600);
		}
		buf_puts(b, "\r\n");
	}
	buf_printf(b, "\r\n--%s/%s\r\nContent-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; %s\r\n", boundary, d->hostname, d->hostname);
	if (d->envid != NULL) {
		char *dec = queue_xtext_decode(d->envid);

		if (dec != NULL) {
			buf_puts(b, "Original-Envelope-Id: ");
			put_clean(b, dec, 100);
			buf_puts(b, "\r\n");
		}
		free(dec);
	}
	if (d->arrival != 0) {
		rfc5322_date(arrival, sizeof(arrival), d->arrival);
		buf_printf(b, "Arrival-Date: %s\r\n", arrival);
	}
	for (i = 0; i < d->nrcpts; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];

		buf_puts(b, "\r\n");
		if (r->orcpt != NULL)
			put_orcpt(b, r->orcpt);
		buf_printf(b, "Final-Recipient: %s;", d->smtputf8 ? "utf-8" : "rfc822");
		put_clean(b, r->address, 320);
		queue_dsn_status(status, r->status, r->diagnostic, d->action);
		buf_printf(b, "\r\nAction: %s\r\nStatus: %s\r\n", action_names[d->action], status);
		if (r->remote_mta != NULL) {
			buf_puts(b, "Remote-MTA: dns; ");
			put_clean(b, r->remote_mta, 255);
			buf_puts(b, "\r\n");
		}
		if (r->diagnostic != NULL) {
			buf_puts(b, "Diagnostic-Code: smtp; ");
			put_clean(b, r->diagnostic, 600);
			buf_puts(b, "\r\n");
		}
		buf_printf(b, "Last-Attempt-Date: %s\r\n", date);
		if (d->action == QUEUE_DSN_DELAYED && d->retry_until != 0) {
			rfc5322_date(arrival, sizeof(arrival), d->retry_until);
			buf_printf(b, "Will-Retry-Until: %s\r\n", arrival);
		}
	}
	if (d->original != NULL) {
		size_t len = d->original_len;

		if (d->headers_only) {
			len = headers_len(d->original, d->original_len);
			buf_printf(b, "\r\n--%s/%s\r\nContent-Type: %s\r\n\r\n", boundary,
			    d->hostname, d->smtputf8 ? "message/global-headers" :
			    "text/rfc822-headers");
		} else {
			buf_printf(b, "\r\n--%s/%s\r\nContent-Type: %s\r\n\r\n", boundary,
			    d->hostname, d->smtputf8 ? "message/global" : "message/rfc822");
		}
		buf_append(b, d->original, len);
		if (len > 0 && d->original[len - 1] != '\n')
			buf_puts(b, "\r\n");
	}
	buf_printf(b, "\r\n--%s/%s--\r\n", boundary, d->hostname);
}
