/*
 * cli_spokes: tessera spokes, the hub's view of its spokes as a table,
 * with each spoke's load as "running/max" ("-" while the hub knows none),
 * and under it, for each spoke the hub gives a reason for (one that is
 * not connected), a line "ID: REASON".
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"
#include "cli_print.h"
#include "cli_rpc.h"
#include "hub_limits.h"
#include "protocol.h"
#include "tessera/v1/hub.pb-c.h"

/* Every label a spoke may have, "key=value," each cut at 64 + 64 bytes. */
#define CLI_SPOKES_LABELS_MAX (TSR_LABELS_MAX * (2 * 64 + 2) + 1)
/* Far above the hub's own bound: only a broken hub is cut. */
#define CLI_SPOKES_REASON_MAX 1024

static int cli_spokes_json(const Tessera__V1__ListSpokesResponse *r, struct tsr_err *err)
{
	struct json j;

	json_init(&j);
	json_object_begin(&j);
	json_key(&j, "spokes");
	json_array_begin(&j);
	for (size_t i = 0; i < r->n_spokes; i++) {
		const Tessera__V1__SpokeInfo *s = r->spokes[i];

		json_object_begin(&j);
		json_key(&j, "id");
		json_string(&j, s->id);
		json_key(&j, "address");
		json_string(&j, s->address);
		json_key(&j, "state");
		json_string(&j, s->state);
		json_key(&j, "sinceMs");
		json_int(&j, s->since_ms);
		json_key(&j, "runningAgents");
		json_int(&j, s->running_agents);
		json_key(&j, "maxAgents");
		json_int(&j, s->max_agents);
		json_key(&j, "reason");
		json_string(&j, s->reason);
		json_key(&j, "labels");
		json_object_begin(&j);
		for (size_t k = 0; k < s->n_labels; k++) {
			json_key(&j, s->labels[k]->key);
			json_string(&j, s->labels[k]->value);
		}
		json_object_end(&j);
		json_object_end(&j);
	}
	json_array_end(&j);
	json_object_end(&j);
	return cli_json_print(&j, err);
}

/* "running/max", or "-" when the hub knows no load (max 0). */
static void cli_spokes_load(const Tessera__V1__SpokeInfo *s, char *buf, size_t len)
{
	if (s->max_agents > 0)
		snprintf(buf, len, "%d/%d", (int)s->running_agents, (int)s->max_agents);
	else
		snprintf(buf, len, "-");
}

/* "k=v,k=v" ("-" for none), each key and value cut at 64 bytes. */
static void cli_spokes_labels(const Tessera__V1__SpokeInfo *s, char *buf, size_t len)
{
	size_t off = 0;
	int n;

	buf[0] = '\0';
	for (size_t k = 0; k < s->n_labels && off < len; k++) {
		n = snprintf(buf + off, len - off, "%s%.64s=%.64s", k > 0 ? "," : "",
			     s->labels[k]->key, s->labels[k]->value);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (s->n_labels == 0)
		snprintf(buf, len, "-");
}

static void cli_spokes_table(const Tessera__V1__ListSpokesResponse *r)
{
	char since[CLI_TIME_MAX], load[32], labels[CLI_SPOKES_LABELS_MAX];
	int w[4] = { 2, 7, 5, 7 }, columns = cli_term_columns(), used;
	bool reasons = false;
	size_t room;

	for (size_t i = 0; i < r->n_spokes; i++) {
		const Tessera__V1__SpokeInfo *s = r->spokes[i];
		int l[4];

		cli_spokes_load(s, load, sizeof(load));
		l[0] = (int)strlen(s->id);
		l[1] = (int)strlen(s->address);
		l[2] = (int)strlen(s->state);
		l[3] = (int)strlen(load);
		for (int k = 0; k < 4; k++)
			if (l[k] > w[k])
				w[k] = l[k];
	}
	printf("%-*s  %-*s  %-*s  %-*s  %-24s  %s\n", w[0], "ID", w[1], "ADDRESS", w[2], "STATE",
	       w[3], "RUNNING", "SINCE", "LABELS");
	for (size_t i = 0; i < r->n_spokes; i++) {
		const Tessera__V1__SpokeInfo *s = r->spokes[i];

		cli_time_iso(s->since_ms, since, sizeof(since));
		cli_spokes_load(s, load, sizeof(load));
		used = printf("%-*s  %-*s  %-*s  %-*s  %-24s  ", w[0], s->id, w[1], s->address,
			      w[2], s->state, w[3], load, since);
		cli_spokes_labels(s, labels, sizeof(labels));
		/* On a terminal the labels take what is left of the line
		 * (cli_put_safe marks a cut with "..."). */
		room = columns > used + 4 ? (size_t)(columns - used - 3) : 1;
		cli_put_safe(stdout, labels, columns > 0 ? room : sizeof(labels));
		putchar('\n');
	}
	/* Reasons are whole sentences: below the table, never cut to fit. */
	for (size_t i = 0; i < r->n_spokes; i++) {
		const Tessera__V1__SpokeInfo *s = r->spokes[i];

		if (s->reason[0] == '\0')
			continue;
		if (!reasons)
			putchar('\n');
		reasons = true;
		printf("%s: ", s->id);
		cli_put_safe(stdout, s->reason, CLI_SPOKES_REASON_MAX);
		putchar('\n');
	}
}

int cli_spokes(struct cli *c, int argc, char **argv)
{
	Tessera__V1__ListSpokesRequest req = TESSERA__V1__LIST_SPOKES_REQUEST__INIT;
	Tessera__V1__ListSpokesResponse *r = NULL;
	ProtobufCMessage *m;
	struct cli_hub h = { 0 };
	struct tsr_err err;
	int rc = CLI_EXIT_FAIL;

	if (cli_getopt(c, argc, argv, CLI_NO_SHORTS, cli_global_options) != -1 || optind != argc)
		return cli_usage("spokes");
	if (cli_hub_open(c, &h, &err) != 0 ||
	    cli_hub_fetch(&h, TSR_METHOD_LIST_SPOKES, &req.base,
			  &tessera__v1__list_spokes_response__descriptor, "spoke list", &m,
			  &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	r = (Tessera__V1__ListSpokesResponse *)m;
	if (c->json) {
		if (cli_spokes_json(r, &err) != 0) {
			rc = cli_fail(&err);
			goto out;
		}
	} else {
		cli_spokes_table(r);
	}
	rc = CLI_EXIT_OK;
out:
	if (r != NULL)
		tessera__v1__list_spokes_response__free_unpacked(r, NULL);
	cli_hub_close(&h);
	return rc;
}
