// SPDX-License-Identifier: MIT
/*
 * walship wire frame codec (contract in codec.h, byte layouts in docs/protocol.md).
 *
 * Every field is written and read one at a time, little-endian, through the cursor
 * helpers below; no struct is ever laid over a buffer.  Decoders check the length of the
 * payload against the fixed part of the message first, then each variable-length field
 * against its bound and against what is left, and finally that nothing is left over.
 *
 * Error classes, as codec.h defines them:
 *   -EBADMSG  the bytes do not form the message (too short, lengths that do not add up,
 *             trailing bytes, a CRC mismatch);
 *   -EPROTO   the message is well formed but carries a value the protocol forbids (a
 *             length over its bound, non-zero reserved bits, an enum out of range, a bad
 *             name, a NUL inside text);
 *   -EPROTONOSUPPORT  a HELLO of another protocol version (the peer is answered ERROR
 *             VERSION, not PROTOCOL);
 *   -EINVAL   HELLO only: the node name breaks the node-name rule (common/node_name.h),
 *             which the receiver answers with ERROR NAME.
 */
#include <errno.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/node_name.h"
#include "proto/codec.h"
#include "wal/name.h"

/* Fixed parts of each payload; the variable parts follow (docs/protocol.md). */
#define HELLO_FIXED 41 /* ... arch(16) name_len(1), then the node name */
#define FILE_BEGIN_FIXED 25 /* ... start_offset(8) name_len(1), then the file name */
#define FILE_END_SIZE 16
#define ACK_FIXED 19 /* 17 + name + msg_len(2) + message */
#define ERROR_FIXED 6
#define PING_SIZE 8
#define PROGRESS_SIZE 24 /* file_id(4) reserved(4) received(8) durable(8) */
#define FILE_CANCEL_SIZE 8 /* file_id(4) reserved(4) */
#define APPLIED_SIZE 16 /* timeline(4) reserved(4) apply_lsn(8) */
#define HAVE_FIXED 4 /* count(2) reserved(2), then the entries */
#define HAVE_ENTRY_FIXED 25 /* kind(1) reserved(3) crc(4) size(8) durable(8) name_len(1) */

#define HELLO_MAX (HELLO_FIXED + WIRE_MAX_NAME)
#define FILE_BEGIN_MAX (FILE_BEGIN_FIXED + WIRE_MAX_FILE_NAME)
#define ACK_MAX (ACK_FIXED + WIRE_MAX_FILE_NAME + WIRE_MAX_MESSAGE)
#define ERROR_MAX (ERROR_FIXED + WIRE_MAX_MESSAGE)
#define HAVE_MAX (HAVE_FIXED + WIRE_MAX_HAVE * (HAVE_ENTRY_FIXED + WIRE_MAX_FILE_NAME))

_Static_assert(HAVE_MAX <= WIRE_MAX_CONTROL_PAYLOAD, "HAVE fits a control frame");

/* Little-endian writer over a buffer whose size the caller has already checked. */
struct writer {
	uint8_t *at;
};

static void put_u8(struct writer *w, uint8_t v)
{
	*w->at++ = v;
}

static void put_u16(struct writer *w, uint16_t v)
{
	put_u8(w, (uint8_t)v);
	put_u8(w, (uint8_t)(v >> 8));
}

static void put_u32(struct writer *w, uint32_t v)
{
	put_u16(w, (uint16_t)v);
	put_u16(w, (uint16_t)(v >> 16));
}

static void put_u64(struct writer *w, uint64_t v)
{
	put_u32(w, (uint32_t)v);
	put_u32(w, (uint32_t)(v >> 32));
}

static void put_bytes(struct writer *w, const void *data, size_t len)
{
	if (len > 0)
		memcpy(w->at, data, len);
	w->at += len;
}

/* Little-endian reader; get_* are called only after need() said the bytes are there. */
struct reader {
	const uint8_t *at;
	uint32_t left;
};

static bool need(const struct reader *r, uint32_t len)
{
	return r->left >= len;
}

static uint8_t get_u8(struct reader *r)
{
	r->left--;
	return *r->at++;
}

