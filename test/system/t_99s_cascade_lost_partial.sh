#!/bin/bash
# t_99s: a failover under a cascade whose primary host is lost in the middle of a segment.
# Primary P -> primary walshipd -> replica A (a relay, retain_size = 16MB: it keeps its
# newest segment, and what B still needs) -> replica B; no archive_command ships WAL
# (so the promoted server never pushes NAME.partial).  A standby S of P stops inside
# segment N; P writes more into N, durable on A and B; then P's host is lost (PostgreSQL
# stopped at once, the primary walshipd SIGKILLed): A keeps timeline 1's N as a partial,
# which B was following.  S is promoted (timeline 2 forks inside N) and the primary
# walshipd pointed at it: timeline 2 reaches A and B, segment after segment.
# - B holds timeline 2's segments as S wrote them;
# - A's retention goes on: timeline 2's N, once B holds it and newer WAL is there, is
#   removed from A.  On the build before 2eb8e42, timeline 1's N, never sent again by the
#   new upstream, stayed among what A relayed to B and held B's floor, and A's retention,
#   at N for good: A's disk grew with every segment.
# - A restarts, and timeline 2 goes on: A's retention still goes on (timeline 2's segment
#   before the restart is removed), and timeline 1's N is not relayed again.  (Here the
#   promoted side delivers timeline 1's N.partial, which does not begin with what A kept
#   of N, so A sets its partial aside before the restart: the case of a partial still
#   kept at the restart, which A followed again for good until relay_start() learned to
#   leave a partial whose timeline a stored history ends, is not reproduced here.)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
S_PORT=5433
SDATA=$TEST_DIR/pg-standby
STREAM_ARCHIVE_COMMAND=/bin/true
REPLICA_CONF_EXTRA=(retain_size=16MB)
relay_stream_up

# S: a standby of P, asynchronous, stopped inside segment N.
cascade_standby_stopped t99s
seg_n=$STOPPED_SEG

# P writes more into N, durable on A and on B (through A), then its host is lost.
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
	insert into t select generate_series(1, 1000)"
late=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
[[ "$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$late')")" == "$seg_n" ]] ||
	fail "P's last rows left $seg_n"
b_durable_at() {
	local flush
	flush=$(walship_status "$RCONF" --json |
		jq -r '.peers[] | select(.name == "ws-b") | .flush_lsn // "0/0"')
	lsn_ge "$flush" "$1"
}
wait_for 30 "ws-b durable up to $late (through ws-r1)" b_durable_at "$late"
walshipd_kill "$PCONF"
pg_stop "$PDATA" immediate
log "P lost at $late inside $seg_n, durable on ws-r1 and ws-b"

# S promoted, the primary walshipd pointed at it: timeline 2 from the fork inside N.
cascade_promote
switch=$SWITCH
! lsn_ge "$switch" "$late" || fail "timeline 2 forks at $switch, not before P's last rows at $late"
tl2_n=00000002${seg_n:8}
# Timeline 2 goes on for four segments after N.
for _ in 1 2 3 4; do
	psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(1, 1000)"
	last=$(psql_at "$NS_P" "$S_PORT" "select pg_walfile_name(pg_switch_wal())")
done
# (Each segment on its own: the relay sends the whole ones and the growing one side by
# side, so they may be stored out of order.)
for ((n = 16#${tl2_n:16:8}; n <= 16#${last:16:8}; n++)); do
	seg=$(printf '00000002%s%08X' "${tl2_n:8:8}" "$n")
	wait_for 60 "$seg on ws-b" test -f "$BARCHIVE/$seg"
done
assert_file_identical "$SDATA/pg_wal/$tl2_n" "$BARCHIVE/$tl2_n"
assert_file_identical "$SDATA/pg_wal/00000002.history" "$BARCHIVE/00000002.history"
log "ok: ws-b holds timeline 2 from $tl2_n to $last as the promoted server wrote it"
# A's retention passes N: timeline 2's N, held by B and older than A's newest 16 MB, goes.
a_removed_n() {
	[[ ! -e "$RARCHIVE/$tl2_n" ]] && return 0
	# (what holds it, for the log of a failure)
	walship_status "$RCONF" --json | jq -c '{retain_floor_lsn, retain_oldest, retained_files,
		peers: [.peers[] | {name, state, flush_lsn, last_sent, last_acked, files_inflight}]}' \
		>"$TEST_DIR/a-status.json"
	return 1
}
deadline=$((SECONDS + 60))
until a_removed_n; do
	if ((SECONDS >= deadline)); then
		cat "$TEST_DIR/a-status.json" "$RARCHIVE/.walship/downstream" >&2 || true
		ls -a "$RARCHIVE" "$RARCHIVE/.incoming" >&2 || true
		fail "timed out after 60s waiting for ws-r1's retention to remove $tl2_n"
	fi
	ws_check_daemons
	ws_sleep 0.2
done
log "ok: ws-r1 removed $tl2_n ($(status_counter "$RCONF" retain_removed_files) files removed)"

# A restarts; timeline 2 goes on four segments more; A removes the one last written before.
before_restart=$last
walshipd_stop "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-restarted.log"
for _ in 1 2 3 4; do
	psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(1, 1000)"
	last=$(psql_at "$NS_P" "$S_PORT" "select pg_walfile_name(pg_switch_wal())")
done
wait_for 60 "$last on ws-b" test -f "$BARCHIVE/$last"
wait_for 60 "ws-r1's retention to remove $before_restart after its restart" \
	test ! -e "$RARCHIVE/$before_restart"
! grep -q "$seg_n" <(walship_status "$RCONF" --json | jq -r '.peers[].files_inflight[]?' 2>/dev/null) ||
	fail "ws-r1 relays timeline 1's $seg_n again after its restart"
log "ok: after its restart ws-r1 removed $before_restart; timeline 1's $seg_n is not relayed again"
ws_check_daemons
log "PASS"
