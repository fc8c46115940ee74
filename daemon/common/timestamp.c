// SPDX-License-Identifier: MIT
/*
 * Times as an operator types them (see timestamp.h).  Its own few lines: strptime() takes
 * fields of any width and signs, and neither it nor timegm() checks ranges.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <strings.h>
#include <time.h>

#include "common/timestamp.h"

/* Exactly @n digits at *@p, their value in [@lo, @hi]: into *@out, *@p past them. */
static bool take_digits(const char **p, int n, int lo, int hi, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	if (v < lo || v > hi)
		return false;
	*p += n;
	*out = v;
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

int timestamp_parse(const char *text, int64_t *unix_us)
{
	struct tm tm = { 0 };
	const char *p = text;
	int year, month, day, hour, min, sec;
	int64_t frac = 0, offset_s = 0;
	int frac_digits = 0;
	time_t secs;

	if (!take_digits(&p, 4, 1, 9999, &year) || *p++ != '-' ||
	    !take_digits(&p, 2, 1, 12, &month) || *p++ != '-' ||
	    !take_digits(&p, 2, 1, days_in_month(year, month), &day))
		return -EINVAL;
	if (*p != ' ' && *p != 'T')
		return -EINVAL;
	p++;
	if (!take_digits(&p, 2, 0, 23, &hour) || *p++ != ':' || !take_digits(&p, 2, 0, 59, &min) ||
	    *p++ != ':' || !take_digits(&p, 2, 0, 60, &sec))
		return -EINVAL;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1]))
			return -EINVAL;
		for (p++; isdigit((unsigned char)*p); p++)
			if (frac_digits < 6) {
				frac = frac * 10 + (*p - '0');
				frac_digits++;
			}
		while (frac_digits++ < 6)
			frac *= 10;
	}
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, hh, mm = 0;

		p++;
		if (!take_digits(&p, 2, 0, 15, &hh))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!take_digits(&p, 2, 0, 59, &mm))
				return -EINVAL;
		} else if (isdigit((unsigned char)*p) && !take_digits(&p, 2, 0, 59, &mm)) {
			return -EINVAL;
		}
		offset_s = sign * (hh * 3600 + mm * 60);
	} else if (*p == ' ' && (!strcasecmp(p + 1, "UTC") || !strcasecmp(p + 1, "GMT"))) {
		/* What pg_waldump prints with TZ=UTC, and PostgreSQL's log with log_timezone =
		 * UTC.  No other name: pg_waldump prints local time with its abbreviation, and
		 * CST alone is three offsets (America, China, Cuba); a name read wrong would
		 * release past the commit meant. */
		p += 4;
	}
	if (*p)
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = month - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec; /* 60: the next minute's first second, as PostgreSQL reads it */
	secs = timegm(&tm); /* years 1 to 9999 fit a 64-bit time_t */
	*unix_us = ((int64_t)secs - offset_s) * 1000000 + frac;
	return 0;
}
