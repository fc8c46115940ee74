#!/bin/bash
# t_97e: the streaming source (daemon/source/pgsource.c) and PostgreSQL's
# wal_sender_timeout.  While the source is paused (back-pressure) it reads nothing, so the
# walsender's keepalives that ask for a reply go unseen: only the source's periodic status
# updates keep the walsender from timing it out.  With pg_status_interval (here 5 s, the
# helper's --status-interval) longer than the server's wal_sender_timeout (2 s), those
# updates go every second (half of it, logged) and a pause of 6 s leaves the connection
# in place: the walsender does not log "terminating walsender process due to replication
# timeout" and the helper makes no new connection.  (After two of those intervals the
# paused source leaves streaming, out of the walsender's timeout; before, only the status
# updates keep it.)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
pgsource_primary_setup

pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "true"
echo "wal_sender_timeout = 2s" >>"$PDATA/postgresql.conf"
pg_start "$PDATA" "$NS_P"

paused() { [[ "$(pgsource_field 8)" == 1 ]]; }
helper_alive() { pid_alive "$RUN_PID" || fail "pgsource_run exited: $(tail -n 5 "$TEST_DIR/rx.log")"; }

bg_start "$TEST_DIR/rx.log" ip netns exec "$NS_R1" "$RUN" \
	--conninfo "host=$ADDR_P port=$PG_PORT user=postgres connect_timeout=5" --dir "$RX" \
	--slot t97e_slot --status-file "$STATUS" --status-interval 5000
RUN_PID=$BG_PID
wait_for 20 "the helper streaming" pgsource_streaming
grep -q "wal_sender_timeout is 2s: status updates every 1000 ms, not 5000" "$TEST_DIR/rx.log" ||
	fail "the shorter status interval is not logged"
before=$(pgsource_field 5)

kill -USR1 "$RUN_PID"
wait_for 10 "the helper to pause" paused
psql_at "$NS_P" "$PG_PORT" "create table t97e (i int); insert into t97e values (1)" >/dev/null
ws_sleep 6
helper_alive
if grep -q "terminating walsender process due to replication timeout" "$PDATA.log"; then
	fail "the walsender timed the paused helper out: $(grep -m1 'replication timeout' "$PDATA.log")"
fi
assert_eq "$before" "$(pgsource_field 5)" "connections across the pause"
kill -USR2 "$RUN_PID"
target=$(pg_current_lsn "$NS_P" "$PG_PORT")
received() { lsn_ge "$(pgsource_field 2)" "$target"; }
wait_for 20 "the helper to receive $target" received
assert_eq "$before" "$(pgsource_field 5)" "connections after the pause"
log "ok: paused 6 s under wal_sender_timeout = 2s, the connection stayed ($before connections)"

kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "pgsource_run's exit status after SIGTERM"
log "PASS"
