/* SPDX-License-Identifier: MIT */
/*
 * Types shared by the BPF probes (probes.bpf.c) and user space (daemon/probe/, the
 * walship CLI).  Fixed-width types only: the same layout on both sides, and the maps'
 * BTF names these fields in `bpftool map dump`.
 *
 * Histograms are log2 of microseconds, as in biolatency: slot k counts operations of
 * [2^k, 2^(k+1)) microseconds (slot 0 also takes those under one microsecond); the last
 * slot takes everything longer.
 *
 * The daemon puts a peer's number in the top bits of a send's io_uring user_data
 * (PROBE_TAG_SHIFT), and PROBE_TAG_FSYNC in a sync's (an FSYNC or a write with
 * RWF_DSYNC); the probes use it to attribute sends and to pass over every other request
 * at once, the ring masks it off.
 */
#ifndef WALSHIP_BPF_PROBES_H
#define WALSHIP_BPF_PROBES_H

#define PROBE_HIST_SLOTS 27 /* the last slot, 26, from 2^26 us = 67 s up */
#define PROBE_MAX_PEERS 64 /* peer 0: sends without a peer (none today) */
#define PROBE_TAG_SHIFT 48
#define PROBE_TAG_FSYNC 0x7fff /* every IORING_OP_FSYNC and RWF_DSYNC write the daemon submits */
#define PROBE_PEER_ADDR_LEN 64

/* Pinned map names, under PROBE_PIN_ROOT. */
#define PROBE_PIN_ROOT "/sys/fs/bpf/walship"
#define PROBE_MAP_FSYNC "fsync_hist"
#define PROBE_MAP_SEND "send_hist"
#define PROBE_MAP_PEERS "peers"

struct probe_hist {
	__u64 slots[PROBE_HIST_SLOTS];
	__u64 count;
	__u64 sum_ns;
};

/* fsync_hist has one entry: each way the daemon's fsyncs are seen. */
struct probe_fsync {
	struct probe_hist io_uring; /* IORING_OP_FSYNC: submission to completion */
	struct probe_hist syscall; /* fsync(2) and fdatasync(2) called by the daemon */
	struct probe_hist ext4; /* ext4_sync_file_enter to _exit in the daemon's threads */
	/*
	 * Received to durable: from the completion of a receive of WAL from a peer (a tagged
	 * RECV: the daemon tags those of DATA frames' payloads alone, conn_rx_tag()) to the
	 * completion of the first IORING_OP_FSYNC submitted after it, once per fsync (its
	 * oldest receive): how long WAL that arrived waits until it is durable.  On a replica
	 * receiving a streamed segment, each sample is one group commit's oldest byte.
	 */
	struct probe_hist received;
};

/* send_hist: one entry per peer number. */
struct probe_send {
	struct probe_hist sent; /* submission to the send's completion (queued in the socket) */
	struct probe_hist released; /* submission to the zero-copy notification */
};

/* peers: written by the daemon, the address each peer number stands for. */
struct probe_peer {
	char addr[PROBE_PEER_ADDR_LEN];
};

#endif /* WALSHIP_BPF_PROBES_H */
