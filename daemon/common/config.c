// SPDX-License-Identifier: MIT
/*
 * walshipd configuration: one table of keys (config_keys[] below) drives the parser, the
 * defaults, validation, `walshipd --help`, the config dump and the Markdown reference in
 * docs/configuration.md.  Adding a key is one table row plus its struct config field.
 *
 * A line is `key = value`, `key value`, blank, or a `# comment`.  A value is one unquoted
 * token (no whitespace, `#` or quote) or a single-quoted string where '' stands for a quote.
 * Defaults are strings run through the same parser as the file, so the table cannot hold a
 * default the parser would refuse.
 */
#include "common/compiler.h"
#include "common/config.h"
#include "common/node_name.h"
#include "common/textfile.h"
#include <walship/control.h>
#include <walship/wire.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_FILE_SIZE (1024 * 1024)
#define CONFIG_MAX_ERRORS 100

/* A number macro as a string literal, for defaults named in config.h. */
#define CONFIG_STRINGIFY_(x) #x
#define CONFIG_STRINGIFY(x) CONFIG_STRINGIFY_(x)

/* Milliseconds per unit. */
#define MS_PER_S 1000LL
#define MS_PER_MIN (60 * MS_PER_S)
#define MS_PER_H (60 * MS_PER_MIN)
#define MS_PER_D (24 * MS_PER_H)

_Static_assert(sizeof(enum config_role) == sizeof(int), "role is stored as an int");
_Static_assert(sizeof(enum log_level) == sizeof(int), "log_level is stored as an int");

enum config_type {
	CONFIG_TYPE_STRING, /* char[] field, NUL-terminated */
	CONFIG_TYPE_PATH, /* char[] field, a file system path */
	CONFIG_TYPE_INT, /* int field */
	CONFIG_TYPE_BOOL, /* bool field: on/off/true/false/yes/no/1/0 */
	CONFIG_TYPE_ENUM, /* int field, one of the key's enum values */
	CONFIG_TYPE_DURATION, /* int field, milliseconds */
	CONFIG_TYPE_SIZE_MB, /* int field, megabytes (as PostgreSQL's max_wal_size) */
	CONFIG_TYPE_OCTAL, /* int field, a file mode written in octal */
	CONFIG_TYPE_LOG_LEVEL, /* enum log_level field */
};

struct config_enum_value {
	const char *name;
	int value;
};

/* A parsed value on its way into a struct config field. */
struct config_value {
	long long number;
	const char *text;
};

/* Why a value was refused: DETAIL and HINT sentences, either may be empty. */
struct config_problem {
	char detail[256];
	char hint[256];
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset; /* of the field in struct config */
	size_t size; /* of the field (strings: buffer size, NUL included) */
	const char *default_value; /* parsed like the file; NULL: required or computed */
	void (*default_fn)(char *buf, size_t len); /* computes the default text */
	const char *default_doc; /* shown for a computed default */
	long long min, max; /* numbers: bounds; strings: min is the least length */
	const struct config_enum_value *values; /* enum: NULL-terminated */
	/* Further checks on a value already in bounds; fill @problem and return false. */
	bool (*check)(const struct config_value *value, struct config_problem *problem);
	const char *range_doc; /* allowed values, when the type alone does not say */
	bool reloadable; /* SIGHUP applies it; otherwise a restart is needed */
	const char *help; /* one line, lowercase, no period */
};

static const struct config_enum_value config_role_values[] = {
	{ "primary", CONFIG_ROLE_PRIMARY },
	{ "replica", CONFIG_ROLE_REPLICA },
	{ NULL, 0 },
};

/* on | off | auto.  "on" and "off" make the boolean spellings (true, no, 1, ...)
 * acceptable too. */
static const struct config_enum_value config_switch_values[] = {
	{ "on", CONFIG_SWITCH_ON },
	{ "off", CONFIG_SWITCH_OFF },
	{ "auto", CONFIG_SWITCH_AUTO },
	{ NULL, 0 },
};
_Static_assert(sizeof(enum config_switch) == sizeof(int), "enum keys are int fields");

static const struct config_enum_value config_spool_overflow_values[] = {
	{ "fail", CONFIG_SPOOL_FAIL },
	{ "release_slowest", CONFIG_SPOOL_RELEASE_SLOWEST },
	{ NULL, 0 },
};

static const struct config_enum_value config_send_source_values[] = {
	{ "map", CONFIG_SEND_MAP },
	{ "buffers", CONFIG_SEND_BUFFERS },
	{ NULL, 0 },
};

static void config_default_node_name(char *buf, size_t len);
static bool config_check_upstream_name(const struct config_value *value,
				       struct config_problem *problem);
static bool config_check_node_name(const struct config_value *value,
				   struct config_problem *problem);
static bool config_check_address(const struct config_value *value, struct config_problem *problem);
static bool config_check_socket_mode(const struct config_value *value,
				     struct config_problem *problem);
static bool config_check_slot_name(const struct config_value *value,
				   struct config_problem *problem);
static bool config_check_application_name(const struct config_value *value,
					  struct config_problem *problem);
static bool config_check_standby_delay(const struct config_value *value,
				       struct config_problem *problem);

#define FIELD(member) offsetof(struct config, member), sizeof(((struct config *)0)->member)

