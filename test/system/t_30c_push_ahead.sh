#!/bin/bash
# Shipping ahead of the archiver (push_ahead, CTL_F_AHEAD): walship push and the archive
# module pass the ready segments after the one being archived, walshipd ships them at
# once, and their own pushes take over instead of sending them again.
#  1. a backlog of ready segments archived through archive_command: segments were
#     shipped ahead and their pushes took them over (status pushes_ahead, ahead_taken),
#     each segment went to the replica once (no duplicate, nothing skipped), and every
#     one is identical to the primary's;
#  2. the same through the archive module (when built);
#  3. by hand, in a directory laid out as pg_wal: a push of a segment shipped ahead and
#     safe is answered from it ("shipped ahead"); a file replaced since (another inode)
#     is pushed as any other; a gap in archive_status ends what is passed; push_ahead = 0
#     passes nothing; an invalid segment is not shipped ahead and not counted until its
#     own push, which fails with the validator's reason; a FIFO under a ready name does
#     not hang the push.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PGMOD=$WS_ROOT/build/walship_archive.so
ws_setup
walship_daemons_up

# ready_backlog N: N more complete segments, left ready (archiving has no command).
ready_backlog() {
	local i
	for ((i = 0; i < $1; i++)); do
		psql_at "$NS_P" "$PG_PORT" "insert into t30c select g, repeat('x', 100)
			from generate_series(1, 1000) g; select pg_switch_wal()" >/dev/null
	done
}

ready_count() {
	count_files "$PDATA"/pg_wal/archive_status/*.ready
}

count_files() {
	local n=0 f
	for f in "$@"; do
		[[ -e "$f" ]] && n=$((n + 1))
	done
	printf '%s\n' "$n"
}

no_ready_left() {
	[[ "$(ready_count)" == 0 ]]
}

# archived_identical: every segment PostgreSQL marked done is in the replica's archive,
# byte for byte.
archived_identical() {
	local f name n=0
	for f in "$PDATA"/pg_wal/archive_status/*.done; do
		name=${f##*/}
		name=${name%.done}
		[[ "$name" =~ ^[0-9A-F]{24}$ ]] || continue
		wait_archived "$name"
		assert_file_identical "$PDATA/pg_wal/$name" "$RARCHIVE/$name"
		n=$((n + 1))
	done
	log "ok: $n archived segments identical to the primary's"
}

# check_backlog_phase WHAT AHEAD0 TAKEN0: after a backlog was archived, more segments were
# shipped ahead and taken over than before (AHEAD0, TAKEN0), and nothing went twice.
check_backlog_phase() {
	local what=$1 ahead0=$2 taken0=$3 ahead taken
	ahead=$(status_counter "$PCONF" pushes_ahead)
	taken=$(status_counter "$PCONF" ahead_taken)
	log "$what: pushes_ahead $ahead0 -> $ahead, ahead_taken $taken0 -> $taken"
	# Five ready in a row: the pushes of the first three at least passed the next ones.
	((ahead - ahead0 >= 3)) || fail "$what: only $((ahead - ahead0)) segments shipped ahead"
	((taken - taken0 >= 3)) || fail "$what: only $((taken - taken0)) pushes took over"
	((taken <= ahead)) || fail "$what: more pushes took over ($taken) than were shipped ahead"
	assert_eq 0 "$(status_counter "$PCONF" pushes_failed)" "$what: failed pushes"
	assert_eq 0 "$(status_counter "$PCONF" skipped_files)" "$what: files the replica had already"
	assert_eq 0 "$(status_counter "$RCONF" duplicates)" "$what: files the replica received twice"
	archived_identical
}

log "PostgreSQL primary, archiving on, no archive_command yet: segments stay ready"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" ""
pg_start "$PDATA" "$NS_P"
psql_at "$NS_P" "$PG_PORT" "create table t30c (i int, pad text)"
ready_backlog 5
ready=$(ready_count)
((ready >= 5)) || fail "expected at least 5 ready segments, found $ready"
log "$ready segments ready"

log "1. archive_command = walship push: the backlog is archived"
psql_at "$NS_P" "$PG_PORT" "alter system set archive_command = 'exec $WALSHIP push -c $PCONF %p'"
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
wait_for 60 "the archiver to archive the backlog" no_ready_left
check_backlog_phase "archive_command" 0 0
walship_status "$PCONF" | grep "shipped ahead:" ||
	fail "walship status does not show the segments shipped ahead"

if [[ -f "$PGMOD" ]]; then
	log "2. archive_library = walship_archive: a new backlog is archived"
	ahead0=$(status_counter "$PCONF" pushes_ahead)
	taken0=$(status_counter "$PCONF" ahead_taken)
	psql_at "$NS_P" "$PG_PORT" "alter system set archive_command = ''"
	psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
	ready_backlog 5
	# The module's settings before it is loaded: in postgresql.conf, not ALTER SYSTEM.
	# A restart rather than a reload: the postmaster starts the archiver again only
	# after PGARCH_RESTART_INTERVAL (10 s).
	pg_stop "$PDATA"
	cat >>"$PDATA/postgresql.conf" <<-EOF
		archive_library = '${PGMOD%.so}'
		walship.socket = '$(conf_get "$PCONF" socket)'
	EOF
	pg_start "$PDATA" "$NS_P"
	wait_for 60 "the archive module to archive the backlog" no_ready_left
	check_backlog_phase "archive module" "$ahead0" "$taken0"
else
	log "2. skipped: $PGMOD not built (postgresql-server-dev-15 missing)"
fi

