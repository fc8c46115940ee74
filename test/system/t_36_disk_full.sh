#!/bin/bash
# Issue 3, fault injection: the replica's archive file system is full.  archive_dir lives
# on a small loop-mounted ext4 image; a filler file takes all but a few MiB.  Then:
# - pushes fail with a clear reason (ENOSPC: "No space left on device" in walship push's
#   message, in PostgreSQL's log) and the replica counts an I/O error and shows it;
# - nothing incomplete or invalid appears under a final name, nothing in .incoming stays;
# - once the filler is deleted, everything flows: the standby catches up, no gap, and
#   check_invariants holds.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
archive_on_ext4_image

# shellcheck disable=SC2034  # read by lib.sh
PG_ARCHIVE_TIMEOUT=0
PRIMARY_CONF_EXTRA=(push_timeout=5s)
inv_topology_up 1
RARCHIVE=$MNT/archive

lsn=$(pg_finish_load "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$PG_PORT" "$lsn" 60
stored_before=$(find "$RARCHIVE" -maxdepth 1 -type f | wc -l)

fs_fill_but 4
log "$stored_before file(s) stored"

# io_errors REPLICA: the replica's I/O error counter.
io_errors_seen() {
	(($(status_counter "$RCONF" io_errors) > 0))
}
enospc_logged() {
	grep -q 'could not archive.*No space left on device' "$PDATA.log"
}
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
log "completed $seg; its push must fail"
wait_for 30 "the replica to count an I/O error" io_errors_seen
wait_for 30 "walship push to fail with ENOSPC in PostgreSQL's log" enospc_logged
log "ok: $(grep -m1 -o 'could not archive.*No space left on device.*' "$PDATA.log")"
last_error=$(walship_status "$RCONF" --json | jq -r .last_error)
[[ "$last_error" == *"No space left on device"* ]] ||
	fail "the replica's last_error does not name ENOSPC: '$last_error'"
log "ok: the replica shows last_error: $last_error"
[[ ! -e "$RARCHIVE/$seg" ]] || fail "$seg is under its final name although the disk is full"
wal_waits() {
	[[ -e "$PDATA/pg_wal/archive_status/$seg.ready" ]]
}
wait_for 10 "PostgreSQL to keep $seg as .ready" wal_waits

# Nothing corrupt under a final name; nothing left in .incoming.
inv_check_stored "$RCONF"
log "ok: $INV_STORED stored file(s) valid while the disk is full"
incoming_empty() {
	[[ -z "$(find "$RARCHIVE/.incoming" -mindepth 1 -print -quit)" ]]
}
wait_for 10 "the replica to remove its temporary file" incoming_empty

log "freeing space: deleting the filler"
rm -f "$MNT/filler"
pgbench_at "$NS_P" "$PG_PORT" -n -c 2 -t 500 >"$TEST_DIR/pgbench-run.out" 2>&1 ||
	{ tail -n 20 "$TEST_DIR/pgbench-run.out"; fail "pgbench failed"; }
final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 120
wait_archived "$seg" 30
assert_no_gap "$RARCHIVE"
check_invariants -P "$PCONF" -R "$RCONF" -D "$NS_P $PG_PORT $NS_R1 $PG_PORT"
log "PASS"
