// SPDX-License-Identifier: MIT
/*
 * SCRAM-SHA-256, server side, and the verifiers' file (see scram.h).
 */
#include "common/scram.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/log.h"
#include "common/textfile.h"

/* ---- base64 (RFC 4648, with padding), through OpenSSL ---- */

/* Characters of @n bytes in base64, without the NUL. */
#define B64_LEN(n) (((n) + 2) / 3 * 4)

/* Encode @n bytes into @out (B64_LEN(n) + 1 bytes). */
static void b64_encode(const uint8_t *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Decode the @n characters at @in into @out (at most @cap bytes).  Returns the length, or
 * -EINVAL when it is not canonical base64 or does not fit. */
static int b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
	uint8_t tmp[SCRAM_MAX_MESSAGE];
	size_t pad = 0;
	int len;

	if (n == 0 || n % 4 || n / 4 * 3 > sizeof(tmp))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];

		if (c == '=' && i >= n - 2) {
			pad++;
			continue;
		}
		if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return -EINVAL;
	}
	len = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
	if (len < 0 || (size_t)len < pad || (size_t)len - pad > cap)
		return -EINVAL;
	len -= (int)pad;
	memcpy(out, tmp, (size_t)len);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return len;
}

/* ---- the primitives ---- */

static int hmac256(const uint8_t *key, size_t key_len, const void *data, size_t len,
		   uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int out_len = SCRAM_KEY_LEN;

	return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) ? 0 : -EIO;
}

int scram_verifier_make(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			struct scram_verifier *out)
{
	uint8_t salted[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN];
	int ret = -EIO;

	if (salt_len == 0 || salt_len > SCRAM_MAX_SALT || iterations < 1)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->iterations = iterations;
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	/* SaltedPassword := Hi(password, salt, i); ClientKey := HMAC(SaltedPassword,
	 * "Client Key"); StoredKey := H(ClientKey); ServerKey := HMAC(SaltedPassword,
	 * "Server Key") (RFC 5802, section 3) */
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
			      EVP_sha256(), SCRAM_KEY_LEN, salted) != 1)
		goto out;
	if (hmac256(salted, sizeof(salted), "Client Key", 10, client_key) < 0 ||
	    hmac256(salted, sizeof(salted), "Server Key", 10, out->server_key) < 0)
		goto out;
	if (!SHA256(client_key, sizeof(client_key), out->stored_key))
		goto out;
	ret = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ret;
}

int scram_verifier_parse(const char *text, struct scram_verifier *out)
{
	static const char prefix[] = SCRAM_MECHANISM "$";
	const char *p = text, *colon, *dollar, *end;
	char *num_end;
	long iterations;
	int n;

	memset(out, 0, sizeof(*out));
	if (strncmp(p, prefix, sizeof(prefix) - 1))
		return -EINVAL;
	p += sizeof(prefix) - 1;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	iterations = strtol(p, &num_end, 10);
	if (errno || *num_end != ':' || iterations < 1 || iterations > INT_MAX)
		return -EINVAL;
	out->iterations = (int)iterations;
	p = num_end + 1;
	dollar = strchr(p, '$');
	if (!dollar)
		return -EINVAL;
	n = b64_decode(p, (size_t)(dollar - p), out->salt, sizeof(out->salt));
	if (n <= 0)
		return -EINVAL;
	out->salt_len = (size_t)n;
	p = dollar + 1;
	colon = strchr(p, ':');
	if (!colon)
		return -EINVAL;
	end = colon + strlen(colon);
	if (b64_decode(p, (size_t)(colon - p), out->stored_key, SCRAM_KEY_LEN) != SCRAM_KEY_LEN ||
	    b64_decode(colon + 1, (size_t)(end - colon - 1), out->server_key, SCRAM_KEY_LEN) !=
		    SCRAM_KEY_LEN)
		return -EINVAL;
	return 0;
}

