/*
 * tessera-list-bench: fills a spoke's Valkey with agents through the real
 * store functions, then times agent.list walks over them, and the index
 * rebuild an upgraded spoke does. Prints figures; the exit status only says
 * whether the set-up worked. For tests/bench/list_bench.sh; never installed.
 *
 * usage: tessera-list-bench VALKEY_ADDR AGENTS
 *        tessera-list-bench VALKEY_ADDR --reindex
 * Agent i is of type "type<i % 4>", labelled shard=<i % 10> and
 * team=<i % 3>, created at a distinct millisecond; one in 1000 is left
 * RUNNING and the rest FAILED, so that RUNNING is a rare state. --reindex
 * times store_indexes_ensure over what is stored (the caller has deleted
 * the secondary indexes, as data of an older spoke lacks them), then the
 * RUNNING walk again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ids.h"
#include "store.h"

#define BENCH_SPOKE "bench"
#define BENCH_AGENTS_MAX 10000000
#define BENCH_PAGES_MAX 1000000
#define BENCH_RUNNING_EVERY 1000

#define RUNNING TESSERA__V1__AGENT_STATE__AGENT_STATE_RUNNING
#define FAILED TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED
#define UNSPECIFIED TESSERA__V1__AGENT_STATE__AGENT_STATE_UNSPECIFIED

static int bench_fill(struct store *st, long n, struct tsr_err *err)
{
	Tessera__V1__Agent__LabelsEntry e[2], *ep[2] = { &e[0], &e[1] };
	char id[TSR_AGENT_ID_MAX + 1], existing[TSR_AGENT_ID_MAX + 1], pos[STORE_POSITION_MAX];
	char type[16], shard[8], team[8];
	struct store_update upd = { .has_error = true, .error = "bench" };
	int64_t t0 = clock_mono_ms(), base = clock_wall_ms() - n;

	for (long i = 0; i < n; i++) {
		Tessera__V1__Agent a = TESSERA__V1__AGENT__INIT;

		if (ids_new_agent_id(BENCH_SPOKE, id, sizeof(id)) != 0)
			return tsr_err_set(err, GRPC_STATUS_INTERNAL, "cannot make an agent id");
		snprintf(type, sizeof(type), "type%ld", i % 4);
		snprintf(shard, sizeof(shard), "%ld", i % 10);
		snprintf(team, sizeof(team), "%ld", i % 3);
		tessera__v1__agent__labels_entry__init(&e[0]);
		e[0].key = "shard";
		e[0].value = shard;
		tessera__v1__agent__labels_entry__init(&e[1]);
		e[1].key = "team";
		e[1].value = team;
		a.id = id;
		a.type = type;
		a.task = "bench";
		a.created_at_ms = base + i;
		a.labels = ep;
		a.n_labels = 2;
		if (store_agent_create(st, &a, existing, sizeof(existing), err) != 0 ||
		    store_agent_transition(st, id, i % BENCH_RUNNING_EVERY == 0 ? RUNNING : FAILED,
					   i % BENCH_RUNNING_EVERY == 0 ? NULL : &upd, pos,
					   sizeof(pos), err) != 0)
			return -1;
	}
	printf("# stored %ld agents (create + transition each) in %lld ms\n", n,
	       (long long)(clock_mono_ms() - t0));
	return 0;
}

/* Walks one listing to its end and prints pages, agents and times. */
static int bench_walk(struct store *st, const char *what, Tessera__V1__AgentState state,
		      const char *type, const struct tsr_label *labels, size_t nlabels,
		      uint32_t page_size, struct tsr_err *err)
{
	Tessera__V1__AgentPage *page = NULL;
	char token[TSR_AGENT_ID_MAX + 1] = "";
	int64_t t0 = clock_mono_ms(), first_ms = -1, slowest = 0, t;
	long pages = 0, agents = 0, empty = 0;
	int rc = -1;

	for (;;) {
		if (pages == BENCH_PAGES_MAX) {
			tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "too many pages");
			goto out;
		}
		t = clock_mono_ms();
		if (store_agent_list(st, state, type, labels, nlabels, page_size, token, &page,
				     err) != 0)
			goto out;
		t = clock_mono_ms() - t;
		if (t > slowest)
			slowest = t;
		if (first_ms < 0)
			first_ms = t;
		pages++;
		agents += (long)page->n_agents;
		empty += page->n_agents == 0;
		snprintf(token, sizeof(token), "%s", page->next_page_token);
		tessera__v1__agent_page__free_unpacked(page, NULL);
		page = NULL;
		if (token[0] == '\0')
			break;
	}
	printf("# %-34s %7ld agents %6ld pages (%ld empty): walk %6lld ms, "
	       "first page %lld ms, slowest page %lld ms\n",
	       what, agents, pages, empty, (long long)(clock_mono_ms() - t0), (long long)first_ms,
	       (long long)slowest);
	rc = 0;
