/* SPDX-License-Identifier: MIT */
/*
 * TLS for walship connections: OpenSSL 3 over memory BIOs, so that io_uring keeps moving
 * every byte (the ciphertext) and OpenSSL only encrypts and decrypts in memory.
 *
 * TLS 1.3 only, mutual certificate authentication against one CA file, no session
 * tickets.  The connection layer (conn.c) drives the handshake and the records; this
 * module holds the context (certificates, key, verification) and the per-connection
 * state.  With kernel TLS wanted (ktls, net/ktls.h), the context also keeps each
 * connection's application traffic secrets from OpenSSL's key log callback, so that the
 * connection can hand the records to the kernel once the handshake is done.
 */
#ifndef WALSHIP_NET_TLS_H
#define WALSHIP_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "net/ktls.h"

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

struct tls_ctx {
	struct ssl_ctx_st *ctx;
	bool server;
	enum config_switch
		ktls; /* kernel TLS: on (required), off, auto (where the kernel has it) */
	enum config_switch zero_copy; /* zero_copy for connections the kernel encrypts (conn.h) */
};

/*
 * Load @cert_file (PEM chain), @key_file and the trust anchor @ca_file; require TLS 1.3
 * and a peer certificate signed by that CA.  @server: accept (primary) or connect
 * (replica).  @ktls and @zero_copy as in struct tls_ctx.  Returns 0, or with the reason
 * logged: -errno when a file could not be opened (-ENOENT, -EACCES, -EMFILE, -EIO...),
 * or -EINVAL for a file that is no regular file or that OpenSSL refused (not PEM, a key
 * that does not match, a missing file name, and any failure of its own reading: it says
 * no errno), or no context (OpenSSL's configuration) (textfile_error_lasts() tells what
 * a later start may not meet).
 */
int tls_ctx_init(struct tls_ctx *t, bool server, const char *ca_file, const char *cert_file,
		 const char *key_file, enum config_switch ktls, enum config_switch zero_copy);
/*
 * The same for PostgreSQL clients on pg_listen (standbys, pg_receivewal): a server
 * context whose clients may present a certificate of @ca_file (verified when they do; the
 * access rules decide whether one is needed) and need not; TLS 1.2 or later, as
 * PostgreSQL's ssl_min_protocol_version.  No kernel TLS.  Returns as tls_ctx_init().
 */
int tls_ctx_init_pg(struct tls_ctx *t, const char *ca_file, const char *cert_file,
		    const char *key_file);

void tls_ctx_free(struct tls_ctx *t);

/* Per-connection TLS state (owned by struct conn). */
struct tls_conn {
	struct ssl_st *ssl;
	struct bio_st *rbio; /* ciphertext received, for OpenSSL to read */
	struct bio_st *wbio; /* ciphertext OpenSSL produced, to be sent */
	bool server;
	bool handshake_done;
	bool first_byte_seen;
	bool pumping;
	char peer_name[256]; /* the peer certificate's common name */
	char version[64]; /* "TLSv1.3 TLS_AES_256_GCM_SHA384" */
	/* kernel TLS */
	enum config_switch ktls; /* the context's wish */
	enum config_switch zero_copy; /* the context's zero_copy, for when the kernel encrypts */
	uint8_t secret_tx[KTLS_MAX_SECRET]; /* application traffic secrets, until installed */
	uint8_t secret_rx[KTLS_MAX_SECRET];
	size_t secret_len;
	bool have_tx, have_rx;
	bool ktls_tx, ktls_rx; /* the kernel protects that direction */
	bool ktls_tx_pending; /* TX waits for the handshake's last bytes to leave */
};

/* Returns 0 or -ENOMEM (logged). */
int tls_conn_init(struct tls_conn *tc, const struct tls_ctx *t);
void tls_conn_free(struct tls_conn *tc);

/*
 * Why the last OpenSSL call failed, for a log line: the verification error when there is
 * one ("certificate has expired"), else OpenSSL's error queue, else @fallback.
 */
void tls_conn_error(struct tls_conn *tc, char *buf, size_t len, const char *fallback);

/*
 * After the handshake, on a server: the tls-server-end-point channel binding data (RFC
 * 5929): the hash of this server's certificate with its signature's hash algorithm (SHA-256
 * for MD5 or SHA-1), into @out (EVP_MAX_MD_SIZE bytes).  Returns its length or -ENOTSUP.
 */
int tls_conn_server_end_point(const struct tls_conn *tc, uint8_t *out, size_t cap);

/* After the handshake: fill peer_name and version.  Returns 0, or -EPERM when the peer
 * presented no certificate or it has no common name. */
int tls_conn_established(struct tls_conn *tc);

/*
 * After the handshake: derive the key and IV of direction @tx (else RX) from the captured
 * secret, and forget the secret.  Returns 0, -ENOKEY when the secret was not captured,
 * or ktls_derive()'s error.
 */
int tls_conn_ktls_keys(struct tls_conn *tc, bool tx, struct ktls_keys *keys);

/* "tx+rx", "tx", "rx" or "off": which directions the kernel protects. */
const char *tls_conn_ktls_state(const struct tls_conn *tc);

#endif /* WALSHIP_NET_TLS_H */
