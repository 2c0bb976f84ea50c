/*
 * cli_logs: tessera logs. Prints an agent's output as its spoke holds it
 * (ReadAgentOutput), raw, even with --json; with -f follows it live until
 * the agent ends, then says on stderr how it ended and exits 0 only if it
 * COMPLETED. A dropped stream (a hub restart, say) is resumed at the byte
 * it got to, a bounded number of times in a row; bytes the spoke no
 * longer held when the stream got there are reported, never invented.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_print.h"
#include "cli_rpc.h"
#include "pb.h"
#include "protocol.h"
#include "status_name.h"
#include "tessera/v1/hub.pb-c.h"

#define CLI_LOGS_RETRIES_MAX 10
#define CLI_LOGS_BACKOFF_MIN_MS 200
#define CLI_LOGS_BACKOFF_MAX_MS 5000
#define CLI_LOGS_TAIL_DEFAULT 10 /* lines -f starts with, as tail -f does */

struct cli_logs {
	struct cli_hub h;
	struct rpc_client_call *call; /* the attempt in flight, until on_end */
	int64_t next;		      /* the offset to resume at; -1: none yet */
	Tessera__V1__Agent *agent;    /* owned: from the end chunk */
	bool progress;		      /* this attempt brought a chunk */
	bool ended;		      /* this attempt's on_end ran */
	grpc_status_code code;
	char details[TSR_ERR_MSG_MAX];
	bool failed; /* the output could not be written or read */
	struct tsr_err err;
};

static struct rpc_loop *cli_logs_loop; /* for the signal handler */

static void cli_logs_signal(int sig)
{
	(void)sig;
	rpc_loop_stop(cli_logs_loop);
}

static int cli_logs_chunk(struct cli_logs *l, Tessera__V1__OutputChunk *c)
{
	if (c->skipped > 0)
		fprintf(stderr, "tessera: skipped %lld bytes of output the spoke no longer holds\n",
			(long long)c->skipped);
	/* An empty chunk (the end) may carry no buffer at all. */
	if ((c->data.len > 0 && fwrite(c->data.data, 1, c->data.len, stdout) != c->data.len) ||
	    fflush(stdout) != 0)
		return tsr_err_set(&l->err, GRPC_STATUS_UNKNOWN, "writing the output: %s",
				   strerror(errno));
	l->next = c->offset + (int64_t)c->data.len;
	l->progress = true;
	if (c->end && c->agent != NULL) {
		l->agent = c->agent;
		c->agent = NULL;
	}
	return 0;
}

static void cli_logs_message(void *arg, const uint8_t *msg, size_t len)
{
	struct cli_logs *l = arg;
	Tessera__V1__OutputChunk *c;

	if (l->failed)
		return;
	c = tessera__v1__output_chunk__unpack(NULL, len, msg);
	if (c == NULL)
		tsr_err_set(&l->err, GRPC_STATUS_INTERNAL, "the hub sent a malformed chunk");
	if (c == NULL || cli_logs_chunk(l, c) != 0) {
		l->failed = true;
		rpc_client_cancel(l->call);
	}
	if (c != NULL)
		tessera__v1__output_chunk__free_unpacked(c, NULL);
}

static void cli_logs_end(void *arg, grpc_status_code code, const char *details)
{
	struct cli_logs *l = arg;

	l->call = NULL;
	l->ended = true;
	l->code = code;
	snprintf(l->details, sizeof(l->details), "%s", details);
}

/* One ReadAgentOutput call, run until it ends or a signal stops the loop. */
static int cli_logs_attempt(struct cli_logs *l, Tessera__V1__ReadAgentOutputRequest *req,
			    struct tsr_err *err)
{
	static const struct rpc_stream_cbs cbs = {
		.on_message = cli_logs_message,
		.on_end = cli_logs_end,
	};
	struct rpc_client_opts opts;
	uint8_t *buf = NULL;
	size_t len;
	int rc = -1;

