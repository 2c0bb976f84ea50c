/*
 * store: one spoke's agents and events in its Valkey, over hiredis.
 *
 * Layout, every key in one hash slot through the {spoke} tag:
 *   tessera:{S}:agent:<id>  hash, one per agent; label k is field "label:k"
 *   tessera:{S}:agents      sorted set of agent ids, score = created ms
 *   tessera:{S}:agents:state:<state>  the same, only agents now in that state
 *   tessera:{S}:agents:type:<type>    the same, only agents of that type
 *   tessera:{S}:agents:ended  ended agents, score = when they ended (ms)
 *   tessera:{S}:agents:version  "2" once the three above hold every agent
 *   tessera:{S}:requests    hash, request id -> agent id
 *   tessera:{S}:events      stream of events, the newest store_events_keep()
 *   tessera:{S}:nonce:<hex> a seen command nonce, expiring with its window
 *   tessera:{S}:draining    "1" while the spoke takes no new agents
 * and the PUBLISH channel tessera:{S}:events, which carries the stream id
 * of each new entry as a wake-up only: the stream is the record. Trimming
 * deletes the oldest entries (XDEL), so that Valkey records the newest id
 * deleted: a reader whose position is older than that has missed events
 * and is told so (OUT_OF_RANGE) rather than resumed with a silent gap.
 *
 * Every write is one call of a server-side script (store_script.c), so a
 * state never changes without its event nor an event appear without its
 * state change, and the state and type indexes always agree with the
 * records. Data written before those indexes existed is indexed by
 * store_indexes_ensure, which listing calls first. Every (re)connect
 * authenticates first, when given credentials, then loads the script,
 * which is reloaded on NOSCRIPT. A connection found broken is reopened
 * once at the start of a call; a call whose connection breaks midway is
 * not resent (its outcome is unknown) and fails UNAVAILABLE, as does any
 * call while Valkey is down.
 *
 * A struct store is one connection: use it from one thread at a time.
 * Messages handed out are malloc'd whole (the message and each string and
 * array), so that tessera__v1__*__free_unpacked(m, NULL) frees them.
 */
#ifndef TSR_STORE_H
#define TSR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ids.h"
#include "tessera/v1/agent.pb-c.h"
#include "tessera/v1/spoke.pb-c.h"

#define STORE_ADDR_MAX 256
#define STORE_TIMEOUT_MS 2000	  /* connect, and each command */
#define STORE_BOOT_ID_MAX 64	  /* bytes of a boot id */
#define STORE_EVENTS_KEPT 1000000 /* default stream length cap */
#define STORE_EVENTS_KEPT_MIN 100
#define STORE_EVENTS_KEPT_MAX 100000000
#define STORE_PAGE_DEFAULT 50
#define STORE_LIST_SCAN_MAX 2000		/* index entries one list call examines */
#define STORE_READ_MAX 1000			/* events one read returns */
#define STORE_BLOCK_MAX_MS 60000		/* longest XREAD BLOCK */
#define STORE_POSITION_MAX 48			/* "<ms>-<seq>" plus NUL, with room */
#define STORE_NONCE_MAX 32			/* bytes of a command nonce */
#define STORE_NONCE_TTL_MAX_MS (60 * 60 * 1000) /* longest a nonce is kept */
#define STORE_USER_MAX 128			/* bytes of a Valkey ACL user name */
#define STORE_PASSWORD_MAX 512			/* bytes of a Valkey password */

struct store;
struct metric_family;

/*
 * Where every store of this process reports each command it sends: its
 * seconds (a histogram) and its failures, a lost connection or an error
 * reply (a counter), both by the label "command", the command's first
 * word; a failed connect counts as command "connect". NULL, NULL: none
 * (the default). Set it while no other thread uses a store.
 */
void store_observe(struct metric_family *seconds, struct metric_family *errors);

/*
 * How a store authenticates each connection: password "" sends no AUTH,
 * user "" sends AUTH password (the default user or requirepass), else
 * AUTH user password. Both are strings ended inside their arrays (else
 * store_open refuses them); the store keeps its own copy and wipes it at
 * store_close.
 */
struct store_auth {
	char user[STORE_USER_MAX + 1];
	char password[STORE_PASSWORD_MAX + 1];
};

