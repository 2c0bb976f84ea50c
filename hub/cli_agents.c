/*
 * cli_agents: tessera spawn, get, kill and list: one Hub call each, except
 * kill (and spawn --wait), which then follow the agent to its end, and
 * list, which follows page tokens (a bounded number of them). list's
 * table is newest first across spokes; its JSON is in the hub's order.
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
#include "cli_table.h"
#include "clock.h"
#include "hub_limits.h"
#include "ids.h"
#include "tessera/v1/hub.pb-c.h"

#define CLI_WAIT_POLL_MS 100
#define CLI_LIST_PAGES_MAX 100
/* Every agent the pages can hold: the table, sorted whole, never drops one. */
#define CLI_ROWS_MAX (CLI_LIST_PAGES_MAX * TSR_PAGE_SIZE_MAX)

const struct option cli_spawn_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "spoke", required_argument, NULL, 's' },
	{ "request-id", required_argument, NULL, 'r' },
	{ "label", required_argument, NULL, 'l' },
	{ "wait", no_argument, NULL, 'w' },
	{ "agent-timeout", required_argument, NULL, 'a' },
	{ "agent-label", required_argument, NULL, 'L' },
	{ NULL, 0, NULL, 0 },
};

const struct option cli_kill_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "no-wait", no_argument, NULL, 'n' },
	{ NULL, 0, NULL, 0 },
};

const struct option cli_list_options[] = {
	CLI_GLOBAL_OPTIONS,
	{ "spoke", required_argument, NULL, 's' },
	{ "state", required_argument, NULL, 'S' },
	{ "type", required_argument, NULL, 't' },
	{ "label", required_argument, NULL, 'l' },
	{ "output", required_argument, NULL, 'o' },
	{ NULL, 0, NULL, 0 },
};

/* A SpawnAgent request and what it points into. */
struct cli_spawn_req {
	Tessera__V1__SpawnAgentRequest req;
	Tessera__V1__SpawnAgentRequest__SpokeLabelsEntry spoke[TSR_LABELS_MAX];
	Tessera__V1__SpawnAgentRequest__SpokeLabelsEntry *spokep[TSR_LABELS_MAX];
	Tessera__V1__SpawnAgentRequest__LabelsEntry own[TSR_LABELS_MAX];
	Tessera__V1__SpawnAgentRequest__LabelsEntry *ownp[TSR_LABELS_MAX];
	struct tsr_label args[TSR_LABELS_MAX]; /* strings borrowed from argv */
	bool wait;
	char **operands; /* TYPE [TASK], borrowed from argv */
	int noperands;
};

/* A ListAgents request and what it points into. */
struct cli_list_req {
	Tessera__V1__ListAgentsRequest req;
	Tessera__V1__ListAgentsRequest__LabelsEntry sel[TSR_LABELS_MAX];
	Tessera__V1__ListAgentsRequest__LabelsEntry *selp[TSR_LABELS_MAX];
	struct tsr_label args[TSR_LABELS_MAX]; /* strings borrowed from argv */
	bool wide;			       /* --output wide */
};

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
	ProtobufCMessage *m;

	if (cli_hub_fetch(h, method, req, &tessera__v1__agent__descriptor, "agent", &m, err) != 0)
		return -1;
	*out = (Tessera__V1__Agent *)m;
	return 0;
}

void cli_sleep_ms(int64_t ms)
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
		if (cli_agent_call(h, TSR_METHOD_GET_AGENT, &req.base, &next, err) != 0)
			return -1;
		tessera__v1__agent__free_unpacked(*a, NULL);
		*a = next;
		req.agent_id = (*a)->id;
	}
	return 0;
}

/*
 * "--label k=v" into the next of the n entries (at most TSR_LABELS_MAX);
 * the hub checks the rest. arg is cut at the '=' in place.
 */
