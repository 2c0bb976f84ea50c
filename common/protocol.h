/*
 * protocol: every name and limit of Tessera's wire contract, defined once
 * for the hub, the spoke, the CLI and the tests. The messages are in
 * proto/: tessera.v1.Hub, the users' API (proto/hub/tessera/v1/hub.proto),
 * and tessera.v1.Spoke, the federation protocol between hub and spoke
 * (proto/tessera/v1/spoke.proto), whose CommandType enum names the
 * commands. Each layer validates against these at its trust boundary; an
 * inner layer's own bound is one of these, or a _Static_assert ties it.
 */
#ifndef TSR_PROTOCOL_H
#define TSR_PROTOCOL_H

#include "tessera/v1/spoke.pb-c.h"

/* Services and methods. */
#define TSR_HUB_SERVICE "tessera.v1.Hub"
#define TSR_HUB_METHOD(name) "/" TSR_HUB_SERVICE "/" name
#define TSR_METHOD_SPAWN_AGENT TSR_HUB_METHOD("SpawnAgent")
#define TSR_METHOD_GET_AGENT TSR_HUB_METHOD("GetAgent")
#define TSR_METHOD_KILL_AGENT TSR_HUB_METHOD("KillAgent")
#define TSR_METHOD_LIST_AGENTS TSR_HUB_METHOD("ListAgents")
#define TSR_METHOD_LIST_SPOKES TSR_HUB_METHOD("ListSpokes")
#define TSR_METHOD_DRAIN_SPOKE TSR_HUB_METHOD("DrainSpoke")
#define TSR_METHOD_UNDRAIN_SPOKE TSR_HUB_METHOD("UndrainSpoke")
#define TSR_METHOD_WATCH_EVENTS TSR_HUB_METHOD("WatchEvents")
#define TSR_METHOD_READ_AGENT_OUTPUT TSR_HUB_METHOD("ReadAgentOutput")

#define TSR_SPOKE_SERVICE "tessera.v1.Spoke"
#define TSR_METHOD_EXECUTE "/" TSR_SPOKE_SERVICE "/Execute"
#define TSR_METHOD_STREAM_EVENTS "/" TSR_SPOKE_SERVICE "/StreamEvents"
#define TSR_METHOD_STREAM_OUTPUT "/" TSR_SPOKE_SERVICE "/StreamOutput"

/* Names: spoke ids, agent type names, request ids, label keys. */
#define TSR_NAME_MAX 64
#define TSR_AGENT_ID_HEX 24 /* "<spoke id>.<hex>" */
#define TSR_AGENT_ID_MAX (TSR_NAME_MAX + 1 + TSR_AGENT_ID_HEX)
#define TSR_LABELS_MAX 16 /* labels of one spoke, agent or selector */
#define TSR_LABEL_VALUE_MAX 64

/* An agent. */
#define TSR_TASK_MAX (64 * 1024)		       /* bytes of its task */
#define TSR_AGENT_TIMEOUT_MAX_MS (24 * 60 * 60 * 1000) /* longest timeout */
#define TSR_ERROR_MAX 1024			       /* bytes of why it failed or was killed */
#define TSR_OUTPUT_MAX (1024 * 1024)		       /* bytes of its output tail */
#define TSR_OUTPUT_CHUNK_MAX (64 * 1024)	       /* bytes of one OutputChunk */
#define TSR_OUTPUT_TAIL_LINES_MAX 10000		       /* lines a read may start back */

/*
 * What a server reads beyond the largest request it takes: a spoke's is a
 * signed command (ENVELOPE_COMMAND_MAX, envelope.h), so it reads that much
 * and this margin, and a command just over the cap still meets the
 * envelope's own check and message. gRPC refuses anything longer
 * RESOURCE_EXHAUSTED before a handler sees it.
 */
#define TSR_RECEIVE_MARGIN (16 * 1024)

/* List pages. A spoke's page token is opaque to the hub, which carries it. */
#define TSR_PAGE_SIZE_MAX 500
#define TSR_SPOKE_PAGE_TOKEN_MAX 256
/*
 * Bytes of agents in one page (packed), a spoke's AgentPage and the hub's
 * ListAgentsResponse alike: well under the 4 MiB any gRPC client takes by
 * default, with room for the signature's envelope. List items carry no
 * task and no output, so each is a few KiB at most.
 */
#define TSR_PAGE_BYTES_MAX (1024 * 1024)

/*
 * Event streams (Spoke/StreamEvents). A spoke serves at most
 * TSR_SPOKE_STREAMS_MAX at once, each a thread with a Valkey connection;
 * a hub opens one per watcher and spoke, so it holds its watchers within
 * that (hub_limits.h asserts it). Every stream's first message is a
 * signed Event of type TSR_EVENT_STREAM_START carrying the position the
 * stream starts after and the id of the command that opened it: the hub
 * takes the start from it, never from unsigned metadata.
 */
#define TSR_SPOKE_STREAMS_MAX 256
#define TSR_EVENT_STREAM_START "stream.start"

/* The name of a command type for logs ("AGENT_SPAWN"); "UNKNOWN" if none. */
const char *protocol_command_name(Tessera__V1__CommandType type);

#endif
