// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/scram.c: RFC 7677's SCRAM-SHA-256 example exchanged
 * through the server side, the verifier format, the password file and its permissions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "log_capture.h"
#include "common/scram.h"

static int setup(void **state)
{
	(void)state;
	log_capture_start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_capture_stop();
	return 0;
}

/* RFC 7677, section 3: user "user", password "pencil". */
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST                                                                \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ" \
	"==,i=4096"
#define RFC_CLIENT_FINAL                                                                       \
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9yt" \
	"ag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void rfc_verifier(struct scram_verifier *v)
{
	static const uint8_t salt[] = { 0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
					0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81 };

	assert_int_equal(scram_verifier_make("pencil", salt, sizeof(salt), 4096, v), 0);
}

static void test_rfc7677(void **state)
{
	struct scram_verifier v;
	struct scram_exchange x;
	char out[SCRAM_MAX_MESSAGE];
	int n;

	(void)state;
	rfc_verifier(&v);
	assert_int_equal(scram_exchange_begin(&x, &v, "user", false, NULL, 0, RFC_SERVER_NONCE), 0);
	n = scram_exchange_first(&x, (const uint8_t *)RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST),
				 out, sizeof(out));
	assert_int_equal(n, (int)strlen(RFC_SERVER_FIRST));
	assert_string_equal(out, RFC_SERVER_FIRST);
	n = scram_exchange_final(&x, (const uint8_t *)RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL),
				 out, sizeof(out));
	assert_int_equal(n, (int)strlen(RFC_SERVER_FINAL));
	assert_string_equal(out, RFC_SERVER_FINAL);
	scram_exchange_end(&x);
}

