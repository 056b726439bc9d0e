/*
 * Mailbox names between the client and the store, and the commands that act
 * on a mailbox by name: CREATE (with CREATE-SPECIAL-USE's USE), DELETE,
 * RENAME, SUBSCRIBE, UNSUBSCRIBE and STATUS.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"
#include "proto/imap/imap_utf7.h"

/* Store rules (store.h) plus IMAP's: no wildcards in a name. */
static int
imap_mailbox_valid(const char *name)
{
	const char *p, *comp = name;
	size_t depth = 1;

	if (*name == '\0' || *name == '/' || strlen(name) > STORE_MAILBOX_NAME_MAX)
		return 0;
	for (p = name;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t len = (size_t)(p - comp);

			if (len == 0 || (len == 1 && comp[0] == '.') ||
			    (len == 2 && comp[0] == '.' && comp[1] == '.'))
				return 0;
			if (*p == '\0')
				break;
			if (++depth > STORE_MAILBOX_DEPTH_MAX)
				return 0;
			comp = p + 1;
			continue;
		}
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '%' || *p == '*')
			return 0;
	}
	return 1;
}

int
imap_mailbox_arg(struct imap_session *s, const struct imap_arg *arg, char **name_r,
    const char **error_r)
{
	struct buf name = BUF_INIT;

	if (!imap_arg_astring(arg, STORE_MAILBOX_NAME_MAX * 4)) {
		*error_r = "BAD Invalid mailbox name";
		return -1;
	}
	if (imap_utf8_mode(s)) {
		if (!imap_utf8_valid(arg->str, arg->len)) {
			*error_r = "NO [CANNOT] Mailbox name is not valid UTF-8";
			return -1;
		}
		buf_append(&name, arg->str, arg->len);
	} else if (imap_utf7_decode(arg->str, &name) < 0) {
		buf_free(&name);
		*error_r = "NO [CANNOT] Invalid modified UTF-7 in mailbox name";
		return -1;
	}
	/* INBOX is case-insensitive, and so is it as a parent. */
	if (name.len >= 5 && strncasecmp(buf_cstr(&name), "INBOX", 5) == 0 &&
	    (name.len == 5 || name.data[5] == '/'))
		memcpy(name.data, "INBOX", 5);
	if (!imap_mailbox_valid(buf_cstr(&name))) {
		buf_free(&name);
		*error_r = "NO [CANNOT] Invalid mailbox name";
		return -1;
	}
	*name_r = buf_steal(&name);
	return 0;
}

void
imap_mailbox_write(struct imap_session *s, struct buf *out, const char *name)
{
	struct buf enc = BUF_INIT;

	if (imap_utf8_mode(s)) {
		imap_write_string(out, name, strlen(name));
		return;
	}
	if (imap_utf7_encode(name, &enc) < 0) {
		/* Not UTF-8: the store should never hold such a name. */
		buf_reset(&enc);
		buf_puts(&enc, name);
	}
	imap_write_string(out, buf_cstr(&enc), enc.len);
	buf_free(&enc);
}

void
imap_finish_mailbox_error(struct imap_session *s, const char *error)
{
	if (strncmp(error, "BAD ", 4) == 0)
		imap_finish_bad(s, error + 4);
	else
		imap_finish(s, "%s", error);
}

/* --- one job for the commands by name -------------------------------------- */

enum imap_mbox_op {
	IMAP_MBOX_CREATE,
	IMAP_MBOX_DELETE,
	IMAP_MBOX_RENAME,
	IMAP_MBOX_SUBSCRIBE,
	IMAP_MBOX_UNSUBSCRIBE,
	IMAP_MBOX_STATUS,
};

struct imap_mbox_job {
	enum imap_mbox_op op;
	struct store_account *acct;
	char *name, *name2;
	unsigned special_use;
	unsigned items;
	struct store_mailbox mbox;
	int found;
	int64_t created_id;             /* CREATE: the new mailbox */
	struct imap_result res;
	const char *cmd;
};

