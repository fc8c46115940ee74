/* SPDX-License-Identifier: MIT */
/*
 * walshipd configuration: `key = value` lines like postgresql.conf.
 *
 * Every key is declared once, in the table in config.c (name, type, default, bounds,
 * reloadable, help); parsing, `walshipd --help`, the config dump and docs/configuration.md
 * come from that table.  Values may be quoted with single quotes ('...', '' for a quote);
 * `#` starts a comment outside quotes; the `=` is optional; blank lines are ignored;
 * durations take PostgreSQL's units (ms, s, min, h, d; a bare number is in the key's base
 * unit, milliseconds for every duration key today).  An unknown key, a bad value, a value
 * out of bounds, or a key given twice is an error naming file and line, in PostgreSQL's
 * words: `unrecognized configuration parameter "foo" in file "/etc/x.conf" line 3`.
 */
#ifndef WALSHIP_COMMON_CONFIG_H
#define WALSHIP_COMMON_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/log.h"

#define CONFIG_DEFAULT_PATH "/etc/walship/walship.conf"
/*
 * Defaults of `socket`, `push_timeout` and `push_ahead` (the config table's), named here
 * for the clients that do not read the config file: PostgreSQL's archive module (pgmod/).
 */
#define CONFIG_DEFAULT_SOCKET "/run/walship/walshipd.sock"
#define CONFIG_DEFAULT_PUSH_TIMEOUT_S 60
#define CONFIG_DEFAULT_PUSH_AHEAD 2
#define CONFIG_MAX_NAME 64
#define CONFIG_MAX_ADDR 256
#define CONFIG_MAX_SOCKET 108 /* sizeof(sun_path) */
#define CONFIG_MAX_CONNINFO 1024

enum config_role {
	CONFIG_ROLE_PRIMARY = 0,
	CONFIG_ROLE_REPLICA = 1,
};

enum config_spool_overflow {
	CONFIG_SPOOL_FAIL = 0, /* refuse the push: PostgreSQL keeps the WAL */
	CONFIG_SPOOL_RELEASE_SLOWEST = 1, /* drop the furthest-behind replica's claims */
};

/* A key of on | off | auto (zero_copy, ktls, probes, sysfs); "on" means required. */
enum config_switch {
	CONFIG_SWITCH_OFF = 0,
	CONFIG_SWITCH_ON = 1,
	CONFIG_SWITCH_AUTO = 2, /* where the kernel, the privileges or the module allow */
};

enum config_send_source {
	CONFIG_SEND_MAP = 0, /* SENDMSG(_ZC) from a read-only mapping of the WAL file */
	CONFIG_SEND_BUFFERS = 1, /* READ into registered buffers, SEND(_ZC) from those */
};

struct config {
	enum config_role role; /* role: primary | replica (required) */
	char node_name[CONFIG_MAX_NAME]; /* node_name: [A-Za-z0-9_.-]{1,63}, default hostname */
	char listen[CONFIG_MAX_ADDR]; /* listen: host:port, default "0.0.0.0:5480" */
	char upstream[CONFIG_MAX_ADDR]; /* upstream: host:port of the primary (replica) */
	/* upstream_name: the node name (and with TLS the certificate name) the upstream
	 * must have; empty: any (replica) */
	char upstream_name[CONFIG_MAX_NAME];
	char pg_conninfo[CONFIG_MAX_CONNINFO]; /* pg_conninfo: libpq string, "" = no stream */
	char pg_slot[CONFIG_MAX_NAME]; /* pg_slot: physical slot, [a-z0-9_]{1,63}, "walship" */
	char application_name[CONFIG_MAX_NAME]; /* application_name: "" = node_name */
	int pg_status_interval_ms; /* pg_status_interval: default 10s */
	char archive_dir[PATH_MAX]; /* archive_dir: replica's durable WAL store */
	char spool_dir[PATH_MAX]; /* spool_dir: primary's durable hold area */
	int spool_max_size_mb; /* spool_max_size: 0 = no bound */
	int spool_overflow; /* spool_overflow: enum config_spool_overflow */
	int spool_delay_ms; /* spool_delay: wait for replicas that keep up, default 200ms */
	char socket_path[CONFIG_MAX_SOCKET]; /* socket: control socket path */
	char socket_group
		[CONFIG_MAX_NAME]; /* socket_group: group owning the socket, "" = daemon's */
	int socket_permissions; /* socket_permissions: octal mode, default 0660 */
	int max_senders; /* max_senders: replicas admitted, default 10 */
	int max_registered; /* max_registered: replicas the spool holds WAL for, default 16 */
	int sync_replicas; /* sync_replicas: acks needed before push succeeds, default 1 */
	int push_timeout_ms; /* push_timeout: default 60s */
	int push_ahead; /* push_ahead: ready segments passed with a push, default 2 */
	int connect_timeout_ms; /* connect_timeout: default 10s */
	int reconnect_min_ms; /* reconnect_min: first backoff, default 100ms */
	int reconnect_max_ms; /* reconnect_max: backoff cap, default 10s */
	int keepalive_interval_ms; /* keepalive_interval: default 5s */
	int keepalive_timeout_ms; /* keepalive_timeout: default 30s */
	int checkpoint_interval_ms; /* checkpoint_interval: replica, default 1s, 0 = on loss only */
	int retain_time_ms; /* retain_time: replica, keep at least this window, 0 = none */
	int retain_size_mb; /* retain_size: replica, keep at least this much, 0 = none */
	int max_inflight_files; /* max_inflight_files: per connection, default 8 */
	int max_queued_pushes; /* max_queued_pushes: bounded push queue, default 64 */
	int io_buffers; /* io_buffers: 1 MiB registered buffers, default 32 */
	enum config_switch zero_copy; /* zero_copy: default auto */

