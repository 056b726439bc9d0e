/*
 * petrel export maildir|mbox ADDR DIR [--mailbox NAME]: an account's mail
 * (or one mailbox) into a new or empty directory, as files another server
 * or mail reader takes as they are.
 *
 * maildir: Maildir++ as Dovecot lays it out: INBOX in DIR/cur, other
 * mailboxes in DIR/.Sub.Folder (modified UTF-7; a '.' inside a name is
 * written as the base64 run "&AC4-" so it is not read as a level), flags in
 * the ":2," suffix of file names (P for $Forwarded, a-z from
 * dovecot-keywords, at most 26 keywords a folder), the internal date as the
 * file's mtime, dovecot-uidlist with UIDVALIDITY, UIDNEXT and every UID.
 *
 * mbox: one mboxrd file a mailbox, Thunderbird's layout: DIR/INBOX,
 * DIR/Sub, children of Sub in DIR/Sub.sbd/. Each message gets a From_ line
 * with its internal date (UTC), its lines that start with ">*From " one more
 * '>', Status ("RO" when seen), X-Status and X-Keywords header fields
 * from its flags when it has any (before the empty line that ends its
 * header; none when it has no such line), and an empty line after it.
 * `petrel import mbox` reverses all of that.
 *
 * Files are written as the daemon's user (the directory is made for it);
 * the file system is synced once at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_mail.h"
#include "cli/cmd_directory.h"
#include "cli/mail_lines.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define EXPORT_CHUNK 65536
#define EXPORT_PROGRESS 1000
#define EXPORT_LETTERS 26

struct export {
	struct cli *cli;
	struct cli_mail mail;
	const char *format;
	const char *dir;
	int rootfd;
	char *chunk;
	char *host;             /* for Maildir file names */
	uint64_t messages, bytes;
	unsigned failed;
	json_t *list;           /* with --json */

	/* mbox: the message being written */
	FILE *out;
	int in_header;
	const struct store_message *msg;
	char last_byte;
};

