#!/usr/bin/env bash
# `meson install` of this build into a temporary DESTDIR: every file lands
# where the README ("Building and installing") says and nothing else is
# installed, the installed programs run, and the installed tessera-spoke,
# configured without a "shim" line, finds tessera-shim beside itself and
# runs the installed sample agent to COMPLETED through the installed hub
# and CLI.
# Everything goes away when the test ends (the logs stay if a check
# failed, as in every integration test). TAP.
#
#   install_test.sh PREFIX BINDIR DATADIR	(meson's options; TESSERA_BUILD
#					names the build, as for every test)
set -u

prefix=$1 bindir=$2 datadir=$3
. "$(dirname "$0")/../integration/lib.sh"

# Meson keeps a bindir or datadir inside the prefix relative to it.
under_prefix() {
	case "$1" in
	/*) echo "$1" ;;
	*) echo "$prefix/$1" ;;
	esac
}

DEST=$WORK/dest
BIN=$DEST$(under_prefix "$bindir")
SHARE=$DEST$(under_prefix "$datadir")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
# lib.sh keeps $WORK's logs when a check fails; the installed tree goes anyway.
trap 'cleanup; rm -rf "$DEST"' EXIT

meson install -C "$TESSERA_BUILD" --no-rebuild --destdir "$DEST" >"$WORK/install.log" 2>&1 ||
	{ sed 's/^/# /' "$WORK/install.log"; bail "meson install failed"; }
ok "meson install --no-rebuild --destdir"

# What the README says is installed, and nothing else.
expected=(
	"$BIN/tessera-hub"
	"$BIN/tessera-spoke"
	"$BIN/tessera-shim"
	"$BIN/tessera"
	"$SHARE/tessera/agents/sample-agent.sh"
	"$SHARE/tessera/valkey.conf"
	"$SHARE/tessera/systemd/tessera-hub.service"
	"$SHARE/tessera/systemd/tessera-spoke@.service"
	"$SHARE/bash-completion/completions/tessera"
	"$SHARE/doc/tessera/README.md"
	"$SHARE/doc/tessera/DESIGN.md"
	"$SHARE/doc/tessera/PERFORMANCE.md"
)
for f in "${expected[@]}"; do
	check "installed: ${f#"$DEST"}" [ -f "$f" ]
done
for f in "$BIN"/tessera-hub "$BIN"/tessera-spoke "$BIN"/tessera-shim "$BIN"/tessera \
	"$SHARE/tessera/agents/sample-agent.sh"; do
	check "executable: ${f#"$DEST"}" [ -x "$f" ]
done
extra=$(comm -13 <(printf '%s\n' "${expected[@]}" | LC_ALL=C sort) \
	<(find "$DEST" -type f -o -type l | LC_ALL=C sort) | sed "s|^$DEST||")
check "nothing else is installed${extra:+ (also: ${extra//$'\n'/ })}" [ -z "$extra" ]
check "the sample agent is the one in deploy/agents/" \
	cmp -s "$SRC/deploy/agents/sample-agent.sh" "$SHARE/tessera/agents/sample-agent.sh"
check "the installed README is the source's" cmp -s "$SRC/README.md" "$SHARE/doc/tessera/README.md"
# The units start the daemons where they were installed (without DESTDIR).
unit_exec() {
	sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$SHARE/tessera/systemd/$1"
}
check "tessera-hub.service starts the installed tessera-hub" \
	[ "$DEST$(unit_exec tessera-hub.service)" = "$BIN/tessera-hub" ]
check "tessera-spoke@.service starts the installed tessera-spoke" \
	[ "$DEST$(unit_exec tessera-spoke@.service)" = "$BIN/tessera-spoke" ]

# The installed programs run from there.
check "tessera -h" quiet "$BIN/tessera" -h
check "tessera-hub --help" quiet "$BIN/tessera-hub" --help
check "tessera-spoke --help" quiet "$BIN/tessera-spoke" --help

# The installed daemons together: a spoke with no "shim" line and the
# sample agent at its installed path, a hub, the CLI.
TESSERA_CLI=$BIN/tessera
TESSERA_HUB=$BIN/tessera-hub
TESSERA_SPOKE=$BIN/tessera-spoke
start_valkey v1
keygen hub
keygen spoke-1
SPOKE_PORT_spoke_1=$(free_port)
cat >"$WORK/spoke-1.conf" <<EOF
id spoke-1
listen 127.0.0.1:$SPOKE_PORT_spoke_1
valkey unix:$WORK/v1/valkey.sock
key $WORK/spoke-1.key
state-dir $WORK/spoke-1.state
trust-hub $(pubkey hub)
agent sample stdin $SHARE/tessera/agents/sample-agent.sh
plaintext yes
EOF
"$TESSERA_SPOKE" --config "$WORK/spoke-1.conf" >"$WORK/spoke-1.log" 2>&1 &
track $! "installed spoke"
wait_for 15 grep -q "listening on" "$WORK/spoke-1.log" ||
	bail "the installed spoke did not start (a shim it cannot find stops it)"
ok "the installed spoke starts without a shim line"
start_hub hub hub spoke-1
wait_for 15 cli health || bail "the installed hub never reached SERVING"
id=$(cli --json spawn sample "install check" --spoke spoke-1 --wait --timeout 30 | jq -r .id)
check "the installed sample agent runs under the installed shim to COMPLETED" \
	[ "$(agent_state "$id")" = completed ]
check "its output came back" grep -q "got task: install check" <(cli logs "$id")
shim=$(agent_field "$id" .pid)
check "its shim is gone with it" [ ! -e "/proc/$shim" ]

finish
