/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL's frontend/backend protocol 3.0 as a physical walsender speaks it, server
 * side: the startup packets a client sends (SSLRequest, GSSENCRequest, CancelRequest,
 * StartupMessage), its regular messages (a type byte, an Int32 length counting itself,
 * the body), the replication commands of a simple Query, and the backend messages the
 * server builds.  Pure functions over buffers; serve/walsender.c drives them.
 *
 * Why our own code and not libpq: libpq is the client side only; PostgreSQL has no
 * library for the server side of its protocol.  The CopyData sub-messages of the
 * replication stream ('w', 'k', 'r', 'h') are proto/pgrepl.h's.
 */
#ifndef WALSHIP_SERVE_PGWIRE_H
#define WALSHIP_SERVE_PGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define PGWIRE_PROTOCOL_3_0 196608 /* 3 << 16 */
#define PGWIRE_SSL_REQUEST 80877103 /* 1234 << 16 | 5679 */
#define PGWIRE_GSSENC_REQUEST 80877104 /* 1234 << 16 | 5680 */
#define PGWIRE_CANCEL_REQUEST 80877102 /* 1234 << 16 | 5678 */
/* PostgreSQL's MAX_STARTUP_PACKET_LENGTH. */
#define PGWIRE_MAX_STARTUP 10000
/* Longest regular message accepted from a client: a query, a status update. */
#define PGWIRE_MAX_MESSAGE 65536
/* Longest CopyDone, CopyFail, Terminate, Sync, Flush, Close, Describe or Execute, its
 * length field included, as PostgreSQL's PQ_SMALL_MESSAGE_LIMIT (postgres.c
 * SocketBackend()): these carry a name at most. */
#define PGWIRE_MAX_SMALL_MESSAGE 10000
#define PGWIRE_MAX_NAME CONFIG_PG_NAMEDATALEN

/* Type OIDs of the columns the replication commands return. */
#define PGWIRE_OID_INT4 23
#define PGWIRE_OID_INT8 20
#define PGWIRE_OID_TEXT 25
#define PGWIRE_OID_BYTEA 17

struct pgwire_buf;

enum pgwire_startup_kind {
	PGWIRE_STARTUP, /* a protocol 3.0 StartupMessage */
	PGWIRE_SSL,
	PGWIRE_GSSENC,
	PGWIRE_CANCEL,
};

/* What the StartupMessage asks for (replication= of the parameters). */
enum pgwire_replication {
	PGWIRE_REPL_NONE, /* absent or false: an SQL session */
	PGWIRE_REPL_PHYSICAL, /* true, on, yes, 1 */
	PGWIRE_REPL_LOGICAL, /* database */
};

struct pgwire_startup {
	enum pgwire_startup_kind kind;
	uint32_t protocol; /* PGWIRE_STARTUP: the version asked for */
	enum pgwire_replication replication;
	/* replication= was neither a boolean nor "database": its value (truncated), for
	 * PostgreSQL's FATAL 22023; replication is then PGWIRE_REPL_NONE */
	bool replication_invalid;
	char replication_value[PGWIRE_MAX_NAME];
	/* protocol options (parameters named "_pq_.*") asked for: none is known, so each is
	 * named back in NegotiateProtocolVersion (pgwire_negotiate_protocol()) */
	unsigned int protocol_options;
	char user[PGWIRE_MAX_NAME]; /* truncated to NAMEDATALEN - 1 as PostgreSQL does */
	char database[PGWIRE_MAX_NAME];
	char application_name[PGWIRE_MAX_NAME]; /* bytes outside 0x20-0x7e made '?', as
						   PostgreSQL's pg_clean_ascii() does */
	/* user holds a control character (below 0x20, or 0x7f): refused (no access rule or
	 * password file can name it, and it would go into logs and status as it is) */
	bool user_invalid;
};

/* Make @s what PostgreSQL's pg_clean_ascii() makes an application_name: every byte
 * outside printable ASCII (0x20 to 0x7e) becomes '?'. */
void pgwire_clean_ascii(char *s);

