#!/bin/bash
# t_98d: a timeline switch in the stream (issue 13).  The primary walshipd streams from a
# standby, which is then promoted: walship follows to timeline 2 from the switch point, as
# pg_receivewal does.  The replica then holds 00000002.history and the new timeline's
# segments byte for byte as in the promoted server's pg_wal, the old timeline's last
# segment as NAME.partial (what arrived of it, the new segment's first bytes), and no
# incoming copy of that cut segment is left behind (FILE_CANCEL; what of it was
# acknowledged durable is kept until NAME.partial is stored).  A replica that comes after
# the switch is sent 00000002.history too.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
S_PORT=5433
SDATA=$TEST_DIR/pg-standby
# The source is the standby, through its local socket (it comes up after walshipd, which
# retries meanwhile).
PRIMARY_CONF_EXTRA=("pg_conninfo='host=$(pg_socket_dir "$SDATA") port=$S_PORT user=postgres'")
walship_stream_up off
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_P" "$S_PORT" false
cat >>"$SDATA/postgresql.conf" <<EOF
primary_conninfo = 'host=$(ns_addr "$NS_P") port=$PG_PORT user=postgres application_name=t98d'
synchronous_standby_names = ''
EOF
pg_start "$SDATA" "$NS_P"
wait_replica_streaming "$PCONF" 20
source_streaming() {
	walship_status "$PCONF" --json | jq -e '.source_state == "streaming"' >/dev/null
}
wait_for 30 "the primary walshipd streaming from the standby" source_streaming

# WAL of timeline 1 through the standby: a whole segment, then part of the next.  (The
# primary commits asynchronously, synchronous_commit = off: its write position,
# pg_current_wal_lsn(), can lag behind what was inserted: pg_inserted_lsn.)
psql_at "$NS_P" "$PG_PORT" "create table t (i int); insert into t select generate_series(1, 1000)"
seg1=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$(pg_inserted_lsn "$NS_P" "$PG_PORT")')")
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
psql_at "$NS_P" "$PG_PORT" "insert into t select generate_series(1, 1000)"
wait_for 30 "segment $seg1 of timeline 1 on the replica" test -f "$RARCHIVE/$seg1"
standby_at() {
	lsn_ge "$(psql_at "$NS_P" "$S_PORT" "select pg_last_wal_replay_lsn()")" "$1"
}
ins=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
wait_for 30 "the standby to replay the insert" standby_at "$ins"
# The replica acknowledges durable bytes of the segment the promotion will cut.
wait_for 30 "the replica durable up to the insert" replica_holds "$(lsn_to_int "$ins")"

log "promoting the standby (the primary walshipd's source) while it streams timeline 1"
in_ns "$NS_P" runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SDATA" -w -t 30 promote >/dev/null
psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(1, 1000)"
seg2=$(pg_segment_name "$NS_P" "$S_PORT")
[[ "$seg2" == 00000002* ]] || fail "the promoted standby writes $seg2, not timeline 2"
psql_at "$NS_P" "$S_PORT" "select pg_switch_wal()" >/dev/null
wait_for 30 "00000002.history on the replica" test -f "$RARCHIVE/00000002.history"
wait_for 30 "segment $seg2 of timeline 2 on the replica" test -f "$RARCHIVE/$seg2"
assert_file_identical "$SDATA/pg_wal/00000002.history" "$RARCHIVE/00000002.history"
assert_file_identical "$SDATA/pg_wal/$seg2" "$RARCHIVE/$seg2"
log "ok: 00000002.history and $seg2 as in the promoted server's pg_wal"
# Kept in the primary's spool too, though no replica lacks it (spool_keep_history()): a
# held .partial of timeline 1 is compared with the promoted server's own up to the switch.
spool_history=$(conf_get "$PCONF" spool_dir)/wal/00000002.history
wait_for 10 "00000002.history kept in the primary's spool" test -f "$spool_history"
assert_file_identical "$SDATA/pg_wal/00000002.history" "$spool_history"

# The cut segment of timeline 1, the one holding the switch point (named from the history
# file: the primary's position read before the promotion can be a segment behind it):
# shipped as .partial, its bytes the new segment's first.
switch=$(awk -F'\t' '$1 == 1 {print $2}' "$RARCHIVE/00000002.history")
seg_bytes=$((16 * 1024 * 1024))
segno=$(($(lsn_to_int "$switch") / seg_bytes))
off=$(($(lsn_to_int "$switch") % seg_bytes))
cut=$(printf '00000001%08X%08X' $((segno / 256)) $((segno % 256)))
((off > 0)) || fail "timeline 1 ends at a segment boundary ($switch): no segment was cut"
assert_eq "${seg2:8}" "${cut:8}" "the segment of the switch point $switch on both timelines"
wait_for 30 "$cut.partial on the replica" test -f "$RARCHIVE/$cut.partial"
assert_eq "$seg_bytes" "$(stat -c %s "$RARCHIVE/$cut.partial")" "size of $cut.partial"
cmp -s -n "$off" "$RARCHIVE/$cut.partial" "$SDATA/pg_wal/$seg2" ||
	fail "$cut.partial's first $off bytes are not $seg2's"
