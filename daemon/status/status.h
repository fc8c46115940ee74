/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state as one document: `walship status` (text) and `walship status --json`.
 * The roles fill a struct status_node; this module renders it.  Later publishers
 * (sysfs through walship.ko, Prometheus) read the same structure.
 */
#ifndef WALSHIP_STATUS_STATUS_H
#define WALSHIP_STATUS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATUS_MAX_TEXT 256

struct status_peer {
	char name[64];
	char addr[64];
	const char *state; /* "handshake", "streaming", "connecting", "disconnected" */
	char last_sent[48]; /* WAL file name, "" if none */
	char last_acked[48];
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t files_sent;
	uint64_t files_acked;
	uint64_t files_inflight;
	uint64_t errors;
	uint64_t reconnects;
	uint64_t held; /* primary: files the spool holds for this replica */
	uint64_t lost_files; /* primary: files released on spool overflow, */
	char lost_first[48]; /* from this WAL file */
	char lost_last[48]; /* to this one */
	uint64_t zc_sends;
	uint64_t zc_copied;
	uint64_t copy_sends;
	int64_t connected_since; /* unix seconds, 0 if not connected */
	char tls[64]; /* "TLSv1.3 TLS_AES_256_GCM_SHA384", "" for plaintext */
	char ktls[8]; /* directions the kernel encrypts: "tx+rx", "tx", "rx", "off"; "" */
	char last_error[STATUS_MAX_TEXT];
	/* Filled by the role: monotonic ms of the oldest push this peer has not acknowledged
	 * (0: none).  The rest is derived by status_derive() (docs/sysfs.md). */
	int64_t oldest_unacked_ms;
	uint64_t sent_lsn; /* end of the segment named by last_sent */
	uint64_t write_lsn; /* end of last_acked: a replica acknowledges only durable WAL */
	uint64_t flush_lsn;
	uint64_t lag_bytes;
	uint64_t lag_us;
};

/* One latency histogram of the BPF probes, as quantiles (docs/observability.md). */
struct status_quantiles {
	uint64_t count;
	double p50_us;
	double p90_us;
	double p99_us;
};

#define STATUS_MAX_PROBE_PEERS 64

/* The probes' quantiles, filled by the daemon (not the roles) when the probes are on. */
struct status_probes {
	struct status_quantiles fsync_io_uring; /* IORING_OP_FSYNC */
	struct status_quantiles fsync_syscall; /* fsync(2), fdatasync(2) */
	struct status_quantiles fsync_ext4; /* ext4_sync_file */
	struct {
		char addr[64];
		struct status_quantiles sent; /* submission to completion */
		struct status_quantiles released; /* submission to the zero-copy notification */
	} peers[STATUS_MAX_PROBE_PEERS];
	unsigned int npeers;
};

struct status_node {
	const char *role;
	char node_name[64];
	uint64_t system_identifier; /* 0 unknown */
	uint16_t page_magic;
	uint32_t seg_size;
	uint32_t timeline;
	int64_t started; /* unix seconds */
	int sync_replicas;
	int max_senders;
	char upstream[256]; /* replica */
	char archive_dir[4096]; /* replica */
	/* counters */
	uint64_t pushes_ok;
	uint64_t pushes_failed;
	uint64_t pushes_queued; /* now */
	uint64_t files_stored;
	uint64_t bytes_stored;
	uint64_t duplicates;
	uint64_t conflicts;
	uint64_t invalid;
	uint64_t sysid_refused;
	uint64_t io_errors;
	uint64_t connections_refused;
	uint64_t hba_refused; /* of which by the access rules */
	uint64_t spool_files; /* primary: files held in spool_dir */
	uint64_t spool_bytes;
	uint64_t registered_replicas;
	uint64_t spool_full; /* pushes refused because the spool was full */
	uint64_t lost_files; /* files released for replicas on spool overflow */
	uint64_t spool_copies; /* primary: pushed files copied into the spool */
	uint64_t spool_avoided; /* primary: pushes answered without a spool copy thanks to
				 * spool_delay (the replicas acknowledged meanwhile) */
	uint64_t resumed_files; /* transfers continued from the replica's durable length */
	uint64_t resumed_bytes; /* bytes that did not cross the network again thanks to that */
	uint64_t skipped_files; /* primary: not sent, the replica holds the same content */
	uint64_t checkpoints; /* replica: partial files made durable and recorded */
	uint64_t queue_overflows; /* connections dropped for a per-connection bound: a peer
				   * that does not read (send queue), files in flight */
	char last_conflict[STATUS_MAX_TEXT];
	char last_error[STATUS_MAX_TEXT];
	char newest_pushed[48]; /* primary: newest segment name among pushes in progress */
	struct status_peer *peers;
	unsigned int npeers;
	/* NULL: probes off (or not filled in: the roles leave it NULL, status_reply's hook
	 * sets it).  Not owned by the node. */
	const struct status_probes *probes;
};

/*
 * Derive the peers' positions from WAL file names (docs/sysfs.md): sent/write/flush LSN
 * as the end of the last sent and acknowledged segments (seg_size, 16 MiB when unknown),
 * lag_bytes as the newest segment end known to the node (newest_pushed, any peer's
 * last_sent) minus the peer's flush_lsn, lag_us as the time since oldest_unacked_ms.
 * Sets the node's timeline from the newest segment when the role left it 0.  Names that
 * are not segments (.history, .backup, .partial) leave the positions as they are.
 */
void status_derive(struct status_node *n, int64_t now_ms);

/* Free what a role's status() allocated in @n (the peers array). */
void status_node_release(struct status_node *n);

/* Render @n as text or JSON into a malloc'd buffer (*len bytes, NUL-terminated).
 * Returns NULL when out of memory. */
char *status_render(const struct status_node *n, bool json, size_t *len);

#endif /* WALSHIP_STATUS_STATUS_H */
