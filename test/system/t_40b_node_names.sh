#!/bin/bash
# Issue 11, defect 6: one node-name rule, refused at the door (common/node_name.h).  A node
# name starting with "." was accepted by the config and by HELLO and registered, but the
# spool lists replicas without dot-names, so nothing pushed while such a replica was away
# was held for it; "." and ".." were silently never registered.
# - node_name = .r2 (and "." and "..") in the config: refused, naming file and line;
# - an hba_file rule naming .r2: refused, naming file and line;
# - a replica announcing .r2, "." or ".." in HELLO: ERROR NAME, logged by the primary,
#   never registered (no spool_dir/replicas/ entry), the real replica undisturbed;
# - `walship replica drop .r2`: refused as not a replica name.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

FAKE=$WS_ROOT/build/helpers/fake_peer
ws_setup
[[ -x "$FAKE" ]] || skip "$FAKE not built: run make"
walship_daemons_up
PLOG=$TEST_DIR/ws-primary.log
SPOOL=$(conf_get "$PCONF" spool_dir)

# check_refused WHAT PATTERN CONF: `walshipd -c CONF --check` fails, saying PATTERN.
check_refused() {
	local what=$1 pattern=$2 conf=$3
	assert_fails "$what" "$WALSHIPD" -c "$conf" --check
	grep -qF -- "$pattern" "$TEST_DIR/last.out" ||
		fail "$what: the message does not say '$pattern': $(cat "$TEST_DIR/last.out")"
}

for name in .r2 . ..; do
	conf=$TEST_DIR/bad-name.conf
	printf 'role = primary\n# a dot-name\nnode_name = %s\nspool_dir = %s\n' "$name" \
		"$TEST_DIR/bad-spool" >"$conf"
	check_refused "node_name = $name in the config" \
		"invalid value for parameter \"node_name\": \"$name\" in file \"$conf\" line 3" \
		"$conf"
	grep -qF 'not starting with "."' "$TEST_DIR/last.out" ||
		fail "the refusal of node_name = $name does not say the rule"
done

log "an hba_file rule naming a dot-name"
HBA=$TEST_DIR/hba.conf
printf '# TYPE ROLE NODE_NAME CERT_NAME ADDRESS\nhost replica ws-r1,.r2 all all\n' >"$HBA"
mkdir -p "$TEST_DIR/ws-hba"
conf=$TEST_DIR/ws-hba/walship.conf
write_primary_conf "$conf" "$TEST_DIR/ws-hba" "$NS_P" "hba_file=$HBA" \
	"listen=$ADDR_P:$((WALSHIP_PORT + 10))"
# The rules are read as the primary starts: it must refuse to.
assert_fails "a primary with hba_file naming .r2" in_ns "$NS_P" timeout 10 "$WALSHIPD" -c "$conf"
grep -qF "invalid node name \".r2\"" "$TEST_DIR/last.out" &&
	grep -qF "$HBA" "$TEST_DIR/last.out" && grep -qF "line 2" "$TEST_DIR/last.out" ||
	fail "the hba_file refusal does not name the name, file and line: $(cat "$TEST_DIR/last.out")"

# fake NAME: a fake replica announcing NAME, run from the replica's host; it must be
# answered ERROR NAME.
fake() {
	local name=$1 out=$TEST_DIR/fake.out rc=0
	in_ns "$NS_R1" timeout 30 "$FAKE" --connect "$ADDR_P:$WALSHIP_PORT" --name "$name" \
		--timeout 10 hello-replica have expect-error NAME >"$out" 2>&1 || rc=$?
	sed 's/^/    | /' "$out"
	((rc == 0)) || fail "a replica named '$name' was not answered ERROR NAME (exit $rc)"
}
for name in .r2 . ..; do
	log "a replica announcing '$name' is answered ERROR NAME"
	fake "$name"
done
assert_eq 3 "$(grep -c 'refusing replica connection from .*invalid node name' "$PLOG")" \
	"refusals logged by the primary"
if grep -q 'replica "\.' "$PLOG"; then
	fail "the primary took a dot-name for a replica: $(grep 'replica "\.' "$PLOG")"
fi
assert_eq 1 "$(status_counter "$PCONF" registered_replicas)" "registered replicas"
assert_eq "ws-r1" "$(ls -A "$SPOOL/replicas")" "entries of spool_dir/replicas"
peers_streaming "$PCONF" || fail "the real replica lost its connection"

log "walship replica drop refuses a dot-name"
assert_fails "replica drop .r2" "$WALSHIP" replica drop -c "$PCONF" .r2
grep -qF '".r2" is not a replica name' "$TEST_DIR/last.out" ||
	fail "replica drop .r2: $(cat "$TEST_DIR/last.out")"
log "PASS"
