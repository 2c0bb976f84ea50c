#!/usr/bin/env bash
# List pages are bounded by bytes as well as count: 600 agents with 60 KiB
# tasks (36 MiB of tasks in all) page through `tessera list` and through
# grpcurl's ListAgents, every agent exactly once, because list items carry
# neither the task nor the output; GetAgent still has the whole task.
# grpcurl (Go) takes no message over 4 MiB by default, so a page that did
# carry the tasks would fail there. A page holding another spoke's agent
# is refused by the hub.
. "$(dirname "$0")/lib.sh"

command -v grpcurl >/dev/null || bail "grpcurl is not installed (deploy/install-go-tools.sh)"

AGENTS=600
TASK_BYTES=$((60 * 1024))

start_valkey vk1
keygen hub
SPOKE_MAX_AGENTS=$AGENTS start_spoke spoke-1 vk1 hub
start_hub hub hub spoke-1

head -c "$TASK_BYTES" /dev/zero | tr '\0' 't' >"$WORK/task"
for i in $(seq 1 "$AGENTS"); do
	why=$(cli spawn true - <"$WORK/task" 2>&1 >/dev/null) || bail "spawn $i failed: $why"
done

cli --json list >"$WORK/list.json" 2>"$WORK/list.err"
rc=$?
check "tessera list pages through all $AGENTS agents" [ "$rc" -eq 0 ]
check "... listing each once" \
	[ "$(jq -r '.agents[].id' "$WORK/list.json" | sort -u | wc -l)" -eq "$AGENTS" ]
check "... with no task in any item" \
	[ "$(jq -r '.agents[] | select(.task != "") | .id' "$WORK/list.json" | wc -l)" -eq 0 ]

# list_page TOKEN: one ListAgents page of the most agents a page may hold.
list_page() {
	grpcurl -plaintext -max-time 20 -d "{\"pageSize\": 500, \"pageToken\": \"$1\"}" \
		"$HUB_ADDR" tessera.v1.Hub/ListAgents
}

token=""
pages=0
: >"$WORK/ids"
: >"$WORK/tasked"
while :; do
	list_page "$token" >"$WORK/page.json" 2>"$WORK/page.err" || break
	jq -r '.agents[]?.id' "$WORK/page.json" >>"$WORK/ids"
	jq -r '.agents[]? | select((.task // "") != "") | .id' "$WORK/page.json" >>"$WORK/tasked"
	pages=$((pages + 1))
	token=$(jq -r '.nextPageToken // ""' "$WORK/page.json")
	[ -n "$token" ] && [ "$pages" -lt 10 ] || break
done
check "grpcurl pages through ListAgents without an error" \
	[ ! -s "$WORK/page.err" ]
check "... in 2 pages of at most 500" [ "$pages" -eq 2 ]
check "... each agent once" \
	[ "$(sort -u "$WORK/ids" | wc -l)" -eq "$AGENTS" -a "$(wc -l <"$WORK/ids")" -eq "$AGENTS" ]
check "... and no page item has a task" [ ! -s "$WORK/tasked" ]

id=$(head -n 1 "$WORK/ids")
check "GetAgent has the whole 60 KiB task" \
	[ "$(agent_field "$id" .task | tr -d '\n' | wc -c)" -eq "$TASK_BYTES" ]

# A spoke signs its pages but speaks only for its own agents: a record of
# another spoke's agent slipped into its Valkey fails the listing at the
# hub, saying which, as its unary replies would.
forged=spoke-2.0123456789abcdef01234567
key="tessera:{spoke-1}:agent:$forged"
created=$(valkey vk1 HGET "tessera:{spoke-1}:agent:$id" created_at_ms)
valkey vk1 HSET "$key" id "$forged" spoke_id spoke-2 type true \
	state "$(valkey vk1 HGET "tessera:{spoke-1}:agent:$id" state)" \
	created_at_ms "$((created + 100000))" >/dev/null
valkey vk1 ZADD "tessera:{spoke-1}:agents" "$((created + 100000))" "$forged" >/dev/null
cli list >/dev/null 2>"$WORK/forged.err"
rc=$?
check "a page with another spoke's agent fails the listing" [ "$rc" -ne 0 ]
check "... saying so" grep -q "spoke spoke-1 listed agent $forged of another spoke" \
	"$WORK/forged.err"

finish
