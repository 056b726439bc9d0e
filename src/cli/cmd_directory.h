/*
 * Helpers shared by the directory commands (cmd_directory.c, cmd_import.c).
 */
#ifndef PETREL_CLI_CMD_DIRECTORY_H
#define PETREL_CLI_CMD_DIRECTORY_H

#include <stdint.h>

#include <jansson.h>

/* One option of a subcommand: a flag (value NULL) or an option taking a
 * value ("--name VALUE" or "--name=VALUE"). */
struct cli_dir_option {
	const char *name;       /* with the leading "--" */
	int *flag;
	const char **value;
};

/* Splits args into the options in opts and positional arguments (at most
 * maxpos, stored in pos). "--" ends the options. Returns the number of
 * positional arguments, or -1 on a usage error (message printed). */
int cli_dir_parse_args(int argc, char **argv, const struct cli_dir_option *opts,
    char **pos, int maxpos);

/* Prints v as indented JSON on stdout and releases it. */
void cli_dir_print_json(json_t *v);

/* "unlimited" for 0, else the size with the largest exact unit ("1G",
 * "1536K", "1000"). */
const char *cli_dir_format_size(uint64_t size, char *buf, size_t bufsize);

/* Unix time as "2024-05-01T12:00:00Z". */
const char *cli_dir_format_time(int64_t t, char *buf, size_t bufsize);

#endif
