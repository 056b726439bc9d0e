/*
 * The shared part of the mail imports; see mail_import.h for the journal.
 */
#include "cli/mail_import.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli/cli.h"
#include "cli/cmd_directory.h"
#include "core/xmalloc.h"
#include "store/store.h"

#define IMPORT_PENDING_MAX 64     /* unsettled P lines we look at */
#define IMPORT_READ_CHUNK 65536

struct import_pending {
	uint64_t key;
	int64_t mbox_id;
	uint32_t min_uid;
	uint64_t size;
	char sha[65];
};

struct import_mailbox_ref {
	int64_t id;
	uint32_t uidvalidity;
};

/* Key set */

static uint64_t
keyset_slot(uint64_t key)
{
	return key == 0 ? 1 : key;
}

static void
keyset_add(struct mail_import_keyset *ks, uint64_t key)
{
	uint64_t *old = ks->slots;
	size_t oldcap = ks->cap, i, j;

	key = keyset_slot(key);
	if ((ks->count + 1) * 2 > ks->cap) {
		ks->cap = ks->cap == 0 ? 1024 : ks->cap * 2;
		ks->slots = xcalloc(ks->cap, sizeof(*ks->slots));
		ks->count = 0;
		for (i = 0; i < oldcap; i++) {
			if (old[i] == 0)
				continue;
			j = old[i] & (ks->cap - 1);
			while (ks->slots[j] != 0)
				j = (j + 1) & (ks->cap - 1);
			ks->slots[j] = old[i];
			ks->count++;
		}
		free(old);
	}
	for (j = key & (ks->cap - 1); ks->slots[j] != 0; j = (j + 1) & (ks->cap - 1))
		if (ks->slots[j] == key)
			return;
	ks->slots[j] = key;
	ks->count++;
}

static int
keyset_has(const struct mail_import_keyset *ks, uint64_t key)
{
	size_t j;

	if (ks->cap == 0)
		return 0;
	key = keyset_slot(key);
	for (j = key & (ks->cap - 1); ks->slots[j] != 0; j = (j + 1) & (ks->cap - 1))
		if (ks->slots[j] == key)
			return 1;
	return 0;
}

/* The first 64 bits of SHA-256 of s[0..len). */
static uint64_t
import_hash64(const void *s, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	uint64_t h = 0;
	int i;

	EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL);
	for (i = 0; i < 8; i++)
		h = (h << 8) | md[i];
	return h;
}

static uint64_t
import_key(const char *key)
{
	return import_hash64(key, strlen(key));
}

/* Journal */

static void
journal_line(struct mail_import *imp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
journal_line(struct mail_import *imp, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n <= 0 || (size_t)n >= sizeof(line))
		return;
	/* One write: a line is there whole or not at all after a kill. */
	if (write(imp->journal_fd, line, (size_t)n) != n)
		cli_error("%s: %s", imp->journal_path, strerror(errno));
}

