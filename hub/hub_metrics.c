/* hub_metrics: the hub's families, a series per spoke, and the hooks. */
#include "hub_metrics.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "hub.h"
#include "metrics_http.h"
#include "metrics_process.h"
#include "protocol.h"
#include "relay.h"
#include "status_name.h"
#include "watch.h"

enum {
	HM_RELAYS,
	HM_RELAY_SECONDS,
	HM_IN_FLIGHT,
	HM_API_CALLS,
	HM_SPOKE_UP,
	HM_SPOKE_POLL,
	HM_SPOKE_RUNNING,
	HM_WATCHERS,
	HM_DELIVERED,
	HM_COUNT
};

static const struct metric_desc hub_metrics_desc[HM_COUNT] = {
	[HM_RELAYS] = { .name = "tessera_hub_relay_calls_total",
			.help = "Commands relayed to spokes, by command type and the gRPC status "
				"they ended with (the spoke's, or the hub's when none came).",
			.type = METRIC_COUNTER,
			.labels = { "method", "code" } },
	[HM_RELAY_SECONDS] = { .name = "tessera_hub_relay_seconds",
			       .help = "Seconds from relaying a command to its outcome.",
			       .type = METRIC_HISTOGRAM,
			       .labels = { "method" },
			       .buckets = &metrics_buckets_latency },
	[HM_IN_FLIGHT] = { .name = "tessera_hub_relays_in_flight",
			   .help = "Commands relayed to spokes and not answered yet.",
			   .type = METRIC_GAUGE },
	[HM_API_CALLS] = { .name = "tessera_hub_api_calls_total",
			   .help = "Calls of the hub's gRPC services, by method and gRPC status.",
			   .type = METRIC_COUNTER,
			   .labels = { "method", "code" } },
	[HM_SPOKE_UP] = { .name = "tessera_hub_spoke_up",
			  .help = "1 while the spoke is connected (draining included), else 0.",
			  .type = METRIC_GAUGE,
			  .labels = { "spoke" } },
	[HM_SPOKE_POLL] = { .name = "tessera_hub_spoke_last_poll_timestamp_seconds",
			    .help = "When the spoke last answered a status poll (0: never).",
			    .type = METRIC_GAUGE,
			    .labels = { "spoke" } },
	[HM_SPOKE_RUNNING] = { .name = "tessera_hub_spoke_running_agents",
			       .help = "The spoke's running agents as last heard, with spawns "
				       "placed since (0 while unknown).",
			       .type = METRIC_GAUGE,
			       .labels = { "spoke" } },
	[HM_WATCHERS] = { .name = "tessera_hub_watchers",
			  .help = "WatchEvents calls open.",
			  .type = METRIC_GAUGE },
	[HM_DELIVERED] = { .name = "tessera_hub_events_delivered_total",
			   .help = "Events sent to watchers.",
			   .type = METRIC_COUNTER },
};

/* One spoke's series, and the poll time last set. */
struct hm_spoke {
	struct metric_series *up, *poll, *running;
	int64_t load_at_ms; /* monotonic, as struct spoke has it */
};

struct hub_metrics {
	struct metrics *reg;
	struct metrics_http *http;
	struct metrics_process proc;
	struct metric_family *f[HM_COUNT];
	struct metric_series *in_flight, *watchers, *delivered;
	struct hm_spoke *spokes; /* owned, one per configured spoke, in its order */
	size_t nspokes;
};

static int hm_families(struct hub_metrics *hm, struct tsr_err *err)
{
	for (int i = 0; i < HM_COUNT; i++)
		if (metrics_add(hm->reg, &hub_metrics_desc[i], &hm->f[i], err) != 0)
			return -1;
	hm->in_flight = metrics_series(hm->f[HM_IN_FLIGHT], NULL);
	hm->watchers = metrics_series(hm->f[HM_WATCHERS], NULL);
	hm->delivered = metrics_series(hm->f[HM_DELIVERED], NULL);
	return metrics_process_register(hm->reg, &hm->proc, err);
}

