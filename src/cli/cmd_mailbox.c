/*
 * petrel mailbox list ADDR | create ADDR NAME | rename ADDR NAME NEWNAME |
 * delete ADDR NAME: an account's mailboxes. Names are the store's: UTF-8,
 * '/' between levels.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_mail.h"
#include "cli/cmd_directory.h"
#include "core/buf.h"
#include "store/store.h"

static const struct {
	unsigned role;
	const char *name;
} special_uses[] = {
	{ STORE_SPECIAL_SENT, "\\Sent" },
	{ STORE_SPECIAL_DRAFTS, "\\Drafts" },
	{ STORE_SPECIAL_TRASH, "\\Trash" },
	{ STORE_SPECIAL_JUNK, "\\Junk" },
	{ STORE_SPECIAL_ARCHIVE, "\\Archive" },
	{ STORE_SPECIAL_ALL, "\\All" },
	{ STORE_SPECIAL_FLAGGED, "\\Flagged" },
};
#define NSPECIAL (sizeof(special_uses) / sizeof(special_uses[0]))

static json_t *
mailbox_json(const struct store_mailbox *mb)
{
	json_t *roles = json_array();
	size_t i;

	for (i = 0; i < NSPECIAL; i++)
		if (mb->special_use & special_uses[i].role)
			json_array_append_new(roles, json_string(special_uses[i].name));
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:b}",
	    "name", mb->name, "id", (json_int_t)mb->id,
	    "uidvalidity", (json_int_t)mb->uidvalidity,
	    "uidnext", (json_int_t)mb->uidnext,
	    "highestmodseq", (json_int_t)mb->highestmodseq,
	    "messages", (json_int_t)mb->messages, "unseen", (json_int_t)mb->unseen,
	    "deleted", (json_int_t)mb->deleted, "size", (json_int_t)mb->size,
	    "special_use", roles, "subscribed", mb->subscribed);
}

static int
mailbox_list(struct cli *cli, int argc, char **argv)
{
	struct store_mailbox *list = NULL;
	struct cli_mail m;
	struct buf roles = BUF_INIT;
	const char *error;
	char *pos[1];
	json_t *arr;
	size_t n, i, j;
	int w = 4;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 1) != 1)
		return 2;
	if (cli_mail_open(cli, pos[0], &m) < 0)
		return 1;
	if (store_mailbox_list(m.acct, &list, &n, &error) < 0) {
		cli_error("%s", error);
		cli_mail_close(&m);
		return 1;
	}
	if (cli->json) {
		arr = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(arr, mailbox_json(&list[i]));
		cli_dir_print_json(json_pack("{s:s, s:o}", "account", m.account.address,
		    "mailboxes", arr));
	} else {
		for (i = 0; i < n; i++)
			if ((int)strlen(list[i].name) > w)
				w = (int)strlen(list[i].name);
		for (i = 0; i < n; i++) {
			buf_reset(&roles);
			for (j = 0; j < NSPECIAL; j++) {
				if ((list[i].special_use & special_uses[j].role) == 0)
					continue;
				buf_puts(&roles, roles.len > 0 ? " " : "  ");
				buf_puts(&roles, special_uses[j].name);
			}
			printf("%-*s  messages=%u  unseen=%u  size=%llu  uidvalidity=%u  "
			    "uidnext=%u%s%s\n", w, list[i].name, list[i].messages,
			    list[i].unseen, (unsigned long long)list[i].size,
			    list[i].uidvalidity, list[i].uidnext,
			    list[i].subscribed ? "  subscribed" : "", buf_cstr(&roles));
		}
	}
	buf_free(&roles);
	store_mailboxes_free(&list, n);
	cli_mail_close(&m);
	return 0;
}

static int
mailbox_create(struct cli *cli, int argc, char **argv)
{
	struct cli_mail m;
	const char *error;
	char *pos[2];
	int64_t id;
	int rc = 1;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 2) != 2)
		return 2;
	if (cli_mail_open(cli, pos[0], &m) < 0)
		return 1;
	if (store_mailbox_create(m.acct, pos[1], 0, &id, &error) < 0) {
		cli_error("%s: %s", pos[1], error);
	} else {
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:s, s:I, s:s}", "account",
			    m.account.address, "mailbox", pos[1], "id", (json_int_t)id,
			    "result", "created"));
		else
			printf("mailbox %s created\n", pos[1]);
		rc = 0;
	}
	cli_mail_close(&m);
	return rc;
}

static int
mailbox_rename(struct cli *cli, int argc, char **argv)
{
	struct cli_mail m;
	const char *error;
	char *pos[3];
	int rc = 1;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 3) != 3)
		return 2;
	if (cli_mail_open(cli, pos[0], &m) < 0)
		return 1;
	if (store_mailbox_rename(m.acct, pos[1], pos[2], &error) < 0) {
		cli_error("%s: %s", pos[1], error);
	} else {
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:s, s:s, s:s}", "account",
			    m.account.address, "mailbox", pos[1], "new_name", pos[2],
			    "result", "renamed"));
		else
			printf("mailbox %s renamed to %s\n", pos[1], pos[2]);
		rc = 0;
	}
	cli_mail_close(&m);
	return rc;
}

static int
mailbox_delete(struct cli *cli, int argc, char **argv)
{
	struct cli_mail m;
	const char *error;
	char *pos[2];
	int rc = 1;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 2) != 2)
		return 2;
	if (cli_mail_open(cli, pos[0], &m) < 0)
		return 1;
	if (store_mailbox_delete(m.acct, pos[1], &error) < 0) {
		cli_error("%s: %s", pos[1], error);
	} else {
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:s, s:s}", "account",
			    m.account.address, "mailbox", pos[1], "result", "deleted"));
		else
			printf("mailbox %s deleted\n", pos[1]);
		rc = 0;
	}
	cli_mail_close(&m);
	return rc;
}

int
cmd_mailbox(struct cli *cli, int argc, char **argv)
{
	static const struct cli_mail_subcommand table[] = {
		{ "list", mailbox_list },
		{ "create", mailbox_create },
		{ "rename", mailbox_rename },
		{ "delete", mailbox_delete },
		{ NULL, NULL },
	};

	return cli_mail_dispatch(table, cli, argc, argv);
}
