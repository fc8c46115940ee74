#!/bin/bash
# t_99b: a timeline switch seen by a standby streaming from the appliance (issue 14).  The
# primary walshipd streams from a standby S of the PostgreSQL primary (as in t_98d); a
# second standby B, on the replica host, streams from the appliance's pg_listen.  S is
# promoted: the appliance stores 00000002.history and timeline 2, ends B's stream at the
# switch point with PostgreSQL's end-of-timeline sequence (CopyDone, then the next
# timeline and its start, both CommandCompletes), serves TIMELINE_HISTORY 2, and B goes on
# streaming timeline 2 from the appliance and holds the promoted server's data.  A
# START_REPLICATION on timeline 1 past the switch point, or on a timeline not in the
# history, is refused as the promoted server refuses it.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds jq
S_PORT=5433
B_PORT=5434
PG_LISTEN_PORT=5435
SDATA=$TEST_DIR/pg-standby
PRIMARY_CONF_EXTRA=("pg_conninfo='host=$(pg_socket_dir "$SDATA") port=$S_PORT user=postgres'")
ws_pg_listen_trust "$PG_LISTEN_PORT"
walship_stream_up off
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_P" "$S_PORT" false
printf '%s\n' \
	"primary_conninfo = 'host=$(ns_addr "$NS_P") port=$PG_PORT user=postgres application_name=t99b'" \
	"synchronous_standby_names = ''" >>"$SDATA/postgresql.conf"
pg_start "$SDATA" "$NS_P"
wait_replica_streaming "$PCONF" 20
psql_at "$NS_P" "$PG_PORT" "create table t (i int); insert into t select generate_series(1, 1000)"

# B: a standby on the replica host, streaming from the appliance.
BDATA=$TEST_DIR/pg-b
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$BDATA" "$NS_R1" "$B_PORT" \
	"$WALSHIP fetch -c $RCONF %f %p"
printf '%s\n' \
	"primary_conninfo = 'host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres application_name=b'" \
	>>"$BDATA/postgresql.conf"
pg_start "$BDATA" "$NS_R1"
receiver_on() {
	[[ "$(psql_at "$NS_R1" "$B_PORT" "select status || ' ' || received_tli || ' ' ||
		sender_host from pg_stat_wal_receiver")" == "streaming $1 $ADDR_R1" ]]
}
wait_for 30 "B streaming timeline 1 from the appliance" receiver_on 1
standby_s_at() {
	lsn_ge "$(psql_at "$NS_P" "$S_PORT" "select pg_last_wal_replay_lsn()")" "$1"
}
# Where the insert's commit ends (synchronous_commit = off: the write position may lag it);
# S is promoted next and must hold the table and its rows.
lsn=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
wait_for 30 "S to replay up to $lsn" standby_s_at "$lsn"
wait_standby_lsn "$NS_R1" "$B_PORT" "$lsn" 30
log "ok: B streams timeline 1 from the appliance, at $lsn"

log "promoting S (the primary walshipd's source)"
in_ns "$NS_P" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SDATA" -w -t 30 promote >/dev/null
psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(1001, 2000)"
[[ "$(pg_segment_name "$NS_P" "$S_PORT")" == 00000002* ]] ||
	fail "the promoted standby does not write timeline 2"
wait_for 30 "00000002.history on the replica" test -f "$RARCHIVE/00000002.history"
wait_for 30 "B streaming timeline 2 from the appliance" receiver_on 2
grep -q 'reached the end of timeline 1' "$TEST_DIR/ws-r1.log" ||
	fail "the appliance did not end B's stream at the end of timeline 1"
log "ok: the appliance ended timeline 1 at $(awk -F'\t' '$1 == 1 {print $2}' \
	"$RARCHIVE/00000002.history"); B streams timeline 2 from it"
psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(2001, 3000)"
# Where the insert's commit ends (synchronous_commit = off: S's write position may lag it).
wait_standby_lsn "$NS_R1" "$B_PORT" "$(pg_inserted_lsn "$NS_P" "$S_PORT")" 30
assert_same_data "$NS_P" "$S_PORT" "$NS_R1" "$B_PORT"
grep -q 'new target timeline is 2' "$BDATA.log" || fail "B did not adopt timeline 2"
# The walreceiver took the end of the timeline as PostgreSQL's (libpqrcv_endstreaming()).
grep -q 'End of WAL reached on timeline 1 at' "$BDATA.log" ||
	fail "B's walreceiver did not see the end of timeline 1"
if grep -E 'error reading result of streaming command|unexpected result' "$BDATA.log"; then
	fail "B's walreceiver refused the end-of-timeline sequence"
fi
log "ok: B holds the promoted server's data on timeline 2"

# START_REPLICATION on timeline 1 past its switch point, and on a timeline of no history:
# the appliance refuses as the promoted server does, which holds the same history
# (message, DETAIL, SQLSTATE XX000; psql's LOCATION line is PostgreSQL's source file).
refusal() { # refusal CONNINFO COMMAND
	in_ns "$NS_P" "$PG_BIN/psql" -X -A -t -v VERBOSITY=verbose "$1 user=postgres replication=true" \
		-c "$2" 2>&1 | grep -v '^LOCATION:' || true
}
for cmd in "START_REPLICATION FFFF/0 TIMELINE 1" "START_REPLICATION 0/0 TIMELINE 7"; do
	pg=$(refusal "host=$(pg_socket_dir "$SDATA") port=$S_PORT" "$cmd")
	[[ "$pg" == "ERROR:  XX000: "* ]] || fail "the promoted server's answer to $cmd: '$pg'"
	assert_eq "$pg" "$(refusal "host=$ADDR_R1 port=$PG_LISTEN_PORT" "$cmd")" \
		"the appliance's answer to $cmd"
	log "ok: $cmd: ${pg//$'\n'/ }"
done
log "PASS"
