/*
 * cli_print: how the CLI shows agents and events, for people (key: value
 * blocks, a table of agents, one-line events, ISO-8601 UTC times,
 * lowercase state names) and for machines (JSON with protobuf's
 * lowerCamelCase field names and full enum names such as
 * "AGENT_STATE_RUNNING"). State names come from the
 * proto's enum descriptor, so no list of states is repeated here.
 */
#ifndef TSR_HUB_CLI_PRINT_H
#define TSR_HUB_CLI_PRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "cli_json.h"
#include "error.h"
#include "tessera/v1/agent.pb-c.h"

#define CLI_TIME_MAX 32
#define CLI_STATE_MAX 32

/* "AGENT_STATE_RUNNING"; "UNKNOWN" for a value the proto does not name. */
const char *cli_state_name(Tessera__V1__AgentState s);
/* "running": the name without its prefix, in lowercase (CLI_STATE_MAX). */
void cli_state_short(Tessera__V1__AgentState s, char *buf, size_t len);
/* Accepts "running", "RUNNING" or "AGENT_STATE_RUNNING", in any case. */
int cli_state_parse(const char *text, Tessera__V1__AgentState *out, struct tsr_err *err);
/* The wire contract's terminal states: completed, failed, killed. */
bool cli_state_terminal(Tessera__V1__AgentState s);
/* "2024-01-02T03:04:05.678Z", or "-" for 0 (CLI_TIME_MAX). */
void cli_time_iso(int64_t ms, char *buf, size_t len);
/*
 * The terminal's width when stdout is one (its window size, else
 * $COLUMNS), 0 when output goes elsewhere: tables fit a terminal and are
 * never cut for a pipe.
 */
int cli_term_columns(void);
/* Writes s with control characters escaped, cut after max bytes. */
void cli_put_safe(FILE *f, const char *s, size_t max);

/* Writes the document j on stdout, a line of its own, and frees j. */
int cli_json_print(struct json *j, struct tsr_err *err);
void cli_agent_json(struct json *j, const Tessera__V1__Agent *a);
void cli_event_json(struct json *j, const Tessera__V1__Event *e);
/* An agent on stdout; id_line puts the bare id on a first line of its own. */
int cli_agent_show(const struct cli *c, const Tessera__V1__Agent *a, bool id_line,
		   struct tsr_err *err);
/* "TIME AGENT TYPE old→new [exit N|signal N] [error]" */
void cli_event_line(FILE *f, const Tessera__V1__Event *e);

/* Agents as a table: ID, STATE, TYPE, SPOKE, EXIT, STARTED. */
struct cli_row;
struct cli_table {
	struct cli_row *rows; /* owned, [cap] */
	size_t n, cap;
	size_t max; /* rows it may hold */
};

/* An empty table of at most max rows. */
void cli_table_init(struct cli_table *t, size_t max);
/* a's row, its cells made safe; RESOURCE_EXHAUSTED past max rows. */
int cli_table_add(struct cli_table *t, const Tessera__V1__Agent *a, struct tsr_err *err);
/* On stdout, each column as wide as its widest cell. */
void cli_table_print(const struct cli_table *t);
void cli_table_free(struct cli_table *t);

#endif
