/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 well-formedness, for text that goes into JSON (walship status --json) and
 * Prometheus labels (/metrics), both of which must be valid UTF-8: a name a peer chose (a
 * standby's user name) may not be, or may have been cut inside a character.  Our own
 * code, not mbrtowc(): that one follows the process's locale, and the daemon runs in the
 * C locale.  The table is RFC 3629's (section 4): no overlong forms, no surrogates,
 * nothing past U+10FFFF.
 */
#ifndef WALSHIP_COMMON_UTF8_H
#define WALSHIP_COMMON_UTF8_H

#include <stddef.h>

/* The bytes of the well-formed character at @s (1 to 4), or 0 when the bytes there are
 * not one (a NUL ends @s, and is never part of a character). */
static inline size_t utf8_char_len(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * For a terminal: the bytes of the character at @s when it may be shown as it is
 * (printable ASCII, or a well-formed UTF-8 character past the C1 controls, U+00A0 on),
 * or 0 when it is to be shown as '?' (a control character, C1 included, or a byte not
 * part of one): text a peer or a database user chose must not move the operator's cursor
 * (walship status, walship check).
 */
static inline size_t utf8_shown_len(const char *s)
{
	unsigned char ch = (unsigned char)s[0];
	size_t n = utf8_char_len(s);

	if (n == 1)
		return ch >= 0x20 && ch < 0x7f ? 1 : 0;
	return n > 1 && !(ch == 0xc2 && (unsigned char)s[1] < 0xa0) ? n : 0;
}

#endif /* WALSHIP_COMMON_UTF8_H */