/* The keys, in the order of --help, the dump and the docs. */
static const struct config_key
	config_keys[] = {
		{
			.name = "role",
			.type = CONFIG_TYPE_ENUM,
			FIELD(role),
			.default_value = NULL, /* required */
			.values = config_role_values,
			.help = "whether this node ships WAL to replicas (primary) or receives and stores it (replica)",
		},
		{
			.name = "node_name",
			.type = CONFIG_TYPE_STRING,
			FIELD(node_name),
			.default_fn = config_default_node_name,
			.default_doc = "host name",
			.min = 1,
			.check = config_check_node_name,
			.range_doc = "1 to " WALSHIP_NODE_NAME_STR(
				WALSHIP_NODE_NAME_MAX) " of `A-Z a-z 0-9 _ . -`, not starting with `.`",
			.help = "name of this node in status output and in the handshake with peers",
		},
		{
			.name = "listen",
			.type = CONFIG_TYPE_STRING,
			FIELD(listen),
			.default_value = "0.0.0.0:5480",
			.min = 1,
			.check = config_check_address,
			.range_doc = "`host:port` or `[IPv6]:port`",
			.help = "address and TCP port on which the primary accepts replica connections",
		},
		{
			.name = "upstream",
			.type = CONFIG_TYPE_STRING,
			FIELD(upstream),
			.default_value = "",
			.check = config_check_address,
			.range_doc = "`host:port` or `[IPv6]:port`",
			.help = "address and TCP port of the primary this replica receives WAL from (required for a replica)",
		},
		{
			.name = "upstream_name",
			.type = CONFIG_TYPE_STRING,
			FIELD(upstream_name),
			.default_value = "",
			.check = config_check_upstream_name,
			.range_doc = "a node name, or empty",
			.help = "replica: the node name the upstream must announce, and with TLS the common name of its certificate; empty: any the CA signed (a peer with any certificate of the CA that takes over the upstream's address could feed this replica WAL)",
		},
		{
			.name = "pg_conninfo",
			.type = CONFIG_TYPE_STRING,
			FIELD(pg_conninfo),
			.default_value = "",
			.range_doc = "libpq connection string or URI, or empty",
			.help = "primary: connection to PostgreSQL for streaming WAL as a replication client (walship adds replication=true), best over its Unix socket (host=/var/run/postgresql); empty: no streaming, WAL comes from walship push only",
		},
		{
			.name = "pg_slot",
			.type = CONFIG_TYPE_STRING,
			FIELD(pg_slot),
			.default_value = "walship",
			.min = 1,
			.check = config_check_slot_name,
			.range_doc = "1 to 63 of `a-z 0-9 _`",
			.help = "primary: physical replication slot the stream uses, created (with RESERVE_WAL) when missing",
		},
		{
			.name = "application_name",
			.type = CONFIG_TYPE_STRING,
			FIELD(application_name),
			.default_value = "",
			.check = config_check_application_name,
			.range_doc = "up to 63 printable ASCII characters; empty: node_name",
			.help = "primary: the stream's name in PostgreSQL, which synchronous_standby_names matches",
		},
		{
			.name = "pg_status_interval",
			.type = CONFIG_TYPE_DURATION,
			FIELD(pg_status_interval_ms),
			.default_value = "10s",
			.min = 100,
			.max = MS_PER_H,
			.help = "primary: send PostgreSQL the stream's positions at least this often; a "
				"server silent for twice this long is taken as gone; while reading from it "
				"waits for the replicas, streaming stops after twice this long and the "
				"server is asked every interval, to answer within connect_timeout",
		},
		{
			.name = "archive_dir",
			.type = CONFIG_TYPE_PATH,
			FIELD(archive_dir),
			.default_value = "",
			.help = "directory where a replica stores received WAL durably (required for a replica)",
		},
		{
			.name = "spool_dir",
			.type = CONFIG_TYPE_PATH,
			FIELD(spool_dir),
			.default_value = "/var/lib/walship/spool",
			.min = 1,
			.help = "directory where the primary holds WAL until every registered replica has acknowledged it",
		},
		{
			.name = "spool_max_size",
			.type = CONFIG_TYPE_SIZE_MB,
			FIELD(spool_max_size_mb),
			.default_value = "0",
			.min = 0,
			.max = 1024 * 1024 * 1024,
			.reloadable = true,
			.help = "most WAL the primary's spool holds for registered replicas; 0: no bound",
		},
		{
			.name = "spool_delay",
			.type = CONFIG_TYPE_DURATION,
			FIELD(spool_delay_ms),
			.default_value = "200ms",
			.min = 0,
			.max = MS_PER_MIN,
			.reloadable = true,
			.help = "primary: before holding a pushed file in the spool for connected replicas that keep up, wait this long for their acknowledgements (0: hold it at once)",
		},
		{
			.name = "spool_overflow",
			.type = CONFIG_TYPE_ENUM,
			FIELD(spool_overflow),
			.default_value = "fail",
			.values = config_spool_overflow_values,
			.reloadable = true,
			.help = "when the spool is full: fail the push (PostgreSQL keeps the WAL and retries), or release_slowest: drop the claims of the replica furthest behind, marking its files lost",
		},
		{
			.name = "socket",
			.type = CONFIG_TYPE_PATH,
			FIELD(socket_path),
			.default_value = CONFIG_DEFAULT_SOCKET,
			.min = 1,
			.help = "control socket through which the walship command (push, fetch, status) talks to the daemon",
		},
		{
			.name = "socket_group",
			.type = CONFIG_TYPE_STRING,
			FIELD(socket_group),
			.default_value = "",
			.help = "group that owns the control socket; empty keeps the daemon's group",
		},
		{
			.name = "socket_permissions",
			.type = CONFIG_TYPE_OCTAL,
			FIELD(socket_permissions),
			.default_value = "0660",
			.min = 0,
			.max = 0777,
			.check = config_check_socket_mode,
			.range_doc = "`0000` to `0770`, no bits for others",
			.help = "file mode of the control socket; modes that let every local user in are refused",
		},
		{
			.name = "max_senders",
			.type = CONFIG_TYPE_INT,
			FIELD(max_senders),
			.default_value = "10",
			.min = 1,
			.max = 64,
			.help = "most replicas the primary serves at once",
		},
		{
			.name = "max_registered",
			.type = CONFIG_TYPE_INT,
			FIELD(max_registered),
			.default_value = "16",
			.min = 1,
			.max = 64,
			.help = "most replicas registered with the primary (the spool holds WAL for each until it has it, like a replication slot); a new one past it is refused until walship replica drop",
		},
		{
			.name = "sync_replicas",
			.type = CONFIG_TYPE_INT,
			FIELD(sync_replicas),
			.default_value = "1",
			.min = 0,
			.max = 64,
			.reloadable = true,
			.help = "replicas that must have stored a segment durably before walship push succeeds",
		},
		{
			.name = "push_timeout",
			.type = CONFIG_TYPE_DURATION,
			FIELD(push_timeout_ms),
			.default_value = CONFIG_STRINGIFY(CONFIG_DEFAULT_PUSH_TIMEOUT_S) "s",
			.min = 100,
			.max = MS_PER_D,
			.reloadable = true,
			.help = "how long walship push waits for the segment to be safe before it fails",
		},
		{
			.name = "push_ahead",
			.type = CONFIG_TYPE_INT,
			FIELD(push_ahead),
			.default_value = CONFIG_STRINGIFY(CONFIG_DEFAULT_PUSH_AHEAD),
			.min = 0,
			.max = CTL_MAX_AHEAD,
			.reloadable = true,
			.help = "walship push: how many of the segments after the pushed one, when PostgreSQL has marked them ready to archive, it passes along for walshipd to ship at once; their own pushes then take over (0: none)",
		},
		{
			.name = "connect_timeout",
			.type = CONFIG_TYPE_DURATION,
			FIELD(connect_timeout_ms),
			.default_value = "10s",
			.min = 100,
			.max = 10 * MS_PER_MIN,
			.help = "how long a connection and handshake with a peer may take; on a primary "
				"with pg_conninfo, also a connection to PostgreSQL and its answer to a "
				"replication command",
		},
		{
			.name = "reconnect_min",
			.type = CONFIG_TYPE_DURATION,
			FIELD(reconnect_min_ms),
			.default_value = "100ms",
			.min = 10,
			.max = MS_PER_H,
			.reloadable = true,
			.help = "first delay before reconnecting after a connection is lost",
		},
		{
			.name = "reconnect_max",
			.type = CONFIG_TYPE_DURATION,
			FIELD(reconnect_max_ms),
			.default_value = "10s",
			.min = 10,
			.max = MS_PER_D,
			.reloadable = true,
			.help = "longest delay between reconnection attempts (the delay doubles up to it)",
		},
		{
			.name = "keepalive_interval",
			.type = CONFIG_TYPE_DURATION,
			FIELD(keepalive_interval_ms),
			.default_value = "5s",
			.min = 100,
			.max = MS_PER_H,
			.reloadable = true,
			.help = "send a PING on a connection that has sent nothing for this long",
		},
		{
			.name = "keepalive_timeout",
			.type = CONFIG_TYPE_DURATION,
			FIELD(keepalive_timeout_ms),
			.default_value = "30s",
			.min = 1000,
			.max = MS_PER_D,
			.reloadable = true,
			.help = "close a connection that has received nothing for this long (a dead or stuck peer)",
		},
		{
			.name = "checkpoint_interval",
			.type = CONFIG_TYPE_DURATION,
			FIELD(checkpoint_interval_ms),
			.default_value = "1s",
			.min = 0,
			.max = MS_PER_H,
			.reloadable = true,
			.help = "replica: make a file being received durable this often, so a transfer cut by a crash resumes there (0: only when the connection is lost)",
		},
		{
			.name = "retain_time",
			.type = CONFIG_TYPE_DURATION,
			FIELD(retain_time_ms),
			.default_value = "0",
			.min = 0,
			.max = 24 * MS_PER_D,
			.reloadable = true,
			.help = "replica: keep at least the WAL stored within this window (by when each file was stored); older files may be removed, oldest first, unless retain_size or a standby still needs them (0: no time guarantee; with retain_size 0 too, nothing is ever removed)",
		},
		{
			.name = "retain_size",
			.type = CONFIG_TYPE_SIZE_MB,
			FIELD(retain_size_mb),
			.default_value = "0",
			.min = 0,
			.max = 1024 * 1024 * 1024,
			.reloadable = true,
			.help = "replica: keep at least the newest this many bytes of WAL, as wal_keep_size; older files may be removed, oldest first, unless retain_time or a standby still needs them (0: no size guarantee; with retain_time 0 too, nothing is ever removed)",
		},
		{
			.name = "max_inflight_files",
			.type = CONFIG_TYPE_INT,
			FIELD(max_inflight_files),
			.default_value = "8",
			.min = 1,
			.max = WIRE_MAX_INFLIGHT_FILES, /* what a replica accepts */
			.help = "WAL files in flight at once on one connection",
		},
		{
			.name = "max_queued_pushes",
			.type = CONFIG_TYPE_INT,
			FIELD(max_queued_pushes),
			.default_value = "64",
			.min = 1,
			.max = 4096,
			.help = "pushes that may wait in the queue; further pushes are refused until it drains",
		},
		{
			.name = "io_buffers",
			.type = CONFIG_TYPE_INT,
			FIELD(io_buffers),
			.default_value = "32",
			.min = 4,
			.max = 1024,
			.help = "1 MiB buffers registered with io_uring (on a relay, its sends to "
				"downstream replicas hold at most half of them)",
		},
		{
			.name = "hba_file",
			.type = CONFIG_TYPE_PATH,
			FIELD(hba_file),
			.default_value = "",
			.reloadable = true,
			.help = "access rules, like pg_hba.conf (docs/security.md): on a primary for replicas (empty: every replica that reaches listen is admitted), on a replica for standbys on pg_listen (required there)",
		},
		{
			.name = "tls",
			.type = CONFIG_TYPE_BOOL,
			FIELD(tls),
			.default_value = "on",
			.help = "TLS 1.3 with mutual certificate authentication between walshipd peers, and TLS for the standbys on pg_listen that ask for it (SSLRequest); off (plaintext) only when set explicitly",
		},
		{
			.name = "tls_ca_file",
			.type = CONFIG_TYPE_PATH,
			FIELD(tls_ca_file),
			.default_value = "",
			.help = "PEM file of the CA whose certificates peers must present, and standbys may present on pg_listen (tls = on)",
		},
		{
			.name = "tls_cert_file",
			.type = CONFIG_TYPE_PATH,
			FIELD(tls_cert_file),
			.default_value = "",
			.help = "PEM certificate chain of this node; its common name is its node name (tls = on)",
		},
		{
			.name = "tls_key_file",
			.type = CONFIG_TYPE_PATH,
			FIELD(tls_key_file),
			.default_value = "",
			.help = "PEM private key of tls_cert_file (tls = on)",
		},
		{
			.name = "ktls",
			.type = CONFIG_TYPE_ENUM,
			FIELD(ktls),
			.default_value = "auto",
			.values = config_switch_values,
			.help = "hand TLS records to the kernel after the handshake (kernel TLS, the tls module): on (required), off, or auto (where the kernel has it)",
		},
		{
			.name = "zero_copy",
			.type = CONFIG_TYPE_ENUM,
			FIELD(zero_copy),
			.default_value = "auto",
			.values = config_switch_values,
			.help = "send with io_uring SEND_ZC: on, off, or auto (copying sends where the kernel copies)",
		},
		{
			.name = "send_source",
			.type = CONFIG_TYPE_ENUM,
			FIELD(send_source),
			.default_value = "buffers",
			.values = config_send_source_values,
			.help = "primary: send WAL from a read-only mapping of the file (map) or read it into registered buffers first (buffers)",
		},
		{
			.name = "probes",
			.type = CONFIG_TYPE_ENUM,
			FIELD(probes),
			.default_value = "auto",
			.values = config_switch_values,
			.help = "BPF latency probes (fsync, send): on (refuse to start without them), off, or auto (on when the kernel and privileges allow)",
		},
		{
			.name = "sysfs",
			.type = CONFIG_TYPE_ENUM,
			FIELD(sysfs),
			.default_value = "auto",
			.values = config_switch_values,
			.help = "publish state to walship.ko under /sys/kernel/walship: on (refuse to start without the module, or without CAP_NET_ADMIN), off, or auto (whenever the module is loaded, also later)",
		},
		{
			.name = "bpf_keep_pins",
			.type = CONFIG_TYPE_BOOL,
			FIELD(bpf_keep_pins),
			.default_value = "off",
			.help = "leave the probes' histograms pinned under /sys/fs/bpf/walship after exit (a restart goes on counting in them)",
		},
		{
			.name = "metrics_listen",
			.type = CONFIG_TYPE_STRING,
			FIELD(metrics_listen),
			.default_value = "",
			.check = config_check_address,
			.range_doc = "host:port, or empty",
			.help = "address serving Prometheus metrics at /metrics over HTTP; empty: off",
		},
		{
			.name = "relay",
			.type = CONFIG_TYPE_BOOL,
			FIELD(relay),
			.default_value = "off",
			.help = "replica: accept downstream walship replicas on listen (their upstream pointing here) and relay to them the WAL durable on this replica, whole files and the stream (a cascade: primary, this replica, downstream replicas); a replica whose file sets listen relays unless it sets relay = off",
		},
		{
			.name = "pg_listen",
			.type = CONFIG_TYPE_STRING,
			FIELD(pg_listen),
			.default_value = "",
			.check = config_check_address,
			.range_doc = "host:port, or empty",
			.help = "replica: address on which PostgreSQL standbys stream WAL from this replica with PostgreSQL's replication protocol (primary_conninfo pointing here; hba_file must admit them, role standby); empty: off",
		},
		{
			.name = "pg_password_file",
			.type = CONFIG_TYPE_PATH,
			FIELD(pg_password_file),
			.default_value = "",
			.reloadable = true,
			.help = "replica: SCRAM-SHA-256 verifiers of the standbys' users on pg_listen, one \"USER VERIFIER\" per line as walship password USER prints them (hba_file method scram-sha-256); owned by the daemon's user (mode 0600 or less) or root (0640 or less, group walship under the package's unit, so that walshipd can read it); empty: none",
		},
		{
			.name = "standby_delay",
			.type = CONFIG_TYPE_STRING,
			FIELD(standby_delay),
			.default_value = "",
			.check = config_check_standby_delay,
			.range_doc =
				"NAME:DURATION[,NAME:DURATION...], at most 32 entries, each NAME at most 63 bytes (PostgreSQL's NAMEDATALEN - 1) and DURATION at most 2147483647 ms (24 days 20 h, as `recovery_min_apply_delay`), or empty",
			.reloadable = true,
			.help = "replica: delays of standbys on pg_listen by application name (printable ASCII, as PostgreSQL cleans it): each is sent WAL only up to the last commit at least that old, as recovery_min_apply_delay measures (docs/operations.md, delayed and held standbys); empty: none",
		},
		{
			.name = "log_level",
			.type = CONFIG_TYPE_LOG_LEVEL,
			FIELD(log_level),
			.default_value = "log",
			.reloadable = true,
			.help = "least severe message level written to the log",
		},
	};

