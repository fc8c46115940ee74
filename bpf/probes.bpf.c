// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * walship's latency probes: fsync and send latency of one walshipd process, as log2
 * histograms in pinned maps (see probes.h).  Tracepoints only (no kprobes, no fentry):
 *
 *   io_uring_submit_req (6.4+) / io_uring_submit_sqe (6.1) -> io_uring_complete
 *       FSYNC requests and writes with RWF_DSYNC (each makes data durable and is timed
 *       as an fsync), and sends carrying a peer tag in their user_data (every request
 *       the programs look at carries a tag: the syncs' is PROBE_TAG_FSYNC, so an untagged
 *       one, such as each of the thousands of reads that validate a pushed segment, is
 *       passed over at its first test, with no helper call and no map); a zero-copy
 *       send's notification (IORING_CQE_F_NOTIF) completes its "released" time; receives
 *       carrying a peer tag (the daemon tags those of WAL alone) start the "received to
 *       durable" clock that the completion of the next sync submitted stops;
 *   syscalls/sys_enter_fsync, _fdatasync -> sys_exit_*: the synchronous calls;
 *   ext4/ext4_sync_file_enter -> _exit: every ext4 fsync by the process's threads,
 *       io_uring's io-wq workers included.
 *
 * Each io_uring program exists as tp_btf and as a classic tracepoint; the loader keeps
 * the one the running kernel has.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "probes.h"

#define OP_FSYNC 3
#define OP_SENDMSG 9
#define OP_SEND 26
#define OP_RECV 27
#define OP_SEND_ZC 47
#define OP_SENDMSG_ZC 48
#define CQE_F_MORE (1U << 1)
#define CQE_F_NOTIF (1U << 3)

/* Set by the loader before load: the walshipd process to watch. */
const volatile __u32 targ_tgid = 0;
/* walshipd's PID namespace when it is not the host's (a container): targ_tgid is its pid
 * there, and the probes ask the kernel for the pid in that namespace; 0: the host's */
const volatile __u64 targ_ns_dev = 0;
const volatile __u64 targ_ns_ino = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct probe_fsync);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fsync_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROBE_MAX_PEERS);
	__type(key, __u32);
	__type(value, struct probe_send);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} send_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROBE_MAX_PEERS);
	__type(key, __u32);
	__type(value, struct probe_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} peers SEC(".maps");

/* A request in flight: (ring, user_data) is unique while it is. */
struct req_key {
	__u64 ctx;
	__u64 user_data;
};

enum req_kind {
	REQ_SEND,
	REQ_FSYNC,
	REQ_RECV,
};

struct req_start {
	__u64 ts;
	__u64 covers; /* FSYNC: the oldest receive it makes durable (0: none) */
	__u32 peer;
	__u32 kind; /* enum req_kind */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct req_key);
	__type(value, struct req_start);
} req_start SEC(".maps");

/* Zero-copy sends waiting for their notification. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct req_key);
	__type(value, struct req_start);
} notif_start SEC(".maps");

/* The completion time of the oldest receive no FSYNC submitted yet covers (0: none). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} recv_pending SEC(".maps");

/* Synchronous fsyncs and ext4 syncs, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} sys_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} ext4_start SEC(".maps");

static __always_inline __u32 log2_u32(__u32 v)
{
	__u32 r, shift;

	r = (v > 0xFFFF) << 4;
	v >>= r;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2_u32(hi) + 32 : log2_u32((__u32)v);
}

/*
 * The slot is a 64-bit value clamped in the register that indexes: with a 32-bit slot,
 * clang compared a copy and then zero-extended the original for the index, and the 6.1
 * verifier, which does not carry the bound across that copy, refused the programs with
 * "R2 unbounded memory access" (6.18 accepts either).
 */
static __always_inline void hist_add(struct probe_hist *h, __u64 delta_ns)
{
	__u64 slot = log2_u64(delta_ns / 1000);

	if (slot >= PROBE_HIST_SLOTS)
		slot = PROBE_HIST_SLOTS - 1;
	barrier_var(slot);
	if (slot >= PROBE_HIST_SLOTS)
		return; /* never: for the verifier, on the register used below */
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, delta_ns);
}

static __always_inline bool is_ours(void)
{
	struct bpf_pidns_info ns = {};

	if (!targ_ns_ino)
		return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
	/* a task outside walshipd's namespace is not walshipd: the call fails */
	if (bpf_get_ns_current_pid_tgid(targ_ns_dev, targ_ns_ino, &ns, sizeof(ns)))
		return false;
	return ns.tgid == targ_tgid;
}

