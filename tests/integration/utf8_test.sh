#!/usr/bin/env bash
# Proto3 strings carry well-formed UTF-8 only: protobuf-go's generated
# code and Python's refuse a message with anything else. An agent prints
# what it likes: its output tail, and an error naming a path that is not
# UTF-8, come back through GetAgent, ListAgents and WatchEvents with each
# ill-formed stretch replaced by U+FFFD. A task that is not UTF-8 is
# refused INVALID_ARGUMENT by the hub, and nothing is created. Also the
# bound of what the spoke reads: a request beyond a signed command and
# its margin is refused by gRPC, unread.
#
# grpcurl 1.9 (jhump/protoreflect's dynamic messages) takes ill-formed
# strings without a word, and its JSON hides them (Go's encoder puts
# U+FFFD in), so the calls ask for protobuf text format, which shows
# every byte beyond ASCII as an escape, and strict_text checks each
# string there as a strict client would on receipt.
. "$(dirname "$0")/lib.sh"

command -v grpcurl >/dev/null || bail "grpcurl is not installed (deploy/install-go-tools.sh)"

start_valkey vk1
keygen hub
start_spoke spoke-1 vk1 hub
start_hub hub hub spoke-1
SPOKE_ADDR=127.0.0.1:$SPOKE_PORT_spoke_1
AGENTS_KEY='tessera:{spoke-1}:agents'

# hub_rpc METHOD REQUEST [OPTION...]: the call, answered in text format.
hub_rpc() {
	local method=$1 req=$2
	shift 2
	grpcurl -plaintext -max-time 10 -format text "$@" -d "$req" "$HUB_ADDR" \
		"tessera.v1.Hub/$method"
}

# strict_text FILE FIELD: the values of FIELD in FILE, grpcurl's text
# output, each followed by a newline; fails, naming the field, if any
# string in FILE is not well-formed UTF-8.
strict_text() {
	python3 -c '
import codecs, re, sys
ok = True
for line in open(sys.argv[1], "rb"):
    m = re.fullmatch(rb"\s*(\w+): \"(.*)\"\n?", line)
    if m is None:
        continue
    name = m.group(1).decode()
    try:
        text = codecs.escape_decode(m.group(2))[0].decode("utf-8")
    except UnicodeDecodeError as e:
        print("%s is not UTF-8: %s" % (name, e), file=sys.stderr)
        ok = False
        continue
    if name == sys.argv[2]:
        sys.stdout.write(text + "\n")
sys.exit(0 if ok else 1)' "$1" "$2"
}

# repaired: stdin as the hub should show it, each ill-formed stretch as
# U+FFFD; Python counts the stretches as Unicode says, like common/utf8.c.
repaired() {
	python3 -c 'import sys; sys.stdout.write(sys.stdin.buffer.read().decode("utf-8", "replace"))'
}

# fffd_count FILE: how many U+FFFD the UTF-8 text in FILE holds.
fffd_count() {
	python3 -c 'import sys; print(open(sys.argv[1], encoding="utf-8").read().count("\ufffd"))' "$1"
}


# What the agent prints, as printf octal escapes: \xff, an overlong NUL,
# a surrogate, a character cut short, one above U+10FFFF, then é € 😀.
PRINTED='a\377b\300\200c\355\240\200d\342\202e\364\220\200\200f \303\251\342\202\254\360\237\230\200\n'
{
	printf "$PRINTED" | repaired
	echo
} >"$WORK/want-output"

id=$(cli --json spawn sh "printf '$PRINTED'" | jq -r .id) || bail "spawn failed"
wait_for 10 agent_terminal "$id" || bail "the printing agent did not end"
hub_rpc GetAgent "agent_id: \"$id\"" >"$WORK/agent.txt"
check "GetAgent of the agent that printed ill-formed UTF-8 succeeds" [ $? -eq 0 ]
strict_text "$WORK/agent.txt" output >"$WORK/got-output"
check "every string of it is well-formed UTF-8" [ $? -eq 0 ]
check "its output shows each ill-formed stretch as U+FFFD, the rest as printed" \
	cmp -s "$WORK/want-output" "$WORK/got-output"
check "that is eleven U+FFFD" [ "$(fffd_count "$WORK/got-output")" = 11 ]

# While it runs, the tail comes from the supervisor, not from Valkey.
printed_some() {
	[ -n "$(agent_field "$1" .output)" ]
}
live_tail_repaired() {
	hub_rpc GetAgent "agent_id: \"$1\"" >"$WORK/live.txt" &&
		[ "$(strict_text "$WORK/live.txt" output)" = "now $(printf '\357\277\275') " ]
}
live=$(cli --json spawn sh "printf 'now \\377 '; sleep 30" | jq -r .id) || bail "spawn failed"
wait_for 10 printed_some "$live" || bail "the running agent printed nothing"
check "GetAgent of a running agent shows its tail so far with U+FFFD" \
	live_tail_repaired "$live"
quiet cli kill "$live"
wait_for 10 agent_terminal "$live" || bail "the running agent was not killed"

# A task is a proto3 string too: the hub refuses one that is not UTF-8.
before=$(valkey vk1 zcard "$AGENTS_KEY")
err=$(printf 'fix \377 this' | cli spawn sh - 2>&1)
check "a task of ill-formed UTF-8 on stdin is refused, exit 1" [ $? -eq 1 ]
check "as INVALID_ARGUMENT naming the byte" \
	grep -q "INVALID_ARGUMENT: task is not valid UTF-8 (byte 0xff at offset 4)" <<<"$err"
