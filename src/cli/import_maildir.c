/*
 * petrel import maildir ADDR DIR: a Maildir++ tree as Dovecot writes it.
 *
 *   DIR/{cur,new}/            INBOX
 *   DIR/.Sub.Folder/{cur,new} "Sub/Folder" ('.' between levels, each level
 *                             in modified UTF-7)
 *   FOLDER/dovecot-uidlist   UIDVALIDITY, UIDNEXT and the UID of each file
 *   FOLDER/dovecot-keywords  "N keyword" lines: the letter 'a'+N
 *
 * A file's name carries its flags after ":2,": D draft, F flagged,
 * P passed ($Forwarded), R answered, S seen, T trashed (\Deleted), a-z
 * keywords. Its mtime is the internal date. tmp/ holds deliveries in
 * progress and is left alone. Messages go in dovecot-uidlist's UID order,
 * those it does not list after them by name (which starts with the
 * delivery time), so the store's UIDs keep their order.
 *
 * UIDs are kept where dovecot-uidlist has them, so that clients keep their
 * caches: a mailbox that has never held a message takes the folder's
 * UIDVALIDITY and UIDNEXT, and each listed message its UID. A mailbox that
 * has messages (a merge) keeps its UIDVALIDITY and gives new UIDs, as it
 * does from the first UID that is already behind its UIDNEXT (mail
 * delivered meanwhile); both are said on stderr.
 *
 * The journal key of a message is its folder and its name without the
 * ":2,..." part, which stays the same when flags change.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_mail.h"
#include "cli/mail_import.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define MAILDIR_READ_CHUNK 65536
#define MAILDIR_LETTERS 26          /* keywords a-z */

struct maildir_entry {
	size_t name;                /* offset in the folder's name arena */
	uint32_t uid;               /* 0: not in dovecot-uidlist */
	unsigned in_new : 1;
};

struct maildir_folder {
	struct mail_import *imp;
	int fd;
	const char *dirname;        /* ".Sub.Folder", or "." for INBOX */
	struct buf names;           /* NUL-separated file names */
	struct maildir_entry *entries;
	size_t nentries, cap;
	char *keywords[MAILDIR_LETTERS];
	uint32_t uidvalidity;       /* dovecot-uidlist's; 0: none */
	uint32_t uidnext;
};

/* The entries' names are in an arena that may move: sorting needs it. */
static const char *sort_arena;

static size_t
base_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

static int
entry_cmp_base(const void *a, const void *b)
{
	const char *x = sort_arena + ((const struct maildir_entry *)a)->name;
	const char *y = sort_arena + ((const struct maildir_entry *)b)->name;
	size_t lx = base_len(x), ly = base_len(y);
	int c = memcmp(x, y, lx < ly ? lx : ly);

	return c != 0 ? c : (lx > ly) - (lx < ly);
}

static int
entry_cmp_order(const void *a, const void *b)
{
	const struct maildir_entry *x = a, *y = b;

	if (x->uid != y->uid) {
		if (x->uid == 0 || y->uid == 0)
			return x->uid == 0 ? 1 : -1;
		return x->uid < y->uid ? -1 : 1;
	}
	return entry_cmp_base(a, b);
}

