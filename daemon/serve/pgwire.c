// SPDX-License-Identifier: MIT
/*
 * PostgreSQL's protocol 3.0, server side, for the walsender endpoint (pgwire.h).
 */
#include "serve/pgwire.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/pgrepl.h"

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, sizeof(v));
}

/* The prefix of @word of at least @min characters that @v is, in any case. */
static bool bool_prefix(const char *v, size_t n, const char *word, size_t min)
{
	return n >= min && n <= strlen(word) && !strncasecmp(v, word, n);
}

/* A boolean parameter value as PostgreSQL's parse_bool() takes it: 1, 0, or a prefix of
 * true, false, yes, no (any case), of on or off of two characters at least.  Returns 1,
 * 0, or -1 for anything else. */
static int parse_bool(const char *v)
{
	size_t n = strlen(v);

	if (bool_prefix(v, n, "true", 1) || bool_prefix(v, n, "yes", 1) ||
	    bool_prefix(v, n, "on", 2) || !strcmp(v, "1"))
		return 1;
	if (bool_prefix(v, n, "false", 1) || bool_prefix(v, n, "no", 1) ||
	    bool_prefix(v, n, "off", 2) || !strcmp(v, "0"))
		return 0;
	return -1;
}

/* A protocol option asked for in a StartupMessage (PostgreSQL's "_pq_." prefix). */
static bool protocol_option(const char *name)
{
	return !strncmp(name, "_pq_.", 5);
}

