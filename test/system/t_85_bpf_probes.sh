#!/bin/bash
# BPF latency probes (issue 5): the programs load and attach; after shipping segments the
# fsync histogram counts every IORING_OP_FSYNC the replica submitted and the send
# histograms every send the primary submitted; the pins dump as JSON with named fields;
# /metrics is Prometheus text whose counts agree with `walship stats --json`; the ext4
# probe sees the replica's fsyncs (its archive is on ext4 here); `walship status` shows
# the same quantiles as `walship stats`; received to durable starts at WAL received (an idle
# replica's keepalives do not start it); pins a killed walshipd left are removed at its next
# start, and a second walshipd of the same node_name leaves a running one's pins alone;
# `walship stats --interval` waits across a restart and counts the new maps afresh; with
# bpf_keep_pins = on, kept pins that do not fit are removed, and pins that fit are kept
# when the programs do not load for another reason.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

require_root
require_cmds bpftool curl jq nsenter
[[ -r /sys/kernel/btf/vmlinux ]] || skip "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
ws_setup
METRICS_PORT=9187
# shellcheck disable=SC2034  # read by walship_daemons_up
PRIMARY_CONF_EXTRA=(probes=on "metrics_listen=0.0.0.0:$METRICS_PORT")
# shellcheck disable=SC2034
REPLICA_CONF_EXTRA=(probes=on "metrics_listen=0.0.0.0:$METRICS_PORT")
walship_daemons_up
grep -q 'BPF probes on' "$TEST_DIR/ws-r1.log" || fail "replica did not report probes on"
# Run by `ip netns exec`, whose /sys has no tracefs: walshipd mounts it, else the classic
# tracepoints (fsync(2), ext4) would not load.
grep 'BPF probes on' "$TEST_DIR/ws-r1.log" | grep -q 'fsync(2) probes on' ||
	fail "replica: the fsync(2) probes did not load: $(grep 'BPF probes on' "$TEST_DIR/ws-r1.log")"
PPIN=/sys/fs/bpf/walship/ws-primary
RPIN=/sys/fs/bpf/walship/ws-r1
P_PID=${WS_DAEMON_PID[$PCONF]}
R_PID=${WS_DAEMON_PID[$RCONF]}
# `ip netns exec` gives each daemon a /sys of its own, where it mounts bpffs: look at
# its pins from inside its mount namespace.
in_mnt() {
	local pid=$1
	shift
	nsenter -t "$pid" -m -n "$@"
}
for map in fsync_hist send_hist peers; do
	in_mnt "$P_PID" test -e "$PPIN/$map" || fail "pin $PPIN/$map missing"
	in_mnt "$R_PID" test -e "$RPIN/$map" || fail "pin $RPIN/$map missing"
done

walship_primary_up 1
for _ in 1 2 3; do
	seg=$(psql_at "$NS_P" "$PG_PORT" "select pg_walfile_name(pg_switch_wal())")
	psql_at "$NS_P" "$PG_PORT" "insert into pgbench_history values (1, 1, 1, 1, now())"
done
wait_archived "$seg"

# metric NS NAME_REGEX: the sum of the samples matching NAME_REGEX in NS's /metrics.
metrics_of() {
	ip netns exec "$1" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics"
}
metric_sum() {
	awk -v re="$2" '$1 ~ re {s += $2} END {printf "%d\n", s}' <<<"$1"
}

# The replica's last fsyncs (the directory's after the last rename) may still be in
# flight when the push returns: read once every one submitted has completed, its
# histogram counted (a wait for that, not a sleep).
fsyncs_settled() {
	rm_=$(metrics_of "$NS_R1")
	(($(metric_sum "$rm_" '^walship_io_uring_fsyncs_submitted_total$') ==
		$(metric_sum "$rm_" '^walship_fsync_duration_seconds_count\{path="io_uring"\}$')))
}
wait_for 15 "the replica's submitted fsyncs all measured" fsyncs_settled
rm_=$(metrics_of "$NS_R1")
pm_=$(metrics_of "$NS_P")
# Prometheus text: every line a comment or "name{labels} value".
grep -Ev '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[^}]*\})? [-+0-9.eInf]+)$' <<<"$rm_"$'\n'"$pm_" &&
	fail "lines above are not Prometheus text format"