err=$(cli spawn sh "$(printf 'cut short \342\202')" 2>&1)
check "a task argument cut inside a character is refused INVALID_ARGUMENT" \
	grep -q "INVALID_ARGUMENT: task is not valid UTF-8 (byte 0xe2 at offset 10)" <<<"$err"
check "and nothing was created" [ "$(valkey vk1 zcard "$AGENTS_KEY")" = "$before" ]

# execute_bytes N: an unsigned SignedCommand of N command bytes, straight
# to the spoke's Execute; prints grpcurl's answer.
execute_bytes() {
	python3 -c 'import base64, sys
print("{\"command\": \"%s\"}" % base64.b64encode(bytes(int(sys.argv[1]))).decode())' "$1" |
		grpcurl -plaintext -max-time 10 -d @ "$SPOKE_ADDR" tessera.v1.Spoke/Execute 2>&1
}
out=$(execute_bytes 262144)
check "a command just over the envelope's cap meets its own check" \
	grep -q "signed command above 262144 bytes" <<<"$out"
out=$(execute_bytes 1048576)
check "one beyond the margin is refused RESOURCE_EXHAUSTED" \
	grep -q "Code: ResourceExhausted" <<<"$out"
check "by gRPC, unread" grep -qi "larger than max" <<<"$out"

# An error naming a path that is not UTF-8: the spoke's shim, named by a
# path with \xff in it, is gone when an agent is spawned.
SHIM_DIR=$WORK/sh$(printf '\377')im
mkdir -p "$SHIM_DIR"
ln -s "$TESSERA_BUILD/spoke/tessera-shim" "$SHIM_DIR/tessera-shim"
stop_tracked "spoke spoke-1"
printf 'shim %s\n' "$SHIM_DIR/tessera-shim" >>"$WORK/spoke-1.conf"
restart_spoke spoke-1
rm "$SHIM_DIR/tessera-shim"
spoke_connected() {
	[ "$(cli --json spokes | jq -r '.spokes[0].state')" = connected ]
}
wait_for 15 spoke_connected || bail "the hub did not reconnect to spoke-1"
failed=$(cli --json spawn true | jq -r .id) || bail "spawn failed"
wait_for 10 agent_terminal "$failed" || bail "the failed spawn was not recorded"
want_path=$(printf '%s/tessera-shim' "$SHIM_DIR" | repaired)

hub_rpc GetAgent "agent_id: \"$failed\"" >"$WORK/failed.txt"
check "GetAgent of an agent whose error names a path that is not UTF-8 succeeds" [ $? -eq 0 ]
strict_text "$WORK/failed.txt" error >"$WORK/failed-error"
check "every string of it is well-formed UTF-8" [ $? -eq 0 ]
check "its error shows the path with U+FFFD" grep -qF "$want_path" "$WORK/failed-error"

hub_rpc ListAgents "" >"$WORK/list.txt"
check "ListAgents with that agent succeeds" [ $? -eq 0 ]
strict_text "$WORK/list.txt" error >"$WORK/list-errors"
check "every string of it is well-formed UTF-8" [ $? -eq 0 ]
check "the agent's error shows the path with U+FFFD" grep -qF "$want_path" "$WORK/list-errors"

# A watch runs until its deadline: what counts is what came before.
hub_rpc WatchEvents "agent_id: \"$failed\" from_start: true" -max-time 3 \
	>"$WORK/watch.txt" 2>/dev/null
strict_text "$WORK/watch.txt" error >"$WORK/watch-errors"
check "WatchEvents of that agent: every string is well-formed UTF-8" [ $? -eq 0 ]
check "its failure came, the error with U+FFFD" grep -qF "$want_path" "$WORK/watch-errors"

# And a client that refuses ill-formed strings on receipt, Python's grpcio
# with its protobuf: both agents' GetAgent, ListAgents and the watch of
# the failed spawn decode, with U+FFFD where the bytes were (what it
# printed is in python.txt, kept with the test's folder on a failure).
python_grpc_stubs
"$PY" - "$HUB_ADDR" "$PY_STUBS" "$id" "$failed" >"$WORK/python.txt" 2>&1 <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import grpc
from tessera.v1 import hub_pb2, hub_pb2_grpc

hub = hub_pb2_grpc.HubStub(grpc.insecure_channel(sys.argv[1]))
printed = hub.GetAgent(hub_pb2.GetAgentRequest(agent_id=sys.argv[3]), timeout=10)
failed = hub.GetAgent(hub_pb2.GetAgentRequest(agent_id=sys.argv[4]), timeout=10)
page = hub.ListAgents(hub_pb2.ListAgentsRequest(), timeout=10)
events = []
try:
    for r in hub.WatchEvents(hub_pb2.WatchEventsRequest(agent_id=sys.argv[4], from_start=True),
                             timeout=3):
        events.append(r)
except grpc.RpcError as e:
    if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
        raise
print("output", "\ufffd" in printed.output)
print("error", "\ufffd" in failed.error)
print("list", sum("\ufffd" in a.error for a in page.agents))
print("events", sum("\ufffd" in r.event.error for r in events))
EOF
check "Python's grpcio decodes them all (it refuses ill-formed UTF-8)" [ $? -eq 0 ]
check "GetAgent's output holds U+FFFD there" grep -qx "output True" "$WORK/python.txt"
check "and the failed spawn's error" grep -qx "error True" "$WORK/python.txt"
check "and ListAgents's" grep -q "^list [1-9]" "$WORK/python.txt"
check "and WatchEvents's" grep -q "^events [1-9]" "$WORK/python.txt"

finish
