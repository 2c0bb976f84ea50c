#!/usr/bin/env bash
# The README's configuration examples load as shown: its spoke and hub
# blocks (under "Configuration") and the CLI's defaults file (under "Using
# it"), copied verbatim from README.md, trailing comments and all, run a
# spoke, a hub and the CLI that talk to each other over TLS, with tokens,
# serve metrics where the README's metrics-listen lines say, and run the
# README's agent types.
#
# The examples name addresses and files as a machine would have them:
# everything runs in a network namespace of its own, where the README's
# ports are free and its Valkey (127.0.0.1:6379) is the test's, and each
# program in a private mount namespace (so this needs root) where the
# folders the examples use (/etc/tessera, /opt/agents, /srv,
# /usr/local/bin, /var/lib/tessera, /home/alice) are overlays holding the
# test's own files; the machine's stay untouched. A value the README
# elides with "…" (keys, token hashes) cannot be loaded by anyone: such a
# line is left out, named, and given by a --set line with a real value.
# The CLI is pointed at the hub with --hub (a flag beats the file). One
# more --set line checks that a '#' inside a word is no comment.
. "$(dirname "$0")/lib.sh"

README=$(dirname "$0")/../../README.md
ELLIPSIS=$(printf '\342\200\246')
SB=$WORK/sandbox
SANDBOX_DIRS="/etc /home /opt /srv /usr/local/bin /var/lib"

[ "$(id -u)" -eq 0 ] || bail "needs root: namespaces of its own for the README's addresses and paths"
unshare --mount --propagation private true || bail "cannot make a mount namespace"
NS=tessera-readme-$$
make_netns "$NS"

# readme_block TEXT: the first fenced block after the first README line
# holding TEXT, verbatim.
readme_block() {
	awk -v text="$1" '
		inside && /^```/ { exit }
		inside { print; next }
		found && /^```/ { inside = 1; next }
		!found && index($0, text) { found = 1 }' "$README"
}

# words_of: stdin's lines without their comments, as the config format reads them.
words_of() {
	sed -E 's/(^|[[:space:]])#.*//'
}

