/* SPDX-License-Identifier: MIT */
/*
 * Answering `walship status` over the control socket: the role fills a status node, the
 * daemon adds what is not the role's (a hook), and the node is rendered as text or JSON
 * into the reply.  Lost WAL shows in the reply's code (CTL_WARN_LOST), so that `walship
 * status` exits non-zero and a lost file is never only a line of text.
 */
#ifndef WALSHIP_STATUS_REPLY_H
#define WALSHIP_STATUS_REPLY_H

#include <stdbool.h>

#include "status/status.h"

struct ctl_client;

/* Reply to a CTL_STATUS request from @client with the state @fill produces from @state,
 * as text or JSON; an allocation failure is answered CTL_ERR_FAILED. */
void status_reply(struct ctl_client *client, void (*fill)(void *state, struct status_node *n),
		  void *state, bool json);

/* Set what status_reply() calls after the role filled the node, before rendering: the
 * daemon adds what is not the role's (the BPF probes' quantiles).  @hook NULL: none. */
void status_reply_set_hook(void (*hook)(struct status_node *n, void *arg), void *arg);

#endif /* WALSHIP_STATUS_REPLY_H */
