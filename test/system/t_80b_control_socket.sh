#!/bin/bash
# The control socket (issue 11, defect 13): the credential check uses the caller's own
# groups as the kernel recorded them at connect (a service given socket_group only as a
# supplementary group, as systemd's SupplementaryGroups= does, is served; /etc/group is
# not consulted), a caller outside the group is refused even when the mode is widened by
# hand, a member of the group may not change what the daemon holds (walship replica drop,
# hold and release: root and the daemon's own user only), a request carrying more than one descriptor (or an empty message carrying some) is
# refused with every descriptor closed in the daemon (its descriptor count comes back to
# where it was), and clients that connect and send nothing are bounded
# (CONTROL_MAX_WAITING = 32 in daemon/control/control.h).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

CTL_SEND=$WS_ROOT/build/helpers/ctl_send
ws_setup
require_walship
require_cmds setpriv jq
[[ -x "$CTL_SEND" ]] || skip "helper $CTL_SEND not built: run make"
id nobody >/dev/null 2>&1 || skip "no user nobody"
getent group postgres >/dev/null || skip "no group postgres"
nogroup=$(id -g nobody)
# nobody's own groups must not include postgres, or the test proves nothing.
id -nG nobody | tr ' ' '\n' | grep -qx postgres && skip "user nobody is in group postgres"

net_create 1
PCONF=$TEST_DIR/ws-primary/walship.conf
mkdir -p "$TEST_DIR/ws-primary"
write_primary_conf "$PCONF" "$TEST_DIR/ws-primary" "$NS_P"
walshipd_start "$NS_P" "$PCONF" "$TEST_DIR/ws-primary.log"
pid=$WALSHIPD_PID
sock=$(conf_get "$PCONF" socket)

log "nobody with postgres as a supplementary group only is served"
run_capture "$TEST_DIR/supp.out" setpriv --reuid=nobody --regid="$nogroup" --groups=postgres \
	"$WALSHIP" status -c "$PCONF" --json
assert_eq 0 "$RC" "walship status as nobody with supplementary group postgres"
jq -e '.role == "primary"' "$TEST_DIR/supp.out" >/dev/null ||
	fail "no status document: $(cat "$TEST_DIR/supp.out")"

log "a member of the group may not drop a replica, hold or release (root and the daemon's user only)"
run_capture "$TEST_DIR/drop.out" setpriv --reuid=nobody --regid="$nogroup" --groups=postgres \
	"$WALSHIP" replica drop -c "$PCONF" ws-r1
[[ "$RC" -ne 0 ]] || fail "walship replica drop as a member of the group succeeded"
grep -q "may not change what this walshipd holds" "$TEST_DIR/drop.out" ||
	fail "unexpected message: $(cat "$TEST_DIR/drop.out")"
for cmd in hold release; do
	run_capture "$TEST_DIR/$cmd.out" setpriv --reuid=nobody --regid="$nogroup" --groups=postgres \
		"$WALSHIP" "$cmd" -c "$PCONF" sb1
	[[ "$RC" -ne 0 ]] || fail "walship $cmd as a member of the group succeeded"
	grep -q "may not change what this walshipd holds" "$TEST_DIR/$cmd.out" ||
		fail "walship $cmd: unexpected message: $(cat "$TEST_DIR/$cmd.out")"
done
run_capture "$TEST_DIR/drop-root.out" "$WALSHIP" replica drop -c "$PCONF" ws-r1
grep -q 'not registered' "$TEST_DIR/drop-root.out" ||
	fail "root's replica drop was not answered: $(cat "$TEST_DIR/drop-root.out")"

log "nobody without the group is refused, even with the socket's mode widened by hand"
chmod 0666 "$sock"
refused0=$(status_counter "$PCONF" connections_refused)
run_capture "$TEST_DIR/nogroup.out" setpriv --reuid=nobody --regid="$nogroup" --clear-groups \
	"$WALSHIP" status -c "$PCONF"
[[ "$RC" -ne 0 ]] || fail "walship status as nobody without the group succeeded"
grep -q "may not use this walshipd's socket" "$TEST_DIR/nogroup.out" ||
	fail "unexpected message: $(cat "$TEST_DIR/nogroup.out")"
