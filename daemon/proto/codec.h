/* SPDX-License-Identifier: MIT */
/*
 * Encoding and decoding of walship wire frames (include/walship/wire.h, docs/protocol.md).
 *
 * Pure functions over byte buffers: no I/O, no allocation, so the transport (io_uring,
 * later TLS) and the unit tests and fuzzers drive them alike.  Decoders parse field by
 * field, check every length against the buffer and the protocol bounds before copying,
 * and return -EBADMSG (malformed) or -EPROTO (well-formed but not allowed, e.g. a length
 * over the bound for its type, non-zero reserved bits); a HELLO of another protocol
 * version is -EPROTONOSUPPORT, so that it is answered ERROR VERSION.
 */
#ifndef WALSHIP_PROTO_CODEC_H
#define WALSHIP_PROTO_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walship/wire.h>

#include "common/node_name.h"

struct frame_header {
	uint8_t type;
	uint8_t flags;
	uint32_t length;
	uint32_t payload_crc;
};

struct msg_hello {
	uint16_t version; /* WIRE_VERSION */
	uint8_t role; /* enum wire_role */
	uint8_t flags; /* reserved, 0 */
	uint64_t system_identifier; /* 0 when not yet known */
	uint16_t page_magic; /* 0 when not yet known */
	uint32_t seg_size; /* 0 when not yet known */
	uint32_t block_size; /* 0 when not yet known */
	char arch[WIRE_ARCH_LEN + 1]; /* e.g. "x86_64-le", NUL-terminated */
	char node_name[WIRE_MAX_NAME + 1];
};

struct msg_file_begin {
	uint32_t file_id; /* chosen by the sender, unique among files in flight */
	uint8_t kind; /* enum wire_file_kind */
	uint8_t flags; /* enum wire_begin_flags */
	uint64_t size; /* total size of the file */
	uint64_t start_offset; /* first byte that follows in DATA: 0, or a HAVE's durable */
	char name[WIRE_MAX_FILE_NAME + 1];
};

struct msg_data {
	uint32_t file_id;
	uint64_t offset;
	const uint8_t *data; /* points into the decoded payload */
	uint32_t len; /* 1 .. WIRE_CHUNK_SIZE */
};

struct msg_file_end {
	uint32_t file_id;
	uint64_t size; /* must equal FILE_BEGIN's size */
};

struct msg_ack {
	uint32_t file_id;
	uint8_t status; /* enum wire_ack_status */
	uint64_t durable_offset; /* bytes of the file that are durable */
	char name[WIRE_MAX_FILE_NAME + 1];
	char message[WIRE_MAX_MESSAGE + 1]; /* empty for STORED/DUPLICATE */
};

/* PROGRESS: of a streamed file, what the replica has received and made durable. */
struct msg_progress {
	uint32_t file_id;
	uint64_t received; /* bytes received (written, maybe not durable) */
	uint64_t durable; /* bytes durable: <= received */
};

/* APPLIED: the furthest WAL any PostgreSQL standby served by the replica reports applied,
 * on @timeline (docs/protocol.md); it only grows on one connection. */
struct msg_applied {
	uint32_t timeline; /* > 0 */
	uint64_t apply_lsn; /* > 0 */
};

/*
 * Whether an apply position (@tli, @lsn) is news after (@known_tli, @known_lsn), the rule
 * of every hop that passes APPLIED on (serve, relay, replica) and of the primary: further
 * on the same timeline, or on a later one however far (a standby that followed a timeline
 * switch which forked behind what was applied before: a filter on the LSN alone would
 * hold its reports back until the new timeline passed the old one's, and remote_apply
 * commits with them).  One on an earlier timeline is stale.
 */
static inline bool msg_applied_newer(uint32_t known_tli, uint64_t known_lsn, uint32_t tli,
				     uint64_t lsn)
{
	return tli > known_tli || (tli == known_tli && lsn > known_lsn);
}

/* FILE_CANCEL: the streamed file @file_id ends here, incomplete; the replica keeps nothing
 * of it and sends no ACK. */
struct msg_file_cancel {
	uint32_t file_id;
};

struct msg_error {
	uint32_t code; /* enum wire_error */
	char message[WIRE_MAX_MESSAGE + 1];
};

struct msg_ping {
	uint64_t token; /* echoed in PONG */
};

/* One file the replica holds, completely or a durable prefix of it. */
struct msg_have_entry {
	uint8_t kind; /* enum wire_have_kind */
	uint32_t crc; /* CRC-32C of the first @durable bytes */
	uint64_t size; /* the file's whole size */
	uint64_t durable; /* = size (complete), or 1 .. size - 1 (partial) */
	char name[WIRE_MAX_FILE_NAME + 1];
};

struct msg_have {
	uint32_t count; /* 0 .. WIRE_MAX_HAVE */
	struct msg_have_entry entries[WIRE_MAX_HAVE];
};

/* Bound on the payload length of frames of @type (0 for an unknown type). */
uint32_t frame_max_payload(uint8_t type);

/*
 * Write a 16-byte frame header into @out for a payload of @len bytes whose CRC-32C is
 * @payload_crc.
 */
void frame_header_encode(uint8_t *out, uint8_t type, uint8_t flags, uint32_t len,
			 uint32_t payload_crc);

