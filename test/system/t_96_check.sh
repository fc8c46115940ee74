#!/bin/bash
# t_96: `walship check` (issue 6).  On the usual topology (walship_topology_up: primary
# and standby with walship), the check passes on both hosts; then, on copies of the data
# directories' control and config files (the running clusters are never touched), each
# item is broken on purpose and must be the one item named FAIL, with exit 1:
# wal_level = minimal, archive_mode off, archive_command without walship, with another
# config (also one whose path only starts with this one's: -c CONF.old), or with its
# failure hidden (`|| true`), restore_command without walship, the wrong walship role for
# the host, streaming without max_wal_senders or a replication line in pg_hba.conf (or
# with one that rejects), a config file with an error, an unreachable socket, a relative
# -c that PostgreSQL would take from the data directory, and a cluster whose system
# identifier differs from the one walshipd learnt.  PG_VERSION is data (not run by a
# shell).  The archive module (archive_library = walship_archive) passes on the config's
# socket and fails on another, and on PostgreSQL 16.  A fake walshipd
# (a Python socket, no daemon) answers with a document: a replica's lost WAL (code
# CTL_WARN_LOST) is the one FAIL, naming it, and a replica's pg_listen standby that
# streams is no streaming peer.
# Then the synchronous-standby item: WARN when synchronous_standby_names names the
# primary walshipd and it has no stream source, or its stream is down, or fewer than
# sync_replicas replicas are connected (or walshipd does not answer), PASS when enough
# are, SKIP when it is not named or synchronous_commit is local.
# test-early (40 to 70 s here: started before the shorter tests, which then end the run)
. "$(dirname "$0")/lib.sh"

ws_setup
walship_topology_up 1

# check_out NAME ARGS...: run `walship check ARGS` into $TEST_DIR/check-NAME.out; sets RC.
check_out() {
	local name=$1
	shift
	run_capture "$TEST_DIR/check-$name.out" "$WALSHIP" check -B "$PG_BIN" "$@"
	sed 's/^/    | /' "$TEST_DIR/check-$name.out"
}

# expect_pass NAME ARGS...: the check exits 0 with no FAIL line.
expect_pass() {
	local name=$1
	check_out "$@"
	[[ "$RC" == 0 ]] || fail "walship check ($name): expected exit 0, got $RC"
	! grep -q '^FAIL' "$TEST_DIR/check-$name.out" || fail "walship check ($name): a FAIL line"
	log "ok: walship check passes ($name)"
}

# expect_fail ITEM NAME ARGS...: the check exits 1 and ITEM is the only item that FAILs.
expect_fail() {
	local item=$1 name=$2 out=$TEST_DIR/check-$2.out nfail
	shift
	check_out "$@"
	[[ "$RC" == 1 ]] || fail "walship check ($name): expected exit 1, got $RC"
	grep -q "^FAIL  $item " "$out" || fail "walship check ($name): item \"$item\" not named FAIL"
	nfail=$(grep -c '^FAIL' "$out")
	[[ "$nfail" == 1 ]] || fail "walship check ($name): $nfail FAIL lines, expected only $item"
	grep -A1 "^FAIL  $item " "$out" | grep -q '^      hint: ' ||
		fail "walship check ($name): no hint after the FAIL line"
	log "ok: walship check names \"$item\" ($name)"
}

# fake_pgdata SRC DST: a data directory for walship check only: PG_VERSION, the control
# file and the config files of SRC (and its standby.signal), nothing else.
fake_pgdata() {
	local src=$1 dst=$2
	rm -rf "$dst"
	mkdir -p "$dst/global"
	cp "$src/PG_VERSION" "$src/postgresql.conf" "$src/postgresql.auto.conf" "$src/pg_hba.conf" "$dst/"
	cp "$src/global/pg_control" "$dst/global/"
	[[ ! -e "$src/standby.signal" ]] || cp "$src/standby.signal" "$dst/"
}

