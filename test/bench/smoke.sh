#!/bin/bash
# Smoke test of the benchmark: run test/bench/run-bench.sh with 4 segments and one run of
# each kind of contender: walship, walship-probes, walship behind a real archiver with
# archive_command and with the archive module, pgBackRest sync without and async with lz4
# compression over TLS, plain TCP baseline, cp archive_command, the disk and network
# limits, streaming replication for 2 s, fan-out to 2 replicas with 2 segments,
# synchronous commit for 1 s (1 s of lag sampling) with a PostgreSQL standby,
# pg_receivewal and walship; plots and Markdown report into its own directory; pass (exit
# 0) when every contender shipped every segment and the tables were printed.  No speed
# goal is checked here: the figures of so short a run mean nothing.  Left out, for
# `make check`'s time: contenders that differ from one here only in an option's value
# (walship-async and -map: run_walship's sync and send_source; fan-out to 1; the other
# three pgBackRest contenders; sync-receivewal-relay, pg_receivewal through socat), and
# every pgbench load is throttled to 200 transactions per second (at full speed the loads
# took both cores for 8 s, a third of the test's CPU).  The standby contenders (issue 14,
# test/bench/standby.sh) are left out too: standby-lag alone, 1 s of load at scale 1,
# costs about 13 s of CPU (a primary, two walshipds, a base backup, two standbys);
# BENCH_STANDBY_SECONDS=1 puts them in at their smallest (standby-lag and one standby on
# the appliance, scale 1).
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

# The benches' fixed ports differ: a full run keeps the standby bench's primary up while
# the other contenders run, which this smoke run (no standby bench by default) would miss.
dup_ports=$(grep -ho '^[A-Z_]*PORT=[0-9]*' "$ROOT"/test/bench/*.sh | cut -d= -f2 | sort | uniq -d |
	tr '\n' ' ')
if [[ -n $dup_ports ]]; then
	echo "FAIL: a port is given to two benches in test/bench/*.sh: $dup_ports"
	exit 1
fi

# A run directory of its own (on the build disk, not tmpfs), so a smoke test never
# disturbs a `make bench` running at the same time, nor its results file.
dir=$(mktemp -d "$ROOT/build/bench-smoke.XXXXXX")
chmod 0755 "$dir"	# pgBackRest and PostgreSQL run as postgres under it
out=$dir/output
trap 'rm -rf "$dir"' EXIT
rc=0
contenders="walship walship-archcmd baseline cp limit-disk limit-net plain-send streaming
	fanout-2 sync-standby sync-receivewal sync-walship"
if [[ -f "$ROOT/build/walship_archive.so" ]]; then
	contenders+=" walship-module"
else
	echo "smoke: build/walship_archive.so is not built (postgresql-server-dev-15): walship-module is left out"
fi
if ((${BENCH_STANDBY_SECONDS:-0} > 0)); then
	contenders+=" standby-lag-direct standby-lag-appliance standby-appliance-1"
fi
pgbr=1
if command -v pgbackrest >/dev/null; then
	contenders+=" pgbr-sync-off pgbr-async-lz4"
else
	echo "smoke: pgbackrest is not installed (scripts/install-deps.sh): its contenders are left out"
	pgbr=0
fi
smoke_contenders="walship walship-probes walship-archcmd walship-module baseline cp limit-*"
smoke_contenders+=" plain-send streaming fanout-* sync-standby sync-receivewal sync-walship standby-*"
smoke_contenders+=" pgbr-sync-off pgbr-async-lz4"
BENCH_SEGMENTS=${BENCH_SEGMENTS:-4} BENCH_RUNS=${BENCH_RUNS:-1} BENCH_PROGRESS=${BENCH_PROGRESS:-2} \
	BENCH_FANOUT=${BENCH_FANOUT-2} BENCH_FANOUT_SEGMENTS=${BENCH_FANOUT_SEGMENTS:-2} \
	BENCH_STREAM_SECONDS=${BENCH_STREAM_SECONDS:-2} BENCH_STREAM_SCALE=${BENCH_STREAM_SCALE:-1} \
	BENCH_SYNC_SECONDS=${BENCH_SYNC_SECONDS:-1} BENCH_SYNC_LAG_SECONDS=${BENCH_SYNC_LAG_SECONDS:-1} \
	BENCH_PGBENCH_RATE=${BENCH_PGBENCH_RATE-200} \
	BENCH_STANDBY_SECONDS=${BENCH_STANDBY_SECONDS:-0} BENCH_STANDBY_FANOUT=${BENCH_STANDBY_FANOUT-1} \
	BENCH_STANDBY_DIRECT=${BENCH_STANDBY_DIRECT-} BENCH_STANDBY_SCALE=${BENCH_STANDBY_SCALE:-1} \
	BENCH_PGBR=${BENCH_PGBR:-$pgbr} BENCH_RUN_DIR=$dir/run BENCH_RESULTS=$dir/results.txt \
	BENCH_CONTENDERS=${BENCH_CONTENDERS-$smoke_contenders} \
	BENCH_DOC=$dir/benchmarks.md BENCH_PLOTS=$dir/plots \
	timeout -k 10 600 "$ROOT/test/bench/run-bench.sh" 2>&1 | tee "$out" || rc=$?
if ((rc != 0)); then
	echo "FAIL: run-bench.sh exited $rc"
	exit 1
fi
[[ -s $dir/benchmarks.md ]] || { echo "FAIL: no Markdown report"; exit 1; }
# Every contender must have a row with a number in the seg/s (sync-*: TPS) column.
for c in $contenders; do
	grep -Eq "^$c +[0-9]+(\.[0-9]+)? " "$out" || { echo "FAIL: no result row for $c"; exit 1; }
done
echo "PASS: every contender shipped every segment"
