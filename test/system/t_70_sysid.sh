#!/bin/bash
# A replica that has seen one system identifier refuses WAL from another (durability rule 4, docs/architecture.md):
# after the main cluster's WAL is archived, a segment from a second initdb cluster (another
# system identifier) pushed to the same walshipd is refused with a non-zero exit and never
# stored.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_daemons_up
walship_primary_up 1
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$seg"
log "replica holds WAL of system $(pg_system_identifier "$PDATA") (up to $seg)"

# The other cluster archives with plain cp into its own directory, on another port.
other=$TEST_DIR/pg-other
other_arch=$TEST_DIR/other-archive
other_port=5433
mkdir -p "$other_arch" && chown postgres:postgres "$other_arch"
PG_INITDB_FRESH=1 pg_primary_init "$other" "$other_port" "$NS_P" "cp %p $other_arch/%f"
pg_start "$other" "$NS_P"
sysid_main=$(pg_system_identifier "$PDATA")
sysid_other=$(pg_system_identifier "$other")
[[ "$sysid_main" != "$sysid_other" ]] || fail "test bug: both clusters have system $sysid_main"
log "second cluster: system $sysid_other"

# Take the other cluster past the main one's segment numbers, so its segment has a name the
# replica has never seen (a refusal then cannot be a name conflict).
main_last=$(wal_segment_numbers "$RARCHIVE" | tail -n 1)
psql_at "$NS_P" "$other_port" "create table t70 (i int)"
other_last=""
for ((i = 0; i < main_last + 3; i++)); do
	psql_at "$NS_P" "$other_port" "insert into t70 values ($i); select pg_switch_wal()" \
		>/dev/null
	other_last=$(wal_segment_numbers "$other_arch" | tail -n 1)
	[[ -n "$other_last" ]] && ((other_last > main_last + 1)) && break
done
if [[ -z "$other_last" ]] || ((other_last <= main_last + 1)); then
	fail "the second cluster did not get past segment $main_last"
fi
other_seg=$(printf '00000001%08X%08X' $((other_last >> 8)) $((other_last & 255)))
[[ -f "$other_arch/$other_seg" ]] || fail "test bug: $other_seg not in $other_arch"
# (its archive_command, a plain cp, may still be writing it: a part of it would be refused
# for its size, before its system identifier is looked at)
other_seg_whole() { [[ $(stat -c %s "$other_arch/$other_seg") == $((16 * 1024 * 1024)) ]]; }
wait_for 30 "$other_seg whole in the second cluster's archive" other_seg_whole
assert_file_absent "$RARCHIVE/$other_seg"
log "pushing $other_seg of system $sysid_other"

cp "$other_arch/$other_seg" "$SCRATCH/$other_seg"
chown postgres:postgres "$SCRATCH/$other_seg"
assert_fails "push of a segment from another system" \
	walship_push_as_postgres "$PCONF" "$SCRATCH/$other_seg"
assert_file_absent "$RARCHIVE/$other_seg"
refused=$(status_counter_sum sysid_refused "$PCONF" "$RCONF")
((refused >= 1)) || fail "no daemon counted the refusal (sysid_refused: 0 on both)"

log "the main cluster still archives"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$seg"

log "handshake: a primary shipping another system refuses the replica, on both sides"
walshipd_stop "$RCONF"
walshipd_stop "$PCONF"
P2DIR=$TEST_DIR/ws-primary2
mkdir -p "$P2DIR"
P2CONF=$P2DIR/walship.conf
write_primary_conf "$P2CONF" "$P2DIR" "$NS_P" push_timeout=1s
walshipd_start "$NS_P" "$P2CONF" "$TEST_DIR/ws-primary2.log"
# No replica yet: the push fails, but the primary learns (durably) what it ships.
assert_fails "push with no replica" walship_push_as_postgres "$P2CONF" "$SCRATCH/$other_seg"
grep -q "ships WAL of system $sysid_other\|holds WAL of system $sysid_other" \
	"$TEST_DIR/ws-primary2.log" || fail "the second primary did not learn system $sysid_other"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
wait_for 15 "the primary to refuse the replica of system $sysid_main" grep -q \
	"replica holds WAL of system $sysid_main, this primary ships $sysid_other" \
	"$TEST_DIR/ws-primary2.log"
wait_for 15 "the replica to log the refusal" grep -q \
	"refused this replica: replica holds WAL of system $sysid_main" "$TEST_DIR/ws-r1.log"

log "an archive seeded by hand (the main system's segments, nothing recorded) learns its" \
	"system from them at start, and is refused as the first replica was"
walshipd_stop "$RCONF"
SEEDED=$TEST_DIR/ws-seeded
SCONF=$SEEDED/walship.conf
write_replica_conf "$SCONF" "$SEEDED" "$NS_P"
seeded=0
for f in "$RARCHIVE"/*; do
	[[ "$(basename "$f")" =~ ^[0-9A-F]{24}$ ]] || continue
	cp "$f" "$SEEDED/archive/" && seeded=$((seeded + 1))
done
((seeded >= 1)) || fail "test bug: no segment to seed from $RARCHIVE"
refusal="replica holds WAL of system $sysid_main, this primary ships $sysid_other"
refusals_above() { (($(grep -c "$refusal" "$TEST_DIR/ws-primary2.log") > $1)); }
refused0=$(grep -c "$refusal" "$TEST_DIR/ws-primary2.log")
walshipd_start "$NS_R1" "$SCONF" "$TEST_DIR/ws-seeded.log"
grep -q "holds WAL of system $sysid_main (PostgreSQL 15), as its newest segment .* says" \
	"$TEST_DIR/ws-seeded.log" || fail "the seeded replica did not learn system $sysid_main"
[[ "$(cut -d' ' -f1 "$SEEDED/archive/.walship/system_identifier")" == "$sysid_main" ]] ||
	fail "the seeded replica recorded $(cat "$SEEDED/archive/.walship/system_identifier")"
wait_for 15 "the primary to refuse the seeded replica of system $sysid_main" \
	refusals_above "$refused0"
log "PASS"
