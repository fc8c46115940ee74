// SPDX-License-Identifier: MIT
/*
 * `walship password USER` (see password.h).
 */
#include "password.h"

#include <getopt.h>
#include <stdbool.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "common/log.h"
#include "common/scram.h"
#include "crypto_dl.h"

#define PASSWORD_MAX 1024

void password_usage(FILE *out)
{
	fprintf(out, "Usage: walship password USER\n"
		     "\n"
		     "Print the line for pg_password_file that lets USER authenticate with\n"
		     "scram-sha-256 on pg_listen: the user name and the SCRAM-SHA-256 verifier of\n"
		     "the password, as PostgreSQL stores it.  On a terminal the password is asked\n"
		     "twice without echo; otherwise it is the first line of standard input.\n"
		     "\n"
		     "  walship password replicator >> /etc/walship/standby.passwords\n"
		     "\n"
		     "Options:\n"
		     "  -h, --help  show this help and exit\n");
}

/* One line of standard input into @buf, its newline removed; echo off when @prompt (a
 * terminal).  Returns 0, -1 at end of input, or -2 for a line that does not fit (the
 * rest of it read and dropped: not cut silently, nor taken as the next answer). */
static int read_secret(const char *prompt, char *buf, size_t len)
{
	struct termios saved, quiet;
	bool tty = prompt && tcgetattr(STDIN_FILENO, &saved) == 0;
	int ret = 0;

	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	if (!fgets(buf, (int)len, stdin)) {
		ret = -1;
	} else if (!strchr(buf, '\n') && strlen(buf) == len - 1) {
		int c;

		while ((c = getchar()) != EOF && c != '\n')
			;
		OPENSSL_cleanse(buf, len);
		ret = -2;
	} else {
		buf[strcspn(buf, "\r\n")] = '\0';
	}
	if (tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	return ret;
}

/* A name the password file's parser reads as one field (scram.c splits a line at any
 * blank) and a standby may present (pgwire.c refuses control characters in a user
 * name): 1 to SCRAM_MAX_USER - 1 bytes, no control character, blank or "#". */
static bool user_valid(const char *user)
{
	if (!user[0] || strlen(user) >= SCRAM_MAX_USER)
		return false;
	for (const unsigned char *c = (const unsigned char *)user; *c; c++)
		if (*c <= 0x20 || *c == 0x7f || *c == '#')
			return false;
	return true;
}

int password_main(int argc, char **argv)
{
	static const struct option options[] = { { "help", no_argument, NULL, 'h' },
						 { NULL, 0, NULL, 0 } };
	char password[PASSWORD_MAX], again[PASSWORD_MAX], prompt[128];
	char verifier[SCRAM_VERIFIER_MAX];
	bool tty = isatty(STDIN_FILENO);
	const char *user;
	int opt, ret = PASSWORD_EXIT_FAILED;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt == 'h') {
			password_usage(stdout);
			return CLI_EXIT_OK;
		}
		password_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (argc - optind != 1) {
		log_error("walship password needs USER, got %d arguments", argc - optind);
		password_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	user = argv[optind];
	if (!user_valid(user)) {
		log_error("invalid user name \"%s\"", user);
		log_detail("A user name has 1 to %d characters, without blanks, control characters "
			   "or \"#\".",
			   SCRAM_MAX_USER - 1);
		return CLI_EXIT_USAGE;
	}
	/* before the password is asked: a missing library is said first */
	if (crypto_dl_load() < 0)
		return PASSWORD_EXIT_FAILED;
	/* psql's \password words */
	snprintf(prompt, sizeof(prompt), "Enter new password for user \"%s\": ", user);
	ret = read_secret(tty ? prompt : NULL, password, sizeof(password));
	if (ret == 0 && password[0] && tty) {
		ret = read_secret("Enter it again: ", again, sizeof(again));
		if (ret == -1 || (ret == 0 && strcmp(password, again)))
			ret = -3;
	}
	if (ret == -2) {
		log_error("password too long");
		log_detail("A password has at most %d bytes.", PASSWORD_MAX - 2);
	} else if (ret == -3) {
		log_error("Passwords didn't match.");
	} else if (ret < 0 || !password[0]) {
		log_error("no password given");
	}
	if (ret < 0 || !password[0]) {
		ret = PASSWORD_EXIT_FAILED;
		goto out;
	}
	ret = PASSWORD_EXIT_FAILED;
	if (scram_verifier_new(password, verifier, sizeof(verifier)) < 0) {
		log_error("could not make the SCRAM verifier");
		goto out;
	}
	printf("%s %s\n", user, verifier);
	ret = CLI_EXIT_OK;
out:
	OPENSSL_cleanse(password, sizeof(password));
	OPENSSL_cleanse(again, sizeof(again));
	return ret;
}
