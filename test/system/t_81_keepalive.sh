#!/bin/bash
# A stuck peer is detected by keepalives with a configurable timeout (issue 3, part 4):
# a replica walshipd frozen with SIGSTOP keeps its TCP connection open but sends nothing;
# the primary closes it after keepalive_timeout and says why; once thawed, the replica
# reconnects by itself and pushes are acknowledged again.  A quiet but healthy link, in
# contrast, stays up: PINGs keep it alive across several timeouts.  So does a link whose
# two ends were both held up for longer than the timeout (both daemons stopped, as when
# the host is starved): a stall of the judge's own event loop is not the peer's silence
# (the listening clock, daemon/common/clock.h).  A reload of keepalive_timeout reaches
# the connection's TCP_USER_TIMEOUT on both ends (the kernel's limit for unacknowledged
# data, which keepalive_timeout raises past 30 s).
# test-early (about 19 s here, 3 s of it CPU: mostly waiting, so started among the heavy tests, not at the end)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
PRIMARY_CONF_EXTRA=(keepalive_interval=300ms keepalive_timeout=2s push_timeout=5s)
REPLICA_CONF_EXTRA=(keepalive_interval=300ms keepalive_timeout=2s)
walship_daemons_up
walship_primary_up 1
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
cp "$PDATA/pg_wal/$seg" "$SCRATCH/$seg"
chown postgres:postgres "$SCRATCH/$seg"

peer_reconnects() {
	walship_status "$RCONF" --json | jq -r '.peers[0].reconnects'
}

log "a quiet link survives: nothing to ship for 3 timeouts, the connection stays"
before=$(peer_reconnects)
deadline=$((SECONDS + 6))
while ((SECONDS < deadline)); do
	peers_streaming "$PCONF" || fail "the quiet replica was disconnected"
	ws_sleep 0.5
done
assert_eq "$before" "$(peer_reconnects)" "reconnects of a quiet, healthy replica"
timed_out="nothing received for .* (keepalive_timeout)"
! grep -q "$timed_out" "$TEST_DIR/ws-primary.log" || fail "a healthy peer timed out"

log "both ends held up for longer than keepalive_timeout: the link stays"
ppid=${WS_DAEMON_PID[$PCONF]}
rpid=${WS_DAEMON_PID[$RCONF]}
kill -STOP "$ppid" "$rpid"
ws_sleep 3 # the condition, not a measurement: 3 s > keepalive_timeout (2 s)
kill -CONT "$ppid" "$rpid"
stall_logged() {
	grep -q "the event loop did not run for" "$TEST_DIR/ws-primary.log" &&
		grep -q "the event loop did not run for" "$TEST_DIR/ws-r1.log"
}
wait_for 10 "both daemons to log their stall" stall_logged
deadline=$((SECONDS + 3)) # longer than keepalive_timeout after the thaw
while ((SECONDS < deadline)); do
	peers_streaming "$PCONF" || fail "the link was dropped after the stall"
	ws_sleep 0.5
done
assert_eq "$before" "$(peer_reconnects)" "reconnects after both ends stalled"
! grep -q "$timed_out" "$TEST_DIR/ws-primary.log" "$TEST_DIR/ws-r1.log" ||
	fail "a stall of both ends was taken for a peer's silence"

log "a frozen replica is dropped after keepalive_timeout"
kill -STOP "$rpid"
no_replica_streaming() {
	! peers_streaming "$PCONF"
}
wait_for 10 "the primary to drop the frozen replica" no_replica_streaming
grep -q "nothing received for .* ms (keepalive_timeout)" "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not say why it closed the connection"
kill -CONT "$rpid"

log "thawed, it reconnects by itself and takes pushes again"
wait_replica_streaming "$PCONF" 20
assert_exit 0 "push after the replica is back" walship_push_as_postgres "$PCONF" "$SCRATCH/$seg"
assert_file_identical "$SCRATCH/$seg" "$RARCHIVE/$seg"

log "a reload of keepalive_timeout reaches the TCP_USER_TIMEOUT of the connection up"
user_timeout_is() { [[ "$(tcp_user_timeouts "$1" "$WALSHIP_PORT")" == "$2" ]]; }
# 2 s is below the least the kernel is given, 30 s (conn_set_user_timeout()); 45 s is not.
user_timeout_is "$ppid" 30000 || fail "the primary's TCP_USER_TIMEOUT is not 30000 ms"
user_timeout_is "$rpid" 30000 || fail "the replica's TCP_USER_TIMEOUT is not 30000 ms"
sed -i 's/^keepalive_timeout = .*/keepalive_timeout = 45s/' "$PCONF" "$RCONF"
kill -HUP "$ppid" "$rpid"
wait_for 10 "the primary's connection to ws-r1 to take 45 s" user_timeout_is "$ppid" 45000
wait_for 10 "the replica's link to take 45 s" user_timeout_is "$rpid" 45000
peers_streaming "$PCONF" || fail "the replica was disconnected by the reload"
log "PASS"
