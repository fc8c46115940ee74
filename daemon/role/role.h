/* SPDX-License-Identifier: MIT */
/*
 * A role (primary or replica) as the event loop in main.c sees it.
 */
#ifndef WALSHIP_ROLE_ROLE_H
#define WALSHIP_ROLE_ROLE_H

#include <stdbool.h>
#include <stdint.h>

#include <walship/wire.h>

#include "common/clock.h"
#include "common/config.h"
#include "ring/ring.h"
#include "status/reply.h"
#include "status/status.h"

struct role_ops {
	const char *name;
	/* Set up listeners and connections; returns an opaque state or NULL (logged).  On
	 * NULL, *@config_error is set when what failed is a file the configuration names
	 * (tls_ca_file, tls_cert_file, tls_key_file, hba_file, pg_password_file: missing,
	 * unreadable, refused for its permissions, or not valid: textfile_error_lasts()),
	 * which fails again however often the daemon starts; left alone for what a later
	 * start may not meet (a socket, a directory, descriptors, memory, an I/O error;
	 * the TLS files loaded again for a replica's pg_listen or relay, which its own
	 * connection loaded a moment before). */
	void *(*start)(const struct config *cfg, struct ring *r, bool *config_error);
	/* After every batch of completions: move work forward (fill send queues). */
	void (*pump)(void *state);
	/* Every tick (ROLE_TICK_MS): timeouts, reconnects. */
	void (*tick)(void *state, int64_t now_ms);
	/* Begin a clean stop: refuse new work, close connections. */
	void (*stop)(void *state);
	/* True when stop() has finished its work and nothing is in flight. */
	bool (*stopped)(void *state);
	/* Apply reloadable keys from a new configuration (SIGHUP). */
	void (*reload)(void *state, const struct config *cfg);
	/* Fill @n with the current state (for status replies and publishers); release it
	 * with status_node_release(). */
	void (*status)(void *state, struct status_node *n);
	void (*free)(void *state);
};

#define ROLE_TICK_MS 100

/*
 * The registered buffers (slots) main.c gives the ring, ROLE_SLOT_SIZE bytes each: one
 * whole frame.  The primary reads a chunk of WAL behind the frame and DATA headers from
 * offset 0.  The replica places a received DATA payload at ROLE_SLOT_DATA_OFFSET, so that
 * its content starts on a ROLE_DIO_ALIGN boundary and is written with O_DIRECT straight
 * from the slot (chunk offsets and lengths are multiples of 1 MiB, so only the buffer
 * address needs aligning).
 */
#define ROLE_DIO_ALIGN 4096
#define ROLE_SLOT_DATA_OFFSET (ROLE_DIO_ALIGN - WIRE_DATA_HEADER_SIZE)
#define ROLE_SLOT_SIZE (ROLE_SLOT_DATA_OFFSET + WIRE_MAX_PAYLOAD)
_Static_assert(ROLE_SLOT_SIZE >= WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD,
	       "a slot holds a whole frame from offset 0");

extern const struct role_ops primary_role;
extern const struct role_ops replica_role;

#endif /* WALSHIP_ROLE_ROLE_H */
