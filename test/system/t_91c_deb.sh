#!/bin/bash
# The Debian packages (debian/, `make deb`): both build in a scratch copy of the tree and
# lintian reports no error (make deb fails on one); installed on this machine, walship
# puts its programs, units and documents in place (walship linking libc alone, with
# libssl3 in its Depends for walship password), makes the system user walship (in
# group postgres) and its state directory /var/lib/walship 0755 walship:walship (made by
# root, systemd would chown all below it to walship: debian/walship.postinst), its access
# rules 0640 root:walship and walship.conf 0644 (walship push runs as postgres and reads
# it); walshipd starts from
# walshipd.service's ExecStart= line with that configuration filled in, as the unit runs
# it (user walship, its ambient capabilities, LimitMEMLOCK=, its directories), and its
# registered buffers fit the unit's memlock limit; walship-dkms registers the module with
# DKMS, whose build and install through the package's postinst (kmod/dkms.conf) give
# walship.ko of the daemon's version under /lib/modules/KVER/updates/dkms for every kernel
# whose headers are there (Debian's cloud kernel, installed for the QEMU tests).  Purging
# both (dkms remove, through the prerm) leaves no file of
# theirs; the user stays, as Debian policy advises (the test then removes it, and the
# spool walshipd made, to leave the machine as it found it).
#
# The packages are built with DEB_BUILD_OPTIONS=noopt (the compiler at -O0: 11 s of CPU
# less than -O2, a quarter of the build): what this test checks is the packaging, and the
# -O2 build of the same sources is make's own, which every other test runs.
#
# man-db's trigger (the index of manual pages, rebuilt at install and again at purge: 7 s
# of CPU, a tenth of the test) is switched off for the test's length, as
# man-db/auto-update = false does, and switched back on at its end.
#
# Skips when walship is already installed here or the user walship exists (not ours to
# remove).  The build takes 1 to 3 minutes (a full build of the daemon, BPF included).
# test-slots: 2 (dpkg-buildpackage builds with both cores)
# test-timeout: 900 (the package build: 2.5 minutes on a loaded machine, more under make check)
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds dpkg-buildpackage dh dh_dkms lintian setpriv prlimit dkms modinfo
if dpkg-query -W -f='${Status}' walship walship-dkms 2>/dev/null | grep -q 'install ok'; then
	skip "walship is installed on this machine already"
fi
getent passwd walship >/dev/null && skip "user walship exists already"
for path in /etc/walship /var/lib/walship /run/walship /usr/src/walship-*; do
	[[ -e "$path" ]] && skip "$path exists already"
done

UNIT=/lib/systemd/system/walshipd.service
installed=0
MANDB_FLAG=/var/lib/man-db/auto-update
mandb_off=0
purge_all() {
	dpkg --purge walship walship-dkms >/dev/null 2>&1 || true
	rm -rf /var/lib/walship /run/walship
	getent passwd walship >/dev/null && deluser --quiet --system walship >/dev/null 2>&1
	getent group walship >/dev/null && delgroup --quiet --system walship >/dev/null 2>&1
	true
}
# ws_cleanup first: it stops the daemon, which would keep deluser from removing walship.
trap 'rc=$?; set +e; (exit $rc); ws_cleanup; rc=$?; ((installed)) && purge_all; ((mandb_off)) && touch "$MANDB_FLAG"
	exit $rc' EXIT
if [[ -e $MANDB_FLAG ]]; then
	# shellcheck disable=SC2034 # read by the EXIT trap
	mandb_off=1
	rm -f "$MANDB_FLAG"
fi

# WALSHIP_DEB_DIR: packages made by `make deb` already (to rerun the rest quickly).
deb_dir=${WALSHIP_DEB_DIR:-}
if [[ -z "$deb_dir" ]]; then
	log "make deb (scratch copy under the test directory)"
	start=$SECONDS
	DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-noopt} \
		make -s -C "$WS_ROOT" deb BUILD="$TEST_DIR/build" >"$TEST_DIR/deb.out" 2>&1 ||
		fail "make deb failed: $(tail -n 30 "$TEST_DIR/deb.out")"
	log "built in $((SECONDS - start)) s; lintian said:"
	grep -E '^[EWI]: ' "$TEST_DIR/deb.out" || true
	if grep -q '^E: ' "$TEST_DIR/deb.out"; then
		fail "lintian errors"
	fi
	deb_dir=$TEST_DIR/build/deb
