// SPDX-License-Identifier: MIT
/*
 * SIGBUS-guarded reads of mapped files (see mapguard.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/mapguard.h"

/* Per thread: a SIGBUS of a read is delivered to the thread that read (the worker reads
 * pushed files too: primary_push.c, same_job). */
static __thread sigjmp_buf mapguard_env;
static __thread volatile sig_atomic_t mapguard_active;

static void mapguard_handler(int sig, siginfo_t *info, void *ctx)
{
	(void)info;
	(void)ctx;
	if (mapguard_active) {
		mapguard_active = 0;
		siglongjmp(mapguard_env, 1);
	}
	/* A SIGBUS outside a guarded read is a real bug: die of it. */
	signal(sig, SIG_DFL);
	raise(sig);
}

int mapguard_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = mapguard_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		return -errno;
	return 0;
}

int mapguard_crc32c(uint32_t crc, const void *data, size_t len, uint32_t *out)
{
	volatile uint32_t result = crc;

	if (sigsetjmp(mapguard_env, 1)) {
		mapguard_active = 0;
		return -EFAULT;
	}
	mapguard_active = 1;
	result = crc32c(crc, data, len);
	mapguard_active = 0;
	*out = result;
	return 0;
}

int mapguard_copy(void *dst, const void *src, size_t len)
{
	if (sigsetjmp(mapguard_env, 1)) {
		mapguard_active = 0;
		return -EFAULT;
	}
	mapguard_active = 1;
	memcpy(dst, src, len);
	mapguard_active = 0;
	return 0;
}

int mapguard_call(int (*fn)(void *arg), void *arg)
{
	volatile int ret;

	if (sigsetjmp(mapguard_env, 1)) {
		mapguard_active = 0;
		return -EFAULT;
	}
	mapguard_active = 1;
	ret = fn(arg);
	mapguard_active = 0;
	return ret;
}
