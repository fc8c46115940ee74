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

#include <walship/netlink.h>

#define STATUS_MAX_TEXT 256

/*
 * The numeric state of a node and of each peer, one line per value:
 * X(name, kind, help), kind COUNTER (only grows) or GAUGE (a level now).  These two lists
 * are the one table of the status counters: they declare the uint64_t fields of struct
 * status_node and struct status_peer, and `walship status --json` and /metrics
 * (walship_<name>_total for a counter, walship_<name> for a gauge; walship_peer_<name>
 * with peer and addr labels for a peer's; bytes and LSNs end in _bytes, as
 * metrics_value_name() says) are rendered by walking them.  The text of
 * `walship status` says them in sentences; test/unit/daemon/status/status_test.c fails
 * when a value is missing from the text, the JSON or /metrics.
 */
#define STATUS_NODE_VALUES(X)                                                                            \
	X(pushes_ok, COUNTER, "Pushes answered with success.")                                           \
	X(pushes_failed, COUNTER, "Pushes answered with failure.")                                       \
	X(pushes_queued, GAUGE, "Pushes in progress.")                                                   \
	X(pushes_abandoned, COUNTER,                                                                     \
	  "Pushes whose client went away before their answer (the file is shipped on).")                 \
	X(files_stored, COUNTER, "WAL files stored durably.")                                            \
	X(bytes_stored, COUNTER, "Bytes of WAL stored durably.")                                         \
	X(duplicates, COUNTER, "Files received again, identical.")                                       \
	X(conflicts, COUNTER, "Files refused: same name, different content.")                            \
	X(invalid, COUNTER, "Files refused by validation.")                                              \
	X(sysid_refused, COUNTER, "Files refused for another system identifier.")                        \
	X(io_errors, COUNTER, "I/O errors.")                                                             \
	X(set_aside, COUNTER,                                                                            \
	  "Replica: refused streamed files kept in .refused: part was acknowledged durable.")            \
	X(connections_refused, COUNTER, "Connections refused.")                                          \
	X(hba_refused, COUNTER, "Connections refused by the access rules (of those refused).")           \
	X(connections_shed, COUNTER,                                                                     \
	  "Connections closed at once: no descriptor to spare, or too many handshakes.")                 \
	X(spool_files, GAUGE, "Primary: files held in the spool.")                                       \
	X(spool_bytes, GAUGE, "Primary: bytes held in the spool.")                                       \
	X(registered_replicas, GAUGE,                                                                    \
	  "Primary: replicas the spool holds WAL for; relay: downstream replicas registered.")           \
	X(spool_full, COUNTER, "Primary: pushes refused because the spool was full.")                    \
	X(spool_unremovable, COUNTER,                                                                    \
	  "Primary: failures to remove a spool copy no claim holds (I/O errors; tried again).")          \
	X(lost_files, GAUGE, "Primary: files released for replicas on spool overflow.")                  \
	X(spool_copies, COUNTER, "Primary: pushed files copied into the spool.")                         \
	X(spool_avoided, COUNTER,                                                                        \
	  "Primary: pushes answered without a spool copy (acknowledged within spool_delay).")            \
	X(resumed_files, COUNTER, "Transfers continued from the replica's durable length.")              \
	X(resumed_bytes, COUNTER, "Bytes not sent again thanks to resumed transfers.")                   \
	X(skipped_files, COUNTER, "Primary: files not sent, the replica holds the same content.")        \
	X(pushes_ahead, COUNTER,                                                                         \
	  "Primary: segments shipped ahead of their push (passed with the push before them).")           \
	X(ahead_taken, COUNTER,                                                                          \
	  "Primary: pushes answered from a segment shipped ahead, not sent again.")                      \
	X(checkpoints, COUNTER, "Replica: partial files made durable and recorded.")                     \
	X(stream_syncs, COUNTER,                                                                         \
	  "Replica: group commits of streamed segments (one sync each, then PROGRESS).")                 \
	X(stream_direct_syncs, COUNTER,                                                                  \
	  "Replica: of those, direct writes with RWF_DSYNC from the segment's image.")                   \
	X(source_received_lsn, GAUGE,                                                                    \
	  "Primary: end of the WAL received from PostgreSQL's replication stream (LSN as bytes).")       \
	X(source_flush_lsn, GAUGE,                                                                       \
	  "Primary: flush position reported to PostgreSQL: durable on sync_replicas replicas.")          \
	X(source_apply_lsn, GAUGE,                                                                       \
	  "Primary: apply position reported to PostgreSQL: applied by standbys on replicas' pg_listen.") \
	X(source_connects, COUNTER,                                                                      \
	  "Primary: connections made to PostgreSQL's replication stream.")                               \
	X(source_retained_bytes, GAUGE,                                                                  \
	  "Primary: WAL PostgreSQL wrote past the flush position reported to it, which its slot keeps.") \
	X(source_slot_restart_lsn, GAUGE,                                                                \
	  "Primary: restart_lsn of the stream's slot, as read or since reported (0: NULL, no WAL "       \
	  "reserved).")                                                                                  \
	X(source_wal_missing_lsn, GAUGE,                                                                 \
	  "Primary: PostgreSQL removed the WAL the stream needs from this LSN on (0: none).")            \
	X(source_recorded_lsn, GAUGE,                                                                    \
	  "Primary: the stream's record (spool_dir/reported): a flush position reported, where a "       \
	  "restarted walshipd streams from (0: none).")                                                  \
	X(source_recorded_timeline, GAUGE, "Primary: the timeline of the record's segment start.")       \
	X(retain_removed_files, COUNTER, "Replica: WAL files removed by retention.")                     \
	X(retain_removed_bytes, COUNTER, "Replica: bytes of WAL files removed by retention.")            \
	X(retained_files, GAUGE, "Replica: files in archive_dir at the last retention pass.")            \
	X(retained_bytes, GAUGE, "Replica: bytes in archive_dir at the last retention pass.")            \
	X(retain_floor_lsn, GAUGE,                                                                       \
	  "Replica: oldest position still needed by a standby or a transfer (0: none), kept.")           \
	X(queue_overflows, COUNTER,                                                                      \
	  "Connections dropped for exceeding a per-connection bound (a peer that does not "              \
	  "read, too many files in flight).")