#define CONFIG_KEY_COUNT (ARRAY_SIZE(config_keys))

static const char *const config_type_names[] = {
	[CONFIG_TYPE_STRING] = "string",    [CONFIG_TYPE_PATH] = "path",
	[CONFIG_TYPE_INT] = "integer",	    [CONFIG_TYPE_BOOL] = "boolean",
	[CONFIG_TYPE_ENUM] = "enum",	    [CONFIG_TYPE_DURATION] = "duration",
	[CONFIG_TYPE_OCTAL] = "octal mode", [CONFIG_TYPE_LOG_LEVEL] = "enum",
	[CONFIG_TYPE_SIZE_MB] = "size",
};

static const char *const config_log_level_values = "debug, info, log, warning, error, fatal";

/* ---- field access ---- */

static int *config_int_field(struct config *cfg, const struct config_key *key)
{
	return (int *)((char *)cfg + key->offset);
}

static int config_int_value(const struct config *cfg, const struct config_key *key)
{
	return *(const int *)((const char *)cfg + key->offset);
}

static char *config_string_field(struct config *cfg, const struct config_key *key)
{
	return (char *)cfg + key->offset;
}

static const char *config_string_value(const struct config *cfg, const struct config_key *key)
{
	return (const char *)cfg + key->offset;
}

static bool config_is_string(const struct config_key *key)
{
	return key->type == CONFIG_TYPE_STRING || key->type == CONFIG_TYPE_PATH;
}