static void
export_warn(struct export *ex, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
export_warn(struct export *ex, const char *fmt, ...)
{
	va_list ap;

	fputs("petrel: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ex->failed++;
}

static void
export_progress(struct export *ex, int last)
{
	if (!last && (ex->messages == 0 || ex->messages % EXPORT_PROGRESS != 0))
		return;
	fprintf(stderr, "petrel: export %s: %" PRIu64 " messages (%.1f MiB)%s\n",
	    ex->format, ex->messages, (double)ex->bytes / (1024.0 * 1024.0),
	    last ? "" : " ...");
}

/* Streams a message's bytes to fn. -1 on a read error (reported). */
static int
export_read(struct export *ex, int64_t mailbox_id, const struct store_message *msg,
    int (*fn)(struct export *, const char *, size_t, void *), void *arg)
{
	struct store_blob *blob;
	const char *error;
	uint64_t off = 0;
	ssize_t r;

	if (store_blob_open(ex->mail.acct, mailbox_id, msg->uid, &blob, &error) < 0) {
		export_warn(ex, "uid %u: %s", msg->uid, error);
		return -1;
	}
	while ((r = store_blob_read(blob, off, ex->chunk, EXPORT_CHUNK)) > 0) {
		if (fn(ex, ex->chunk, (size_t)r, arg) < 0) {
			store_blob_close(&blob);
			return -1;
		}
		off += (uint64_t)r;
	}
	store_blob_close(&blob);
	if (r < 0 || off != msg->size) {
		export_warn(ex, "uid %u: read error", msg->uid);
		return -1;
	}
	return 0;
}

/* Maildir */

static int
write_fd(struct export *ex, const char *p, size_t len, void *arg)
{
	int fd = *(int *)arg;
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			export_warn(ex, "%s: %s", ex->dir, strerror(errno));
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The folder directory of a mailbox: "." for INBOX, ".Sub.Folder". */
static char *
maildir_path(const char *name)
{
	struct buf out = BUF_INIT;
	const char *p = name, *slash;
	char *part;

	if (strcasecmp(name, "INBOX") == 0)
		return xstrdup(".");
	for (;;) {
		slash = strchr(p, STORE_SEPARATOR);
		part = xstrndup(p, slash != NULL ? (size_t)(slash - p) : strlen(p));
		buf_putc(&out, '.');
		cli_mail_utf7_encode(part, ".", &out);
		free(part);
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return buf_steal(&out);
}

static int
mkdir_at(int dirfd, const char *path)
{
	return mkdirat(dirfd, path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int
write_small_file(int dirfd, const char *name, const char *data, size_t len)
{
	char *tmp = xasprintf("%s.tmp", name);
	int fd, rc = -1;

	if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0) {
		if (write(fd, data, len) == (ssize_t)len && close(fd) == 0)
			rc = renameat(dirfd, tmp, dirfd, name);
		else
			close(fd);
	}
	free(tmp);
	return rc;
}

/* Keywords of the folder: letter index by first appearance. */
static size_t
maildir_keywords(struct export *ex, const char *mailbox, const struct store_message *msgs,
    size_t n, char **letters)
{
	size_t i, j, k, nletters = 0;
	int warned = 0;

	for (i = 0; i < n; i++) {
		for (j = 0; msgs[i].keywords != NULL && msgs[i].keywords[j] != NULL; j++) {
			const char *kw = msgs[i].keywords[j];

			if (strcasecmp(kw, CLI_MAIL_FORWARDED) == 0)
				continue;
			for (k = 0; k < nletters; k++)
				if (strcmp(letters[k], kw) == 0)
					break;
			if (k < nletters)
				continue;
			if (nletters == EXPORT_LETTERS) {
				if (!warned)
					fprintf(stderr, "petrel: %s: more than %d keywords; "
					    "the others are left out of the Maildir\n", mailbox,
					    EXPORT_LETTERS);
				warned = 1;
				continue;
			}
			letters[nletters++] = msgs[i].keywords[j];
		}
	}
	return nletters;
}

static void
maildir_message_name(struct export *ex, const struct store_mailbox *mb,
    const struct store_message *msg, char **letters, size_t nletters, struct buf *base,
    struct buf *info)
{
	size_t j, k;
	int forwarded = 0;
	char used[EXPORT_LETTERS] = { 0 };

	buf_reset(base);
	buf_reset(info);
	buf_printf(base, "%" PRId64 ".M%uV%u.%s,S=%" PRIu64, msg->internaldate, msg->uid,
	    mb->uidvalidity, ex->host, msg->size);
	for (j = 0; msg->keywords != NULL && msg->keywords[j] != NULL; j++) {
		if (strcasecmp(msg->keywords[j], CLI_MAIL_FORWARDED) == 0)
			forwarded = 1;
		for (k = 0; k < nletters; k++)
			if (strcmp(letters[k], msg->keywords[j]) == 0)
				used[k] = 1;
	}
	buf_puts(info, ":2,");
	cli_mail_maildir_letters(msg->flags, forwarded, info);
	for (k = 0; k < nletters; k++)
		if (used[k])
			buf_putc(info, (char)('a' + k));
}

static int
export_maildir_mailbox(struct export *ex, const struct store_mailbox *mb,
    const struct store_message *msgs, size_t n, const char *path)
{
	struct buf base = BUF_INIT, info = BUF_INIT, kwfile = BUF_INIT, tmp = BUF_INIT,
	    cur = BUF_INIT;
	struct timespec times[2];
	char *letters[EXPORT_LETTERS];
	size_t nletters, i;
	FILE *uidlist = NULL;
	int dfd, fd, ufd = -1, rc = -1;

	if ((strcmp(path, ".") != 0 && mkdir_at(ex->rootfd, path) < 0) ||
	    (dfd = openat(ex->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		export_warn(ex, "%s/%s: %s", ex->dir, path, strerror(errno));
		return -1;
	}
	if (mkdir_at(dfd, "cur") < 0 || mkdir_at(dfd, "new") < 0 || mkdir_at(dfd, "tmp") < 0 ||
	    (strcmp(path, ".") != 0 && write_small_file(dfd, "maildirfolder", "", 0) < 0)) {
		export_warn(ex, "%s/%s: %s", ex->dir, path, strerror(errno));
		goto out;
	}
	nletters = maildir_keywords(ex, mb->name, msgs, n, letters);
	for (i = 0; i < nletters; i++)
		buf_printf(&kwfile, "%zu %s\n", i, letters[i]);
	if (nletters > 0 && write_small_file(dfd, "dovecot-keywords", kwfile.data,
	    kwfile.len) < 0) {
		export_warn(ex, "%s/%s/dovecot-keywords: %s", ex->dir, path, strerror(errno));
		goto out;
	}
	if ((ufd = openat(dfd, "dovecot-uidlist.tmp", O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC, 0600)) < 0 || (uidlist = fdopen(ufd, "w")) == NULL) {
		export_warn(ex, "%s/%s/dovecot-uidlist: %s", ex->dir, path, strerror(errno));
		if (ufd >= 0)
			close(ufd);
		goto out;
	}
	fprintf(uidlist, "3 V%u N%u\n", mb->uidvalidity, mb->uidnext);
	for (i = 0; i < n; i++) {
		maildir_message_name(ex, mb, &msgs[i], letters, nletters, &base, &info);
		buf_reset(&tmp);
		buf_printf(&tmp, "tmp/%s", base.data);
		if ((fd = openat(dfd, tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0600)) < 0) {
			export_warn(ex, "%s/%s/%s: %s", ex->dir, path, tmp.data,
			    strerror(errno));
			goto out;
		}
		if (export_read(ex, mb->id, &msgs[i], write_fd, &fd) < 0) {
			close(fd);
			unlinkat(dfd, tmp.data, 0);
			continue;       /* reported; the others may be fine */
		}
		times[0].tv_sec = times[1].tv_sec = (time_t)msgs[i].internaldate;
		times[0].tv_nsec = times[1].tv_nsec = 0;
		buf_reset(&cur);
		buf_printf(&cur, "cur/%s%s", base.data, info.data);
		if (futimens(fd, times) < 0 || close(fd) < 0 ||
		    renameat(dfd, tmp.data, dfd, cur.data) < 0) {
			export_warn(ex, "%s/%s/%s: %s", ex->dir, path, cur.data,
			    strerror(errno));
			goto out;
		}
		fprintf(uidlist, "%u :%s\n", msgs[i].uid, base.data);
		ex->messages++;
		ex->bytes += msgs[i].size;
		export_progress(ex, 0);
	}
	if (fflush(uidlist) != 0 || ferror(uidlist) ||
	    renameat(dfd, "dovecot-uidlist.tmp", dfd, "dovecot-uidlist") < 0) {
		export_warn(ex, "%s/%s/dovecot-uidlist: %s", ex->dir, path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (uidlist != NULL)
		fclose(uidlist);
	close(dfd);
	buf_free(&base);
	buf_free(&info);
	buf_free(&kwfile);
	buf_free(&tmp);
	buf_free(&cur);
	return rc;
}

/* mbox */

/* DIR-relative file of a mailbox: "Sub.sbd/Folder"; parents are made. */
static char *
mbox_path(struct export *ex, const char *name)
{
	struct buf out = BUF_INIT;
	const char *p = name, *slash;

	for (;;) {
		slash = strchr(p, STORE_SEPARATOR);
		if (slash == NULL) {
			buf_puts(&out, p);
			break;
		}
		buf_append(&out, p, (size_t)(slash - p));
		buf_puts(&out, ".sbd");
		if (mkdir_at(ex->rootfd, out.data) < 0) {
			export_warn(ex, "%s/%s: %s", ex->dir, out.data, strerror(errno));
			buf_free(&out);
			return NULL;
		}
		buf_putc(&out, '/');
		p = slash + 1;
	}
	return buf_steal(&out);
}

static void
mbox_status(struct export *ex, const char *eol)
{
	const struct store_message *msg = ex->msg;
	size_t i;

	/* "O" (old, not \Recent) alone says nothing worth a header field: an
	 * unseen message gets none, as it came from most mbox files. */
	if (msg->flags & STORE_FLAG_SEEN)
		fprintf(ex->out, "Status: RO%s", eol);
	if (msg->flags & (STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT |
	    STORE_FLAG_DELETED))
		fprintf(ex->out, "X-Status: %s%s%s%s%s",
		    msg->flags & STORE_FLAG_ANSWERED ? "A" : "",
		    msg->flags & STORE_FLAG_FLAGGED ? "F" : "",
		    msg->flags & STORE_FLAG_DRAFT ? "T" : "",
		    msg->flags & STORE_FLAG_DELETED ? "D" : "", eol);
	if (msg->keywords != NULL && msg->keywords[0] != NULL) {
		fputs("X-Keywords:", ex->out);
		for (i = 0; msg->keywords[i] != NULL; i++)
			fprintf(ex->out, " %s", msg->keywords[i]);
		fputs(eol, ex->out);
	}
}

static int
mbox_line(void *ctx, const char *data, size_t len, int first, int last)
{
	struct export *ex = ctx;
	size_t quotes;

	if (ex->in_header && mail_lines_is_blank(data, len, first, last)) {
		mbox_status(ex, len == 2 ? "\r\n" : "\n");
		ex->in_header = 0;
	}
	if (first && mail_lines_is_from(data, len, &quotes))
		fputc('>', ex->out);
	fwrite(data, 1, len, ex->out);
	ex->last_byte = data[len - 1];
	return 0;
}

static int
mbox_feed(struct export *ex, const char *p, size_t len, void *arg)
{
	return mail_lines_feed(arg, p, len);
}

static int
export_mbox_mailbox(struct export *ex, const struct store_mailbox *mb,
    const struct store_message *msgs, size_t n, const char *path)
{
	struct mail_lines ml;
	char date[64];
	size_t i;
	int fd, rc = 0;

	if ((fd = openat(ex->rootfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) < 0 || (ex->out = fdopen(fd, "w")) == NULL) {
		export_warn(ex, "%s/%s: %s", ex->dir, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	mail_lines_init(&ml, mbox_line, ex);
	for (i = 0; i < n; i++) {
		cli_mail_from_date(msgs[i].internaldate, date, sizeof(date));
		fprintf(ex->out, "From MAILER-DAEMON %s\n", date);
		ex->msg = &msgs[i];
		ex->in_header = 1;
		ex->last_byte = '\n';
		if (export_read(ex, mb->id, &msgs[i], mbox_feed, &ml) < 0 ||
		    mail_lines_finish(&ml) < 0) {
			rc = -1;
			break;
		}
		/* A message that does not end its last line gets one: the empty
		 * line after it must stand alone. */
		if (ex->last_byte != '\n')
			fputc('\n', ex->out);
		fputc('\n', ex->out);
		ex->messages++;
		ex->bytes += msgs[i].size;
		export_progress(ex, 0);
	}
	mail_lines_free(&ml);
	if ((ferror(ex->out) | fclose(ex->out)) != 0 && rc == 0) {
		export_warn(ex, "%s/%s: %s", ex->dir, path, strerror(errno));
		rc = -1;
	}
	ex->out = NULL;
	return rc;
}

/* Setting up */

/* Makes DIR (new or empty) and opens it, before the switch to the daemon's
 * user, for whom it is made. */
static int
export_open_dir(struct export *ex)
{
	struct passwd *pw;
	struct dirent *de;
	DIR *d;
	int fd, created = 0;

	if (mkdir(ex->dir, 0700) == 0)
		created = 1;
	else if (errno != EEXIST)
		goto fail;
	if ((ex->rootfd = open(ex->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	if ((fd = dup(ex->rootfd)) < 0 || (d = fdopendir(fd)) == NULL)
		goto fail;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			closedir(d);
			cli_error("%s: not empty (export into a new or empty directory)",
			    ex->dir);
			return -1;
		}
	}
	closedir(d);
	if (created && geteuid() == 0 && !ex->cli->cfg.allow_root &&
	    (pw = getpwnam(ex->cli->cfg.user)) != NULL &&
	    fchown(ex->rootfd, pw->pw_uid, pw->pw_gid) < 0)
		goto fail;
	return 0;
fail:
	cli_error("%s: %s", ex->dir, strerror(errno));
	return -1;
}

static int
export_mailbox(struct export *ex, const struct store_mailbox *mb, int maildir)
{
	struct store_message *msgs = NULL;
	const char *error;
	char *path;
	size_t n = 0;
	int rc;

	if (store_message_list(ex->mail.acct, mb->id, 0, UINT32_MAX, &msgs, &n, &error) < 0) {
		export_warn(ex, "%s: %s", mb->name, error);
		return -1;
	}
	path = maildir ? maildir_path(mb->name) : mbox_path(ex, mb->name);
	if (path == NULL)
		rc = -1;
	else if (maildir)
		rc = export_maildir_mailbox(ex, mb, msgs, n, path);
	else
		rc = export_mbox_mailbox(ex, mb, msgs, n, path);
	if (rc == 0 && ex->list != NULL)
		json_array_append_new(ex->list, json_pack("{s:o, s:s, s:I}", "name",
		    cli_mail_json_text(mb->name), "path", path, "messages", (json_int_t)n));
	else if (rc == 0)
		printf("%s: %zu messages -> %s/%s\n", mb->name, n, ex->dir, path);
	free(path);
	if (msgs != NULL)
		store_messages_free(&msgs, n);
	return rc;
}

int
cmd_export(struct cli *cli, int argc, char **argv)
{
	struct store_mailbox *list = NULL;
	struct export ex;
	const char *error, *only = NULL;
	char *pos[3], *p;
	size_t n = 0, i, done = 0;
	int maildir, rc = 1;
	const struct cli_dir_option opts[] = {
		{ "--mailbox", NULL, &only },
		{ NULL, NULL, NULL },
	};

	if (cli_dir_parse_args(argc - 1, argv + 1, opts, pos, 3) != 3)
		return 2;
	if (strcmp(pos[0], "maildir") != 0 && strcmp(pos[0], "mbox") != 0) {
		cli_error("unknown export format '%s' (known: maildir, mbox)", pos[0]);
		return 2;
	}
	maildir = pos[0][1] == 'a';
	memset(&ex, 0, sizeof(ex));
	ex.cli = cli;
	ex.format = pos[0];
	ex.dir = pos[2];
	ex.rootfd = -1;
	if (cli_load_config(cli) < 0 || export_open_dir(&ex) < 0)
		goto out;
	if (cli_mail_open(cli, pos[1], &ex.mail) < 0)
		goto out;
	/* A host name with no '/' or ':' for Maildir file names. */
	ex.host = xstrdup(cli->cfg.hostname != NULL ? cli->cfg.hostname : "petrel");
	for (p = ex.host; *p != '\0'; p++)
		if (*p == '/' || *p == ':' || *p == ',')
			*p = '_';
	ex.chunk = xmalloc(EXPORT_CHUNK);
	if (cli->json)
		ex.list = json_array();
	if (store_mailbox_list(ex.mail.acct, &list, &n, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (only != NULL && strcmp(list[i].name, only) != 0 &&
		    !(strcasecmp(only, "INBOX") == 0 && strcmp(list[i].name, "INBOX") == 0))
			continue;
		done++;
		export_mailbox(&ex, &list[i], maildir);
	}
	if (only != NULL && done == 0) {
		cli_error("%s: no mailbox '%s'", ex.mail.account.address, only);
		goto out;
	}
	if (syncfs(ex.rootfd) < 0)
		export_warn(&ex, "%s: sync: %s", ex.dir, strerror(errno));
	export_progress(&ex, 1);
	if (ex.list != NULL) {
		cli_dir_print_json(json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:I}", "account",
		    ex.mail.account.address, "format", ex.format, "directory", ex.dir,
		    "mailboxes", ex.list, "messages", (json_int_t)ex.messages,
		    "bytes", (json_int_t)ex.bytes, "failed", (json_int_t)ex.failed));
		ex.list = NULL;
	} else {
		printf("%" PRIu64 " messages exported (%" PRIu64 " bytes), %u failures\n",
		    ex.messages, ex.bytes, ex.failed);
	}
	rc = ex.failed > 0 ? 1 : 0;
out:
	if (list != NULL)
		store_mailboxes_free(&list, n);
	if (ex.list != NULL)
		json_decref(ex.list);
	if (ex.rootfd >= 0)
		close(ex.rootfd);
	free(ex.chunk);
	free(ex.host);
	if (ex.mail.acct != NULL || ex.mail.store != NULL)
		cli_mail_close(&ex.mail);
	return rc;
}
