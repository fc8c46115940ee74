// SPDX-License-Identifier: MIT
/*
 * walship_archive: PostgreSQL's archive module pushing to walshipd.  See walship_archive.h.
 *
 * The control-socket client is the CLI's (tools/client.c), compiled position-independent
 * into this library with the tree's logger (daemon/common/log.c), both with hidden
 * visibility so that their symbols never clash with the server's.  Their messages reach
 * PostgreSQL's log through a log sink (walship_log_sink) with the file being archived as
 * CONTEXT, so the CLI and the module say the same thing in the same words.
 *
 * Errors are reported as WARNING, never ERROR: in PostgreSQL 15 the archiver has no
 * error recovery around an archive module's callback, and an ERROR there ends the
 * archiver process.
 */
#include "postgres.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "postmaster/pgarch.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "client.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "push.h"
#include "walship_archive.h"
#include "walship/control.h"

PG_MODULE_MAGIC;

/* GUCs. */
static char *walship_socket = NULL;
static int walship_timeout_ms = CONFIG_DEFAULT_PUSH_TIMEOUT_S * 1000 + PUSH_CLIENT_GRACE_MS;
static int walship_push_ahead = CONFIG_DEFAULT_PUSH_AHEAD;

/*
 * The connection kept across calls: the socket (-1 when none), the path it was made to
 * (a reload that changes walship.socket drops it), and the set the verdict is awaited
 * on (the socket, the latch, the postmaster's death), made once per connection.
 */
static int conn_sock = -1;
static char conn_path[CONFIG_MAX_SOCKET];
static WaitEventSet *conn_wait_set;

static bool walship_socket_check(char **newval, void **extra, GucSource source)
{
	(void)extra;
	(void)source;
	if (*newval && strlen(*newval) >= sizeof(conn_path)) {
		GUC_check_errdetail("A UNIX socket path is at most %zu bytes long.",
				    sizeof(conn_path) - 1);
		return false;
	}
	return true;
}

void _PG_init(void)
{
	DefineCustomStringVariable(
		"walship.socket", "Path of walshipd's control socket.",
		"The value of \"socket\" in the configuration of the walshipd that archives the WAL.",
		&walship_socket, CONFIG_DEFAULT_SOCKET, PGC_SIGHUP, 0, walship_socket_check, NULL,
		NULL);
	DefineCustomIntVariable(
		"walship.timeout", "Longest wait for walshipd's verdict on one WAL file.",
		"walshipd answers within its push_timeout; keep this longer, as walship push does.",
		&walship_timeout_ms, walship_timeout_ms, 100, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS,
		NULL, NULL, NULL);
	DefineCustomIntVariable(
		"walship.push_ahead",
		"Ready segments passed along with each one, for walshipd to ship meanwhile.",
		"As push_ahead for walship push: the segments after the one being archived that "
		"are ready already; their own turn then takes over what was started.",
		&walship_push_ahead, walship_push_ahead, 0, CTL_MAX_AHEAD, PGC_SIGHUP, 0, NULL,
		NULL, NULL);
	MarkGUCPrefixReserved("walship");
}

/*
 * The client's messages (tools/client.c, logged through common/log.h) as PostgreSQL
 * messages: its errors are WARNINGs (the archiver goes on and retries), its LOG lines
 * LOG.  @line is "LEVEL:  message\n" (no prefix: see walship_archive_startup()).
 */
/* A step on a kept connection that is tried once more if walshipd had closed it: its
 * errors are held back (DEBUG1), and said as WARNINGs only if it is not tried again
 * (deferred_end()): a WARNING saying the file failed, beside the file archived by the
 * retry, misleads. */
static bool defer_errors;
static char deferred[512];

static void deferred_end(bool say)
{
	if (say && deferred[0])
		ereport(WARNING, errmsg_internal("%s", deferred));
	deferred[0] = '\0';
	defer_errors = false;
}