/*
 * Parse the startup packet at the start of @buf (@len bytes received so far).  Returns
 * its length (> 0) and fills @out, 0 when more bytes are needed, or -EINVAL when it is
 * not one: a length under 8 or over PGWIRE_MAX_STARTUP, an unknown code, a protocol other
 * than 3.x, parameters that are not NUL-terminated name/value pairs ending in a NUL
 * (PostgreSQL drops those without an answer).  -EPROTONOSUPPORT for a major protocol
 * version other than 3.  A StartupMessage that parses may still be refused with an
 * answer: no user (user[0] == '\0'), replication_invalid.
 */
int pgwire_parse_startup(const uint8_t *buf, size_t len, struct pgwire_startup *out);

/*
 * NegotiateProtocolVersion ('v'), as PostgreSQL sends it after the StartupMessage of
 * @packet (@len bytes, parsed by pgwire_parse_startup() into @st): when it asks for a
 * 3.x minor version newer than 3.0, or for protocol options ("_pq_.*" parameters), the
 * newest minor version served (0) and the names of the options, none being known.
 * Returns true when it was queued, false when the client asked for neither.
 */
bool pgwire_negotiate_protocol(struct pgwire_buf *b, const struct pgwire_startup *st,
			       const uint8_t *packet, size_t len);

struct pgwire_msg {
	uint8_t type;
	const uint8_t *body; /* into the buffer given to pgwire_next_message() */
	uint32_t len; /* of the body */
};

/*
 * The regular message at the start of @buf (@len bytes).  Returns its whole length
 * (type byte included) and fills @out, 0 when more bytes are needed, or -EINVAL when its
 * length is under 4 or its body over PGWIRE_MAX_MESSAGE (PGWIRE_MAX_SMALL_MESSAGE with
 * the length field for the types it names): told by the header, before the body comes.
 */
int pgwire_next_message(const uint8_t *buf, size_t len, struct pgwire_msg *out);

/* SASLInitialResponse ('p' during SASL authentication). */
struct pgwire_sasl_initial {
	char mechanism[32]; /* the mechanism the client chose */
	const uint8_t *data; /* its initial response, into the message's body */
	uint32_t len;
};

/*
 * Parse the body of a SASLInitialResponse: a NUL-terminated mechanism name (at most 31
 * characters), an Int32 length, that many bytes, nothing after.  Returns 0, or -EINVAL
 * (also for a length of -1, no initial response: SCRAM always has one).
 */
int pgwire_parse_sasl_initial(const uint8_t *body, size_t len, struct pgwire_sasl_initial *out);

enum pgwire_command_kind {
	PGWIRE_CMD_EMPTY, /* only blanks and semicolons */
	PGWIRE_CMD_IDENTIFY_SYSTEM,
	PGWIRE_CMD_SHOW,
	PGWIRE_CMD_TIMELINE_HISTORY,
	PGWIRE_CMD_START_REPLICATION,
	PGWIRE_CMD_CREATE_SLOT, /* CREATE_REPLICATION_SLOT */
	PGWIRE_CMD_DROP_SLOT, /* DROP_REPLICATION_SLOT name [WAIT] */
	PGWIRE_CMD_READ_SLOT, /* READ_REPLICATION_SLOT name */
	PGWIRE_CMD_BASE_BACKUP, /* BASE_BACKUP [options]: refused, its options not parsed */
	PGWIRE_CMD_OTHER, /* a replication command this endpoint does not serve, or SQL */
};

struct pgwire_command {
	enum pgwire_command_kind kind;
	char word[PGWIRE_MAX_NAME]; /* the first word as written (for messages) */
	char show[PGWIRE_MAX_NAME]; /* SHOW: the parameter, lower case */
	uint32_t timeline; /* TIMELINE_HISTORY; START_REPLICATION (0: not given) */
	uint64_t start; /* START_REPLICATION: the start LSN */
	char slot[PGWIRE_MAX_NAME]; /* START_REPLICATION SLOT name, "" when none;
				     * CREATE_, DROP_, READ_REPLICATION_SLOT's name */
	bool logical; /* START_REPLICATION SLOT x LOGICAL ..., CREATE_... LOGICAL */
	bool temporary; /* CREATE_REPLICATION_SLOT x TEMPORARY */
	bool reserve_wal; /* CREATE_REPLICATION_SLOT x PHYSICAL RESERVE_WAL, or (RESERVE_WAL) */
	bool wait; /* DROP_REPLICATION_SLOT x WAIT */
};

