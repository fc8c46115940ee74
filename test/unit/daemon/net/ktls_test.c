// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/net/ktls.c and the key capture in daemon/net/tls.c: a real TLS 1.3
 * handshake between two OpenSSL endpoints over memory BIOs (as walshipd runs them), for
 * each cipher suite kernel TLS takes.  The keys derived from the captured secrets must be
 * the ones OpenSSL protects records with: a record OpenSSL writes is opened here with
 * EVP and the derived key and IV (record sequence 0), exactly what the kernel will do.
 * The kernel part (setsockopt) runs in the QEMU guest (test/kernel/guest-init.sh).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "net/ktls.h"
#include "net/tls.h"
#include "tls_cert.h"

static char dir[256], cert_path[300], key_path[300];

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_WARNING);
	mkdir("build", 0755);
	snprintf(dir, sizeof(dir), "build/ktls-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cert_path, sizeof(cert_path), "%s/node.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/node.key", dir);
	tls_cert_make(cert_path, key_path);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(cert_path);
	unlink(key_path);
	return rmdir(dir);
}

/* Move what @from's OpenSSL wrote to @to's read BIO. */
static void shuttle(struct tls_conn *from, struct tls_conn *to)
{
	uint8_t buf[16384];
	int n;

	while ((n = BIO_read(from->wbio, buf, sizeof(buf))) > 0)
		assert_int_equal(BIO_write(to->rbio, buf, n), n);
}

static const EVP_CIPHER *suite_cipher(uint16_t suite)
{
	switch (suite) {
	case 0x1301:
		return EVP_aes_128_gcm();
	case 0x1302:
		return EVP_aes_256_gcm();
	default:
		return EVP_chacha20_poly1305();
	}
}

/*
 * Open one TLS 1.3 record (@rec of @len bytes: header, ciphertext, 16-byte tag) with @k
 * as the first record of its direction; return the inner plaintext length (content and
 * its type byte) in @out, or -1 when the tag does not verify.
 */
static int open_record(const struct ktls_keys *k, const uint8_t *rec, int len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int body = len - 5 - 16, n = 0, fin = 0, ok;

	assert_non_null(ctx);
	assert_true(body > 0);
	/* nonce = IV xor sequence number 0 = IV */
	assert_int_equal(EVP_DecryptInit_ex(ctx, suite_cipher(k->suite), NULL, NULL, NULL), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL), 1);
	assert_int_equal(EVP_DecryptInit_ex(ctx, NULL, NULL, k->key, k->iv), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &n, rec, 5), 1); /* additional data */
	assert_int_equal(EVP_DecryptUpdate(ctx, out, &n, rec + 5, body), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16,
					     (void *)(uintptr_t)(rec + 5 + body)),
			 1);
	ok = EVP_DecryptFinal_ex(ctx, out + n, &fin);
	EVP_CIPHER_CTX_free(ctx);
	return ok == 1 ? n + fin : -1;
}

