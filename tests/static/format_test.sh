#!/usr/bin/env bash
# Every C source of the tree is formatted as .clang-format says (TAP, one
# line per file). Other clang-format versions format a few constructs
# differently, so the check runs with the version the tree was formatted
# with (Debian 12's, 14) and is skipped with any other.
# usage: format_test.sh SOURCE_ROOT
set -uo pipefail
src=$1
want=14

if ! command -v clang-format >/dev/null 2>&1; then
	echo "1..0 # SKIP clang-format is not installed"
	exit 0
fi
major=$(clang-format --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$major" != "$want" ]; then
	echo "1..0 # SKIP clang-format $major is not $want, the version the tree follows"
	exit 0
fi

cd "$src" || exit 1
mapfile -t files < <(find common hub spoke tests -name '*.[ch]' | sort)
echo "1..${#files[@]}"
# One clang-format for the whole tree, as long as it is formatted; file by
# file only to name those that are not.
all_ok=0
clang-format --dry-run --Werror "${files[@]}" >/dev/null 2>&1 && all_ok=1
n=0 failed=0
for f in "${files[@]}"; do
	n=$((n + 1))
	if [ "$all_ok" -eq 1 ] || clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "ok $n - $f"
	else
		echo "not ok $n - $f (clang-format -i $f)"
		failed=1
	fi
done
exit "$failed"
