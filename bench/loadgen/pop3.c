/* POP3 download sessions: USER/PASS, STAT, LIST, RETR of up to retr_max
 * messages, QUIT (nothing deleted, so every session sees the same maildrop).
 * The delete scenario sends DELE after each RETR (every message, whatever
 * retr_max says); its QUIT commits the deletions.
 * Every reply must be +OK; multi-line replies are read to the final ".". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loadgen.h"

#define MAX_LINE (1u << 20)

static int
reply(struct client *cl, struct conn *c, enum op op, char **line)
{
	long len = conn_readline(c, line, MAX_LINE);
	if (len < 0) {
		fail(cl, op, "%s", c->err);
		return -1;
	}
	if (strncmp(*line, "+OK", 3) != 0) {
		fail(cl, op, "%.200s", *line);
		return -1;
	}
	return 0;
}

/* The rest of a multi-line reply, up to the line ".". */
static int
multiline(struct client *cl, struct conn *c, enum op op, long *lines)
{
	*lines = 0;
	for (;;) {
		char *line;
		long len = conn_readline(c, &line, MAX_LINE);
		if (len < 0) {
			fail(cl, op, "%s", c->err);
			return -1;
		}
		if (len == 1 && line[0] == '.')
			return 0;
		(*lines)++;
	}
}

static int
cmd(struct client *cl, struct conn *c, enum op op, int multi, char **line,
    const char *text)
{
	if (conn_write(c, text, strlen(text)) < 0) {
		fail(cl, op, "%s", c->err);
		return -1;
	}
	if (reply(cl, c, op, line) < 0)
		return -1;
	if (multi) {
		long n;
		return multiline(cl, c, op, &n);
	}
	return 0;
}

void
pop3_download(struct client *cl)
{
	const struct opts *o = cl->o;
	char user[128];
	int dele = strcmp(o->scenario, "delete") == 0;
	user_name(cl, user, sizeof user);
	while (!past_deadline() && !cl->failed &&
	    (o->max_sessions == 0 || (long)cl->sessions < o->max_sessions)) {
		struct conn c;
		char *line;
		int ok = 0;
		double t0 = now_s();
		if (conn_open(&c, o->host, o->port, o->tls, cl->ctx, o->timeout) < 0) {
			fail(cl, OP_CONNECT, "%s", c.err);
			break;
		}
		do {
			if (reply(cl, &c, OP_CONNECT, &line) < 0)
				break;
			record(cl, OP_CONNECT, t0);
			t0 = now_s();
			char text[256];
			snprintf(text, sizeof text, "USER %s\r\n", user);
			if (cmd(cl, &c, OP_LOGIN, 0, &line, text) < 0)
				break;
			snprintf(text, sizeof text, "PASS %s\r\n", o->password);
			if (cmd(cl, &c, OP_LOGIN, 0, &line, text) < 0)
				break;
			record(cl, OP_LOGIN, t0);
			t0 = now_s();
			if (cmd(cl, &c, OP_STAT, 0, &line, "STAT\r\n") < 0)
				break;
			long count = strtol(line + 3, NULL, 10);
			record(cl, OP_STAT, t0);
			if (count <= 0) {
				fail(cl, OP_STAT, "maildrop is empty (%s): data not loaded", line);
				break;
			}
			t0 = now_s();
			if (cmd(cl, &c, OP_LIST, 1, &line, "LIST\r\n") < 0)
				break;
			record(cl, OP_LIST, t0);
			long n = dele || count < o->retr_max ? count : o->retr_max;
			long i;
			for (i = 1; i <= n; i++) {
				snprintf(text, sizeof text, "RETR %ld\r\n", i);
				t0 = now_s();
				if (cmd(cl, &c, OP_RETR, 1, &line, text) < 0)
					break;
				record(cl, OP_RETR, t0);
				if (!dele)
					continue;
				snprintf(text, sizeof text, "DELE %ld\r\n", i);
				t0 = now_s();
				if (cmd(cl, &c, OP_DELE, 0, &line, text) < 0)
					break;
				record(cl, OP_DELE, t0);
			}
			if (i <= n)
				break;
			t0 = now_s();
			if (cmd(cl, &c, OP_QUIT, 0, &line, "QUIT\r\n") < 0)
				break;
			record(cl, OP_QUIT, t0);
			ok = 1;
		} while (0);
		cl->bytes_in += c.bytes_in;
		cl->bytes_out += c.bytes_out;
		conn_close(&c);
		if (!ok)
			break;
		cl->sessions++;
	}
}
