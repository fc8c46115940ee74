// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the access-rule parser and matcher (daemon/common/hba.c).
 *
 * Input: a rules text; when it parses, a few fixed requests (IPv4, IPv6, v4-mapped, with
 * and without a certificate, both roles) are matched against it.
 *
 * Properties: parsing returns 0 or -EINVAL and hands out a table only on 0, with rules in
 * increasing line order; a match names a rule of the table, and its verdict is allow
 * exactly when that rule is not `reject`; the refusal message is NUL-terminated.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "common/compiler.h"
#include "common/hba.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

static void check_request(const struct hba_table *table, enum hba_role role, const char *node,
			  const char *cert, const struct sockaddr *addr)
{
	struct hba_request req = {
		.role = role, .node_name = node, .cert_name = cert, .addr = addr
	};
	struct hba_match match;
	enum hba_verdict verdict = hba_match(table, &req, &match);
	char message[256];

	FUZZ_ASSERT(verdict == match.verdict);
	if (match.rule) {
		FUZZ_ASSERT(match.rule >= table->rules && match.rule < table->rules + table->count);
		FUZZ_ASSERT(match.line == match.rule->line);
		FUZZ_ASSERT((verdict == HBA_ALLOW) == (match.rule->type != HBA_TYPE_REJECT));
	} else {
		FUZZ_ASSERT(verdict == HBA_DENY && match.line == 0);
	}
	hba_format_refusal(table, &req, &match, message, sizeof(message));
	FUZZ_ASSERT(strlen(message) < sizeof(message));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const nodes[] = { "r1", "r2", "primary-1", NULL };
	static const char *const certs[] = { NULL, "r1", "r1.example.net" };
	static const char *const v4[] = { "10.0.0.1", "192.168.7.200", "0.0.0.0" };
	static const char *const v6[] = { "fd00:77::1", "::1", "::ffff:10.0.0.1" };
	struct sockaddr_in in4 = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct hba_table *table = NULL;
	char *text = fuzz_strndup(data, size);
	int ret;

	ret = hba_parse_string(text, "fuzz.hba", &table);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	FUZZ_ASSERT((ret == 0) == (table != NULL));
	if (table) {
		FUZZ_ASSERT(table->count >= 1);
		for (size_t idx = 1; idx < table->count; idx++)
			FUZZ_ASSERT(table->rules[idx - 1].line < table->rules[idx].line);
		for (size_t n = 0; n < ARRAY_SIZE(nodes); n++) {
			for (size_t c = 0; c < ARRAY_SIZE(certs); c++) {
				for (size_t a = 0; a < 3; a++) {
					inet_pton(AF_INET, v4[a], &in4.sin_addr);
					inet_pton(AF_INET6, v6[a], &in6.sin6_addr);
					check_request(table, HBA_ROLE_REPLICA, nodes[n], certs[c],
						      (const struct sockaddr *)&in4);
					check_request(table, HBA_ROLE_PRIMARY, nodes[n], certs[c],
						      (const struct sockaddr *)&in6);
				}
			}
		}
		check_request(table, HBA_ROLE_REPLICA, "r1", NULL, NULL);
		hba_free(table);
	}
	free(text);
	return 0;
}
