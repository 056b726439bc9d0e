/*
 * Rebuilding a lost or damaged index from the message files.
 *
 * What comes back: every mailbox that has a directory or a line in
 * msg/mailboxes (with its id, name, UIDVALIDITY and role from the file;
 * "Recovered-<id>" when only the directory is left), subscriptions, every
 * message with its UID, GUID, internal date (the file's mtime) and parsed
 * metadata; counts and usage are recomputed.
 *
 * What is lost, and reported: flags and keywords (messages come back
 * unseen), MODSEQs, and expunge records. So that clients holding old
 * MODSEQs resynchronize fully, a rebuilt mailbox's HIGHESTMODSEQ starts far
 * above any it can have given before: the time in milliseconds (a mailbox
 * would need 10^12 changes to have got there by counting). UIDNEXT is the
 * highest UID found plus one, or the UIDNEXT msg/mailboxes recorded when
 * it was last written (a mailbox's creation, an import's
 * store_mailbox_set_uidvalidity) if higher: UIDs of messages expunged at
 * the very end of a mailbox since then may be given again.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mail/mime.h"
#include "store/store_sqlite.h"

#define RB_READ_SIZE (64 * 1024)
#define RB_FILE_MAX (4 * 1024 * 1024)   /* msg/mailboxes */

struct rb_mailbox {
	int64_t id;
	uint32_t uidvalidity;
	unsigned special_use;
	char *name;
	int has_dir;
	uint32_t max_uid;
	uint32_t uidnext;          /* from msg/mailboxes, 0 when not there */
};

struct rb_state {
	struct rb_mailbox *mb;
	size_t nmb;
	char **subs;
	size_t nsubs;
	int have_file;
	uint64_t messages, lost_flags, skipped;
};

static struct rb_mailbox *
rb_find(struct rb_state *rb, int64_t id)
{
	size_t i;

	for (i = 0; i < rb->nmb; i++)
		if (rb->mb[i].id == id)
			return &rb->mb[i];
	return NULL;
}

static struct rb_mailbox *
rb_add(struct rb_state *rb, int64_t id)
{
	struct rb_mailbox *m;

	rb->mb = xreallocarray(rb->mb, rb->nmb + 1, sizeof(*rb->mb));
	m = &rb->mb[rb->nmb++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	return m;
}

static int
parse_u64(const char *s, char **end, uint64_t *v)
{
	unsigned long long x;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	x = strtoull(s, end, 10);
	if (errno != 0)
		return -1;
	*v = x;
	return 0;
}

/* Reads msg/mailboxes: "m <id> <uidvalidity> <special-use> <name>",
 * "u <id> <uidnext>" and "s <name>" lines (store_sqlite_mailbox.c). */
static void
rb_read_file(struct store_backend_account *ba, struct rb_state *rb)
{
	struct buf b = BUF_INIT;
	char chunk[4096], *line, *next, *p;
	uint64_t id, uv, su;
	ssize_t n;
	int fd;

	if ((fd = openat(ba->msg_fd, "mailboxes", O_RDONLY | O_CLOEXEC)) < 0)
		return;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && b.len < RB_FILE_MAX)
		buf_append(&b, chunk, (size_t)n);
	close(fd);
	if (b.len == 0)
		return;
	rb->have_file = 1;
	for (line = b.data; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line[0] == 's' && line[1] == ' ') {
			rb->subs = xreallocarray(rb->subs, rb->nsubs + 1, sizeof(*rb->subs));
			rb->subs[rb->nsubs++] = xstrdup(line + 2);
			continue;
		}
		if (line[0] == 'u' && line[1] == ' ') {
			struct rb_mailbox *m;

			p = line + 2;
			if (parse_u64(p, &p, &id) == 0 && *p++ == ' ' &&
			    parse_u64(p, &p, &uv) == 0 && *p == '\0' && id <= INT64_MAX &&
			    uv <= UINT32_MAX && (m = rb_find(rb, (int64_t)id)) != NULL)
				m->uidnext = (uint32_t)uv;
			continue;
		}
		if (line[0] != 'm' || line[1] != ' ')
			continue;
		p = line + 2;
		if (parse_u64(p, &p, &id) < 0 || *p++ != ' ' || parse_u64(p, &p, &uv) < 0 ||
		    *p++ != ' ' || parse_u64(p, &p, &su) < 0 || *p++ != ' ' || id == 0 ||
		    id > INT64_MAX || uv > UINT32_MAX || rb_find(rb, (int64_t)id) != NULL) {
			log_warn(NULL, "event=store-rebuild-bad-line account=%lld",
			    (long long)ba->id);
			continue;
		}
		struct rb_mailbox *m = rb_add(rb, (int64_t)id);

		m->uidvalidity = (uint32_t)uv;
		m->special_use = (unsigned)su;
		m->name = xstrdup(p);
	}
	buf_free(&b);
}