submitted=$(metric_sum "$rm_" '^walship_io_uring_fsyncs_submitted_total$')
probed=$(metric_sum "$rm_" '^walship_fsync_duration_seconds_count\{path="io_uring"\}$')
stored=$(status_counter "$RCONF" files_stored)
log "replica: $stored files stored, $submitted FSYNC submitted, $probed measured"
((submitted >= 2 * stored && stored >= 3)) || fail "replica submitted too few fsyncs"
assert_eq "$submitted" "$probed" "fsync histogram count vs fsyncs submitted"
# Received to durable: one sample per io_uring fsync submitted after a receive no earlier
# fsync covered, so at least one (the first file's) and no more than the fsyncs.  Not one
# per file: the primary ships ready segments ahead of the archiver, and a file whose
# chunks all arrived before the previous file's fsync was submitted adds no sample.
durable=$(metric_sum "$rm_" '^walship_received_to_durable_seconds_count\{path="io_uring"\}$')
log "replica: $durable fsyncs made received WAL durable"
((durable >= 1 && durable <= probed)) ||
	fail "received-to-durable samples $durable, not between 1 and $probed fsyncs"
ext4=$(metric_sum "$rm_" '^walship_fsync_duration_seconds_count\{path="ext4"\}$')
syscalls=$(metric_sum "$rm_" '^walship_fsync_duration_seconds_count\{path="syscall"\}$')
log "ext4 probe: $ext4 fsyncs, fsync(2) probe: $syscalls"
if [[ $(stat -f -c %T "$RARCHIVE") == ext2/ext3 ]]; then
	# Every fsync the replica issues is on its archive (files and folder): ext4 sees each
	# FSYNC in the io-wq worker that runs it, and each synchronous fsync(2).
	assert_eq "$((probed + syscalls))" "$ext4" "ext4 probe count vs io_uring + fsync(2) counts"
else
	log "the archive is not on ext4: the ext4 probe is not checked"
fi

# peer_sends: the primary's sends to its replica as walship status counts them.
peer_sends() {
	echo $(($(status_counter_sum "peers[0].zc_sends" "$PCONF") +
		$(status_counter_sum "peers[0].copy_sends" "$PCONF")))
}
# Keepalives still go out: /metrics is read between two readings of walship status, and
# the probe's count must lie between them.
peer_before=$(peer_sends)
pm_=$(metrics_of "$NS_P")
peer_after=$(peer_sends)
sends=$(metric_sum "$pm_" '^walship_sends_submitted_total$')
sent=$(metric_sum "$pm_" '^walship_send_duration_seconds_count\{.*stage="sent"')
log "primary: $sends sends submitted, $peer_before to $peer_after counted by the peer, $sent measured"
((sends > 0)) || fail "primary submitted no sends"
assert_eq "$sends" "$sent" "send histogram count vs sends submitted"
((peer_before <= sent && sent <= peer_after)) ||
	fail "send histogram count $sent, the peer's sends $peer_before then $peer_after"

# The pins dump with BTF: named fields.
in_mnt "$R_PID" bpftool -j map dump pinned "$RPIN/fsync_hist" >"$TEST_DIR/fsync.json"
assert_eq "$probed" "$(jq '.[0].formatted.value.io_uring.slots | add' "$TEST_DIR/fsync.json")" \
	"bpftool dump of fsync_hist, io_uring slots"
in_mnt "$P_PID" bpftool -j map dump pinned "$PPIN/send_hist" |
	jq -e '[.[].formatted.value.sent.count] | add > 0' >/dev/null ||
	fail "bpftool dump of send_hist has no named sent.count"
in_mnt "$P_PID" bpftool -j map dump pinned "$PPIN/peers" |
	jq -e "[.[].formatted.value.addr] | index(\"$(ns_addr "$NS_R1")\") != null" >/dev/null ||
	fail "peers map does not name the replica's address"

# walship stats --json agrees with /metrics (nothing is shipping now).
rm_=$(metrics_of "$NS_R1")
stats=$(in_mnt "$R_PID" "$WALSHIP" stats -c "$RCONF" --json)
assert_eq "$(metric_sum "$rm_" '^walship_fsync_duration_seconds_count\{path="io_uring"\}$')" \
	"$(jq '.fsync.io_uring.count' <<<"$stats")" "walship stats vs /metrics, fsync io_uring"
assert_eq "$(metric_sum "$rm_" '^walship_fsync_duration_seconds_count\{path="ext4"\}$')" \
	"$(jq '.fsync.ext4.count' <<<"$stats")" "walship stats vs /metrics, fsync ext4"
assert_eq "$(metric_sum "$rm_" '^walship_received_to_durable_seconds_count')" \
	"$(jq '.received_to_durable.count' <<<"$stats")" "walship stats vs /metrics, received to durable"
