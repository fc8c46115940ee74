#!/bin/bash
# Descriptor exhaustion (issue 11, defect 4).  With walshipd's open-file limit lowered on
# the running daemon (prlimit) and clients that connect and say nothing, to the primary's
# replication port and to the control sockets of both daemons:
#  - connections beyond the limit are closed at once (they do not wait in the backlog),
#    and counted;
#  - the daemon neither spins nor floods its log: its log grows by a bounded number of
#    lines and its CPU time (utime + stime ticks from /proc/PID/stat) over the episode
#    stays bounded;
#  - once the clients go away, a replica connects and streams again and a push succeeds;
#  - without a descriptor limit, connections still in the handshake are bounded
#    (PRIMARY_MAX_HANDSHAKES = 16 in daemon/role/primary_peer.c): past it a new connection
#    closes the oldest of them, counted in connections_shed, so that a replica restarted
#    while 16 silent connections are held gets in before connect_timeout closes them.
#  - a replica of a new name registering while the primary has one descriptor left (its
#    connection takes it, and the listing of the registered replicas after its
#    registration fails) leaves the primary's list of registered replicas as it was.
#    Before, the list was emptied, and pushes were answered with nothing held for the
#    replicas away (ws-r1 here) until another registration listed them again.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

MAX_HANDSHAKES=16
# Bounds over one episode (a few dozen connections each): the old accept loop wrote
# hundreds of thousands of lines and used more than half a core for as long as it lasted.
MAX_LOG_LINES=20
MAX_CPU_TICKS=100
# Descriptors the daemon may have freed just after its count was read (see below).
SLACK=2

ws_setup
require_cmds prlimit python3
# The interpreter itself, not a version manager's shim: the clients start five times.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
# max_senders above the handshake bound, so that silent connections meet the bound first.
PRIMARY_CONF_EXTRA=(connect_timeout=30s max_senders=64)
walship_daemons_up
PRI_PID=${WS_DAEMON_PID[$PCONF]}
RPID=${WS_DAEMON_PID[$RCONF]}
psock=$(conf_get "$PCONF" socket)
rsock=$(conf_get "$RCONF" socket)

# The silent client: opens N connections (tcp ADDR:PORT or unix PATH, SOCK_SEQPACKET),
# then keeps them open, writing to STATUS how many connected, failed to connect, and were
# closed by the daemon, until it is killed.
cat >"$TEST_DIR/hold.py" <<'PY'
import os, select, socket, sys
kind, target, count, status = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
socks, failed, closed = [], 0, 0
def report():
    with open(status + ".tmp", "w") as f:
        f.write("%d %d %d\n" % (len(socks) + closed, failed, closed))
    os.rename(status + ".tmp", status)
for _ in range(count):
    if kind == "tcp":
        host, port = target.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        addr = (host, int(port))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        addr = target
    s.settimeout(3)
    try:
        s.connect(addr)
        socks.append(s)
    except OSError:
        failed += 1
        s.close()
report()
poller = select.poll()
byfd = {}
for s in socks:
    poller.register(s, select.POLLIN)
    byfd[s.fileno()] = s
while True:
    for fd, _ in poller.poll(1000):
        s = byfd[fd]
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if data:
            continue
        del byfd[fd]
        poller.unregister(fd)
        socks.remove(s)
        s.close()
        closed += 1
        report()
PY

# hold NAME NS KIND TARGET N: start the silent client in NS (status in $TEST_DIR/NAME.st).
hold() {
	local name=$1 ns=$2 kind=$3 target=$4 n=$5
	rm -f "$TEST_DIR/$name.st"
	bg_start "$TEST_DIR/$name.out" ip netns exec "$ns" "$PYTHON" "$TEST_DIR/hold.py" "$kind" \
		"$target" "$n" "$TEST_DIR/$name.st"
	HOLD_PID=$BG_PID
	wait_for 20 "client $name to open its connections" test -s "$TEST_DIR/$name.st"
}
# held_field NAME K: field K of the client's status (1 connected, 2 failed, 3 closed).
held_field() {
	awk -v k="$2" '{print $k}' "$TEST_DIR/$1.st"
}
closed_at_least() {
	(($(held_field "$1" 3) >= $2))
}
release() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}
fd_count() {
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l
}
fds_at_most() {
	(($(fd_count "$1") <= $2))
}
cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}
log_lines() {
	wc -l <"$1"
}
# episode_begin PID LOG / episode_end PID LOG WHAT: bound the log lines and CPU ticks.
episode_begin() {
	EP_TICKS=$(cpu_ticks "$1")
	EP_LINES=$(log_lines "$2")
}
episode_end() {
	local ticks lines
	ticks=$(($(cpu_ticks "$1") - EP_TICKS))
	lines=$(($(log_lines "$2") - EP_LINES))
	log "$3: $lines log line(s), $ticks CPU tick(s)"
	((lines <= MAX_LOG_LINES)) || fail "$3: the log grew by $lines lines (at most $MAX_LOG_LINES)"
	((ticks <= MAX_CPU_TICKS)) || fail "$3: $ticks CPU ticks used (at most $MAX_CPU_TICKS)"
}