static void walship_log_sink(void *arg, enum log_level level, const char *line, size_t len)
{
	const char *text = memchr(line, ':', len);
	int elevel;

	(void)arg;
	if (text && (size_t)(text - line) + 3 <= len && text[1] == ' ' && text[2] == ' ') {
		len -= (size_t)(text + 3 - line);
		line = text + 3;
	}
	while (len > 0 && line[len - 1] == '\n')
		len--;
	if (defer_errors && level >= LOG_LEVEL_WARNING) {
		if (!deferred[0])
			snprintf(deferred, sizeof(deferred), "%.*s", (int)len, line);
		level = LOG_LEVEL_DEBUG;
	}
	if (level >= LOG_LEVEL_WARNING)
		elevel = WARNING;
	else if (level == LOG_LEVEL_LOG)
		elevel = LOG;
	else
		elevel = DEBUG1;
	ereport(elevel, errmsg_internal("%.*s", (int)len, line));
}

static void walship_archive_startup(void)
{
	log_set_prefix(false);
	log_set_sink(walship_log_sink, NULL);
}

static bool walship_check_configured(void)
{
	if (walship_socket == NULL || walship_socket[0] == '\0') {
		ereport(WARNING, errmsg("\"walship.socket\" is not set"),
			errhint("Set it to the \"socket\" of the walshipd that archives the WAL."));
		return false;
	}
	return true;
}

static void conn_drop(void)
{
	if (conn_wait_set) {
		FreeWaitEventSet(conn_wait_set);
		conn_wait_set = NULL;
	}
	if (conn_sock >= 0) {
		close(conn_sock);
		conn_sock = -1;
	}
}

/*
 * Whether the kept connection can take a request: made to the current walship.socket,
 * and nothing to read on it.  A connection waiting for the next request has nothing to
 * read unless walshipd closed it (it restarted, or stopped): then it is dropped here, so
 * the request goes on a new one instead of failing.
 */
static bool conn_usable(void)
{
	struct pollfd pfd = { .fd = conn_sock, .events = POLLIN };

	if (conn_sock < 0)
		return false;
	if (strcmp(conn_path, walship_socket) != 0) {
		conn_drop();
		return false;
	}
	if (poll(&pfd, 1, 0) != 0) {
		ereport(LOG, errmsg("walshipd closed the connection at \"%s\"; connecting again",
				    conn_path));
		conn_drop();
		return false;
	}
	return true;
}

/*
 * The latch was set while waiting for walshipd (@file being archived): what for.  Returns
 * true when the archiver is to give @file up (a shutdown request), logged.  The latch is
 * reset here and *@latch_seen set: the caller sets it again when done waiting (see
 * conn_wait_end()).
 */
static bool conn_wait_interrupted(const char *file, bool *latch_seen)
{
	ResetLatch(MyLatch);
	*latch_seen = true;
	CHECK_FOR_INTERRUPTS();
	if (!ShutdownRequestPending)
		return false;
	ereport(WARNING,
		errmsg("archiving of \"%s\" through walshipd interrupted by shutdown request",
		       file));
	return true;
}

/*
 * The latch was set for the archiver too: SIGUSR2 (the postmaster's "archive what is
 * ready, then exit" at a normal stop) and SIGHUP only set a flag and the latch, which the
 * archiver's loop reads in its own wait.  Cleared by a wait here, that wait would sleep
 * its full minute before seeing them: set again for it.
 */
static void conn_wait_end(bool latch_seen)
{
	if (latch_seen)
		SetLatch(MyLatch);
}

/*
 * Between two attempts to connect while walshipd's backlog is full: short, as a UNIX
 * socket gives no way to wait for room in another socket's backlog.
 */
#define CONNECT_RETRY_MS 100

