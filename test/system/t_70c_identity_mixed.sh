#!/bin/bash
# A replica stores WAL of one cluster only, checked on every field it knows (system
# identifier, version, segment and block size: wal_identity_mismatch()), and on what it
# knows when a file completes, not only when its first page arrived.  A fake primary sends
# synthetic segments to a replica whose archive is empty:
#  1. segment A of system X and segment B of system Y interleaved: B's first page arrives
#     while the store knows no system yet; A completes first and fixes the store's system
#     X.  B is refused (sysid).  Before, B's first page was never checked again and B was
#     stored beside A: two clusters in one archive.
#  2. a segment of system X but of another segment size (pg_resetwal --wal-segsize keeps
#     the system identifier) is refused.  Before, only the system and version were compared.
#  3. a store that recorded the system identifier alone (its first form) completes its
#     record with the next segment of that system, and then refuses another segment size.
#     Before, what it did not record was never learned, and never checked.
#  4. `walship fetch` serves only WAL of the cluster the archive records: not a segment of
#     system Y put into the archive by hand, nor anything once the record is gone.
#     Before, it validated the pages but took any system.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
replica_for_fake_primary
ARCH=$TEST_DIR/ws-r1/archive
IDFILE=$ARCH/.walship/system_identifier

X=7713288329218603033
Y=7713288329218603099
MB=$((1024 * 1024))
SEG=$((16 * MB))
A=000000010000000000000002
B=000000010000000000000003
C=000000010000000000000004
D=000000010000000000000005
E=000000010000000000000006

# fake_primary OUT STEP...: a fake primary on the replica's upstream, its steps after the
# handshake; fails the test when a step fails.
fake_primary() {
	local out=$1 rc=0
	shift
	ip netns exec "$NS_P" timeout 60 "$FAKE" --listen "$ADDR_P:$WALSHIP_PORT" \
		--name fake-primary --timeout 30 read-hello hello-primary "$@" >"$out" 2>&1 ||
		rc=$?
	cat "$out"
	((rc == 0)) || fail "the fake primary failed (exit $rc): $(tail -n 1 "$out")"
}

log "1. A of system $X and B of system $Y interleaved, into an empty archive"
fake_primary "$TEST_DIR/fake1.out" \
	begin 1 "$A" "$SEG" seg-data 1 "$X" 0 "$MB" \
	begin 2 "$B" "$SEG" seg-data 2 "$Y" 0 "$MB" \
	seg-data 1 "$X" "$MB" "$SEG" end 1 expect-ack stored \
	seg-data 2 "$Y" "$MB" "$SEG" end 2 expect-ack sysid
grep -q "ack $B sysid: .*belongs to system $Y, this replica holds system $X" \
	"$TEST_DIR/fake1.out" || fail "B's refusal does not say why"
assert_file_absent "$ARCH/$B"
[[ -f "$ARCH/$A" ]] || fail "A was not stored"
grep -q "^$X D110 $SEG 8192$" "$IDFILE" || fail "the store records $(cat "$IDFILE")"

log "2. a segment of system $X with 1 MiB segments"
fake_primary "$TEST_DIR/fake2.out" \
	begin 3 "$C" "$MB" seg-data 3 "$X" 0 "$MB" end 3 expect-ack sysid
grep -q "ack $C sysid: .*segment size $MB, this replica holds segments of $SEG bytes" \
	"$TEST_DIR/fake2.out" || fail "C's refusal does not say why"
assert_file_absent "$ARCH/$C"

log "3. a store that recorded the system identifier alone"
walshipd_stop "$RCONF"
echo "$X" >"$IDFILE"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
fake_primary "$TEST_DIR/fake3.out" \
	begin 4 "$D" "$SEG" seg-data 4 "$X" 0 "$SEG" end 4 expect-ack stored \
	begin 5 "$E" "$MB" seg-data 5 "$X" 0 "$MB" end 5 expect-ack sysid
grep -q "^$X D110 $SEG 8192$" "$IDFILE" ||
	fail "the store's record was not completed: $(cat "$IDFILE")"
assert_file_absent "$ARCH/$E"
refused=$(status_counter "$RCONF" sysid_refused)
((refused >= 1)) || fail "sysid_refused is $refused since the restart, expected 1"
log "4. walship fetch serves the archive's cluster only"
SCRATCH=$TEST_DIR/scratch
mkdir -p "$SCRATCH"
chown postgres:postgres "$SCRATCH"
assert_exit 0 "walship fetch $A" walship_fetch_as_postgres "$RCONF" "$A" "$SCRATCH/$A"
# A's bytes with system Y in its first page, under a name of timeline 2 (same address).
F=000000020000000000000002
cp -p "$ARCH/$A" "$ARCH/$F"
bytes=""
for ((i = 0; i < 8; i++)); do
	bytes+=$(printf '\\x%02x' $(((Y >> (8 * i)) & 255)))
done
printf '%b' "$bytes" | dd of="$ARCH/$F" bs=1 seek=24 conv=notrunc status=none
assert_exit 3 "walship fetch of system $Y's $F" \
	walship_fetch_as_postgres "$RCONF" "$F" "$SCRATCH/$F"
assert_file_absent "$SCRATCH/$F"
mv "$IDFILE" "$IDFILE.gone"
assert_exit 3 "walship fetch $A from an archive that records no cluster" \
	walship_fetch_as_postgres "$RCONF" "$A" "$SCRATCH/$A.2"
mv "$IDFILE.gone" "$IDFILE"
log "PASS"
