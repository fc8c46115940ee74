#!/bin/bash
# Build the QEMU guest's initramfs for test/system/t_84_kmod_qemu.sh:
#
#   build-initramfs.sh OUT.cpio.gz KO WALSHIPD WALSHIP NLCHECK WALDIR VERSION "FLUSH_LSN LATE_FLUSH_LSN" [EXTRA [PROGS]]
#
# busybox (static) with its applets, the module, the programs with every shared library
# ldd names (plus jq for JSON, and the space-separated PROGS, e.g. pg_receivewal, in /bin), the WAL segments of WALDIR under /wal, the files of the
# directory EXTRA (certificates, the kernel's tls.ko) under /extra, and
# test/kernel/guest-init.sh as /init.
set -euo pipefail
out=$1 ko=$2 walshipd=$3 walship=$4 nlcheck=$5 waldir=$6 version=$7 flush_lsn=$8 extra=${9:-}
read -r -a progs <<<"${10:-}"
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# Few processes: each costs milliseconds of CPU on a virtual machine, and a link or copy
# per applet and library started a thousand of them.
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,wal,lib64,etc}
cp /bin/busybox "$root/bin/busybox"
# Every applet as a link to /bin/busybox, in the folder busybox files it under.
chroot "$root" /bin/busybox --install -s
jq=$(command -v jq)
cp "$ko" "$root/walship.ko"
cp "$walshipd" "$walship" "$jq" "${progs[@]}" "$root/bin/"
cp "$nlcheck" "$root/nlcheck"
# Shared libraries, at the paths the dynamic linker looks for them.
mapfile -t libs < <(ldd "$walshipd" "$walship" "$nlcheck" "$jq" "${progs[@]}" |
	grep -o '/[^ ]*' | grep -v ':$' | sort -u)
cp -L --parents "${libs[@]}" "$root/"
cp "$waldir"/* "$root/wal/"
if [[ -n "$extra" ]]; then
	mkdir -p "$root/extra"
	cp -r "$extra"/* "$root/extra/"
fi
echo "$version" >"$root/version.txt"
echo "$flush_lsn" >"$root/expected_flush_lsn.txt"
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
cp "$here/guest-init.sh" "$root/init"
chmod 0755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
