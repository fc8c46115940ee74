/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL's physical replication protocol as a client sees it inside START_REPLICATION's
 * CopyBoth stream: the payloads of CopyData messages (the first byte says which), LSNs in
 * their text form and PostgreSQL timestamps.  Pure functions over buffers, no libpq: the
 * source layer (source/pgsource.c) hands in what PQgetCopyData() returned and sends what
 * pgrepl_build_status() wrote with PQputCopyData().
 *
 *   'w' XLogData        server -> client  'w' dataStart walEnd sendTime WAL-bytes...
 *   'k' keepalive       server -> client  'k' walEnd sendTime replyRequested      (18 bytes)
 *   'r' status update   client -> server  'r' write flush apply sendTime replyRequested (34)
 *   'h' hot standby     client -> server  'h' sendTime xmin xminEpoch catalogXmin
 *       feedback                             catalogXminEpoch                        (25)
 *
 * Every integer is big-endian; an LSN is a byte position in the WAL (0 = invalid); a
 * timestamp is microseconds since 2000-01-01 00:00:00 UTC.
 */
#ifndef WALSHIP_PROTO_PGREPL_H
#define WALSHIP_PROTO_PGREPL_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PGREPL_MSG_XLOGDATA 'w'
#define PGREPL_MSG_KEEPALIVE 'k'
#define PGREPL_MSG_STATUS 'r'
#define PGREPL_MSG_HS_FEEDBACK 'h'

#define PGREPL_XLOGDATA_HDR 25 /* 'w' + dataStart + walEnd + sendTime */
#define PGREPL_KEEPALIVE_LEN 18 /* 'k' + walEnd + sendTime + replyRequested */
#define PGREPL_STATUS_LEN 34 /* 'r' + write + flush + apply + sendTime + replyRequested */
#define PGREPL_HS_FEEDBACK_LEN 25 /* 'h' + sendTime + 4 x 32-bit xmin and epochs */

/* Longest text form of an LSN, "FFFFFFFF/FFFFFFFF", with its NUL. */
#define PGREPL_LSN_TEXT 18

/* Seconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00:00 UTC. */
#define PGREPL_EPOCH_OFFSET_S 946684800LL

/* A big-endian 64-bit integer at @p (any alignment). */
static inline uint64_t pgrepl_get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static inline void pgrepl_put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

struct pgrepl_xlogdata {
	uint64_t data_start; /* LSN of data[0] */
	uint64_t wal_end; /* the server's end of WAL when it sent this: not ours to report */
	int64_t send_time; /* server clock, PostgreSQL timestamp */
	const uint8_t *data; /* points into the message given to pgrepl_parse_xlogdata() */
	uint32_t len;
};

struct pgrepl_keepalive {
	uint64_t wal_end; /* how far the walsender has sent */
	int64_t send_time;
	bool reply_requested; /* answer with a status update at once */
};

/*
 * Parse the CopyData payload @msg of @len bytes as XLogData ('w').  Returns 0, or -EINVAL
 * when it is not a 'w', is shorter than its 25-byte header, or its data would pass the end
 * of the LSN space.  @out->data points into @msg.
 */
int pgrepl_parse_xlogdata(const uint8_t *msg, size_t len, struct pgrepl_xlogdata *out);

/* Parse a keepalive ('k'): exactly 18 bytes, as PostgreSQL's own walreceiver requires,
 * replyRequested 0 or 1.  Returns 0 or -EINVAL. */
int pgrepl_parse_keepalive(const uint8_t *msg, size_t len, struct pgrepl_keepalive *out);

/* Write a Standby Status Update ('r') into @buf (PGREPL_STATUS_LEN bytes): positions are
 * "everything before this LSN" (0 = not reported), @send_time a PostgreSQL timestamp. */
void pgrepl_build_status(uint8_t buf[PGREPL_STATUS_LEN], uint64_t write, uint64_t flush,
			 uint64_t apply, int64_t send_time, bool reply_requested);

/* A standby status update ('r') as a server reads it. */
struct pgrepl_status {
	uint64_t write, flush, apply; /* 0 = not reported */
	int64_t send_time;
	bool reply_requested;
};

/* Hot standby feedback ('h'): the standby's oldest xmins (0 = none). */
struct pgrepl_hs_feedback {
	int64_t send_time;
	uint32_t xmin, xmin_epoch, catalog_xmin, catalog_xmin_epoch;
};

/* Parse a status update ('r'): at least 34 bytes (bytes after them are ignored, as
 * PostgreSQL's walsender reads the fields it knows).  Returns 0 or -EINVAL. */
int pgrepl_parse_status(const uint8_t *msg, size_t len, struct pgrepl_status *out);

/* Parse hot standby feedback ('h'): at least 25 bytes (as a status update).  Returns 0
 * or -EINVAL. */
int pgrepl_parse_hs_feedback(const uint8_t *msg, size_t len, struct pgrepl_hs_feedback *out);

/* Write the 25-byte header of an XLogData ('w') whose WAL bytes start at LSN @data_start;
 * the caller puts the bytes after it. */
void pgrepl_build_xlogdata_header(uint8_t buf[PGREPL_XLOGDATA_HDR], uint64_t data_start,
				  uint64_t wal_end, int64_t send_time);

/* Write a keepalive ('k'). */
void pgrepl_build_keepalive(uint8_t buf[PGREPL_KEEPALIVE_LEN], uint64_t wal_end, int64_t send_time,
			    bool reply_requested);

/*
 * Parse an LSN written as PostgreSQL writes it, "%X/%X" (two hex numbers of 1 to 8
 * digits, upper or lower case, nothing around them).  Returns 0 or -EINVAL.
 */
int pgrepl_lsn_parse(const char *text, uint64_t *lsn);

/* Format @lsn as "%X/%X" into @buf (PGREPL_LSN_TEXT bytes are always enough); returns @buf. */
char *pgrepl_lsn_format(uint64_t lsn, char *buf, size_t len);

/* PostgreSQL timestamp (µs since 2000-01-01) of a Unix time in µs, and back. */
static inline int64_t pgrepl_time_from_unix_us(int64_t unix_us)
{
	return unix_us - PGREPL_EPOCH_OFFSET_S * 1000000LL;
}

static inline int64_t pgrepl_time_to_unix_us(int64_t pg_time)
{
	return pg_time + PGREPL_EPOCH_OFFSET_S * 1000000LL;
}

/* The wall clock now as a PostgreSQL timestamp (CLOCK_REALTIME). */
int64_t pgrepl_time_now(void);

/*
 * Parse SHOW wal_segment_size's answer ("16MB", "1GB", "64kB" or a bare byte count) into
 * bytes; it must be a power of two from 1 MB to 1 GB, as initdb allows.  Returns 0 or
 * -EINVAL.
 */
int pgrepl_parse_seg_size(const char *text, uint32_t *bytes);

/*
 * Parse SHOW wal_sender_timeout's answer (a bare count of milliseconds, or one with the
 * unit PostgreSQL shows: "500ms", "60s", "1min", "2h", "1d") into milliseconds (0: the
 * timeout is off).  Returns 0 or -EINVAL.
 */
int pgrepl_parse_timeout_ms(const char *text, int64_t *ms);

#endif /* WALSHIP_PROTO_PGREPL_H */
