#!/bin/bash
# t_99k: a held standby's WAL outlives its connection under retention (issue 14;
# docs/operations.md, "Retention").  The replica keeps retain_size = 16MB (the newest
# segment) and serves pg_listen.  A client (pg_receivewal, application name "held") is
# held (`walship hold held`) and then goes away; the primary switches four segments.  The
# WAL after the hold is what `walship release` sends it, so retention keeps every segment
# from the hold's on, connected or not: the floor in walship status is at or before the
# hold.  On the build before 3a7bb7a those segments were removed once the client left.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5444
ws_setup
require_cmds jq
REPLICA_CONF_EXTRA=(retain_size=16MB)
ws_pg_listen_trust "$PG_LISTEN_PORT"
walship_stream_up off
switch_segments 1 >/dev/null

RW=$TEST_DIR/receivewal
mkdir -p "$RW" && chown postgres:postgres "$RW"
bg_start "$TEST_DIR/receivewal.out" in_ns "$NS_P" runuser -u postgres -- \
	"$PG_BIN/pg_receivewal" -d "host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres
	application_name=held" -D "$RW" -n --no-sync
RW_PID=$BG_PID
held_streaming() {
	walship_status "$RCONF" --json |
		jq -e '.standbys[] | select(.application_name == "held" and
			.state == "streaming")' >/dev/null
}
wait_for 20 "pg_receivewal streaming from the appliance" held_streaming
out=$("$WALSHIP" hold -c "$RCONF" held) || fail "walship hold held failed"
log "ok: $out"
held_at=$(walship_status "$RCONF" --json | jq -er '.standbys[] |
	select(.application_name == "held") | .send_limit')
# This test's pg_receivewal, the only one in NS_P: not the newest on the host, which may be
# another test's.
HELD_PID=$(ns_pids "$NS_P" pg_receivewal) || fail "no pg_receivewal process in $NS_P"
[[ "$HELD_PID" =~ ^[0-9]+$ ]] || fail "more than one pg_receivewal in $NS_P: $HELD_PID"
kill -KILL "$HELD_PID" 2>/dev/null || true
wait "$RW_PID" 2>/dev/null || true
gone() { ! walship_status "$RCONF" --json | jq -e '.standbys[] |
	select(.application_name == "held")' >/dev/null; }
wait_for 20 "the held client to be gone" gone
log "the held client (held at $held_at) is gone; four segment switches"

removed=$(status_counter "$RCONF" retain_removed_files)
switch_segments 4 >/dev/null
newest=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name(pg_current_wal_lsn())")
# Segment 1, before the hold, is outside retain_size and goes: a pass that removes it ran
# with segments after the hold outside retain_size too.
passed() { (($(status_counter "$RCONF" retain_removed_files) > removed)); }
wait_for 30 "a retention pass that removes something" passed
switch_segments 1 >/dev/null
floor=$(status_counter "$RCONF" retain_floor_lsn)
((floor <= $(lsn_to_int "$held_at"))) ||
	fail "the retention floor $floor is past the hold at $held_at"
held_seg=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name('$held_at'::pg_lsn)")
[[ -f "$RARCHIVE/$held_seg" ]] || fail "segment $held_seg, holding the hold at $held_at, was removed"
kept=$(find "$RARCHIVE" -maxdepth 1 -regextype egrep -regex '.*/[0-9A-F]{24}$' | wc -l)
((kept >= 5)) || fail "only $kept segments kept after the hold at $held_at"
log "ok: the hold at $held_at keeps $kept segments from $held_seg (retain_size alone keeps" \
	"one; floor $floor, newest $newest)"
log "PASS"
