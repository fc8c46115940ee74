#!/bin/bash
# walship.ko in a real kernel (issue 4): build the module against Debian's cloud kernel
# headers (W=1, no warnings), boot that kernel under qemu-system-x86_64 -accel tcg with an
# initramfs holding busybox, the module, walshipd, walship and test/kernel/nlcheck, and
# run test/kernel/guest-init.sh there: insmod and the sysfs tree, netlink policy refusals
# with extended-ack text, a primary and a replica shipping segments with every sysfs value
# equal to `walship status --json`, poll() on a state file, SIGKILL of the publisher,
# rmmod + insmod under a running daemon, a module older than the daemon (its policy takes
# fewer peer states) still published to, and a clean kernel log.  Both daemons run with
# probes = on (issue 5): on 6.1 the BPF programs load and attach through
# io_uring_submit_sqe (tp_btf) and the classic io_uring_complete tracepoint, the maps are
# pinned, and the histograms count every FSYNC and send the daemons submitted (/metrics
# through busybox wget, `walship stats --json`, `walship status --json`).  Kernel TLS
# (issue 6): the guest loads the kernel's tls module and runs a TLS primary and replica
# with ktls = on, certificates made here (never committed): the WAL crosses byte for byte
# with both directions encrypted by the kernel, and an expired certificate is refused.
# Standbys (issue 14): the module's standby commands refuse what they must, and a
# pg_receivewal streaming from the publishing replica's pg_listen appears under
# standbys/rw1/, moves as it is sent WAL, shows a hold, and is removed when it leaves.
#
# Prints "SUBTESTS: N passed, M failed" for the guest's assertions (test/run-tests.sh
# counts them).  Skips (77) when the kernel image, headers or QEMU are not installed.
# test-slots: 1 (its two emulated CPUs share one host thread: tcg,thread=single below)
# test-timeout: 600 (a loaded host slows the emulated guest several times over)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
OUT=$BUILD/kmod-test
QEMU_TIMEOUT=${QEMU_TIMEOUT:-480}

KVER=$(ls /boot | sed -n 's/^vmlinuz-\(.*-cloud-amd64\)$/\1/p' | sort -V | tail -n 1)
KDIR=/usr/src/linux-headers-$KVER
if [[ -z "$KVER" || ! -d "$KDIR" ]] || ! command -v qemu-system-x86_64 >/dev/null ||
	[[ ! -x /bin/busybox ]]; then
	echo "SKIP: linux-image/linux-headers-cloud-amd64, qemu-system-x86 or busybox-static missing"
	exit 77
fi
VERSION=$("$BUILD/walshipd" --version | awk '{print $2}')

rm -rf "$OUT"
mkdir -p "$OUT/wal"
echo "== module: DKMS source tree, built with W=1 against $KVER"
make -s -C "$ROOT/kmod" dkms-source DESTDIR="$OUT/dkms" WALSHIP_VERSION="$VERSION"
SRC=$OUT/dkms/usr/src/walship-$VERSION
make -C "$SRC" KDIR="$KDIR" W=1 WALSHIP_VERSION="$VERSION" >"$OUT/kbuild.log" 2>&1 ||
	{ cat "$OUT/kbuild.log"; exit 1; }
if grep -E 'warning:|error:' "$OUT/kbuild.log"; then
	echo "FAIL: the module does not build W=1 clean"
	exit 1
fi
echo "PASS: walship.ko builds with W=1 and no warnings"
# The same module as one built before the peer states after "handshake" were appended
# would be: the guest checks that this daemon still publishes to it.
cp -r "$SRC" "$OUT/old-src"
make -C "$OUT/old-src" KDIR="$KDIR" WALSHIP_VERSION="$VERSION" \
	KCFLAGS=-DWALSHIP_POLICY_PEER_MAX=WALSHIP_PEER_HANDSHAKE >"$OUT/kbuild-old.log" 2>&1 ||
	{ cat "$OUT/kbuild-old.log"; exit 1; }

echo "== guest programs"
gcc -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$ROOT/include" -o "$OUT/nlcheck" \
	"$ROOT/test/kernel/nlcheck.c"