/* A request with no tag in its user_data: nothing the probes measure. */
static __always_inline bool untagged(__u64 user_data)
{
	return !(user_data >> PROBE_TAG_SHIFT);
}

static __always_inline int on_submit(void *ctx, __u64 user_data, __u8 opcode)
{
	struct req_key key = { .ctx = (__u64)ctx, .user_data = user_data };
	struct req_start start = {};
	__u32 peer = user_data >> PROBE_TAG_SHIFT;

	__u32 zero = 0;
	__u64 *pending;

	if (!is_ours())
		return 0;
	if (opcode == OP_FSYNC || peer == PROBE_TAG_FSYNC) {
		start.kind = REQ_FSYNC;
		peer = 0;
		pending = bpf_map_lookup_elem(&recv_pending, &zero);
		if (pending) {
			start.covers = *pending;
			*pending = 0;
		}
	} else if (!peer || peer >= PROBE_MAX_PEERS) {
		return 0; /* neither an fsync nor a tagged send or receive */
	} else {
		start.kind = opcode == OP_RECV ? REQ_RECV : REQ_SEND;
	}
	start.ts = bpf_ktime_get_ns();
	start.peer = peer;
	bpf_map_update_elem(&req_start, &key, &start, BPF_ANY);
	/* BPF_NOEXIST: the rest of a short send goes again under the same user_data while
	 * the first part's notification may be pending; overwritten, the first notification
	 * took the second's start and the second found none.  Now the second part's
	 * release goes uncounted, and the first's is timed from its own submission. */
	if (start.kind == REQ_SEND && (opcode == OP_SEND_ZC || opcode == OP_SENDMSG_ZC))
		bpf_map_update_elem(&notif_start, &key, &start, BPF_NOEXIST);
	return 0;
}

static __always_inline int on_complete(void *ctx, __u64 user_data, __u32 cflags, __s32 res)
{
	struct req_key key = { .ctx = (__u64)ctx, .user_data = user_data };
	__u64 now = bpf_ktime_get_ns();
	struct req_start *start;
	struct probe_send *send;
	struct probe_fsync *fs;
	__u32 zero = 0;
	__u64 *pending;

	if (cflags & CQE_F_NOTIF) {
		start = bpf_map_lookup_elem(&notif_start, &key);
		if (!start)
			return 0;
		send = bpf_map_lookup_elem(&send_hist, &start->peer);
		if (send)
			hist_add(&send->released, now - start->ts);
		bpf_map_delete_elem(&notif_start, &key);
		return 0;
	}
	start = bpf_map_lookup_elem(&req_start, &key);
	if (!start)
		return 0;
	if (start->kind == REQ_FSYNC) {
		fs = bpf_map_lookup_elem(&fsync_hist, &zero);
		if (fs) {
			hist_add(&fs->io_uring, now - start->ts);
			if (start->covers && res >= 0)
				hist_add(&fs->received, now - start->covers);
		}
	} else if (start->kind == REQ_RECV) {
		pending = bpf_map_lookup_elem(&recv_pending, &zero);
		if (pending && res > 0 && !*pending)
			*pending = now;
	} else {
		send = bpf_map_lookup_elem(&send_hist, &start->peer);
		if (send)
			hist_add(&send->sent, now - start->ts);
		/* No notification follows a zero-copy send that failed outright. */
		if (!(cflags & CQE_F_MORE))
			bpf_map_delete_elem(&notif_start, &key);
	}
	bpf_map_delete_elem(&req_start, &key);
	return 0;
}

/* ---- io_uring submission: 6.4+ and 6.1 names, BTF-typed and classic ---- */

/* The BTF-typed programs read the request directly (no helper call); the classic ones
 * read their record's fields, each a helper call, once the tag says the request counts. */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(submit_req_btf, struct io_kiocb *req)
{
	__u64 user_data = req->cqe.user_data;

	if (untagged(user_data))
		return 0;
	return on_submit(req->ctx, user_data, req->opcode);
}

SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(submit_sqe_btf, struct io_kiocb *req, bool force_nonblock)
{
	__u64 user_data = req->cqe.user_data;

	if (untagged(user_data))
		return 0;
	return on_submit(req->ctx, user_data, req->opcode);
}

