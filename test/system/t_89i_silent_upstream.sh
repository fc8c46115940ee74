#!/bin/bash
# An upstream that takes the replica's connection, reads its HELLO and answers nothing (a
# walshipd frozen, a listener that is not walshipd): the replica closes the connection
# after connect_timeout (5 s in the tests' configs), says why, and connects again later.
# Before, nothing timed the handshake on the replica's side (its keepalive runs once the
# link is established): it waited for ever, receiving nothing.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
replica_for_fake_primary
timeout_ms=$(($(conf_get "$RCONF" connect_timeout | tr -dc 0-9) * 1000))

log "a fake primary reads the replica's HELLO and answers nothing"
bg_start "$TEST_DIR/fake.out" ip netns exec "$NS_P" timeout 40 "$FAKE" \
	--listen "$ADDR_P:$WALSHIP_PORT" --name fake-primary --timeout 20 read-hello expect-close
fake_pid=$BG_PID
rc=0
wait "$fake_pid" || rc=$?
cat "$TEST_DIR/fake.out"
((rc == 0)) || fail "the replica did not close the silent connection (fake_peer exit $rc)"
grep -q "closing connection to primary at .*: no handshake within $timeout_ms ms" \
	"$TEST_DIR/ws-r1.log" || fail "the replica did not log why it closed the connection"
log "ok: closed after connect_timeout ($timeout_ms ms)"
ws_check_daemons
log "PASS"
