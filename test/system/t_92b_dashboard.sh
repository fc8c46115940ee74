#!/bin/bash
# t_92b: the Grafana dashboard (dashboards/walship.json) queries only metrics that exist,
# and /metrics follows the Prometheus conventions (issue 16).  The set-up produces every
# family with samples: a primary walshipd streaming from PostgreSQL (pg_conninfo: the
# source's families) with a replica (peers, spool) serving a PostgreSQL standby on
# pg_listen (the standbys' positions and lags, and the temporary slot its walreceiver
# makes: the slots' families), both with the BPF probes on (the
# histograms), under a little pgbench load.  Then, on the two real documents:
#   - prometheus_client's parser (Debian's python3-prometheus-client) reads them;
#   - every family has # HELP and # TYPE; a counter's samples end in _total and only a
#     counter's do; a name saying "bytes" or an LSN ends in _bytes (before _total);
#     a histogram has _bucket with cumulative le up to +Inf equal to _count, and _sum;
#   - every panel and query uses the data source variable ${datasource}, ids are unique;
#   - every walship_* name in a PromQL expression of the dashboard is the name of a sample
#     in one of the documents (_bucket, _sum and _count are the histograms' sample names).
# Nothing the dashboard queries is left out of this set-up; CONDITIONAL below lists the
# names it queries that would need another one (none now), and the test checks that each
# is still written by the daemon's sources.
# Meanwhile, clients that connect to the primary's /metrics and send nothing lock no
# scraper out: with METRICS_MAX_CLIENTS of them open a scrape still gets its document (the
# oldest idle one is closed for it; before, it was refused for as long as they stayed),
# and the others are closed METRICS_CLIENT_TIMEOUT_MS after they were accepted.
set -euo pipefail
# shellcheck source=test/system/lib.sh
. "$(dirname "$0")/lib.sh"

DASHBOARD=$WS_ROOT/dashboards/walship.json
# A Python with Debian's prometheus_client (not a pyenv shim without it).
PY=/usr/bin/python3
# Names the dashboard queries that this set-up does not produce, each with why.  Checked
# against daemon/ so that the list cannot name a metric that no longer exists.
CONDITIONAL=()

require_root
require_cmds curl jq
[[ -r /sys/kernel/btf/vmlinux ]] || skip "the kernel has no BTF (/sys/kernel/btf/vmlinux): no probes, no histograms"
"$PY" -c 'import prometheus_client.parser' 2>/dev/null ||
	skip "python3-prometheus-client is not installed (scripts/install-deps.sh)"
ws_setup

PG_LISTEN_PORT=5433
SB_PORT=5434
METRICS_PORT=9192
mkdir -p "$TEST_DIR/ws-r1"
HBA=$TEST_DIR/ws-r1/hba.conf
cat >"$HBA" <<-EOF
	# TYPE     ROLE     NODE_NAME  CERT_NAME  ADDRESS
	hostnossl  standby  postgres   all        10.77.0.0/16
EOF
chmod 0644 "$HBA"
# shellcheck disable=SC2034  # read by walship_stream_up
PRIMARY_CONF_EXTRA=(probes=on "metrics_listen=127.0.0.1:$METRICS_PORT")
# shellcheck disable=SC2034
REPLICA_CONF_EXTRA=(probes=on "metrics_listen=127.0.0.1:$METRICS_PORT"
	"pg_listen=0.0.0.0:$PG_LISTEN_PORT" "hba_file=$HBA")
walship_stream_up on
pgbench_at "$NS_P" "$PG_PORT" -i -s 1 -q >/dev/null 2>&1 || fail "pgbench -i failed"

SDATA=$TEST_DIR/pg-standby
pg_standby_from_basebackup "$NS_P" "$PG_PORT" "$SDATA" "$NS_R1" "$SB_PORT" \
	"$WALSHIP fetch -c $RCONF %f %p"
cat >>"$SDATA/postgresql.conf" <<-EOF
	primary_conninfo = 'host=$ADDR_R1 port=$PG_LISTEN_PORT user=postgres application_name=sb1'
	wal_receiver_status_interval = 1s
	wal_receiver_create_temp_slot = on
EOF
pg_start "$SDATA" "$NS_R1"

