#!/bin/bash
# t_99: a PostgreSQL 15 standby streams from the appliance (issue 14, the walsender
# endpoint).  The primary host streams WAL to a replica walshipd (walship_stream_up); the
# replica serves it on pg_listen.  A standby on the replica host, made from a base backup,
# has primary_conninfo pointing at the appliance (and restore_command = walship fetch as
# its fallback).  Under pgbench load on the primary it catches up: its replay position
# reaches the primary's, its data equals the primary's, pg_stat_wal_receiver shows it
# streaming from the appliance, and `walship status --json` on the appliance shows it with
# its write, flush and replay positions (and the temporary slot its walreceiver creates,
# and its hot standby feedback), as does /metrics.  The access rules: a user no rule admits, an SQL
# session and a logical replication connection are refused with PostgreSQL's words.
# pg_receivewal pointed at the appliance stores the same bytes as its archive, and one that
# asks for a segment the appliance does not hold gets PostgreSQL's "has already been
# removed" (what sends a standby back to restore_command).
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5433
SB_PORT=5434
ws_setup
require_cmds jq curl
mkdir -p "$TEST_DIR/ws-r1"
HBA=$TEST_DIR/ws-r1/hba.conf
cat >"$HBA" <<-EOF
	# TYPE     ROLE     NODE_NAME  CERT_NAME  ADDRESS
	reject     standby  intruder   all        all
	hostnossl  standby  postgres   all        10.77.0.0/16
EOF
chmod 0644 "$HBA"
METRICS_PORT=9199
REPLICA_CONF_EXTRA=("pg_listen=0.0.0.0:$PG_LISTEN_PORT" "hba_file=$HBA"
	"metrics_listen=127.0.0.1:$METRICS_PORT")
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "create table marker (i int primary key)"
pgbench_at "$NS_P" "$PG_PORT" -i -s 2 -q >/dev/null 2>&1 || fail "pgbench -i failed"

# The standby on the replica host, streaming from the appliance.
SDATA=$TEST_DIR/pg-standby
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$SB_PORT" \
	"$WALSHIP fetch -c $RCONF %f %p"
cat >>"$SDATA/postgresql.conf" <<-EOF
	primary_conninfo = 'host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres application_name=sb1'
	wal_receiver_status_interval = 1s
	wal_receiver_create_temp_slot = on
	hot_standby_feedback = on
EOF
pg_start "$SDATA" "$NS_R1"

receiver_streaming() {
	[[ "$(psql_at "$NS_R1" "$SB_PORT" "select status || ' ' || sender_host || ':' ||
		sender_port from pg_stat_wal_receiver")" == "streaming $ADDR_R1:$PG_LISTEN_PORT" ]]
}
wait_for 30 "the standby streaming from the appliance ($ADDR_R1:$PG_LISTEN_PORT)" \
	receiver_streaming
log "ok: pg_stat_wal_receiver: $(psql_at "$NS_R1" "$SB_PORT" \
	"select status, sender_host, sender_port, received_tli from pg_stat_wal_receiver")"

# Load on the primary while the standby streams.
pgbench_at "$NS_P" "$PG_PORT" -T 8 -c 4 -R 300 -n >"$TEST_DIR/pgbench.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench.out" >&2; fail "pgbench failed"; }
log "pgbench: $(grep -E '^(number of transactions actually processed|tps)' \
	"$TEST_DIR/pgbench.out" | tr '\n' ' ')"
psql_at "$NS_P" "$PG_PORT" "insert into marker values (1)"
target=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 30
log "ok: the standby replayed up to $(pg_replay_lsn "$NS_R1" "$SB_PORT") (primary flushed $target)"
receiver_streaming || fail "the standby does not stream from the appliance any more"
assert_same_data "$NS_P" "$PG_PORT" "$NS_R1" "$SB_PORT"
log "ok: the standby holds the primary's data"
# The replica writes streamed segments with O_DIRECT from their memory image, and the
# walsender reads the growing segment from that image (never through the page cache,
# which each direct write drops); the standby's data above came that way.  Unless the
# archive refuses direct I/O (the replica logs so).
syncs=$(status_counter "$RCONF" stream_syncs)
((syncs > 0)) || fail "the replica made no streamed WAL durable (stream_syncs = 0)"
assert_stream_direct "$RCONF" "$TEST_DIR/ws-r1.log"
log "ok: $syncs group commits, $STREAM_DIRECT of them direct writes (pg_listen on)"

