/*
 * cli_spokes: tessera spokes, the hub's view of its spokes as a table,
 * with each spoke's load as "running/max" ("-" while the hub knows none),
 * and under it, for each spoke the hub gives a reason for (one that is
 * not connected), a line "ID: REASON"; and tessera drain and undrain, one
 * Hub call each, except drain --wait, which then follows the spoke in
 * ListSpokes until it runs no agent.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_json.h"
#include "cli_print.h"
#include "cli_rpc.h"
#include "clock.h"
#include "hub_limits.h"
#include "protocol.h"
#include "tessera/v1/hub.pb-c.h"

/* Every label a spoke may have, "key=value," each cut at 64 + 64 bytes. */
#define CLI_SPOKES_LABELS_MAX (TSR_LABELS_MAX * (2 * 64 + 2) + 1)
/* Far above the hub's own bound: only a broken hub is cut. */
#define CLI_SPOKES_REASON_MAX 1024
/* The hub learns a spoke's figures every 2 s (and from each of its replies). */
#define CLI_DRAIN_POLL_MS 250

const struct option cli_drain_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "wait", no_argument, NULL, 'w' },
	{ NULL, 0, NULL, 0 },
};

static void cli_spoke_json(struct json *j, const Tessera__V1__SpokeInfo *s)
{
	json_object_begin(j);
	json_key(j, "id");
	json_string(j, s->id);
	json_key(j, "address");
	json_string(j, s->address);
	json_key(j, "state");
	json_string(j, s->state);
	json_key(j, "sinceMs");
	json_int(j, s->since_ms);
	json_key(j, "runningAgents");
	json_int(j, s->running_agents);
	json_key(j, "maxAgents");
	json_int(j, s->max_agents);
	json_key(j, "draining");
	json_bool(j, s->draining);
	json_key(j, "reason");
	json_string(j, s->reason);
	json_key(j, "labels");
	json_object_begin(j);
	for (size_t k = 0; k < s->n_labels; k++) {
		json_key(j, s->labels[k]->key);
		json_string(j, s->labels[k]->value);
	}
	json_object_end(j);
	json_object_end(j);
}

