#!/bin/bash
# TLS between walshipd peers (issue 6): TLS 1.3 with mutual certificate authentication
# ships WAL; a replica is refused, with the reason in both logs, when its certificate
# comes from an unknown CA, has expired, names another node, or when it speaks plaintext
# to a TLS primary; a replica refuses an upstream other than its upstream_name.  Certificates are made here, at test time (never committed keys).
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

ws_setup
require_cmds openssl
PKI=$TEST_DIR/pki
mkdir -p "$PKI"

# make_ca NAME: a CA key and certificate.
make_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$1.key" -out "$PKI/$1.pem" -days 30 -subj "/CN=$1" 2>/dev/null
}
# make_cert CA CN FILE [DAYS]: a key and a certificate for CN signed by CA (DAYS may be
# -1: already expired).
make_cert() {
	local ca=$1 cn=$2 file=$3 days=${4:-30}
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$file.key" -out "$PKI/$file.csr" -subj "/CN=$cn" 2>/dev/null
	openssl x509 -req -in "$PKI/$file.csr" -CA "$PKI/$ca.pem" -CAkey "$PKI/$ca.key" \
		-CAcreateserial -out "$PKI/$file.pem" -days "$days" 2>/dev/null
}
make_ca ca
make_ca otherca
make_cert ca ws-primary primary
make_cert ca ws-r1 r1
make_cert otherca ws-r2 r2-unknown-ca
make_cert ca ws-r2 r2-expired -1
make_cert ca ws-r1 r2-wrong-name
make_cert ca ws-r2 r2
tls_keys() { # tls_keys CERT: the config lines for TLS with certificate CERT
	echo tls=on "tls_ca_file=$PKI/ca.pem" "tls_cert_file=$PKI/$1.pem" "tls_key_file=$PKI/$1.key"
}
# shellcheck disable=SC2207
PRIMARY_CONF_EXTRA=($(tls_keys primary))
# shellcheck disable=SC2207
REPLICA_CONF_EXTRA=($(tls_keys r1))
walship_daemons_up
grep -q 'TLS established with .*TLSv1.3.*peer certificate "ws-r1"' "$TEST_DIR/ws-primary.log" ||
	fail "the primary did not log the TLS peer"
grep -q 'TLS established with .*TLSv1.3.*peer certificate "ws-primary"' "$TEST_DIR/ws-r1.log" ||
	fail "the replica did not log the TLS peer"
# Status names the protocol and suite, and whether the kernel encrypts (ktls = auto: this
# host's kernel has no TLS, so OpenSSL does it; the QEMU test t_84 covers kernel TLS).
pstatus=$(walship_status "$PCONF" --json)
jq -e '.peers[] | select(.name == "ws-r1") | .tls | startswith("TLSv1.3 TLS_")' \
	<<<"$pstatus" >/dev/null || fail "primary status does not name the TLS version of ws-r1"
# (A kernel whose TCP_ULP "tls" worked has the tls module loaded by now.)
if [[ -d /sys/module/tls ]]; then
	assert_eq tx+rx "$(jq -r '.peers[] | select(.name == "ws-r1") | .ktls' <<<"$pstatus")" \
		"ktls of ws-r1 with kernel TLS"
else
	assert_eq off "$(jq -r '.peers[] | select(.name == "ws-r1") | .ktls' <<<"$pstatus")" \
		"ktls of ws-r1 without kernel TLS"
	grep -q 'kernel TLS is not available' "$TEST_DIR/ws-primary.log" ||
		fail "the primary did not say that kernel TLS is not available"
fi

log "WAL ships over TLS"
walship_primary_up 1
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$seg"
assert_file_identical "$PDATA/pg_wal/$seg" "$RARCHIVE/$seg"

