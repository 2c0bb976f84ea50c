#!/usr/bin/env bash
# agent_probe.sh: an agent (agent_user_test.sh's "probe" type) that tries,
# from inside, what an agent run under its own agent-user must not be able
# to do to its spoke, to Valkey or to other agents, and prints what it is:
#
#   uid=N gid=N groups=N,...	(id -u, id -g, id -G)
#   supp=N ...			(supplementary groups, /proc/self/status)
#   home=PATH
#   nofile=S/H nproc=S/H core=S/H	(ulimit -S and -H)
#   spoke_pid=N			(its shim's parent)
#   probe NAME ok | probe NAME FAIL DETAIL	(one line a probe)
#   probe-done
#
# A probe is ok only when the attempt fails for want of permission (its
# error says "Permission denied" or, for a signal, "Operation not
# permitted"): an attempt that fails otherwise (a missing file, a wrong
# path) proves nothing and is a FAIL too. The probe "control" is the
# other way round: reading a file the test made world-readable must work,
# or the other probes could not have failed.
#
# Paths come from the type's agent-env lines:
#   TSR_PROBE_CONTROL		a world-readable file
#   TSR_PROBE_KEY		the spoke's private key
#   TSR_PROBE_STATE		the spoke's state-dir
#   TSR_PROBE_VALKEY_SOCK	the Valkey's unix socket
#   TSR_PROBE_VALKEY_PW		the Valkey's password file (optional)
#   TSR_PROBE_OTHER_PID_FILE	holds the pid of another agent's process
#   TSR_PROBE_OTHER_ID_FILE	holds that agent's id
# It exits 0 whatever its probes found: the test reads its lines.
set -u

say_ok() {
	echo "probe $1 ok"
}

say_fail() {
	echo "probe $1 FAIL $2"
}

# oneline TEXT: TEXT on one line, at most 120 bytes.
oneline() {
	printf '%s' "$1" | tr '\n' ' ' | head -c 120
}

# denied NAME PATTERN COMMAND...: ok when COMMAND fails with an error
# (its standard error) matching the glob PATTERN. What it read, when it
# could, is not shown: it may be a secret.
denied() {
	local name=$1 pattern=$2 out
	shift 2
	if out=$("$@" 2>&1 >/dev/null); then
		say_fail "$name" "it worked"
		return
	fi
	# shellcheck disable=SC2053 # PATTERN is a glob on purpose
	if [[ $out == $pattern ]]; then
		say_ok "$name"
	else
		say_fail "$name" "failed, but not for want of permission: $(oneline "$out")"
	fi
}

EACCES='*Permission denied*'
EPERM='*Operation not permitted*'

write_file() {
	echo "exit 42" >"$1"
}

# --- who and what it is --------------------------------------------------------
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G | tr ' ' ,)"
supp=
while read -r key value; do
	[ "$key" != Groups: ] || supp=$value
done </proc/self/status
echo "supp=$supp"
echo "home=${HOME-}"
echo "nofile=$(ulimit -Sn)/$(ulimit -Hn) nproc=$(ulimit -Su)/$(ulimit -Hu) core=$(ulimit -Sc)/$(ulimit -Hc)"
shim=$PPID
spoke=
while read -r key value; do
	[ "$key" != PPid: ] || spoke=$value
done <"/proc/$shim/status"
echo "spoke_pid=$spoke"
other_pid=$(cat "${TSR_PROBE_OTHER_PID_FILE:-/nonexistent}" 2>/dev/null)
other_id=$(cat "${TSR_PROBE_OTHER_ID_FILE:-/nonexistent}" 2>/dev/null)

# --- the control: a world-readable file can be read ----------------------------
if out=$(cat "${TSR_PROBE_CONTROL:-/nonexistent}" 2>&1 >/dev/null); then
	say_ok control
else
	say_fail control "cannot read the world-readable $TSR_PROBE_CONTROL: $(oneline "$out")"
fi

# --- the spoke's files ---------------------------------------------------------
denied key "$EACCES" cat "${TSR_PROBE_KEY:-/nonexistent}"
denied state-list "$EACCES" ls "${TSR_PROBE_STATE:-/nonexistent}"
if [ -n "$other_id" ]; then
	denied other-output "$EACCES" cat "$TSR_PROBE_STATE/$other_id.out"
else
	say_fail other-output "no other agent's id in ${TSR_PROBE_OTHER_ID_FILE:-}"
fi
denied exit-replace "$EACCES" write_file "$TSR_PROBE_STATE/${TESSERA_AGENT_ID:-none}.exit"
denied exit-tmp "$EACCES" mkdir "$TSR_PROBE_STATE/${TESSERA_AGENT_ID:-none}.exit.tmp"
denied state-create "$EACCES" write_file "$TSR_PROBE_STATE/probe-planted"
denied state-symlink "$EACCES" ln -s / "$TSR_PROBE_STATE/probe-link"

# --- Valkey --------------------------------------------------------------------
denied valkey-socket "$EACCES" valkey-cli -s "${TSR_PROBE_VALKEY_SOCK:-/nonexistent}" ping
if [ -n "${TSR_PROBE_VALKEY_PW:-}" ]; then
	denied valkey-password "$EACCES" cat "$TSR_PROBE_VALKEY_PW"
fi

# --- processes: the spoke, its own shim, another agent ---------------------------
if [ -n "$spoke" ]; then
	denied kill-spoke "$EPERM" kill -0 "$spoke"
	denied spoke-environ "$EACCES" cat "/proc/$spoke/environ"
	denied spoke-fds "$EACCES" ls "/proc/$spoke/fd"
else
	say_fail kill-spoke "no PPid in /proc/$shim/status"
fi
denied kill-shim "$EPERM" kill -0 "$shim"
denied shim-fds "$EACCES" ls "/proc/$shim/fd"
if [ -n "$other_pid" ]; then
	denied kill-other "$EPERM" kill -0 "$other_pid"
	denied other-fds "$EACCES" ls "/proc/$other_pid/fd"
else
	say_fail kill-other "no pid in ${TSR_PROBE_OTHER_PID_FILE:-}"
fi
echo probe-done
exit 0
