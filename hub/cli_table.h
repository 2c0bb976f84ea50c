/*
 * cli_table: the table of agents that tessera list prints: ID, STATE,
 * TYPE, SPOKE, EXIT (exit code, "sig N" or "-"), STARTED; a wide one
 * (--output wide) adds CREATED, PID and LABELS. Rows are collected first,
 * at most max of them, so that the whole table can be sorted and its
 * columns made as wide as their widest cell.
 */
#ifndef TSR_HUB_CLI_TABLE_H
#define TSR_HUB_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"
#include "tessera/v1/agent.pb-c.h"

#define CLI_OUTPUT_WIDE "wide" /* the one value of list's --output */

struct cli_row;
struct cli_table {
	struct cli_row *rows; /* owned, [cap] */
	size_t n, cap;
	size_t max; /* rows it may hold */
	bool wide;
};

/* An empty table of at most max rows. */
void cli_table_init(struct cli_table *t, size_t max, bool wide);
/* a's row, its cells made safe; RESOURCE_EXHAUSTED past max rows or memory. */
int cli_table_add(struct cli_table *t, const Tessera__V1__Agent *a, struct tsr_err *err);
/*
 * Newest first: by creation time, then by id, both descending, which is
 * the order each spoke lists its own agents in (the hub lists one spoke
 * after another).
 */
void cli_table_sort(struct cli_table *t);
/*
 * On f, each column as wide as its widest cell. columns > 0 (a terminal's
 * width) cuts the wide table's LABELS to what is left of the line,
 * marked "..."; 0 never cuts.
 */
void cli_table_print(const struct cli_table *t, FILE *f, int columns);
void cli_table_free(struct cli_table *t);

#endif
