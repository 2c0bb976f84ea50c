#!/usr/bin/env bash
# Agents under a user of their own (agent-user, agent-rlimit):
# - an agent of a type with "agent-user probe 65534:65534" runs as that
#   uid and gid, with no supplementary group, HOME from passwd, and the
#   type's agent-rlimit limits; from inside (agent_probe.sh) it cannot read
#   the spoke's key, list the state dir, read another agent's output, make
#   or replace its own exit record or anything else in the state dir,
#   connect to Valkey's socket, read Valkey's password, nor signal (kill -0)
#   the spoke, its own shim or an agent of another type running as another
#   uid (a numeric one without a passwd entry, HOME "/"), which it leaves
#   running;
# - the spoke warns once per type without an agent-user line, and for no
#   other type;
# - a spoke without CAP_SETUID, CAP_SETGID and CAP_KILL refuses a config
#   with an agent-user line, naming it, and starts without that line.
#
# The spoke makes its state dir 0700 and its key is 0600. The test's work
# folder is made 0711 (mktemp made it 0700): an agent under another user
# could not reach anything in it otherwise, and every probe would pass for
# that reason alone. With 0711 only the protections under test stop it,
# which the probe "control" proves by reading a world-readable file there.
#
# Needs root (to start a spoke that may change uids); skipped otherwise.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
	# A TAP skip: meson's tap protocol counts an exit status of 77 as an error.
	echo "1..0 # SKIP needs root: agents run under users of their own"
	exit 0
fi
command -v setpriv >/dev/null || bail "setpriv (util-linux) is needed"

chmod 0711 "$WORK" || bail "cannot make $WORK traversable"
PROBE=$WORK/probe
mkdir -p "$PROBE" && chmod 0755 "$PROBE" || bail "cannot make $PROBE"
# A copy others can execute, wherever the source tree is kept.
install -m 0755 "$(dirname "$0")/agent_probe.sh" "$PROBE/agent_probe.sh" ||
	bail "cannot copy agent_probe.sh"
echo "readable by all" >"$PROBE/control" && chmod 0644 "$PROBE/control"
: >"$PROBE/other.pid" && : >"$PROBE/other.id" && chmod 0644 "$PROBE/other.pid" "$PROBE/other.id"
setpriv --reuid=65534 --regid=65534 --clear-groups cat "$PROBE/control" >/dev/null 2>&1 ||
	bail "user 65534 cannot reach $PROBE: a folder above $WORK is closed to others (set TMPDIR)"

VALKEY_AUTH=password
start_valkey vk1
keygen hub
STATE=$WORK/s1.state
SPOKE_CONF_EXTRA="agent probe stdin $PROBE/agent_probe.sh
agent-user probe 65534:65534
agent-rlimit probe nofile 64 128
agent-rlimit probe nproc 200 200
agent-rlimit probe core 0 0
agent-dir probe $PROBE
agent-env probe TSR_PROBE_CONTROL=$PROBE/control
agent-env probe TSR_PROBE_KEY=$WORK/s1.key
agent-env probe TSR_PROBE_STATE=$STATE
agent-env probe TSR_PROBE_VALKEY_SOCK=$WORK/vk1/valkey.sock
agent-env probe TSR_PROBE_VALKEY_PW=$WORK/vk1/password
agent-env probe TSR_PROBE_OTHER_PID_FILE=$PROBE/other.pid
agent-env probe TSR_PROBE_OTHER_ID_FILE=$PROBE/other.id
agent other stdin /bin/sleep 600
agent-user other 64123:64123"
start_spoke s1 vk1 hub
SPOKE_CONF_EXTRA=
start_hub hub hub s1

spawn() {
	cli --json spawn "$@" --spoke s1 | jq -r .id
}

state_is() {
	[ "$(agent_state "$1")" = "$2" ]
}

mode_of() {
	stat -c %a "$1"
}

# agent_proc ID COMM: the pid of the process whose environment holds
# TESSERA_AGENT_ID=ID and whose command name is COMM (the agent, not its
# shim).
agent_proc() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = "$2" ] || continue
		if grep -qxzF "TESSERA_AGENT_ID=$1" "$p/environ" 2>/dev/null; then
			echo "${p#/proc/}"
			return 0
		fi
	done
	return 1
}

# status_field PID FIELD: the values of a line of /proc/PID/status, e.g. Uid.
status_field() {
	sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '[:space:]' ' ' | sed 's/ $//'
}

