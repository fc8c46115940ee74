/* SPDX-License-Identifier: MIT */
/*
 * walship wire protocol between walshipd peers: constants and message layouts.
 *
 * The byte-level description, with rationale, is docs/protocol.md; this header is its
 * machine-readable twin.  Every multi-byte integer on the wire is little-endian and is
 * encoded and decoded field by field (daemon/proto/codec.c), never by casting a struct
 * over a buffer.
 *
 * A connection carries a sequence of frames.  Each frame is a 16-byte header followed by
 * a payload of at most WIRE_MAX_PAYLOAD bytes:
 *
 *   offset size field
 *   0      1    type          enum wire_type
 *   1      1    flags         per type, unknown bits must be zero
 *   2      2    reserved      zero
 *   4      4    length        payload length in bytes, bounded per type
 *   8      4    payload_crc   CRC-32C (Castagnoli) of the payload
 *   12     4    header_crc    CRC-32C of bytes 0..11
 *
 * The header CRC lets a receiver reject a corrupted length before it waits for a
 * payload that will never come.  Frame types never take the value 0x16, the first byte
 * of a TLS record, so a server configured for TLS recognises a plaintext client at once.
 */
#ifndef WALSHIP_WIRE_H
#define WALSHIP_WIRE_H

#include <stdint.h>

/*
 * Version 2 added HAVE (the replica's inventory after HELLO) and FILE_BEGIN start_offset
 * > 0 (resuming a file from the replica's durable length).  Version 3 added streamed
 * segments: FILE_BEGIN flag WIRE_BEGIN_STREAM (DATA follows as PostgreSQL writes the WAL)
 * PROGRESS (the replica's received and durable length of such a file) and FILE_CANCEL (a
 * streamed segment cut by a timeline switch).  Version 4 added APPLIED (the WAL the
 * replica's PostgreSQL standbys on pg_listen have applied, for remote_apply).  Version 5
 * lets a replica refuse a streamed file before its FILE_END (an ACK other than STORED or
 * DUPLICATE), answered with FILE_CANCEL.
 */
#define WIRE_VERSION 5

#define WIRE_HEADER_SIZE 16
/* One DATA frame carries at most this many bytes of file content. */
#define WIRE_CHUNK_SIZE (1024 * 1024)
/* DATA payload: file_id(4) reserved(4) offset(8) then content. */
#define WIRE_DATA_HEADER_SIZE 16
#define WIRE_MAX_PAYLOAD (WIRE_DATA_HEADER_SIZE + WIRE_CHUNK_SIZE)
/* Every frame type other than DATA is small. */
#define WIRE_MAX_CONTROL_PAYLOAD 4096

#define WIRE_MAX_NAME 63 /* node names */
#define WIRE_MAX_FILE_NAME 63 /* WAL file names (longest legal is 40) */
#define WIRE_MAX_MESSAGE 1024 /* human-readable text in ACK and ERROR */
#define WIRE_ARCH_LEN 16
#define WIRE_MAX_HAVE 32 /* entries in one HAVE */
/*
 * Files begun and not yet acknowledged on one connection: the largest window a primary
 * may be configured with (max_inflight_files); a replica refuses more.
 */
#define WIRE_MAX_INFLIGHT_FILES 64

enum wire_type {
	WIRE_HELLO = 1, /* both ways, replica first */
	WIRE_FILE_BEGIN = 2, /* primary -> replica */
	WIRE_DATA = 3, /* primary -> replica */
	WIRE_FILE_END = 4, /* primary -> replica */
	WIRE_ACK = 5, /* replica -> primary */
	WIRE_ERROR = 6, /* either way, then the sender closes */
	WIRE_PING = 7, /* either way */
	WIRE_PONG = 8, /* answer to PING */
	WIRE_HAVE = 9, /* replica -> primary, once, right after its HELLO */
	WIRE_PROGRESS = 10, /* replica -> primary: how much of a streamed file is durable */
	WIRE_FILE_CANCEL = 11, /* primary -> replica: a streamed file that will not be completed */
	WIRE_APPLIED = 12, /* replica -> primary: WAL its standbys on pg_listen have applied */
};

/* FILE_BEGIN flags (the payload's flags byte). */
enum wire_begin_flags {
	/*
	 * A segment streamed as PostgreSQL writes it: DATA arrives over seconds or hours, the
	 * replica makes what arrived durable as it comes (one fdatasync at a time, covering
	 * everything received when it started) and answers each with PROGRESS.
	 */
	WIRE_BEGIN_STREAM = 0x01,
};
#define WIRE_BEGIN_FLAGS_KNOWN WIRE_BEGIN_STREAM

/* HAVE entries: what the replica holds of a file. */
enum wire_have_kind {
	WIRE_HAVE_COMPLETE = 1, /* stored under its final name: durable = size */
	WIRE_HAVE_PARTIAL = 2, /* being received: 0 < durable < size bytes are durable */
};

enum wire_role {
	WIRE_ROLE_PRIMARY = 1,
	WIRE_ROLE_REPLICA = 2,
};

/* Kinds of WAL file, as in daemon/wal/name.h. */
enum wire_file_kind {
	WIRE_FILE_SEGMENT = 1,
	WIRE_FILE_PARTIAL = 2,
	WIRE_FILE_HISTORY = 3,
	WIRE_FILE_BACKUP = 4,
};

/* ACK status: what the replica did with a file. */
enum wire_ack_status {
	WIRE_ACK_STORED = 0, /* durable under its final name */
	WIRE_ACK_DUPLICATE = 1, /* already present with identical content */
	WIRE_ACK_CONFLICT = 2, /* already present with different content: refused */
	WIRE_ACK_INVALID = 3, /* failed name or page-header validation: refused */
	WIRE_ACK_IO_ERROR = 4, /* could not store (e.g. ENOSPC): refused */
	WIRE_ACK_SYSID = 5, /* system identifier differs from the one this replica holds */
};

/* ERROR codes. */
enum wire_error {
	WIRE_ERR_PROTOCOL = 1, /* malformed frame or unexpected message */
	WIRE_ERR_VERSION = 2, /* protocol version not supported */
	WIRE_ERR_INCOMPATIBLE = 3, /* system id, page magic, sizes or architecture differ */
	WIRE_ERR_ROLE = 4, /* peer has the wrong role (data flows one way only) */
	WIRE_ERR_TOO_MANY = 5, /* max_senders reached */
	WIRE_ERR_CHECKSUM = 6, /* CRC mismatch */
	WIRE_ERR_SHUTDOWN = 7, /* peer is shutting down */
	WIRE_ERR_NAME = 8, /* bad or duplicate node name */
	WIRE_ERR_ACCESS = 9, /* the access rules (hba_file) refuse this peer */
};

#endif /* WALSHIP_WIRE_H */
