/* SPDX-License-Identifier: MIT */
/*
 * Reading a file through a shared mapping without dying when it shrinks.
 *
 * A page of a mapping beyond the file's end raises SIGBUS when touched.  The primary
 * reads the WAL files it ships through read-only mappings (to checksum them without
 * copying them); a file truncated behind its back must fail that one push, not kill the
 * daemon.  mapguard_crc32c() runs the checksum with a SIGBUS handler armed that jumps
 * back out of it.  The kernel's own accesses to the mapping (sends) fail with -EFAULT
 * instead, so only user-space reads need this: the checksum, the validation, and the
 * encryption of TLS in user space (net/tls_pump.c).
 */
#ifndef WALSHIP_COMMON_MAPGUARD_H
#define WALSHIP_COMMON_MAPGUARD_H

#include <stddef.h>
#include <stdint.h>

/* Install the SIGBUS handler (once per process).  Returns 0 or -errno. */
int mapguard_init(void);

/*
 * crc32c(@crc, @data, @len) over mapped memory.  Returns 0 and sets *@out, or -EFAULT
 * when a page could not be read (the file shrank).  Any thread may call it (the guard is
 * per thread), after mapguard_init().
 */
int mapguard_crc32c(uint32_t crc, const void *data, size_t len, uint32_t *out);

/* memcpy(@dst, @src, @len) from mapped memory; 0, or -EFAULT when a page could not be
 * read. */
int mapguard_copy(void *dst, const void *src, size_t len);

/*
 * Run @fn(@arg), which reads mapped memory, with the guard armed.  Returns what @fn
 * returned, or -EFAULT when a page could not be read (the file shrank): @fn is then cut
 * short where it stood, so it must not allocate or hold anything across its reads.
 */
int mapguard_call(int (*fn)(void *arg), void *arg);

#endif /* WALSHIP_COMMON_MAPGUARD_H */
