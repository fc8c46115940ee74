#!/bin/bash
# Issue 3, fault injection: a standby promoted to a new timeline becomes the walship
# primary.  The old primary (host P) ships timeline 1 to the replica archive A1 in host R1,
# where a standby replays it.  Then the old primary stops, the standby is promoted
# (timeline 2) with archive_command = walship push to a NEW primary walshipd in its own
# host, and A1's replica walshipd follows that new primary (the archive continues, as in a
# real failover).  Asserted:
# - the promotion's 00000002.history and the new timeline's segments are shipped to A1,
#   byte-identical (and the old timeline's .partial segment, when the promotion leaves
#   one: not here, since an archive-fed standby only ever has whole segments);
# - the duplicate rule: pushing 00000002.history again is a no-op success (duplicate
#   counted), pushing another 00000002.history is refused (conflict counted) and the
#   stored one stays;
# - a new standby (the old primary's host rebuilt from a base backup of the promoted one)
#   follows timeline 2 from A1 alone;
# - check_invariants over everything either primary acknowledged.
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
inv_topology_up 1
OLD_ACKED=$INV_ACKED

log "timeline 1: load on the old primary, the standby catches up"
pgbench_at "$NS_P" "$PG_PORT" -n -c 2 -t 300 >"$TEST_DIR/pgbench-1.out" 2>&1 ||
	{ tail -n 20 "$TEST_DIR/pgbench-1.out"; fail "pgbench failed"; }
