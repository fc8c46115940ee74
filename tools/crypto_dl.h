/* SPDX-License-Identifier: MIT */
/*
 * libcrypto for `walship`, loaded with dlopen() by the commands that use it rather than
 * linked.  PostgreSQL starts `walship push` and `walship fetch` once per WAL segment
 * (archive_command, restore_command); linked, libcrypto would be mapped and relocated at
 * each of those starts (some 3,000 symbol relocations, most of the process's start-up
 * CPU) although only `walship password` uses it.  So the CLI links libc alone
 * (docs/architecture.md, "What each binary links").
 *
 * crypto_dl.c defines the OpenSSL functions that the CLI's objects call (common/scram.c:
 * PBKDF2, HMAC, SHA-256, RAND_bytes, base64, cleansing), with OpenSSL's own prototypes, each
 * forwarding to the library loaded on first use.  Without the library each returns
 * OpenSSL's failure value.  The package declares the library by hand (debian/control):
 * dh_shlibdeps sees only linked libraries.  Single-threaded use only, as the CLI is.
 */
#ifndef WALSHIP_TOOLS_CRYPTO_DL_H
#define WALSHIP_TOOLS_CRYPTO_DL_H

#include <openssl/opensslv.h>

#define CRYPTO_DL_STR_(x) #x
#define CRYPTO_DL_STR(x) CRYPTO_DL_STR_(x)
/* The soname of the libcrypto whose headers we compile against ("libcrypto.so.3"). */
#define CRYPTO_DL_SONAME "libcrypto.so." CRYPTO_DL_STR(OPENSSL_SHLIB_VERSION)

/*
 * Load CRYPTO_DL_SONAME and resolve the functions, once.  Returns 0, or -ENOENT when the
 * library or one of the functions is missing, reported once (ERROR and HINT) at the first
 * failing call.
 */
int crypto_dl_load(void);

#endif /* WALSHIP_TOOLS_CRYPTO_DL_H */