#define STATUS_PEER_VALUES(X)                                                       \
	X(bytes_sent, COUNTER, "Bytes sent to the peer.")                           \
	X(bytes_received, COUNTER, "Bytes received from the peer.")                 \
	X(files_sent, COUNTER, "WAL files sent to the peer.")                       \
	X(files_acked, COUNTER, "WAL files the peer acknowledged.")                 \
	X(files_inflight, GAUGE, "WAL files sent and not yet acknowledged.")        \
	X(errors, COUNTER, "Errors on the peer's connections.")                     \
	X(reconnects, COUNTER, "Reconnections to or from the peer.")                \
	X(held, GAUGE, "Primary: files the spool holds for this replica.")          \
	X(lost_files, GAUGE, "Primary: files this replica lost to spool overflow.") \
	X(zc_sends, COUNTER, "Zero-copy sends (SEND_ZC, SENDMSG_ZC) to the peer.")  \
	X(zc_copied, COUNTER, "Zero-copy sends the kernel copied after all.")       \
	X(copy_sends, COUNTER, "Copying sends to the peer.")                        \
	X(commits_waiting, GAUGE,                                                   \
	  "Primary, streaming: commit records received and not yet durable on the peer.")

enum status_kind {
	STATUS_COUNTER,
	STATUS_GAUGE,
};

/* One value of the lists above, with where it lives in its struct. */
struct status_value {
	const char *name;
	enum status_kind kind;
	const char *help;
	size_t offset;
};

#define STATUS_FIELD(name, kind, help) uint64_t name;

