#!/bin/bash
# SIGTERM drains in-flight acknowledgements within a bound (issue 3, part 4): a push in
# flight on a slow link when the primary's walshipd gets SIGTERM still completes and is
# acknowledged (exit 0), the file is durable on the replica, and the daemon exits cleanly
# right after.  (The replica's drain, which waits for the files it has whole and their
# ACKs, is not tested: its window is one fsync.)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_daemons_up
walship_primary_up 1
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
cp "$PDATA/pg_wal/$seg" "$SCRATCH/$seg.copy"
# A different, valid name is not possible (page addresses), so use a fresh replica
# archive: PostgreSQL already shipped $seg through walship; remove it there.
wait_archived "$seg"
rm -f "$RARCHIVE/$seg"
mkdir -p "$SCRATCH/push"
cp "$SCRATCH/$seg.copy" "$SCRATCH/push/$seg"
chown -R postgres:postgres "$SCRATCH"

log "a slow link: 16 MiB take about 1.5 s (tbf at 80 Mbit/s)"
in_ns "$NS_R1" tc qdisc add dev eth0 root tbf rate 80mbit burst 64kb latency 400ms
in_ns "$NS_P" tc qdisc add dev vr1 root tbf rate 80mbit burst 64kb latency 400ms

incoming_busy() {
	[[ -n "$(ls -A "$RARCHIVE/.incoming")" ]]
}
bg_start "$TEST_DIR/push.out" runuser -u postgres -- "$WALSHIP" push -c "$PCONF" "$SCRATCH/push/$seg"
push_pid=$BG_PID
wait_for 20 "the replica to start receiving $seg" incoming_busy

log "SIGTERM to the primary's walshipd while $seg is in flight"
walshipd_stop "$PCONF"
wait "$push_pid" && rc=0 || rc=$?
assert_eq 0 "$rc" "exit code of the push in flight at SIGTERM ($(cat "$TEST_DIR/push.out"))"
assert_file_identical "$SCRATCH/$seg.copy" "$RARCHIVE/$seg"
grep -q "walshipd stopped" "$TEST_DIR/ws-primary.log" || fail "the primary did not stop cleanly"
! grep -q "acknowledgements still outstanding" "$TEST_DIR/ws-primary.log" ||
	fail "the primary gave up draining"
log "PASS"
