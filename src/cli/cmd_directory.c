/*
 * petrel domain | account | alias | catchall: administration of the
 * directory (domains, accounts, aliases, catch-alls).
 *
 * Every subcommand checks its arguments before touching the configuration
 * (a usage error returns 2 with nothing opened), then opens the directory
 * through cli_open_directory(). Output is one line per item, or JSON with
 * --json; errors go to stderr with exit status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "auth/password.h"
#include "cli/cli.h"
#include "cli/cmd_directory.h"
#include "core/parse.h"
#include "core/xmalloc.h"
#include "directory/directory.h"
#include "store/store.h"

#define MAX_POSITIONAL 64

struct subcommand {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
};

/* Shared helpers */

int
cli_dir_parse_args(int argc, char **argv, const struct cli_dir_option *opts,
    char **pos, int maxpos)
{
	const struct cli_dir_option *o;
	const char *arg, *eq;
	size_t namelen;
	int i, npos = 0, options_done = 0;

	for (i = 0; i < argc; i++) {
		arg = argv[i];
		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (npos == maxpos) {
				cli_error("too many arguments");
				return -1;
			}
			pos[npos++] = argv[i];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = 1;
			continue;
		}
		eq = strchr(arg, '=');
		namelen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		for (o = opts; o != NULL && o->name != NULL; o++)
			if (strlen(o->name) == namelen && strncmp(o->name, arg, namelen) == 0)
				break;
		if (o == NULL || o->name == NULL) {
			cli_error("unknown option '%s'", arg);
			return -1;
		}
		if (o->value == NULL) {
			if (eq != NULL) {
				cli_error("option %s takes no value", o->name);
				return -1;
			}
			*o->flag = 1;
		} else if (eq != NULL) {
			*o->value = eq + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			cli_error("option %s needs a value", o->name);
			return -1;
		}
	}
	return npos;
}

void
cli_dir_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(v);
}

const char *
cli_dir_format_size(uint64_t size, char *buf, size_t bufsize)
{
	static const char units[] = "KMGT";
	int i;

	if (size == 0) {
		snprintf(buf, bufsize, "unlimited");
		return buf;
	}
	for (i = 3; i >= 0; i--) {
		uint64_t unit = (uint64_t)1 << (10 * (i + 1));

		if (size % unit == 0) {
			snprintf(buf, bufsize, "%llu%c", (unsigned long long)(size / unit),
			    units[i]);
			return buf;
		}
	}
	snprintf(buf, bufsize, "%llu", (unsigned long long)size);
	return buf;
}

const char *
cli_dir_format_time(int64_t t, char *buf, size_t bufsize)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, bufsize, "%Y-%m-%dT%H:%M:%SZ",
	    &tm) == 0)
		snprintf(buf, bufsize, "%lld", (long long)t);
	return buf;
}

static int
run_subcommand(const struct subcommand *table, struct cli *cli, int argc, char **argv)
{
	const struct subcommand *s;

	if (argc < 2)
		return 2;
	for (s = table; s->name != NULL; s++)
		if (strcmp(s->name, argv[1]) == 0)
			return s->run(cli, argc - 2, argv + 2);
	cli_error("unknown subcommand '%s %s'", argv[0], argv[1]);
	return 2;
}

/* Width of the widest string, for aligned columns. */
static int
column_width(size_t count, const char *(*get)(const void *items, size_t i),
    const void *items)
{
	size_t i, w = 0, len;

	for (i = 0; i < count; i++)
		if ((len = strlen(get(items, i))) > w)
			w = len;
	return (int)w;
}

static int
parse_quota_messages(const char *s, uint64_t *out)
{
	long long n;

	if (parse_int(s, 0, INT64_MAX, &n) < 0) {
		cli_error("invalid message count '%s' (a number, 0 for unlimited)", s);
		return -1;
	}
	*out = (uint64_t)n;
	return 0;
}

static int
parse_quota_bytes(const char *s, uint64_t *out)
{
	if (parse_size(s, out) < 0 || *out > INT64_MAX) {
		cli_error("invalid size '%s' (like 500M, 1G; 0 for unlimited)", s);
		return -1;
	}
	return 0;
}

/* Domains */

