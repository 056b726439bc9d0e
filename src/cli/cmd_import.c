/*
 * petrel import passwd-file FILE: accounts from a Dovecot passwd-file.
 *
 *   user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra_fields
 *
 * Everything after the password is optional; uid, gid, gecos, home and
 * shell mean nothing here. Of the extra fields (space-separated key=value)
 * the default quota rules are honoured: [userdb_]quota_rule[N]=*:storage=1G,
 * *:bytes=N, *:messages=N. Missing domains are created. Hashes are kept as
 * they are when auth/password can verify them (a bare crypt hash, as a
 * default_pass_scheme=CRYPT setup stores them, gets its scheme prefix);
 * any other line is reported and skipped. Each line is one transaction.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "auth/password.h"
#include "cli/cli.h"
#include "cli/cmd_directory.h"
#include "core/parse.h"
#include "core/xmalloc.h"
#include "directory/directory.h"

#define IMPORT_FIELDS 8         /* user, password, ..., extra fields */

struct import_state {
	struct cli *cli;
	struct directory *dir;
	const char *path;
	unsigned imported, updated, skipped;
	json_t *accounts, *errors, *domains;  /* with --json */
};

static void
import_refuse(struct import_state *st, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
import_refuse(struct import_state *st, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_error("%s:%u: %s; line skipped", st->path, line, msg);
	if (st->errors != NULL)
		json_array_append_new(st->errors, json_pack("{s:I, s:s}", "line",
		    (json_int_t)line, "message", msg));
	st->skipped++;
}

static void
import_warn(struct import_state *st, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
import_warn(struct import_state *st, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_error("%s:%u: warning: %s", st->path, line, msg);
}

/* The stored form of a passwd-file password: "{SCHEME}hash" as is; a bare
 * or {CRYPT} crypt(3) hash gets the scheme its prefix names. */
static char *
import_password(const char *field)
{
	static const struct {
		const char *prefix;
		const char *scheme;
	} crypt_prefixes[] = {
		{ "$6$", "SHA512-CRYPT" },
		{ "$5$", "SHA256-CRYPT" },
		{ "$2y$", "BLF-CRYPT" },
		{ "$2b$", "BLF-CRYPT" },
		{ "$2a$", "BLF-CRYPT" },
		{ "$argon2id$", "ARGON2ID" },
		{ "$argon2i$", "ARGON2I" },
	};
	const char *hash = field;
	size_t i;

	if (strncasecmp(field, "{CRYPT}", 7) == 0)
		hash = field + 7;
	else if (field[0] == '{')
		return xstrdup(field);
	for (i = 0; i < sizeof(crypt_prefixes) / sizeof(crypt_prefixes[0]); i++)
		if (strncmp(hash, crypt_prefixes[i].prefix, strlen(crypt_prefixes[i].prefix)) == 0)
			return xasprintf("{%s}%s", crypt_prefixes[i].scheme, hash);
	return xstrdup(field);
}

/* A Dovecot storage limit: bare numbers are kilobytes. */
static int
import_storage(const char *value, int kilobytes, uint64_t *out)
{
	size_t i;

	for (i = 0; isdigit((unsigned char)value[i]); i++)
		;
	if (i > 0 && value[i] == '\0' && kilobytes) {
		if (parse_size(value, out) < 0 || *out > (uint64_t)INT64_MAX / 1024)
			return -1;
		*out *= 1024;
		return 0;
	}
	return parse_size(value, out) < 0 || *out > INT64_MAX ? -1 : 0;
}

/* Applies one quota rule value ("*:storage=1G"). -1 when malformed. */
static int
import_quota_rule(struct import_state *st, unsigned line, const char *rule,
    struct directory_import *rec)
{
	const char *colon, *limit, *eq, *value;
	long long n;
	size_t keylen;

	if ((colon = strchr(rule, ':')) == NULL)
		return -1;
	/* Rules for one mailbox (Trash:storage=+100M) have no equivalent. */
	if (colon - rule != 1 || rule[0] != '*') {
		import_warn(st, line, "quota rule '%s' ignored: only '*' rules are "
		    "imported", rule);
		return 0;
	}
	limit = colon + 1;
	if (strcasecmp(limit, "ignore") == 0 || strcasecmp(limit, "noenforcing") == 0)
		return 0;
	if ((eq = strchr(limit, '=')) == NULL)
		return -1;
	keylen = (size_t)(eq - limit);
	value = eq + 1;
	if (value[0] == '+' || value[0] == '-' || strchr(value, '%') != NULL) {
		import_warn(st, line, "relative quota rule '%s' ignored", rule);
		return 0;
	}
	if (keylen == 7 && strncasecmp(limit, "storage", 7) == 0) {
		if (import_storage(value, 1, &rec->quota_bytes) < 0)
			return -1;
		rec->has_quota_bytes = 1;
	} else if (keylen == 5 && strncasecmp(limit, "bytes", 5) == 0) {
		if (import_storage(value, 0, &rec->quota_bytes) < 0)
			return -1;
		rec->has_quota_bytes = 1;
	} else if (keylen == 8 && strncasecmp(limit, "messages", 8) == 0) {
		if (parse_int(value, 0, INT64_MAX, &n) < 0)
			return -1;
		rec->quota_messages = (uint64_t)n;
		rec->has_quota_messages = 1;
	} else {
		return -1;
	}
	return 0;
}

/* 1 when key is [userdb_]quota_rule[N]. */
static int
import_is_quota_key(const char *key, size_t len)
{
	size_t i;

	if (len > 7 && strncmp(key, "userdb_", 7) == 0) {
		key += 7;
		len -= 7;
	}
	if (len < 10 || strncmp(key, "quota_rule", 10) != 0)
		return 0;
	for (i = 10; i < len; i++)
		if (!isdigit((unsigned char)key[i]))
			return 0;
	return 1;
}

/* Reads the extra fields into rec. -1 (line refused) on a bad quota rule. */
static int
import_extra_fields(struct import_state *st, unsigned line, char *extra,
    struct directory_import *rec)
{
	char *tok, *save = NULL, *eq;

	for (tok = strtok_r(extra, " \t", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t", &save)) {
		if ((eq = strchr(tok, '=')) == NULL ||
		    !import_is_quota_key(tok, (size_t)(eq - tok)))
			continue;
		if (import_quota_rule(st, line, eq + 1, rec) < 0) {
			import_refuse(st, line, "malformed quota rule '%s'", eq + 1);
			return -1;
		}
	}
	return 0;
}

static void
import_line(struct import_state *st, unsigned line, char *text)
{
	struct directory_import rec;
	char *fields[IMPORT_FIELDS], *p, *address = NULL, *password = NULL;
	const char *error;
	int nfields = 0, domain_created, account_created;

	/* The extra fields may hold ':' (quota rules): split 7 times only. */
	fields[nfields++] = text;
	for (p = text; nfields < IMPORT_FIELDS && (p = strchr(p, ':')) != NULL; ) {
		*p++ = '\0';
		fields[nfields++] = p;
	}
	memset(&rec, 0, sizeof(rec));
	if ((address = directory_normalize_address(fields[0])) == NULL) {
		import_refuse(st, line, "'%.100s' is not an address (user@domain)", fields[0]);
		return;
	}
	rec.address = address;
	if (nfields > 1 && fields[1][0] != '\0') {
		password = import_password(fields[1]);
		if (!password_scheme_supported(password)) {
			if (password[0] == '{' && strchr(password, '}') != NULL)
				import_refuse(st, line, "%s: unsupported password scheme %.*s",
				    address, (int)(strchr(password, '}') - password + 1),
				    password);
			else
				import_refuse(st, line, "%s: the password has no {SCHEME} prefix "
				    "and is no known crypt hash", address);
			goto out;
		}
		rec.password = password;
	}
	if (nfields == IMPORT_FIELDS &&
	    import_extra_fields(st, line, fields[IMPORT_FIELDS - 1], &rec) < 0)
		goto out;

	if (directory_account_import(st->dir, &rec, &domain_created, &account_created,
	    &error) < 0) {
		import_refuse(st, line, "%s: %s", address, error);
		goto out;
	}
	if (domain_created) {
		if (st->domains != NULL)
			json_array_append_new(st->domains,
			    json_string(strchr(address, '@') + 1));
		else
			printf("domain %s created\n", strchr(address, '@') + 1);
	}
	if (account_created)
		st->imported++;
	else
		st->updated++;
	if (st->accounts != NULL)
		json_array_append_new(st->accounts, json_pack("{s:I, s:s, s:s, s:b}",
		    "line", (json_int_t)line, "address", address,
		    "result", account_created ? "imported" : "updated",
		    "password", rec.password != NULL));
	else
		printf("%s %s%s\n", account_created ? "imported" : "updated", address,
		    rec.password == NULL ? " (no password)" : "");
out:
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	free(address);
}

static int
import_passwd_file(struct cli *cli, const char *path)
{
	struct import_state st;
	FILE *fp;
	char *line = NULL, *text;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0;
	int rc;

	/* Opened before cli_open_directory() drops root: the file may be
	 * readable by root only. */
	if (strcmp(path, "-") == 0) {
		fp = stdin;
	} else if ((fp = fopen(path, "r")) == NULL) {
		cli_error("%s: %s", path, strerror(errno));
		return 1;
	}
	memset(&st, 0, sizeof(st));
	st.cli = cli;
	st.path = fp == stdin ? "(stdin)" : path;
	if (cli_open_directory(cli, &st.dir) < 0) {
		if (fp != stdin)
			fclose(fp);
		return 1;
	}
	if (cli->json) {
		st.accounts = json_array();
		st.errors = json_array();
		st.domains = json_array();
	}
	while ((n = getline(&line, &cap, fp)) > 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		for (text = line; *text == ' ' || *text == '\t'; text++)
			;
		if (*text == '\0' || *text == '#')
			continue;
		if (strlen(text) != (size_t)(n - (text - line))) {
			import_refuse(&st, lineno, "NUL byte in line");
			continue;
		}
		import_line(&st, lineno, text);
	}
	if (ferror(fp)) {
		cli_error("%s: read error: %s", st.path, strerror(errno));
		st.skipped++;
	}
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	if (fp != stdin)
		fclose(fp);
	directory_close(&st.dir);

	if (cli->json)
		cli_dir_print_json(json_pack("{s:I, s:I, s:I, s:o, s:o, s:o}",
		    "imported", (json_int_t)st.imported, "updated", (json_int_t)st.updated,
		    "skipped", (json_int_t)st.skipped, "domains_created", st.domains,
		    "accounts", st.accounts, "errors", st.errors));
	else
		printf("%u imported, %u updated, %u skipped\n", st.imported, st.updated,
		    st.skipped);
	rc = st.skipped > 0 ? 1 : 0;
	return rc;
}

int
cmd_import(struct cli *cli, int argc, char **argv)
{
	char *pos[2];

	if (argc >= 2 && (strcmp(argv[1], "maildir") == 0 || strcmp(argv[1], "mbox") == 0))
		return cmd_import_mail(cli, argc, argv);
	if (cli_dir_parse_args(argc - 1, argv + 1, NULL, pos, 2) != 2)
		return 2;
	if (strcmp(pos[0], "passwd-file") != 0) {
		cli_error("unknown import format '%s' (known: passwd-file, maildir, "
		    "mbox)", pos[0]);
		return 2;
	}
	return import_passwd_file(cli, pos[1]);
}
