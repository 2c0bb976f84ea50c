/* cli_print: agent and event output, human and JSON. */
#include "cli_print.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"

#define CLI_STATE_PREFIX "AGENT_STATE_"
#define CLI_TASK_SHOWN 200 /* bytes of a task in human output */

const char *cli_state_name(Tessera__V1__AgentState s)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(&tessera__v1__agent_state__descriptor, (int)s);
	return v != NULL ? v->name : "UNKNOWN";
}

void cli_state_short(Tessera__V1__AgentState s, char *buf, size_t len)
{
	const char *name = cli_state_name(s);
	size_t i = 0;

	if (strncmp(name, CLI_STATE_PREFIX, strlen(CLI_STATE_PREFIX)) == 0)
		name += strlen(CLI_STATE_PREFIX);
	for (; name[i] != '\0' && i + 1 < len; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[i] = '\0';
}

int cli_state_parse(const char *text, Tessera__V1__AgentState *out, struct tsr_err *err)
{
	const ProtobufCEnumDescriptor *d = &tessera__v1__agent_state__descriptor;
	size_t plen = strlen(CLI_STATE_PREFIX);

	if (strncasecmp(text, CLI_STATE_PREFIX, plen) == 0)
		text += plen;
	for (unsigned i = 0; i < d->n_values; i++) {
		const char *name = d->values[i].name;

		if (d->values[i].value == 0)
			continue; /* "unspecified" filters nothing */
		if (strncmp(name, CLI_STATE_PREFIX, plen) == 0 &&
		    strcasecmp(name + plen, text) == 0) {
			*out = (Tessera__V1__AgentState)d->values[i].value;
			return 0;
		}
	}
	return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
			   "unknown state \"%.32s\" (spawning, running, completed, failed, killed)",
			   text);
}

bool cli_state_terminal(Tessera__V1__AgentState s)
{
	return s == TESSERA__V1__AGENT_STATE__AGENT_STATE_COMPLETED ||
	       s == TESSERA__V1__AGENT_STATE__AGENT_STATE_FAILED ||
	       s == TESSERA__V1__AGENT_STATE__AGENT_STATE_KILLED;
}

