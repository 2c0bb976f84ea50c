# Shared by the integration tests: starts real Valkey servers, spokes and
# hubs on free loopback ports inside a private work folder, and stops every
# process it started, by PID, when the test exits (pass, fail or signal).
# Results are TAP, which meson counts.

set -u

: "${TESSERA_BUILD:?set TESSERA_BUILD to the meson build folder}"
TESSERA_CLI=$TESSERA_BUILD/hub/tessera
TESSERA_HUB=$TESSERA_BUILD/hub/tessera-hub
TESSERA_SPOKE=$TESSERA_BUILD/spoke/tessera-spoke

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-it.XXXXXX")
PIDS=()		# every process started, in start order
NAMES=()	# what each is, for the clean-exit checks
NETNS_MADE=()	# network namespaces made by make_netns, deleted on exit
TAP_N=0
TAP_FAILED=0

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; returns the exit status.
stop_pid() {
	local pid=$1 i rc=0
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return $?; }
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# track PID NAME: remember a started process; NAME "-" skips its exit check.
track() {
	PIDS+=("$1")
	NAMES+=("$2")
}

# wait_tracked PID: waits for a tracked process, with its exit status, and
# stops tracking it.
wait_tracked() {
	local i rc=0
	wait "$1" || rc=$?
	for i in "${!PIDS[@]}"; do
		[ "${PIDS[$i]}" != "$1" ] || PIDS[$i]=
	done
	return "$rc"
}

stop_all() {
	local i rc
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		[ -n "${PIDS[$i]}" ] || continue
		rc=0
		stop_pid "${PIDS[$i]}" || rc=$?
		if [ "${1:-}" = check ] && [ "${NAMES[$i]}" != - ]; then
			# 0: stopped cleanly (sanitizer builds exit non-zero on a leak).
			check "${NAMES[$i]} exits cleanly on SIGTERM" [ "$rc" -eq 0 ]
		fi
		PIDS[$i]=
	done
}

# stop_agents: agents outlive their spoke (each under its tessera-shim, which
# leads its process group); end those of this test's spokes, found by the
# exit file their shim was given under $WORK, group by group, and remove
# the agent-ID cgroups they were in, which no spoke is left to remove.
stop_agents() {
	local pid cg dirs=()
	for pid in $(pgrep -f -- "tessera-shim $WORK/" 2>/dev/null); do
		cg=$(cgroup_of "$pid" 2>/dev/null)
		case "${cg##*/}" in
		agent-*) dirs+=("$(cgroup2_mount)$cg") ;;
		esac
		kill -KILL -- "-$pid" 2>/dev/null
	done
	for cg in "${dirs[@]}"; do
		cgroup_remove "$cg"
	done
}