/* Metadata a transition also writes; each field counts only if its has_ is set. */
struct store_update {
	bool has_started_at_ms;
	int64_t started_at_ms;
	bool has_completed_at_ms;
	int64_t completed_at_ms;
	bool has_pid;
	int32_t pid;
	bool has_process; /* the process for good (agent.proto) */
	uint64_t pid_start_ticks;
	const char *boot_id;	    /* borrowed; PROC_BOOT_ID_LEN characters */
	uint64_t pid_ns;	    /* the spoke's PID namespace (proc_pid_ns); 0: none */
	uint64_t pid_ns_init_ticks; /* and its pid 1's start time; 0: none */
	bool has_timeout_at_ms;
	int64_t timeout_at_ms;
	bool has_exit_code; /* exit_code and signal exclude each other */
	int32_t exit_code;
	bool has_signal;
	int32_t signal;
	bool has_error;
	const char *error; /* borrowed; at most TSR_ERROR_MAX bytes */
	bool has_kill_requested;
	bool kill_requested;
	bool has_output;
	const char *output;   /* borrowed; at most TSR_OUTPUT_MAX bytes */
	int64_t output_bytes; /* with output: where it ends in all the agent wrote */
};

/* Called per agent by store_agents_nonterminal; a is the store's, valid during the call. */
typedef int (*store_agent_fn)(void *arg, const Tessera__V1__Agent *a, struct tsr_err *err);

/*
 * addr is "host:port", "[v6]:port" or "unix:/path"; auth may be NULL (no
 * AUTH). Fails UNAVAILABLE if Valkey is down, and also if it refuses the
 * credentials or wants some: a message saying so, without the password.
 */
int store_open(const char *addr, const char *spoke_id, const struct store_auth *auth,
	       struct store **out, struct tsr_err *err);
void store_close(struct store *st);
int store_ping(struct store *st, struct tsr_err *err);

/*
 * Records a new agent in state SPAWNING with its "agent.spawning" event,
 * using a's id (of this spoke), type, task, request_id, labels and
 * created_at_ms (0: now); the fields must have passed spawn_check.
 * If a->request_id already names an agent, nothing is written and that
 * agent's id goes to existing_id (TSR_AGENT_ID_MAX + 1 bytes);
 * otherwise existing_id[0] is '\0'. ALREADY_EXISTS if the id is taken.
 */
int store_agent_create(struct store *st, const Tessera__V1__Agent *a, char *existing_id,
		       size_t existing_len, struct tsr_err *err);
/* A command nonce and how long to keep it, as store_nonce_claim takes them. */
struct store_nonce {
	const uint8_t *bytes;
	size_t len;
	int64_t ttl_ms;
};
/*
 * One agent of a batch of creates: store_agent_create for a, also
 * recording nonce (unless NULL) in the same atomic step, so that a spawn
 * pays one write (one fsync) instead of two; with running not NULL, the
 * new agent goes on to RUNNING with that update in the same step too (its
 * "agent.running" event right after "agent.spawning"), so that a spawn
 * whose process is started and held records both in one durable write.
 * a, nonce and running are borrowed, unchanged, until the finish.
 */
struct store_create_item {
	const Tessera__V1__Agent *a;
	const struct store_nonce *nonce;
	const struct store_update *running;
	/* Its outcome, once finished: code 0 when made or when its request id
	 * names an agent already (existing, else ""), or what store_agent_create
	 * fails with; a nonce that cannot be recorded fails as
	 * store_nonce_claim would, with nothing written. */
	struct tsr_err err;
	char existing[TSR_AGENT_ID_MAX + 1];
	/* With running: the record as the step left it (the caller's, free
	 * with tessera__v1__agent__free_unpacked), or NULL if nothing was
	 * created or it does not decode (store_agent_get then says why). */
	Tessera__V1__Agent *rec;
};
#define STORE_CREATES_MAX 16 /* in one batch */
/* Creates sent and not yet answered (store_agent_create_send). */
struct store_create;
/*
 * Writes out the creates of items[0..n) (1..STORE_CREATES_MAX) at once:
 * Valkey runs them back to back and syncs them together. One that cannot
 * be sent (too long, say) fails alone, its err set. *out, the caller's
 * until store_agent_create_finish, which must be the next use of st,
 * takes the answers into each item's outcome and frees it; it is NULL
 * when nothing was sent. -1 when they could not be written out (err:
 * UNAVAILABLE, or RESOURCE_EXHAUSTED when out of memory): each item's err
 * is err, and each may or may not have been made.
 */
int store_agent_create_send(struct store *st, struct store_create_item *items, size_t n,
			    struct store_create **out, struct tsr_err *err);
/* -1 when some were not answered: their err is err, and they may or may not have been made. */
int store_agent_create_finish(struct store *st, struct store_create *c, struct tsr_err *err);
/*
 * Moves agent_id to state to if lifecycle allows it from the current state,
 * writing upd (may be NULL; an end without completed_at_ms gets now) and
 * the "agent.<to>" event; position receives
 * the event's stream id (STORE_POSITION_MAX). NOT_FOUND, or
 * FAILED_PRECONDITION naming both states, with nothing changed.
 */