static uint16_t get_u16(struct reader *r)
{
	uint16_t lo = get_u8(r);

	return (uint16_t)(lo | (get_u8(r) << 8));
}

static uint32_t get_u32(struct reader *r)
{
	uint32_t lo = get_u16(r);

	return lo | ((uint32_t)get_u16(r) << 16);
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t lo = get_u32(r);

	return lo | ((uint64_t)get_u32(r) << 32);
}

static void get_bytes(struct reader *r, void *out, uint32_t len)
{
	if (len > 0)
		memcpy(out, r->at, len);
	r->at += len;
	r->left -= len;
}

/*
 * Read a u8-length-prefixed name of at most @max bytes into @out (NUL-terminated).
 * Returns 0, -EPROTO (over the bound, or a NUL inside) or -EBADMSG (runs past the end).
 */
static int get_name(struct reader *r, char *out, uint32_t max)
{
	uint32_t len;

	if (!need(r, 1))
		return -EBADMSG;
	len = get_u8(r);
	if (len > max)
		return -EPROTO;
	if (!need(r, len))
		return -EBADMSG;
	get_bytes(r, out, len);
	out[len] = '\0';
	if (memchr(out, '\0', len))
		return -EPROTO;
	return 0;
}

/* Same for u16-length-prefixed text of at most WIRE_MAX_MESSAGE bytes. */
static int get_text(struct reader *r, char *out)
{
	uint32_t len;

	if (!need(r, 2))
		return -EBADMSG;
	len = get_u16(r);
	if (len > WIRE_MAX_MESSAGE)
		return -EPROTO;
	if (!need(r, len))
		return -EBADMSG;
	get_bytes(r, out, len);
	out[len] = '\0';
	if (memchr(out, '\0', len))
		return -EPROTO;
	return 0;
}

uint32_t frame_max_payload(uint8_t type)
{
	switch (type) {
	case WIRE_HELLO:
		/*
		 * Larger than this version's HELLO: a later version may add fields, and the
		 * receiver must get far enough to read the version and answer ERROR VERSION.
		 */
		return WIRE_MAX_CONTROL_PAYLOAD;
	case WIRE_FILE_BEGIN:
		return FILE_BEGIN_MAX;
	case WIRE_DATA:
		return WIRE_MAX_PAYLOAD;
	case WIRE_FILE_END:
		return FILE_END_SIZE;
	case WIRE_ACK:
		return ACK_MAX;
	case WIRE_ERROR:
		return ERROR_MAX;
	case WIRE_PING:
	case WIRE_PONG:
		return PING_SIZE;
	case WIRE_HAVE:
		return HAVE_MAX;
	case WIRE_PROGRESS:
		return PROGRESS_SIZE;
	case WIRE_FILE_CANCEL:
		return FILE_CANCEL_SIZE;
	case WIRE_APPLIED:
		return APPLIED_SIZE;
	}
	return 0;
}

void frame_header_encode(uint8_t *out, uint8_t type, uint8_t flags, uint32_t len,
			 uint32_t payload_crc)
{
	struct writer w = { out };

	put_u8(&w, type);
	put_u8(&w, flags);
	put_u16(&w, 0);
	put_u32(&w, len);
	put_u32(&w, payload_crc);
	put_u32(&w, crc32c(0, out, 12));
}

int frame_header_decode(const uint8_t *in, struct frame_header *hdr)
{
	struct reader r = { in, WIRE_HEADER_SIZE };
	uint16_t reserved;
	uint32_t header_crc;

	memset(hdr, 0, sizeof(*hdr));
	hdr->type = get_u8(&r);
	hdr->flags = get_u8(&r);
	reserved = get_u16(&r);
	hdr->length = get_u32(&r);
	hdr->payload_crc = get_u32(&r);
	header_crc = get_u32(&r);

	if (header_crc != crc32c(0, in, 12))
		return -EBADMSG;
	if (frame_max_payload(hdr->type) == 0)
		return -EPROTO;
	/* No frame type defines flags yet. */
	if (hdr->flags != 0 || reserved != 0)
		return -EPROTO;
	if (hdr->length > frame_max_payload(hdr->type))
		return -EPROTO;
	return 0;
}

