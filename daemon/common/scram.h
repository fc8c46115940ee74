/* SPDX-License-Identifier: MIT */
/*
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, server side, for standbys
 * on pg_listen: stored verifiers in PostgreSQL's rolpassword format, the file that holds
 * them (`pg_password_file`), and the exchange's two steps as pure functions over the
 * messages (client-first to server-first, client-final to server-final).
 *
 *   SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>      (base64 fields)
 *
 * The password file has one `USER VERIFIER` per line, `#` starts a comment; it must not be
 * readable by group or others (as PostgreSQL's rule for its key file).  A plaintext
 * password is never stored: `walship password USER` makes the line.
 *
 * Why our own code and not libpq's: libpq is the client side; PostgreSQL exports no
 * library for the server side of SCRAM.  The primitives are OpenSSL's (PBKDF2, HMAC and
 * SHA-256), proofs are compared in constant time (CRYPTO_memcmp).  Passwords are used as
 * the bytes given: PostgreSQL first normalizes them with SASLprep, which leaves ASCII
 * passwords as they are; a non-ASCII password may need `walship password` and the
 * standby to agree on its normalization.
 *
 * Channel binding: "n,," (none), "y,," (the client could but thinks the server cannot:
 * refused when the server offered SCRAM-SHA-256-PLUS, a downgrade), and
 * "p=tls-server-end-point,," with SCRAM-SHA-256-PLUS (RFC 5929: a hash of the server's
 * certificate, which the caller supplies).
 */
#ifndef WALSHIP_COMMON_SCRAM_H
#define WALSHIP_COMMON_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_KEY_LEN 32 /* SHA-256 */
#define SCRAM_DEFAULT_ITERATIONS 4096 /* PostgreSQL's scram_iterations */
#define SCRAM_DEFAULT_SALT_LEN 16 /* PostgreSQL's SCRAM_DEFAULT_SALT_LEN */
#define SCRAM_RAW_NONCE_LEN 18 /* PostgreSQL's SCRAM_RAW_NONCE_LEN */
#define SCRAM_MAX_SALT 64
#define SCRAM_VERIFIER_MAX 256 /* the text of a verifier, NUL included */
#define SCRAM_MAX_USER 64 /* PostgreSQL's NAMEDATALEN */
#define SCRAM_MAX_MESSAGE 1024 /* a client message longer than this is refused */
#define SCRAM_MAX_CBIND 64 /* channel binding data: a hash of at most SHA-512 */
#define SCRAM_PASSWORD_FILE_MAX (1024 * 1024)
#define SCRAM_MECHANISM "SCRAM-SHA-256"
#define SCRAM_MECHANISM_PLUS "SCRAM-SHA-256-PLUS"

