/*
 * petrel serve [--daemon]: the daemon.
 *
 * Order matters: bind the ports and read the keys as root, drop to the
 * configured user, then open the databases (so every file the daemon creates
 * belongs to that user) and start the I/O threads. The main thread then only
 * waits for signals: SIGHUP reloads, SIGTERM / SIGINT stop, SIGUSR1 makes
 * the queue runner take the requests of `petrel queue` (DATA/petrel.pid
 * says whom to signal).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "delivery/delivery.h"
#include "directory/directory.h"
#include "net/server.h"
#include "proto/proto.h"
#include "queue/queue.h"
#include "queue/queue_runner.h"
#include "store/store.h"

static void
auth_settings_from(const struct config *cfg, struct auth_settings *s)
{
	s->penalty_initial_ms = cfg->auth_penalty_initial_ms;
	s->penalty_max_ms = cfg->auth_penalty_max_ms;
	s->penalty_reset_ms = cfg->auth_penalty_reset_ms;
	s->cache_ttl_ms = cfg->auth_cache_ttl_ms;
}

/* auto: stderr when it leads somewhere (terminal, pipe, file), else syslog. */
static enum log_target
log_target_for(const struct config *cfg)
{
	struct stat st, null;

	if (cfg->log == CONFIG_LOG_STDERR)
		return LOG_TARGET_STDERR;
	if (cfg->log == CONFIG_LOG_SYSLOG)
		return LOG_TARGET_SYSLOG;
	if (fstat(STDERR_FILENO, &st) < 0)
		return LOG_TARGET_SYSLOG;
	if (S_ISCHR(st.st_mode) && stat("/dev/null", &null) == 0 && st.st_rdev == null.st_rdev)
		return LOG_TARGET_SYSLOG;
	return LOG_TARGET_STDERR;
}

#define SERVE_SECRET_SIZE 32

/* Reads DATA/auth.secret, making it on the first start. It keys the fake
 * SCRAM salts of unknown users, which must not change across restarts. */
static int
load_secret(const struct config *cfg, unsigned char secret[SERVE_SECRET_SIZE],
    char **error_r)
{
	char *path = xasprintf("%s/auth.secret", cfg->data_dir);
	char *tmp = xasprintf("%s.tmp", path);
	int fd, rc = -1;
	ssize_t n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, secret, SERVE_SECRET_SIZE);
		close(fd);
		if (n != SERVE_SECRET_SIZE)
			*error_r = xasprintf("%s: expected %d bytes", path, SERVE_SECRET_SIZE);
		else
			rc = 0;
		goto out;
	}
	if (errno != ENOENT) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	if (RAND_bytes(secret, SERVE_SECRET_SIZE) != 1) {
		*error_r = xstrdup("no random bytes for the authentication secret");
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, secret, SERVE_SECRET_SIZE) != SERVE_SECRET_SIZE ||
	    fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		*error_r = xasprintf("%s: cannot write: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	free(path);
	return rc;
}

/* DATA/petrel.pid, for `petrel queue` to signal the daemon. */
static char *
write_pid_file(const struct config *cfg)
{
	char *path = xasprintf("%s/petrel.pid", cfg->data_dir);
	char *tmp = xasprintf("%s.tmp", path);
	FILE *fp = fopen(tmp, "w");

	if (fp == NULL || fprintf(fp, "%d\n", (int)getpid()) < 0 || fclose(fp) != 0 ||
	    rename(tmp, path) < 0) {
		log_warn(NULL, "event=warning reason=\"cannot write %s: %s\"", path,
		    strerror(errno));
		unlink(tmp);
		free(tmp);
		free(path);
		return NULL;
	}
	free(tmp);
	return path;
}

/* Each connection and each open account (its index and WAL) needs
 * descriptors: take the whole hard limit rather than the usual 1,024. */
static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn(NULL, "event=warning reason=\"cannot raise the descriptor "
			    "limit: %s\"", strerror(errno));
	}
}

static int
daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) < 0)
		return -1;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

static void
reload(struct net_server *srv, struct auth *auth, struct queue_runner *runner)
{
	struct config cfg;
	struct auth_settings as;
	char *error = NULL;

	if (config_load(net_server_config(srv)->path, &cfg, &error) < 0) {
		log_error(NULL, "event=reload-failed reason=\"%s\"", error);
		free(error);
		return;
	}
	log_set_level(cfg.log_level);
	/* The queue first: its files (CA, relay password) are what is most
	 * likely to be wrong, and a failure then changes nothing at all. */
	if (runner != NULL && queue_runner_reload(runner, &cfg, &error) < 0) {
		log_error(NULL, "event=reload-failed reason=\"%s\"", error);
		free(error);
		config_free(&cfg);
		return;
	}
	if ((runner != NULL) != (cfg.queue_delivery != 0))
		log_warn(NULL, "event=warning reason=\"queue_delivery changes at the next "
		    "restart\"");
	auth_settings_from(&cfg, &as);
	if (net_server_reload(srv, &cfg, &error) < 0) {
		log_error(NULL, "event=reload-failed reason=\"%s\"", error);
		free(error);
		return;
	}
	auth_set_settings(auth, &as);
	log_info(NULL, "event=reloaded config=%s", net_server_config(srv)->path);
}