/*
 * Parse the text of a simple Query as the replication grammar of PostgreSQL 15
 * (repl_gram.y, for the commands above): keywords in upper or lower case, identifiers
 * plain or double-quoted, an optional final semicolon.  Returns 0, -EINVAL for a
 * syntax error of a known command (@out->word says which), or -ERANGE for a timeline of
 * 0 (the grammar's "invalid timeline 0", refused where it stands, before what follows).
 * Unknown first words are PGWIRE_CMD_OTHER, not an error.
 */
int pgwire_parse_command(const char *text, struct pgwire_command *out);

/* A growing output buffer; on allocation failure @failed is set and appends stop. */
struct pgwire_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool failed;
};

/* Room for @n more bytes at data + len (not yet counted), or NULL (failed set). */
uint8_t *pgwire_reserve(struct pgwire_buf *b, size_t n);
void pgwire_put(struct pgwire_buf *b, const void *bytes, size_t n);
/* Drop the first @n bytes (sent). */
void pgwire_consume(struct pgwire_buf *b, size_t n);
void pgwire_buf_free(struct pgwire_buf *b);

/* One raw byte: the answer to SSLRequest or GSSENCRequest ('N': not supported). */
void pgwire_put_byte(struct pgwire_buf *b, uint8_t byte);
/* AuthenticationOk ('R', 0). */
void pgwire_auth_ok(struct pgwire_buf *b);
/*
 * AuthenticationSASL ('R', 10): the @n mechanisms @mechs, in the server's order of
 * preference.
 */
void pgwire_auth_sasl(struct pgwire_buf *b, unsigned int n, const char *const *mechs);
/* AuthenticationSASLContinue ('R', 11), or AuthenticationSASLFinal ('R', 12) when @final,
 * carrying the @len bytes at @data. */
void pgwire_auth_sasl_step(struct pgwire_buf *b, bool final, const void *data, size_t len);
/* ParameterStatus ('S'). */
void pgwire_parameter_status(struct pgwire_buf *b, const char *name, const char *value);
/* BackendKeyData ('K'). */
void pgwire_backend_key(struct pgwire_buf *b, uint32_t pid, uint32_t key);
/* ReadyForQuery ('Z') with transaction status 'I'. */
void pgwire_ready(struct pgwire_buf *b);
/*
 * ErrorResponse ('E'): @severity "ERROR" or "FATAL" (S and V fields), @sqlstate five
 * characters (C), @message (M), in PostgreSQL's message style, @detail (D) and @hint (H),
 * full sentences, each unless NULL.
 */
void pgwire_error(struct pgwire_buf *b, const char *severity, const char *sqlstate,
		  const char *message, const char *detail, const char *hint);
/* RowDescription ('T') of @n text-format columns @names with type OIDs @oids. */
void pgwire_row_description(struct pgwire_buf *b, unsigned int n, const char *const *names,
			    const uint32_t *oids);
/* DataRow ('D') of @n values @values of @lens bytes each (NULL value: SQL NULL). */
void pgwire_data_row(struct pgwire_buf *b, unsigned int n, const char *const *values,
		     const size_t *lens);
/* CommandComplete ('C') with @tag. */
void pgwire_command_complete(struct pgwire_buf *b, const char *tag);
/* CopyBothResponse ('W'): text format, no columns, as a walsender sends it. */
void pgwire_copy_both(struct pgwire_buf *b);
/* CopyDone ('c'). */
void pgwire_copy_done(struct pgwire_buf *b);
/*
 * CopyData ('d') carrying XLogData: its header for WAL starting at @data_start, then the
 * @len bytes at @data.
 */
void pgwire_xlogdata(struct pgwire_buf *b, uint64_t data_start, uint64_t wal_end, int64_t send_time,
		     const uint8_t *data, uint32_t len);
/* CopyData ('d') carrying a keepalive ('k'). */
void pgwire_keepalive(struct pgwire_buf *b, uint64_t wal_end, int64_t send_time,
		      bool reply_requested);

#endif /* WALSHIP_SERVE_PGWIRE_H */