static int
domain_add(struct cli *cli, int argc, char **argv)
{
	struct directory *dir;
	const char *error;
	char *pos[1], *name;
	int rc = 1;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 1) != 1)
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	if (directory_domain_add(dir, pos[0], &error) < 0) {
		cli_error("%s", error);
	} else {
		name = directory_normalize_domain(pos[0]);
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:s}", "domain", name,
			    "result", "added"));
		else
			printf("domain %s added\n", name);
		free(name);
		rc = 0;
	}
	directory_close(&dir);
	return rc;
}

static int
domain_remove(struct cli *cli, int argc, char **argv)
{
	struct directory *dir;
	const char *error;
	char *pos[1], *name;
	int force = 0, rc = 1;
	const struct cli_dir_option opts[] = {
		{ "--force", &force, NULL },
		{ NULL, NULL, NULL },
	};

	if (cli_dir_parse_args(argc, argv, opts, pos, 1) != 1)
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	if (directory_domain_remove(dir, pos[0], force, &error) < 0) {
		cli_error("%s", error);
	} else {
		name = directory_normalize_domain(pos[0]);
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:s}", "domain", name,
			    "result", "removed"));
		else
			printf("domain %s removed\n", name);
		free(name);
		rc = 0;
	}
	directory_close(&dir);
	return rc;
}

static const char *
domain_name_at(const void *items, size_t i)
{
	return ((const struct directory_domain *)items)[i].name;
}

static int
domain_list(struct cli *cli, int argc, char **argv)
{
	struct directory_domain *domains = NULL, *d;
	struct directory *dir;
	const char *error;
	char *pos[1], created[32];
	json_t *arr;
	size_t n, i;
	int w;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 0) != 0)
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	if (directory_domain_list(dir, &domains, &n, &error) < 0) {
		cli_error("%s", error);
		directory_close(&dir);
		return 1;
	}
	if (cli->json) {
		arr = json_array();
		for (i = 0; i < n; i++) {
			d = &domains[i];
			json_array_append_new(arr, json_pack("{s:s, s:o, s:I, s:I, s:s}",
			    "name", d->name,
			    "catchall", d->catchall != NULL ? json_string(d->catchall) :
			    json_null(),
			    "accounts", (json_int_t)d->naccounts,
			    "aliases", (json_int_t)d->naliases,
			    "created", cli_dir_format_time(d->created, created,
			    sizeof(created))));
		}
		cli_dir_print_json(arr);
	} else {
		w = column_width(n, domain_name_at, domains);
		for (i = 0; i < n; i++) {
			d = &domains[i];
			printf("%-*s  accounts=%zu  aliases=%zu", w, d->name, d->naccounts,
			    d->naliases);
			if (d->catchall != NULL)
				printf("  catchall=%s", d->catchall);
			putchar('\n');
		}
	}
	directory_domains_free(&domains, n);
	directory_close(&dir);
	return 0;
}

int
cmd_domain(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand table[] = {
		{ "add", domain_add },
		{ "list", domain_list },
		{ "remove", domain_remove },
		{ NULL, NULL },
	};

	return run_subcommand(table, cli, argc, argv);
}

/* Passwords */

