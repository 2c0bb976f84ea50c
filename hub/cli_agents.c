/*
 * cli_agents: tessera spawn, get, kill and list: one Hub call each, except
 * kill (and spawn --wait), which then follow the agent to its end, and
 * list, which follows page tokens (a bounded number of them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_json.h"
#include "cli_print.h"
#include "cli_rpc.h"
#include "clock.h"
#include "ids.h"
#include "hub_limits.h"
#include "tessera/v1/hub.pb-c.h"

#define CLI_WAIT_POLL_MS 100
#define CLI_LIST_PAGES_MAX 100
#define CLI_ROWS_MAX (CLI_LIST_PAGES_MAX * HUB_PAGE_SIZE_MAX)

/* Reads the task from stdin into *out (malloc'd), refusing more than TSR_TASK_MAX. */
static int cli_read_task(char **out, struct tsr_err *err)
{
	char *buf;
	size_t len = 0;
	ssize_t n;
	int rc = -1;

	buf = malloc(TSR_TASK_MAX + 2);
	if (buf == NULL) {
		tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	while (len <= TSR_TASK_MAX) {
		n = read(STDIN_FILENO, buf + len, TSR_TASK_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "reading stdin: %s",
				    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > TSR_TASK_MAX) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "task is longer than %d bytes",
			    TSR_TASK_MAX);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "task contains a NUL byte");
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Calls method with req and unpacks the Agent it answers. */
static int cli_agent_call(struct cli_hub *h, const char *method, const ProtobufCMessage *req,
			  Tessera__V1__Agent **out, struct tsr_err *err)
{
	uint8_t *resp = NULL;
	size_t len;
	int rc = -1;

	if (cli_hub_call(h, method, req, &resp, &len, err) != 0)
		goto out;
	*out = tessera__v1__agent__unpack(NULL, len, resp);
	if (*out == NULL) {
		tsr_err_set(err, GRPC_STATUS_INTERNAL, "the hub answered a malformed agent");
		goto out;
	}
	rc = 0;
out:
	free(resp);
	return rc;
}

static void cli_sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Polls GetAgent until *a is terminal; DEADLINE_EXCEEDED when time runs out. */
static int cli_wait_end(struct cli_hub *h, Tessera__V1__Agent **a, struct tsr_err *err)
{
	Tessera__V1__GetAgentRequest req = TESSERA__V1__GET_AGENT_REQUEST__INIT;
	int64_t total = h->timeout_ms, until = clock_mono_ms() + total, left;
	char state[CLI_STATE_MAX];
	Tessera__V1__Agent *next;

	req.agent_id = (*a)->id;
	while (!cli_state_terminal((*a)->state)) {
		left = until - clock_mono_ms();
		if (left <= CLI_WAIT_POLL_MS) {
			cli_state_short((*a)->state, state, sizeof(state));
			return tsr_err_set(err, GRPC_STATUS_DEADLINE_EXCEEDED,
					   "agent %s is still %s after %lld s", (*a)->id, state,
					   (long long)(total / 1000));
		}
		cli_sleep_ms(CLI_WAIT_POLL_MS);
		h->timeout_ms = left - CLI_WAIT_POLL_MS;
		if (cli_agent_call(h, "/tessera.v1.Hub/GetAgent", &req.base, &next, err) != 0)
			return -1;
		tessera__v1__agent__free_unpacked(*a, NULL);
		*a = next;
		req.agent_id = (*a)->id;
	}
	return 0;
}

/*
 * "--label k=v" into the next of the n entries (at most HUB_LABELS_MAX);
 * the hub checks the rest. arg is cut at the '=' in place.
 */
static int cli_spawn_label(char *arg, Tessera__V1__SpawnAgentRequest__SpokeLabelsEntry *labels,
			   Tessera__V1__SpawnAgentRequest__SpokeLabelsEntry **labelp, size_t *n)
{
	char *eq = strchr(arg, '=');

	if (eq == NULL || eq == arg || *n == HUB_LABELS_MAX) {
		fprintf(stderr, "tessera: --label takes KEY=VALUE, at most %d times\n",
			HUB_LABELS_MAX);
		return -1;
	}
	*eq = '\0';
	tessera__v1__spawn_agent_request__spoke_labels_entry__init(&labels[*n]);
	labels[*n].key = arg;
	labels[*n].value = eq + 1;
	labelp[*n] = &labels[*n];
	(*n)++;
	return 0;
}

/*
 * "FLAG k=v" into labels[*n] (at most TSR_LABELS_MAX), cut at the '=' in
 * place; the hub checks keys and values.
 */
static int cli_label_arg(char *arg, const char *flag, struct tsr_label *labels, size_t *n)
{
	char *eq = strchr(arg, '=');

	if (eq == NULL || eq == arg || *n == TSR_LABELS_MAX) {
		fprintf(stderr, "tessera: %s takes KEY=VALUE, at most %d times\n", flag,
			TSR_LABELS_MAX);
		return -1;
	}
	*eq = '\0';
	labels[*n].key = arg;
	labels[*n].value = eq + 1;
	(*n)++;
	return 0;
}

/* After --wait: 0 if a ended COMPLETED, else -1 with why on stderr. */
static int cli_spawn_outcome(const Tessera__V1__Agent *a)
{
	char state[CLI_STATE_MAX], why[TSR_ERR_MSG_MAX];

	if (a->state == TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED)
		return 0;
	cli_state_short(a->state, state, sizeof(state));
	if (a->error[0] != '\0')
		snprintf(why, sizeof(why), "%.200s", a->error);
	else if (a->end_case == TESSERA__V1__AGENT__END_EXIT_CODE)
		snprintf(why, sizeof(why), "exit code %d", (int)a->exit_code);
	else if (a->end_case == TESSERA__V1__AGENT__END_SIGNAL)
		snprintf(why, sizeof(why), "signal %d", (int)a->signal);
	else
		snprintf(why, sizeof(why), "no exit recorded");
	fprintf(stderr, "tessera: agent %s ended %s: ", a->id, state);
	cli_put_safe(stderr, why, sizeof(why));
	fputc('\n', stderr);
	return -1;
}

/* --agent-timeout SECONDS: whole seconds, up to the hub's 24 h; -1 otherwise. */
static int cli_agent_timeout(const char *s, uint32_t *ms)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < 1 ||
	    v > TSR_AGENT_TIMEOUT_MAX_MS / 1000)
		return -1;
	*ms = (uint32_t)v * 1000;
	return 0;
}

