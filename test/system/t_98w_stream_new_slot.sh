#!/bin/bash
# t_98w: a slot made anew while a commit waits for walship (the primary walshipd starting
# afresh on a server whose slot is gone and made again: a promoted standby's, one dropped,
# one a failover manager makes, or one walshipd made before it restarted).  RESERVE_WAL
# puts a new slot at the last checkpoint, where walship never reported anything;
# streaming from there, the first report would acknowledge a commit waiting on WAL before
# it without that WAL on any replica.  Here:
#   - the replica holds the stream up to E; the primary walshipd is stopped and its slot
#     dropped; a synchronous COMMIT waits (its WAL in segment S), then WAL moves on two
#     segments and a checkpoint puts the redo point after S, where the slot is made again
#     (pg_create_physical_replication_slot(..., true));
#   - the primary walshipd's record of where it reported (spool_dir/reported, which t_98x
#     tests) names WAL the server no longer has (written by hand here, at 0/100: before
#     the server's first segment), as the record of a walshipd restarted after the
#     server removed its WAL: the primary walshipd started again says so and sets it
#     aside, as it does without a record (a walshipd started afresh on another host);
#   - it then starts where the replica's WAL ends, and the waiting COMMIT returns only
#     with S stored on the replica, equal to pg_wal's (archive_command archives nowhere:
#     the stream is the only way S reaches the replica).
# The build before started at the slot's position: the COMMIT returned and the replica
# never had S.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
stream_up_holding t98w

walshipd_stop "$PCONF"
log "primary walshipd stopped at $HELD"
slot_made_anew_under_waiting_commit t98w
[[ ! -f "$RARCHIVE/$S" ]] || fail "the replica holds $S already"
sysid=$(psql_at "$NS_P" "$PG_PORT" "select system_identifier from pg_control_system()")
stream_record_line "$sysid" 1 0/100 >"$TEST_DIR/ws-primary/spool/reported"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary-2.log"
waiting_commit_returns_with_s
grep -q 'walship reported WAL flushed up to 0/100 on timeline 1 before it restarted, but streaming cannot start there: the server no longer has it' \
	"$TEST_DIR/ws-primary-2.log" || fail "the primary walshipd did not set its record aside"
grep 'the replicas hold WAL up to' "$TEST_DIR/ws-primary-2.log" ||
	fail "the primary walshipd did not start where the replica's WAL ends"
log "ok: the COMMIT waiting on $S returned with $S stored on the replica, equal to pg_wal's"
ws_check_daemons
log "PASS"