static void
imap_mbox_work(void *arg)
{
	struct imap_mbox_job *j = arg;
	const char *error = NULL;
	int64_t id;
	int r = 0;

	switch (j->op) {
	case IMAP_MBOX_CREATE:
		r = store_mailbox_create(j->acct, j->name, j->special_use, &id, &error);
		if (r == 0)
			j->created_id = id;
		break;
	case IMAP_MBOX_DELETE:
		r = store_mailbox_delete(j->acct, j->name, &error);
		break;
	case IMAP_MBOX_RENAME:
		r = store_mailbox_rename(j->acct, j->name, j->name2, &error);
		break;
	case IMAP_MBOX_SUBSCRIBE:
	case IMAP_MBOX_UNSUBSCRIBE:
		r = store_mailbox_subscribe(j->acct, j->name, j->op == IMAP_MBOX_SUBSCRIBE,
		    &error);
		break;
	case IMAP_MBOX_STATUS:
		r = store_mailbox_get(j->acct, j->name, &j->mbox, &error);
		j->found = r > 0;
		break;
	}
	if (r < 0)
		imap_result_fail(&j->res, error);
}

static void
imap_mbox_job_free(struct imap_mbox_job *j)
{
	if (j->found)
		store_mailbox_clear(&j->mbox);
	imap_result_clear(&j->res);
	free(j->name);
	free(j->name2);
	free(j);
}

static void
imap_mbox_done(struct imap_session *s, void *arg)
{
	struct imap_mbox_job *j = arg;
	struct buf out = BUF_INIT;

	if (s == NULL) {
		imap_mbox_job_free(j);
		return;
	}
	if (j->res.failed) {
		if (j->op == IMAP_MBOX_DELETE && j->res.code == STORE_ERR_CONFLICT)
			imap_finish(s, "NO [%s] %s", strcmp(j->name, "INBOX") == 0 ?
			    "CANNOT" : "HASCHILDREN", j->res.error);
		else if (j->op == IMAP_MBOX_STATUS && j->res.code == STORE_ERR_NOT_FOUND)
			imap_finish(s, "NO [NONEXISTENT] No such mailbox");
		else
			imap_finish_result(s, &j->res);
		imap_mbox_job_free(j);
		return;
	}
	switch (j->op) {
	case IMAP_MBOX_DELETE:
		/* Our own selected mailbox: leave it (RFC 9051 6.3.4 lets a
		 * server do so); other sessions get BYE (imap_view.c). */
		if (s->view != NULL && strcmp(s->view->name, j->name) == 0) {
			if (s->view->watch != NULL)
				store_watch_remove(&s->view->watch);
			imap_view_free(&s->view);
			s->state = IMAP_STATE_AUTH;
			net_conn_puts(s->conn, "* OK [CLOSED] Selected mailbox deleted\r\n");
		}
		break;
	case IMAP_MBOX_RENAME:
		if (s->view != NULL && strcmp(s->view->name, j->name) == 0) {
			free(s->view->name);
			s->view->name = xstrdup(j->name2);
		}
		break;
	case IMAP_MBOX_STATUS:
		if (!j->found) {
			imap_finish(s, "NO [NONEXISTENT] No such mailbox");
			imap_mbox_job_free(j);
			return;
		}
		imap_status_write(s, &out, &j->mbox, j->items);
		net_conn_write(s->conn, out.data, out.len);
		buf_free(&out);
		break;
	case IMAP_MBOX_CREATE:
		/* OBJECTID (RFC 8474 4.1). */
		if (j->created_id > 0) {
			imap_finish(s, "OK [MAILBOXID (F%lld)] CREATE completed",
			    (long long)j->created_id);
			imap_mbox_job_free(j);
			return;
		}
		break;
	default:
		break;
	}
	imap_finish(s, "OK %s completed", j->cmd);
	imap_mbox_job_free(j);
}

static struct imap_mbox_job *
imap_mbox_job_new(struct imap_session *s, const struct imap_cmd *cmd, enum imap_mbox_op op)
{
	struct imap_mbox_job *j = xcalloc(1, sizeof(*j));

	j->op = op;
	j->acct = s->acct;
	j->cmd = op == IMAP_MBOX_CREATE ? "CREATE" : op == IMAP_MBOX_DELETE ? "DELETE" :
	    op == IMAP_MBOX_RENAME ? "RENAME" : op == IMAP_MBOX_SUBSCRIBE ? "SUBSCRIBE" :
	    op == IMAP_MBOX_UNSUBSCRIBE ? "UNSUBSCRIBE" : "STATUS";
	return j;
}