/* "Sub.Folder" (without the leading '.') to "Sub/Folder"; NULL if invalid. */
static char *
maildir_folder_name(const char *dirname)
{
	struct buf out = BUF_INIT;
	const char *p = dirname, *dot;
	char *part;
	size_t len;

	for (;;) {
		dot = strchr(p, '.');
		len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (len == 0 || (part = cli_mail_utf7_decode(p, len)) == NULL ||
		    strchr(part, STORE_SEPARATOR) != NULL) {
			if (len > 0)
				free(part);
			buf_free(&out);
			return NULL;
		}
		if (out.len > 0)
			buf_putc(&out, STORE_SEPARATOR);
		buf_puts(&out, part);
		free(part);
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return buf_steal(&out);
}

static FILE *
maildir_fopen(int dirfd, const char *name)
{
	FILE *fp;
	int fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if ((fp = fdopen(fd, "r")) == NULL)
		close(fd);
	return fp;
}

static void
maildir_read_keywords(struct maildir_folder *f)
{
	char *line = NULL, *name, *end;
	size_t cap = 0;
	ssize_t n;
	long idx;
	FILE *fp;

	if ((fp = maildir_fopen(f->fd, "dovecot-keywords")) == NULL)
		return;
	while ((n = getline(&line, &cap, fp)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		idx = strtol(line, &end, 10);
		if (end == line || *end != ' ' || idx < 0 || idx >= MAILDIR_LETTERS)
			continue;
		name = end + 1;
		if (!cli_mail_keyword_ok(name)) {
			mail_import_warn(f->imp, 0, "%s: keyword '%s' is not valid in IMAP; "
			    "left out", f->dirname, name);
			continue;
		}
		free(f->keywords[idx]);
		f->keywords[idx] = xstrdup(name);
	}
	free(line);
	fclose(fp);
}

static int
maildir_scan(struct maildir_folder *f, const char *sub, int in_new)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = openat(f->fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (f->nentries == f->cap) {
			f->cap = f->cap == 0 ? 256 : f->cap * 2;
			f->entries = xreallocarray(f->entries, f->cap, sizeof(*f->entries));
		}
		f->entries[f->nentries].name = f->names.len;
		f->entries[f->nentries].uid = 0;
		f->entries[f->nentries].in_new = in_new;
		f->nentries++;
		buf_append(&f->names, de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	return 0;
}

/* Reads the header of dovecot-uidlist: v1 and v2 "1 UIDVALIDITY UIDNEXT",
 * v3 "3 [KEYVALUE...]" with V the UIDVALIDITY and N the UIDNEXT. The
 * version, or 0 when it is not one of these. */
static int
maildir_uidlist_header(struct maildir_folder *f, const char *line)
{
	unsigned long v = 0, n = 0;
	const char *p;
	int version = atoi(line);

	if (version == 1 || version == 2) {
		if (sscanf(line, "%*d %lu %lu", &v, &n) != 2)
			v = n = 0;
	} else if (version == 3) {
		for (p = strchr(line, ' '); p != NULL; p = strchr(p + 1, ' ')) {
			if (p[1] == 'V')
				v = strtoul(p + 2, NULL, 10);
			else if (p[1] == 'N')
				n = strtoul(p + 2, NULL, 10);
		}
	} else
		return 0;
	if (v > 0 && v <= UINT32_MAX && n <= UINT32_MAX) {
		f->uidvalidity = (uint32_t)v;
		f->uidnext = (uint32_t)n;
	}
	return version;
}

/* Gives entries their UIDs from dovecot-uidlist (v1 "UID NAME", v2
 * "UID FLAGS NAME", v3 "UID [EXT...] :NAME"). */
static void
maildir_read_uidlist(struct maildir_folder *f)
{
	struct maildir_entry key, *e;
	char *line = NULL, *name, *end;
	size_t cap = 0, keyoff;
	ssize_t n;
	unsigned long uid;
	int version = 0;
	FILE *fp;

	if ((fp = maildir_fopen(f->fd, "dovecot-uidlist")) == NULL)
		return;
	sort_arena = f->names.data;
	qsort(f->entries, f->nentries, sizeof(*f->entries), entry_cmp_base);
	while ((n = getline(&line, &cap, fp)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (version == 0) {
			if ((version = maildir_uidlist_header(f, line)) == 0)
				break;
			continue;
		}
		uid = strtoul(line, &end, 10);
		if (end == line || *end != ' ' || uid == 0 || uid > UINT32_MAX)
			continue;
		if (version == 1)
			name = end + 1;
		else if (version == 2 && (name = strchr(end + 1, ' ')) != NULL)
			name++;
		else if (version == 3 && (name = strstr(end, " :")) != NULL)
			name += 2;
		else
			continue;
		/* Look the name up with a temporary arena entry. */
		keyoff = f->names.len;
		buf_append(&f->names, name, strlen(name) + 1);
		sort_arena = f->names.data;
		key.name = keyoff;
		e = bsearch(&key, f->entries, f->nentries, sizeof(*f->entries),
		    entry_cmp_base);
		f->names.len = keyoff;
		if (e != NULL)
			e->uid = (uint32_t)uid;
	}
	free(line);
	fclose(fp);
}

/* Imports one message, with that UID (0: a new one). 1 when the UID is
 * taken (nothing stored), -1 when the import must stop. */
static int
maildir_import_message(struct maildir_folder *f, struct maildir_entry *e, uint32_t uid,
    char *chunk)
{
	struct mail_import *imp = f->imp;
	const char *kw[MAILDIR_LETTERS + 2];
	const char *name = f->names.data + e->name, *info;
	unsigned flags = 0;
	struct stat st;
	char *path, *key;
	size_t nkw = 0;
	ssize_t n;
	int fd, forwarded = 0, rc = 0;

	key = xasprintf("%s/%.*s", f->dirname, (int)base_len(name), name);
	if (mail_import_is_done(imp, key)) {
		mail_import_skipped(imp);
		free(key);
		return 0;
	}
	path = xasprintf("%s/%s", e->in_new ? "new" : "cur", name);
	if ((fd = openat(f->fd, path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
		mail_import_warn(imp, 1, "%s/%s: %s", f->dirname, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		free(key);
		return 0;
	}
	if ((info = strstr(name, ":2,")) != NULL) {
		info += 3;
		cli_mail_maildir_parse(info, &flags, &forwarded);
		for (; *info != '\0'; info++)
			if (*info >= 'a' && *info <= 'z' && f->keywords[*info - 'a'] != NULL &&
			    nkw < MAILDIR_LETTERS)
				kw[nkw++] = f->keywords[*info - 'a'];
	}
	if (forwarded)
		kw[nkw++] = CLI_MAIL_FORWARDED;
	kw[nkw] = NULL;

	if (mail_import_begin(imp) < 0) {
		rc = -1;
		goto out;
	}
	while ((n = read(fd, chunk, MAILDIR_READ_CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			mail_import_warn(imp, 1, "%s/%s: %s", f->dirname, path,
			    strerror(errno));
			mail_import_abort(imp);
			goto out;
		}
		mail_import_write(imp, chunk, (size_t)n);
	}
	rc = mail_import_commit_uid(imp, key, flags, nkw > 0 ? kw : NULL,
	    (int64_t)st.st_mtim.tv_sec, uid);
out:
	close(fd);
	free(path);
	free(key);
	return rc;
}

/* Imports one folder. -1 when the import must stop. */
static int
maildir_import_folder(struct mail_import *imp, int rootfd, const char *dirname,
    const char *mailbox)
{
	struct maildir_folder f;
	struct maildir_entry *e;
	char *chunk = NULL;
	uint32_t first_uid;
	size_t i;
	int rc = 0, keep = 0, same_uidvalidity = 0;

	memset(&f, 0, sizeof(f));
	f.imp = imp;
	f.dirname = dirname;
	if ((f.fd = openat(rootfd, dirname, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		mail_import_warn(imp, 0, "%s: %s", dirname, strerror(errno));
		return 0;
	}
	maildir_read_keywords(&f);
	if (maildir_scan(&f, "cur", 0) < 0 || maildir_scan(&f, "new", 1) < 0) {
		mail_import_warn(imp, 1, "%s: %s; folder skipped", dirname, strerror(errno));
		goto out;
	}
	maildir_read_uidlist(&f);
	sort_arena = f.names.data;
	qsort(f.entries, f.nentries, sizeof(*f.entries), entry_cmp_order);
	if (mail_import_select(imp, mailbox) < 0) {
		imp->failed += f.nentries;
		goto out;
	}
	if (f.uidvalidity != 0) {
		/* Entries are in UID order, the unlisted (0) last. */
		first_uid = f.nentries > 0 && f.entries[0].uid != 0 ? f.entries[0].uid :
		    f.uidnext;
		if (f.uidnext != 0 && f.uidnext < first_uid)
			first_uid = f.uidnext;
		keep = same_uidvalidity = mail_import_keep_uids(imp, f.uidvalidity, first_uid);
	}
	chunk = xmalloc(MAILDIR_READ_CHUNK);
	for (i = 0; i < f.nentries && rc == 0; i++) {
		e = &f.entries[i];
		rc = maildir_import_message(&f, e, keep ? e->uid : 0, chunk);
		if (rc != 1)
			continue;
		/* Not renumbered one by one: the UIDs keep their order. */
		fprintf(stderr, "petrel: import maildir: mailbox %s: UID %u is taken (mail "
		    "came in meanwhile?): this and the next messages get new UIDs\n",
		    mailbox, e->uid);
		keep = 0;
		rc = maildir_import_message(&f, e, 0, chunk);
	}
	/* UIDs up to the source's UIDNEXT may be known to clients (messages
	 * expunged at the end): never given under its UIDVALIDITY. */
	if (rc == 0 && same_uidvalidity && f.uidnext > 1)
		mail_import_uidnext(imp, f.uidnext);
out:
	free(chunk);
	for (i = 0; i < MAILDIR_LETTERS; i++)
		free(f.keywords[i]);
	free(f.entries);
	buf_free(&f.names);
	close(f.fd);
	return rc;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Folder directories below the root: ".Name" with a cur/ or new/. */
static int
maildir_folders(int rootfd, char ***dirs_r, size_t *n_r)
{
	struct dirent *de;
	struct stat st;
	char **dirs = NULL, *sub;
	size_t n = 0, cap = 0;
	DIR *d;
	int fd;

	if ((fd = dup(rootfd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		sub = xasprintf("%s/cur", de->d_name);
		if (fstatat(rootfd, sub, &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
			free(sub);
			sub = xasprintf("%s/new", de->d_name);
			if (fstatat(rootfd, sub, &st, 0) < 0 || !S_ISDIR(st.st_mode)) {
				free(sub);
				continue;
			}
		}
		free(sub);
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			dirs = xreallocarray(dirs, cap, sizeof(*dirs));
		}
		dirs[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(dirs, n, sizeof(*dirs), str_cmp);
	*dirs_r = dirs;
	*n_r = n;
	return 0;
}

int
import_maildir(struct cli *cli, const char *address, const char *dir, int fresh)
{
	struct mail_import imp;
	struct stat st;
	char real[PATH_MAX], **dirs = NULL, *name;
	size_t ndirs = 0, i;
	int rootfd, rc = 0, ok = 0;

	/* Opened before the switch away from root: the tree must be readable by
	 * the daemon's user, but not the path leading to it. */
	if ((rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    realpath(dir, real) == NULL) {
		cli_error("%s: %s", dir, strerror(errno));
		if (rootfd >= 0)
			close(rootfd);
		return 1;
	}
	if ((fstatat(rootfd, "cur", &st, 0) < 0 || !S_ISDIR(st.st_mode)) &&
	    (fstatat(rootfd, "new", &st, 0) < 0 || !S_ISDIR(st.st_mode))) {
		cli_error("%s: not a Maildir (no cur/ or new/)", dir);
		close(rootfd);
		return 1;
	}
	if (mail_import_open(&imp, cli, address, "maildir", dir, real, fresh) < 0)
		goto out;
	/* Now running as the daemon's user, who must be able to read the tree. */
	if (faccessat(rootfd, ".", R_OK | X_OK, 0) < 0 || (faccessat(rootfd, "cur", F_OK,
	    0) == 0 && faccessat(rootfd, "cur", R_OK | X_OK, 0) < 0)) {
		mail_import_warn(&imp, 0, "%s; the import reads the Maildir as user '%s' "
		    "(give it read access, e.g. setfacl -R -m u:%s:rX)", strerror(errno),
		    cli->cfg.user, cli->cfg.user);
		goto out;
	}
	if (maildir_folders(rootfd, &dirs, &ndirs) < 0) {
		mail_import_warn(&imp, 0, "%s", strerror(errno));
		goto out;
	}
	rc = maildir_import_folder(&imp, rootfd, ".", "INBOX");
	for (i = 0; i < ndirs && rc == 0; i++) {
		if ((name = maildir_folder_name(dirs[i] + 1)) == NULL) {
			mail_import_warn(&imp, 1, "%s: not a valid folder name (Maildir++, "
			    "modified UTF-7); folder skipped", dirs[i]);
			continue;
		}
		rc = maildir_import_folder(&imp, rootfd, dirs[i], name);
		free(name);
	}
	ok = rc == 0;
out:
	for (i = 0; i < ndirs; i++)
		free(dirs[i]);
	free(dirs);
	close(rootfd);
	return mail_import_close(&imp, ok);
}