# A PostgreSQL 15 segment of a made-up system (pushes validate the headers).
seg=000000010000000000000003
"$PYTHON" - "$SCRATCH/$seg" <<'PY'
import struct, sys
SEG = 16 << 20
hdr = struct.pack('<HHIQI4xQII', 0xD110, 0x0002, 1, 3 * SEG, 0, 7713288329218603033, SEG, 8192)
with open(sys.argv[1], 'wb') as f:
    f.write(hdr + b'\0' * (SEG - len(hdr)))
PY
chown postgres:postgres "$SCRATCH/$seg"

log "the primary at its descriptor limit"
# The replica comes back only after the episode: its connection proves the accept loop
# recovered.
walshipd_stop "$RCONF"
shed0=$(status_counter "$PCONF" connections_shed)
refused0=$(status_counter "$PCONF" connections_refused)
base=$(fd_count "$PRI_PID")
limit=$((base + 8))
soft=$(prlimit --pid "$PRI_PID" --nofile --raw --noheadings -o SOFT)
prlimit --pid "$PRI_PID" --nofile="$limit:"
log "primary: $base descriptors open, limit $limit"
episode_begin "$PRI_PID" "$TEST_DIR/ws-primary.log"
hold tcp1 "$NS_R1" tcp "$ADDR_P:$WALSHIP_PORT" 30
tcp1=$HOLD_PID
# The daemon may hold as many as it has free descriptors, and one or two more when a
# control client of the status calls above was still being closed when base was read.
wait_for 20 "the primary to close the replication connections beyond its limit" \
	closed_at_least tcp1 $((30 - 8 - SLACK))
hold ctl1 "$NS_P" unix "$psock" 30
ctl1=$HOLD_PID
wait_for 20 "the primary to close the control connections beyond its limit" \
	closed_at_least ctl1 $((30 - SLACK))
episode_end "$PRI_PID" "$TEST_DIR/ws-primary.log" "primary at the limit"
assert_eq 0 "$(held_field tcp1 2)" "replication connections that could not connect"
release "$tcp1"
release "$ctl1"
wait_for 20 "the primary's descriptors to come back to $base" fds_at_most "$PRI_PID" "$base"
grep -q "could not accept replica connection: Too many open files" "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not say why it closed replica connections"
grep -q "could not accept control connection: Too many open files" "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not say why it closed control connections"
shed1=$(status_counter "$PCONF" connections_shed)
refused1=$(status_counter "$PCONF" connections_refused)
((shed1 - shed0 >= 30 - 8 - SLACK)) ||
	fail "connections_shed went from $shed0 to $shed1 ($((30 - 8 - SLACK)) at least expected)"
((refused1 - refused0 >= 30 - SLACK)) ||
	fail "connections_refused went from $refused0 to $refused1 (control clients closed)"

log "the clients gone, still at the limit: the replica streams again and a push succeeds"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
RPID=$WALSHIPD_PID
wait_replica_streaming "$PCONF" 20
assert_exit 0 "push after the episode" walship_push_as_postgres "$PCONF" "$SCRATCH/$seg"
assert_file_identical "$SCRATCH/$seg" "$RARCHIVE/$seg"
prlimit --pid "$PRI_PID" --nofile="$soft:"