int cli_spawn(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_OPTIONS,
		{ "spoke", required_argument, NULL, 's' },
		{ "request-id", required_argument, NULL, 'r' },
		{ "label", required_argument, NULL, 'l' },
		{ "wait", no_argument, NULL, 'w' },
		{ "agent-timeout", required_argument, NULL, 'a' },
		{ "agent-label", required_argument, NULL, 'L' },
		{ NULL, 0, NULL, 0 },
	};
	Tessera__V1__SpawnAgentRequest req = TESSERA__V1__SPAWN_AGENT_REQUEST__INIT;
	Tessera__V1__SpawnAgentRequest__SpokeLabelsEntry labels[HUB_LABELS_MAX];
	Tessera__V1__SpawnAgentRequest__SpokeLabelsEntry *labelp[HUB_LABELS_MAX];
	Tessera__V1__SpawnAgentRequest__LabelsEntry own[TSR_LABELS_MAX];
	Tessera__V1__SpawnAgentRequest__LabelsEntry *ownp[TSR_LABELS_MAX];
	struct tsr_label args[TSR_LABELS_MAX];
	Tessera__V1__Agent *a = NULL;
	struct cli_hub h = { 0 };
	struct tsr_err err, shown;
	char *stdin_task = NULL;
	const char *task = "";
	bool wait = false;
	int opt, nargs, rc = CLI_EXIT_FAIL, waited = 0;

	req.spoke_labels = labelp;
	while ((opt = cli_getopt(c, argc, argv, opts)) != -1) {
		if (opt == 's')
			req.spoke_id = optarg;
		else if (opt == 'r')
			req.request_id = optarg;
		else if (opt == 'w')
			wait = true;
		else if (opt == 'a') {
			if (cli_agent_timeout(optarg, &req.timeout_ms) != 0)
				return cli_usage("spawn");
		} else if (opt == 'L') {
			if (cli_label_arg(optarg, "--agent-label", args, &req.n_labels) != 0)
				return cli_usage("spawn");
		} else if (opt != 'l' ||
			   cli_spawn_label(optarg, labels, labelp, &req.n_spoke_labels) != 0) {
			return cli_usage("spawn");
		}
	}
	nargs = argc - optind;
	if (nargs < 1 || nargs > 2)
		return cli_usage("spawn");
	for (size_t i = 0; i < req.n_labels; i++) {
		tessera__v1__spawn_agent_request__labels_entry__init(&own[i]);
		own[i].key = (char *)args[i].key;
		own[i].value = (char *)args[i].value;
		ownp[i] = &own[i];
	}
	req.labels = ownp;
	req.type = argv[optind];
	if (nargs == 2 && strcmp(argv[optind + 1], "-") != 0) {
		task = argv[optind + 1];
	} else if (nargs == 2 || !isatty(STDIN_FILENO)) {
		if (cli_read_task(&stdin_task, &err) != 0) {
			fprintf(stderr, "tessera: %s\n", err.msg);
			return CLI_EXIT_USAGE;
		}
		task = stdin_task;
	}
	if (strlen(task) > TSR_TASK_MAX) {
		fprintf(stderr, "tessera: task is longer than %d bytes\n", TSR_TASK_MAX);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	req.task = (char *)task;
	if (cli_hub_open(c, &h, &err) != 0 ||
	    cli_agent_call(&h, "/tessera.v1.Hub/SpawnAgent", &req.base, &a, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (wait)
		waited = cli_wait_end(&h, &a, &err);
	/* The last state seen is shown even when waiting for the end failed. */
	if (cli_agent_show(c, a, true, &shown) != 0) {
		rc = cli_fail(&shown);
		goto out;
	}
	if (waited != 0)
		rc = cli_fail(&err);
	else
		rc = wait && cli_spawn_outcome(a) != 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
	if (a != NULL)
		tessera__v1__agent__free_unpacked(a, NULL);
	cli_hub_close(&h);
	free(stdin_task);
	return rc;
}

/* Parses "COMMAND AGENT_ID" plus the global flags and extra; -1: usage. */
static int cli_agent_args(struct cli *c, int argc, char **argv, const struct option *opts,
			  bool *flag, const char **id)
{
	int opt;

	while ((opt = cli_getopt(c, argc, argv, opts)) != -1) {
		if (opt != 'n' || flag == NULL)
			return -1;
		*flag = true;
	}
	if (argc - optind != 1)
		return -1;
	*id = argv[optind];
	return 0;
}

/*
 * "COMMAND AGENT_ID": the agent as the hub reports it, in *a (free with
 * tessera__v1__agent__free_unpacked). -1 with *rc the exit code to return.
 */
static int cli_fetch_agent(struct cli *c, int argc, char **argv, const char *cmd,
			   Tessera__V1__Agent **a, int *rc)
{
	static const struct option opts[] = { CLI_GLOBAL_OPTIONS, { NULL, 0, NULL, 0 } };
	Tessera__V1__GetAgentRequest req = TESSERA__V1__GET_AGENT_REQUEST__INIT;
	struct cli_hub h = { 0 };
	struct tsr_err err;
	const char *id;
	int ret = -1;

	if (cli_agent_args(c, argc, argv, opts, NULL, &id) != 0) {
		*rc = cli_usage(cmd);
		return -1;
	}
	req.agent_id = (char *)id;
	if (cli_hub_open(c, &h, &err) != 0 ||
	    cli_agent_call(&h, "/tessera.v1.Hub/GetAgent", &req.base, a, &err) != 0) {
		*rc = cli_fail(&err);
		goto out;
	}
	ret = 0;
out:
	cli_hub_close(&h);
	return ret;
}

int cli_get(struct cli *c, int argc, char **argv)
{
	Tessera__V1__Agent *a = NULL;
	struct tsr_err err;
	int rc;

	if (cli_fetch_agent(c, argc, argv, "get", &a, &rc) != 0)
		return rc;
	rc = cli_agent_show(c, a, false, &err) == 0 ? CLI_EXIT_OK : cli_fail(&err);
	tessera__v1__agent__free_unpacked(a, NULL);
	return rc;
}

int cli_logs(struct cli *c, int argc, char **argv)
{
	Tessera__V1__Agent *a = NULL;
	struct tsr_err err;
	size_t len;
	int rc;

	if (cli_fetch_agent(c, argc, argv, "logs", &a, &rc) != 0)
		return rc;
	len = strlen(a->output);
	rc = CLI_EXIT_OK;
	if (fwrite(a->output, 1, len, stdout) != len || fflush(stdout) != 0) {
		tsr_err_set(&err, GRPC_STATUS_UNKNOWN, "writing the output: %s", strerror(errno));
		rc = cli_fail(&err);
	}
	tessera__v1__agent__free_unpacked(a, NULL);
	return rc;
}

int cli_kill(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_OPTIONS,
		{ "no-wait", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	Tessera__V1__KillAgentRequest req = TESSERA__V1__KILL_AGENT_REQUEST__INIT;
	Tessera__V1__Agent *a = NULL;
	struct cli_hub h = { 0 };
	struct tsr_err err, shown;
	bool no_wait = false;
	const char *id;
	int rc = CLI_EXIT_FAIL, waited = 0;

	if (cli_agent_args(c, argc, argv, opts, &no_wait, &id) != 0)
		return cli_usage("kill");
	req.agent_id = (char *)id;
	if (cli_hub_open(c, &h, &err) != 0 ||
	    cli_agent_call(&h, "/tessera.v1.Hub/KillAgent", &req.base, &a, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (!no_wait)
		waited = cli_wait_end(&h, &a, &err);
	/* The last state seen is shown even when waiting for the end failed. */
	if (cli_agent_show(c, a, false, &shown) != 0) {
		rc = cli_fail(&shown);
		goto out;
	}
	rc = waited == 0 ? CLI_EXIT_OK : cli_fail(&err);
out:
	if (a != NULL)
		tessera__v1__agent__free_unpacked(a, NULL);
	cli_hub_close(&h);
	return rc;
}

struct cli_row {			/* one line of the list table */
	char id[TSR_AGENT_ID_MAX + 1];
	char state[CLI_STATE_MAX];
	char type[TSR_NAME_MAX + 1];
	char spoke[TSR_NAME_MAX + 1];
	char exit[16];
	char started[CLI_TIME_MAX];
};

struct cli_table {
	struct cli_row *rows;		/* owned */
	size_t n, cap;
};

/* Copies s for a table cell, replacing what a terminal would interpret. */
static void cli_cell(char *dst, size_t dstlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < dstlen; i++)
		dst[i] = ((unsigned char)s[i] < 0x21 || s[i] == 0x7f) ? '?' : s[i];
	dst[i] = '\0';
}

static int cli_table_add(struct cli_table *t, const Tessera__V1__Agent *a, struct tsr_err *err)
{
	struct cli_row *r;

	if (t->n == t->cap) {
		size_t cap = t->cap != 0 ? t->cap * 2 : 64;
		struct cli_row *grown;

		if (cap > CLI_ROWS_MAX)
			cap = CLI_ROWS_MAX;
		if (t->n == cap)
			return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
					   "more than %d agents", CLI_ROWS_MAX);
		grown = realloc(t->rows, cap * sizeof(*grown));
		if (grown == NULL)
			return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		t->rows = grown;
		t->cap = cap;
	}
	r = &t->rows[t->n++];
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
	return 0;
}

static void cli_table_print(const struct cli_table *t)
{
	int w[5] = { 2, 5, 4, 5, 4 };

	for (size_t i = 0; i < t->n; i++) {
		const struct cli_row *r = &t->rows[i];
		int l[5] = { (int)strlen(r->id), (int)strlen(r->state), (int)strlen(r->type),
			     (int)strlen(r->spoke), (int)strlen(r->exit) };

		for (int k = 0; k < 5; k++)
			if (l[k] > w[k])
				w[k] = l[k];
	}
	printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], "ID", w[1], "STATE", w[2], "TYPE",
	       w[3], "SPOKE", w[4], "EXIT", "STARTED");
	for (size_t i = 0; i < t->n; i++) {
		const struct cli_row *r = &t->rows[i];

		printf("%-*s  %-*s  %-*s  %-*s  %-*s  %s\n", w[0], r->id, w[1], r->state, w[2],
		       r->type, w[3], r->spoke, w[4], r->exit, r->started);
	}
}

/* Fetches every page of req, showing agents as JSON at once or into t. */
static int cli_list_pages(const struct cli *c, struct cli_hub *h,
			  Tessera__V1__ListAgentsRequest *req, struct json *j,
			  struct cli_table *t, struct tsr_err *err)
{
	Tessera__V1__ListAgentsResponse *resp = NULL;
	char *token = NULL;
	uint8_t *buf = NULL;
	size_t len;
	int rc = -1;

	for (int page = 0; page < CLI_LIST_PAGES_MAX; page++) {
		req->page_token = token != NULL ? token : "";
		if (cli_hub_call(h, "/tessera.v1.Hub/ListAgents", &req->base, &buf, &len, err) != 0)
			goto out;
		resp = tessera__v1__list_agents_response__unpack(NULL, len, buf);
		free(buf);
		buf = NULL;
		if (resp == NULL) {
			tsr_err_set(err, GRPC_STATUS_INTERNAL, "the hub answered a malformed list");
			goto out;
		}
		for (size_t i = 0; i < resp->n_agents; i++) {
			if (c->json)
				cli_agent_json(j, resp->agents[i]);
			else if (cli_table_add(t, resp->agents[i], err) != 0)
				goto out;
		}
		if (c->json && json_flush(j, stdout, err) != 0)
			goto out;
		free(token);
		token = NULL;
		if (resp->next_page_token[0] == '\0') {
			rc = 0;
			goto out;
		}
		token = strdup(resp->next_page_token);
		tessera__v1__list_agents_response__free_unpacked(resp, NULL);
		resp = NULL;
		if (token == NULL) {
			tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
			goto out;
		}
	}
	tsr_err_set(err, GRPC_STATUS_OUT_OF_RANGE,
		    "more than %d pages; narrow the list with --spoke, --state, --type or --label",
		    CLI_LIST_PAGES_MAX);
out:
	if (resp != NULL)
		tessera__v1__list_agents_response__free_unpacked(resp, NULL);
	free(token);
	return rc;
}

int cli_list(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_GLOBAL_OPTIONS,
		{ "spoke", required_argument, NULL, 's' },
		{ "state", required_argument, NULL, 'S' },
		{ "type", required_argument, NULL, 't' },
		{ "label", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	Tessera__V1__ListAgentsRequest req = TESSERA__V1__LIST_AGENTS_REQUEST__INIT;
	Tessera__V1__ListAgentsRequest__LabelsEntry sel[TSR_LABELS_MAX];
	Tessera__V1__ListAgentsRequest__LabelsEntry *selp[TSR_LABELS_MAX];
	struct tsr_label args[TSR_LABELS_MAX];
	struct cli_table t = { 0 };
	struct cli_hub h = { 0 };
	struct json j;
	struct tsr_err err, werr;
	int opt, rc = CLI_EXIT_FAIL, listed;

	while ((opt = cli_getopt(c, argc, argv, opts)) != -1) {
		if (opt == 's') {
			req.spoke_id = optarg;
		} else if (opt == 't') {
			req.type = optarg;
		} else if (opt == 'l') {
			if (cli_label_arg(optarg, "--label", args, &req.n_labels) != 0)
				return cli_usage("list");
		} else if (opt == 'S') {
			if (cli_state_parse(optarg, &req.state, &err) != 0) {
				fprintf(stderr, "tessera: %s\n", err.msg);
				return cli_usage("list");
			}
		} else {
			return cli_usage("list");
		}
	}
	if (optind != argc)
		return cli_usage("list");
	for (size_t i = 0; i < req.n_labels; i++) {
		tessera__v1__list_agents_request__labels_entry__init(&sel[i]);
		sel[i].key = (char *)args[i].key;
		sel[i].value = (char *)args[i].value;
		selp[i] = &sel[i];
	}
	req.labels = selp;
	req.page_size = HUB_PAGE_SIZE_MAX;
	json_init(&j);
	if (cli_hub_open(c, &h, &err) != 0) {
		rc = cli_fail(&err);
		goto out;
	}
	if (c->json) {
		json_object_begin(&j);
		json_key(&j, "agents");
		json_array_begin(&j);
	}
	listed = cli_list_pages(c, &h, &req, &j, &t, &err);
	/* What was fetched is shown even if a later page failed. */
	if (c->json) {
		json_array_end(&j);
		json_object_end(&j);
		if (json_flush(&j, stdout, &werr) != 0) {
			rc = cli_fail(&werr);
			goto out;
		}
		putchar('\n');
	} else if (listed == 0 || t.n > 0) {
		cli_table_print(&t);
	}
	rc = listed == 0 ? CLI_EXIT_OK : cli_fail(&err);
out:
	json_free(&j);
	free(t.rows);
	cli_hub_close(&h);
	return rc;
}