cleanup() {
	local ns
	stop_all
	stop_agents
	for ns in "${NETNS_MADE[@]}"; do
		ip netns delete "$ns" 2>/dev/null
	done
	if [ "$TAP_FAILED" -ne 0 ] || [ -n "${TESSERA_KEEP:-}" ]; then
		echo "# logs kept in $WORK"
		for f in "$WORK"/*.log; do
			[ -f "$f" ] || continue
			echo "# --- $f (last 30 lines)"
			tail -n 30 "$f" | sed 's/^/# /'
		done
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $*"
}

not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $*"
}

# check DESCRIPTION COMMAND...: one TAP line from a command's exit status.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# quiet COMMAND...: runs it with its standard output thrown away.
quiet() {
	"$@" >/dev/null
}

finish() {
	stop_all check
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

bail() {
	echo "Bail out! $*"
	exit 1
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS COMMAND...: polls every 0.1 s until the command succeeds.
wait_for() {
	local tries=$(($1 * 10))
	shift
	while [ "$tries" -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

# Valkey passwords are opt-in, through a variable read when a Valkey first
# starts:
#   VALKEY_AUTH		"" (no password), password (requirepass: its spokes
#			send the password alone), or acl (the default user off:
#			its spokes log in as user tessera, limited to tessera:*
#			keys and channels and to commands not @dangerous)
# A Valkey with a password keeps it in $WORK/NAME/password (mode 0600),
# which its spokes' valkey-password-file lines name, and its ACL lines in
# $WORK/NAME/auth.conf; started again, it keeps both. The valkey helper
# logs in as the default user, or as user admin (acl), with that password.

# valkey_auth_setup NAME: its password and auth.conf, unless it has them.
valkey_auth_setup() {
	local dir=$WORK/$1 pw
	[ ! -f "$dir/auth.conf" ] || return 0
	case "${VALKEY_AUTH:-}" in
	"") return 0 ;;
	password | acl) ;;
	*) bail "unknown VALKEY_AUTH $VALKEY_AUTH" ;;
	esac
	pw=$(python3 -c 'import secrets; print(secrets.token_hex(16))') || bail "no password"
	(
		umask 077
		echo "$pw" >"$dir/password"
		if [ "$VALKEY_AUTH" = password ]; then
			echo "requirepass $pw"
		else
			# Off, but with its rights: Valkey 8.0 replays the append-only
			# file's MULTI/EXEC under the default user and drops what it may
			# not run (valkey_auth_test restarts one to prove it).
			echo "user default off ~* &* +@all"
			echo "user admin on >$pw ~* &* +@all"
			echo "user tessera on >$pw ~tessera:* &tessera:* +@all -@dangerous"
		fi >"$dir/auth.conf"
	) || bail "cannot write the password of valkey $1"
}

# start_valkey NAME: a Valkey with append-only persistence on a unix socket;
# started again after stop_valkey, it finds its data in the same folder.
start_valkey() {
	local name=$1 dir=$WORK/$1 conf=()
	mkdir -p "$dir"
	valkey_auth_setup "$name"
	[ ! -f "$dir/auth.conf" ] || conf=("$dir/auth.conf")
	valkey-server "${conf[@]}" --port 0 --unixsocket "$dir/valkey.sock" --unixsocketperm 700 \
		--dir "$dir" --appendonly yes --appendfsync always --save "" \
		--daemonize no --logfile "$WORK/$name.log" &
	track $! "valkey $name"
	wait_for 10 valkey "$name" ping || bail "valkey $name did not start"
}

# stop_tracked NAME: stops a process start_* tracked under NAME, by its PID,
# and checks that it exits cleanly.
stop_tracked() {
	local i rc
	for i in "${!NAMES[@]}"; do
		if [ "${NAMES[$i]}" = "$1" ] && [ -n "${PIDS[$i]}" ]; then
			rc=0
			stop_pid "${PIDS[$i]}" || rc=$?
			PIDS[$i]=
			check "$1 exits cleanly on SIGTERM" [ "$rc" -eq 0 ]
		fi
	done
}

# stop_valkey NAME: stops it by PID (SIGTERM: it fsyncs its append-only file).
stop_valkey() {
	local i
	for i in "${!NAMES[@]}"; do
		if [ "${NAMES[$i]}" = "valkey $1" ] && [ -n "${PIDS[$i]}" ]; then
			stop_pid "${PIDS[$i]}" || true
			PIDS[$i]=
		fi
	done
}

# kill_hard PID: SIGKILL, as a crash; the process is no longer tracked.
kill_hard() {
	local i
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	for i in "${!PIDS[@]}"; do
		[ "${PIDS[$i]}" != "$1" ] || PIDS[$i]=
	done
}

# started COUNT LOG: the daemon writing LOG has said "listening on" COUNT times.
started() {
	[ "$(grep -c "listening on" "$2")" -ge "$1" ]
}

# restart_daemon PROGRAM NAME WHAT: runs PROGRAM again with $WORK/NAME.conf,
# on the same port, appending to its log; sets RESTARTED_PID.
restart_daemon() {
	local n
	n=$(($(grep -c "listening on" "$WORK/$2.log") + 1))
	"$1" --config "$WORK/$2.conf" >>"$WORK/$2.log" 2>&1 &
	RESTARTED_PID=$!
	track "$RESTARTED_PID" "$3 $2"
	wait_for 15 started "$n" "$WORK/$2.log" || bail "$3 $2 did not start again"
}

# restart_spoke ID: a spoke started by start_spoke, again, with its config;
# sets SPOKE_PID_<ID>.
restart_spoke() {
	restart_daemon "$TESSERA_SPOKE" "$1" spoke
	eval "SPOKE_PID_${1//-/_}=$RESTARTED_PID"
}

# restart_hub NAME: a hub started by start_hub, again; sets HUB_PID.
restart_hub() {
	restart_daemon "$TESSERA_HUB" "$1" hub
	HUB_PID=$RESTARTED_PID
}

valkey() {
	local name=$1 user=default
	shift
	if [ ! -f "$WORK/$name/password" ]; then
		valkey-cli -s "$WORK/$name/valkey.sock" "$@"
		return
	fi
	! grep -q "^user admin " "$WORK/$name/auth.conf" || user=admin
	REDISCLI_AUTH=$(cat "$WORK/$name/password") \
		valkey-cli --user "$user" -s "$WORK/$name/valkey.sock" "$@"
}

keygen() {
	"$TESSERA_CLI" keygen "$WORK/$1.key" >/dev/null || bail "keygen $1 failed"
}

pubkey() {
	cat "$WORK/$1.key.pub"
}

# TLS and tokens are opt-in, through variables read when a daemon starts:
#   SPOKE_TLS, HUB_TLS	"" (plaintext yes), tls, or mtls (client certificates
#			required): how that spoke or the hub serves
#   HUB_SPOKE_TLS		"" (spoke-plaintext yes), tls, or mtls (the hub shows
#			its client certificate): how the hub reaches spokes
#   HUB_TOKENS		"" (auth none), or token names: each gets a token
#			(token NAME prints it) and a "token" line
# TLS needs make_certs first. Every certificate names localhost and
# 127.0.0.1, so no server name override is needed.
TLS_DIR=$WORK/tls

# make_cert NAME SUBJECT_ALT_NAME EXTENDED_KEY_USAGE [CA]: an EC key and a
# certificate signed by CA (default ca), as $TLS_DIR/NAME.{key,pem}.
make_cert() {
	local name=$1 san=$2 eku=$3 ca=${4:-ca}
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=$name" -keyout "$TLS_DIR/$name.key" -out "$TLS_DIR/$name.csr" \
		2>/dev/null || return 1
	printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$san" "$eku" >"$TLS_DIR/$name.ext"
	openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/$ca.pem" \
		-CAkey "$TLS_DIR/$ca.key" -CAcreateserial -days 2 -extfile "$TLS_DIR/$name.ext" \
		-out "$TLS_DIR/$name.pem" 2>/dev/null
}

# make_ca NAME: a self-signed CA, as $TLS_DIR/NAME.{key,pem}.
make_ca() {
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-days 2 -subj "/CN=tessera test $1" -keyout "$TLS_DIR/$1.key" \
		-out "$TLS_DIR/$1.pem" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

# make_certs: the test CA; server.* (every daemon's), client.* (the hub's and
# the CLI's client certificate); and rogue-client.*, signed by another CA.
make_certs() {
	mkdir -p "$TLS_DIR"
	make_ca ca && make_ca rogue-ca &&
		make_cert server "DNS:localhost,IP:127.0.0.1" serverAuth &&
		make_cert client "DNS:tessera-client" clientAuth &&
		make_cert rogue-client "DNS:tessera-client" clientAuth rogue-ca ||
		bail "openssl could not make the test certificates"
}

# tls_lines MODE: a daemon's serving lines for "", tls or mtls.
tls_lines() {
	case "$1" in
	"") echo "plaintext yes" ;;
	tls | mtls)
		echo "tls-cert $TLS_DIR/server.pem"
		echo "tls-key $TLS_DIR/server.key"
		[ "$1" = tls ] || echo "tls-client-ca $TLS_DIR/ca.pem"
		;;
	*) bail "unknown TLS mode $1" ;;
	esac
}

# token NAME: the token of that name, made on first use (mode 0600).
token() {
	local f=$WORK/token-$1
	if [ ! -f "$f" ]; then
		(umask 077 && "$TESSERA_CLI" token-new "$1" >"$f.new") || bail "token-new $1 failed"
		mv "$f.new" "$f"
	fi
	sed -n 1p "$f"
}

# token_line NAME: its "token NAME HASH" config line.
token_line() {
	token "$1" >/dev/null
	sed -n 2p "$WORK/token-$1"
}

# make_netns NAME: a network namespace of the test's own, with loopback
# up; deleted when the test exits.
make_netns() {
	ip netns add "$1" || bail "cannot make network namespace $1"
	NETNS_MADE+=("$1")
	ip -n "$1" link set lo up || bail "no loopback in $1"
}

# A daemon runs in network namespace NETNS when set; a spoke listens on
# SPOKE_HOST (default 127.0.0.1), which is where its hub will reach it.
# SPOKE_CONF_EXTRA, when set, is lines appended to a spoke's config, after
# every line above (so they may name its agent types).

# start_spoke ID VALKEY_NAME HUB_KEY_NAME...: writes its config and starts it
# (max-agents SPOKE_MAX_AGENTS, default 16; the Valkey's password, if it has
# one, and user tessera if it has that one).
# Sets SPOKE_PORT_<ID with - as _> and SPOKE_PID_<ID with - as _>.
start_spoke() {
	local id=$1 vk=$2 port conf=$WORK/$1.conf hub host=${SPOKE_HOST:-127.0.0.1}
	shift 2
	port=$(free_port)
	keygen "$id"
	{
		echo "id $id"
		echo "listen $host:$port"
		echo "valkey unix:$WORK/$vk/valkey.sock"
		if [ -f "$WORK/$vk/password" ]; then
			! grep -q "^user tessera " "$WORK/$vk/auth.conf" || echo "valkey-user tessera"
			echo "valkey-password-file $WORK/$vk/password"
		fi
		echo "key $WORK/$id.key"
		echo "state-dir $WORK/$id.state"
		for hub in "$@"; do echo "trust-hub $(pubkey "$hub")"; done
		echo "max-agents ${SPOKE_MAX_AGENTS:-16}"
		echo "kill-grace-ms 2000"
		echo "agent true stdin /bin/true"
		echo "agent false stdin /bin/false"
		echo "agent sleep stdin /bin/sleep 60"
		echo "agent-timeout sleep 0 3600000"
		echo "agent cat stdin /bin/cat"
		echo "agent sh stdin /bin/sh"
		echo "agent shenv stdin /bin/sh"
		echo "agent-env shenv TSR_GREETING=hello"
		echo "agent-dir shenv $WORK"
		tls_lines "${SPOKE_TLS:-}"
		[ -z "${SPOKE_CONF_EXTRA:-}" ] || printf '%s\n' "$SPOKE_CONF_EXTRA"
	} >"$conf"
	${NETNS:+ip netns exec "$NETNS"} "$TESSERA_SPOKE" --config "$conf" >"$WORK/$id.log" 2>&1 &
	track $! "spoke $id"
	eval "SPOKE_PORT_${id//-/_}=$port SPOKE_PID_${id//-/_}=$! SPOKE_HOST_${id//-/_}=$host"
	wait_for 15 grep -q "listening on" "$WORK/$id.log" || bail "spoke $id did not start"
}

# start_hub NAME KEY_NAME SPOKE_ID...: sets HUB_ADDR and HUB_PID. A spoke's
# labels come from SPOKE_LABELS_<ID with - as _>, e.g. "zone=eu gpu=no".
# HUB_CONF_EXTRA, when set, is lines appended to the hub's config.
start_hub() {
	local name=$1 key=$2 port conf=$WORK/$1.conf s p h l t
	shift 2
	port=$(free_port)
	{
		echo "listen 127.0.0.1:$port"
		echo "key $WORK/$key.key"
		for s in "$@"; do
			p=SPOKE_PORT_${s//-/_}
			l=SPOKE_LABELS_${s//-/_}
			h=SPOKE_HOST_${s//-/_}
			echo "spoke $s ${!h:-127.0.0.1}:${!p} $(pubkey "$s") ${!l:-}"
		done
		tls_lines "${HUB_TLS:-}"
		case "${HUB_SPOKE_TLS:-}" in
		"") echo "spoke-plaintext yes" ;;
		tls | mtls)
			echo "spoke-tls-ca $TLS_DIR/ca.pem"
			if [ "$HUB_SPOKE_TLS" = mtls ]; then
				echo "spoke-tls-cert $TLS_DIR/client.pem"
				echo "spoke-tls-key $TLS_DIR/client.key"
			fi
			;;
		*) bail "unknown HUB_SPOKE_TLS $HUB_SPOKE_TLS" ;;
		esac
		[ -n "${HUB_TOKENS:-}" ] || echo "auth none"
		for t in ${HUB_TOKENS:-}; do token_line "$t"; done
		[ -z "${HUB_CONF_EXTRA:-}" ] || printf '%s\n' "$HUB_CONF_EXTRA"
	} >"$conf"
	${NETNS:+ip netns exec "$NETNS"} "$TESSERA_HUB" --config "$conf" >"$WORK/$name.log" 2>&1 &
	HUB_PID=$!
	track "$HUB_PID" "hub $name"
	HUB_ADDR=127.0.0.1:$port
	wait_for 15 grep -q "listening on" "$WORK/$name.log" || bail "hub $name did not start"
}

cli() {
	"$TESSERA_CLI" --hub "$HUB_ADDR" "$@"
}

# agent_field ID JQ_FILTER: one field of `tessera get --json`.
agent_field() {
	cli --json get "$1" | jq -r "$2"
}

agent_terminal() {
	case "$(agent_state "$1")" in
	completed | failed | killed) return 0 ;;
	esac
	return 1
}

# The agent's state as a lowercase name (completed, killed, ...).
agent_state() {
	agent_field "$1" .state | sed 's/^AGENT_STATE_//' | tr 'A-Z' 'a-z'
}

# agent_processes VALKEY_NAME SPOKE_ID: the agents in that spoke's Valkey
# that still have a process (an agent and its shim carry TESSERA_AGENT_ID
# in their environment). Other tests' agents on the machine do not count.
agent_processes() {
	comm -12 <(valkey "$1" zrange "tessera:{$2}:agents" 0 -1 | LC_ALL=C sort) \
		<(grep -ahoz 'TESSERA_AGENT_ID=[^[:cntrl:]]*' /proc/[0-9]*/environ 2>/dev/null |
			tr '\0' '\n' | sed 's/^TESSERA_AGENT_ID=//' | LC_ALL=C sort -u)
}

