#!/bin/bash
# t_98b: sub-segment shipping (issue 13).  With synchronous_commit = off and a steady
# pgbench load, the replica's durable position (the primary walshipd's flush_lsn for it,
# from the replica's PROGRESS) trails PostgreSQL's flush position by less than one segment
# at every sample: WAL ships as it is written, not at segment end.  The distribution of the
# lag in bytes and in time is printed (no timed assertion: the machine is shared).  With
# archive_command = walship push as well, every segment is stored once: the pushes are
# answered as streamed already, not sent again.  Commits waiting: with the replica daemon
# frozen, the commits PostgreSQL writes are counted on it (status --json), none once it
# goes on.
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# The replica's probes time its group commits (received to durable), checked below.
REPLICA_CONF_EXTRA=(probes=auto)
walship_stream_up off
log "pgbench -i -s 2"
pgbench_at "$NS_P" "$PG_PORT" -i -s 2 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
SEG=$((16 * 1024 * 1024))
# The steady load starts from a caught-up replica: pgbench -i writes tens of MB at once,
# and a sample taken while that burst is still crossing would measure the burst.
caught_up() {
	local pg
	pg=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
	lsn_ge "$(walship_status "$PCONF" --json | jq -r '.peers[0].flush_lsn // empty')" "$pg"
}
wait_for 60 "the replica to hold the WAL of pgbench -i" caught_up

bg_start "$TEST_DIR/pgbench.out" pgbench_at "$NS_P" "$PG_PORT" -n -c 2 -j 2 -T 8 -R 400
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
	ws_sleep 0.2
	[[ -n "$rep" && "$rep" != 0/0 ]] || continue
	lag=$(($(lsn_to_int "$pg") - $(lsn_to_int "$rep")))
	((lag < 0)) && lag=0
	printf '%s %s %s\n' "$lag" "$lag_us" $(($(lsn_to_int "$rep") % SEG)) >>"$samples"
done
wait "$LOAD" || { tail -n 20 "$TEST_DIR/pgbench.out"; fail "pgbench failed"; }
n=$(wc -l <"$samples")
((n >= 5)) || fail "only $n lag samples taken during the load"
stats() { # COLUMN: its p50, p90 and max over the samples
	sort -n -k"$1" "$samples" | awk -v c="$1" '{ v[NR] = $c }
		END { i50 = int(NR * 0.5) + 1; i90 = int(NR * 0.9) + 1
			if (i50 > NR) i50 = NR; if (i90 > NR) i90 = NR
			printf "p50 %d, p90 %d, max %d", v[i50], v[i90], v[NR] }'
}
log "lag over $n samples: bytes $(stats 1); µs since the oldest WAL the replica lacks arrived: $(stats 2)"
max=$(sort -n -k1 "$samples" | tail -n 1 | cut -d' ' -f1)
((max < SEG)) || fail "the replica trailed PostgreSQL by $max bytes, a segment or more"
# Whole segments only would leave the durable position at segment boundaries.
inside=$(awk '$3 != 0' "$samples" | wc -l)
((inside * 2 >= n)) ||
	fail "the replica's durable position was inside a segment in only $inside of $n samples"
# Both sources: the segments archive_command pushed were streamed already; none was sent
# and stored a second time.
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
wait_for 30 "a push answered as streamed already" \
	eval '(($(status_counter "$PCONF" skipped_files) >= 1))'
assert_eq 0 "$(status_counter "$PCONF" pushes_failed)" "pushes failed"
assert_eq 0 "$(status_counter "$RCONF" duplicates)" "segments the replica received twice"
log "ok: $(status_counter "$PCONF" pushes_ok) push(es) answered," \
	"$(status_counter "$PCONF" skipped_files) as streamed already, none stored twice"
syncs=$(status_counter "$RCONF" stream_syncs)
((syncs > 0)) || fail "the replica made no streamed WAL durable (stream_syncs = 0)"
# The replica writes streamed segments with O_DIRECT and RWF_DSYNC, unless its archive
# refuses direct I/O (it logs so).
assert_stream_direct "$RCONF" "$TEST_DIR/ws-r1.log"
log "replica group commits: $syncs, $STREAM_DIRECT of them direct writes from the segment's image"
# The BPF probes time each group commit's oldest byte, from its receive to durable.
r2d=$(walship_status "$RCONF" --json | jq -c '.probes.received_to_durable // empty')
if [[ -n "$r2d" ]]; then
	(($(jq '.count' <<<"$r2d") >= syncs / 2)) ||
		fail "received to durable measured $(jq '.count' <<<"$r2d") times for $syncs syncs"
	log "received to durable on the replica (BPF): $r2d"
fi
# Commits waiting (issue 13, item 6): with the replica daemon frozen (SIGSTOP: connected,
# its durable position still), every commit PostgreSQL writes is counted on it, and none
# once it goes on.
commits_waiting() { walship_status "$PCONF" --json | jq -r '.peers[0].commits_waiting'; }
waiting_at_least() { (($(commits_waiting) >= $1)); }
none_waiting() { (($(commits_waiting) == 0)); }
wait_for 30 "no commit waiting on the caught-up replica" none_waiting
psql_at "$NS_P" "$PG_PORT" "create table cw (i int)" >/dev/null
kill -STOP "${WS_DAEMON_PID[$RCONF]}"
for i in 1 2 3 4 5; do
	psql_at "$NS_P" "$PG_PORT" "insert into cw values ($i)" >/dev/null
done
wait_for 20 "5 commits waiting on the frozen replica" waiting_at_least 5
waiting=$(commits_waiting)
kill -CONT "${WS_DAEMON_PID[$RCONF]}"
wait_for 30 "no commit waiting once the replica goes on" none_waiting
log "ok: $waiting commits waiting on the frozen replica, none once it went on"
# The slot holds WAL for the replica: with it away, walship check warns once PostgreSQL has
# written more than max_wal_size past what walship reported durable.
check_slot() {
	run_capture "$TEST_DIR/check-$1.out" "$WALSHIP" check -B "$PG_BIN" -c "$PCONF" -D "$PDATA"
	grep -E '^[A-Z]+ +slot retention' "$TEST_DIR/check-$1.out" || true
}
[[ "$(check_slot near)" == PASS* ]] || fail "walship check's slot retention is not PASS"
psql_at "$NS_P" "$PG_PORT" "alter system set max_wal_size = '32MB'" >/dev/null
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
walshipd_stop "$RCONF"
psql_at "$NS_P" "$PG_PORT" "create table big as select repeat('x', 900) as pad
	from generate_series(1, 60000)"
retained_past() {
	(($(status_counter "$PCONF" source_retained_bytes) > $1))
}
wait_for 60 "the slot to retain more than 32 MB" retained_past $((32 * 1024 * 1024))
line=$(check_slot away)
[[ "$line" == WARN* ]] || fail "walship check does not warn about the slot: '$line'"
log "ok: with the replica away, walship check says: $line"
log "PASS"
