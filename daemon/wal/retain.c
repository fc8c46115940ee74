// SPDX-License-Identifier: MIT
/* Which files of the replica's store retention removes: see retain.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wal/retain.h"

/* Oldest first: by segment number, then timeline, then name (a segment before its
 * .partial or .backup files); history files last. */
static int retain_file_cmp(const void *a, const void *b)
{
	const struct retain_file *x = a, *y = b;

	if (x->segno != y->segno)
		return x->segno < y->segno ? -1 : 1;
	if (x->wn.timeline != y->wn.timeline)
		return x->wn.timeline < y->wn.timeline ? -1 : 1;
	return strcmp(x->name, y->name);
}

int retain_select(struct retain_file *files, size_t n, uint32_t seg_size, uint64_t floor_lsn,
		  const struct retain_policy *policy, int64_t now_ms, struct retain_plan *plan)
{
	uint64_t newest_segno = 0, floor_segno, newer_bytes = 0, total = 0;
	size_t nsegs = 0, nknown = 0;

	memset(plan, 0, sizeof(*plan));
	plan->oldest_kept = -1;
	for (size_t i = 0; i < n; i++) {
		struct retain_file *f = &files[i];

		if (wal_name_parse(f->name, &f->wn) < 0)
			return -EINVAL;
		if (f->wn.kind == WAL_FILE_HISTORY) {
			f->segno = UINT64_MAX;
		} else {
			/* An unknown position (a name out of range for seg_size) sorts after
			 * every segment and is never removed, but is not the newest segment:
			 * that rule keeps the newest WAL, which such a stray file is not. */
			if (!wal_seg_size_valid(seg_size) ||
			    wal_name_segno(&f->wn, seg_size, &f->segno) < 0)
				f->segno = UINT64_MAX - 1;
			else if (f->segno > newest_segno || nknown == 0)
				newest_segno = f->segno;
			nknown += f->segno != UINT64_MAX - 1;
			nsegs++;
		}
		total += f->size;
	}
	if (nknown == 0)
		newest_segno = UINT64_MAX - 1;
	qsort(files, n, sizeof(*files), retain_file_cmp);
	plan->kept = n;
	plan->kept_bytes = total;
	floor_segno = floor_lsn == RETAIN_NO_FLOOR || !wal_seg_size_valid(seg_size) ?
			      UINT64_MAX :
			      floor_lsn / seg_size;
	if (!retain_policy_off(policy) && wal_seg_size_valid(seg_size)) {
		/* bytes of the files after files[i] (not history), for the size guarantee */
		for (size_t i = 0; i < nsegs; i++)
			newer_bytes += files[i].size;
		for (size_t i = 0; i < nsegs; i++) {
			const struct retain_file *f = &files[i];

			newer_bytes -= f->size;
			if (f->segno >= newest_segno || f->segno >= floor_segno)
				break; /* needed */
			if (policy->keep_ms > 0 && f->stored_ms > now_ms - policy->keep_ms)
				break; /* inside the time window */
			if (policy->keep_bytes && newer_bytes < policy->keep_bytes)
				break; /* the newest retain_size bytes */
			plan->remove++;
			plan->remove_bytes += f->size;
		}
	}
	plan->kept -= plan->remove;
	plan->kept_bytes -= plan->remove_bytes;
	if (plan->remove < nsegs)
		plan->oldest_kept = (long)plan->remove;
	return 0;
}
