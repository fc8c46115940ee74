// SPDX-License-Identifier: MIT
/*
 * Access rules, like pg_hba.conf (contract and syntax in hba.h, docs/security.md).
 *
 * The parser works line by line on a private copy of the text: it splits a line into
 * blank-separated fields, checks the field count, then parses each field on its own, so
 * every message names the field that is wrong.  Rules are built into a growing array and
 * handed out only when the whole text was good.
 */
#include "common/compiler.h"
#include "common/hba.h"
#include "common/textfile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/node_name.h"

#define HBA_FIELDS 6 /* TYPE ROLE NODE_NAME CERT_NAME ADDRESS [METHOD] */

struct hba_parser {
	const char *source;
	int line;
	int errors;
	bool oom; /* one of them was memory: -ENOMEM, no error of the file's */
	struct hba_rule *rules;
	size_t count;
	size_t cap;
};

static const char *const hba_type_names[] = {
	[HBA_TYPE_HOST] = "host",
	[HBA_TYPE_HOSTSSL] = "hostssl",
	[HBA_TYPE_HOSTNOSSL] = "hostnossl",
	[HBA_TYPE_REJECT] = "reject",
};

const char *hba_type_name(enum hba_type type)
{
	if ((size_t)type < ARRAY_SIZE(hba_type_names))
		return hba_type_names[type];
	return "unknown";
}

static const char *const hba_method_names[] = {
	[HBA_METHOD_TRUST] = "trust",
	[HBA_METHOD_SCRAM] = "scram-sha-256",
	[HBA_METHOD_CERT] = "cert",
};

const char *hba_method_name(enum hba_method method)
{
	if ((size_t)method < ARRAY_SIZE(hba_method_names))
		return hba_method_names[method];
	return "unknown";
}

static bool hba_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Certificate names: 1..255 printable ASCII characters other than blank, comma and '#'. */
static bool hba_cert_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > HBA_MAX_CERT_NAME)
		return false;
	for (size_t idx = 0; idx < len; idx++) {
		if (name[idx] <= ' ' || name[idx] > '~' || name[idx] == ',' || name[idx] == '#')
			return false;
	}
	return true;
}

static void hba_names_free(struct hba_names *names)
{
	for (size_t idx = 0; idx < names->count; idx++)
		free(names->names[idx]);
	free(names->names);
	memset(names, 0, sizeof(*names));
}

static void hba_rule_free(struct hba_rule *rule)
{
	hba_names_free(&rule->nodes);
	hba_names_free(&rule->certs);
}

void hba_free(struct hba_table *table)
{
	if (!table)
		return;
	for (size_t idx = 0; idx < table->count; idx++)
		hba_rule_free(&table->rules[idx]);
	free(table->rules);
	free(table->source);
	free(table);
}

/* Log one error about the current line; the caller adds DETAIL/HINT lines after it. */
attr_printf(2, 3) static void hba_error(struct hba_parser *parser, const char *fmt, ...)
{
	char message[512];
	va_list ap;

	parser->errors++;
	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	log_error("%s in file \"%s\" line %d", message, parser->source, parser->line);
}

static bool hba_parse_type(struct hba_parser *parser, const char *field, enum hba_type *type)
{
	for (size_t idx = 0; idx < ARRAY_SIZE(hba_type_names); idx++) {
		if (strcmp(field, hba_type_names[idx]) == 0) {
			*type = (enum hba_type)idx;
			return true;
		}
	}
	hba_error(parser, "invalid connection type \"%s\"", field);
	log_hint("Valid types are host, hostssl, hostnossl and reject.");
	return false;
}

/* Split @field (modified) at commas into tokens; empty tokens are an error. */
static bool hba_next_token(struct hba_parser *parser, char **cursor, const char *what,
			   const char *field, char **token)
{
	char *comma;

	*token = *cursor;
	comma = strchr(*cursor, ',');
	if (comma) {
		*comma = '\0';
		*cursor = comma + 1;
	} else {
		*cursor = NULL;
	}
	if (**token == '\0') {
		hba_error(parser, "empty item in %s list \"%s\"", what, field);
		return false;
	}
	return true;
}

