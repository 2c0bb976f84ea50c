#!/usr/bin/env bash
# Installs what Tessera needs to build, run and test on Debian 12, as root.
# Idempotent: packages already present are left alone. Valkey 8 comes from
# bookworm-backports, whose mirror is taken from the machine's own apt
# sources so that no host name is written down here.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo -E bash "$0" "$@"
	fi
	echo "install-deps: must run as root (apt-get)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive

pkgs=(
	build-essential meson ninja-build pkg-config musl-tools
	libgrpc-dev protobuf-compiler protobuf-c-compiler libprotobuf-c-dev
	libprotobuf-dev libhiredis-dev libsodium-dev libmicrohttpd-dev check
	ca-certificates procps iproute2 python3 jq gcovr curl
	clang libclang-rt-14-dev clang-format
	hyperfine python3-grpcio python3-protobuf python3-grpc-tools
	systemd # systemd-analyze, which checks the unit files (no running systemd needed)
)

. "$(dirname "$0")/apt-sources.sh"

missing=()
need_valkey=0
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
{ command -v valkey-server && command -v valkey-cli; } >/dev/null 2>&1 || need_valkey=1

if [ "${#missing[@]}" -eq 0 ] && [ "$need_valkey" -eq 0 ]; then
	exit 0
fi

enable_backports || { echo "install-deps: no bookworm-backports" >&2; exit 1; }
apt-get update -q
if [ "${#missing[@]}" -gt 0 ]; then
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ "$need_valkey" -eq 1 ]; then
	apt-get install -y -q --no-install-recommends -t bookworm-backports valkey-server valkey-tools
	# The package starts a system-wide instance; Tessera runs its own.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now valkey-server >/dev/null 2>&1 || true
	fi
fi
