#!/bin/bash
# Hostile clients at the primary's port (issue 6): one that connects and says nothing is
# dropped after connect_timeout; one that sends garbage is dropped at its first frame
# header; neither disturbs the replica that is streaming, and both are counted.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
PRIMARY_CONF_EXTRA=(connect_timeout=1s)
walship_daemons_up
refused0=$(status_counter "$PCONF" connections_refused)

log "a client that connects and says nothing"
bg_start "$TEST_DIR/silent.out" ip netns exec "$NS_R1" \
	bash -c "exec 3<>/dev/tcp/$ADDR_P/$WALSHIP_PORT; sleep 30"
wait_for 10 "the primary to drop the silent client" \
	grep -q "closing connection from .*: no handshake within 1000 ms" "$TEST_DIR/ws-primary.log"

log "a client that sends garbage"
head -c 4096 /dev/urandom >"$TEST_DIR/garbage"
ip netns exec "$NS_R1" bash -c "exec 3<>/dev/tcp/$ADDR_P/$WALSHIP_PORT; cat '$TEST_DIR/garbage' >&3; sleep 1" || true
wait_for 10 "the primary to drop the garbage client" \
	grep -qE "invalid frame header from|unexpected|malformed" "$TEST_DIR/ws-primary.log"

refused1=$(status_counter "$PCONF" connections_refused)
((refused1 > refused0)) || fail "the silent client was not counted ($refused0 -> $refused1)"
peers_streaming "$PCONF" || fail "the replica lost its connection"
log "PASS"