static bool hba_parse_roles(struct hba_parser *parser, char *field, unsigned int *roles)
{
	char original[64];
	char *cursor = field, *token;

	snprintf(original, sizeof(original), "%s", field);
	*roles = 0;
	while (cursor) {
		if (!hba_next_token(parser, &cursor, "role", original, &token))
			return false;
		if (strcmp(token, "all") == 0) {
			*roles |= HBA_ROLE_ALL;
		} else if (strcmp(token, "primary") == 0) {
			*roles |= HBA_ROLE_PRIMARY;
		} else if (strcmp(token, "replica") == 0) {
			*roles |= HBA_ROLE_REPLICA;
		} else if (strcmp(token, "standby") == 0) {
			*roles |= HBA_ROLE_STANDBY;
		} else {
			hba_error(parser, "invalid role \"%s\"", token);
			log_hint("Valid roles are primary, replica, standby and all.");
			return false;
		}
	}
	return true;
}

/*
 * A NODE_NAME or CERT_NAME field: `all`, `samenode` (@certs only), or a comma-separated
 * list of names.  Keywords stand alone: "all,r1" is an error, as it says nothing more
 * than "all" and is most likely a mistake.
 */
static bool hba_parse_names(struct hba_parser *parser, char *field, bool certs,
			    struct hba_names *names)
{
	const char *what = certs ? "certificate name" : "node name";
	char original[512];
	char *cursor = field, *token, **grown;
	size_t cap = 0;

	snprintf(original, sizeof(original), "%s", field);
	if (strcmp(field, "all") == 0) {
		names->all = true;
		return true;
	}
	if (certs && strcmp(field, "samenode") == 0) {
		names->samenode = true;
		return true;
	}
	while (cursor) {
		if (!hba_next_token(parser, &cursor, what, original, &token))
			return false;
		if (strcmp(token, "all") == 0 || strcmp(token, "samenode") == 0) {
			hba_error(parser, "keyword \"%s\" cannot be part of a %s list", token,
				  what);
			return false;
		}
		if (certs ? !hba_cert_name_valid(token) : !node_name_valid(token)) {
			hba_error(parser, "invalid %s \"%.*s\"", what, HBA_MAX_CERT_NAME, token);
			log_detail(certs ? "A certificate name is 1 to 255 printable characters "
					   "other than blanks, commas and \"#\"." :
					   "A node name is " WALSHIP_NODE_NAME_RULE ".");
			return false;
		}
		if (names->count == cap) {
			cap = cap ? cap * 2 : 4;
			grown = realloc(names->names, cap * sizeof(*grown));
			if (!grown)
				goto out_of_memory;
			names->names = grown;
		}
		names->names[names->count] = strdup(token);
		if (!names->names[names->count])
			goto out_of_memory;
		names->count++;
	}
	return true;

out_of_memory:
	hba_error(parser, "out of memory");
	parser->oom = true;
	return false;
}

