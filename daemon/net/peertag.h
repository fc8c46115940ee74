/* SPDX-License-Identifier: MIT */
/*
 * Small stable numbers for peer hosts, used as the tag of sends (ring_sqe_tag()) so the
 * BPF send probes can keep one histogram per peer.  A peer is its host address without
 * the port: a replica that reconnects from a new port keeps its number.  Numbers run
 * from 1 to PEERTAG_MAX; once they are all taken, new hosts get 0 (untagged, not
 * measured per peer).  One event-loop thread uses the table: no locking.
 */
#ifndef WALSHIP_NET_PEERTAG_H
#define WALSHIP_NET_PEERTAG_H

#define PEERTAG_MAX 63
#define PEERTAG_ADDR_LEN 64

/* The number of the host in @addr ("host:port" or "[v6]:port"), assigned on first use. */
unsigned int peertag_get(const char *addr);

/* The host of number @tag, or NULL if unassigned. */
const char *peertag_host(unsigned int tag);

/* Numbers assigned so far (they are 1..peertag_count()). */
unsigned int peertag_count(void);

#endif /* WALSHIP_NET_PEERTAG_H */
