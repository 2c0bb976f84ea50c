/*
 * hub_metrics: the hub's Prometheus metrics and what feeds them (the
 * registry and the HTTP server are common/metrics*.h):
 *
 *   tessera_hub_relay_calls_total{method,code}  commands relayed to spokes, by
 *                                               command type and how they ended
 *   tessera_hub_relay_seconds{method}           from sending one to its outcome
 *   tessera_hub_relays_in_flight                relayed commands not answered yet
 *   tessera_hub_api_calls_total{method,code}    calls of the hub's gRPC services
 *   tessera_hub_spoke_up{spoke}                 1 while connected (draining too), else 0
 *   tessera_hub_spoke_last_poll_timestamp_seconds{spoke}  its last status answer
 *   tessera_hub_spoke_running_agents{spoke}     its running agents as last heard
 *   tessera_hub_watchers                        WatchEvents calls open
 *   tessera_hub_events_delivered_total          events sent to watchers
 *   and process_* (common/metrics_process.h).
 *
 * The spoke gauges, watchers and relays in flight are read from the
 * loop's own state by hub_metrics_tick, on the loop thread, and kept in
 * atomics that a scrape only reads. Every hook does nothing with hm NULL.
 */
#ifndef TSR_HUB_HUB_METRICS_H
#define TSR_HUB_HUB_METRICS_H

#include <stdint.h>

#include "error.h"
#include "hub_config.h"
#include "tessera/v1/spoke.pb-c.h"

struct hub;
struct hub_metrics;

/*
 * With a metrics-listen line in cfg: the families, a series for each
 * configured spoke, and the HTTP server; without one, *out is NULL and
 * nothing is counted.
 */
int hub_metrics_start(const struct hub_config *cfg, struct hub_metrics **out, struct tsr_err *err);
/* Once nothing calls a hook: stops the server. NULL is fine. */
void hub_metrics_stop(struct hub_metrics *hm);

/* A relayed command of type, sent at began_ns (clock_mono_ns), ended with code. */
void hub_metrics_relay(struct hub_metrics *hm, Tessera__V1__CommandType type, grpc_status_code code,
		       int64_t began_ns);
/* An rpc_observe_fn (rpc_server.h), ctx the struct hub_metrics. */
void hub_metrics_api_call(void *ctx, const char *path, grpc_status_code code);
/* An event went to a watcher. */
void hub_metrics_delivered(struct hub_metrics *hm);
/* Loop thread: the spokes' state, the watchers and the relays in flight, now. */
void hub_metrics_tick(struct hub_metrics *hm, const struct hub *h);

#endif
