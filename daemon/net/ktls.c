// SPDX-License-Identifier: MIT
/*
 * Kernel TLS: key derivation and the socket options (see ktls.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tls.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "net/ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* HKDF-Expand-Label(secret, label, "", len) with @digest (RFC 8446, section 7.1). */
static int hkdf_expand_label(const char *digest, const uint8_t *secret, size_t secret_len,
			     const char *label, uint8_t *out, size_t len)
{
	static const char prefix[] = "tls13 ";
	uint8_t info[2 + 1 + sizeof(prefix) - 1 + 16 + 1];
	size_t label_len = strlen(label), at = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[5];
	EVP_KDF_CTX *kctx;
	EVP_KDF *kdf;
	int ret = -EIO;

	if (label_len > 16)
		return -EINVAL;
	info[at++] = (uint8_t)(len >> 8);
	info[at++] = (uint8_t)len;
	info[at++] = (uint8_t)(sizeof(prefix) - 1 + label_len);
	memcpy(info + at, prefix, sizeof(prefix) - 1);
	at += sizeof(prefix) - 1;
	memcpy(info + at, label, label_len);
	at += label_len;
	info[at++] = 0; /* empty context */

	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	if (!kctx)
		goto out_free;
	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						     (char *)(uintptr_t)digest, 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(uintptr_t)secret,
						      secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, at);
	params[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, len, params) == 1)
		ret = 0;
out_free:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	OPENSSL_cleanse(info, sizeof(info));
	return ret;
}

int ktls_derive(uint16_t suite, const uint8_t *secret, size_t secret_len, struct ktls_keys *out)
{
	const char *digest;
	int ret;

	memset(out, 0, sizeof(*out));
	switch (suite) {
	case 0x1301: /* TLS_AES_128_GCM_SHA256 */
		digest = "SHA256";
		out->key_len = 16;
		break;
	case 0x1302: /* TLS_AES_256_GCM_SHA384 */
		digest = "SHA384";
		out->key_len = 32;
		break;
	case 0x1303: /* TLS_CHACHA20_POLY1305_SHA256 */
		digest = "SHA256";
		out->key_len = 32;
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (secret_len != (suite == 0x1302 ? 48u : 32u))
		return -EOPNOTSUPP;
	out->suite = suite;
	ret = hkdf_expand_label(digest, secret, secret_len, "key", out->key, out->key_len);
	if (ret == 0)
		ret = hkdf_expand_label(digest, secret, secret_len, "iv", out->iv, sizeof(out->iv));
	if (ret < 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return ret;
}

int ktls_attach(int fd)
{
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		return -errno;
	return 0;
}

int ktls_install(int fd, int tx, const struct ktls_keys *k)
{
	union {
		struct tls12_crypto_info_aes_gcm_128 gcm128;
		struct tls12_crypto_info_aes_gcm_256 gcm256;
		struct tls12_crypto_info_chacha20_poly1305 chacha;
	} info;
	socklen_t len;
	int ret = 0;

	memset(&info, 0, sizeof(info));
	/* TLS 1.3 nonce = IV xor sequence: the kernel takes the IV's first 4 bytes as the
	 * "salt" and the last 8 as the "IV" of the AES-GCM layouts; record sequence 0. */
	switch (k->suite) {
	case 0x1301:
		info.gcm128.info.version = TLS_1_3_VERSION;
		info.gcm128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(info.gcm128.salt, k->iv, 4);
		memcpy(info.gcm128.iv, k->iv + 4, 8);
		memcpy(info.gcm128.key, k->key, 16);
		len = sizeof(info.gcm128);
		break;
	case 0x1302:
		info.gcm256.info.version = TLS_1_3_VERSION;
		info.gcm256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(info.gcm256.salt, k->iv, 4);
		memcpy(info.gcm256.iv, k->iv + 4, 8);
		memcpy(info.gcm256.key, k->key, 32);
		len = sizeof(info.gcm256);
		break;
	case 0x1303:
		info.chacha.info.version = TLS_1_3_VERSION;
		info.chacha.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(info.chacha.iv, k->iv, 12);
		memcpy(info.chacha.key, k->key, 32);
		len = sizeof(info.chacha);
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (setsockopt(fd, SOL_TLS, tx ? TLS_TX : TLS_RX, &info, len) < 0)
		ret = -errno;
	OPENSSL_cleanse(&info, sizeof(info));
	return ret;
}
