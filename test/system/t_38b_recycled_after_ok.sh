#!/bin/bash
# t_38b: a pushed segment recycled by PostgreSQL right after its push was answered does not
# reach a lagging replica with the new bytes.  With sync_replicas = 1, a push is answered
# once the fast replica has the segment and the spool holds it for the slow one (the link
# to it throttled, so its transfer is still under way).  PostgreSQL may then recycle the
# file (the same inode, written over); here it is written over in place at once.  The slow
# replica must still store the segment as it was pushed: the rest of its transfer is read
# from the spool's copy.  On the build before this test (4663b17) it read the recycled file
# and stored the segment with those bytes after its first 3 MiB: pages whose address does
# not follow read as the tail after the end of WAL, as in a segment switched early.
# Then the same after a push that failed first (ws-r1 away, ws-r2 slow: a timeout) and was
# answered OK when tried again: the failed push's transfer to ws-r2 read the recycled
# file on the build before this one (it stored the segment with other bytes).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds tc
ws_two_replicas_up
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH" && chown postgres:postgres "$SCRATCH"
pg_make_segments 2 "$SCRATCH"
seg=${SEGS[0]}
seg2=${SEGS[1]}
cp "$SCRATCH/$seg" "$TEST_DIR/original"
cp "$SCRATCH/$seg2" "$TEST_DIR/original2"

log "throttling the link to ws-r2: tbf rate 4mbit (16 MiB take over 30 s)"
tc -n "$NS_P" qdisc add dev vr2 root tbf rate 4mbit burst 32kbit latency 400ms ||
	skip "tc cannot add a tbf qdisc here"
run_capture "$TEST_DIR/push.out" walship_push_as_postgres "$PCONF" "$SCRATCH/$seg"
assert_eq 0 "$RC" "exit status of the push of $seg ($(cat "$TEST_DIR/push.out"))"
# Recycled at once: the same inode written over, as PostgreSQL reuses a segment's file.
dd if=/dev/urandom of="$SCRATCH/$seg" bs=1M count=16 conv=notrunc status=none
[[ ! -f "$TEST_DIR/ws-r2/archive/$seg" ]] ||
	fail "test: ws-r2 had $seg before the push was answered; nothing was left to read"
log "ok: the push was answered with ws-r2 still receiving $seg; the file written over"
tc -n "$NS_P" qdisc del dev vr2 root
wait_for 60 "ws-r2 to store $seg" test -f "$TEST_DIR/ws-r2/archive/$seg"
cmp -s "$TEST_DIR/ws-r2/archive/$seg" "$TEST_DIR/original" ||
	fail "ws-r2 stored $seg with other bytes than were pushed"
assert_file_identical "$TEST_DIR/original" "$TEST_DIR/ws-r1/archive/$seg"
log "ok: both replicas hold $seg as it was pushed"

log "a push that failed, tried again and answered: the failed one's transfer does not read the recycled file either"
# ws-r1 away and ws-r2 slow: the first push of the next segment times out, its transfer
# to ws-r2 still under way.  ws-r1 back, the archiver's retry is answered OK (the spool
# holds the file for ws-r2), and PostgreSQL recycles the file.  ws-r2's transfer of the
# failed push read the recycled bytes on the build before (only the answered push's
# transfers were moved to the spool's copy).
sed -i 's/^push_timeout = .*//' "$PCONF"
echo "push_timeout = 4s" >>"$PCONF"
kill -HUP "${WS_DAEMON_PID[$PCONF]}"
wait_for 10 "the reload" grep -q 'received SIGHUP, reloading' "$TEST_DIR/ws-primary.log"
walshipd_stop "$R1CONF"
tc -n "$NS_P" qdisc add dev vr2 root tbf rate 4mbit burst 32kbit latency 400ms
run_capture "$TEST_DIR/push2a.out" walship_push_as_postgres "$PCONF" "$SCRATCH/$seg2"
((RC != 0)) || fail "the push of $seg2 with ws-r1 away and ws-r2 slow succeeded: $(cat "$TEST_DIR/push2a.out")"
log "ok: the first push failed: $(tail -n 1 "$TEST_DIR/push2a.out")"
walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
wait_for 20 "both replicas streaming" peers_streaming_are "$PCONF" 2
run_capture "$TEST_DIR/push2b.out" walship_push_as_postgres "$PCONF" "$SCRATCH/$seg2"
assert_eq 0 "$RC" "exit status of the retried push of $seg2 ($(cat "$TEST_DIR/push2b.out"))"
dd if=/dev/urandom of="$SCRATCH/$seg2" bs=1M count=16 conv=notrunc status=none
[[ ! -f "$TEST_DIR/ws-r2/archive/$seg2" ]] ||
	fail "test: ws-r2 had $seg2 before the retry was answered; nothing was left to read"
tc -n "$NS_P" qdisc del dev vr2 root
wait_for 60 "ws-r2 to store $seg2" test -f "$TEST_DIR/ws-r2/archive/$seg2"
cmp -s "$TEST_DIR/ws-r2/archive/$seg2" "$TEST_DIR/original2" ||
	fail "ws-r2 stored $seg2 with other bytes than were pushed"
log "ok: ws-r2 holds $seg2 as it was pushed"
log "PASS"