static int cli_spokes_json(const Tessera__V1__ListSpokesResponse *r, struct tsr_err *err)
{
	struct json j;

	json_init(&j);
	json_object_begin(&j);
	json_key(&j, "spokes");
	json_array_begin(&j);
	for (size_t i = 0; i < r->n_spokes; i++)
		cli_spoke_json(&j, r->spokes[i]);
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

/* What drain and undrain show of a spoke: one line, or its JSON object. */
static int cli_spoke_show(const struct cli *c, const Tessera__V1__SpokeInfo *s, struct tsr_err *err)
{
	char load[32];
	struct json j;

	if (c->json) {
		json_init(&j);
		cli_spoke_json(&j, s);
		return cli_json_print(&j, err);
	}
	cli_spokes_load(s, load, sizeof(load));
	printf("%s: %s, running %s\n", s->id, s->draining ? "draining" : "not draining", load);
	return 0;
}

/*
 * Follows spoke id in ListSpokes until it drains and runs no agent, by
 * the figures the hub has (a poll's, at most 2 s old, or a reply's),
 * within --timeout as spawn --wait does. *shown is the last view of it,
 * from *list once one came. FAILED_PRECONDITION if it is undrained
 * meanwhile, DEADLINE_EXCEEDED when time runs out.
 */
static int cli_drain_wait(struct cli_hub *h, const char *id, const Tessera__V1__SpokeInfo **shown,
			  Tessera__V1__ListSpokesResponse **list, struct tsr_err *err)
{
	Tessera__V1__ListSpokesRequest req = TESSERA__V1__LIST_SPOKES_REQUEST__INIT;
	int64_t total = h->timeout_ms, until = clock_mono_ms() + total, left;
	Tessera__V1__ListSpokesResponse *next;
	const Tessera__V1__SpokeInfo *s = *shown;
	ProtobufCMessage *m;

	for (;;) {
		if (!s->draining)
			return tsr_err_set(err, GRPC_STATUS_FAILED_PRECONDITION,
					   "spoke %s is no longer draining: undrained meanwhile",
					   id);
		if (s->max_agents > 0 && s->running_agents == 0)
			return 0;
		left = until - clock_mono_ms();
		if (left <= CLI_DRAIN_POLL_MS && s->max_agents > 0)
			return tsr_err_set(err, GRPC_STATUS_DEADLINE_EXCEEDED,
					   "spoke %s still runs %d agents after %lld s", id,
					   (int)s->running_agents, (long long)(total / 1000));
		if (left <= CLI_DRAIN_POLL_MS)
			return tsr_err_set(err, GRPC_STATUS_DEADLINE_EXCEEDED,
					   "the hub has not known spoke %s's agents for %lld s", id,
					   (long long)(total / 1000));
		cli_sleep_ms(CLI_DRAIN_POLL_MS);
		h->timeout_ms = left - CLI_DRAIN_POLL_MS;
		if (cli_hub_fetch(h, TSR_METHOD_LIST_SPOKES, &req.base,
				  &tessera__v1__list_spokes_response__descriptor, "spoke list", &m,
				  err) != 0)
			return -1;
		next = (Tessera__V1__ListSpokesResponse *)m;
		s = NULL;
		for (size_t i = 0; i < next->n_spokes && s == NULL; i++)
			if (strcmp(next->spokes[i]->id, id) == 0)
				s = next->spokes[i];
		if (s == NULL) {
			tessera__v1__list_spokes_response__free_unpacked(next, NULL);
			return tsr_err_set(err, GRPC_STATUS_NOT_FOUND,
					   "the hub no longer lists spoke %s", id);
		}
		if (*list != NULL)
			tessera__v1__list_spokes_response__free_unpacked(*list, NULL);
		*list = next;
		*shown = s;
	}
}

/* tessera drain SPOKE [--wait] and tessera undrain SPOKE. */
static int cli_drain_cmd(struct cli *c, int argc, char **argv, bool drain)
{
	Tessera__V1__DrainSpokeRequest dreq = TESSERA__V1__DRAIN_SPOKE_REQUEST__INIT;
	Tessera__V1__UndrainSpokeRequest ureq = TESSERA__V1__UNDRAIN_SPOKE_REQUEST__INIT;
	const char *name = drain ? "drain" : "undrain";
	Tessera__V1__ListSpokesResponse *list = NULL;
	const Tessera__V1__SpokeInfo *shown;
	Tessera__V1__SpokeInfo *info = NULL;
	struct cli_hub h = { 0 };
	struct tsr_err err, shown_err;
	ProtobufCMessage *m;
	bool wait = false;
	int opt, rc = CLI_EXIT_FAIL, waited = 0;

	while ((opt = cli_getopt(c, argc, argv, CLI_NO_SHORTS,
				 drain ? cli_drain_options : cli_global_options)) != -1) {
		if (opt != 'w')
			return cli_usage(name);
		wait = true;
	}
	if (argc - optind != 1)
		return cli_usage(name);
	dreq.spoke_id = ureq.spoke_id = argv[optind];
	if (cli_hub_open(c, &h, &err) != 0 ||
	    cli_hub_fetch(&h, drain ? TSR_METHOD_DRAIN_SPOKE : TSR_METHOD_UNDRAIN_SPOKE,
			  drain ? &dreq.base : &ureq.base, &tessera__v1__spoke_info__descriptor,
			  "spoke", &m, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	info = (Tessera__V1__SpokeInfo *)m;
	shown = info;
	if (wait)
		waited = cli_drain_wait(&h, dreq.spoke_id, &shown, &list, &err);
	/* The last view of the spoke is shown even when waiting failed. */
	if (cli_spoke_show(c, shown, &shown_err) != 0) {
		rc = cli_fail(&shown_err);
		goto out;
	}
	rc = waited == 0 ? CLI_EXIT_OK : cli_fail(&err);
out:
	if (info != NULL)
		tessera__v1__spoke_info__free_unpacked(info, NULL);
	if (list != NULL)
		tessera__v1__list_spokes_response__free_unpacked(list, NULL);
	cli_hub_close(&h);
	return rc;
}

int cli_drain(struct cli *c, int argc, char **argv)
{
	return cli_drain_cmd(c, argc, argv, true);
}

int cli_undrain(struct cli *c, int argc, char **argv)
{
	return cli_drain_cmd(c, argc, argv, false);
}