# Five 1 MiB WAL segments of a made-up PostgreSQL 15 cluster: a long page header on the
# first page (magic 0xD110, timeline 1, page address, system identifier, segment and block
# size), the rest an unused tail of zeros.
python3 - "$OUT/wal" <<'PY'
import struct, sys
SEG = 1 << 20
for segno in range(1, 6):
    hdr = struct.pack('<HHIQI4xQII', 0xD110, 0x0002, 1, segno * SEG, 0,
                      7300000000000000084, SEG, 8192)
    with open('%s/00000001%08X%08X' % (sys.argv[1], segno // 4096, segno % 4096), 'wb') as f:
        f.write(hdr + b'\0' * (SEG - len(hdr)))
PY
# Kernel TLS: the kernel's own tls module with the AES-GCM it encrypts with (generic
# code: TCG's CPU has no AES-NI or PCLMUL), in load order, and a CA with certificates for
# the guest's primary "kp", replica "kr" and an expired one for "kr2".
mkdir -p "$OUT/extra/modules"
n=0
for mod in gf128mul ghash-generic ctr gcm tls; do
	n=$((n + 1))
	ko=$(modinfo -k "$KVER" -n "$mod" 2>/dev/null) || { echo "note: no module $mod for $KVER"; continue; }
	dst=$OUT/extra/modules/$(printf '%02d' "$n")-$mod.ko
	case "$ko" in
	*.ko) cp "$ko" "$dst" ;;
	*.ko.xz) xz -dc "$ko" >"$dst" ;;
	*.ko.zst) zstd -qdc "$ko" >"$dst" ;;
	esac
done
pki() {
	local dir=$OUT/extra
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$OUT/ca.key" -out "$dir/ca.pem" -days 30 -subj "/CN=guest-ca" 2>/dev/null
	for spec in kp:kp:30 kr:kr:30 kr2-expired:kr2:-1; do
		IFS=: read -r file cn days <<<"$spec"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$dir/$file.key" -out "$OUT/$file.csr" -subj "/CN=$cn" 2>/dev/null
		openssl x509 -req -in "$OUT/$file.csr" -CA "$dir/ca.pem" -CAkey "$OUT/ca.key" \
			-CAcreateserial -out "$dir/$file.pem" -days "$days" 2>/dev/null
	done
}
pki
cp "$OUT/old-src/walship.ko" "$OUT/extra/walship-old.ko"
# The replica acknowledges the fourth segment (flush position at its end, 5 MiB), then,
# pushed while the replica publishes, the fifth (6 MiB).
# The guest's standby is PostgreSQL's pg_receivewal (the guest says so when it is missing).
PG_RECEIVEWAL=${PG_BIN:-/usr/lib/postgresql/15/bin}/pg_receivewal
[[ -x "$PG_RECEIVEWAL" ]] || PG_RECEIVEWAL=
"$ROOT/test/kernel/build-initramfs.sh" "$OUT/initramfs.cpio.gz" "$SRC/walship.ko" \
	"$BUILD/walshipd" "$BUILD/walship" "$OUT/nlcheck" "$OUT/wal" "$VERSION" "0/500000 0/600000" \
	"$OUT/extra" "$PG_RECEIVEWAL"

echo "== booting $KVER under QEMU (TCG)"
start=$SECONDS
# One host thread for both emulated CPUs (thread=single): with a thread per CPU (MTTCG,
# the default), both walshipd, one attaching its BPF probes (the kernel patching its
# syscall tracepoint's jump with int3) while the other made system calls, spun in
# syscall_trace_enter() for good (soft lockups on both CPUs, 2 runs of 3 at 65998cd).
# Single-threaded, it never did in 6 runs, and the guest runs in 50 s, not 120.
# loglevel=5, not quiet: a kernel report comes with its registers and stack.
timeout -k 10 "$QEMU_TIMEOUT" qemu-system-x86_64 -accel tcg,thread=single -m 1024 -smp 2 -nographic -nic none \
	-no-reboot -kernel "/boot/vmlinuz-$KVER" -initrd "$OUT/initramfs.cpio.gz" \
	-append "console=ttyS0 panic=-1 noapic loglevel=5 rdinit=/init" </dev/null \
	>"$OUT/console.log" 2>&1 || true
echo "QEMU ran $((SECONDS - start)) s; console in $OUT/console.log"
grep -E '^(GUEST|RESULT)' "$OUT/console.log" | tr -d '\r' || true

result=$(tr -d '\r' <"$OUT/console.log" | sed -n 's/^RESULT: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
if [[ -z "$result" ]]; then
	# The guest's first kernel report (a soft lockup or an RCU stall under a busy host, a
	# BUG), with the stack it dumps: the tail below is often only its repetitions.
	tr -d '\r' <"$OUT/console.log" | grep -v '^GUEST' |
		grep -m 1 -A 40 -E 'soft lockup|detected stalls|BUG:|Oops|Kernel panic' || true
	echo "---- the end of the console"
	tail -n 40 "$OUT/console.log"
	echo "SUBTESTS: 0 passed, 1 failed"
	echo "FAIL: the guest did not report a result (panic or timeout)"
	exit 1
fi
read -r passed failed <<<"$result"
if tr -d '\r' <"$OUT/console.log" | grep -v '^GUEST' | grep -E 'Kernel panic|BUG:|Oops'; then
	failed=$((failed + 1))
fi
# The W=1 build counts as one more assertion.
echo "SUBTESTS: $((passed + 1)) passed, $failed failed"
((failed == 0))
