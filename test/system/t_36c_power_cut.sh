#!/bin/bash
# t_36c: a power cut on a replica and on the primary's spool (issue 3's durability rules:
# acknowledged means durable).  ws-r1's archive and the primary's spool_dir are each an
# ext4 image whose journal commits only when something on it is fsynced
# (ext4_image_mount); two replicas, sync_replicas = 1, ws-r2 away.  Real segments are
# pushed by hand, each push answered 0; then both file systems are shut down without
# flushing their journals (power_cut: what the journal did not commit is lost) and both
# walshipd killed.  Mounted again, as at a boot:
# - every segment whose push was answered is in ws-r1's archive under its name, byte for
#   byte as pushed, and nothing else is under a WAL name there;
# - the spool holds each for ws-r2 (its copy in wal/ and ws-r2's claim), and ws-r2 is
#   registered: connecting, it is sent them all, byte for byte, and the spool empties;
# - the daemons go on: a segment pushed after it reaches both replicas.
# The last fsync before an answer missing loses the last push's file or claim here (a
# build without the replica's directory fsync after its rename lost the segment, one
# without the fsync of the claim's folder lost the claim); an earlier one missing is
# covered by the commit the next fsync makes.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_walship
require_cmds jq mkfs.ext4 losetup mount umount
require_postgres
net_create 2
PG_PORT=5432
PDATA=$TEST_DIR/pg-primary
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH" "$TEST_DIR/ws-primary" "$TEST_DIR/ws-r1" "$TEST_DIR/ws-r2"
chown postgres:postgres "$SCRATCH"

# Two images, mounted outside the test directory (the EXIT trap unmounts them after
# ws_cleanup has stopped the daemons, then removes the mount points).
MNT_R=$(mktemp -d /tmp/walship-pcr.XXXXXX)
MNT_S=$(mktemp -d /tmp/walship-pcs.XXXXXX)
chmod 0755 "$MNT_R" "$MNT_S"
unmount_images() {
	local m
	for m in "$MNT_R" "$MNT_S"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		rmdir "$m"
	done
}
trap 'ws_cleanup; rc=$?; unmount_images; exit "$rc"' EXIT
for img in archive spool; do
	truncate -s 256M "$TEST_DIR/$img.img"
	mkfs.ext4 -q -m 0 "$TEST_DIR/$img.img" ||
		skip "mkfs.ext4 cannot make a file system image here"
done
ext4_image_mount "$TEST_DIR/archive.img" "$MNT_R" ||
	skip "cannot loop-mount an ext4 image (no loop device?)"
ext4_image_mount "$TEST_DIR/spool.img" "$MNT_S"
rmdir "$MNT_R/lost+found" "$MNT_S/lost+found"
mkdir "$MNT_R/archive" "$MNT_S/spool"
chgrp postgres "$MNT_R/archive"
chmod 2750 "$MNT_R/archive"
RARCHIVE=$MNT_R/archive
SPOOLDIR=$MNT_S/spool

PCONF=$TEST_DIR/ws-primary/walship.conf
R1CONF=$TEST_DIR/ws-r1/walship.conf
R2CONF=$TEST_DIR/ws-r2/walship.conf
write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P" push_timeout=10s \
	"spool_dir=$SPOOLDIR"
write_replica_conf "$R1CONF" "$TEST_DIR/ws-r1" "$NS_P" "archive_dir=$RARCHIVE"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P"

log "making 6 real WAL segments"
pg_make_segments 6 "$SCRATCH"

spool_files_is() {
	test "$(status_counter "$PCONF" spool_files)" = "$1"
}
push() {
	assert_exit 0 "push $1" walship_push_as_postgres "$PCONF" "$SCRATCH/$1"
}

walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 20 "both replicas streaming" peers_streaming_are "$PCONF" 2
walshipd_stop "$R2CONF"
wait_for 10 "ws-r2 away" peers_streaming_are "$PCONF" 1

PUSHED=("${SEGS[@]:0:4}")
for seg in "${PUSHED[@]}"; do
	push "$seg"
done
log "${#PUSHED[@]} segments pushed and answered; a power cut on ws-r1's disk and the spool's"
power_cut "$MNT_R"
power_cut "$MNT_S"
walshipd_kill "$R1CONF"
walshipd_kill "$PCONF"
ext4_image_remount "$TEST_DIR/archive.img" "$MNT_R"
ext4_image_remount "$TEST_DIR/spool.img" "$MNT_S"

for seg in "${PUSHED[@]}"; do
	assert_file_identical "$SCRATCH/$seg" "$RARCHIVE/$seg"
	assert_file_identical "$SCRATCH/$seg" "$SPOOLDIR/wal/$seg"
	[[ "$SPOOLDIR/replicas/ws-r2/$seg" -ef "$SPOOLDIR/wal/$seg" ]] ||
		fail "the spool's claim of $seg for ws-r2 did not survive the power cut"
done
stored=$(find "$RARCHIVE" -maxdepth 1 -type f -name '[0-9A-F]*' -printf '%f\n' | sort)
assert_eq "$(printf '%s\n' "${PUSHED[@]}" | sort)" "$stored" "WAL files in ws-r1's archive"
log "ok: after the power cut, ws-r1 holds the ${#PUSHED[@]} segments answered, the spool" \
	"holds them for ws-r2"

walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
walshipd_start "$NS_R1" "$R1CONF" "$TEST_DIR/ws-r1.log"
walshipd_start "$NS_R2" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_for 20 "both replicas streaming again" peers_streaming_are "$PCONF" 2
wait_for 30 "ws-r2 to catch up from the spool" spool_files_is 0
for seg in "${PUSHED[@]}"; do
	assert_file_identical "$SCRATCH/$seg" "$TEST_DIR/ws-r2/archive/$seg"
done
push "${SEGS[4]}"
# (answered once one of the two stored it: the other may store it a moment later)
wait_for 10 "ws-r1 to store ${SEGS[4]}" test -f "$RARCHIVE/${SEGS[4]}"
assert_file_identical "$SCRATCH/${SEGS[4]}" "$RARCHIVE/${SEGS[4]}"
wait_for 10 "ws-r2 to store ${SEGS[4]}" test -f "$TEST_DIR/ws-r2/archive/${SEGS[4]}"
assert_file_identical "$SCRATCH/${SEGS[4]}" "$TEST_DIR/ws-r2/archive/${SEGS[4]}"
log "ok: ws-r2 caught up from the spool; ${SEGS[4]} pushed after it reached both"
log "PASS"
