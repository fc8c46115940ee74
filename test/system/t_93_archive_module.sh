#!/bin/bash
# PostgreSQL's archive module (issue 15, item 3): archive_library = 'walship_archive' in
# place of archive_command, with real PostgreSQL 15.
#  1. segments archived through the module reach the replica and are identical to the
#     primary's, over one connection kept by the archiver (the same socket across files);
#  2. with the primary walshipd down, archiving fails (pg_stat_archiver.failed_count
#     rises, PostgreSQL's log says why, the segment stays ready) and nothing is lost once
#     it is back: the replica's archive has every segment, without a gap;
#  3. a restart of walshipd between files is survived: the module sees its kept
#     connection closed, connects again, and the next file is archived with no failure;
#     the idle kept connection does not hold up walshipd's stops;
#  4. while walshipd holds a push (no replica), a shutdown request (SIGTERM) to the
#     archiver ends the module's wait at once instead of after walshipd's verdict;
#  5. a walshipd that does not accept (frozen, its socket's backlog full): the module's
#     connect waits on the archiver's latch, and a shutdown request ends it at once
#     (before, connect() blocked in the kernel for walship.timeout, deaf to signals).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PGMOD=$WS_ROOT/build/walship_archive.so
ws_setup
[[ -f "$PGMOD" ]] || skip "$PGMOD not built (postgresql-server-dev-15 missing?): run make"
runuser -u postgres -- test -r "$PGMOD" || fail "user postgres cannot read $PGMOD"

walship_daemons_up
sock=$(conf_get "$PCONF" socket)
log "PostgreSQL primary in $NS_P: archive_library = walship_archive"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" ""
cat >>"$PDATA/postgresql.conf" <<EOF
archive_library = '${PGMOD%.so}'
walship.socket = '$sock'
walship.timeout = 30s
EOF
pg_start "$PDATA" "$NS_P"

# archiver_stat FIELD: a column of pg_stat_archiver.
archiver_stat() {
	psql_at "$NS_P" "$PG_PORT" "select $1 from pg_stat_archiver"
}

# archiver_stat_is FIELD OP VALUE: test(1) of a pg_stat_archiver column against VALUE
# (for wait_for: the query runs at every poll).
archiver_stat_is() {
	test "$(archiver_stat "$1")" "$2" "$3"
}

# archiver_waits_on_extension: true while the archiver waits in the module (its wait
# event is PG_WAIT_EXTENSION's).
archiver_waits_on_extension() {
	test "$(psql_at "$NS_P" "$PG_PORT" "select wait_event_type from pg_stat_activity
		where backend_type = 'archiver'")" == Extension
}

# archiver_sockets: the inodes of the archiver process's sockets, sorted, one line.
archiver_sockets() {
	local pid
	pid=$(psql_at "$NS_P" "$PG_PORT" \
		"select pid from pg_stat_activity where backend_type = 'archiver'")
	[[ -n "$pid" ]] || fail "no archiver process"
	find "/proc/$pid/fd" -lname 'socket:*' -printf '%l\n' | sort | tr '\n' ' '
}

# archived_and_identical SEG: SEG reaches the replica and is the primary's byte for byte.
archived_and_identical() {
	wait_archived "$1" 30
	fetch_and_compare "$1" "$PDATA/pg_wal/$1"
}

log "1. segments go through the module to the replica, over one connection"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
archived_and_identical "$seg"
sockets_before=$(archiver_sockets)
[[ -n "${sockets_before// /}" ]] || fail "the archiver holds no socket after archiving"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
archived_and_identical "$seg"
assert_eq "$sockets_before" "$(archiver_sockets)" "archiver's sockets across two files"
wait_for 10 "pg_stat_archiver to show $seg" archiver_stat_is last_archived_wal == "$seg"
assert_eq 0 "$(archiver_stat failed_count)" "failed_count with walshipd up"

log "2. walshipd down: the archiver fails, says why, and retries"
walshipd_stop "$PCONF"
failed_before=$(archiver_stat failed_count)
seg_down=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_for 30 "failed_count above $failed_before" archiver_stat_is failed_count -gt "$failed_before"
grep -q "WARNING:  could not connect to walshipd at \"$sock\"" "$PDATA.log" ||
	fail "no WARNING about the unreachable walshipd in $PDATA.log"
grep -q "CONTEXT:  archiving write-ahead log file \"$seg_down\" through walshipd" \
	"$PDATA.log" || fail "the WARNING does not name $seg_down as CONTEXT"
