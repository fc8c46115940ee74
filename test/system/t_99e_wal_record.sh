#!/bin/bash
# t_99e: the WAL record decoder (daemon/wal/record.c) on real PostgreSQL 15 WAL, compared
# with pg_waldump.  A primary writes commits, aborts, prepared transactions committed and
# rolled back, a commit record larger than a page (many invalidations: it crosses page
# boundaries), rows larger than a page (TOAST, full-page images after a checkpoint) and a
# WAL switch.  test/helpers/wal_xacts lists the transaction ends of the completed segments
# (fed in pieces of varying sizes, so records are split across calls anywhere, and in
# whole segments); pg_waldump lists the same segments.  The lists (start LSN, kind,
# xact_time to the microsecond) must be equal, and the decoder must find no damage.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

XACTS=$WS_ROOT/build/helpers/wal_xacts
[[ -x "$XACTS" ]] || skip "$XACTS is not built (make helpers)"
ws_setup
net_create 1
PG_PORT=5432
PDATA=$TEST_DIR/pg-primary
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" "true"
echo "max_prepared_transactions = 10" >>"$PDATA/postgresql.conf"
pg_start "$PDATA" "$NS_P"
sql() { psql_at "$NS_P" "$PG_PORT" "$1"; }

first=$(sql "select pg_walfile_name(pg_current_wal_lsn())")
sql "create table t (i int, pad text)"
sql "alter table t alter column pad set storage external"
for i in $(seq 1 20); do
	sql "insert into t values ($i, 'x')"
done
sql "begin; insert into t values (0, 'gone'); rollback"
sql "begin; insert into t values (100, 'p'); prepare transaction 'p1'"
sql "commit prepared 'p1'"
sql "begin; insert into t values (101, 'q'); prepare transaction 'p2'"
sql "rollback prepared 'p2'"
# a commit record of many invalidations, longer than a page
sql "begin; $(for i in $(seq 1 150); do printf 'create table wide_%d (a int); ' "$i"; done) commit"
sql "checkpoint"
# rows of 30 kB of random text: TOAST, records crossing pages, full-page images
sql "insert into t select g, (select string_agg(md5(random()::text), '')
	from generate_series(1, 1000)) from generate_series(1, 50) g"
sql "update t set i = i + 1 where i < 30"
sql "begin; insert into t values (-1, 'sub'); savepoint a; insert into t values (-2, 's');
	release a; commit"
sql "select pg_switch_wal()" >/dev/null
sql "insert into t values (200, 'after the switch')"
pg_complete_segment "$NS_P" "$PG_PORT" >/dev/null
last=$(pg_complete_segment "$NS_P" "$PG_PORT")
pg_stop "$PDATA"

SEG_DIR=$TEST_DIR/segs
mkdir -p "$SEG_DIR"
files=()
for f in "$PDATA"/pg_wal/0*; do
	name=${f##*/}
	[[ ${#name} == 24 && ! "$name" < "$first" && ! "$name" > "$last" ]] || continue
	cp "$f" "$SEG_DIR/" && files+=("$SEG_DIR/$name")
done
log "segments $first .. $last: ${#files[@]}"
((${#files[@]} >= 3)) || fail "expected at least 3 segments, got ${#files[@]}"

# pg_waldump's list: "LSN KIND YYYY-MM-DD HH:MM:SS.UUUUUU UTC"
TZ=UTC "$PG_BIN/pg_waldump" -r Transaction "${files[0]}" "${files[-1]}" \
	>"$TEST_DIR/waldump.out" 2>"$TEST_DIR/waldump.err" || true
sed -nE 's/.* lsn: ([0-9A-F]+\/[0-9A-F]+), .* desc: (COMMIT|ABORT|COMMIT_PREPARED|ABORT_PREPARED) ([0-9]+: )?([0-9-]+ [0-9:.]+ UTC).*/\1 \2 \4/p' \
	"$TEST_DIR/waldump.out" >"$TEST_DIR/expected"
n=$(wc -l <"$TEST_DIR/expected")
((n >= 25)) || fail "pg_waldump listed only $n transaction ends: $(tail -n 3 "$TEST_DIR/waldump.err")"
for kind in COMMIT ABORT COMMIT_PREPARED ABORT_PREPARED; do
	grep -q " $kind " "$TEST_DIR/expected" || fail "pg_waldump shows no $kind record"
done

for chunk in 0 16777216 8192; do
	"$XACTS" 16777216 8192 "$chunk" "${files[@]}" >"$TEST_DIR/got.$chunk" \
		2>"$TEST_DIR/got.$chunk.err" || fail "wal_xacts (chunk $chunk): $(cat "$TEST_DIR/got.$chunk.err")"
	cut -d' ' -f1-5 "$TEST_DIR/got.$chunk" | sed 's/ UTC$/ UTC/' >"$TEST_DIR/got.$chunk.cmp"
	diff -u "$TEST_DIR/expected" "$TEST_DIR/got.$chunk.cmp" >"$TEST_DIR/diff.$chunk" ||
		fail "the decoder's list differs from pg_waldump's (chunk $chunk): $(head -n 20 "$TEST_DIR/diff.$chunk")"
	log "ok: chunk $chunk: $n transaction ends as pg_waldump lists them; $(cat "$TEST_DIR/got.$chunk.err")"
done
# the end LSN of each is where pg_waldump's next record starts (the record after it)
big=$(awk '$2 == "COMMIT" {print}' "$TEST_DIR/got.0" | wc -l)
log "ok: $big commits, end LSNs: $(head -n 2 "$TEST_DIR/got.0" | awk '{print $1 "->" $6}' | tr '\n' ' ')"