	char hba_file[PATH_MAX]; /* hba_file: access rules, "" = none */
	bool tls; /* tls: default on (off only when set explicitly) */
	char tls_ca_file[PATH_MAX];
	char tls_cert_file[PATH_MAX];
	char tls_key_file[PATH_MAX];
	enum config_switch ktls; /* ktls: default auto */
	int send_source; /* send_source: enum config_send_source, default buffers */
	enum config_switch probes; /* probes: default auto */
	enum config_switch sysfs; /* sysfs: publish to walship.ko, default auto */
	bool bpf_keep_pins; /* bpf_keep_pins: keep /sys/fs/bpf/walship pins at exit */
	char metrics_listen[CONFIG_MAX_ADDR]; /* metrics_listen: host:port or "" (off) */
	bool relay; /* relay: replica, accept downstream replicas on listen */
	char pg_listen[CONFIG_MAX_ADDR]; /* pg_listen: replica, walsender for standbys, "" off */
	char pg_password_file[PATH_MAX]; /* pg_password_file: standbys' SCRAM verifiers */
	char standby_delay[CONFIG_MAX_CONNINFO]; /* standby_delay: NAME:DURATION[,...], "" */
	enum log_level log_level; /* log_level: default log */
};

/*
 * Fill @cfg with every key's default.  role has none: it is left unset (neither enum
 * value) until a file sets it, and config_validate() reports it as required.
 */
void config_defaults(struct config *cfg);

/*
 * Parse the file at @path into @cfg (which config_defaults() has filled).  On any error
 * logs `... in file "%s" line %d` (plus DETAIL/HINT) through log_error() and returns
 * -EINVAL (or -errno when the file cannot be read).  Then checks cross-key rules
 * (config_validate()).  All or nothing: on failure @cfg is left as it was.  Keys absent
 * from the file keep @cfg's values, so a reload starts again from config_defaults().
 */
int config_load(struct config *cfg, const char *path);

/*
 * Parse config text held in memory; @source_name names it in messages.  Same rules and
 * results as config_load(); used by config_load() and by unit tests.
 */
int config_parse_string(struct config *cfg, const char *text, const char *source_name);

/*
 * Cross-key rules: role replica needs upstream and archive_dir; sync_replicas <=
 * max_senders; reconnect_min <= reconnect_max.  Logs what is wrong; returns -EINVAL.
 */
int config_validate(const struct config *cfg, const char *source_name);

/* The longest standby_delay, PostgreSQL's bound of recovery_min_apply_delay (INT_MAX ms). */
#define CONFIG_STANDBY_DELAY_MAX_MS 2147483647LL
/* PostgreSQL's NAMEDATALEN: its names (a user's, an application_name) are at most one
 * byte shorter, cut there when longer. */
#define CONFIG_PG_NAMEDATALEN 64
/* How many standbys standby_delay may name (each one's delay is tracked apart). */
#define CONFIG_STANDBY_DELAY_MAX_ENTRIES 32

/* An integer with an optional unit (ms, s, min, h, d; none means ms), as the config's
 * durations and PostgreSQL's time settings are written, into *@out_ms.  False when it is
 * not one. */
bool config_parse_duration(const char *text, long long *out_ms);

/*
 * The delay that @text (standby_delay's syntax: NAME:DURATION[,NAME:DURATION...], the
 * duration as the config's durations, names without ',' or ':') gives standby @app: 0 and
 * *@delay_ms, -ENOENT when @app is not listed, -EINVAL when @text is malformed.  @app
 * NULL only checks the syntax (returns -ENOENT when well formed).
 */
int config_standby_delay(const char *text, const char *app, long long *delay_ms);

/* The name PostgreSQL sees for the stream source (synchronous_standby_names matches it):
 * application_name, or node_name when that is empty. */
const char *config_application_name(const struct config *cfg);

/* Print every key with its default, type, bounds and help (walshipd --help). */
void config_print_help(FILE *out);

/* Print every key with its current value, as a loadable config file. */
void config_dump(const struct config *cfg, FILE *out);

/* Print docs/configuration.md's key reference in Markdown (walshipd --describe-config). */
void config_print_markdown(FILE *out);

/* Print walship.conf(5)'s key reference in roff, man macros: one .TP paragraph per key
 * (walshipd --describe-config=man; man/walship.conf.5 holds it between markers). */
void config_print_man(FILE *out);

/*
 * Split "host:port" ("[v6]:port" for IPv6) into parts; the host is not resolved, the port
 * must be 1..65535.  @host and @port may be NULL to only check.  Returns -EINVAL on bad
 * input, -ENAMETOOLONG when the host does not fit @host_len.  Logs nothing.
 */
int config_split_address(const char *addr, char *host, size_t host_len, uint16_t *port);

/*
 * Apply @next, freshly loaded from @source_name (config_defaults() + config_load()), to
 * the running @cur, as on SIGHUP.  Keys marked reloadable take their new value, each
 * change logged as `parameter "push_timeout" changed to "30s"`; a changed key that needs
 * a restart keeps its old value and is logged as `parameter "%s" cannot be changed
 * without restarting the server`, as PostgreSQL does.  The merged result is validated
 * first: if that fails nothing changes, the rules it breaks are logged (not that nothing
 * changed: the caller says so once, for these and for errors in the file alike) and
 * -EINVAL is returned.  Returns the number of keys changed.  The caller applies the new
 * log_level (log_set_level()).
 */
int config_reload(struct config *cur, const struct config *next, const char *source_name);

#endif /* WALSHIP_COMMON_CONFIG_H */