/* CREATE-SPECIAL-USE (RFC 6154): "(USE (\Sent ...))". */
static int
imap_create_params(const struct imap_arg *list, unsigned *special_r)
{
	static const struct {
		const char *name;
		unsigned flag;
	} uses[] = {
		{ "\\Sent", STORE_SPECIAL_SENT }, { "\\Drafts", STORE_SPECIAL_DRAFTS },
		{ "\\Trash", STORE_SPECIAL_TRASH }, { "\\Junk", STORE_SPECIAL_JUNK },
		{ "\\Archive", STORE_SPECIAL_ARCHIVE }, { "\\All", STORE_SPECIAL_ALL },
		{ "\\Flagged", STORE_SPECIAL_FLAGGED },
	};
	const struct imap_arg *a, *u;
	size_t i;

	for (a = list->list; a != NULL; a = a->next->next) {
		if (a->type != IMAP_ARG_ATOM || strcasecmp(a->str, "USE") != 0 ||
		    a->next == NULL || a->next->type != IMAP_ARG_LIST)
			return -1;
		for (u = a->next->list; u != NULL; u = u->next) {
			for (i = 0; i < sizeof(uses) / sizeof(uses[0]); i++) {
				if (u->type == IMAP_ARG_ATOM && strcasecmp(u->str, uses[i].name) == 0)
					break;
			}
			if (i == sizeof(uses) / sizeof(uses[0]))
				return -2;
			*special_r |= uses[i].flag;
		}
	}
	return 0;
}

void
imap_cmd_create(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_mbox_job *j;
	struct imap_arg name;
	const char *error;
	char *copy = NULL;
	unsigned special = 0;
	int r;

	if (cmd->nargs < 1 || cmd->nargs > 2 ||
	    (cmd->nargs == 2 && cmd->args->next->type != IMAP_ARG_LIST)) {
		imap_finish_bad(s, "Syntax: CREATE mailbox [(USE (...))]");
		return;
	}
	if (cmd->nargs == 2 && (r = imap_create_params(cmd->args->next, &special)) < 0) {
		if (r == -2)
			imap_finish(s, "NO [USEATTR] Unsupported special-use attribute");
		else
			imap_finish_bad(s, "Invalid CREATE parameters");
		return;
	}
	/* "CREATE foo/" creates foo (RFC 9051 6.3.4). */
	name = *cmd->args;
	if (name.len > 1 && name.str[name.len - 1] == '/') {
		copy = xstrndup(name.str, name.len - 1);
		name.str = copy;
		name.len--;
	}
	j = imap_mbox_job_new(s, cmd, IMAP_MBOX_CREATE);
	r = imap_mailbox_arg(s, &name, &j->name, &error);
	free(copy);
	if (r < 0) {
		imap_mbox_job_free(j);
		imap_finish_mailbox_error(s, error);
		return;
	}
	if (strcmp(j->name, "INBOX") == 0) {
		imap_mbox_job_free(j);
		imap_finish(s, "NO [ALREADYEXISTS] INBOX always exists");
		return;
	}
	j->special_use = special;
	imap_submit(s, imap_mbox_work, imap_mbox_done, j);
}

/* DELETE, SUBSCRIBE, UNSUBSCRIBE: one mailbox argument. */
static void
imap_cmd_by_name(struct imap_session *s, const struct imap_cmd *cmd, enum imap_mbox_op op)
{
	struct imap_mbox_job *j;
	const char *error;

	if (cmd->nargs != 1) {
		imap_finish_bad(s, "Syntax: command mailbox");
		return;
	}
	j = imap_mbox_job_new(s, cmd, op);
	if (imap_mailbox_arg(s, cmd->args, &j->name, &error) < 0) {
		imap_mbox_job_free(j);
		imap_finish_mailbox_error(s, error);
		return;
	}
	if (op == IMAP_MBOX_DELETE && strcmp(j->name, "INBOX") == 0) {
		imap_mbox_job_free(j);
		imap_finish(s, "NO [CANNOT] INBOX cannot be deleted");
		return;
	}
	imap_submit(s, imap_mbox_work, imap_mbox_done, j);
}

void
imap_cmd_delete(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_cmd_by_name(s, cmd, IMAP_MBOX_DELETE);
}

void
imap_cmd_subscribe(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_cmd_by_name(s, cmd, IMAP_MBOX_SUBSCRIBE);
}

void
imap_cmd_unsubscribe(struct imap_session *s, const struct imap_cmd *cmd)
{
	imap_cmd_by_name(s, cmd, IMAP_MBOX_UNSUBSCRIBE);
}

void
imap_cmd_rename(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_mbox_job *j;
	const char *error;

	if (cmd->nargs != 2) {
		imap_finish_bad(s, "Syntax: RENAME from to");
		return;
	}
	j = imap_mbox_job_new(s, cmd, IMAP_MBOX_RENAME);
	if (imap_mailbox_arg(s, cmd->args, &j->name, &error) < 0 ||
	    imap_mailbox_arg(s, cmd->args->next, &j->name2, &error) < 0) {
		imap_mbox_job_free(j);
		imap_finish_mailbox_error(s, error);
		return;
	}
	if (strcmp(j->name2, "INBOX") == 0) {
		imap_mbox_job_free(j);
		imap_finish(s, "NO [ALREADYEXISTS] INBOX always exists");
		return;
	}
	imap_submit(s, imap_mbox_work, imap_mbox_done, j);
}

