#!/usr/bin/env bash
# Installs the independent gRPC clients the tests and benchmarks drive
# Tessera with — grpcurl, ghz and grpc-health-probe, at pinned versions —
# into /usr/local/bin with `go install`. Idempotent; needs root.
set -euo pipefail

GRPCURL=github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.1
GHZ=github.com/bojand/ghz/cmd/ghz@v0.120.0
HEALTH_PROBE=github.com/grpc-ecosystem/grpc-health-probe@v0.4.62
BIN=/usr/local/bin

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo -E bash "$0" "$@"
	fi
	echo "install-go-tools: must run as root" >&2
	exit 1
fi

# A version stamp per tool, so that a changed pin reinstalls it.
installed() {
	[ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]
}

need=()
installed grpcurl "$GRPCURL" || need+=("grpcurl $GRPCURL")
installed ghz "$GHZ" || need+=("ghz $GHZ")
installed grpc-health-probe "$HEALTH_PROBE" || need+=("grpc-health-probe $HEALTH_PROBE")
[ "${#need[@]}" -eq 0 ] && exit 0

. "$(dirname "$0")/find-go.sh"

for entry in "${need[@]}"; do
	name=${entry%% *}
	mod=${entry#* }
	GOBIN=$BIN GOFLAGS=-mod=mod "$go" install "$mod"
	echo "$mod" >"$BIN/.$name.version"
done
