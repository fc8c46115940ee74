#!/bin/bash
# t_99j: a delayed standby stays delayed across segment switches (issue 14).  The replica's
# archive is a ramfs (no O_DIRECT), so streamed segments are written buffered and a
# segment's last bytes count as durable only when it is stored (fsync, rename), which the
# next segment's first group commit often precedes.  The appliance serves a standby with
# standby_delay = sb1:1h: nothing committed during the test is due, so what it sends sb1
# not move, nor what was sent to sb1, through four segment switches, nor through a restart
# of the appliance.
# The build before this test took the segment still being stored for a gap, forgot the
# commits it knew and sent the next segment's start.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5433
SB_PORT=5434
ws_setup
require_cmds jq
REPLICA_CONF_EXTRA=("standby_delay=sb1:1h")
archive_on_ramfs_no_direct
ws_pg_listen_trust "$PG_LISTEN_PORT"
walship_stream_up on
RARCHIVE=$MNT/archive

SDATA=$TEST_DIR/pg-standby
pg_standby_on_appliance "$SDATA" "$SB_PORT" sb1
sb1() {
	walship_status "$RCONF" --json | jq -er --arg f "$1" '.standbys[] |
		select(.application_name == "sb1" and .state == "streaming") | .[$f]'
}
wait_for 30 "sb1 streaming from the appliance" sb1 send_limit
limit=$(sb1 send_limit)
sent=$(sb1 sent_lsn)
log "sb1 streams, delayed 1 h: send limit $limit, sent up to $sent (where it began)"

# Synchronous commits, many group commits to a segment: its last bytes often come with
# its end, made durable by the fsync before its rename rather than by a group commit.
start=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_lsn()")
log "pgbench -i -s 6 (about 5 segments of WAL) from $start"
pgbench_at "$NS_P" "$PG_PORT" -i -s 6 -q >"$TEST_DIR/pgbench-init.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench-init.out"; fail "pgbench -i failed"; }
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
(($(lsn_to_int "$final") / 16777216 - $(lsn_to_int "$start") / 16777216 >= 4)) ||
	fail "the load wrote $start to $final: fewer than four segment switches"

wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"
assert_eq 0 "$(status_counter "$RCONF" stream_direct_syncs)" "direct group commits (buffered)"
now=$(sb1 send_limit)
now_sent=$(sb1 sent_lsn)
[[ "$now" == "$limit" ]] ||
	fail "sb1's send limit moved from $limit to $now, though nothing committed is 1 h old"
[[ "$now_sent" == "$sent" ]] || fail "sb1 was sent up to $now_sent, from $sent"
log "ok: up to $final, four segment switches and more: sb1's send limit is still $limit," \
	"nothing more sent"

# A restart of the appliance does not open the delay: the segments stored before it carry
# no commit the new index knows, and are held back by their last writes (minutes old, not
# an hour).  The build before sent sb1 everything before the segment being received when
# the daemon started.
log "the replica walshipd restarted; more WAL after it"
walshipd_stop "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_for 30 "walship back as a synchronous standby" pg_sync_standby "$NS_P" "$PG_PORT" \
	"$(conf_get "$PCONF" node_name)"
psql_at "$NS_P" "$PG_PORT" "create table after_restart (i int); insert into after_restart values (1)"
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_for 60 "the replica to hold up to $final" replica_holds "$(lsn_to_int "$final")"
wait_for 30 "sb1 streaming from the appliance again" sb1 send_limit
# (the index began at the first durable growth after the start, before $final was held)
after=$(sb1 send_limit)
after_sent=$(sb1 sent_lsn)
(($(lsn_to_int "$after") <= $(lsn_to_int "$sent"))) ||
	fail "after the restart sb1's send limit is $after, past where it began ($sent)"
[[ "$after_sent" == "$sent" ]] || fail "after the restart sb1 was sent up to $after_sent, from $sent"
received=$(psql_at "$NS_R1" "$SB_PORT" "select pg_last_wal_receive_lsn()")
[[ -z "$received" ]] || lsn_ge "$sent" "$received" ||
	fail "sb1 received up to $received after the restart, past where it began ($sent)"
log "ok: after the restart sb1's send limit is $after, nothing more sent (received: ${received:-none})"
log "PASS"
