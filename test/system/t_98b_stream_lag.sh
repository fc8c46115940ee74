#!/bin/bash
# t_98b: sub-segment shipping (issue 13).  With synchronous_commit = off and a steady
# pgbench load, the replica's durable position (the primary walshipd's flush_lsn for it,
# from the replica's PROGRESS) trails PostgreSQL's flush position by less than one segment
# at every sample: WAL ships as it is written, not at segment end.  The distribution of the
# lag in bytes and in time is printed (no timed assertion: the machine is shared).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_stream_up off
log "pgbench -i -s 2"
pgbench_at "$NS_P" "$PG_PORT" -i -s 2 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
SEG=$((16 * 1024 * 1024))

bg_start "$TEST_DIR/pgbench.out" pgbench_at "$NS_P" "$PG_PORT" -n -c 2 -j 2 -T 12 -R 400
LOAD=$BG_PID
samples=$TEST_DIR/lag.txt
: >"$samples"
# Sample while the load runs: PostgreSQL's flush position first, then the replica's
# durable one (read later, so a lag measured is never too small).
while pid_alive "$LOAD"; do
	pg=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
	st=$(walship_status "$PCONF" --json)
	rep=$(jq -r '.peers[0].flush_lsn // empty' <<<"$st")
	lag_us=$(jq -r '.peers[0].lag_us // 0' <<<"$st")
	sleep 0.2
	[[ -n "$rep" && "$rep" != 0/0 ]] || continue
	lag=$(($(lsn_to_int "$pg") - $(lsn_to_int "$rep")))
	((lag < 0)) && lag=0
	printf '%s %s %s\n' "$lag" "$lag_us" $(($(lsn_to_int "$rep") % SEG)) >>"$samples"
done
wait "$LOAD" || { tail -n 20 "$TEST_DIR/pgbench.out"; fail "pgbench failed"; }
n=$(wc -l <"$samples")
((n >= 10)) || fail "only $n lag samples taken during the load"
stats() { # column: p50 p90 max
	sort -n -k"$1" "$samples" | awk -v c="$1" '{v[NR] = $c}
		END {printf "p50 %d, p90 %d, max %d", v[int(NR * 0.5) + 1 > NR ? NR : int(NR * 0.5) + 1],
			v[int(NR * 0.9) + 1 > NR ? NR : int(NR * 0.9) + 1], v[NR]}'
}
log "lag over $n samples: bytes $(stats 1); µs since the oldest WAL the replica lacks arrived: $(stats 2)"
max=$(sort -n -k1 "$samples" | tail -n 1 | cut -d' ' -f1)
((max < SEG)) || fail "the replica trailed PostgreSQL by $max bytes, a segment or more"
# Whole segments only would leave the durable position at segment boundaries.
inside=$(awk '$3 != 0' "$samples" | wc -l)
((inside * 2 >= n)) ||
	fail "the replica's durable position was inside a segment in only $inside of $n samples"
syncs=$(status_counter "$RCONF" stream_syncs)
((syncs > 0)) || fail "the replica made no streamed WAL durable (stream_syncs = 0)"
log "replica group commits: $syncs"
log "PASS"
