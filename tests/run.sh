#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds Tessera
# twice (plain with coverage, and with AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs the whole suite against each build;
# after the plain run it reports the line coverage of spoke/ (gcovr) and
# fails below SPOKE_COVERAGE_MIN percent. Then it builds Tessera a third
# time with clang and libFuzzer and runs every fuzz target for a bounded
# time.
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

SPOKE_COVERAGE_MIN=85

build build -Db_coverage=true
# Counts of earlier runs would be added to this one's.
find build -name '*.gcda' -delete
meson test -C build --print-errorlogs
# The daemons write their counts when they exit normally (the integration
# tests stop them with SIGTERM); unit tests cover the rest.
gcovr --root . --filter 'spoke/' --print-summary --fail-under-line "$SPOKE_COVERAGE_MIN" build

build build-asan -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	meson test -C build-asan --print-errorlogs

CC=clang build build-fuzz -Dfuzzing=true -Dtests=false
meson test -C build-fuzz --suite fuzz --print-errorlogs