int scram_verifier_format(const struct scram_verifier *v, char *buf, size_t len)
{
	char salt[B64_LEN(SCRAM_MAX_SALT) + 1], stored[B64_LEN(SCRAM_KEY_LEN) + 1],
		server[B64_LEN(SCRAM_KEY_LEN) + 1];
	int n;

	b64_encode(v->salt, v->salt_len, salt);
	b64_encode(v->stored_key, SCRAM_KEY_LEN, stored);
	b64_encode(v->server_key, SCRAM_KEY_LEN, server);
	n = snprintf(buf, len, SCRAM_MECHANISM "$%d:%s$%s:%s", v->iterations, salt, stored, server);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int scram_verifier_new(const char *password, char *buf, size_t len)
{
	uint8_t salt[SCRAM_DEFAULT_SALT_LEN];
	struct scram_verifier v;
	int ret;

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -EIO;
	ret = scram_verifier_make(password, salt, sizeof(salt), SCRAM_DEFAULT_ITERATIONS, &v);
	if (ret == 0)
		ret = scram_verifier_format(&v, buf, len);
	OPENSSL_cleanse(&v, sizeof(v));
	return ret;
}

int scram_nonce_new(char out[SCRAM_NONCE_TEXT])
{
	uint8_t raw[SCRAM_RAW_NONCE_LEN];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	b64_encode(raw, sizeof(raw), out);
	return 0;
}

/* ---- the password file ---- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* One line [@p, @end), NUL-terminated at @end; -EINVAL logged, 1 for an entry, 0 none. */
static int passwords_line(char *p, char *end, const char *source, int line,
			  struct scram_password *entry)
{
	char *user, *verifier;

	*end = '\0';
	if ((user = strchr(p, '#')))
		*user = '\0';
	while (is_blank(*p))
		p++;
	if (!*p)
		return 0;
	user = p;
	while (*p && !is_blank(*p))
		p++;
	if (*p)
		*p++ = '\0';
	while (is_blank(*p))
		p++;
	verifier = p;
	while (*p && !is_blank(*p))
		p++;
	if (*p)
		*p++ = '\0';
	while (is_blank(*p))
		p++;
	if (!*verifier || *p) {
		log_error("invalid line in file \"%s\" line %d", source, line);
		log_detail("A line has two fields: a user name and its SCRAM-SHA-256 verifier.");
		return -EINVAL;
	}
	if (strlen(user) >= SCRAM_MAX_USER) {
		log_error("user name \"%s\" is too long in file \"%s\" line %d", user, source,
			  line);
		return -EINVAL;
	}
	snprintf(entry->user, sizeof(entry->user), "%s", user);
	if (scram_verifier_parse(verifier, &entry->verifier) < 0) {
		log_error("invalid SCRAM verifier for user \"%s\" in file \"%s\" line %d", user,
			  source, line);
		log_hint("Make one with \"walship password %s\"; plaintext passwords are not "
			 "accepted.",
			 user);
		return -EINVAL;
	}
	return 1;
}

int scram_passwords_parse(const char *text, const char *source, struct scram_passwords **out)
{
	struct scram_passwords *p = calloc(1, sizeof(*p));
	size_t len = strlen(text), cap = 0;
	char *copy = malloc(len + 1), *at, *end;
	int line = 0, errors = 0;
	bool oom = false; /* -ENOMEM, no error of the file's */

	if (!p || !copy || !(p->source = strdup(source))) {
		log_error("out of memory");
		free(copy);
		scram_passwords_free(p);
		return -ENOMEM;
	}
	memcpy(copy, text, len + 1);
	for (at = copy, end = copy + len; at <= end;) {
		char *line_end = memchr(at, '\n', (size_t)(end - at));
		struct scram_password entry;
		int ret;

		if (!line_end)
			line_end = end;
		line++;
		ret = passwords_line(at, line_end, source, line, &entry);
		at = line_end + 1;
		if (ret < 0) {
			errors++;
			continue;
		}
		if (ret == 0)
			continue;
		if (scram_passwords_find(p, entry.user)) {
			log_error("user \"%s\" is given twice in file \"%s\" line %d", entry.user,
				  source, line);
			errors++;
			continue;
		}
		if (p->count == cap) {
			struct scram_password *grown;

			cap = cap ? cap * 2 : 16;
			grown = realloc(p->entries, cap * sizeof(*grown));
			if (!grown) {
				log_error("out of memory");
				errors++;
				oom = true;
				break;
			}
			p->entries = grown;
		}
		p->entries[p->count++] = entry;
		OPENSSL_cleanse(&entry, sizeof(entry));
	}
	OPENSSL_cleanse(copy, len);
	free(copy);
	if (errors) {
		scram_passwords_free(p);
		return oom ? -ENOMEM : -EINVAL;
	}
	*out = p;
	return 0;
}

int scram_passwords_load(const char *path, struct scram_passwords **out)
{
	char *text;
	size_t len;
	int ret =
		textfile_read_private(path, "password file", SCRAM_PASSWORD_FILE_MAX, &text, &len);

	if (ret < 0)
		return ret;
	if (strlen(text) != len) {
		log_error("invalid NUL byte in file \"%s\"", path);
		ret = -EINVAL;
	} else {
		ret = scram_passwords_parse(text, path, out);
	}
	OPENSSL_cleanse(text, len);
	free(text);
	return ret;
}

const struct scram_verifier *scram_passwords_find(const struct scram_passwords *p, const char *user)
{
	for (size_t i = 0; p && i < p->count; i++)
		if (!strcmp(p->entries[i].user, user))
			return &p->entries[i].verifier;
	return NULL;
}

void scram_passwords_free(struct scram_passwords *p)
{
	if (!p)
		return;
	if (p->entries)
		OPENSSL_cleanse(p->entries, p->count * sizeof(*p->entries));
	free(p->entries);
	free(p->source);
	free(p);
}

/* ---- the exchange ---- */

/*
 * The mock salt of a user without a verifier: the same for every attempt of that user in
 * this process (a per-process random key), so that an attacker cannot tell known users
 * from unknown ones by the salt (PostgreSQL's scram_mock_salt()).
 */
static int mock_salt(const char *user, uint8_t salt[SCRAM_DEFAULT_SALT_LEN])
{
	static uint8_t key[SCRAM_KEY_LEN];
	static bool have_key;
	uint8_t mac[SCRAM_KEY_LEN];

	if (!have_key) {
		if (RAND_bytes(key, sizeof(key)) != 1)
			return -EIO;
		have_key = true;
	}
	if (hmac256(key, sizeof(key), user, strlen(user), mac) < 0)
		return -EIO;
	memcpy(salt, mac, SCRAM_DEFAULT_SALT_LEN);
	return 0;
}

int scram_exchange_begin(struct scram_exchange *x, const struct scram_verifier *v, const char *user,
			 bool plus, const uint8_t *cbind, size_t cbind_len,
			 const char *server_nonce)
{
	memset(x, 0, sizeof(*x));
	if (cbind_len > sizeof(x->cbind))
		return -EINVAL;
	if (v) {
		x->verifier = *v;
	} else {
		x->doomed = true;
		x->verifier.iterations = SCRAM_DEFAULT_ITERATIONS;
		x->verifier.salt_len = SCRAM_DEFAULT_SALT_LEN;
		if (mock_salt(user, x->verifier.salt) < 0)
			RAND_bytes(x->verifier.salt, SCRAM_DEFAULT_SALT_LEN);
	}
	x->plus = plus;
	x->offered_plus = cbind != NULL;
	if (cbind) {
		memcpy(x->cbind, cbind, cbind_len);
		x->cbind_len = cbind_len;
	}
	snprintf(x->server_nonce, sizeof(x->server_nonce), "%s", server_nonce);
	return 0;
}

static int fail(struct scram_exchange *x, int err, const char *detail)
{
	snprintf(x->detail, sizeof(x->detail), "%s", detail);
	return err;
}

/* A nonce: printable ASCII other than ',' (RFC 5802, "printable"), at least one. */
static bool nonce_valid(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

/* Copy message @msg of @len bytes as a string into @dst (SCRAM_MAX_MESSAGE): no NUL in it. */
static int message_text(const uint8_t *msg, size_t len, char *dst)
{
	if (len >= SCRAM_MAX_MESSAGE || memchr(msg, '\0', len))
		return -EINVAL;
	memcpy(dst, msg, len);
	dst[len] = '\0';
	return 0;
}

int scram_exchange_first(struct scram_exchange *x, const uint8_t *msg, size_t len, char *out,
			 size_t out_len)
{
	char text[SCRAM_MAX_MESSAGE], salt[B64_LEN(SCRAM_MAX_SALT) + 1];
	const char *p = text, *bare, *nonce, *nonce_end;
	int n;

	if (message_text(msg, len, text) < 0)
		return fail(x, -EINVAL, "The message is too long or holds a NUL byte.");
	/* gs2-cbind-flag */
	if (!strncmp(p, "p=", 2)) {
		const char *comma = strchr(p, ',');

		if (!comma)
			return fail(x, -EINVAL, "Unexpected end of the gs2 header.");
		if (!x->plus)
			return fail(x, -EINVAL,
				    "The client requires channel binding, but it did not choose "
				    "SCRAM-SHA-256-PLUS.");
		if ((size_t)(comma - p) != strlen("p=tls-server-end-point") ||
		    strncmp(p, "p=tls-server-end-point", (size_t)(comma - p)))
			return fail(x, -EACCES,
				    "Only the channel binding type tls-server-end-point is "
				    "supported.");
		p = comma;
	} else if (*p == 'y') {
		if (x->plus)
			return fail(x, -EINVAL,
				    "The client chose SCRAM-SHA-256-PLUS without channel binding.");
		/* the client could bind but thinks the server cannot: a downgrade when the
		 * server offered it (RFC 5802, section 6) */
		if (x->offered_plus)
			return fail(x, -EACCES,
				    "The client supports channel binding but thinks the server "
				    "does not, although it offered it.");
		p++;
	} else if (*p == 'n') {
		if (x->plus)
			return fail(x, -EINVAL,
				    "The client chose SCRAM-SHA-256-PLUS without channel binding.");
		p++;
	} else {
		return fail(x, -EINVAL, "Unexpected channel-binding flag.");
	}
	if (*p++ != ',')
		return fail(x, -EINVAL, "Comma expected after the channel-binding flag.");
	if (*p == 'a')
		return fail(x, -EINVAL, "An authorization identity is not supported.");
	if (*p++ != ',')
		return fail(x, -EINVAL, "Comma expected after the authorization identity.");
	if ((size_t)(p - text) >= sizeof(x->gs2_header))
		return fail(x, -EINVAL, "The gs2 header is too long.");
	memcpy(x->gs2_header, text, (size_t)(p - text));
	x->gs2_header[p - text] = '\0';
	/* client-first-message-bare: [m=...,] n=user,r=nonce[,extensions] */
	bare = p;
	if (*p == 'm')
		return fail(x, -EINVAL, "Mandatory extensions are not supported.");
	if (strncmp(p, "n=", 2))
		return fail(x, -EINVAL, "Expected attribute \"n\".");
	/* the user name is that of the startup packet, as in PostgreSQL: skipped */
	p = strchr(p, ',');
	if (!p || strncmp(p, ",r=", 3))
		return fail(x, -EINVAL, "Expected attribute \"r\".");
	nonce = p + 3;
	nonce_end = strchr(nonce, ',');
	if (!nonce_end)
		nonce_end = nonce + strlen(nonce);
	if (!nonce_valid(nonce, (size_t)(nonce_end - nonce)))
		return fail(x, -EINVAL, "The client nonce is empty or not printable.");
	snprintf(x->client_first_bare, sizeof(x->client_first_bare), "%s", bare);
	n = snprintf(x->nonce, sizeof(x->nonce), "%.*s%s", (int)(nonce_end - nonce), nonce,
		     x->server_nonce);
	if (n < 0 || (size_t)n >= sizeof(x->nonce))
		return fail(x, -EINVAL, "The client nonce is too long.");
	b64_encode(x->verifier.salt, x->verifier.salt_len, salt);
	n = snprintf(x->server_first, sizeof(x->server_first), "r=%s,s=%s,i=%d", x->nonce, salt,
		     x->verifier.iterations);
	if (n < 0 || (size_t)n >= sizeof(x->server_first) || (size_t)n >= out_len)
		return fail(x, -EINVAL, "The client nonce is too long.");
	memcpy(out, x->server_first, (size_t)n + 1);
	return n;
}

int scram_exchange_final(struct scram_exchange *x, const uint8_t *msg, size_t len, char *out,
			 size_t out_len)
{
	char text[SCRAM_MAX_MESSAGE], auth[3 * SCRAM_MAX_MESSAGE];
	uint8_t cb_expect[64 + SCRAM_MAX_CBIND], cb_got[64 + SCRAM_MAX_CBIND];
	uint8_t proof[SCRAM_KEY_LEN], signature[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN],
		stored[SCRAM_KEY_LEN];
	char server_sig[B64_LEN(SCRAM_KEY_LEN) + 1];
	const char *p = text, *c_end, *r_end, *proof_at;
	size_t gs2_len = strlen(x->gs2_header), expect_len;
	int n, ret;

	if (message_text(msg, len, text) < 0)
		return fail(x, -EINVAL, "The message is too long or holds a NUL byte.");
	/* c=base64(gs2 header and channel binding data) */
	if (strncmp(p, "c=", 2))
		return fail(x, -EINVAL, "Expected attribute \"c\".");
	c_end = strchr(p, ',');
	if (!c_end)
		return fail(x, -EINVAL, "Expected attribute \"r\".");
	n = b64_decode(p + 2, (size_t)(c_end - p - 2), cb_got, sizeof(cb_got));
	memcpy(cb_expect, x->gs2_header, gs2_len);
	expect_len = gs2_len;
	if (x->plus) {
		memcpy(cb_expect + gs2_len, x->cbind, x->cbind_len);
		expect_len += x->cbind_len;
	}
	if (n < 0 || (size_t)n != expect_len || CRYPTO_memcmp(cb_got, cb_expect, expect_len))
		return fail(x, x->plus ? -EACCES : -EINVAL,
			    x->plus ? "SCRAM channel binding check failed." :
				      "Unexpected SCRAM channel-binding attribute in client-final-"
				      "message.");
	p = c_end + 1;
	if (strncmp(p, "r=", 2))
		return fail(x, -EINVAL, "Expected attribute \"r\".");
	r_end = strchr(p, ',');
	if (!r_end || (size_t)(r_end - p - 2) != strlen(x->nonce) ||
	    strncmp(p + 2, x->nonce, (size_t)(r_end - p - 2)))
		return fail(x, -EINVAL, "Nonce does not match.");
	/* extensions, then p=proof, last */
	proof_at = strstr(r_end, ",p=");
	if (!proof_at || strchr(proof_at + 3, ','))
		return fail(x, -EINVAL, "Expected attribute \"p\" last.");
	if (b64_decode(proof_at + 3, strlen(proof_at + 3), proof, sizeof(proof)) != SCRAM_KEY_LEN)
		return fail(x, -EINVAL, "Malformed proof in client-final-message.");
	/* AuthMessage := client-first-message-bare "," server-first-message ","
	 * client-final-message-without-proof */
	n = snprintf(auth, sizeof(auth), "%s,%s,%.*s", x->client_first_bare, x->server_first,
		     (int)(proof_at - text), text);
	if (n < 0 || (size_t)n >= sizeof(auth))
		return fail(x, -EINVAL, "The messages are too long.");
	ret = -EIO;
	if (hmac256(x->verifier.stored_key, SCRAM_KEY_LEN, auth, (size_t)n, signature) < 0)
		goto out;
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ signature[i];
	if (!SHA256(client_key, sizeof(client_key), stored))
		goto out;
	if (x->doomed || CRYPTO_memcmp(stored, x->verifier.stored_key, SCRAM_KEY_LEN)) {
		ret = fail(x, -EPERM,
			   x->doomed ? "The user has no SCRAM verifier in pg_password_file." :
				       "The client's proof does not match the stored verifier.");
		goto out;
	}
	if (hmac256(x->verifier.server_key, SCRAM_KEY_LEN, auth, (size_t)n, signature) < 0)
		goto out;
	b64_encode(signature, SCRAM_KEY_LEN, server_sig);
	n = snprintf(out, out_len, "v=%s", server_sig);
	ret = n < 0 || (size_t)n >= out_len ? -ENOSPC : n;
out:
	if (ret == -EIO)
		fail(x, -EIO, "OpenSSL failed to compute the signature.");
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(signature, sizeof(signature));
	return ret;
}

void scram_exchange_end(struct scram_exchange *x)
{
	OPENSSL_cleanse(x, sizeof(*x));
}
