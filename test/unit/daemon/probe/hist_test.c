// SPDX-License-Identifier: MIT
/* Unit tests for daemon/probe/hist.c: how peers are named in what is printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probe/hist.h"

/* Two peers whose hosts are not published yet (numbered, counted within one tick), one
 * named: each has labels of its own in the Prometheus text (the same "unknown" twice
 * was a duplicate series, which Prometheus drops and stricter parsers refuse). */
static void test_unnamed_peers_distinct(void **state)
{
	static struct probe_snapshot s;
	char buf[32], *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.send[1].sent.slots[3] = 1;
	s.send[2].sent.slots[3] = 1;
	snprintf(s.peer[3], sizeof(s.peer[3]), "10.0.0.3");
	s.send[3].sent.slots[3] = 1;
	assert_string_equal(probe_peer_label(&s, 1, buf, sizeof(buf)), "unknown #1");
	assert_string_equal(probe_peer_label(&s, 3, buf, sizeof(buf)), "10.0.0.3");
	out = open_memstream(&text, &len);
	assert_non_null(out);
	probe_print_prometheus(out, &s);
	fclose(out);
	assert_non_null(strstr(text, "peer=\"unknown #1\",stage=\"sent\""));
	assert_non_null(strstr(text, "peer=\"unknown #2\",stage=\"sent\""));
	assert_non_null(strstr(text, "peer=\"10.0.0.3\",stage=\"sent\""));
	assert_null(strstr(text, "peer=\"unknown\""));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unnamed_peers_distinct),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
