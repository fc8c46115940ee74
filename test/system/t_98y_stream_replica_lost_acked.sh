#!/bin/bash
# t_98y: a replica that acknowledged unsettled segments comes back without them (issue 13).
# Two replicas, sync_replicas = 2, the stream the only source (archive_command =
# /bin/true).  ws-r1 is stopped: segments that a session not waiting for standbys writes
# reach ws-r2, which stores and acknowledges them, but stay unsettled (one replica of two).
# ws-r2's disk is then replaced (its archive emptied, the same node name) and it comes
# back; then ws-r1 comes back.
# - ws-r2's old acknowledgements no longer count: it is sent those segments again and
#   stores them (on the build before, each settled at ws-r1's acknowledgement with its WAL
#   on ws-r1 alone, and ws-r2 was never sent it again);
# - both archives then hold every segment from the first unsettled one on, the same bytes.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

SEG=$((16 * 1024 * 1024))
ws_setup
PRIMARY_CONF_EXTRA=(sync_replicas=2)
STREAM_ARCHIVE_COMMAND=/bin/true
STREAM_REPLICA2=1
walship_stream_up on
R2ARCHIVE=$TEST_DIR/ws-r2/archive
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)" >/dev/null
lsn=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")")
wait_for 60 "both replicas to hold up to $lsn" replica_holds "$lsn"

r1_flush=$(walship_status "$PCONF" --json | jq -r '.peers[] | select(.name == "ws-r1") | .flush_lsn')
walshipd_stop "$RCONF"
# The segment being written: complete on ws-r2 alone once the first switch below ends it.
first=$(($(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")") /
	SEG))
log "ws-r1 stopped; segments from $first on that do not wait for standbys"
for ((i = 0; i < 3; i++)); do
	psql_at "$NS_P" "$PG_PORT" "set synchronous_commit = local;
		insert into ws_fill select g, repeat('x', 200) from generate_series(1, 2000) g;
		select pg_switch_wal()" >/dev/null
done
last=$((first + 2))
wait_for 60 "ws-r2 to store segments $first to $last" held_all "$R2ARCHIVE" "$first" "$last"
# ws-r1, away, keeps the position it left with, and lags behind it in bytes and in time
# (the build before: no position, and no lag in time).
away=$(walship_status "$PCONF" --json | jq -c '.peers[] | select(.name == "ws-r1")')
log "ws-r1 away: $away"
[[ $(jq -r .state <<<"$away") == away ]] || fail "ws-r1 is not shown away"
assert_eq "$r1_flush" "$(jq -r .flush_lsn <<<"$away")" "ws-r1's durable position while away"
(($(jq -r .lag_bytes <<<"$away") >= 2 * SEG)) || fail "ws-r1 away lags less than 2 segments"
(($(jq -r .lag_us <<<"$away") > 0)) || fail "ws-r1 away shows no lag in time"
unsettled=$(walship_status "$PCONF" --json | jq -r '.stream_unsettled // empty')
log "ws-r2 stored segments $first to $last; unsettled on the primary: ${unsettled:-?}"

walshipd_stop "$R2CONF"
find "$R2ARCHIVE" -mindepth 1 -delete
log "ws-r2's archive emptied; ws-r2 started again, then ws-r1"
walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2-new.log"
wait_for 30 "ws-r2 to store segments $first to $last again" held_all "$R2ARCHIVE" "$first" "$last"
grep -q "replica \"ws-r2\" does not list \"$(seg_name "$first")\", which it acknowledged" \
	"$TEST_DIR/ws-primary.log" || fail "the primary did not take back ws-r2's acknowledgement"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-new.log"
wait_for 60 "ws-r1 to store segments $first to $last" held_all "$RARCHIVE" "$first" "$last"
for ((s = first; s <= last; s++)); do
	assert_file_identical "$RARCHIVE/$(seg_name "$s")" "$R2ARCHIVE/$(seg_name "$s")"
done
log "ok: ws-r2 was sent again what it had acknowledged and lost; both hold segments" \
	"$first to $last, the same bytes"
log "PASS"