# sandbox_file ROOT PATH MODE [SOURCE]: PATH as the sandbox ROOT shows it,
# a copy of SOURCE (or stdin).
sandbox_file() {
	mkdir -p "$(dirname "$1$2")"
	if [ $# -ge 4 ]; then cp "$4" "$1$2"; else cat >"$1$2"; fi
	chmod "$3" "$1$2"
}

# sandboxed ROOT COMMAND...: execs COMMAND (so the caller's subshell
# becomes it, PID and all) in the test's network namespace and a private
# mount namespace where each of SANDBOX_DIRS is the machine's, overlaid
# with what ROOT holds under that path, on a tmpfs of its own, which goes
# with the namespace. Run it in a subshell: ( sandboxed ... ).
sandboxed() {
	local root=$1
	shift
	mkdir -p "$root/.mnt"
	exec ip netns exec "$NS" unshare --mount --propagation private -- sh -ec '
		root=$1 dirs=$2
		shift 2
		mount -t tmpfs tessera-sandbox "$root/.mnt"
		for d in $dirs; do
			mkdir -p "$root/.mnt$d/upper" "$root/.mnt$d/work"
			[ ! -d "$root$d" ] || cp -a "$root$d/." "$root/.mnt$d/upper/"
			mount -t overlay overlay \
				-o "lowerdir=$d,upperdir=$root/.mnt$d/upper,workdir=$root/.mnt$d/work" "$d"
		done
		exec "$@"' sh "$root" "$SANDBOX_DIRS" "$@"
}

# listening_or_gone PID LOG: the daemon has started, or has exited.
listening_or_gone() {
	grep -q "listening on" "$2" || ! kill -0 "$1" 2>/dev/null
}

# start_sandboxed NAME LOG ROOT COMMAND...: starts a daemon in its sandbox;
# checks that it listens, else shows why and bails.
start_sandboxed() {
	local name=$1 log=$2 root=$3 pid
	shift 3
	(sandboxed "$root" "$@") >"$log" 2>&1 &
	pid=$!
	track "$pid" "$name"
	wait_for 20 listening_or_gone "$pid" "$log"
	if ! grep -q "listening on" "$log"; then
		not_ok "the $name starts on the README's config"
		sed 's/^/# /' "$log"
		bail "the $name did not start"
	fi
	ok "the $name starts on the README's config"
}

# The blocks, verbatim, and what of them is loaded: every line but those
# whose words hold a value the README elides.
readme_block '`tessera-spoke --config spoke.conf`:' >"$WORK/readme-spoke.conf"
readme_block '`tessera-hub --config hub.conf`:' >"$WORK/readme-hub.conf"
readme_block '~/.config/tessera/cli.conf' >"$WORK/readme-cli.conf"
for b in spoke hub cli; do
	check "README has a $b config block with trailing comments" \
		grep -Eq '^[^#[:space:]][^#]*[[:space:]]#' "$WORK/readme-$b.conf"
	: >"$WORK/$b.conf"
	: >"$WORK/$b.left-out"
	while IFS= read -r line; do
		if printf '%s\n' "$line" | words_of | grep -qF "$ELLIPSIS"; then
			echo "# $b: left out, a value the README elides: $line"
			printf '%s\n' "$line" >>"$WORK/$b.left-out"
		else
			printf '%s\n' "$line" >>"$WORK/$b.conf"
		fi
	done <"$WORK/readme-$b.conf"
done
left_out_keywords() {
	awk '{ print $1 }' "$WORK/$1.left-out" | sort | paste -sd' '
}
check "spoke: only the trust-hub key is left out" [ "$(left_out_keywords spoke)" = trust-hub ]
check "hub: only the spokes' keys and the token hash are left out" \
	[ "$(left_out_keywords hub)" = "spoke spoke token" ]
check "cli: nothing is left out" [ -z "$(left_out_keywords cli)" ]

# The README's Valkey address, with its ACL user for spoke-1 and a password.
mkdir -p "$WORK/vk"
(
	umask 077
	python3 -c 'import secrets; print(secrets.token_hex(16))' >"$WORK/vk/password"
	pw=$(cat "$WORK/vk/password")
	echo "user default off ~* &* +@all"
	echo "user admin on >$pw ~* &* +@all"
	echo "user tessera-spoke-1 on >$pw ~tessera:{spoke-1}:* &tessera:{spoke-1}:* +@all -@dangerous"
) >"$WORK/vk/auth.conf"
ip netns exec "$NS" valkey-server "$WORK/vk/auth.conf" --bind 127.0.0.1 --port 6379 \
	--unixsocket "$WORK/vk/valkey.sock" --unixsocketperm 700 --dir "$WORK/vk" \
	--appendonly yes --appendfsync always --save "" --daemonize no --logfile "$WORK/vk.log" &
track $! "valkey vk"
wait_for 10 valkey vk ping || bail "valkey did not start"

# The files the examples name, each program's in its own sandbox.
make_certs
make_cert hub "DNS:hub.internal,DNS:localhost,IP:127.0.0.1" serverAuth ||
	bail "openssl could not make the hub's certificate"
S=$SB/spoke H=$SB/hub C=$SB/cli
mkdir -p "$S/etc/tessera" "$H/etc/tessera" "$S/srv/coder"
"$TESSERA_CLI" keygen "$S/etc/tessera/spoke-1.key" >/dev/null || bail "keygen failed"
"$TESSERA_CLI" keygen "$H/etc/tessera/hub.key" >/dev/null || bail "keygen failed"
sandbox_file "$S" /etc/tessera/valkey-password 600 "$WORK/vk/password"
sandbox_file "$S" /etc/tessera/spoke-1.pem 644 "$TLS_DIR/server.pem"
sandbox_file "$S" /etc/tessera/spoke-1.key.pem 600 "$TLS_DIR/server.key"
sandbox_file "$S" /etc/tessera/ca.pem 644 "$TLS_DIR/ca.pem"
sandbox_file "$S" /opt/agents/sample 755 <<'EOF'
#!/bin/sh
echo "sample $*: $(cat)"
EOF
sandbox_file "$S" /usr/local/bin/coding-agent 755 <<'EOF'
#!/bin/sh
echo "coder as $(id -un):$(id -gn) in $(pwd) with MODEL=$MODEL TAG=$TAG: $TESSERA_TASK"
EOF
# The README's agent-user, a system account of the agents' own.
{ cat /etc/passwd; echo "tessera-agent:x:64201:64201::/nonexistent:/usr/sbin/nologin"; } |
	sandbox_file "$S" /etc/passwd 644
{ cat /etc/group; echo "tessera-agent:x:64201:"; } | sandbox_file "$S" /etc/group 644
ln -s "$TESSERA_BUILD/spoke/tessera-shim" "$S/usr/local/bin/tessera-shim"
sandbox_file "$H" /etc/tessera/hub.pem 644 "$TLS_DIR/hub.pem"
sandbox_file "$H" /etc/tessera/hub.key.pem 600 "$TLS_DIR/hub.key"
sandbox_file "$H" /etc/tessera/ca.pem 644 "$TLS_DIR/ca.pem"
sandbox_file "$H" /etc/tessera/hub-client.pem 644 "$TLS_DIR/client.pem"
sandbox_file "$H" /etc/tessera/hub-client.key.pem 600 "$TLS_DIR/client.key"
sandbox_file "$C" /etc/tessera/ca.pem 644 "$TLS_DIR/ca.pem"
token alice | sandbox_file "$C" /home/alice/.tessera-token 600
sandbox_file "$C" /home/alice/tessera.pem 644 "$TLS_DIR/client.pem"
sandbox_file "$C" /home/alice/tessera.key.pem 600 "$TLS_DIR/client.key"

# The README's addresses: the spoke on 127.0.0.1:7001, the hub on 127.0.0.1:7000.
start_sandboxed spoke "$WORK/spoke.log" "$S" "$TESSERA_SPOKE" --config "$WORK/spoke.conf" \
	--set "trust-hub $(cat "$H/etc/tessera/hub.key.pub")" --set "agent-env coder TAG=issue#7 # a tag"
start_sandboxed hub "$WORK/hub.log" "$H" "$TESSERA_HUB" --config "$WORK/hub.conf" \
	--set "spoke spoke-1 127.0.0.1:7001 $(cat "$S/etc/tessera/spoke-1.key.pub") zone=eu" \
	--set "$(token_line alice)"

readme_cli() {
	(
		export TESSERA_CONFIG=$WORK/cli.conf
		sandboxed "$C" "$TESSERA_CLI" --hub 127.0.0.1:7000 "$@"
	)
}
spoke_connected() {
	[ "$(readme_cli --json spokes | jq -r '.spokes[0].state')" = connected ]
}
check "the CLI, on the README's file, sees spoke-1 connected through the hub (TLS, token, mTLS)" \
	wait_for 15 spoke_connected
# The README's metrics-listen lines, scraped as its Metrics section does.
readme_metrics() {
	ip netns exec "$NS" curl -s "127.0.0.1:$1/metrics" | grep -qx "$2"
}
check "the spoke's metrics-listen 9464 serves its metrics" \
	readme_metrics 9464 'tessera_spoke_max_agents 64'
check "the hub's metrics-listen 9465 serves its metrics" \
	wait_for 5 readme_metrics 9465 'tessera_hub_spoke_up{spoke="spoke-1"} 1'

id=$(readme_cli --json spawn coder "fix issue 7" --wait | jq -r .id)
# Its last line: in a coverage build the shim's child, already the agent's
# user, says before its exec that it cannot write the shim's counters.
check "the README's coder type runs as its agent-user in its agent-dir with its agent-env (and issue#7 whole)" \
	[ "$(readme_cli --json get "$id" | jq -r '.output | rtrimstr("\n") | split("\n") | last')" = \
	"coder as tessera-agent:tessera-agent in /srv/coder with MODEL=large TAG=issue#7: fix issue 7" ]
id=$(readme_cli --json spawn sample "fix issue 12" --wait | jq -r .id)
check "the README's sample type gets its fixed argument and its task on stdin" \
	[ "$(readme_cli --json get "$id" | jq -r .output)" = "sample --verbose: fix issue 12" ]

finish