/* Reads a line from the terminal on stdin with echo off. */
static char *
read_tty_line(const char *prompt)
{
	struct termios old, noecho;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return NULL;
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ECHONL;
	fputs(prompt, stderr);
	fflush(stderr);
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) < 0)
		return NULL;
	n = getline(&line, &cap, stdin);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	if (n <= 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static void
wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* The new password: from stdin when asked or when stdin is no terminal,
 * else typed twice on the terminal. NULL when none (message printed). */
static char *
read_new_password(const char *address, int from_stdin)
{
	char *prompt, *first, *second;
	size_t len;

	if (from_stdin || !isatty(STDIN_FILENO))
		return cli_read_password_stdin();
	prompt = xasprintf("New password for %s: ", address);
	first = read_tty_line(prompt);
	free(prompt);
	if (first == NULL) {
		cli_error("no password entered");
		return NULL;
	}
	len = strlen(first);
	if (len == 0 || len > PASSWORD_MAX) {
		cli_error("the password must be 1 to %d bytes", PASSWORD_MAX);
		wipe_free(first);
		return NULL;
	}
	second = read_tty_line("Retype the password: ");
	if (second == NULL || strcmp(first, second) != 0) {
		cli_error("the passwords do not match");
		wipe_free(first);
		wipe_free(second);
		return NULL;
	}
	wipe_free(second);
	return first;
}

/* Hashes plain into cred and wipes plain. */
static int
make_credentials(char *plain, struct directory_credentials *cred)
{
	const char *error;
	int ret;

	ret = password_make_credentials(plain, cred, &error);
	wipe_free(plain);
	if (ret < 0)
		cli_error("%s", error);
	return ret;
}

/* Accounts */

static int
account_add(struct cli *cli, int argc, char **argv)
{
	struct directory_credentials cred;
	struct directory *dir;
	const char *quota = NULL, *messages = NULL, *messages2 = NULL, *error;
	char *pos[1], *plain, *address;
	uint64_t quota_bytes = 0, quota_messages = 0;
	int from_stdin = 0, rc = 1;
	int64_t id;
	const struct cli_dir_option opts[] = {
		{ "--password-stdin", &from_stdin, NULL },
		{ "--quota", NULL, &quota },
		{ "--quota-messages", NULL, &messages },
		{ "--messages", NULL, &messages2 },
		{ NULL, NULL, NULL },
	};

	if (cli_dir_parse_args(argc, argv, opts, pos, 1) != 1)
		return 2;
	if (messages == NULL)
		messages = messages2;
	if ((quota != NULL && parse_quota_bytes(quota, &quota_bytes) < 0) ||
	    (messages != NULL && parse_quota_messages(messages, &quota_messages) < 0))
		return 2;
	if ((address = directory_normalize_address(pos[0])) == NULL) {
		cli_error("invalid address '%s'", pos[0]);
		return 1;
	}
	memset(&cred, 0, sizeof(cred));
	if (from_stdin) {
		if ((plain = cli_read_password_stdin()) == NULL ||
		    make_credentials(plain, &cred) < 0) {
			free(address);
			return 1;
		}
	}
	if (cli_open_directory(cli, &dir) < 0) {
		directory_credentials_clear(&cred);
		free(address);
		return 1;
	}
	if (directory_account_add(dir, address, from_stdin ? &cred : NULL, quota_bytes,
	    quota_messages, &id, &error) < 0) {
		cli_error("%s", error);
	} else if (cli->json) {
		cli_dir_print_json(json_pack("{s:s, s:I, s:b, s:I, s:I, s:s}",
		    "account", address, "id", (json_int_t)id, "password", from_stdin,
		    "quota_bytes", (json_int_t)quota_bytes,
		    "quota_messages", (json_int_t)quota_messages, "result", "added"));
		rc = 0;
	} else {
		if (from_stdin)
			printf("account %s added\n", address);
		else
			printf("account %s added without a password: it cannot log in until "
			    "one is set with `petrel account passwd %s`\n", address, address);
		rc = 0;
	}
	directory_credentials_clear(&cred);
	directory_close(&dir);
	free(address);
	return rc;
}

static const char *
account_address_at(const void *items, size_t i)
{
	return ((const struct directory_account *)items)[i].address;
}

/* "ARGON2ID" out of "{ARGON2ID}...", into buf. */
static const char *
password_scheme_name(const char *password, char *buf, size_t bufsize)
{
	const char *end;

	if (password == NULL)
		return NULL;
	if (password[0] != '{' || (end = strchr(password, '}')) == NULL)
		return "unknown";
	snprintf(buf, bufsize, "%.*s", (int)(end - password - 1), password + 1);
	return buf;
}

static int
account_list(struct cli *cli, int argc, char **argv)
{
	struct directory_account *accounts = NULL, *a;
	struct directory *dir;
	const char *error, *scheme;
	char *pos[1], created[32], size[32], msgs[32], sbuf[32];
	json_t *arr;
	size_t n, i;
	int npos, w;

	if ((npos = cli_dir_parse_args(argc, argv, NULL, pos, 1)) < 0)
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	if (directory_account_list(dir, npos == 1 ? pos[0] : NULL, &accounts, &n,
	    &error) < 0) {
		cli_error("%s", error);
		directory_close(&dir);
		return 1;
	}
	if (cli->json) {
		arr = json_array();
		for (i = 0; i < n; i++) {
			a = &accounts[i];
			scheme = password_scheme_name(a->cred.password, sbuf, sizeof(sbuf));
			json_array_append_new(arr, json_pack(
			    "{s:I, s:s, s:s, s:o, s:b, s:I, s:I, s:s}",
			    "id", (json_int_t)a->id, "address", a->address,
			    "domain", a->domain,
			    "password_scheme", scheme != NULL ? json_string(scheme) : json_null(),
			    "scram", a->cred.has_scram,
			    "quota_bytes", (json_int_t)a->quota_bytes,
			    "quota_messages", (json_int_t)a->quota_messages,
			    "created", cli_dir_format_time(a->created, created,
			    sizeof(created))));
		}
		cli_dir_print_json(arr);
	} else {
		w = column_width(n, account_address_at, accounts);
		for (i = 0; i < n; i++) {
			a = &accounts[i];
			scheme = password_scheme_name(a->cred.password, sbuf, sizeof(sbuf));
			if (a->quota_messages == 0)
				snprintf(msgs, sizeof(msgs), "unlimited");
			else
				snprintf(msgs, sizeof(msgs), "%llu",
				    (unsigned long long)a->quota_messages);
			printf("%-*s  quota=%s  messages=%s  password=%s\n", w, a->address,
			    cli_dir_format_size(a->quota_bytes, size, sizeof(size)), msgs,
			    scheme != NULL ? scheme : "none");
		}
	}
	directory_accounts_free(&accounts, n);
	directory_close(&dir);
	return 0;
}

static int
account_remove(struct cli *cli, int argc, char **argv)
{
	struct directory_account a;
	struct directory *dir;
	struct store *store = NULL;
	const char *error;
	char *pos[1];
	int ret, rc = 1;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 1) != 1)
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	memset(&a, 0, sizeof(a));
	if ((ret = directory_account_get(dir, pos[0], &a, &error)) <= 0) {
		if (ret < 0)
			cli_error("%s", error);
		else
			cli_error("no account %s", pos[0]);
	} else if (directory_account_remove(dir, a.address, &error) < 0) {
		cli_error("%s", error);
	} else if (store_open(cli->cfg.data_dir, &store, &error) < 0 ||
	    store_account_delete(store, a.id, &error) < 0) {
		/* Gone from the directory: nothing delivers to it any more. */
		cli_error("account %s removed, but not its mail: %s", a.address, error);
	} else {
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:I, s:s}", "account", a.address,
			    "id", (json_int_t)a.id, "result", "removed"));
		else
			printf("account %s removed with its mail\n", a.address);
		rc = 0;
	}
	if (store != NULL)
		store_close(&store);
	directory_account_clear(&a);
	directory_close(&dir);
	return rc;
}

