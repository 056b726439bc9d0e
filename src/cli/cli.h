/*
 * The `petrel` command line: one file per command family (cmd_*.c), each
 * exporting a function with this signature. main.c parses the global options
 * and dispatches.
 */
#ifndef PETREL_CLI_CLI_H
#define PETREL_CLI_CLI_H

#include "core/config.h"

struct directory;

struct cli {
	const char *config_arg;  /* -c FILE, or NULL */
	int json;                /* --json anywhere on the line */
	int loaded;
	struct config cfg;
};

/* argv[0] is the command name ("domain", "account", ...). Returns the exit
 * status: 0 success, 1 failure (message printed), 2 usage error. */
typedef int cli_command_fn(struct cli *cli, int argc, char **argv);

cli_command_fn cmd_init;
cli_command_fn cmd_serve;
cli_command_fn cmd_check;
cli_command_fn cmd_domain;
cli_command_fn cmd_account;
cli_command_fn cmd_alias;
cli_command_fn cmd_catchall;
cli_command_fn cmd_import;
cli_command_fn cmd_import_mail;   /* import maildir|mbox, from cmd_import */
cli_command_fn cmd_mailbox;
cli_command_fn cmd_message;
cli_command_fn cmd_export;
cli_command_fn cmd_queue;
cli_command_fn cmd_config_reference;

/* Loads the config (once); on failure prints the error and returns -1. */
int cli_load_config(struct cli *cli);

/* Loads the config, switches to its unprivileged user when running as root
 * (so that files the command creates belong to the daemon's user) and opens
 * the directory database. Prints the error and returns -1 on failure. */
int cli_open_directory(struct cli *cli, struct directory **dir_r);

/* Switches to cfg->user if running as root and root is not allowed.
 * Returns 0, or -1 with *error_r. */
int cli_drop_privileges(const struct config *cfg, char **error_r);

/* Prints "petrel: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reads a password from stdin (first line, without its newline). Returns an
 * allocated string or NULL (message printed). */
char *cli_read_password_stdin(void);

/* Path of the directory database inside the data directory. */
char *cli_directory_path(const struct config *cfg);

#endif
