/* Temporary until the directory commands land (replaced in this session). */
#include "cli/cli.h"
int cmd_serve(struct cli *c, int argc, char **argv) { return 1; }
int cmd_domain(struct cli *c, int argc, char **argv) { return 1; }
int cmd_account(struct cli *c, int argc, char **argv) { return 1; }
int cmd_alias(struct cli *c, int argc, char **argv) { return 1; }
int cmd_catchall(struct cli *c, int argc, char **argv) { return 1; }
int cmd_import(struct cli *c, int argc, char **argv) { return 1; }
