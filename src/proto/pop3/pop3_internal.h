/*
 * What the POP3 session's files share: the session, replies, and the
 * TRANSACTION-state commands (pop3_transaction.c) that the command table
 * in pop3_session.c points to.
 */
#ifndef PETREL_PROTO_POP3_INTERNAL_H
#define PETREL_PROTO_POP3_INTERNAL_H

#include <stdint.h>

#include "core/config.h"

struct auth_request;
struct net_conn;
struct pop3_job;
struct pop3_maildrop;
struct pop3_retr;
struct proto_context;

enum pop3_state {
	POP3_AUTHORIZATION,
	POP3_SASL,              /* AUTH: reading response lines */
	POP3_WAITING,           /* the auth service or the maildrop is opening */
	POP3_TRANSACTION,
};

struct pop3_session {
	struct net_conn *conn;
	struct proto_context *ctx;
	const struct config *cfg;
	enum pop3_state state;
	char *user_name;                /* from USER, waiting for PASS */
	char *user;                     /* after login */
	int64_t account_id;
	struct auth_request *auth;
	struct pop3_maildrop *md;       /* TRANSACTION state */
	struct pop3_job *job;           /* store work in flight */
	struct pop3_retr *retr;         /* RETR or TOP under way */
	struct pop3_retr *ahead;        /* the next messages, read ahead */
	unsigned ahead_changes;         /* md->changes when they were read */
	int auth_failures;
	int errors;
	unsigned closing : 1;           /* said goodbye: read nothing more */
	unsigned tls_starting : 1;      /* STLS accepted, handshake to come */
	unsigned stopping : 1;          /* server shutdown: close when idle */
	unsigned busy : 1;              /* a command is running: input paused */
};

void pop3_reply(struct pop3_session *s, const char *line);
/* A reply to a bad command; too many of them and the session hangs up. */
void pop3_error(struct pop3_session *s, const char *line);
/* Says line and closes. */
void pop3_close(struct pop3_session *s, const char *line);
/* A command that made the session busy is over: read the next one (or
 * close, when the server is stopping). */
void pop3_command_done(struct pop3_session *s);
/* The end of an AUTHORIZATION-state exchange: back to reading commands
 * unless the session must end. */
void pop3_authorization_next(struct pop3_session *s);

/* pop3_transaction.c */

/* After a successful authentication (s->user and s->account_id set):
 * opens the maildrop on the worker pool and answers the login. */
void pop3_transaction_begin(struct pop3_session *s);
/* NET_EV_DRAINED: RETR's next chunk. */
void pop3_transaction_drained(struct pop3_session *s);
/* The idle timeout struck: 1 when a message is being sent (no reply can
 * be written in the middle of it). */
int pop3_transaction_streaming(const struct pop3_session *s);
/* The session is closing: lets go of the maildrop without changing it
 * (a dropped connection deletes nothing). */
void pop3_transaction_end(struct pop3_session *s);

void pop3_cmd_stat(struct pop3_session *s, char *args);
void pop3_cmd_list(struct pop3_session *s, char *args);
void pop3_cmd_uidl(struct pop3_session *s, char *args);
void pop3_cmd_retr(struct pop3_session *s, char *args);
void pop3_cmd_top(struct pop3_session *s, char *args);
void pop3_cmd_dele(struct pop3_session *s, char *args);
void pop3_cmd_rset(struct pop3_session *s, char *args);
/* QUIT in the TRANSACTION state: the UPDATE state. */
void pop3_cmd_update(struct pop3_session *s);

#endif
