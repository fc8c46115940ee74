#!/bin/bash
# systemd's notification protocol (daemon/common/sdnotify.h): walshipd started with
# NOTIFY_SOCKET naming an abstract datagram socket this test reads sends READY=1 only once
# its listening TCP socket and its control socket accept connections (the reader connects
# to both the moment READY=1 arrives, so a READY sent before listen() fails here), a
# STATUS= line naming its role and peers, WATCHDOG=1 from its loop when WATCHDOG_USEC is
# set, RELOADING=1 with MONOTONIC_USEC on SIGHUP followed by READY=1, and STOPPING=1 on
# SIGTERM.  With JOURNAL_STREAM naming its stderr, its log lines carry syslog priorities
# ("<6>LOG:  ...") instead of the timestamp prefix.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_walship
require_cmds python3

net_create 0
NOTIFY_LOG=$TEST_DIR/notify.out
NODE=$TEST_DIR/ws-t91
PCONF=$NODE/walship.conf
mkdir -p "$NODE"
write_primary_conf "$PCONF" "$NODE" "$NS_P" probes=off
sock=$(conf_get "$PCONF" socket)
# Abstract sockets belong to a network namespace: the reader runs in the daemon's.
notify_name="@walship-$WS_TEST_NAME-$WS_NET_ID"

# The reader: one line per datagram (newlines as |); on READY=1, connect to the daemon's
# TCP listener and its control socket and say whether each accepted.
cat >"$TEST_DIR/notify_reader.py" <<'PY'
import socket
import sys

name, out, host, port, ctl = sys.argv[1:]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
srv.bind("\0" + name[1:])
with open(out, "a", buffering=1) as f:
    f.write("LISTENING\n")
    while True:
        msg = srv.recv(65536).decode()
        f.write("MSG " + msg.replace("\n", "|") + "\n")
        if "READY=1" in msg.split("\n"):
            for what, fam, kind, addr in (
                ("listen", socket.AF_INET, socket.SOCK_STREAM, (host, int(port))),
                ("control", socket.AF_UNIX, socket.SOCK_SEQPACKET, ctl),
            ):
                c = socket.socket(fam, kind)
                try:
                    c.connect(addr)
                    f.write("CONNECT %s ok\n" % what)
                except OSError as e:
                    f.write("CONNECT %s failed: %s\n" % (what, e))
                c.close()
PY
bg_start "$TEST_DIR/notify_reader.log" ip netns exec "$NS_P" python3 "$TEST_DIR/notify_reader.py" \
	"$notify_name" "$NOTIFY_LOG" "$ADDR_P" "$WALSHIP_PORT" "$sock"
wait_for 10 "the notification reader" grep -q '^LISTENING' "$NOTIFY_LOG"

log "start walshipd with NOTIFY_SOCKET=$notify_name, WATCHDOG_USEC and JOURNAL_STREAM"
DLOG=$TEST_DIR/ws-t91.log
: >"$DLOG"
NOTIFY_SOCKET=$notify_name WATCHDOG_USEC=1000000 JOURNAL_STREAM=$(stat -c '%d:%i' "$DLOG") \
	walshipd_start "$NS_P" "$PCONF" "$DLOG"
pid=$WALSHIPD_PID

wait_for 10 "READY=1" grep -q '^MSG READY=1$' "$NOTIFY_LOG"
wait_for 10 "the reader's connections after READY=1" \
	grep -q '^CONNECT control' "$NOTIFY_LOG"
# The first READY=1 and what the reader found right after it.
first_ready=$(grep -n -m1 '^MSG READY=1$' "$NOTIFY_LOG" | cut -d: -f1)
after=$(sed -n "$((first_ready + 1)),$((first_ready + 2))p" "$NOTIFY_LOG")
[[ "$after" == $'CONNECT listen ok\nCONNECT control ok' ]] ||
	fail "not serving when READY=1 arrived: $after"
log "READY=1 arrived with the listener and the control socket accepting"

wait_for 10 "a STATUS= line" grep -q '^MSG STATUS=primary "ws-t91": 0 of 0 replicas streaming' \
	"$NOTIFY_LOG"
grep -m1 '^MSG STATUS=' "$NOTIFY_LOG"
watchdogs() {
	(($(grep -c '^MSG WATCHDOG=1$' "$NOTIFY_LOG") >= $1))
}
wait_for 10 "two WATCHDOG=1 pings (WatchdogSec 1 s: one every 0.5 s)" watchdogs 2

log "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1"
nready=$(grep -c '^MSG READY=1$' "$NOTIFY_LOG")
kill -HUP "$pid"
wait_for 10 "RELOADING=1" grep -Eq '^MSG RELOADING=1\|MONOTONIC_USEC=[0-9]+$' "$NOTIFY_LOG"
readies() {
	(($(grep -c '^MSG READY=1$' "$NOTIFY_LOG") > nready))
}
wait_for 10 "READY=1 after the reload" readies
reloading=$(grep -En -m1 '^MSG RELOADING=1' "$NOTIFY_LOG" | cut -d: -f1)
last_ready=$(grep -n '^MSG READY=1$' "$NOTIFY_LOG" | tail -n 1 | cut -d: -f1)
((last_ready > reloading)) || fail "READY=1 (line $last_ready) came before RELOADING=1 (line $reloading)"

log "journal: log lines carry their syslog priority"
grep -q '^<6>LOG:  received SIGHUP, reloading configuration file' "$DLOG" ||
	fail "no '<6>LOG:' line in $(head -n 5 "$DLOG")"
grep -Eq '^[0-9]{4}-' "$DLOG" && fail "timestamp prefix in journal mode: $(head -n 3 "$DLOG")"

log "SIGTERM: STOPPING=1"
walshipd_stop "$PCONF"
grep -q '^MSG STOPPING=1$' "$NOTIFY_LOG" || fail "no STOPPING=1: $(tail -n 5 "$NOTIFY_LOG")"
stopping=$(grep -n -m1 '^MSG STOPPING=1$' "$NOTIFY_LOG" | cut -d: -f1)
((stopping > last_ready)) || fail "STOPPING=1 before the last READY=1"
log "PASS"
