#!/bin/bash
# t_98c: the stream survives its faults (issue 13).  Under a synchronous-commit load,
# PostgreSQL is restarted, the primary walshipd is SIGKILLed (mid-segment: the stream is
# always in the middle of one) and started again, and the link to the replica is cut for a
# few seconds.  After each, commits go on; at the end the replica holds every segment
# byte for byte as in pg_wal, without a gap, and the segment being streamed as a durable
# prefix equal to pg_wal's up to PostgreSQL's flush position: no file of two halves,
# nothing acknowledged lost.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_stream_up on
log "pgbench -i -s 1"
pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }

# A load of short runs, so that a run cut by a restart is followed by the next.

rm -f "$TEST_DIR/stop-load"
load() {
	while [[ ! -e "$TEST_DIR/stop-load" ]]; do
		pgbench_at "$NS_P" "$PG_PORT" -n -c 2 -j 2 -T 2 -R 200 || true
	done
}
bg_start "$TEST_DIR/load.out" load
LOAD=$BG_PID

# commits_go_on: wait until PostgreSQL's flush position moves 64 kB past where it is and
# the replica holds it (walship's flush position for PostgreSQL reached it).
commits_go_on() {
	local from
	from=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")")
	wait_for 60 "WAL to grow by 64 kB" wal_past "$((from + 65536))"
	wait_for 60 "the replica to make it durable" replica_holds "$((from + 65536))"
}
wal_past() {
	(($(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")") >= $1))
}

commits_go_on
log "episode 1: PostgreSQL restarted during the load"
pg_stop "$PDATA" fast
pg_start "$PDATA" "$NS_P"
commits_go_on
wait_for 30 "walship listed as a synchronous standby again" pg_sync_standby "$NS_P" "$PG_PORT" \
	"$(conf_get "$PCONF" node_name)"
connects=$(status_counter "$PCONF" source_connects)
((connects >= 2)) || fail "the stream source connected $connects time(s), not again"

log "episode 2: SIGKILL of the primary walshipd mid-segment"
walshipd_kill "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
wait_replica_streaming "$PCONF" 20
commits_go_on

log "episode 3: the link to the replica cut for 3 s"
in_ns "$NS_P" ip link set vr1 down
sleep 3 # the cut itself lasts this long; nothing is timed
in_ns "$NS_P" ip link set vr1 up
wait_replica_streaming "$PCONF" 40
commits_go_on

touch "$TEST_DIR/stop-load"
wait "$LOAD" || true
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"
log "PostgreSQL flushed up to $final; the replica holds it"

assert_stream_equals_pg_wal "$final"
log "PASS"