bool frame_header_plausible(const uint8_t *in)
{
	struct reader r = { in, WIRE_HEADER_SIZE };
	uint8_t type = get_u8(&r);
	uint8_t flags = get_u8(&r);
	uint16_t reserved = get_u16(&r);
	uint32_t length = get_u32(&r);

	return frame_max_payload(type) != 0 && flags == 0 && reserved == 0 &&
	       length <= frame_max_payload(type);
}

int frame_payload_check(const struct frame_header *hdr, const uint8_t *payload)
{
	return crc32c(0, payload, hdr->length) == hdr->payload_crc ? 0 : -EBADMSG;
}

/*
 * Common tail of every encoder: the payload is at @out + WIRE_HEADER_SIZE, @len bytes;
 * write the frame header over the first 16 bytes and return the frame length.
 */
static int seal(uint8_t *out, uint8_t type, uint32_t len)
{
	frame_header_encode(out, type, 0, len, crc32c(0, out + WIRE_HEADER_SIZE, len));
	return (int)(WIRE_HEADER_SIZE + len);
}

/* Length of the NUL-terminated string in the array @text of @size, or -1 if it has no NUL. */
static long bounded_len(const char *text, size_t size)
{
	size_t len = strnlen(text, size);

	return len == size ? -1 : (long)len;
}

static bool arch_valid(const char *arch, size_t len)
{
	if (len == 0 || len > WIRE_ARCH_LEN)
		return false;
	for (size_t idx = 0; idx < len; idx++) {
		if (arch[idx] <= ' ' || arch[idx] > '~')
			return false;
	}
	return true;
}

/* A WAL file name that fits the wire bound, and the kind it names. */
static bool file_name_valid(const char *name, uint8_t *kind)
{
	struct wal_name parsed;

	if (wal_name_parse(name, &parsed) != 0)
		return false;
	if (kind)
		*kind = (uint8_t)parsed.kind;
	return true;
}

int msg_hello_encode(uint8_t *out, size_t cap, const struct msg_hello *m)
{
	struct writer w;
	long arch_len = bounded_len(m->arch, sizeof(m->arch));
	long name_len = bounded_len(m->node_name, sizeof(m->node_name));
	uint32_t len;
	uint8_t arch[WIRE_ARCH_LEN] = { 0 };

	if (m->role != WIRE_ROLE_PRIMARY && m->role != WIRE_ROLE_REPLICA)
		return -EINVAL;
	if (m->flags != 0 || arch_len < 0 || !arch_valid(m->arch, (size_t)arch_len) ||
	    name_len < 0 || !node_name_valid(m->node_name))
		return -EINVAL;
	len = HELLO_FIXED + (uint32_t)name_len;
	if (cap < WIRE_HEADER_SIZE + len)
		return -ENOSPC;

	memcpy(arch, m->arch, (size_t)arch_len);
	w.at = out + WIRE_HEADER_SIZE;
	put_u16(&w, m->version);
	put_u8(&w, m->role);
	put_u8(&w, 0);
	put_u64(&w, m->system_identifier);
	put_u16(&w, m->page_magic);
	put_u16(&w, 0);
	put_u32(&w, m->seg_size);
	put_u32(&w, m->block_size);
	put_bytes(&w, arch, sizeof(arch));
	put_u8(&w, (uint8_t)name_len);
	put_bytes(&w, m->node_name, (size_t)name_len);
	return seal(out, WIRE_HELLO, len);
}

