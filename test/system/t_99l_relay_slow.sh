#!/bin/bash
# t_99l: a relay's slow downstream replicas do not stall what the relay receives.
# primary -> replica A (listen set: a relay, io_buffers = 4) -> replicas B1 and B2, whose
# links from A are slowed to 64 kbit/s: each of A's sends to them holds one of A's four
# slots for seconds (up to three per downstream replica).  The relay's sends may hold
# only half of them, so A keeps receiving from the primary at full speed: it stores three
# segments and acknowledges them upstream while B1 and B2 have received a fraction of
# the first.  Their links restored, B1 and B2 get the same segments, byte for byte.
# Then B1, stopped while A stores two segments and started again behind its slow link, is
# sent a third that A receives as a stream and stores meanwhile after those two: it stores
# the three in WAL order (on 920ae42 the third never reached it: a streamed segment
# stored while a replica was sent its backlog was sent to it neither as a stream nor
# whole).
# test-early (about 21 s here, 7 s of it CPU: mostly waiting, so started among the heavy tests, not at the end)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_walship
require_cmds jq
net_create 3
PG_PORT=5432
PCONF=$TEST_DIR/ws-primary/walship.conf
ACONF=$TEST_DIR/ws-a/walship.conf
B1CONF=$TEST_DIR/ws-b1/walship.conf
B2CONF=$TEST_DIR/ws-b2/walship.conf
AARCHIVE=$TEST_DIR/ws-a/archive
PDATA=$TEST_DIR/pg-primary
mkdir -p "$TEST_DIR/ws-primary" "$TEST_DIR/ws-a" "$TEST_DIR/ws-b1" "$TEST_DIR/ws-b2"

write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" \
	"pg_conninfo='host=$ADDR_P port=$PG_PORT user=postgres'"
# A: the fewest slots there may be (a slow downstream replica would otherwise not be
# noticed before many of them), and one file in flight at a time to each downstream
# replica (its backlog is sent one file after the other).
write_replica_conf "$ACONF" "$TEST_DIR/ws-a" "$NS_P" \
	"listen=$ADDR_R1:$WALSHIP_PORT" io_buffers=4 max_inflight_files=1
