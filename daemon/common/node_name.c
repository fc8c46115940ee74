// SPDX-License-Identifier: MIT
/*
 * Node names (see node_name.h; the rule is include/walship/node_name.h).
 */
#include <walship/control.h>
#include <walship/netlink.h>
#include <walship/wire.h>

#include "common/config.h"
#include "common/node_name.h"

/* Every buffer and bound that holds a node name agrees with the rule. */
_Static_assert(WIRE_MAX_NAME == WALSHIP_NODE_NAME_MAX, "HELLO carries any node name");
_Static_assert(WALSHIP_NAME_MAX == WALSHIP_NODE_NAME_MAX, "walship.ko shows any node name");
_Static_assert(CONFIG_MAX_NAME > WALSHIP_NODE_NAME_MAX, "node_name holds any node name");
_Static_assert(CTL_MAX_NAME > WALSHIP_NODE_NAME_MAX, "control requests carry any node name");

bool node_name_valid(const char *name)
{
	return walship_node_name_valid(name);
}

void node_name_from_text(const char *text, char *buf, size_t len)
{
	size_t out = 0;

	if (!len)
		return;
	for (; text[out] && out + 1 < len && out < WALSHIP_NODE_NAME_MAX; out++)
		buf[out] = walship_node_name_char_valid(text[out], (unsigned int)out) ? text[out] :
											'_';
	buf[out] = '\0';
}
