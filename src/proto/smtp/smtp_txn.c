/*
 * The mail transaction: MAIL, RCPT, DATA and BDAT. Recipients are resolved
 * on the worker pool one RCPT at a time; the session is paused meanwhile,
 * so pipelined commands wait in the input buffer and replies keep their
 * order.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>

#include "core/xmalloc.h"
#include "proto/smtp/smtp_internal.h"

void
smtp_txn_free(struct smtp_txn **txnp, struct net_loop *loop)
{
	struct smtp_txn *txn = *txnp;
	size_t i;

	(void)loop;
	if (txn == NULL)
		return;
	/* Removes the temporary files of a message never committed (a quick
	 * unlink; not worth a trip to the worker pool). */
	delivery_msg_free(&txn->msg);
	smtp_mail_clear(&txn->mail);
	for (i = 0; i < txn->nrcpts; i++)
		delivery_rcpt_clear(&txn->rcpts[i]);
	free(txn->rcpts);
	buf_free(&txn->chunk);
	buf_free(&txn->hdr);
	buf_free(&txn->out);
	smtp_header_info_clear(&txn->info);
	free(txn);
	*txnp = NULL;
}

void
smtp_txn_reset(struct smtp_session *s)
{
	smtp_message_stop(s);
	smtp_txn_free(&s->txn, net_conn_loop(s->conn));
}

/* A statvfs is a quick call (Postfix's smtpd makes it at every MAIL too):
 * not worth a trip to the worker pool. */
const char *
smtp_disk_full(struct smtp_session *s, uint64_t size)
{
	uint64_t reserve = s->cfg->smtp_min_free_space, avail;
	struct statvfs st;

	if (reserve == 0)
		return NULL;
	if (statvfs(s->cfg->data_dir, &st) < 0) {
		log_warn(net_conn_id(s->conn), "event=statvfs-failed dir=%s reason=\"%s\"",
		    s->cfg->data_dir, strerror(errno));
		return NULL;
	}
	avail = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
	if (avail >= reserve && avail - reserve >= size)
		return NULL;
	log_warn(net_conn_id(s->conn), "event=disk-full dir=%s free=%llu reserve=%llu size=%llu",
	    s->cfg->data_dir, (unsigned long long)avail, (unsigned long long)reserve,
	    (unsigned long long)size);
	return "452 4.3.1 Insufficient system storage, try again later";
}

/* --- MAIL -------------------------------------------------------------- */

static void
mail_check_work(struct smtp_job *job)
{
	job->result = delivery_address_owned(&job->svc, job->account_id, job->address);
}

static void
mail_check_done(struct smtp_session *s, struct smtp_job *job)
{
	struct smtp_txn *txn = job->txn;

	s->state = SMTP_READY;
	if (job->result < 0) {
		smtp_reply(s, "451 4.3.0 Temporary lookup failure, try again later");
		smtp_txn_reset(s);
		return;
	}
	if (job->result == 0) {
		net_conn_printf(s->conn, "553 5.7.1 <%s>: Sender address is not owned by user "
		    "%s\r\n", txn->mail.sender, s->user);
		smtp_txn_reset(s);
		smtp_error_count(s);
		return;
	}
	smtp_reply(s, "250 2.1.0 Ok");
}