int msg_hello_decode(const uint8_t *payload, uint32_t len, struct msg_hello *m)
{
	struct reader r = { payload, len };
	uint16_t reserved;
	char *nul;
	int ret;

	memset(m, 0, sizeof(*m));
	if (!need(&r, 2))
		return -EBADMSG;
	/* The version first: a peer of another version may lay out the rest differently. */
	m->version = get_u16(&r);
	if (m->version != WIRE_VERSION)
		return -EPROTONOSUPPORT;
	if (!need(&r, HELLO_FIXED - 2))
		return -EBADMSG;
	m->role = get_u8(&r);
	m->flags = get_u8(&r);
	m->system_identifier = get_u64(&r);
	m->page_magic = get_u16(&r);
	reserved = get_u16(&r);
	m->seg_size = get_u32(&r);
	m->block_size = get_u32(&r);
	get_bytes(&r, m->arch, WIRE_ARCH_LEN);
	m->arch[WIRE_ARCH_LEN] = '\0';
	ret = get_name(&r, m->node_name, WIRE_MAX_NAME);
	if (ret)
		return ret;
	if (r.left != 0)
		return -EBADMSG;

	if (m->role != WIRE_ROLE_PRIMARY && m->role != WIRE_ROLE_REPLICA)
		return -EPROTO;
	if (m->flags != 0 || reserved != 0)
		return -EPROTO;
	/* Arch: printable characters, then NUL padding only. */
	nul = memchr(m->arch, '\0', WIRE_ARCH_LEN);
	if (!arch_valid(m->arch, strlen(m->arch)))
		return -EPROTO;
	if (nul) {
		for (const char *pad = nul; pad < m->arch + WIRE_ARCH_LEN; pad++) {
			if (*pad != '\0')
				return -EPROTO;
		}
	}
	if (!node_name_valid(m->node_name))
		return -EINVAL;
	return 0;
}

int msg_file_begin_encode(uint8_t *out, size_t cap, const struct msg_file_begin *m)
{
	struct writer w;
	long name_len = bounded_len(m->name, sizeof(m->name));
	uint8_t name_kind;
	uint32_t len;

	if (name_len < 0 || !file_name_valid(m->name, &name_kind) || name_kind != m->kind)
		return -EINVAL;
	if ((m->flags & ~WIRE_BEGIN_FLAGS_KNOWN) || m->start_offset > m->size)
		return -EINVAL;
	len = FILE_BEGIN_FIXED + (uint32_t)name_len;
	if (cap < WIRE_HEADER_SIZE + len)
		return -ENOSPC;

	w.at = out + WIRE_HEADER_SIZE;
	put_u32(&w, m->file_id);
	put_u8(&w, m->kind);
	put_u8(&w, m->flags);
	put_u16(&w, 0);
	put_u64(&w, m->size);
	put_u64(&w, m->start_offset);
	put_u8(&w, (uint8_t)name_len);
	put_bytes(&w, m->name, (size_t)name_len);
	return seal(out, WIRE_FILE_BEGIN, len);
}

int msg_file_begin_decode(const uint8_t *payload, uint32_t len, struct msg_file_begin *m)
{
	struct reader r = { payload, len };
	uint16_t reserved;
	uint8_t name_kind;
	int ret;

	memset(m, 0, sizeof(*m));
	if (!need(&r, FILE_BEGIN_FIXED - 1))
		return -EBADMSG;
	m->file_id = get_u32(&r);
	m->kind = get_u8(&r);
	m->flags = get_u8(&r);
	reserved = get_u16(&r);
	m->size = get_u64(&r);
	m->start_offset = get_u64(&r);
	ret = get_name(&r, m->name, WIRE_MAX_FILE_NAME);
	if (ret)
		return ret;
	if (r.left != 0)
		return -EBADMSG;

	if ((m->flags & ~WIRE_BEGIN_FLAGS_KNOWN) || reserved != 0)
		return -EPROTO;
	/* Only a segment is streamed. */
	if ((m->flags & WIRE_BEGIN_STREAM) && m->kind != WIRE_FILE_SEGMENT)
		return -EPROTO;
	if (m->kind < WIRE_FILE_SEGMENT || m->kind > WIRE_FILE_BACKUP)
		return -EPROTO;
	if (!file_name_valid(m->name, &name_kind) || name_kind != m->kind)
		return -EPROTO;
	if (m->start_offset > m->size)
		return -EPROTO;
	return 0;
}

int msg_data_seal(uint8_t *frame, uint32_t file_id, uint64_t offset, uint32_t len)
{
	struct writer w = { frame + WIRE_HEADER_SIZE };

	if (len == 0 || len > WIRE_CHUNK_SIZE || offset > UINT64_MAX - len)
		return -EINVAL;
	put_u32(&w, file_id);
	put_u32(&w, 0);
	put_u64(&w, offset);
	return seal(frame, WIRE_DATA, WIRE_DATA_HEADER_SIZE + len);
}