lsn=$(pg_finish_load "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$PG_PORT" "$lsn" 60
no_ready() {
	[[ -z "$(find "$1/pg_wal/archive_status" -name '*.ready' -print -quit)" ]]
}
wait_for 30 "the old primary to have archived everything" no_ready "$PDATA"

log "failover: the old primary stops; its walshipd too"
pg_stop "$PDATA"
walshipd_stop "$PCONF"

# The new walship primary in the promoted host; its own log of acknowledged pushes.
NCONF=$TEST_DIR/ws-new/walship.conf
mkdir -p "$TEST_DIR/ws-new"
write_primary_conf "$NCONF" "$TEST_DIR/ws-new" "$NS_R1"
INV_ACKED=$TEST_DIR/acked-new.log
inv_setup
walshipd_start "$NS_R1" "$NCONF" "$TEST_DIR/ws-new.log"

log "A1's replica walshipd follows the new primary"
walshipd_stop "$RCONF"
sed -i "s/^upstream = .*/upstream = $ADDR_R1:$WALSHIP_PORT/" "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_replica_streaming "$NCONF" 20

log "the standby gets archive_mode = on, archive_command = walship push to the new primary"
cat >>"$SDATA/postgresql.conf" <<-EOF2
	# promoted host: archives through the new walship primary
	archive_mode = on
	archive_command = '$(inv_archive_command "$NCONF")'
EOF2
pg_stop "$SDATA"
pg_start "$SDATA" "$NS_R1"
log "promoting the standby"
as_postgres_in "$NS_R1" "$PG_BIN/pg_ctl" -D "$SDATA" -w -t 60 promote >/dev/null ||
	fail "pg_ctl promote failed"
promoted() {
	[[ "$(psql_at "$NS_R1" "$PG_PORT" 'select pg_is_in_recovery()')" == f ]]
}
wait_for 30 "the standby to leave recovery" promoted
# The timeline of the WAL being written (pg_control_checkpoint() lags: the end-of-recovery
# checkpoint runs after promotion).
tli=$(psql_at "$NS_R1" "$PG_PORT" "select substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
tli=$((16#$tli))
assert_eq 2 "$tli" "the promoted standby's timeline"
hist=00000002.history
[[ -f "$SDATA/pg_wal/$hist" ]] || fail "the promoted standby wrote no $hist"

log "timeline 2: load on the promoted host"
pgbench_at "$NS_R1" "$PG_PORT" -n -c 2 -t 300 >"$TEST_DIR/pgbench-2.out" 2>&1 ||
	{ tail -n 20 "$TEST_DIR/pgbench-2.out"; fail "pgbench on the promoted host failed"; }
pg_complete_segment "$NS_R1" "$PG_PORT" >/dev/null
lsn2=$(pg_finish_load "$NS_R1" "$PG_PORT")
wait_for 30 "the promoted host to have archived everything" no_ready "$SDATA"

wait_archived "$hist" 10
assert_file_identical "$SDATA/pg_wal/$hist" "$RARCHIVE/$hist"
log "ok: $hist shipped to A1"
partial=$(find "$SDATA/pg_wal" -maxdepth 1 -name '00000001*.partial' -printf '%f\n' | head -n 1)
if [[ -n "$partial" ]]; then
	assert_file_identical "$SDATA/pg_wal/$partial" "$RARCHIVE/$partial"
	log "ok: the old timeline's $partial shipped to A1"
fi
ntl2=$(find "$RARCHIVE" -maxdepth 1 -name '00000002????????????????' | wc -l)
((ntl2 >= 2)) || fail "only $ntl2 timeline-2 segment(s) in A1"
log "ok: $ntl2 timeline-2 segments in A1"

log "the duplicate rule for the new timeline's history file"
dup_before=$(status_counter "$RCONF" duplicates)
assert_exit 0 "pushing $hist again" runuser -u postgres -- "$WALSHIP" push -c "$NCONF" \
	"$SDATA/pg_wal/$hist"
assert_eq $((dup_before + 1)) "$(status_counter "$RCONF" duplicates)" "duplicates on A1"
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH"
chown postgres:postgres "$SCRATCH"
{
	cat "$SDATA/pg_wal/$hist"
	printf '2\t9/9000000\tanother promotion (split brain)\n'
} >"$SCRATCH/$hist"
chown postgres:postgres "$SCRATCH/$hist"
assert_fails "pushing a different $hist" runuser -u postgres -- "$WALSHIP" push -c "$NCONF" \
	"$SCRATCH/$hist"
grep -q 'different content' "$TEST_DIR/last.out" ||
	fail "the refusal does not say the content differs: $(cat "$TEST_DIR/last.out")"
assert_eq 1 "$(status_counter "$RCONF" conflicts)" "conflicts on A1"
assert_file_identical "$SDATA/pg_wal/$hist" "$RARCHIVE/$hist"

log "a new standby in the old primary's host, from a base backup of the promoted one"
S2DATA=$TEST_DIR/pg-standby2
pg_standby_from_basebackup "$NS_R1" "$PG_PORT" "$S2DATA" "$NS_P" 5433 \
	"$WALSHIP fetch -c $RCONF %f %p"
pg_start "$S2DATA" "$NS_P"
pgbench_at "$NS_R1" "$PG_PORT" -n -c 2 -t 200 >"$TEST_DIR/pgbench-3.out" 2>&1 ||
	{ tail -n 20 "$TEST_DIR/pgbench-3.out"; fail "pgbench on the promoted host failed"; }
lsn3=$(pg_finish_load "$NS_R1" "$PG_PORT")
wait_standby_lsn "$NS_P" 5433 "$lsn3" 60
grep -q 'restored log file "00000002[0-9A-F]\{16\}" from archive' "$S2DATA.log" ||
	fail "the new standby restored no timeline-2 segment from A1"
log "ok: the new standby replays timeline 2 from A1 (at $lsn3, beyond $lsn2)"

# Everything either primary acknowledged is in A1, intact.
INV_ACKED=$TEST_DIR/acked-all.log
cat "$OLD_ACKED" "$TEST_DIR/acked-new.log" >"$INV_ACKED"
check_invariants -P "$NCONF" -R "$RCONF" -D "$NS_R1 $PG_PORT $NS_P 5433"
log "PASS"
