#!/bin/bash
# A replica whose archive is empty records whose WAL it holds (its store's identity,
# durably) before it acknowledges any of it, streamed segments too: the first PROGRESS of
# the first streamed segment comes after `.walship/system_identifier` is durable, so a
# replica killed then still knows its cluster when it starts again (its HELLO says so, and
# a segment of another system is refused).  Before, the identity was written only when
# that first segment completed: 16 MiB of WAL later, its bytes acknowledged durable (and
# the commits in them released) meanwhile, and a restart in between forgot the cluster.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
replica_for_fake_primary
IDFILE=$TEST_DIR/ws-r1/archive/.walship/system_identifier

X=7713288329218603033
Y=7713288329218603099
MB=$((1024 * 1024))
SEG=$((16 * MB))
A=000000010000000000000002
B=000000010000000000000003

log "a streamed segment of system $X, its first MiB: PROGRESS"
bg_start "$TEST_DIR/fake1.out" ip netns exec "$NS_P" timeout 60 "$FAKE" \
	--listen "$ADDR_P:$WALSHIP_PORT" --name fake-primary --timeout 30 \
	read-hello hello-primary begin-stream 1 "$A" "$SEG" seg-data 1 "$X" 0 "$MB" \
	expect-progress hold 30
wait_for 30 "the replica's PROGRESS" grep -q "^progress 1 " "$TEST_DIR/fake1.out"
cat "$TEST_DIR/fake1.out"
[[ -f "$IDFILE" ]] || fail "bytes of system $X acknowledged durable, and no identity recorded"
grep -q "^$X D110 $SEG 8192$" "$IDFILE" || fail "the store records $(cat "$IDFILE")"

log "killed and started again, the replica still holds system $X"
walshipd_kill "$RCONF"
kill "$BG_PID" 2>/dev/null || true
wait "$BG_PID" 2>/dev/null || true
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
rc=0
ip netns exec "$NS_P" timeout 60 "$FAKE" --listen "$ADDR_P:$WALSHIP_PORT" \
	--name fake-primary --timeout 30 read-hello hello-primary \
	begin-stream 2 "$B" "$SEG" seg-data 2 "$Y" 0 "$MB" expect-ack sysid \
	>"$TEST_DIR/fake2.out" 2>&1 || rc=$?
cat "$TEST_DIR/fake2.out"
((rc == 0)) || fail "the fake primary failed (exit $rc)"
grep -q "HELLO from \"ws-r1\": .*system $X" "$TEST_DIR/fake2.out" ||
	fail "the replica's HELLO does not say system $X"
log "PASS"
