#!/bin/bash
# t_99q: connections to pg_listen that never authenticate do not lock standbys out.  70
# TCP connections that say nothing are held open (connect_timeout is 60 s here), more
# than the 64 standbys pg_listen takes; a replication connection made then is admitted
# and answers IDENTIFY_SYSTEM.  Not authenticated connections are bounded apart (16), a new
# one closing the oldest.  On the build before, the 65th connection and every one after
# it were refused ("too many standby connections") until connect_timeout closed the idle
# ones.  Past their authentication at most 64: a 65th is refused with PostgreSQL's words
# for max_wal_senders.
# test-early (about 17 s here, 4 s of it CPU: mostly waiting, so started among the heavy tests, not at the end)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5446
ws_setup
require_cmds python3
REPLICA_CONF_EXTRA=(connect_timeout=60s)
ws_pg_listen_trust "$PG_LISTEN_PORT"
walship_stream_up off

# The idle connections, held by a process in the primary's namespace until it is killed.
ready=$TEST_DIR/idle.ready
cat >"$TEST_DIR/idle.py" <<'EOF'
import socket, sys, time
socks = []
for _ in range(70):
    socks.append(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5))
open(sys.argv[3], "w").close()
time.sleep(120)
EOF
# (a background job's standard input is /dev/null: the script is a file)
bg_start "$TEST_DIR/idle.out" in_ns "$NS_P" python3 "$TEST_DIR/idle.py" "$ADDR_R1" \
	"$PG_LISTEN_PORT" "$ready"
IDLE_PID=$BG_PID
wait_for 20 "70 idle connections to pg_listen" test -e "$ready"

base="host=$ADDR_R1 port=$PG_LISTEN_PORT"
sys=$(in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$base user=postgres replication=true" \
	-c "IDENTIFY_SYSTEM" 2>&1) || fail "IDENTIFY_SYSTEM with 70 idle connections open: $sys"
[[ "${sys%%|*}" == "$(pg_system_identifier "$PDATA")" ]] ||
	fail "IDENTIFY_SYSTEM answered '$sys', not the primary's system identifier"
grep -q "closed standby connection at once: the oldest connection not yet authenticated" \
	"$TEST_DIR/ws-r1.log" ||
	fail "the replica did not close the oldest idle connections"
log "ok: IDENTIFY_SYSTEM answered with 70 idle connections open; the oldest idle ones closed"
kill "$IDLE_PID" 2>/dev/null || true
wait "$IDLE_PID" 2>/dev/null || true

# 64 standbys past their authentication, held open: a 65th is refused as PostgreSQL refuses
# one past max_wal_senders (the build before admitted up to 80, taking the places kept for
# connections still authenticating).
log "64 authenticated connections: a 65th is refused"
ready=$TEST_DIR/authed.ready
cat >"$TEST_DIR/authed.py" <<'EOF'
import os, socket, struct, sys, time
def standby(host, port):
    s = socket.create_connection((host, port), timeout=10)
    body = struct.pack("!i", 196608) + b"user\0postgres\0replication\0true\0\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    buf = b""
    while True:  # up to ReadyForQuery
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!i", buf[1:5])[0]:
            more = s.recv(65536)
            if not more:
                sys.exit("connection closed before ReadyForQuery: %r" % buf[:200])
            buf += more
        kind, n = buf[0:1], struct.unpack("!i", buf[1:5])[0]
        if kind == b"E":
            sys.exit("refused: %r" % buf[5:1 + n])
        buf = buf[1 + n:]
        if kind == b"Z":
            return s
socks = [standby(sys.argv[1], int(sys.argv[2])) for _ in range(64)]
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(sys.argv[3] + ".tmp", sys.argv[3])
time.sleep(120)
EOF
bg_start "$TEST_DIR/authed.out" in_ns "$NS_P" python3 "$TEST_DIR/authed.py" "$ADDR_R1" \
	"$PG_LISTEN_PORT" "$ready"
AUTHED_PID=$BG_PID
authed_ready() {
	[[ -e "$ready" ]] || { ! kill -0 "$AUTHED_PID" 2>/dev/null &&
		fail "the 64 connections failed: $(cat "$TEST_DIR/authed.out")"; }
}
wait_for 30 "64 authenticated connections to pg_listen" authed_ready
out=$(in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$base user=postgres replication=true" \
	-c "IDENTIFY_SYSTEM" 2>&1) && fail "a 65th standby was admitted: $out"
[[ "$out" == *"number of requested standby connections exceeds max_wal_senders (currently 64)"* ]] ||
	fail "the 65th standby was not refused as PostgreSQL refuses it: $out"
# (the script itself: its pid in the ready file, under ip netns exec's process)
kill "$(cat "$ready")" 2>/dev/null || true
wait "$AUTHED_PID" 2>/dev/null || true
admitted() {
	in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$base user=postgres replication=true" \
		-c "IDENTIFY_SYSTEM" >/dev/null 2>&1
}
wait_for 20 "a standby admitted once the 64 have gone" admitted
log "ok: the 65th refused (${out##*FATAL:  }); admitted again once they left"
ws_check_daemons
log "PASS"
