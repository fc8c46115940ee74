#!/bin/bash
# Install the Debian packages needed to build walship and run its tests.
#
# Idempotent: asks dpkg which packages are missing and installs only those
# (apt-get update + install --no-install-recommends).  Prints nothing when all are there.
# Must run as root (it does in CI and on the appliance build hosts).
#
# PostgreSQL: Debian's postgresql-common creates and starts a cluster "main" on port 5432
# when postgresql-15 is first installed.  The tests never use it (they run their own data
# directories with pg_ctl from /usr/lib/postgresql/15/bin, inside network namespaces), so
# on a machine where postgresql-common is not installed yet we ask it not to create that
# cluster at all.  An existing cluster is left alone.
set -euo pipefail

# Build: compiler, libraries the daemon links or will link (io_uring, TLS, netlink, BPF,
# libpq for the streaming source, ISA-L for CRC-32C); PostgreSQL's server headers for the archive module
# (pgmod/, built only when they are there).
# Test: cmocka for unit tests, PostgreSQL 15 for system tests, iproute2 for namespaces,
# procps/psmisc/util-linux for process handling (pkill -P, fuser, runuser), jq for
# `walship status --json`, bc for arithmetic in the bench, pgbackrest and gnuplot-nox for
# `make bench` (a contender; its plots), iputils-ping for the harness,
# libcap2-bin for capsh (t_86 runs walshipd without the BPF capabilities); attr for getfattr
# (t_34 waits for a partial file's durable-length record); iptables (t_30b drops a
# replica's acknowledgements); strace (t_34d delays the replica's fsync system calls);
# libclang-rt-14-dev
# for clang's libFuzzer and sanitizer runtimes (test/fuzz/, t_95).
# Docs: groff-base and man-db render the man pages (t_92 fails on any groff warning);
# python3-prometheus-client parses a real /metrics (t_92b, the Grafana dashboard's check).
# Kernel module (test/system/t_84_kmod_qemu.sh): Debian's cloud kernel and its headers (the
# module is built against them and booted under QEMU with TCG), busybox-static and cpio
# for the guest's initramfs, kmod for modinfo, dkms for the packaging check.
# Packages (`make deb`, t_91c): debhelper and dh-dkms build them, lintian checks them;
# libsystemd-dev for sd_notify (Type=notify units).
PACKAGES=(
	build-essential
	pkg-config
	git
	liburing-dev
	libisal-dev
	libcmocka-dev
	libssl-dev
	libpq-dev
	libsystemd-dev
	postgresql-server-dev-15
	libnl-genl-3-dev
	libbpf-dev
	bpftool
	libelf-dev
	zlib1g-dev
	clang
	libclang-rt-14-dev
	clang-format
	postgresql-15
	postgresql-client-15
	postgresql-contrib
	iproute2
	iputils-ping
	python3
	python3-prometheus-client
	groff-base
	man-db
	procps
	psmisc
	util-linux
	libcap2-bin
	attr
	iptables
	strace
	e2fsprogs
	jq
	socat
	bc
	pgbackrest
	gnuplot-nox
	curl
	linux-headers-cloud-amd64
	linux-image-cloud-amd64
	qemu-system-x86
	busybox-static
	cpio
	kmod
	dkms
	debhelper
	dh-dkms
	lintian
)

# Print the names of the packages in "$@" that dpkg does not list as installed.  One
# dpkg-query for all of them: every make check, make deb and make demo starts here, and a
# query per package cost a second or more of CPU on a loaded machine.
missing_packages() {
	local -A installed=()
	local pkg status
	while IFS=' ' read -r pkg status; do
		[[ "$status" == "install ok installed" ]] && installed[${pkg%%:*}]=1
	done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
	for pkg in "$@"; do
		[[ -n "${installed[$pkg]:-}" ]] || printf '%s\n' "$pkg"
	done
}

# Keep postgresql-common from creating (and starting) the default "main" cluster, but only
# when postgresql-common is not installed yet: an existing configuration is not ours.
suppress_default_cluster() {
	local conf=/etc/postgresql-common/createcluster.conf
	if [[ -n "$(missing_packages postgresql-common)" && ! -e "$conf" ]]; then
		mkdir -p "$(dirname "$conf")"
		printf '%s\n' "# written by walship scripts/install-deps.sh: tests use their own clusters" \
			"create_main_cluster = false" >"$conf"
	fi
}

main() {
	local missing
	mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	if ((EUID != 0)); then
		echo "install-deps: missing packages: ${missing[*]}" >&2
		echo "install-deps: run as root to install them" >&2
		return 1
	fi
	echo "install-deps: installing ${missing[*]}"
	suppress_default_cluster
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

main "$@"
