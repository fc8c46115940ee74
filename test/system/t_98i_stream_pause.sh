#!/bin/bash
# t_98i: PostgreSQL writes WAL faster than the replicas take it (issue 13).  walship, the
# stream as its only source (archive_command = /bin/true), is the synchronous standby; the
# replica walshipd is stopped, and a session that does not wait for standbys
# (synchronous_commit = local) writes about 8 segments of WAL.
# - The primary walshipd holds at most STREAM_MAX_UNSETTLED (4) streamed segments that no
#   replica has made safe, in memory, then stops reading from PostgreSQL (it says so): the
#   rest waits in pg_wal, which the slot keeps;
# - the replica started again, it is sent the held segments, the primary reads on from
#   where it stopped, and every segment is stored, each equal to pg_wal's, without a gap:
#   nothing skipped while reading waited.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)"
lsn=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $lsn" replica_holds "$(lsn_to_int "$lsn")"

walshipd_stop "$RCONF"
log "replica walshipd stopped; about 8 segments of WAL that do not wait for it"
start=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")")
for ((i = 0; i < 40; i++)); do
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into ws_fill select g, repeat('x', 200) from generate_series(1, 20000) g"
	now=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")")
	((now - start < 8 * 16 * 1024 * 1024)) || break
done
wait_for 60 "the primary walshipd to stop reading from PostgreSQL" grep -q \
	'streamed segments are not yet safe on the replicas; reading from PostgreSQL waits' \
	"$TEST_DIR/ws-primary.log"
log "ok: $(grep -o '[0-9]* streamed segments are not yet safe.*' "$TEST_DIR/ws-primary.log" |
	head -n 1)"
# What it holds: the segment being streamed and at most 4 unsettled; the rest is behind,
# in pg_wal (the slot's restart_lsn).
received=$(walship_status "$PCONF" --json | jq -r '.source_received_lsn')
[[ "$received" =~ ^[0-9]+$ ]] || fail "no received position in the primary's status: $received"
flush=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")")
((received < flush)) ||
	fail "the primary walshipd read all of PostgreSQL's WAL ($received of $flush): it did not wait"
((received - start <= 6 * 16 * 1024 * 1024)) ||
	fail "the primary walshipd holds more than 5 segments in memory ($received from $start)"
log "ok: read up to $received of $flush"

walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-again.log"
wait_replica_streaming "$PCONF" 20
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 120 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"
log "ok: the replica holds up to $final"
grep -q 'reading from PostgreSQL goes on' "$TEST_DIR/ws-primary.log" ||
	fail "the primary walshipd did not say it read on from PostgreSQL"
assert_stream_equals_pg_wal "$final"
log "PASS"