# The appliance's view: the standby with its three positions.
standby_reported() {
	local replay
	replay=$(walship_status "$RCONF" --json | jq -er '.standbys[] |
		select(.application_name == "sb1" and .state == "streaming") | .replay_lsn') ||
		return 1
	lsn_ge "$replay" "$target"
}
wait_for 15 "walship status to show sb1 replayed up to $target" standby_reported
log "ok: walship status --json: $(walship_status "$RCONF" --json | jq -c '.standbys[0]')"
# wal_receiver_create_temp_slot: the temporary slot was created and is streamed through.
walship_status "$RCONF" --json | jq -e '.standbys[] | select(.application_name == "sb1") |
	.slot | startswith("pg_walreceiver_")' >/dev/null ||
	fail "the standby does not stream through its temporary slot"
standby_feedback() {
	walship_status "$RCONF" --json |
		jq -e '.standbys[] | select(.application_name == "sb1") | .xmin > 0' >/dev/null
}
wait_for 10 "the standby's hot standby feedback (xmin) in walship status" standby_feedback
lags=$(walship_status "$RCONF" --json | jq -ec '.standbys[] | select(.application_name == "sb1") |
	select(.write_lag_ms >= 0 and .flush_lag_ms >= 0 and .replay_lag_ms >= 0) |
	{write_lag_ms, flush_lag_ms, replay_lag_ms}') || fail "the standby's lags were not measured"
log "ok: lags measured on the appliance (the last, after the load): $lags"
walship_status "$RCONF" | grep -q "standby sb1 (user postgres" ||
	fail "walship status (text) does not show the standby"
# (Captured first: grep -q closing the pipe early would fail curl under pipefail.)
metrics=$(in_ns "$NS_R1" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics")
grep -q '^walship_standby_replay_lsn_bytes{application_name="sb1",addr="' <<<"$metrics" ||
	fail "/metrics does not show the standby's replay position"

# Refusals, in PostgreSQL's words: seen by libpq as the server's error.
refused_with() {
	local conninfo=$1 expected=$2 out
	if out=$(in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$conninfo connect_timeout=5" \
		-c "IDENTIFY_SYSTEM" 2>&1); then
		fail "connection '$conninfo' was admitted: $out"
	fi
	[[ "$out" == *"$expected"* ]] || fail "connection '$conninfo': '$out', not '$expected'"
	log "ok: refused: ${out//$'\n'/ }"
}
base="host=$ADDR_R1 port=$PG_LISTEN_PORT"
refused_with "$base user=intruder replication=true" \
	"pg_hba.conf rejects replication connection for host \"$ADDR_P\", user \"intruder\""
refused_with "$base user=stranger replication=true" \
	"no pg_hba.conf entry for replication connection from host \"$ADDR_P\", user \"stranger\""
refused_with "$base user=postgres dbname=postgres" "serves physical replication only"
refused_with "$base user=postgres dbname=postgres replication=database" \
	"logical replication is not supported"
refused_with "$base user=postgres replication=maybe" \
	'FATAL:  invalid value for parameter "replication": "maybe"'
refused=$(status_counter "$RCONF" hba_refused)
((refused >= 2)) || fail "hba_refused is $refused, not at least 2"

# A replication command through the admitted connection, as pg_receivewal asks.
sys=$(in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$base user=postgres replication=true" \
	-c "IDENTIFY_SYSTEM") || fail "IDENTIFY_SYSTEM failed"
[[ "${sys%%|*}" == "$(pg_system_identifier "$PDATA")" ]] ||
	fail "IDENTIFY_SYSTEM answered '$sys', not the primary's system identifier"
seg=$(in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$base user=postgres replication=true" \
	-c "SHOW wal_segment_size")
assert_eq "16MB" "$seg" "SHOW wal_segment_size"
archiving=$(in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$base user=postgres replication=true" \
	-c "SHOW archive_mode")
assert_eq "off" "$archiving" "SHOW archive_mode (an appliance pushes nothing)"
log "ok: IDENTIFY_SYSTEM $sys, SHOW wal_segment_size $seg, SHOW archive_mode $archiving"

# Commands refused with PostgreSQL 15's SQLSTATE, the connection answering the next one.
command_error() {
	local cmd=$1 expected=$2 out
	out=$(in_ns "$NS_P" "$PG_BIN/psql" -X -A -t -v VERBOSITY=verbose \
		"$base user=postgres replication=true" -c "$cmd" -c "IDENTIFY_SYSTEM" 2>&1) || true
	[[ "$out" == *"$expected"* ]] || fail "'$cmd' answered '$out', not '$expected'"
	[[ "$out" == *"$(pg_system_identifier "$PDATA")|"* ]] ||
		fail "the connection did not answer IDENTIFY_SYSTEM after '$cmd': '$out'"
	log "ok: '$cmd' refused: ${out%%$'\n'*}"
}
command_error "SELECT 1" "ERROR:  0A000: cannot execute SQL commands in WAL sender"
command_error "BASE_BACKUP (LABEL 'x')" "ERROR:  0A000: BASE_BACKUP is not supported"
command_error "START_REPLICATION SLOT" "ERROR:  42601: syntax error"

# pg_receivewal pointed at the appliance stores the same bytes as the appliance's archive.
RW=$TEST_DIR/receivewal
mkdir -p "$RW" && chown postgres:postgres "$RW"
streams_before=$(grep -c 'standby "pg_receivewal" .* streams from' "$TEST_DIR/ws-r1.log" || true)
bg_start "$TEST_DIR/receivewal.log" as_postgres_in "$NS_P" "$PG_BIN/pg_receivewal" \
	-d "$base user=postgres" -D "$RW" -n --no-sync
RECEIVEWAL=$BG_PID
# pg_receivewal starts at the segment of the position the appliance reports when it asks:
# the segment is completed only once it streams, or it would start after that segment.
receivewal_streams() {
	(($(grep -c 'standby "pg_receivewal" .* streams from' "$TEST_DIR/ws-r1.log") > streams_before))
}
wait_for 30 "pg_receivewal to stream from the appliance" receivewal_streams
completed=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$completed"
wait_for 30 "pg_receivewal to store $completed" test -f "$RW/$completed"
assert_file_identical "$RARCHIVE/$completed" "$RW/$completed"
log "ok: pg_receivewal stored $completed from the appliance, identical to the archive's"
# pg_receivewal itself (the only one in NS_P), not only the shell that started it, which
# left it streaming on until the appliance's SIGKILL below.
kill "$(ns_pids "$NS_P" pg_receivewal)" "$RECEIVEWAL" 2>/dev/null || true

# A start point the appliance no longer holds: PostgreSQL's error, so that a standby falls
# back to restore_command.  pg_receivewal starts after the newest segment of its directory.
# (segment 0 does not exist: the oldest segment it could start from is 2)
first=$(find "$RARCHIVE" -maxdepth 1 -name '00000001000000000000000[2-9A-F]' -printf '%f\n' |
	sort | head -n 1)
[[ -n "$first" ]] || fail "no segment from 2 on of timeline 1 in $RARCHIVE"
before=$(printf '%08X%08X%08X' 1 0 $((16#${first:16:8} - 1)))
RW2=$TEST_DIR/receivewal-gap
mkdir -p "$RW2"
truncate -s 16M "$RW2/$before"
chown -R postgres:postgres "$RW2"
mv "$RARCHIVE/$first" "$TEST_DIR/$first.removed"
if out=$(as_postgres_in "$NS_P" timeout 20 "$PG_BIN/pg_receivewal" -d "$base user=postgres" \
	-D "$RW2" -n --no-sync 2>&1); then
	fail "pg_receivewal from $first (removed) succeeded: $out"
fi
[[ "$out" == *"requested WAL segment $first has already been removed"* ]] ||
	fail "pg_receivewal from a removed segment: '$out'"
log "ok: ${out//$'\n'/ }"
mv "$TEST_DIR/$first.removed" "$RARCHIVE/$first"

# Hostile input on pg_listen drops that connection only: each is closed by the appliance
# (cat reaches the end of the connection), and the standby streams on.
# (closed or reset: the appliance may close with our bytes unread; 124 is the timeout)
hostile() {
	local what=$1 bytes=$2 rc=0
	in_ns "$NS_P" timeout 10 bash -c "exec 3<>/dev/tcp/$ADDR_R1/$PG_LISTEN_PORT || exit 3
		printf '$bytes' >&3; cat <&3 >/dev/null 2>&1; exit 0" 2>/dev/null || rc=$?
	((rc != 124 && rc != 3)) ||
		fail "$what: the appliance did not close the connection (status $rc)"
	log "ok: $what: connection closed"
}
startup='\x00\x00\x00\x28\x00\x03\x00\x00user\x00postgres\x00replication\x00true\x00\x00'
hostile "HTTP request" 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
hostile "oversized startup packet" '\x00\x01\x00\x00\x00\x03\x00\x00'
hostile "oversized message" "${startup}Q\x7f\xff\xff\xff"
hostile "message length under 4" "${startup}Q\x00\x00\x00\x02"
hostile "unknown message type" "${startup}z\x00\x00\x00\x04"
hostile "data after SSLRequest" '\x00\x00\x00\x08\x04\xd2\x16\x2fjunk'
ws_check_daemons
receiver_streaming || fail "the standby stopped streaming after the hostile connections"

# The appliance SIGKILLed and started again: the standby reconnects and catches up.
walshipd_kill "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
psql_at "$NS_P" "$PG_PORT" "insert into marker values (2)"
target=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 30
wait_for 15 "the standby streaming from the restarted appliance" receiver_streaming
assert_same_data "$NS_P" "$PG_PORT" "$NS_R1" "$SB_PORT"
log "ok: after a SIGKILL of the appliance the standby streams again, at $target"
log "PASS"
