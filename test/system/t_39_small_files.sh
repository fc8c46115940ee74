#!/bin/bash
# Issue 3, fault injection: many small files and concurrent pushes.  T39_FILES text
# files (half timeline .history files, half .backup history files) are pushed 8 at a time
# (xargs -P 8) through a primary with max_queued_pushes = 2, so that some pushes are
# refused as busy; like PostgreSQL, the pushing loop retries those.  Every file must be
# acknowledged, none fail otherwise, and check_invariants finds each one present and
# identical on the replica, every stored file valid.  No PostgreSQL cluster: synthetic
# timeline history files would mislead a standby.
# test-slots: 2 (hundreds of walship push and fetch processes load the machine)
# T39_FILES=N pushes N files (default 200 in make check, where the processes of each push
# and its check, about ten per file, are the test's CPU: 200 files keep eight pushes in
# flight against a queue of two for several seconds; make soak pushes 1000).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds xargs
PRIMARY_CONF_EXTRA=(max_queued_pushes=2)
walship_daemons_up
inv_setup

NFILES=${T39_FILES:-200}
FILES=$TEST_DIR/files
mkdir -p "$FILES"
log "writing $NFILES small files"
for ((i = 0; i < NFILES / 2; i++)); do
	tli=$((0x1000 + i))
	printf -v hname '%08X.history' "$tli"
	printf -v bname '000000010000000000000002.%08X.backup' $((0x28 + i * 8))
	printf '%d\t0/%X\tno recovery target specified\n' $((tli - 1)) $(((i + 3) * 16#1000000)) \
		>"$FILES/$hname"
	printf 'START WAL LOCATION: 0/%X (file 000000010000000000000002)\nLABEL: t_39 %d\n' \
		$((0x2000028 + i * 8)) "$i" >"$FILES/$bname"
done
chown -R postgres:postgres "$FILES"
BUSY_LOG=$TEST_DIR/busy.log
install -m 0664 -o postgres -g postgres /dev/null "$BUSY_LOG"

# push_retry.sh PATH: push PATH through the logging wrapper; retry while the daemon
# refuses it as busy (max_queued_pushes), as PostgreSQL's archiver does; any other
# failure stops xargs (exit 255).
cat >"$TEST_DIR/push_retry.sh" <<-SCRIPT
	#!/bin/sh
	tries=0
	while :; do
		out=\$("$INV_PUSH" "$PCONF" "\$1" 2>&1) && exit 0
		case "\$out" in
		*"too many pushes in progress"*) echo "\$1" >>"$BUSY_LOG" ;;
		*) echo "\$out" >&2; exit 255 ;;
		esac
		tries=\$((tries + 1))
		[ "\$tries" -lt 500 ] || { echo "gave up on \$1 after \$tries busy refusals" >&2; exit 255; }
		sleep 0.02
	done
SCRIPT
chmod 0755 "$TEST_DIR/push_retry.sh"

log "pushing $NFILES files, 8 at a time (max_queued_pushes = 2)"
start=$SECONDS
rc=0
find "$FILES" -type f -print0 |
	runuser -u postgres -- xargs -0 -P 8 -n 1 "$TEST_DIR/push_retry.sh" \
		>"$TEST_DIR/push.log" 2>&1 || rc=$?
((rc == 0)) || { tail -n 20 "$TEST_DIR/push.log"; fail "concurrent pushes failed (xargs exit $rc)"; }
busy=$(wc -l <"$BUSY_LOG")
log "all $NFILES pushes acknowledged in $((SECONDS - start))s; $busy busy refusal(s) retried"
assert_eq "$NFILES" "$(inv_acked_count)" "files acknowledged"
((busy > 0)) || fail "no push was refused as busy: max_queued_pushes was never reached"
ok=$(status_counter "$PCONF" pushes_ok)
((ok >= NFILES)) || fail "the primary counts $ok successful pushes, fewer than $NFILES"
assert_eq "$NFILES" "$(find "$RARCHIVE" -maxdepth 1 -type f ! -name '.*' | wc -l)" \
	"files in the replica archive"
check_invariants -P "$PCONF" -R "$RCONF"
log "PASS"