# Idle clients on the primary's /metrics, checked in the background (about 10 s) while
# the load runs.  The test's own scrape of the primary comes later, with one idle client
# fewer held, so it closes none of them.  The bounds are metrics.h's.
metrics_h=$WS_ROOT/daemon/metrics/metrics.h
max_clients=$(sed -n 's/^#define METRICS_MAX_CLIENTS \([0-9]*\).*/\1/p' "$metrics_h")
timeout_ms=$(sed -n 's/^#define METRICS_CLIENT_TIMEOUT_MS \([0-9]*\).*/\1/p' "$metrics_h")
[[ -n "$max_clients" && -n "$timeout_ms" ]] || fail "no client bounds in $metrics_h"
cat >"$TEST_DIR/idle-clients.py" <<-'EOF'
	import socket, sys, time

	port, nidle, timeout = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000
	errors = []

	def connect():
	    return socket.create_connection(("127.0.0.1", port), timeout=5)

	def closed(s, wait):
	    """Whether the daemon closed s within wait seconds."""
	    s.settimeout(max(wait, 0.01))
	    try:
	        return s.recv(1) == b""
	    except ConnectionResetError:
	        return True
	    except socket.timeout:
	        return False

	idle = [connect() for _ in range(nidle)]
	time.sleep(0.5)  # all accepted, in this order
	start = time.monotonic()
	body = b""
	try:
	    scrape = connect()
	    scrape.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
	    while chunk := scrape.recv(65536):
	        body += chunk
	except OSError as e:
	    errors.append(f"the scrape failed: {e}")
	if not body.startswith(b"HTTP/1.1 200 OK") or b"\nwalship_info{" not in body:
	    errors.append(f"with {nidle} idle clients a scrape got {body[:80]!r}, not the metrics")
	if not closed(idle[0], 2):
	    errors.append("the oldest idle client was not closed for the scrape")
	if any(closed(s, 0) for s in idle[1:]):
	    errors.append("an idle client other than the oldest was closed for the scrape")
	for i, s in enumerate(idle[1:], 1):
	    if not closed(s, start + timeout + 3 - time.monotonic()):
	        errors.append(f"idle client {i} still open {timeout + 3:.0f} s after the scrape")
	        break
	waited = time.monotonic() - start
	if waited < timeout - 2:
	    errors.append(f"idle clients closed after {waited:.1f} s, before their deadline")
	for e in errors:
	    print("ERROR: " + e)
	print(f"{nidle} idle clients: a scrape got {len(body)} bytes, the last idle one closed "
	      f"after {waited:.1f} s")
	sys.exit(1 if errors else 0)
EOF
# (a file: a job in the background reads /dev/null, not a here-document)
bg_start "$TEST_DIR/idle-clients.out" in_ns "$NS_P" "$PY" "$TEST_DIR/idle-clients.py" \
	"$METRICS_PORT" "$max_clients" "$timeout_ms"
idle_pid=$BG_PID
# The check's verdict: fails the test with what it found.
idle_clients_checked() {
	wait "$idle_pid" ||
		{ cat "$TEST_DIR/idle-clients.out" >&2; fail "idle /metrics clients lock scrapers out"; }
	log "ok: $(tail -n 1 "$TEST_DIR/idle-clients.out")"
}

pgbench_at "$NS_P" "$PG_PORT" -T 3 -c 2 -R 200 -n >"$TEST_DIR/pgbench.out" 2>&1 ||
	{ cat "$TEST_DIR/pgbench.out" >&2; fail "pgbench failed"; }
target=$(psql_at "$NS_P" "$PG_PORT" "select pg_current_wal_flush_lsn()")
wait_standby_lsn "$NS_R1" "$SB_PORT" "$target" 30

metrics_of() {
	in_ns "$1" curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics"
}
# The standby's lags appear once it has reported WAL sent to it written, flushed, replayed.
standby_lags_reported() {
	metrics_of "$NS_R1" >"$TEST_DIR/metrics-r1.txt" &&
		grep -q '^walship_standby_replay_lag_seconds{application_name="sb1"' \
			"$TEST_DIR/metrics-r1.txt"
}
wait_for 30 "the standby's lags in the replica's /metrics" standby_lags_reported
# (refused while idle clients hold every place: the check says so first)
metrics_of "$NS_P" >"$TEST_DIR/metrics-primary.txt" ||
	{ idle_clients_checked; fail "could not scrape the primary's /metrics"; }
log "ok: /metrics of the primary ($(wc -l <"$TEST_DIR/metrics-primary.txt") lines) and the" \
	"replica ($(wc -l <"$TEST_DIR/metrics-r1.txt") lines)"

for name in "${CONDITIONAL[@]}"; do
	grep -rqF "\"$name" "$WS_ROOT/daemon" ||
		fail "CONDITIONAL names $name, which daemon/ does not write any more"
done

