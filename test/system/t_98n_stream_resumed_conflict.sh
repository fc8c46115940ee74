#!/bin/bash
# t_98n: a streamed segment resumed as a whole file, then refused for its content, keeps
# the bytes the replica acknowledged of it (issue 13).  The replica acknowledges durable
# bytes of the segment being streamed (PROGRESS) and is stopped; the segment completes on
# the primary walshipd meanwhile, so that after the restart it is resumed from the
# replica's durable length as a whole file, without the stream's flag, and the replica
# found its partial at start, which does not say whether it was streamed.  Another file
# is stored under the segment's name while the replica is stopped, so the resumed file is
# refused at its end (CONFLICT).
# - It is set aside in archive_dir/.refused (logged, counted as set_aside), whole and equal
#   to pg_wal's segment: not removed, as the build before 392e0f8 did;
# - the stored file under that name is untouched.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up off
SEG=$((16 * 1024 * 1024))
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)" >/dev/null
seg=$(pg_segment_name "$NS_P" "$PG_PORT")
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('x', 200)
	from generate_series(1, 5000) g" >/dev/null
ins=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
[[ "$(pg_segment_name "$NS_P" "$PG_PORT")" == "$seg" ]] || fail "the insert filled $seg"
wait_for 30 "the replica durable up to the insert ($ins)" replica_holds "$(lsn_to_int "$ins")"

log "replica walshipd stopped with $seg half streamed"
walshipd_stop "$RCONF"
grep -q "kept \"$seg\" for resuming" "$TEST_DIR/ws-r1.log" ||
	fail "the stopping replica did not keep the durable bytes of $seg"
# After its bytes were acknowledged: a file already stored under the name of a segment
# being streamed is compared as the bytes arrive, and none that differ is acknowledged
# (t_98l).
head -c "$SEG" /dev/urandom >"$TEST_DIR/stray"
cp "$TEST_DIR/stray" "$RARCHIVE/$seg"
log "a stray file stored as $seg, the segment being streamed, while the replica is stopped"
segno=$(($(lsn_to_int "$ins") / SEG))
psql_at "$NS_P" "$PG_PORT" "insert into ws_fill select g, repeat('x', 200)
	from generate_series(1, 5000) g; select pg_switch_wal()" >/dev/null
received_past() {
	local received
	received=$(walship_status "$PCONF" --json | jq -r '.source_received_lsn')
	[[ "$received" =~ ^[0-9]+$ ]] && ((received >= (segno + 1) * SEG))
}
wait_for 30 "the primary walshipd to receive the whole of $seg" received_past
log "ok: $seg is whole on the primary walshipd; replica walshipd started again"

walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_for 60 "the replica to set $seg aside" grep -q "set \"$seg\" aside" "$TEST_DIR/ws-r1.log"
grep -q "resuming \"$seg\" at offset" "$TEST_DIR/ws-r1.log" ||
	fail "the replica did not resume $seg (the case under test)"
grep -q "refused \"$seg\": \"$seg\" is already stored with different content" \
	"$TEST_DIR/ws-r1.log" || fail "the replica did not say why it refused $seg"
log "ok: $(grep -o "resuming \"$seg\" at offset.*" "$TEST_DIR/ws-r1.log"); then" \
	"$(grep -o "set \"$seg\" aside.*" "$TEST_DIR/ws-r1.log")"
assert_eq 1 "$(status_counter "$RCONF" set_aside)" "files set aside (set_aside)"
aside=("$RARCHIVE/.refused/$seg".*)
[[ -f "${aside[0]}" ]] || fail "nothing named $seg.* in $RARCHIVE/.refused"
cmp -s "${aside[0]}" "$PDATA/pg_wal/$seg" ||
	fail "the file set aside, ${aside[0]}, differs from pg_wal's $seg"
cmp -s "$RARCHIVE/$seg" "$TEST_DIR/stray" || fail "the stored $seg was changed"
log "ok: ${aside[0]#"$RARCHIVE"/} equals pg_wal's $seg; the stored $seg is kept as it was"
log "PASS"
