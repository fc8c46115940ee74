#!/bin/bash
# Every kind of WAL file PostgreSQL archives goes through walship byte for byte:
#   - a .backup history file (the real one PostgreSQL archives after pg_basebackup);
#   - a timeline .history file (synthetic text, pushed by hand);
#   - a .partial segment (a copy of a real segment under NAME.partial, pushed by hand);
#   - a plain segment completed by PostgreSQL itself.
# Each is fetched on the replica host with `walship fetch` and compared with the original.
# A stored segment with one byte changed inside a page since it was stored is refused
# (exit 3) by the CRC recorded when it was stored.  A fetch killed by SIGTERM while it
# copies leaves no temporary file beside its destination.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_topology_up 1
# The standby would look at timeline history files: keep it out of this test's way.
pg_stop "$SDATA"

log ".backup file written by pg_basebackup"
backup_file=$(find "$PDATA/pg_wal" -maxdepth 1 -name '*.backup' -printf '%f\n' | sort | tail -n 1)
[[ -n "$backup_file" ]] || fail "no .backup file in $PDATA/pg_wal after pg_basebackup"
wait_archived "$backup_file"
cp "$PDATA/pg_wal/$backup_file" "$SCRATCH/orig.$backup_file"
fetch_and_compare "$backup_file" "$SCRATCH/orig.$backup_file"

log "plain segment completed by PostgreSQL"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
cp "$PDATA/pg_wal/$seg" "$SCRATCH/orig.$seg"
wait_archived "$seg"
fetch_and_compare "$seg" "$SCRATCH/orig.$seg"

log "a stored segment changed on disk inside a page: fetch refuses it (exit 3)"
# One byte in the middle of page 1, past its header: the page checks do not look there,
# the CRC recorded when it was stored does.  Put back afterwards.
off=$((8192 + 4000))
orig_byte=$(od -An -tx1 -j "$off" -N1 "$RARCHIVE/$seg" | tr -d ' ')
printf '%b' "\\x$(printf '%02x' $((0x$orig_byte ^ 0xff)))" |
	dd of="$RARCHIVE/$seg" bs=1 seek="$off" conv=notrunc status=none
assert_exit 3 "walship fetch of a segment whose bytes changed since it was stored" \
	walship_fetch_as_postgres "$RCONF" "$seg" "$SCRATCH/rotten"
grep -q "its content is not what was stored" "$TEST_DIR/last.out" ||
	fail "fetch did not say why: $(cat "$TEST_DIR/last.out")"
printf '%b' "\\x$orig_byte" | dd of="$RARCHIVE/$seg" bs=1 seek="$off" conv=notrunc status=none
fetch_and_compare "$seg" "$SCRATCH/orig.$seg"

log ".history file (synthetic, pushed by hand)"
history=$SCRATCH/00000002.history
printf '1\t0/%X\tno recovery target specified\n' $((16#${seg:16:8} * 16#1000000 + 16#1000000)) \
	>"$history"
chown postgres:postgres "$history"
assert_exit 0 "walship push 00000002.history" walship_push_as_postgres "$PCONF" "$history"
assert_file_identical "$history" "$RARCHIVE/00000002.history"
fetch_and_compare 00000002.history "$history"

log ".partial segment (copy of $seg, pushed by hand)"
partial=$SCRATCH/$seg.partial
cp "$SCRATCH/orig.$seg" "$partial"
chown postgres:postgres "$partial"
assert_exit 0 "walship push $seg.partial" walship_push_as_postgres "$PCONF" "$partial"
assert_file_identical "$partial" "$RARCHIVE/$seg.partial"
fetch_and_compare "$seg.partial" "$partial"

log "a name the archive does not hold: fetch exits 1"
assert_exit 1 "walship fetch of a missing segment" \
	walship_fetch_as_postgres "$RCONF" 0000000100000000000000FF "$SCRATCH/missing"
assert_file_absent "$SCRATCH/missing"

log "a fetch ended by SIGTERM while it copies (a standby shut down) leaves no temporary file"
# The fetch in a cpu cgroup capped at 1 % of a CPU, so that its copy and checks of the
# segment take seconds: the signal lands while its temporary file exists (seen before it
# is sent, the fetch still running), whatever the machine's speed.
CG=/sys/fs/cgroup/cpu/walship-t20-$$
# (Last: without the cgroup, the step is skipped, the rest passed.)
mkdir "$CG" || skip "cannot make a cpu cgroup under /sys/fs/cgroup/cpu"
echo 100000 >"$CG/cpu.cfs_period_us"
echo 1000 >"$CG/cpu.cfs_quota_us"
(
	echo "$BASHPID" >"$CG/cgroup.procs"
	walship_fetch_as_postgres "$RCONF" "$seg" "$SCRATCH/stopped"
) &
sub=$!
fetch_tmp() {
	compgen -G "$SCRATCH/stopped.walship-tmp.*" >/dev/null
}
wait_for 60 "the fetch's temporary file" fetch_tmp
fetch_pid=$(pgrep -P "$sub") || fail "the fetch ended before it was signalled"
kill -TERM "$fetch_pid"
rc=0
wait "$sub" || rc=$?
rmdir "$CG"
((rc == 128 + 15)) || fail "the fetch exited $rc, not killed by SIGTERM (143)"
! fetch_tmp || fail "the fetch left $(compgen -G "$SCRATCH/stopped.walship-tmp.*")"
assert_file_absent "$SCRATCH/stopped"
log "ok: SIGTERM during the copy: exit $rc, no temporary file, nothing delivered"

log "PASS"
