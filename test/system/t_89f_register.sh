#!/bin/bash
# Issue 11, defect 10 and the impostor note: who gets registered, and who may use a name.
# Without TLS or access rules anyone who reaches the port could register a replica with
# its first HAVE, even if it broke the protocol right after; every later file was then
# held for it.  Now (build/helpers/fake_peer as the hostile peer):
# - HELLO and HAVE followed by garbage, or by silence, register nothing: the handshake
#   completes only when the replica answers a PING sent after its HAVE;
# - a peer announcing the name of ws-r1 while ws-r1 is connected and alive is refused with
#   ERROR NAME (docs/protocol.md); ws-r1 keeps its connection;
# - registrations are bounded by max_registered: a new replica past it is refused with
#   ERROR TOO_MANY naming the bound (and backs off, doubling, between its attempts), and
#   is registered once a registration is dropped.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
FAKE=$WS_ROOT/build/helpers/fake_peer
[[ -x "$FAKE" ]] || skip "build/helpers/fake_peer is not built (make all)"
PRIMARY_CONF_EXTRA=(max_registered=1)
walship_daemons_up
PLOG=$TEST_DIR/ws-primary.log
SPOOL=$TEST_DIR/ws-primary/spool
assert_eq 1 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"

# fake ARGS...: fake_peer connecting from the replica host to the primary's port.
fake() {
	in_ns "$NS_R1" "$FAKE" --connect "$ADDR_P:$WALSHIP_PORT" --timeout 10 "$@"
}
r1_field() {
	walship_status "$PCONF" --json | jq -r --arg f "$1" '.peers[] | select(.name == "ws-r1") | .[$f]'
}
not_registered() {
	local name=$1
	assert_eq 1 "$(status_counter "$PCONF" registered_replicas)" \
		"registered replicas after $name"
	[[ ! -e "$SPOOL/replicas/$name" ]] || fail "$name was registered ($SPOOL/replicas/$name)"
	! grep -q "replica \"$name\" registered" "$PLOG" || fail "the primary registered $name"
}

log "HELLO and HAVE, then garbage"
run_capture "$TEST_DIR/fake1.out" fake --name fake-garbage hello-replica have garbage 256 \
	expect-close
((RC == 0)) || fail "fake_peer (garbage) failed: $(cat "$TEST_DIR/fake1.out")"
not_registered fake-garbage
log "ok: not registered"

log "HELLO and HAVE, then silence"
run_capture "$TEST_DIR/fake2.out" fake --name fake-silent hello-replica have hold 1
((RC == 0)) || fail "fake_peer (silent) failed: $(cat "$TEST_DIR/fake2.out")"
not_registered fake-silent
log "ok: not registered"

log "an impostor announces ws-r1's name while ws-r1 is connected"
since=$(r1_field connected_since)
run_capture "$TEST_DIR/fake3.out" fake --name ws-r1 hello-replica have expect-error NAME
((RC == 0)) || fail "the impostor was not refused with ERROR NAME: $(cat "$TEST_DIR/fake3.out")"
log "ok: $(grep -m1 '^error' "$TEST_DIR/fake3.out")"
assert_eq streaming "$(r1_field state)" "ws-r1's state"
assert_eq "$since" "$(r1_field connected_since)" "ws-r1 connected since"
assert_eq 1 "$(grep -c 'connected to primary' "$TEST_DIR/ws-r1.log")" "connections of ws-r1"
! grep -q 'replica "ws-r1" (.*) disconnected' "$PLOG" || fail "ws-r1 was disconnected"

log "max_registered = 1: a second replica is refused until a registration is dropped"
R2CONF=$TEST_DIR/ws-r2/walship.conf
mkdir -p "$TEST_DIR/ws-r2"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P"
walshipd_start "$NS_R1" "$R2CONF" "$TEST_DIR/ws-r2.log"
refused_r2() {
	grep -q 'replica "ws-r2" cannot be registered: 1 replicas are registered (max_registered = 1)' \
		"$PLOG"
}
wait_for 10 "the primary to refuse registering ws-r2" refused_r2
wait_for 10 "ws-r2 to log the refusal" grep -q 'max_registered = 1' "$TEST_DIR/ws-r2.log"
# Refused after the handshake, it backs off as from any failed attempt, doubling up to
# reconnect_max (1 s here): the build before went back to reconnect_min (100 ms) after
# each HELLO and tried ten times a second for as long as the refusal lasted.
backed_off() {
	grep -Eq 'reconnecting in ([5-9][0-9]{2}|[0-9]{4,}) ms: the primary did not take this replica' \
		"$TEST_DIR/ws-r2.log"
}
wait_for 20 "ws-r2 to back off between refused attempts" backed_off
log "ok: $(grep -c 'did not take this replica' "$TEST_DIR/ws-r2.log") refused attempts, waits: $(grep -o 'reconnecting in [0-9]* ms: the primary did not' "$TEST_DIR/ws-r2.log" | awk '{print $3}' | paste -sd' ')"
not_registered ws-r2
walshipd_stop "$RCONF"
assert_exit 0 "drop ws-r1" "$WALSHIP" replica drop -c "$PCONF" ws-r1
r2_streaming() {
	walship_status "$PCONF" --json |
		jq -e '.peers[] | select(.name == "ws-r2" and .state == "streaming")' >/dev/null
}
wait_for 20 "ws-r2 registered and streaming" r2_streaming
assert_eq 1 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"
log "PASS"
