/* SPDX-License-Identifier: MIT */
/*
 * The node-name rule, the one copy shared by walshipd (daemon/common/node_name.h, used by
 * the config, the handshake, the access rules, the spool and the publisher) and walship.ko
 * (peer and node names over netlink).  The module cannot link user-space code, so the
 * rule is a static inline here; test/unit/daemon/common/node_name_test.c runs it and the
 * daemon's node_name_valid() over one table of cases.
 *
 * A node name is 1 to WALSHIP_NODE_NAME_MAX characters from A-Z a-z 0-9 "_" "." "-", and
 * does not start with ".".  Names become directory names (spool_dir/replicas/NAME,
 * /sys/kernel/walship/peers/NAME): "." and ".." are not names, and a leading dot would
 * hide the directory from the listings that skip hidden entries.
 *
 * No kernel or libc includes: the includer provides bool (linux/types.h, stdbool.h).
 */
#ifndef WALSHIP_NODE_NAME_H
#define WALSHIP_NODE_NAME_H

#define WALSHIP_NODE_NAME_MAX 63 /* characters, without the terminating NUL */

/* The rule in words, for messages: "a node name is " WALSHIP_NODE_NAME_RULE. */
#define WALSHIP_NODE_NAME_STR_(x) #x
#define WALSHIP_NODE_NAME_STR(x) WALSHIP_NODE_NAME_STR_(x)
#define WALSHIP_NODE_NAME_LENGTH_WORDS "1 to " WALSHIP_NODE_NAME_STR(WALSHIP_NODE_NAME_MAX)
#define WALSHIP_NODE_NAME_CHARS_WORDS "letters, digits, \"_\", \".\" or \"-\""
#define WALSHIP_NODE_NAME_RULE \
	WALSHIP_NODE_NAME_LENGTH_WORDS " " WALSHIP_NODE_NAME_CHARS_WORDS ", not starting with \".\""

/* True if @c may stand at position @pos of a node name. */
static inline bool walship_node_name_char_valid(char c, unsigned int pos)
{
	if (c == '.')
		return pos > 0;
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* True if the NUL-terminated @name follows the rule above; NULL is not a name. */
static inline bool walship_node_name_valid(const char *name)
{
	unsigned int len;

	if (!name)
		return false;
	for (len = 0; name[len]; len++) {
		if (len >= WALSHIP_NODE_NAME_MAX || !walship_node_name_char_valid(name[len], len))
			return false;
	}
	return len > 0;
}

#endif /* WALSHIP_NODE_NAME_H */
