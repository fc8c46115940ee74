#!/bin/bash
# Compatibility (issue 6): a replica whose archive holds WAL of another PostgreSQL major
# version is refused at the handshake, with the versions named on both sides, even when
# the system identifier is the same.
#
# Only PostgreSQL 15 is installed, so the other version's WAL is made here: a segment with
# PostgreSQL 16's page magic (0xD113) and the real cluster's system identifier, stored by
# a replica ws-r2 through a second, throw-away primary.  Then ws-r2 is pointed at the real
# primary (which ships PostgreSQL 15 WAL): refused.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds python3
walship_daemons_up
walship_primary_up 1
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$seg"
sysid=$(pg_system_identifier "$PDATA")
log "the primary ships PostgreSQL 15 WAL of system $sysid"

# The throw-away primary and ws-r2, on a port of their own.
other_port=$((WALSHIP_PORT + 1))
OCONF=$TEST_DIR/ws-old/walship.conf
R2CONF=$TEST_DIR/ws-r2/walship.conf
mkdir -p "$TEST_DIR/ws-old" "$TEST_DIR/ws-r2"
write_primary_conf "$OCONF" "$TEST_DIR/ws-old" "$NS_P" "listen=$ADDR_P:$other_port"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P" "upstream=$ADDR_P:$other_port"
walshipd_start "$NS_P" "$OCONF" "$TEST_DIR/ws-old.log"
walshipd_start "$NS_R1" "$R2CONF" "$TEST_DIR/ws-r2.log"
wait_replica_streaming "$OCONF" 20

pg16=$SCRATCH/000000010000000000000040
python3 - "$pg16" "$sysid" <<'PY'
import struct, sys
SEG = 16 << 20
segno = 0x40
hdr = struct.pack('<HHIQI4xQII', 0xD113, 0x0002, 1, segno * SEG, 0, int(sys.argv[2]), SEG, 8192)
with open(sys.argv[1], 'wb') as f:
    f.write(hdr + b'\0' * (SEG - len(hdr)))
PY
chown postgres:postgres "$pg16"
assert_exit 0 "push of a PostgreSQL 16 segment to the throw-away primary" \
	walship_push_as_postgres "$OCONF" "$pg16"
test -f "$TEST_DIR/ws-r2/archive/$(basename "$pg16")" || fail "ws-r2 did not store the segment"
log "ws-r2 holds PostgreSQL 16 WAL of system $sysid"
walshipd_stop "$R2CONF"
walshipd_stop "$OCONF"

refused_before=$(status_counter "$PCONF" connections_refused)
sed -i "s/^upstream = .*/upstream = $ADDR_P:$WALSHIP_PORT/" "$R2CONF"
walshipd_start "$NS_R1" "$R2CONF" "$TEST_DIR/ws-r2.log"
want='replica holds WAL of PostgreSQL 16, this primary ships PostgreSQL 15'
wait_for 15 "the primary to refuse ws-r2 for its PostgreSQL version" \
	grep -q "refusing replica connection from .*: $want" "$TEST_DIR/ws-primary.log"
wait_for 15 "ws-r2 to log the refusal" \
	grep -q "refused this replica: $want" "$TEST_DIR/ws-r2.log"
((refused_before < $(status_counter "$PCONF" connections_refused))) ||
	fail "the refusal is not counted in connections_refused"
! walship_status "$PCONF" --json |
	jq -e '.peers[] | select(.name == "ws-r2" and .state == "streaming")' >/dev/null ||
	fail "ws-r2 streams from a primary of another PostgreSQL version"
walshipd_stop "$R2CONF"

log "ws-r1 still streams and ships"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$seg"
log "PASS"
