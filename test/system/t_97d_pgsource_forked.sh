#!/bin/bash
# t_97d: the streaming source (daemon/source/pgsource.c) reconnects to a server whose
# timeline forked before the end of what it streamed (a failover to a standby that lagged):
# the position it holds on timeline 1 is not in the new server's history, and PostgreSQL
# refuses START_REPLICATION there ("requested starting point ... is not in this server's
# history") on every attempt.  Through test/helpers/pgsource_run (the source alone):
#   - it streams from the primary, past the end of a standby's WAL (the standby is a base
#     backup that receives nothing);
#   - the primary stops, the standby is promoted (timeline 2 forks where its WAL ends) and
#     the helper, whose conninfo names both hosts, reconnects to it: it goes on at the
#     segment start of the fork on timeline 2 (logged), and the timeline 2 segments it
#     writes and the history file equal the promoted server's; no START_REPLICATION of
#     its is refused after it went on at the fork (one sent on a connection made while the
#     standby was still in recovery may be, by the promotion under it).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
pgsource_primary_setup
S_PORT=5433
SDATA=$TEST_DIR/pg-standby

pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "true"
pg_start "$PDATA" "$NS_P"
psql_at "$NS_P" "$PG_PORT" "create table t97d (i int, pad text)" >/dev/null
# The standby's WAL ends where the base backup's does: it receives nothing after it.
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$S_PORT" "false"

on_timeline() { [[ "$(pgsource_field 4)" == "$1" ]] && pgsource_streaming; }
helper_alive() { pid_alive "$RUN_PID" || fail "pgsource_run exited: $(tail -n 5 "$TEST_DIR/rx.log")"; }

log "pgsource_run streams from $ADDR_P, then $ADDR_R1:$S_PORT when the primary is down"
bg_start "$TEST_DIR/rx.log" ip netns exec "$NS_R1" "$RUN" \
	--conninfo "host=$ADDR_P,$ADDR_R1 port=$PG_PORT,$S_PORT user=postgres connect_timeout=2" \
	--dir "$RX" --slot t97d_slot --status-file "$STATUS" --status-interval 1000
RUN_PID=$BG_PID
wait_for 20 "the helper streaming" pgsource_streaming
for _ in 1 2; do
	seg=$(pg_segment_name "$NS_P" "$PG_PORT")
	psql_at "$NS_P" "$PG_PORT" "insert into t97d select g, repeat('x', 100)
		from generate_series(1, 2000) g; select pg_switch_wal()" >/dev/null
	wait_for 20 "segment $seg from the helper" test -f "$RX/$seg"
	helper_alive
done
psql_at "$NS_P" "$PG_PORT" "insert into t97d values (-1, 'tl1 only')" >/dev/null
held=$(pg_current_lsn "$NS_P" "$PG_PORT")
received_held() { lsn_ge "$(pgsource_field 2)" "$held"; }
wait_for 20 "the helper to receive $held" received_held
log "the helper holds timeline 1 up to $(pgsource_field 2)"

pg_stop "$PDATA" fast
pg_start "$SDATA" "$NS_R1"
in_ns "$NS_R1" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SDATA" -w -t 30 promote >/dev/null
fork=$(awk -F'\t' '$1 == 1 {print $2}' "$SDATA/pg_wal/00000002.history")
[[ -n "$fork" ]] || fail "no fork of timeline 1 in the promoted standby's history"
if ! lsn_ge "$(pgsource_field 2)" "$fork" || [[ "$(pgsource_field 2)" == "$fork" ]]; then
	fail "the helper's position $(pgsource_field 2) is not past the fork $fork"
fi
log "the standby is promoted: timeline 2 forks at $fork, before the helper's $(pgsource_field 2)"

wait_for 30 "the helper streaming timeline 2 from the promoted server" on_timeline 2
helper_alive
grep -q "past the server's fork from it at $fork: going on at the fork on timeline 2" \
	"$TEST_DIR/rx.log" || fail "the restart at the fork is not logged"
seg2=$(psql_at "$NS_R1" "$S_PORT" "select pg_walfile_name(pg_current_wal_lsn())")
[[ "$seg2" == 00000002* ]] || fail "the promoted standby writes $seg2, not timeline 2"
psql_at "$NS_R1" "$S_PORT" "insert into t97d values (-2, 'tl2'); select pg_switch_wal()" \
	>/dev/null
wait_for 20 "segment $seg2 of timeline 2 from the helper" test -f "$RX/$seg2"
helper_alive
assert_file_identical "$RX/00000002.history" "$SDATA/pg_wal/00000002.history"
assert_file_identical "$RX/$seg2" "$SDATA/pg_wal/$seg2"
assert_no_refusal_after_fork "$TEST_DIR/rx.log"
log "ok: $(grep -m1 -o "streaming reached .*" "$TEST_DIR/rx.log"); $seg2 equals the promoted server's"

kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "pgsource_run's exit status after SIGTERM"
log "PASS"