int store_agent_transition(struct store *st, const char *agent_id, Tessera__V1__AgentState to,
			   const struct store_update *upd, char *position, size_t poslen,
			   struct tsr_err *err);
/* One transition of a batch: store_agent_transition's arguments, borrowed. */
struct store_transition {
	const char *agent_id;
	Tessera__V1__AgentState to;
	const struct store_update *upd;
};
#define STORE_TRANSITIONS_MAX 16 /* in one batch */
/*
 * store_agent_transition for n (1..STORE_TRANSITIONS_MAX) agents, sent
 * at once: Valkey runs them back to back and syncs them together, one
 * fsync where each used to pay its own. errs[i] gets the outcome of t[i]:
 * code 0 when it was made, else what store_agent_transition fails with.
 * -1 when some could not be sent or were not answered (err: UNAVAILABLE,
 * or RESOURCE_EXHAUSTED when out of memory): their errs[i] is err, and
 * they may or may not have been made.
 */
int store_agent_transitions(struct store *st, const struct store_transition *t, size_t n,
			    struct tsr_err *errs, struct tsr_err *err);
/* Sets kill_requested on a non-terminal agent; FAILED_PRECONDITION once terminal. */
int store_agent_mark_kill(struct store *st, const char *agent_id, struct tsr_err *err);
/*
 * store_agent_mark_kill that first records nonce, in the same atomic step:
 * a kill pays one write (one fsync) before its signal instead of two.
 * Fails as store_nonce_claim would, with nothing written, if it cannot;
 * on NOT_FOUND or FAILED_PRECONDITION the nonce is recorded.
 */
int store_agent_mark_kill_once(struct store *st, const char *agent_id,
			       const struct store_nonce *nonce, struct tsr_err *err);
/* *out is malloc'd: free with tessera__v1__agent__free_unpacked(*out, NULL). */
int store_agent_get(struct store *st, const char *agent_id, Tessera__V1__Agent **out,
		    struct tsr_err *err);
/*
 * store_agent_get for a command whose nonce a later step records: first
 * PERMISSION_DENIED "replayed command", with nothing read, if nonce is
 * recorded already. It only reads, so it costs no fsync.
 */
int store_agent_get_fresh(struct store *st, const char *agent_id, const struct store_nonce *nonce,
			  Tessera__V1__Agent **out, struct tsr_err *err);
/* One kill of a batch: its agent and nonce, borrowed, and its outcome. */
struct store_kill_item {
	const char *agent_id;
	const struct store_nonce *nonce;
	struct tsr_err err;	 /* code 0, or what the one-agent call fails with */
	Tessera__V1__Agent *rec; /* store_agent_get_fresh_many's: the caller's, or NULL */
};
#define STORE_KILLS_MAX 16 /* in one batch */
/*
 * store_agent_get_fresh and store_agent_mark_kill_once for n
 * (1..STORE_KILLS_MAX) kills, sent at once: Valkey runs them back to back
 * and syncs the marks together. Each item gets its own outcome; one that
 * cannot be sent fails alone. -1 when some could not be sent or were not
 * answered (err: UNAVAILABLE, or RESOURCE_EXHAUSTED when out of memory):
 * their err is err, and marks among them may or may not have been made.
 */
int store_agent_get_fresh_many(struct store *st, struct store_kill_item *k, size_t n,
			       struct tsr_err *err);
int store_agent_mark_kill_many(struct store *st, struct store_kill_item *k, size_t n,
			       struct tsr_err *err);
/*
 * One page of agents, newest first. state_filter UNSPECIFIED and
 * type_filter "" match any; an agent matches the nlabels labels (a
 * selector, checked like an agent's labels) if it has each key with that
 * value. page_size 0 means STORE_PAGE_DEFAULT, more than TSR_PAGE_SIZE_MAX is
 * cut to it. page_token is "" or a previous next_page_token
 * (INVALID_ARGUMENT otherwise); it stays good while agents change state.
 * The walk goes over the smallest of the index of the state, the index of
 * the type and the main index, and examines at most STORE_LIST_SCAN_MAX
 * of its entries per call, so a filtered page may hold fewer agents than
 * asked, even none, and still have a next_page_token; the listing is over
 * when next_page_token is "". Agents in a page have no output: a page of
 * full tails could outgrow a reply. *out is malloc'd: free with
 * tessera__v1__agent_page__free_unpacked(*out, NULL).
 */
