#!/bin/bash
# t_98x: the primary walshipd records where its reported flush position is
# (spool_dir/reported) and, started again, streams from there: at once, without waiting
# for a replica, and whatever the slot says.  Here:
#   - the replica holds the stream; the record names this cluster, timeline 1, and the
#     segment of the flush position walship reports;
#   - both walshipd are stopped and the slot dropped; a synchronous COMMIT waits (its WAL
#     in segment S); WAL moves on two segments and a checkpoint puts the redo point after
#     S, where the slot is made again (as t_98w: a slot made anew);
#   - the primary walshipd, started again alone, streams from the record's segment start
#     (the build before waited, paused out of streaming, for a replica to say what WAL it
#     holds), and reports it flushed: PostgreSQL moves the slot back there;
#   - the replica started again, the COMMIT returns only with S stored on the replica,
#     equal to pg_wal's (archive_command archives nowhere: the stream is the only way S
#     reaches the replica);
#   - a record ahead of the slot on its timeline: the stream starts at the slot; a record
#     on a timeline after the server's, and one past the server's WAL, are set aside.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
stream_up_holding t98x
RECORD=$TEST_DIR/ws-primary/spool/reported
sysid=$(psql_at "$NS_P" "$PG_PORT" "select system_identifier from pg_control_system()")

# The record: this cluster, timeline 1, in the segment of the flush position reported.
record_at_report() {
	local flush
	[[ -f "$RECORD" ]] || return 1
	read -r rsys rtli rlsn _ <"$RECORD"
	[[ "$(cat "$RECORD")" == "$(stream_record_line "$rsys" "$rtli" "$rlsn")" ]] ||
		fail "the record \"$(cat "$RECORD")\" does not carry its CRC-32C"
	flush=$(walship_status "$PCONF" --json | jq -r .source_flush_lsn) # (bytes)
	[[ "$rsys" == "$sysid" && "$rtli" == 1 ]] || fail "the record is \"$(cat "$RECORD")\""
	(($(lsn_to_int "$rlsn") <= flush)) ||
		fail "the record $rlsn is past the flush position reported, $flush"
	(($(lsn_to_int "$rlsn") >> 24 == flush >> 24)) # (16 MiB segments)
}
wait_for 30 "the record to name the segment of the flush position reported" record_at_report
log "record: $(cat "$RECORD")"
read -r _ _ rlsn _ <"$RECORD"
wait_for 10 "walship status to show the record" \
	bash -c "'$WALSHIP' status -c '$PCONF' | grep -q '^source record: *$rlsn ([0-9]*) on timeline 1'"
[[ "$(walship_status "$PCONF" --json | jq -r .source_recorded_timeline)" == 1 ]] ||
	fail "walship status --json does not give the record's timeline"

walshipd_stop "$PCONF"
walshipd_stop "$RCONF"
read -r _ _ rlsn _ <"$RECORD"
r=$(lsn_to_int "$rlsn")
r=$((r - r % (16 << 20)))
start=$(printf '%X/%X' $((r >> 32)) $((r & 0xFFFFFFFF)))
log "both walshipd stopped, the record at $rlsn (segment start $start)"
slot_made_anew_under_waiting_commit t98x

walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary-2.log"
streaming() {
	walship_status "$PCONF" --json | jq -e '.source_state == "streaming"' >/dev/null
}
wait_for 30 "the primary walshipd, alone, to stream" streaming
grep -q "walship reported WAL flushed up to $rlsn on timeline 1 before it restarted" \
	"$TEST_DIR/ws-primary-2.log" || fail "the primary walshipd did not go on from its record"
grep -q "starting WAL streaming at $start on timeline 1" "$TEST_DIR/ws-primary-2.log" ||
	fail "the primary walshipd did not stream from $start: $(grep 'starting WAL streaming' \
		"$TEST_DIR/ws-primary-2.log")"
! grep -q 'waiting for the replicas to say what WAL they hold' "$TEST_DIR/ws-primary-2.log" ||
	fail "the primary walshipd waited for the replicas"
pid_alive "$COMMIT_PID" || fail "the COMMIT returned with no replica: $(cat "$TEST_DIR/commit.out")"
# Reported at once as flushed (durable on the replica before the restart), so that
# PostgreSQL moves the slot made anew back there and keeps the WAL streamed from it.
slot_back() {
	[[ "$(psql_at "$NS_P" "$PG_PORT" "select restart_lsn from pg_replication_slots")" == "$start" ]]
}
wait_for 30 "the slot to be moved back to $start" slot_back
pid_alive "$COMMIT_PID" || fail "the COMMIT returned with no replica: $(cat "$TEST_DIR/commit.out")"
log "ok: the primary walshipd streams from $start, with no replica connected; the slot is there"

walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-2.log"
waiting_commit_returns_with_s
log "ok: the COMMIT waiting on $S returned with $S stored on the replica, equal to pg_wal's"

# A record ahead of the slot on its timeline: the stream starts at the slot, the earlier
# (the server's own position; a server restored from a snapshot may hold other WAL than
# the record's before the record).
walshipd_stop "$PCONF"
psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
	insert into t98x select g, repeat('z', 100) from generate_series(1, 500) g" >/dev/null
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
slot_at=$(psql_at "$NS_P" "$PG_PORT" "select restart_lsn from pg_replication_slots")
ahead=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
(($(lsn_to_int "$ahead") >> 24 > $(lsn_to_int "$slot_at") >> 24)) || # (16 MiB segments)
	fail "the server's position $ahead is not a segment past the slot's $slot_at"
stream_record_line "$sysid" 1 "$ahead" >"$RECORD"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary-3.log"
wait_for 30 "the primary walshipd to stream" streaming
grep -q "walship reported WAL flushed up to $ahead on timeline 1 before it restarted: streaming goes on from replication slot \"walship\"'s position $slot_at, before it" \
	"$TEST_DIR/ws-primary-3.log" || fail "the primary walshipd did not start at the slot, before its record: $(grep -E 'walship reported|starting WAL' "$TEST_DIR/ws-primary-3.log")"
log "ok: a record ahead of the slot ($ahead): streaming from the slot's position $slot_at"

# Records the server cannot stream from are set aside, and the start is chosen without
# them: one on a timeline after the server's, one past the server's WAL.
for bad in "9 $ahead" "1 FF/0"; do
	walshipd_stop "$PCONF"
	# shellcheck disable=SC2086  # two words: timeline, position
	stream_record_line "$sysid" $bad >"$RECORD"
	logf=$TEST_DIR/ws-primary-${bad%% *}.log
	walshipd_start "$NS_P" "$PCONF" "$logf"
	wait_for 30 "the primary walshipd to stream" streaming
	grep -q "walship reported WAL flushed up to ${bad#* } on timeline ${bad%% *} before it restarted, but streaming cannot start there: the server" \
		"$logf" || fail "record \"$bad\" not set aside: $(grep -E 'walship reported|starting WAL' "$logf")"
	log "ok: $(grep -o 'but streaming cannot start there: [^;]*' "$logf")"
done
WS_PSQL_TIMEOUT=30 psql_at "$NS_P" "$PG_PORT" "insert into t98x values (-2, 'after')" ||
	fail "a synchronous commit did not return after the restarts"
ws_check_daemons
log "PASS"
