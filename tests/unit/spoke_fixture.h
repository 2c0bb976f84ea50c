/*
 * spoke_fixture: what the unit tests of the spoke's daemon modules share.
 * A real valkey-server on a unix socket in a fresh directory, started and
 * killed by pid (and dying with the process that started it, through
 * PR_SET_PDEATHSIG), and a struct spoke put together by hand the way
 * main.c puts it together: its config file written and loaded with
 * spoke_config_load, a fresh key, the store (and the draining flag from
 * it), the real supervisor running
 * the built tessera-shim (TESSERA_SHIM), and exits queued on sp.exits as
 * main.c queues them, for outcomes_record to take. A raw hiredis
 * connection looks behind the store.
 *
 * Every call fails the running Check test (or exits the program, outside
 * one) rather than returning an error: these are test fixtures.
 */
#ifndef TSR_SPOKE_FIXTURE_H
#define TSR_SPOKE_FIXTURE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>
#include <pthread.h>

#include "rpc_client.h"
#include "rpc_loop.h"
#include "rpc_server.h"
#include "spoke.h"

#define FX_SPOKE "s1"
#define FX_WAIT_MS 8000
#define FX_TRACKED_MAX 64
#define FX_EXTRA_MAX 2048

struct fx_valkey {
	pid_t pid;
	char dir[64];
	char sock[128];
	char addr[160];
};

struct fx {
	struct fx_valkey valkey;
	char dir[64]; /* the spoke's files: config, key, state/ */
	char config_path[128];
	char state_dir[96];
	char extra[FX_EXTRA_MAX]; /* config lines after the fixed ones */
	struct sign_key hub;	  /* a hub the spoke trusts */
	struct spoke sp;
	bool spoke_up;
	redisContext *raw;
	pid_t tracked[FX_TRACKED_MAX]; /* process groups to SIGKILL at the end */
	size_t ntracked;
};

/* 77 (skip) with a message unless VALKEY_SERVER and TESSERA_SHIM are usable. */
int fx_check_env(void);

void fx_valkey_start(struct fx_valkey *v);
/* SIGKILLs the server and reaps it; fx_valkey_respawn brings it back on the same socket. */
void fx_valkey_stop(struct fx_valkey *v);
void fx_valkey_respawn(struct fx_valkey *v);
void fx_valkey_cleanup(struct fx_valkey *v);

/*
 * A Valkey, the spoke's directory and keys, then the spoke itself
 * (fx_spoke_start) with extra config lines (agent types, limits) after the
 * fixed ones; extra may be NULL.
 */
void fx_up(struct fx *f, const char *extra);
/* Kills the tracked groups, stops everything fx_up started, removes the files. */
void fx_down(struct fx *f);
/*
 * The spoke alone, as a restart of the daemon would: fx_spoke_stop leaves
 * agents running and Valkey as it is, fx_spoke_start loads the config
 * again and starts a new supervisor (without recovery_run).
 */
void fx_spoke_start(struct fx *f);
void fx_spoke_stop(struct fx *f);

/* A command on the raw connection; never NULL. Free with freeReplyObject. */
redisReply *fx_raw(struct fx *f, const char *fmt, ...);
/* The agent hash field, or "" if missing, into buf. */
const char *fx_field(struct fx *f, const char *agent_id, const char *field, char *buf, size_t len);
/* Kills process group pgid at fx_down, in case a test left it running. */
void fx_track(struct fx *f, pid_t pgid);
/* A paused child leading its own group, as a shim does, and no shim; its start time into *ticks. */
pid_t fx_bystander(uint64_t *ticks);

/* The agent as the store has it: free with tessera__v1__agent__free_unpacked. */
Tessera__V1__Agent *fx_get(struct fx *f, const char *agent_id);
/* Records queued exits (outcomes_record) until agent_id is terminal; its state. */
Tessera__V1__AgentState fx_settle(struct fx *f, const char *agent_id);
/* Waits until an exit of agent_id is queued on sp.exits. */
void fx_wait_queued(struct fx *f, const char *agent_id);

/*
 * gRPC on loopback: a server with one method, its loop on a thread of its
 * own as the daemon's loop thread, and a client loop and channel that the
 * test drives from its own thread (fx_client_run).
 */
struct fx_server {
	struct rpc_loop *loop;
	struct rpc_server *srv;
	pthread_t thread;
	struct rpc_loop *cli;
	struct rpc_channel *channel;
};

void fx_serve(struct fx_server *s, const char *method, rpc_handler_fn fn, void *ctx);
/* Stops the server (its calls are cancelled), drains both loops and frees them. */
void fx_serve_stop(struct fx_server *s);
/* Runs the client loop until done(arg) holds; fails the test after FX_WAIT_MS. */
void fx_client_run(struct fx_server *s, bool (*done)(void *arg), void *arg);
/* A command as the trusted hub signs it, for audience, with a fresh nonce. */
void fx_command(const struct sign_key *key, Tessera__V1__CommandType type,
		const ProtobufCMessage *payload, const char *audience, uint8_t **out, size_t *len);

/* The path of a file in the state directory, into buf. */
void fx_state_path(struct fx *f, const char *name, char *buf, size_t len);
/* Writes text to path (created or truncated). */
void fx_write_file(const char *path, const char *text);

#endif
