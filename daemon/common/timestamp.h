/* SPDX-License-Identifier: MIT */
/*
 * Times as an operator types them (`walship release --before`): as PostgreSQL prints a
 * timestamptz, or as ISO 8601.
 */
#ifndef WALSHIP_COMMON_TIMESTAMP_H
#define WALSHIP_COMMON_TIMESTAMP_H

#include <stdint.h>

/*
 * Parse "YYYY-MM-DD HH:MM:SS[.frac]" (' ' or 'T' between date and time) with an optional
 * zone: Z, +HH, +HH:MM or +HHMM, or " UTC" or " GMT" after a space, in any case (none:
 * UTC); any other zone name is refused.  Every field has its exact number of digits
 * and lies in its range (the day in its month, leap years included; a leap second 60;
 * zones up to 15:59, as PostgreSQL's), as PostgreSQL refuses a "date/time field value out
 * of range": timegm() would move 21:70 to 22:10 silently, and a release would pass the
 * commit the operator meant to stop before.  Sets *@unix_us (microseconds since the
 * epoch; digits of the fraction past the sixth are dropped).  Returns 0 or -EINVAL.
 */
int timestamp_parse(const char *text, int64_t *unix_us);

#endif /* WALSHIP_COMMON_TIMESTAMP_H */
