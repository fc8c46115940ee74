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
#   - the primary walshipd started again says it starts where the replica's WAL ends,
#     and the waiting COMMIT returns only with S stored on the replica, equal to pg_wal's
#     (archive_command archives nowhere: the stream is the only way S reaches the
#     replica).
# The build before started at the slot's position: the COMMIT returned and the replica
# never had S.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND="true"
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "alter system set wal_keep_size = '512MB'"
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
psql_at "$NS_P" "$PG_PORT" "create table t98w (i int, pad text)"
psql_at "$NS_P" "$PG_PORT" "insert into t98w select g, repeat('x', 100) from generate_series(1, 2000) g"
held=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $held" replica_holds "$(lsn_to_int "$held")"
RARCHIVE=$TEST_DIR/ws-r1/archive

walshipd_stop "$PCONF"
slot_gone() {
	psql_at "$NS_P" "$PG_PORT" "select pg_drop_replication_slot('walship')" >/dev/null 2>&1 ||
		true
	[[ "$(psql_at "$NS_P" "$PG_PORT" "select count(*) from pg_replication_slots")" == 0 ]]
}
wait_for 20 "walship's slot dropped" slot_gone
log "primary walshipd stopped at $held, its slot dropped"

# A synchronous COMMIT that waits: no synchronous standby is connected.
commit_waiting() {
	WS_PSQL_TIMEOUT=600 psql_at "$NS_P" "$PG_PORT" "insert into t98w values (-1, 'waited')" &&
		echo returned
}
bg_start "$TEST_DIR/commit.out" commit_waiting
commit_pid=$BG_PID
wait_for 30 "the COMMIT to wait for walship" sync_waiters
waited=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
S=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$waited')")
log "a COMMIT waits, its WAL flushed up to $waited (segment $S)"
for _ in 1 2; do
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into t98w select g, repeat('y', 100) from generate_series(1, 500) g" >/dev/null
	psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
done
psql_at "$NS_P" "$PG_PORT" "checkpoint"
redo=$(psql_at "$NS_P" "$PG_PORT" "select redo_lsn from pg_control_checkpoint()")
[[ "$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$redo') > '$S'")" == t ]] ||
	fail "the checkpoint's redo point $redo is not after segment $S"
pid_alive "$commit_pid" || fail "the COMMIT returned with no synchronous standby: $(cat "$TEST_DIR/commit.out")"
[[ ! -f "$RARCHIVE/$S" ]] || fail "the replica holds $S already"
psql_at "$NS_P" "$PG_PORT" "select pg_create_physical_replication_slot('walship', true)" >/dev/null
slot_at=$(psql_at "$NS_P" "$PG_PORT" "select restart_lsn from pg_replication_slots")
log "slot walship made again, at $slot_at (the redo point $redo); primary walshipd started again"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary-2.log"
returned() { ! pid_alive "$commit_pid"; }
wait_for 60 "the waiting COMMIT to return" returned
grep -q '^returned$' "$TEST_DIR/commit.out" || fail "the COMMIT failed: $(cat "$TEST_DIR/commit.out")"
# (the COMMIT returns once its bytes are durable there; the segment's rename follows)
wait_for 30 "the replica to store $S, which the returned COMMIT's WAL (up to $waited) is in" \
	test -f "$RARCHIVE/$S"
assert_file_identical "$PDATA/pg_wal/$S" "$RARCHIVE/$S"
grep 'the replicas hold WAL up to' "$TEST_DIR/ws-primary-2.log" ||
	fail "the primary walshipd did not start where the replica's WAL ends"
log "ok: the COMMIT waiting on $S returned with $S stored on the replica, equal to pg_wal's"
ws_check_daemons
log "PASS"
