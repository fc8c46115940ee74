#!/bin/bash
# Issue 11, defect 12: a push that times out says what it waited for.  With
# sync_replicas = 1, ws-r1 connected and a second registered replica away, a push is
# answered once ws-r1 has stored it and the spool holds it for the other.  The spool lives
# on a loop-mounted ext4 image, frozen (fsfreeze) so that the copy into it cannot finish:
# the push then fails at push_timeout saying the acknowledgement came and the spool copy
# did not finish, not "only 1 of 1 required replica acknowledgements".  Thawed, the same
# file is pushed again with success.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds mkfs.ext4 losetup mount umount fsfreeze
IMG=$TEST_DIR/spool.img
# The mount point is outside the test directory, so that ws_cleanup removes that one
# normally; the trap thaws the file system first (ws_cleanup would hang on it), and
# unmounts it after ws_cleanup has stopped the daemons.
MNT=$(mktemp -d /tmp/walship-fs.XXXXXX)
chmod 0755 "$MNT"
trap 'rc=$?; set +e; fsfreeze -u "$MNT" 2>/dev/null; (exit "$rc"); ws_cleanup; rc=$?
	umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; rmdir "$MNT"; exit "$rc"' EXIT

truncate -s 128M "$IMG"
mkfs.ext4 -q -m 0 "$IMG" || skip "mkfs.ext4 cannot make a file system image here"
mount -o loop "$IMG" "$MNT" || skip "cannot loop-mount an ext4 image (no loop device?)"
# ws-away: registered earlier, not connected now; the spool holds every push for it.
mkdir -p "$MNT/spool/replicas/ws-away"
PRIMARY_CONF_EXTRA=("spool_dir=$MNT/spool" push_timeout=2s spool_delay=0)
walship_daemons_up

# The pushed files live on the spool's file system: copy_file_range() does not cross file
# systems (issue 11, defect 2, a separate matter).
WAL=$MNT/wal
mkdir -m 0755 "$WAL"
log "making 2 real WAL segments"
pg_make_segments 2 "$WAL"

assert_exit 0 "push ${SEGS[0]}" walship_push_as_postgres "$PCONF" "$WAL/${SEGS[0]}"
assert_eq 1 "$(status_counter "$PCONF" spool_files)" "files held for ws-away"

log "the spool's file system is frozen: the copy into it cannot finish"
fsfreeze -f "$MNT"
assert_fails "push ${SEGS[1]} with the spool frozen" \
	walship_push_as_postgres "$PCONF" "$WAL/${SEGS[1]}"
reason=$(cat "$TEST_DIR/last.out")
[[ "$reason" != *"required replica acknowledgements"* ]] ||
	fail "the push blames the acknowledgements, which came: $reason"
[[ "$reason" == *"durable on 1 replica(s) (ws-r1)"* && "$reason" == *"spool"* ]] ||
	fail "the push does not say it waited for the spool copy: $reason"
assert_file_identical "$WAL/${SEGS[1]}" "$RARCHIVE/${SEGS[1]}"
log "ok: $reason"

fsfreeze -u "$MNT"
assert_exit 0 "push ${SEGS[1]} again, thawed" \
	walship_push_as_postgres "$PCONF" "$WAL/${SEGS[1]}"
log "PASS"
