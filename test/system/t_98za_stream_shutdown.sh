#!/bin/bash
# t_98za: PostgreSQL stops while its synchronous standby, walship, cannot make the last WAL
# durable (its only replica away).  A walsender that shuts down asks its client for a
# reply again and again until the client's flush position reaches everything it sent
# (WalSndDone()): the primary walshipd answered each request at once, a ping-pong at the
# speed of the socket, and PostgreSQL never finished stopping (pg_ctl gave up).
# - `pg_ctl stop -m fast` completes: the primary walshipd answers such requests at most
#   once a second when nothing moved, and after five in a row disconnects, saying why;
# - it goes on: PostgreSQL started again and the replica back, a synchronous commit
#   returns, and the replica holds the WAL of the shutdown.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# The stream alone: PostgreSQL's archiver would wait too, its walship push failing after
# push_timeout with no replica to acknowledge (documented), and hold the shutdown as long.
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "create table t (i int); insert into t values (1)"
walshipd_stop "$RCONF"
log "the replica stopped: PostgreSQL stops (fast), the shutdown checkpoint not durable anywhere"
run_capture "$TEST_DIR/stop.out" as_postgres_in "$NS_P" "$PG_BIN/pg_ctl" -D "$PDATA" -m fast \
	-w -t 40 stop
assert_eq 0 "$RC" "pg_ctl stop with walship's replica away ($(tail -n 1 "$TEST_DIR/stop.out"))"
grep -q "it waits to shut down; disconnecting" "$TEST_DIR/ws-primary.log" ||
	fail "the primary walshipd did not say why it disconnected"
log "ok: $(grep -o "the server asks again.*" "$TEST_DIR/ws-primary.log" | head -n 1)"
pid_alive "${WS_DAEMON_PID[$PCONF]}" || fail "the primary walshipd is gone"

pg_start "$PDATA" "$NS_P"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 30
WS_PSQL_TIMEOUT=60
psql_at "$NS_P" "$PG_PORT" "insert into t values (2)" ||
	fail "a synchronous commit did not return after the restart"
unset WS_PSQL_TIMEOUT
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
assert_stream_equals_pg_wal "$final"
ws_check_daemons
log "PASS"
