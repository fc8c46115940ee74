// SPDX-License-Identifier: MIT
/*
 * libcrypto loaded on first use (see crypto_dl.h).
 */
#include "crypto_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/log.h"

/* The functions forwarded, each declared by OpenSSL's headers: __typeof__ gives the
 * pointers their exact types, so that a changed prototype fails to compile here. */
#define CRYPTO_DL_FUNCTIONS(X) \
	X(CRYPTO_memcmp)       \
	X(EVP_DecodeBlock)     \
	X(EVP_EncodeBlock)     \
	X(EVP_sha256)          \
	X(HMAC)                \
	X(OPENSSL_cleanse)     \
	X(PKCS5_PBKDF2_HMAC)   \
	X(RAND_bytes)          \
	X(SHA256)

static struct {
	bool tried;
	int error;
#define CRYPTO_DL_POINTER(name) __typeof__(name) *name;
	CRYPTO_DL_FUNCTIONS(CRYPTO_DL_POINTER)
#undef CRYPTO_DL_POINTER
} lib;

int crypto_dl_load(void)
{
	void *handle;

	if (lib.tried)
		return lib.error;
	lib.tried = true;
	handle = dlopen(CRYPTO_DL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		log_error("could not load %s: %s", CRYPTO_DL_SONAME, dlerror());
		goto fail;
	}
#define CRYPTO_DL_RESOLVE(name)                                                               \
	lib.name = (__typeof__(name) *)dlsym(handle, #name);                                  \
	if (!lib.name) {                                                                      \
		log_error("could not find %s in %s: %s", #name, CRYPTO_DL_SONAME, dlerror()); \
		goto fail_close;                                                              \
	}
	CRYPTO_DL_FUNCTIONS(CRYPTO_DL_RESOLVE)
#undef CRYPTO_DL_RESOLVE
	return 0;

fail_close:
	dlclose(handle);
	memset(&lib, 0, sizeof(lib));
	lib.tried = true;
fail:
	log_hint("This command needs OpenSSL's libcrypto (Debian: package libssl3).");
	lib.error = -ENOENT;
	return lib.error;
}

/* The forwarders, in the order of CRYPTO_DL_FUNCTIONS. */

int CRYPTO_memcmp(const void *in_a, const void *in_b, size_t len)
{
	/* without the library: "different", the answer that grants nothing */
	return crypto_dl_load() < 0 ? 1 : lib.CRYPTO_memcmp(in_a, in_b, len);
}

int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n)
{
	return crypto_dl_load() < 0 ? -1 : lib.EVP_DecodeBlock(t, f, n);
}

int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n)
{
	if (crypto_dl_load() < 0) {
		t[0] = '\0';
		return 0;
	}
	return lib.EVP_EncodeBlock(t, f, n);
}

const EVP_MD *EVP_sha256(void)
{
	return crypto_dl_load() < 0 ? NULL : lib.EVP_sha256();
}

unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *data,
		    size_t data_len, unsigned char *md, unsigned int *md_len)
{
	if (crypto_dl_load() < 0)
		return NULL;
	return lib.HMAC(evp_md, key, key_len, data, data_len, md, md_len);
}

void OPENSSL_cleanse(void *ptr, size_t len)
{
	/* a secret is cleared with or without the library */
	if (crypto_dl_load() < 0)
		explicit_bzero(ptr, len);
	else
		lib.OPENSSL_cleanse(ptr, len);
}

int PKCS5_PBKDF2_HMAC(const char *pass, int passlen, const unsigned char *salt, int saltlen,
		      int iter, const EVP_MD *digest, int keylen, unsigned char *out)
{
	if (crypto_dl_load() < 0)
		return 0;
	return lib.PKCS5_PBKDF2_HMAC(pass, passlen, salt, saltlen, iter, digest, keylen, out);
}

int RAND_bytes(unsigned char *buf, int num)
{
	return crypto_dl_load() < 0 ? 0 : lib.RAND_bytes(buf, num);
}

unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md)
{
	return crypto_dl_load() < 0 ? NULL : lib.SHA256(d, n, md);
}