static int hm_spokes(struct hub_metrics *hm, const struct hub_config *cfg, struct tsr_err *err)
{
	hm->spokes = calloc(cfg->nspokes, sizeof(*hm->spokes));
	if (hm->spokes == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	hm->nspokes = cfg->nspokes;
	for (size_t i = 0; i < cfg->nspokes; i++) {
		const char *id = cfg->spokes[i].id;

		hm->spokes[i].up = metrics_series1(hm->f[HM_SPOKE_UP], id);
		hm->spokes[i].poll = metrics_series1(hm->f[HM_SPOKE_POLL], id);
		hm->spokes[i].running = metrics_series1(hm->f[HM_SPOKE_RUNNING], id);
	}
	return 0;
}

int hub_metrics_start(const struct hub_config *cfg, struct hub_metrics **out, struct tsr_err *err)
{
	struct hub_metrics *hm = NULL;
	int rc = -1;

	*out = NULL;
	if (cfg->metrics_listen[0] == '\0')
		return 0;
	hm = calloc(1, sizeof(*hm));
	if (hm == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	if (metrics_new(&hm->reg, err) != 0 || hm_families(hm, err) != 0 ||
	    hm_spokes(hm, cfg, err) != 0 ||
	    metrics_http_start(cfg->metrics_listen, hm->reg, &hm->http, err) != 0)
		goto out;
	*out = hm;
	hm = NULL;
	rc = 0;
out:
	hub_metrics_stop(hm);
	return rc;
}

void hub_metrics_stop(struct hub_metrics *hm)
{
	if (hm == NULL)
		return;
	metrics_http_stop(hm->http);
	free(hm->spokes);
	metrics_free(hm->reg);
	free(hm);
}

void hub_metrics_relay(struct hub_metrics *hm, Tessera__V1__CommandType type, grpc_status_code code,
		       int64_t began_ns)
{
	const char *method = protocol_command_name(type);

	if (hm == NULL)
		return;
	metric_inc(metrics_series(hm->f[HM_RELAYS],
				  (const char *const[]){ method, status_name(code) }));
	metric_observe(metrics_series1(hm->f[HM_RELAY_SECONDS], method),
		       (double)(clock_mono_ns() - began_ns) / 1e9);
}

void hub_metrics_api_call(void *ctx, const char *path, grpc_status_code code)
{
	struct hub_metrics *hm = ctx;
	const char *slash = path != NULL ? strrchr(path, '/') : NULL;
	const char *method = slash != NULL ? slash + 1 : "unknown";

	if (hm != NULL)
		metric_inc(metrics_series(hm->f[HM_API_CALLS],
					  (const char *const[]){ method, status_name(code) }));
}

void hub_metrics_delivered(struct hub_metrics *hm)
{
	if (hm != NULL)
		metric_inc(hm->delivered);
}

void hub_metrics_tick(struct hub_metrics *hm, const struct hub *h)
{
	int64_t wall = clock_wall_ms(), mono = clock_mono_ms();

	if (hm == NULL)
		return;
	for (size_t i = 0; i < h->spokes->n && i < hm->nspokes; i++) {
		const struct spoke *sp = &h->spokes->v[i];
		struct hm_spoke *s = &hm->spokes[i];

		metric_set(s->up, sp->health == SPOKE_CONNECTED ? 1 : 0);
		metric_set(s->running, sp->load_known ? sp->running : 0);
		/* Set when it changes, so that a scrape sees one time per answer. */
		if (sp->load_at_ms != s->load_at_ms) {
			s->load_at_ms = sp->load_at_ms;
			metric_set(s->poll, (double)(wall - (mono - sp->load_at_ms)) / 1000.0);
		}
	}
	metric_set(hm->watchers, (double)watches_count(h->watches));
	metric_set(hm->in_flight, (double)relays_count(h->relays));
}
