/*
 * petrel import maildir ADDR DIR [--no-resume]
 * petrel import mbox ADDR FILE [--mailbox NAME] [--no-resume]
 *
 * Mail into an existing account, one message at a time (memory does not
 * grow with the number of messages), with progress on stderr. Running the
 * same import again resumes it: messages an earlier run stored are skipped
 * (mail_import.h); --no-resume forgets them and imports everything again.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_directory.h"
#include "cli/mail_import.h"

int
cmd_import_mail(struct cli *cli, int argc, char **argv)
{
	const char *mailbox = NULL;
	char *pos[2];
	int fresh = 0, maildir;
	const struct cli_dir_option opts[] = {
		{ "--mailbox", NULL, &mailbox },
		{ "--no-resume", &fresh, NULL },
		{ NULL, NULL, NULL },
	};

	if (argc < 2)
		return 2;
	maildir = strcmp(argv[1], "maildir") == 0;
	if (cli_dir_parse_args(argc - 2, argv + 2, opts, pos, 2) != 2)
		return 2;
	if (maildir && mailbox != NULL) {
		cli_error("--mailbox is for mbox imports (a Maildir names its folders)");
		return 2;
	}
	if (maildir)
		return import_maildir(cli, pos[0], pos[1], fresh);
	return import_mbox(cli, pos[0], pos[1], mailbox != NULL ? mailbox : "INBOX", fresh);
}
