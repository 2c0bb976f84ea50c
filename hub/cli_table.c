/* cli_table: list's table of agents: its rows, their order, its columns. */
#include "cli_table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli_print.h"
#include "protocol.h"

enum { /* the columns, in their order; the wide ones last */
	CLI_COL_ID,
	CLI_COL_STATE,
	CLI_COL_TYPE,
	CLI_COL_SPOKE,
	CLI_COL_EXIT,
	CLI_COL_STARTED,
	CLI_COLS, /* the default table's count; the wide one's go on: */
	CLI_COL_CREATED = CLI_COLS,
	CLI_COL_PID,
	CLI_COL_LABELS,
	CLI_COLS_WIDE
};

static const char *const cli_col_names[CLI_COLS_WIDE] = {
	"ID", "STATE", "TYPE", "SPOKE", "EXIT", "STARTED", "CREATED", "PID", "LABELS",
};

/* One line of the table, its cells made safe. */
struct cli_row {
	int64_t created_ms; /* the sort key */
	char id[TSR_AGENT_ID_MAX + 1];
	char state[CLI_STATE_MAX];
	char type[TSR_NAME_MAX + 1];
	char spoke[TSR_NAME_MAX + 1];
	char exit[16];
	char started[CLI_TIME_MAX];
	char created[CLI_TIME_MAX];
	char pid[16];
	char *labels; /* owned; a wide table's only, NULL otherwise */
};

/* Copies s for a table cell, replacing what a terminal would interpret. */
static void cli_cell(char *dst, size_t dstlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < dstlen; i++)
		dst[i] = ((unsigned char)s[i] < 0x21 || s[i] == 0x7f) ? '?' : s[i];
	dst[i] = '\0';
}

static const char *cli_row_cell(const struct cli_row *r, int col)
{
	switch (col) {
	case CLI_COL_ID:
		return r->id;
	case CLI_COL_STATE:
		return r->state;
	case CLI_COL_TYPE:
		return r->type;
	case CLI_COL_SPOKE:
		return r->spoke;
	case CLI_COL_EXIT:
		return r->exit;
	case CLI_COL_STARTED:
		return r->started;
	case CLI_COL_CREATED:
		return r->created;
	case CLI_COL_PID:
		return r->pid;
	default:
		return r->labels;
	}
}

void cli_table_init(struct cli_table *t, size_t max, bool wide)
{
	t->rows = NULL;
	t->n = t->cap = 0;
	t->max = max;
	t->wide = wide;
}

/* Room for one more row. */
static int cli_table_grow(struct cli_table *t, struct tsr_err *err)
{
	size_t cap = t->cap != 0 ? t->cap * 2 : 64;
	struct cli_row *grown;

	if (t->n < t->cap)
		return 0;
	if (cap > t->max)
		cap = t->max;
	if (t->n == cap)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "more than %zu agents",
				   t->max);
	grown = realloc(t->rows, cap * sizeof(*grown));
	if (grown == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	t->rows = grown;
	t->cap = cap;
	return 0;
}

/* A wide row's LABELS cell (malloc'd): "k=v,k=v", or "-" for none. */
static char *cli_labels_cell(const Tessera__V1__Agent *a)
{
	char text[CLI_LABELS_MAX];
	char *cell;
	size_t len;

	cli_labels_text(a, text, sizeof(text));
	if (text[0] == '\0')
		return strdup("-");
	len = strlen(text) + 1;
	cell = malloc(len);
	if (cell != NULL)
		cli_cell(cell, len, text);
	return cell;
}

int cli_table_add(struct cli_table *t, const Tessera__V1__Agent *a, struct tsr_err *err)
{
	struct cli_row *r;

	if (cli_table_grow(t, err) != 0)
		return -1;
	r = &t->rows[t->n];
	r->labels = NULL;
	if (t->wide && (r->labels = cli_labels_cell(a)) == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	r->created_ms = a->created_at_ms;
	cli_cell(r->id, sizeof(r->id), a->id);
	cli_state_short(a->state, r->state, sizeof(r->state));
	cli_cell(r->type, sizeof(r->type), a->type);
	cli_cell(r->spoke, sizeof(r->spoke), a->spoke_id);
	if (a->end_case == TESSERA__V1__AGENT__END_EXIT_CODE)
		snprintf(r->exit, sizeof(r->exit), "%d", (int)a->exit_code);
	else if (a->end_case == TESSERA__V1__AGENT__END_SIGNAL)
		snprintf(r->exit, sizeof(r->exit), "sig %d", (int)a->signal);
	else
		snprintf(r->exit, sizeof(r->exit), "-");
	cli_time_iso(a->started_at_ms, r->started, sizeof(r->started));
	cli_time_iso(a->created_at_ms, r->created, sizeof(r->created));
	/* 0 until the agent has a process. */
	if (a->pid > 0)
		snprintf(r->pid, sizeof(r->pid), "%d", (int)a->pid);
	else
		snprintf(r->pid, sizeof(r->pid), "-");
	t->n++;
	return 0;
}

static int cli_row_newer_first(const void *pa, const void *pb)
{
	const struct cli_row *a = pa, *b = pb;

	if (a->created_ms != b->created_ms)
		return a->created_ms > b->created_ms ? -1 : 1;
	/* Ids are unique, so the order is total and qsort's instability moot. */
	return strcmp(b->id, a->id);
}

void cli_table_sort(struct cli_table *t)
{
	if (t->n > 1)
		qsort(t->rows, t->n, sizeof(*t->rows), cli_row_newer_first);
}

/* One line: every column but the last padded to its width w[col]. */
static void cli_table_line(FILE *f, const char *const *cells, const int *w, int ncols, int columns)
{
	int used = 0;
	size_t room;

	for (int col = 0; col + 1 < ncols; col++)
		used += fprintf(f, "%-*s  ", w[col], cells[col]);
	if (columns <= 0 || ncols != CLI_COLS_WIDE) {
		fprintf(f, "%s\n", cells[ncols - 1]);
		return;
	}
	/* As tessera spokes does: the labels take what is left of the line. */
	room = columns > used + 4 ? (size_t)(columns - used - 3) : 1;
	cli_put_safe(f, cells[ncols - 1], room);
	fputc('\n', f);
}

void cli_table_print(const struct cli_table *t, FILE *f, int columns)
{
	int ncols = t->wide ? CLI_COLS_WIDE : CLI_COLS, w[CLI_COLS_WIDE];
	const char *cells[CLI_COLS_WIDE];

	for (int col = 0; col < ncols; col++)
		w[col] = (int)strlen(cli_col_names[col]);
	for (size_t i = 0; i < t->n; i++) {
		for (int col = 0; col < ncols; col++) {
			int len = (int)strlen(cli_row_cell(&t->rows[i], col));

			if (len > w[col])
				w[col] = len;
		}
	}
	cli_table_line(f, cli_col_names, w, ncols, columns);
	for (size_t i = 0; i < t->n; i++) {
		for (int col = 0; col < ncols; col++)
			cells[col] = cli_row_cell(&t->rows[i], col);
		cli_table_line(f, cells, w, ncols, columns);
	}
}

void cli_table_free(struct cli_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->rows[i].labels);
	free(t->rows);
	t->rows = NULL;
	t->n = t->cap = 0;
}