write_replica_conf "$B1CONF" "$TEST_DIR/ws-b1" "$NS_R1" log_level=debug
write_replica_conf "$B2CONF" "$TEST_DIR/ws-b2" "$NS_R1"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" /bin/true
pg_start "$PDATA" "$NS_P"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$ACONF" "$TEST_DIR/ws-a.log"
walshipd_start "$NS_R2" "$B1CONF" "$TEST_DIR/ws-b1.log"
walshipd_start "$NS_R3" "$B2CONF" "$TEST_DIR/ws-b2.log"
wait_replica_streaming "$PCONF" 20
both_on_a() {
	[[ "$(walship_status "$ACONF" --json | jq '[.peers[] |
		select((.name == "ws-b1" or .name == "ws-b2") and .state == "streaming")] |
		length')" == 2 ]]
}
wait_for 20 "ws-b1 and ws-b2 streaming from the relay ws-a" both_on_a
log "ok: ws-b1 and ws-b2 stream from ws-a"

# B1 and B2 read slowly: the bridge's ports to them (vr2, vr3) pass 64 kbit/s.
slowed=()
restore_links() {
	local dev
	for dev in "${slowed[@]}"; do
		in_ns "$NS_P" tc qdisc del dev "$dev" root 2>/dev/null || true
	done
	slowed=()
}
trap 'rc=$?; set +e; restore_links; (exit $rc); ws_cleanup; exit $?' EXIT
for dev in vr2 vr3; do
	in_ns "$NS_P" tc qdisc add dev "$dev" root tbf rate 64kbit burst 16kb latency 2s
	slowed+=("$dev")
done

# Three full segments (about 48 MB of WAL): far more than two sockets hold.
segs=()
for i in 1 2 3; do
	segs+=("$(pg_complete_segment "$NS_P" "$PG_PORT")")
done
flush=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")")
a_holds_flush() {
	local lsn
	lsn=$(walship_status "$PCONF" --json | jq -r '.peers[] | select(.name == "ws-a") |
		.flush_lsn // "0/0"')
	(($(lsn_to_int "$lsn") >= flush))
}
for seg in "${segs[@]}"; do
	wait_for 60 "$seg in ws-a's archive while ws-b1 and ws-b2 read slowly" \
		test -f "$AARCHIVE/$seg"
	assert_file_identical "$PDATA/pg_wal/$seg" "$AARCHIVE/$seg"
done
wait_for 30 "ws-a durable up to the primary's flush LSN while ws-b1 and ws-b2 read slowly" \
	a_holds_flush
for node in b1 b2; do
	[[ ! -e "$TEST_DIR/ws-$node/archive/${segs[0]}" ]] ||
		fail "ws-$node holds ${segs[0]} already: its link was not slow"
done
log "ok: ws-a stored ${segs[*]} and acknowledged them upstream while ws-b1 and ws-b2 read slowly"

restore_links
for node in b1 b2; do
	for seg in "${segs[@]}"; do
		wait_for 60 "$seg in ws-$node's archive" test -f "$TEST_DIR/ws-$node/archive/$seg"
		assert_file_identical "$PDATA/pg_wal/$seg" "$TEST_DIR/ws-$node/archive/$seg"
	done
done
log "ok: ws-b1 and ws-b2, their links restored, got ${segs[*]}, the primary's bytes"

# A downstream replica catching up is sent what A stores meanwhile after its backlog, in
# WAL order.  B1 stopped while A stores two segments; B1 started again behind its slow
# link, so that its backlog (the two, one at a time: max_inflight_files = 1 on A) takes
# long; A stores a third meanwhile.  Its link restored, B1 stores the three in WAL order.
walshipd_stop "$B1CONF"
back=()
for i in 1 2; do
	back+=("$(pg_complete_segment "$NS_P" "$PG_PORT")")
done
for seg in "${back[@]}"; do
	wait_for 60 "$seg in ws-a's archive" test -f "$AARCHIVE/$seg"
done
in_ns "$NS_P" tc qdisc add dev vr2 root tbf rate 64kbit burst 16kb latency 2s
slowed+=(vr2)
walshipd_start "$NS_R2" "$B1CONF" "$TEST_DIR/ws-b1.log"
b1_on_backlog() {
	walship_status "$ACONF" --json | jq -e '.peers[] | select(.name == "ws-b1" and
		.state == "streaming")' >/dev/null
}
wait_for 20 "ws-b1 streaming from ws-a again" b1_on_backlog
back+=("$(pg_complete_segment "$NS_P" "$PG_PORT")")
wait_for 60 "${back[2]} in ws-a's archive" test -f "$AARCHIVE/${back[2]}"
[[ ! -e "$TEST_DIR/ws-b1/archive/${back[0]}" ]] ||
	fail "ws-b1 holds ${back[0]} already: its link was not slow"
restore_links
for seg in "${back[@]}"; do
	wait_for 60 "$seg in ws-b1's archive" test -f "$TEST_DIR/ws-b1/archive/$seg"
	assert_file_identical "$PDATA/pg_wal/$seg" "$TEST_DIR/ws-b1/archive/$seg"
done
stored=$(grep -oE 'DEBUG:  stored "[0-9A-F]{24}"' "$TEST_DIR/ws-b1.log" |
	grep -oE '[0-9A-F]{24}' | grep -E "^(${back[0]}|${back[1]}|${back[2]})$" | paste -sd' ')
assert_eq "${back[*]}" "$stored" "the order in which ws-b1 stored ${back[*]}"
log "ok: ws-b1, catching up, stored ${back[*]} in WAL order"
ws_check_daemons
log "PASS"
