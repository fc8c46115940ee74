#!/bin/bash
# t_98zb: a registered replica that comes back without segments it acknowledged is sent
# them again when they are pushed, though the stream settled them (issue 13).  One
# replica, sync_replicas = 1, the stream and archive_command = walship push, the archiver
# failing while a flag file exists.  Three segments are streamed and settled on the
# replica (acknowledged: safe); their pushes wait behind the flag.  The replica's disk is
# then replaced (its archive emptied, the same node name), it comes back, and the flag
# goes: the archiver pushes the three segments.
# - the pushes are not answered from what the stream settled (the replica that made them
#   safe lists none of them now): they are sent, and the replica stores them again, the
#   bytes it had stored the first time.  On the build before, each push was answered
#   "streamed already: durable on 1 replica(s)" and the replica never held them again.
# t_98zd runs it with sync_replicas = 0 (SYNC_REPLICAS), where a push is safe once held for
# every registered replica that lacks it: a first version of the fix still answered those
# pushes from memory there.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

SEG=$((16 * 1024 * 1024))
ws_setup
FLAG=$TEST_DIR/archive-off
touch "$FLAG"
PRIMARY_CONF_EXTRA=("sync_replicas=${SYNC_REPLICAS:-1}")
STREAM_ARCHIVE_COMMAND="test ! -e $FLAG && exec $WALSHIP push -c $TEST_DIR/ws-primary/walship.conf %p"
walship_stream_up on
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)" >/dev/null
first=$(($(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")") /
	SEG))
for ((i = 0; i < 3; i++)); do
	psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('x', 200)
		from generate_series(1, 2000) g; select pg_switch_wal()" >/dev/null
done
last=$((first + 2))
wait_for 60 "the replica to store segments $first to $last" held_all "$RARCHIVE" "$first" "$last"
wait_for 60 "the primary to count them durable" replica_holds $(((last + 1) * SEG))
archived=$(psql_at "$NS_P" "$PG_PORT" "select archived_count from pg_stat_archiver")
assert_eq 0 "$archived" "segments archived while the archiver fails"
mkdir "$TEST_DIR/first"
for ((s = first; s <= last; s++)); do
	cp "$RARCHIVE/$(seg_name "$s")" "$TEST_DIR/first/"
done
log "segments $first to $last streamed and acknowledged; none pushed yet"

walshipd_stop "$RCONF"
find "$RARCHIVE" -mindepth 1 -delete
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-new.log"
wait_for 30 "the replica streaming again" peers_streaming_are "$PCONF" 1
log "the replica came back with an empty archive; the archiver may push now"
rm "$FLAG"
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill values (0, 'wake'); select pg_switch_wal()" \
	>/dev/null
wait_for 90 "the replica to store segments $first to $last again" \
	held_all "$RARCHIVE" "$first" "$last"
for ((s = first; s <= last; s++)); do
	assert_file_identical "$TEST_DIR/first/$(seg_name "$s")" "$RARCHIVE/$(seg_name "$s")"
done
log "ok: the pushes of segments $first to $last were sent to the replica that lost them;" \
	"it holds them again, the same bytes"
log "PASS"