# try_replica DESC EXPECT_PRIMARY_LOG EXPECT_REPLICA_LOG KEY=VALUE...: start a second
# replica ws-r2 with the given config, wait until both logs show the refusal, check it
# never streams, stop it.
try_replica() {
	local desc=$1 plog=$2 rlog=$3 dir=$TEST_DIR/ws-r2 conf
	shift 3
	log "refused: $desc"
	rm -rf "$dir"
	mkdir -p "$dir"
	conf=$dir/walship.conf
	write_replica_conf "$conf" "$dir" "$NS_P" "$@"
	: >"$TEST_DIR/ws-r2.log"
	local mark
	mark=$(wc -l <"$TEST_DIR/ws-primary.log")
	walshipd_start "$NS_R1" "$conf" "$TEST_DIR/ws-r2.log"
	primary_says() { tail -n +"$((mark + 1))" "$TEST_DIR/ws-primary.log" | grep -qE -- "$plog"; }
	wait_for 15 "the primary to refuse ($desc)" primary_says
	wait_for 15 "ws-r2 to log why ($desc)" grep -qE -- "$rlog" "$TEST_DIR/ws-r2.log"
	! walship_status "$PCONF" --json | jq -e '.peers[] | select(.name == "ws-r2" and .state == "streaming")' >/dev/null ||
		fail "ws-r2 is streaming despite: $desc"
	walshipd_stop "$conf"
}
# shellcheck disable=SC2046
try_replica "a certificate from an unknown CA" \
	"TLS handshake with .* failed" "TLS (handshake with .* failed|error on connection)" \
	$(tls_keys r2-unknown-ca | sed "s#$PKI/ca.pem#$PKI/otherca.pem#")
# shellcheck disable=SC2046
try_replica "an expired certificate" \
	"certificate has expired" "TLS (handshake with .* failed|error on connection).*expired" \
	$(tls_keys r2-expired)
# shellcheck disable=SC2046
try_replica "a certificate naming another node" \
	'certificate name "ws-r1" does not match node name "ws-r2"' \
	'certificate name "ws-r1" does not match node name "ws-r2"' $(tls_keys r2-wrong-name)
try_replica "a plaintext replica at a TLS primary" \
	"refusing plaintext connection" "requires TLS" tls=off

# upstream_name pins who the upstream is: a replica expecting another node refuses the
# primary (its certificate is the CA's all the same); the right name streams.
log "refused by the replica: an upstream other than upstream_name"
dir=$TEST_DIR/ws-r2
rm -rf "$dir" && mkdir -p "$dir"
# shellcheck disable=SC2046
write_replica_conf "$dir/walship.conf" "$dir" "$NS_P" $(tls_keys r2) upstream_name=ws-other
: >"$TEST_DIR/ws-r2.log"
walshipd_start "$NS_R1" "$dir/walship.conf" "$TEST_DIR/ws-r2.log"
wait_for 15 "ws-r2 to refuse its upstream" grep -q \
	'the upstream at .* is "ws-primary", not "ws-other" (upstream_name)' "$TEST_DIR/ws-r2.log"
! walship_status "$PCONF" --json | jq -e '.peers[] | select(.name == "ws-r2" and .state == "streaming")' >/dev/null ||
	fail "ws-r2 streams from an upstream other than its upstream_name"
walshipd_stop "$dir/walship.conf"
# shellcheck disable=SC2046
write_replica_conf "$dir/walship.conf" "$dir" "$NS_P" $(tls_keys r2) upstream_name=ws-primary
walshipd_start "$NS_R1" "$dir/walship.conf" "$TEST_DIR/ws-r2.log"
r2_streaming() {
	walship_status "$PCONF" --json |
		jq -e '.peers[] | select(.name == "ws-r2" and .state == "streaming")' >/dev/null
}
wait_for 15 "ws-r2 streaming from its upstream_name" r2_streaming
walshipd_stop "$dir/walship.conf"
log "ok: upstream_name = ws-other refused the primary; upstream_name = ws-primary streams"

# walship check: a TLS replica without upstream_name is warned of (any node the CA signed
# is taken for the upstream), one with it passes.
"$WALSHIP" check -c "$RCONF" >"$TEST_DIR/check-r1.out" 2>&1 || true
grep -q '^WARN  upstream name  *upstream_name is empty' "$TEST_DIR/check-r1.out" ||
	fail "walship check did not warn of the empty upstream_name: $(cat "$TEST_DIR/check-r1.out")"
"$WALSHIP" check -c "$dir/walship.conf" >"$TEST_DIR/check-r2.out" 2>&1 || true
grep -q '^PASS  upstream name .*"ws-primary"' "$TEST_DIR/check-r2.out" ||
	fail "walship check did not pass upstream_name = ws-primary: $(cat "$TEST_DIR/check-r2.out")"
log "ok: walship check warns of an empty upstream_name"

log "the first replica is still streaming and shipping"
seg=$(pg_complete_segment "$NS_P" "$PG_PORT")
wait_archived "$seg"
log "PASS"