# Keepalives still go out: the primary's /metrics is read between two `walship stats`,
# and its send count must lie between theirs.
stats=$(in_mnt "$P_PID" "$WALSHIP" stats -c "$PCONF" --json)
before=$(jq '[.send[].sent.count] | add' <<<"$stats")
pm_=$(metrics_of "$NS_P")
after=$(jq '[.send[].sent.count] | add' <<<"$(in_mnt "$P_PID" "$WALSHIP" stats -c "$PCONF" --json)")
sent=$(metric_sum "$pm_" '^walship_send_duration_seconds_count\{.*stage="sent"')
((before <= sent && sent <= after)) ||
	fail "walship stats vs /metrics, sends: /metrics says $sent, walship stats $before then $after"
# walship status shows the same quantiles (same precision, same peers).
q='{count, p50_us, p90_us, p99_us}'
for node in "$R_PID $RCONF" "$P_PID $PCONF"; do
	read -r pid conf <<<"$node"
	# A keepalive may go out between the two readings: read again until none did.
	for attempt in 1 2 3 4 5; do
		stats=$(in_mnt "$pid" "$WALSHIP" stats -c "$conf" --json)
		status=$(walship_status "$conf" --json)
		[[ "$(jq -c '[.send[].sent.count]' <<<"$stats")" == \
			"$(jq -c '[.probes.send[].sent.count]' <<<"$status")" ]] && break
		log "a send between walship stats and walship status (attempt $attempt); again"
	done
	for path in io_uring syscall ext4; do
		assert_eq "$(jq -c ".fsync.$path | $q" <<<"$stats")" \
			"$(jq -c ".probes.fsync.$path | $q" <<<"$status")" \
			"walship status vs stats, fsync $path quantiles ($conf)"
	done
	assert_eq "$(jq -c "[.send[] | {addr, sent: (.sent | $q), released: (.released | $q)}]" \
		<<<"$stats")" \
		"$(jq -c "[.probes.send[] | {addr, sent: (.sent | $q), released: (.released | $q)}]" \
			<<<"$status")" "walship status vs stats, send quantiles ($conf)"
done
jq -e '.probes.fsync.io_uring.count > 0 and .probes.fsync.io_uring.p99_us > 0' \
	<<<"$(walship_status "$RCONF" --json)" >/dev/null || fail "replica status: no fsync quantiles"
jq -e '.probes.send[0].sent.count > 0 and .probes.send[0].sent.p50_us > 0' \
	<<<"$(walship_status "$PCONF" --json)" >/dev/null || fail "primary status: no send quantiles"
# (Outputs captured first: grep -q closing the pipe early would fail it under pipefail.)
text=$(walship_status "$RCONF")
grep -Eq '^  fsync io_uring: +[0-9]+ ops, p50 .*, p90 .*, p99 ' <<<"$text" ||
	fail "walship status text has no fsync quantiles"
sed -n '/^latency probes/,/^peers/p' <<<"$text"
text=$(walship_status "$PCONF")
grep -Eq "^  send to $(ns_addr "$NS_R1"): +[0-9]+ ops, p50 " <<<"$text" ||
	fail "walship status text has no send quantiles"

text=$(in_mnt "$R_PID" "$WALSHIP" stats -c "$RCONF")
grep -q 'usecs' <<<"$text" || fail "walship stats text has no histogram"
in_mnt "$R_PID" "$WALSHIP" stats -c "$RCONF" --json --interval 1 --count 1 |
	jq -e '.interval_s == 1 and .afresh == false and .fsync' >/dev/null ||
	fail "walship stats --interval printed no JSON of one interval"

