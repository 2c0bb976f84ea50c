/*
 * cli_watch: tessera watch. Follows WatchEvents until interrupted or N
 * events arrived, printing "watching" on stderr when the hub says the
 * watch is subscribed. A dropped stream is resumed from the last cursor
 * after a backoff, a bounded number of times in a row. A cursor some spoke
 * has trimmed past (OUT_OF_RANGE) is final: resuming it could only skip
 * events, so the watch fails and says how to start over.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_json.h"
#include "cli_print.h"
#include "cli_rpc.h"
#include "pb.h"
#include "protocol.h"
#include "rpc_metadata.h"
#include "status_name.h"
#include "tessera/v1/hub.pb-c.h"

#define CLI_WATCH_RETRIES_MAX 10
#define CLI_WATCH_BACKOFF_MIN_MS 200
#define CLI_WATCH_BACKOFF_MAX_MS 5000
#define CLI_WATCH_COUNT_MAX 1000000000L

struct cli_watch {
	const struct cli *c;
	struct cli_hub h;
	struct rpc_client_call *call; /* the attempt in flight, until on_end */
	char *cursor;		      /* owned: the last cursor received */
	long count;		      /* events wanted; 0: no limit */
	long seen;
	bool said_watching;
	bool ended; /* this attempt's on_end ran */
	grpc_status_code code;
	char details[TSR_ERR_MSG_MAX];
	bool out_failed; /* stdout could not take an event */
	struct tsr_err out_err;
};

static struct rpc_loop *cli_watch_loop; /* for the signal handler */

static void cli_watch_signal(int sig)
{
	(void)sig;
	rpc_loop_stop(cli_watch_loop);
}

/* A hub that accepted the watch sends its starting cursor: resume there. */
static void cli_watch_headers(void *arg, const struct rpc_headers *h)
{
	struct cli_watch *w = arg;
	char cursor[RPC_HEADER_VALUE_MAX + 1];

	if (rpc_headers_get(h, RPC_HEADER_WATCH_CURSOR, cursor, sizeof(cursor)) != 0)
		return;
	if (w->cursor == NULL && cursor[0] != '\0')
		w->cursor = strdup(cursor);
	if (!w->said_watching) {
		fputs("watching\n", stderr);
		fflush(stderr);
		w->said_watching = true;
	}
}

/* Prints one response; -1 if stdout refused it. */
static int cli_watch_print(struct cli_watch *w, const Tessera__V1__WatchEventsResponse *r)
{
	struct json j;
	int rc = 0;

	if (!w->c->json) {
		cli_event_line(stdout, r->event);
	} else {
		json_init(&j);
		json_object_begin(&j);
		json_key(&j, "event");
		cli_event_json(&j, r->event);
		json_key(&j, "cursor");
		json_string(&j, r->cursor);
		json_object_end(&j);
		rc = cli_json_print(&j, &w->out_err);
	}
	if (rc == 0 && fflush(stdout) != 0)
		rc = tsr_err_set(&w->out_err, GRPC_STATUS_INTERNAL, "cannot write output");
	return rc;
}

static void cli_watch_message(void *arg, const uint8_t *msg, size_t len)
{
	struct cli_watch *w = arg;
	Tessera__V1__WatchEventsResponse *r;
	char *cursor;

	if (w->out_failed || (w->count > 0 && w->seen >= w->count))
		return;
	r = tessera__v1__watch_events_response__unpack(NULL, len, msg);
	if (r == NULL || r->event == NULL || (cursor = strdup(r->cursor)) == NULL) {
		tsr_err_set(&w->out_err, GRPC_STATUS_INTERNAL, "the hub sent a malformed event");
		w->out_failed = true;
		rpc_client_cancel(w->call);
		goto out;
	}
	free(w->cursor);
	w->cursor = cursor;
	if (cli_watch_print(w, r) != 0) {
		w->out_failed = true;
		rpc_client_cancel(w->call);
		goto out;
	}
	w->seen++;
	if (w->count > 0 && w->seen >= w->count)
		rpc_client_cancel(w->call);
out:
	if (r != NULL)
		tessera__v1__watch_events_response__free_unpacked(r, NULL);
}

static void cli_watch_end(void *arg, grpc_status_code code, const char *details)
{
	struct cli_watch *w = arg;

	w->call = NULL;
	w->ended = true;
	w->code = code;
	snprintf(w->details, sizeof(w->details), "%s", details);
}

/* One WatchEvents call, run until it ends or a signal stops the loop. */
static int cli_watch_attempt(struct cli_watch *w, Tessera__V1__WatchEventsRequest *req,
			     struct tsr_err *err)
{
	static const struct rpc_stream_cbs cbs = {
		.on_headers = cli_watch_headers,
		.on_message = cli_watch_message,
		.on_end = cli_watch_end,
	};
	struct rpc_client_opts opts;
	uint8_t *buf = NULL;
	size_t len;
	int rc = -1;

