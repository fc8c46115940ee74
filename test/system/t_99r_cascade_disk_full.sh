#!/bin/bash
# t_99r: a cascade's downstream runs out of disk under load.  Primary (PostgreSQL, the
# primary walshipd streaming; every commit synchronous on ws-r1) -> ws-r1 (a relay that
# keeps only its newest segment, retain_size = 16MB, and what ws-b still needs) -> ws-b,
# whose archive lives on a small ext4 image that a filler takes but 4 MiB of.
# - ws-b cannot store the segments that come meanwhile (it says ENOSPC); commits go on
#   (ws-r1 makes them durable), and ws-r1 keeps for ws-b every segment it lacks, its
#   retention notwithstanding;
# - once ws-b has room again, it is sent them, by itself, and holds every segment the
#   primary's pg_wal still has, byte for byte, without a gap.
# A relay whose floor for ws-b passed a segment ws-b refused (its run or its saved floor
# not taken back on ACK IO_ERROR) would remove it and leave ws-b a gap for good.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
archive_on_ext4_image
# The image is ws-b's archive; ws-r1 keeps its newest segment only (and what ws-b needs).
# shellcheck disable=SC2034  # read by lib.sh
B_CONF_EXTRA=("${REPLICA_CONF_EXTRA[@]}")
REPLICA_CONF_EXTRA=(retain_size=16MB)
STREAM_ARCHIVE_COMMAND=/bin/true
relay_stream_up
BARCHIVE=$MNT/archive
psql_at "$NS_P" "$PG_PORT" "alter system set synchronous_commit = on" >/dev/null
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
wait_for 30 "walship listed as a synchronous standby" pg_sync_standby "$NS_P" \
	"$PG_PORT" "$(conf_get "$PCONF" node_name)"

# b_field FIELD: FIELD of ws-b as ws-r1 shows it (a relay shows its downstream as a
# primary shows its replicas).
b_field() {
	walship_status "$RCONF" --json | jq -r '.peers[] | select(.name == "ws-b") | .'"$1"
}
b_holds() {
	local lsn
	lsn=$(b_field flush_lsn)
	[[ -n "$lsn" && "$lsn" != null ]] && (($(lsn_to_int "$lsn") >= $1))
}
# Durable on ws-b as it comes, and counted so on ws-r1, from the cluster's first segment
# on (before it is stored whole, when neither has a segment size recorded).
psql_at "$NS_P" "$PG_PORT" "create table ws_fill (i int, pad text)"
lsn=$(lsn_to_int "$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")")
((lsn < 2 * 16 * 1024 * 1024)) || fail "the table's creation is past the first segment"
wait_for 30 "ws-b to hold the table's creation" b_holds "$lsn"

fs_fill_but 4
# Synchronous commits of about 5 MB of WAL each: each returns (ws-r1 makes it durable),
# until ws-b has failed to store a segment, and seven more (two more segments complete
# while it fails, which ws-r1's retention would remove but for ws-b).
fill_until_io_errors "$BCONF" ws-b 24
log "ok: commits went on; ws-b failing: $(walship_status "$BCONF" --json | jq -r .last_error)"
final=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
# Every segment ws-b lacks is still on ws-r1, though it keeps only its newest one.
b_lacks=()
for f in "$RARCHIVE"/*; do
	name=$(basename "$f")
	[[ "$name" =~ ^[0-9A-F]{24}$ && ! -e "$BARCHIVE/$name" ]] && b_lacks+=("$name")
done
((${#b_lacks[@]} >= 2)) || fail "ws-b lacks ${#b_lacks[@]} of ws-r1's segments (2 at least expected)"
# ...while its retention removes what ws-b holds.
(($(status_counter "$RCONF" retain_removed_files) > 0)) ||
	fail "ws-r1 removed no file (retain_size = 16MB): its retention was not put to the test"
log "ok: ws-r1 keeps ${b_lacks[*]} for ws-b, and removed" \
	"$(status_counter "$RCONF" retain_removed_files) older file(s)"
# What ws-r1 counts durable on ws-b reaches the first segment it lacks (everything before
# is stored there) and stops before that segment's end.
first=${b_lacks[0]}
first_start=$(((16#${first:8:8} << 32) + 16#${first:16:8} * 16 * 1024 * 1024))
first_end=$((first_start + 16 * 1024 * 1024))
b_flush=$(b_field flush_lsn)
(($(lsn_to_int "$b_flush") >= first_start && $(lsn_to_int "$b_flush") < first_end)) ||
	fail "ws-r1 counts ws-b durable up to $b_flush, not within $first, the first it lacks"
log "ok: ws-r1 counts ws-b durable up to $b_flush, within $first"

# ws-r1's copies, kept: once ws-b holds them, ws-r1's retention may remove them.
mkdir -p "$TEST_DIR/a-copies"
for name in "${b_lacks[@]}"; do
	cp "$RARCHIVE/$name" "$TEST_DIR/a-copies/"
done

log "freeing space on ws-b"
rm -f "$MNT/filler"
wait_for 120 "ws-b to hold up to $final" b_holds "$(lsn_to_int "$final")"
log "ok: ws-b caught up to $final"
for name in "${b_lacks[@]}"; do
	cmp -s "$BARCHIVE/$name" "$TEST_DIR/a-copies/$name" ||
		fail "ws-b's $name is missing or differs from ws-r1's"
done
RARCHIVE=$BARCHIVE RCONF=$BCONF assert_stream_equals_pg_wal "$final"
ws_check_daemons
log "PASS"
