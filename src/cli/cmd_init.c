/*
 * petrel init DIR [--hostname NAME] [--bind ADDR[,ADDR...]] [--port-base N]
 *
 * Creates a data directory that `petrel -c DIR/petrel.conf serve` can run
 * from: the documented config file, the directory database and a self-signed
 * certificate. When run as root, the directory is given to the configured
 * user so that the daemon can use it after dropping privileges.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/parse.h"
#include "core/xmalloc.h"
#include "directory/directory.h"
#include "net/tls.h"

static uid_t chown_uid;
static gid_t chown_gid;

static int
chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return lchown(path, chown_uid, chown_gid) < 0 ? -1 : 0;
}

static int
write_config(const char *path, const struct config_init *init)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	FILE *fp;
	int ok;

	if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
		cli_error("%s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	config_write_template(fp, init);
	ok = fflush(fp) == 0 && fsync(fd) == 0;
	if (fclose(fp) != 0 || !ok || rename(tmp, path) < 0) {
		cli_error("%s: cannot write: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	return 0;
}

int
cmd_init(struct cli *cli, int argc, char **argv)
{
	struct config_init init = { NULL, NULL, 0 };
	struct config cfg;
	struct directory *dir = NULL;
	const char *dirarg = NULL;
	char *conf = NULL, *tlsdir = NULL, *dbpath = NULL, *error = NULL;
	char host[256];
	long long n;
	int i, rc = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--hostname") == 0 && i + 1 < argc) {
			init.hostname = argv[++i];
		} else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc) {
			init.bind = argv[++i];
		} else if (strcmp(argv[i], "--port-base") == 0 && i + 1 < argc) {
			if (parse_int(argv[++i], 0, 65535 - 2525, &n) < 0) {
				cli_error("--port-base must be a number from 0 to %d", 65535 - 2525);
				return 2;
			}
			init.port_base = (int)n;
		} else if (argv[i][0] == '-' || dirarg != NULL) {
			return 2;
		} else {
			dirarg = argv[i];
		}
	}
	if (dirarg == NULL)
		return 2;
	if (init.hostname == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		init.hostname = host;
	}
	if (strspn(init.hostname, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.-") != strlen(init.hostname) || init.hostname[0] == '\0') {
		cli_error("bad host name '%s'", init.hostname);
		return 1;
	}
	if (mkdir(dirarg, 0750) < 0 && errno != EEXIST) {
		cli_error("%s: %s", dirarg, strerror(errno));
		return 1;
	}
	conf = xasprintf("%s/petrel.conf", dirarg);
	if (access(conf, F_OK) == 0) {
		cli_error("%s already exists; not overwriting it", conf);
		goto out;
	}
	if (write_config(conf, &init) < 0)
		goto out;
	/* Load what we wrote: the paths below come from it. */
	if (config_load(conf, &cfg, &error) < 0) {
		cli_error("%s", error);
		goto out;
	}
	tlsdir = xasprintf("%s/tls", cfg.data_dir);
	if (mkdir(tlsdir, 0750) < 0 && errno != EEXIST) {
		cli_error("%s: %s", tlsdir, strerror(errno));
		goto out_cfg;
	}
	if (net_tls_make_self_signed(cfg.hostname, cfg.tls_certificate, cfg.tls_key,
	    &error) < 0) {
		cli_error("%s", error);
		goto out_cfg;
	}
	dbpath = cli_directory_path(&cfg);
	if (directory_open(dbpath, 1, &dir, &error) < 0) {
		cli_error("%s", error);
		goto out_cfg;
	}
	directory_close(&dir);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam(cfg.user);

		if (pw == NULL) {
			fprintf(stderr, "petrel: warning: user '%s' does not exist; %s stays "
			    "owned by root\n", cfg.user, cfg.data_dir);
		} else {
			chown_uid = pw->pw_uid;
			chown_gid = pw->pw_gid;
			if (nftw(cfg.data_dir, chown_one, 16, FTW_PHYS) < 0) {
				cli_error("cannot give %s to user '%s': %s", cfg.data_dir,
				    cfg.user, strerror(errno));
				goto out_cfg;
			}
		}
	}
	printf("created %s\n", conf);
	printf("  data directory  %s\n", cfg.data_dir);
	printf("  certificate     %s (self-signed for %s)\n", cfg.tls_certificate,
	    cfg.hostname);
	printf("  database        %s\n", dbpath);
	printf("next: petrel -c %s domain add DOMAIN; petrel -c %s serve\n", conf, conf);
	rc = 0;
out_cfg:
	config_free(&cfg);
out:
	free(error);
	free(dbpath);
	free(tlsdir);
	free(conf);
	return rc;
}
