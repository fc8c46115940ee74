// SPDX-License-Identifier: MIT
/*
 * synchronous_standby_names, parsed as PostgreSQL does (see sync_standby.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/sync_standby.h"

enum token_kind { TOK_END, TOK_NAME, TOK_NUM, TOK_ANY, TOK_FIRST, TOK_CHAR, TOK_ERROR };

struct lexer {
	const char *at;
	char text[SYNC_STANDBY_NAME_MAX];
	bool too_long;
};

static bool ident_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c >= 0x80;
}

static bool ident_cont(unsigned char c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

/* Append @c to the token's text; a name too long is remembered, not cut silently. */
static void lex_put(struct lexer *lx, size_t *len, char c)
{
	if (*len + 1 >= sizeof(lx->text)) {
		lx->too_long = true;
		return;
	}
	lx->text[(*len)++] = c;
	lx->text[*len] = '\0';
}

/* The next token (syncrep_scanner.l): its text in lx->text; a TOK_CHAR is one of ,(). */
static enum token_kind lex_next(struct lexer *lx)
{
	size_t len = 0;
	unsigned char c;

	lx->text[0] = '\0';
	while (*lx->at == ' ' || *lx->at == '\t' || *lx->at == '\n' || *lx->at == '\r' ||
	       *lx->at == '\f' || *lx->at == '\v')
		lx->at++;
	c = (unsigned char)*lx->at;
	if (c == '\0')
		return TOK_END;
	if (c == '"') {
		for (lx->at++;; lx->at++) {
			if (*lx->at == '\0')
				return TOK_ERROR; /* unterminated quoted identifier */
			if (*lx->at == '"') {
				if (lx->at[1] != '"')
					break;
				lx->at++;
			}
			lex_put(lx, &len, *lx->at);
		}
		lx->at++;
		return TOK_NAME;
	}
	if (c >= '0' && c <= '9') {
		while (*lx->at >= '0' && *lx->at <= '9')
			lex_put(lx, &len, *lx->at++);
		return TOK_NUM;
	}
	if (ident_start(c)) {
		while (ident_cont((unsigned char)*lx->at))
			lex_put(lx, &len, *lx->at++);
		if (strcasecmp(lx->text, "any") == 0)
			return TOK_ANY;
		if (strcasecmp(lx->text, "first") == 0)
			return TOK_FIRST;
		return TOK_NAME;
	}
	lx->at++;
	lx->text[0] = (char)c;
	lx->text[1] = '\0';
	if (c == '*')
		return TOK_NAME;
	if (c == ',' || c == '(' || c == ')')
		return TOK_CHAR;
	return TOK_ERROR;
}

static bool is_char(enum token_kind kind, const struct lexer *lx, char c)
{
	return kind == TOK_CHAR && lx->text[0] == c;
}

/* standby_list: a name or number, then `, name` ...; stops at the first other token. */
static int parse_list(struct lexer *lx, enum token_kind *kind, struct sync_standby *out)
{
	for (;;) {
		if (*kind != TOK_NAME && *kind != TOK_NUM)
			return -EINVAL;
		if (lx->too_long || out->nnames == SYNC_STANDBY_MAX_NAMES)
			return -E2BIG;
		strcpy(out->names[out->nnames++], lx->text);
		*kind = lex_next(lx);
		if (!is_char(*kind, lx, ','))
			return 0;
		*kind = lex_next(lx);
	}
}

/* A number of standbys, as the server's atoi() of NUM; > 0 checked by the caller. */
static int parse_num(const char *text)
{
	long value = strtol(text, NULL, 10);

	return value > INT_MAX ? INT_MAX : (int)value;
}

int sync_standby_parse(const char *text, struct sync_standby *out)
{
	struct lexer lx = { .at = text };
	enum token_kind kind;
	char num[SYNC_STANDBY_NAME_MAX];
	bool keyword = false;
	int ret;

	memset(out, 0, sizeof(*out));
	out->method = SYNC_STANDBY_FIRST;
	kind = lex_next(&lx);
	if (kind == TOK_END)
		return 0;
	if (kind == TOK_ANY || kind == TOK_FIRST) {
		out->method = kind == TOK_ANY ? SYNC_STANDBY_ANY : SYNC_STANDBY_FIRST;
		keyword = true;
		kind = lex_next(&lx);
		if (kind != TOK_NUM)
			return -EINVAL;
	}
	if (kind == TOK_NUM) {
		/* NUM '(' list ')', or a plain list whose first name is a number. */
		if (lx.too_long)
			return -E2BIG;
		strcpy(num, lx.text);
		kind = lex_next(&lx);
		if (is_char(kind, &lx, '(')) {
			out->num_sync = parse_num(num);
			kind = lex_next(&lx);
			ret = parse_list(&lx, &kind, out);
			if (ret < 0)
				return ret;
			if (!is_char(kind, &lx, ')'))
				return -EINVAL;
			kind = lex_next(&lx);
		} else if (keyword) {
			return -EINVAL; /* FIRST NUM / ANY NUM without a list */
		} else {
			strcpy(out->names[out->nnames++], num);
			out->num_sync = 1;
			if (is_char(kind, &lx, ',')) {
				kind = lex_next(&lx);
				ret = parse_list(&lx, &kind, out);
				if (ret < 0)
					return ret;
			}
		}
	} else {
		out->num_sync = 1;
		ret = parse_list(&lx, &kind, out);
		if (ret < 0)
			return ret;
	}
	if (kind != TOK_END)
		return -EINVAL;
	if (out->num_sync < 1)
		return -EINVAL; /* "number of synchronous standbys (0) must be greater than zero" */
	return 0;
}

bool sync_standby_names_name(const struct sync_standby *ss, const char *application_name)
{
	for (unsigned int idx = 0; idx < ss->nnames; idx++)
		if (strcasecmp(ss->names[idx], application_name) == 0)
			return true;
	return false;
}

bool sync_standby_names_match(const struct sync_standby *ss, const char *application_name)
{
	for (unsigned int idx = 0; idx < ss->nnames; idx++)
		if (strcmp(ss->names[idx], "*") == 0)
			return true;
	return sync_standby_names_name(ss, application_name);
}
