#include "cli/cli.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/password.h"
#include "core/xmalloc.h"
#include "directory/directory.h"

void
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("petrel: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_load_config(struct cli *cli)
{
	char *path, *error;

	if (cli->loaded)
		return 0;
	if ((path = config_locate(cli->config_arg, &error)) == NULL) {
		cli_error("%s", error);
		free(error);
		return -1;
	}
	if (config_load(path, &cli->cfg, &error) < 0) {
		cli_error("%s", error);
		free(error);
		free(path);
		return -1;
	}
	free(path);
	cli->loaded = 1;
	return 0;
}

int
cli_drop_privileges(const struct config *cfg, char **error_r)
{
	struct passwd *pw;

	if (geteuid() != 0 || cfg->allow_root)
		return 0;
	if ((pw = getpwnam(cfg->user)) == NULL) {
		*error_r = xasprintf("user '%s' (config key `user`) does not exist", cfg->user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = xasprintf("user '%s' is root; set allow_root = yes to run as root",
		    cfg->user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
		*error_r = xasprintf("cannot switch to user '%s': %s", cfg->user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		*error_r = xstrdup("privileges could be regained after switching user");
		return -1;
	}
	return 0;
}

char *
cli_directory_path(const struct config *cfg)
{
	return xasprintf("%s/petrel.db", cfg->data_dir);
}

int
cli_open_directory(struct cli *cli, struct directory **dir_r)
{
	char *path, *error = NULL;

	if (cli_load_config(cli) < 0)
		return -1;
	if (cli_drop_privileges(&cli->cfg, &error) < 0) {
		cli_error("%s", error);
		free(error);
		return -1;
	}
	path = cli_directory_path(&cli->cfg);
	if (directory_open(path, 0, dir_r, &error) < 0) {
		cli_error("%s", error);
		free(error);
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

char *
cli_read_password_stdin(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	n = getline(&line, &cap, stdin);
	if (n <= 0) {
		free(line);
		cli_error("no password on standard input");
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (n == 0 || (size_t)n > PASSWORD_MAX || strlen(line) != (size_t)n) {
		free(line);
		cli_error("the password must be 1 to %d bytes, without NUL", PASSWORD_MAX);
		return NULL;
	}
	return line;
}
