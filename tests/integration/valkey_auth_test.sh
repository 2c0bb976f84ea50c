#!/usr/bin/env bash
# Spokes that authenticate to their Valkey: one as an ACL user (the default
# user off), one with a requirepass password; each runs an agent to
# COMPLETED and streams its events. A spoke given a wrong password says at
# start-up that Valkey refused it and never serves; a running spoke whose
# password is changed under it is NOT_SERVING, says why and starts no
# agent, until the password is right again.
. "$(dirname "$0")/lib.sh"

for tool in jq grpc-health-probe; do
	command -v "$tool" >/dev/null || bail "$tool is not installed"
done

VALKEY_AUTH=acl start_valkey vk1
VALKEY_AUTH=password start_valkey vk2
keygen hub
start_spoke spoke-1 vk1 hub
start_spoke spoke-2 vk2 hub
start_hub hub hub spoke-1 spoke-2

check "vk1 answers nobody without a password" \
	grep -q NOAUTH <<<"$(valkey-cli -s "$WORK/vk1/valkey.sock" ping 2>&1)"
check "vk2 answers nobody without a password" \
	grep -q NOAUTH <<<"$(valkey-cli -s "$WORK/vk2/valkey.sock" ping 2>&1)"
check "the spokes' password files are mode 0600" \
	[ "$(stat -c %a "$WORK/vk1/password" "$WORK/vk2/password" | sort -u)" = 600 ]
check "spoke-1 is connected as user tessera" \
	grep -q "user=tessera" <<<"$(valkey vk1 client list)"

# A round trip on each, the events included (a watch has a connection of its own).
for n in 1 2; do
	id=$(cli --json spawn true --spoke "spoke-$n" | jq -r .id) || bail "spawn on spoke-$n failed"
	check "spoke-$n: the agent reaches a terminal state" wait_for 10 agent_terminal "$id"
	check "spoke-$n: the agent is COMPLETED" [ "$(agent_state "$id")" = completed ]
	check "spoke-$n: its record is in the spoke's Valkey" \
		[ "$(valkey "vk$n" hget "tessera:{spoke-$n}:agent:$id" state)" = completed ]
	types=$(timeout 20 "$TESSERA_CLI" --hub "$HUB_ADDR" --json watch --from-start \
		--agent "$id" --count 3 2>/dev/null | jq -r .event.type | paste -sd' ')
	check "spoke-$n: watch streams its events" \
		[ "$types" = "agent.spawning agent.running agent.completed" ]
	ids[$n]=$id
done

# Valkey replays its append-only file under the default user: restarted, an
# ACL-protected one still has every acknowledged transition.
for n in 1 2; do
	stop_valkey "vk$n"
	start_valkey "vk$n"
	check "vk$n restarted still has spoke-$n's agent, COMPLETED" \
		[ "$(valkey "vk$n" hget "tessera:{spoke-$n}:agent:${ids[$n]}" state)" = completed ]
done

# A wrong password: the spoke keeps waiting for Valkey, saying why, and
# gives up after 30 s; it never serves and never starts an agent.
(umask 077 && echo not-the-password >"$WORK/wrong.password")
keygen spoke-bad
bad_port=$(free_port)
sed -e "s|^id .*|id spoke-bad|" -e "s|^listen .*|listen 127.0.0.1:$bad_port|" \
	-e "s|^key .*|key $WORK/spoke-bad.key|" -e "s|^state-dir .*|state-dir $WORK/spoke-bad.state|" \
	-e "s|^valkey-password-file .*|valkey-password-file $WORK/wrong.password|" \
	"$WORK/spoke-1.conf" >"$WORK/spoke-bad.conf"
"$TESSERA_SPOKE" --config "$WORK/spoke-bad.conf" >"$WORK/spoke-bad.log" 2>&1 &
bad_pid=$!
track "$bad_pid" -
refused="valkey at unix:$WORK/vk1/valkey.sock: authentication refused: WRONGPASS"
check "a spoke with a wrong password logs that Valkey refused it" \
	wait_for 10 grep -qF "$refused" "$WORK/spoke-bad.log"
check "it does not serve" \
	sh -c "! grpc-health-probe -addr 127.0.0.1:$bad_port -connect-timeout 2s >/dev/null 2>&1"
check "its log never shows the password" sh -c "! grep -q not-the-password '$WORK/spoke-bad.log'"

# The password changed under a running spoke: it reconnects (its
# connections are killed) and is refused.
valkey vk1 acl setuser tessera resetpass ">rotated-$RANDOM" >/dev/null
valkey vk1 client kill user tessera >/dev/null
# grpc-health-probe exits 4 for NOT_SERVING (2 would be "cannot connect").
health_is() {
	local rc=0
	grpc-health-probe -addr "127.0.0.1:$SPOKE_PORT_spoke_1" -service tessera.v1.Spoke \
		>/dev/null 2>&1 || rc=$?
	[ "$rc" -eq "$1" ]
}
check "spoke-1 is NOT_SERVING once Valkey refuses its password" wait_for 10 health_is 4
check "its log says Valkey refused the authentication" \
	wait_for 5 grep -qF "not serving: $refused" "$WORK/spoke-1.log"
before=$(valkey vk1 zcard "tessera:{spoke-1}:agents")
err=$(cli spawn true --spoke spoke-1 2>&1)
check "a spawn on it fails" [ $? -ne 0 ]
check "saying it is unavailable" grep -q UNAVAILABLE <<<"$err"
check "and no agent is recorded" [ "$(valkey vk1 zcard "tessera:{spoke-1}:agents")" = "$before" ]
check "or started" [ -z "$(agent_processes vk1 spoke-1)" ]
valkey vk1 acl setuser tessera resetpass ">$(cat "$WORK/vk1/password")" >/dev/null
check "with its password right again, spoke-1 is SERVING" wait_for 10 health_is 0
check "and says so" grep -q "serving again" "$WORK/spoke-1.log"
id=$(cli --json spawn true --spoke spoke-1 | jq -r .id)
check "spawns on it work again" wait_for 10 agent_terminal "$id"

# By now the spoke with the wrong password has given up (30 s), with the error.
wait "$bad_pid"
rc=$?
for i in "${!PIDS[@]}"; do
	[ "${PIDS[$i]}" != "$bad_pid" ] || PIDS[$i]=
done
check "the spoke with the wrong password exits 1" [ "$rc" -eq 1 ]
check "its last line is the refusal" grep -qF "$refused" <<<"$(tail -n 1 "$WORK/spoke-bad.log")"
check "it started no agent" [ ! -e "$WORK/spoke-bad.state" ]
check "it recorded nothing" [ "$(valkey vk1 exists "tessera:{spoke-bad}:agents")" = 0 ]
check "nor ever listened" sh -c "! grep -q 'listening on' '$WORK/spoke-bad.log'"

finish