uint32_t msg_data_split_begin(uint8_t *hdr, uint32_t file_id, uint64_t offset)
{
	struct writer w = { hdr + WIRE_HEADER_SIZE };

	put_u32(&w, file_id);
	put_u32(&w, 0);
	put_u64(&w, offset);
	return crc32c(0, hdr + WIRE_HEADER_SIZE, WIRE_DATA_HEADER_SIZE);
}

int msg_data_split_end(uint8_t *hdr, uint64_t offset, uint32_t len, uint32_t crc)
{
	if (len == 0 || len > WIRE_CHUNK_SIZE || offset > UINT64_MAX - len)
		return -EINVAL;
	frame_header_encode(hdr, WIRE_DATA, 0, WIRE_DATA_HEADER_SIZE + len, crc);
	return WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE;
}

int msg_data_decode(const uint8_t *payload, uint32_t len, struct msg_data *m)
{
	struct reader r = { payload, len };
	uint32_t reserved;

	memset(m, 0, sizeof(*m));
	if (!need(&r, WIRE_DATA_HEADER_SIZE))
		return -EBADMSG;
	m->file_id = get_u32(&r);
	reserved = get_u32(&r);
	m->offset = get_u64(&r);
	m->data = r.at;
	m->len = r.left;

	if (reserved != 0)
		return -EPROTO;
	if (m->len == 0 || m->len > WIRE_CHUNK_SIZE || m->offset > UINT64_MAX - m->len)
		return -EPROTO;
	return 0;
}

int msg_file_end_encode(uint8_t *out, size_t cap, const struct msg_file_end *m)
{
	struct writer w;

	if (cap < WIRE_HEADER_SIZE + FILE_END_SIZE)
		return -ENOSPC;
	w.at = out + WIRE_HEADER_SIZE;
	put_u32(&w, m->file_id);
	put_u32(&w, 0);
	put_u64(&w, m->size);
	return seal(out, WIRE_FILE_END, FILE_END_SIZE);
}

int msg_progress_encode(uint8_t *out, size_t cap, const struct msg_progress *m)
{
	struct writer w;

	if (m->durable > m->received)
		return -EINVAL;
	if (cap < WIRE_HEADER_SIZE + PROGRESS_SIZE)
		return -ENOSPC;
	w.at = out + WIRE_HEADER_SIZE;
	put_u32(&w, m->file_id);
	put_u32(&w, 0);
	put_u64(&w, m->received);
	put_u64(&w, m->durable);
	return seal(out, WIRE_PROGRESS, PROGRESS_SIZE);
}

int msg_progress_decode(const uint8_t *payload, uint32_t len, struct msg_progress *m)
{
	struct reader r = { payload, len };
	uint32_t reserved;

	memset(m, 0, sizeof(*m));
	if (len != PROGRESS_SIZE)
		return -EBADMSG;
	m->file_id = get_u32(&r);
	reserved = get_u32(&r);
	m->received = get_u64(&r);
	m->durable = get_u64(&r);
	return reserved != 0 || m->durable > m->received ? -EPROTO : 0;
}

int msg_applied_encode(uint8_t *out, size_t cap, const struct msg_applied *m)
{
	struct writer w;

	if (!m->timeline || !m->apply_lsn)
		return -EINVAL;
	if (cap < WIRE_HEADER_SIZE + APPLIED_SIZE)
		return -ENOSPC;
	w.at = out + WIRE_HEADER_SIZE;
	put_u32(&w, m->timeline);
	put_u32(&w, 0);
	put_u64(&w, m->apply_lsn);
	return seal(out, WIRE_APPLIED, APPLIED_SIZE);
}

