// SPDX-License-Identifier: MIT
/*
 * TLS context and per-connection state (see tls.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "common/textfile.h"
#include "net/tls.h"

static void tls_log_openssl(const char *what, const char *file)
{
	unsigned long err = ERR_get_error();
	char buf[256] = "unknown error";

	if (err)
		ERR_error_string_n(err, buf, sizeof(buf));
	if (file)
		log_error("%s \"%s\": %s", what, file, buf);
	else
		log_error("%s: %s", what, buf);
	ERR_clear_error();
}

/*
 * OpenSSL's key log line ("LABEL <client random> <secret>", NSS format): keep the two
 * application traffic secrets, which kernel TLS needs, and nothing else.  Our TX secret
 * is the client's on a client, the server's on a server.
 */
static void tls_keylog(const SSL *ssl, const char *line)
{
	struct tls_conn *tc = SSL_get_app_data(ssl);
	const char *random, *secret;
	bool client;
	uint8_t *dst;
	size_t len;

	if (!tc)
		return;
	if (!strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24))
		client = true;
	else if (!strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24))
		client = false;
	else
		return;
	random = line + 24;
	secret = strchr(random, ' ');
	if (!secret)
		return;
	secret++;
	dst = client == !tc->server ? tc->secret_tx : tc->secret_rx;
	if (OPENSSL_hexstr2buf_ex(dst, KTLS_MAX_SECRET, &len, secret, '\0') != 1 || !len)
		return;
	tc->secret_len = len;
	if (client == !tc->server)
		tc->have_tx = true;
	else
		tc->have_rx = true;
}

/* The certificate, key and CA of a context, checked against each other.  Returns 0,
 * -errno of a file that could not be opened, or -EINVAL (what OpenSSL refused). */
static int tls_ctx_load(struct tls_ctx *t, const char *ca_file, const char *cert_file,
			const char *key_file)
{
	int ret;

	/* (opened first: OpenSSL's errors say no errno, and the caller tells what a later
	 * start may not meet, no descriptor or an I/O error, from a wrong file) */
	if ((ret = textfile_check_path(cert_file, "certificate file")) < 0 ||
	    (ret = textfile_check_path(key_file, "private key file")) < 0 ||
	    (ret = textfile_check_path(ca_file, "CA file")) < 0)
		return ret;
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
		tls_log_openssl("could not load certificate file", cert_file);
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_log_openssl("could not load private key file", key_file);
		return -EINVAL;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		tls_log_openssl("private key does not match certificate", key_file);
		return -EINVAL;
	}
	if (SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
		tls_log_openssl("could not load CA file", ca_file);
		return -EINVAL;
	}
	return 0;
}

int tls_ctx_init_pg(struct tls_ctx *t, const char *ca_file, const char *cert_file,
		    const char *key_file)
{
	static const unsigned char sid_ctx[] = "walship-pg";
	int ret;

	memset(t, 0, sizeof(*t));
	t->server = true;
	t->ktls = CONFIG_SWITCH_OFF;
	t->zero_copy = CONFIG_SWITCH_OFF;
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (!t->ctx) {
		/* (as lasting as a wrong file: OpenSSL's configuration, a provider missing) */
		tls_log_openssl("could not create TLS context", NULL);
		return -EINVAL;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_num_tickets(t->ctx, 0);
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_session_id_context(t->ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	if ((ret = tls_ctx_load(t, ca_file, cert_file, key_file)) < 0)
		goto out_free;
	/* As PostgreSQL with ssl_ca_file: ask for a certificate, verify one if given. */
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, NULL);
	SSL_CTX_set_client_CA_list(t->ctx, SSL_load_client_CA_file(ca_file));
	return 0;

out_free:
	SSL_CTX_free(t->ctx);
	t->ctx = NULL;
	return ret;
}

int tls_ctx_init(struct tls_ctx *t, bool server, const char *ca_file, const char *cert_file,
		 const char *key_file, enum config_switch ktls, enum config_switch zero_copy)
{
	int ret;

	memset(t, 0, sizeof(*t));
	t->server = server;
	t->ktls = ktls;
	t->zero_copy = zero_copy;
	if (!ca_file[0] || !cert_file[0] || !key_file[0]) {
		log_error(
			"tls = on (the default) needs tls_ca_file, tls_cert_file and tls_key_file");
		log_hint(
			"See docs/security.md to make certificates.  For plaintext, set tls = off "
			"explicitly: WAL then travels unencrypted and peers are not authenticated.");
		return -EINVAL;
	}
	t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!t->ctx) {
		/* (as lasting as a wrong file: OpenSSL's configuration, a provider missing) */
		tls_log_openssl("could not create TLS context", NULL);
		return -EINVAL;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION);
	SSL_CTX_set_num_tickets(t->ctx, 0);
	SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
	if ((ret = tls_ctx_load(t, ca_file, cert_file, key_file)) < 0)
		goto out_free;
	/* Mutual authentication: both ends present a certificate of this CA. */
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (ktls != CONFIG_SWITCH_OFF)
		SSL_CTX_set_keylog_callback(t->ctx, tls_keylog);
	return 0;

out_free:
	SSL_CTX_free(t->ctx);
	t->ctx = NULL;
	return ret;
}

void tls_ctx_free(struct tls_ctx *t)
{
	SSL_CTX_free(t->ctx);
	t->ctx = NULL;
}

