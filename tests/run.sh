#!/usr/bin/env bash
# The README's test command: installs what is missing, then compiles
# Tessera as a packager would: with GCC as a release build and with clang
# as a debugoptimized and a release build. Then it builds Tessera twice
# more (plain with coverage, and with AddressSanitizer +
# UndefinedBehaviorSanitizer, both GCC debugoptimized) and runs the whole
# suite against each build; after the plain run it reports the line
# coverage of spoke/ (gcovr) and fails below SPOKE_COVERAGE_MIN percent,
# then runs the suite against the GCC release build too, whose
# tessera-shim is the one users get. Then it builds Tessera with clang and
# libFuzzer and runs every fuzz target for a bounded time. Every build
# treats warnings as errors (the project's default does not, so that
# another compiler's warnings do not break a user's build). Wherever a
# Docker Engine answers, it also runs the compose suite (tests/compose/:
# the docker compose deployment, live) against the plain build's CLI;
# where none answers it says so in one line and skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
bash deploy/install-go-tools.sh
docker_engine=0
if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
	docker_engine=1
	bash deploy/install-compose.sh
fi

build() {
	local dir=$1
	shift
	# An existing folder (the demo's build/, say) gets the options by
	# meson configure: meson setup --reconfigure drops b_coverage here.
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" -Dwerror=true "$@" >/dev/null
	else
		meson setup "$dir" -Dwerror=true "$@"
	fi
	meson compile -C "$dir"
}

SPOKE_COVERAGE_MIN=85

# The optimizer's warnings differ by level and compiler: three builds.
# The release build also runs the suite, below.
build build-release --buildtype=release
CC=clang build build-clang --buildtype=debugoptimized
CC=clang build build-clang-release --buildtype=release

build build -Db_coverage=true
# Counts of earlier runs would be added to this one's.
find build -name '*.gcda' -delete
meson test -C build --print-errorlogs
# The daemons write their counts when they exit normally (the integration
# tests stop them with SIGTERM); unit tests cover the rest.
gcovr --root . --filter 'spoke/' --print-summary --fail-under-line "$SPOKE_COVERAGE_MIN" build

# The shim a user gets (static, against musl where musl-gcc is found) is
# not the coverage build's: the GCC release build runs the suite too.
meson test -C build-release --print-errorlogs

if [ "$docker_engine" -eq 1 ]; then
	meson test -C build --setup compose --suite compose --print-errorlogs
else
	echo "tests/run.sh: skipping the compose suite: no Docker Engine answers (docker info)"
fi

build build-asan -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	meson test -C build-asan --print-errorlogs

CC=clang build build-fuzz -Dfuzzing=true -Dtests=false
meson test -C build-fuzz --suite fuzz --print-errorlogs
