#!/usr/bin/env bash
# The wire contract's layering, checked on the sources and the built
# binaries (TAP): spoke/ includes and links nothing generated from the
# hub's user API (hub.proto), and every protocol limit of common/protocol.h
# and every method path is defined there alone.
# usage: contract_test.sh SOURCE_ROOT BUILD_ROOT
set -uo pipefail
src=$1 build=$2
. "$(dirname "$0")/tap.sh"

no_match() {
	! grep -qE "$@"
}

spoke_sources() {
	find "$src/spoke" -name '*.[ch]'
}

check "no spoke source includes hub.pb-c.h" \
	no_match 'hub\.pb-c\.h' $(spoke_sources)
check "tessera-spoke links no message of hub.proto" \
	sh -c "! nm '$build/spoke/tessera-spoke' | grep -qiE 'tessera__v1__(spawn_agent_request|get_agent_request|kill_agent_request|list_agents|list_spokes|spoke_info|drain_spoke_request|undrain_spoke_request|watch_events|read_agent_output|hub__)'"
check "tessera-spoke's reflection does not describe hub.proto" \
	sh -c "! grep -q 'tessera/v1/hub.proto' '$build/spoke/tessera-spoke'"
check "the hub's reflection describes hub.proto" \
	grep -q 'tessera/v1/hub.proto' "$build/hub/tessera-hub"

# Every TSR_ name of protocol.h is #defined there and nowhere else.
dups=""
for name in $(sed -n 's/^#define \(TSR_[A-Z0-9_]*\).*/\1/p' "$src/common/protocol.h"); do
	where=$(grep -rlE "^#define $name\b" "$src/common" "$src/hub" "$src/spoke" "$src/tests")
	[ "$where" = "$src/common/protocol.h" ] || dups="$dups $name"
done
check "each protocol limit and name is defined once, in common/protocol.h${dups:+ (not:$dups)}" \
	[ -z "$dups" ]
check "no method path is spelled out beside common/protocol.h" \
	no_match '"/tessera\.v1\.(Hub|Spoke)/' $(find "$src/common" "$src/hub" "$src/spoke" "$src/tests" -name '*.[ch]' ! -name protocol.h)
check "no command type is a string" \
	no_match '"(agent\.(spawn|status|kill|list)|events\.stream|output\.stream|spoke\.info)"' $(find "$src/common" "$src/hub" "$src/spoke" "$src/tests" -name '*.[ch]')

tap_end