static const struct config_key *config_find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++)
		if (strlen(config_keys[i].name) == len &&
		    strncasecmp(config_keys[i].name, name, len) == 0)
			return &config_keys[i];
	return NULL;
}

/* ---- value parsers: text to number, no logging ---- */

/* Decimal integer, optional sign, nothing else. */
static bool config_parse_integer(const char *text, long long *out)
{
	char *end;

	if (!isdigit((unsigned char)text[0]) && text[0] != '-' && text[0] != '+')
		return false;
	errno = 0;
	*out = strtoll(text, &end, 10);
	return errno == 0 && end != text && *end == '\0';
}

static bool config_parse_bool(const char *text, bool *out)
{
	static const char *const truths[] = { "on", "true", "yes", "1" };
	static const char *const lies[] = { "off", "false", "no", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(text, truths[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(text, lies[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

bool config_parse_duration(const char *text, long long *out_ms)
{
	static const struct {
		const char *unit;
		long long ms;
	} units[] = {
		{ "ms", 1 },	   { "s", MS_PER_S }, { "min", MS_PER_MIN },
		{ "h", MS_PER_H }, { "d", MS_PER_D },
	};
	const char *p = text;
	long long number = 0;

	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p)) {
		if (number > (LLONG_MAX - 9) / 10)
			return false;
		number = number * 10 + (*p++ - '0');
	}
	while (*p == ' ')
		p++;
	if (*p == '\0') {
		*out_ms = number;
		return true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(p, units[i].unit) == 0) {
			if (number > LLONG_MAX / units[i].ms)
				return false;
			*out_ms = number * units[i].ms;
			return true;
		}
	}
	return false;
}

int config_standby_delay(const char *text, const char *app, long long *delay_ms)
{
	const char *p = text;
	unsigned int entries = 0;

	while (*p) {
		const char *colon = strchr(p, ':'), *end = strchr(p, ',');
		char duration[32];
		long long ms;
		size_t name_len, len;

		if (!end)
			end = p + strlen(p);
		if (!colon || colon > end || colon == p ||
		    ++entries > CONFIG_STANDBY_DELAY_MAX_ENTRIES)
			return -EINVAL;
		name_len = (size_t)(colon - p);
		/* Longer, it would never match: PostgreSQL cuts the name its standby sends. */
		if (name_len >= CONFIG_PG_NAMEDATALEN)
			return -EINVAL;
		/* A standby's application_name is printable ASCII (PostgreSQL's
		 * pg_clean_ascii() makes any other byte '?', and pg_listen does too): a name
		 * with other bytes would never match, and its standby go undelayed. */
		for (size_t i = 0; i < name_len; i++)
			if (p[i] < 0x20 || p[i] > 0x7e)
				return -EINVAL;
		len = (size_t)(end - colon - 1);
		if (len == 0 || len >= sizeof(duration))
			return -EINVAL;
		memcpy(duration, colon + 1, len);
		duration[len] = '\0';
		if (!config_parse_duration(duration, &ms) || ms > CONFIG_STANDBY_DELAY_MAX_MS)
			return -EINVAL;
		if (app && strlen(app) == name_len && !strncmp(app, p, name_len)) {
			*delay_ms = ms;
			return 0;
		}
		p = *end ? end + 1 : end;
	}
	return -ENOENT;
}

static bool config_check_standby_delay(const struct config_value *value,
				       struct config_problem *problem)
{
	if (config_standby_delay(value->text, NULL, NULL) != -EINVAL)
		return true;
	snprintf(problem->detail, sizeof(problem->detail),
		 "Each entry is NAME:DURATION, as sb1:20s or sb2:1h, separated by commas, at "
		 "most %d of them; a name is printable ASCII (as PostgreSQL cleans "
		 "application_name: write other characters as '?') of at most %d bytes; a "
		 "duration is at most %lld ms, as recovery_min_apply_delay's.",
		 CONFIG_STANDBY_DELAY_MAX_ENTRIES, CONFIG_PG_NAMEDATALEN - 1,
		 (long long)CONFIG_STANDBY_DELAY_MAX_MS);
	return false;
}

/* Integer with an optional unit (MB, GB, TB; none means MB), in megabytes. */
static bool config_parse_size_mb(const char *text, long long *out_mb)
{
	static const struct {
		const char *unit;
		long long mb;
	} units[] = { { "MB", 1 }, { "GB", 1024 }, { "TB", 1024 * 1024 } };
	const char *p = text;
	long long number = 0;

	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p)) {
		if (number > (LLONG_MAX - 9) / 10)
			return false;
		number = number * 10 + (*p++ - '0');
	}
	while (*p == ' ')
		p++;
	if (*p == '\0') {
		*out_mb = number;
		return true;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(p, units[i].unit) == 0) {
			if (number > LLONG_MAX / units[i].mb)
				return false;
			*out_mb = number * units[i].mb;
			return true;
		}
	}
	return false;
}

/* Largest unit that divides @mb exactly: "2048MB" prints as "2GB". */
static void config_format_size_mb(long long mb, char *buf, size_t len)
{
	if (mb != 0 && mb % (1024 * 1024) == 0)
		snprintf(buf, len, "%lldTB", mb / (1024 * 1024));
	else if (mb != 0 && mb % 1024 == 0)
		snprintf(buf, len, "%lldGB", mb / 1024);
	else
		snprintf(buf, len, "%lldMB", mb);
}

/* Octal digits only, as chmod takes them ("660" and "0660" are the same). */
static bool config_parse_octal(const char *text, long long *out)
{
	long long number = 0;

	if (*text == '\0' || strlen(text) > 12)
		return false;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '7')
			return false;
		number = number * 8 + (*p - '0');
	}
	*out = number;
	return true;
}

/* Largest unit that divides @ms exactly: "60s" prints as "1min". */
static void config_format_duration(long long ms, char *buf, size_t len)
{
	if (ms != 0 && ms % MS_PER_D == 0)
		snprintf(buf, len, "%lldd", ms / MS_PER_D);
	else if (ms != 0 && ms % MS_PER_H == 0)
		snprintf(buf, len, "%lldh", ms / MS_PER_H);
	else if (ms != 0 && ms % MS_PER_MIN == 0)
		snprintf(buf, len, "%lldmin", ms / MS_PER_MIN);
	else if (ms != 0 && ms % MS_PER_S == 0)
		snprintf(buf, len, "%llds", ms / MS_PER_S);
	else
		snprintf(buf, len, "%lldms", ms);
}

