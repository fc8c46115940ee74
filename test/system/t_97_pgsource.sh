#!/bin/bash
# The streaming source (daemon/source/pgsource.c, issue 13) against a real PostgreSQL 15
# primary, through test/helpers/pgsource_run (the source on its own ring, writing what it
# receives as pg_receivewal --synchronous does):
#   (a) the completed segments it wrote equal pg_wal's, byte for byte;
#   (b) its slot exists and restart_lsn advanced, because it reported flush;
#   (c) named in synchronous_standby_names it is a sync standby and a commit with
#       synchronous_commit = on completes;
#   (d) a PostgreSQL restart during streaming is survived: it reconnects and continues
#       without a gap;
#   (e) a server with another system identifier is refused, with the reason;
#   (f) a silent server (walsender stopped) is given up on and streaming goes on;
#   (h) paused (back-pressure), it reads nothing, then leaves streaming (the slot
#       released); resumed, it streams again on the same connection and catches up
#       without a gap;
#   (g) streaming from a standby that is then promoted, it follows the switch to timeline 2:
#       the history file and the new timeline's segments equal the promoted server's.
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
pgsource_primary_setup
SLOT=t97_slot
APP=t97_rx

pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "true"
pg_start "$PDATA" "$NS_P"
sysid=$(pg_system_identifier "$PDATA")
CONNINFO="host=$ADDR_P port=$PG_PORT user=postgres connect_timeout=5"

connects_at_least() { (($(pgsource_field 5) >= $1)); }
received_at_least() { lsn_ge "$(pgsource_field 2)" "$1"; }
slot_restart_lsn() {
	psql_at "$NS_P" "$PG_PORT" \
		"select restart_lsn from pg_replication_slots where slot_name = '$SLOT'"
}
slot_reached() { lsn_ge "$(slot_restart_lsn)" "$1"; }
sync_state_is_sync() {
	[[ "$(psql_at "$NS_P" "$PG_PORT" "select sync_state from pg_stat_replication
		where application_name = '$APP'")" == sync ]]
}
helper_alive() { pid_alive "$RUN_PID" || fail "pgsource_run exited: $(tail -n 5 "$TEST_DIR/rx.log")"; }

# switch_and_wait: write some WAL, switch segments and wait until the helper has the
# segment that was completed; prints its name.
switch_and_wait() {
	local seg
	psql_at "$NS_P" "$PG_PORT" "insert into t97 select g, repeat('y', 100)
		from generate_series(1, 2000) g" >/dev/null
	seg=$(pg_segment_name "$NS_P" "$PG_PORT")
	psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
	wait_for 20 "segment $seg from the helper" test -f "$RX/$seg"
	helper_alive
	printf '%s\n' "$seg"
}

