#!/bin/bash
# t_98g: the replica's archive fills up while it streams, as the synchronous standby, with
# the stream as the only source (archive_command = /bin/true) (issue 13).  archive_dir lives
# on a small loop-mounted ext4 image; once streaming, a filler file takes all but 4 MiB,
# less than a segment, while a load of synchronous commits goes on.
# - The replica cannot preallocate a segment's file: it refuses the segment at once, not
#   at its end (which never comes while the commits in it wait), says why (ENOSPC, in its
#   log and its status' last_error) and counts an I/O error;
# - the primary keeps the segment (no archiver would push it again) and tells PostgreSQL
#   only what the replica holds: commits wait (SyncRep), and `walship check` says the
#   replica fails to store files;
# - the primary sends it again after a backoff: while the disk is full, it is refused
#   again; once the filler is deleted, it is stored: the waiting commits return, the load
#   ends, and every stored segment equals pg_wal's byte for byte, without a gap, up to
#   PostgreSQL's flush position.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
archive_on_ext4_image
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up on
RARCHIVE=$MNT/archive

pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
lsn=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $lsn" replica_holds "$(lsn_to_int "$lsn")"

fs_fill_but 4

load_start "$NS_P" "$PG_PORT" 300
io_errors_seen() {
	(($(status_counter "$RCONF" io_errors) > 0))
}
# WAL written faster than the load writes it, by a session that does not wait for the
# replica (synchronous_commit = local): about 5 MB per statement, until the segment after
# the one being streamed cannot be preallocated.
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)"
for ((i = 0; i < 20; i++)); do
	io_errors_seen && break
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into ws_fill select g, repeat('x', 200) from generate_series(1, 20000) g"
done
wait_for 60 "the replica to count an I/O error" io_errors_seen
last_error=$(walship_status "$RCONF" --json | jq -r .last_error)
[[ "$last_error" == *"No space left on device"* ]] ||
	fail "the replica's last_error does not name ENOSPC: '$last_error'"
grep -q 'refused ".*": .*No space left on device' "$TEST_DIR/ws-r1.log" ||
	fail "the replica's log does not say it refused a segment for ENOSPC"
log "ok: the replica refused a segment: $last_error"

# PostgreSQL is told durable only what the replica holds, and the load's commits wait.
wait_for 30 "commits waiting for the replica (SyncRep)" sync_waiters
flush=$(walship_status "$PCONF" --json | jq -r '.peers[0].flush_lsn // "0/0"')
held=0
for f in "$RARCHIVE"/*; do
	name=$(basename "$f")
	[[ "$name" =~ ^[0-9A-F]{24}$ ]] || continue
	cmp -s "$f" "$PDATA/pg_wal/$name" || fail "stored $name differs from pg_wal's while full"
	end=$((((16#${name:8:8} << 8) + 16#${name:16:8} + 1) * 16 * 1024 * 1024))
	((end > held)) && held=$end
done
(($(lsn_to_int "$flush") <= held)) ||
	fail "flush position $flush reported beyond the segments the replica holds ($held)"
log "ok: commits wait; flush position reported $flush, within the $held bytes held"

# `walship check` on the primary host says why commits wait.
check_says_failing() {
	"$WALSHIP" check -B "$PG_BIN" -c "$PCONF" -D "$PDATA" >"$TEST_DIR/check.out" 2>&1 || true
	grep -q '^WARN  synchronous standby .*(1 failing to store files): commits will wait' \
		"$TEST_DIR/check.out"
}
wait_for 30 "walship check to name the failing replica" check_says_failing
log "ok: $(grep -o 'replicas are connected and storing.*' "$TEST_DIR/check.out")"

# Sent again after the primary's backoff while the disk is still full: refused again.
io_errors_twice() {
	(($(status_counter "$RCONF" io_errors) >= 2))
}
wait_for 30 "the segment to be sent again and refused again" io_errors_twice
log "ok: sent again while full, refused again ($(status_counter "$RCONF" io_errors) I/O errors)"

log "freeing space: deleting the filler"
rm -f "$MNT/filler"
lsn=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 120 "the replica to hold up to $lsn, past the full disk" replica_holds \
	"$(lsn_to_int "$lsn")"
grep -q 'sending replica "ws-r1" again what it could not store' "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not say it sent the refused segment again"
if grep -q 'could not archive' "$TEST_DIR/ws-primary.log"; then
	fail "the primary failed a streamed segment: $(grep -m1 'could not archive' \
		"$TEST_DIR/ws-primary.log")"
fi
load_stop
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"
log "ok: streaming went on after the filler was deleted, up to $final"
assert_stream_equals_pg_wal "$final"
log "PASS"