fi
deb=$(ls "$deb_dir"/walship_*_amd64.deb)
dkms_deb=$(ls "$deb_dir"/walship-dkms_*_all.deb)

log "install both packages"
installed=1
dpkg -i "$deb" "$dkms_deb" >"$TEST_DIR/dpkg.log" 2>&1 ||
	fail "dpkg -i failed: $(tail -n 20 "$TEST_DIR/dpkg.log")"

for f in /usr/sbin/walshipd /usr/bin/walship; do
	[[ -x "$f" ]] || fail "$f not installed"
done
for f in "$UNIT" /lib/systemd/system/walshipd@.service /usr/share/doc/walship/copyright; do
	[[ -f "$f" ]] || fail "$f not installed"
done
# walship, started per WAL segment, links libc alone (docs/architecture.md, "What each
# binary links"); walship password loads libcrypto, which the package names by hand.
needed=$(readelf -d /usr/bin/walship | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
assert_eq "libc.so.6 " "$needed" "the libraries /usr/bin/walship links"
dpkg-query -W -f='${Depends}' walship | grep -q 'libssl3' ||
	fail "walship's Depends has no libssl3: $(dpkg-query -W -f='${Depends}' walship)"
echo secret | walship password t91c | grep -q '^t91c SCRAM-SHA-256\$4096:' ||
	fail "walship password from the package printed no verifier"
# The access rules for walshipd alone; walship.conf also for walship push and fetch, which
# run as postgres.
assert_eq "640 root walship" "$(stat -c '%a %U %G' /etc/walship/hba.conf)" "hba.conf's mode"
assert_eq "644 root root" "$(stat -c '%a %U %G' /etc/walship/walship.conf)" "walship.conf's mode"
# The unit's StateDirectory=, walship's before walshipd first starts (README's install -d
# of a replica's archive below it then leaves the archive's group alone).
assert_eq "755 walship walship" "$(stat -c '%a %U %G' /var/lib/walship)" "/var/lib/walship's mode"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd walship)
((uid < 1000)) || fail "walship is not a system user (uid $uid)"
assert_eq /var/lib/walship "$home" "walship's home"
[[ "$shell" == */nologin || "$shell" == /bin/false ]] || fail "walship's shell is $shell"
id -nG walship | tr ' ' '\n' | grep -qx postgres || fail "walship is not in group postgres"
[[ -f /usr/src/walship-0.1.0/dkms.conf ]] || fail "walship-dkms: no /usr/src/walship-0.1.0/dkms.conf"
dkms status walship | grep -q '^walship/0.1.0' || fail "DKMS does not know walship: $(dkms status)"
log "DKMS: $(dkms status walship | tr '\n' ' ')"
# kmod/dkms.conf declares the daemon's version, and the package's postinst had DKMS build
# and install the module for every kernel whose headers are here (Debian's cloud kernel,
# for the QEMU tests): walship.ko of that version, for that kernel, under updates/dkms.
version=$(/usr/sbin/walshipd --version | awk '{print $2}')
assert_eq "$version" "$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' /usr/src/walship-0.1.0/dkms.conf)" \
	"the version kmod/dkms.conf declares"
built=0
for kbuild in /lib/modules/*/build; do
	[[ -e "$kbuild/Makefile" ]] || continue
	kver=${kbuild#/lib/modules/}
	kver=${kver%/build}
	dkms status walship | grep -q "^walship/$version, $kver, .*: installed" ||
		fail "DKMS did not install walship for $kver: $(dkms status walship)"
	ko=$(find "/lib/modules/$kver/updates/dkms" -name 'walship.ko*' | head -n 1)
	[[ -n "$ko" ]] || fail "no walship.ko under /lib/modules/$kver/updates/dkms"
	assert_eq "$kver" "$(modinfo -F vermagic "$ko" | awk '{print $1}')" "the kernel $ko is for"
	assert_eq "$version" "$(modinfo -F version "$ko")" "$ko's version"
	log "ok: DKMS built and installed $ko"
	built=$((built + 1))
done
((built > 0)) || log "note: no kernel headers here, DKMS registered the module without building it"
systemd-analyze verify --man=no "$UNIT" || fail "systemd-analyze verify $UNIT"

log "walshipd from the unit's ExecStart, with the example configuration filled in"
net_create 0
conf=/etc/walship/walship.conf
sed -i -e 's/^#role = primary/role = primary/' -e 's/^#node_name = .*/node_name = t91c/' \
	-e "s/^#listen = .*/listen = $ADDR_P:$WALSHIP_PORT/" \
	-e 's/^#socket_group = /socket_group = /' -e 's/^#socket_permissions = /socket_permissions = /' \
	"$conf"
