/*
 * petrel message list ADDR [--mailbox NAME] | show ADDR UID [--mailbox NAME]:
 * an account's messages (INBOX unless --mailbox). `list` prints what was
 * parsed when each message was stored; `show` streams the message's bytes
 * as they are stored.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_mail.h"
#include "cli/cmd_directory.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/parse.h"
#include "core/xmalloc.h"
#include "mail/mime.h"
#include "store/store.h"

#define MESSAGE_READ_CHUNK 65536

static json_t *
message_keywords_json(char *const *keywords)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; keywords != NULL && keywords[i] != NULL; i++)
		json_array_append_new(arr, json_string(keywords[i]));
	return arr;
}

static json_t *
message_flags_json(unsigned flags, char *const *keywords)
{
	struct buf b = BUF_INIT;
	json_t *arr = json_array();
	char *tok, *save = NULL;

	cli_mail_format_flags(flags, keywords, &b);
	for (tok = strtok_r(b.data, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
		json_array_append_new(arr, json_string(tok));
	buf_free(&b);
	return arr;
}

static int
message_list(struct cli *cli, int argc, char **argv)
{
	struct store_message *msgs = NULL, *msg;
	struct store_mailbox mbox;
	struct mime_summary *sum;
	struct cli_mail m;
	struct buf flags = BUF_INIT;
	const char *error, *mailbox = "INBOX";
	char *pos[1], date[32], *from, *subject;
	json_t *arr = NULL;
	size_t n = 0, i;
	int rc = 1;
	const struct cli_dir_option opts[] = {
		{ "--mailbox", NULL, &mailbox },
		{ NULL, NULL, NULL },
	};

	if (cli_dir_parse_args(argc, argv, opts, pos, 1) != 1)
		return 2;
	if (cli_mail_open(cli, pos[0], &m) < 0)
		return 1;
	if (cli_mail_mailbox(&m, mailbox, &mbox) <= 0)
		goto out;
	if (store_message_list(m.acct, mbox.id, 0, UINT32_MAX, &msgs, &n, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	if (cli->json)
		arr = json_array();
	for (i = 0; i < n; i++) {
		msg = &msgs[i];
		sum = NULL;
		if (store_message_summary(m.acct, mbox.id, msg->uid, &sum, &error) < 0) {
			/* Expunged meanwhile, or unreadable: list what we have. */
			cli_error("uid %u: %s", msg->uid, error);
			sum = NULL;
		}
		from = cli_mail_printable(sum != NULL ? sum->from : NULL);
		subject = cli_mail_printable(sum != NULL ? sum->subject : NULL);
		cli_dir_format_time(msg->internaldate, date, sizeof(date));
		if (arr != NULL) {
			char *hdate = cli_mail_printable(sum != NULL ? sum->date : NULL);

			json_array_append_new(arr, json_pack(
			    "{s:I, s:s, s:s, s:I, s:o, s:o, s:s, s:s, s:s, s:I}",
			    "uid", (json_int_t)msg->uid, "internaldate", date, "date", hdate,
			    "size", (json_int_t)msg->size,
			    "flags", message_flags_json(msg->flags, msg->keywords),
			    "keywords", message_keywords_json(msg->keywords),
			    "from", from, "subject", subject, "guid", msg->guid,
			    "modseq", (json_int_t)msg->modseq));
			free(hdate);
		} else {
			buf_reset(&flags);
			cli_mail_format_flags(msg->flags, msg->keywords, &flags);
			printf("%u\t%s\t%llu\t(%s)\t%s\t%s\n", msg->uid, date,
			    (unsigned long long)msg->size, buf_cstr(&flags), from, subject);
		}
		free(from);
		free(subject);
		if (sum != NULL)
			mime_summary_free(&sum);
	}
	if (arr != NULL)
		cli_dir_print_json(json_pack("{s:s, s:s, s:I, s:o}", "account",
		    m.account.address, "mailbox", mbox.name, "uidvalidity",
		    (json_int_t)mbox.uidvalidity, "messages", arr));
	rc = 0;
