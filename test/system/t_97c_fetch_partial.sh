#!/bin/bash
# t_97c: `walship fetch` of a segment still being received (issue 13): when a segment is
# not in the archive under its final name but its incoming file has a durable prefix,
# fetch serves that prefix followed by zeros, as a segment PostgreSQL has not finished
# writing looks, and PostgreSQL recovers from it up to the end of the prefix.
#
# No walshipd runs: the replica's store is built by hand from a real PostgreSQL 15
# segment with build/helpers/store_incoming (the store's own store_tmp_name() and
# store_mark_durable()).  Asserted:
#  - fetch gives K bytes equal to the segment's first K bytes, then zeros up to 16 MiB,
#    from the incoming file with the largest durable length, not the bytes written after
#    the durable ones; it says so on stderr;
#  - a prefix with a damaged page header is refused (exit 3) and nothing is written;
#  - a .partial name is never served from an incoming file (exit 1); a missing segment
#    exits 1 as before; a file under its final name is served before any incoming one;
#  - archive recovery of a base backup with restore_command = 'walship fetch %f %p'
#    replays up to the end of the durable prefix: the rows committed before it are there,
#    those committed after it are not.
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_walship
net_create 1
PG_PORT=5432
SEG_SIZE=$((16 * 1024 * 1024))
PDATA=$TEST_DIR/pg-primary
RDATA=$TEST_DIR/pg-recovered
RCONF=$TEST_DIR/ws-r1/walship.conf
ARCHIVE=$TEST_DIR/ws-r1/archive
BCONF=$TEST_DIR/ws-r2/walship.conf
BARCHIVE=$TEST_DIR/ws-r2/archive
SCRATCH=$TEST_DIR/scratch
STORE_INCOMING=$WS_ROOT/build/helpers/store_incoming
[[ -x "$STORE_INCOMING" ]] || skip "$STORE_INCOMING not built: run make"
mkdir -p "$TEST_DIR/ws-r1" "$TEST_DIR/ws-r2" "$SCRATCH"
chown postgres:postgres "$SCRATCH"
# Replica configs (no daemon runs; fetch reads archive_dir from them).
write_replica_conf "$RCONF" "$TEST_DIR/ws-r1" "$NS_P"
write_replica_conf "$BCONF" "$TEST_DIR/ws-r2" "$NS_P"

log "primary, base backup, then rows in separate commits"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "true"
pg_start "$PDATA" "$NS_P"
psql_at "$NS_P" "$PG_PORT" "create table t (i int); create table filler (i int, pad text)"
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$RDATA" "$NS_R1" "$PG_PORT" \
	"$WALSHIP fetch -c $RCONF %f %p"
# Some WAL first, so that the durable prefix spans several pages.
psql_at "$NS_P" "$PG_PORT" "insert into filler select g, repeat('x', 100) from generate_series(1, 2000) g"
for i in 1 2 3 4 5; do
	psql_at "$NS_P" "$PG_PORT" "insert into t values ($i)"
done
lsn=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
read -r SEG K < <(psql_at "$NS_P" "$PG_PORT" \
	"select file_name || ' ' || file_offset from pg_walfile_name_offset('$lsn')")
for i in 6 7 8 9 10; do
	psql_at "$NS_P" "$PG_PORT" "insert into t values ($i)"
done
log "rows 1-5 end at $lsn: segment $SEG, offset $K"
((K > 8192 + 24 && K < SEG_SIZE - 8192)) || fail "durable prefix of $K bytes: need one past the first page"
# The cluster the replica's archives hold, recorded as walshipd does before it stores or
# acknowledges any of its WAL: fetch serves no segment of an archive without it.
identity="$(pg_system_identifier "$PDATA") D110 $SEG_SIZE 8192"
for a in "$ARCHIVE" "$BARCHIVE"; do
	install -d -m 0750 -g postgres "$a/.walship"
	echo "$identity" >"$a/.walship/system_identifier"
	chgrp postgres "$a/.walship/system_identifier"
	chmod 0640 "$a/.walship/system_identifier"
