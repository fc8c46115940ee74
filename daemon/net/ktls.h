/* SPDX-License-Identifier: MIT */
/*
 * Kernel TLS (kTLS) for a TLS 1.3 connection whose handshake OpenSSL made over memory
 * BIOs.
 *
 * OpenSSL's own kTLS support (SSL_OP_ENABLE_KTLS) works only when OpenSSL owns the socket
 * through its socket BIO; walship keeps io_uring as the I/O engine, so it hands the keys
 * to the kernel itself, as OpenSSL would: the handshake's application traffic secrets
 * (from OpenSSL's key log callback) give each direction's key and IV by
 * HKDF-Expand-Label (RFC 8446, section 7.3), which go to setsockopt(SOL_TLS, TLS_TX /
 * TLS_RX) with record sequence number 0.  From then on the kernel encrypts what the
 * connection sends and decrypts what it receives, and the connection sends and receives
 * plaintext frames through io_uring exactly as without TLS.
 *
 * Sequence numbers start at 0 only if no application data record has been sent or read
 * in that direction: conn.c installs TX before any frame is encrypted and RX before any
 * byte beyond the handshake has been read from the socket (it reads the handshake one
 * record at a time), and the contexts send no session tickets.
 */
#ifndef WALSHIP_NET_KTLS_H
#define WALSHIP_NET_KTLS_H

#include <stddef.h>
#include <stdint.h>

#define KTLS_MAX_SECRET 48 /* SHA-384 */

/* One direction's record protection, derived from its traffic secret. */
struct ktls_keys {
	uint16_t suite; /* TLS 1.3 cipher suite: 0x1301, 0x1302 or 0x1303 */
	uint8_t key[32];
	size_t key_len;
	uint8_t iv[12];
};

/*
 * Derive the key and IV of cipher suite @suite (0x1301 TLS_AES_128_GCM_SHA256, 0x1302
 * TLS_AES_256_GCM_SHA384, 0x1303 TLS_CHACHA20_POLY1305_SHA256) from a traffic secret.
 * Returns 0, -EOPNOTSUPP for another suite or a secret of the wrong length, or -EIO when
 * OpenSSL's HKDF fails.
 */
int ktls_derive(uint16_t suite, const uint8_t *secret, size_t secret_len, struct ktls_keys *out);

/*
 * Attach the "tls" upper-layer protocol to the connected TCP socket @fd.  Returns 0, or
 * -errno: -ENOENT when the kernel has no TLS (CONFIG_TLS, the tls module not loaded).
 * Until a direction is installed the socket behaves as plain TCP in it.
 */
int ktls_attach(int fd);

/* Install @k for TLS_TX (@tx) or TLS_RX with record sequence 0.  Returns 0 or -errno. */
int ktls_install(int fd, int tx, const struct ktls_keys *k);

#endif /* WALSHIP_NET_KTLS_H */
