#!/bin/bash
# t_98h: the replica's disk dies in the middle of a streamed segment (issue 13).  walship,
# the stream as its only source (archive_command = /bin/true), is PostgreSQL's synchronous
# standby; a client inserts numbered rows, one commit each.  The replica's archive is an
# ext4 image whose journal commits only when something on it is fsynced; once commits
# flow, its file system is shut down (power_cut, test/helpers/fs_shutdown.c: every
# operation fails with EIO from then on, and what its journal did not commit is lost).
# (Its direct writes reach the image whether synced or not: the loop device has no
# volatile cache, so a missing RWF_DSYNC would not show here.)
# - The replica cannot store the segment beyond the bytes it acknowledged: it says so,
#   counts an I/O error, shows it, and never removes those bytes; commits wait (SyncRep),
#   and the flush position PostgreSQL is told stays where it was; it reconnects after a
#   backoff of a second or more, not at once;
# - "repaired" (the replica walshipd stopped, the file system unmounted and mounted again,
#   the walshipd started), the replica keeps the segment's durable prefix, which holds
#   every byte PostgreSQL was told was flushed, and resumes it: the commits go on, and the
#   stored segments equal pg_wal's up to PostgreSQL's flush position.
# test-early (about 27 s here, 8 s of it CPU: mostly waiting, so started among the heavy tests, not at the end)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
archive_on_ext4_image
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up on
RARCHIVE=$MNT/archive
psql_at "$NS_P" "$PG_PORT" "create table t (i int primary key, pad text)"

# The client: one commit per row ("committed N" once row N's commit returned).
ROWS=3000
rows_client_start "$ROWS"
# reported_flush: the flush position PostgreSQL holds for walship (pg_stat_replication).
reported_flush() {
	psql_at "$NS_P" "$PG_PORT" "select flush_lsn from pg_stat_replication
		where application_name = '$(conf_get "$PCONF" node_name)'"
}

wait_for 60 "200 commits" committed_at_least 200
log "$(committed) commits returned; the replica's file system dies"
power_cut "$MNT"
wait_for 30 "a commit waiting for the synchronous standby" sync_waiters
wait_for 30 "the replica to say it could not store the segment" grep -q \
	'could not store ".*" beyond its [0-9]* bytes acknowledged durable' "$TEST_DIR/ws-r1.log"
log "ok: $(grep -m1 -o 'could not store ".*" beyond its [0-9]* bytes acknowledged durable' \
	"$TEST_DIR/ws-r1.log")"
(($(status_counter "$RCONF" io_errors) > 0)) || fail "the replica counted no I/O error"
# Commits wait: what PostgreSQL was told is flushed is what the dead disk holds.
stalled=$(committed)
flush=$(reported_flush)
wait_for 30 "the primary to send the segment again and the replica to refuse it" grep -q \
	'refused ".*": ' "$TEST_DIR/ws-r1.log"
[[ "$(reported_flush)" == "$flush" ]] ||
	fail "the flush position reported moved from $flush to $(reported_flush) on a dead disk"
# The link closed for the disk's error: the replica reconnects after the I/O backoff (1 s
# and more), not at reconnect_min (100 ms here), to be sent the same file and fail again.
wait_for 30 "the replica to back off before it reconnects" grep -q 	'reconnecting in [0-9]\{4,\} ms: a file could not be stored here' "$TEST_DIR/ws-r1.log"
log "ok: commits wait at row $stalled; flush position reported $flush"

# The repair: the device's content (what the journal committed before the failure,
# ext4_image_mount) mounted again, as after a power cut.
log "repair: the replica walshipd stopped, the file system mounted again"
walshipd_stop "$RCONF"
ext4_image_remount "$TEST_DIR/archive.img" "$MNT"
seg=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$flush')")
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-again.log"
kept=$(grep -o "kept partial file \"$seg\.[0-9]*\": [0-9]* of" "$TEST_DIR/ws-r1-again.log" |
	head -n 1 | grep -o '[0-9]* of$' | cut -d' ' -f1)
[[ -n "$kept" ]] || fail "the replica kept no durable prefix of $seg after the repair"
start=$(($(lsn_to_int "$flush") - $(lsn_to_int "$flush") % (16 * 1024 * 1024)))
((start + kept >= $(lsn_to_int "$flush"))) ||
	fail "$seg kept to $((start + kept)), short of the flush position reported, $flush"
log "ok: $seg kept with $kept durable bytes, to $((start + kept)) >= $(lsn_to_int "$flush")"

wait_replica_streaming "$PCONF" 20
wait_for 60 "commits to go on after the repair" committed_at_least $((stalled + 200))
wait "$CLIENT" || fail "the client failed"
assert_eq "$ROWS" "$(committed)" "commits returned"
# The segment that failed, completed and stored; the next one streamed in part.
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
psql_at "$NS_P" "$PG_PORT" "insert into t values ($((ROWS + 1)), 'after the switch')"
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"
assert_stream_equals_pg_wal "$final"
log "PASS"
