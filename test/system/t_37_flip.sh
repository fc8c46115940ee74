#!/bin/bash
# Issue 3, fault injection: a byte flipped in transit.  The replica's upstream is a
# test-only TCP relay (build/helpers/flip_relay) in its own host, which corrupts one byte
# of the primary -> replica stream of its first connection, 3 MiB in (inside the first
# segment's data).  The replica must detect it by the frame checksum ("checksum mismatch"
# in its log), the connection is reset and the data sent again on the next one; nothing
# bad is stored (check_invariants: everything acknowledged is byte-identical, every
# stored file valid) and the standby's data equal the primary's.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_walship
require_cmds jq
RELAY=$WS_ROOT/build/helpers/flip_relay
[[ -x "$RELAY" ]] || skip "$RELAY not built: run make"
RELAY_PORT=5490
FLIP_AT=$((3 * 1024 * 1024 + 12345))

# The topology of walship_daemons_up, with the relay started in the replica's host before
# its walshipd, which connects through it.
net_create 1
PG_PORT=5432
PCONF=$TEST_DIR/ws-primary/walship.conf
RCONF=$TEST_DIR/ws-r1/walship.conf
RARCHIVE=$TEST_DIR/ws-r1/archive
PDATA=$TEST_DIR/pg-primary
SDATA=$TEST_DIR/pg-standby
mkdir -p "$TEST_DIR/ws-primary" "$TEST_DIR/ws-r1"
write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P"
write_replica_conf "$RCONF" "$TEST_DIR/ws-r1" "$NS_P" "upstream=127.0.0.1:$RELAY_PORT"
bg_start "$TEST_DIR/relay.log" ip netns exec "$NS_R1" "$RELAY" "127.0.0.1:$RELAY_PORT" \
	"$ADDR_P:$WALSHIP_PORT" "$FLIP_AT"
wait_for 10 "the relay to listen" grep -q listening "$TEST_DIR/relay.log"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 20

inv_setup
log "PostgreSQL primary in $NS_P: archive_command = walship push, logged"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "$(inv_archive_command "$PCONF")"
pg_start "$PDATA" "$NS_P"
pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }

flipped() {
	grep -q 'flipped byte' "$TEST_DIR/relay.log"
}
mismatch_logged() {
	grep -q 'checksum mismatch' "$TEST_DIR/ws-r1.log"
}
wait_for 30 "the relay to flip a byte" flipped
log "ok: $(grep 'flipped byte' "$TEST_DIR/relay.log")"
wait_for 20 "the replica to detect the checksum mismatch" mismatch_logged
log "ok: replica: $(grep -m1 'checksum mismatch' "$TEST_DIR/ws-r1.log")"
second_connection() {
	grep -q 'flip_relay: connection 2' "$TEST_DIR/relay.log"
}
wait_for 20 "the replica to reconnect" second_connection
grep -q 'flip_relay: connection 1 closed' "$TEST_DIR/relay.log" ||
	fail "the corrupted connection was not closed"
wait_replica_streaming "$PCONF" 20

walship_standby_up
pgbench_at "$NS_P" "$PG_PORT" -n -c 2 -t 500 >"$TEST_DIR/pgbench-run.out" 2>&1 ||
	{ tail -n 20 "$TEST_DIR/pgbench-run.out"; fail "pgbench failed"; }
final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 60
assert_no_gap "$RARCHIVE"
assert_eq 1 "$(grep -c 'flipped byte' "$TEST_DIR/relay.log")" "bytes flipped"
check_invariants -P "$PCONF" -R "$RCONF" -D "$NS_P $PG_PORT $NS_R1 $PG_PORT"
log "PASS"
