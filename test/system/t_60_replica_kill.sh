#!/bin/bash
# Restart resumes from durable state (durability rule 6, docs/architecture.md): under pgbench load, SIGKILL the
# replica walshipd, let PostgreSQL complete segments meanwhile, restart it; the standby
# then replays up to the primary's final position, the replica's archive has no gap and the
# data are identical.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# shellcheck disable=SC2034  # read by lib.sh
PG_ARCHIVE_TIMEOUT=5s
walship_topology_up 2

log "load: pgbench 30 s in the background"
bg_start "$TEST_DIR/pgbench-run.out" pgbench_at "$NS_P" "$PG_PORT" -n -c 4 -j 2 -T 30 -P 1 -R 150
pgbench_pid=$BG_PID
wait_for 20 "pgbench to report progress" grep -q '^progress:' "$TEST_DIR/pgbench-run.out"

seg_at_kill=$(pg_segment_name "$NS_P" "$PG_PORT")
log "SIGKILL of the replica walshipd while the primary writes $seg_at_kill"
walshipd_kill "$RCONF"

# replica_gone: true when the primary walshipd has no streaming replica.
replica_gone() {
	! peers_streaming "$PCONF"
}
# segment_advanced: true once the primary writes a segment after $seg_at_kill.
segment_advanced() {
	[[ "$(pg_segment_name "$NS_P" "$PG_PORT")" != "$seg_at_kill" ]]
}
# pgbench_done: true once the background pgbench has exited.
pgbench_done() {
	! pid_alive "$pgbench_pid"
}

wait_for 20 "the primary walshipd to notice the replica is gone" replica_gone
wait_for 30 "PostgreSQL to complete a segment while the replica is down" segment_advanced
log "restarting the replica walshipd"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 30

wait_for 60 "pgbench to finish" pgbench_done
rc=0
wait "$pgbench_pid" || rc=$?
((rc == 0)) || { tail -n 20 "$TEST_DIR/pgbench-run.out"; fail "pgbench exited $rc"; }

final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 90
log "standby replayed $(pg_replay_lsn "$NS_R1" "$PG_PORT") >= $final"
assert_no_gap "$RARCHIVE"
assert_same_data "$NS_P" "$PG_PORT" "$NS_R1" "$PG_PORT"
log "PASS"