int tls_conn_init(struct tls_conn *tc, const struct tls_ctx *t)
{
	memset(tc, 0, sizeof(*tc));
	tc->server = t->server;
	tc->ktls = t->ktls;
	tc->zero_copy = t->zero_copy;
	tc->ssl = SSL_new(t->ctx);
	tc->rbio = BIO_new(BIO_s_mem());
	tc->wbio = BIO_new(BIO_s_mem());
	if (!tc->ssl || !tc->rbio || !tc->wbio) {
		tls_log_openssl("could not set up a TLS connection", NULL);
		BIO_free(tc->rbio);
		BIO_free(tc->wbio);
		SSL_free(tc->ssl);
		memset(tc, 0, sizeof(*tc));
		return -ENOMEM;
	}
	SSL_set_app_data(tc->ssl, tc); /* for tls_keylog() */
	/* An empty memory BIO means "no data yet", not end of file. */
	BIO_set_mem_eof_return(tc->rbio, -1);
	SSL_set_bio(tc->ssl, tc->rbio, tc->wbio); /* the SSL owns both now */
	if (t->server)
		SSL_set_accept_state(tc->ssl);
	else
		SSL_set_connect_state(tc->ssl);
	return 0;
}

void tls_conn_free(struct tls_conn *tc)
{
	SSL_free(tc->ssl); /* frees the BIOs */
	OPENSSL_cleanse(tc, sizeof(*tc));
}

int tls_conn_ktls_keys(struct tls_conn *tc, bool tx, struct ktls_keys *keys)
{
	uint8_t *secret = tx ? tc->secret_tx : tc->secret_rx;
	bool have = tx ? tc->have_tx : tc->have_rx;
	int ret;

	if (!have)
		return -ENOKEY;
	ret = ktls_derive((uint16_t)SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(tc->ssl)),
			  secret, tc->secret_len, keys);
	OPENSSL_cleanse(secret, KTLS_MAX_SECRET);
	if (tx)
		tc->have_tx = false;
	else
		tc->have_rx = false;
	return ret;
}

const char *tls_conn_ktls_state(const struct tls_conn *tc)
{
	if (tc->ktls_tx && tc->ktls_rx)
		return "tx+rx";
	if (tc->ktls_tx)
		return "tx";
	if (tc->ktls_rx)
		return "rx";
	return "off";
}

void tls_conn_error(struct tls_conn *tc, char *buf, size_t len, const char *fallback)
{
	long verify = tc->ssl ? SSL_get_verify_result(tc->ssl) : X509_V_OK;
	unsigned long err = ERR_get_error();

	if (verify != X509_V_OK)
		snprintf(buf, len, "certificate verification failed: %s",
			 X509_verify_cert_error_string(verify));
	else if (err)
		ERR_error_string_n(err, buf, len);
	else
		snprintf(buf, len, "%s", fallback);
	ERR_clear_error();
}

/*
 * The first common name of @cert as UTF-8 into @buf: 0, or -EPERM when there is none, it
 * does not fit, or it holds a NUL (`r1\0x` must not pass for `r1`: the name is compared
 * with node names, access rules and the `cert` method as a C string).  Read through
 * ASN1_STRING_to_UTF8(), not X509_NAME_get_text_by_NID(), which copies the raw bytes of
 * any string type (a BMPString's UTF-16 among them) and cuts at a NUL.
 */
static int tls_cert_common_name(X509 *cert, char *buf, size_t len)
{
	X509_NAME *subject = X509_get_subject_name(cert);
	int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	int n;

	if (at < 0)
		return -EPERM;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
	if (n <= 0 || (size_t)n >= len || strlen((const char *)utf8) != (size_t)n) {
		OPENSSL_free(utf8);
		return -EPERM;
	}
	memcpy(buf, utf8, (size_t)n + 1);
	OPENSSL_free(utf8);
	return 0;
}

int tls_conn_established(struct tls_conn *tc)
{
	X509 *cert = SSL_get1_peer_certificate(tc->ssl);
	int n;

	tc->handshake_done = true;
	snprintf(tc->version, sizeof(tc->version), "%s %s", SSL_get_version(tc->ssl),
		 SSL_get_cipher_name(tc->ssl));
	if (!cert)
		return -EPERM;
	n = tls_cert_common_name(cert, tc->peer_name, sizeof(tc->peer_name));
	X509_free(cert);
	return n;
}

int tls_conn_server_end_point(const struct tls_conn *tc, uint8_t *out, size_t cap)
{
	X509 *cert = SSL_get_certificate(tc->ssl); /* not a new reference */
	int md_nid = NID_undef, pk_nid;
	const EVP_MD *md;
	unsigned int len = 0;

	/* RFC 5929, section 4.1: the certificate's signature hash, SHA-256 for MD5 and SHA-1
	 * (as PostgreSQL's be_tls_get_certificate_hash()) */
	if (!cert || cap < EVP_MAX_MD_SIZE ||
	    !OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, &pk_nid))
		return -ENOTSUP;
	if (md_nid == NID_md5 || md_nid == NID_sha1)
		md_nid = NID_sha256;
	md = EVP_get_digestbynid(md_nid);
	if (!md || X509_digest(cert, md, out, &len) != 1)
		return -ENOTSUP;
	return (int)len;
}