	memset(&opts, 0, sizeof(opts));
	cli_hub_metadata(&w->h, &opts);
	w->ended = false;
	req->cursor = w->cursor != NULL ? w->cursor : req->cursor;
	if (pb_pack(&req->base, &buf, &len, err) != 0 ||
	    rpc_client_stream(w->h.loop, w->h.ch, TSR_METHOD_WATCH_EVENTS, buf, len, &opts, &cbs, w,
			      &w->call, err) != 0)
		goto out;
	rpc_loop_run(w->h.loop, &w->ended);
	if (!w->ended) {
		/* Interrupted: cancel, and let the call end through its callback. */
		rpc_client_cancel(w->call);
		while (!w->ended)
			rpc_loop_drain(w->h.loop, 1000);
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Sleeps ms unless a signal stops the loop first; false if it did. */
static bool cli_watch_backoff(struct cli_watch *w, int64_t ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 50 * 1000000L };

	for (int64_t slept = 0; slept < ms; slept += 50) {
		if (rpc_loop_stopping(w->h.loop))
			return false;
		nanosleep(&ts, NULL);
	}
	return !rpc_loop_stopping(w->h.loop);
}

/* Runs attempts until done; the exit status. */
static int cli_watch_run(struct cli_watch *w, Tessera__V1__WatchEventsRequest *req)
{
	int64_t backoff = CLI_WATCH_BACKOFF_MIN_MS;
	struct tsr_err err;
	int retries = 0, rc;
	long before;

	for (;;) {
		before = w->seen;
		if (cli_watch_attempt(w, req, &err) != 0)
			return cli_fail(&err);
		if (w->out_failed)
			return cli_fail(&w->out_err);
		if (rpc_loop_stopping(w->h.loop) || (w->count > 0 && w->seen >= w->count))
			return CLI_EXIT_OK;
		/* Only events prove progress: a refusal also comes with headers. */
		if (w->seen > before) {
			retries = 0;
			backoff = CLI_WATCH_BACKOFF_MIN_MS;
		}
		/* Both mean "resume from your cursor": nothing is lost by doing so. */
		if (w->code == GRPC_STATUS_OK) {
			tsr_err_set(&err, GRPC_STATUS_UNAVAILABLE, "the hub ended the watch");
			return cli_fail(&err);
		}
		if ((w->code != GRPC_STATUS_UNAVAILABLE &&
		     w->code != GRPC_STATUS_RESOURCE_EXHAUSTED) ||
		    retries == CLI_WATCH_RETRIES_MAX) {
			tsr_err_set(&err, w->code, "%s", w->details);
			rc = cli_fail(&err);
			if (w->code == GRPC_STATUS_OUT_OF_RANGE)
				fputs("tessera: events were lost to retention: run tessera watch "
				      "without --cursor, or with --from-start\n",
				      stderr);
			return rc;
		}
		fprintf(stderr, "tessera: %s: %s; reconnecting in %lld ms\n", status_name(w->code),
			w->details, (long long)backoff);
		retries++;
		if (!cli_watch_backoff(w, backoff))
			return CLI_EXIT_OK;
		backoff = backoff * 2 > CLI_WATCH_BACKOFF_MAX_MS ? CLI_WATCH_BACKOFF_MAX_MS
								 : backoff * 2;
	}
}

const struct option cli_watch_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "agent", required_argument, NULL, 'a' },
	{ "spoke", required_argument, NULL, 's' },
	{ "from-start", no_argument, NULL, 'f' },
	{ "cursor", required_argument, NULL, 'C' },
	{ "count", required_argument, NULL, 'n' },
	{ NULL, 0, NULL, 0 },
};

int cli_watch(struct cli *c, int argc, char **argv)
{
	Tessera__V1__WatchEventsRequest req = TESSERA__V1__WATCH_EVENTS_REQUEST__INIT;
	struct cli_watch w;
	struct sigaction sa;
	struct tsr_err err;
	char *end;
	int opt, rc = CLI_EXIT_FAIL;

	memset(&w, 0, sizeof(w));
	w.c = c;
	while ((opt = cli_getopt(c, argc, argv, CLI_NO_SHORTS, cli_watch_options)) != -1) {
		switch (opt) {
		case 'a':
			req.agent_id = optarg;
			break;
		case 's':
			req.spoke_id = optarg;
			break;
		case 'f':
			req.from_start = true;
			break;
		case 'C':
			req.cursor = optarg;
			break;
		case 'n':
			w.count = strtol(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || w.count < 1 ||
			    w.count > CLI_WATCH_COUNT_MAX)
				return cli_usage("watch");
			break;
		default:
			return cli_usage("watch");
		}
	}
	if (optind != argc)
		return cli_usage("watch");
	if (cli_hub_open(c, &w.h, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	cli_watch_loop = w.h.loop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_watch_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = cli_watch_run(&w, &req);
out:
	cli_hub_close(&w.h);
	free(w.cursor);
	return rc;
}