static void config_enum_list(const struct config_key *key, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	if (key->type == CONFIG_TYPE_LOG_LEVEL) {
		snprintf(buf, len, "%s", config_log_level_values);
		return;
	}
	for (const struct config_enum_value *v = key->values; v->name && used < len; v++) {
		int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", v->name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static bool config_parse_enum(const struct config_key *key, const char *text, long long *out)
{
	const struct config_enum_value *on = NULL, *off = NULL;
	bool flag;

	for (const struct config_enum_value *v = key->values; v->name; v++) {
		if (strcasecmp(text, v->name) == 0) {
			*out = v->value;
			return true;
		}
		if (strcmp(v->name, "on") == 0)
			on = v;
		else if (strcmp(v->name, "off") == 0)
			off = v;
	}
	if (on && off && config_parse_bool(text, &flag)) {
		*out = flag ? on->value : off->value;
		return true;
	}
	return false;
}

/* Bounds in the key's own notation, e.g. "100ms .. 1d" or "1 .. 64". */
static void config_format_bound(const struct config_key *key, long long number, char *buf,
				size_t len)
{
	if (key->type == CONFIG_TYPE_DURATION)
		config_format_duration(number, buf, len);
	else if (key->type == CONFIG_TYPE_SIZE_MB)
		config_format_size_mb(number, buf, len);
	else if (key->type == CONFIG_TYPE_OCTAL)
		snprintf(buf, len, "%04llo", number);
	else
		snprintf(buf, len, "%lld", number);
}

/*
 * Parse @text for @key into @value.  Returns false with @problem filled when the text is
 * not a valid value for the key (syntax, bounds, or the key's own check).
 */
static bool config_parse_value(const struct config_key *key, const char *text,
			       struct config_value *value, struct config_problem *problem)
{
	char low[32], high[32], list[128];
	bool flag;
	bool parsed;

	problem->detail[0] = '\0';
	problem->hint[0] = '\0';
	value->text = text;
	value->number = 0;

	switch (key->type) {
	case CONFIG_TYPE_STRING:
	case CONFIG_TYPE_PATH: {
		size_t len = strlen(text);

		if (len >= key->size) {
			snprintf(problem->detail, sizeof(problem->detail),
				 "The value is %zu bytes long; at most %zu are allowed.", len,
				 key->size - 1);
			return false;
		}
		if ((long long)len < key->min) {
			snprintf(problem->detail, sizeof(problem->detail),
				 "The value must not be empty.");
			return false;
		}
		for (const char *p = text; *p; p++) {
			if (iscntrl((unsigned char)*p)) {
				snprintf(problem->detail, sizeof(problem->detail),
					 "The value contains a control character.");
				return false;
			}
		}
		/* walshipd and the walship command (run by PostgreSQL in its data
		 * directory) would find a relative path in different places. */
		if (key->type == CONFIG_TYPE_PATH && len && text[0] != '/') {
			snprintf(problem->detail, sizeof(problem->detail),
				 "A path must be absolute: walshipd and the walship command, "
				 "which PostgreSQL runs in its data directory, would resolve a "
				 "relative one in different directories.");
			return false;
		}
		break;
	}
	case CONFIG_TYPE_BOOL:
		if (!config_parse_bool(text, &flag)) {
			snprintf(problem->hint, sizeof(problem->hint),
				 "Valid values are on, off, true, false, yes, no, 1 and 0.");
			return false;
		}
		value->number = flag;
		break;
	case CONFIG_TYPE_ENUM:
	case CONFIG_TYPE_LOG_LEVEL:
		if (key->type == CONFIG_TYPE_ENUM) {
			parsed = config_parse_enum(key, text, &value->number);
		} else {
			enum log_level level;

			parsed = log_level_parse(text, &level) == 0;
			value->number = level;
		}
		if (!parsed) {
			config_enum_list(key, list, sizeof(list));
			snprintf(problem->hint, sizeof(problem->hint), "Available values: %s.",
				 list);
			return false;
		}
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_DURATION:
	case CONFIG_TYPE_SIZE_MB:
	case CONFIG_TYPE_OCTAL:
		config_format_bound(key, key->min, low, sizeof(low));
		config_format_bound(key, key->max, high, sizeof(high));
		if (key->type == CONFIG_TYPE_INT)
			parsed = config_parse_integer(text, &value->number);
		else if (key->type == CONFIG_TYPE_DURATION)
			parsed = config_parse_duration(text, &value->number);
		else if (key->type == CONFIG_TYPE_SIZE_MB)
			parsed = config_parse_size_mb(text, &value->number);
		else
			parsed = config_parse_octal(text, &value->number);
		if (!parsed) {
			if (key->type == CONFIG_TYPE_DURATION)
				snprintf(
					problem->hint, sizeof(problem->hint),
					"Valid units for this parameter are \"ms\", \"s\", \"min\", \"h\", and \"d\"; a number without a unit is in milliseconds.");
			else if (key->type == CONFIG_TYPE_OCTAL)
				snprintf(
					problem->hint, sizeof(problem->hint),
					"Write the mode in octal digits, as chmod takes it, between %s and %s.",
					low, high);
			else if (key->type == CONFIG_TYPE_SIZE_MB)
				snprintf(
					problem->hint, sizeof(problem->hint),
					"Valid units for this parameter are \"MB\", \"GB\", and \"TB\"; a number without a unit is in megabytes.");
			else
				snprintf(problem->hint, sizeof(problem->hint),
					 "Valid values are integers between %s and %s.", low, high);
			return false;
		}
		if (value->number < key->min || value->number > key->max) {
			snprintf(
				problem->detail, sizeof(problem->detail),
				"The value is outside the valid range for this parameter (%s .. %s).",
				low, high);
			return false;
		}
		break;
	}
	if (key->check && !key->check(value, problem))
		return false;
	return true;
}

static void config_store_value(struct config *cfg, const struct config_key *key,
			       const struct config_value *value)
{
	switch (key->type) {
	case CONFIG_TYPE_STRING:
	case CONFIG_TYPE_PATH:
		snprintf(config_string_field(cfg, key), key->size, "%s", value->text);
		break;
	case CONFIG_TYPE_BOOL:
		*(bool *)((char *)cfg + key->offset) = value->number != 0;
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_ENUM:
	case CONFIG_TYPE_DURATION:
	case CONFIG_TYPE_SIZE_MB:
	case CONFIG_TYPE_OCTAL:
	case CONFIG_TYPE_LOG_LEVEL:
		*config_int_field(cfg, key) = (int)value->number;
		break;
	}
}

/* The field's value as text, unquoted ("" for an unset required key). */
static void config_format_value(const struct config *cfg, const struct config_key *key, char *buf,
				size_t len)
{
	int number;

	buf[0] = '\0';
	switch (key->type) {
	case CONFIG_TYPE_STRING:
	case CONFIG_TYPE_PATH:
		snprintf(buf, len, "%s", config_string_value(cfg, key));
		break;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, len, "%s",
			 *(const bool *)((const char *)cfg + key->offset) ? "on" : "off");
		break;
	case CONFIG_TYPE_INT:
		snprintf(buf, len, "%d", config_int_value(cfg, key));
		break;
	case CONFIG_TYPE_DURATION:
		config_format_duration(config_int_value(cfg, key), buf, len);
		break;
	case CONFIG_TYPE_SIZE_MB:
		config_format_size_mb(config_int_value(cfg, key), buf, len);
		break;
	case CONFIG_TYPE_OCTAL:
		snprintf(buf, len, "%04o", (unsigned int)config_int_value(cfg, key));
		break;
	case CONFIG_TYPE_ENUM:
		number = config_int_value(cfg, key);
		for (const struct config_enum_value *v = key->values; v->name; v++) {
			if (v->value == number) {
				snprintf(buf, len, "%s", v->name);
				break;
			}
		}
		break;
	case CONFIG_TYPE_LOG_LEVEL:
		snprintf(buf, len, "%s",
			 log_level_name((enum log_level)config_int_value(cfg, key)));
		break;
	}
}

static bool config_values_equal(const struct config *a, const struct config *b,
				const struct config_key *key)
{
	if (config_is_string(key))
		return strcmp(config_string_value(a, key), config_string_value(b, key)) == 0;
	if (key->type == CONFIG_TYPE_BOOL)
		return *(const bool *)((const char *)a + key->offset) ==
		       *(const bool *)((const char *)b + key->offset);
	return config_int_value(a, key) == config_int_value(b, key);
}

/* ---- per-key checks ---- */

static bool config_check_node_name(const struct config_value *value, struct config_problem *problem)
{
	if (node_name_valid(value->text))
		return true;
	snprintf(problem->detail, sizeof(problem->detail), "A node name is %s.",
		 WALSHIP_NODE_NAME_RULE);
	return false;
}

static bool config_check_upstream_name(const struct config_value *value,
				       struct config_problem *problem)
{
	return !value->text[0] || config_check_node_name(value, problem);
}

static bool config_check_address(const struct config_value *value, struct config_problem *problem)
{
	if (value->text[0] == '\0') /* keys that must not be empty have min = 1 */
		return true;
	if (config_split_address(value->text, NULL, 0, NULL) == 0)
		return true;
	snprintf(
		problem->detail, sizeof(problem->detail),
		"An address is host:port, or [address]:port for IPv6, with a port between 1 and 65535.");
	return false;
}

static bool config_check_socket_mode(const struct config_value *value,
				     struct config_problem *problem)
{
	if ((value->number & 0007) == 0)
		return true;
	snprintf(
		problem->detail, sizeof(problem->detail),
		"Mode %04llo lets every local user reach the control socket, and with it walship push and fetch.",
		value->number);
	snprintf(
		problem->hint, sizeof(problem->hint),
		"Use a mode without bits for others, such as 0660, and socket_group to admit a group.");
	return false;
}

/* PostgreSQL's rule for replication slot names (ReplicationSlotValidateName()). */
static bool config_check_slot_name(const struct config_value *value, struct config_problem *problem)
{
	const char *p = value->text;

	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			break;
	if (*p == '\0' && p - value->text <= CONFIG_MAX_NAME - 1)
		return true;
	snprintf(
		problem->detail, sizeof(problem->detail),
		"Replication slot names may only contain lower case letters, numbers, and the underscore character, at most %d of them.",
		CONFIG_MAX_NAME - 1);
	return false;
}

/* PostgreSQL keeps application_name to printable ASCII (check_application_name()). */
static bool config_check_application_name(const struct config_value *value,
					  struct config_problem *problem)
{
	for (const char *p = value->text; *p; p++) {
		if (*p >= 32 && *p <= 126)
			continue;
		snprintf(problem->detail, sizeof(problem->detail),
			 "An application name is printable ASCII characters only.");
		return false;
	}
	return true;
}

/* Host name, with characters a node name may not hold turned into "_" (node_name.h). */
static void config_default_node_name(char *buf, size_t len)
{
	char host[256] = "";

	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	node_name_from_text(host, buf, len);
	if (buf[0] == '\0')
		snprintf(buf, len, "walship");
}
/* ---- defaults ---- */

/* role has no default: an int that is neither enum value marks it unset. */
#define CONFIG_UNSET (-1)

void config_defaults(struct config *cfg)
{
	char computed[CONFIG_MAX_ADDR];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];
		const char *text = key->default_value;
		struct config_problem problem;
		struct config_value value;

		if (key->default_fn) {
			key->default_fn(computed, sizeof(computed));
			text = computed;
		}
		if (!text) {
			*config_int_field(cfg, key) = CONFIG_UNSET;
			continue;
		}
		if (!config_parse_value(key, text, &value, &problem)) {
			/* A bad table entry: the build is wrong, not the operator. */
			log_fatal("default \"%s\" of parameter \"%s\" is invalid", text, key->name);
			abort();
		}
		config_store_value(cfg, key, &value);
	}
}

