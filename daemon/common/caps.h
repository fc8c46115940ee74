/* SPDX-License-Identifier: MIT */
/*
 * The process's effective capabilities, as /proc/self/status says them: for a clear
 * message before an operation the kernel would refuse (the BPF probes, the sysfs
 * publisher's netlink), rather than a bare EPERM after it.
 */
#ifndef WALSHIP_COMMON_CAPS_H
#define WALSHIP_COMMON_CAPS_H

#include <stdbool.h>

/* Capability numbers (linux/capability.h) the daemon asks about. */
#define CAPS_NET_ADMIN 12
#define CAPS_SYS_ADMIN 21
#define CAPS_PERFMON 38
#define CAPS_BPF 39

/* True if this process's effective set has capability @cap; true also when it cannot be
 * told (no /proc): then the kernel says. */
bool caps_effective(unsigned int cap);

#endif
