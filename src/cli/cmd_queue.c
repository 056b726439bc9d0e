/*
 * petrel queue list [--json] | show ID | flush [ID] | hold ID | release ID |
 * delete ID | bounce ID: the outbound queue.
 *
 * list and show read the spool. The others are requests for the daemon
 * (queue_request_post): the running daemon (DATA/petrel.pid) is signalled
 * with SIGUSR1 and the command waits until it has taken the request. When
 * no daemon runs, hold, release and delete change the spool directly, and
 * flush and bounce wait for the next start.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/xmalloc.h"
#include "queue/queue.h"

#define QUEUE_CLI_WAIT_MS 15000

static const char *const state_names[] = { "pending", "delivered", "failed", "deferred" };

static int
open_queue(struct cli *cli, struct queue **q_r)
{
	char *error = NULL;

	if (cli_load_config(cli) < 0)
		return -1;
	if (cli_drop_privileges(&cli->cfg, &error) < 0 ||
	    queue_open(cli->cfg.data_dir, q_r, &error) < 0) {
		cli_error("%s", error);
		free(error);
		return -1;
	}
	return 0;
}

static json_t *
envelope_json(const struct queue_envelope *env)
{
	json_t *rcpts = json_array();
	size_t i;

	for (i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		json_t *o = json_pack("{s:s, s:s, s:i, s:I}", "address", r->address,
		    "state", state_names[r->state], "attempts", (int)r->attempts,
		    "next_attempt", (json_int_t)r->next_attempt);

		if (r->last_reply != NULL)
			json_object_set_new(o, "last_reply", json_string(r->last_reply));
		if (r->remote_mta != NULL)
			json_object_set_new(o, "remote_mta", json_string(r->remote_mta));
		if (r->orcpt != NULL)
			json_object_set_new(o, "orcpt", json_string(r->orcpt));
		json_array_append_new(rcpts, o);
	}
	return json_pack("{s:s, s:s, s:I, s:I, s:b, s:b, s:o}", "id", env->id,
	    "sender", env->sender, "arrival", (json_int_t)env->arrival,
	    "size", (json_int_t)env->size, "hold", env->hold, "requiretls", env->requiretls,
	    "recipients", rcpts);
}

static void
print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(v);
}

static void
print_envelope(const struct queue_envelope *env, int detail)
{
	char when[32];
	time_t t = (time_t)env->arrival;
	struct tm tm;
	size_t i;

	localtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s %8" PRIu64 " %s <%s>%s\n", env->id, env->size, when, env->sender,
	    env->hold ? " (held)" : "");
	for (i = 0; i < env->nrcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];

		printf("    <%s> %s", r->address, state_names[r->state]);
		if (r->attempts > 0)
			printf(" attempts=%u", r->attempts);
		if (r->state == QUEUE_RCPT_DEFERRED && r->next_attempt > 0)
			printf(" next in %llds", (long long)(r->next_attempt - (int64_t)time(NULL)));
		if (r->last_reply != NULL && (detail || r->state != QUEUE_RCPT_DELIVERED))
			printf("\n        %s%s%s", r->remote_mta != NULL ? r->remote_mta : "",
			    r->remote_mta != NULL ? ": " : "", r->last_reply);
		printf("\n");
	}
}

static int
queue_list_cmd(struct cli *cli, struct queue *q)
{
	struct queue_envelope *list = NULL;
	const char *error;
	size_t n, i;

	if (queue_list(q, &list, &n, &error) < 0) {
		cli_error("%s", error);
		return 1;
	}
	if (cli->json) {
		json_t *arr = json_array();

		for (i = 0; i < n; i++)
			json_array_append_new(arr, envelope_json(&list[i]));
		print_json(arr);
	} else {
		for (i = 0; i < n; i++)
			print_envelope(&list[i], 0);
		if (n == 0)
			printf("queue empty\n");
	}
	queue_envelopes_free(&list, n);
	return 0;
}

static int
queue_show_cmd(struct cli *cli, struct queue *q, const char *id)
{
	struct queue_envelope env;
	const char *error;
	char buf[65536];
	ssize_t n;
	int r, fd;

	r = queue_get(q, id, &env, &error);
	if (r <= 0) {
		cli_error("%s", r < 0 ? error : "no such queued message");
		return 1;
	}
	if (cli->json) {
		print_json(envelope_json(&env));
		queue_envelope_clear(&env);
		return 0;
	}
	print_envelope(&env, 1);
	queue_envelope_clear(&env);
	if ((fd = queue_message_open(q, id, &error)) < 0)
		return 0;
	printf("\n");
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			break;
	close(fd);
	return 0;
}

/* The running daemon's pid, or 0. */
static pid_t
daemon_pid(const struct config *cfg)
{
	char *path = xasprintf("%s/petrel.pid", cfg->data_dir);
	FILE *fp = fopen(path, "r");
	int pid = 0;

	free(path);
	if (fp == NULL)
		return 0;
	if (fscanf(fp, "%d", &pid) != 1)
		pid = 0;
	fclose(fp);
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return 0;
	return pid;
}