static int
mailbox_ref_cmp(const void *a, const void *b)
{
	const struct import_mailbox_ref *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The mailbox if it still exists with that UIDVALIDITY (0: any). */
static const struct import_mailbox_ref *
mailbox_ref_find(const struct import_mailbox_ref *refs, size_t n, int64_t id,
    uint32_t uidvalidity)
{
	struct import_mailbox_ref k = { id, 0 }, *r;

	r = bsearch(&k, refs, n, sizeof(*refs), mailbox_ref_cmp);
	return r != NULL && (uidvalidity == 0 || r->uidvalidity == uidvalidity) ? r : NULL;
}

/* 1 when the mailbox has a message at or above min_uid with this size and
 * hash: the commit of a P line went through before the process died. */
static int
journal_settle(struct mail_import *imp, const struct import_pending *p,
    uint32_t uidvalidity)
{
	struct store_message *msgs = NULL;
	struct store_blob *blob;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	const char *error;
	char hex[65], *chunk;
	EVP_MD_CTX *ctx;
	size_t n = 0, i;
	uint64_t off;
	ssize_t r;
	int found = 0;

	if (store_message_list(imp->mail.acct, p->mbox_id, p->min_uid, UINT32_MAX, &msgs,
	    &n, &error) < 0)
		return 0;
	chunk = xmalloc(IMPORT_READ_CHUNK);
	ctx = EVP_MD_CTX_new();
	for (i = 0; i < n && !found; i++) {
		if (msgs[i].size != p->size || store_blob_open(imp->mail.acct, p->mbox_id,
		    msgs[i].uid, &blob, &error) < 0)
			continue;
		EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
		for (off = 0; (r = store_blob_read(blob, off, chunk, IMPORT_READ_CHUNK)) > 0;
		    off += (uint64_t)r)
			EVP_DigestUpdate(ctx, chunk, (size_t)r);
		store_blob_close(&blob);
		if (r < 0)
			continue;
		EVP_DigestFinal_ex(ctx, md, &mdlen);
		cli_mail_hex(md, mdlen, hex);
		if (strcmp(hex, p->sha) == 0) {
			journal_line(imp, "D %016" PRIx64 " %" PRId64 " %u %u\n", p->key,
			    p->mbox_id, uidvalidity, msgs[i].uid);
			found = 1;
		}
	}
	EVP_MD_CTX_free(ctx);
	free(chunk);
	if (msgs != NULL)
		store_messages_free(&msgs, n);
	return found;
}

/* Reads what earlier runs did. */
static int
journal_load(struct mail_import *imp, FILE *fp)
{
	struct import_pending pending[IMPORT_PENDING_MAX], p;
	const struct import_mailbox_ref *ref;
	struct import_mailbox_ref *refs;
	struct store_mailbox *list = NULL;
	const char *error;
	char *line = NULL, kind;
	size_t cap = 0, n, i, npending = 0;
	uint64_t key, size;
	int64_t mbox_id;
	unsigned uidvalidity, uid;
	unsigned long long skey, ssize;
	long long sid;

	if (store_mailbox_list(imp->mail.acct, &list, &n, &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	refs = xcalloc(n + 1, sizeof(*refs));
	for (i = 0; i < n; i++) {
		refs[i].id = list[i].id;
		refs[i].uidvalidity = list[i].uidvalidity;
	}
	qsort(refs, n, sizeof(*refs), mailbox_ref_cmp);
	store_mailboxes_free(&list, n);

	while (getline(&line, &cap, fp) > 0) {
		kind = line[0];
		if (kind == 'D' && sscanf(line, "D %llx %lld %u %u", &skey, &sid, &uidvalidity,
		    &uid) == 4) {
			key = skey;
			mbox_id = sid;
			for (i = 0; i < npending; i++)
				if (pending[i].key == key)
					pending[i] = pending[--npending];
			if (mailbox_ref_find(refs, n, mbox_id, uidvalidity) != NULL)
				keyset_add(&imp->done, key);
		} else if (kind == 'X' && sscanf(line, "X %llx", &skey) == 1) {
			for (i = 0; i < npending; i++)
				if (pending[i].key == skey)
					pending[i] = pending[--npending];
		} else if (kind == 'P' && sscanf(line, "P %llx %lld %u %llu %64s", &skey, &sid,
		    &uid, &ssize, p.sha) == 5) {
			p.key = skey;
			p.mbox_id = sid;
			p.min_uid = uid;
			size = ssize;
			p.size = size;
			if (npending == IMPORT_PENDING_MAX)
				npending--;   /* the oldest kept are the least likely */
			pending[npending++] = p;
		}
	}
	free(line);
	for (i = 0; i < npending; i++) {
		if (keyset_has(&imp->done, pending[i].key))
			continue;
		if ((ref = mailbox_ref_find(refs, n, pending[i].mbox_id, 0)) != NULL &&
		    journal_settle(imp, &pending[i], ref->uidvalidity))
			keyset_add(&imp->done, pending[i].key);
		else
			journal_line(imp, "X %016" PRIx64 "\n", pending[i].key);
	}
	free(refs);
	return 0;
}

static int
journal_open(struct mail_import *imp, const char *source_id, int fresh)
{
	struct buf id = BUF_INIT;
	char *dir;
	FILE *fp;
	int fd;

	dir = xasprintf("%s/import", imp->cli->cfg.data_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		cli_error("%s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	buf_printf(&id, "%s", imp->format);
	buf_putc(&id, '\0');
	buf_puts(&id, source_id);
	imp->journal_path = xasprintf("%s/%lld-%lld-%016" PRIx64 ".journal", dir,
	    (long long)imp->mail.account.id, (long long)imp->mail.account.created,
	    import_hash64(id.data, id.len));
	buf_free(&id);
	free(dir);
	fd = open(imp->journal_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC |
	    (fresh ? O_TRUNC : 0), 0600);
	if (fd < 0) {
		cli_error("%s: %s", imp->journal_path, strerror(errno));
		return -1;
	}
	imp->journal_fd = fd;
	if ((fd = dup(imp->journal_fd)) < 0 || (fp = fdopen(fd, "r")) == NULL) {
		cli_error("%s: %s", imp->journal_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewind(fp);
	if (journal_load(imp, fp) < 0) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	return 0;
}

/* The import */

int
mail_import_open(struct mail_import *imp, struct cli *cli, const char *address,
    const char *format, const char *source, const char *source_id, int fresh)
{
	memset(imp, 0, sizeof(*imp));
	imp->cli = cli;
	imp->format = format;
	imp->source = source;
	imp->journal_fd = -1;
	if (cli->json) {
		imp->errors = json_array();
		imp->mailboxes = json_array();
	}
	if (cli_mail_open(cli, address, &imp->mail) < 0)
		return -1;
	if ((imp->sha = EVP_MD_CTX_new()) == NULL) {
		cli_error("out of memory");
		return -1;
	}
	return journal_open(imp, source_id, fresh);
}

int
mail_import_select(struct mail_import *imp, const char *name)
{
	struct store_mailbox mbox;
	const char *error;
	int64_t id;
	int ret;

	if (imp->mbox_name != NULL && strcmp(imp->mbox_name, name) == 0)
		return 0;
	xfree(&imp->mbox_name);
	imp->mbox_id = 0;
	memset(&mbox, 0, sizeof(mbox));
	if ((ret = store_mailbox_get(imp->mail.acct, name, &mbox, &error)) < 0) {
		mail_import_warn(imp, 0, "%s: %s", name, error);
		return -1;
	}
	if (ret == 0) {
		if (store_mailbox_create(imp->mail.acct, name, 0, &id, &error) < 0) {
			mail_import_warn(imp, 0, "cannot create mailbox '%s': %s", name,
			    error);
			return -1;
		}
		if (imp->mailboxes != NULL)
			json_array_append_new(imp->mailboxes, json_string(name));
		else
			printf("mailbox %s created\n", name);
		if ((ret = store_mailbox_get_by_id(imp->mail.acct, id, &mbox, &error)) <= 0) {
			mail_import_warn(imp, 0, "%s: %s", name, ret < 0 ? error :
			    "vanished after its creation");
			return -1;
		}
	}
	imp->mbox_name = xstrdup(name);
	imp->mbox_id = mbox.id;
	imp->min_uid = mbox.uidnext;
	store_mailbox_clear(&mbox);
	return 0;
}

int
mail_import_keep_uids(struct mail_import *imp, uint32_t uidvalidity, uint32_t first_uid)
{
	struct store_mailbox mbox;
	const char *error;
	int ret;

	if (store_mailbox_set_uidvalidity(imp->mail.acct, imp->mbox_id, uidvalidity,
	    first_uid, &error) == 0) {
		if (first_uid > imp->min_uid)
			imp->min_uid = first_uid;
		return 1;
	}
	if (store_error_code() != STORE_ERR_CONFLICT) {
		mail_import_warn(imp, 0, "%s: cannot keep the UIDs: %s; messages get new UIDs",
		    imp->mbox_name, error);
		return 0;
	}
	memset(&mbox, 0, sizeof(mbox));
	if ((ret = store_mailbox_get_by_id(imp->mail.acct, imp->mbox_id, &mbox,
	    &error)) <= 0) {
		mail_import_warn(imp, 0, "%s: %s", imp->mbox_name, ret < 0 ? error :
		    "mailbox vanished");
		return 0;
	}
	ret = mbox.uidvalidity == uidvalidity;
	if (!ret)
		fprintf(stderr, "petrel: import %s: mailbox %s already holds messages "
		    "(UIDVALIDITY %u): the imported ones get new UIDs, not those of the "
		    "source (UIDVALIDITY %u)\n", imp->format, imp->mbox_name, mbox.uidvalidity,
		    uidvalidity);
	store_mailbox_clear(&mbox);
	return ret;
}

void
mail_import_uidnext(struct mail_import *imp, uint32_t uidnext)
{
	const char *error;

	if (store_mailbox_raise_uidnext(imp->mail.acct, imp->mbox_id, uidnext, &error) < 0)
		mail_import_warn(imp, 0, "%s: cannot set UIDNEXT %u: %s", imp->mbox_name,
		    uidnext, error);
}

int
mail_import_is_done(struct mail_import *imp, const char *key)
{
	return keyset_has(&imp->done, import_key(key));
}

int
mail_import_begin(struct mail_import *imp)
{
	const char *error;

	buf_reset(&imp->write_error);
	if (store_writer_new(imp->mail.store, &imp->w, &error) < 0) {
		cli_error("%s", error);
		return -1;
	}
	EVP_DigestInit_ex(imp->sha, EVP_sha256(), NULL);
	return 0;
}

void
mail_import_write(struct mail_import *imp, const void *data, size_t len)
{
	const char *error;

	if (imp->write_error.len > 0 || len == 0)
		return;
	if (store_writer_write(imp->w, data, len, &error) < 0) {
		buf_puts(&imp->write_error, error);
		return;
	}
	EVP_DigestUpdate(imp->sha, data, len);
}

void
mail_import_abort(struct mail_import *imp)
{
	if (imp->w != NULL)
		store_writer_free(&imp->w);
}

static void
import_progress(struct mail_import *imp, int last)
{
	uint64_t total = imp->imported + imp->already + imp->failed;

	if (!last && (total == 0 || total % MAIL_IMPORT_PROGRESS != 0))
		return;
	fprintf(stderr, "petrel: import %s: %" PRIu64 " messages: %" PRIu64 " imported "
	    "(%.1f MiB), %" PRIu64 " already there, %" PRIu64 " failed%s\n", imp->format,
	    total, imp->imported, (double)imp->bytes / (1024.0 * 1024.0), imp->already,
	    imp->failed, last ? "" : " ...");
}

void
mail_import_skipped(struct mail_import *imp)
{
	imp->already++;
	import_progress(imp, 0);
}

int
mail_import_commit(struct mail_import *imp, const char *key, unsigned flags,
    const char *const *keywords, int64_t internaldate)
{
	return mail_import_commit_uid(imp, key, flags, keywords, internaldate, 0);
}

int
mail_import_commit_uid(struct mail_import *imp, const char *key, unsigned flags,
    const char *const *keywords, int64_t internaldate, uint32_t uid)
{
	struct store_target t;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	const char *error;
	char hex[65];
	uint64_t k = import_key(key), size;
	int n;

	if (imp->write_error.len > 0) {
		mail_import_warn(imp, 1, "%s: %s", key, buf_cstr(&imp->write_error));
		mail_import_abort(imp);
		import_progress(imp, 0);
		return 0;
	}
	EVP_DigestFinal_ex(imp->sha, md, &mdlen);
	cli_mail_hex(md, mdlen, hex);
	size = store_writer_size(imp->w);
	memset(&t, 0, sizeof(t));
	t.acct = imp->mail.acct;
	t.mailbox_id = imp->mbox_id;
	t.flags = flags;
	t.keywords = keywords;
	t.internaldate = internaldate;
	t.uid = uid;
	journal_line(imp, "P %016" PRIx64 " %" PRId64 " %u %" PRIu64 " %s\n", k,
	    imp->mbox_id, imp->min_uid, size, hex);
	n = store_writer_commit(imp->w, &t, 1, &error);
	store_writer_free(&imp->w);
	if (n < 0) {
		cli_error("%s: %s", key, error);
		return -1;
	}
	if (n == 0) {
		journal_line(imp, "X %016" PRIx64 "\n", k);
		if (t.error == STORE_ERR_CONFLICT && uid != 0)
			return 1;
		if (t.error == STORE_ERR_QUOTA || t.error == STORE_ERR_TEMP) {
			cli_error("%s: %s", key, t.error == STORE_ERR_QUOTA ?
			    "the account's quota is reached" : "temporary store failure");
			return -1;
		}
		mail_import_warn(imp, 1, "%s: not stored (%s)", key,
		    t.error == STORE_ERR_LIMIT ? "over a store limit" :
		    t.error == STORE_ERR_NOT_FOUND ? "mailbox gone" : "refused");
		import_progress(imp, 0);
		return 0;
	}
	journal_line(imp, "D %016" PRIx64 " %" PRId64 " %u %u\n", k, imp->mbox_id,
	    t.uidvalidity, t.uid);
	keyset_add(&imp->done, k);
	if (t.uid >= imp->min_uid)
		imp->min_uid = t.uid + 1;
	imp->imported++;
	imp->bytes += size;
	import_progress(imp, 0);
	return 0;
}

void
mail_import_warn(struct mail_import *imp, int failed, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_error("%s: %s", imp->source, msg);
	if (imp->errors != NULL)
		json_array_append_new(imp->errors, cli_mail_json_text(msg));
	if (failed)
		imp->failed++;
}

int
mail_import_close(struct mail_import *imp, int ok)
{
	int rc = ok && imp->failed == 0 ? 0 : 1;

	mail_import_abort(imp);
	if (imp->mail.acct != NULL)
		import_progress(imp, 1);
	if (imp->mail.acct == NULL) {
		/* Never opened: the error is printed already. */
	} else if (imp->cli->json && imp->errors != NULL) {
		cli_dir_print_json(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:o, s:o}",
		    "account", imp->mail.account.address != NULL ?
		    imp->mail.account.address : "", "format", imp->format,
		    "source", imp->source, "imported", (json_int_t)imp->imported,
		    "bytes", (json_int_t)imp->bytes, "already_imported",
		    (json_int_t)imp->already, "failed", (json_int_t)imp->failed,
		    "complete", ok, "mailboxes_created", imp->mailboxes,
		    "errors", imp->errors));
		imp->errors = imp->mailboxes = NULL;
	} else {
		printf("%" PRIu64 " messages imported (%" PRIu64 " bytes), %" PRIu64
		    " already imported, %" PRIu64 " failed%s\n", imp->imported, imp->bytes,
		    imp->already, imp->failed, ok ? "" : "; import incomplete");
	}
	if (imp->errors != NULL)
		json_decref(imp->errors);
	if (imp->mailboxes != NULL)
		json_decref(imp->mailboxes);
	if (imp->sha != NULL)
		EVP_MD_CTX_free(imp->sha);
	if (imp->journal_fd >= 0)
		close(imp->journal_fd);
	free(imp->journal_path);
	free(imp->mbox_name);
	free(imp->done.slots);
	buf_free(&imp->write_error);
	/* An import finishes its work: the search text it added is indexed
	 * now, not during the daemon's first logins (other commands leave
	 * what is pending to the daemon: a crashed delivery burst can take
	 * a while to index). */
	if (imp->mail.store != NULL)
		store_flush(imp->mail.store);
	cli_mail_close(&imp->mail);
	return rc;
}