static int
account_passwd(struct cli *cli, int argc, char **argv)
{
	struct directory_credentials cred;
	struct directory_account a;
	struct directory *dir;
	const char *error;
	char *pos[1], *plain, *address;
	int from_stdin = 0, ret, rc = 1;
	const struct cli_dir_option opts[] = {
		{ "--password-stdin", &from_stdin, NULL },
		{ NULL, NULL, NULL },
	};

	if (cli_dir_parse_args(argc, argv, opts, pos, 1) != 1)
		return 2;
	if ((address = directory_normalize_address(pos[0])) == NULL) {
		cli_error("invalid address '%s'", pos[0]);
		return 1;
	}
	if (cli_open_directory(cli, &dir) < 0) {
		free(address);
		return 1;
	}
	/* Check the account first: no point typing a password for nobody. */
	if ((ret = directory_account_get(dir, address, &a, &error)) <= 0) {
		if (ret < 0)
			cli_error("%s", error);
		else
			cli_error("no account %s", address);
		goto out;
	}
	directory_account_clear(&a);
	memset(&cred, 0, sizeof(cred));
	if ((plain = read_new_password(address, from_stdin)) == NULL ||
	    make_credentials(plain, &cred) < 0)
		goto out;
	if (directory_account_set_credentials(dir, address, &cred, &error) < 0) {
		cli_error("%s", error);
	} else {
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:s}", "account", address,
			    "result", "password set"));
		else
			printf("password of %s set\n", address);
		rc = 0;
	}
	directory_credentials_clear(&cred);