# --- what the spoke and Valkey keep from others, as the test relies on ----------
check "the spoke's key is mode 0600" [ "$(mode_of "$WORK/s1.key")" = 600 ]
check "the spoke made its state dir 0700" [ "$(mode_of "$STATE")" = 700 ]
check "the Valkey password file is mode 0600" [ "$(mode_of "$WORK/vk1/password")" = 600 ]

# --- another agent, of another type and uid ---------------------------------------
other=$(spawn other)
[ -n "$other" ] && [ "$other" != null ] || bail "spawn other failed"
check "the other agent is RUNNING" state_is "$other" running
wait_for 10 agent_proc "$other" sleep || bail "no sleep process of agent $other"
other_pid=$(agent_proc "$other" sleep)
echo "$other_pid" >"$PROBE/other.pid"
echo "$other" >"$PROBE/other.id"
check "the other agent runs as uid 64123 (no passwd entry)" \
	[ "$(status_field "$other_pid" Uid)" = "64123 64123 64123 64123" ]
check "and gid 64123" [ "$(status_field "$other_pid" Gid)" = "64123 64123 64123 64123" ]
check "with no supplementary group" [ -z "$(status_field "$other_pid" Groups)" ]
check "its HOME is / (no home in passwd)" grep -qxzF HOME=/ "/proc/$other_pid/environ"

# --- the probe ---------------------------------------------------------------------
probe=$(spawn probe)
[ -n "$probe" ] && [ "$probe" != null ] || bail "spawn probe failed"
check "the probe agent ends" wait_for 30 agent_terminal "$probe"
out=$(agent_field "$probe" .output)
sed 's/^/# probe: /' <<<"$out"
check "the probe is COMPLETED" state_is "$probe" completed
check "with exit code 0" [ "$(agent_field "$probe" .exitCode)" = 0 ]
check "it ran to its end" grep -qx probe-done <<<"$out"
check "it runs as uid and gid 65534, in group 65534 alone" \
	grep -qx "uid=65534 gid=65534 groups=65534" <<<"$out"
check "its supplementary groups are none" grep -qx "supp=" <<<"$out"
check "its HOME is nobody's, from passwd" grep -qx "home=/nonexistent" <<<"$out"
check "its limits are the type's agent-rlimit ones" \
	grep -qx "nofile=64/128 nproc=200/200 core=0/0" <<<"$out"
check "its shim's parent, which it probed, is the spoke" \
	grep -qx "spoke_pid=$SPOKE_PID_s1" <<<"$out"
for p in control key state-list other-output exit-replace exit-tmp state-create \
	state-symlink valkey-socket valkey-password kill-spoke spoke-environ spoke-fds \
	kill-shim shim-fds kill-other other-fds; do
	check "probe $p" grep -qx "probe $p ok" <<<"$out"