# spoke_pid ID: the pid of spoke ID (as start_spoke and restart_spoke set it).
spoke_pid() {
	local v=SPOKE_PID_${1//-/_}
	echo "${!v}"
}

# cgroup_of PID: its cgroup v2 path ("0::" line of /proc/PID/cgroup).
cgroup_of() {
	sed -n 's/^0:://p' "/proc/$1/cgroup"
}

# cgroup2_mount: where the cgroup v2 hierarchy is mounted.
cgroup2_mount() {
	awk '$0 ~ / - cgroup2 / { print $5; exit }' /proc/self/mountinfo
}

# cgroup_remove DIR: an agent's cgroup that no spoke will remove, with
# whatever is still in it (cgroup.kill), waited for up to 2 s.
cgroup_remove() {
	[ -d "$1" ] || return 0
	echo 1 >"$1/cgroup.kill" 2>/dev/null
	wait_for 2 rmdir "$1" || echo "# could not remove cgroup $1"
}

# agent_cgroup_dir SPOKE ID: where the agent's cgroup is to be, agent-ID
# under its spoke's cgroup.
agent_cgroup_dir() {
	local base
	base=$(cgroup_of "$(spoke_pid "$1")")
	echo "$(cgroup2_mount)${base%/}/agent-$2"
}

# python_grpc_stubs: PY, a python3 with Debian's grpcio, protobuf and
# grpc_tools (under /usr/bin/python3, which may not be the first on
# PATH), and PY_STUBS, a folder of this run's Python stubs of proto/
# (tessera.v1 and the health service as tsr_health.v1: a package named
# grpc would hide grpcio's own).
python_grpc_stubs() {
	local p src
	src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	export PYTHONDONTWRITEBYTECODE=1
	PY=
	for p in python3 /usr/bin/python3; do
		if "$p" -c 'import grpc, grpc_tools.protoc, google.protobuf' 2>/dev/null; then
			PY=$p
			break
		fi
	done
	[ -n "$PY" ] || bail "no python3 with grpcio, protobuf and grpc_tools (deploy/install-deps.sh)"
	PY_STUBS=$WORK/stubs
	mkdir -p "$PY_STUBS" "$WORK/proto/tsr_health/v1"
	cp "$src/proto/grpc/health/v1/health.proto" "$WORK/proto/tsr_health/v1/health.proto"
	"$PY" -m grpc_tools.protoc -I "$src/proto" -I "$src/proto/hub" -I "$WORK/proto" \
		--python_out="$PY_STUBS" --grpc_python_out="$PY_STUBS" \
		tessera/v1/agent.proto tessera/v1/hub.proto tsr_health/v1/health.proto \
		>"$WORK/protoc.log" 2>&1 ||
		bail "grpc_tools.protoc failed: $(tail -n 3 "$WORK/protoc.log")"
}
