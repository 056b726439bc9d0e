/* Temporary until the directory commands land (replaced in this session). */
#include "cli/cli.h"
int cmd_domain(struct cli *c, int argc, char **argv) { return 1; }
int cmd_account(struct cli *c, int argc, char **argv) { return 1; }
int cmd_alias(struct cli *c, int argc, char **argv) { return 1; }
int cmd_catchall(struct cli *c, int argc, char **argv) { return 1; }
int cmd_import(struct cli *c, int argc, char **argv) { return 1; }
int cmd_init(struct cli *c, int argc, char **argv) { return 1; }
int cmd_serve(struct cli *c, int argc, char **argv) { return 1; }
int cmd_check(struct cli *c, int argc, char **argv) { return 1; }
#include "directory/directory.h"
int directory_open(const char *p, int c, struct directory **d, char **e) { *e = 0; return -1; }