	memset(&opts, 0, sizeof(opts));
	cli_hub_metadata(&l->h, &opts);
	l->ended = l->progress = false;
	/* Resuming: exactly where the last chunk ended. */
	if (l->next >= 0) {
		req->offset = l->next;
		req->from_start = l->next == 0;
		req->tail_lines = 0;
	}
	if (pb_pack(&req->base, &buf, &len, err) != 0 ||
	    rpc_client_stream(l->h.loop, l->h.ch, TSR_METHOD_READ_AGENT_OUTPUT, buf, len, &opts,
			      &cbs, l, &l->call, err) != 0)
		goto out;
	rpc_loop_run(l->h.loop, &l->ended);
	if (!l->ended) {
		/* Interrupted: cancel, and let the call end through its callback. */
		rpc_client_cancel(l->call);
		while (!l->ended)
			rpc_loop_drain(l->h.loop, 1000);
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* How the agent ended, on stderr; the exit status that says it. */
static int cli_logs_verdict(const Tessera__V1__Agent *a)
{
	char state[32];

	cli_state_short(a->state, state, sizeof(state));
	fprintf(stderr, "tessera: agent %s %s", a->id, state);
	if (a->end_case == TESSERA__V1__AGENT__END_EXIT_CODE)
		fprintf(stderr, " (exit %d)", a->exit_code);
	else if (a->end_case == TESSERA__V1__AGENT__END_SIGNAL)
		fprintf(stderr, " (signal %d)", a->signal);
	if (a->error[0] != '\0') {
		fputs(": ", stderr);
		cli_put_safe(stderr, a->error, TSR_ERROR_MAX);
	}
	fputc('\n', stderr);
	return a->state == TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED ? CLI_EXIT_OK
									   : CLI_EXIT_FAIL;
}

/* Runs attempts until the output ends; the exit status. */
static int cli_logs_run(struct cli_logs *l, Tessera__V1__ReadAgentOutputRequest *req)
{
	int64_t backoff = CLI_LOGS_BACKOFF_MIN_MS;
	struct tsr_err err;
	int retries = 0;

	for (;;) {
		if (cli_logs_attempt(l, req, &err) != 0)
			return cli_fail(&err);
		if (l->failed)
			return cli_fail(&l->err);
		if (rpc_loop_stopping(l->h.loop))
			return CLI_EXIT_OK;
		if (l->code == GRPC_STATUS_OK)
			return req->follow && l->agent != NULL ? cli_logs_verdict(l->agent)
							       : CLI_EXIT_OK;
		if (l->progress) {
			retries = 0;
			backoff = CLI_LOGS_BACKOFF_MIN_MS;
		}
		if (l->code != GRPC_STATUS_UNAVAILABLE || retries == CLI_LOGS_RETRIES_MAX) {
			tsr_err_set(&err, l->code, "%s", l->details);
			return cli_fail(&err);
		}
		fprintf(stderr, "tessera: %s: %s; resuming in %lld ms\n", status_name(l->code),
			l->details, (long long)backoff);
		retries++;
		cli_sleep_ms(backoff);
		if (rpc_loop_stopping(l->h.loop))
			return CLI_EXIT_OK;
		backoff = backoff * 2 > CLI_LOGS_BACKOFF_MAX_MS ? CLI_LOGS_BACKOFF_MAX_MS
								: backoff * 2;
	}
}

const struct option cli_logs_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "follow", no_argument, NULL, 'f' },
	{ "since-start", no_argument, NULL, 'S' },
	{ "tail", required_argument, NULL, 'n' },
	{ NULL, 0, NULL, 0 },
};

/* The request the flags ask for; -1 on a usage error. */
static int cli_logs_args(struct cli *c, int argc, char **argv,
			 Tessera__V1__ReadAgentOutputRequest *req)
{
	bool since_start = false;
	long tail = -1;
	char *end;
	int opt;

	while ((opt = cli_getopt(c, argc, argv, CLI_LOGS_SHORTS, cli_logs_options)) != -1) {
		if (opt == 'f') {
			req->follow = true;
		} else if (opt == 'S') {
			since_start = true;
		} else if (opt == 'n') {
			tail = strtol(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' ||
			    tail > TSR_OUTPUT_TAIL_LINES_MAX)
				return -1;
		} else {
			return -1;
		}
	}
	if (optind != argc - 1 || (since_start && tail >= 0))
		return -1;
	req->agent_id = argv[optind];
	/* Without -f, all it holds, as before; with it, the last lines and on. */
	req->from_start = since_start || (!req->follow && tail < 0);
	if (!req->from_start)
		req->tail_lines = tail >= 0 ? (uint32_t)tail : CLI_LOGS_TAIL_DEFAULT;
	return 0;
}

int cli_logs(struct cli *c, int argc, char **argv)
{
	Tessera__V1__ReadAgentOutputRequest req = TESSERA__V1__READ_AGENT_OUTPUT_REQUEST__INIT;
	struct cli_logs l;
	struct sigaction sa;
	struct tsr_err err;
	int rc;

	if (cli_logs_args(c, argc, argv, &req) != 0)
		return cli_usage("logs");
	memset(&l, 0, sizeof(l));
	l.next = -1;
	if (cli_hub_open(c, &l.h, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	cli_logs_loop = l.h.loop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_logs_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = cli_logs_run(&l, &req);
out:
	cli_hub_close(&l.h);
	if (l.agent != NULL)
		tessera__v1__agent__free_unpacked(l.agent, NULL);
	return rc;
}
