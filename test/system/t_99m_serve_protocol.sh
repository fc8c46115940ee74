#!/bin/bash
# t_99m: the appliance's pg_listen answers the protocol's edge cases as PostgreSQL 15's
# walsender does, shown by sending the same raw message sequences to both: to the
# PostgreSQL primary (a replication=true connection to its walsender) and to the replica's
# pg_listen, each sequence on a connection of its own, and comparing what comes back: the
# message types in order (CopyData left out: what is streamed differs), each ErrorResponse's
# severity, SQLSTATE, message, detail and hint (positions and pids masked), the column names of each
# RowDescription, each CommandComplete's tag, and whether the connection is open at the end
# (a last SHOW answered) or closed.  PostgreSQL is the oracle: it must answer every
# sequence.  The sequences: commands answered and refused (an empty query is SQL to a
# physical walsender), a Query that is not one string; message types a replication
# connection never takes (with a length over any limit too: the type is checked first);
# Terminate, a message length under 4, a CopyDone over PostgreSQL's limit for it (closed
# once what was answered before is sent); CopyData,
# CopyDone and CopyFail outside COPY (ignored); the extended query protocol and function
# calls (refused, then skipped up to Sync); START_REPLICATION refused (a timeline not in
# the server's history; after its CopyBothResponse: ahead of the flush position, through a
# slot, a segment not held), the connection usable after it, the slot released; a
# temporary slot dropped at an ERROR; permanent slots made and dropped back to back in one
# packet; a stream ended by the client, and what a streaming
# client may send wrong (another message type, a status update or feedback too short,
# CopyData of no known type).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5453
ws_setup
require_cmds python3
ws_pg_listen_trust "$PG_LISTEN_PORT"
walship_stream_up off
psql_at "$NS_P" "$PG_PORT" "create table marker (i int primary key); select pg_switch_wal()" \
	>/dev/null
appliance_holds_wal() {
	in_ns "$NS_P" "$PG_BIN/psql" -X -A -t \
		"host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres replication=true" \
		-c IDENTIFY_SYSTEM >/dev/null 2>&1
}
wait_for 30 "the appliance to hold WAL" appliance_holds_wal

# pgproto.py HOST PORT: each sequence on a connection of its own (replication=true, user
# postgres, trust), one line per sequence: its name, then what came back (module comment).
cat >"$TEST_DIR/pgproto.py" <<'PY'
import re, socket, struct, sys, time

def msg(kind, body=b""):
    return kind + struct.pack("!I", 4 + len(body)) + body

def q(text):
    return msg(b"Q", text.encode() + b"\0")

IDENT = q("IDENTIFY_SYSTEM")
LAST = q("SHOW wal_segment_size")  # answered last on a connection left open

