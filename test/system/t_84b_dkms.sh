#!/bin/bash
# kmod/dkms.conf exercised by the real dkms (issue 4): `make -C kmod dkms-source` into a
# scratch tree, then `dkms add`, `dkms build -k KVER` and `dkms install -k KVER` for
# Debian's cloud kernel whose headers are installed, and `dkms remove` at the end.
#
# Nothing outside build/dkms-test is touched: dkms runs with its source tree
# (--sourcetree), its own tree (--dkmstree) and the module tree (--installtree) under
# build/dkms-test, without depmod, and signs with a scratch key (mok_signing_key and
# mok_certificate from the environment) instead of creating /var/lib/dkms/mok.key.  The
# host's /lib/modules is only read, through the scratch tree's KVER/build link to the
# headers.  Skips (77) without dkms or the headers.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build
OUT=$BUILD/dkms-test

KVER=$(ls /usr/src | sed -n 's/^linux-headers-\(.*-cloud-amd64\)$/\1/p' | sort -V | tail -n 1)
if [[ -z "$KVER" ]] || ! command -v dkms >/dev/null; then
	echo "SKIP: dkms or linux-headers-cloud-amd64 missing"
	exit 77
fi
VERSION=$("$BUILD/walshipd" --version | awk '{print $2}')

rm -rf "$OUT"
mkdir -p "$OUT/tree" "$OUT/lib-modules/$KVER"
ln -s "/usr/src/linux-headers-$KVER" "$OUT/lib-modules/$KVER/build"
make -s -C "$ROOT/kmod" dkms-source DESTDIR="$OUT/src" WALSHIP_VERSION="$VERSION"
# The version dkms.conf declares must be the one dkms-source installs under.
declared=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$OUT/src/usr/src/walship-$VERSION/dkms.conf")
if [[ "$declared" != "$VERSION" ]]; then
	echo "FAIL: kmod/dkms.conf declares PACKAGE_VERSION \"$declared\", walshipd is $VERSION"
	exit 1
fi

failed=0
dkms_run() {
	mok_signing_key=$OUT/mok.key mok_certificate=$OUT/mok.pub \
		dkms "$@" --sourcetree "$OUT/src/usr/src" --dkmstree "$OUT/tree" \
		--installtree "$OUT/lib-modules" --no-depmod >>"$OUT/dkms.log" 2>&1
}
step() {
	local desc=$1
	shift
	if "$@"; then
		echo "PASS: $desc"
	else
		echo "FAIL: $desc"
		tail -n 30 "$OUT/dkms.log"
		failed=$((failed + 1))
	fi
}
cleanup() {
	dkms_run remove "walship/$VERSION" --all || true
}
trap cleanup EXIT

start=$SECONDS
step "dkms add walship/$VERSION" dkms_run add "walship/$VERSION"
step "dkms build -k $KVER" dkms_run build "walship/$VERSION" -k "$KVER"
ko=$(find "$OUT/tree/walship/$VERSION/$KVER" -name walship.ko 2>/dev/null | head -n 1)
step "dkms build produced walship.ko" test -n "$ko"
if [[ -n "$ko" ]]; then
	step "walship.ko is for $KVER" \
		grep -q "vermagic=$KVER " <(modinfo -F vermagic "$ko" | sed "s/^/vermagic=/")
	step "walship.ko has version $VERSION" test "$(modinfo -F version "$ko")" = "$VERSION"
fi
step "dkms install -k $KVER into the scratch module tree" \
	dkms_run install "walship/$VERSION" -k "$KVER"
step "walship.ko installed under updates/dkms" \
	test -f "$OUT/lib-modules/$KVER/updates/dkms/walship.ko"
step "dkms status shows it installed" \
	grep -q "walship/$VERSION, $KVER, .*: installed" <(
		dkms status --dkmstree "$OUT/tree" --sourcetree "$OUT/src/usr/src" \
			--installtree "$OUT/lib-modules" 2>&1
	)
trap - EXIT
step "dkms remove --all" dkms_run remove "walship/$VERSION" --all
step "nothing left in the scratch trees" \
	test -z "$(find "$OUT/tree" "$OUT/lib-modules/$KVER" -name 'walship.ko*')"
step "nothing left in the host's dkms tree" test ! -e /var/lib/dkms/walship
echo "dkms add, build, install and remove took $((SECONDS - start)) s"
((failed == 0))