out:
	directory_close(&dir);
	free(address);
	return rc;
}

static int
account_quota(struct cli *cli, int argc, char **argv)
{
	struct directory_account a;
	struct directory *dir;
	const char *messages = NULL, *messages2 = NULL, *error;
	char *pos[2], size[32];
	uint64_t quota_bytes, quota_messages = 0;
	int ret, rc = 1;
	const struct cli_dir_option opts[] = {
		{ "--messages", NULL, &messages },
		{ "--quota-messages", NULL, &messages2 },
		{ NULL, NULL, NULL },
	};

	if (cli_dir_parse_args(argc, argv, opts, pos, 2) != 2)
		return 2;
	if (messages == NULL)
		messages = messages2;
	if (parse_quota_bytes(pos[1], &quota_bytes) < 0 ||
	    (messages != NULL && parse_quota_messages(messages, &quota_messages) < 0))
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	memset(&a, 0, sizeof(a));
	if ((ret = directory_account_get(dir, pos[0], &a, &error)) <= 0) {
		if (ret < 0)
			cli_error("%s", error);
		else
			cli_error("no account %s", pos[0]);
		goto out;
	}
	/* Without --messages the message limit stays what it was. */
	if (messages == NULL)
		quota_messages = a.quota_messages;
	if (directory_account_set_quota(dir, a.address, quota_bytes, quota_messages,
	    &error) < 0) {
		cli_error("%s", error);
	} else if (cli->json) {
		cli_dir_print_json(json_pack("{s:s, s:I, s:I, s:s}", "account", a.address,
		    "quota_bytes", (json_int_t)quota_bytes,
		    "quota_messages", (json_int_t)quota_messages, "result", "quota set"));
		rc = 0;
	} else {
		printf("quota of %s: %s", a.address,
		    cli_dir_format_size(quota_bytes, size, sizeof(size)));
		if (quota_messages == 0)
			printf(", unlimited messages\n");
		else
			printf(", %llu messages\n", (unsigned long long)quota_messages);
		rc = 0;
	}
out:
	directory_account_clear(&a);
	directory_close(&dir);
	return rc;
}

int
cmd_account(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand table[] = {
		{ "add", account_add },
		{ "list", account_list },
		{ "remove", account_remove },
		{ "passwd", account_passwd },
		{ "quota", account_quota },
		{ NULL, NULL },
	};

	return run_subcommand(table, cli, argc, argv);
}

/* Aliases */

static int
alias_add(struct cli *cli, int argc, char **argv)
{
	struct directory *dir;
	const char *error;
	char *pos[MAX_POSITIONAL], *address, *target;
	json_t *added = NULL;
	int npos, i, failed = 0;

	if ((npos = cli_dir_parse_args(argc, argv, NULL, pos, MAX_POSITIONAL)) < 2)
		return 2;
	if ((address = directory_normalize_address(pos[0])) == NULL) {
		cli_error("invalid address '%s'", pos[0]);
		return 1;
	}
	if (cli_open_directory(cli, &dir) < 0) {
		free(address);
		return 1;
	}
	if (cli->json)
		added = json_array();
	for (i = 1; i < npos; i++) {
		if (directory_alias_add(dir, address, pos[i], &error) < 0) {
			cli_error("%s", error);
			failed = 1;
			continue;
		}
		target = directory_normalize_address(pos[i]);
		if (added != NULL)
			json_array_append_new(added, json_string(target));
		else
			printf("alias %s -> %s added\n", address, target);
		free(target);
	}
	if (added != NULL)
		cli_dir_print_json(json_pack("{s:s, s:o}", "alias", address, "added", added));
	directory_close(&dir);
	free(address);
	return failed;
}

static const char *
alias_address_at(const void *items, size_t i)
{
	return ((const struct directory_alias *)items)[i].address;
}

