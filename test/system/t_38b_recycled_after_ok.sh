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
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds tc
ws_two_replicas_up
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH" && chown postgres:postgres "$SCRATCH"
pg_make_segments 1 "$SCRATCH"
seg=${SEGS[0]}
cp "$SCRATCH/$seg" "$TEST_DIR/original"

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
log "PASS"
