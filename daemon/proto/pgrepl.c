// SPDX-License-Identifier: MIT
/*
 * PostgreSQL replication CopyData sub-messages, LSN text and timestamps (pgrepl.h).
 * libpq frames the CopyData messages but leaves their payloads to the client (as
 * PostgreSQL's own receivelog.c parses them by hand), so these few fields are parsed here.
 */
#include "proto/pgrepl.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "common/compiler.h"
#include "common/pgconf.h"
#include "wal/name.h"

int pgrepl_parse_xlogdata(const uint8_t *msg, size_t len, struct pgrepl_xlogdata *out)
{
	size_t data_len;

	if (len < PGREPL_XLOGDATA_HDR || msg[0] != PGREPL_MSG_XLOGDATA)
		return -EINVAL;
	data_len = len - PGREPL_XLOGDATA_HDR;
	if (data_len > UINT32_MAX)
		return -EINVAL;
	out->data_start = pgrepl_get64(msg + 1);
	out->wal_end = pgrepl_get64(msg + 9);
	out->send_time = (int64_t)pgrepl_get64(msg + 17);
	out->data = msg + PGREPL_XLOGDATA_HDR;
	out->len = (uint32_t)data_len;
	if (out->data_start > UINT64_MAX - data_len)
		return -EINVAL;
	return 0;
}

int pgrepl_parse_keepalive(const uint8_t *msg, size_t len, struct pgrepl_keepalive *out)
{
	if (len != PGREPL_KEEPALIVE_LEN || msg[0] != PGREPL_MSG_KEEPALIVE || msg[17] > 1)
		return -EINVAL;
	out->wal_end = pgrepl_get64(msg + 1);
	out->send_time = (int64_t)pgrepl_get64(msg + 9);
	out->reply_requested = msg[17] == 1;
	return 0;
}

void pgrepl_build_status(uint8_t buf[PGREPL_STATUS_LEN], uint64_t write, uint64_t flush,
			 uint64_t apply, int64_t send_time, bool reply_requested)
{
	buf[0] = PGREPL_MSG_STATUS;
	pgrepl_put64(buf + 1, write);
	pgrepl_put64(buf + 9, flush);
	pgrepl_put64(buf + 17, apply);
	pgrepl_put64(buf + 25, (uint64_t)send_time);
	buf[33] = reply_requested ? 1 : 0;
}

int pgrepl_parse_status(const uint8_t *msg, size_t len, struct pgrepl_status *out)
{
	/* As PostgreSQL's walsender reads it: bytes past its fields are ignored, and any
	 * non-zero replyRequested asks for a reply. */
	if (len < PGREPL_STATUS_LEN || msg[0] != PGREPL_MSG_STATUS)
		return -EINVAL;
	out->write = pgrepl_get64(msg + 1);
	out->flush = pgrepl_get64(msg + 9);
	out->apply = pgrepl_get64(msg + 17);
	out->send_time = (int64_t)pgrepl_get64(msg + 25);
	out->reply_requested = msg[33] != 0;
	return 0;
}

static uint32_t pgrepl_get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

int pgrepl_parse_hs_feedback(const uint8_t *msg, size_t len, struct pgrepl_hs_feedback *out)
{
	if (len < PGREPL_HS_FEEDBACK_LEN || msg[0] != PGREPL_MSG_HS_FEEDBACK)
		return -EINVAL;
	out->send_time = (int64_t)pgrepl_get64(msg + 1);
	out->xmin = pgrepl_get32(msg + 9);
	out->xmin_epoch = pgrepl_get32(msg + 13);
	out->catalog_xmin = pgrepl_get32(msg + 17);
	out->catalog_xmin_epoch = pgrepl_get32(msg + 21);
	return 0;
}

void pgrepl_build_xlogdata_header(uint8_t buf[PGREPL_XLOGDATA_HDR], uint64_t data_start,
				  uint64_t wal_end, int64_t send_time)
{
	buf[0] = PGREPL_MSG_XLOGDATA;
	pgrepl_put64(buf + 1, data_start);
	pgrepl_put64(buf + 9, wal_end);
	pgrepl_put64(buf + 17, (uint64_t)send_time);
}

void pgrepl_build_keepalive(uint8_t buf[PGREPL_KEEPALIVE_LEN], uint64_t wal_end, int64_t send_time,
			    bool reply_requested)
{
	buf[0] = PGREPL_MSG_KEEPALIVE;
	pgrepl_put64(buf + 1, wal_end);
	pgrepl_put64(buf + 9, (uint64_t)send_time);
	buf[17] = reply_requested ? 1 : 0;
}

/* One hex number of 1 to 8 digits at *@at, ending at @stop ('/' or NUL); advances *@at. */
static bool lsn_half(const char **at, char stop, uint32_t *out)
{
	const char *p = *at;
	uint32_t v = 0;
	int digits = 0;

	for (; *p != stop; p++, digits++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return false;
		if (digits == 8)
			return false;
		v = (v << 4) | (uint32_t)d;
	}
	if (digits == 0)
		return false;
	*at = p;
	*out = v;
	return true;
}

int pgrepl_lsn_parse(const char *text, uint64_t *lsn)
{
	uint32_t hi, lo;

	if (!lsn_half(&text, '/', &hi))
		return -EINVAL;
	text++; /* the '/' */
	if (!lsn_half(&text, '\0', &lo))
		return -EINVAL;
	*lsn = ((uint64_t)hi << 32) | lo;
	return 0;
}

char *pgrepl_lsn_format(uint64_t lsn, char *buf, size_t len)
{
	snprintf(buf, len, "%X/%X", (uint32_t)(lsn >> 32), (uint32_t)lsn);
	return buf;
}

int64_t pgrepl_time_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return pgrepl_time_from_unix_us((int64_t)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000);
}

int pgrepl_parse_seg_size(const char *text, uint32_t *bytes)
{
	uint64_t total;

	if (pgconf_parse_bytes(text, 1, &total) < 0 || total > UINT32_MAX ||
	    !wal_seg_size_valid((uint32_t)total))
		return -EINVAL;
	*bytes = (uint32_t)total;
	return 0;
}

int pgrepl_parse_timeout_ms(const char *text, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "", 1 },	{ "ms", 1 },	  { "s", 1000 },
		      { "min", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
	const char *p = text;
	int64_t value = 0;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (value > (INT64_MAX / 86400000 - 9) / 10)
			return -EINVAL;
		value = value * 10 + (*p - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) == 0) {
			*ms = value * units[i].ms;
			return 0;
		}
	}
	return -EINVAL;
}
