/* SPDX-License-Identifier: MIT */
/*
 * Local control protocol between the walship CLI and walshipd, over the UNIX socket named
 * by the `socket` config key (SOCK_SEQPACKET: one message is one request or one reply).
 *
 * Both ends run on the same host and are built from the same tree, so messages are
 * fixed-layout structs in host byte order; the magic and version catch a mismatched pair.
 *
 * Request:  struct ctl_request.  For CTL_PUSH the open WAL file descriptor travels with it
 *           as SCM_RIGHTS ancillary data (exactly one descriptor), and `name` is the file's
 *           WAL name (the basename of the path given to `walship push`).
 * Reply:    struct ctl_reply followed by `text_len` bytes of text (no NUL): the one-line
 *           verdict for CTL_PUSH, the status document for CTL_STATUS.
 * One request per connection, unless the request carries CTL_F_KEEP: then, once the
 * reply is sent, the next request may follow on the same connection.
 */
#ifndef WALSHIP_CONTROL_H
#define WALSHIP_CONTROL_H

#include <stdint.h>

#define CTL_MAGIC 0x57534354u /* "WSCT" */
#define CTL_VERSION 1
#define CTL_MAX_NAME 64
/* Largest reply, text included. */
#define CTL_MAX_REPLY (256 * 1024)

enum ctl_op {
	CTL_PUSH = 1, /* hand over a WAL file; reply when it is safe or has failed */
	CTL_STATUS = 2, /* reply with the status document */
	CTL_REPLICA_DROP = 3, /* primary: forget registered replica `name`, release its WAL */
	CTL_STANDBY_HOLD = 4, /* replica: hold the standby of application name `name` */
	CTL_STANDBY_RELEASE = 5, /* replica: release it; with CTL_F_BEFORE or CTL_F_UPTO, `name`
				  * is "APP VALUE": VALUE in decimal, a PostgreSQL timestamp (µs
				  * since 2000-01-01 UTC) or an LSN */
};

enum ctl_flags {
	CTL_F_JSON = 1u << 0, /* CTL_STATUS: JSON instead of text */
	/*
	 * Keep the connection after the reply: the daemon waits for the client's next
	 * request on it (PostgreSQL's archive module pushes every segment over one
	 * connection).  Without it the daemon closes the connection after the reply.
	 */
	CTL_F_KEEP = 1u << 1,
	CTL_F_BEFORE = 1u << 2, /* CTL_STANDBY_RELEASE: up to just before a commit time */
	CTL_F_UPTO = 1u << 3, /* CTL_STANDBY_RELEASE: up to an LSN */
};

enum ctl_code {
	CTL_OK = 0,
	CTL_ERR_INVALID = 1, /* bad request (name, descriptor, op) */
	CTL_ERR_FAILED = 2, /* push could not be made safe; text says why */
	CTL_ERR_TIMEOUT = 3, /* push_timeout expired before sync_replicas acknowledged */
	CTL_ERR_ROLE = 4, /* operation not valid for this daemon's role */
	CTL_ERR_BUSY = 5, /* bounded queue full; retry later */
	CTL_ERR_CONFLICT = 6, /* a replica holds different content under this name */
	CTL_WARN_LOST = 7, /* CTL_STATUS: the document follows, and a replica lost WAL */
};

struct ctl_request {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t flags;
	char name[CTL_MAX_NAME]; /* NUL-terminated */
};

struct ctl_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t code;
	uint32_t text_len;
};

#endif /* WALSHIP_CONTROL_H */