int
cmd_serve(struct cli *cli, int argc, char **argv)
{
	const struct net_proto *protos[SERVICE_COUNT];
	struct proto_context ctx = { NULL, NULL, NULL, NULL, NULL, NULL };
	struct auth_settings as;
	struct net_server *srv;
	struct delivery_services qsvc = { 0 };
	struct queue_runner *runner = NULL;
	char *pid_path;
	const struct config *cfg;
	sigset_t sigs;
	unsigned char secret[SERVE_SECRET_SIZE];
	const char *store_error;
	char *error = NULL, *db;
	int i, sig, detach = 0, running_as_root;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--daemon") == 0)
			detach = 1;
		else
			return 2;
	}
	if (cli_load_config(cli) < 0)
		return 1;
	if (detach && daemonize() < 0) {
		cli_error("cannot detach: %s", strerror(errno));
		return 1;
	}
	log_open(log_target_for(&cli->cfg), cli->cfg.log_level);
	raise_fd_limit();

	/* Signals are taken by sigwait() in this thread only; every thread
	 * started from here inherits the mask. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	for (i = 0; i < SERVICE_COUNT; i++)
		protos[i] = proto_for_service((enum config_service)i);
	auth_settings_from(&cli->cfg, &as);
	running_as_root = geteuid() == 0;
	srv = net_server_new(&cli->cfg, protos, &ctx, &error);
	cli->loaded = 0;  /* the server owns the configuration now */
	if (srv == NULL) {
		log_error(NULL, "event=start-failed reason=\"%s\"", error);
		fprintf(stderr, "petrel: %s\n", error);
		free(error);
		return 1;
	}
	cfg = net_server_config(srv);
	if (cli_drop_privileges(cfg, &error) < 0) {
		log_error(NULL, "event=start-failed reason=\"%s\"", error);
		fprintf(stderr, "petrel: %s\n", error);
		free(error);
		net_server_free(&srv);
		return 1;
	}
	if (running_as_root && cfg->allow_root)
		log_warn(NULL, "event=warning reason=\"running as root (allow_root = yes)\"");
	db = cli_directory_path(cfg);
	if (directory_open(db, 0, &ctx.dir, &error) < 0) {
		log_error(NULL, "event=start-failed reason=\"%s\"", error);
		fprintf(stderr, "petrel: %s\n", error);
		free(error);
		free(db);
		net_server_free(&srv);
		return 1;
	}
	free(db);
	if (store_open(cfg->data_dir, &ctx.store, &store_error) < 0) {
		log_error(NULL, "event=start-failed reason=\"%s\"", store_error);
		fprintf(stderr, "petrel: %s\n", store_error);
		directory_close(&ctx.dir);
		net_server_free(&srv);
		return 1;
	}
	if (store_watch_others(ctx.store, cfg->data_dir, &store_error) < 0)
		log_warn(NULL, "event=warning reason=\"changes by other processes are not "
		    "pushed to sessions: %s\"", store_error);
	if (queue_open(cfg->data_dir, &ctx.queue, &error) < 0) {
		log_error(NULL, "event=start-failed reason=\"%s\"", error);
		fprintf(stderr, "petrel: %s\n", error);
		free(error);
		store_close(&ctx.store);
		directory_close(&ctx.dir);
		net_server_free(&srv);
		return 1;
	}
	if (load_secret(cfg, secret, &error) < 0) {
		log_error(NULL, "event=start-failed reason=\"%s\"", error);
		fprintf(stderr, "petrel: %s\n", error);
		free(error);
		queue_close(&ctx.queue);
		store_close(&ctx.store);
		directory_close(&ctx.dir);
		net_server_free(&srv);
		return 1;
	}
	ctx.auth = auth_new(ctx.dir, &as);
	auth_set_scram_secret(ctx.auth, secret, sizeof(secret));
	OPENSSL_cleanse(secret, sizeof(secret));
	qsvc.dir = ctx.dir;
	qsvc.store = ctx.store;
	qsvc.queue = ctx.queue;
	qsvc.hostname = cfg->hostname;
	if (!cfg->queue_delivery)
		log_warn(NULL, "event=warning reason=\"queue_delivery = no: queued mail stays "
		    "queued\"");
	else if (queue_runner_start(cfg, &qsvc, &runner, &error) < 0) {
		log_error(NULL, "event=start-failed reason=\"%s\"", error);
		fprintf(stderr, "petrel: %s\n", error);
		free(error);
		auth_free(&ctx.auth);
		queue_close(&ctx.queue);
		store_close(&ctx.store);
		directory_close(&ctx.dir);
		net_server_free(&srv);
		return 1;
	}
	if (runner != NULL)
		ctx.srs = queue_runner_srs(runner);
	ctx.rcpt_cache = delivery_cache_new();
	net_server_start(srv);
	pid_path = write_pid_file(cfg);
	log_info(NULL, "event=ready version=%s hostname=%s listeners=%d io_threads=%d "
	    "user=%s pid=%d", PETREL_VERSION, cfg->hostname, cfg->nlisten, cfg->io_threads,
	    geteuid() == 0 ? "root" : cfg->user, (int)getpid());

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(srv, ctx.auth, runner);
			continue;
		}
		if (sig == SIGUSR1) {
			if (runner != NULL)
				queue_runner_wakeup(runner);
			continue;
		}
		break;
	}
	log_info(NULL, "event=stopping signal=%s connections=%d", sig == SIGINT ? "INT" : "TERM",
	    net_server_connections(srv));
	net_server_shutdown(srv, net_server_config(srv)->shutdown_grace_ms);
	queue_runner_stop(&runner);
	if (pid_path != NULL) {
		unlink(pid_path);
		free(pid_path);
	}
	net_server_free(&srv);
	delivery_cache_free(&ctx.rcpt_cache);
	auth_free(&ctx.auth);
	queue_close(&ctx.queue);
	store_close(&ctx.store);
	directory_close(&ctx.dir);
	log_info(NULL, "event=stopped");
	return 0;
}