/* ADDRESS: `all`, or an IPv4/IPv6 address with an optional /prefix. */
static bool hba_parse_address(struct hba_parser *parser, char *field, struct hba_rule *rule)
{
	char original[128];
	char *slash, *end;
	unsigned int max_prefix;
	unsigned long prefix;

	if (strcmp(field, "all") == 0) {
		rule->any_address = true;
		return true;
	}
	snprintf(original, sizeof(original), "%s", field);
	slash = strchr(field, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, field, rule->addr) == 1) {
		rule->family = AF_INET;
		max_prefix = 32;
	} else if (inet_pton(AF_INET6, field, rule->addr) == 1) {
		rule->family = AF_INET6;
		max_prefix = 128;
		/* A peer at ::ffff:a.b.c.d is matched as the IPv4 peer it is
		 * (hba_request_address()): a rule written so would never match, and as a
		 * reject it would let in the host it was written against. */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)rule->addr)) {
			hba_error(parser, "IPv4-mapped IPv6 address \"%s\"", original);
			log_hint("Write the IPv4 address (as 10.0.0.9 or 10.0.0.0/24): a peer "
				 "connecting over IPv6 from a mapped address is matched as IPv4.");
			return false;
		}
	} else {
		hba_error(parser, "invalid IP address \"%s\"", field);
		log_hint("Write all, or an IPv4 or IPv6 address with an optional /prefix, as "
			 "10.0.0.0/24 or fd00::/64; host names are not accepted.");
		return false;
	}
	prefix = max_prefix;
	if (slash) {
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || errno ||
		    prefix > max_prefix) {
			hba_error(parser, "invalid IP mask \"%s\"", original);
			log_detail("The prefix length must be a number from 0 to %u.", max_prefix);
			return false;
		}
	}
	rule->prefix_len = (unsigned int)prefix;
	/* Host bits set under the mask are a mistake (10.0.0.1/24): say so, as ip(8) does not. */
	for (unsigned int bit = rule->prefix_len; bit < max_prefix; bit++) {
		if (rule->addr[bit / 8] & (0x80u >> (bit % 8))) {
			hba_error(parser, "invalid IP mask \"%s\"", original);
			log_detail("The address has bits set to the right of the /%u prefix.",
				   rule->prefix_len);
			return false;
		}
	}
	return true;
}

/* Split the line [@p, @end) into at most @max fields (NUL-terminated in place). */
static size_t hba_split_fields(char *p, char *end, char **fields, size_t max)
{
	size_t count = 0;

	for (;;) {
		while (p < end && hba_is_blank(*p))
			p++;
		if (p >= end || *p == '#')
			return count;
		if (count == max)
			return max + 1;
		fields[count++] = p;
		while (p < end && !hba_is_blank(*p) && *p != '#')
			p++;
		if (p < end && *p == '#') {
			*p = '\0';
			return count;
		}
		if (p < end)
			*p++ = '\0';
	}
}

static bool hba_add_rule(struct hba_parser *parser, const struct hba_rule *rule)
{
	struct hba_rule *grown;

	if (parser->count == parser->cap) {
		size_t cap = parser->cap ? parser->cap * 2 : 16;

		grown = realloc(parser->rules, cap * sizeof(*grown));
		if (!grown) {
			hba_error(parser, "out of memory");
			parser->oom = true;
			return false;
		}
		parser->rules = grown;
		parser->cap = cap;
	}
	parser->rules[parser->count++] = *rule;
	return true;
}

/* The METHOD field: only for rules of role standby alone; cert only on hostssl. */
static bool hba_parse_method(struct hba_parser *parser, const char *field, struct hba_rule *rule)
{
	size_t idx;

	for (idx = 0; idx < ARRAY_SIZE(hba_method_names); idx++)
		if (!strcmp(field, hba_method_names[idx]))
			break;
	if (idx == ARRAY_SIZE(hba_method_names)) {
		hba_error(parser, "invalid authentication method \"%s\"", field);
		log_hint("Methods are trust, scram-sha-256 and cert.");
		return false;
	}
	if (rule->roles != HBA_ROLE_STANDBY) {
		hba_error(parser, "authentication method \"%s\" applies to role standby only",
			  field);
		log_detail("walshipd peers authenticate with their TLS certificates.");
		return false;
	}
	rule->method = (enum hba_method)idx;
	if (rule->method == HBA_METHOD_CERT && rule->type != HBA_TYPE_HOSTSSL) {
		hba_error(parser, "cert authentication is only supported on hostssl connections");
		return false;
	}
	return true;
}

