/* Temporary until the directory commands land (replaced in this session). */
#include "cli/cli.h"
int cmd_serve(struct cli *c, int argc, char **argv) { return 1; }
