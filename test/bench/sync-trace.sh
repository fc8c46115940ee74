#!/bin/bash
# Where a synchronous commit's wait goes (issue 13): runs one synchronous-commit contender
# of the bench (test/bench/sync.sh) and, while pgbench runs, records with perf:
#   - uprobes on PostgreSQL's SyncRepWaitForLSN (entry and return): each backend's wait for
#     its synchronous standby, for any contender;
#   - for sync-walship, the io_uring requests and completions of both walshipd and the
#     sendto/recvfrom system calls of the walsender and the primary walshipd, from which
#     each wait is walked back stage by stage: the walsender's send, the primary walshipd's
#     wake-up and its send to the replica, the replica's receipt, fdatasync submitted and
#     completed, PROGRESS sent, received by the primary walshipd, its status update, the
#     walsender's receipt, the backend's return.
# Prints the distribution of the wait and, for sync-walship, of every stage.  The stages are
# found by walking back from each return to the last event of each kind before the next
# one: on a busy machine a few waits pick a neighbour's event, so read medians and means.
# Tracing slows every event a little: compare contenders traced the same way, not with the
# bench's untraced figures.
#
#   test/bench/sync-trace.sh [CONTENDER] [SECONDS]   (default sync-walship, 4 s of trace)
#   SYNC_TRACE_STAGES=0: the waits alone for sync-walship too (the same tracing cost as the
#   other contenders').
#
# Needs root, perf (linux-perf) with uprobes, python3, and what `make bench` needs.  Its
# files go to build/sync-trace/.
set -euo pipefail

WS_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONTENDER=${1:-sync-walship}
SECONDS_TRACED=${2:-4}
OUT=$WS_ROOT/build/sync-trace
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

command -v perf >/dev/null || { echo "sync-trace: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "sync-trace: python3 is missing" >&2; exit 1; }
case $CONTENDER in
sync-walship | sync-standby | sync-receivewal | sync-receivewal-relay) ;;
*) echo "sync-trace: no synchronous-commit contender $CONTENDER" >&2; exit 2 ;;
esac
rm -rf "$OUT"
mkdir -p "$OUT"

