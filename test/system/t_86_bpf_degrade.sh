#!/bin/bash
# BPF probes degrade cleanly (issue 5): with CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN dropped
# (capsh), both walshipd daemons with probes = auto log once why the probes are off, and
# WAL still ships: segments arrive byte-identical and `walship status` says the probes
# are off.  With probes = on and the same capabilities dropped, walshipd refuses to start
# with a clear error.  In a PID namespace of its own the probes follow it there and count
# its fsyncs.  Without CAP_SYS_ADMIN and tracefs, the BTF-typed probes (ext4's too) load.
# sysfs = on without CAP_NET_ADMIN is refused, saying so.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

require_root
require_cmds capsh jq bpftool
DROP=cap_bpf,cap_perfmon,cap_sys_admin
# capsh must know every capability it drops (libcap too old for CAP_BPF: skip, not fail).
capsh --drop="$DROP" -- -c true 2>/dev/null || skip "capsh cannot drop $DROP (libcap2-bin too old?)"
ws_setup

# walshipd as the harness starts it (ip netns exec "$WALSHIPD" -c CONF), but through a
# wrapper that drops the capabilities from the bounding set first: the daemon, exec'd
# after the drop, has none of them although it runs as root.
REAL_WALSHIPD=$WALSHIPD
WALSHIPD=$TEST_DIR/walshipd-nocaps
cat >"$WALSHIPD" <<EOF
#!/bin/bash
exec capsh --drop=$DROP -- -c 'exec "\$@"' walshipd "$REAL_WALSHIPD" "\$@"
EOF
chmod 0755 "$WALSHIPD"
# The wrapper really drops them: bit 39 (CAP_BPF), 38 (CAP_PERFMON), 21 (CAP_SYS_ADMIN).
eff=$(capsh --drop="$DROP" -- -c 'exec grep ^CapEff: /proc/self/status' | awk '{print $2}')
(((16#$eff >> 39 & 1) + (16#$eff >> 38 & 1) + (16#$eff >> 21 & 1) == 0)) ||
	fail "test bug: capsh left capabilities $eff"

# shellcheck disable=SC2034  # read by walship_daemons_up
PRIMARY_CONF_EXTRA=(probes=auto)
# shellcheck disable=SC2034
REPLICA_CONF_EXTRA=(probes=auto)
walship_daemons_up

for f in "$TEST_DIR/ws-primary.log" "$TEST_DIR/ws-r1.log"; do
	grep -q 'BPF probes on' "$f" && fail "$f: probes on although capabilities were dropped"
	n=$(grep -c 'BPF probes are off' "$f" || true)
	assert_eq 1 "$n" "lines saying the probes are off in $f"
	grep 'BPF probes are off' "$f" | grep -q 'lacks the capabilities for BPF' ||
		fail "$f does not say why the probes are off: $(grep 'BPF probes' "$f")"
	log "ok: $(basename "$f"): $(grep 'BPF probes are off' "$f" | sed 's/^.*\(BPF probes are off\)/\1/')"
done
for conf in "$PCONF" "$RCONF"; do
	walship_status "$conf" --json | jq -e '.probes == null' >/dev/null ||
		fail "walship status -c $conf --json does not show the probes off"
	walship_status "$conf" | grep -q '^latency probes: *off' ||
		fail "walship status -c $conf does not say the probes are off"
done

# WAL still ships: full segments (every page real records) arrive byte-identical.
walship_primary_up 1
for _ in 1 2 3; do
	seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
	wait_archived "$seg"
	assert_file_identical "$PDATA/pg_wal/$seg" "$RARCHIVE/$seg"
	log "ok: $seg shipped, identical"
done
stored=$(status_counter "$RCONF" files_stored)
((stored >= 3)) || fail "replica stored $stored files, expected at least 3"

# The same daemon log still says it once (no repeat per connection or per tick).
for f in "$TEST_DIR/ws-primary.log" "$TEST_DIR/ws-r1.log"; do
	assert_eq 1 "$(grep -c 'BPF probes are off' "$f" || true)" "probes-off lines in $f at the end"
done

# probes = on without the capabilities: refuse to start, saying why and what to do.
ONCONF=$TEST_DIR/ws-on/walship.conf
mkdir -p "$TEST_DIR/ws-on"
write_replica_conf "$ONCONF" "$TEST_DIR/ws-on" "$NS_P" probes=on
run_capture "$TEST_DIR/ws-on.log" timeout 20 ip netns exec "$NS_R1" "$WALSHIPD" -c "$ONCONF"
sed 's/^/    | /' "$TEST_DIR/ws-on.log"
((RC != 0 && RC != 124)) || fail "walshipd with probes = on and no BPF capabilities: exit $RC"
grep -q 'could not start the BPF probes: walshipd lacks the capabilities for BPF' \
	"$TEST_DIR/ws-on.log" || fail "walshipd with probes = on did not say why it refused"
grep -qi 'probes = auto or off' "$TEST_DIR/ws-on.log" || fail "no hint to set probes = auto or off"
[[ -S "$TEST_DIR/ws-on/walshipd.sock" ]] && fail "walshipd with probes = on left a socket"
log "ok: probes = on refused (exit $RC)"

# sysfs = on without CAP_NET_ADMIN (walship.ko's updates need it): refused at start for
# that reason, whether the module is loaded or not (the build before said only "not
# loaded", and with the module loaded tried, and logged, every 2 s for ever).
SYSCONF=$TEST_DIR/ws-sysfs/walship.conf
mkdir -p "$TEST_DIR/ws-sysfs"
write_replica_conf "$SYSCONF" "$TEST_DIR/ws-sysfs" "$NS_P" sysfs=on probes=off
run_capture "$TEST_DIR/ws-sysfs.log" timeout 20 ip netns exec "$NS_R1" \
	capsh --drop=cap_net_admin -- -c 'exec "$@"' walshipd "$REAL_WALSHIPD" -c "$SYSCONF"
sed 's/^/    | /' "$TEST_DIR/ws-sysfs.log"
((RC != 0 && RC != 124)) || fail "walshipd with sysfs = on and no CAP_NET_ADMIN: exit $RC"
grep -q 'sysfs = on, but walshipd lacks CAP_NET_ADMIN' "$TEST_DIR/ws-sysfs.log" ||
	fail "walshipd with sysfs = on and no CAP_NET_ADMIN did not say why it refused"
log "ok: sysfs = on refused without CAP_NET_ADMIN (exit $RC)"

# In a PID namespace of its own (a container), with every capability: the probes filter
# on the daemon's pid as its namespace sees it (bpf_get_ns_current_pid_tgid()), and count
# its fsyncs (the build before filtered on the host's pid and counted none).
if unshare --pid --fork true 2>/dev/null; then
	NSCONF=$TEST_DIR/ws-pidns/walship.conf
	mkdir -p "$TEST_DIR/ws-pidns"
	write_replica_conf "$NSCONF" "$TEST_DIR/ws-pidns" "$NS_P" probes=on
	ip netns exec "$NS_R1" unshare --pid --fork --kill-child "$REAL_WALSHIPD" -c "$NSCONF" \
		>>"$TEST_DIR/ws-pidns.log" 2>&1 &
	UNSHARE_PID=$!
	wait_for 30 "walshipd in a PID namespace to answer" walship_answers "$NSCONF"
	grep -q 'BPF probes on: .*walshipd followed in its own PID namespace' \
		"$TEST_DIR/ws-pidns.log" ||
		fail "walshipd in a PID namespace: $(grep 'BPF probes' "$TEST_DIR/ws-pidns.log")"
	# its store's directory fsyncs at start, counted by the fsync(2) probe
	ops=$(walship_status "$NSCONF" --json | jq '.probes.fsync.syscall.count')
	((ops >= 1)) || fail "the probes counted no fsync(2) of walshipd in a PID namespace"
	pkill -TERM -P "$UNSHARE_PID" || true
	wait "$UNSHARE_PID" 2>/dev/null || true
	log "ok: in a PID namespace of its own, the probes count its fsyncs ($ops)"
else
	log "unshare --pid is not allowed here: the PID namespace step is left out"
fi

# Without CAP_SYS_ADMIN and without tracefs (as for a systemd unit's user, to whom tracefs
# is closed): the BTF-typed probes load, io_uring and ext4 (ext4 built into this kernel),
# and count; the fsync(2) probes, classic tracepoints only, stay off.  The wrapper mounts
# bpffs in the mount namespace `ip netns exec` made (the daemon could not) and drops
# CAP_SYS_ADMIN; nothing there can mount tracefs.
if capsh --drop=cap_sys_admin -- -c true 2>/dev/null; then
	BTFCONF=$TEST_DIR/ws-btf/walship.conf
	mkdir -p "$TEST_DIR/ws-btf"
	write_replica_conf "$BTFCONF" "$TEST_DIR/ws-btf" "$NS_P" probes=on
	# shellcheck disable=SC2016  # expanded by the inner shells
	ip netns exec "$NS_R1" bash -c 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
		umount /sys/kernel/tracing 2>/dev/null || true
		exec capsh --drop=cap_sys_admin -- -c "exec \"\$@\"" walshipd "$@"' \
		wrapper "$REAL_WALSHIPD" -c "$BTFCONF" >>"$TEST_DIR/ws-btf.log" 2>&1 &
	BTF_PID=$!
	wait_for 30 "walshipd without CAP_SYS_ADMIN to answer" walship_answers "$BTFCONF"
	line=$(grep 'BPF probes on' "$TEST_DIR/ws-btf.log" || true)
	[[ -n $line ]] || fail "walshipd without CAP_SYS_ADMIN: $(grep 'BPF probes' "$TEST_DIR/ws-btf.log")"
	grep -q 'fsync(2) probes off' <<<"$line" ||
		fail "the fsync(2) probes loaded without tracefs: $line"
	if btf_ext4=$(bpftool btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null |
		grep -c "'btf_trace_ext4_sync_file_enter'") && ((btf_ext4 > 0)); then
		grep -q 'ext4 probes on (tp_btf)' <<<"$line" ||
			fail "the ext4 probes are not on through BTF without tracefs: $line"
		if [[ $(stat -f -c %T "$TEST_DIR/ws-btf") == ext2/ext3 ]]; then
			# its store's fsyncs at start (files and folder) are ext4's
			ops=$(walship_status "$BTFCONF" --json | jq '.probes.fsync.ext4.count')
			((ops >= 1)) || fail "the tp_btf ext4 probe counted no fsync"
			log "ok: without tracefs, the ext4 probe (tp_btf) counted $ops fsyncs"
		else
			log "the archive is not on ext4: the ext4 probe's count is not checked"
		fi
	else
		log "ext4 is not built into this kernel: its probes need tracefs, not checked"
	fi
	kill -TERM "$BTF_PID" 2>/dev/null || true
	wait "$BTF_PID" 2>/dev/null || true
	log "ok: without CAP_SYS_ADMIN nor tracefs: ${line#*BPF probes on: }"
else
	log "capsh cannot drop cap_sys_admin here: the step without tracefs is left out"
fi
log "PASS"