static void handshake_and_check(const char *suite_name, uint16_t suite)
{
	static const char message[] = "FILE_BEGIN 000000010000000000000003";
	struct tls_ctx server_ctx, client_ctx;
	struct tls_conn server, client;
	struct ktls_keys client_tx, server_rx, server_tx, client_rx;
	uint8_t rec[512], plain[512];
	int n, done = 0;

	assert_int_equal(tls_ctx_init(&server_ctx, true, cert_path, cert_path, key_path,
				      CONFIG_SWITCH_AUTO, CONFIG_SWITCH_AUTO),
			 0);
	assert_int_equal(tls_ctx_init(&client_ctx, false, cert_path, cert_path, key_path,
				      CONFIG_SWITCH_AUTO, CONFIG_SWITCH_AUTO),
			 0);
	assert_int_equal(SSL_CTX_set_ciphersuites(server_ctx.ctx, suite_name), 1);
	assert_int_equal(SSL_CTX_set_ciphersuites(client_ctx.ctx, suite_name), 1);
	assert_int_equal(tls_conn_init(&server, &server_ctx), 0);
	assert_int_equal(tls_conn_init(&client, &client_ctx), 0);
	for (int round = 0; round < 10 && done != 3; round++) {
		if (!(done & 1) && SSL_do_handshake(client.ssl) == 1)
			done |= 1;
		shuttle(&client, &server);
		if (!(done & 2) && SSL_do_handshake(server.ssl) == 1)
			done |= 2;
		shuttle(&server, &client);
	}
	assert_int_equal(done, 3);
	assert_int_equal(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(client.ssl)), suite);
	assert_int_equal(tls_conn_established(&client), 0);
	assert_string_equal(client.peer_name, "node");

	/* Both ends captured both secrets; each direction's keys agree across the ends. */
	assert_true(client.have_tx && client.have_rx && server.have_tx && server.have_rx);
	assert_int_equal(tls_conn_ktls_keys(&client, true, &client_tx), 0);
	assert_int_equal(tls_conn_ktls_keys(&server, false, &server_rx), 0);
	assert_int_equal(tls_conn_ktls_keys(&server, true, &server_tx), 0);
	assert_int_equal(tls_conn_ktls_keys(&client, false, &client_rx), 0);
	assert_false(client.have_tx || client.have_rx || server.have_tx || server.have_rx);
	assert_int_equal(tls_conn_ktls_keys(&client, true, &client_tx), -ENOKEY); /* used up */
	assert_true(client_tx.key_len == (suite == 0x1301 ? 16u : 32u));
	assert_memory_equal(client_tx.key, server_rx.key, client_tx.key_len);
	assert_memory_equal(client_tx.iv, server_rx.iv, 12);
	assert_memory_equal(server_tx.key, client_rx.key, server_tx.key_len);
	assert_true(memcmp(client_tx.key, server_tx.key, client_tx.key_len) != 0);

	/* The first application record each way opens with the derived keys. */
	assert_int_equal(SSL_write(client.ssl, message, sizeof(message) - 1),
			 (int)sizeof(message) - 1);
	n = BIO_read(client.wbio, rec, sizeof(rec));
	assert_true(n > 5 && rec[0] == 0x17);
	assert_int_equal(open_record(&client_tx, rec, n, plain), (int)sizeof(message));
	assert_memory_equal(plain, message, sizeof(message) - 1);
	assert_int_equal(plain[sizeof(message) - 1], 0x17); /* inner content type */
	assert_int_equal(SSL_write(server.ssl, "HELLO", 5), 5);
	n = BIO_read(server.wbio, rec, sizeof(rec));
	assert_int_equal(open_record(&server_tx, rec, n, plain), 6);
	assert_memory_equal(plain, "HELLO", 5);
	/* A flipped ciphertext byte does not open. */
	rec[7] ^= 1;
	assert_int_equal(open_record(&server_tx, rec, n, plain), -1);

	tls_conn_free(&server);
	tls_conn_free(&client);
	tls_ctx_free(&server_ctx);
	tls_ctx_free(&client_ctx);
}

static void test_aes_256_gcm(void **state)
{
	(void)state;
	handshake_and_check("TLS_AES_256_GCM_SHA384", 0x1302);
}

static void test_aes_128_gcm(void **state)
{
	(void)state;
	handshake_and_check("TLS_AES_128_GCM_SHA256", 0x1301);
}

static void test_chacha20_poly1305(void **state)
{
	(void)state;
	handshake_and_check("TLS_CHACHA20_POLY1305_SHA256", 0x1303);
}

/* ktls_derive refuses what the kernel cannot take or what does not fit the suite. */
static void test_derive_refuses(void **state)
{
	uint8_t secret[48] = { 1 };
	struct ktls_keys k;

	(void)state;
	assert_int_equal(ktls_derive(0x1304, secret, 32, &k), -EOPNOTSUPP); /* AES_128_CCM */
	assert_int_equal(ktls_derive(0x1302, secret, 32, &k), -EOPNOTSUPP);
	assert_int_equal(ktls_derive(0x1301, secret, 48, &k), -EOPNOTSUPP);
	assert_int_equal(ktls_derive(0x1301, secret, 32, &k), 0);
	assert_int_equal(k.suite, 0x1301);
	/* Without a socket: attaching fails, and says why. */
	assert_true(ktls_attach(-1) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aes_256_gcm),
		cmocka_unit_test(test_aes_128_gcm),
		cmocka_unit_test(test_chacha20_poly1305),
		cmocka_unit_test(test_derive_refuses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