# Received to durable starts at WAL received, not at any receive: after the replica has
# been idle for more than two keepalive intervals (PINGs and PONGs received, 5 s apart),
# the samples one segment adds are its own, far under the idle time (the build before
# started the clock at the first keepalive received after the last fsync, and the next
# file's fsync counted the whole idle time).  Buckets as {"LOW_US": COUNT}.
r2d_buckets() {
	in_mnt "$R_PID" "$WALSHIP" stats -c "$RCONF" --json |
		jq -c '[.received_to_durable.buckets[] | {(.low_us | tostring): .count}] | add // {}'
}
wait_for 15 "the replica's submitted fsyncs all measured" fsyncs_settled
r2d_before=$(r2d_buckets)
idle=12
log "replica idle for $idle s, then one segment"
sleep "$idle"
seg=$(psql_at "$NS_P" "$PG_PORT" "insert into pgbench_history values (1, 1, 1, 1, now());
	select pg_walfile_name(pg_switch_wal())")
wait_archived "$seg"
wait_for 15 "the replica's submitted fsyncs all measured" fsyncs_settled
r2d_after=$(r2d_buckets)
# the lower bounds (us) of the buckets that gained samples
r2d_new=$(jq -n -c --argjson a "$r2d_after" --argjson b "$r2d_before" \
	'[$a | to_entries[] | select(.value > ($b[.key] // 0)) | .key | tonumber]')
log "received to durable after $idle s idle: new samples in the buckets from $r2d_new us"
jq -e 'length > 0' <<<"$r2d_new" >/dev/null || fail "the segment after the idle time added no sample"
# 2^22 us = 4.2 s: a sample that long spans the idle time, not the segment's transfer and fsync
jq -e 'max < 4194304' <<<"$r2d_new" >/dev/null ||
	fail "received-to-durable sample of the segment after $idle s idle spans the idle time: buckets from $r2d_new us"

# Pins go away at exit (bpf_keep_pins = off).
in_mnt "$P_PID" test -e "$PPIN/fsync_hist" || fail "primary pins gone early"
walshipd_stop "$PCONF"
log "primary stopped; its pins must be gone"
ls /proc/"$P_PID" >/dev/null 2>&1 && fail "primary still running"

# Pins a walshipd left when it did not stop cleanly (SIGKILL, the watchdog's SIGABRT) are
# removed at its next start (bpf_keep_pins = off): libbpf would reuse them, with the
# counts of a run that is over and peer numbers that named other hosts.  The daemons
# above each run in a mount namespace of their own (ip netns exec: a bpffs of their own,
# gone with them); this one runs in the host's, where pins outlive the process.
node=t85-stale-$$
KCONF=$TEST_DIR/$node/walship.conf
KPIN=/sys/fs/bpf/walship/$node
write_replica_conf "$KCONF" "$TEST_DIR/$node" "$NS_P" probes=on
start_in_host_mnt() {
	nsenter --net="/run/netns/$NS_R1" "$WALSHIPD" -c "$KCONF" >>"$TEST_DIR/$node.log" 2>&1 &
	WS_DAEMON_PID[$KCONF]=$!
	wait_for 30 "walshipd $node to answer" walship_answers "$KCONF"
}
start_in_host_mnt
[[ -e $KPIN/fsync_hist ]] || fail "no pins in $KPIN: $(tail -n 5 "$TEST_DIR/$node.log")"
walshipd_kill "$KCONF"
[[ -e $KPIN/fsync_hist ]] || fail "the pins went with the killed walshipd"
start_in_host_mnt
grep -q 'removed 3 histogram pin(s) that a walshipd which did not stop cleanly left' \
	"$TEST_DIR/$node.log" || {
	rm -rf "$KPIN"
	fail "the restarted walshipd did not remove the pins the killed one left"
}
log "ok: pins left by a killed walshipd removed at its next start"

# A second walshipd of the same node_name on this host (another archive and socket): its
# probes stay off and the first one's pins are left alone (the build before removed them
# as stale and pinned its own in their place, which the first one's stop then removed).
K2CONF=$TEST_DIR/second/$node/walship.conf
write_replica_conf "$K2CONF" "$TEST_DIR/second/$node" "$NS_P" probes=auto
nsenter --net="/run/netns/$NS_R1" "$WALSHIPD" -c "$K2CONF" >>"$TEST_DIR/$node-b.log" 2>&1 &
WS_DAEMON_PID[$K2CONF]=$!
wait_for 30 "the second walshipd $node to answer" walship_answers "$K2CONF"
grep -q 'BPF probes are off: another walshipd of this node_name' "$TEST_DIR/$node-b.log" ||
	fail "the second walshipd did not say why its probes are off: $(grep 'BPF probes' "$TEST_DIR/$node-b.log")"
! grep -q 'removed 3 histogram pin' "$TEST_DIR/$node-b.log" ||
	fail "the second walshipd removed the first one's pins as stale"
walshipd_stop "$K2CONF"
[[ -e $KPIN/fsync_hist ]] || fail "the first walshipd's pins went with the second one's stop"
log "ok: a second walshipd of the same node_name leaves the first one's pins alone"

# walship stats --interval across a restart: while the pins are gone (a clean stop removes
# them) it waits, saying so once on stderr, and the next walshipd's histograms, other maps
# (their ids), are counted afresh, though each of its counts may be at or above the old
# one's (here, neither connected: their few start-up fsyncs).  The build before exited 1
# at the first read without the pins, and took such counts for the same histograms.
"$WALSHIP" stats -c "$KCONF" --json --interval 2 --count 1 >"$TEST_DIR/stats-restart.json" \
	2>"$TEST_DIR/stats-restart.err" &
stats_pid=$!
ws_sleep 0.5 # its first read, of the first walshipd's maps, is done
walshipd_stop "$KCONF"
[[ ! -e $KPIN/fsync_hist ]] || fail "pins left in $KPIN after a clean stop"
ws_sleep 2.5 # its read 2 s after the first finds no pins
start_in_host_mnt
rc=0
wait "$stats_pid" || rc=$?
cat "$TEST_DIR/stats-restart.err"
((rc == 0)) || fail "walship stats --interval across a restart exited $rc"
assert_eq "$(grep -c 'are gone (walshipd stopped?): waiting for them' "$TEST_DIR/stats-restart.err")" \
	1 "walship stats: lines saying the pins are gone"
assert_eq "$(jq -c '.afresh' "$TEST_DIR/stats-restart.json")" true \
	"walship stats --interval: afresh in the interval of the restart"
log "ok: walship stats --interval waits for the pins of a restarted walshipd, counted afresh"
walshipd_stop "$KCONF"
[[ ! -e $KPIN ]] || fail "pins left in $KPIN after a clean stop"

# bpf_keep_pins = on: kept pins whose maps do not fit this build's (another version's) are
# removed and the probes count afresh; kept pins that fit stay when the programs do not
# load for another reason: here a kept pin walshipd may not open for writing (0400, with
# CAP_DAC_OVERRIDE dropped).  The build before took every failed load for a misfit:
# it removed the kept histograms, and loaded afresh.
knode=t85-keep-$$
KKCONF=$TEST_DIR/$knode/walship.conf
KKPIN=/sys/fs/bpf/walship/$knode
write_replica_conf "$KKCONF" "$TEST_DIR/$knode" "$NS_P" probes=auto bpf_keep_pins=on
# keep_fail MSG: fail, removing the pins first (they outlive the test in the host's bpffs)
keep_fail() {
	rm -rf "$KKPIN"
	fail "$@"
}
# start_keep [CMD...]: walshipd of KKCONF in the host's mount namespace, run by CMD
start_keep() {
	nsenter --net="/run/netns/$NS_R1" "$@" "$WALSHIPD" -c "$KKCONF" >>"$TEST_DIR/$knode.log" 2>&1 &
	WS_DAEMON_PID[$KKCONF]=$!
	wait_for 30 "walshipd $knode to answer" walship_answers "$KKCONF"
}
pin_ids() {
	for map in fsync_hist send_hist peers; do
		bpftool -j map show pinned "$KKPIN/$map" | jq -r .id
	done | tr '\n' ' '
}
mkdir -p "$KKPIN"
bpftool map create "$KKPIN/fsync_hist" type array key 4 value 1024 entries 1 name fsync_hist
start_keep
grep -q "histograms pinned in \"$KKPIN\" do not fit this build's probes (pinned by another version); removed" \
	"$TEST_DIR/$knode.log" || keep_fail "kept pins of another layout not removed: $(grep 'BPF probes' "$TEST_DIR/$knode.log")"
grep -q 'BPF probes on' "$TEST_DIR/$knode.log" || keep_fail "probes not on after removing the pins that did not fit"
"$WALSHIP" stats -c "$KKCONF" --json | jq -e .fsync >/dev/null || keep_fail "walship stats cannot read the new pins"
walshipd_stop "$KKCONF"
ids=$(pin_ids)
log "pins kept by the stopped walshipd (bpf_keep_pins): map ids $ids"
chmod 0400 "$KKPIN/send_hist"
start_keep capsh --drop=cap_dac_override -- -c 'exec "$@"' walshipd
sed -n 's/^.*\(BPF probes\)/    | \1/p' "$TEST_DIR/$knode.log"
grep -q "histograms pinned in \"$KKPIN\" are kept (bpf_keep_pins = on): they fit" "$TEST_DIR/$knode.log" ||
	keep_fail "walshipd did not say it kept the pins that fit"
(($(grep -c 'do not fit this build' "$TEST_DIR/$knode.log") == 1)) ||
	keep_fail "kept pins that fit were taken for another version's and removed"
walshipd_stop "$KKCONF"
[[ "$(pin_ids)" == "$ids" ]] || keep_fail "the kept pins were replaced: map ids $ids, now $(pin_ids)"
rm -rf "$KKPIN"
log "ok: bpf_keep_pins: pins that do not fit removed, pins that fit kept when the load fails otherwise"
log "PASS"
