#!/bin/bash
# t_98m: the replica's acknowledged bytes of a segment outlive a NAME.partial that holds
# fewer of them (issue 13).  After the primary host is lost, a standby that had received
# less is promoted and archives the old timeline's last segment as NAME.partial, with
# fewer bytes than the replica acknowledged durable of NAME (commits returned on them).
# The replica kept those bytes as a partial of NAME when its link to the primary walshipd
# went; storing NAME.partial must not remove them.
# - The primary walshipd streams; the replica acknowledges bytes of the current segment;
#   the primary walshipd is SIGKILLed: the replica keeps NAME's durable bytes (logged).
# - A primary walshipd without a stream source (the promoted host's) is sent NAME.partial
#   made of pg_wal's NAME cut a page short of the replica's durable length, zeros after.
# - It is stored; the replica's copy of NAME is set aside in archive_dir/.refused (logged,
#   counted as set_aside), its durable bytes equal to pg_wal's NAME; nothing of NAME is
#   left in .incoming; `walship check` warns.  The build before 392e0f8 removed the copy.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
STREAM_ARCHIVE_COMMAND=/bin/true
walship_stream_up off
segment_part_durable t
seg=$PART_SEG

log "SIGKILL of the primary walshipd with $seg streaming"
walshipd_kill "$PCONF"
wait_for 30 "the replica to keep the durable bytes of $seg" grep -q "kept \"$seg\" for resuming" \
	"$TEST_DIR/ws-r1.log"
durable=$(grep -o "kept \"$seg\" for resuming: [0-9]*" "$TEST_DIR/ws-r1.log" | tail -n 1 |
	grep -o '[0-9]*$')
less=$(((durable - 1) / 8192 * 8192))
((less > 0)) || fail "the replica kept only $durable bytes of $seg"
log "ok: the replica keeps $durable durable bytes of $seg; NAME.partial will hold $less"

mkdir -p "$TEST_DIR/promoted"
head -c "$less" "$PDATA/pg_wal/$seg" >"$TEST_DIR/promoted/$seg.partial"
head -c $((16 * 1024 * 1024 - less)) /dev/zero >>"$TEST_DIR/promoted/$seg.partial"
chown -R postgres:postgres "$TEST_DIR/promoted"
PUSH_CONF=$TEST_DIR/ws-primary/push-only.conf
write_primary_conf "$PUSH_CONF" "$TEST_DIR/ws-primary" "$NS_P"
walshipd_start "$NS_P" "$PUSH_CONF" "$TEST_DIR/ws-primary.log"
wait_replica_streaming "$PUSH_CONF" 20
run_capture "$TEST_DIR/push.out" walship_push_as_postgres "$PUSH_CONF" \
	"$TEST_DIR/promoted/$seg.partial"
assert_eq 0 "$RC" "exit status of pushing $seg.partial ($(cat "$TEST_DIR/push.out"))"
assert_file_identical "$TEST_DIR/promoted/$seg.partial" "$RARCHIVE/$seg.partial"

wait_for 10 "the replica to set its copy of $seg aside" grep -q "set \"$seg\.[0-9]*\" aside" \
	"$TEST_DIR/ws-r1.log"
log "ok: $(grep -o "set \"$seg\.[0-9]*\" aside.*" "$TEST_DIR/ws-r1.log")"
assert_eq 1 "$(status_counter "$RCONF" set_aside)" "files set aside (set_aside)"
aside=("$RARCHIVE/.refused/$seg".*)
[[ -f "${aside[0]}" ]] || fail "nothing named $seg.* in $RARCHIVE/.refused"
cmp -s -n "$durable" "${aside[0]}" "$PDATA/pg_wal/$seg" ||
	fail "the first $durable bytes of ${aside[0]} are not pg_wal's $seg's"
[[ -z "$(find "$RARCHIVE/.incoming" -name "$seg.*")" ]] ||
	fail "a copy of $seg is still in .incoming: $(ls "$RARCHIVE/.incoming")"
log "ok: ${aside[0]#"$RARCHIVE"/} holds pg_wal's first $durable bytes of $seg"

run_capture "$TEST_DIR/check.out" "$WALSHIP" check -c "$RCONF"
sed 's/^/    | /' "$TEST_DIR/check.out"
assert_eq 0 "$RC" "walship check's exit status (warnings only)"
grep -q "^WARN  refused files.*1 file(s) set aside" "$TEST_DIR/check.out" ||
	fail "walship check did not warn about the file set aside"
log "PASS"