refused1=$(status_counter "$PCONF" connections_refused)
((refused1 > refused0)) || fail "the refusal was not counted ($refused0 -> $refused1)"
chmod 0660 "$sock"

fd_count() {
	find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l
}
fds_back() {
	(($(fd_count) == fds0))
}
# send_refused WHAT NFDS: a push with NFDS descriptors must be refused for carrying more
# than one, and leave none of them open in the daemon.
send_refused() {
	local what=$1 nfds=$2 files=() i
	for ((i = 0; i < nfds; i++)); do
		head -c 8192 /dev/zero >"$TEST_DIR/file$i"
		files+=("$TEST_DIR/file$i")
	done
	run_capture "$TEST_DIR/fds.out" "$CTL_SEND" "$sock" push 000000010000000000000001 \
		"${files[@]}"
	assert_eq 0 "$RC" "ctl_send exit code ($what)"
	grep -q '^1 more than one descriptor passed' "$TEST_DIR/fds.out" ||
		fail "$what: not refused as such: $(cat "$TEST_DIR/fds.out")"
	wait_for 10 "the daemon to close the descriptors of the refused request ($what)" fds_back
}

fds0=$(fd_count)
log "a push with two descriptors is refused, both closed (daemon has $fds0 descriptors)"
send_refused "two descriptors" 2
log "a push with more descriptors than the daemon makes room for (MSG_CTRUNC) too"
send_refused "eight descriptors" 8
grep -q "refused control request from pid [0-9]*: more than one descriptor passed" \
	"$TEST_DIR/ws-primary.log" || fail "the refusal was not logged"
log "an empty message with two descriptors: both closed"
python3 - "$sock" "$TEST_DIR/file0" "$TEST_DIR/file1" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
fds = [os.open(path, os.O_RDONLY) for path in sys.argv[2:]]
socket.send_fds(s, [b""], fds)
s.settimeout(10)
s.recv(4096)  # the daemon answers or closes
PY
wait_for 10 "the daemon to close the descriptors of the empty message" fds_back
log "one descriptor still reaches the push code (which judges the content)"
run_capture "$TEST_DIR/one.out" "$CTL_SEND" "$sock" push 000000010000000000000001 \
	"$TEST_DIR/file0"
assert_eq 0 "$RC" "ctl_send exit code (one descriptor)"
grep -q "descriptor" "$TEST_DIR/one.out" && fail "one descriptor refused: $(cat "$TEST_DIR/one.out")"
wait_for 10 "the daemon to close the pushed file" fds_back
log "silent clients: at most 32 wait for their request, the oldest closed to make room"
refused0=$(status_counter "$PCONF" connections_refused)
# 40 silent clients, one after the other: the 8 oldest are closed; with the 32 newest
# still connected and silent, `walship status` is answered (before, every new client was
# closed at once while 32 silent ones stayed: pushes, and PostgreSQL's archiving, stopped).
run_capture "$TEST_DIR/silent.out" python3 - "$sock" "$WALSHIP" "$PCONF" <<'PY'
import select, socket, subprocess, sys, time
socks = []
for i in range(40):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    socks.append(s)
    time.sleep(0.01)  # connected in this order: the oldest first
closed, deadline = set(), time.monotonic() + 10
while len(closed) < 8 and time.monotonic() < deadline:
    ready, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.5)
    for s in ready:
        if s.recv(4096) == b"":
            closed.add(s)
print("closed", len(closed), "oldest", sum(1 for s in socks[:8] if s in closed))
rc = subprocess.run([sys.argv[2], "status", "-c", sys.argv[3]],
                    stdout=subprocess.DEVNULL).returncode
print("status", rc)
PY
assert_eq 0 "$RC" "the silent clients' script"
assert_eq "closed 8 oldest 8" "$(head -n 1 "$TEST_DIR/silent.out")" \
	"silent control clients closed: the 8 oldest"
assert_eq "status 0" "$(tail -n 1 "$TEST_DIR/silent.out")" \
	"walship status with 32 silent clients connected"
wait_for 10 "the daemon to close the silent clients" fds_back
refused1=$(status_counter "$PCONF" connections_refused)
((refused1 - refused0 >= 8)) || fail "connections_refused went from $refused0 to $refused1"
log "PASS"