def sequences(pos):
    """(name, messages, whether LAST follows: not where the connection is to be closed);
    streams start at @pos, the server's own flush position."""
    start = q("START_REPLICATION " + pos)
    return [
        # commands answered and refused
        ("sql", q("SELECT 1"), True),
        ("empty", q(""), True),  # SQL to a physical walsender, as "SELECT 1"
        ("blank", q(" ; "), True),
        ("syntax", q("IDENTIFY_SYSTEM foo"), True),
        ("two_commands", q("IDENTIFY_SYSTEM; IDENTIFY_SYSTEM"), True),
        ("pipelined", IDENT + q("SHOW nosuch") + IDENT, True),
        ("slot_name_invalid", q('CREATE_REPLICATION_SLOT "a-b" PHYSICAL'), True),
        ("slot_missing", q("START_REPLICATION SLOT nosuch 0/0"), True),
        ("drop_missing", q("DROP_REPLICATION_SLOT nosuch"), True),
        ("read_missing", q("READ_REPLICATION_SLOT nosuch"), True),
        ("timeline_history_missing", q("TIMELINE_HISTORY 5"), True),
        ("timeline_history_zero", q("TIMELINE_HISTORY 0"), True),
        ("timeline_zero", q("START_REPLICATION 0/0 TIMELINE 0 x"), True),
        # a Query that is not one string
        ("string_unterminated", msg(b"Q", b"IDENTIFY_SYSTEM"), True),
        ("string_trailing", msg(b"Q", b"IDENTIFY_SYSTEM\0x\0"), True),
        ("string_none", msg(b"Q"), True),
        # types a replication connection never takes
        ("unknown_type", msg(b"z"), False),
        # (the type is checked before the length: a FATAL, not a silent close)
        ("unknown_type_long", b"z" + struct.pack("!I", 1 << 20), False),
        ("password_after_auth", msg(b"p", b"x\0"), False),
        # closed once the answers to what came before are sent
        ("terminate", IDENT + msg(b"X"), False),
        ("length_under_4", IDENT + b"Q\0\0\0\2", False),
        ("copydone_too_long", IDENT + msg(b"c", bytes(9997)), False),
        # CopyData, CopyDone, CopyFail outside COPY: ignored
        ("copydata_idle", msg(b"d", b"r" + bytes(33)), True),
        ("copydone_idle", msg(b"c"), True),
        ("copyfail_idle", msg(b"f", b"x\0"), True),
        # the extended query protocol: refused, then skipped up to Sync
        ("parse_sync", msg(b"P", b"\0IDENTIFY_SYSTEM\0\0\0") + msg(b"S"), True),
        ("skip_till_sync", msg(b"P", b"\0x\0\0\0") + IDENT + msg(b"S") + IDENT, True),
        ("bind_execute_describe_close", msg(b"B", bytes(8)) + msg(b"E", bytes(5)) +
         msg(b"D", b"S\0") + msg(b"C", b"S\0") + msg(b"S"), True),
        ("flush_sync", msg(b"H") + msg(b"S") + msg(b"S"), True),
        ("sync_body", msg(b"S", b"xx"), True),
        ("sync_longest", msg(b"S", bytes(9996)) + msg(b"S"), True),
        ("flush_body", msg(b"H", b"xx") + IDENT + msg(b"S"), True),
        ("fastpath", msg(b"F", bytes(4)), True),
        ("parse_terminate", msg(b"P", b"\0x\0\0\0") + msg(b"X"), False),
        ("parse_unknown_type", msg(b"P", b"\0x\0\0\0") + msg(b"z"), False),
        # START_REPLICATION refused; after its CopyBothResponse, the stream ends and the
        # connection takes commands, the slot released
        ("timeline_unknown", q("START_REPLICATION 0/0 TIMELINE 7"), True),
        ("ahead", q("START_REPLICATION FFFF/0"), True),
        ("ahead_slot", q("CREATE_REPLICATION_SLOT p1 PHYSICAL") +
         q("START_REPLICATION SLOT p1 FFFF/0") + q("DROP_REPLICATION_SLOT p1"), True),
        # permanent slots made and dropped back to back, in one packet: each answered in
        # turn once its file is written (off the appliance's event loop)
        ("slots_pipelined", q("CREATE_REPLICATION_SLOT p2 PHYSICAL") +
         q("CREATE_REPLICATION_SLOT p2 PHYSICAL") + q("DROP_REPLICATION_SLOT p2") +
         q("DROP_REPLICATION_SLOT p2") + q("CREATE_REPLICATION_SLOT p2 PHYSICAL RESERVE_WAL") +
         q("READ_REPLICATION_SLOT p2") + q("DROP_REPLICATION_SLOT p2 WAIT") + IDENT, True),
        # (PostgreSQL reads what follows START_REPLICATION before it finds the segment
        # missing: the SHOW after it is sent once the error has come)
        ("segment_removed", [q("START_REPLICATION 0/0")], True),
        # an ERROR drops the temporary slots the connection made
        ("temporary_slot_error", q("CREATE_REPLICATION_SLOT t1 TEMPORARY PHYSICAL") +
         q("SHOW nosuch") + q("DROP_REPLICATION_SLOT t1"), True),
        # streaming: ended by the client, and what a client may send wrong
        ("stream_copydone", start + msg(b"c"), True),
        ("stream_terminate", start + msg(b"X"), False),
        ("stream_query", start + IDENT, False),
        ("stream_copyfail", start + msg(b"f", b"x\0"), False),
        ("stream_sync", start + msg(b"S"), False),
        ("stream_unknown_type", start + msg(b"z"), False),
        ("stream_unknown_type_long", start + b"z" + struct.pack("!I", 1 << 20), False),
        ("stream_status_short", start + msg(b"d", b"r\0\0"), True),
        ("stream_feedback_short", start + msg(b"d", b"h\0\0"), True),
        ("stream_copydata_empty", start + msg(b"d"), True),
        ("stream_copydata_unknown", start + msg(b"d", b"z"), False),
    ]

def mask(text):
    text = re.sub(r"\b[0-9A-F]{1,8}/[0-9A-F]{1,8}\b", "X/X", text)
    return re.sub(r"PID [0-9]+", "PID n", text)

