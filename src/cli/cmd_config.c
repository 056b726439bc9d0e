/* petrel config-reference: prints docs/CONFIG.md. */
#include <stdio.h>

#include "cli/cli.h"

int
cmd_config_reference(struct cli *cli, int argc, char **argv)
{
	if (argc != 1)
		return 2;
	config_write_reference(stdout);
	return 0;
}
