#!/usr/bin/env bash
# The systemd units meson generates from deploy/systemd/ (README: Running
# under systemd), checked offline (TAP): their ExecStart names the installed
# daemons; `systemd-analyze verify`, which needs no running systemd, accepts
# them without a word once ExecStart names this build's daemons, and refuses
# broken copies (so its pass means something); and the settings the
# README's promises rest on are there.
# usage: systemd_units_test.sh SOURCE_ROOT BINDIR HUB_UNIT SPOKE_UNIT HUB_EXE SPOKE_EXE
set -uo pipefail
src=$1 bindir=$2 hub_unit=$3 spoke_unit=$4
# Meson names the daemons relative to the build folder; ExecStart needs them whole.
hub_exe=$(readlink -f "$5") spoke_exe=$(readlink -f "$6")
. "$(dirname "$0")/tap.sh"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "1..0 # SKIP systemd-analyze is not installed (package systemd)"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tessera-units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# setting FILE KEY: the value of its last KEY= line, the one systemd applies.
setting() {
	sed -n "s/^$2=//p" "$1" | tail -n 1
}

is() {
	[ "$(setting "$1" "$2")" = "$3" ]
}

# verify FILE...: verify reports a bad value or an unknown key only as a
# warning, with exit status 0, so any line about our units fails too.
verify() {
	local rc=0
	systemd-analyze verify --man=no --generators=no "$@" >"$tmp/verify.log" 2>&1 || rc=$?
	sed 's/^/# /' "$tmp/verify.log"
	[ "$rc" -eq 0 ] && ! grep -q 'tessera-' "$tmp/verify.log"
}

refuses() {
	! verify "$@"
}

# Copies of the units as systemd would load them, the spoke's as an
# instance, with ExecStart naming this build's daemons instead of BINDIR's.
hub=$tmp/tessera-hub.service
spoke=$tmp/tessera-spoke@spoke-1.service
sed "s|^ExecStart=$bindir/tessera-hub |ExecStart=$hub_exe |" "$hub_unit" >"$hub"
sed "s|^ExecStart=$bindir/tessera-spoke |ExecStart=$spoke_exe |" "$spoke_unit" >"$spoke"

check "the hub's ExecStart is $bindir/tessera-hub" \
	grep -q "^ExecStart=$bindir/tessera-hub " "$hub_unit"
check "the spoke's ExecStart is $bindir/tessera-spoke" \
	grep -q "^ExecStart=$bindir/tessera-spoke " "$spoke_unit"
check "systemd-analyze verify accepts both units" verify "$hub" "$spoke"

sed '/^\[Service\]$/a KilMode=process' "$hub" >"$tmp/tessera-broken-key.service"
check "and refuses a copy with an unknown key" refuses "$tmp/tessera-broken-key.service"
sed "s|^ExecStart=$hub_exe |ExecStart=$tmp/missing |" "$hub" >"$tmp/tessera-broken-exec.service"
check "and one whose program is missing" refuses "$tmp/tessera-broken-exec.service"

for u in "$hub" "$spoke"; do
	name=$(basename "$u")
	check "$name: ExecReload sends SIGHUP" is "$u" ExecReload '/bin/kill -HUP $MAINPID'
	check "$name: Restart=on-failure" is "$u" Restart on-failure
	check "$name: runs as user tessera" is "$u" User tessera
done

# A spoke stop or restart leaves its agents running, to be adopted: systemd
# must signal the spoke alone, and let it make cgroups below its own.
check "spoke: KillMode=process" is "$spoke" KillMode process
check "spoke: Delegate=yes" is "$spoke" Delegate yes
default=$(sed -n 's/^#define SPOKE_STATE_DIR_DEFAULT "\(.*\)"$/\1/p' "$src/spoke/spoke_config.h")
check "spoke: its StateDirectory is the default state-dir, $default/ID" \
	[ "/var/lib/$(setting "$spoke" StateDirectory)" = "$default/%i" ]

# The hard LimitNOFILE holds max-agents at its highest (spoke/main.c).
define() {
	sed -n "s/^#define $1 \([0-9]*\).*/\1/p" "$src/$2"
}
agents=$(define SUPERVISOR_AGENTS_MAX spoke/supervisor.h)
need=$((agents * $(define SUPERVISOR_FDS_PER_AGENT spoke/supervisor.h) +
	$(define SPOKE_FDS_OWN spoke/main.c)))
nofile=$(setting "$spoke" LimitNOFILE)
check "spoke: LimitNOFILE $nofile allows the $need descriptors of $agents agents" \
	[ "${nofile#*:}" -ge "$need" ]

tap_end