/* Adds the mailbox directories of msg/. */
static int
rb_scan_dirs(struct store_backend_account *ba, struct rb_state *rb, const char **error_r)
{
	struct rb_mailbox *m;
	struct dirent *de;
	uint64_t id;
	char *end;
	DIR *d;
	int fd;

	if ((fd = dup(ba->msg_fd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return store_fail_temp(error_r, "event=store-io-error op=readdir account=%lld "
		    "reason=\"%s\"", (long long)ba->id, strerror(errno));
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (parse_u64(de->d_name, &end, &id) < 0 || *end != '\0' || id == 0 ||
		    id > INT64_MAX)
			continue;
		if ((m = rb_find(rb, (int64_t)id)) == NULL)
			m = rb_add(rb, (int64_t)id);
		m->has_dir = 1;
	}
	closedir(d);
	return 0;
}

static int
valid_guid(const char *s)
{
	size_t i;

	for (i = 0; i < SSQL_GUID_SIZE - 1; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	return s[i] == '\0';
}

static int
body_find(struct ssql_conn *c, const char *guid, int64_t *body_id, int64_t *thread_id,
    const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(c->db, "SELECT id, thread_id FROM bodies WHERE guid = ?1", -1,
	    &st, NULL);
	if (rc != SQLITE_OK)
		return ssql_error(c, rc, error_r);
	sqlite3_bind_text(st, 1, guid, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*body_id = sqlite3_column_int64(st, 0);
		*thread_id = sqlite3_column_int64(st, 1);
		rc = 1;
	} else if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = ssql_error(c, rc, error_r);
	sqlite3_finalize(st);
	return rc;
}

/* Parses one message file into the index. -1 only for index errors; an
 * unreadable file is counted and skipped. */
static int
rb_message(struct store_backend_account *ba, struct ssql_conn *c, struct rb_state *rb,
    struct rb_mailbox *mb, int dirfd, const char *fname, uint64_t modseq,
    const char **error_r)
{
	struct mime_parser *p;
	struct mime_summary *s;
	struct ssql_message m;
	struct stat st;
	uint64_t uid;
	char *dot, buf[RB_READ_SIZE];
	ssize_t n;
	int fd, rc;

	memset(&m, 0, sizeof(m));
	if (parse_u64(fname, &dot, &uid) < 0 || *dot != '.' || uid == 0 ||
	    uid >= UINT32_MAX || !valid_guid(dot + 1)) {
		log_warn(NULL, "event=store-rebuild-skipped account=%lld mailbox=%lld file=%s "
		    "reason=\"not a message file name\"", (long long)ba->id, (long long)mb->id,
		    fname);
		rb->skipped++;
		return 0;
	}
	if ((fd = openat(dirfd, fname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_warn(NULL, "event=store-rebuild-skipped account=%lld mailbox=%lld file=%s "
		    "reason=\"%s\"", (long long)ba->id, (long long)mb->id, fname,
		    fd < 0 ? strerror(errno) : "not a file");
		if (fd >= 0)
			close(fd);
		rb->skipped++;
		return 0;
	}
	m.uid = (uint32_t)uid;
	memcpy(m.guid, dot + 1, SSQL_GUID_SIZE);
	m.size = (uint64_t)st.st_size;
	m.internaldate = st.st_mtime;
	m.modseq = modseq;
	if ((rc = body_find(c, m.guid, &m.body_id, &m.thread_id, error_r)) < 0) {
		close(fd);
		return -1;
	}
	if (rc == 0) {
		p = mime_parser_new();
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			mime_parser_feed(p, buf, (size_t)n);
		s = mime_parser_finish(&p);
		if (n < 0) {
			log_warn(NULL, "event=store-rebuild-read-error account=%lld file=%s "
			    "reason=\"%s\"", (long long)ba->id, fname, strerror(errno));
		}
		rc = ssql_body_insert(c, m.guid, m.size, s, &m.body_id, &m.thread_id, error_r);
		mime_summary_free(&s);
		if (rc < 0) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	if (ssql_message_insert(c, mb->id, &m, error_r) < 0 ||
	    ssql_mailbox_add_counts(c, mb->id, 1, 1, 0, (int64_t)m.size, error_r) < 0 ||
	    ssql_add_usage(c, (int64_t)m.size, 1, error_r) < 0)
		return -1;
	if (m.uid > mb->max_uid)
		mb->max_uid = m.uid;
	rb->messages++;
	rb->lost_flags++;
	return 0;
}

static int
rb_mailbox_files(struct store_backend_account *ba, struct ssql_conn *c, struct rb_state *rb,
    struct rb_mailbox *mb, uint64_t modseq, const char **error_r)
{
	struct dirent *de;
	char dir[32];
	DIR *d;
	int fd;

	snprintf(dir, sizeof(dir), "%lld", (long long)mb->id);
	if ((fd = openat(ba->msg_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0;
		return store_fail_temp(error_r, "event=store-io-error op=opendir account=%lld "
		    "dir=%s reason=\"%s\"", (long long)ba->id, dir, strerror(errno));
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return store_fail_temp(error_r, "event=store-io-error op=opendir "
		    "account=%lld reason=\"%s\"", (long long)ba->id, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (rb_message(ba, c, rb, mb, dirfd(d), de->d_name, modseq, error_r) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

static int
exec_i64(struct ssql_conn *c, const char *sql, int64_t a, int64_t b, int64_t cc,
    const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return ssql_error(c, rc, error_r);
	/* Parameters past those of sql are ignored (SQLITE_RANGE). */
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	sqlite3_bind_int64(st, 3, cc);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return ssql_error(c, rc, error_r);
	return 0;
}

static int
name_taken(struct rb_state *rb, size_t upto, const char *name)
{
	size_t i;

	for (i = 0; i < upto; i++)
		if (rb->mb[i].name != NULL && strcmp(rb->mb[i].name, name) == 0)
			return 1;
	return 0;
}

int
ssql_rebuild(struct store_backend_account *ba, struct ssql_conn *c, const char **error_r)
{
	struct rb_state rb;
	struct ssql_mailbox found;
	const char *err;
	char *norm, *p;
	uint64_t modseq = (uint64_t)time(NULL) * 1000;
	uint32_t max_uidvalidity = 0;
	size_t i;
	int rc = -1, r;

	memset(&rb, 0, sizeof(rb));
	rb_read_file(ba, &rb);
	if (rb_scan_dirs(ba, &rb, error_r) < 0)
		goto out;
	/* Names: as the file has them when valid and unique. */
	for (i = 0; i < rb.nmb; i++) {
		struct rb_mailbox *m = &rb.mb[i];

		norm = m->name != NULL ? store_name_normalize(m->name, &err) : NULL;
		free(m->name);
		m->name = norm;
		if (m->name == NULL || name_taken(&rb, i, m->name)) {
			free(m->name);
			m->name = xasprintf("Recovered-%lld", (long long)m->id);
			log_warn(NULL, "event=store-rebuild-unnamed account=%lld mailbox=%lld "
			    "name=%s", (long long)ba->id, (long long)m->id, m->name);
		}
		if (m->uidvalidity > max_uidvalidity)
			max_uidvalidity = m->uidvalidity;
		if (ssql_mailbox_insert(ba, c, m->name, m->special_use, m->uidvalidity, m->id,
		    NULL, error_r) < 0)
			goto out;
	}
	/* New UIDVALIDITYs stay above the recovered ones. */
	if (exec_i64(c, "UPDATE account SET last_uidvalidity = ?1 WHERE id = 1",
	    max_uidvalidity, 0, 0, error_r) < 0)
		goto out;
	/* Every mailbox's parents, and INBOX, exist. */
	for (i = 0; i < rb.nmb; i++) {
		for (p = strchr(rb.mb[i].name, STORE_SEPARATOR); p != NULL;
		    p = strchr(p + 1, STORE_SEPARATOR)) {
			*p = '\0';
			r = ssql_mailbox_find(c, rb.mb[i].name, 0, NULL, error_r);
			if (r == 0)
				r = ssql_mailbox_insert(ba, c, rb.mb[i].name, 0, 0, 0, NULL,
				    error_r);
			*p = STORE_SEPARATOR;
			if (r < 0)
				goto out;
		}
	}
	if ((r = ssql_mailbox_find(c, "INBOX", 0, &found, error_r)) < 0)
		goto out;
	if (r == 0 && ssql_mailbox_insert(ba, c, "INBOX", 0, 0, 0, NULL, error_r) < 0)
		goto out;

	for (i = 0; i < rb.nmb; i++) {
		int64_t uidnext;

		if (rb_mailbox_files(ba, c, &rb, &rb.mb[i], modseq, error_r) < 0)
			goto out;
		uidnext = (int64_t)rb.mb[i].max_uid + 1;
		if (rb.mb[i].uidnext > uidnext)
			uidnext = rb.mb[i].uidnext;
		if (exec_i64(c, "UPDATE mailboxes SET uidnext = ?2, highestmodseq = ?3"
		    " WHERE id = ?1", rb.mb[i].id, uidnext, (int64_t)modseq, error_r) < 0)
			goto out;
	}
	if (exec_i64(c, "UPDATE mailboxes SET highestmodseq = ?1",
	    (int64_t)modseq, 0, 0, error_r) < 0)
		goto out;

	/* Subscriptions: the file's, or every mailbox when it is gone. */
	if (rb.have_file) {
		for (i = 0; i < rb.nsubs; i++) {
			if ((norm = store_name_normalize(rb.subs[i], &err)) == NULL)
				continue;
			{
				sqlite3_stmt *st = ssql_stmt(c, SST_SUB_ADD, error_r);

				if (st == NULL) {
					free(norm);
					goto out;
				}
				sqlite3_bind_text(st, 1, norm, -1, SQLITE_TRANSIENT);
				r = ssql_step_done(c, st, error_r);
			}
			free(norm);
			if (r < 0)
				goto out;
		}
	} else if (ssql_exec(c, "INSERT OR IGNORE INTO subscriptions (name)"
	    " SELECT name FROM mailboxes", error_r) < 0)
		goto out;
	if (ssql_fsync_dir(ba->be, ba->msg_fd, NULL, error_r) < 0 ||
	    ssql_mailboxes_file_write(ba, c, error_r) < 0)
		goto out;
	log_warn(NULL, "event=store-rebuilt account=%lld mailboxes=%zu messages=%llu "
	    "flags-lost=%llu skipped-files=%llu mailbox-file=%s", (long long)ba->id, rb.nmb,
	    (unsigned long long)rb.messages, (unsigned long long)rb.lost_flags,
	    (unsigned long long)rb.skipped, rb.have_file ? "yes" : "missing");
	rc = 0;
out:
	for (i = 0; i < rb.nmb; i++)
		free(rb.mb[i].name);
	free(rb.mb);
	for (i = 0; i < rb.nsubs; i++)
		free(rb.subs[i]);
	free(rb.subs);
	return rc;
}