int msg_applied_decode(const uint8_t *payload, uint32_t len, struct msg_applied *m)
{
	struct reader r = { payload, len };
	uint32_t reserved;

	memset(m, 0, sizeof(*m));
	if (len != APPLIED_SIZE)
		return -EBADMSG;
	m->timeline = get_u32(&r);
	reserved = get_u32(&r);
	m->apply_lsn = get_u64(&r);
	return reserved != 0 || !m->timeline || !m->apply_lsn ? -EPROTO : 0;
}

int msg_file_cancel_encode(uint8_t *out, size_t cap, const struct msg_file_cancel *m)
{
	struct writer w;

	if (cap < WIRE_HEADER_SIZE + FILE_CANCEL_SIZE)
		return -ENOSPC;
	w.at = out + WIRE_HEADER_SIZE;
	put_u32(&w, m->file_id);
	put_u32(&w, 0);
	return seal(out, WIRE_FILE_CANCEL, FILE_CANCEL_SIZE);
}

int msg_file_cancel_decode(const uint8_t *payload, uint32_t len, struct msg_file_cancel *m)
{
	struct reader r = { payload, len };
	uint32_t reserved;

	memset(m, 0, sizeof(*m));
	if (len != FILE_CANCEL_SIZE)
		return -EBADMSG;
	m->file_id = get_u32(&r);
	reserved = get_u32(&r);
	return reserved != 0 ? -EPROTO : 0;
}

int msg_file_end_decode(const uint8_t *payload, uint32_t len, struct msg_file_end *m)
{
	struct reader r = { payload, len };
	uint32_t reserved;

	memset(m, 0, sizeof(*m));
	if (len != FILE_END_SIZE)
		return -EBADMSG;
	m->file_id = get_u32(&r);
	reserved = get_u32(&r);
	m->size = get_u64(&r);
	return reserved != 0 ? -EPROTO : 0;
}

int msg_ack_encode(uint8_t *out, size_t cap, const struct msg_ack *m)
{
	struct writer w;
	long name_len = bounded_len(m->name, sizeof(m->name));
	long msg_len = bounded_len(m->message, sizeof(m->message));
	uint32_t len;

	if (m->status > WIRE_ACK_SYSID)
		return -EINVAL;
	if (name_len < 0 || !file_name_valid(m->name, NULL) || msg_len < 0)
		return -EINVAL;
	len = ACK_FIXED + (uint32_t)name_len + (uint32_t)msg_len;
	if (cap < WIRE_HEADER_SIZE + len)
		return -ENOSPC;

	w.at = out + WIRE_HEADER_SIZE;
	put_u32(&w, m->file_id);
	put_u8(&w, m->status);
	put_u8(&w, 0);
	put_u16(&w, 0);
	put_u64(&w, m->durable_offset);
	put_u8(&w, (uint8_t)name_len);
	put_bytes(&w, m->name, (size_t)name_len);
	put_u16(&w, (uint16_t)msg_len);
	put_bytes(&w, m->message, (size_t)msg_len);
	return seal(out, WIRE_ACK, len);
}

int msg_ack_decode(const uint8_t *payload, uint32_t len, struct msg_ack *m)
{
	struct reader r = { payload, len };
	uint8_t reserved8;
	uint16_t reserved16;
	int ret;

	memset(m, 0, sizeof(*m));
	if (!need(&r, ACK_FIXED - 3))
		return -EBADMSG;
	m->file_id = get_u32(&r);
	m->status = get_u8(&r);
	reserved8 = get_u8(&r);
	reserved16 = get_u16(&r);
	m->durable_offset = get_u64(&r);
	ret = get_name(&r, m->name, WIRE_MAX_FILE_NAME);
	if (ret)
		return ret;
	ret = get_text(&r, m->message);
	if (ret)
		return ret;
	if (r.left != 0)
		return -EBADMSG;

	if (reserved8 != 0 || reserved16 != 0)
		return -EPROTO;
	if (m->status > WIRE_ACK_SYSID)
		return -EPROTO;
	if (!file_name_valid(m->name, NULL))
		return -EPROTO;
	return 0;
}