done
no_fail() {
	! grep -q "^probe .* FAIL" <<<"$out"
}
# planted: what a probe would have made in the state dir, had it been let.
planted() {
	local f
	for f in "$STATE"/probe-* "$STATE"/*.exit.tmp; do
		[ ! -e "$f" ] && [ ! -L "$f" ] || echo "$f"
	done
}
check "no probe FAILed" no_fail
check "nothing of the probe's is in the state dir" eval '[ -z "$(planted)" ]'

check "the other agent is still RUNNING" state_is "$other" running
check "its process is alive" kill -0 "$other_pid"

# --- the warnings for types that run as the spoke's user --------------------------
warned() {
	grep -c "agent type $1 runs as the spoke's own user" "$WORK/s1.log"
}
for t in true false sleep cat sh shenv; do
	check "the spoke warns once that type $t runs as its own user" [ "$(warned "$t")" = 1 ]
done
check "and not for probe" [ "$(warned probe)" = 0 ]
check "nor for other" [ "$(warned other)" = 0 ]

# --- the other agent, killed ----------------------------------------------------------
quiet cli kill "$other"
check "the other agent is KILLED" wait_for 15 state_is "$other" killed
check "its process is gone" wait_for 5 eval "! kill -0 $other_pid 2>/dev/null"

# --- a spoke that may not change uids ---------------------------------------------------
# As root, setpriv leaves it without those capabilities: dropped from the
# bounding set, root's exec gets none of them.
keygen s2
s2_conf() {
	echo "id s2"
	echo "listen 127.0.0.1:$(free_port)"
	echo "valkey unix:$WORK/vk1/valkey.sock"
	echo "valkey-password-file $WORK/vk1/password"
	echo "key $WORK/s2.key"
	echo "state-dir $WORK/s2.state"
	echo "trust-hub $(pubkey hub)"
	echo "plaintext yes"
	echo "agent true stdin /bin/true"
	echo "agent nobody stdin /bin/true"
}
# unprivileged CONFIG: execs the spoke so (run with &) $! is the spoke's pid.
unprivileged() {
	exec setpriv --bounding-set=-setuid,-setgid,-kill --inh-caps=-setuid,-setgid,-kill \
		"$TESSERA_SPOKE" --config "$1"
}
{
	s2_conf
	echo "agent-user nobody nobody"
} >"$WORK/s2-user.conf"
unprivileged "$WORK/s2-user.conf" >"$WORK/s2-user.log" 2>&1 &
s2=$!
track "$s2" -
if wait_for 10 eval "! kill -0 $s2 2>/dev/null"; then
	rc=0
	wait "$s2" || rc=$?
	for i in "${!PIDS[@]}"; do
		[ "${PIDS[$i]}" != "$s2" ] || PIDS[$i]=
	done
	check "without CAP_SETUID, CAP_SETGID and CAP_KILL a spoke with agent-user exits non-zero" \
		[ "$rc" -ne 0 ]
	check "naming agent-user" grep -q agent-user "$WORK/s2-user.log"
else
	not_ok "without CAP_SETUID, CAP_SETGID and CAP_KILL a spoke with agent-user refuses to start"
	kill_hard "$s2"
fi
check "it did not start listening" eval "! grep -q 'listening on' '$WORK/s2-user.log'"
s2_conf >"$WORK/s2.conf"
unprivileged "$WORK/s2.conf" >"$WORK/s2.log" 2>&1 &
track $! "spoke s2 (no agent-user, unprivileged)"
check "the same spoke without the agent-user line starts" \
	wait_for 15 grep -q "listening on" "$WORK/s2.log"
stop_tracked "spoke s2 (no agent-user, unprivileged)"

# --- a spoke that is no root, given the three as ambient capabilities ------------------
# As a systemd unit with User= and AmbientCapabilities= would run it. What
# it holds to switch users and signal agents must not reach an agent: not
# one of another user (whose shim could otherwise take root back), not one
# of the spoke's own user (which could make itself root).
S3_UID=65533
keygen s3
chown "$S3_UID" "$WORK/s3.key"
mkdir -m 0700 "$WORK/s3.state" && chown "$S3_UID" "$WORK/s3.state"
chmod 0777 "$WORK/vk1/valkey.sock"
cp "$WORK/vk1/password" "$WORK/s3.password" && chown "$S3_UID" "$WORK/s3.password"
s3_port=$(free_port)
{
	echo "id s3"
	echo "listen 127.0.0.1:$s3_port"
	echo "valkey unix:$WORK/vk1/valkey.sock"
	echo "valkey-password-file $WORK/s3.password"
	echo "key $WORK/s3.key"
	echo "state-dir $WORK/s3.state"
	echo "trust-hub $(pubkey hub)"
	echo "plaintext yes"
	echo "agent caps stdin /bin/grep ^Cap /proc/self/status"
	echo "agent capsnobody stdin /bin/grep ^Cap /proc/self/status"
	echo "agent-user capsnobody nobody:nogroup"
} >"$WORK/s3.conf"
setpriv --reuid="$S3_UID" --regid="$S3_UID" --clear-groups \
	--inh-caps=+setuid,+setgid,+kill --ambient-caps=+setuid,+setgid,+kill \
	"$TESSERA_SPOKE" --config "$WORK/s3.conf" >"$WORK/s3.log" 2>&1 &
track $! "spoke s3 (uid $S3_UID, ambient capabilities)"
wait_for 15 grep -q "listening on" "$WORK/s3.log" || bail "spoke s3 did not start"
SPOKE_PORT_s3=$s3_port
start_hub h3 hub s3
for t in caps capsnobody; do
	id=$(cli spawn "$t" --wait --json | jq -r .id)
	check "$t: COMPLETED (the spoke is uid $S3_UID, with ambient CAP_SETUID)" \
		[ "$(agent_field "$id" .state)" = AGENT_STATE_COMPLETED ]
	out=$(agent_field "$id" .output)
	for set in CapInh CapPrm CapEff CapAmb; do
		check "$t: the agent's $set is empty" grep -q "^$set:[[:space:]]*0*$" <<<"$out"
	done
done

finish
