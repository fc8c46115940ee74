#!/bin/bash
# Issue 3, resuming: what the replica says it holds (HAVE) is checked against the bytes.
#
#  A. An acknowledgement lost: the replica stores a segment but its ACK never reaches the
#     primary (iptables drops the replica's data packets to the primary's port; TCP's own
#     acknowledgements pass), and the primary is SIGKILLed.  After the restart the push of
#     the same file succeeds without the file crossing the network again: the replica's
#     inventory lists it with its CRC, the primary's copy has the same CRC.
#  B. A partial file of other content: the replica holds the first megabytes of a segment
#     (the primary was SIGKILLed mid-transfer on a throttled link), then a segment of the
#     same name but different bytes is pushed.  The primary's CRC of its prefix differs, so
#     it sends the file from its start; the replica stores the new content whole (no file
#     made of two halves) and then sets its partial aside in archive_dir/.refused, since
#     the new file does not begin with its bytes (a partial's bytes may have been
#     acknowledged: after a restart a pushed partial is not told from a streamed one).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds iptables tc
walship_daemons_up
walship_primary_up 1

# Two full segments of real WAL, archived, then taken out of the replica's archive so the
# tests can push them by hand (PostgreSQL is stopped: nothing else is pushed meanwhile).
s1=$(pg_complete_segment "$NS_P" "$PG_PORT")
s2=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$s1"
wait_archived "$s2"
pg_stop "$PDATA"
for seg in "$s1" "$s2"; do
	cp "$RARCHIVE/$seg" "$SCRATCH/$seg"
	chown postgres:postgres "$SCRATCH/$seg"
	rm -f "$RARCHIVE/$seg"
done
log "segments $s1 and $s2 copied to $SCRATCH and removed from the replica's archive"

# ---- A: the acknowledgement is lost ----
drop_acks=(OUTPUT -p tcp -d "$ADDR_P" --dport "$WALSHIP_PORT" -m length --length 100:65535 -j DROP)
in_ns "$NS_R1" iptables -A "${drop_acks[@]}"
bg_start "$TEST_DIR/push-a.out" walship_push_as_postgres "$PCONF" "$SCRATCH/$s1"
push_pid=$BG_PID
wait_archived "$s1" 20
pid_alive "$push_pid" || fail "the push of $s1 ended although its acknowledgement was dropped"
log "A: $s1 is stored on the replica; its acknowledgement is dropped; killing the primary"
walshipd_kill "$PCONF"
rc=0
wait "$push_pid" || rc=$?
((rc != 0)) || fail "the push of $s1 succeeded without an acknowledgement"
in_ns "$NS_R1" iptables -D "${drop_acks[@]}"
dups_before=$(status_counter "$RCONF" duplicates)
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
wait_replica_streaming "$PCONF" 20
bytes_before=$(walship_status "$RCONF" --json | jq -e '.peers[0].bytes_received')
assert_exit 0 "push of $s1 after the primary's restart" walship_push_as_postgres "$PCONF" "$SCRATCH/$s1"
grep -q "replica \"ws-r1\" already holds \"$s1\" with the same content; not sent again" \
	"$TEST_DIR/ws-primary.log" || fail "the primary did not take the replica's word for $s1"
assert_eq 1 "$(status_counter "$PCONF" skipped_files)" "primary skipped_files"
assert_eq "$dups_before" "$(status_counter "$RCONF" duplicates)" \
	"replica duplicates (the file must not have been sent again)"
bytes_after=$(walship_status "$RCONF" --json | jq -e '.peers[0].bytes_received')
((bytes_after - bytes_before < 1048576)) ||
	fail "the replica received $((bytes_after - bytes_before)) bytes for a file it held"
assert_file_identical "$SCRATCH/$s1" "$RARCHIVE/$s1"
log "ok: A: $s1 acknowledged from the replica's inventory, not sent again"

# ---- B: a partial file, then other content under its name ----
in_ns "$NS_P" tc qdisc add dev vr1 root tbf rate 40mbit burst 64kb latency 400ms
bg_start "$TEST_DIR/push-b.out" walship_push_as_postgres "$PCONF" "$SCRATCH/$s2"
push_pid=$BG_PID
incoming_2mb() {
	local f
	for f in "$RARCHIVE/.incoming/$s2".*; do
		[[ -f "$f" ]] && (($(stat -c %s "$f") >= 2097152)) && return 0
	done
	return 1
}
wait_for 20 "2 MiB of $s2 in the replica's .incoming" incoming_2mb
walshipd_kill "$PCONF"
wait "$push_pid" || true
in_ns "$NS_P" tc qdisc del dev vr1 root
wait_for 20 "the replica to keep $s2 for resuming" \
	grep -q "kept \"$s2\" for resuming" "$TEST_DIR/ws-r1.log"
log "B: the replica keeps the first bytes of $s2; pushing other content under its name"
other=$SCRATCH/other/$s2
mkdir -p "$SCRATCH/other"
chown postgres:postgres "$SCRATCH/other"
cp "$SCRATCH/$s2" "$other"
# Offset 100 lies in page 0's records (after the 40-byte long header): the pages stay
# valid for the name, the bytes differ inside the replica's durable prefix.
printf '\xa5' | dd of="$other" bs=1 seek=100 conv=notrunc status=none
cmp -s "$SCRATCH/$s2" "$other" && fail "test bug: the altered copy equals the original"
chown postgres:postgres "$other"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
wait_replica_streaming "$PCONF" 20
assert_exit 0 "push of the other $s2" walship_push_as_postgres "$PCONF" "$other"
grep -q "replica \"ws-r1\" holds [0-9]* bytes of \"$s2\" with other content; sending it from its start" \
	"$TEST_DIR/ws-primary.log" || fail "the primary did not notice the partial's other content"
grep -q "partial file \"$s2\.[0-9]*\" kept until \"$s2\", sent again from its start" \
	"$TEST_DIR/ws-r1.log" || fail "the replica did not keep its partial $s2 meanwhile"
assert_eq 0 "$(status_counter "$PCONF" resumed_files)" "primary resumed_files"
assert_file_identical "$other" "$RARCHIVE/$s2"
wait_for 10 "the replica to set its partial $s2 aside" grep -q "set \"$s2\.[0-9]*\" aside" \
	"$TEST_DIR/ws-r1.log"
aside=("$RARCHIVE/.refused/$s2".*)
[[ -f "${aside[0]}" ]] || fail "nothing named $s2.* in $RARCHIVE/.refused"
cmp -s -n 2097152 "${aside[0]}" "$SCRATCH/$s2" ||
	fail "the partial set aside, ${aside[0]}, does not begin with the first push's bytes"
compgen -G "$RARCHIVE/.incoming/$s2.*" >/dev/null && fail "a file of $s2 is left in .incoming"
log "ok: B: $s2 sent from its start, stored whole with the new content; the partial set" \
	"aside as ${aside[0]#"$RARCHIVE"/}"
log "PASS"