/*
 * Connect to walship.socket for @file, until @deadline_ms (clock_now_ms()).  A connect that waits
 * for room in the backlog of a walshipd that does not accept (stopped, frozen) would
 * block the archiver in the kernel, deaf to a shutdown or a reload: the attempts never
 * wait, and the waits between them are on the latch, as conn_wait_reply()'s.  Returns 0
 * with *@sock, -ETIMEDOUT, -EINTR or the connect error (logged).
 */
static int conn_connect(const char *file, int64_t deadline_ms, int *sock)
{
	bool latch_seen = false;
	int ret;

	for (;;) {
		long left;
		int rc;

		/* Logged by the client but the full backlog. */
		ret = ctl_client_connect_nowait(walship_socket, walship_timeout_ms, sock);
		if (ret != -EAGAIN)
			break;
		left = (long)(deadline_ms - clock_now_ms());
		if (left <= 0) {
			ereport(WARNING,
				errmsg("could not connect to walshipd at \"%s\": %s",
				       walship_socket, strerror(ETIMEDOUT)),
				errdetail(
					"Its backlog stayed full until walship.timeout (%d ms) ran out: "
					"walshipd is not accepting connections.",
					walship_timeout_ms));
			ret = -ETIMEDOUT;
			break;
		}
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
			       Min(left, CONNECT_RETRY_MS), PG_WAIT_EXTENSION);
		if ((rc & WL_LATCH_SET) && conn_wait_interrupted(file, &latch_seen)) {
			ret = -EINTR;
			break;
		}
	}
	conn_wait_end(latch_seen);
	return ret;
}

/*
 * Connect to walship.socket for @file unless the kept connection is usable.  Returns 0
 * or -errno.
 */
