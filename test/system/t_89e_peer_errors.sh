#!/bin/bash
# Errors are said to the peer (issue 11, defect 9; docs/protocol.md "Other protocol
# errors"): a HELLO of another protocol version is answered ERROR VERSION, a frame with a
# bad payload CRC ERROR CHECKSUM, garbage after the handshake ERROR PROTOCOL, each before
# the connection is closed, on both sides (fake replicas at the primary, a fake primary
# at a replica).  The receiving side logs the reason: a replica that finds a corrupt frame
# from the real primary tells it, and the primary logs the replica's reason.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

FAKE=$WS_ROOT/build/helpers/fake_peer
ws_setup
[[ -x "$FAKE" ]] || skip "$FAKE not built: run make"
walship_daemons_up
PLOG=$TEST_DIR/ws-primary.log

# fake NAME STEP...: a fake replica at the primary, run from the replica's host; its
# stdout (the ERROR it got) in $TEST_DIR/NAME.out.
fake() {
	local name=$1
	shift
	local rc=0
	in_ns "$NS_R1" timeout 30 "$FAKE" --connect "$ADDR_P:$WALSHIP_PORT" --name "$name" \
		--timeout 10 "$@" >"$TEST_DIR/$name.out" 2>"$TEST_DIR/$name.err" || rc=$?
	cat "$TEST_DIR/$name.out" "$TEST_DIR/$name.err"
	((rc == 0)) || fail "fake peer $name: $* exited with $rc"
}

log "a replica of protocol version 1 is answered ERROR VERSION"
fake fp-v1 --version 1 hello-replica expect-error VERSION
grep -q "version 1 is not supported" "$TEST_DIR/fp-v1.out" ||
	fail "the ERROR VERSION does not name the version: $(cat "$TEST_DIR/fp-v1.out")"
grep -q "refusing replica connection from .*version 1 is not supported" "$PLOG" ||
	fail "the primary did not log the version it refused"
! grep -q "malformed HELLO" "$PLOG" || fail "the primary logged a version mismatch as malformed"

log "a frame with a bad payload CRC is answered ERROR CHECKSUM"
fake fp-crc hello-replica have read-hello bad-crc expect-error CHECKSUM

log "garbage after the handshake is answered ERROR PROTOCOL"
fake fp-garbage hello-replica have read-hello garbage 4096 expect-error PROTOCOL

log "a frame not allowed in the handshake is answered ERROR PROTOCOL"
fake fp-order have expect-error PROTOCOL

peers_streaming "$PCONF" || fail "the real replica lost its connection"

log "a fake primary: the replica answers ERROR VERSION, CHECKSUM and PROTOCOL"
R2CONF=$TEST_DIR/ws-r2/walship.conf
fake_port=$((WALSHIP_PORT + 1))
mkdir -p "$TEST_DIR/ws-r2"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P" "upstream=$ADDR_P:$fake_port" \
	reconnect_min=100ms reconnect_max=200ms
R2LOG=$TEST_DIR/ws-r2.log
# fake_primary NAME STEP...: a fake primary the replica ws-r2 connects to.
fake_primary() {
	local name=$1
	shift
	local rc=0
	in_ns "$NS_P" timeout 30 "$FAKE" --listen "$ADDR_P:$fake_port" --name "$name" \
		--timeout 10 "$@" >"$TEST_DIR/$name.out" 2>"$TEST_DIR/$name.err" || rc=$?
	cat "$TEST_DIR/$name.out" "$TEST_DIR/$name.err"
	((rc == 0)) || fail "fake primary $name: $* exited with $rc"
}
walshipd_start "$NS_R1" "$R2CONF" "$R2LOG"
fake_primary fpp-v99 --version 99 read-hello hello-primary expect-error VERSION
fake_primary fpp-crc read-hello hello-primary bad-crc expect-error CHECKSUM
fake_primary fpp-garbage read-hello hello-primary garbage 4096 expect-error PROTOCOL
walshipd_stop "$R2CONF"

log "the real pair: a corrupt frame from the primary; the primary logs the replica's reason"
# A relay in the replica's host flips one byte of the primary's stream (inside the HELLO
# it answers with); the replica tells the primary, which logs why.
walshipd_stop "$RCONF"
relay_port=$((WALSHIP_PORT + 2))
bg_start "$TEST_DIR/relay.log" ip netns exec "$NS_R1" "$WS_ROOT/build/helpers/flip_relay" \
	"$ADDR_R1:$relay_port" "$ADDR_P:$WALSHIP_PORT" 20
sed -i "s/^upstream = .*/upstream = $ADDR_R1:$relay_port/" "$RCONF"
wait_for 10 "the relay to listen" grep -q listening "$TEST_DIR/relay.log"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_for 15 "the primary to log the replica's reason" \
	grep -q 'replica "ws-r1" reported an error: .*checksum' "$PLOG"
wait_replica_streaming "$PCONF" 20
log "PASS"