/* The same exchange with a wrong proof, a wrong nonce, a mock user, a channel binding. */
static void test_refusals(void **state)
{
	static const char wrong_proof[] =
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9yt"
		"ag9zjfMHgsqmmiz7AndVQ=";
	static const char wrong_nonce[] =
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=dHzbZapWIk4jUhN+Ute9yt"
		"ag9zjfMHgsqmmiz7AndVQ=";
	static const uint8_t cbind[32] = { 1, 2, 3 };
	struct scram_verifier v;
	struct scram_exchange x;
	char out[SCRAM_MAX_MESSAGE], first[SCRAM_MAX_MESSAGE];

	(void)state;
	rfc_verifier(&v);
	/* a wrong proof: -EPERM (a wrong password) */
	scram_exchange_begin(&x, &v, "user", false, NULL, 0, RFC_SERVER_NONCE);
	assert_true(scram_exchange_first(&x, (const uint8_t *)RFC_CLIENT_FIRST,
					 strlen(RFC_CLIENT_FIRST), out, sizeof(out)) > 0);
	assert_int_equal(scram_exchange_final(&x, (const uint8_t *)wrong_proof, strlen(wrong_proof),
					      out, sizeof(out)),
			 -EPERM);
	/* the nonce must be the one the server made */
	scram_exchange_begin(&x, &v, "user", false, NULL, 0, RFC_SERVER_NONCE);
	scram_exchange_first(&x, (const uint8_t *)RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out,
			     sizeof(out));
	assert_int_equal(scram_exchange_final(&x, (const uint8_t *)wrong_nonce, strlen(wrong_nonce),
					      out, sizeof(out)),
			 -EINVAL);
	assert_string_equal(x.detail, "Nonce does not match.");
	/* an unknown user: the same salt every time, and the right password fails */
	scram_exchange_begin(&x, NULL, "nobody", false, NULL, 0, RFC_SERVER_NONCE);
	assert_true(scram_exchange_first(&x, (const uint8_t *)RFC_CLIENT_FIRST,
					 strlen(RFC_CLIENT_FIRST), first, sizeof(first)) > 0);
	scram_exchange_begin(&x, NULL, "nobody", false, NULL, 0, RFC_SERVER_NONCE);
	scram_exchange_first(&x, (const uint8_t *)RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), out,
			     sizeof(out));
	assert_string_equal(first, out);
	assert_int_equal(scram_exchange_final(&x, (const uint8_t *)RFC_CLIENT_FINAL,
					      strlen(RFC_CLIENT_FINAL), out, sizeof(out)),
			 -EPERM);
	/* offered PLUS, the client says "y": a downgrade, refused */
	scram_exchange_begin(&x, &v, "user", false, cbind, sizeof(cbind), RFC_SERVER_NONCE);
	assert_int_equal(
		scram_exchange_first(&x, (const uint8_t *)"y,,n=,r=abc", 11, out, sizeof(out)),
		-EACCES);
	/* "n" with PLUS chosen, "p" without it, an authzid, a bad flag: malformed */
	scram_exchange_begin(&x, &v, "user", true, cbind, sizeof(cbind), RFC_SERVER_NONCE);
	assert_int_equal(
		scram_exchange_first(&x, (const uint8_t *)"n,,n=,r=abc", 11, out, sizeof(out)),
		-EINVAL);
	scram_exchange_begin(&x, &v, "user", false, cbind, sizeof(cbind), RFC_SERVER_NONCE);
	assert_int_equal(scram_exchange_first(&x, (const uint8_t *)"p=tls-server-end-point,,n=,r=a",
					      30, out, sizeof(out)),
			 -EINVAL);
	scram_exchange_begin(&x, &v, "user", false, NULL, 0, RFC_SERVER_NONCE);
	assert_int_equal(
		scram_exchange_first(&x, (const uint8_t *)"n,a=x,n=,r=abc", 14, out, sizeof(out)),
		-EINVAL);
	assert_int_equal(
		scram_exchange_first(&x, (const uint8_t *)"q,,n=,r=abc", 11, out, sizeof(out)),
		-EINVAL);
	assert_int_equal(scram_exchange_first(&x, (const uint8_t *)"n,,n=,r=", 8, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(
		scram_exchange_first(&x, (const uint8_t *)"n,,n=\0,r=a", 10, out, sizeof(out)),
		-EINVAL);
}

/* SCRAM-SHA-256-PLUS: c= carries the gs2 header and the certificate hash. */
static void test_channel_binding(void **state)
{
	static const uint8_t cbind[32] = { 0xde, 0xad, 0xbe, 0xef };
	static const char first_msg[] = "p=tls-server-end-point,,n=,r=clientnonce";
	struct scram_verifier v;
	struct scram_exchange x;
	char out[SCRAM_MAX_MESSAGE], final[SCRAM_MAX_MESSAGE], c[128];
	uint8_t cb[64];
	size_t gs2 = strlen("p=tls-server-end-point,,");

	(void)state;
	rfc_verifier(&v);
	assert_int_equal(scram_exchange_begin(&x, &v, "u", true, cbind, sizeof(cbind), "srv"), 0);
	assert_true(scram_exchange_first(&x, (const uint8_t *)first_msg, strlen(first_msg), out,
					 sizeof(out)) > 0);
	assert_string_equal(x.gs2_header, "p=tls-server-end-point,,");
	/* a c= with other binding data: refused as a binding failure, before the proof */
	memcpy(cb, "p=tls-server-end-point,,", gs2);
	memset(cb + gs2, 0x42, sizeof(cbind));
	EVP_EncodeBlock((unsigned char *)c, cb, (int)(gs2 + sizeof(cbind)));
	snprintf(final, sizeof(final), "c=%s,r=clientnoncesrv,p=%s", c,
		 "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	assert_int_equal(
		scram_exchange_final(&x, (const uint8_t *) final, strlen(final), out, sizeof(out)),
		-EACCES);
	/* the right data passes the binding check and reaches the proof (wrong here) */
	memcpy(cb + gs2, cbind, sizeof(cbind));
	EVP_EncodeBlock((unsigned char *)c, cb, (int)(gs2 + sizeof(cbind)));
	snprintf(final, sizeof(final), "c=%s,r=clientnoncesrv,p=%s", c,
		 "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	assert_int_equal(
		scram_exchange_final(&x, (const uint8_t *) final, strlen(final), out, sizeof(out)),
		-EPERM);
}

static void test_verifier_format(void **state)
{
	static const char pg[] =
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
	struct scram_verifier v, parsed;
	char text[SCRAM_VERIFIER_MAX];

	(void)state;
	/* RFC 7677's keys, in the text PostgreSQL stores for them */
	rfc_verifier(&v);
	assert_int_equal(scram_verifier_format(&v, text, sizeof(text)), (int)strlen(pg));
	assert_string_equal(text, pg);
	assert_int_equal(scram_verifier_parse(pg, &parsed), 0);
	assert_int_equal(parsed.iterations, 4096);
	assert_int_equal(parsed.salt_len, 16);
	assert_memory_equal(parsed.stored_key, v.stored_key, SCRAM_KEY_LEN);
	assert_memory_equal(parsed.server_key, v.server_key, SCRAM_KEY_LEN);
	assert_int_equal(scram_verifier_format(&v, text, 20), -ENOSPC);
	/* not verifiers */
	static const char *const bad[] = {
		"pencil",
		"md5a3556571e93b0d20722ba62be61e8c2d",
		"SCRAM-SHA-256$0:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6g*==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q"
		"Y=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096x:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (scram_verifier_parse(bad[i], &parsed) != -EINVAL)
			fail_msg("\"%s\" parsed as a verifier", bad[i]);
	/* a new verifier: random salt, default iterations, and it parses */
	assert_true(scram_verifier_new("secret", text, sizeof(text)) > 0);
	assert_int_equal(scram_verifier_parse(text, &parsed), 0);
	assert_int_equal(parsed.iterations, SCRAM_DEFAULT_ITERATIONS);
	assert_int_equal(parsed.salt_len, SCRAM_DEFAULT_SALT_LEN);
}

#define GOOD                                                                            \
	"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:" \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static void test_password_file(void **state)
{
	struct scram_passwords *p = NULL;

	(void)state;
	assert_int_equal(scram_passwords_parse("# standbys\n\nuser " GOOD "  # pencil\n"
					       "\treplicator\t" GOOD "\n",
					       "pw", &p),
			 0);
	assert_int_equal(p->count, 2);
	assert_non_null(scram_passwords_find(p, "user"));
	assert_non_null(scram_passwords_find(p, "replicator"));
	assert_null(scram_passwords_find(p, "other"));
	assert_null(scram_passwords_find(NULL, "user"));
	assert_int_equal(scram_passwords_find(p, "user")->iterations, 4096);
	scram_passwords_free(p);
	p = NULL;
	assert_int_equal(scram_passwords_parse("", "pw", &p), 0);
	assert_int_equal(p->count, 0);
	scram_passwords_free(p);
	p = NULL;

	assert_int_equal(scram_passwords_parse("user pencil\n", "pw", &p), -EINVAL);
	assert_logged("invalid SCRAM verifier for user \"user\" in file \"pw\" line 1");
	assert_logged("walship password user");
	assert_int_equal(scram_passwords_parse("user\n", "pw", &p), -EINVAL);
	assert_logged("invalid line in file \"pw\" line 1");
	assert_int_equal(scram_passwords_parse("a " GOOD " extra\n", "pw", &p), -EINVAL);
	assert_int_equal(scram_passwords_parse("a " GOOD "\na " GOOD "\n", "pw", &p), -EINVAL);
	assert_logged("user \"a\" is given twice in file \"pw\" line 2");
	assert_null(p);
	scram_passwords_free(NULL);
}

static void test_password_file_mode(void **state)
{
	char path[] = "/tmp/scram_test_XXXXXX";
	struct scram_passwords *p = NULL;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "u " GOOD "\n", strlen("u " GOOD "\n")),
			 (ssize_t)strlen("u " GOOD "\n"));
	assert_int_equal(fchmod(fd, 0600), 0);
	assert_int_equal(scram_passwords_load(path, &p), 0);
	assert_int_equal(p->count, 1);
	scram_passwords_free(p);
	p = NULL;
	assert_int_equal(fchmod(fd, 0644), 0);
	assert_int_equal(scram_passwords_load(path, &p), -EACCES);
	assert_logged("has group or world access");
	assert_null(p);
	close(fd);
	unlink(path);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_rfc7677),	 T(test_refusals),	T(test_channel_binding),
		T(test_verifier_format), T(test_password_file), T(test_password_file_mode),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
