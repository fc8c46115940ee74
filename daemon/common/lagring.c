// SPDX-License-Identifier: MIT
/* Lag samples: see lagring.h. */
#include "common/lagring.h"

#include <stddef.h>

static struct lag_ring_sample *at(struct lag_ring *r, unsigned int i)
{
	return &r->s[(r->first + i) % LAG_RING_SAMPLES];
}

static const struct lag_ring_sample *at_c(const struct lag_ring *r, unsigned int i)
{
	return &r->s[(r->first + i) % LAG_RING_SAMPLES];
}

/*
 * Full: samples i and i + 1 become one, with i + 1's LSN and i's time (i >= 1: the oldest
 * stays what it is).  The pair chosen spans the least time for its age (against the
 * newest sample): the ring thins out geometrically, old WAL's times kept coarsely and the
 * last second's finely, so that a replica near the head keeps a close lag while another
 * is an hour behind (merging the pair closest in time alone spaced all samples evenly:
 * 28 s apart for everyone).
 */
static void merge_closest(struct lag_ring *r)
{
	int64_t newest = at(r, r->count - 1)->ms;
	unsigned int best = 1;
	double best_ratio = 0;

	for (unsigned int i = 1; i + 1 < r->count; i++) {
		double gap = (double)(at(r, i + 1)->ms - at(r, i)->ms);
		double ratio = gap / (double)(newest - at(r, i)->ms + 1);

		if (i == 1 || ratio < best_ratio) {
			best_ratio = ratio;
			best = i;
		}
	}
	at(r, best)->lsn = at(r, best + 1)->lsn;
	for (unsigned int i = best + 1; i + 1 < r->count; i++)
		*at(r, i) = *at(r, i + 1);
	r->count--;
}

void lag_ring_add(struct lag_ring *r, uint64_t lsn, int64_t ms, int64_t resolution_ms)
{
	struct lag_ring_sample *last = r->count ? at(r, r->count - 1) : NULL;

	if (last && lsn <= last->lsn)
		return;
	if (last && ms - last->ms < resolution_ms) {
		last->lsn = lsn;
		return;
	}
	if (r->count == LAG_RING_SAMPLES)
		merge_closest(r);
	*at(r, r->count++) = (struct lag_ring_sample){ .lsn = lsn, .ms = ms };
}

void lag_ring_prune(struct lag_ring *r, uint64_t lsn)
{
	while (r->count && at(r, 0)->lsn <= lsn) {
		r->first = (r->first + 1) % LAG_RING_SAMPLES;
		r->count--;
	}
}

void lag_ring_cut(struct lag_ring *r, uint64_t lsn)
{
	while (r->count && at(r, r->count - 1)->lsn > lsn) {
		/* the first sample past @lsn: the WAL before @lsn was there at its time too */
		if (r->count == 1 || at(r, r->count - 2)->lsn < lsn) {
			at(r, r->count - 1)->lsn = lsn;
			break;
		}
		r->count--;
	}
}

int64_t lag_ring_since(const struct lag_ring *r, uint64_t lsn)
{
	for (unsigned int i = 0; i < r->count; i++)
		if (at_c(r, i)->lsn > lsn)
			return at_c(r, i)->ms;
	return 0;
}

bool lag_ring_reached(const struct lag_ring *r, uint64_t pos, uint64_t after,
		      struct lag_ring_sample *out)
{
	bool found = false;

	for (unsigned int i = 0; i < r->count && at_c(r, i)->lsn <= pos; i++) {
		if (at_c(r, i)->lsn > after) {
			*out = *at_c(r, i);
			found = true;
		}
	}
	return found;
}
