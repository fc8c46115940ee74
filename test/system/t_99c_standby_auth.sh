#!/bin/bash
# t_99c: how standbys authenticate on pg_listen (issue 14): TLS from the appliance's
# certificate (a standby with sslmode=verify-full streams), SCRAM-SHA-256 against the
# verifiers of pg_password_file (made by `walship password`; refused when others may read
# or own it), with channel binding over TLS
# (SCRAM-SHA-256-PLUS) and without it in plaintext, and client certificates (hba method
# cert: the certificate's CN is the user).  A PostgreSQL 15 standby streams with the right
# password over verify-full; with a wrong one its log says PostgreSQL's "password
# authentication failed" (SQLSTATE 28P01, checked on the wire) and it does not stream; with
# a client certificate it streams again.  Refusals in PostgreSQL's words: no rule (28000),
# no client certificate, a certificate naming another user, one from another CA, a server
# name verify-full does not accept, garbage instead of a TLS handshake.  A verifier
# PostgreSQL made (pg_authid.rolpassword) is taken as it is.  A password file readable by
# others is refused at start and at reload.  Certificates are made here, at test time.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

PG_LISTEN_PORT=5433
SB_PORT=5434
ws_setup
require_cmds openssl jq python3
PKI=$TEST_DIR/pki
mkdir -p "$PKI"