int msg_error_encode(uint8_t *out, size_t cap, const struct msg_error *m)
{
	struct writer w;
	long msg_len = bounded_len(m->message, sizeof(m->message));
	uint32_t len;

	if (m->code < WIRE_ERR_PROTOCOL || m->code > WIRE_ERR_ACCESS || msg_len < 0)
		return -EINVAL;
	len = ERROR_FIXED + (uint32_t)msg_len;
	if (cap < WIRE_HEADER_SIZE + len)
		return -ENOSPC;

	w.at = out + WIRE_HEADER_SIZE;
	put_u32(&w, m->code);
	put_u16(&w, (uint16_t)msg_len);
	put_bytes(&w, m->message, (size_t)msg_len);
	return seal(out, WIRE_ERROR, len);
}

int msg_error_decode(const uint8_t *payload, uint32_t len, struct msg_error *m)
{
	struct reader r = { payload, len };
	int ret;

	memset(m, 0, sizeof(*m));
	if (!need(&r, 4))
		return -EBADMSG;
	m->code = get_u32(&r);
	ret = get_text(&r, m->message);
	if (ret)
		return ret;
	if (r.left != 0)
		return -EBADMSG;
	if (m->code < WIRE_ERR_PROTOCOL || m->code > WIRE_ERR_ACCESS)
		return -EPROTO;
	return 0;
}

int msg_ping_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_ping *m)
{
	struct writer w;

	if (type != WIRE_PING && type != WIRE_PONG)
		return -EINVAL;
	if (cap < WIRE_HEADER_SIZE + PING_SIZE)
		return -ENOSPC;
	w.at = out + WIRE_HEADER_SIZE;
	put_u64(&w, m->token);
	return seal(out, type, PING_SIZE);
}

int msg_ping_decode(const uint8_t *payload, uint32_t len, struct msg_ping *m)
{
	struct reader r = { payload, len };

	memset(m, 0, sizeof(*m));
	if (len != PING_SIZE)
		return -EBADMSG;
	m->token = get_u64(&r);
	return 0;
}

/* An entry's sizes fit its kind: complete files whole, partial ones a strict prefix. */
static bool have_entry_valid(const struct msg_have_entry *e)
{
	if (e->size == 0)
		return false;
	if (e->kind == WIRE_HAVE_COMPLETE)
		return e->durable == e->size;
	if (e->kind == WIRE_HAVE_PARTIAL)
		return e->durable > 0 && e->durable < e->size;
	return false;
}

int msg_have_encode(uint8_t *out, size_t cap, const struct msg_have *m)
{
	struct writer w;
	uint32_t len = HAVE_FIXED;

	if (m->count > WIRE_MAX_HAVE)
		return -EINVAL;
	for (uint32_t idx = 0; idx < m->count; idx++) {
		const struct msg_have_entry *e = &m->entries[idx];
		long name_len = bounded_len(e->name, sizeof(e->name));

		if (name_len < 0 || !file_name_valid(e->name, NULL) || !have_entry_valid(e))
			return -EINVAL;
		len += HAVE_ENTRY_FIXED + (uint32_t)name_len;
	}
	if (cap < WIRE_HEADER_SIZE + len)
		return -ENOSPC;

	w.at = out + WIRE_HEADER_SIZE;
	put_u16(&w, (uint16_t)m->count);
	put_u16(&w, 0);
	for (uint32_t idx = 0; idx < m->count; idx++) {
		const struct msg_have_entry *e = &m->entries[idx];
		size_t name_len = strlen(e->name);

		put_u8(&w, e->kind);
		put_u8(&w, 0);
		put_u16(&w, 0);
		put_u32(&w, e->crc);
		put_u64(&w, e->size);
		put_u64(&w, e->durable);
		put_u8(&w, (uint8_t)name_len);
		put_bytes(&w, e->name, name_len);
	}
	return seal(out, WIRE_HAVE, len);
}

