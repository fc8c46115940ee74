#!/bin/bash
# t_99n: a relay's kept partial reaches its downstream replicas after the relay restarts,
# with no upstream to resume it (the primary host lost, the relay restarted to be pointed
# elsewhere).  Primary (PostgreSQL, a primary walshipd streaming) -> replica A (listen set:
# a relay) -> replica B.  B is stopped; rows are committed into the segment being written
# (S) and are durable on A; the primary walshipd is SIGKILLed (it never resumes S) and A
# restarted: A keeps S's durable part as a partial.  B started again gets that part from A
# at once: `walship fetch S` on B gives the same bytes as on A (the durable prefix, then
# zeros), and holds the rows' WAL.  On the build before, A sent S's bytes downstream only
# as the upstream resumed S, so B's fetch found no S at all.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
# A (RCONF) relays; B (BCONF), its replica, runs on A's host.
relay_stream_up

# B away; rows committed into segment S, durable on A.
walshipd_stop "$BCONF"
segment_part_durable rows_in_s
log "rows up to $PART_LSN in $PART_SEG, durable on ws-r1"
# The upstream gone for good (SIGKILL, not started again), A restarted: S is a partial.
walshipd_kill "$PCONF"
walshipd_stop "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"

SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH"
chown postgres:postgres "$SCRATCH"
assert_exit 0 "walship fetch $PART_SEG on ws-r1" \
	walship_fetch_as_postgres "$RCONF" "$PART_SEG" "$SCRATCH/a.$PART_SEG"
# What A serves holds the rows: its bytes up to PART_LSN are the primary's.
off=$(($(lsn_to_int "$PART_LSN") % (16 * 1024 * 1024)))
cmp -n "$off" "$SCRATCH/a.$PART_SEG" "$PDATA/pg_wal/$PART_SEG" ||
	fail "ws-r1's $PART_SEG differs from pg_wal's before $PART_LSN"

# B started again, with no upstream for A: it gets S's durable part from A.
walshipd_start "$NS_R1" "$BCONF" "$TEST_DIR/ws-b.log"
wait_for 20 "ws-b streaming from the restarted ws-r1" b_streaming_on_a
b_has_a_part() {
	rm -f "$SCRATCH/b.$PART_SEG"
	walship_fetch_as_postgres "$BCONF" "$PART_SEG" "$SCRATCH/b.$PART_SEG" 2>/dev/null &&
		cmp -s "$SCRATCH/a.$PART_SEG" "$SCRATCH/b.$PART_SEG"
}
wait_for 20 "ws-b to serve ws-r1's durable part of $PART_SEG" b_has_a_part
log "ok: ws-b serves $PART_SEG as ws-r1 does, the rows up to $PART_LSN included"
ws_check_daemons
log "PASS"