/* The classic records of both kernels (field names are stable, CO-RE finds them). */
struct trace_event_raw_io_uring_submit_sqe {
	struct trace_entry ent;
	void *ctx;
	void *req;
	unsigned long long user_data;
	u8 opcode;
} __attribute__((preserve_access_index));

struct trace_event_raw_io_uring_complete___classic {
	struct trace_entry ent;
	void *ctx;
	void *req;
	u64 user_data;
	int res;
	unsigned int cflags;
} __attribute__((preserve_access_index));

SEC("tp/io_uring/io_uring_submit_req")
int submit_req_tp(struct trace_event_raw_io_uring_submit_req *rec)
{
	__u64 user_data = BPF_CORE_READ(rec, user_data);

	if (untagged(user_data))
		return 0;
	return on_submit(BPF_CORE_READ(rec, ctx), user_data, BPF_CORE_READ(rec, opcode));
}

SEC("tp/io_uring/io_uring_submit_sqe")
int submit_sqe_tp(struct trace_event_raw_io_uring_submit_sqe *rec)
{
	__u64 user_data = BPF_CORE_READ(rec, user_data);

	if (untagged(user_data))
		return 0;
	return on_submit(BPF_CORE_READ(rec, ctx), user_data, BPF_CORE_READ(rec, opcode));
}

/* ---- io_uring completion: the (ctx, req, cqe) prototype of 6.3+, or the record ---- */

SEC("tp_btf/io_uring_complete")
int BPF_PROG(complete_btf, struct io_ring_ctx *ring, void *req, struct io_uring_cqe *cqe)
{
	__u64 user_data = cqe->user_data;

	if (untagged(user_data))
		return 0;
	return on_complete(ring, user_data, cqe->flags, cqe->res);
}

SEC("tp/io_uring/io_uring_complete")
int complete_tp(struct trace_event_raw_io_uring_complete___classic *rec)
{
	__u64 user_data = BPF_CORE_READ(rec, user_data);

	if (untagged(user_data))
		return 0;
	return on_complete(BPF_CORE_READ(rec, ctx), user_data, BPF_CORE_READ(rec, cflags),
			   BPF_CORE_READ(rec, res));
}

/* ---- synchronous fsync(2) / fdatasync(2), and ext4's fsyncs ---- */

/* A span from enter to exit in one of our threads: its start in @starts (by thread),
 * its length into the fsync histogram's ext4 or syscall part. */
static __always_inline int span_enter(void *starts)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 ts;

	if (!is_ours())
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(starts, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int span_exit(void *starts, bool ext4)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct probe_fsync *fs;
	__u32 zero = 0;
	__u64 *tsp;

	tsp = bpf_map_lookup_elem(starts, &tid);
	if (!tsp)
		return 0;
	fs = bpf_map_lookup_elem(&fsync_hist, &zero);
	if (fs)
		hist_add(ext4 ? &fs->ext4 : &fs->syscall, bpf_ktime_get_ns() - *tsp);
	bpf_map_delete_elem(starts, &tid);
	return 0;
}

SEC("tp/syscalls/sys_enter_fsync")
int fsync_enter(void *ctx)
{
	return span_enter(&sys_start);
}

SEC("tp/syscalls/sys_exit_fsync")
int fsync_exit(void *ctx)
{
	return span_exit(&sys_start, false);
}

SEC("tp/syscalls/sys_enter_fdatasync")
int fdatasync_enter(void *ctx)
{
	return span_enter(&sys_start);
}

SEC("tp/syscalls/sys_exit_fdatasync")
int fdatasync_exit(void *ctx)
{
	return span_exit(&sys_start, false);
}

/* ext4: every fsync the filesystem does for our threads.  Neither variant reads its
 * arguments: the tp_btf one (BTF-typed raw tracepoint, attached without tracefs, so it
 * loads where tracefs cannot be read, as for a systemd unit's unprivileged user) and the
 * classic one run the same code. */
SEC("tp_btf/ext4_sync_file_enter")
int ext4_sync_enter_btf(void *ctx)
{
	return span_enter(&ext4_start);
}

SEC("tp_btf/ext4_sync_file_exit")
int ext4_sync_exit_btf(void *ctx)
{
	return span_exit(&ext4_start, true);
}

SEC("tp/ext4/ext4_sync_file_enter")
int ext4_sync_enter(void *ctx)
{
	return span_enter(&ext4_start);
}

SEC("tp/ext4/ext4_sync_file_exit")
int ext4_sync_exit(void *ctx)
{
	return span_exit(&ext4_start, true);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