# compare_segments: every complete segment the helper wrote equals pg_wal's.
# A complete segment never changes (the helper renames it when done), so each is compared
# once.
declare -A COMPARED=()
compare_segments() {
	local f name n=0
	for f in "$RX"/*; do
		name=$(basename "$f")
		[[ "$name" =~ ^[0-9A-F]{24}$ ]] || continue
		n=$((n + 1))
		[[ -v "COMPARED[$name]" ]] && continue
		assert_file_identical "$f" "$PDATA/pg_wal/$name"
		COMPARED[$name]=1
	done
	((n >= 2)) || fail "only $n complete segments received"
	log "ok: $n received segments equal pg_wal's byte for byte"
}

log "pgsource_run in $NS_R1 streams from $ADDR_P (slot $SLOT, application_name $APP)"
bg_start "$TEST_DIR/rx.log" ip netns exec "$NS_R1" "$RUN" --conninfo "$CONNINFO" --dir "$RX" \
	--slot "$SLOT" --application-name "$APP" --status-file "$STATUS" --status-interval 1000
RUN_PID=$BG_PID
wait_for 20 "the helper streaming" pgsource_streaming
helper_alive
# The server's archiving is asked (the primary walshipd keeps a streamed segment's CRC
# only where pushes may come); this server has archive_mode = on.
grep -q "segment size 16777216, archiving on" "$TEST_DIR/rx.log" ||
	fail "the helper did not report archive_mode on: $(grep -m1 'server:' "$TEST_DIR/rx.log")"
first_restart=$(slot_restart_lsn)
[[ -n "$first_restart" ]] || fail "slot $SLOT does not exist or has no restart_lsn"
log "slot $SLOT created, restart_lsn $first_restart"

psql_at "$NS_P" "$PG_PORT" "create table t97 (i int, pad text)"
for _ in 1 2 3; do
	seg=$(switch_and_wait)
	log "received $seg"
done
# (a)
compare_segments

# (b): the flush reported moves the slot
now=$(pg_current_lsn "$NS_P" "$PG_PORT")
wait_for 20 "slot restart_lsn to reach $now" slot_reached "$now"
after=$(slot_restart_lsn)
if ! lsn_ge "$after" "$first_restart" || [[ "$after" == "$first_restart" ]]; then
	fail "restart_lsn did not advance from $first_restart (now $after)"
fi
log "ok: slot restart_lsn advanced from $first_restart to $after"

# (c): a synchronous standby
psql_at "$NS_P" "$PG_PORT" "alter system set synchronous_standby_names = '$APP'" >/dev/null
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
wait_for 20 "sync_state = sync for $APP" sync_state_is_sync
in_ns "$NS_P" timeout 20 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
		"host=$ADDR_P port=$PG_PORT user=postgres dbname=postgres" \
		-c "set synchronous_commit = on" -c "insert into t97 values (-1, 'sync')" ||
	fail "a synchronous commit did not complete with the helper as sync standby"
log "ok: $APP is a sync standby and a synchronous commit completed"

# (d): PostgreSQL restarts under the stream
before=$(pgsource_field 5)
log "restarting PostgreSQL (the helper has made $before connections)"
pg_stop "$PDATA" fast
pg_start "$PDATA" "$NS_P"
wait_for 30 "the helper to reconnect" connects_at_least $((before + 1))
wait_for 20 "the helper streaming again" pgsource_streaming
for _ in 1 2; do
	seg=$(switch_and_wait)
	log "received $seg after the restart"
done
compare_segments
assert_no_gap "$RX"
grep -q "starting WAL streaming at" "$TEST_DIR/rx.log" || fail "no start logged"
log "ok: restart survived ($(pgsource_field 5) connections, $(pgsource_field 6) disconnections)"

# (f): a silent server (its walsender stopped, the connection open) is given up after two
# status intervals, and the stream goes on through a new connection.
walsender=$(psql_at "$NS_P" "$PG_PORT" "select pid from pg_stat_replication
	where application_name = '$APP'")
[[ -n "$walsender" ]] || fail "no walsender for $APP"
before=$(pgsource_field 5)
kill -STOP "$walsender"
wait_for 15 "the helper to give up on the silent server" \
	grep -q "no message from the server for" "$TEST_DIR/rx.log"
kill -CONT "$walsender"
wait_for 30 "the helper to reconnect after the silence" connects_at_least $((before + 1))
seg=$(switch_and_wait)
compare_segments
assert_no_gap "$RX"
log "ok: $(grep -m1 -o 'terminating WAL streaming: .*' "$TEST_DIR/rx.log"); streaming again"

# (h): back-pressure: paused, the helper reads nothing; after two status intervals
# (2 s here) it leaves streaming (CopyDone: the walsender streams no more, its slot is
# released) and asks the server every interval; resumed, it starts streaming again on the
# same connection where it stopped and catches up without a gap.
slot_active() {
	[[ "$(psql_at "$NS_P" "$PG_PORT" "select active from pg_replication_slots
		where slot_name = '$SLOT'")" == t ]]
}
left_streaming() { [[ "$(pgsource_field 1)" == paused ]] && ! slot_active; }
before=$(pgsource_field 5)
kill -USR1 "$RUN_PID"
paused() { [[ "$(pgsource_field 8)" == 1 ]]; }
wait_for 10 "the helper to pause" paused
paused_at=$(pgsource_field 2)
for _ in 1 2 3; do
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into t97 values (0, 'paused'); select pg_switch_wal()" >/dev/null
done
target=$(pg_current_lsn "$NS_P" "$PG_PORT")
wait_for 20 "the paused helper to leave streaming" left_streaming
grep -q "WAL streaming stops until it goes on" "$TEST_DIR/rx.log" ||
	fail "the helper did not say it left streaming"
assert_eq "$paused_at" "$(pgsource_field 2)" "received LSN while paused"
[[ "$(pgsource_field 1)" == paused ]] || fail "the helper is $(pgsource_field 1), not paused"
log "ok: paused at $paused_at; out of streaming, the slot released, short of $target"
kill -USR2 "$RUN_PID"
wait_for 30 "the helper to catch up to $target" received_at_least "$target"
assert_eq "$before" "$(pgsource_field 5)" "connections across the pause"
grep -q "reading from the server goes on: streaming starts again" "$TEST_DIR/rx.log" ||
	fail "the helper did not say it started streaming again"
compare_segments
assert_no_gap "$RX"

kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
assert_eq 0 "$rc" "pgsource_run's exit status after SIGTERM"
tail -n 1 "$TEST_DIR/rx.log"

# (e): another system identifier is refused
wrong=$((sysid == 1 ? 2 : 1))
mkdir -p "$TEST_DIR/refused"
assert_exit 1 "the helper expecting system $wrong" in_ns "$NS_R1" timeout 20 "$RUN" \
	--conninfo "$CONNINFO" --dir "$TEST_DIR/refused" --slot "$SLOT" --sysid "$wrong" --once
grep -q "ERROR:  server has system identifier $sysid, expected $wrong" "$TEST_DIR/last.out" ||
	{ cat "$TEST_DIR/last.out"; fail "no refusal naming both system identifiers"; }
log "ok: $(grep -m1 'ERROR' "$TEST_DIR/last.out")"
# (g): a timeline switch, streaming from a standby that is promoted
SDATA=$TEST_DIR/pg-standby
S_PORT=5433
RX2=$TEST_DIR/received-tl
STATUS=$TEST_DIR/pgsource-tl.status
mkdir -p "$RX2"
# Before the base backup, which copies postgresql.auto.conf: the promoted standby must not
# wait for a synchronous standby.
psql_at "$NS_P" "$PG_PORT" "alter system reset synchronous_standby_names" >/dev/null
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$S_PORT" "false"
cat >>"$SDATA/postgresql.conf" <<-EOF
	primary_conninfo = 'host=$ADDR_P port=$PG_PORT user=postgres application_name=t97_standby'
EOF
pg_start "$SDATA" "$NS_R1"
log "pgsource_run streams from the standby $ADDR_R1:$S_PORT"
bg_start "$TEST_DIR/rx-tl.log" ip netns exec "$NS_R1" "$RUN" \
	--conninfo "host=$ADDR_R1 port=$S_PORT user=postgres connect_timeout=5" --dir "$RX2" \
	--slot t97_cascade --status-file "$STATUS" --status-interval 1000
RUN_PID=$BG_PID
wait_for 20 "the helper streaming from the standby" pgsource_streaming
seg=$(pg_segment_name "$NS_P" "$PG_PORT")
psql_at "$NS_P" "$PG_PORT" "insert into t97 values (-2, 'tl1'); select pg_switch_wal()" >/dev/null
wait_for 20 "segment $seg through the standby" test -f "$RX2/$seg"
log "promoting the standby"
in_ns "$NS_R1" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SDATA" -w -t 30 promote >/dev/null
seg2=$(psql_at "$NS_R1" "$S_PORT" "select pg_walfile_name(pg_current_wal_lsn())")
[[ "$seg2" == 00000002* ]] || fail "the promoted standby writes $seg2, not timeline 2"
psql_at "$NS_R1" "$S_PORT" "insert into t97 values (-3, 'tl2'); select pg_switch_wal()" >/dev/null
wait_for 20 "segment $seg2 of timeline 2 from the helper" test -f "$RX2/$seg2"
helper_alive
assert_file_identical "$RX2/00000002.history" "$SDATA/pg_wal/00000002.history"
assert_file_identical "$RX2/$seg2" "$SDATA/pg_wal/$seg2"
grep -q "switched to timeline 2 at" "$TEST_DIR/rx-tl.log" || fail "no switch logged"
assert_eq 2 "$(pgsource_field 4)" "timeline streamed after the promotion"
log "ok: $(grep -m1 -o 'switched to timeline 2 at .*' "$TEST_DIR/rx-tl.log"); $seg2 equals the promoted server's"
log "PASS"