int store_agent_list(struct store *st, Tessera__V1__AgentState state_filter,
		     const char *type_filter, const struct tsr_label *labels, size_t nlabels,
		     uint32_t page_size, const char *page_token, Tessera__V1__AgentPage **out,
		     struct tsr_err *err);
/*
 * Makes sure the state and type indexes hold every agent: if the version
 * key is missing (data from an older spoke), indexes the main index in
 * batches of bounded size, then sets it. Checked once per store; listing
 * calls it, and start-up may call it to do the work before serving.
 */
int store_indexes_ensure(struct store *st, struct tsr_err *err);
/*
 * counts[s]: the agents recorded in state s (an AgentState) for s in
 * 1..n-1, from the state indexes, in one read-only script; [0] is 0.
 */
int store_agents_by_state(struct store *st, int64_t *counts, size_t n, struct tsr_err *err);
/*
 * Calls fn for every agent not in a terminal state, one state after the
 * other, newest first within each, for recovery at start-up; stops at fn's
 * first error. fn may use st, and may move the agent to another state.
 */
int store_agents_nonterminal(struct store *st, store_agent_fn fn, void *arg, struct tsr_err *err);

/* How long ended agents are kept: both bounds hold. */
struct store_retention {
	int64_t ms;    /* 1..: an agent goes this long after it ended */
	int64_t count; /* 0..: the most ended agents kept */
};
#define STORE_PRUNE_BATCH_MAX 1000 /* agents one store_agents_prune deletes at most */

struct store_pruned {
	size_t deleted; /* agents deleted by this call */
	size_t due;	/* more that are due, for another call */
};

/*
 * Deletes up to most (1..STORE_PRUNE_BATCH_MAX) of the ended agents that
 * keep no longer holds at now_ms, oldest first, each with its index and
 * request-map entries, in one atomic step; GetAgent then finds them
 * NOT_FOUND. Their events stay, under the stream's own cap.
 */
int store_agents_prune(struct store *st, const struct store_retention *keep, int64_t now_ms,
		       size_t most, struct store_pruned *out, struct tsr_err *err);

/*
 * The agent request_id (a name: spawn_check's shape) maps to, into id
 * (TSR_AGENT_ID_MAX + 1 bytes); "" if none.
 */
int store_request_agent(struct store *st, const char *request_id, char *id, size_t len,
			struct tsr_err *err);

/*
 * Whether the spoke is draining (SPOKE_DRAIN): its draining key, written
 * like every record, so that the flag is as durable as they are and
 * outlives a spoke restart. store_drain_get reads it (INTERNAL if it holds
 * anything but what store_drain_set writes); setting what is set is harmless.
 */
int store_drain_get(struct store *st, bool *draining, struct tsr_err *err);
int store_drain_set(struct store *st, bool draining, struct tsr_err *err);

/*
 * Records a command nonce for ttl_ms (1..STORE_NONCE_TTL_MAX_MS), in one
 * atomic step. PERMISSION_DENIED "replayed command" if it is already
 * recorded; UNAVAILABLE if Valkey cannot be reached, so that a caller
 * refuses any command whose nonce could not be recorded.
 */
int store_nonce_claim(struct store *st, const uint8_t *nonce, size_t len, int64_t ttl_ms,
		      struct tsr_err *err);

/*
 * How many events the stream keeps (STORE_EVENTS_KEPT_MIN..MAX, else
 * INVALID_ARGUMENT); STORE_EVENTS_KEPT until set. Each write then deletes
 * the oldest entries beyond that, at most 1000 per write, so that a lower
 * cap takes effect gradually instead of in one long script.
 */
int store_events_keep(struct store *st, long long kept, struct tsr_err *err);
/* The stream id of the newest event, or "0-0" if there is none. */
int store_events_last(struct store *st, char *position, size_t len, struct tsr_err *err);
/*
 * Up to max_count (1..STORE_READ_MAX) events after position after,
 * waiting up to block_ms (0..STORE_BLOCK_MAX_MS; 0: no wait) for the first.
 * after "0-0" means every event kept. OUT_OF_RANGE, naming after and the
 * oldest position kept, if an event after after has been trimmed off.
 * *events is a malloc'd array of *n malloc'd events (n may be 0): free it
 * with store_events_free. Blocks the connection: give a reader its own store.
 */
int store_events_read(struct store *st, const char *after, int block_ms, size_t max_count,
		      Tessera__V1__Event ***events, size_t *n, struct tsr_err *err);
void store_events_free(Tessera__V1__Event **events, size_t n);

#endif