/* ---- parsing ---- */

struct config_parser {
	struct config *cfg;
	const char *source;
	int line;
	int errors;
	int first_line[CONFIG_KEY_COUNT]; /* where each key was set, 0 = not yet */
};

/* " in file "x" line N" (or less when the source or line is not known). */
static void config_where(char *buf, size_t len, const char *source, int line)
{
	if (source && line > 0)
		snprintf(buf, len, " in file \"%s\" line %d", source, line);
	else if (source)
		snprintf(buf, len, " in file \"%s\"", source);
	else
		buf[0] = '\0';
}

static void config_report_problem(const struct config_problem *problem)
{
	if (problem->detail[0])
		log_detail("%s", problem->detail);
	if (problem->hint[0])
		log_hint("%s", problem->hint);
}

static void config_report_invalid(const struct config_key *key, const char *text,
				  const struct config_problem *problem, const char *source,
				  int line)
{
	char where[PATH_MAX + 64];

	config_where(where, sizeof(where), source, line);
	log_error("invalid value for parameter \"%s\": \"%s\"%s", key->name, text, where);
	config_report_problem(problem);
}

static bool config_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static const char *config_skip_space(const char *p, const char *end)
{
	while (p < end && config_is_space(*p))
		p++;
	return p;
}

static bool config_is_key_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' ||
	       (!first && (isdigit((unsigned char)c) || c == '.' || c == '-'));
}

static void config_syntax_error(struct config_parser *parser, const char *p, const char *end)
{
	const char *token_end = p;

	parser->errors++;
	if (p >= end || *p == '#') {
		log_error("syntax error in file \"%s\" line %d, near end of line", parser->source,
			  parser->line);
		return;
	}
	if (*p == '\'') {
		token_end = p + 1;
		while (token_end < end && *token_end != '\'')
			token_end++;
		if (token_end < end)
			token_end++;
	} else {
		while (token_end < end && !config_is_space(*token_end) && *token_end != '#' &&
		       *token_end != '\'' && *token_end != '=')
			token_end++;
		if (token_end == p)
			token_end++;
	}
	log_error("syntax error in file \"%s\" line %d, near token \"%.*s\"", parser->source,
		  parser->line, (int)(token_end - p), p);
}

/* One line, [@p, @end).  @value_buf holds at least end - p + 1 bytes. */
static void config_parse_line(struct config_parser *parser, const char *p, const char *end,
			      char *value_buf)
{
	const char *name, *name_end;
	const struct config_key *key;
	struct config_problem problem;
	struct config_value value;
	char where[PATH_MAX + 64];
	size_t value_len = 0;
	size_t index;

	p = config_skip_space(p, end);
	if (p >= end || *p == '#')
		return;
	if (!config_is_key_char(*p, true)) {
		config_syntax_error(parser, p, end);
		return;
	}
	name = p;
	while (p < end && config_is_key_char(*p, false))
		p++;
	name_end = p;
	p = config_skip_space(p, end);
	if (p < end && *p == '=')
		p = config_skip_space(p + 1, end);
	if (p >= end || *p == '#') {
		config_syntax_error(parser, p, end);
		return;
	}
	if (*p == '\'') {
		const char *quote = p++;

		for (;;) {
			if (p >= end) {
				parser->errors++;
				log_error(
					"unterminated quoted string in file \"%s\" line %d, near token \"%.*s\"",
					parser->source, parser->line, (int)(end - quote), quote);
				return;
			}
			if (*p == '\'') {
				if (p + 1 < end && p[1] == '\'') {
					value_buf[value_len++] = '\'';
					p += 2;
					continue;
				}
				p++;
				break;
			}
			value_buf[value_len++] = *p++;
		}
	} else {
		while (p < end && !config_is_space(*p) && *p != '#' && *p != '\'')
			value_buf[value_len++] = *p++;
	}
	value_buf[value_len] = '\0';
	p = config_skip_space(p, end);
	if (p < end && *p != '#') {
		config_syntax_error(parser, p, end);
		return;
	}

	config_where(where, sizeof(where), parser->source, parser->line);
	key = config_find_key(name, (size_t)(name_end - name));
	if (!key) {
		parser->errors++;
		log_error("unrecognized configuration parameter \"%.*s\"%s", (int)(name_end - name),
			  name, where);
		return;
	}
	index = (size_t)(key - config_keys);
	if (parser->first_line[index]) {
		parser->errors++;
		log_error("parameter \"%s\" specified more than once%s", key->name, where);
		log_detail("It was first set on line %d.", parser->first_line[index]);
		return;
	}
	parser->first_line[index] = parser->line;
	if (!config_parse_value(key, value_buf, &value, &problem)) {
		parser->errors++;
		config_report_invalid(key, value_buf, &problem, parser->source, parser->line);
		return;
	}
	config_store_value(parser->cfg, key, &value);
}

/* Set in the file or not, by name (a key of the table). */
static bool config_key_set(const struct config_parser *parser, const char *name)
{
	const struct config_key *key = config_find_key(name, strlen(name));

	return key && parser->first_line[key - config_keys] != 0;
}

/* A replica whose file sets listen relays (its downstream replicas connect there) unless
 * the file says relay = off: listen has a default, so only setting it says so. */
static void config_relay_default(struct config_parser *parser)
{
	if (parser->cfg->role == CONFIG_ROLE_REPLICA && config_key_set(parser, "listen") &&
	    !config_key_set(parser, "relay"))
		parser->cfg->relay = true;
}

