#!/bin/bash
# A peer that does not read (issue 11, defect 3): after the handshake, a fake replica sends
# PINGs and never reads the PONGs.  The primary's send queue for it is bounded
# (CONN_TX_MAX_ITEMS, net/conn.h): its memory stays bounded, the connection is dropped
# with a log line naming the peer and the bound, the drop is counted (queue_overflows in
# status and /metrics), and the real replica keeps streaming.  The same for a replica
# facing a fake primary that floods it with PINGs.
#
# Memory is the daemon's peak resident size over the flood (VmHWM in /proc/PID/status,
# reset through clear_refs before it), compared with its resident size before it; before
# the bound, the daemons grew by hundreds of MB here.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

FAKE=$WS_ROOT/build/helpers/fake_peer
PINGS=1000000 # 24 MB of PINGs: far more PONGs than the socket buffers hold
MAX_GROWTH_KB=$((48 * 1024))
METRICS_PORT=9187
ws_setup
[[ -x "$FAKE" ]] || skip "$FAKE not built: run make"
require_cmds curl
PRIMARY_CONF_EXTRA=("metrics_listen=127.0.0.1:$METRICS_PORT")
walship_daemons_up
walship_primary_up 1

# vm_kb PID FIELD: a size from /proc/PID/status in kB (VmRSS, VmHWM).
vm_kb() {
	awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

# check_flood NAME PID CONF LOG OUT: after a flood at the daemon PID (config CONF, log
# LOG) by the fake peer whose output is OUT, assert bounded memory since rss0, the drop
# logged and counted since overflows0.
check_flood() {
	local name=$1 pid=$2 conf=$3 logfile=$4 out=$5 hwm growth overflows
	hwm=$(vm_kb "$pid" VmHWM)
	growth=$((hwm - rss0))
	log "$name: resident $rss0 kB before the flood, peak $hwm kB (+$growth kB)"
	((growth < MAX_GROWTH_KB)) ||
		fail "$name grew by $growth kB for a peer that does not read (bound $MAX_GROWTH_KB kB)"
	grep -q "closed by the peer after" "$out" ||
		fail "$name did not drop the peer that does not read: $(cat "$out")"
	grep -q "closing connection to .*: its send queue reached the bound of [0-9]* frames" \
		"$logfile" || fail "$name did not log the drop with the bound"
	overflows=$(status_counter "$conf" queue_overflows)
	((overflows > overflows0)) || fail "$name did not count the drop ($overflows0 -> $overflows)"
	"$WALSHIP" status -c "$conf" | grep -q "peers dropped: *$overflows " ||
		fail "walship status of $name does not show the drop"
}

log "a fake replica floods the primary with $PINGS PINGs and never reads"
ppid=${WS_DAEMON_PID[$PCONF]}
echo 5 >"/proc/$ppid/clear_refs" # VmHWM from now on
rss0=$(vm_kb "$ppid" VmRSS)
overflows0=$(status_counter "$PCONF" queue_overflows)
in_ns "$NS_R1" timeout 50 "$FAKE" --connect "$ADDR_P:$WALSHIP_PORT" --name fp-flood \
	hello-replica have read-hello ping-flood "$PINGS" expect-close \
	>"$TEST_DIR/fp-flood.out" 2>&1 || fail "fake replica: $(tail -n 1 "$TEST_DIR/fp-flood.out")"
cat "$TEST_DIR/fp-flood.out"
check_flood primary "$ppid" "$PCONF" "$TEST_DIR/ws-primary.log" "$TEST_DIR/fp-flood.out"
in_ns "$NS_P" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$TEST_DIR/metrics.txt"
grep -q '^walship_queue_overflows_total [1-9]' "$TEST_DIR/metrics.txt" ||
	fail "/metrics does not count the drop: $(grep queue_overflows "$TEST_DIR/metrics.txt")"

log "the real replica still streams: a segment is archived"
peers_streaming "$PCONF" || fail "the real replica lost its connection"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$seg"

log "a fake primary floods a replica with $PINGS PINGs and never reads"
R2CONF=$TEST_DIR/ws-r2/walship.conf
fake_port=$((WALSHIP_PORT + 1))
mkdir -p "$TEST_DIR/ws-r2"
write_replica_conf "$R2CONF" "$TEST_DIR/ws-r2" "$NS_P" "upstream=$ADDR_P:$fake_port"
# The replica first, measured while it tries to connect; then the fake primary.
walshipd_start "$NS_R1" "$R2CONF" "$TEST_DIR/ws-r2.log"
r2pid=$WALSHIPD_PID
echo 5 >"/proc/$r2pid/clear_refs"
rss0=$(vm_kb "$r2pid" VmRSS)
overflows0=0
bg_start "$TEST_DIR/fpp-flood.out" ip netns exec "$NS_P" timeout 50 "$FAKE" \
	--listen "$ADDR_P:$fake_port" --name fpp-flood \
	read-hello hello-primary ping-flood "$PINGS" expect-close
fake_pid=$BG_PID
wait "$fake_pid" || fail "fake primary: $(tail -n 1 "$TEST_DIR/fpp-flood.out")"
cat "$TEST_DIR/fpp-flood.out"
check_flood replica "$r2pid" "$R2CONF" "$TEST_DIR/ws-r2.log" "$TEST_DIR/fpp-flood.out"
walshipd_stop "$R2CONF"
log "PASS"
