/*
 * store_internal: what the store's own files share, and nothing else may
 * use: struct store, the argument list of one command and its builders,
 * the calls that send commands (store_conn.c), the field tables of agent
 * hashes and event entries, with their checked decoding and the encoding
 * of an update (store_fields.c).
 */
#ifndef TSR_STORE_INTERNAL_H
#define TSR_STORE_INTERNAL_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ids.h"
#include "store.h"
#include "tessera/v1/agent.pb-c.h"

#define STORE_KEY_MAX 192
#define STORE_ARGS_MAX 192 /* a create that goes on to RUNNING, with 16 labels: 127 */
#define STORE_NUM_LEN 24
#define STORE_SHA_LEN 40
#define STORE_EVENT_TYPE_MAX 32

struct store {
	redisContext *ctx; /* owned; NULL while disconnected */
	bool unix_socket;
	char addr[STORE_ADDR_MAX]; /* as given, for messages */
	char host[STORE_ADDR_MAX]; /* host name or socket path */
	int port;
	struct store_auth auth; /* sent on every connect; wiped at store_close */
	char spoke[TSR_NAME_MAX + 1];
	char agent_prefix[STORE_KEY_MAX];
	char k_index[STORE_KEY_MAX];
	char k_requests[STORE_KEY_MAX];
	char k_events[STORE_KEY_MAX]; /* also the PUBLISH channel */
	long long events_kept;	      /* the stream's length cap (store_events_keep) */
	char nonce_prefix[STORE_KEY_MAX];
	char k_draining[STORE_KEY_MAX];
	char sha[STORE_SHA_LEN + 1];
	bool indexes_ok;  /* the index version key was seen (store_indexes_ensure) */
	bool pending;	  /* a command was sent whose reply is not yet taken */
	size_t sent_many; /* calls store_eval_many_send sent, their replies not yet taken */
};

/*
 * One command's arguments. Appending never fails on the spot: an overflow
 * is remembered and refused when the command is sent, so that building a
 * long list needs no check per argument.
 */
struct store_args {
	int argc;
	bool overflow;
	const char *argv[STORE_ARGS_MAX]; /* borrowed, or pointing into nums */
	size_t len[STORE_ARGS_MAX];
	char nums[STORE_ARGS_MAX][STORE_NUM_LEN];
};

/*
 * Agent hash fields: indexes into store_agent_fields. Those a store_update
 * carries stand in the order store_args_update writes them.
 */
enum {
	AF_ID,
	AF_SPOKE,
	AF_TYPE,
	AF_TASK,
	AF_STATE,
	AF_CREATED,
	AF_REQUEST,
	AF_STARTED,
	AF_COMPLETED,
	AF_PID,
	AF_PID_START,
	AF_BOOT,
	AF_PID_NS,
	AF_PID_NS_INIT,
	AF_TIMEOUT_AT,
	AF_EXIT,
	AF_SIGNAL,
	AF_ERROR,
	AF_KILL,
	AF_OUTPUT,
	AF_OUTPUT_BYTES,
	AF_COUNT
};

/*
 * An agent label is the hash field STORE_LABEL_PREFIX<key>: no fixed field
 * name holds a ':', so a label can never be taken for one, nor one for a label.
 */
#define STORE_LABEL_PREFIX "label:"
/* Index keys: <k_index>:state:<state>, <k_index>:type:<type>, and this version key. */
#define STORE_INDEX_VERSION_SUFFIX ":version"
#define STORE_INDEX_VERSION "2"

/* Event stream fields: indexes into store_event_fields. */
enum {
	EF_TYPE,
	EF_AGENT,
	EF_SPOKE,
	EF_OLD,
	EF_NEW,
	EF_TIME,
	EF_STARTED,
	EF_COMPLETED,
	EF_EXIT,
	EF_SIGNAL,
	EF_ERROR,
	EF_COUNT
};

/* store_conn.c: building commands and sending them. */

void store_args_str(struct store_args *a, const char *s);
void store_args_int(struct store_args *a, long long v);
/* Opens a counted list; store_args_list_end writes its count into the slot returned. */
int store_args_list(struct store_args *a);
void store_args_list_end(struct store_args *a, int slot);
void store_args_state(struct store_args *a, Tessera__V1__AgentState s);
/* EVALSHA of store_script with the keys; agent_key NULL for "list". */
void store_args_eval(struct store_args *a, const struct store *st, const char *op,
		     const char *agent_key);
/* The same with KEYS[5], a command nonce's key ("create" records it). */
void store_args_eval_nonce(struct store_args *a, const struct store *st, const char *op,
			   const char *agent_key, const char *nonce_key);
/* The key of a command nonce, after checking it and its lifetime as store_nonce_claim does. */
int store_nonce_key(const struct store *st, const struct store_nonce *n, char key[STORE_KEY_MAX],
		    struct tsr_err *err);
/* Of two copies of a command, the second finds its nonce recorded. */
#define STORE_REPLAYED "replayed command"
/* Checks a reply and copies out of it what the caller keeps; arg is the caller's. */
typedef int (*store_reply_fn)(const redisReply *r, void *arg, struct tsr_err *err);
/*
 * Sends one command, (re)connecting first if the connection is closed or
 * found broken, then fn on the reply, which is freed after it. An error
 * reply fails with the status it maps to, and fn does not see it.
 */
int store_request(struct store *st, struct store_args *a, int timeout_ms, store_reply_fn fn,
		  void *arg, struct tsr_err *err);
