/* SPDX-License-Identifier: MIT */
/*
 * Node names: the name a node gives itself (node_name), announces in HELLO, and is known
 * by in access rules, the spool (spool_dir/replicas/NAME), status and sysfs.
 *
 * The rule, checked at every door (config, HELLO, hba_file, `walship replica drop`, the
 * spool, the publisher, walship.ko): 1 to WALSHIP_NODE_NAME_MAX (63, the bound of
 * WIRE_MAX_NAME in HELLO) characters from A-Z a-z 0-9 "_" "." "-", not starting with "."
 * (so neither "." nor ".." nor a hidden directory name).  The rule itself is written once,
 * in include/walship/node_name.h, because walship.ko applies it too; this unit is the
 * daemon's door to it.  WALSHIP_NODE_NAME_RULE says it in words for messages.
 */
#ifndef WALSHIP_COMMON_NODE_NAME_H
#define WALSHIP_COMMON_NODE_NAME_H

#include <stdbool.h>
#include <stddef.h>

#include <walship/node_name.h>

/* True when @name (NUL-terminated; NULL is not a name) follows the rule above. */
bool node_name_valid(const char *name);

/*
 * Make a node name from @text (a host name): every character the rule does not allow at
 * its position becomes "_", and the result is cut to WALSHIP_NODE_NAME_MAX characters and
 * to @len - 1 bytes.  Writes "" when @text is empty.  The result is valid whenever it is
 * not empty.
 */
void node_name_from_text(const char *text, char *buf, size_t len);

#endif /* WALSHIP_COMMON_NODE_NAME_H */
