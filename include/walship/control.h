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
 *           WAL name (the basename of the path given to `walship push`).  With CTL_F_AHEAD
 *           up to CTL_MAX_AHEAD more descriptors follow the first, in one message: the
 *           segments after it (see CTL_F_AHEAD).
 * Reply:    struct ctl_reply followed by `text_len` bytes of text (no NUL): the one-line
 *           verdict for CTL_PUSH, the status document for CTL_STATUS.
 * One request per connection, unless a CTL_PUSH carries CTL_F_KEEP: then, once the reply
 * is sent, the next request may follow on the same connection.
 */
#ifndef WALSHIP_CONTROL_H
#define WALSHIP_CONTROL_H

#include <stdint.h>

#define CTL_MAGIC 0x57534354u /* "WSCT" */
#define CTL_VERSION 1
#define CTL_MAX_NAME 64
/* CTL_PUSH with CTL_F_AHEAD: segments passed after the pushed one, at most. */
#define CTL_MAX_AHEAD 4
/* Descriptors in one request, at most. */
#define CTL_MAX_FDS (1 + CTL_MAX_AHEAD)
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
	/*
	 * CTL_PUSH: the descriptors after the first are open segments that follow the pushed
	 * one (segment numbers +1, +2, ... on its timeline, in order), complete and marked
	 * ready in PostgreSQL's archive_status: the archiver will push them next.  walshipd
	 * starts shipping them at once and answers for the first only; their own pushes,
	 * when they come, take over what was started (`push_ahead` in docs/configuration.md).
	 */
	CTL_F_AHEAD = 1u << 4,
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
