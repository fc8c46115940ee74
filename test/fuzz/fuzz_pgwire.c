// SPDX-License-Identifier: MIT
/*
 * Fuzz target: PostgreSQL's protocol 3.0, server side (daemon/serve/pgwire.c), as the
 * walsender endpoint on pg_listen receives it from any client.
 *
 * The input is taken three ways: as a startup packet, as a stream of regular messages
 * (each 'Q' body parsed as a replication command, each 'd' body as a standby's status
 * update or hot standby feedback, the 'p' bodies as a SCRAM-SHA-256 exchange: the first
 * as a SASLInitialResponse whose data is a client-first-message, the next as a
 * client-final-message; common/scram.c), and as command text.  Properties: what parses lies
 * inside the input (lengths, bodies, NUL-terminated names); a START_REPLICATION that
 * parses has an LSN that formats back to text that parses to the same LSN; an
 * ErrorResponse built from the command's word frames as one message.
 */
#include <errno.h>

#include "common/scram.h"
#include "fuzz.h"
#include "proto/pgrepl.h"
#include "serve/pgwire.h"

static void check_command(const char *text)
{
	struct pgwire_command c;
	struct pgwire_buf b = { 0 };
	struct pgwire_msg m;
	char lsn[PGREPL_LSN_TEXT];
	uint64_t again;
	int ret = pgwire_parse_command(text, &c);

	FUZZ_ASSERT(ret == 0 || ret == -EINVAL || ret == -ERANGE);
	FUZZ_ASSERT(memchr(c.word, '\0', sizeof(c.word)));
	FUZZ_ASSERT(memchr(c.show, '\0', sizeof(c.show)));
	FUZZ_ASSERT(memchr(c.slot, '\0', sizeof(c.slot)));
	if (ret == 0 && c.kind == PGWIRE_CMD_START_REPLICATION && !c.logical) {
		pgrepl_lsn_format(c.start, lsn, sizeof(lsn));
		FUZZ_ASSERT(pgrepl_lsn_parse(lsn, &again) == 0 && again == c.start);
	}
	if (ret == 0 && c.kind == PGWIRE_CMD_TIMELINE_HISTORY)
		FUZZ_ASSERT(c.timeline != 0);
	pgwire_error(&b, "ERROR", "42601", c.word, c.slot[0] ? c.slot : NULL,
		     c.slot[0] ? c.word : NULL);
	if (!b.failed) {
		FUZZ_ASSERT(pgwire_next_message(b.data, b.len, &m) == (int)b.len);
		FUZZ_ASSERT(m.type == 'E');
	}
	pgwire_buf_free(&b);
}

/* A 'p' body: the first of the input a SASLInitialResponse, the next a SASLResponse. */
static void check_sasl(struct scram_exchange *x, int *step, const struct pgwire_msg *m)
{
	static const uint8_t salt[16] = { 0x5b, 0x6d, 0x99, 0x68 };
	static const uint8_t cbind[32] = { 1 };
	static struct scram_verifier v;
	struct pgwire_sasl_initial in;
	char out[SCRAM_MAX_MESSAGE];
	int ret;

	if (!v.iterations && scram_verifier_make("pencil", salt, sizeof(salt), 1, &v) < 0)
		abort();
	if (*step == 0) {
		if (pgwire_parse_sasl_initial(m->body, m->len, &in) < 0)
			return;
		FUZZ_ASSERT(in.data + in.len == m->body + m->len);
		FUZZ_ASSERT(memchr(in.mechanism, '\0', sizeof(in.mechanism)));
		scram_exchange_begin(x, m->len & 1 ? &v : NULL, "user",
				     !strcmp(in.mechanism, SCRAM_MECHANISM_PLUS), cbind,
				     sizeof(cbind), "servernonce");
		ret = scram_exchange_first(x, in.data, in.len, out, sizeof(out));
		FUZZ_ASSERT(ret == -EINVAL || ret == -EACCES ||
			    (ret > 0 && (size_t)ret < sizeof(out)));
		if (ret > 0) {
			FUZZ_ASSERT(!strncmp(out, "r=", 2) && strlen(out) == (size_t)ret);
			*step = 1;
		}
		return;
	}
	if (*step == 1) {
		ret = scram_exchange_final(x, m->body, m->len, out, sizeof(out));
		FUZZ_ASSERT(ret == -EINVAL || ret == -EACCES || ret == -EPERM || ret > 0);
		/* a proof needs the password: only a right one passes, never a mock exchange */
		if (ret > 0)
			FUZZ_ASSERT(!x->doomed && !strncmp(out, "v=", 2));
		*step = 2;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scram_exchange x;
	int sasl_step = 0;
	/* A copy of exactly @size bytes, so that ASan sees any read past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	char *text = fuzz_strndup(data, size);
	struct pgwire_startup st;
	struct pgwire_msg m;
	size_t at = 0;
	int ret;

	if (!buf)
		abort();
	memcpy(buf, data, size);

	ret = pgwire_parse_startup(buf, size, &st);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL || ret == -EPROTONOSUPPORT || ret >= 8);
	if (ret > 0) {
		FUZZ_ASSERT((size_t)ret <= size && ret <= PGWIRE_MAX_STARTUP);
		FUZZ_ASSERT(memchr(st.user, '\0', sizeof(st.user)));
		FUZZ_ASSERT(memchr(st.application_name, '\0', sizeof(st.application_name)));
		FUZZ_ASSERT(memchr(st.replication_value, '\0', sizeof(st.replication_value)));
		if (st.kind == PGWIRE_STARTUP) {
			struct pgwire_buf nb = { 0 };
			struct pgwire_msg nm;
			bool sent = pgwire_negotiate_protocol(&nb, &st, buf, (size_t)ret);

			/* NegotiateProtocolVersion frames as one message, 'v', when sent */
			FUZZ_ASSERT(sent == ((st.protocol & 0xffff) || st.protocol_options));
			if (sent && !nb.failed) {
				FUZZ_ASSERT(pgwire_next_message(nb.data, nb.len, &nm) ==
					    (int)nb.len);
				FUZZ_ASSERT(nm.type == 'v' && nm.len >= 8);
			}
			pgwire_buf_free(&nb);
		}
	}

	while (at < size) {
		ret = pgwire_next_message(buf + at, size - at, &m);
		FUZZ_ASSERT(ret >= -EINVAL);
		if (ret <= 0)
			break;
		FUZZ_ASSERT((size_t)ret <= size - at && (size_t)ret == m.len + 5);
		FUZZ_ASSERT(m.body == buf + at + 5);
		if (m.len > 0) /* touch the last byte: it must be ours */
			FUZZ_ASSERT(m.body[m.len - 1] == data[at + 5 + m.len - 1]);
		if (m.type == 'Q' && m.len && m.body[m.len - 1] == '\0')
			check_command((const char *)m.body);
		if (m.type == 'p')
			check_sasl(&x, &sasl_step, &m);
		if (m.type == 'd' && m.len) {
			struct pgrepl_status s;
			struct pgrepl_hs_feedback h;

			/* (bytes past the fields are ignored, as PostgreSQL's walsender does) */
			if (pgrepl_parse_status(m.body, m.len, &s) == 0)
				FUZZ_ASSERT(m.len >= PGREPL_STATUS_LEN && m.body[0] == 'r');
			if (pgrepl_parse_hs_feedback(m.body, m.len, &h) == 0)
				FUZZ_ASSERT(m.len >= PGREPL_HS_FEEDBACK_LEN && m.body[0] == 'h');
		}
		at += (size_t)ret;
	}

	check_command(text);
	free(text);
	free(buf);
	return 0;
}
