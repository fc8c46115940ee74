#!/bin/bash
# Validate before storing (durability rule 4, docs/architecture.md): a segment whose middle page has a broken magic
# is refused by `walship push` (non-zero exit) and never appears on the replica; the real
# segment under the same name is then archived normally.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_daemons_up
walship_primary_up 1

log "pausing PostgreSQL's archiving so a completed segment stays unpushed"
psql_at "$NS_P" "$PG_PORT" "alter system set archive_command = 'false'"
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
# The archiver rereads its command on reload; complete a segment after that.
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
log "segment $seg complete, not archived"
assert_file_absent "$RARCHIVE/$seg"

damaged=$SCRATCH/$seg
cp "$PDATA/pg_wal/$seg" "$damaged"
# Page 1024 of 2048 (8 kB pages, 16 MB segment): its header starts with the 2-byte magic.
page_off=$((1024 * 8192))
magic=$(od -An -tx2 -j "$page_off" -N 2 "$damaged" | tr -d ' ')
log "page 1024 magic is 0x$magic; flipping it"
[[ "$magic" != 0000 ]] || fail "test bug: page 1024 of $seg is empty"
printf '\xff\xff' | dd of="$damaged" bs=1 seek="$page_off" conv=notrunc status=none
chown postgres:postgres "$damaged"

assert_fails "push of $seg with a damaged page" walship_push_as_postgres "$PCONF" "$damaged"
assert_file_absent "$RARCHIVE/$seg"
invalid=$(status_counter_sum invalid "$PCONF" "$RCONF")
((invalid >= 1)) || fail "no daemon counted the invalid file (invalid: 0 on both)"

log "resuming archiving: the real $seg must arrive intact"
psql_at "$NS_P" "$PG_PORT" "alter system reset archive_command"
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
wait_archived "$seg" 60
assert_file_identical "$PDATA/pg_wal/$seg" "$RARCHIVE/$seg"
log "PASS"
