// SPDX-License-Identifier: MIT
/*
 * The service manager's notifications through libsystemd's sd_notify(), which finds
 * $NOTIFY_SOCKET (a path or an abstract "@" name) and sends one datagram per call.
 */
#include "common/sdnotify.h"

#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

/* The last STATUS= sent, to send a line only when it changes. */
static char sdnotify_last_status[SDNOTIFY_STATUS_MAX];

void sdnotify_ready(void)
{
	sd_notify(0, "READY=1");
}

void sdnotify_reloading(void)
{
	struct timespec now;

	/* MONOTONIC_USEC: systemd uses it to tell this reload from an earlier one. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now.tv_sec * 1000000ULL +
			   (unsigned long long)now.tv_nsec / 1000ULL);
}

void sdnotify_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void sdnotify_status(const char *text)
{
	if (strcmp(text, sdnotify_last_status) == 0)
		return;
	strncpy(sdnotify_last_status, text, sizeof(sdnotify_last_status) - 1);
	sd_notifyf(0, "STATUS=%s", text);
}

int64_t sdnotify_watchdog_interval_ms(void)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return (int64_t)(usec / 2000);
}

void sdnotify_watchdog(void)
{
	sd_notify(0, "WATCHDOG=1");
}