/* One line [@p, @end) of the text; @end points at its '\n' or the end of the copy. */
static void hba_parse_line(struct hba_parser *parser, char *p, char *end)
{
	static const char *const field_names[HBA_FIELDS - 1] = { "role", "node name",
								 "certificate name", "address" };
	char *fields[HBA_FIELDS];
	struct hba_rule rule = { .line = parser->line };
	size_t count;

	*end = '\0';
	count = hba_split_fields(p, end, fields, HBA_FIELDS);
	if (count == 0)
		return;
	if (count > HBA_FIELDS) {
		hba_error(parser, "too many fields");
		log_detail("A rule has five fields: type, role, node name, certificate name and "
			   "address, and for role standby an authentication method.");
		return;
	}
	if (!hba_parse_type(parser, fields[0], &rule.type))
		return;
	if (count < HBA_FIELDS - 1) {
		hba_error(parser, "end-of-line before %s specification", field_names[count - 1]);
		return;
	}
	if (!hba_parse_roles(parser, fields[1], &rule.roles) ||
	    !hba_parse_names(parser, fields[2], false, &rule.nodes) ||
	    !hba_parse_names(parser, fields[3], true, &rule.certs) ||
	    !hba_parse_address(parser, fields[4], &rule) ||
	    (count == HBA_FIELDS && !hba_parse_method(parser, fields[5], &rule)))
		goto out_free;
	if (rule.type == HBA_TYPE_HOSTNOSSL && !rule.certs.all) {
		hba_error(parser, "hostnossl rule cannot name a certificate");
		log_detail("A plaintext peer presents no certificate, so the rule could never "
			   "match.");
		goto out_free;
	}
	if (hba_add_rule(parser, &rule))
		return;
out_free:
	hba_rule_free(&rule);
}

int hba_parse_string(const char *text, const char *source, struct hba_table **out)
{
	struct hba_parser parser = { .source = source ? source : "(unnamed)" };
	struct hba_table *table = NULL;
	size_t len = strlen(text);
	char *copy, *p, *end;
	int ret = -EINVAL;

	copy = malloc(len + 1);
	if (!copy) {
		log_error("out of memory");
		return -ENOMEM;
	}
	memcpy(copy, text, len + 1);
	for (p = copy, end = copy + len; p <= end && parser.errors < HBA_MAX_ERRORS;) {
		char *line_end = memchr(p, '\n', (size_t)(end - p));

		if (!line_end)
			line_end = end;
		parser.line++;
		hba_parse_line(&parser, p, line_end);
		p = line_end + 1;
	}
	if (parser.errors >= HBA_MAX_ERRORS)
		log_error("too many errors found, abandoning file \"%s\"", parser.source);
	if (parser.errors) {
		if (parser.oom)
			ret = -ENOMEM;
		goto out_free;
	}
	if (parser.count == 0) {
		log_error("configuration file \"%s\" contains no entries", parser.source);
		log_hint("Without a rule every connection is refused; write at least one.");
		goto out_free;
	}
	table = calloc(1, sizeof(*table));
	if (table)
		table->source = strdup(parser.source);
	if (!table || !table->source) {
		free(table);
		log_error("out of memory");
		ret = -ENOMEM;
		goto out_free;
	}
	table->rules = parser.rules;
	table->count = parser.count;
	parser.rules = NULL;
	parser.count = 0;
	*out = table;
	ret = 0;
out_free:
	for (size_t idx = 0; idx < parser.count; idx++)
		hba_rule_free(&parser.rules[idx]);
	free(parser.rules);
	free(copy);
	return ret;
}

int hba_load(const char *path, struct hba_table **out)
{
	char *text;
	size_t len;
	int ret = textfile_read(path, "file", HBA_FILE_MAX, &text, &len);

	if (ret < 0)
		return ret;
	if (strlen(text) != len) {
		log_error("invalid NUL byte in file \"%s\"", path);
		ret = -EINVAL;
	} else {
		ret = hba_parse_string(text, path, out);
	}
	free(text);
	return ret;
}

/* The request's address as 4 or 16 bytes; a v4-mapped IPv6 address counts as IPv4. */
static int hba_request_address(const struct sockaddr *addr, uint8_t *bytes)
{
	if (!addr)
		return AF_UNSPEC;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)addr;

		memcpy(bytes, &in4->sin_addr, 4);
		return AF_INET;
	}
	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memcpy(bytes, in6->sin6_addr.s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(bytes, in6->sin6_addr.s6_addr, 16);
		return AF_INET6;
	}
	return AF_UNSPEC;
}