/* Parse @len bytes of @text (may hold NULs: they are reported) into @cfg, all or nothing. */
static int config_parse_buffer(struct config *cfg, const char *text, size_t len,
			       const char *source_name)
{
	struct config_parser parser = { .source = source_name ? source_name : "(unnamed)" };
	const char *p = text, *end = text + len;
	char *value_buf;
	int ret = -EINVAL;

	parser.cfg = malloc(sizeof(*parser.cfg));
	value_buf = malloc(len + 1);
	if (!parser.cfg || !value_buf) {
		log_error("out of memory");
		ret = -ENOMEM;
		goto out_free;
	}
	*parser.cfg = *cfg;

	while (p < end) {
		const char *line_end = memchr(p, '\n', (size_t)(end - p));

		if (!line_end)
			line_end = end;
		parser.line++;
		if (memchr(p, '\0', (size_t)(line_end - p))) {
			parser.errors++;
			log_error("invalid NUL byte in file \"%s\" line %d", parser.source,
				  parser.line);
		} else {
			config_parse_line(&parser, p, line_end, value_buf);
		}
		if (parser.errors >= CONFIG_MAX_ERRORS) {
			log_error("too many errors found, abandoning file \"%s\"", parser.source);
			break;
		}
		p = line_end + 1;
	}
	if (parser.errors)
		goto out_free;
	config_relay_default(&parser);
	ret = config_validate(parser.cfg, parser.source);
	if (ret < 0)
		goto out_free;
	*cfg = *parser.cfg;
	ret = 0;
out_free:
	free(value_buf);
	free(parser.cfg);
	return ret;
}

int config_parse_string(struct config *cfg, const char *text, const char *source_name)
{
	return config_parse_buffer(cfg, text, strlen(text), source_name);
}

int config_load(struct config *cfg, const char *path)
{
	char *text;
	size_t len;
	int ret = textfile_read(path, "configuration file", CONFIG_MAX_FILE_SIZE, &text, &len);

	if (ret < 0)
		return ret;
	ret = config_parse_buffer(cfg, text, len, path);
	free(text);
	return ret;
}

/* ---- validation ---- */

int config_validate(const struct config *cfg, const char *source_name)
{
	char where[PATH_MAX + 64];
	char text[PATH_MAX];
	int errors = 0;

	config_where(where, sizeof(where), source_name, 0);

	/* Every key on its own, through the same parser as the file. */
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];
		struct config_problem problem;
		struct config_value value;

		if (key->default_value == NULL && !key->default_fn &&
		    config_int_value(cfg, key) == CONFIG_UNSET) {
			errors++;
			log_error("parameter \"%s\" is required%s", key->name, where);
			if (key == &config_keys[0])
				log_hint("Set role = primary or role = replica.");
			continue;
		}
		config_format_value(cfg, key, text, sizeof(text));
		if (!config_parse_value(key, text, &value, &problem)) {
			errors++;
			config_report_invalid(key, text, &problem, source_name, 0);
		}
	}
	if (errors)
		return -EINVAL;

	if (cfg->role == CONFIG_ROLE_REPLICA) {
		if (cfg->upstream[0] == '\0') {
			errors++;
			log_error("parameter \"upstream\" is required when role is replica%s",
				  where);
			log_hint("Set upstream to the primary's host:port.");
		}
		if (cfg->archive_dir[0] == '\0') {
			errors++;
			log_error("parameter \"archive_dir\" is required when role is replica%s",
				  where);
			log_hint("Set archive_dir to the directory that keeps the received WAL.");
		}
	}
	if (cfg->role == CONFIG_ROLE_REPLICA && cfg->pg_conninfo[0] != '\0') {
		errors++;
		log_error("parameter \"pg_conninfo\" can only be set when role is primary%s",
			  where);
		log_detail("A replica receives WAL from its upstream walshipd.");
	}
	if (cfg->role == CONFIG_ROLE_PRIMARY && cfg->relay) {
		errors++;
		log_error("parameter \"relay\" can only be set when role is replica%s", where);
		log_detail("A primary always accepts replicas on listen.");
	}
	if (cfg->role == CONFIG_ROLE_PRIMARY && cfg->pg_listen[0] != '\0') {
		errors++;
		log_error("parameter \"pg_listen\" can only be set when role is replica%s", where);
		log_detail("PostgreSQL standbys stream from a replica's archive; on the primary "
			   "host they stream from PostgreSQL itself.");
	}
	if (cfg->role == CONFIG_ROLE_REPLICA && cfg->pg_listen[0] != '\0' &&
	    cfg->hba_file[0] == '\0') {
		errors++;
		log_error("parameter \"hba_file\" is required when pg_listen is set%s", where);
		log_hint("Admit the standbys with a rule of role standby, e.g. "
			 "\"hostnossl standby replicator all 10.0.0.0/24\".");
	}
	if (cfg->keepalive_timeout_ms <= cfg->keepalive_interval_ms) {
		char interval[32], timeout[32];

		config_format_duration(cfg->keepalive_interval_ms, interval, sizeof(interval));
		config_format_duration(cfg->keepalive_timeout_ms, timeout, sizeof(timeout));
		errors++;
		log_error("\"keepalive_timeout\" (%s) must be longer than \"keepalive_interval\" "
			  "(%s)%s",
			  timeout, interval, where);
	}
	if (cfg->sync_replicas > cfg->max_senders) {
		errors++;
		log_error("\"sync_replicas\" (%d) cannot be greater than \"max_senders\" (%d)%s",
			  cfg->sync_replicas, cfg->max_senders, where);
		log_detail("A push could never be acknowledged by enough replicas.");
	}
	if (cfg->role == CONFIG_ROLE_PRIMARY && cfg->sync_replicas > cfg->max_registered) {
		errors++;
		log_error("\"sync_replicas\" (%d) cannot be greater than \"max_registered\" (%d)%s",
			  cfg->sync_replicas, cfg->max_registered, where);
		log_detail("Every replica that acknowledges is registered first: a push could "
			   "never be acknowledged by enough replicas.");
	}
	if (cfg->role == CONFIG_ROLE_PRIMARY && cfg->spool_delay_ms > 0 &&
	    cfg->spool_delay_ms >= cfg->push_timeout_ms) {
		char delay[32], timeout[32];

		config_format_duration(cfg->spool_delay_ms, delay, sizeof(delay));
		config_format_duration(cfg->push_timeout_ms, timeout, sizeof(timeout));
		errors++;
		log_error("\"spool_delay\" (%s) must be shorter than \"push_timeout\" (%s)%s",
			  delay, timeout, where);
		log_detail("A push waiting spool_delay for a replica to acknowledge would time out "
			   "before it is held in the spool.");
	}
	if (cfg->reconnect_min_ms > cfg->reconnect_max_ms) {
		char low[32], high[32];

		config_format_duration(cfg->reconnect_min_ms, low, sizeof(low));
		config_format_duration(cfg->reconnect_max_ms, high, sizeof(high));
		errors++;
		log_error("\"reconnect_min\" (%s) cannot be greater than \"reconnect_max\" (%s)%s",
			  low, high, where);
	}
	return errors ? -EINVAL : 0;
}

int config_reload(struct config *cur, const struct config *next, const char *source_name)
{
	char text[PATH_MAX];
	struct config merged = *cur;
	int changed = 0;
	int ret;

	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];

		if (config_values_equal(cur, next, key) || !key->reloadable)
			continue;
		if (config_is_string(key))
			memcpy(config_string_field(&merged, key), config_string_value(next, key),
			       key->size);
		else if (key->type == CONFIG_TYPE_BOOL)
			*(bool *)((char *)&merged + key->offset) =
				*(const bool *)((const char *)next + key->offset);
		else
			*config_int_field(&merged, key) = config_int_value(next, key);
	}
	ret = config_validate(&merged, source_name);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];

		if (config_values_equal(cur, next, key))
			continue;
		if (!key->reloadable) {
			log_log("parameter \"%s\" cannot be changed without restarting the server",
				key->name);
			continue;
		}
		config_format_value(next, key, text, sizeof(text));
		log_log("parameter \"%s\" changed to \"%s\"", key->name, text);
		changed++;
	}
	*cur = merged;
	return changed;
}

/* ---- addresses ---- */

const char *config_application_name(const struct config *cfg)
{
	return cfg->application_name[0] ? cfg->application_name : cfg->node_name;
}