# Make sure WAL has gone through, so the replica's walshipd knows the system identifier.
lsn=$(pg_finish_load "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$PG_PORT" "$lsn" 60

log "correct setup: both hosts pass"
expect_pass primary -c "$PCONF" -D "$PDATA"
expect_pass primary-streaming -c "$PCONF" -D "$PDATA" --streaming
grep -q '^PASS  pg_hba.conf replication' "$TEST_DIR/check-primary-streaming.out" ||
	fail "walship check --streaming did not check pg_hba.conf"
expect_pass standby -c "$RCONF" -D "$SDATA"
grep -q '^PASS  system identifier' "$TEST_DIR/check-standby.out" ||
	fail "walship check on the standby did not compare the system identifier"
grep -q '^PASS  restore_command' "$TEST_DIR/check-standby.out" ||
	fail "walship check on the standby did not check restore_command"
# The archive's file system, probed (ext4 here: extended attributes and direct I/O).
grep -q '^PASS  archive_dir xattrs .*cut transfers resume' "$TEST_DIR/check-standby.out" ||
	fail "walship check did not probe the archive's extended attributes"
grep -q '^PASS  archive_dir direct I/O' "$TEST_DIR/check-standby.out" ||
	fail "walship check did not probe the archive's direct I/O"
compgen -G "$RARCHIVE/.walship/check.*" >/dev/null && fail "walship check left its probe file"
expect_pass walship-only -c "$RCONF"

FP=$TEST_DIR/fake-primary
# Debian's layout: the config files outside the data directory, named on the server's
# command line (postmaster.opts, as pg_ctlcluster starts it), with a setting of its own
# (the build before: FAIL, no postgresql.conf in the data directory).
fake_pgdata "$PDATA" "$FP"
mkdir -p "$TEST_DIR/etc-main"
mv "$FP/postgresql.conf" "$FP/pg_hba.conf" "$TEST_DIR/etc-main/"
echo "hba_file = '$TEST_DIR/etc-main/pg_hba.conf'" >>"$TEST_DIR/etc-main/postgresql.conf"
printf '%s "-D" "%s" "-c" "config_file=%s" "-c" "wal_level=minimal"\n' "$PG_BIN/postgres" "$FP" \
	"$TEST_DIR/etc-main/postgresql.conf" >"$FP/postmaster.opts"
expect_fail wal_level debian-layout -c "$PCONF" -D "$FP" --streaming
grep -q 'wal_level = minimal (file ".*postmaster.opts"' "$TEST_DIR/check-debian-layout.out" ||
	fail "walship check did not take wal_level from the command line"
grep -q '^PASS  pg_hba.conf replication' "$TEST_DIR/check-debian-layout.out" ||
	fail "walship check did not read the hba_file the config file names"
sed -i 's/"-c" "wal_level=minimal"//' "$FP/postmaster.opts"
expect_pass debian-layout-ok -c "$PCONF" -D "$FP" --streaming
FS=$TEST_DIR/fake-standby

log "broken: PostgreSQL's user cannot read the walship config"
# The check runs as root and reads it; walship push, run as the data directory's owner,
# would not (the build before: PASS).
grep -q "^PASS  PostgreSQL's access .*user \"postgres\"" "$TEST_DIR/check-primary.out" ||
	fail "walship check did not check PostgreSQL's access on the primary"
mode=$(stat -c %a "$PCONF")
owner=$(stat -c %U:%G "$PCONF")
chown root:root "$PCONF"
chmod 0600 "$PCONF"
expect_fail "PostgreSQL's access" pg-cannot-read-config -c "$PCONF" -D "$PDATA"
chown "$owner" "$PCONF"
chmod "$mode" "$PCONF"
grep -q "cannot read the config" "$TEST_DIR/check-pg-cannot-read-config.out" ||
	fail "walship check did not say what PostgreSQL's user cannot reach"
# ... nor search the socket's folder (a first version took a folder it could not search
# for no socket, and passed). The config copied where it can read it.
cp "$PCONF" "$TEST_DIR/pconf-copy.conf"
chmod 0644 "$TEST_DIR/pconf-copy.conf"
sockdir=$(dirname "$(conf_get "$PCONF" socket)")
sockmode=$(stat -c %a "$sockdir")
chmod 0700 "$sockdir"
check_out pg-cannot-reach-socket -c "$TEST_DIR/pconf-copy.conf" -D "$PDATA"
chmod "$sockmode" "$sockdir"
grep -q "^FAIL  PostgreSQL's access .*cannot connect to the socket" \
	"$TEST_DIR/check-pg-cannot-reach-socket.out" ||
	fail "walship check passed a socket PostgreSQL's user cannot reach"

log "broken: wal_level = minimal"
fake_pgdata "$PDATA" "$FP"
echo "wal_level = minimal" >>"$FP/postgresql.auto.conf"
expect_fail wal_level wal-level-minimal -c "$PCONF" -D "$FP"
grep -q 'wal_level = minimal (file ".*postgresql.auto.conf" line' "$TEST_DIR/check-wal-level-minimal.out" ||
	fail "walship check did not say where wal_level was set"

log "broken: archive_mode off"
fake_pgdata "$PDATA" "$FP"
echo "archive_mode = off" >>"$FP/postgresql.conf"
expect_fail archive_mode archive-mode-off -c "$PCONF" -D "$FP"

log "broken: archive_command without walship"
fake_pgdata "$PDATA" "$FP"
echo "archive_command = 'cp %p /mnt/archive/%f'" >>"$FP/postgresql.conf"
expect_fail archive_command archive-command-cp -c "$PCONF" -D "$FP"

log "broken: archive_command with another walship config, through an include"
fake_pgdata "$PDATA" "$FP"
echo "archive_command = '$WALSHIP push -c /etc/walship/other.conf %p'" >"$FP/extra.conf"
echo "include 'extra.conf'" >>"$FP/postgresql.conf"
expect_fail archive_command archive-command-other-config -c "$PCONF" -D "$FP"

log "broken: archive_command that names another config by a longer path"
# Compared word by word: $PCONF.old is another file, even when it exists.
cp "$PCONF" "$PCONF.old"
fake_pgdata "$PDATA" "$FP"
echo "archive_command = 'exec $WALSHIP push -c $PCONF.old %p'" >>"$FP/postgresql.conf"
expect_fail archive_command archive-command-old-config -c "$PCONF" -D "$FP"
grep -q "calls walship push with -c \"$PCONF.old\"" "$TEST_DIR/check-archive-command-old-config.out" ||
	fail "walship check did not name the other config"

log "archive_command that sets WALSHIP_CONFIG itself"
# The config the command sets for walship push is the one compared, not the check's own
# environment's (the build before: FAIL for this config, PASS for any other whenever
# WALSHIP_CONFIG was set around the check).
fake_pgdata "$PDATA" "$FP"
echo "archive_command = 'WALSHIP_CONFIG=$PCONF $WALSHIP push %p'" >>"$FP/postgresql.conf"
expect_pass archive-command-env-config -c "$PCONF" -D "$FP"
fake_pgdata "$PDATA" "$FP"
echo "archive_command = 'WALSHIP_CONFIG=$PCONF.old $WALSHIP push %p'" >>"$FP/postgresql.conf"
WALSHIP_CONFIG=$PCONF expect_fail archive_command archive-command-env-other -c "$PCONF" -D "$FP"
# A command without -c reads the archiver's WALSHIP_CONFIG, or the default file: the
# check's own environment counts only when it names this config, for no server runs
# here to read the archiver's from (the build before: PASS with any file in it).
fake_pgdata "$PDATA" "$FP"
echo "archive_command = '$WALSHIP push %p'" >>"$FP/postgresql.conf"
WALSHIP_CONFIG=$PCONF.old expect_fail archive_command archive-command-shell-env-other -c "$PCONF" -D "$FP"
WALSHIP_CONFIG=$PCONF expect_pass archive-command-shell-env -c "$PCONF" -D "$FP"
# With the server running, its environment is what counts: the archiver of this one has
# no WALSHIP_CONFIG, so walship push reads the default file, whatever the check's shell
# says (the settings file changed for the check alone, put back at once).
cp "$PDATA/postgresql.auto.conf" "$TEST_DIR/auto.conf.saved"
echo "archive_command = '$WALSHIP push %p'" >>"$PDATA/postgresql.auto.conf"
WALSHIP_CONFIG=$PCONF check_out archive-command-postmaster-env -c "$PCONF" -D "$PDATA"
cp "$TEST_DIR/auto.conf.saved" "$PDATA/postgresql.auto.conf"
grep -q '^FAIL  archive_command .*without -c, so with "/etc/walship/walship.conf"' \
	"$TEST_DIR/check-archive-command-postmaster-env.out" ||
	fail "walship check did not read WALSHIP_CONFIG from the postmaster's environment"

log "broken: archive_command that hides walship push's failure (|| true)"
fake_pgdata "$PDATA" "$FP"
echo "archive_command = '$WALSHIP push -c $PCONF %p || true'" >>"$FP/postgresql.conf"
expect_fail archive_command archive-command-or-true -c "$PCONF" -D "$FP"
grep -q 'joins walship push to another command with `||`' "$TEST_DIR/check-archive-command-or-true.out" ||
	fail "walship check did not say why || true fails"

log "the archive module: archive_library = walship_archive on the config's socket"
psock=$(conf_get "$PCONF" socket)
fake_pgdata "$PDATA" "$FP"
printf "%s\n" "archive_command = ''" "archive_library = 'walship_archive'" \
	"walship.socket = '$psock'" >>"$FP/postgresql.conf"
expect_pass archive-library -c "$PCONF" -D "$FP"
grep -q "^PASS  archive_library .*walship.socket = '$psock'" "$TEST_DIR/check-archive-library.out" ||
	fail "walship check did not pass archive_library"
# A module that gives up before walshipd answers (walship.timeout under push_timeout and
# the client's grace): a WARN.
echo "walship.timeout = '10s'" >>"$FP/postgresql.conf"
expect_pass archive-library-timeout -c "$PCONF" -D "$FP"
grep -q "^WARN  walship.timeout .*shorter than push_timeout" \
	"$TEST_DIR/check-archive-library-timeout.out" ||
	fail "walship check did not warn of a walship.timeout under push_timeout"
# Another socket than the config's: the module would push to another walshipd.
echo "walship.socket = '$TEST_DIR/other.sock'" >>"$FP/postgresql.conf"
expect_fail archive_library archive-library-other-socket -c "$PCONF" -D "$FP"
# Both set: PostgreSQL 15 archives with the library, 16 and later refuse to archive.
fake_pgdata "$PDATA" "$FP"
printf "%s\n" "archive_library = '\$libdir/walship_archive.so'" "walship.socket = '$psock'" \
	>>"$FP/postgresql.conf"
if (($(cat "$FP/PG_VERSION") >= 16)); then
	expect_fail archive_library archive-library-and-command -c "$PCONF" -D "$FP"
else
	expect_pass archive-library-and-command -c "$PCONF" -D "$FP"
fi

log "broken: restore_command without walship"
fake_pgdata "$SDATA" "$FS"
echo "restore_command = 'cp /mnt/archive/%f %p'" >>"$FS/postgresql.auto.conf"
expect_fail restore_command restore-command-cp -c "$RCONF" -D "$FS"
# walship fetch in the background (the shell exits before the file is there) or after
# `&&`: refused; a fallback after it is fine (the build before: PASS for all three).
fake_pgdata "$SDATA" "$FS"
echo "restore_command = '$WALSHIP fetch -c $RCONF %f %p &'" >>"$FS/postgresql.auto.conf"
expect_fail restore_command restore-command-background -c "$RCONF" -D "$FS"
grep -q 'joins walship fetch to another command with `&`' \
	"$TEST_DIR/check-restore-command-background.out" || fail "walship check did not say why & fails"
fake_pgdata "$SDATA" "$FS"
echo "restore_command = 'test -d /nonexistent && $WALSHIP fetch -c $RCONF %f %p'" >>"$FS/postgresql.auto.conf"
expect_fail restore_command restore-command-and -c "$RCONF" -D "$FS"
fake_pgdata "$SDATA" "$FS"
echo "restore_command = '$WALSHIP fetch -c $RCONF %f %p || cp /mnt/archive/%f %p'" >>"$FS/postgresql.auto.conf"
check_out restore-command-fallback -c "$RCONF" -D "$FS"
grep -q '^PASS  restore_command' "$TEST_DIR/check-restore-command-fallback.out" ||
	fail "walship check refused a fallback after walship fetch"

log "broken: wrong walship role for the host"
# A standby whose restore_command names the primary's config, checked with that config,
# so that only the role is wrong.
fake_pgdata "$SDATA" "$FS"
echo "restore_command = '$WALSHIP fetch -c $PCONF %f %p'" >>"$FS/postgresql.auto.conf"
expect_fail "walship role" wrong-role -c "$PCONF" -D "$FS"

log "broken: streaming without max_wal_senders, then without a replication line"
fake_pgdata "$PDATA" "$FP"
echo "max_wal_senders = 0" >>"$FP/postgresql.conf"
expect_fail max_wal_senders no-wal-senders -c "$PCONF" -D "$FP" --streaming
fake_pgdata "$PDATA" "$FP"
sed -i '/replication/d' "$FP/pg_hba.conf"
expect_fail "pg_hba.conf replication" no-replication-line -c "$PCONF" -D "$FP" --streaming
# A replication line that rejects, or one naming a database called "replication" (quoted,
# the keyword is a name), admits no replication connection (the build before: PASS).
printf '%s\n' 'host replication all all reject' 'host "replication" all all trust' \
	>>"$FP/pg_hba.conf"
expect_fail "pg_hba.conf replication" replication-line-reject -c "$PCONF" -D "$FP" --streaming
# PostgreSQL takes the first line that matches: one rejecting every replication
# connection over TCP shuts out the lines after it (the build before: PASS); one for the
# UNIX socket only does not.
fake_pgdata "$PDATA" "$FP"
sed -i '/replication/d' "$FP/pg_hba.conf"
printf '%s\n' 'host replication all 0.0.0.0/0 reject' \
	'host replication walship 127.0.0.1 255.255.255.255 trust' >>"$FP/pg_hba.conf"
expect_fail "pg_hba.conf replication" replication-shut-out -c "$PCONF" -D "$FP" --streaming
fake_pgdata "$PDATA" "$FP"
sed -i '/replication/d' "$FP/pg_hba.conf"
printf '%s\n' 'local replication all reject' \
	'host replication walship 127.0.0.1 255.255.255.255 trust' >>"$FP/pg_hba.conf"
"$WALSHIP" check -c "$PCONF" -D "$FP" --streaming >"$TEST_DIR/check-local-reject.out" 2>&1 || true
grep -q '^PASS  pg_hba.conf replication' "$TEST_DIR/check-local-reject.out" ||
	fail "a reject for the UNIX socket shut out a TCP replication line"
# 0.0.0.0/0 is IPv4's alone: a line for IPv6 after it still lets walshipd in.
fake_pgdata "$PDATA" "$FP"
sed -i '/replication/d' "$FP/pg_hba.conf"
printf '%s\n' 'host replication all 0.0.0.0/0 reject' \
	'host replication walship ::1/128 trust' >>"$FP/pg_hba.conf"
"$WALSHIP" check -c "$PCONF" -D "$FP" --streaming >"$TEST_DIR/check-v4-reject.out" 2>&1 || true
grep -q '^PASS  pg_hba.conf replication' "$TEST_DIR/check-v4-reject.out" ||
	fail "a reject for IPv4 shut out an IPv6 replication line"

log "broken: walship config with an error"
cp "$PCONF" "$TEST_DIR/bad.conf"
echo "sync_replica = 1" >>"$TEST_DIR/bad.conf"
expect_fail "walship config" bad-config -c "$TEST_DIR/bad.conf"
grep -q 'unrecognized configuration parameter "sync_replica"' "$TEST_DIR/check-bad-config.out" ||
	fail "walship check did not show the config error"

log "broken: walshipd not running on the configured socket"
sed "s|^socket = .*|socket = $TEST_DIR/nobody.sock|" "$PCONF" >"$TEST_DIR/nosock.conf"
fake_pgdata "$PDATA" "$FP"
echo "archive_command = '$WALSHIP push -c $TEST_DIR/nosock.conf %p'" >>"$FP/postgresql.conf"
expect_fail "walshipd socket" no-daemon -c "$TEST_DIR/nosock.conf" -D "$FP"

log "broken: another cluster than the one walshipd learnt"
OTHER=$TEST_DIR/pg-other
mkdir -p "$OTHER" && chown postgres:postgres "$OTHER" && chmod 0700 "$OTHER"
runuser -u postgres -- "$PG_BIN/initdb" -D "$OTHER" -U postgres --auth=trust --no-locale \
	-E UTF8 >"$TEST_DIR/initdb-other.out" 2>&1 || fail "initdb $OTHER failed"
fake_pgdata "$OTHER" "$FS"
cp "$SDATA/standby.signal" "$FS/"
echo "restore_command = '$WALSHIP fetch -c $RCONF %f %p'" >>"$FS/postgresql.auto.conf"
expect_fail "system identifier" other-cluster -c "$RCONF" -D "$FS"

log "the archive module on a PostgreSQL other than 15, which cannot load it"
fake_pgdata "$PDATA" "$FP"
echo 16 >"$FP/PG_VERSION"
printf "%s\n" "archive_command = ''" "archive_library = 'walship_archive'" \
	"walship.socket = '$psock'" >>"$FP/postgresql.conf"
expect_fail archive_library archive-library-16 -c "$PCONF" -D "$FP"
grep -q 'built for PostgreSQL 15 alone, and PostgreSQL 16 cannot load it' \
	"$TEST_DIR/check-archive-library-16.out" || fail "walship check did not say why"

log "PG_VERSION is data, not a command: pg_controldata runs without a shell"
# Without --pg-bin, and pg_controldata not on PATH, the check runs Debian's binary of the
# version PG_VERSION names; the build before pasted PG_VERSION into a shell command, and
# whoever writes it (the postgres user) ran commands as root.
PATH_NO_PG=$(tr ':' '\n' <<<"$PATH" | grep -v '/usr/lib/postgresql' | paste -sd:)
fake_pgdata "$PDATA" "$FP"
run_capture "$TEST_DIR/check-no-pg-bin.out" env PATH="$PATH_NO_PG" "$WALSHIP" check \
	-c "$PCONF" -D "$FP"
grep -q '^PASS  pg_controldata ' "$TEST_DIR/check-no-pg-bin.out" ||
	fail "walship check without --pg-bin did not run pg_controldata: $(cat "$TEST_DIR/check-no-pg-bin.out")"
printf "%s\n" "';touch pw;'" >"$FP/PG_VERSION"
pushd "$TEST_DIR" >/dev/null || fail "no $TEST_DIR"
run_capture "$TEST_DIR/check-pg-version.out" env PATH="$PATH_NO_PG" "$WALSHIP" check \
	-c "$PCONF" -D "$FP"
popd >/dev/null || fail "popd"
[[ -e "$TEST_DIR/pw" ]] && fail "walship check ran a command written in PG_VERSION"
grep -q '^FAIL  data directory .*does not hold a PostgreSQL version' \
	"$TEST_DIR/check-pg-version.out" || fail "walship check took PG_VERSION \"';touch pw;'\""
grep -q '^PASS  data directory' "$TEST_DIR/check-pg-version.out" &&
	fail "walship check said PASS for a PG_VERSION that is no version"
log "ok: a PG_VERSION that is no version is a FAIL, and runs nothing"

log "broken: archive_command with a config path relative to another folder"
# PostgreSQL runs archive_command in the data directory: "-c NAME" there is PGDATA/NAME,
# not the NAME the check was given from the config's folder (the build before compared
# the words and said PASS).
fake_pgdata "$PDATA" "$FP"
echo "archive_command = '$WALSHIP push -c $(basename "$PCONF") %p'" >>"$FP/postgresql.conf"
pushd "$(dirname "$PCONF")" >/dev/null || fail "no folder of $PCONF"
expect_fail archive_command archive-command-relative -c "$(basename "$PCONF")" -D "$FP"
popd >/dev/null || fail "popd"

log "synchronous standby: a WARN when commits would wait for walshipd, and only then"
# expect_sync_item NAME RESULT PATTERN: the "synchronous standby" line of check NAME.
expect_sync_item() {
	grep -q "^$2  synchronous standby .*$3" "$TEST_DIR/check-$1.out" ||
		fail "walship check ($1): no \"$2  synchronous standby ... $3\" line"
	log "ok: synchronous standby $2 ($1)"
}
# The primary's walshipd is "ws-primary", sync_replicas = 1, one replica streaming.
fake_pgdata "$PDATA" "$FP"
echo "synchronous_standby_names = 'FIRST 1 (s1, \"ws-primary\")'" >>"$FP/postgresql.conf"
expect_pass sync-named -c "$PCONF" -D "$FP"
# This walshipd has no pg_conninfo: nothing connects to PostgreSQL as its standby, and
# commits would wait for ever (the build before said PASS, one replica being connected).
expect_sync_item sync-named WARN 'walshipd has no pg_conninfo and never connects to PostgreSQL'
# ... but `*` alone is PostgreSQL's other standbys, not this walshipd: no warning.
sed -i "s/^synchronous_standby_names = .*/synchronous_standby_names = '*'/" "$FP/postgresql.conf"
expect_pass sync-star-no-stream -c "$PCONF" -D "$FP"
expect_sync_item sync-star-no-stream SKIP 'is no standby of PostgreSQL'
# The same walshipd checked with a stream source and sync_replicas = 2: one replica is
# too few.
sed -e 's/^sync_replicas = .*/sync_replicas = 2/' "$PCONF" >"$TEST_DIR/sync2.conf"
echo "pg_conninfo = host=/nonexistent" >>"$TEST_DIR/sync2.conf"
fake_pgdata "$PDATA" "$FP"
echo "archive_command = '$WALSHIP push -c $TEST_DIR/sync2.conf %p'" >>"$FP/postgresql.conf"
echo "synchronous_standby_names = 'ANY 1 (other, \"WS-Primary\")'" >>"$FP/postgresql.conf"
expect_pass sync-too-few -c "$TEST_DIR/sync2.conf" -D "$FP"
expect_sync_item sync-too-few WARN '1 of sync_replicas = 2 replicas are connected: commits will wait'
grep -A1 '^WARN  synchronous standby' "$TEST_DIR/check-sync-too-few.out" | grep -q '^      hint: ' ||
	fail "walship check (sync-too-few): no hint after the WARN line"
# Not named, or synchronous_commit = local: commits do not wait for walshipd.
sed -i "s/^synchronous_standby_names = .*/synchronous_standby_names = '2 (a, b)'/" "$FP/postgresql.conf"
expect_pass sync-not-named -c "$TEST_DIR/sync2.conf" -D "$FP"
expect_sync_item sync-not-named SKIP 'does not name "ws-primary"'
sed -i "s/^synchronous_standby_names = .*/synchronous_standby_names = '*'/" "$FP/postgresql.conf"
echo "synchronous_commit = local" >>"$FP/postgresql.conf"
expect_pass sync-local -c "$TEST_DIR/sync2.conf" -D "$FP"
expect_sync_item sync-local SKIP 'synchronous_commit = local'
# Named with `*`, and no walshipd answering.
fake_pgdata "$PDATA" "$FP"
{ cat "$TEST_DIR/nosock.conf"; echo "pg_conninfo = host=/nonexistent"; } >"$TEST_DIR/nosock-stream.conf"
echo "archive_command = '$WALSHIP push -c $TEST_DIR/nosock-stream.conf %p'" >>"$FP/postgresql.conf"
echo "synchronous_standby_names = '*'" >>"$FP/postgresql.conf"
expect_fail "walshipd socket" sync-no-daemon -c "$TEST_DIR/nosock-stream.conf" -D "$FP"
expect_sync_item sync-no-daemon WARN 'walshipd does not answer: commits will wait'
# No other check run above named walshipd as a synchronous standby.
! grep -q '^WARN  synchronous standby' "$TEST_DIR/check-primary.out" ||
	fail "walship check (primary): a synchronous standby WARN without synchronous_standby_names"

log "the status document: a replica that lost WAL, standbys that are no peers"
# A fake walshipd on a socket of its own answers one status request (include/walship/
# control.h: struct ctl_reply, then the document): no daemon has to lose WAL for it.
# fake_walshipd SOCKET CODE DOCUMENT: serve it in the background until it is asked.
fake_walshipd() {
	python3 - "$@" <<-'PY' &
	import os, socket, struct, sys
	path, code, text = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
	s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
	s.bind(path + ".new")
	s.listen(1)
	os.rename(path + ".new", path)  # there only once it listens
	s.settimeout(30)
	c, _ = s.accept()
	c.recv(4096)
	c.send(struct.pack("=IHHI", 0x57534354, 1, code, len(text)) + text)
	c.close()
	PY
	WS_BG_PIDS+=($!)
	wait_for 10 "the fake walshipd's socket" test -S "$1"
}
sysid=$(LC_ALL=C "$PG_BIN/pg_controldata" "$PDATA" | awk -F': *' '/Database system identifier/ {print $2}')
# The primary: ws-r1 streams, ws-r2 lost two files (code 7, CTL_WARN_LOST, as walship
# status exits 3); a standby's "streaming" and a "state" in an error text count for nothing.
sed "s|^socket = .*|socket = $TEST_DIR/fake-p.sock|" "$PCONF" >"$TEST_DIR/fake-p.conf"
echo "pg_conninfo = host=/nonexistent" >>"$TEST_DIR/fake-p.conf"
fake_pgdata "$PDATA" "$FP"
echo "archive_command = 'exec $WALSHIP push -c $TEST_DIR/fake-p.conf %p'" >>"$FP/postgresql.conf"
echo "synchronous_standby_names = '*'" >>"$FP/postgresql.conf"
fake_walshipd "$TEST_DIR/fake-p.sock" 7 '{"role":"primary","system_identifier":"'"$sysid"'",'\
'"source_state":"streaming",'\
'"lost_files":2,"peers":[{"name":"ws-r1","state":"streaming","lost_files":0,"last_error":""},'\
'{"name":"ws-r2","state":"connecting","lost_files":2,"lost_first":"000000010000000000000003",'\
'"lost_last":"000000010000000000000004","last_error":"\"state\":\"failing\""}],"standbys":[]}'
expect_fail "replica lost WAL" lost -c "$TEST_DIR/fake-p.conf" -D "$FP"
out=$TEST_DIR/check-lost.out
grep -q 'replica "ws-r2" lost 2 file(s), 000000010000000000000003 to 000000010000000000000004' "$out" ||
	fail "walship check did not name the replica that lost WAL"
grep -q '^PASS  walshipd socket' "$out" || fail "walship check did not take the document as an answer"
grep -q '^PASS  system identifier' "$out" || fail "walship check skipped the system identifier"
grep -q '^PASS  peer ' "$out" || fail "walship check did not see ws-r1 streaming"
expect_sync_item lost PASS '1 of sync_replicas = 1 replicas connected'
# The same, its stream from PostgreSQL down (connecting): commits wait (the build before
# said PASS).
sed "s|^socket = .*|socket = $TEST_DIR/fake-p2.sock|" "$TEST_DIR/fake-p.conf" >"$TEST_DIR/fake-p2.conf"
sed -i "s|fake-p.conf|fake-p2.conf|" "$FP/postgresql.conf"
fake_walshipd "$TEST_DIR/fake-p2.sock" 0 '{"role":"primary","system_identifier":"'"$sysid"'",'\
'"source_state":"connecting","peers":[{"name":"ws-r1","state":"streaming","last_error":""}],'\
'"standbys":[]}'
check_out sync-source-down -c "$TEST_DIR/fake-p2.conf" -D "$FP"
expect_sync_item sync-source-down WARN 'walshipd is not streaming from PostgreSQL (connecting)'
# Streaming, one replica, but synchronous_commit = remote_apply and no standby on the
# replicas reports WAL applied: commits wait for ever (the build before: PASS).
sed "s|^socket = .*|socket = $TEST_DIR/fake-p3.sock|" "$TEST_DIR/fake-p.conf" >"$TEST_DIR/fake-p3.conf"
sed -i "s|fake-p2.conf|fake-p3.conf|" "$FP/postgresql.conf"
echo "synchronous_commit = remote_apply" >>"$FP/postgresql.conf"
fake_walshipd "$TEST_DIR/fake-p3.sock" 0 '{"role":"primary","node_name":"ws-primary",'\
'"system_identifier":"'"$sysid"'","source_state":"streaming","source_apply_lsn":0,'\
'"peers":[{"name":"ws-r1","state":"streaming","last_error":""}],"standbys":[]}'
check_out sync-remote-apply -c "$TEST_DIR/fake-p3.conf" -D "$FP"
expect_sync_item sync-remote-apply WARN 'no standby on the replicas has reported WAL applied'
# sync_replicas = 0 and no replica streaming: walshipd reports nothing durable before one
# streams, so commits wait (the build before: PASS, 0 of 0).
sed -e "s|^socket = .*|socket = $TEST_DIR/fake-p4.sock|" -e 's/^sync_replicas = .*/sync_replicas = 0/' \
	"$TEST_DIR/fake-p.conf" >"$TEST_DIR/fake-p4.conf"
grep -q '^sync_replicas = 0' "$TEST_DIR/fake-p4.conf" || echo "sync_replicas = 0" >>"$TEST_DIR/fake-p4.conf"
sed -i -e "s|fake-p3.conf|fake-p4.conf|" -e '/^synchronous_commit = /d' "$FP/postgresql.conf"
fake_walshipd "$TEST_DIR/fake-p4.sock" 0 '{"role":"primary","node_name":"ws-primary",'\
'"system_identifier":"'"$sysid"'","source_state":"streaming","peers":[],"standbys":[]}'
check_out sync-zero -c "$TEST_DIR/fake-p4.conf" -D "$FP"
expect_sync_item sync-zero WARN 'no replica is connected: walshipd reports WAL durable only once'
# A replica whose upstream is down, serving a streaming standby on pg_listen: no peer
# streams (a WARN, exit 0), whatever its standby does.
sed "s|^socket = .*|socket = $TEST_DIR/fake-r.sock|" "$RCONF" >"$TEST_DIR/fake-r.conf"
fake_walshipd "$TEST_DIR/fake-r.sock" 0 '{"role":"replica","system_identifier":"0",'\
'"peers":[{"name":"ws-primary","state":"connecting","last_error":"connection refused"}],'\
'"standbys":[{"user":"postgres","application_name":"s1","state":"streaming"}]}'
check_out standby-only -c "$TEST_DIR/fake-r.conf"
[[ "$RC" == 0 ]] || fail "walship check (standby-only): expected exit 0, got $RC"
grep -q '^WARN  peer .*no peer is streaming' "$TEST_DIR/check-standby-only.out" ||
	fail "walship check counted a pg_listen standby as a streaming peer"
# archive_dir changed in the file and walshipd not restarted: walship fetch would read a
# folder walshipd does not store into (the build before: PASS).
sed "s|^socket = .*|socket = $TEST_DIR/fake-r2.sock|" "$RCONF" >"$TEST_DIR/fake-r2.conf"
fake_walshipd "$TEST_DIR/fake-r2.sock" 0 '{"role":"replica","node_name":"'"$(conf_get "$RCONF" node_name)"'",'\
'"archive_dir":"'"$TEST_DIR"'/old-archive","system_identifier":"0",'\
'"peers":[{"name":"ws-primary","state":"streaming","last_error":""}],"standbys":[]}'
expect_fail "walshipd socket" archive-dir-moved -c "$TEST_DIR/fake-r2.conf"
grep -q "answers storing into \"$TEST_DIR/old-archive\"" "$TEST_DIR/check-archive-dir-moved.out" ||
	fail "walship check did not name the daemon's archive_dir"
log "ok: the lost WAL is a FAIL naming ws-r2; standbys are no peers"

log "t_96: walship check passes on a correct setup and names each broken item"
