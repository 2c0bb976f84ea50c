#!/usr/bin/env bash
# The CLI's conveniences against real daemons: --version of the four
# programs is the meson project's; `tessera list` is newest first across
# two spokes, although the hub lists one spoke after the other (its JSON
# keeps the hub's order); `-o wide` adds CREATED, PID and LABELS, aligned
# with the rest; output that cannot be written fails the command; and
# deploy/completion/tessera.bash, sourced in bash and driven as bash
# drives it (COMP_LINE, COMP_WORDS), completes commands, flags and
# --state / -o values.
. "$(dirname "$0")/lib.sh"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
for tool in jq meson; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done

# --version: "NAME VERSION", exit 0, the version defined once in meson.build.
version=$(meson introspect --projectinfo "$TESSERA_BUILD" | jq -r .version)
[ -n "$version" ] && [ "$version" != null ] || bail "meson introspect gave no version"
for prog in "$TESSERA_CLI" "$TESSERA_HUB" "$TESSERA_SPOKE" "$TESSERA_BUILD/spoke/tessera-shim"; do
	name=${prog##*/}
	out=$("$prog" --version)
	rc=$?
	check "$name --version exits 0" [ "$rc" -eq 0 ]
	check "... and prints \"$name $version\"" [ "$out" = "$name $version" ]
done

start_valkey vk1
start_valkey vk2
keygen hub
start_spoke spoke-1 vk1 hub
start_spoke spoke-2 vk2 hub
start_hub hub hub spoke-1 spoke-2

# Three agents at distinct times, the oldest and the newest on spoke-2: the
# hub's order (spoke-1's agents, then spoke-2's) is not newest first.
spawn_id() {
	cli --json spawn "$@" | jq -r .id
}
oldest=$(spawn_id true --spoke spoke-2 --agent-label team=red --agent-label zone=eu) ||
	bail "spawn failed"
sleep 0.05
middle=$(spawn_id sleep --spoke spoke-1) || bail "spawn failed"
sleep 0.05
newest=$(spawn_id false --spoke spoke-2) || bail "spawn failed"
quiet cli kill "$middle" || bail "kill failed"
for id in "$oldest" "$newest"; do
	wait_for 10 agent_terminal "$id" || bail "agent $id did not end"
done

# list_ids ARGS...: the ids `tessera list ARGS` prints, in its order.
list_ids() {
	cli list "$@" | awk 'NR > 1 { print $1 }' | paste -sd ' '
}
check "list is newest first across spokes" [ "$(list_ids)" = "$newest $middle $oldest" ]
check "... and so is list -o wide" [ "$(list_ids -o wide)" = "$newest $middle $oldest" ]
check "list --json keeps the hub's order (spoke after spoke)" \
	[ "$(cli --json list | jq -r '.agents[].id' | paste -sd ' ')" = "$middle $newest $oldest" ]

# Every column of TABLE starts where its header does: one space before it,
# none at its first character.
aligned() {
	awk 'NR == 1 {
		for (i = 1; i <= length($0); i++)
			if (substr($0, i, 1) != " " && (i == 1 || substr($0, i - 1, 1) == " "))
				start[++n] = i
		next
	}
	{
		for (k = 2; k <= n; k++)
			if (substr($0, start[k] - 1, 1) != " " || substr($0, start[k], 1) == " ")
				bad = 1
	}
	END { exit bad || n == 0 }' <<<"$1"
}

cli list -o wide >"$WORK/wide" 2>"$WORK/wide.err"
rc=$?
check "list -o wide exits 0" [ "$rc" -eq 0 ]
check "... with the columns ID STATE TYPE SPOKE EXIT STARTED CREATED PID LABELS" \
	[ "$(head -n 1 "$WORK/wide" | tr -s ' ')" = \
		"ID STATE TYPE SPOKE EXIT STARTED CREATED PID LABELS" ]
check "... aligned" aligned "$(cat "$WORK/wide")"
check "list's default table is aligned too" aligned "$(cli list)"
# row ID: the wide table's row of agent ID.
row() {
	grep "^$1 " "$WORK/wide"
}
check "... the labelled agent's LABELS, sorted by key" \
	[ "$(row "$oldest" | awk '{ print $NF }')" = team=red,zone=eu ]
check "... an agent without labels has -" [ "$(row "$newest" | awk '{ print $NF }')" = - ]
check "... EXIT is the exit code" [ "$(row "$newest" | awk '{ print $5 }')" = 1 ]
check "... or the signal" grep -q "^$middle .* killed .* sig 15 " "$WORK/wide"
pid=$(agent_field "$middle" .pid)
check "... PID is the agent's process" \
	[ "$(row "$middle" | awk '{ print $(NF - 1) }')" = "$pid" ]
check "... CREATED is its creation time" \
	grep -q "^$middle .* $(cli get "$middle" | awk '$1 == "createdAt:" { print $2 }') " \
	"$WORK/wide"
check "--output wide is -o wide" cmp -s "$WORK/wide" <(cli list --output wide)
cli list -o tall >/dev/null 2>"$WORK/tall.err"
rc=$?
check "any other --output is a usage error (exit 2)" [ "$rc" -eq 2 ]
check "... naming the one value" grep -q -- "--output takes wide" "$WORK/tall.err"

# Output that cannot be written fails the command: the CLI ends by _exit.
cli list >/dev/full 2>"$WORK/full.err"
rc=$?
check "list into a full disk exits 1" [ "$rc" -eq 1 ]
check "... saying why" grep -q "cannot write the output: No space left on device" "$WORK/full.err"

# complete LINE: what the completion script offers at the end of LINE,
# with COMP_WORDS split as plain words (bash would also split at = and :).
complete_line() {
	PATH=$TESSERA_BUILD/hub:$PATH bash -c '
		source "$1" || exit 1
		COMP_LINE=$2 COMP_POINT=${#2}
		read -ra COMP_WORDS <<<"$2"
		[[ $2 != *" " ]] || COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_tessera
		printf "%s\n" "${COMPREPLY[@]}" | paste -sd " "' \
		_ "$SRC/deploy/completion/tessera.bash" "$1"
}
check "the completion script registers _tessera for tessera" \
	bash -c 'source "$1" && complete -p tessera | grep -q -- "-F _tessera tessera$"' \
	_ "$SRC/deploy/completion/tessera.bash"
check "tessera sp<Tab>: spawn spokes" [ "$(complete_line "tessera sp")" = "spawn spokes" ]
check "tessera list --st<Tab>: --state" [ "$(complete_line "tessera list --st")" = --state ]
check "tessera list --state <Tab>: the states" \
	[ "$(complete_line "tessera list --state ")" = "spawning running completed failed killed" ]
check "tessera list -o <Tab>: wide" [ "$(complete_line "tessera list -o ")" = wide ]
check "tessera --hub HOST:PORT li<Tab>: list" \
	[ "$(complete_line "tessera --hub 127.0.0.1:7000 li")" = list ]
check "tessera --ver<Tab>: --version" [ "$(complete_line "tessera --ver")" = --version ]
# As bash splits "--state=ru": --state, =, ru; it replaces only "ru".
got=$(PATH=$TESSERA_BUILD/hub:$PATH bash -c '
	source "$1" || exit 1
	COMP_LINE="tessera list --state=ru" COMP_POINT=23
	COMP_WORDS=(tessera list --state = ru) COMP_CWORD=4
	_tessera
	printf "%s\n" "${COMPREPLY[@]}"' _ "$SRC/deploy/completion/tessera.bash")
check "tessera list --state=ru<Tab>: running" [ "$got" = running ]

finish
