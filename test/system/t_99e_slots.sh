#!/bin/bash
# t_99e: physical replication slots on the appliance's pg_listen (issue 14).  pg_receivewal
# --create-slot makes a permanent slot on the appliance (RESERVE_WAL), then streams
# through it (READ_REPLICATION_SLOT gives its start): it stores the same bytes as the
# appliance's archive, and its flush reports advance the slot's restart LSN.  A standby
# with primary_slot_name streams through a slot made with CREATE_REPLICATION_SLOT, whose
# restart LSN follows its flush.  walship status shows both (restart LSN, active, retained
# bytes), and so does /metrics (walship_slot_*, equal to the status).  An active slot cannot
# be dropped, and DROP_REPLICATION_SLOT WAIT waits for it (84 KB of commands pipelined
# behind, answered once it is dropped); another connection's temporary slot can neither be
# dropped nor streamed through; the slots survive a SIGKILL of the appliance;
# DROP_REPLICATION_SLOT removes one, and READ_REPLICATION_SLOT then answers NULLs.
# Last, the replica restarted without pg_listen warns that the slot it still lists keeps
# no WAL from retention.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5443
SB_PORT=5444
ws_setup
require_cmds jq python3
METRICS_PORT=9197
ws_pg_listen_trust "$PG_LISTEN_PORT"
REPLICA_CONF_EXTRA+=("metrics_listen=127.0.0.1:$METRICS_PORT")
walship_stream_up off
base="host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres"

# repl CMD: a replication command on the appliance, its rows as psql -A -t prints them.
repl() {
	in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$base replication=true" -c "$1" 2>&1
}
# slot_json NAME: the slot's object in walship status --json (fails when absent).
slot_json() {
	walship_status "$RCONF" --json | jq -ec ".slots[] | select(.slot_name == \"$1\")"
}
slot_restart_ge() {
	local lsn
	lsn=$(slot_json "$1" | jq -r .restart_lsn) || return 1
	lsn_ge "$lsn" "$2"
}
slot_active() {
	slot_json "$1" | jq -e .active >/dev/null
}
metrics_r1() {
	in_ns "$NS_R1" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics"
}
# metrics_has REGEX: a line of /metrics matches REGEX (grep -E, whole line).  Read whole
# first: grep -q leaving a pipe early fails curl's write, which pipefail would report.
metrics_has() {
	local m
	m=$(metrics_r1) && grep -qxE -- "$1" <<<"$m"
}
# slot_metrics_match NAME: the slot's samples in /metrics equal walship status --json's
# restart LSN (as bytes), retained bytes and active (both read again until they agree: the
# restart LSN moves with the standby's reports).
slot_metrics_match() {
	local j m
	j=$(slot_json "$1") && m=$(metrics_r1) || return 1
	grep -qxF "walship_slot_restart_lsn_bytes{slot=\"$1\"} $(lsn_to_int "$(jq -r .restart_lsn <<<"$j")")" <<<"$m" &&
		grep -qxF "walship_slot_retained_bytes{slot=\"$1\"} $(jq -r .retained_bytes <<<"$j")" <<<"$m" &&
		grep -qxF "walship_slot_active{slot=\"$1\"} $(jq -r 'if .active then 1 else 0 end' <<<"$j")" <<<"$m"
}

psql_at "$NS_P" "$PG_PORT" "create table marker (i int primary key)"
psql_at "$NS_P" "$PG_PORT" "select pg_switch_wal()" >/dev/null
wait_for 30 "the appliance to hold WAL" repl IDENTIFY_SYSTEM

# pg_receivewal: create the slot, then stream through it.
RW=$TEST_DIR/receivewal
mkdir -p "$RW" && chown postgres:postgres "$RW"
as_postgres_in "$NS_P" "$PG_BIN/pg_receivewal" -d "$base" --slot=rw --create-slot \
	>"$TEST_DIR/create-slot.out" 2>&1 ||
	{ cat "$TEST_DIR/create-slot.out" >&2; fail "pg_receivewal --create-slot failed"; }
