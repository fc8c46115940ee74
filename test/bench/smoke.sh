#!/bin/bash
# Smoke test of the benchmark: run test/bench/run-bench.sh with 8 segments and one run of
# each contender (walship, plain TCP baseline, cp archive_command); pass (exit 0) when
# every contender shipped every segment and the table was printed.  No speed goal is
# checked here: the figures of so short a run mean nothing.
#
# Exit codes follow test/system: 0 pass, 1 fail, 77 skip (the reason is the last line).
# To run it with the system tests, a test/system/t_*.sh wrapper can exec it:
#   exec bash "$(dirname "$0")/../bench/smoke.sh"
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# skip REASON: the benchmark cannot run here; exit 77 with the reason on the last line.
skip() {
	echo "SKIP: $*"
	exit 77
}

((EUID == 0)) || skip "needs root (network namespaces, runuser)"
[[ -x "$PG_BIN/initdb" ]] || skip "PostgreSQL 15 not found in $PG_BIN"
id postgres >/dev/null 2>&1 || skip "no postgres user"
for f in walshipd walship helpers/bench_baseline; do
	[[ -x "$ROOT/build/$f" ]] || skip "build/$f not built: run make"
done

# A run directory of its own (on the build disk, not tmpfs), so a smoke test never
# disturbs a `make bench` running at the same time, nor its results file.
dir=$(mktemp -d "$ROOT/build/bench-smoke.XXXXXX")
out=$dir/output
trap 'rm -rf "$dir"' EXIT
rc=0
BENCH_SEGMENTS=${BENCH_SEGMENTS:-8} BENCH_RUNS=${BENCH_RUNS:-1} BENCH_PROGRESS=${BENCH_PROGRESS:-2} \
	BENCH_RUN_DIR=$dir/run BENCH_RESULTS=$dir/results.txt \
	timeout -k 10 600 "$ROOT/test/bench/run-bench.sh" 2>&1 | tee "$out" || rc=$?
if ((rc != 0)); then
	echo "FAIL: run-bench.sh exited $rc"
	exit 1
fi
# Every contender must have a row with a number in the seg/s column.
for c in walship baseline cp; do
	grep -Eq "^$c +[0-9]+(\.[0-9]+)? " "$out" || { echo "FAIL: no result row for $c"; exit 1; }
done
echo "PASS: every contender shipped every segment"