struct status_peer {
	char name[64];
	char addr[64];
	enum walship_peer_state state;
	char last_sent[48]; /* WAL file name, "" if none */
	char last_acked[48];
	STATUS_PEER_VALUES(STATUS_FIELD)
	/* the files lost_files counts (released on spool overflow) */
	char lost_first[48]; /* from this WAL file */
	char lost_last[48]; /* to this one */
	int64_t connected_since; /* unix seconds, 0 if not connected */
	char tls[64]; /* "TLSv1.3 TLS_AES_256_GCM_SHA384", "" for plaintext */
	char ktls[8]; /* directions the kernel encrypts: "tx+rx", "tx", "rx", "off"; "" */
	char last_error[STATUS_MAX_TEXT];
	/* Filled by the role: monotonic ms of the oldest push this peer has not acknowledged
	 * (0: none).  The rest is derived by status_derive() (docs/sysfs.md). */
	int64_t oldest_unacked_ms;
	/* Filled by the role: where the oldest WAL the peer lacks begins, behind what it
	 * acknowledged (held for it, being sent again): flush_lsn counts no further.  0:
	 * none known. */
	uint64_t gap_lsn;
	uint64_t sent_lsn; /* end of the segment named by last_sent */
	uint64_t write_lsn; /* end of last_acked: a replica acknowledges only durable WAL */
	uint64_t flush_lsn;
	uint64_t lag_bytes;
	uint64_t lag_us;
};

/* A PostgreSQL standby streaming from this replica's pg_listen (serve/walsender.h), like a
 * row of pg_stat_replication: positions are LSNs as bytes, 0 = not reported. */
struct status_standby {
	char user[64];
	char application_name[64];
	char addr[64];
	char state[16]; /* "startup", "idle", "streaming" */
	char slot[64]; /* named in START_REPLICATION, "" none */
	uint32_t timeline;
	uint64_t sent_lsn; /* WAL sent to it, up to here */
	uint64_t write_lsn; /* as the standby reports them */
	uint64_t flush_lsn;
	uint64_t apply_lsn;
	uint64_t bytes_sent;
	/* as pg_stat_replication's write_lag, flush_lag, replay_lag: the time from sending WAL
	 * to the standby's report of it written, flushed, replayed (the latest; -1 none yet) */
	int64_t write_lag_ms, flush_lag_ms, replay_lag_ms;
	uint32_t xmin; /* its hot standby feedback, as pg_stat_replication.backend_xmin; 0 none */
	uint32_t catalog_xmin;
	int64_t connected_since; /* unix seconds */
	/* delayed and held standbys (serve/sendlimit.h) */
	int64_t delay_ms; /* standby_delay for it, -1 none */
	char hold[96]; /* "held at X/X", "released before TIME (held at X/X)", ... "" none */
	uint64_t send_limit; /* sent up to here at most now; UINT64_MAX: no limit */
};

/* A physical replication slot on this replica's pg_listen (serve/slots.h), like a row of
 * pg_replication_slots. */
struct status_slot {
	char name[64];
	bool temporary;
	bool active; /* a standby streams through it */
	uint32_t restart_tli;
	uint64_t restart_lsn; /* 0: nothing reserved */
	uint64_t retained_bytes; /* WAL kept for it: from restart_lsn to the durable end */
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
	struct status_quantiles received_durable; /* a receive to the next io_uring fsync */
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
	STATUS_NODE_VALUES(STATUS_FIELD)
	char last_conflict[STATUS_MAX_TEXT];
	char last_error[STATUS_MAX_TEXT];
	/* replica: the oldest file retained (not a history file), "" none or not listed yet;
	 * the retention policy in words ("off" when nothing is ever removed) */
	char retain_oldest[48];
	char retain_policy[96];
	char newest_pushed[48]; /* primary: newest segment name among pushes in progress */
	/* primary: the stream source (pg_conninfo), "" when there is none */
	char source_state[24];
	char source_error[STATUS_MAX_TEXT];
	char source_slot[64]; /* pg_slot */
	struct status_peer *peers;
	unsigned int npeers;
	struct status_standby *standbys; /* replica with pg_listen: its standbys */
	unsigned int nstandbys;
	struct status_slot *slots; /* replica with pg_listen: its replication slots */
	unsigned int nslots;
	/* NULL: probes off (or not filled in: the roles leave it NULL, status_reply's hook
	 * sets it).  Not owned by the node. */
	const struct status_probes *probes;
};

/* The node's and a peer's values (the lists above), in their order. */
extern const struct status_value status_node_values[];
extern const size_t status_node_nvalues;
extern const struct status_value status_peer_values[];
extern const size_t status_peer_nvalues;

/* The value @v of @base (a struct status_node or struct status_peer, as @v says). */
static inline uint64_t status_value_get(const void *base, const struct status_value *v)
{
	return *(const uint64_t *)((const char *)base + v->offset);
}

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