/* --- STATUS -------------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned item;
} imap_status_names[] = {
	{ "MESSAGES", IMAP_STATUS_MESSAGES },
	{ "RECENT", IMAP_STATUS_RECENT },
	{ "UIDNEXT", IMAP_STATUS_UIDNEXT },
	{ "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY },
	{ "UNSEEN", IMAP_STATUS_UNSEEN },
	{ "DELETED", IMAP_STATUS_DELETED },
	{ "SIZE", IMAP_STATUS_SIZE },
	{ "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
	{ "MAILBOXID", IMAP_STATUS_MAILBOXID },
};

int
imap_status_items(const struct imap_arg *list, unsigned *items_r)
{
	const struct imap_arg *a;
	unsigned items = 0;
	size_t i;

	if (list == NULL || list->type != IMAP_ARG_LIST || list->count == 0)
		return -1;
	for (a = list->list; a != NULL; a = a->next) {
		for (i = 0; i < sizeof(imap_status_names) / sizeof(imap_status_names[0]); i++) {
			if (a->type == IMAP_ARG_ATOM &&
			    strcasecmp(a->str, imap_status_names[i].name) == 0)
				break;
		}
		if (i == sizeof(imap_status_names) / sizeof(imap_status_names[0]))
			return -1;
		items |= imap_status_names[i].item;
	}
	*items_r = items;
	return 0;
}

void
imap_status_write(struct imap_session *s, struct buf *out, const struct store_mailbox *m,
    unsigned items)
{
	const char *sep = "";

	buf_puts(out, "* STATUS ");
	imap_mailbox_write(s, out, m->name);
	buf_puts(out, " (");
	if (items & IMAP_STATUS_MESSAGES) {
		buf_printf(out, "%sMESSAGES %u", sep, m->messages);
		sep = " ";
	}
	if ((items & IMAP_STATUS_RECENT) && !imap_rev2(s)) {
		buf_printf(out, "%sRECENT 0", sep);
		sep = " ";
	}
	if (items & IMAP_STATUS_UIDNEXT) {
		buf_printf(out, "%sUIDNEXT %u", sep, m->uidnext);
		sep = " ";
	}
	if (items & IMAP_STATUS_UIDVALIDITY) {
		buf_printf(out, "%sUIDVALIDITY %u", sep, m->uidvalidity);
		sep = " ";
	}
	if (items & IMAP_STATUS_UNSEEN) {
		buf_printf(out, "%sUNSEEN %u", sep, m->unseen);
		sep = " ";
	}
	if (items & IMAP_STATUS_DELETED) {
		buf_printf(out, "%sDELETED %u", sep, m->deleted);
		sep = " ";
	}
	if (items & IMAP_STATUS_SIZE) {
		buf_printf(out, "%sSIZE %llu", sep, (unsigned long long)m->size);
		sep = " ";
	}
	if (items & IMAP_STATUS_HIGHESTMODSEQ) {
		buf_printf(out, "%sHIGHESTMODSEQ %llu", sep,
		    (unsigned long long)m->highestmodseq);
		sep = " ";
	}
	if (items & IMAP_STATUS_MAILBOXID)
		buf_printf(out, "%sMAILBOXID (F%lld)", sep, (long long)m->id);
	buf_puts(out, ")\r\n");
}

void
imap_cmd_status(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct imap_mbox_job *j;
	const char *error;
	unsigned items;

	if (cmd->nargs != 2 || imap_status_items(cmd->args->next, &items) < 0) {
		imap_finish_bad(s, "Syntax: STATUS mailbox (items)");
		return;
	}
	if (items & IMAP_STATUS_HIGHESTMODSEQ)
		s->enabled |= IMAP_ENABLED_CONDSTORE;
	j = imap_mbox_job_new(s, cmd, IMAP_MBOX_STATUS);
	j->items = items;
	if (imap_mailbox_arg(s, cmd->args, &j->name, &error) < 0) {
		imap_mbox_job_free(j);
		imap_finish_mailbox_error(s, error);
		return;
	}
	imap_submit(s, imap_mbox_work, imap_mbox_done, j);
}