log "3. by hand, in a directory laid out as pg_wal"
# The last four segments archived (complete, consecutive: one pg_switch_wal each).
mapfile -t segs < <(cd "$PDATA/pg_wal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.done$/\1/p' |
	sort | tail -n 4)
((${#segs[@]} == 4)) || fail "expected 4 archived segments in $PDATA/pg_wal"
first=$(((16#${segs[0]:8:8} << 8) + 16#${segs[0]:16:8}))
last=$(((16#${segs[3]:8:8} << 8) + 16#${segs[3]:16:8}))
((last == first + 3)) || fail "the last 4 archived segments are not consecutive: ${segs[*]}"
W=$SCRATCH/pg_wal
mkdir -p "$W/archive_status"
for s in "${segs[@]}"; do
	cp "$PDATA/pg_wal/$s" "$W/$s"
done
: >"$W/archive_status/${segs[1]}.ready"
: >"$W/archive_status/${segs[2]}.ready"
# segs[3] has no .ready: the gap ends what is passed.
chown -R postgres:postgres "$W"
ahead0=$(status_counter "$PCONF" pushes_ahead)
taken0=$(status_counter "$PCONF" ahead_taken)

as_postgres "$WALSHIP" push -v -c "$PCONF" "$W/${segs[0]}" >"$TEST_DIR/push0.out" 2>&1 ||
	{ cat "$TEST_DIR/push0.out"; fail "push of ${segs[0]} failed"; }
ahead=$(status_counter "$PCONF" pushes_ahead)
assert_eq 2 "$((ahead - ahead0))" "segments shipped ahead of ${segs[0]} (the two ready after it)"
queue_empty() { [[ "$(status_counter "$PCONF" pushes_queued)" == 0 ]]; }
wait_for 30 "the segments shipped ahead to be safe" queue_empty

as_postgres "$WALSHIP" push -v -c "$PCONF" "$W/${segs[1]}" >"$TEST_DIR/push1.out" 2>&1 ||
	{ cat "$TEST_DIR/push1.out"; fail "push of ${segs[1]} failed"; }
grep -q "shipped ahead" "$TEST_DIR/push1.out" ||
	{ cat "$TEST_DIR/push1.out"; fail "the push of ${segs[1]} was not answered from its shipping ahead"; }
log "ok: $(cat "$TEST_DIR/push1.out")"

# Replaced since it was shipped ahead: another inode, pushed as any other.
cp "$W/${segs[2]}" "$W/${segs[2]}.new" && mv "$W/${segs[2]}.new" "$W/${segs[2]}"
chown postgres:postgres "$W/${segs[2]}"
as_postgres "$WALSHIP" push -v -c "$PCONF" "$W/${segs[2]}" >"$TEST_DIR/push2.out" 2>&1 ||
	{ cat "$TEST_DIR/push2.out"; fail "push of the replaced ${segs[2]} failed"; }
grep -q "shipped ahead" "$TEST_DIR/push2.out" &&
	{ cat "$TEST_DIR/push2.out"; fail "the replaced ${segs[2]} was answered from the old file"; }
taken=$(status_counter "$PCONF" ahead_taken)
assert_eq 1 "$((taken - taken0))" "pushes answered from a segment shipped ahead"
assert_eq "$ahead" "$(status_counter "$PCONF" pushes_ahead)" \
	"segments shipped ahead of ${segs[2]} (segs[3] is not ready)"

log "push_ahead = 0 passes nothing"
cp "$PCONF" "$SCRATCH/noahead.conf"
echo "push_ahead = 0" >>"$SCRATCH/noahead.conf"
chown postgres:postgres "$SCRATCH/noahead.conf"
rm -f "$W/archive_status/"*
: >"$W/archive_status/${segs[1]}.ready"
: >"$W/archive_status/${segs[2]}.ready"
: >"$W/archive_status/${segs[3]}.ready"
chown -R postgres:postgres "$W"
assert_exit 0 "push with push_ahead = 0" as_postgres "$WALSHIP" push -c "$SCRATCH/noahead.conf" \
	"$W/${segs[0]}"
assert_eq "$ahead" "$(status_counter "$PCONF" pushes_ahead)" "segments shipped ahead with push_ahead = 0"

log "an invalid segment is not shipped ahead; its own push says why"
invalid0=$(status_counter "$PCONF" invalid)
printf '\x00\x00' | dd of="$W/${segs[3]}" bs=1 seek=0 conv=notrunc status=none
# push segs[2]: passes segs[3] (ready, invalid) along.
assert_exit 0 "push of ${segs[2]}" walship_push_as_postgres "$PCONF" "$W/${segs[2]}"
assert_eq "$ahead" "$(status_counter "$PCONF" pushes_ahead)" "invalid segment shipped ahead"
assert_eq "$invalid0" "$(status_counter "$PCONF" invalid)" "invalid files counted before their push"
assert_fails "push of the invalid ${segs[3]}" walship_push_as_postgres "$PCONF" "$W/${segs[3]}"
assert_eq $((invalid0 + 1)) "$(status_counter "$PCONF" invalid)" "invalid files after its push"

log "a FIFO under a ready segment's name does not hang the push that looks at it"
rm -f "$W/${segs[3]}"
mkfifo "$W/${segs[3]}"
chown postgres:postgres "$W/${segs[3]}"
assert_exit 0 "push of ${segs[2]} beside a FIFO" as_postgres timeout 30 "$WALSHIP" push \
	-c "$PCONF" "$W/${segs[2]}"
assert_eq "$ahead" "$(status_counter "$PCONF" pushes_ahead)" "FIFO shipped ahead"
log "PASS"
