#!/bin/bash
# t_98zc: a replica slower than the others does not keep every safe segment in the primary
# walshipd's memory (issue 13).  Two replicas, sync_replicas = 1, the stream the only
# source; ws-r2 is frozen (SIGSTOP: connected, its socket full) while 20 segments are
# written, each safe on ws-r1's acknowledgement and held in the spool for ws-r2.
# - the primary keeps at most a few of them for ws-r2 beyond those begun (its pushes in
#   progress stay few); the others wait in the spool, as for a replica that is away.  On
#   the build before, every segment stayed queued for ws-r2 in memory (16 MiB each) and
#   counted against max_queued_pushes, which then refused the archiver's pushes;
# - ws-r2, thawed, is sent the deferred segments from the spool and stores every one of
#   them, the same bytes as ws-r1.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

SEG=$((16 * 1024 * 1024))
N=20
ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
STREAM_REPLICA2=1
# ws-r2 is frozen below for longer than the default keepalive_timeout: it stays connected.
PRIMARY_CONF_EXTRA=(keepalive_timeout=10min)
walship_stream_up on
R2ARCHIVE=$TEST_DIR/ws-r2/archive
wait_for 30 "both replicas streaming" peers_streaming_are "$PCONF" 2
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int)" >/dev/null
first=$(($(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_insert_lsn()")") /
	SEG))
last=$((first + N - 1))
kill -STOP "${WS_DAEMON_PID[$R2CONF]}"
log "ws-r2 frozen; $N segments from $first on, each safe on ws-r1"
for ((i = 0; i < N; i++)); do
	psql_at "$NS_P" "$PG_PORT" "insert into ws_fill values ($i); select pg_switch_wal()" \
		>/dev/null
done
wait_for 120 "ws-r1 to store segments $first to $last" held_all "$RARCHIVE" "$first" "$last"
reported_past_last() {
	(($(walship_status "$PCONF" --json | jq -r '.source_flush_lsn') >= (last + 1) * SEG))
}
wait_for 60 "PostgreSQL to be told segment $last is durable" reported_past_last
queued=$(walship_status "$PCONF" --json | jq -r '.pushes_queued')
log "pushes in progress on the primary with ws-r2 frozen: $queued"
((queued <= 12)) || fail "$queued pushes in progress for a frozen replica: its safe" \
	"segments stayed in memory"

kill -CONT "${WS_DAEMON_PID[$R2CONF]}"
wait_for 120 "ws-r2 to store segments $first to $last" held_all "$R2ARCHIVE" "$first" "$last"
for ((s = first; s <= last; s++)); do
	assert_file_identical "$RARCHIVE/$(seg_name "$s")" "$R2ARCHIVE/$(seg_name "$s")"
done
log "ok: a frozen replica kept $queued pushes in progress on the primary; thawed, it" \
	"stored the $N segments, the same bytes as the other replica"
log "PASS"