done
# The primary host is lost (its WAL files, flushed at each commit, are read below).
pg_stop "$PDATA" immediate
cp "$PDATA/pg_wal/$SEG" "$SCRATCH/seg.full"
# The complete segments before SEG are in the archive under their final names.
for f in "$PDATA"/pg_wal/*; do
	name=$(basename "$f")
	[[ "$name" =~ ^[0-9A-F]{24}$ && "$name" < "$SEG" ]] || continue
	install -m 0640 -g postgres "$f" "$ARCHIVE/$name"
done

log "incoming files of $SEG: $K bytes durable (8 KiB more written), and $((K / 2)) durable"
"$STORE_INCOMING" "$ARCHIVE" "$SEG" 1 "$SCRATCH/seg.full" $((K + 8192)) "$K" >/dev/null ||
	fail "store_incoming failed"
"$STORE_INCOMING" "$ARCHIVE" "$SEG" 2 "$SCRATCH/seg.full" $((K / 2)) $((K / 2)) >/dev/null ||
	fail "store_incoming failed"
assert_file_absent "$ARCHIVE/$SEG"

log "fetch serves the durable prefix, then zeros"
out=$SCRATCH/fetched.partial
assert_exit 0 "walship fetch of a growing segment" walship_fetch_as_postgres "$RCONF" "$SEG" "$out"
grep -q "served partial segment \"$SEG\" with $K durable bytes" "$TEST_DIR/last.out" ||
	fail "fetch did not say it served a partial segment with $K durable bytes"
assert_eq "$SEG_SIZE" "$(stat -c %s "$out")" "size of the served segment"
cmp -n "$K" "$out" "$SCRATCH/seg.full" || fail "the first $K bytes differ from the segment's"
tail -c +$((K + 1)) "$out" | cmp -n $((SEG_SIZE - K)) - /dev/zero ||
	fail "the bytes after the durable prefix are not zeros"
log "ok: $K durable bytes of the largest incoming file, then zeros to $SEG_SIZE"

log "a damaged page header in the durable prefix is refused"
cp "$SCRATCH/seg.full" "$SCRATCH/seg.bad"
printf '\0\0' | dd of="$SCRATCH/seg.bad" bs=1 seek=8192 conv=notrunc status=none
"$STORE_INCOMING" "$BARCHIVE" "$SEG" 1 "$SCRATCH/seg.bad" "$K" "$K" >/dev/null ||
	fail "store_incoming failed"
out=$SCRATCH/fetched.bad
assert_exit 3 "walship fetch of a damaged growing segment" \
	walship_fetch_as_postgres "$BCONF" "$SEG" "$out"
grep -q "refusing to serve file .*invalid magic number 0000" "$TEST_DIR/last.out" ||
	fail "fetch did not say why it refused the damaged prefix"
assert_file_absent "$out"
compgen -G "$SCRATCH/fetched.bad.walship-tmp.*" >/dev/null && fail "fetch left its temporary file"
log "ok: damaged prefix refused, nothing written"

log "a .partial name is not served from an incoming file; a missing segment exits 1"
"$STORE_INCOMING" "$BARCHIVE" "$SEG.partial" 3 "$SCRATCH/seg.full" "$K" "$K" >/dev/null ||
	fail "store_incoming failed"
assert_exit 1 "walship fetch $SEG.partial" \
	walship_fetch_as_postgres "$BCONF" "$SEG.partial" "$SCRATCH/fetched.p"
assert_file_absent "$SCRATCH/fetched.p"
assert_exit 1 "walship fetch of a missing segment" \
	walship_fetch_as_postgres "$BCONF" 0000000100000000000000F0 "$SCRATCH/fetched.m"
assert_file_absent "$SCRATCH/fetched.m"
log "ok: exit 1 for both"

log "an incoming copy fetch cannot read is an error (exit 4), not \"not in the archive\""
UNREAD=0000000100000000000000F1
"$STORE_INCOMING" "$BARCHIVE" "$UNREAD" 1 "$SCRATCH/seg.full" "$K" "$K" >/dev/null ||
	fail "store_incoming failed"
for f in "$BARCHIVE/.incoming/$UNREAD".*; do
	chown root:root "$f"
	chmod 0600 "$f"
done
assert_exit 4 "walship fetch of an unreadable incoming copy" \
	walship_fetch_as_postgres "$BCONF" "$UNREAD" "$SCRATCH/fetched.u"
grep -q "could not read file \".*/.incoming/$UNREAD\..*Permission denied" "$TEST_DIR/last.out" ||
	fail "fetch did not say which copy it could not read: $(cat "$TEST_DIR/last.out")"
