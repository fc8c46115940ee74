#!/bin/bash
# t_98: RPO 0 across the loss of the primary host (issue 13).  walship streams WAL from
# PostgreSQL (pg_conninfo) and is its synchronous standby (synchronous_commit = on).  A
# client inserts numbered rows, one commit each, and records each commit that returned.
# Meanwhile the replica walshipd is SIGKILLed and started again: commits wait (a backend
# waits on SyncRep) and then go on.  Then, with the replica walshipd killed again, the
# primary host is lost: PostgreSQL stopped with -m immediate, its data directory deleted,
# the primary walshipd killed.  A new server made
# from a base backup taken before the load recovers through `walship fetch` from the
# replica host (the segment that was being streamed comes as its durable prefix) and,
# promoted, must hold every row whose commit returned.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "create table t (i int primary key, pad text)"

# The recovery source, taken before the load, on the replica host.
RDATA=$TEST_DIR/pg-recovered
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$RDATA" "$NS_R1" "$PG_PORT" \
	"$WALSHIP fetch -c $RCONF %f %p"

# The client: one session, one commit per row; "committed N" is printed once the commit
# of row N returned.  A segment switch now and then, so that whole segments are stored
# and the last one is streamed in part.
ROWS=1200
rows_client_start "$ROWS" 250

wait_for 60 "200 commits" committed_at_least 200
log "$(committed) commits returned; SIGKILL of the replica walshipd"
walshipd_kill "$RCONF"
wait_for 30 "a commit waiting for the synchronous standby" sync_waiters
stalled=$(committed)
log "commits wait at row $stalled (a backend waits on SyncRep); replica walshipd restarted"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_for 60 "commits to go on after the replica came back" committed_at_least $((stalled + 100))

# Lose the primary host mid-segment (not at a switch), while the replica walshipd is down
# again: every commit that returned must already be durable on the replica host, none may
# have returned on the strength of WAL the primary walshipd only had in memory.
wait_for 120 "870 commits" committed_at_least 870
walshipd_kill "$RCONF"
wait_for 30 "a commit waiting for the synchronous standby" sync_waiters
pg_stop "$PDATA" immediate
walshipd_kill "$PCONF"
kill "$CLIENT" 2>/dev/null || true
last=$(committed)
log "primary host lost after $last returned commits, the replica walshipd down; its data" \
	"directory is deleted"
rm -rf "$PDATA"
((last < ROWS)) || fail "the load finished before the primary host was lost"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
log "replica: $(walship_status "$RCONF" --json | jq -c '{files_stored, stream_syncs}')"

# Recovery on the replica host from the base backup and the appliance's WAL.
runuser -u postgres -- rm -f "$RDATA/standby.signal"
runuser -u postgres -- touch "$RDATA/recovery.signal"
pg_start "$RDATA" "$NS_R1"
recovered() {
	[[ "$(psql_at "$NS_R1" "$PG_PORT" 'select pg_is_in_recovery()')" == f ]]
}
wait_for 120 "the recovered server to finish recovery and promote" recovered
have=$(psql_at "$NS_R1" "$PG_PORT" "select count(*) from t where i <= $last")
log "recovered server holds $have of the $last rows whose commit returned" \
	"($(psql_at "$NS_R1" "$PG_PORT" 'select count(*) from t') rows in all)"
assert_eq "$last" "$have" "rows whose commit returned, after the primary host was lost"
log "PASS"