static int
alias_list(struct cli *cli, int argc, char **argv)
{
	struct directory_alias *aliases = NULL;
	struct directory *dir;
	const char *error;
	char *pos[1];
	json_t *arr;
	size_t n, i;
	int npos, w;

	if ((npos = cli_dir_parse_args(argc, argv, NULL, pos, 1)) < 0)
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	if (directory_alias_list(dir, npos == 1 ? pos[0] : NULL, &aliases, &n, &error) < 0) {
		cli_error("%s", error);
		directory_close(&dir);
		return 1;
	}
	if (cli->json) {
		arr = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s}",
			    "address", aliases[i].address, "target", aliases[i].target));
		cli_dir_print_json(arr);
	} else {
		w = column_width(n, alias_address_at, aliases);
		for (i = 0; i < n; i++)
			printf("%-*s  %s\n", w, aliases[i].address, aliases[i].target);
	}
	directory_aliases_free(&aliases, n);
	directory_close(&dir);
	return 0;
}

static int
alias_remove(struct cli *cli, int argc, char **argv)
{
	struct directory *dir;
	const char *error;
	char *pos[2], *address, *target = NULL;
	int npos, rc = 1;

	if ((npos = cli_dir_parse_args(argc, argv, NULL, pos, 2)) < 1)
		return 2;
	if ((address = directory_normalize_address(pos[0])) == NULL) {
		cli_error("invalid address '%s'", pos[0]);
		return 1;
	}
	if (npos == 2 && (target = directory_normalize_address(pos[1])) == NULL) {
		cli_error("invalid address '%s'", pos[1]);
		free(address);
		return 1;
	}
	if (cli_open_directory(cli, &dir) < 0) {
		free(address);
		free(target);
		return 1;
	}
	if (directory_alias_remove(dir, address, target, &error) < 0) {
		cli_error("%s", error);
	} else {
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:o, s:s}", "alias", address,
			    "target", target != NULL ? json_string(target) : json_null(),
			    "result", "removed"));
		else if (target != NULL)
			printf("alias %s -> %s removed\n", address, target);
		else
			printf("alias %s removed\n", address);
		rc = 0;
	}
	directory_close(&dir);
	free(address);
	free(target);
	return rc;
}

int
cmd_alias(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand table[] = {
		{ "add", alias_add },
		{ "list", alias_list },
		{ "remove", alias_remove },
		{ NULL, NULL },
	};

	return run_subcommand(table, cli, argc, argv);
}

/* Catch-alls */

static int
catchall_set(struct cli *cli, int argc, char **argv)
{
	struct directory *dir;
	const char *error;
	char *pos[2], *domain, *target;
	int rc = 1;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 2) != 2)
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	if (directory_catchall_set(dir, pos[0], pos[1], &error) < 0) {
		cli_error("%s", error);
	} else {
		domain = directory_normalize_domain(pos[0]);
		target = directory_normalize_address(pos[1]);
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:s, s:s}", "domain", domain,
			    "catchall", target, "result", "set"));
		else
			printf("catch-all of %s: %s\n", domain, target);
		free(domain);
		free(target);
		rc = 0;
	}
	directory_close(&dir);
	return rc;
}

static int
catchall_clear(struct cli *cli, int argc, char **argv)
{
	struct directory *dir;
	const char *error;
	char *pos[1], *domain;
	int rc = 1;

	if (cli_dir_parse_args(argc, argv, NULL, pos, 1) != 1)
		return 2;
	if (cli_open_directory(cli, &dir) < 0)
		return 1;
	if (directory_catchall_clear(dir, pos[0], &error) < 0) {
		cli_error("%s", error);
	} else {
		domain = directory_normalize_domain(pos[0]);
		if (cli->json)
			cli_dir_print_json(json_pack("{s:s, s:n, s:s}", "domain", domain,
			    "catchall", "result", "cleared"));
		else
			printf("catch-all of %s cleared\n", domain);
		free(domain);
		rc = 0;
	}
	directory_close(&dir);
	return rc;
}

int
cmd_catchall(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand table[] = {
		{ "set", catchall_set },
		{ "clear", catchall_clear },
		{ NULL, NULL },
	};

	return run_subcommand(table, cli, argc, argv);
}
