/* SPDX-License-Identifier: MIT */
/*
 * Access rules (`hba_file`), in the spirit of PostgreSQL's pg_hba.conf: which peers may
 * connect, as which role, under which node name and certificate name, from which
 * addresses.  One rule per line, fields separated by blanks, `#` starts a comment:
 *
 *   # TYPE     ROLE     NODE_NAME  CERT_NAME        ADDRESS       [METHOD]
 *   hostssl    replica  r1         r1.example.net   10.0.0.0/24
 *   host       replica  r2,r3      all              fd00:77::/64
 *   hostssl    standby  sb1        all              10.0.2.0/24   scram-sha-256
 *   reject     all      all        all              all
 *
 *   TYPE       host (any transport), hostssl (TLS only: for a walshipd peer, with a
 *              verified client certificate; for a standby, with or without one),
 *              hostnossl (plaintext only), reject (refuse what the rest matches)
 *   ROLE       primary, replica, all, or a comma-separated list; standby for a
 *              PostgreSQL standby streaming from a replica's pg_listen (never covered
 *              by `all`: it must be named)
 *   NODE_NAME  the node name the peer announces in HELLO (for a standby: the user name of
 *              its StartupMessage): all, or a comma-separated list
 *   CERT_NAME  the name in the peer's verified certificate: all (also without one),
 *              samenode (a certificate naming the announced node name), or a list of names;
 *              a rule naming a certificate never matches a peer without one
 *   ADDRESS    all, or an IPv4 or IPv6 address with an optional /prefix (CIDR)
 *   METHOD     role standby only, optional: how the standby authenticates, as in
 *              pg_hba.conf: trust (the default: no password), scram-sha-256 (a password
 *              checked against pg_password_file's verifier), cert (hostssl only: a client
 *              certificate of tls_ca_file whose common name is the user name)
 *
 * The first rule that matches a request decides (allow unless it is `reject`); a request
 * that no rule matches is refused.  docs/security.md ("Access rules") is the reference.
 *
 * This module is pure: text in, a table out; a request in, a verdict out.  Loading logs
 * each bad line once, in PostgreSQL's words and naming file and line; matching logs
 * nothing (the caller logs the refusal, see hba_format_refusal()).
 */
#ifndef WALSHIP_COMMON_HBA_H
#define WALSHIP_COMMON_HBA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HBA_FILE_MAX (1024 * 1024) /* larger hba files are refused */
#define HBA_MAX_CERT_NAME 255 /* a DNS name fits */
#define HBA_MAX_ERRORS 100 /* after this many bad lines the file is abandoned */

enum hba_type {
	HBA_TYPE_HOST = 0,
	HBA_TYPE_HOSTSSL = 1,
	HBA_TYPE_HOSTNOSSL = 2,
	HBA_TYPE_REJECT = 3,
};

/* Roles as a bit mask, so that a rule can hold a list. */
enum hba_role {
	HBA_ROLE_PRIMARY = 1u << 0,
	HBA_ROLE_REPLICA = 1u << 1,
	HBA_ROLE_STANDBY = 1u << 2, /* a PostgreSQL standby on pg_listen */
};
/* `all`: the walshipd peers; a standby is admitted only by a rule naming it. */
#define HBA_ROLE_ALL (HBA_ROLE_PRIMARY | HBA_ROLE_REPLICA)

/* How a standby authenticates once a rule admits it (walshipd peers: always TLS). */
enum hba_method {
	HBA_METHOD_TRUST = 0,
	HBA_METHOD_SCRAM = 1, /* scram-sha-256 */
	HBA_METHOD_CERT = 2,
};

/* A list of names from one field; @all for the keyword `all`. */
struct hba_names {
	bool all;
	bool samenode; /* CERT_NAME only: the certificate names the announced node */
	size_t count;
	char **names;
};

struct hba_rule {
	int line; /* in the file, from 1 */
	enum hba_type type;
	unsigned int roles; /* enum hba_role bits */
	struct hba_names nodes;
	struct hba_names certs;
	bool any_address; /* ADDRESS all */
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* network address, host bits cleared */
	unsigned int prefix_len; /* 0..32 or 0..128 */
	enum hba_method method; /* role standby */
};

struct hba_table {
	char *source; /* file name, for messages */
	size_t count;
	struct hba_rule *rules;
};

/* What a connecting peer presents. */
struct hba_request {
	enum hba_role role; /* the role the peer announces (one bit) */
	const char *node_name; /* from its HELLO */
	const char *cert_name; /* from its verified certificate; NULL when it has none */
	bool tls; /* over TLS (a standby may have no certificate; cert_name implies TLS) */
	const struct sockaddr *addr; /* AF_INET or AF_INET6 (v4-mapped v6 counts as v4) */
};

enum hba_verdict {
	HBA_DENY = 0,
	HBA_ALLOW = 1,
};

struct hba_match {
	enum hba_verdict verdict;
	const struct hba_rule *rule; /* the rule that decided; NULL when none matched */
	int line; /* its line, 0 when none matched */
};

/*
 * Parse rules held in memory (@source names them in messages).  Every bad line is logged
 * (`invalid IP mask "10.0.0.0/33" in file "x" line 4`, with a DETAIL or HINT where that
 * helps), up to HBA_MAX_ERRORS; a text with no rule is an error too.  All or nothing:
 * returns 0 and sets *@out to a new table (hba_free()), or -EINVAL (or -ENOMEM), leaving
 * *@out untouched.
 */
int hba_parse_string(const char *text, const char *source, struct hba_table **out);

/* Same for the file at @path (at most HBA_FILE_MAX bytes); -errno when it cannot be read. */
int hba_load(const char *path, struct hba_table **out);

/* Free a table from hba_parse_string() or hba_load(); NULL is fine. */
void hba_free(struct hba_table *table);

/*
 * Match @req against @table: the first rule whose type, role, node name, certificate name
 * and address all match decides.  Fills @match and returns its verdict; no match is
 * HBA_DENY.  A request without a node name (NULL) matches only rules whose NODE_NAME is
 * `all`; one whose address is NULL or neither IPv4 nor IPv6 only rules whose ADDRESS is
 * `all`; a role that is not one of enum hba_role matches no rule.
 */
enum hba_verdict hba_match(const struct hba_table *table, const struct hba_request *req,
			   struct hba_match *match);

/*
 * Write why @req was refused, in PostgreSQL's words, into @buf of @len bytes:
 *   hba_file "/etc/walship/hba.conf" line 7 rejects connection for node "r3", role replica,
 *   host "10.0.0.9", certificate "r3.example.net"
 *   no hba_file entry for node "r3", role replica, host "10.0.0.9", no certificate
 * Returns @buf.
 */
char *hba_format_refusal(const struct hba_table *table, const struct hba_request *req,
			 const struct hba_match *match, char *buf, size_t len);

/* "trust", "scram-sha-256", "cert". */
const char *hba_method_name(enum hba_method method);

/* "host", "hostssl", "hostnossl", "reject". */
const char *hba_type_name(enum hba_type type);

#endif /* WALSHIP_COMMON_HBA_H */
