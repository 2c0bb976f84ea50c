/*
 * cli_print: how the CLI shows agents and events, for people (key: value
 * blocks, one-line events, ISO-8601 UTC times,
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
#include "protocol.h"
#include "tessera/v1/agent.pb-c.h"

#define CLI_TIME_MAX 32
#define CLI_STATE_MAX 32
/* An agent's labels as text: each key and value cut at 64 bytes. */
#define CLI_LABELS_MAX (TSR_LABELS_MAX * (TSR_NAME_MAX + TSR_LABEL_VALUE_MAX + 2) + 1)

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
/* "k=v,k=v" in the agent's order (its spoke sorts them by key), "" for none. */
void cli_labels_text(const Tessera__V1__Agent *a, char *buf, size_t len);

/* Writes the document j on stdout, a line of its own, and frees j. */
int cli_json_print(struct json *j, struct tsr_err *err);
void cli_agent_json(struct json *j, const Tessera__V1__Agent *a);
void cli_event_json(struct json *j, const Tessera__V1__Event *e);
/* An agent on stdout; id_line puts the bare id on a first line of its own. */
int cli_agent_show(const struct cli *c, const Tessera__V1__Agent *a, bool id_line,
		   struct tsr_err *err);
/* "TIME AGENT TYPE old→new [exit N|signal N] [error]" */
void cli_event_line(FILE *f, const Tessera__V1__Event *e);

#endif