static int conn_ensure(const char *file, int64_t deadline_ms)
{
	int sock;
	int ret;

	if (conn_usable())
		return 0;
	ret = conn_connect(file, deadline_ms, &sock);
	if (ret < 0)
		return ret;
	conn_sock = sock;
	strlcpy(conn_path, walship_socket, sizeof(conn_path));
	conn_wait_set = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(conn_wait_set, WL_SOCKET_READABLE, conn_sock, NULL, NULL);
	AddWaitEventToSet(conn_wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(conn_wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	return 0;
}

/*
 * Wait until the reply to the request just sent can be read, until @deadline_ms.
 * The latch wakes us for interrupts, a reload (handled by the archiver between files) and
 * shutdown: after SIGTERM the archiver starts no new file, and this one is given up (the
 * file stays ready and is archived by the next archiver).  The postmaster's death ends
 * the process (WL_EXIT_ON_PM_DEATH).  Returns 0, -ETIMEDOUT or -EINTR (logged).
 */
static int conn_wait_reply(const char *file, int64_t deadline_ms)
{
	WaitEvent event;
	bool latch_seen = false;
	int ret;

	for (;;) {
		long left = (long)(deadline_ms - clock_now_ms());

		if (left <= 0) {
			ereport(WARNING, errmsg("timed out waiting for a reply from walshipd"),
				errdetail(
					"No verdict on \"%s\" came within walship.timeout (%d ms).",
					file, walship_timeout_ms));
			ret = -ETIMEDOUT;
			break;
		}
		if (WaitEventSetWait(conn_wait_set, left, &event, 1, PG_WAIT_EXTENSION) == 0)
			continue; /* timed out: the next round says so */
		if (event.events & WL_SOCKET_READABLE) {
			ret = 0;
			break;
		}
		if ((event.events & WL_LATCH_SET) && conn_wait_interrupted(file, &latch_seen)) {
			ret = -EINTR;
			break;
		}
	}
	conn_wait_end(latch_seen);
	return ret;
}

/* CONTEXT of every message logged while a file is being archived. */
static void walship_archive_context(void *arg)
{
	errcontext("archiving write-ahead log file \"%s\" through walshipd at \"%s\"",
		   (const char *)arg, walship_socket);
}

static bool walship_archive_file(const char *file, const char *path)
{
	ErrorContextCallback context = {
		.callback = walship_archive_context,
		.arg = unconstify(char *, file),
		.previous = error_context_stack,
	};
	struct ctl_client_reply reply = { 0 };
	bool safe = false, kept, retried = false;
	/* One wait for the file, the connection and its one retry included (a monotonic
	 * clock: a step of the system's clock neither cuts it short nor stretches it). */
	int64_t deadline_ms = clock_now_ms() + walship_timeout_ms;
	int fds[CTL_MAX_FDS];
	unsigned int nahead;
	int wal_fd;
	int ret;

	error_context_stack = &context;
again:
	/* Failures below are logged where they happen (the client's through the sink). */
	wal_fd = ctl_client_open_push_file(path);
	if (wal_fd < 0)
		goto out;
	kept = conn_usable();
	ret = conn_ensure(file, deadline_ms);
	if (ret < 0)
		goto out_close_wal;
	/* The ready segments after it go along, for walshipd to ship meanwhile. */
	fds[0] = wal_fd;
	nahead = ctl_client_open_ahead(path, wal_fd, walship_push_ahead, fds + 1);
	defer_errors = kept && !retried;
	ret = ctl_client_send(conn_sock, CTL_PUSH, CTL_F_KEEP | (nahead ? CTL_F_AHEAD : 0), file,
			      fds, 1 + nahead);
	/* walshipd holds its own descriptors now. */
	for (unsigned int i = 1; i <= nahead; i++)
		close(fds[i]);
	deferred_end(!((ret == -EPIPE || ret == -ECONNRESET) && kept && !retried));
	if ((ret == -EPIPE || ret == -ECONNRESET) && kept && !retried) {
		/* the kept connection was closed: as for the reply below */
		close(wal_fd);
		conn_drop();
		retried = true;
		goto again;
	}
	if (ret < 0)
		goto out_drop;
	close(wal_fd);
	wal_fd = -1;
	ret = conn_wait_reply(file, deadline_ms);
	if (ret < 0)
		goto out_drop;
	defer_errors = kept && !retried;
	ret = ctl_client_receive(conn_sock, &reply);
	deferred_end(!((ret == -ECONNRESET || ret == -EPIPE) && kept && !retried));
	/* A kept connection walshipd closed just after its last reply (it keeps at most so
	 * many clients waiting), before it read this request: sent once more on a new one
	 * (walshipd discards an unread request with its descriptors, and takes a push it is
	 * already working on over), rather than failing the file. */
	if ((ret == -ECONNRESET || ret == -EPIPE) && kept && !retried) {
		conn_drop();
		retried = true;
		goto again;
	}
	if (ret < 0)
		goto out_drop;

	ctl_client_one_line(reply.text);
	if (reply.code == CTL_OK) {
		safe = true;
		ereport(DEBUG1, errmsg_internal("archived \"%s\"%s%s", file,
						reply.text[0] != '\0' ? ": " : "", reply.text));
	} else {
		/* The words of walship push. */
		ereport(WARNING,
			errmsg("could not archive \"%s\": %s", file,
			       reply.text[0] != '\0' ? reply.text : ctl_code_name(reply.code)));
	}
	ctl_client_reply_free(&reply);
	goto out;

out_drop:
	/* A reply may still come on it: never read it as the next file's. */
	conn_drop();
out_close_wal:
	if (wal_fd >= 0)
		close(wal_fd);
out:
	error_context_stack = context.previous;
	return safe;
}

static void walship_archive_shutdown(void)
{
	conn_drop();
	log_set_sink(NULL, NULL);
}

void _PG_archive_module_init(ArchiveModuleCallbacks *cb)
{
	walship_archive_startup();
	cb->check_configured_cb = walship_check_configured;
	cb->archive_file_cb = walship_archive_file;
	cb->shutdown_cb = walship_archive_shutdown;
}