out:
	buf_free(&flags);
	store_messages_free(&msgs, n);
	store_mailbox_clear(&mbox);
	cli_mail_close(&m);
	return rc;
}

/* Writes all of it, retrying short writes. */
static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int
message_show(struct cli *cli, int argc, char **argv)
{
	struct store_message *msgs = NULL;
	struct store_mailbox mbox;
	struct store_blob *blob = NULL;
	struct cli_mail m;
	struct buf body = BUF_INIT, enc = BUF_INIT;
	const char *error, *mailbox = "INBOX";
	char *pos[2], date[32], *chunk;
	long long uid;
	uint64_t off = 0;
	ssize_t r;
	size_t n = 0;
	int rc = 1;
	const struct cli_dir_option opts[] = {
		{ "--mailbox", NULL, &mailbox },
		{ NULL, NULL, NULL },
	};

	if (cli_dir_parse_args(argc, argv, opts, pos, 2) != 2)
		return 2;
	if (parse_int(pos[1], 1, UINT32_MAX, &uid) < 0) {
		cli_error("invalid UID '%s'", pos[1]);
		return 2;
	}
	if (cli_mail_open(cli, pos[0], &m) < 0)
		return 1;
	if (cli_mail_mailbox(&m, mailbox, &mbox) <= 0)
		goto out_nochunk;
	if (store_message_list(m.acct, mbox.id, (uint32_t)uid, (uint32_t)uid, &msgs, &n,
	    &error) < 0) {
		cli_error("%s", error);
		goto out_nochunk;
	}
	if (n == 0) {
		cli_error("%s: no message with UID %lld", mbox.name, uid);
		goto out_nochunk;
	}
	if (store_blob_open(m.acct, mbox.id, (uint32_t)uid, &blob, &error) < 0) {
		cli_error("uid %lld: %s", uid, error);
		goto out_nochunk;
	}
	chunk = xmalloc(MESSAGE_READ_CHUNK);
	for (;;) {
		if ((r = store_blob_read(blob, off, chunk, MESSAGE_READ_CHUNK)) < 0) {
			cli_error("uid %lld: read error", uid);
			goto out;
		}
		if (r == 0)
			break;
		off += (uint64_t)r;
		if (cli->json) {
			buf_append(&body, chunk, (size_t)r);
		} else if (write_all(STDOUT_FILENO, chunk, (size_t)r) < 0) {
			cli_error("standard output: %s", strerror(errno));
			goto out;
		}
	}
	if (off != store_blob_size(blob)) {
		cli_error("uid %lld: message shorter than its size", uid);
		goto out;
	}
	if (cli->json) {
		json_t *o;

		cli_dir_format_time(msgs[0].internaldate, date, sizeof(date));
		o = json_pack("{s:s, s:I, s:I, s:s, s:o, s:s}", "mailbox", mbox.name,
		    "uid", (json_int_t)uid, "size", (json_int_t)off, "internaldate", date,
		    "flags", message_flags_json(msgs[0].flags, msgs[0].keywords),
		    "guid", msgs[0].guid);
		if (cli_mail_utf8_valid(body.data != NULL ? body.data : "", body.len)) {
			json_object_set_new(o, "message", json_stringn(body.data != NULL ?
			    body.data : "", body.len));
		} else {
			base64_encode(&enc, body.data, body.len);
			json_object_set_new(o, "message_base64", json_string(buf_cstr(&enc)));
		}
		cli_dir_print_json(o);
	}
	rc = 0;
out:
	free(chunk);
out_nochunk:
	if (blob != NULL)
		store_blob_close(&blob);
	buf_free(&body);
	buf_free(&enc);
	store_messages_free(&msgs, n);
	store_mailbox_clear(&mbox);
	cli_mail_close(&m);
	return rc;
}

int
cmd_message(struct cli *cli, int argc, char **argv)
{
	static const struct cli_mail_subcommand table[] = {
		{ "list", message_list },
		{ "show", message_show },
		{ NULL, NULL },
	};

	return cli_mail_dispatch(table, cli, argc, argv);
}