struct scram_verifier {
	int iterations;
	uint8_t salt[SCRAM_MAX_SALT];
	size_t salt_len;
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/*
 * Parse @text, a verifier in PostgreSQL's format (above).  Returns 0, or -EINVAL when it
 * is not one: another mechanism, iterations not in 1..INT_MAX, bad base64, a salt empty or
 * longer than SCRAM_MAX_SALT, keys not 32 bytes.
 */
int scram_verifier_parse(const char *text, struct scram_verifier *out);

/* The verifier of @password with @salt and @iterations.  Returns 0 or -EIO (OpenSSL). */
int scram_verifier_make(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			struct scram_verifier *out);

/* @v as text into @buf of @len bytes.  Returns its length, or -ENOSPC. */
int scram_verifier_format(const struct scram_verifier *v, char *buf, size_t len);

/* A new verifier of @password with a random salt and the default iterations, as text
 * (what `walship password` prints).  Returns its length, -EIO, or -ENOSPC. */
int scram_verifier_new(const char *password, char *buf, size_t len);

struct scram_password {
	char user[SCRAM_MAX_USER];
	struct scram_verifier verifier;
};

struct scram_passwords {
	char *source; /* file name, for messages */
	size_t count;
	struct scram_password *entries;
};

/*
 * Parse a password file's text (@source names it in messages): each bad line logged
 * (`invalid SCRAM verifier for user "x" in file "f" line 3`), a user given twice is an
 * error.  All or nothing: returns 0 and *@out (scram_passwords_free()), or -EINVAL or
 * -ENOMEM.  A text with no line is a table with no entry.
 */
int scram_passwords_parse(const char *text, const char *source, struct scram_passwords **out);

/*
 * The same for the file at @path, after checking its permissions as PostgreSQL checks its
 * key file: no access for group or others, or group read only when root owns it;
 * otherwise `password file "x" has group or world access` and -EACCES.  Logged once.
 */
int scram_passwords_load(const char *path, struct scram_passwords **out);

/* @user's verifier, or NULL.  @p may be NULL (no file). */
const struct scram_verifier *scram_passwords_find(const struct scram_passwords *p,
						  const char *user);

void scram_passwords_free(struct scram_passwords *p);

/* A random server nonce: SCRAM_RAW_NONCE_LEN bytes in base64 (24 characters and a NUL). */
#define SCRAM_NONCE_TEXT 25
int scram_nonce_new(char out[SCRAM_NONCE_TEXT]);

/* One exchange, server side. */
struct scram_exchange {
	struct scram_verifier verifier;
	bool doomed; /* no verifier for the user: a mock exchange that fails at the end */
	bool plus; /* the client chose SCRAM-SHA-256-PLUS */
	bool offered_plus; /* it was offered (TLS) */
	uint8_t cbind[SCRAM_MAX_CBIND]; /* tls-server-end-point data when offered_plus */
	size_t cbind_len;
	char server_nonce[64]; /* scram_nonce_new()'s, or a test's */
	char gs2_header[64]; /* "n,,", "y,,", "p=tls-server-end-point,," */
	char client_first_bare[SCRAM_MAX_MESSAGE];
	char server_first[SCRAM_MAX_MESSAGE];
	char nonce[SCRAM_MAX_MESSAGE]; /* client nonce and server nonce */
	char detail[160]; /* why the last step failed, for the log */
};

/*
 * Begin: @v is the user's verifier, or NULL when the user has none (then a mock salt
 * derived from @user keeps the answer the same as for a known user, and the exchange
 * fails at the end, as PostgreSQL's mock authentication does).  @plus: the mechanism the
 * client chose; @cbind (@cbind_len bytes) the tls-server-end-point data when the server
 * offered SCRAM-SHA-256-PLUS (NULL: not offered).  @server_nonce from scram_nonce_new()
 * (a test passes its own).  Returns 0, or -EINVAL when @cbind_len is too long.
 */
int scram_exchange_begin(struct scram_exchange *x, const struct scram_verifier *v, const char *user,
			 bool plus, const uint8_t *cbind, size_t cbind_len,
			 const char *server_nonce);

/*
 * The client-first-message @msg (@len bytes) gives the server-first-message, written to
 * @out (@out_len bytes, NUL-terminated).  Returns its length, -EINVAL for a malformed
 * message, or -EACCES for a channel binding the server refuses; x->detail says why.
 */
int scram_exchange_first(struct scram_exchange *x, const uint8_t *msg, size_t len, char *out,
			 size_t out_len);

/*
 * The client-final-message gives the server-final-message ("v=..."), written to @out.
 * Returns its length when the proof is right; -EPERM when it is wrong (or the exchange is
 * a mock one); -EINVAL for a malformed message; -EACCES when the channel binding data
 * differs.  x->detail says why.
 */
int scram_exchange_final(struct scram_exchange *x, const uint8_t *msg, size_t len, char *out,
			 size_t out_len);

/* Forget the keys (OPENSSL_cleanse). */
void scram_exchange_end(struct scram_exchange *x);

#endif /* WALSHIP_COMMON_SCRAM_H */