/*
 * Decode the 16-byte header at @in.  Checks the header CRC, the type, the reserved field
 * and the length bound of the type.  Returns 0, -EBADMSG (bad header CRC: the stream is
 * corrupt), or -EPROTO (unknown type, reserved bits, length over the bound).
 */
int frame_header_decode(const uint8_t *in, struct frame_header *hdr);

/*
 * After frame_header_decode() said -EBADMSG: true when the 16 bytes at @in still look
 * like a frame header (a known type, zero flags and reserved, a length within the bound
 * of the type), i.e. a frame damaged in transit (answered ERROR CHECKSUM) rather than
 * bytes of another protocol or garbage (ERROR PROTOCOL).
 */
bool frame_header_plausible(const uint8_t *in);

/* Check @payload against hdr->payload_crc.  Returns 0 or -EBADMSG. */
int frame_payload_check(const struct frame_header *hdr, const uint8_t *payload);

/*
 * Encoders write a complete frame (header and payload) into @out of @cap bytes and return
 * its total length, or -ENOSPC when @cap is too small, -EINVAL when a field is out of
 * bounds (name too long or with bad characters, text too long).
 */
int msg_hello_encode(uint8_t *out, size_t cap, const struct msg_hello *m);
int msg_file_begin_encode(uint8_t *out, size_t cap, const struct msg_file_begin *m);
int msg_file_end_encode(uint8_t *out, size_t cap, const struct msg_file_end *m);
int msg_ack_encode(uint8_t *out, size_t cap, const struct msg_ack *m);
int msg_error_encode(uint8_t *out, size_t cap, const struct msg_error *m);
int msg_ping_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_ping *m);
int msg_have_encode(uint8_t *out, size_t cap, const struct msg_have *m);
int msg_progress_encode(uint8_t *out, size_t cap, const struct msg_progress *m);
int msg_file_cancel_encode(uint8_t *out, size_t cap, const struct msg_file_cancel *m);
int msg_applied_encode(uint8_t *out, size_t cap, const struct msg_applied *m);

/*
 * DATA frames are built in place so content read from disk into a buffer need not be
 * copied: the caller reads @len content bytes at @frame + WIRE_HEADER_SIZE +
 * WIRE_DATA_HEADER_SIZE, then calls this to fill the data header and the frame header
 * (computing the CRC over the payload).  Returns the total frame length.
 */
int msg_data_seal(uint8_t *frame, uint32_t file_id, uint64_t offset, uint32_t len);

/*
 * DATA frames whose content stays where it is (a mapping of the WAL file) and is sent
 * with a second iovec: msg_data_split_begin() writes the DATA header into @hdr (which has
 * room for WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE bytes) and returns the CRC state over
 * it; the caller continues that CRC over the @len content bytes (crc32c(state, content,
 * len)) and passes the result to msg_data_split_end(), which writes the frame header.
 * The bytes on the wire are the same as msg_data_seal()'s.  split_end returns the header
 * length, or -EINVAL when @len is out of bounds.
 */
uint32_t msg_data_split_begin(uint8_t *hdr, uint32_t file_id, uint64_t offset);
int msg_data_split_end(uint8_t *hdr, uint64_t offset, uint32_t len, uint32_t crc);

/*
 * Decoders take the payload of a frame whose header decoded and whose CRC checked.
 * Return 0, -EBADMSG or -EPROTO.  Names are checked for characters and length; text is
 * copied NUL-terminated.  msg_hello_decode() reads the version before anything else: a
 * version other than WIRE_VERSION is -EPROTONOSUPPORT (answer ERROR VERSION), with
 * m->version set and the rest of @m zero.  It returns -EINVAL when all is well but the
 * node name, which breaks node_name_valid() (answer ERROR NAME); m->node_name then holds
 * the name as received (no NUL inside, at most WIRE_MAX_NAME bytes, maybe unprintable).
 */
int msg_hello_decode(const uint8_t *payload, uint32_t len, struct msg_hello *m);
int msg_file_begin_decode(const uint8_t *payload, uint32_t len, struct msg_file_begin *m);
int msg_data_decode(const uint8_t *payload, uint32_t len, struct msg_data *m);
int msg_file_end_decode(const uint8_t *payload, uint32_t len, struct msg_file_end *m);
int msg_ack_decode(const uint8_t *payload, uint32_t len, struct msg_ack *m);
int msg_error_decode(const uint8_t *payload, uint32_t len, struct msg_error *m);
int msg_ping_decode(const uint8_t *payload, uint32_t len, struct msg_ping *m);
int msg_have_decode(const uint8_t *payload, uint32_t len, struct msg_have *m);
int msg_progress_decode(const uint8_t *payload, uint32_t len, struct msg_progress *m);
int msg_file_cancel_decode(const uint8_t *payload, uint32_t len, struct msg_file_cancel *m);
int msg_applied_decode(const uint8_t *payload, uint32_t len, struct msg_applied *m);

/* This build's architecture string for HELLO ("x86_64-le"). */
const char *wire_arch(void);

/* Names for messages: "HELLO", ...; "ACK" statuses "stored", ...; error codes. */
const char *wire_type_name(uint8_t type);
const char *wire_ack_status_name(uint8_t status);
const char *wire_error_name(uint32_t code);

#endif /* WALSHIP_PROTO_CODEC_H */
