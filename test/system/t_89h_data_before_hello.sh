#!/bin/bash
# t_89h: a peer that sends a DATA frame header (replicas never send DATA), before its HELLO
# or at all, is refused at that header: the primary answers ERROR PROTOCOL and closes the
# connection at once, before taking one of its I/O buffers for the 1 MiB payload
# announced.  On the build before, it took a buffer and waited for the payload until
# connect_timeout (60 s here): 16 such peers held half the default io_buffers.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds python3
PRIMARY_CONF_EXTRA=(connect_timeout=60s)
walship_daemons_up
PLOG=$TEST_DIR/ws-primary.log
port=$(conf_get "$PCONF" listen)
port=${port##*:}

# A 16-byte frame header: DATA (3), no flags, 1 MiB + 16 of payload announced, its
# header CRC-32C right (a frame that looks whole, not garbage); then nothing.  Prints
# what happened: "closed N" (bytes received before the close) or "open".
out=$(in_ns "$NS_R1" python3 - "$ADDR_P" "$port" <<'EOF'
import socket, struct, sys

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

head = struct.pack("<BBHII", 3, 0, 0, 1024 * 1024 + 16, 0)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(head + struct.pack("<I", crc32c(head)))
s.settimeout(15)
got = 0
try:
    while True:
        b = s.recv(65536)
        if not b:
            print("closed", got)
            break
        got += len(b)
except socket.timeout:
    print("open")
except ConnectionResetError:
    print("closed", got)
EOF
)
[[ "$out" == closed* ]] ||
	fail "the primary kept the connection open after a DATA header before HELLO ($out)"
grep -q 'unexpected DATA frame' "$PLOG" ||
	fail "the primary did not log the unexpected DATA frame"
log "ok: refused at the header ($out): $(grep -m1 -o 'unexpected DATA frame[^"]*' "$PLOG")"
# The replica still streams: nothing of the refused peer stayed.
wait_replica_streaming "$PCONF" 20
ws_check_daemons
log "PASS"
