#!/bin/bash
# The systemd units (systemd/): `systemd-analyze verify` finds no error in walshipd.service
# nor in an instance of walshipd@.service, and `systemd-analyze security --offline=true`
# (no running systemd needed) rates each at most MAX_EXPOSURE; the score is printed.
# ExecStart points at build/walshipd here (verify checks that the command exists); the
# installed units are verified as installed by t_91c_deb.sh.  Man pages named in
# Documentation= are not looked up (--man=no): they come with the package.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WALSHIPD=${WALSHIPD:-$ROOT/build/walshipd}
# systemd-analyze's exposure scale is 0.0 (locked down) to 10.0; --threshold takes tenths.
MAX_EXPOSURE=30

command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not found"; exit 77; }
[[ -x "$WALSHIPD" ]] || { echo "SKIP: $WALSHIPD not built: run make"; exit 77; }

dir=$(mktemp -d /tmp/walship-t91b.XXXXXX)
trap 'rm -rf "$dir"' EXIT
for unit in walshipd.service walshipd@.service; do
	sed "s|/usr/sbin/walshipd|$WALSHIPD|" "$ROOT/systemd/$unit" >"$dir/$unit"
done

failed=0
for unit in walshipd.service walshipd@t91b.service; do
	file=$dir/${unit/@t91b/@}
	out=$(systemd-analyze verify --man=no "$file" 2>&1) || {
		echo "FAIL: systemd-analyze verify $unit: $out"
		failed=1
		continue
	}
	if [[ -n "$out" ]]; then
		echo "FAIL: systemd-analyze verify $unit says: $out"
		failed=1
	fi
	rc=0
	out=$(systemd-analyze security --offline=true --threshold=$MAX_EXPOSURE --no-pager \
		"$file" 2>&1) || rc=$?
	score=$(grep 'Overall exposure level' <<<"$out" || true)
	echo "$unit: ${score:-no score}"
	if ((rc != 0)) || [[ -z "$score" ]]; then
		echo "FAIL: systemd-analyze security $unit above $MAX_EXPOSURE/10 (exit $rc)"
		grep '✗' <<<"$out" || true
		failed=1
	fi
done
((failed == 0)) && echo "PASS: units verified"
exit "$failed"
