#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds Tessera
# twice (plain, and with AddressSanitizer + UndefinedBehaviorSanitizer) and
# runs the whole suite against each build; then builds it a third time
# with clang and libFuzzer and runs every fuzz target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
bash deploy/install-go-tools.sh

build() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@"
	fi
	meson compile -C "$dir"
}

build build
meson test -C build --print-errorlogs

build build-asan -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	meson test -C build-asan --print-errorlogs

CC=clang build build-fuzz -Dfuzzing=true -Dtests=false
meson test -C build-fuzz --suite fuzz --print-errorlogs
