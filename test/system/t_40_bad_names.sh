#!/bin/bash
# Only WAL file names are accepted: push and fetch refuse anything else (path tricks, other
# suffixes, lower-case hex, wrong lengths) with a non-zero exit and a message, and nothing
# reaches the archive or the destination.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
walship_daemons_up

BAD_NAMES=(
	foo
	000000010000000000000001.gz
	00000001000000000000000a
	0000000100000000000000001
	00000001000000000000001
	000000010000000000000001.partial.gz
	00000001.history.bak
	.history
	000000010000000000000001.00000028.backup.gz
)

for name in "${BAD_NAMES[@]}"; do
	f=$SCRATCH/$name
	head -c 16384 /dev/zero >"$f"
	chown postgres:postgres "$f"
	assert_fails "push $name" walship_push_as_postgres "$PCONF" "$f"
	assert_file_absent "$RARCHIVE/$name"
	# Even a file placed in the archive by hand is not served under a bad name.
	cp "$f" "$RARCHIVE/$name"
	assert_fails "fetch $name" walship_fetch_as_postgres "$RCONF" "$name" "$SCRATCH/dest"
	assert_file_absent "$SCRATCH/dest"
	rm -f "$RARCHIVE/$name"
done

log "path tricks"
mkdir -p "$SCRATCH/etc"
cp /etc/passwd "$SCRATCH/etc/passwd"
chown -R postgres:postgres "$SCRATCH/etc"
# shellcheck disable=SC2016  # expanded by the inner bash
assert_fails "push ../etc/passwd" \
	bash -c 'cd "$1/etc" && runuser -u postgres -- "$2" push -c "$3" ../etc/passwd' \
	_ "$SCRATCH" "$WALSHIP" "$PCONF"
for name in ../etc/passwd /etc/passwd ../000000010000000000000001 \
	sub/000000010000000000000001 "" "000000010000000000000001/"; do
	assert_fails "fetch '$name'" walship_fetch_as_postgres "$RCONF" "$name" "$SCRATCH/dest"
	assert_file_absent "$SCRATCH/dest"
done
assert_eq "" "$(find "$RARCHIVE" -name passwd)" "passwd files in the archive"
log "PASS"