assert_file_absent "$SCRATCH/fetched.u"
log "ok: exit 4, naming the copy"
# Beside a readable shorter copy: that one is served, and the unreadable one named (an
# archive of its own: SEG's copies, the longer one unreadable).
CCONF=$TEST_DIR/ws-r3/walship.conf
CARCHIVE=$TEST_DIR/ws-r3/archive
write_replica_conf "$CCONF" "$TEST_DIR/ws-r3" "$NS_P"
install -d -m 0750 -g postgres "$CARCHIVE/.walship"
install -m 0640 -g postgres "$ARCHIVE/.walship/system_identifier" "$CARCHIVE/.walship/"
"$STORE_INCOMING" "$CARCHIVE" "$SEG" 1 "$SCRATCH/seg.full" "$K" "$K" >/dev/null ||
	fail "store_incoming failed"
"$STORE_INCOMING" "$CARCHIVE" "$SEG" 2 "$SCRATCH/seg.full" $((K / 2)) $((K / 2)) >/dev/null ||
	fail "store_incoming failed"
chown root:root "$CARCHIVE/.incoming/$SEG.1"
chmod 0600 "$CARCHIVE/.incoming/$SEG.1"
assert_exit 0 "walship fetch beside an unreadable longer copy" \
	walship_fetch_as_postgres "$CCONF" "$SEG" "$SCRATCH/fetched.s"
grep -q "could not read file \".incoming/$SEG\.1\": Permission denied; a shorter copy" \
	"$TEST_DIR/last.out" || fail "fetch did not name the unreadable copy: $(cat "$TEST_DIR/last.out")"
grep -q "served partial segment \"$SEG\" with $((K / 2)) durable bytes" "$TEST_DIR/last.out" ||
	fail "fetch did not serve the shorter copy"
log "ok: the shorter copy served, the unreadable one named"

log "archive recovery with restore_command = walship fetch replays up to the durable end"
rm -f "$RDATA/standby.signal"
runuser -u postgres -- touch "$RDATA/recovery.signal"
pg_start "$RDATA" "$NS_R1"
recovery_done() {
	[[ "$(psql_at "$NS_R1" "$PG_PORT" 'select pg_is_in_recovery()')" == f ]]
}
wait_for 30 "archive recovery to end" recovery_done
grep -q "restored log file \"$SEG\" from archive" "$RDATA.log" ||
	fail "PostgreSQL did not restore $SEG through walship fetch"
assert_eq "1 2 3 4 5" "$(psql_at "$NS_R1" "$PG_PORT" "select string_agg(i::text, ' ' order by i) from t")" \
	"rows recovered"
log "ok: rows 1-5 (committed before $lsn) recovered, 6-10 not"

log "the final name is served before an incoming file"
install -m 0640 -g postgres "$SCRATCH/seg.full" "$ARCHIVE/$SEG"
out=$SCRATCH/fetched.final
assert_exit 0 "walship fetch of a complete segment" walship_fetch_as_postgres "$RCONF" "$SEG" "$out"
assert_file_identical "$SCRATCH/seg.full" "$out"
! grep -q "served partial segment" "$TEST_DIR/last.out" || fail "fetch served the incoming file"
log "ok: the complete file"

log "t_97c: fetch serves the durable prefix of a growing segment and PostgreSQL recovers from it"