log "connections in the handshake are bounded ($MAX_HANDSHAKES), a new one closing the oldest"
shed0=$(status_counter "$PCONF" connections_shed)
episode_begin "$PRI_PID" "$TEST_DIR/ws-primary.log"
hold hs "$NS_R1" tcp "$ADDR_P:$WALSHIP_PORT" 40
hs=$HOLD_PID
wait_for 20 "the primary to close the connections beyond the handshake bound" \
	closed_at_least hs $((40 - MAX_HANDSHAKES))
episode_end "$PRI_PID" "$TEST_DIR/ws-primary.log" "handshake bound"
assert_eq $((40 - MAX_HANDSHAKES)) "$(held_field hs 3)" "connections closed"
shed1=$(status_counter "$PCONF" connections_shed)
assert_eq $((40 - MAX_HANDSHAKES)) $((shed1 - shed0)) "connections_shed for the handshake bound"
# (Its log line waits for the end of the interval the episode above started.)
peers_streaming "$PCONF" || fail "the replica lost its connection"
# With the bound full of silent connections, a replica restarted gets in, well before
# connect_timeout (30 s) closes them: its connection closes the oldest silent one.
# Before, every new connection was closed at once until then.
walshipd_stop "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
RPID=$WALSHIPD_PID
wait_replica_streaming "$PCONF" 20
assert_eq $((40 - MAX_HANDSHAKES + 1)) "$(held_field hs 3)" \
	"silent connections closed once the replica came back"
release "$hs"

log "the replica at its descriptor limit"
base=$(fd_count "$RPID")
limit=$((base + 4))
prlimit --pid "$RPID" --nofile="$limit:"
log "replica: $base descriptors open, limit $limit"
episode_begin "$RPID" "$TEST_DIR/ws-r1.log"
hold ctl2 "$NS_R1" unix "$rsock" 30
ctl2=$HOLD_PID
wait_for 20 "the replica to close the control connections beyond its limit" \
	closed_at_least ctl2 $((30 - 4 - SLACK))
episode_end "$RPID" "$TEST_DIR/ws-r1.log" "replica at the limit"
release "$ctl2"
wait_for 20 "the replica's descriptors to come back to $base" fds_at_most "$RPID" "$base"
grep -q "could not accept control connection: Too many open files" "$TEST_DIR/ws-r1.log" ||
	fail "the replica did not say why it closed control connections"
walship_answers "$RCONF" || fail "the replica does not answer on its control socket"
peers_streaming "$PCONF" || fail "the replica lost its connection"

log "a registration whose listing of the registered replicas fails keeps the list"
FAKE=$WS_ROOT/build/helpers/fake_peer
[[ -x "$FAKE" ]] || fail "build/helpers/fake_peer is not built (make all)"
walshipd_stop "$RCONF"
no_peer_streaming() { ! peers_streaming "$PCONF"; }
wait_for 20 "the primary to see ws-r1 gone" no_peer_streaming
registered0=$(status_counter "$PCONF" registered_replicas)
assert_eq 1 "$registered0" "registered replicas before (ws-r1, away)"
# The lowest descriptor number free, once the control connections of the calls above are
# closed (the same descriptors twice, 0.2 s apart): the limit one past it leaves the fake
# replica's connection that one.
lowest_free_fd() {
	local n=0
	while [[ -e "/proc/$1/fd/$n" ]]; do
		n=$((n + 1))
	done
	echo "$n"
}
fds_settled() {
	local before
	before=$(ls "/proc/$PRI_PID/fd")
	ws_sleep 0.2
	[[ "$(ls "/proc/$PRI_PID/fd")" == "$before" ]]
}
wait_for 10 "the primary's descriptors to settle" fds_settled
free_fd=$(lowest_free_fd "$PRI_PID")
prlimit --pid "$PRI_PID" --nofile="$((free_fd + 1)):"
run_capture "$TEST_DIR/fake-emfile.out" in_ns "$NS_R1" "$FAKE" --connect \
	"$ADDR_P:$WALSHIP_PORT" --timeout 10 --name ws-emfile hello-replica have pong-until-close
listing_failed() {
	grep -q 'could not list registered replicas in .*: Too many open files' \
		"$TEST_DIR/ws-primary.log"
}
wait_for 10 "the primary to fail listing the registered replicas" listing_failed
prlimit --pid "$PRI_PID" --nofile="$soft:"
assert_eq 1 "$(status_counter "$PCONF" registered_replicas)" \
	"registered replicas after a listing that failed (0: the list emptied)"
log "PASS"