cmp -s -i "$off:0" -n $((seg_bytes - off)) "$RARCHIVE/$cut.partial" /dev/zero ||
	fail "$cut.partial is not zero after the switch point $switch"
log "ok: $cut.partial: $seg2's first $off bytes (up to the switch at $switch), then zeros"
# Its incoming copy, cancelled (FILE_CANCEL), holds acknowledged bytes: it is kept while
# nothing else on the replica holds them, and goes once $cut.partial, which begins with
# them, is stored (never set aside: nothing in .refused).
no_incoming_copy() { [[ -z "$(find "$RARCHIVE/.incoming" -name "$cut.*")" ]]; }
wait_for 10 "no incoming copy of the cut segment $cut left on the replica" no_incoming_copy
kept=$(grep -o "kept \"$cut\" for resuming.*" "$TEST_DIR/ws-r1.log") ||
	fail "the replica did not keep the acknowledged bytes of the cancelled $cut"
gone=$(grep -o "discarded \"$cut\.[0-9]*\" ([0-9]* durable bytes): \"$cut.partial\" holds them" \
	"$TEST_DIR/ws-r1.log") ||
	fail "the replica did not discard its copy of $cut once $cut.partial held its bytes"
[[ ! -d "$RARCHIVE/.refused" || -z "$(ls -A "$RARCHIVE/.refused")" ]] ||
	fail "files set aside: $(ls "$RARCHIVE/.refused")"
log "ok: $kept; then $gone"

# The primary walshipd started again on the promoted server (timeline 2 from the start:
# its history, fetched before streaming, tells the role where timeline 1 ended): it goes
# on on timeline 2 from its record, and the next segment reaches the replica whole.
walshipd_stop "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary-2.log"
psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(1, 1000)"
seg3=$(pg_segment_name "$NS_P" "$S_PORT")
psql_at "$NS_P" "$S_PORT" "select pg_switch_wal()" >/dev/null
wait_for 30 "segment $seg3 of timeline 2 on the replica" test -f "$RARCHIVE/$seg3"
assert_file_identical "$SDATA/pg_wal/$seg3" "$RARCHIVE/$seg3"
grep -q "walship reported WAL flushed up to [0-9A-F/]* on timeline 2 before it restarted" \
	"$TEST_DIR/ws-primary-2.log" || fail "the primary walshipd did not go on from its record on timeline 2"
log "ok: started again on timeline 2, $seg3 stored as in the promoted server's pg_wal"

# The replica away, the primary walshipd started again: where the replica stood on
# timeline 2 is read back from its note in the spool, and the history the stream starts
# with cuts only what was held of an ended timeline (the build before cut the note to
# where timeline 1 ended, $switch).
psql_at "$NS_P" "$S_PORT" "insert into t select generate_series(1, 1000)"
ins=$(pg_inserted_lsn "$NS_P" "$S_PORT")
wait_for 30 "the replica durable up to $ins" replica_holds "$(lsn_to_int "$ins")"
r1_state() {
	walship_status "$PCONF" --json |
		jq -r '.peers[] | select(.name == "ws-r1") | .state + " " + .flush_lsn'
}
r1_flush=$(r1_state)
r1_flush=${r1_flush#* }
walshipd_stop "$RCONF"
r1_away() { [[ $(r1_state) == "away $r1_flush" ]]; }
wait_for 10 "ws-r1 away at $r1_flush" r1_away
walshipd_stop "$PCONF"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary-3.log"
wait_for 30 "the primary walshipd streaming from the promoted server" source_streaming
assert_eq "away $r1_flush" "$(r1_state)" "ws-r1 after a restart on timeline 2"
log "ok: ws-r1, away, still shown at $r1_flush after a restart on timeline 2"

# A replica that comes after the switch is sent timeline 2's history (shipped once, before
# it came): else its walship fetch could not take a recovery onto timeline 2.
R2CONF=$TEST_DIR/ws-r2/walship.conf
mkdir -p "$TEST_DIR/ws-r2"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P"
walshipd_start "$NS_R1" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 30 "00000002.history on the replica that came after the switch" \
	test -f "$TEST_DIR/ws-r2/archive/00000002.history"
assert_file_identical "$SDATA/pg_wal/00000002.history" "$TEST_DIR/ws-r2/archive/00000002.history"
log "ok: the replica that came after the switch holds 00000002.history"
log "PASS"
