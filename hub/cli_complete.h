/*
 * cli_complete: what a shell may complete at the cursor, for
 * deploy/completion/tessera.bash, which runs
 *   tessera __complete WORD... CURRENT
 * with the words typed after "tessera" and the (possibly empty) word at
 * the cursor. It prints the candidates that begin with CURRENT, one a
 * line: command names, a command's long flags (the global ones among
 * them), or the values of --state and --output; nothing where it knows
 * no values (an agent id, a path: the shell then offers file names).
 * Flags and commands come from the command table and its option arrays,
 * the states from the proto, so that completion cannot drift from what
 * the CLI accepts.
 */
#ifndef TSR_HUB_CLI_COMPLETE_H
#define TSR_HUB_CLI_COMPLETE_H

#include <stddef.h>
#include <stdio.h>

#include "cli.h"

#define CLI_COMPLETE_COMMAND "__complete" /* hidden: not in the usage */

/*
 * The candidates for the words argv[0..argc-1] (argc 0: an empty line)
 * on out, given the n commands and the flags taken before a command
 * (globals). -1 if out could not be written.
 */
int cli_complete(const struct cli_command *cmds, size_t n, const struct option *globals, int argc,
		 char **argv, FILE *out);

#endif