void
smtp_cmd_mail(struct smtp_session *s, char *args)
{
	struct smtp_txn *txn;
	struct smtp_mail mail;
	const char *reply;
	unsigned ext = 0;

	if (s->txn != NULL) {
		smtp_error(s, "503 5.5.1 Nested MAIL command");
		return;
	}
	if (smtp_is_submission(s) && s->user == NULL) {
		smtp_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (s->esmtp)
		ext |= SMTP_EXT_ESMTP;
	if (net_conn_is_tls(s->conn))
		ext |= SMTP_EXT_REQUIRETLS;
	if (smtp_parse_mail(args, ext, &mail, &reply) < 0) {
		smtp_error(s, reply);
		return;
	}
	if (mail.size > s->cfg->smtp_max_message_size) {
		smtp_mail_clear(&mail);
		smtp_error(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if ((reply = smtp_disk_full(s, mail.size)) != NULL) {
		smtp_mail_clear(&mail);
		smtp_reply(s, reply);
		return;
	}
	txn = s->txn = xcalloc(1, sizeof(*txn));
	log_new_id(txn->id);
	txn->mail = mail;
	if (smtp_is_submission(s) && *mail.sender != '\0') {
		struct smtp_job *job = smtp_job_new(s);

		job->address = xstrdup(mail.sender);
		job->account_id = s->account_id;
		s->state = SMTP_WAITING;
		smtp_job_start(s, job, mail_check_work, mail_check_done);
		return;
	}
	smtp_reply(s, "250 2.1.0 Ok");
}

/* --- RCPT -------------------------------------------------------------- */

static void
rcpt_work(struct smtp_job *job)
{
	job->status = delivery_resolve(&job->svc, job->rcpt.address, job->relay,
	    job->txn->mail.size, &job->rcpt);
}

static void
rcpt_done(struct smtp_session *s, struct smtp_job *job)
{
	struct smtp_txn *txn = s->txn;
	const char *addr = job->rcpt.address;

	s->state = SMTP_READY;
	switch (job->status) {
	case DELIVERY_RESOLVED:
		txn->rcpts = xreallocarray(txn->rcpts, txn->nrcpts + 1, sizeof(*txn->rcpts));
		txn->rcpts[txn->nrcpts++] = job->rcpt;
		memset(&job->rcpt, 0, sizeof(job->rcpt));
		smtp_reply(s, "250 2.1.5 Ok");
		return;
	case DELIVERY_UNKNOWN:
		net_conn_printf(s->conn, "550 5.1.1 <%s>: Recipient address rejected: User "
		    "unknown\r\n", addr);
		break;
	case DELIVERY_NOT_LOCAL:
		net_conn_printf(s->conn, "554 5.7.1 <%s>: Relay access denied\r\n", addr);
		break;
	case DELIVERY_OVER_QUOTA:
		net_conn_printf(s->conn, "452 4.2.2 <%s>: Mailbox full\r\n", addr);
		return;
	case DELIVERY_TEMPFAIL:
		smtp_reply(s, "451 4.3.0 Temporary lookup failure, try again later");
		return;
	}
	/* Refused recipients count as errors: dictionary attacks end soon. */
	smtp_error_count(s);
}

void
smtp_cmd_rcpt(struct smtp_session *s, char *args)
{
	struct smtp_txn *txn = s->txn;
	struct smtp_rcpt rcpt;
	struct smtp_job *job;
	const char *reply;
	unsigned ext = 0;

	if (txn == NULL) {
		smtp_error(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (txn->bdat) {
		smtp_error(s, "503 5.5.1 RCPT not allowed after BDAT");
		return;
	}
	if (txn->nrcpts >= (size_t)s->cfg->smtp_max_recipients) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (s->esmtp)
		ext |= SMTP_EXT_ESMTP;
	if (txn->mail.smtputf8)
		ext |= SMTP_EXT_SMTPUTF8;
	if (smtp_parse_rcpt(args, ext, smtp_host(s), &rcpt, &reply) < 0) {
		smtp_error(s, reply);
		return;
	}
	job = smtp_job_new(s);
	job->rcpt.address = rcpt.address;
	job->rcpt.orcpt = rcpt.orcpt;
	job->rcpt.notify = rcpt.notify;
	job->relay = smtp_is_submission(s) && s->user != NULL;
	/* An address resolved lately, with the directory unchanged since,
	 * is answered here without the worker pool. */
	if (delivery_resolve_cached(&job->svc, job->rcpt.address, job->relay, &job->rcpt)) {
		job->status = DELIVERY_RESOLVED;
		rcpt_done(s, job);
		smtp_job_free(job);
		return;
	}
	s->state = SMTP_WAITING;
	smtp_job_start(s, job, rcpt_work, rcpt_done);
}

/* --- DATA and BDAT ----------------------------------------------------- */

/* 1 when the transaction may take content; else replies. */
static int
content_allowed(struct smtp_session *s, int bdat)
{
	struct smtp_txn *txn = s->txn;

	if (txn == NULL) {
		smtp_error(s, "503 5.5.1 Need MAIL command");
		return 0;
	}
	if (txn->nrcpts == 0) {
		smtp_error(s, "554 5.5.1 No valid recipients");
		return 0;
	}
	if (!bdat && txn->mail.body == SMTP_BODY_BINARYMIME) {
		smtp_error(s, "503 5.5.1 BODY=BINARYMIME needs BDAT");
		return 0;
	}
	if (!bdat && txn->bdat) {
		smtp_error(s, "503 5.5.1 DATA not allowed after BDAT");
		return 0;
	}
	return 1;
}

void
smtp_cmd_data(struct smtp_session *s, char *args)
{
	const char *reply;

	if (*args != '\0') {
		smtp_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (!content_allowed(s, 0))
		return;
	if ((reply = smtp_disk_full(s, s->txn->mail.size)) != NULL) {
		smtp_reply(s, reply);
		return;
	}
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	smtp_message_begin(s, 1);
	s->state = SMTP_DATA;
}

void
smtp_cmd_bdat(struct smtp_session *s, char *args)
{
	uint64_t size = 0;
	const char *p = args;
	int last = 0, digits = 0;

	for (; isdigit((unsigned char)*p); p++) {
		if (++digits > 20 || size > UINT64_MAX / 10)
			break;
		size = size * 10 + (uint64_t)(*p - '0');
	}
	if (*p == ' ') {
		while (*p == ' ')
			p++;
		if (strcasecmp(p, "LAST") == 0) {
			last = 1;
			p += strlen(p);
		}
	}
	if (digits == 0 || digits > 20 || *p != '\0') {
		/* The chunk's length is unknown: no way to stay in step. */
		net_conn_printf(s->conn, "501 5.5.4 %s Syntax: BDAT size [LAST]; closing "
		    "connection\r\n", smtp_host(s));
		smtp_close_conn(s);
		return;
	}
	s->bdat_left = size;
	s->state = SMTP_BDAT;
	s->bdat_reply = NULL;
	if (!s->esmtp)
		s->bdat_reply = "503 5.5.1 BDAT needs EHLO";
	else if (s->txn == NULL)
		s->bdat_reply = "503 5.5.1 Need MAIL command";
	else if (s->txn->nrcpts == 0)
		s->bdat_reply = "554 5.5.1 No valid recipients";
	else if (!s->txn->bdat)
		s->bdat_reply = smtp_disk_full(s, s->txn->mail.size);
	if (s->bdat_reply != NULL) {
		/* Read the chunk anyway, then refuse it. */
		smtp_txn_reset(s);
		return;
	}
	if (!s->txn->bdat)
		smtp_message_begin(s, 0);
	else
		net_conn_set_timeout(s->conn, s->cfg->timeout_smtp_data_ms);
	s->txn->last = last;
}
