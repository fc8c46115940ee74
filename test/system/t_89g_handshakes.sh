#!/bin/bash
# Issue 11, defect 11: connections still in the handshake do not count against
# max_senders.  With max_senders = 1, nine sockets that connect and say nothing used to
# lock the real replica out (`too many replicas connected`) until connect_timeout closed
# them.  Now:
# - ws-r1 connects and streams while the nine silent connections are still open;
# - max_senders still bounds the replicas past their HELLO: a second replica
#   (build/helpers/fake_peer) is refused with ERROR TOO_MANY.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
FAKE=$WS_ROOT/build/helpers/fake_peer
[[ -x "$FAKE" ]] || skip "build/helpers/fake_peer is not built (make all)"
# connect_timeout outlasts the test: the silent connections stay open throughout.
PRIMARY_CONF_EXTRA=(max_senders=1 connect_timeout=60s)
walship_daemons_up
PLOG=$TEST_DIR/ws-primary.log
walshipd_stop "$RCONF"

handshakes() {
	walship_status "$PCONF" --json | jq '[.peers[] | select(.state == "handshake")] | length'
}
some_handshakes() {
	(($(handshakes) >= 1))
}
log "nine connections that say nothing"
bg_start "$TEST_DIR/silent.out" ip netns exec "$NS_R1" bash -c \
	"for i in 1 2 3 4 5 6 7 8 9; do exec {fd}<>/dev/tcp/$ADDR_P/$WALSHIP_PORT; done
	echo open; sleep 60"
wait_for 10 "nine connections made" grep -q open "$TEST_DIR/silent.out"
wait_for 10 "the primary to see them" some_handshakes

log "ws-r1 connects while they are open"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 10
assert_eq 9 "$(handshakes)" "connections still in the handshake"
! grep -q 'too many replicas connected' "$PLOG" ||
	fail "a connection was refused for max_senders: $(grep -m1 'too many' "$PLOG")"
log "ok: ws-r1 streams beside nine silent connections"

log "max_senders = 1 still bounds the replicas past their HELLO"
run_capture "$TEST_DIR/fake.out" in_ns "$NS_R1" "$FAKE" --connect "$ADDR_P:$WALSHIP_PORT" \
	--timeout 10 --name fake-2 hello-replica have expect-error TOO_MANY
((RC == 0)) || fail "a second replica was not refused: $(cat "$TEST_DIR/fake.out")"
log "ok: $(grep -m1 '^error' "$TEST_DIR/fake.out")"
peers_streaming "$PCONF" || fail "ws-r1 lost its connection"
log "PASS"
