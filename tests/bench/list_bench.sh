#!/usr/bin/env bash
# agent.list benchmark: prints figures, never judges them. One Valkey
# (no persistence: the figures are about listing, not fsync), filled with
# BENCH_LIST_AGENTS agents (100000) through the real store functions by
# tests/tools/list_bench.c, which then times full walks of filtered
# listings: a rare state (RUNNING, 1 in 1000), a type, label selectors,
# combinations, and no filter. Then the secondary indexes are deleted, as
# data of an older spoke lacks them, and their rebuild is timed. The exit
# status only says whether the set-up worked.
. "$(dirname "$0")/../integration/lib.sh"

NAGENTS=${BENCH_LIST_AGENTS:-100000}
BENCH=$TESSERA_BUILD/tests/tools/tessera-list-bench
[ -x "$BENCH" ] || bail "$BENCH is not built"

dir=$WORK/vk
mkdir -p "$dir"
valkey-server --port 0 --unixsocket "$dir/valkey.sock" --unixsocketperm 700 \
	--dir "$dir" --appendonly no --save "" --daemonize no --logfile "$WORK/vk.log" &
track $! "valkey vk"
wait_for 10 valkey-cli -s "$dir/valkey.sock" ping || bail "valkey did not start"

check "stores $NAGENTS agents and walks filtered listings" \
	"$BENCH" "unix:$dir/valkey.sock" "$NAGENTS"
echo "# $(valkey-cli -s "$dir/valkey.sock" info memory | grep '^used_memory_human' | tr -d '\r')"
keys=$(valkey-cli -s "$dir/valkey.sock" --scan --pattern 'tessera:{bench}:agents:*')
check "the secondary indexes are there" [ -n "$keys" ]
# shellcheck disable=SC2086 # one key per word
quiet valkey-cli -s "$dir/valkey.sock" del $keys
check "rebuilds the indexes of data without them" "$BENCH" "unix:$dir/valkey.sock" --reindex
finish
