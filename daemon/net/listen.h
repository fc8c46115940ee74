/* SPDX-License-Identifier: MIT */
/*
 * The listening TCP socket of every TCP listener of the daemon (the primary's `listen`
 * for replicas, `metrics_listen` for Prometheus): one way to turn a configured
 * "host:port" into a socket that accepts, so the listeners cannot drift apart (numeric
 * port, SO_REUSEADDR so a restart does not wait for connections in TIME_WAIT).  The
 * accept loop is net/acceptor.h's; the UNIX control socket is control/control.c's.
 */
#ifndef WALSHIP_NET_LISTEN_H
#define WALSHIP_NET_LISTEN_H

/*
 * Listen on @addr ("host:port", "[v6]:port", as config_split_address() takes them;
 * 0.0.0.0 or [::] for every address), the value of config key @key (named in messages), with a backlog of
 * @backlog.  Binds the first address the host resolves to.  Returns the socket
 * (SOCK_CLOEXEC, blocking: the ring accepts on it) or -errno, logged as
 * `invalid KEY address "ADDR"` (-EINVAL), `could not resolve KEY address "ADDR": REASON`
 * (-EINVAL) or `could not listen on "ADDR" (KEY): REASON`.
 */
int net_listen_tcp(const char *key, const char *addr, int backlog);

#endif /* WALSHIP_NET_LISTEN_H */
