#!/bin/bash
# Never overwrite (durability rule 3, docs/architecture.md): pushing a segment the replica already holds with the
# same content is a no-op success; the same name with different content is refused, the
# stored file is untouched, and both daemons count a conflict in `walship status --json`.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_daemons_up
walship_primary_up 1

# A segment ended by pg_switch_wal: the bytes after the switch record, up to the end of its
# page, are padding no CRC covers.  Changing one gives content that is valid for the name
# (page headers intact) but different.
log "making a segment that ends with a switch record"
psql_at "$NS_P" "$PG_PORT" "create table t30 (i int); insert into t30 values (1)"
read -r seg offset < <(psql_at "$NS_P" "$PG_PORT" \
	"select file_name || ' ' || file_offset from pg_walfile_name_offset(pg_switch_wal())" |
	tr -d '|')
[[ "$seg" =~ ^[0-9A-F]{24}$ ]] || fail "unexpected pg_walfile_name_offset output: $seg $offset"
log "segment $seg, switch record ends at offset $offset"
wait_archived "$seg"
original=$SCRATCH/$seg
cp "$RARCHIVE/$seg" "$original"
chown postgres:postgres "$original"

log "pushing $seg again with the same content: success"
assert_exit 0 "second push of identical $seg" walship_push_as_postgres "$PCONF" "$original"
dups=$(status_counter_sum duplicates "$PCONF" "$RCONF")
((dups >= 1)) || fail "no daemon counted the duplicate push (duplicates: 0 on both)"
assert_eq 0 "$(status_counter "$RCONF" conflicts)" "replica conflicts after a duplicate"

log "pushing $seg with different content: refused"
pad=$((offset + 16))
((pad % 8192 > 24 && pad % 8192 < 8190)) || pad=$((offset + 1))
((pad % 8192 > 24)) || fail "switch record ends at a page boundary; cannot place a change"
other=$SCRATCH/other/$seg
mkdir -p "$SCRATCH/other" && chown postgres:postgres "$SCRATCH/other"
cp "$original" "$other"
printf '\x5a' | dd of="$other" bs=1 seek="$pad" conv=notrunc status=none
cmp -s "$original" "$other" && fail "test bug: the altered copy equals the original"
chown postgres:postgres "$other"
assert_fails "push of $seg with different content" walship_push_as_postgres "$PCONF" "$other"
assert_file_identical "$original" "$RARCHIVE/$seg"
c_primary=$(status_counter "$PCONF" conflicts)
c_replica=$(status_counter "$RCONF" conflicts)
log "conflicts: primary $c_primary, replica $c_replica"
((c_primary >= 1)) || fail "primary walshipd shows no conflict"
((c_replica >= 1)) || fail "replica walshipd shows no conflict"
log "PASS"