"$PY" - "$DASHBOARD" "$TEST_DIR/metrics-primary.txt" "$TEST_DIR/metrics-r1.txt" \
	"${CONDITIONAL[@]}" <<-'EOF' || fail "the dashboard or /metrics is wrong (above)"
	import json, math, re, sys
	from prometheus_client.parser import text_string_to_metric_families

	dashboard, docs, conditional = sys.argv[1], sys.argv[2:4], set(sys.argv[4:])
	errors = []
	samples = set()
	for path in docs:
	    text = open(path).read()
	    help_, type_ = {}, {}
	    for line in text.splitlines():
	        m = re.match(r"# (HELP|TYPE) (\S+) (.*)", line)
	        if m:
	            (help_ if m[1] == "HELP" else type_)[m[2]] = m[3]
	        elif line and not line.startswith("#"):
	            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)[0]
	            family = re.sub(r"_(bucket|sum|count)$", "", name)
	            if type_.get(family) != "histogram":
	                family = name
	            if family not in help_ or family not in type_:
	                errors.append(f"{path}: {name} has no # HELP or # TYPE of its own")
	    for family, kind in type_.items():
	        if family not in help_ or not help_[family].strip():
	            errors.append(f"{path}: {family} has no help text")
	        if (kind == "counter") != family.endswith("_total"):
	            errors.append(f"{path}: {family} is a {kind}: only counters end in _total")
	        base = re.sub(r"_total$", "", family)
	        if ("bytes" in base or base.endswith("_lsn")) and not base.endswith("_bytes"):
	            errors.append(f"{path}: {family}: a quantity of bytes ends in _bytes")
	        if kind == "histogram" and not family.endswith("_seconds"):
	            errors.append(f"{path}: {family}: a duration is in _seconds")
	    for fam in text_string_to_metric_families(text):
	        series = {}
	        for s in fam.samples:
	            samples.add(s.name)
	            if fam.type == "histogram":
	                key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
	                series.setdefault(key, {"buckets": [], "count": None, "sum": None})
	                if s.name.endswith("_bucket"):
	                    series[key]["buckets"].append((float(s.labels["le"]), s.value))
	                elif s.name.endswith("_count"):
	                    series[key]["count"] = s.value
	                elif s.name.endswith("_sum"):
	                    series[key]["sum"] = s.value
	        for key, h in series.items():
	            les = [le for le, _ in h["buckets"]]
	            counts = [c for _, c in h["buckets"]]
	            where = f"{path}: {fam.name}{dict(key)}"
	            if not les or les[-1] != math.inf or les != sorted(les):
	                errors.append(f"{where}: buckets not ascending up to +Inf")
	            elif counts != sorted(counts) or counts[-1] != h["count"]:
	                errors.append(f"{where}: buckets not cumulative or +Inf != _count")
	            if h["sum"] is None:
	                errors.append(f"{where}: no _sum")

	exprs = []
	def walk(node):
	    if isinstance(node, dict):
	        for k, v in node.items():
	            if k in ("expr", "query", "definition") and isinstance(v, str):
	                exprs.append(v)
	            else:
	                walk(v)
	    elif isinstance(node, list):
	        for v in node:
	            walk(v)
	dash = json.load(open(dashboard))
	walk(dash)
	# one data source, the variable: every panel and query uses ${datasource}
	ids = [p["id"] for p in dash["panels"]]
	if len(ids) != len(set(ids)):
	    errors.append(f"{dashboard}: panel ids repeat")
	for p in dash["panels"]:
	    for t in [p] + p.get("targets", []):
	        if p["type"] != "row" and t.get("datasource", {}).get("uid") != "${datasource}":
	            errors.append(f"{dashboard}: panel {p['title']} does not use ${{datasource}}")
	used = set()
	for e in exprs:
	    used.update(re.findall(r"\bwalship_[a-z0-9_]+", e))
	if len(used) < 20:
	    errors.append(f"only {len(used)} metric names found in {dashboard}: wrong extraction?")
	for name in sorted(used - samples - conditional):
	    errors.append(f"the dashboard queries {name}, which no /metrics here has")
	for name in sorted(conditional - used):
	    errors.append(f"CONDITIONAL names {name}, which the dashboard does not query")
	for e in errors:
	    print("ERROR: " + e)
	print(f"{len(used)} metric names in {len(exprs)} expressions of the dashboard, "
	      f"{len(samples)} sample names in /metrics")
	sys.exit(1 if errors else 0)
EOF
log "ok: every family has HELP and TYPE, names follow the conventions, histograms are whole"
log "ok: every metric the dashboard queries is in a real /metrics"
idle_clients_checked