void pgwire_clean_ascii(char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

int pgwire_parse_startup(const uint8_t *buf, size_t len, struct pgwire_startup *out)
{
	uint32_t plen, code;
	const char *p, *end;

	if (len < 4)
		return 0;
	plen = get32(buf);
	if (plen < 8 || plen > PGWIRE_MAX_STARTUP)
		return -EINVAL;
	if (len < plen)
		return 0;
	memset(out, 0, sizeof(*out));
	code = get32(buf + 4);
	if (code == PGWIRE_SSL_REQUEST || code == PGWIRE_GSSENC_REQUEST) {
		if (plen != 8)
			return -EINVAL;
		out->kind = code == PGWIRE_SSL_REQUEST ? PGWIRE_SSL : PGWIRE_GSSENC;
		return (int)plen;
	}
	if (code == PGWIRE_CANCEL_REQUEST) {
		if (plen != 16)
			return -EINVAL;
		out->kind = PGWIRE_CANCEL;
		return (int)plen;
	}
	out->kind = PGWIRE_STARTUP;
	out->protocol = code;
	if (code >> 16 != 3)
		return -EPROTONOSUPPORT;
	/* name\0value\0 ... \0: the last byte of the packet is the terminator */
	p = (const char *)buf + 8;
	end = (const char *)buf + plen - 1;
	if (plen < 9 || *end != '\0')
		return -EINVAL;
	while (p < end) {
		const char *name = p, *value;
		size_t nlen = strnlen(name, (size_t)(end - name));

		if (name + nlen >= end) /* a name without its value */
			return -EINVAL;
		value = name + nlen + 1;
		if (value >= end || value + strnlen(value, (size_t)(end - value)) >= end)
			return -EINVAL;
		if (!strcmp(name, "user")) {
			snprintf(out->user, sizeof(out->user), "%.*s", PGWIRE_MAX_NAME - 1, value);
			out->user_invalid = false;
			for (const char *c = out->user; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					out->user_invalid = true;
		} else if (!strcmp(name, "database")) {
			snprintf(out->database, sizeof(out->database), "%.*s", PGWIRE_MAX_NAME - 1,
				 value);
		} else if (!strcmp(name, "application_name")) {
			snprintf(out->application_name, sizeof(out->application_name), "%.*s",
				 PGWIRE_MAX_NAME - 1, value);
			/* As PostgreSQL's check_application_name() does: the name shown
			 * in status and logs, held, and kept in the holds file is plain
			 * text. */
			pgwire_clean_ascii(out->application_name);
		} else if (!strcmp(name, "replication")) {
			int b = parse_bool(value);

			if (b == 1)
				out->replication = PGWIRE_REPL_PHYSICAL;
			else if (b == 0)
				out->replication = PGWIRE_REPL_NONE;
			else if (!strcmp(value, "database"))
				out->replication = PGWIRE_REPL_LOGICAL;
			else {
				out->replication = PGWIRE_REPL_NONE;
				out->replication_invalid = true;
				snprintf(out->replication_value, sizeof(out->replication_value),
					 "%.*s", PGWIRE_MAX_NAME - 1, value);
			}
		} else if (protocol_option(name)) {
			out->protocol_options++;
		}
		p = value + strlen(value) + 1;
	}
	return (int)plen;
}

bool pgwire_negotiate_protocol(struct pgwire_buf *b, const struct pgwire_startup *st,
			       const uint8_t *packet, size_t len)
{
	const char *p = (const char *)packet + 8, *end = (const char *)packet + len - 1;
	size_t body = 8;
	uint8_t *m;

	if (st->kind != PGWIRE_STARTUP || len < 9 ||
	    ((st->protocol & 0xffff) == 0 && !st->protocol_options))
		return false;
	/* The packet parsed: name\0value\0 pairs up to its final NUL. */
	for (const char *q = p; q < end; q += strlen(q) + 1) {
		if (protocol_option(q))
			body += strlen(q) + 1;
		q += strlen(q) + 1; /* its value */
	}
	m = pgwire_reserve(b, 5 + body);
	if (!m)
		return true;
	m[0] = 'v';
	put32(m + 1, (uint32_t)(4 + body));
	put32(m + 5, PGWIRE_PROTOCOL_3_0); /* the newest version served: 3.0 */
	put32(m + 9, st->protocol_options);
	m += 13;
	for (const char *q = p; q < end; q += strlen(q) + 1) {
		if (protocol_option(q)) {
			memcpy(m, q, strlen(q) + 1);
			m += strlen(q) + 1;
		}
		q += strlen(q) + 1;
	}
	b->len += 5 + body;
	return true;
}

int pgwire_next_message(const uint8_t *buf, size_t len, struct pgwire_msg *out)
{
	uint32_t mlen;

	if (len < 5)
		return 0;
	mlen = get32(buf + 1);
	if (mlen < 4 || mlen - 4 > PGWIRE_MAX_MESSAGE ||
	    (buf[0] && strchr("cfXSHCDE", buf[0]) && mlen > PGWIRE_MAX_SMALL_MESSAGE))
		return -EINVAL;
	if (len < (size_t)mlen + 1)
		return 0;
	out->type = buf[0];
	out->body = buf + 5;
	out->len = mlen - 4;
	return (int)(mlen + 1);
}

int pgwire_parse_sasl_initial(const uint8_t *body, size_t len, struct pgwire_sasl_initial *out)
{
	size_t name_len = strnlen((const char *)body, len);
	uint32_t data_len;

	memset(out, 0, sizeof(*out));
	if (name_len == len || name_len == 0 || name_len >= sizeof(out->mechanism) ||
	    len - name_len - 1 < 4)
		return -EINVAL;
	memcpy(out->mechanism, body, name_len);
	data_len = get32(body + name_len + 1);
	if (data_len != len - name_len - 1 - 4) /* -1 (none) included */
		return -EINVAL;
	out->data = body + name_len + 1 + 4;
	out->len = data_len;
	return 0;
}

/* ---- replication commands ---- */

#define TOKEN_MAX 128

/*
 * A word at @p, in @tok: quoted by one of @quotes (the quote doubled inside it is one),
 * or a run of characters up to a blank or one of @stops.  *@quoted says which kind, *@end
 * where it ends.  Returns its length (0 for none there, when not quoted), or -EINVAL when
 * unterminated or too long.
 */
static int scan_word(const char *p, const char *quotes, const char *stops, char tok[TOKEN_MAX],
		     bool *quoted, const char **end)
{
	size_t n = 0;

	*quoted = *p && strchr(quotes, *p);
	if (*quoted) {
		char q = *p;

		for (p++;; p++) {
			if (!*p)
				return -EINVAL;
			if (*p == q) {
				if (p[1] != q)
					break;
				p++;
			}
			if (n + 1 >= TOKEN_MAX)
				return -EINVAL;
			tok[n++] = *p;
		}
		p++;
	} else {
		for (; *p && !isspace((unsigned char)*p) && !strchr(stops, *p); p++) {
			if (n + 1 >= TOKEN_MAX)
				return -EINVAL;
			tok[n++] = *p;
		}
	}
	tok[n] = '\0';
	*end = p;
	return (int)n;
}

/*
 * The next token of *@at into @tok: a double-quoted identifier ("" is a quote), or a run
 * of characters up to a blank or ';'.  Returns 1, 0 at the end, -EINVAL when unterminated
 * or too long.  *@quoted says which kind.
 */
static int next_token(const char **at, char tok[TOKEN_MAX], bool *quoted)
{
	const char *p = *at;
	int ret;

	while (isspace((unsigned char)*p))
		p++;
	*quoted = false;
	if (*p == ';') { /* a final semicolon, then only blanks */
		p++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p)
			return -EINVAL;
	}
	if (!*p) {
		*at = p;
		return 0;
	}
	ret = scan_word(p, "\"", ";", tok, quoted, at);
	return ret < 0 ? ret : 1;
}

static bool keyword(const char *tok, bool quoted, const char *kw)
{
	return !quoted && !strcasecmp(tok, kw);
}

/* An unsigned decimal timeline, 1 to 2^32-1: -ERANGE for 0, which the grammar refuses
 * at once (repl_gram.y: "invalid timeline"), -EINVAL for anything else. */
static int parse_timeline(const char *tok, bool quoted, uint32_t *tli)
{
	char *end;
	unsigned long long v;

	if (quoted || !isdigit((unsigned char)tok[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(tok, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	if (v == 0)
		return -ERANGE;
	*tli = (uint32_t)v;
	return 0;
}

/* An identifier as PostgreSQL folds it: quoted kept, plain in lower case. */
static int identifier(char *dst, size_t dstlen, const char *tok, bool quoted)
{
	size_t n = strlen(tok);

	if (n == 0 || n >= dstlen)
		return -EINVAL;
	for (size_t i = 0; i <= n; i++)
		dst[i] = quoted ? tok[i] : (char)tolower((unsigned char)tok[i]);
	return 0;
}

static int parse_start_replication(const char **at, struct pgwire_command *out)
{
	char tok[TOKEN_MAX];
	bool quoted;
	int ret = next_token(at, tok, &quoted);

	if (ret <= 0)
		return -EINVAL;
	if (keyword(tok, quoted, "SLOT")) {
		if (next_token(at, tok, &quoted) <= 0 ||
		    identifier(out->slot, sizeof(out->slot), tok, quoted) < 0)
			return -EINVAL;
		if (next_token(at, tok, &quoted) <= 0)
			return -EINVAL;
	}
	if (keyword(tok, quoted, "LOGICAL")) {
		out->logical = true;
		return 0; /* refused whatever follows */
	}
	if (keyword(tok, quoted, "PHYSICAL") && next_token(at, tok, &quoted) <= 0)
		return -EINVAL;
	if (quoted || pgrepl_lsn_parse(tok, &out->start) < 0)
		return -EINVAL;
	ret = next_token(at, tok, &quoted);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return 0;
	if (!keyword(tok, quoted, "TIMELINE") || next_token(at, tok, &quoted) <= 0)
		return -EINVAL;
	ret = parse_timeline(tok, quoted, &out->timeline);
	if (ret < 0)
		return ret;
	return next_token(at, tok, &quoted) == 0 ? 0 : -EINVAL;
}

/* A word of an option list at *@at: a double-quoted identifier, a single-quoted string
 * ('' a quote, as "" in the other), or a run of characters up to a blank, ',', '(', ')'
 * or ';'.  Returns 1, 0 when there is none there, -EINVAL when unterminated or too long. */
static int option_word(const char **at, char tok[TOKEN_MAX], bool *quoted)
{
	const char *p = *at, *end;
	int ret;

	while (isspace((unsigned char)*p))
		p++;
	ret = scan_word(p, "\"'", ",();", tok, quoted, &end);
	if (ret < 0)
		return ret;
	if (ret == 0 && !*quoted)
		return 0;
	*at = end;
	return 1;
}

/* The option list of a physical slot, *@at just past its '(': "option [value]" separated
 * by ',' up to ')'.  PostgreSQL 15 knows one option for a physical slot, RESERVE_WAL with
 * an optional boolean (walsender.c parseCreateReplSlotOptions()); another option, a value
 * that is not a boolean or a malformed list is an error. */
static int parse_slot_options(const char **at, struct pgwire_command *out)
{
	char name[TOKEN_MAX], value[TOKEN_MAX];
	bool quoted;

	for (;;) {
		const char *p;
		int ret;

		if (option_word(at, name, &quoted) <= 0)
			return -EINVAL;
		if (quoted ? strcmp(name, "reserve_wal") : strcasecmp(name, "reserve_wal"))
			return -EINVAL; /* PostgreSQL: unrecognized option */
		ret = option_word(at, value, &quoted);
		if (ret < 0)
			return -EINVAL;
		if (ret == 0) {
			out->reserve_wal = true;
		} else {
			int b = parse_bool(value);

			if (b < 0)
				return -EINVAL;
			out->reserve_wal = b == 1;
		}
		p = *at;
		while (isspace((unsigned char)*p))
			p++;
		*at = p + 1;
		if (*p == ')')
			return 0;
		if (*p != ',')
			return -EINVAL;
	}
}

/* CREATE_REPLICATION_SLOT name [TEMPORARY] {PHYSICAL|LOGICAL plugin} [options]: for a
 * physical slot, the options are nothing, RESERVE_WAL (the syntax before PostgreSQL 15)
 * or a parenthesized list (parse_slot_options()); a logical one is refused whatever
 * follows. */
static int parse_create_slot(const char **at, struct pgwire_command *out)
{
	char tok[TOKEN_MAX];
	bool quoted;
	const char *p;
	int ret;

	if (next_token(at, tok, &quoted) <= 0 ||
	    identifier(out->slot, sizeof(out->slot), tok, quoted) < 0 ||
	    next_token(at, tok, &quoted) <= 0)
		return -EINVAL;
	if (keyword(tok, quoted, "TEMPORARY")) {
		out->temporary = true;
		if (next_token(at, tok, &quoted) <= 0)
			return -EINVAL;
	}
	if (keyword(tok, quoted, "LOGICAL")) {
		out->logical = true;
		return 0;
	}
	if (!keyword(tok, quoted, "PHYSICAL"))
		return -EINVAL;
	p = *at;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '(') {
		*at = p + 1;
		if (parse_slot_options(at, out) < 0)
			return -EINVAL;
		return next_token(at, tok, &quoted) == 0 ? 0 : -EINVAL;
	}
	ret = next_token(at, tok, &quoted);
	if (ret <= 0)
		return ret;
	if (!keyword(tok, quoted, "RESERVE_WAL"))
		return -EINVAL;
	out->reserve_wal = true;
	return next_token(at, tok, &quoted) == 0 ? 0 : -EINVAL;
}

/* DROP_REPLICATION_SLOT name [WAIT], READ_REPLICATION_SLOT name. */
static int parse_slot_name(const char **at, struct pgwire_command *out, bool wait_ok)
{
	char tok[TOKEN_MAX];
	bool quoted;
	int ret;

	if (next_token(at, tok, &quoted) <= 0 ||
	    identifier(out->slot, sizeof(out->slot), tok, quoted) < 0)
		return -EINVAL;
	ret = next_token(at, tok, &quoted);
	if (ret == 0)
		return 0;
	if (ret < 0 || !wait_ok || !keyword(tok, quoted, "WAIT"))
		return -EINVAL;
	out->wait = true;
	return next_token(at, tok, &quoted) == 0 ? 0 : -EINVAL;
}

int pgwire_parse_command(const char *text, struct pgwire_command *out)
{
	const char *at = text;
	char tok[TOKEN_MAX];
	bool quoted;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = next_token(&at, tok, &quoted);
	if (ret < 0) {
		out->kind = PGWIRE_CMD_OTHER;
		return 0; /* not ours to judge: the caller refuses it as unknown */
	}
	if (ret == 0) {
		out->kind = PGWIRE_CMD_EMPTY;
		return 0;
	}
	snprintf(out->word, sizeof(out->word), "%.*s", PGWIRE_MAX_NAME - 1, tok);
	if (keyword(tok, quoted, "IDENTIFY_SYSTEM")) {
		out->kind = PGWIRE_CMD_IDENTIFY_SYSTEM;
		return next_token(&at, tok, &quoted) == 0 ? 0 : -EINVAL;
	}
	if (keyword(tok, quoted, "SHOW")) {
		out->kind = PGWIRE_CMD_SHOW;
		if (next_token(&at, tok, &quoted) <= 0 ||
		    identifier(out->show, sizeof(out->show), tok, quoted) < 0)
			return -EINVAL;
		return next_token(&at, tok, &quoted) == 0 ? 0 : -EINVAL;
	}
	if (keyword(tok, quoted, "TIMELINE_HISTORY")) {
		out->kind = PGWIRE_CMD_TIMELINE_HISTORY;
		if (next_token(&at, tok, &quoted) <= 0)
			return -EINVAL;
		ret = parse_timeline(tok, quoted, &out->timeline);
		if (ret < 0)
			return ret;
		return next_token(&at, tok, &quoted) == 0 ? 0 : -EINVAL;
	}
	if (keyword(tok, quoted, "START_REPLICATION")) {
		out->kind = PGWIRE_CMD_START_REPLICATION;
		return parse_start_replication(&at, out);
	}
	if (keyword(tok, quoted, "CREATE_REPLICATION_SLOT")) {
		out->kind = PGWIRE_CMD_CREATE_SLOT;
		return parse_create_slot(&at, out);
	}
	if (keyword(tok, quoted, "DROP_REPLICATION_SLOT")) {
		out->kind = PGWIRE_CMD_DROP_SLOT;
		return parse_slot_name(&at, out, true);
	}
	if (keyword(tok, quoted, "READ_REPLICATION_SLOT")) {
		out->kind = PGWIRE_CMD_READ_SLOT;
		return parse_slot_name(&at, out, false);
	}
	if (keyword(tok, quoted, "BASE_BACKUP")) {
		out->kind = PGWIRE_CMD_BASE_BACKUP;
		return 0;
	}
	out->kind = PGWIRE_CMD_OTHER;
	return 0;
}

/* ---- building backend messages ---- */

uint8_t *pgwire_reserve(struct pgwire_buf *b, size_t n)
{
	if (b->failed)
		return NULL;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		uint8_t *data;

		while (cap < b->len + n)
			cap *= 2;
		data = realloc(b->data, cap);
		if (!data) {
			b->failed = true;
			return NULL;
		}
		b->data = data;
		b->cap = cap;
	}
	return b->data + b->len;
}

void pgwire_put(struct pgwire_buf *b, const void *bytes, size_t n)
{
	uint8_t *p = pgwire_reserve(b, n);

	if (!p)
		return;
	memcpy(p, bytes, n);
	b->len += n;
}

void pgwire_consume(struct pgwire_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void pgwire_buf_free(struct pgwire_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void pgwire_put_byte(struct pgwire_buf *b, uint8_t byte)
{
	pgwire_put(b, &byte, 1);
}

/* Start a message of type @type whose body is @body_len bytes; returns where the body
 * goes (the caller fills exactly that many bytes and counts them), or NULL. */
static uint8_t *msg_begin(struct pgwire_buf *b, uint8_t type, size_t body_len)
{
	uint8_t *p = pgwire_reserve(b, 5 + body_len);

	if (!p)
		return NULL;
	p[0] = type;
	put32(p + 1, (uint32_t)(body_len + 4));
	b->len += 5 + body_len;
	return p + 5;
}

void pgwire_auth_ok(struct pgwire_buf *b)
{
	uint8_t *p = msg_begin(b, 'R', 4);

	if (p)
		put32(p, 0);
}

void pgwire_auth_sasl(struct pgwire_buf *b, unsigned int n, const char *const *mechs)
{
	size_t body = 4 + 1;
	uint8_t *p;

	for (unsigned int i = 0; i < n; i++)
		body += strlen(mechs[i]) + 1;
	p = msg_begin(b, 'R', body);
	if (!p)
		return;
	put32(p, 10);
	p += 4;
	for (unsigned int i = 0; i < n; i++) {
		size_t l = strlen(mechs[i]) + 1;

		memcpy(p, mechs[i], l);
		p += l;
	}
	*p = '\0';
}

void pgwire_auth_sasl_step(struct pgwire_buf *b, bool final, const void *data, size_t len)
{
	uint8_t *p = msg_begin(b, 'R', 4 + len);

	if (!p)
		return;
	put32(p, final ? 12 : 11);
	memcpy(p + 4, data, len);
}

void pgwire_parameter_status(struct pgwire_buf *b, const char *name, const char *value)
{
	size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
	uint8_t *p = msg_begin(b, 'S', nl + vl);

	if (!p)
		return;
	memcpy(p, name, nl);
	memcpy(p + nl, value, vl);
}

void pgwire_backend_key(struct pgwire_buf *b, uint32_t pid, uint32_t key)
{
	uint8_t *p = msg_begin(b, 'K', 8);

	if (!p)
		return;
	put32(p, pid);
	put32(p + 4, key);
}

void pgwire_ready(struct pgwire_buf *b)
{
	uint8_t *p = msg_begin(b, 'Z', 1);

	if (p)
		*p = 'I';
}

void pgwire_error(struct pgwire_buf *b, const char *severity, const char *sqlstate,
		  const char *message, const char *detail, const char *hint)
{
	size_t sl = strlen(severity) + 1, cl = strlen(sqlstate) + 1, ml = strlen(message) + 1;
	size_t dl = detail ? strlen(detail) + 1 : 0, hl = hint ? strlen(hint) + 1 : 0;
	uint8_t *p =
		msg_begin(b, 'E', 4 + 2 * sl + cl + ml + (dl ? 1 + dl : 0) + (hl ? 1 + hl : 0) + 1);

	if (!p)
		return;
	*p++ = 'S';
	memcpy(p, severity, sl);
	p += sl;
	*p++ = 'V';
	memcpy(p, severity, sl);
	p += sl;
	*p++ = 'C';
	memcpy(p, sqlstate, cl);
	p += cl;
	*p++ = 'M';
	memcpy(p, message, ml);
	p += ml;
	if (detail) {
		*p++ = 'D';
		memcpy(p, detail, dl);
		p += dl;
	}
	if (hint) {
		*p++ = 'H';
		memcpy(p, hint, hl);
		p += hl;
	}
	*p = '\0';
}

void pgwire_row_description(struct pgwire_buf *b, unsigned int n, const char *const *names,
			    const uint32_t *oids)
{
	size_t body = 2;
	uint8_t *p;

	for (unsigned int i = 0; i < n; i++)
		body += strlen(names[i]) + 1 + 18;
	p = msg_begin(b, 'T', body);
	if (!p)
		return;
	*p++ = (uint8_t)(n >> 8);
	*p++ = (uint8_t)n;
	for (unsigned int i = 0; i < n; i++) {
		size_t l = strlen(names[i]) + 1;
		int16_t typlen = oids[i] == PGWIRE_OID_INT4 ? 4 :
				 oids[i] == PGWIRE_OID_INT8 ? 8 :
							      -1;

		memcpy(p, names[i], l);
		p += l;
		put32(p, 0); /* table OID */
		p[4] = 0; /* column number */
		p[5] = 0;
		put32(p + 6, oids[i]);
		p[10] = (uint8_t)((uint16_t)typlen >> 8);
		p[11] = (uint8_t)typlen;
		put32(p + 12, 0xffffffffu); /* type modifier -1 */
		p[16] = 0; /* text format */
		p[17] = 0;
		p += 18;
	}
}

void pgwire_data_row(struct pgwire_buf *b, unsigned int n, const char *const *values,
		     const size_t *lens)
{
	size_t body = 2;
	uint8_t *p;

	for (unsigned int i = 0; i < n; i++)
		body += 4 + (values[i] ? lens[i] : 0);
	p = msg_begin(b, 'D', body);
	if (!p)
		return;
	*p++ = (uint8_t)(n >> 8);
	*p++ = (uint8_t)n;
	for (unsigned int i = 0; i < n; i++) {
		if (!values[i]) {
			put32(p, 0xffffffffu);
			p += 4;
			continue;
		}
		put32(p, (uint32_t)lens[i]);
		memcpy(p + 4, values[i], lens[i]);
		p += 4 + lens[i];
	}
}

void pgwire_command_complete(struct pgwire_buf *b, const char *tag)
{
	size_t l = strlen(tag) + 1;
	uint8_t *p = msg_begin(b, 'C', l);

	if (p)
		memcpy(p, tag, l);
}

void pgwire_copy_both(struct pgwire_buf *b)
{
	uint8_t *p = msg_begin(b, 'W', 3);

	if (p)
		memset(p, 0, 3); /* text format, no columns */
}

void pgwire_copy_done(struct pgwire_buf *b)
{
	msg_begin(b, 'c', 0);
}

void pgwire_xlogdata(struct pgwire_buf *b, uint64_t data_start, uint64_t wal_end, int64_t send_time,
		     const uint8_t *data, uint32_t len)
{
	uint8_t *p = msg_begin(b, 'd', PGREPL_XLOGDATA_HDR + (size_t)len);

	if (!p)
		return;
	pgrepl_build_xlogdata_header(p, data_start, wal_end, send_time);
	memcpy(p + PGREPL_XLOGDATA_HDR, data, len);
}

void pgwire_keepalive(struct pgwire_buf *b, uint64_t wal_end, int64_t send_time,
		      bool reply_requested)
{
	uint8_t *p = msg_begin(b, 'd', PGREPL_KEEPALIVE_LEN);

	if (p)
		pgrepl_build_keepalive(p, wal_end, send_time, reply_requested);
}
