#!/bin/bash
# Restart resumes from durable state (durability rule 6, docs/architecture.md): under pgbench load, SIGKILL the
# replica walshipd, let PostgreSQL complete segments meanwhile, restart it; the standby
# then replays up to the primary's final position, the replica's archive has no gap and the
# data are identical.
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# shellcheck disable=SC2034  # read by lib.sh
PG_ARCHIVE_TIMEOUT=5s
walship_topology_up 2

log "load: pgbench in the background, 150 transactions/s"
load_start "$NS_P" "$PG_PORT" 150

seg_at_kill=$(pg_segment_name "$NS_P" "$PG_PORT")
log "SIGKILL of the replica walshipd while the primary writes $seg_at_kill"
walshipd_kill "$RCONF"

# replica_gone: true when the primary walshipd has no streaming replica.
replica_gone() {
	! peers_streaming "$PCONF"
}
# segment_advanced SEG: true once the primary writes a segment after SEG.
segment_advanced() {
	[[ "$(pg_segment_name "$NS_P" "$PG_PORT")" != "$1" ]]
}
wait_for 20 "the primary walshipd to notice the replica is gone" replica_gone
wait_for 30 "PostgreSQL to complete a segment while the replica is down" \
	segment_advanced "$seg_at_kill"
log "restarting the replica walshipd"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 30
# Shipping goes on under the load: one more segment completed after the restart.
wait_for 30 "PostgreSQL to complete a segment after the restart" \
	segment_advanced "$(pg_segment_name "$NS_P" "$PG_PORT")"
load_stop

final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 90
log "standby replayed $(pg_replay_lsn "$NS_R1" "$PG_PORT") >= $final"
assert_no_gap "$RARCHIVE"
assert_same_data "$NS_P" "$PG_PORT" "$NS_R1" "$PG_PORT"
log "PASS"
