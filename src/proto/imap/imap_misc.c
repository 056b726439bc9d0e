/*
 * The small commands: CAPABILITY, NOOP and CHECK, LOGOUT, ID (RFC 2971),
 * ENABLE (RFC 5161) and NAMESPACE (RFC 2342).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/xmalloc.h"
#include "proto/imap/imap_private.h"

void
imap_cmd_capability(struct imap_session *s, const struct imap_cmd *cmd)
{
	struct buf caps = BUF_INIT;

	if (cmd->nargs != 0) {
		imap_finish_bad(s, "Syntax: CAPABILITY");
		return;
	}
	imap_capability(s, &caps);
	net_conn_printf(s->conn, "* CAPABILITY %s\r\n", buf_cstr(&caps));
	buf_free(&caps);
	imap_finish(s, "OK CAPABILITY completed");
}

/* NOOP and CHECK: both ask the store what changed. */
void
imap_cmd_noop(struct imap_session *s, const struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_finish_bad(s, "Syntax: NOOP");
		return;
	}
	s->cmd_flags |= IMAP_SYNC_FORCE;
	imap_finish(s, "OK %s completed", cmd->name);
}

void
imap_cmd_logout(struct imap_session *s, const struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_finish_bad(s, "Syntax: LOGOUT");
		return;
	}
	net_conn_puts(s->conn, "* BYE Logging out\r\n");
	net_conn_printf(s->conn, "%s OK LOGOUT completed\r\n", s->tag);
	xfree(&s->tag);
	net_conn_close(s->conn);
	s->closing = 1;
}

/* RFC 2971: checks the client's list, logs who it is, says who we are. */
void
imap_cmd_id(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *list = cmd->args, *key, *val;
	const char *name = NULL, *version = NULL;
	char qname[64], qversion[64];

	if (cmd->nargs != 1 || (!imap_arg_is_nil(list) && list->type != IMAP_ARG_LIST)) {
		imap_finish_bad(s, "Syntax: ID (field value ...) or ID NIL");
		return;
	}
	if (list->type == IMAP_ARG_LIST) {
		if (list->count % 2 != 0 || list->count / 2 > IMAP_ID_PAIRS_MAX) {
			imap_finish_bad(s, "Invalid ID list");
			return;
		}
		for (key = list->list; key != NULL; key = val->next) {
			val = key->next;
			if (!imap_arg_is_astring(key) || imap_arg_is_nil(key) ||
			    key->len > IMAP_ID_STRING_MAX ||
			    (!imap_arg_is_string(val) && !imap_arg_is_nil(val)) ||
			    val->len > IMAP_ID_STRING_MAX) {
				imap_finish_bad(s, "Invalid ID list");
				return;
			}
			if (imap_arg_is_nil(val))
				continue;
			if (strcasecmp(key->str, "name") == 0)
				name = val->str;
			else if (strcasecmp(key->str, "version") == 0)
				version = val->str;
		}
	}
	if (name != NULL || version != NULL)
		log_info(net_conn_id(s->conn), "event=id name=%s version=%s",
		    log_quote(qname, sizeof(qname), name != NULL ? name : "", 60),
		    log_quote(qversion, sizeof(qversion), version != NULL ? version : "", 60));
	net_conn_puts(s->conn, "* ID (\"name\" \"Petrel\")\r\n");
	imap_finish(s, "OK ID completed");
}

/* The extensions ENABLE knows, and what they turn on. */
static const struct {
	const char *name;
	unsigned flag;
} imap_enables[] = {
	{ "CONDSTORE", IMAP_ENABLED_CONDSTORE },
	/* RFC 7162 3.2.3: QRESYNC turns CONDSTORE on too. */
	{ "QRESYNC", IMAP_ENABLED_QRESYNC | IMAP_ENABLED_CONDSTORE },
	{ "UTF8=ACCEPT", IMAP_ENABLED_UTF8 },
	{ "IMAP4rev2", IMAP_ENABLED_REV2 },
};

/* 1 when the capability is announced to this session. */
static int
imap_announced(struct imap_session *s, const char *name)
{
	struct buf caps = BUF_INIT;
	const char *p, *end;
	size_t len = strlen(name);
	int found = 0;

	imap_capability(s, &caps);
	for (p = buf_cstr(&caps); *p != '\0' && !found; p = end) {
		while (*p == ' ')
			p++;
		end = p + strcspn(p, " ");
		found = (size_t)(end - p) == len && strncasecmp(p, name, len) == 0;
	}
	buf_free(&caps);
	return found;
}

void
imap_cmd_enable(struct imap_session *s, const struct imap_cmd *cmd)
{
	const struct imap_arg *a;
	struct buf out = BUF_INIT;
	size_t i;

	if (cmd->nargs == 0) {
		imap_finish_bad(s, "Syntax: ENABLE capability ...");
		return;
	}
	for (a = cmd->args; a != NULL; a = a->next) {
		if (a->type != IMAP_ARG_ATOM) {
			imap_finish_bad(s, "Syntax: ENABLE capability ...");
			buf_free(&out);
			return;
		}
	}
	for (a = cmd->args; a != NULL; a = a->next) {
		for (i = 0; i < sizeof(imap_enables) / sizeof(imap_enables[0]); i++) {
			if (strcasecmp(a->str, imap_enables[i].name) != 0 ||
			    !imap_announced(s, imap_enables[i].name))
				continue;
			if ((s->enabled & imap_enables[i].flag) != imap_enables[i].flag)
				buf_printf(&out, " %s", imap_enables[i].name);
			s->enabled |= imap_enables[i].flag;
		}
	}
	net_conn_printf(s->conn, "* ENABLED%s\r\n", buf_cstr(&out));
	buf_free(&out);
	imap_finish(s, "OK ENABLE completed");
}

void
imap_cmd_namespace(struct imap_session *s, const struct imap_cmd *cmd)
{
	if (cmd->nargs != 0) {
		imap_finish_bad(s, "Syntax: NAMESPACE");
		return;
	}
	net_conn_puts(s->conn, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
	imap_finish(s, "OK NAMESPACE completed");
}
