#!/bin/bash
# A stuck peer is detected by keepalives with a configurable timeout (issue 3, part 4):
# a replica walshipd frozen with SIGSTOP keeps its TCP connection open but sends nothing;
# the primary closes it after keepalive_timeout and says why; once thawed, the replica
# reconnects by itself and pushes are acknowledged again.  A quiet but healthy link, in
# contrast, stays up: PINGs keep it alive across several timeouts.
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
! grep -q "keepalive_timeout" "$TEST_DIR/ws-primary.log" || fail "a healthy peer timed out"

log "a frozen replica is dropped after keepalive_timeout"
rpid=${WS_DAEMON_PID[$RCONF]}
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
log "PASS"