# (as t_87_tls.sh makes them)
make_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.pem" -days 30 -subj "/CN=$1" 2>/dev/null
}
make_cert() { # make_cert CA CN FILE
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$3.key" -out "$PKI/$3.csr" -subj "/CN=$2" 2>/dev/null
	openssl x509 -req -in "$PKI/$3.csr" -CA "$PKI/$1.pem" -CAkey "$PKI/$1.key" \
		-CAcreateserial -out "$PKI/$3.pem" -days 30 2>/dev/null
}
make_ca ca
make_ca otherca
make_cert ca ws-primary primary
make_cert ca ws-r1 r1 # the appliance: the standbys verify its name, ws-r1
make_cert ca certsb certsb # a standby's client certificate: CN = its user
make_cert ca someone-else wrongcn
make_cert otherca certsb certsb-otherca
# libpq wants client keys private to the user running it (postgres for the standby)
chown -R postgres:postgres "$PKI"
chmod 0600 "$PKI"/*.key
tls_keys() {
	echo tls=on "tls_ca_file=$PKI/ca.pem" "tls_cert_file=$PKI/$1.pem" "tls_key_file=$PKI/$1.key"
}

mkdir -p "$TEST_DIR/ws-r1"
PW=$TEST_DIR/ws-r1/standby.passwords
echo pencil | "$WALSHIP" password replicator >"$PW"
echo pencil | "$WALSHIP" password plainsb >>"$PW"
chmod 0600 "$PW"
grep -q "^replicator SCRAM-SHA-256\\\$4096:" "$PW" ||
	fail "walship password did not print a verifier line: $(cat "$PW")"
grep -q pencil "$PW" && fail "the password file holds the password itself"
# A name the file's parser would split (a form feed is a blank to it) is refused, and so is
# a password longer than the line read, not cut to its first 1022 bytes.
rc=0
echo pencil | "$WALSHIP" password $'ops\fuser' >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "walship password with a control character in the user name"
rc=0
head -c 1500 /dev/zero | tr '\0' x | "$WALSHIP" password longpw >/dev/null 2>&1 || rc=$?
assert_eq 1 "$rc" "walship password with a 1500-byte password"
HBA=$TEST_DIR/ws-r1/hba.conf
cat >"$HBA" <<-EOF
	# TYPE     ROLE     NODE_NAME   CERT_NAME  ADDRESS       METHOD
	hostssl    standby  certsb      all        10.77.0.0/16  cert
	hostssl    standby  replicator  all        10.77.0.0/16  scram-sha-256
	hostnossl  standby  plainsb     all        10.77.0.0/16  scram-sha-256
	hostnossl  standby  nobody      all        10.77.0.0/16  scram-sha-256
EOF
# shellcheck disable=SC2207
PRIMARY_CONF_EXTRA=($(tls_keys primary))
# shellcheck disable=SC2207
REPLICA_CONF_EXTRA=($(tls_keys r1) "pg_listen=0.0.0.0:$PG_LISTEN_PORT" "hba_file=$HBA"
	"pg_password_file=$PW")
walship_stream_up off
RLOG=$TEST_DIR/ws-r1.log
psql_at "$NS_P" "$PG_PORT" "create table marker (i int primary key); select pg_switch_wal()" \
	>/dev/null
grep -q "serving PostgreSQL standbys on 0.0.0.0:$PG_LISTEN_PORT (physical replication, TLS offered" \
	"$RLOG" || fail "the appliance does not say it offers TLS on pg_listen"

# The appliance by its certificate's name (host), at its address (hostaddr).
base="host=ws-r1 hostaddr=$ADDR_R1 port=$PG_LISTEN_PORT connect_timeout=5"
tls="sslmode=verify-full sslrootcert=$PKI/ca.pem"
sysid=$(pg_system_identifier "$PDATA")
admitted() {
	local conninfo=$1 out
	out=$(as_postgres_in "$NS_P" "$PG_BIN/psql" -X -A -t "$conninfo replication=true" \
		-c "IDENTIFY_SYSTEM" 2>&1) || fail "connection '$conninfo' refused: $out"
	[[ "${out%%|*}" == "$sysid" ]] || fail "connection '$conninfo': IDENTIFY_SYSTEM '$out'"
	log "ok: admitted: $conninfo"
}
refused_with() {
	local conninfo=$1 expected=$2 out
	if out=$(as_postgres_in "$NS_P" "$PG_BIN/psql" -X -A -t "$conninfo replication=true" \
		-c "IDENTIFY_SYSTEM" 2>&1); then
		fail "connection '$conninfo' was admitted: $out"
	fi
	[[ "$out" == *"$expected"* ]] || fail "connection '$conninfo': '$out', not '$expected'"
	log "ok: refused: ${out//$'\n'/ }"
}
holds_wal() {
	as_postgres_in "$NS_P" "$PG_BIN/psql" -X -A -t \
		"$base sslmode=disable user=plainsb password=pencil replication=true" \
		-c "IDENTIFY_SYSTEM"
}
wait_for 30 "the appliance to hold WAL to serve" holds_wal
# SCRAM over verify-full TLS, channel binding required (SCRAM-SHA-256-PLUS)
admitted "$base $tls user=replicator password=pencil channel_binding=require"
grep -q "TLS established with standby $ADDR_P:[0-9]*: TLSv1.3" "$RLOG" ||
	fail "the appliance did not log the TLS handshake"
# SCRAM in plaintext ("n,," binding)
admitted "$base sslmode=disable user=plainsb password=pencil"
refused_with "$base $tls user=replicator password=wrong" \
	'password authentication failed for user "replicator"'
refused_with "$base sslmode=disable user=replicator password=pencil" \
	"no pg_hba.conf entry for replication connection from host \"$ADDR_P\", user \"replicator\", no encryption"
refused_with "$base $tls user=plainsb password=pencil" \
	"no pg_hba.conf entry for replication connection from host \"$ADDR_P\", user \"plainsb\", SSL encryption"
# the appliance's name is checked: verify-full against another name fails in libpq
refused_with "host=not-the-appliance hostaddr=$ADDR_R1 port=$PG_LISTEN_PORT $tls user=replicator password=pencil" \
	'server certificate for "ws-r1" does not match host name "not-the-appliance"'
# client certificates
admitted "$base $tls user=certsb sslcert=$PKI/certsb.pem sslkey=$PKI/certsb.key"
refused_with "$base $tls user=certsb" "connection requires a valid client certificate"
refused_with "$base $tls user=certsb sslcert=$PKI/wrongcn.pem sslkey=$PKI/wrongcn.key" \
	'certificate authentication failed for user "certsb"'
as_postgres_in "$NS_P" "$PG_BIN/psql" -X -A -t "$base $tls user=certsb replication=true \
	sslcert=$PKI/certsb-otherca.pem sslkey=$PKI/certsb-otherca.key" -c IDENTIFY_SYSTEM \
	>/dev/null 2>&1 && fail "a client certificate of another CA was admitted"
wait_for 10 "the appliance to log the refused certificate of another CA" \
	grep -q "could not accept SSL connection from $ADDR_P:[0-9]*: certificate verification failed" \
	"$RLOG"
log "ok: refused: $(grep "could not accept SSL connection" "$RLOG" | tail -n 1)"

# Garbage where the TLS handshake should be: that connection only is closed.
rc=0
in_ns "$NS_P" timeout 10 bash -c "exec 3<>/dev/tcp/$ADDR_R1/$PG_LISTEN_PORT || exit 3
	printf '\x00\x00\x00\x08\x04\xd2\x16\x2f' >&3
	IFS= read -r -n 1 answer <&3; [[ \$answer == S ]] || exit 4
	printf 'GET / HTTP/1.1\r\n\r\n' >&3; cat <&3 >/dev/null 2>&1; exit 0" || rc=$?
((rc == 0)) || fail "garbage after SSLRequest's 'S': status $rc (3: no connection, 4: no 'S', 124: not closed)"
wait_for 10 "the appliance to log the failed handshake" \
	grep -q "could not accept SSL connection from $ADDR_P:[0-9]*: .*http request" "$RLOG"
log "ok: garbage instead of a TLS handshake: $(grep "http request" "$RLOG" | tail -n 1)"

# The SQLSTATEs on the wire: a SCRAM-SHA-256 client (RFC 5802), plaintext, that prints,
# for each USER PASSWORD pair, the C and M fields of the ErrorResponse it gets, or
# "authenticated 12" after AuthenticationSASLFinal.
cat >"$TEST_DIR/scram_client.py" <<-'EOF'
	import base64, hashlib, hmac, os, socket, struct, sys
	host, port = sys.argv[1], int(sys.argv[2])
	def attempt(user, password):
	    s = socket.create_connection((host, port), timeout=10)
	    def msg(t, body): s.sendall(t + struct.pack("!I", len(body) + 4) + body)
	    def read(n):
	        b = b""
	        while len(b) < n:
	            c = s.recv(n - len(b))
	            if not c: raise EOFError("closed")
	            b += c
	        return b
	    def recv():
	        hdr = read(5)
	        body = read(struct.unpack("!I", hdr[1:5])[0] - 4)
	        if hdr[:1] == b"E":
	            f = dict((x[:1], x[1:]) for x in body.split(b"\0") if x)
	            raise EOFError(f[b"C"].decode() + " " + f[b"M"].decode())
	        return hdr[:1], body
	    params = b"user\0" + user.encode() + b"\0replication\0true\0\0"
	    s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
	    t, body = recv()
	    assert t == b"R" and struct.unpack("!I", body[:4])[0] == 10, body
	    nonce = base64.b64encode(os.urandom(18)).decode()
	    bare = "n=,r=" + nonce
	    first = ("n,," + bare).encode()
	    msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
	    t, body = recv()
	    server_first = body[4:].decode()
	    a = dict(x.split("=", 1) for x in server_first.split(","))
	    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(a["s"]),
	                                 int(a["i"]))
	    ck = hmac.new(salted, b"Client Key", "sha256").digest()
	    without = "c=biws,r=" + a["r"]
	    auth = ",".join([bare, server_first, without]).encode()
	    sig = hmac.new(hashlib.sha256(ck).digest(), auth, "sha256").digest()
	    proof = base64.b64encode(bytes(x ^ y for x, y in zip(ck, sig))).decode()
	    msg(b"p", (without + ",p=" + proof).encode())
	    t, body = recv()
	    return "authenticated %d" % struct.unpack("!I", body[:4])[0]
	for user, password in zip(sys.argv[3::2], sys.argv[4::2]):
	    try:
	        print(attempt(user, password))
	    except EOFError as e:
	        print(e)
EOF
mapfile -t answers < <(in_ns "$NS_P" python3 "$TEST_DIR/scram_client.py" "$ADDR_R1" \
	"$PG_LISTEN_PORT" plainsb pencil plainsb wrong nobody pencil replicator pencil)
assert_eq 'authenticated 12' "${answers[0]:-}" "SCRAM exchange, right password"
assert_eq '28P01 password authentication failed for user "plainsb"' "${answers[1]:-}" \
	"SCRAM exchange, wrong password"
assert_eq '28P01 password authentication failed for user "nobody"' "${answers[2]:-}" \
	"SCRAM exchange, a user with no verifier"
log "ok: SQLSTATE 28P01 on the wire for a wrong password and for a user without a verifier"
# (a user no rule admits is refused before SCRAM begins)
[[ "${answers[3]:-}" == "28000 no pg_hba.conf entry for replication connection"* ]] ||
	fail "a user no plaintext rule admits: '${answers[3]:-}', not 28000"
log "ok: ${answers[3]}"

# A verifier PostgreSQL made (pg_authid.rolpassword) works as one walship password made.
pgverifier=$(psql_at "$NS_P" "$PG_PORT" "set password_encryption = 'scram-sha-256';
	create role pguser login password 'pencil';
	select rolpassword from pg_authid where rolname = 'pguser'")
[[ "$pgverifier" == "SCRAM-SHA-256\$4096:"* ]] || fail "PostgreSQL's verifier: '$pgverifier'"
echo "pguser $pgverifier" >>"$PW"
echo "hostnossl  standby  pguser  all  10.77.0.0/16  scram-sha-256" >>"$HBA"
reloads=$(grep -c "received SIGHUP" "$RLOG" || true)
kill -HUP "${WS_DAEMON_PID[$RCONF]}"
reloaded() { (($(grep -c "received SIGHUP" "$RLOG") > reloads)); }
wait_for 10 "the appliance to reload" reloaded
admitted_pguser() {
	as_postgres_in "$NS_P" "$PG_BIN/psql" -X -A -t \
		"$base sslmode=disable user=pguser password=pencil replication=true" \
		-c "IDENTIFY_SYSTEM"
}
wait_for 10 "user pguser admitted with PostgreSQL's own verifier" admitted_pguser
log "ok: a verifier from pg_authid.rolpassword, reloaded with SIGHUP, admits pguser"

# A PostgreSQL 15 standby streaming over verify-full TLS with SCRAM-SHA-256-PLUS.
SDATA=$TEST_DIR/pg-standby
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$SB_PORT" \
	"$WALSHIP fetch -c $RCONF %f %p"
conninfo_scram="$base $tls user=replicator password=pencil channel_binding=require application_name=sb1"
cat >>"$SDATA/postgresql.conf" <<-EOF
	primary_conninfo = '$conninfo_scram'
	wal_receiver_status_interval = 1s
	wal_retrieve_retry_interval = 1s
EOF
pg_start "$SDATA" "$NS_R1"
# pg_stat_wal_receiver: streaming from the appliance, as user USER (its conninfo)
receiver_streaming() {
	[[ "$(psql_at "$NS_R1" "$SB_PORT" "select status || ' ' || (conninfo like
		'%user=$1 %')::text from pg_stat_wal_receiver")" == "streaming true" ]]
}
appliance_streams_to() { # the appliance's view: a standby of user USER streaming
	walship_status "$RCONF" --json | jq -e --arg u "$1" \
		'.standbys[] | select(.user == $u and .state == "streaming")' >/dev/null
}
wait_for 30 "the standby streaming over verify-full TLS with SCRAM" receiver_streaming replicator
wait_for 10 "walship status to show user replicator streaming" appliance_streams_to replicator
grep -q "replication connection authorized: user=replicator application_name=sb1 host=$ADDR_R1:[0-9]* SSL enabled TLSv1.3" \
	"$RLOG" || fail "the appliance did not log the standby's TLS connection"
psql_at "$NS_P" "$PG_PORT" "insert into marker values (1)"
target=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 30
log "ok: the standby streams over verify-full TLS with SCRAM-SHA-256-PLUS, replayed $target"

# A wrong password: the standby's log says why, and it does not stream.
set_conninfo() {
	psql_at "$NS_R1" "$SB_PORT" "alter system set primary_conninfo = '$1'"
	psql_at "$NS_R1" "$SB_PORT" "select pg_reload_conf()" >/dev/null
}
refused_twice() {
	(($(grep -c 'FATAL:  password authentication failed for user "replicator"' \
		"$SDATA.log") >= 2))
}
set_conninfo "${conninfo_scram/password=pencil/password=wrong}"
wait_for 30 "the standby's log to show the wrong password refused twice" refused_twice
if receiver_streaming replicator || appliance_streams_to replicator; then
	fail "the standby streams with a wrong password"
fi
log "ok: wrong password: $(grep -m 1 'password authentication failed' "$SDATA.log")"

# A client certificate instead: it streams again.
set_conninfo "$base $tls user=certsb sslcert=$PKI/certsb.pem sslkey=$PKI/certsb.key application_name=sb1"
wait_for 30 "the standby streaming with its client certificate" receiver_streaming certsb
wait_for 10 "walship status to show user certsb streaming" appliance_streams_to certsb
psql_at "$NS_P" "$PG_PORT" "insert into marker values (2)"
target=$(pg_inserted_lsn "$NS_P" "$PG_PORT")
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 30
assert_same_data "$NS_P" "$PG_PORT" "$NS_R1" "$SB_PORT"
log "ok: the standby streams with a client certificate (hba method cert), replayed $target"

# A password file readable by others: refused at reload (the verifiers in effect stay)...
chmod 0644 "$PW"
kill -HUP "${WS_DAEMON_PID[$RCONF]}"
wait_for 10 "the reload to refuse the password file" \
	grep -q "password file \"$PW\" has group or world access" "$RLOG"
grep -q "could not load pg_password_file \"$PW\": keeping the verifiers in effect" "$RLOG" ||
	fail "the reload did not say it keeps the verifiers"
admitted "$base sslmode=disable user=plainsb password=pencil"
# ... and at start: the daemon does not start, and exits 2, a configuration error, which
# systemd does not restart (every start would fail the same).
walshipd_stop "$RCONF"
rc=0
out=$(in_ns "$NS_R1" timeout 30 "$WALSHIPD" -c "$RCONF" 2>&1) || rc=$?
assert_eq 2 "$rc" "walshipd exit code with a password file of mode 0644"
[[ "$out" == *"password file \"$PW\" has group or world access"* ]] ||
	fail "walshipd with a password file of mode 0644: '$out'"
log "ok: a password file of mode 0644 is refused: $(grep -m 1 'group or world' <<<"$out")"
# Mode 0600 but owned by another user (who could write verifiers into it): refused too,
# as PostgreSQL refuses such a key file (accepted on the build before).
chmod 0600 "$PW"
chown 65534 "$PW"
if out=$(in_ns "$NS_R1" timeout 30 "$WALSHIPD" -c "$RCONF" 2>&1); then
	fail "walshipd started with a password file owned by uid 65534"
fi
[[ "$out" == *"password file \"$PW\" is owned by another user (uid 65534)"* ]] ||
	fail "walshipd with a password file owned by another user: '$out'"
log "ok: a password file owned by another user is refused"
log "PASS"
