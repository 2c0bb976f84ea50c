/* cli_complete: the candidates at the cursor for tessera's shell completion. */
#include "cli_complete.h"

#include <stdbool.h>
#include <string.h>

#include "cli_print.h"
#include "cli_table.h"

#define CLI_FLAG_MAX 64 /* "--" and the longest option name */

/* Where the words before the cursor leave it. */
struct cli_spot {
	const struct cli_command *cmd; /* NULL: no command yet */
	const struct option *options;  /* the command's, else the globals */
	const char *shorts;	       /* as getopt's optstring */
	const struct option *pending;  /* the flag whose value is at the cursor */
	bool operands;		       /* after the command's "--": no more flags */
};

/* The option "--name" or "--name=VALUE" names in opts (exactly), or NULL. */
static const struct option *cli_long(const struct option *opts, const char *word)
{
	size_t len = strcspn(word + 2, "=");

	for (; opts->name != NULL; opts++)
		if (strncmp(opts->name, word + 2, len) == 0 && opts->name[len] == '\0')
			return opts;
	return NULL;
}

/* The option "-X" is if X is a short option that takes a value, else NULL. */
static const struct option *cli_short(const struct cli_spot *s, const char *word)
{
	const char *p = word[1] != ':' && word[2] == '\0' ? strchr(s->shorts, word[1]) : NULL;
	const struct option *o;

	if (p == NULL || p[1] != ':')
		return NULL;
	for (o = s->options; o->name != NULL; o++)
		if (o->flag == NULL && o->val == word[1])
			return o;
	return NULL;
}

/* Reads the words before the cursor into *s; false for an unknown command. */
static bool cli_walk(struct cli_spot *s, const struct cli_command *cmds, size_t n, int argc,
		     char **argv)
{
	const struct option *o;
	size_t k;

	for (int i = 0; i < argc; i++) {
		const char *w = argv[i];

		if (s->pending != NULL) {
			s->pending = NULL; /* w is its value */
			continue;
		}
		if (strcmp(w, "--") == 0) {
			/* Before the command it only ends the global flags. */
			s->operands = s->cmd != NULL;
			continue;
		}
		if (!s->operands && w[0] == '-' && w[1] != '\0') {
			o = w[1] == '-' ? cli_long(s->options, w) : cli_short(s, w);
			if (o != NULL && o->has_arg == required_argument && strchr(w, '=') == NULL)
				s->pending = o;
			continue;
		}
		if (s->cmd != NULL)
			continue; /* an operand */
		for (k = 0; k < n && strcmp(cmds[k].name, w) != 0; k++)
			;
		if (k == n)
			return false;
		s->cmd = &cmds[k];
		s->options = cmds[k].options;
		s->shorts = cmds[k].shorts;
	}
	return true;
}

/* Prints prefix + word if that begins with cur, of which prefix is the first plen bytes. */
static void cli_offer(FILE *out, const char *cur, size_t plen, const char *word)
{
	if (strncmp(word, cur + plen, strlen(cur + plen)) == 0)
		fprintf(out, "%.*s%s\n", (int)plen, cur, word);
}

/* Offers the values of flag name that the CLI knows: --state's and --output's. */
static void cli_values(FILE *out, const char *name, const char *cur, size_t plen)
{
	const ProtobufCEnumDescriptor *d = &tessera__v1__agent_state__descriptor;
	char state[CLI_STATE_MAX];

	if (strcmp(name, "output") == 0) {
		cli_offer(out, cur, plen, CLI_OUTPUT_WIDE);
	} else if (strcmp(name, "state") == 0) {
		for (unsigned i = 0; i < d->n_values; i++) {
			if (d->values[i].value == 0)
				continue; /* unspecified: no filter, not a state to ask for */
			cli_state_short((Tessera__V1__AgentState)d->values[i].value, state,
					sizeof(state));
			cli_offer(out, cur, plen, state);
		}
	}
}

/* What to offer at cur, after the words that made *s. */
static void cli_candidates(const struct cli_spot *s, const struct cli_command *cmds, size_t n,
			   const char *cur, FILE *out)
{
	char flag[CLI_FLAG_MAX];
	const struct option *o;

	if (s->pending != NULL) {
		cli_values(out, s->pending->name, cur, 0);
	} else if (strncmp(cur, "--", 2) == 0 && strchr(cur, '=') != NULL) {
		o = cli_long(s->options, cur);
		if (o != NULL && o->has_arg == required_argument)
			cli_values(out, o->name, cur, (size_t)(strchr(cur, '=') - cur) + 1);
	} else if (cur[0] == '-') {
		for (o = s->options; o->name != NULL; o++)
			if (snprintf(flag, sizeof(flag), "--%s", o->name) < (int)sizeof(flag))
				cli_offer(out, cur, 0, flag);
	} else if (s->cmd == NULL) {
		for (size_t k = 0; k < n; k++)
			cli_offer(out, cur, 0, cmds[k].name);
	}
}

int cli_complete(const struct cli_command *cmds, size_t n, const struct option *globals, int argc,
		 char **argv, FILE *out)
{
	struct cli_spot s = { .options = globals, .shorts = CLI_NO_SHORTS };
	const char *cur = argc > 0 ? argv[argc - 1] : "";

	/* After an unknown command, and for operands (ids, names, paths), none is known. */
	if (cli_walk(&s, cmds, n, argc > 0 ? argc - 1 : 0, argv) && !s.operands)
		cli_candidates(&s, cmds, n, cur, out);
	return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}
