#!/bin/bash
# Issue 11, defect 7: the primary validates what it is pushed before a push can succeed
# (durability rule 4, docs/architecture.md), with the validator the replicas use.  With sync_replicas = 0 and the
# only replica away, nothing waits for a replica to look at the content: 16 MiB of zeros
# named like a segment used to be pushed with exit 0 (and held for the replica, which
# refused it later).  Now:
# - zeros, a real segment with one damaged page, and a history file with a NUL byte are
#   refused with a one-line reason, counted as invalid, and nothing is held for them;
# - the real segment itself is accepted and held for the replica that is away.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
PRIMARY_CONF_EXTRA=(sync_replicas=0)
walship_daemons_up
log "ws-r1 registered; now away"
walshipd_stop "$RCONF"

log "making a real WAL segment"
pg_primary_init "$PDATA" "$PG_PORT" "$NS_P" /bin/true
pg_start "$PDATA" "$NS_P"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
cp "$PDATA/pg_wal/$seg" "$SCRATCH/$seg"
pg_stop "$PDATA"

# refused PATH WHAT PATTERN: pushing PATH fails with one line matching PATTERN.
refused() {
	local path=$1 what=$2 pattern=$3 before
	before=$(status_counter "$PCONF" invalid)
	chown postgres:postgres "$path"
	assert_fails "push of $what" walship_push_as_postgres "$PCONF" "$path"
	assert_eq 1 "$(wc -l <"$TEST_DIR/last.out")" "lines printed by the push of $what"
	grep -q -- "$pattern" "$TEST_DIR/last.out" ||
		fail "the push of $what does not say why: $(cat "$TEST_DIR/last.out")"
	assert_eq $((before + 1)) "$(status_counter "$PCONF" invalid)" "invalid pushes counted"
	assert_eq 0 "$(status_counter "$PCONF" spool_files)" "files held after the push of $what"
}

zeros=000000010000000000000009
head -c $((16 * 1024 * 1024)) /dev/zero >"$SCRATCH/$zeros"
refused "$SCRATCH/$zeros" "16 MiB of zeros" "invalid magic number 0000 in WAL segment $zeros, offset 0"

mkdir -m 0755 "$SCRATCH/damaged"
damaged=$SCRATCH/damaged/$seg
cp "$SCRATCH/$seg" "$damaged"
# Page 1 of 2048 (8 kB pages): its header starts with the 2-byte magic.
magic=$(od -An -tx2 -j 8192 -N 2 "$damaged" | tr -d ' ')
[[ "$magic" != 0000 ]] || fail "test bug: page 1 of $seg is empty"
printf '\xff\xff' | dd of="$damaged" bs=1 seek=8192 conv=notrunc status=none
refused "$damaged" "a segment with a damaged page" \
	"invalid magic number FFFF in WAL segment $seg, offset 8192"

printf '1\t0/3000000\tno recovery target\n\0' >"$SCRATCH/00000002.history"
refused "$SCRATCH/00000002.history" "a history file with a NUL byte" "contains a NUL byte"

log "the real segment is accepted and held for the replica that is away"
chown postgres:postgres "$SCRATCH/$seg"
assert_exit 0 "push of $seg" walship_push_as_postgres "$PCONF" "$SCRATCH/$seg"
assert_eq 1 "$(status_counter "$PCONF" spool_files)" "files held for ws-r1"
log "PASS"