class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=10)
        p = b"user\0postgres\0replication\0true\0application_name\0t_99m\0\0"
        self.s.sendall(struct.pack("!II", 8 + len(p), 196608) + p)
        self.buf = b""

    def read(self):
        """The next message as (type, body), or "closed", or "no answer" (10 s)."""
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                return "no answer"
            except ConnectionResetError:
                d = b""
            if not d:
                return "closed"
            self.buf += d
        n = 1 + struct.unpack("!I", self.buf[1:5])[0]
        m, self.buf = self.buf[:n], self.buf[n:]
        return m[0:1], m[5:]

    def until_ready(self):
        """True at ReadyForQuery, False when refused for want of a walsender slot."""
        while True:
            m = self.read()
            if not isinstance(m, str) and m[0] == b"E" and b"C53300\0" in m[1]:
                return False
            if isinstance(m, str) or m[0] == b"E":
                sys.exit("no ReadyForQuery: %r" % (m,))
            if m[0] == b"Z":
                return True

def connect(host, port):
    """A connection ready for commands.  PostgreSQL's walsender slots (max_wal_senders)
    are freed as the walsenders of the sequences before exit, which they may not have
    done yet: a refusal for want of one (53300) is tried again, 10 s at most."""
    for _ in range(100):
        c = Conn(host, port)
        if c.until_ready():
            return c
        c.s.close()
        time.sleep(0.1)
    sys.exit("no walsender slot free for 10 s")

def describe(kind, body):
    if kind in (b"E", b"N"):
        f = {p[0:1].decode(): p[1:].decode() for p in body.split(b"\0") if p}
        extra = "".join(" %s: %s" % (k, mask(f[k])) for k in ("D", "H") if k in f)
        return "%s %s %s %s%s" % (kind.decode(), f.get("V"), f.get("C"), mask(f.get("M", "")),
                                  extra)
    if kind == b"T":
        names, at = [], 2
        for _ in range(struct.unpack("!H", body[:2])[0]):
            end = body.index(b"\0", at)
            names.append(body[at:end].decode())
            at = end + 1 + 18
        return "T(%s)" % ",".join(names)
    if kind == b"C":
        return "C " + body.rstrip(b"\0").decode()
    return kind.decode()

def position(host, port):
    c = connect(host, port)
    c.s.sendall(IDENT)
    while True:
        m = c.read()
        if isinstance(m, str) or m[0] == b"E":
            sys.exit("IDENTIFY_SYSTEM: %r" % (m,))
        if m[0] == b"D":
            body, vals, at = m[1], [], 2
            for _ in range(3):
                n = struct.unpack("!i", body[at:at + 4])[0]
                vals.append(body[at + 4:at + 4 + n].decode())
                at += 4 + n
            return vals[2]

def run(host, port, name, parts, last):
    """@parts: the messages sent at once, or a list of them, each sent once the answers to
    the one before have ended with a ReadyForQuery (the server waits for no reply then);
    LAST follows when @last, after them or as a part of its own."""
    c = connect(host, port)
    if isinstance(parts, bytes):
        parts = [parts + (LAST if last else b"")]
    elif last:
        parts = parts + [LAST]
    seen = []
    for i, part in enumerate(parts):
        final = i == len(parts) - 1
        c.s.sendall(part)
        got_last = False
        while True:
            m = c.read()
            if isinstance(m, str):
                seen.append(m)
                return "%s: %s" % (name, " | ".join(seen))
            if m[0] == b"d":
                continue
            seen.append(describe(*m))
            if m[0] == b"C" and m[1] == b"SHOW\0" and final:
                got_last = True
            elif m[0] == b"Z" and (got_last or not final):
                break
    c.s.close()
    return "%s: %s | open" % (name, " | ".join(seen))

host, port = sys.argv[1], int(sys.argv[2])
pos = position(host, port)
for name, data, last in sequences(pos):
    print(run(host, port, name, data, last), flush=True)
PY

in_ns "$NS_P" python3 "$TEST_DIR/pgproto.py" "$ADDR_P" "$PG_PORT" >"$TEST_DIR/postgres.out" ||
	fail "the sequences could not be sent to PostgreSQL"
in_ns "$NS_P" python3 "$TEST_DIR/pgproto.py" "$ADDR_R1" "$PG_LISTEN_PORT" >"$TEST_DIR/walship.out" ||
	fail "the sequences could not be sent to the appliance"
cat "$TEST_DIR/postgres.out"
if grep "no answer" "$TEST_DIR/postgres.out"; then
	fail "PostgreSQL left a sequence unanswered: the oracle is not what this test expects"
fi
diff -u "$TEST_DIR/postgres.out" "$TEST_DIR/walship.out" >&2 ||
	fail "the appliance answers differently from PostgreSQL 15 (- PostgreSQL, + walship)"
log "ok: $(wc -l <"$TEST_DIR/postgres.out") sequences answered as PostgreSQL 15 answers them"
log "PASS"
