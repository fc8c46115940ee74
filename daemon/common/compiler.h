/* SPDX-License-Identifier: MIT */
/*
 * What C leaves to each program: the enclosing object of an embedded member, the length
 * of an array, and the printf-format check.  One copy for the whole tree (daemon, CLI,
 * tests); the kernel module has its own (linux/container_of.h, linux/array_size.h).
 */
#ifndef WALSHIP_COMMON_COMPILER_H
#define WALSHIP_COMMON_COMPILER_H

#include <stddef.h>

/* The object of type @type whose member @member is at @ptr. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* The number of elements of array @arr (an array, not a pointer). */
#define ARRAY_SIZE(arr) (sizeof(arr) / sizeof((arr)[0]))

/* Check the arguments from @first against the printf format in argument @fmt (0 for a
 * va_list). */
#define attr_printf(fmt, first) __attribute__((format(printf, fmt, first)))

#endif /* WALSHIP_COMMON_COMPILER_H */