static bool hba_address_matches(const struct hba_rule *rule, int family, const uint8_t *bytes)
{
	unsigned int full = rule->prefix_len / 8, rest = rule->prefix_len % 8;

	if (rule->any_address)
		return true;
	if (family != rule->family)
		return false;
	if (memcmp(bytes, rule->addr, full) != 0)
		return false;
	if (rest && ((bytes[full] ^ rule->addr[full]) & (uint8_t)(0xFFu << (8 - rest))))
		return false;
	return true;
}

static bool hba_name_listed(const struct hba_names *names, const char *name)
{
	for (size_t idx = 0; idx < names->count; idx++) {
		if (strcmp(names->names[idx], name) == 0)
			return true;
	}
	return false;
}

static bool hba_rule_matches(const struct hba_rule *rule, const struct hba_request *req, int family,
			     const uint8_t *bytes)
{
	const char *cert = req->cert_name;
	bool tls = req->tls || cert;

	if (rule->type == HBA_TYPE_HOSTSSL && !tls)
		return false;
	if (rule->type == HBA_TYPE_HOSTNOSSL && tls)
		return false;
	if (!(rule->roles & (unsigned int)req->role))
		return false;
	if (!rule->nodes.all && (!req->node_name || !hba_name_listed(&rule->nodes, req->node_name)))
		return false;
	if (!rule->certs.all) {
		if (!cert)
			return false;
		if (rule->certs.samenode) {
			if (!req->node_name || strcmp(cert, req->node_name) != 0)
				return false;
		} else if (!hba_name_listed(&rule->certs, cert)) {
			return false;
		}
	}
	return hba_address_matches(rule, family, bytes);
}

enum hba_verdict hba_match(const struct hba_table *table, const struct hba_request *req,
			   struct hba_match *match)
{
	uint8_t bytes[16] = { 0 };
	int family = hba_request_address(req->addr, bytes);

	memset(match, 0, sizeof(*match));
	match->verdict = HBA_DENY;
	if (req->role != HBA_ROLE_PRIMARY && req->role != HBA_ROLE_REPLICA &&
	    req->role != HBA_ROLE_STANDBY)
		return HBA_DENY;
	for (size_t idx = 0; table && idx < table->count; idx++) {
		const struct hba_rule *rule = &table->rules[idx];

		if (!hba_rule_matches(rule, req, family, bytes))
			continue;
		match->rule = rule;
		match->line = rule->line;
		match->verdict = rule->type == HBA_TYPE_REJECT ? HBA_DENY : HBA_ALLOW;
		break;
	}
	return match->verdict;
}

char *hba_format_refusal(const struct hba_table *table, const struct hba_request *req,
			 const struct hba_match *match, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "unknown";
	char cert[HBA_MAX_CERT_NAME + 32] = "no certificate";
	char who[512];
	uint8_t bytes[16];
	int family = hba_request_address(req->addr, bytes);
	const char *role = req->role == HBA_ROLE_PRIMARY ? "primary" :
			   req->role == HBA_ROLE_REPLICA ? "replica" :
			   req->role == HBA_ROLE_STANDBY ? "standby" :
							   "unknown";

	if (family != AF_UNSPEC)
		inet_ntop(family, bytes, host, sizeof(host));
	if (req->cert_name)
		snprintf(cert, sizeof(cert), "certificate \"%.*s\"", HBA_MAX_CERT_NAME,
			 req->cert_name);
	snprintf(who, sizeof(who), "node \"%.63s\", role %s, host \"%s\", %s",
		 req->node_name ? req->node_name : "", role, host, cert);
	if (match && match->rule)
		snprintf(buf, len, "hba_file \"%s\" line %d rejects connection for %s",
			 table ? table->source : "", match->line, who);
	else
		snprintf(buf, len, "no hba_file entry for %s", who);
	return buf;
}