perf probe -q -x "$PG_BIN/postgres" -d 'probe_postgres:SyncRepWaitForLSN*' 2>/dev/null || true
perf probe -q -x "$PG_BIN/postgres" SyncRepWaitForLSN
perf probe -q -x "$PG_BIN/postgres" 'SyncRepWaitForLSN%return'
cleanup() {
	perf probe -q -d 'probe_postgres:SyncRepWaitForLSN*' 2>/dev/null || true
	if [[ -n ${BENCH_PID:-} ]]; then wait "$BENCH_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# One run of the contender, long enough for the trace to fall inside pgbench's load.
BENCH_SEGMENTS=1 BENCH_RUNS=1 BENCH_FANOUT="" BENCH_STREAM_SECONDS=0 \
	BENCH_SYNC_SECONDS=$((SECONDS_TRACED + 12)) BENCH_SYNC_LAG_SECONDS=0 \
	BENCH_STANDBY_SECONDS=0 BENCH_PGBR=0 BENCH_DOC="" BENCH_PLOTS="" \
	BENCH_CONTENDERS="$CONTENDER" BENCH_RESULTS="$OUT/results.txt" \
	BENCH_RUN_DIR="$OUT/run" "$WS_ROOT/test/bench/run-bench.sh" >"$OUT/bench.log" 2>&1 &
BENCH_PID=$!
for _ in $(seq 600); do
	pgrep -x pgbench >/dev/null && break
	kill -0 "$BENCH_PID" 2>/dev/null || { tail "$OUT/bench.log" >&2; exit 1; }
	sleep 0.2
done
sleep 4 # past pgbench's connections and first checkpoint-free seconds
P=$(pgrep -f "$OUT/run/.*/primary.conf" | head -1 || true)
R=$(pgrep -f "$OUT/run/.*/replica.conf" | head -1 || true)
events=(-e probe_postgres:SyncRepWaitForLSN -e probe_postgres:SyncRepWaitForLSN__return)
if [[ $CONTENDER == sync-walship && ${SYNC_TRACE_STAGES:-1} != 0 ]]; then
	events+=(-e io_uring:io_uring_submit_req -e io_uring:io_uring_complete
		-e syscalls:sys_enter_sendto -e syscalls:sys_exit_recvfrom)
fi
perf record -q -o "$OUT/perf.data" -a "${events[@]}" -- sleep "$SECONDS_TRACED" >/dev/null 2>&1
wait "$BENCH_PID" || { tail "$OUT/bench.log" >&2; exit 1; }
BENCH_PID=
grep -E 'run 1:' "$OUT/bench.log" | tail -1 | sed 's/.*\[bench\] *//'
perf script -i "$OUT/perf.data" -F comm,pid,time,event,trace >"$OUT/events.txt" 2>/dev/null

python3 - "$OUT/events.txt" "${P:-0}" "${R:-0}" <<'PY'
import bisect, re, sys
from collections import Counter

path, P, R = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line_re = re.compile(r'^\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$')
recs = []
for line in open(path):
    m = line_re.match(line)
    if m:
        comm, pid, t, ev, tr = m.groups()
        recs.append((comm, int(pid), float(t) * 1000.0, ev, tr))
backends = {r[1] for r in recs if 'SyncRepWaitForLSN' in r[3]}


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def show(name, v):
    if v:
        print('  %-44s n=%-6d p10 %.3f  p50 %.3f  p90 %.3f  mean %.3f ms'
              % (name, len(v), q(v, .1), q(v, .5), q(v, .9), sum(v) / len(v)))


# Each backend's waits, entry to return.
waits, enter, rets = [], {}, []
for comm, pid, t, ev, tr in recs:
    if ev == 'probe_postgres:SyncRepWaitForLSN':
        enter[pid] = t
    elif ev == 'probe_postgres:SyncRepWaitForLSN__return' and pid in enter:
        t0 = enter.pop(pid)
        waits.append(t - t0)
        rets.append((t0, t))
print('synchronous-commit wait (SyncRepWaitForLSN):')
show('backend wait', waits)
if not P or not R:
    sys.exit(0)

# The walsender: the postgres process, not a backend, that calls sendto most.
c = Counter(r[1] for r in recs
            if r[0] == 'postgres' and r[3] == 'syscalls:sys_enter_sendto' and r[1] not in backends)
if not c:
    sys.exit(0)
W = c.most_common(1)[0][0]
ops, ev = {}, {k: [] for k in ('w_send', 'w_recv', 'p_poll', 'p_sm', 'p_rx', 'p_sendto',
                               'r_rx', 'r_fss', 'r_fsc', 'r_send')}
for comm, pid, t, e, tr in recs:
    if e == 'io_uring:io_uring_submit_req':
        ud = re.search(r'user_data (\S+),', tr).group(1)
        op = re.search(r'opcode (\S+),', tr).group(1)
        ops[(pid, ud)] = op
        key = {(P, 'SENDMSG'): 'p_sm', (R, 'FSYNC'): 'r_fss', (R, 'SEND'): 'r_send'}.get((pid, op))
        if key:
            ev[key].append(t)
    elif e == 'io_uring:io_uring_complete':
        ud = re.search(r'user_data (\S+),', tr).group(1)
        res = int(re.search(r'result (-?\d+)', tr).group(1))
        op = ops.get((pid, ud))
        key = {(P, 'POLL_ADD'): 'p_poll', (P, 'RECV'): 'p_rx', (R, 'RECV'): 'r_rx',
               (R, 'FSYNC'): 'r_fsc'}.get((pid, op))
        if key and (res > 0 or op in ('POLL_ADD', 'FSYNC')):
            ev[key].append(t)
    elif e == 'syscalls:sys_enter_sendto':
        if pid == W:
            ev['w_send'].append(t)
        elif pid == P:
            ev['p_sendto'].append(t)
    elif e == 'syscalls:sys_exit_recvfrom' and pid == W:
        res = int(tr.strip(), 16)
        if 0 < res < 1000:  # a standby status update, not WAL
            ev['w_recv'].append(t)
for v in ev.values():
    v.sort()


def last_before(k, t):
    a = ev[k]
    i = bisect.bisect_left(a, t) - 1
    return a[i] if i >= 0 else None


chain = [('w_recv', 'the walsender receives the status update -> the backend returns'),
         ('p_sendto', 'primary walshipd sends the status update -> the walsender receives it'),
         ('p_rx', 'primary walshipd receives PROGRESS -> sends the status update'),
         ('r_send', 'replica sends PROGRESS -> the primary walshipd receives it'),
         ('r_fsc', 'fdatasync completes -> the replica sends PROGRESS'),
         ('r_fss', 'fdatasync submitted -> completed'),
         ('r_rx', 'the replica receives the WAL -> submits fdatasync'),
         ('p_sm', 'primary walshipd sends to the replica -> the replica receives'),
         ('p_poll', 'primary walshipd woken -> sends to the replica'),
         ('w_send', 'the walsender sends -> the primary walshipd is woken')]
stages = {k: [] for k, _ in chain}
lead = []
for t0, t1 in rets:
    ts, cur = [], t1
    for k, _ in chain:
        cur = last_before(k, cur)
        if cur is None:
            break
        ts.append(cur)
    if cur is None:
        continue
    prev = t1
    for (k, _), t in zip(chain, ts):
        stages[k].append(prev - t)
        prev = t
    lead.append(ts[-1] - t0)
print('walked back from each return (walsender %d, primary walshipd %d, replica %d):'
      % (W, P, R))
show('the backend waits -> the walsender sends', lead)
for k, name in reversed(chain):
    show(name, stages[k])
PY
