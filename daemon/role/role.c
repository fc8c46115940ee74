// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the roles.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "control/control.h"
#include "role/role.h"

void status_reply(struct ctl_client *client, void (*fill)(void *state, struct status_node *n),
		  void *state, bool json)
{
	static const char oom[] = "out of memory";
	struct status_node n;
	size_t len;
	char *text;

	fill(state, &n);
	text = status_render(&n, json, &len);
	status_node_release(&n);
	if (text)
		control_reply(client, CTL_OK, text, len);
	else
		control_reply(client, CTL_ERR_FAILED, oom, sizeof(oom) - 1);
	free(text);
}
