#!/bin/bash
# Issue 11, defect 2: WAL on another file system than the spool.  The primary's pg_wal is
# on a tmpfs, spool_dir on the disk, so copy_file_range cannot copy a held segment
# (EXDEV); the spool copies it another way (daemon/common/file_copy.h):
# - with the replica away and sync_replicas = 0, each push (two) needs the spool: it succeeds
#   (before the fallback: "could not copy ... into the spool: Invalid cross-device link",
#   every time), and the spool holds every pushed segment for the replica;
# - the replica comes back and receives the held segments byte-identical; the spool
#   empties.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_walship
require_cmds jq mount umount
# The mount point is outside the test directory (as in t_34b and t_36): the trap unmounts
# it after ws_cleanup has stopped PostgreSQL and the daemons.
MNT=$(mktemp -d /tmp/walship-waltmpfs.XXXXXX)
trap 'ws_cleanup; rc=$?; umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; rmdir "$MNT"
	exit "$rc"' EXIT
mount -t tmpfs -o size=256m,mode=0755 walship-waltmpfs "$MNT" || skip "cannot mount a tmpfs here"

net_create 1
PG_PORT=5432
PDATA=$TEST_DIR/pg-primary
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH" "$TEST_DIR/ws-primary" "$TEST_DIR/ws-r1"
PCONF=$TEST_DIR/ws-primary/walship.conf
RCONF=$TEST_DIR/ws-r1/walship.conf
write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" sync_replicas=0 push_timeout=10s
write_replica_conf "$RCONF" "$TEST_DIR/ws-r1" "$NS_P"

# pg_wal on the tmpfs, as initdb --waldir lays it out (a symbolic link).
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" /bin/true
mv "$PDATA/pg_wal" "$MNT/pg_wal"
ln -s "$MNT/pg_wal" "$PDATA/pg_wal"
[[ "$(stat -c %d "$MNT/pg_wal")" != "$(stat -c %d "$TEST_DIR/ws-primary/spool")" ]] ||
	fail "pg_wal and spool_dir are on the same file system"
log "pg_wal on a tmpfs at $MNT, spool_dir on $(stat -f -c %T "$TEST_DIR/ws-primary/spool")"
pg_start "$PDATA" "$NS_P"

# held: files the primary's spool holds for ws-r1, per walship status --json.
held() {
	walship_status "$PCONF" --json | jq -r '[.peers[] | select(.name == "ws-r1")][0].held'
}
spool_files_is() {
	test "$(status_counter "$PCONF" spool_files)" = "$1"
}
state_is() {
	test "$(walship_status "$PCONF" --json |
		jq -r '.peers[] | select(.name == "ws-r1") | .state')" = "$1"
}

walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$PCONF" 20
assert_eq 1 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"

log "ws-r1 away, sync_replicas = 0: two segments pushed from pg_wal on the tmpfs"
walshipd_stop "$RCONF"
wait_for 10 "ws-r1 shown away" state_is away
SEGS=()
for _ in 1 2; do
	seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
	assert_exit 0 "push $seg from the tmpfs" walship_push_as_postgres "$PCONF" "$PDATA/pg_wal/$seg"
	# A completed segment does not change again: keep it to compare with what arrives.
	cp "$PDATA/pg_wal/$seg" "$SCRATCH/$seg"
	SEGS+=("$seg")
done
assert_eq 2 "$(held)" "files held for ws-r1"
assert_eq 2 "$(status_counter "$PCONF" spool_copies)" "copies into the spool"
for seg in "${SEGS[@]}"; do
	assert_file_identical "$SCRATCH/$seg" "$TEST_DIR/ws-primary/spool/wal/$seg"
done
if grep -q 'into the spool' "$TEST_DIR/ws-primary.log"; then
	fail "the primary logged a failed spool copy"
fi
log "ok: every push held in the spool across file systems"

log "ws-r1 comes back and catches up from the spool"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_for 30 "ws-r1 to catch up" spool_files_is 0
for seg in "${SEGS[@]}"; do
	assert_file_identical "$SCRATCH/$seg" "$TEST_DIR/ws-r1/archive/$seg"
done
assert_eq 0 "$(held)" "files held for ws-r1 after catching up"
log "PASS"