int msg_have_decode(const uint8_t *payload, uint32_t len, struct msg_have *m)
{
	struct reader r = { payload, len };
	uint16_t reserved;
	int ret;

	memset(m, 0, sizeof(*m));
	if (!need(&r, HAVE_FIXED))
		return -EBADMSG;
	m->count = get_u16(&r);
	reserved = get_u16(&r);
	if (reserved != 0 || m->count > WIRE_MAX_HAVE)
		return -EPROTO;
	for (uint32_t idx = 0; idx < m->count; idx++) {
		struct msg_have_entry *e = &m->entries[idx];
		uint8_t reserved8;

		if (!need(&r, HAVE_ENTRY_FIXED - 1))
			return -EBADMSG;
		e->kind = get_u8(&r);
		reserved8 = get_u8(&r);
		reserved = get_u16(&r);
		e->crc = get_u32(&r);
		e->size = get_u64(&r);
		e->durable = get_u64(&r);
		ret = get_name(&r, e->name, WIRE_MAX_FILE_NAME);
		if (ret)
			return ret;
		if (reserved8 != 0 || reserved != 0)
			return -EPROTO;
		if (!file_name_valid(e->name, NULL) || !have_entry_valid(e))
			return -EPROTO;
	}
	if (r.left != 0)
		return -EBADMSG;
	return 0;
}

/* Architecture and byte order of this build, from the compiler's predefined macros. */
#if defined(__x86_64__)
#define WIRE_ARCH_CPU "x86_64"
#elif defined(__aarch64__)
#define WIRE_ARCH_CPU "aarch64"
#elif defined(__i386__)
#define WIRE_ARCH_CPU "i386"
#elif defined(__arm__)
#define WIRE_ARCH_CPU "arm"
#elif defined(__riscv) && defined(__riscv_xlen) && __riscv_xlen == 64
#define WIRE_ARCH_CPU "riscv64"
#elif defined(__powerpc64__)
#define WIRE_ARCH_CPU "ppc64"
#elif defined(__s390x__)
#define WIRE_ARCH_CPU "s390x"
#elif defined(__loongarch64)
#define WIRE_ARCH_CPU "loongarch64"
#elif defined(__mips__)
#define WIRE_ARCH_CPU "mips"
#else
#define WIRE_ARCH_CPU "unknown"
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define WIRE_ARCH_ORDER "-be"
#else
#define WIRE_ARCH_ORDER "-le"
#endif

const char *wire_arch(void)
{
	return WIRE_ARCH_CPU WIRE_ARCH_ORDER;
}

const char *wire_type_name(uint8_t type)
{
	switch (type) {
	case WIRE_HELLO:
		return "HELLO";
	case WIRE_FILE_BEGIN:
		return "FILE_BEGIN";
	case WIRE_DATA:
		return "DATA";
	case WIRE_FILE_END:
		return "FILE_END";
	case WIRE_ACK:
		return "ACK";
	case WIRE_ERROR:
		return "ERROR";
	case WIRE_PING:
		return "PING";
	case WIRE_PONG:
		return "PONG";
	case WIRE_HAVE:
		return "HAVE";
	case WIRE_PROGRESS:
		return "PROGRESS";
	case WIRE_FILE_CANCEL:
		return "FILE_CANCEL";
	case WIRE_APPLIED:
		return "APPLIED";
	}
	return "unknown";
}

const char *wire_ack_status_name(uint8_t status)
{
	switch (status) {
	case WIRE_ACK_STORED:
		return "stored";
	case WIRE_ACK_DUPLICATE:
		return "duplicate";
	case WIRE_ACK_CONFLICT:
		return "conflict";
	case WIRE_ACK_INVALID:
		return "invalid";
	case WIRE_ACK_IO_ERROR:
		return "io_error";
	case WIRE_ACK_SYSID:
		return "sysid";
	}
	return "unknown";
}

const char *wire_error_name(uint32_t code)
{
	switch (code) {
	case WIRE_ERR_PROTOCOL:
		return "protocol";
	case WIRE_ERR_VERSION:
		return "version";
	case WIRE_ERR_INCOMPATIBLE:
		return "incompatible";
	case WIRE_ERR_ROLE:
		return "role";
	case WIRE_ERR_TOO_MANY:
		return "too_many";
	case WIRE_ERR_CHECKSUM:
		return "checksum";
	case WIRE_ERR_SHUTDOWN:
		return "shutdown";
	case WIRE_ERR_ACCESS:
		return "access";
	case WIRE_ERR_NAME:
		return "name";
	}
	return "unknown";
}
