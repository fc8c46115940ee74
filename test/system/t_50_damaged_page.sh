#!/bin/bash
# Validate before storing (durability rule 4, docs/architecture.md): a segment whose middle page has a broken magic
# is refused by `walship push` (non-zero exit) and never appears on the replica; the real
# segment under the same name is then archived normally.
#
# How the primary validates a pushed segment read into the send slots (the default
# send_source = buffers): its first page at the push, before anything is sent, and its
# other pages as they are read for sending.  So a damaged first page never reaches the
# replica, while a damaged middle page is refused by the primary with its own message
# once the transfer reads it, and the replica, which got the pages before it, refuses the
# file by its own check.  The link stays up through both.
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
grep -q "invalid magic number FFFF in WAL segment $seg, offset $page_off" "$TEST_DIR/last.out" ||
	fail "the push was not refused by the primary's validation: $(cat "$TEST_DIR/last.out")"
assert_file_absent "$RARCHIVE/$seg"
assert_eq 1 "$(status_counter "$PCONF" invalid)" "invalid pushes counted by the primary"
# The pages before the damaged one were sent as they were validated: the replica got the
# file and refused it by its own check.
wait_for 10 "the replica to refuse $seg by its own check" \
	grep -q "refused \"$seg\": invalid magic number FFFF in WAL segment $seg, offset $page_off" \
	"$TEST_DIR/ws-r1.log"

log "a damaged first page: refused before anything is sent"
first=$SCRATCH/first/$seg
mkdir -p "$SCRATCH/first"
cp "$PDATA/pg_wal/$seg" "$first"
printf '\xff\xff' | dd of="$first" bs=1 seek=0 conv=notrunc status=none
chown -R postgres:postgres "$SCRATCH/first"
assert_fails "push of $seg with a damaged first page" walship_push_as_postgres "$PCONF" "$first"
grep -q "invalid magic number FFFF in WAL segment $seg, offset 0$" "$TEST_DIR/last.out" ||
	fail "the push was not refused for its first page: $(cat "$TEST_DIR/last.out")"
assert_eq 2 "$(status_counter "$PCONF" invalid)" "invalid pushes counted by the primary"
# Sent nothing: the replica's log names no refusal of it (its refusals name the offset).
if grep -q "offset 0$" "$TEST_DIR/ws-r1.log"; then
	fail "the replica was sent the segment with a damaged first page"
fi
assert_eq 1 "$(grep -c 'connected to primary' "$TEST_DIR/ws-r1.log")" \
	"the replica's connections (the link stays up)"

log "resuming archiving: the real $seg must arrive intact"
psql_at "$NS_P" "$PG_PORT" "alter system reset archive_command"
psql_at "$NS_P" "$PG_PORT" "select pg_reload_conf()" >/dev/null
wait_archived "$seg" 60
assert_file_identical "$PDATA/pg_wal/$seg" "$RARCHIVE/$seg"
log "PASS"
