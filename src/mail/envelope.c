#include "mail/envelope.h"

#include <stdlib.h>
#include <string.h>

#include "mail/address.h"

void
mime_imap_string(struct buf *out, const char *s, size_t len)
{
	size_t i;
	int literal = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n' || c >= 0x80) {
			literal = 1;
			break;
		}
	}
	if (literal) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_reserve(out, len);
		for (i = 0; i < len; i++)
			buf_putc(out, s[i] == '\0' ? ' ' : s[i]);
		return;
	}
	buf_reserve(out, len + 2);
	buf_putc(out, '"');
	for (i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_putc(out, '\\');
		buf_putc(out, s[i] == '\0' ? ' ' : s[i]);
	}
	buf_putc(out, '"');
}

void
mime_imap_nstring(struct buf *out, const char *s)
{
	if (s == NULL)
		buf_puts(out, "NIL");
	else
		mime_imap_string(out, s, strlen(s));
}

/* Appends the address list of a raw field, or NIL; returns 1 when it held
 * at least one address. */
static int
address_list(struct buf *out, const char *raw)
{
	struct mail_address *list;
	size_t n, i;

	if (raw == NULL)
		return 0;
	n = mail_address_parse(raw, strlen(raw), &list, NULL);
	if (n == 0)
		return 0;
	buf_putc(out, '(');
	for (i = 0; i < n; i++) {
		buf_putc(out, '(');
		mime_imap_nstring(out, list[i].name);
		buf_putc(out, ' ');
		mime_imap_nstring(out, list[i].route);
		buf_putc(out, ' ');
		mime_imap_nstring(out, list[i].mailbox);
		buf_putc(out, ' ');
		mime_imap_nstring(out, list[i].host);
		buf_putc(out, ')');
	}
	buf_putc(out, ')');
	mail_address_free(&list, n);
	return 1;
}

void
mime_envelope_fields(char *const *fields, struct buf *out)
{
	static const char *const none[MIME_ENV_NFIELDS];
	const char *const *f = fields != NULL ? (const char *const *)fields : none;
	size_t from_start, from_len, start;
	int i;

	buf_putc(out, '(');
	mime_imap_nstring(out, f[MIME_ENV_DATE]);
	buf_putc(out, ' ');
	mime_imap_nstring(out, f[MIME_ENV_SUBJECT]);
	buf_putc(out, ' ');
	from_start = out->len;
	if (!address_list(out, f[MIME_ENV_FROM]))
		buf_puts(out, "NIL");
	from_len = out->len - from_start;
	for (i = MIME_ENV_SENDER; i <= MIME_ENV_BCC; i++) {
		buf_putc(out, ' ');
		start = out->len;
		if (address_list(out, f[i]))
			continue;
		out->len = start;
		out->data[start] = '\0';
		if (i == MIME_ENV_SENDER || i == MIME_ENV_REPLY_TO) {
			/* Reserve first: the copy comes from out itself. */
			buf_reserve(out, from_len);
			buf_append(out, out->data + from_start, from_len);
		}
		else
			buf_puts(out, "NIL");
	}
	buf_putc(out, ' ');
	mime_imap_nstring(out, f[MIME_ENV_IN_REPLY_TO]);
	buf_putc(out, ' ');
	mime_imap_nstring(out, f[MIME_ENV_MESSAGE_ID]);
	buf_putc(out, ')');
}

void
mime_envelope(const struct mime_summary *s, struct buf *out)
{
	char *fields[MIME_ENV_NFIELDS];

	fields[MIME_ENV_DATE] = s->date;
	fields[MIME_ENV_SUBJECT] = s->subject;
	fields[MIME_ENV_FROM] = s->from;
	fields[MIME_ENV_SENDER] = s->sender;
	fields[MIME_ENV_REPLY_TO] = s->reply_to;
	fields[MIME_ENV_TO] = s->to;
	fields[MIME_ENV_CC] = s->cc;
	fields[MIME_ENV_BCC] = s->bcc;
	fields[MIME_ENV_IN_REPLY_TO] = s->in_reply_to;
	fields[MIME_ENV_MESSAGE_ID] = s->message_id;
	mime_envelope_fields(fields, out);
}