test -f "$PDATA/pg_wal/archive_status/$seg_down.ready" ||
	fail "$seg_down is no longer marked ready while walshipd is down"
assert_file_absent "$RARCHIVE/$seg_down"

log "   walshipd back: nothing is lost"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
wait_replica_streaming "$PCONF" 20
# A new segment wakes the archiver, which takes the oldest ready file first.
seg_after=$(pg_complete_segment "$NS_P" "$PG_PORT")
archived_and_identical "$seg_down"
archived_and_identical "$seg_after"
assert_no_gap "$RARCHIVE"

log "3. a restart of walshipd between files: the kept connection is replaced, no failure"
failed_before=$(archiver_stat failed_count)
walshipd_stop "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
wait_replica_streaming "$PCONF" 20
reconnects_before=$(grep -c "walshipd closed the connection at \"$sock\"; connecting again" \
	"$PDATA.log" || true)
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
archived_and_identical "$seg"
assert_eq "$failed_before" "$(archiver_stat failed_count)" "failed_count across the restart"
reconnects=$(grep -c "walshipd closed the connection at \"$sock\"; connecting again" \
	"$PDATA.log" || true)
((reconnects == reconnects_before + 1)) ||
	fail "expected one more reconnection in $PDATA.log, saw $reconnects_before then $reconnects"
assert_no_gap "$RARCHIVE"
# The kept connection, idle between files, does not hold up the daemon's stops.
if grep -q "stopping with work still in flight" "$TEST_DIR/ws-primary.log"; then
	fail "walshipd waited for work in flight while stopping (the kept connection?)"
fi

log "4. a shutdown request to the archiver ends its wait for walshipd's verdict"
# With the replica away, walshipd holds the push for push_timeout (20 s); the archiver
# waits on its latch and the socket, and SIGTERM (a shutdown request) ends that wait.
walshipd_stop "$RCONF"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_for 30 "the archiver waiting for walshipd's verdict on $seg" archiver_waits_on_extension
archiver_pid=$(psql_at "$NS_P" "$PG_PORT" \
	"select pid from pg_stat_activity where backend_type = 'archiver'")
kill -TERM "$archiver_pid"
wait_for 30 "the archiver to give $seg up on the shutdown request" grep -q \
	"WARNING:  archiving of \"$seg\" through walshipd interrupted by shutdown request" \
	"$PDATA.log"
if grep -q "could not archive \"$seg\"" "$PDATA.log"; then
	fail "the archiver waited for walshipd's verdict on $seg despite the shutdown request"
fi

log "5. a frozen walshipd with a full backlog: a shutdown request ends the connect"
# PostgreSQL stopped (the archiver, told to stop in 4, would sit out a minute before a
# new one starts), set to wait far beyond this step (only the shutdown request can end
# the connect), and started again once walshipd stops accepting: its new archiver takes
# $seg, still ready, and connects.
pg_stop "$PDATA"
echo "walship.timeout = 10min" >>"$PDATA/postgresql.conf"
ppid=${WS_DAEMON_PID[$PCONF]}
kill -STOP "$ppid"
# Connections nobody accepts, until the backlog refuses more; held until killed.
bg_start "$TEST_DIR/backlog.log" python3 -c '
import socket, sys, time
held = []
while True:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.setblocking(False)
    try:
        s.connect(sys.argv[1])
    except BlockingIOError:
        break
    held.append(s)
print(len(held), "held", flush=True)
time.sleep(3600)
' "$sock"
holder=$BG_PID
wait_for 10 "the backlog of $sock to be full" grep -q held "$TEST_DIR/backlog.log"
pg_start "$PDATA" "$NS_P"
# Before, the archiver blocked in connect() (no wait event), deaf to signals.
wait_for 30 "the archiver's connect to wait on its latch" archiver_waits_on_extension
gave_up_line="WARNING:  archiving of \"$seg\" through walshipd interrupted by shutdown request"
# gave_up N: the archiver gave $seg up on a shutdown request more than N times.
gave_up() {
	(($(grep -c "$gave_up_line" "$PDATA.log") > $1))
}
before=$(grep -c "$gave_up_line" "$PDATA.log")
kill -TERM "$(psql_at "$NS_P" "$PG_PORT" \
	"select pid from pg_stat_activity where backend_type = 'archiver'")"
wait_for 30 "the archiver to give $seg up while connecting" gave_up "$before"
kill "$holder"
kill -CONT "$ppid"

log "PASS: $WS_TEST_NAME"
