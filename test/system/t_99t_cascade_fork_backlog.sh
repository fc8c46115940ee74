#!/bin/bash
# t_99t: a failover under a cascade while the relay sends its downstream replica its
# backlog.  Primary P -> primary walshipd -> replica A (ws-r1, a relay, max_inflight_files
# = 1: one file in flight at a time) -> replica B (ws-b).  B stops; a standby S of P stops
# inside segment N; P goes on: A stores timeline 1's segments to N+3.  B comes back over a
# slow link (20 Mbit/s, about 7 s a segment), its backlog the segments it lacks up to N+3;
# meanwhile S is promoted (timeline 2 forks inside N) and A stores 00000002.history and
# timeline 2's N, which wait to be listed for B after its backlog.  Once B has stored
# timeline 1's N+1, it is killed, and started again on a fast link.
# - B is sent timeline 2's N, byte for byte as S wrote it.  The build before counted B's
#   timeline 1 segments past the fork as timeline 2's WAL, and the files waiting for B's
#   backlog did not count in its floor: the floor A recorded for B passed N, and B's
#   backlog after the restart began past timeline 2's N, which B never got.
# test-early (about a minute, mostly waiting on the slow link)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
S_PORT=5433
SDATA=$TEST_DIR/pg-standby
REPLICA_CONF_EXTRA+=(max_inflight_files=1)
relay_stream_up
walshipd_stop "$BCONF"
log "ws-b stopped"

# S: a standby of P, stopped inside segment N; P goes on to N+3 (on A).
cascade_standby_stopped t99t
seg_n=$STOPPED_SEG
for _ in 1 2 3 4; do
	psql_at "$NS_P" "$PG_PORT" "insert into t select generate_series(1, 1000);
		select pg_switch_wal()" >/dev/null
done
segno_n=$(((16#${seg_n:8:8} << 8) + 16#${seg_n:16:8}))
seg_n1=$(seg_name $((segno_n + 1)))
seg_n3=$(seg_name $((segno_n + 3)))
wait_for 30 "$seg_n3 on ws-r1" test -f "$RARCHIVE/$seg_n3"
log "S stopped inside $seg_n; ws-r1 holds timeline 1 to $seg_n3"

# B back over a slow link (A and B share a namespace: their traffic crosses its lo).
# (a bucket larger than lo's 64 KiB packets: tbf drops a packet larger than its burst)
in_ns "$NS_R1" tc qdisc add dev lo root tbf rate 20mbit burst 256kb latency 400ms
walshipd_start "$NS_R1" "$BCONF" "$TEST_DIR/ws-b.log"
# The failover meanwhile: P gone, S promoted, the primary walshipd pointed at S.
walshipd_stop "$PCONF"
pg_stop "$PDATA"
cascade_promote
tl2_n=00000002${seg_n:8}
psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(1, 1000); select pg_switch_wal()" \
	>/dev/null
wait_for 30 "$tl2_n on ws-r1" test -f "$RARCHIVE/$tl2_n"
wait_for 10 "00000002.history on ws-r1" test -f "$RARCHIVE/00000002.history"
# (ws-b must acknowledge timeline 1's N after that, for its run to reach past the fork
# through it: else the history file's cut alone keeps its floor at N)
[[ ! -e "$BARCHIVE/$seg_n" ]] ||
	skip "ws-b stored $seg_n before ws-r1 stored $tl2_n: the link was not slow enough"
log "timeline 2 forks at $SWITCH in $seg_n; ws-r1 holds $tl2_n; ws-b in its backlog"

# B killed once it stored timeline 1's N+1, when the floor A records for it has moved
# (saved within a second: the build before recorded a floor past N, which is waited for
# here at most 5 s, then B is killed all the same).
wait_for 120 "ws-b to store $seg_n1" test -f "$BARCHIVE/$seg_n1"
n_end=$(lsn_to_int "$(segment_end_lsn "$seg_n")")
b_floor_past_n() {
	local line floor
	line=$(grep '^ws-b ' "$RARCHIVE/.walship/downstream" 2>/dev/null) || return 1
	floor=${line#ws-b }
	((16#${floor:-0} >= n_end))
}
for ((i = 0; i < 50; i++)); do
	b_floor_past_n && break
	ws_sleep 0.1
done
log "ws-b stored $seg_n1; its floor on ws-r1: $(grep '^ws-b ' "$RARCHIVE/.walship/downstream")"
walshipd_kill "$BCONF"
in_ns "$NS_R1" tc qdisc del dev lo root
walshipd_start "$NS_R1" "$BCONF" "$TEST_DIR/ws-b.log"
wait_for 60 "$tl2_n on ws-b" test -f "$BARCHIVE/$tl2_n"
assert_file_identical "$SDATA/pg_wal/$tl2_n" "$BARCHIVE/$tl2_n"
log "ok: ws-b, killed in its backlog after the fork, holds $tl2_n as S wrote it"
ws_check_daemons
log "PASS"
