/*
 * petrel [-c FILE] [--json] COMMAND [ARGS...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cli/cli.h"

static const struct {
	const char *name;
	cli_command_fn *fn;
	const char *usage;
} commands[] = {
	{ "init", cmd_init, "init DIR [--hostname NAME] [--bind ADDR[,ADDR]] [--port-base N]" },
	{ "serve", cmd_serve, "serve [--daemon]" },
	{ "check", cmd_check, "check" },
	{ "domain", cmd_domain, "domain add|list|remove [--force] DOMAIN" },
	{ "account", cmd_account,
	  "account add ADDR [--password-stdin] [--quota SIZE] | list [DOMAIN] | remove ADDR |\n"
	  "         passwd ADDR [--password-stdin] | quota ADDR SIZE [--messages N]" },
	{ "alias", cmd_alias, "alias add ADDR TARGET... | list [DOMAIN] | remove ADDR [TARGET]" },
	{ "catchall", cmd_catchall, "catchall set DOMAIN TARGET | clear DOMAIN" },
	{ "import", cmd_import,
	  "import passwd-file FILE | maildir ADDR DIR [--no-resume] |\n"
	  "         mbox ADDR FILE [--mailbox NAME] [--no-resume]" },
	{ "export", cmd_export, "export maildir|mbox ADDR DIR [--mailbox NAME]" },
	{ "mailbox", cmd_mailbox,
	  "mailbox list ADDR | create ADDR NAME | rename ADDR NAME NEWNAME | delete ADDR NAME" },
	{ "message", cmd_message,
	  "message list ADDR [--mailbox NAME] | show ADDR UID [--mailbox NAME]" },
	{ "queue", cmd_queue,
	  "queue list | show ID | flush [ID] | hold ID | release ID | delete ID | bounce ID" },
	{ "config-reference", cmd_config_reference, "config-reference" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: petrel [-c FILE] [--json] COMMAND ...\n\ncommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  petrel %s\n", commands[i].usage);
}

int
main(int argc, char **argv)
{
	struct cli cli;
	char **args;
	int nargs = 0, i, rc;
	size_t c;

	/* Before SQLite's first use: nothing reads its memory statistics, and
	 * keeping them takes a process-wide mutex on every allocation, which
	 * the store's worker threads contended for. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	memset(&cli, 0, sizeof(cli));
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (args == NULL)
		return 1;
	/* Global options may come before the command; --json anywhere. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			cli.json = 1;
		} else if (nargs == 0 && strcmp(argv[i], "-c") == 0) {
			if (++i == argc) {
				usage(stderr);
				free(args);
				return 2;
			}
			cli.config_arg = argv[i];
		} else if (nargs == 0 && (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)) {
			usage(stdout);
			free(args);
			return 0;
		} else if (nargs == 0 && strcmp(argv[i], "--version") == 0) {
			printf("petrel %s\n", PETREL_VERSION);
			free(args);
			return 0;
		} else {
			args[nargs++] = argv[i];
		}
	}
	if (nargs == 0) {
		usage(stderr);
		free(args);
		return 2;
	}
	for (c = 0; c < NCOMMANDS; c++)
		if (strcmp(args[0], commands[c].name) == 0)
			break;
	if (c == NCOMMANDS) {
		fprintf(stderr, "petrel: unknown command '%s'\n", args[0]);
		usage(stderr);
		free(args);
		return 2;
	}
	rc = commands[c].fn(&cli, nargs, args);
	if (rc == 2)
		fprintf(stderr, "usage: petrel %s\n", commands[c].usage);
	if (cli.loaded)
		config_free(&cli.cfg);
	free(args);
	return rc;
}