echo "tls = off" >>"$conf"
grep -q '^role = primary' "$conf" || fail "the example config has no '#role = primary' line"
# What the unit gives the daemon, read from the unit itself.
unit_value() {
	sed -n "s/^$1=//p" "$UNIT" | tail -n 1
}
read -ra exec_start <<<"$(unit_value ExecStart)"
caps=$(unit_value AmbientCapabilities | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
memlock=$(unit_value LimitMEMLOCK)
install -d -o walship -g walship -m "$(unit_value RuntimeDirectoryMode)" /run/walship
# (/var/lib/walship is the package's already, checked above: as systemd, set its mode again)
install -d -o walship -g walship -m "$(unit_value StateDirectoryMode)" /var/lib/walship
# Raising RLIMIT_MEMLOCK needs CAP_SYS_RESOURCE, which a test machine in a container may
# lack: then the daemon runs with the limit it has, and must go on with copying I/O.
memlock_wrap=(prlimit --memlock="$(numfmt --from=iec "$memlock")" --)
if ! "${memlock_wrap[@]}" true 2>/dev/null; then
	log "note: cannot raise RLIMIT_MEMLOCK here (hard limit $(ulimit -Hl) kB): LimitMEMLOCK not exercised"
	memlock_wrap=()
fi
log "as walship, capabilities $caps, memlock ${memlock_wrap[*]:+$memlock}: ${exec_start[*]}"
DLOG=$TEST_DIR/walshipd.log
bg_start "$DLOG" ip netns exec "$NS_P" "${memlock_wrap[@]}" \
	setpriv --reuid=walship --regid=walship --init-groups --inh-caps="$caps" \
	--ambient-caps="$caps" --bounding-set=-all,"$caps" --no-new-privs -- "${exec_start[@]}"
dpid=$BG_PID
answers_or_exited() {
	! pid_alive "$dpid" || runuser -u postgres -- walship status -c "$conf" >/dev/null 2>&1
}
wait_for 30 "walshipd answering walship status run as postgres" answers_or_exited
pid_alive "$dpid" || fail "walshipd exited: $(tail -n 20 "$DLOG")"
grep 'starting as primary' "$DLOG" || fail "no start line in the log: $(head -n 20 "$DLOG")"
if ((${#memlock_wrap[@]})); then
	grep -q 'buffers of [0-9]* kB, registered)' "$DLOG" ||
		fail "the registered buffers did not fit LimitMEMLOCK=$memlock"
fi
grep -E 'BPF probes (on|are off)' "$DLOG" || true
[[ -S /run/walship/walshipd.sock ]] || fail "no control socket in /run/walship"
assert_eq "walship postgres" "$(stat -c '%U %G' /run/walship/walshipd.sock)" "the socket's owner"
kill -TERM "$dpid"
wait_for 10 "walshipd to stop" bash -c "! kill -0 $dpid"

log "purge both: nothing of theirs stays"
dpkg --purge walship walship-dkms >>"$TEST_DIR/dpkg.log" 2>&1 ||
	fail "dpkg --purge failed: $(tail -n 20 "$TEST_DIR/dpkg.log")"
for path in /usr/sbin/walshipd /usr/bin/walship "$UNIT" /lib/systemd/system/walshipd@.service \
	/etc/walship /usr/share/doc/walship /usr/src/walship-0.1.0 /var/lib/dkms/walship /run/walship; do
	[[ -e "$path" ]] && fail "$path is still there after purge"
done
dkms status walship | grep -q . && fail "DKMS still knows walship: $(dkms status walship)"
find /lib/modules -path '*/updates/dkms/walship.ko*' | grep -q . && fail "walship.ko left in /lib/modules"
# What walshipd made (its spool) is the user's data: kept, as Debian policy says.
left=$(find /var/lib/walship -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)
log "kept after purge: user walship (policy), /var/lib/walship: ${left:-nothing}"
getent passwd walship >/dev/null || fail "the walship user was removed (policy keeps it)"
purge_all
# shellcheck disable=SC2034 # read by the EXIT trap
installed=0
log "PASS"
