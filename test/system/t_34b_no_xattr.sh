#!/bin/bash
# Issue 3 and 6: a replica whose archive_dir keeps no extended attributes and has no direct
# I/O (ramfs).  Resuming needs the durable-length record (user.walship.resume); without it
# a transfer cut short must be received again from its start, never resumed from a guess.
# - `walship check` on the replica warns about both (WARN, exit 0);
# - the replica says once that it writes buffered and once that cut transfers restart;
# - SIGKILLed in the middle of a segment (past checkpoint_interval), at its restart it
#   removes the partial file instead of keeping it, the primary sends the file from offset
#   0, and the completed file is byte-identical; nothing acknowledged is lost
#   (check_invariants) and the standby catches up.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds mount umount setfattr
# The mount point is outside the test directory (see t_36): the trap unmounts it after
# ws_cleanup has stopped the daemons.
MNT=$(mktemp -d /tmp/walship-ramfs.XXXXXX)
trap 'ws_cleanup; rc=$?; umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; rmdir "$MNT"
	exit "$rc"' EXIT
mount -t ramfs -o mode=0755 walship-ramfs "$MNT" || skip "cannot mount a ramfs here"
mkdir "$MNT/archive"
touch "$MNT/probe"
if setfattr -n user.walship.probe -v 1 "$MNT/probe" 2>/dev/null; then
	skip "this kernel's ramfs keeps extended attributes: no file system without them at hand"
fi
rm "$MNT/probe"
log "archive_dir on a ramfs at $MNT (no user xattrs, no O_DIRECT)"

# shellcheck disable=SC2034  # read by lib.sh
PG_ARCHIVE_TIMEOUT=5s
REPLICA_CONF_EXTRA=("archive_dir=$MNT/archive")
chgrp postgres "$MNT/archive"
chmod 2750 "$MNT/archive"
inv_topology_up 1
RARCHIVE=$MNT/archive

lsn=$(pg_finish_load "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$PG_PORT" "$lsn" 60

run_capture "$TEST_DIR/check-standby.out" "$WALSHIP" check -B "$PG_BIN" -c "$RCONF" -D "$SDATA"
sed 's/^/    | /' "$TEST_DIR/check-standby.out"
assert_eq 0 "$RC" "walship check's exit status (warnings only)"
grep -q '^WARN  archive_dir xattrs' "$TEST_DIR/check-standby.out" ||
	fail "walship check did not warn that archive_dir keeps no extended attributes"
grep -q '^WARN  archive_dir direct I/O' "$TEST_DIR/check-standby.out" ||
	fail "walship check did not warn that archive_dir has no direct I/O"
log "ok: walship check warns about both"

assert_eq 1 "$(grep -c 'direct I/O is not available in' "$TEST_DIR/ws-r1.log")" \
	"replica notices of buffered writes"
assert_eq 1 "$(grep -c 'keeps no extended attributes: a pushed segment cut short is received again' \
	"$TEST_DIR/ws-r1.log")" "replica notices of no xattrs"
log "ok: the replica said once each that it writes buffered and cannot resume"

# kill_replica_mid_write: complete a segment on the primary and SIGKILL the replica
# walshipd once 8 MiB of it are in .incoming (about 1.7 s at 40 Mbit/s, past the 1 s
# checkpoint_interval); true (INCOMING set) if the file was still there after the kill.
kill_replica_mid_write() {
	local pid=${WS_DAEMON_PID[$RCONF]} deadline f
	pg_complete_segment "$NS_P" "$PG_PORT" >/dev/null
	deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		for f in "$RARCHIVE"/.incoming/*; do
			[[ -f "$f" ]] || continue
			(($(stat -c %s "$f") >= 8 * 1024 * 1024)) || continue
			kill -KILL "$pid"
			walshipd_kill "$RCONF"
			if [[ -e "$f" ]]; then
				INCOMING=$f
				return 0
			fi
			return 1
		done
		ws_sleep 0.05
	done
	fail "no segment grew to 8 MiB in $RARCHIVE/.incoming within 30 s"
}

kill_mid_file kill_replica_mid_write "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log" "the replica walshipd"
name=$(basename "$INCOMING")
name=${name%.*}
log "replica killed while writing $name ($(stat -c %s "$INCOMING") bytes in .incoming)"
[[ ! -f "$RARCHIVE/$name" ]] || fail "$name is under its final name although its write was cut"

starts_before=$(grep -c 'walshipd .* starting as replica' "$TEST_DIR/ws-r1.log")
log "restarting the replica walshipd"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 30
wait_archived "$name" 60
[[ ! -e "$INCOMING" ]] || fail "the cut $(basename "$INCOMING") is still in .incoming"

# Sent again whole: removed at the start, not kept, not resumed by either end.
restart_log=$TEST_DIR/ws-r1.restart.log
awk -v n="$starts_before" '/walshipd .* starting as replica/ {s++} s > n' \
	"$TEST_DIR/ws-r1.log" >"$restart_log"
grep -q 'removed 1 incomplete file(s)' "$restart_log" ||
	fail "the restarted replica did not remove the partial file"
! grep -q 'kept partial file' "$TEST_DIR/ws-r1.log" ||
	fail "the replica kept a partial file it has no durable-length record for"
! grep -q "resuming \"$name\"" "$TEST_DIR/ws-r1.log" "$TEST_DIR/ws-primary.log" ||
	fail "$name was resumed although no durable length was recorded"
assert_eq 0 "$(status_counter "$RCONF" resumed_files)" "replica resumed_files"
log "ok: $name removed at the restart and received again from its start"

final=$(pg_finish_load "$NS_P" "$PG_PORT")
log "primary at $final; waiting for the standby"
wait_standby_lsn "$NS_R1" "$PG_PORT" "$final" 90
assert_no_gap "$RARCHIVE"
check_invariants -P "$PCONF" -R "$RCONF" -D "$NS_P $PG_PORT $NS_R1 $PG_PORT"
log "PASS"