static int cli_spawn_label(char *arg, Tessera__V1__SpawnAgentRequest__SpokeLabelsEntry *labels,
			   Tessera__V1__SpawnAgentRequest__SpokeLabelsEntry **labelp, size_t *n)
{
	char *eq = strchr(arg, '=');

	if (eq == NULL || eq == arg || *n == TSR_LABELS_MAX) {
		fprintf(stderr, "tessera: --label takes KEY=VALUE, at most %d times\n",
			TSR_LABELS_MAX);
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

/* spawn's options and operands into *s; -1: usage. */
static int cli_spawn_parse(struct cli *c, int argc, char **argv, struct cli_spawn_req *s)
{
	Tessera__V1__SpawnAgentRequest *req = &s->req;
	int opt;

	tessera__v1__spawn_agent_request__init(req);
	s->wait = false;
	req->spoke_labels = s->spokep;
	while ((opt = cli_getopt(c, argc, argv, CLI_NO_SHORTS, cli_spawn_options)) != -1) {
		if (opt == 's')
			req->spoke_id = optarg;
		else if (opt == 'r')
			req->request_id = optarg;
		else if (opt == 'w')
			s->wait = true;
		else if (opt == 'a') {
			if (cli_agent_timeout(optarg, &req->timeout_ms) != 0)
				return -1;
		} else if (opt == 'L') {
			if (cli_label_arg(optarg, "--agent-label", s->args, &req->n_labels) != 0)
				return -1;
		} else if (opt != 'l' || cli_spawn_label(optarg, s->spoke, s->spokep,
							 &req->n_spoke_labels) != 0) {
			return -1;
		}
	}
	s->noperands = argc - optind;
	s->operands = argv + optind;
	if (s->noperands < 1 || s->noperands > 2)
		return -1;
	for (size_t i = 0; i < req->n_labels; i++) {
		tessera__v1__spawn_agent_request__labels_entry__init(&s->own[i]);
		s->own[i].key = (char *)s->args[i].key;
		s->own[i].value = (char *)s->args[i].value;
		s->ownp[i] = &s->own[i];
	}
	req->labels = s->ownp;
	req->type = s->operands[0];
	return 0;
}

/*
 * The task: the second operand, else stdin if that is "-" or stdin is no
 * terminal, else none. *buf owns what was read. -1: usage, said on stderr.
 */
static int cli_spawn_task(const struct cli_spawn_req *s, const char **task, char **buf)
{
	struct tsr_err err;

	*task = "";
	if (s->noperands == 2 && strcmp(s->operands[1], "-") != 0) {
		*task = s->operands[1];
	} else if (s->noperands == 2 || !isatty(STDIN_FILENO)) {
		if (cli_read_task(buf, &err) != 0) {
			fprintf(stderr, "tessera: %s\n", err.msg);
			return -1;
		}
		*task = *buf;
	}
	if (strlen(*task) > TSR_TASK_MAX) {
		fprintf(stderr, "tessera: task is longer than %d bytes\n", TSR_TASK_MAX);
		return -1;
	}
	return 0;
}

/* Sends req; with wait, follows the agent to its end. Shows the agent either way. */
static int cli_spawn_send(struct cli *c, const Tessera__V1__SpawnAgentRequest *req, bool wait)
{
	Tessera__V1__Agent *a = NULL;
	struct cli_hub h = { 0 };
	struct tsr_err err, shown;
	int rc = CLI_EXIT_FAIL, waited = 0;

	if (cli_hub_open(c, &h, &err) != 0 ||
	    cli_agent_call(&h, TSR_METHOD_SPAWN_AGENT, &req->base, &a, &err) != 0) {
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
	return rc;
}

int cli_spawn(struct cli *c, int argc, char **argv)
{
	struct cli_spawn_req s;
	char *stdin_task = NULL;
	const char *task;
	int rc = CLI_EXIT_USAGE;

	if (cli_spawn_parse(c, argc, argv, &s) != 0)
		return cli_usage("spawn");
	if (cli_spawn_task(&s, &task, &stdin_task) != 0)
		goto out;
	s.req.task = (char *)task;
	rc = cli_spawn_send(c, &s.req, s.wait);
out:
	free(stdin_task);
	return rc;
}

/* Parses "COMMAND AGENT_ID" plus the global flags and extra; -1: usage. */
static int cli_agent_args(struct cli *c, int argc, char **argv, const struct option *opts,
			  bool *flag, const char **id)
{
	int opt;

	while ((opt = cli_getopt(c, argc, argv, CLI_NO_SHORTS, opts)) != -1) {
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
	Tessera__V1__GetAgentRequest req = TESSERA__V1__GET_AGENT_REQUEST__INIT;
	struct cli_hub h = { 0 };
	struct tsr_err err;
	const char *id;
	int ret = -1;

	if (cli_agent_args(c, argc, argv, cli_global_options, NULL, &id) != 0) {
		*rc = cli_usage(cmd);
		return -1;
	}
	req.agent_id = (char *)id;
	if (cli_hub_open(c, &h, &err) != 0 ||
	    cli_agent_call(&h, TSR_METHOD_GET_AGENT, &req.base, a, &err) != 0) {
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

int cli_kill(struct cli *c, int argc, char **argv)
{
	Tessera__V1__KillAgentRequest req = TESSERA__V1__KILL_AGENT_REQUEST__INIT;
	Tessera__V1__Agent *a = NULL;
	struct cli_hub h = { 0 };
	struct tsr_err err, shown;
	bool no_wait = false;
	const char *id;
	int rc = CLI_EXIT_FAIL, waited = 0;

	if (cli_agent_args(c, argc, argv, cli_kill_options, &no_wait, &id) != 0)
		return cli_usage("kill");
	req.agent_id = (char *)id;
	if (cli_hub_open(c, &h, &err) != 0 ||
	    cli_agent_call(&h, TSR_METHOD_KILL_AGENT, &req.base, &a, &err) != 0) {
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

/* Fetches every page of req, showing agents as JSON at once or into t. */
static int cli_list_pages(const struct cli *c, struct cli_hub *h,
			  Tessera__V1__ListAgentsRequest *req, struct json *j, struct cli_table *t,
			  struct tsr_err *err)
{
	Tessera__V1__ListAgentsResponse *resp = NULL;
	ProtobufCMessage *m;
	char *token = NULL;
	int rc = -1;

	for (int page = 0; page < CLI_LIST_PAGES_MAX; page++) {
		req->page_token = token != NULL ? token : "";
		if (cli_hub_fetch(h, TSR_METHOD_LIST_AGENTS, &req->base,
				  &tessera__v1__list_agents_response__descriptor, "list", &m,
				  err) != 0)
			goto out;
		resp = (Tessera__V1__ListAgentsResponse *)m;
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

/* list's options into *q; -1: usage. */
static int cli_list_parse(struct cli *c, int argc, char **argv, struct cli_list_req *q)
{
	Tessera__V1__ListAgentsRequest *req = &q->req;
	struct tsr_err err;
	int opt;

	tessera__v1__list_agents_request__init(req);
	q->wide = false;
	while ((opt = cli_getopt(c, argc, argv, CLI_LIST_SHORTS, cli_list_options)) != -1) {
		if (opt == 'o') {
			if (strcmp(optarg, CLI_OUTPUT_WIDE) != 0) {
				fprintf(stderr, "tessera: --output takes %s\n", CLI_OUTPUT_WIDE);
				return -1;
			}
			q->wide = true;
		} else if (opt == 's') {
			req->spoke_id = optarg;
		} else if (opt == 't') {
			req->type = optarg;
		} else if (opt == 'l') {
			if (cli_label_arg(optarg, "--label", q->args, &req->n_labels) != 0)
				return -1;
		} else if (opt == 'S') {
			if (cli_state_parse(optarg, &req->state, &err) != 0) {
				fprintf(stderr, "tessera: %s\n", err.msg);
				return -1;
			}
		} else {
			return -1;
		}
	}
	if (optind != argc)
		return -1;
	for (size_t i = 0; i < req->n_labels; i++) {
		tessera__v1__list_agents_request__labels_entry__init(&q->sel[i]);
		q->sel[i].key = (char *)q->args[i].key;
		q->sel[i].value = (char *)q->args[i].value;
		q->selp[i] = &q->sel[i];
	}
	req->labels = q->selp;
	req->page_size = TSR_PAGE_SIZE_MAX;
	return 0;
}

int cli_list(struct cli *c, int argc, char **argv)
{
	struct cli_list_req q;
	struct cli_table t;
	struct cli_hub h = { 0 };
	struct json j;
	struct tsr_err err, werr;
	int rc = CLI_EXIT_FAIL, listed;

	if (cli_list_parse(c, argc, argv, &q) != 0)
		return cli_usage("list");
	cli_table_init(&t, CLI_ROWS_MAX, q.wide);
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
	listed = cli_list_pages(c, &h, &q.req, &j, &t, &err);
	/*
	 * What was fetched is shown even if a later page failed: the table
	 * then sorts only what it holds, which, as the hub lists one spoke
	 * after another, need not be the newest agents of all.
	 */
	if (c->json) {
		json_array_end(&j);
		json_object_end(&j);
		if (json_flush(&j, stdout, &werr) != 0) {
			rc = cli_fail(&werr);
			goto out;
		}
		putchar('\n');
	} else if (listed == 0 || t.n > 0) {
		cli_table_sort(&t);
		cli_table_print(&t, stdout, cli_term_columns());
	}
	rc = listed == 0 ? CLI_EXIT_OK : cli_fail(&err);
out:
	json_free(&j);
	cli_table_free(&t);
	cli_hub_close(&h);
	return rc;
}
