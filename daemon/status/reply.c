// SPDX-License-Identifier: MIT
/*
 * status_reply(): a status node rendered into a control-socket reply (see reply.h).
 */
#include <stdlib.h>

#include "control/control.h"
#include "status/reply.h"

static void (*status_hook)(struct status_node *n, void *arg);
static void *status_hook_arg;

void status_reply_set_hook(void (*hook)(struct status_node *n, void *arg), void *arg)
{
	status_hook = hook;
	status_hook_arg = arg;
}

void status_reply(struct ctl_client *client, void (*fill)(void *state, struct status_node *n),
		  void *state, bool json)
{
	struct status_node n;
	size_t len;
	char *text;
	bool lost;

	fill(state, &n);
	n.probes = NULL;
	if (status_hook)
		status_hook(&n, status_hook_arg);
	lost = n.lost_files != 0;
	text = status_render(&n, json, &len);
	status_node_release(&n);
	if (text)
		/* Lost WAL shows in the exit status of `walship status`, not only in its
		 * text: never a silent drop. */
		control_reply(client, lost ? CTL_WARN_LOST : CTL_OK, text, len);
	else
		control_reply_text(client, CTL_ERR_FAILED, "out of memory");
	free(text);
}