/* Without a daemon: hold, release and delete act on the spool. */
static int
apply_offline(struct queue *q, const char *verb, const char *id)
{
	struct queue_envelope env;
	const char *error;
	int r;

	if (strcmp(verb, "delete") == 0)
		return queue_remove(q, id, &error) < 0 ? -1 : 0;
	r = queue_get(q, id, &env, &error);
	if (r <= 0)
		return -1;
	env.hold = strcmp(verb, "hold") == 0;
	r = queue_update(q, &env, &error);
	queue_envelope_clear(&env);
	return r;
}

static int
queue_request_cmd(struct cli *cli, struct queue *q, const char *verb, const char *id)
{
	struct queue_envelope env;
	const char *error;
	char name[64];
	pid_t pid;
	int waited, r;

	if (id[0] != '\0') {
		r = queue_get(q, id, &env, &error);
		if (r <= 0) {
			cli_error("%s: %s", id, r < 0 ? error : "no such queued message");
			return 1;
		}
		queue_envelope_clear(&env);
	}
	pid = daemon_pid(&cli->cfg);
	if (pid == 0 && (strcmp(verb, "hold") == 0 || strcmp(verb, "release") == 0 ||
	    strcmp(verb, "delete") == 0)) {
		if (apply_offline(q, verb, id) < 0) {
			cli_error("%s %s failed", verb, id);
			return 1;
		}
		printf("%s %s: done (no daemon running)\n", verb, id);
		return 0;
	}
	if (queue_request_post(q, verb, id, name, sizeof(name), &error) < 0) {
		cli_error("%s", error);
		return 1;
	}
	if (pid > 0 && kill(pid, SIGUSR1) == 0) {
		for (waited = 0; waited < QUEUE_CLI_WAIT_MS && queue_request_pending(q, name);
		    waited += 50)
			usleep(50 * 1000);
		if (queue_request_pending(q, name)) {
			cli_error("the daemon (pid %d) has not taken the request yet; it will",
			    (int)pid);
			return 1;
		}
		printf("%s %s: done\n", verb, id[0] != '\0' ? id : "all");
		return 0;
	}
	printf("%s %s: the daemon is not running; it will be done when it starts\n", verb,
	    id[0] != '\0' ? id : "all");
	return 0;
}

int
cmd_queue(struct cli *cli, int argc, char **argv)
{
	struct queue *q = NULL;
	const char *sub;
	int rc;

	if (argc < 2)
		return 2;
	sub = argv[1];
	if (!((strcmp(sub, "list") == 0 && argc == 2) ||
	    (strcmp(sub, "flush") == 0 && (argc == 2 || argc == 3)) ||
	    ((strcmp(sub, "show") == 0 || strcmp(sub, "hold") == 0 ||
	    strcmp(sub, "release") == 0 || strcmp(sub, "delete") == 0 ||
	    strcmp(sub, "bounce") == 0) && argc == 3)))
		return 2;
	if (open_queue(cli, &q) < 0)
		return 1;
	if (strcmp(sub, "list") == 0)
		rc = queue_list_cmd(cli, q);
	else if (strcmp(sub, "show") == 0)
		rc = queue_show_cmd(cli, q, argv[2]);
	else
		rc = queue_request_cmd(cli, q, sub, argc == 3 ? argv[2] : "");
	queue_close(&q);
	return rc;
}