int config_split_address(const char *addr, char *host, size_t host_len, uint16_t *port)
{
	const char *host_begin, *host_end, *port_text;
	unsigned long number = 0;

	if (!addr)
		return -EINVAL;
	if (addr[0] == '[') {
		host_begin = addr + 1;
		host_end = strchr(host_begin, ']');
		if (!host_end || host_end[1] != ':')
			return -EINVAL;
		port_text = host_end + 2;
		if (!memchr(host_begin, ':', (size_t)(host_end - host_begin)))
			return -EINVAL; /* brackets are for IPv6 only */
	} else {
		host_begin = addr;
		host_end = strrchr(addr, ':');
		if (!host_end || memchr(addr, ':', (size_t)(host_end - addr)))
			return -EINVAL; /* none, or an IPv6 address without brackets */
		port_text = host_end + 1;
	}
	if (host_end == host_begin)
		return -EINVAL;
	for (const char *p = host_begin; p < host_end; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) || *p == '[' ||
		    *p == ']' || *p == '/')
			return -EINVAL;
	if (*port_text == '\0' || strlen(port_text) > 5)
		return -EINVAL;
	for (const char *p = port_text; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		number = number * 10 + (unsigned long)(*p - '0');
	}
	if (number < 1 || number > 65535)
		return -EINVAL;
	if (host) {
		size_t len = (size_t)(host_end - host_begin);

		if (len >= host_len)
			return -ENAMETOOLONG;
		memcpy(host, host_begin, len);
		host[len] = '\0';
	}
	if (port)
		*port = (uint16_t)number;
	return 0;
}

/* ---- descriptions: --help, dump, Markdown ---- */

/* The default as the docs show it. */
static const char *config_default_doc(const struct config_key *key)
{
	if (key->default_doc)
		return key->default_doc;
	if (!key->default_value)
		return NULL; /* required */
	return key->default_value;
}

/* Allowed values: "1 .. 64", "100ms .. 1d", "primary, replica", "at most 107 bytes". */
static void config_range_doc(const struct config_key *key, char *buf, size_t len, bool markdown)
{
	char low[32], high[32], list[128];
	const char *tick = markdown ? "`" : "";

	if (key->range_doc) {
		if (markdown) {
			snprintf(buf, len, "%s", key->range_doc);
		} else {
			size_t out = 0;

			for (const char *p = key->range_doc; *p && out + 1 < len; p++)
				if (*p != '`')
					buf[out++] = *p;
			buf[out] = '\0';
		}
		return;
	}
	switch (key->type) {
	case CONFIG_TYPE_STRING:
	case CONFIG_TYPE_PATH:
		snprintf(buf, len, "at most %zu bytes", key->size - 1);
		break;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, len, "%son%s, %soff%s", tick, tick, tick, tick);
		break;
	case CONFIG_TYPE_ENUM:
	case CONFIG_TYPE_LOG_LEVEL:
		if (!markdown) {
			config_enum_list(key, buf, len);
		} else {
			size_t used = 0;
			char *save = NULL;

			config_enum_list(key, list, sizeof(list));
			buf[0] = '\0';
			for (char *word = strtok_r(list, ", ", &save); word && used < len;
			     word = strtok_r(NULL, ", ", &save)) {
				int n = snprintf(buf + used, len - used, "%s`%s`", used ? ", " : "",
						 word);

				if (n < 0)
					break;
				used += (size_t)n;
			}
		}
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_DURATION:
	case CONFIG_TYPE_SIZE_MB:
	case CONFIG_TYPE_OCTAL:
		config_format_bound(key, key->min, low, sizeof(low));
		config_format_bound(key, key->max, high, sizeof(high));
		snprintf(buf, len, "%s%s%s to %s%s%s", tick, low, tick, tick, high, tick);
		break;
	}
}

static const char *config_type_doc(const struct config_key *key)
{
	return config_type_names[key->type];
}

void config_print_help(FILE *out)
{
	char range[256];

	fprintf(out, "Configuration file keys (\"key = value\" lines, default file %s):\n",
		CONFIG_DEFAULT_PATH);
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];
		const char *def = config_default_doc(key);

		config_range_doc(key, range, sizeof(range), false);
		fprintf(out, "\n  %s (%s%s; ", key->name, config_type_doc(key),
			key->type == CONFIG_TYPE_DURATION ? ", bare number in ms" :
			key->type == CONFIG_TYPE_SIZE_MB  ? ", bare number in MB" :
							    "");
		if (def && config_is_string(key) && !key->default_doc)
			fprintf(out, "default '%s'", def);
		else if (def)
			fprintf(out, "default %s", def);
		else
			fprintf(out, "required");
		fprintf(out, "; %s; %s)\n      %s\n", range,
			key->reloadable ? "reloads on SIGHUP" : "restart to change", key->help);
	}
}

/* @text single-quoted for the file, '' for each quote. */
static void config_write_quoted(FILE *out, const char *text)
{
	fputc('\'', out);
	for (const char *p = text; *p; p++) {
		if (*p == '\'')
			fputc('\'', out);
		fputc(*p, out);
	}
	fputc('\'', out);
}

void config_dump(const struct config *cfg, FILE *out)
{
	char text[PATH_MAX];

	fprintf(out, "# walshipd configuration: every key with its current value.\n"
		     "# Reference: docs/configuration.md; durations without a unit are in ms.\n");
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];

		fprintf(out, "\n# %s%s\n", key->help, key->reloadable ? "; reloads on SIGHUP" : "");
		if (key->default_value == NULL && !key->default_fn &&
		    config_int_value(cfg, key) == CONFIG_UNSET) {
			config_range_doc(key, text, sizeof(text), false);
			fprintf(out, "#%s =    # required, one of: %s\n", key->name, text);
			continue;
		}
		config_format_value(cfg, key, text, sizeof(text));
		fprintf(out, "%s = ", key->name);
		if (config_is_string(key))
			config_write_quoted(out, text);
		else
			fputs(text, out);
		fputc('\n', out);
	}
}

void config_print_markdown(FILE *out)
{
	char range[256];

	fprintf(out, "| Key | Type | Default | Allowed values | On SIGHUP | Description |\n"
		     "|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];
		const char *def = config_default_doc(key);

		config_range_doc(key, range, sizeof(range), true);
		fprintf(out, "| `%s` | %s | ", key->name, config_type_doc(key));
		if (!def)
			fprintf(out, "*required*");
		else if (key->default_doc)
			fprintf(out, "%s", def);
		else if (def[0] == '\0')
			fprintf(out, "empty");
		else
			fprintf(out, "`%s`", def);
		fprintf(out, " | %s | %s | %s |\n", range, key->reloadable ? "reload" : "restart",
			key->help);
	}
}

/* @text for roff: \ as \e, - as \- (a minus, as in values and paths).  A caller starting
 * a line with it writes \& first, so that no text line is taken for a request. */
static void config_write_roff(FILE *out, const char *text)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			fputs("\\e", out);
		else if (*p == '-')
			fputs("\\-", out);
		else
			fputc(*p, out);
	}
}

void config_print_man(FILE *out)
{
	char range[256];

	for (size_t i = 0; i < CONFIG_KEY_COUNT; i++) {
		const struct config_key *key = &config_keys[i];
		const char *def = config_default_doc(key);

		config_range_doc(key, range, sizeof(range), false);
		fprintf(out, ".TP\n.B ");
		config_write_roff(out, key->name);
		fputs("\n\\&", out);
		config_write_roff(out, key->help);
		fputs(".\n.br\n\\fI", out);
		config_write_roff(out, config_type_doc(key));
		fputs("\\fR", out);
		fputs(key->type == CONFIG_TYPE_DURATION ? " (a bare number is in ms)" :
		      key->type == CONFIG_TYPE_SIZE_MB	? " (a bare number is in MB)" :
							  "",
		      out);
		if (!def) {
			fputs("; required", out);
		} else {
			fputs("; default ", out);
			if (key->default_doc)
				config_write_roff(out, def);
			else if (def[0] == '\0')
				fputs("empty", out);
			else
				config_write_roff(out, def);
		}
		fputs("; ", out);
		config_write_roff(out, range);
		fprintf(out, "; %s.\n",
			key->reloadable ? "reloads on SIGHUP" : "restart to change");
	}
}
