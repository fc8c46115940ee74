#!/bin/bash
# t_38c: a segment shipped ahead of the archiver (push_ahead), answered "shipped ahead"
# when its own push comes, and recycled by PostgreSQL right after, does not reach a
# lagging replica with the new bytes.  Two replicas, sync_replicas = 1, the link to ws-r2
# throttled; in a directory laid out as pg_wal, segments X and X+1 with X+1 ready: the
# push of X passes X+1 ahead, which is safe (ws-r1 holds it, the spool holds it for ws-r2)
# before its own push, answered from that.  X+1 is then written over in place, as
# PostgreSQL reuses a segment's file; ws-r2, still to be sent it, must store it as it was.
# On the build before this test, the shipping ahead went on reading the file in pg_wal
# once safe, and ws-r2 stored X+1 with the new bytes (or refused it as invalid).  The
# same as t_38b, for a push answered from its shipping ahead.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds tc
ws_two_replicas_up
SCRATCH=$TEST_DIR/scratch
W=$SCRATCH/pg_wal
mkdir -p "$W/archive_status"
chown -R postgres:postgres "$SCRATCH"
pg_make_segments 2 "$W"
x=${SEGS[0]}
next=${SEGS[1]}
: >"$W/archive_status/$next.ready"
chown -R postgres:postgres "$W"
cp "$W/$next" "$TEST_DIR/original"

log "throttling the link to ws-r2: tbf rate 4mbit (16 MiB take over 30 s)"
tc -n "$NS_P" qdisc add dev vr2 root tbf rate 4mbit burst 32kbit latency 400ms ||
	skip "tc cannot add a tbf qdisc here"
run_capture "$TEST_DIR/push0.out" walship_push_as_postgres "$PCONF" "$W/$x"
assert_eq 0 "$RC" "exit status of the push of $x ($(cat "$TEST_DIR/push0.out"))"
wait_for 30 "$next, shipped ahead, on ws-r1" test -f "$TEST_DIR/ws-r1/archive/$next"
spool_holds_both() { (($(status_counter "$PCONF" spool_files) >= 2)); }
wait_for 30 "the spool to hold $x and $next for ws-r2" spool_holds_both
# Its own push is answered from the shipping ahead once that is safe (ws-r1's ACK, the
# spool's copy for ws-r2).
answered_ahead() {
	run_capture "$TEST_DIR/push1.out" as_postgres "$WALSHIP" push -v -c "$PCONF" "$W/$next"
	((RC == 0)) && grep -q "shipped ahead" "$TEST_DIR/push1.out"
}
wait_for 30 "the push of $next answered from its shipping ahead" answered_ahead
# Recycled at once: the same inode written over, as PostgreSQL reuses a segment's file.
dd if=/dev/urandom of="$W/$next" bs=1M count=16 conv=notrunc status=none
[[ ! -f "$TEST_DIR/ws-r2/archive/$next" ]] ||
	fail "test: ws-r2 had $next before its push was answered; nothing was left to read"
log "ok: $(cat "$TEST_DIR/push1.out"); ws-r2 still to be sent it; the file written over"
tc -n "$NS_P" qdisc del dev vr2 root
wait_for 60 "ws-r2 to store $next" test -f "$TEST_DIR/ws-r2/archive/$next"
cmp -s "$TEST_DIR/ws-r2/archive/$next" "$TEST_DIR/original" ||
	fail "ws-r2 stored $next with other bytes than were shipped"
assert_file_identical "$TEST_DIR/original" "$TEST_DIR/ws-r1/archive/$next"
log "ok: both replicas hold $next as it was shipped ahead"
log "PASS"
