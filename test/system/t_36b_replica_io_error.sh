#!/bin/bash
# Issue 11, defect 1: one replica's disk error is that replica's problem, not the
# cluster's.  Two replicas, sync_replicas = 1; ws-r2's archive_dir is a bind mount turned
# read-only while it runs, so it answers ACK IO_ERROR to every file.  Then:
# - pushes succeed (ws-r1 stored them; the spool holds them for ws-r2), where they used
#   to fail with `replica "ws-r2" refused it (io_error)`;
# - the primary counts the I/O errors and shows ws-r2 as failing, with its last error;
# - once the archive is writable again, the primary sends ws-r2 what it held, after its
#   backoff, on the same connection: byte-identical, and the spool empties;
# - a held file refused for its content on the retry (another file under its name, put
#   in ws-r2's archive by hand) ends the retry: ws-r2 is sent what streams again, on the
#   same connection (before, nothing more reached it until it reconnected).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_walship
require_cmds jq mount umount nsenter
require_postgres
net_create 2
PG_PORT=5432
PDATA=$TEST_DIR/pg-primary
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH" "$TEST_DIR/ws-primary" "$TEST_DIR/ws-r1" "$TEST_DIR/ws-r2"
chown postgres:postgres "$SCRATCH"
PCONF=$TEST_DIR/ws-primary/walship.conf
R1CONF=$TEST_DIR/ws-r1/walship.conf
R2CONF=$TEST_DIR/ws-r2/walship.conf
write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" push_timeout=10s
write_replica_conf "$R1CONF" "$TEST_DIR/ws-r1" "$NS_P"
# ws-r2's archive is a bind mount of itself: remounting it read-only later affects the
# descriptors its walshipd already holds.  `ip netns exec` gives the daemon a mount
# namespace of its own, where the remounts are made (ro_archive).  The directory is
# outside the test directory, so that ws_cleanup removes that one normally; the trap
# unmounts it after ws_cleanup has stopped the daemons, then removes it.
R2ARCHIVE=$(mktemp -d /tmp/walship-archive.XXXXXX)
chgrp postgres "$R2ARCHIVE"
chmod 2750 "$R2ARCHIVE"
trap 'ws_cleanup; rc=$?; umount "$R2ARCHIVE" 2>/dev/null || umount -l "$R2ARCHIVE" 2>/dev/null
	rm -rf "$R2ARCHIVE"; exit "$rc"' EXIT
mount --bind "$R2ARCHIVE" "$R2ARCHIVE" || skip "cannot bind-mount a directory here"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P" "archive_dir=$R2ARCHIVE"

log "making 6 real WAL segments"
pg_make_segments 6 "$SCRATCH"

# ro_archive ro|rw: remount ws-r2's archive read-only or writable, where its walshipd sees it.
ro_archive() {
	nsenter -t "${WS_DAEMON_PID[$R2CONF]}" -m mount -o "remount,bind,$1" "$R2ARCHIVE"
}
peer_field() {
	walship_status "$PCONF" --json |
		jq -r --arg n "$1" --arg f "$2" '[.peers[] | select(.name == $n)][0][$f]'
}
state_is() {
	test "$(peer_field "$1" state)" = "$2"
}
streaming_count() {
	walship_status "$PCONF" --json | jq '[.peers[] | select(.state == "streaming")] | length'
}
streaming_is() {
	test "$(streaming_count)" = "$1"
}
held_is() {
	test "$(peer_field "$1" held)" = "$2"
}
push() {
	assert_exit 0 "push $1" walship_push_as_postgres "$PCONF" "$SCRATCH/$1"
}

walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 20 "both replicas streaming" streaming_is 2
push "${SEGS[0]}"
wait_for 10 "ws-r2 to store ${SEGS[0]}" test -f "$R2ARCHIVE/${SEGS[0]}"
since=$(peer_field ws-r2 connected_since)

log "ws-r2's archive_dir turns read-only"
ro_archive ro
for seg in "${SEGS[@]:1:3}"; do
	push "$seg"
	assert_file_identical "$SCRATCH/$seg" "$TEST_DIR/ws-r1/archive/$seg"
	assert_file_absent "$R2ARCHIVE/$seg"
done
log "ok: 3 pushes succeeded while ws-r2 could not store them"
io_errors=$(status_counter "$PCONF" io_errors)
((io_errors >= 1)) || fail "the primary counted no I/O error of ws-r2"
assert_eq failing "$(peer_field ws-r2 state)" "ws-r2's state"
last_error=$(peer_field ws-r2 last_error)
[[ "$last_error" == *"Read-only file system"* ]] ||
	fail "ws-r2's last error does not say why: '$last_error'"
assert_eq 3 "$(peer_field ws-r2 held)" "files held for ws-r2"
assert_eq 0 "$(peer_field ws-r1 held)" "files held for ws-r1"
walship_status "$PCONF" | grep -q "peer ws-r2 (.*): failing" ||
	fail "walship status does not show ws-r2 failing"
log "ok: $io_errors I/O error(s) counted; ws-r2 failing: $last_error"

log "ws-r2's archive_dir is writable again: it gets what was held, on the same connection"
ro_archive rw
wait_for 40 "the held files to reach ws-r2" held_is ws-r2 0
for seg in "${SEGS[@]:0:4}"; do
	assert_file_identical "$SCRATCH/$seg" "$R2ARCHIVE/$seg"
done
wait_for 10 "ws-r2 streaming again" state_is ws-r2 streaming
assert_eq 0 "$(status_counter "$PCONF" spool_files)" "files in the spool"
assert_eq "$since" "$(peer_field ws-r2 connected_since)" "ws-r2's connection (not reconnected)"
grep -q 'replica "ws-r2" stores files again' "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not log ws-r2's recovery"

log "a held file refused for its content ends ws-r2's retry"
ro_archive ro
push "${SEGS[4]}"
wait_for 10 "ws-r2 failing" state_is ws-r2 failing
assert_eq 1 "$(peer_field ws-r2 held)" "files held for ws-r2"
# Another file under the held one's name, put there outside walship (in the test's mount
# namespace, where the archive stays writable): the copy sent again is refused as a
# conflict once the archive is writable, and its claim is released.
cp "$SCRATCH/${SEGS[5]}" "$R2ARCHIVE/${SEGS[4]}"
conflicts=$(status_counter "$PCONF" conflicts)
ro_archive rw
wait_for 40 "ws-r2's retry to end" grep -q \
	'replica "ws-r2": nothing held for it is left to send again' "$TEST_DIR/ws-primary.log"
((conflicts < $(status_counter "$PCONF" conflicts))) || fail "no conflict counted"
assert_eq 0 "$(peer_field ws-r2 held)" "files held for ws-r2 after the refusal"
assert_file_identical "$SCRATCH/${SEGS[5]}" "$R2ARCHIVE/${SEGS[4]}"
push "${SEGS[5]}"
wait_for 20 "ws-r2 to store ${SEGS[5]} on the same connection" \
	test -f "$R2ARCHIVE/${SEGS[5]}"
assert_file_identical "$SCRATCH/${SEGS[5]}" "$R2ARCHIVE/${SEGS[5]}"
wait_for 10 "ws-r2 streaming again" state_is ws-r2 streaming
assert_eq "$since" "$(peer_field ws-r2 connected_since)" "ws-r2's connection (not reconnected)"
log "ok: the refusal ended the retry; ${SEGS[5]} reached ws-r2"
log "PASS"
