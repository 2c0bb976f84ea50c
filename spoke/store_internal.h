/*
 * store_internal: what the store's own files share, and nothing else may
 * use: struct store, the argument list of one command and its builders,
 * the calls that send commands (store_conn.c), the field names of agent
 * hashes and event entries and the checked decoding of field values
 * (store_fields.c).
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
#define STORE_ARGS_MAX 128
#define STORE_NUM_LEN 24
#define STORE_SHA_LEN 40
#define STORE_EVENT_TYPE_MAX 32

struct store {
	redisContext *ctx;		/* owned; NULL while disconnected */
	bool unix_socket;
	char addr[STORE_ADDR_MAX];	/* as given, for messages */
	char host[STORE_ADDR_MAX];	/* host name or socket path */
	int port;
	struct store_auth auth;		/* sent on every connect; wiped at store_close */
	char spoke[TSR_NAME_MAX + 1];
	char agent_prefix[STORE_KEY_MAX];
	char k_index[STORE_KEY_MAX];
	char k_requests[STORE_KEY_MAX];
	char k_events[STORE_KEY_MAX];	/* also the PUBLISH channel */
	long long events_kept;		/* the stream's length cap (store_events_keep) */
	char nonce_prefix[STORE_KEY_MAX];
	char sha[STORE_SHA_LEN + 1];
	bool indexes_ok;		/* the index version key was seen (store_indexes_ensure) */
};

/*
 * One command's arguments. Appending never fails on the spot: an overflow
 * is remembered and refused when the command is sent, so that building a
 * long list needs no check per argument.
 */
struct store_args {
	int argc;
	bool overflow;
	const char *argv[STORE_ARGS_MAX];	/* borrowed, or pointing into nums */
	size_t len[STORE_ARGS_MAX];
	char nums[STORE_ARGS_MAX][STORE_NUM_LEN];
};

/* Agent hash fields: indexes into store_agent_fields. */
enum {
	AF_ID, AF_SPOKE, AF_TYPE, AF_TASK, AF_STATE, AF_CREATED, AF_STARTED,
	AF_COMPLETED, AF_EXIT, AF_SIGNAL, AF_ERROR, AF_PID, AF_REQUEST, AF_KILL,
	AF_OUTPUT, AF_PID_START, AF_BOOT, AF_TIMEOUT_AT, AF_PID_NS,
	AF_PID_NS_INIT, AF_COUNT
};

/*
 * An agent label is the hash field STORE_LABEL_PREFIX<key>: no fixed field
 * name holds a ':', so a label can never be taken for one, nor one for a label.
 */
#define STORE_LABEL_PREFIX "label:"
/* Index keys: <k_index>:state:<state>, <k_index>:type:<type>, and this version key. */
#define STORE_INDEX_VERSION_SUFFIX ":version"
#define STORE_INDEX_VERSION "1"

/* Event stream fields: indexes into store_event_fields. */
enum {
	EF_TYPE, EF_AGENT, EF_SPOKE, EF_OLD, EF_NEW, EF_TIME, EF_STARTED,
	EF_COMPLETED, EF_EXIT, EF_SIGNAL, EF_ERROR, EF_COUNT
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
/*
 * Sends one command, (re)connecting first if the connection is closed or
 * found broken; an error reply fails with the status it maps to.
 */
int store_command(struct store *st, struct store_args *a, int timeout_ms,
		  redisReply **out, struct tsr_err *err);
/*
 * Runs the script; a NOSCRIPT answer (cache flushed under a live
 * connection) means nothing ran, so the script is loaded and the call
 * made once more. *out is an array whose first element is a string.
 */
int store_eval(struct store *st, struct store_args *a, redisReply **out,
	       struct tsr_err *err);
/* Writes prefix then name into buf (STORE_KEY_MAX); INTERNAL if too long. */
int store_key(char *buf, const char *prefix, const char *name, struct tsr_err *err);

/*
 * store_fields.c: field names, and decoding. Every string a message gets
 * is its own malloc'd copy.
 */

extern const char *const store_agent_fields[AF_COUNT];
extern const char *const store_event_fields[EF_COUNT];
/* The agent fields a transition's event copies, by name (AF_ indexes). */
extern const int store_event_copied[];
extern const size_t store_event_copied_count;

int store_field_text(const redisReply *v, size_t max, char **dst, const char *name,
	       struct tsr_err *err);
int store_field_int(const redisReply *v, int64_t min, int64_t max, int64_t *out,
	      const char *name, struct tsr_err *err);
int store_field_state(const redisReply *v, Tessera__V1__AgentState *out, const char *name,
		struct tsr_err *err);
/*
 * Gives every string still at protobuf-c's static default a malloc'd ""
 * of its own, so that a caller may free or replace any string field.
 */
int store_strings_own(char **fields[], size_t n, struct tsr_err *err);
/* Index of name in names, or -1. */
int store_field_index(const char *const *names, int n, const char *name);
/* Checks that r is an array of string pairs of bounded count. */
int store_pairs_check(const redisReply *r, const char *what, struct tsr_err *err);

#endif