/*
 * store_request of a, sent right behind first without waiting for its
 * reply: Valkey runs a as soon as first has answered, even a first that
 * blocks (XREAD BLOCK), so the pair costs one round trip. timeout_ms holds
 * for the pair; first's reply is let go unless it is an error, which
 * fails the call as a's would.
 */
int store_request_after(struct store *st, struct store_args *first, struct store_args *a,
			int timeout_ms, store_reply_fn fn, void *arg, struct tsr_err *err);
/*
 * Runs the script, then fn on its reply, an array whose first element is
 * a string, which is freed after it. A NOSCRIPT answer (cache flushed
 * under a live connection) means nothing ran, so the script is loaded and
 * the call made once more.
 */
int store_eval(struct store *st, struct store_args *a, store_reply_fn fn, void *arg,
	       struct tsr_err *err);
/*
 * Sends the n script calls args[0..n) at once and takes their replies in
 * order into r[i] (any reply; owned by the caller, free each), so that
 * Valkey runs them back to back and, under appendfsync always, syncs
 * them together. Calls answered NOSCRIPT, which ran nothing, are made
 * again once the script is loaded. -1 when the connection fails: each
 * r[i] still NULL is a call whose outcome is unknown.
 */
int store_eval_many(struct store *st, struct store_args *const *args, size_t n, redisReply **r,
		    struct tsr_err *err);
/*
 * store_eval_many in two halves, so that the caller can work while Valkey
 * runs the calls: store_eval_many_send writes them out (-1: none was
 * sent, or the connection failed and each may or may not run);
 * store_eval_many_receive, which must come next on st, takes their
 * replies as store_eval_many does. args, and all they borrow, stay
 * unchanged in between.
 */
int store_eval_many_send(struct store *st, struct store_args *const *args, size_t n,
			 struct tsr_err *err);
int store_eval_many_receive(struct store *st, struct store_args *const *args, size_t n,
			    redisReply **r, struct tsr_err *err);
/* fn on a script's reply r, as store_eval does; an error reply fails with its status. */
int store_eval_use(const redisReply *r, store_reply_fn fn, void *arg, struct tsr_err *err);
/* Writes prefix then name into buf (STORE_KEY_MAX); INTERNAL if too long. */
int store_key(char *buf, const char *prefix, const char *name, struct tsr_err *err);

/*
 * store_fields.c: one table per record of its fields, the decoder that
 * fills a message from a record, and the encoder of a store_update. Every
 * string a message gets is its own malloc'd copy.
 */

/* How a field's value is checked, and the C type of its member. */
enum store_kind {
	SK_TEXT,  /* char * (const char * in a store_update), at most max bytes */
	SK_STATE, /* Tessera__V1__AgentState, by its lifecycle name */
	SK_BOOL,  /* protobuf_c_boolean (bool in a store_update), 0 or 1 */
	SK_I32,	  /* int32_t in min..max */
	SK_I64,	  /* int64_t in min..max */
	SK_U64,	  /* uint64_t in min..max */
	SK_END,	  /* int32_t in min..max, of the message's end oneof */
};

struct store_field {
	const char *name; /* in the hash or entry: writer and reader share it */
	enum store_kind kind;
	int64_t min, max;  /* the value's range; SK_TEXT: max is its length in bytes */
	bool keep_tail;	   /* SK_TEXT: an output tail, whose newest bytes a bound keeps */
	size_t at;	   /* offsetof its member in the message */
	int end_case;	   /* SK_END: the oneof case its member is */
	bool in_update;	   /* whether a struct store_update carries it, and where: */
	size_t update_has; /* offsetof its has_ flag */
	size_t update_at;  /* offsetof its value */
};

/* A record: its fields, by AF_ or EF_ index, and where its message keeps the end case. */
struct store_record {
	const char *what; /* "agent", "event": for messages */
	const struct store_field *fields;
	int count;
	size_t end_case_at; /* offsetof end_case; 0 there means not set */
};

extern const struct store_field store_agent_fields[AF_COUNT];
extern const struct store_field store_event_fields[EF_COUNT];
extern const struct store_record store_agent_record; /* Tessera__V1__Agent */
extern const struct store_record store_event_record; /* Tessera__V1__Event */
/* The agent fields a transition's event copies, by name (AF_ indexes). */
extern const int store_event_copied[];
extern const size_t store_event_copied_count;

/*
 * Copies v, a string of at most max bytes and no NUL, into *dst, with any
 * ill-formed UTF-8 repaired (utf8_repair, its start kept within max).
 */
int store_field_text(const redisReply *v, size_t max, char **dst, const char *name,
		     struct tsr_err *err);
/* Decodes a pair of no field's name into msg; one it does not know, it skips. */
typedef int (*store_extra_fn)(void *msg, const char *name, const redisReply *v,
			      struct tsr_err *err);
/*
 * Fills msg, a message of rec's kind, from pairs (store_pairs_check'ed):
 * each field at most once, a pair of no field's name through extra (NULL:
 * skipped). *seen gets bit f for each field f read.
 */
int store_record_decode(const struct store_record *rec, void *msg, const redisReply *pairs,
			store_extra_fn extra, unsigned *seen, struct tsr_err *err);
/* Appends the pairs of the fields u sets, as the agent hash holds them. */
void store_args_update(struct store_args *a, const struct store_update *u);
/*
 * Gives every string still at protobuf-c's static default a malloc'd ""
 * of its own, so that a caller may free or replace any string field.
 */
int store_strings_own(char **fields[], size_t n, struct tsr_err *err);
/* Checks that r is an array of string pairs of bounded count. */
int store_pairs_check(const redisReply *r, const char *what, struct tsr_err *err);

#endif