out:
	if (page != NULL)
		tessera__v1__agent_page__free_unpacked(page, NULL);
	return rc;
}

static int bench_reindex(struct store *st, struct tsr_err *err)
{
	int64_t t0 = clock_mono_ms();

	if (store_indexes_ensure(st, err) != 0)
		return -1;
	printf("# index rebuild (store_indexes_ensure) took %lld ms\n",
	       (long long)(clock_mono_ms() - t0));
	return bench_walk(st, "state=RUNNING after the rebuild", RUNNING, "", NULL, 0, 0, err);
}

int main(int argc, char **argv)
{
	static const struct tsr_label shard3 = { "shard", "3" };
	static const struct tsr_label nobody = { "team", "none" };
	static const struct tsr_label shard3team1[] = { { "shard", "3" }, { "team", "1" } };
	struct store *st = NULL;
	struct tsr_err err;
	char *end;
	long n;
	int rc = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: tessera-list-bench VALKEY_ADDR AGENTS|--reindex\n");
		return 2;
	}
	if (strcmp(argv[2], "--reindex") == 0) {
		if (store_open(argv[1], BENCH_SPOKE, NULL, &st, &err) == 0 &&
		    bench_reindex(st, &err) == 0)
			rc = 0;
		goto out;
	}
	n = strtol(argv[2], &end, 10);
	if (*argv[2] == '\0' || *end != '\0' || n < 1 || n > BENCH_AGENTS_MAX) {
		fprintf(stderr, "tessera-list-bench: AGENTS must be 1-%d\n", BENCH_AGENTS_MAX);
		return 2;
	}
	/* As a spoke's start-up does, before any agent: nothing to index yet. */
	if (store_open(argv[1], BENCH_SPOKE, NULL, &st, &err) != 0 ||
	    store_indexes_ensure(st, &err) != 0 || bench_fill(st, n, &err) != 0 ||
	    bench_walk(st, "state=RUNNING", RUNNING, "", NULL, 0, 0, &err) != 0 ||
	    bench_walk(st, "type=type1", UNSPECIFIED, "type1", NULL, 0, 0, &err) != 0 ||
	    bench_walk(st, "type=type1, pages of 500", UNSPECIFIED, "type1", NULL, 0,
		       TSR_PAGE_SIZE_MAX, &err) != 0 ||
	    bench_walk(st, "state=RUNNING type=type0", RUNNING, "type0", NULL, 0, 0, &err) != 0 ||
	    bench_walk(st, "state=RUNNING label shard=3", RUNNING, "", &shard3, 1, 0, &err) != 0 ||
	    bench_walk(st, "label shard=3", UNSPECIFIED, "", &shard3, 1, 0, &err) != 0 ||
	    /* What every rare filter cost before the state and type indexes. */
	    bench_walk(st, "label team=none (main index only)", UNSPECIFIED, "", &nobody, 1, 0,
		       &err) != 0 ||
	    bench_walk(st, "type=type3 labels shard=3 team=1", UNSPECIFIED, "type3", shard3team1, 2,
		       0, &err) != 0 ||
	    bench_walk(st, "no filter, pages of 500", UNSPECIFIED, "", NULL, 0, TSR_PAGE_SIZE_MAX,
		       &err) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "tessera-list-bench: %s\n", err.msg);
	if (st != NULL)
		store_close(st);
	return rc;
}
