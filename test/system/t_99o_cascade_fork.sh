#!/bin/bash
# t_99o: a failover under a cascade, its downstream replica away.  Primary P -> primary
# walshipd -> replica A (a relay: listen set) -> replica B.  A standby S of P stops inside
# segment N; P goes on past N's end (N and the next segment whole on A and B, which
# acknowledge them); B stops.  S is promoted: timeline 2 forks inside N.  The primary
# walshipd, pointed at S, streams timeline 2 from the fork to A, which stores
# 00000002.history and timeline 2's segment N.  B started again must be sent timeline 2's
# N (and what follows), though its recorded FLOOR on A was past N: A lowers what it
# recorded for B to the fork's segment when it stores the history file, so that the
# segments from there are in B's backlog, and kept for it.  On the build before, B never
# got timeline 2's N: its backlog began at the FLOOR of timeline 1's WAL.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
S_PORT=5433
SDATA=$TEST_DIR/pg-standby
relay_stream_up

# S: a standby of P, asynchronous, stopped inside segment N.
cascade_standby_stopped t99o
seg_n=$STOPPED_SEG
# P goes on past N's end: N and the next segment whole, on A and on B.
psql_at "$NS_P" "$PG_PORT" "insert into t select generate_series(1, 1000); select pg_switch_wal()" >/dev/null
psql_at "$NS_P" "$PG_PORT" "insert into t select generate_series(1, 1000)"
seg_next=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name(pg_switch_wal())")
for seg in "$seg_n" "$seg_next"; do
	wait_for 30 "$seg on ws-b" test -f "$BARCHIVE/$seg"
done
b_acked_next() {
	local flush
	flush=$(walship_status "$RCONF" --json |
		jq -r '.peers[] | select(.name == "ws-b") | .flush_lsn // "0/0"')
	lsn_ge "$flush" "$(segment_end_lsn "$seg_next")"
}
wait_for 20 "ws-r1 to know what ws-b holds" b_acked_next
log "ws-b holds $seg_n and $seg_next of timeline 1; S stopped inside $seg_n"
walshipd_stop "$BCONF"

# The failover: P gone, S promoted (timeline 2 forks inside N), the primary walshipd
# pointed at S.
walshipd_stop "$PCONF"
pg_stop "$PDATA"
cascade_promote
switch=$SWITCH
tl2_n=00000002${seg_n:8}
psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(1, 1000)"
psql_at "$NS_P" "$S_PORT" "select pg_switch_wal()" >/dev/null
wait_for 30 "$tl2_n on ws-r1" test -f "$RARCHIVE/$tl2_n"
log "timeline 2 forks at $switch in $seg_n; ws-r1 holds $tl2_n"

# B back: it is sent timeline 2 from the fork's segment.
walshipd_start "$NS_R1" "$BCONF" "$TEST_DIR/ws-b.log"
wait_for 30 "$tl2_n on ws-b" test -f "$BARCHIVE/$tl2_n"
assert_file_identical "$SDATA/pg_wal/$tl2_n" "$BARCHIVE/$tl2_n"
assert_file_identical "$SDATA/pg_wal/00000002.history" "$BARCHIVE/00000002.history"
log "ok: ws-b holds $tl2_n as the promoted server wrote it"
ws_check_daemons
log "PASS"
