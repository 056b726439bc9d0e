/*
 * petrel check: validates the configuration (and that the certificates and
 * the database can be opened) and prints the listeners it would open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "net/tls.h"

static const char *const *
no_alpn(SSL *ssl)
{
	return NULL;
}

int
cmd_check(struct cli *cli, int argc, char **argv)
{
	const struct config *cfg;
	struct net_tls *tls;
	char *error = NULL, *db;
	int i, rc = 0;

	if (argc != 1)
		return 2;
	if (cli_load_config(cli) < 0)
		return 1;
	cfg = &cli->cfg;
	if ((tls = net_tls_new(cfg, no_alpn, &error)) == NULL) {
		cli_error("%s", error);
		free(error);
		rc = 1;
	}
	db = cli_directory_path(cfg);
	if (access(db, R_OK | W_OK) < 0) {
		cli_error("%s: database missing or not writable (petrel init makes it)", db);
		rc = 1;
	}
	free(db);
	printf("config %s: %s\n", cfg->path, rc == 0 ? "ok" : "errors above");
	printf("hostname %s, data_dir %s, user %s, %d I/O threads, %d TLS SNI certificate(s)\n",
	    cfg->hostname, cfg->data_dir, cfg->allow_root ? "root" : cfg->user, cfg->io_threads,
	    tls != NULL ? net_tls_sni_count(tls) : 0);
	for (i = 0; i < cfg->nlisten; i++) {
		const struct config_listen *l = &cfg->listen[i];
		int v6 = strchr(l->address, ':') != NULL;
		char addr[80];

		snprintf(addr, sizeof(addr), "%s%s%s:%d", v6 ? "[" : "", l->address, v6 ? "]" : "",
		    l->port);
		printf("listen %-11s %-24s %s\n", config_service_name(l->service), addr,
		    config_service_implicit_tls(l->service) ? "implicit TLS" : "STARTTLS");
	}
	net_tls_unref(&tls);
	return rc;
}