void cli_time_iso(int64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || gmtime_r(&secs, &tm) == NULL) {
		snprintf(buf, len, "-");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int cli_term_columns(void)
{
	struct winsize ws;
	const char *env;
	long v;

	if (!isatty(STDOUT_FILENO))
		return 0;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	env = getenv("COLUMNS");
	v = env != NULL ? strtol(env, NULL, 10) : 0;
	return v > 0 && v <= 10000 ? (int)v : 0;
}

void cli_put_safe(FILE *f, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	if (s[i] != '\0')
		fputs("...", f);
}

int cli_json_print(struct json *j, struct tsr_err *err)
{
	int rc = json_flush(j, stdout, err);

	if (rc == 0)
		putchar('\n');
	json_free(j);
	return rc;
}

/*
 * What an agent and each of its events tell alike of its run: when it
 * started and ended, its exit code or signal (NULL: not set), its error.
 */
static void cli_run_json(struct json *j, int64_t started, int64_t completed,
			 const int32_t *exit_code, const int32_t *signal, const char *error)
{
	json_key(j, "startedAtMs");
	json_int(j, started);
	json_key(j, "completedAtMs");
	json_int(j, completed);
	if (exit_code != NULL) {
		json_key(j, "exitCode");
		json_int(j, *exit_code);
	} else if (signal != NULL) {
		json_key(j, "signal");
		json_int(j, *signal);
	}
	json_key(j, "error");
	json_string(j, error);
}

void cli_agent_json(struct json *j, const Tessera__V1__Agent *a)
{
	char ticks[24];

	json_object_begin(j);
	json_key(j, "id");
	json_string(j, a->id);
	json_key(j, "spokeId");
	json_string(j, a->spoke_id);
	json_key(j, "type");
	json_string(j, a->type);
	json_key(j, "task");
	json_string(j, a->task);
	json_key(j, "state");
	json_string(j, cli_state_name(a->state));
	json_key(j, "createdAtMs");
	json_int(j, a->created_at_ms);
	cli_run_json(j, a->started_at_ms, a->completed_at_ms,
		     a->end_case == TESSERA__V1__AGENT__END_EXIT_CODE ? &a->exit_code : NULL,
		     a->end_case == TESSERA__V1__AGENT__END_SIGNAL ? &a->signal : NULL, a->error);
	json_key(j, "pid");
	json_int(j, a->pid);
	/* As proto3 JSON writes a uint64: a string, exact past 2^53. */
	json_key(j, "pidStartTicks");
	snprintf(ticks, sizeof(ticks), "%llu", (unsigned long long)a->pid_start_ticks);
	json_string(j, ticks);
	json_key(j, "bootId");
	json_string(j, a->boot_id);
	json_key(j, "timeoutAtMs");
	json_int(j, a->timeout_at_ms);
	json_key(j, "requestId");
	json_string(j, a->request_id);
	json_key(j, "killRequested");
	json_bool(j, a->kill_requested);
	json_key(j, "labels");
	json_object_begin(j);
	for (size_t k = 0; k < a->n_labels; k++) {
		json_key(j, a->labels[k]->key);
		json_string(j, a->labels[k]->value);
	}
	json_object_end(j);
	json_key(j, "output");
	json_string(j, a->output);
	json_object_end(j);
}

void cli_event_json(struct json *j, const Tessera__V1__Event *e)
{
	json_object_begin(j);
	json_key(j, "position");
	json_string(j, e->position);
	json_key(j, "type");
	json_string(j, e->type);
	json_key(j, "agentId");
	json_string(j, e->agent_id);
	json_key(j, "spokeId");
	json_string(j, e->spoke_id);
	json_key(j, "oldState");
	json_string(j, cli_state_name(e->old_state));
	json_key(j, "newState");
	json_string(j, cli_state_name(e->new_state));
	json_key(j, "timeMs");
	json_int(j, e->time_ms);
	cli_run_json(j, e->started_at_ms, e->completed_at_ms,
		     e->end_case == TESSERA__V1__EVENT__END_EXIT_CODE ? &e->exit_code : NULL,
		     e->end_case == TESSERA__V1__EVENT__END_SIGNAL ? &e->signal : NULL, e->error);
	json_object_end(j);
}

/* One "key: value" line with the value made safe. */
static void cli_kv(const char *key, const char *value)
{
	printf("%-14s ", key);
	cli_put_safe(stdout, value, CLI_TASK_SHOWN);
	putchar('\n');
}

void cli_labels_text(const Tessera__V1__Agent *a, char *buf, size_t len)
{
	size_t off = 0;
	int n;

	buf[0] = '\0';
	for (size_t k = 0; k < a->n_labels && off < len; k++) {
		n = snprintf(buf + off, len - off, "%s%.64s=%.64s", k > 0 ? "," : "",
			     a->labels[k]->key, a->labels[k]->value);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* "labels: k=v,k=v", made safe. */
static void cli_agent_labels(const Tessera__V1__Agent *a)
{
	char buf[CLI_LABELS_MAX];

	cli_labels_text(a, buf, sizeof(buf));
	printf("%-14s ", "labels:");
	cli_put_safe(stdout, buf, sizeof(buf));
	putchar('\n');
}

static void cli_agent_human(const Tessera__V1__Agent *a, bool id_line)
{
	char state[CLI_STATE_MAX], t[CLI_TIME_MAX];

	if (id_line)
		printf("%s\n", a->id);
	else
		cli_kv("id:", a->id);
	cli_kv("spoke:", a->spoke_id);
	cli_kv("type:", a->type);
	cli_state_short(a->state, state, sizeof(state));
	cli_kv("state:", state);
	printf("%-14s %d\n", "pid:", (int)a->pid);
	cli_time_iso(a->created_at_ms, t, sizeof(t));
	cli_kv("createdAt:", t);
	cli_time_iso(a->started_at_ms, t, sizeof(t));
	cli_kv("startedAt:", t);
	cli_time_iso(a->completed_at_ms, t, sizeof(t));
	cli_kv("completedAt:", t);
	if (a->end_case == TESSERA__V1__AGENT__END_EXIT_CODE)
		printf("%-14s %d\n", "exitCode:", (int)a->exit_code);
	else if (a->end_case == TESSERA__V1__AGENT__END_SIGNAL)
		printf("%-14s %d\n", "signal:", (int)a->signal);
	if (a->error[0] != '\0')
		cli_kv("error:", a->error);
	if (a->request_id[0] != '\0')
		cli_kv("requestId:", a->request_id);
	if (a->kill_requested)
		cli_kv("killRequested:", "yes");
	if (a->n_labels > 0)
		cli_agent_labels(a);
	/* The tail itself may be long and raw: tessera logs prints it. */
	printf("%-14s %zu bytes\n", "output:", strlen(a->output));
	cli_kv("task:", a->task);
}

int cli_agent_show(const struct cli *c, const Tessera__V1__Agent *a, bool id_line,
		   struct tsr_err *err)
{
	struct json j;

	if (!c->json) {
		cli_agent_human(a, id_line);
		return 0;
	}
	json_init(&j);
	cli_agent_json(&j, a);
	return cli_json_print(&j, err);
}

void cli_event_line(FILE *f, const Tessera__V1__Event *e)
{
	char t[CLI_TIME_MAX], from[CLI_STATE_MAX], to[CLI_STATE_MAX];

	cli_time_iso(e->time_ms, t, sizeof(t));
	cli_state_short(e->old_state, from, sizeof(from));
	cli_state_short(e->new_state, to, sizeof(to));
	fprintf(f, "%s ", t);
	cli_put_safe(f, e->agent_id, CLI_TASK_SHOWN);
	fputc(' ', f);
	cli_put_safe(f, e->type, CLI_TASK_SHOWN);
	fprintf(f, " %s\u2192%s", from, to);
	if (e->end_case == TESSERA__V1__EVENT__END_EXIT_CODE)
		fprintf(f, " exit %d", (int)e->exit_code);
	else if (e->end_case == TESSERA__V1__EVENT__END_SIGNAL)
		fprintf(f, " signal %d", (int)e->signal);
	if (e->error[0] != '\0') {
		fputc(' ', f);
		cli_put_safe(f, e->error, CLI_TASK_SHOWN);
	}
	fputc('\n', f);
}