created=$(slot_json rw) || fail "walship status does not show slot rw"
# (pg_receivewal asks for no RESERVE_WAL: nothing is kept until it confirms a flush)
assert_eq '"0/0"' "$(jq -c .restart_lsn <<<"$created")" "slot rw's restart LSN once created"
assert_eq "physical||" "$(repl "READ_REPLICATION_SLOT rw")" "READ_REPLICATION_SLOT rw"
out=$(repl "CREATE_REPLICATION_SLOT kept PHYSICAL RESERVE_WAL") || fail "RESERVE_WAL: $out"
reserved=$(slot_json kept | jq -r .restart_lsn)
[[ "$reserved" != 0/0 ]] || fail "slot kept reserves nothing: $(slot_json kept)"
assert_eq "physical|$reserved|1" "$(repl "READ_REPLICATION_SLOT kept")" \
	"READ_REPLICATION_SLOT kept"
log "ok: pg_receivewal --create-slot: $created"
bg_start "$TEST_DIR/receivewal.out" as_postgres_in "$NS_P" "$PG_BIN/pg_receivewal" \
	-d "$base" -D "$RW" --slot=rw -s 1 -n --no-sync
RECEIVEWAL=$BG_PID
wait_for 15 "slot rw active" slot_active rw
completed=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$completed"
wait_for 30 "pg_receivewal to store $completed" test -f "$RW/$completed"
assert_file_identical "$RARCHIVE/$completed" "$RW/$completed"
log "ok: pg_receivewal stored $completed through slot rw, identical to the archive's"
# pg_receivewal reports a segment flushed once it closed it: the slot moves past it.
seg_end=$(printf '%X/%X' $((16#${completed:8:8})) $(((16#${completed:16:8} + 1) * 16777216)))
wait_for 20 "slot rw's restart LSN to reach $seg_end" slot_restart_ge rw "$seg_end"
out=$(repl "DROP_REPLICATION_SLOT rw") && fail "an active slot was dropped: $out"
[[ "$out" == *"replication slot \"rw\" is active for PID"* ]] ||
	fail "DROP_REPLICATION_SLOT of an active slot: '$out'"
log "ok: ${out//$'\n'/ }"
out=$(repl "CREATE_REPLICATION_SLOT rw PHYSICAL") && fail "a second slot rw was created: $out"
[[ "$out" == *'replication slot "rw" already exists'* ]] || fail "CREATE of rw again: '$out'"

# DROP_REPLICATION_SLOT WAIT with more than a receive buffer of commands pipelined behind
# it: the connection waits for the slot (it is not taken for closed), then drops it and
# answers every command, as PostgreSQL does.  Connection A streams through slot dw; B asks.
repl "CREATE_REPLICATION_SLOT dw PHYSICAL" >/dev/null || fail "CREATE_REPLICATION_SLOT dw failed"
out=$(in_ns "$NS_P" python3 - "$ADDR_R1" "$PG_LISTEN_PORT" <<'PY'
import socket, struct, sys, time

def connect():
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
    p = b"user\0postgres\0replication\0true\0application_name\0dropwait\0\0"
    s.sendall(struct.pack("!II", 8 + len(p), 196608) + p)
    return s

def q(text):
    body = text.encode() + b"\0"
    return b"Q" + struct.pack("!I", 4 + len(body)) + body

class Reader:
    def __init__(self, s):
        self.s, self.buf = s, b""
    def msg(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
        n = 1 + struct.unpack("!I", self.buf[1:5])[0]
        m, self.buf = self.buf[:n], self.buf[n:]
        return m[0:1], m[5:]
    def until(self, t):
        while True:
            m = self.msg()
            if m is None or m[0] == b"E":
                sys.exit("A: %r" % (m,))
            if m[0] == t:
                return m

a = connect()
ra = Reader(a)
ra.until(b"Z")
a.sendall(q("IDENTIFY_SYSTEM"))
row = ra.until(b"D")[1]
vals, at = [], 2
for _ in range(3):
    n = struct.unpack("!i", row[at:at + 4])[0]
    vals.append(row[at + 4:at + 4 + n].decode())
    at += 4 + n
ra.until(b"Z")
a.sendall(q("START_REPLICATION SLOT dw PHYSICAL " + vals[2]))
ra.until(b"W")

b = connect()
rb = Reader(b)
rb.until(b"Z")
data = q("DROP_REPLICATION_SLOT dw WAIT") + q("IDENTIFY_SYSTEM") * 4000
b.setblocking(False)
sent, deadline = 0, time.time() + 3
while sent < len(data) and time.time() < deadline:
    try:
        sent += b.send(data[sent:])
    except BlockingIOError:
        time.sleep(0.05)
b.settimeout(2)
try:
    early = b.recv(256, socket.MSG_PEEK)
    if not early:
        sys.exit("B: closed while its DROP_REPLICATION_SLOT WAIT waited")
    sys.exit("B: answered while slot dw was active: %r" % early)
except socket.timeout:
    pass
except ConnectionResetError:
    sys.exit("B: reset while its DROP_REPLICATION_SLOT WAIT waited")
a.close()
b.settimeout(20)
b.sendall(data[sent:])
tags, ready = [], 0
while ready < 4001:
    m = rb.msg()
    if m is None or m[0] == b"E":
        sys.exit("B: %r after %d answers" % (m, ready))
    if m[0] == b"C":
        tags.append(m[1].rstrip(b"\0").decode())
    ready += m[0] == b"Z"
print(tags[0], len([t for t in tags if t == "IDENTIFY_SYSTEM"]))
PY
) || fail "DROP_REPLICATION_SLOT WAIT with commands pipelined: $out"
assert_eq "DROP_REPLICATION_SLOT 4000" "$out" "DROP_REPLICATION_SLOT dw WAIT, then 4000 commands"
assert_eq "||" "$(repl "READ_REPLICATION_SLOT dw")" "READ_REPLICATION_SLOT of dw, dropped"
log "ok: DROP_REPLICATION_SLOT WAIT waited for dw with 84 KB pipelined, then answered all"

# A temporary slot is its connection's (PostgreSQL keeps it acquired by its maker): another
# connection can neither drop it nor stream through it; it goes with its connection.
slot_read_is() {
	[[ "$(repl "READ_REPLICATION_SLOT $1")" == "$2" ]]
}
{
	echo "CREATE_REPLICATION_SLOT tmp_held TEMPORARY PHYSICAL;"
	sleep 6
} | in_ns "$NS_P" "$PG_BIN/psql" -X -A -t "$base replication=true" >/dev/null 2>&1 &
holder=$!
wait_for 5 "the temporary slot tmp_held" slot_read_is tmp_held "physical||"
out=$(repl "DROP_REPLICATION_SLOT tmp_held") && fail "another's temporary slot was dropped: $out"
[[ "$out" == *'replication slot "tmp_held" is active for PID'* ]] ||
	fail "DROP_REPLICATION_SLOT of another's temporary slot: '$out'"
out=$(repl "START_REPLICATION SLOT tmp_held PHYSICAL 0/1000000") &&
	fail "streamed through another's temporary slot: $out"
[[ "$out" == *'replication slot "tmp_held" is active for PID'* ]] ||
	fail "START_REPLICATION through another's temporary slot: '$out'"
wait "$holder" || true
wait_for 10 "tmp_held to go with its connection" slot_read_is tmp_held "||"
log "ok: another connection's temporary slot refused: ${out//$'\n'/ }"

# A standby with primary_slot_name.
out=$(repl "CREATE_REPLICATION_SLOT sb_slot PHYSICAL") ||
	fail "CREATE_REPLICATION_SLOT sb_slot: $out"
out=$(repl 'START_REPLICATION SLOT "nope" PHYSICAL 0/1000000') && fail "slot nope streamed"
[[ "$out" == *'replication slot "nope" does not exist'* ]] || fail "START_REPLICATION: '$out'"
SDATA=$TEST_DIR/pg-standby
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$SB_PORT" \
	"$WALSHIP fetch -c $RCONF %f %p"
cat >>"$SDATA/postgresql.conf" <<-EOF
	primary_conninfo = '$base application_name=sb1'
	primary_slot_name = 'sb_slot'
	wal_receiver_status_interval = 1s
	EOF
pg_start "$SDATA" "$NS_R1"
wait_for 30 "the standby streaming through slot sb_slot" slot_active sb_slot
psql_at "$NS_P" "$PG_PORT" "insert into marker values (1)"
target=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 30
wait_for 20 "slot sb_slot's restart LSN to reach $target" slot_restart_ge sb_slot "$target"
walship_status "$RCONF" --json | jq -e '.standbys[] | select(.application_name == "sb1") |
	.slot == "sb_slot"' >/dev/null || fail "status does not show sb1 streaming through sb_slot"
walship_status "$RCONF" | grep -Eq '^  slot sb_slot: restart [0-9A-F]+/[0-9A-F]+, active, retains' ||
	fail "walship status (text) does not show slot sb_slot: $(walship_status "$RCONF")"
log "ok: standby through sb_slot: $(slot_json sb_slot)"
metrics_has 'walship_slots 3' || fail "/metrics: walship_slots is not 3"
for slot in rw kept sb_slot; do
	wait_for 10 "slot $slot's /metrics samples to equal walship status --json" \
		slot_metrics_match "$slot"
done
metrics_has 'walship_slot_active\{slot="sb_slot"\} 1' ||
	fail "/metrics: slot sb_slot not active"
metrics_has 'walship_slot_active\{slot="kept"\} 0' || fail "/metrics: slot kept active"
log "ok: /metrics: $(metrics_r1 | grep '^walship_slot_[a-z_]*{slot="sb_slot"}' | tr '\n' ' ')"

# The slots survive a SIGKILL of the appliance (a restart LSN is written at most a second
# after it advanced).
kill "$RECEIVEWAL" 2>/dev/null || true
wait "$RECEIVEWAL" 2>/dev/null || true
before=$(slot_json rw | jq -r .restart_lsn)
slot_saved() { grep -q "^rw $before " "$RARCHIVE/.walship/slots"; }
wait_for 5 "slot rw's restart LSN $before in $RARCHIVE/.walship/slots" slot_saved
walshipd_kill "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1.log"
after=$(slot_json rw | jq -r .restart_lsn) || fail "slot rw lost by the restart"
assert_eq "$before" "$after" "slot rw's restart LSN after the restart"
slot_json sb_slot >/dev/null || fail "slot sb_slot lost by the restart"
psql_at "$NS_P" "$PG_PORT" "insert into marker values (2)"
target=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 30
wait_for 20 "the standby through sb_slot again, to $target" slot_restart_ge sb_slot "$target"
log "ok: both slots restored after a SIGKILL; the standby streams through sb_slot again"

# Drop: the inactive slot goes, from status and from the file.
out=$(repl "DROP_REPLICATION_SLOT rw WAIT") || fail "DROP_REPLICATION_SLOT rw: $out"
assert_eq "||" "$(repl "READ_REPLICATION_SLOT rw")" "READ_REPLICATION_SLOT of a dropped slot"
slot_json rw >/dev/null 2>&1 && fail "slot rw still in status after DROP"
grep -q '^rw ' "$RARCHIVE/.walship/slots" && fail "slot rw still in the slots file"
m=$(metrics_r1) || fail "/metrics could not be read"
grep -q '^walship_slot_[a-z_]*{slot="rw"}' <<<"$m" && fail "slot rw still in /metrics"
repl "DROP_REPLICATION_SLOT kept" >/dev/null || fail "DROP_REPLICATION_SLOT kept failed"
out=$(repl "DROP_REPLICATION_SLOT nope") && fail "dropped a slot that does not exist"
[[ "$out" == *'replication slot "nope" does not exist'* ]] || fail "DROP of nope: '$out'"
ws_check_daemons

# Restarted without pg_listen, the replica says that the slot it still lists keeps no WAL.
walshipd_stop "$RCONF"
sed -i '/^pg_listen *=/d' "$RCONF"
walshipd_start "$NS_R1" "$RCONF" "$TEST_DIR/ws-r1-no-listen.log"
wait_for 10 "the replica to say its slots keep no WAL without pg_listen" grep -q \
	'lists replication slots, but pg_listen is off: retention keeps no WAL for them' \
	"$TEST_DIR/ws-r1-no-listen.log"
log "ok: without pg_listen the replica warns that the slots it lists keep no WAL"
log "PASS"
