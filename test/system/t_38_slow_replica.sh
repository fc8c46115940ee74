#!/bin/bash
# Issue 3, fault injection: two replicas, one throttled (tc tbf, 1 mbit, on the primary's
# link to it: a 16 MiB segment needs over two minutes).  With sync_replicas = 1, pushes
# keep the fast replica's pace: every segment is acknowledged while the slow replica still
# lacks it (no timing is asserted: the slow link cannot deliver a segment in the time
# the test waits), the fast replica has them, the primary's spool holds them for the slow
# one (status held > 0); once the throttle is lifted the slow one catches up from the
# spool (held back to 0).  check_invariants covers both.  ws-r2 has keepalive_timeout =
# 6s, shorter than a 1 MiB frame takes on its link (8 s): bytes arriving keep the link up,
# though no whole frame comes within the timeout (the build before closed it every 6 s
# and ws-r2 never stored a byte); a newcomer announcing ws-r2's name meanwhile is refused
# (ws-r2's host acknowledging what it is sent shows it alive while its PONG waits behind
# the DATA, and its own PINGs are keepalive_interval, 5 s, apart).
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds tc
ws_two_replicas_up keepalive_timeout=6s
SDATA=$TEST_DIR/pg-standby
# (walship_standby_up feeds the standby in NS_R1 from RCONF, ws-r1.)
held() {
	walship_status "$PCONF" --json | jq -r --arg n "$1" '[.peers[] | select(.name == $n)][0].held'
}

inv_setup
log "PostgreSQL primary in $NS_P: archive_command = walship push, logged"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "$(inv_archive_command "$PCONF")"
pg_start "$PDATA" "$NS_P"
pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
walship_standby_up
lsn=$(pg_finish_load "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$PG_PORT" "$lsn" 60
spool_empty() {
	inv_spool_empty "$PCONF"
}
wait_for 60 "both replicas to have the initial WAL" spool_empty

r2_received() {
	walship_status "$R2CONF" --json | jq '[.peers[].bytes_received] | max // 0'
}
r2_since() {
	walship_status "$PCONF" --json |
		jq -r '[.peers[] | select(.name == "ws-r2")][0].connected_since'
}
since=$(r2_since)
r2_before=$(r2_received)
log "throttling the link to ws-r2: tbf rate 1mbit (16 MiB take over 2 minutes)"
tc -n "$NS_P" qdisc add dev vr2 root tbf rate 1mbit burst 32kbit latency 400ms ||
	skip "tc cannot add a tbf qdisc here"

N=4
acked_before=$(wc -l <"$INV_ACKED")
start=$SECONDS
SEGS=()
for ((i = 0; i < N; i++)); do
	SEGS+=("$(pg_complete_segment "$NS_P" "$PG_PORT")")
done
acked_all() {
	(($(wc -l <"$INV_ACKED") >= acked_before + N))
}
max_held=0
# Track the most held for ws-r2 while waiting, for the assertion below.
acked_all_tracking() {
	local h
	h=$(held ws-r2)
	((h > max_held)) && max_held=$h
	acked_all
}
wait_for 100 "the $N segments to be acknowledged" acked_all_tracking
elapsed=$((SECONDS - start))
missing_on_r2=0
for seg in "${SEGS[@]}"; do
	assert_file_identical "$PDATA/pg_wal/$seg" "$TEST_DIR/ws-r1/archive/$seg"
	[[ -f "$R2ARCHIVE/$seg" ]] || missing_on_r2=$((missing_on_r2 + 1))
done
h=$(held ws-r2)
((h > max_held)) && max_held=$h
log "$N segments acknowledged in ${elapsed}s; ws-r2 lacks $missing_on_r2, held for it: $max_held"
((missing_on_r2 >= N - 1)) ||
	fail "ws-r2 has $((N - missing_on_r2)) of the $N acknowledged segments: pushes waited for it"
((max_held > 0)) || fail "status never showed files held for ws-r2"
assert_eq 0 "$(held ws-r1)" "files held for the fast replica"

# A whole 1 MiB frame reaches ws-r2 over its slow link (8 s a frame, 6 s keepalive_timeout).
r2_got_frame() {
	(($(r2_received) > r2_before + 1048576))
}
wait_for 40 "ws-r2 to receive a whole frame over its slow link" r2_got_frame
assert_eq "$since" "$(r2_since)" "ws-r2's connection (not closed while throttled)"
! grep -q 'nothing received for' "$TEST_DIR/ws-r2.log" ||
	fail "ws-r2 closed its slow link as silent: $(grep 'nothing received for' "$TEST_DIR/ws-r2.log" | head -1)"
log "ok: ws-r2's link stayed up (keepalive_timeout 6s, a frame takes 8 s)"

# A newcomer announcing ws-r2's name is refused: ws-r2's PONG to the primary's check is
# behind megabytes of DATA on its slow link, but its host acknowledges what it is sent
# (the build before replaced it after 2 s).
log "a newcomer announcing ws-r2's name while ws-r2 catches up slowly"
FAKE=$WS_ROOT/build/helpers/fake_peer
[[ -x "$FAKE" ]] || fail "build/helpers/fake_peer is not built (make all)"
run_capture "$TEST_DIR/fake.out" in_ns "$NS_R1" "$FAKE" \
	--connect "$(ns_addr "$NS_P"):$WALSHIP_PORT" --timeout 10 --name ws-r2 hello-replica have \
	expect-error NAME
((RC == 0)) || fail "the newcomer was not refused with ERROR NAME: $(cat "$TEST_DIR/fake.out")"
assert_eq "$since" "$(r2_since)" "ws-r2's connection (not replaced)"
log "ok: $(grep -m1 '^error' "$TEST_DIR/fake.out")"

log "ws-r2 catches up from the spool once its link is fast again"
tc -n "$NS_P" qdisc del dev vr2 root
held_r2_zero() {
	[[ "$(held ws-r2)" == 0 ]]
}
wait_for 60 "ws-r2 to catch up (held 0)" held_r2_zero
for seg in "${SEGS[@]}"; do
	assert_file_identical "$PDATA/pg_wal/$seg" "$R2ARCHIVE/$seg"
done
log "ok: ws-r2 caught up after $((SECONDS - start))s"

final=$(pg_finish_load "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 60
check_invariants -P "$PCONF" -R "$R1CONF" -R "$R2CONF" -D "$NS_P $PG_PORT $NS_R1 $PG_PORT"
log "PASS"
