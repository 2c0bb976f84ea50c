/* spoke_fixture: a real Valkey and a hand-built struct spoke for unit tests. */
#include "spoke_fixture.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_files.h"
#include "clock.h"
#include "envelope.h"
#include "lifecycle.h"
#include "outcomes.h"
#include "pb.h"
#include "spoke_info.h"

#define FX_VALKEY_START_MS 5000

int fx_check_env(void)
{
	const char *valkey = getenv("VALKEY_SERVER"), *shim = getenv("TESSERA_SHIM");

	if (valkey == NULL || access(valkey, X_OK) != 0 || shim == NULL ||
	    access(shim, X_OK) != 0) {
		fprintf(stderr, "VALKEY_SERVER and TESSERA_SHIM must name the built programs: "
				"skipped\n");
		return 77;
	}
	return 0;
}

void fx_valkey_respawn(struct fx_valkey *v)
{
	int64_t deadline = clock_mono_ms() + FX_VALKEY_START_MS;
	struct timeval tv = { .tv_sec = 1 };
	char log[200];

	snprintf(log, sizeof(log), "%s/valkey.log", v->dir);
	v->pid = fork();
	ck_assert_int_ge(v->pid, 0);
	if (v->pid == 0) {
		if (freopen(log, "a", stdout) == NULL)
			_exit(126);
		dup2(fileno(stdout), 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(getenv("VALKEY_SERVER"), "valkey-server", "--port", "0", "--save", "",
		      "--appendonly", "no", "--unixsocket", v->sock, "--unixsocketperm", "700",
		      "--dir", v->dir, "--daemonize", "no", (char *)NULL);
		_exit(127);
	}
	while (clock_mono_ms() < deadline) {
		redisContext *c = redisConnectUnixWithTimeout(v->sock, tv);
		redisReply *r = NULL;
		bool up;

		if (c != NULL && c->err == 0)
			r = redisCommand(c, "PING");
		up = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
		if (r != NULL)
			freeReplyObject(r);
		if (c != NULL)
			redisFree(c);
		if (up)
			return;
		usleep(20000);
	}
	kill(v->pid, SIGKILL);
	waitpid(v->pid, NULL, 0);
	v->pid = 0;
	ck_abort_msg("valkey-server did not answer within %d ms", FX_VALKEY_START_MS);
}

void fx_valkey_start(struct fx_valkey *v)
{
	snprintf(v->dir, sizeof(v->dir), "/tmp/tsr-fxv-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(v->dir));
	snprintf(v->sock, sizeof(v->sock), "%s/valkey.sock", v->dir);
	snprintf(v->addr, sizeof(v->addr), "unix:%s", v->sock);
	fx_valkey_respawn(v);
}

void fx_valkey_stop(struct fx_valkey *v)
{
	if (v->pid <= 0)
		return;
	kill(v->pid, SIGKILL);
	waitpid(v->pid, NULL, 0);
	v->pid = 0;
	unlink(v->sock);
}

void fx_valkey_cleanup(struct fx_valkey *v)
{
	char path[200];

	fx_valkey_stop(v);
	if (v->dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/valkey.log", v->dir);
	unlink(path);
	/* Written only by a test's SAVE, to bring the same data back after a stop. */
	snprintf(path, sizeof(path), "%s/dump.rdb", v->dir);
	unlink(path);
	ck_assert_msg(rmdir(v->dir) == 0, "%s: %s", v->dir, strerror(errno));
	v->dir[0] = '\0';
}

static void fx_write_config(struct fx *f)
{
	char pub[SIGN_PUBKEY_TEXT_MAX];
	FILE *cf;

	ck_assert_int_eq(sign_pubkey_format(&f->hub.pub, pub, sizeof(pub)), 0);
	cf = fopen(f->config_path, "we");
	ck_assert_ptr_nonnull(cf);
	fprintf(cf,
		"id %s\nlisten 127.0.0.1:0\nvalkey %s\nkey %s/spoke.key\n"
		"state-dir %s\nshim %s\ntrust-hub %s\nplaintext yes\n%s\n",
		FX_SPOKE, f->valkey.addr, f->dir, f->state_dir, getenv("TESSERA_SHIM"), pub,
		f->extra);
	ck_assert_int_eq(fclose(cf), 0);
}

void fx_spoke_start(struct fx *f)
{
	struct spoke *sp = &f->sp;
	struct supervisor_config cfg;
	struct tsr_err err;

	memset(sp, 0, sizeof(*sp));
	exits_init(&sp->exits);
	sp->config.path = f->config_path;
	ck_assert_msg(spoke_config_load(f->config_path, &sp->cfg, &err) == 0, "%s", err.msg);
	ck_assert_msg(sign_key_load(sp->cfg.key_path, &sp->key, &err) == 0, "%s", err.msg);
	ck_assert_msg(
		store_open(sp->cfg.valkey, sp->cfg.id, &sp->cfg.valkey_auth, &sp->store, &err) == 0,
		"%s", err.msg);
	ck_assert_msg(spoke_drain_load(sp, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(read_nonces_new(&sp->read_nonces, &err), 0);
	ck_assert_int_eq(proc_boot_id(sp->boot_id, &err), 0);
	ck_assert_int_eq(proc_pid_ns(&sp->pid_ns, &err), 0);
	ck_assert_msg(agent_files_dir_prepare(sp->cfg.state_dir, &err) == 0, "%s", err.msg);
	cfg = (struct supervisor_config){
		.max_agents = (size_t)sp->cfg.max_agents,
		.tail_bytes = (size_t)sp->cfg.output_tail_bytes,
		.state_dir = sp->cfg.state_dir,
		.shim_path = sp->cfg.shim_path,
	};
	ck_assert_msg(supervisor_start(&cfg, exits_on_supervisor_exit, &sp->exits, &sp->sv, &err) ==
			      0,
		      "%s", err.msg);
	f->spoke_up = true;
}

void fx_spoke_stop(struct fx *f)
{
	struct spoke *sp = &f->sp;

	if (!f->spoke_up)
		return;
	supervisor_stop(sp->sv);
	store_close(sp->store);
	read_nonces_free(sp->read_nonces);
	sign_key_wipe(&sp->key);
	spoke_config_free(&sp->cfg);
	exits_free(&sp->exits);
	memset(sp, 0, sizeof(*sp));
	f->spoke_up = false;
}

void fx_up(struct fx *f, const char *extra)
{
	char key_path[160];
	struct sign_key spoke_key;
	struct tsr_err err;

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(sign_init(&err), 0);
	fx_valkey_start(&f->valkey);
	f->raw = redisConnectUnix(f->valkey.sock);
	ck_assert(f->raw != NULL && f->raw->err == 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/tsr-fxs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->config_path, sizeof(f->config_path), "%s/spoke.conf", f->dir);
	snprintf(f->state_dir, sizeof(f->state_dir), "%s/state", f->dir);
	snprintf(f->extra, sizeof(f->extra), "%s", extra != NULL ? extra : "");
	snprintf(key_path, sizeof(key_path), "%s/spoke.key", f->dir);
	ck_assert_int_eq(sign_keygen(&spoke_key, &err), 0);
	ck_assert_msg(sign_key_save(&spoke_key, key_path, &err) == 0, "%s", err.msg);
	sign_key_wipe(&spoke_key);
	ck_assert_int_eq(sign_keygen(&f->hub, &err), 0);
	fx_write_config(f);
	fx_spoke_start(f);
}

void fx_down(struct fx *f)
{
	char cmd[128];

	for (size_t i = 0; i < f->ntracked; i++)
		kill(-f->tracked[i], SIGKILL);
	fx_spoke_stop(f);
	if (f->raw != NULL)
		redisFree(f->raw);
	f->raw = NULL;
	fx_valkey_cleanup(&f->valkey);
	sign_key_wipe(&f->hub);
	if (f->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
		ck_assert_int_eq(system(cmd), 0);
	}
}

redisReply *fx_raw(struct fx *f, const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(f->raw, fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(r);
	return r;
}

const char *fx_field(struct fx *f, const char *agent_id, const char *field, char *buf, size_t len)
{
	redisReply *r = fx_raw(f, "HGET tessera:{%s}:agent:%s %s", FX_SPOKE, agent_id, field);

	snprintf(buf, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return buf;
}

void fx_track(struct fx *f, pid_t pgid)
{
	ck_assert_int_gt(pgid, 0);
	ck_assert_uint_lt(f->ntracked, FX_TRACKED_MAX);
	f->tracked[f->ntracked++] = pgid;
}

pid_t fx_bystander(uint64_t *ticks)
{
	struct tsr_err err;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setpgid(0, 0);
		pause();
		_exit(0);
	}
	/* Either call may come first; both ask for the same group. */
	ck_assert(setpgid(pid, pid) == 0 || errno == EACCES);
	ck_assert_msg(proc_start_ticks(pid, ticks, &err) == 0, "%s", err.msg);
	return pid;
}

Tessera__V1__Agent *fx_get(struct fx *f, const char *agent_id)
{
	Tessera__V1__Agent *a = NULL;
	struct tsr_err err;

	ck_assert_msg(store_agent_get(f->sp.store, agent_id, &a, &err) == 0, "%s: %s", agent_id,
		      err.msg);
	return a;
}

Tessera__V1__AgentState fx_settle(struct fx *f, const char *agent_id)
{
	int64_t deadline = clock_mono_ms() + FX_WAIT_MS;
	Tessera__V1__AgentState state;

	for (;;) {
		Tessera__V1__Agent *a;

		outcomes_record(&f->sp);
		a = fx_get(f, agent_id);
		state = a->state;
		tessera__v1__agent__free_unpacked(a, NULL);
		if (lifecycle_terminal(state))
			return state;
		ck_assert_msg(clock_mono_ms() < deadline, "agent %s never ended", agent_id);
		usleep(10000);
	}
}

void fx_wait_queued(struct fx *f, const char *agent_id)
{
	int64_t deadline = clock_mono_ms() + FX_WAIT_MS;

	while (!exits_pending(&f->sp.exits, agent_id)) {
		ck_assert_msg(clock_mono_ms() < deadline, "no exit of %s queued", agent_id);
		usleep(10000);
	}
}

void fx_state_path(struct fx *f, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", f->state_dir, name);
}

void fx_write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "we");

	ck_assert_msg(fp != NULL, "%s: %s", path, strerror(errno));
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
}

static void *fx_server_main(void *arg)
{
	rpc_loop_run(arg, NULL);
	return NULL;
}

void fx_serve(struct fx_server *s, const char *method, rpc_handler_fn fn, void *ctx)
{
	struct rpc_server_opts opts = { .listen = "127.0.0.1:0" };
	char target[64];
	struct tsr_err err;
	int port;

	memset(s, 0, sizeof(*s));
	grpc_init();
	ck_assert_int_eq(rpc_loop_new(&s->loop, &err), 0);
	ck_assert_int_eq(rpc_server_new(s->loop, &opts, &s->srv, &err), 0);
	ck_assert_int_eq(rpc_server_add_method(s->srv, method, fn, ctx, &err), 0);
	ck_assert_msg(rpc_server_start(s->srv, &port, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, fx_server_main, s->loop), 0);
	snprintf(target, sizeof(target), "127.0.0.1:%d", port);
	ck_assert_int_eq(rpc_loop_new(&s->cli, &err), 0);
	ck_assert_int_eq(rpc_channel_new(target, 0, NULL, &s->channel, &err), 0);
}

void fx_serve_stop(struct fx_server *s)
{
	if (s->loop == NULL)
		return;
	rpc_loop_stop(s->loop);
	pthread_join(s->thread, NULL);
	/* The server's loop is this thread's now. */
	rpc_server_shutdown(s->srv);
	rpc_loop_drain(s->loop, 2000);
	rpc_server_free(s->srv);
	rpc_loop_free(s->loop);
	rpc_loop_drain(s->cli, 2000);
	rpc_channel_free(s->channel);
	rpc_loop_free(s->cli);
	grpc_shutdown();
	memset(s, 0, sizeof(*s));
}

/* Set by fx_client_run's wake-up: the client loop returns at least this often. */
static volatile bool fx_client_tick;

static void fx_client_wake(void *arg)
{
	(void)arg;
	fx_client_tick = true;
}

void fx_client_run(struct fx_server *s, bool (*done)(void *arg), void *arg)
{
	int64_t deadline = clock_mono_ms() + FX_WAIT_MS;

	rpc_loop_set_tick(s->cli, fx_client_wake, NULL, 10);
	while (!done(arg)) {
		ck_assert_msg(clock_mono_ms() < deadline, "the call never got there");
		fx_client_tick = false;
		rpc_loop_run(s->cli, &fx_client_tick);
	}
}

void fx_command(const struct sign_key *key, Tessera__V1__CommandType type,
		const ProtobufCMessage *payload, const char *audience, uint8_t **out, size_t *len)
{
	struct envelope_command_args a = {
		.type = type, .audience = audience, .command_id = "cmd-test", .ttl_ms = 30000
	};
	uint8_t *body = NULL;
	size_t body_len = 0;
	struct tsr_err err;

	if (payload != NULL)
		ck_assert_int_eq(pb_pack(payload, &body, &body_len, &err), 0);
	a.payload = body;
	a.payload_len = body_len;
	a.now_ms = clock_wall_ms();
	ck_assert_msg(envelope_command_seal(key, &a, out, len, &err) == 0, "%s", err.msg);
	free(body);
}
