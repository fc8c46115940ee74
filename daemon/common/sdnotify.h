/* SPDX-License-Identifier: MIT */
/*
 * Telling the service manager how the daemon is doing: systemd's notification protocol
 * (sd_notify(3), a datagram to the socket named by $NOTIFY_SOCKET), through libsystemd.
 * Without $NOTIFY_SOCKET (not started by systemd with Type=notify) every call does
 * nothing, so the daemon calls them unconditionally.
 *
 *   READY=1      startup finished: listeners bound and accepting, probes loaded (or
 *                degraded), control socket up
 *   STATUS=...   one line saying what the daemon does (`systemctl status` shows it)
 *   RELOADING=1  a SIGHUP reload began (with MONOTONIC_USEC); READY=1 when it is done
 *   STOPPING=1   a stop began (SIGTERM, SIGINT)
 *   WATCHDOG=1   the event loop is alive, every half of WatchdogSec=
 *
 * Failures to send are ignored: the service manager is told, never waited for.
 */
#ifndef WALSHIP_COMMON_SDNOTIFY_H
#define WALSHIP_COMMON_SDNOTIFY_H

#include <stdint.h>

void sdnotify_ready(void);
void sdnotify_reloading(void);
void sdnotify_stopping(void);

/* Send STATUS=@text, unless @text is what was sent last (compared up to this length). */
#define SDNOTIFY_STATUS_MAX 256
void sdnotify_status(const char *text);

/*
 * The interval in ms at which sdnotify_watchdog() must be called: half of the
 * WatchdogSec= systemd set for this process ($WATCHDOG_USEC, $WATCHDOG_PID), 0 when no
 * watchdog is asked for.
 */
int64_t sdnotify_watchdog_interval_ms(void);
void sdnotify_watchdog(void);

#endif /* WALSHIP_COMMON_SDNOTIFY_H */
