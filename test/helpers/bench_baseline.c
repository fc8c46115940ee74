// SPDX-License-Identifier: MIT
/*
 * bench_baseline: the plain contenders of `make bench` (test/bench/run-bench.sh).
 *
 *   bench_baseline recv --listen ADDR:PORT --dir DIR [--stats FILE]
 *	Accept one TCP connection and receive a stream of files.  Each file is written to
 *	DIR/NAME.tmp with write(), fsynced, renamed to DIR/NAME, and DIR is fsynced; only
 *	then is a one-byte ack sent.  At the end of the stream, print (or write to FILE)
 *	"files N bytes N wall_s 0 user_s X sys_s X" for this process.
 *
 *   bench_baseline send --connect ADDR:PORT [--latencies FILE] [--stats FILE]
 *			[--progress N] FILE...
 *	Send the files one at a time, as archive_command would: read() each into a 1 MiB
 *	buffer, write() it to the socket, wait for its ack.  Per-file latencies (from the
 *	open of the file to its ack, in microseconds) go to FILE, one a line.
 *
 *   bench_baseline each --list LIST [--latencies FILE] [--stats FILE] [--progress N]
 *			-- PROG ARG...
 *	For each path in LIST (one a line), run PROG ARG... PATH and wait for it, like
 *	PostgreSQL's archiver runs archive_command; stop at the first non-zero exit.
 *	Per-file latencies as above; the stats line gives the CPU of the children.
 *
 *   bench_baseline disk --dir DIR --depth N [--chunk N] [--latencies FILE] [--stats FILE]
 *			[--progress N] FILE...
 *	The disk limit (limit-disk): the files, mapped and locked in memory before the clock
 *	starts, written one after another to DIR the way the best local writer would, as
 *	walship's replica does: DIR/NAME.tmp opened with O_DIRECT, written in chunks of
 *	--chunk bytes (default WIRE_CHUNK_SIZE, the DATA chunk the replica writes as it
 *	receives it) through io_uring with up to --depth writes in flight (run-bench.sh
 *	passes the replica's io_buffers, its registered buffers, each holding one chunk
 *	until written), then fdatasync, rename to DIR/NAME, fsync DIR.  No network.  The
 *	stats line ends with "chunk N depth N".
 *
 *   bench_baseline sendmem --connect ADDR:PORT [--latencies FILE] [--stats FILE]
 *			[--progress N] FILE...
 *   bench_baseline recvnull --listen ADDR:PORT [--stats FILE]
 *	The network limit (limit-net): send's wire format and one ack per file, but the
 *	sender sends each file from anonymous memory (filled before the clock starts,
 *	copy_files says how) in one write() call, and the receiver reads the bytes into a
 *	buffer and discards them.  No disk.
 *
 * The memory of disk is the corpus's own page cache, mapped (MAP_POPULATE) and mlock()ed:
 * a private copy would double the corpus in RAM (8.4 GB for 500 segments) on a shared
 * machine.  Being file-backed, it cannot be registered with
 * io_uring (the replica's WRITE_FIXED): disk uses plain WRITE, which pins the pages of
 * each chunk per write.
 *
 * send, each, disk and sendmem print the count of files done every N files on stdout
 * (--progress N), and their stats line has wall_s, the time from the first file to the
 * last ack (disk: to the last directory fsync).
 *
 * The wire format of send/recv (and sendmem/recvnull), per file: u16 name length (network
 * order), the name, u64 size (network order), the bytes.  A name length of 0 ends the
 * stream.  No tricks in send/recv: plain blocking read()/write(), no sendfile, no splice,
 * no io_uring.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "walship/wire.h"

#define BUF_SIZE (1024 * 1024)
#define NAME_MAX_LEN 255
#define CONNECT_RETRY_S 10
#define MAX_ARGS 64
/* Files sendmem holds in anonymous memory (copy_files); 8 x 16 MiB. */
#define SENDMEM_COPIES 8

static char buf[BUF_SIZE];

/* die: print "bench_baseline: MSG" and exit 1. */
static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench_baseline: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* now_us: CLOCK_MONOTONIC in microseconds. */
static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* read_full: read exactly len bytes from fd; false on EOF or error (errno set). */
static bool read_full(int fd, void *p, size_t len)
{
	char *c = p;

	while (len > 0) {
		ssize_t n = read(fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EPIPE;
			return false;
		}
		c += n;
		len -= (size_t)n;
	}
	return true;
}

/* write_full: write exactly len bytes to fd; false on error (errno set). */
static bool write_full(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		ssize_t n;

		errno = 0;
		n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return false;
		}
		c += n;
		len -= (size_t)n;
	}
	return true;
}

/* parse_addr: split "ADDR:PORT" into a sockaddr_in; dies on a bad address. */
static void parse_addr(const char *spec, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	size_t hlen;
	long port;
	char *end;

	if (!colon)
		die("address \"%s\" is not ADDR:PORT", spec);
	hlen = (size_t)(colon - spec);
	if (hlen == 0 || hlen >= sizeof(host))
		die("bad host in \"%s\"", spec);
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		die("bad port in \"%s\"", spec);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		die("bad IPv4 address \"%s\"", host);
}

/*
 * write_stats: print "files N bytes N wall_s X user_s X sys_s X" and then extra to path
 * (stdout if NULL); wall_s is the time since start_us (0 when start_us is 0), user_s and
 * sys_s the CPU of who (RUSAGE_SELF or RUSAGE_CHILDREN).
 */
static void write_stats(const char *path, int who, uint64_t start_us, uint64_t files,
			uint64_t bytes, const char *extra, const struct rusage *since)
{
	uint64_t wall = start_us ? now_us() - start_us : 0;
	struct rusage ru;
	FILE *out = stdout;

	if (getrusage(who, &ru) < 0)
		die("getrusage: %s", strerror(errno));
	/* the CPU of the measured part alone: not the set-up before @since was taken */
	if (since) {
		timersub(&ru.ru_utime, &since->ru_utime, &ru.ru_utime);
		timersub(&ru.ru_stime, &since->ru_stime, &ru.ru_stime);
	}
	if (path) {
		out = fopen(path, "w");
		if (!out)
			die("could not open \"%s\": %s", path, strerror(errno));
	}
	fprintf(out,
		"files %llu bytes %llu wall_s %llu.%06llu user_s %ld.%06ld sys_s %ld.%06ld%s\n",
		(unsigned long long)files, (unsigned long long)bytes,
		(unsigned long long)(wall / 1000000), (unsigned long long)(wall % 1000000),
		(long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec,
		(long)ru.ru_stime.tv_usec, extra);
	if (path && fclose(out) != 0)
		die("could not write \"%s\": %s", path, strerror(errno));
}

/* open_latencies: open path for per-file latencies, or return NULL if path is NULL. */
static FILE *open_latencies(const char *path)
{
	FILE *f;

	if (!path)
		return NULL;
	f = fopen(path, "w");
	if (!f)
		die("could not open \"%s\": %s", path, strerror(errno));
	return f;
}

/* close_latencies: flush and close the latency file, dying on a write error. */
static void close_latencies(FILE *f, const char *path)
{
	if (f && fclose(f) != 0)
		die("could not write \"%s\": %s", path, strerror(errno));
}

/* progress: every `every` files (0: never), print the count so far on stdout. */
static void progress(uint64_t done, unsigned int every)
{
	if (every && done % every == 0) {
		printf(" %llu", (unsigned long long)done);
		fflush(stdout);
	}
}

/* valid_name: true if name is a plain file name (no slash, not "." or ".."). */
static bool valid_name(const char *name)
{
	return name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* recv_one_file: receive size bytes from sock into dir/name durably. */
static void recv_one_file(int sock, int dirfd, const char *name, uint64_t size)
{
	char tmp[NAME_MAX_LEN + 8];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die("could not create \"%s\": %s", tmp, strerror(errno));
	while (size > 0) {
		size_t chunk = size < BUF_SIZE ? (size_t)size : BUF_SIZE;
		ssize_t n = read(sock, buf, chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("connection lost in \"%s\": %s", name,
			    n == 0 ? "end of stream" : strerror(errno));
		if (!write_full(fd, buf, (size_t)n))
			die("could not write \"%s\": %s", tmp, strerror(errno));
		size -= (uint64_t)n;
	}
	if (fsync(fd) < 0)
		die("could not fsync \"%s\": %s", tmp, strerror(errno));
	if (close(fd) < 0)
		die("could not close \"%s\": %s", tmp, strerror(errno));
	if (renameat(dirfd, tmp, dirfd, name) < 0)
		die("could not rename \"%s\": %s", tmp, strerror(errno));
	if (fsync(dirfd) < 0)
		die("could not fsync directory: %s", strerror(errno));
}

/* accept_one: listen on spec and accept one connection (TCP_NODELAY). */
static int accept_one(const char *spec)
{
	struct sockaddr_in sa;
	int lsock, sock, one = 1;

	parse_addr(spec, &sa);
	lsock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsock < 0)
		die("socket: %s", strerror(errno));
	setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("could not bind %s: %s", spec, strerror(errno));
	if (listen(lsock, 1) < 0)
		die("listen: %s", strerror(errno));
	sock = accept(lsock, NULL, NULL);
	if (sock < 0)
		die("accept: %s", strerror(errno));
	close(lsock);
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return sock;
}

/* cmd_recv: the receiving side of the plain TCP baseline. */
static int cmd_recv(const char *listen_spec, const char *dir, const char *stats)
{
	uint64_t files = 0, bytes = 0;
	int sock, dirfd;

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die("could not open directory \"%s\": %s", dir, strerror(errno));
	sock = accept_one(listen_spec);

	for (;;) {
		char name[NAME_MAX_LEN + 1];
		uint16_t nlen;
		uint64_t size;
		char ack = 1;

		if (!read_full(sock, &nlen, sizeof(nlen)))
			die("connection lost: %s", strerror(errno));
		nlen = ntohs(nlen);
		if (nlen == 0)
			break;
		if (nlen > NAME_MAX_LEN)
			die("name of %u bytes is too long", nlen);
		if (!read_full(sock, name, nlen) || !read_full(sock, &size, sizeof(size)))
			die("connection lost: %s", strerror(errno));
		name[nlen] = '\0';
		if (!valid_name(name))
			die("refusing file name \"%s\"", name);
		size = be64toh(size);
		recv_one_file(sock, dirfd, name, size);
		if (!write_full(sock, &ack, 1))
			die("could not send ack: %s", strerror(errno));
		files++;
		bytes += size;
	}
	close(sock);
	close(dirfd);
	write_stats(stats, RUSAGE_SELF, 0, files, bytes, "", NULL);
	return 0;
}

/* connect_retry: connect to sa, retrying for CONNECT_RETRY_S while it is refused. */
static int connect_retry(const struct sockaddr_in *sa, const char *spec)
{
	uint64_t deadline = now_us() + CONNECT_RETRY_S * 1000000ULL;

	for (;;) {
		int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (sock < 0)
			die("socket: %s", strerror(errno));
		if (connect(sock, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return sock;
		if (errno != ECONNREFUSED || now_us() > deadline)
			die("could not connect to %s: %s", spec, strerror(errno));
		close(sock);
		usleep(50000);
	}
}

/* send_one_file: stream path over sock and wait for its ack; returns its size. */
static uint64_t send_one_file(int sock, const char *path)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t nlen = strlen(name);
	uint16_t wire_nlen;
	uint64_t size, wire_size, left;
	struct stat st;
	char ack;
	int fd;

	if (nlen == 0 || nlen > NAME_MAX_LEN)
		die("bad file name \"%s\"", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("could not open \"%s\": %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		die("could not stat \"%s\": %s", path, strerror(errno));
	size = (uint64_t)st.st_size;
	wire_nlen = htons((uint16_t)nlen);
	wire_size = htobe64(size);
	if (!write_full(sock, &wire_nlen, sizeof(wire_nlen)) || !write_full(sock, name, nlen) ||
	    !write_full(sock, &wire_size, sizeof(wire_size)))
		die("could not send header of \"%s\": %s", path, strerror(errno));
	for (left = size; left > 0;) {
		size_t chunk = left < BUF_SIZE ? (size_t)left : BUF_SIZE;

		if (!read_full(fd, buf, chunk))
			die("could not read \"%s\": %s", path, strerror(errno));
		if (!write_full(sock, buf, chunk))
			die("could not send \"%s\": %s", path, strerror(errno));
		left -= chunk;
	}
	close(fd);
	if (!read_full(sock, &ack, 1))
		die("no ack for \"%s\": %s", path, strerror(errno));
	return size;
}

/* cmd_send: the sending side of the plain TCP baseline. */
static int cmd_send(const char *spec, const char *lat_path, const char *stats, unsigned int every,
		    int nfiles, char **files)
{
	struct sockaddr_in sa;
	uint64_t bytes = 0, t0;
	uint16_t end = 0;
	FILE *lat;
	int sock, i, one = 1;

	parse_addr(spec, &sa);
	lat = open_latencies(lat_path);
	sock = connect_retry(&sa, spec);
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t0 = now_us();
	for (i = 0; i < nfiles; i++) {
		uint64_t start = now_us();

		bytes += send_one_file(sock, files[i]);
		if (lat)
			fprintf(lat, "%llu\n", (unsigned long long)(now_us() - start));
		progress((uint64_t)i + 1, every);
	}
	if (!write_full(sock, &end, sizeof(end)))
		die("could not end the stream: %s", strerror(errno));
	/* Wait for the receiver to close, so its stats are written when we return. */
	while (read(sock, buf, 1) > 0)
		;
	close(sock);
	close_latencies(lat, lat_path);
	write_stats(stats, RUSAGE_SELF, t0, (uint64_t)nfiles, bytes, "", NULL);
	return 0;
}

/* run_child: run argv (with path as the extra last argument) and wait for it. */
static int run_child(char **argv, int argc, const char *path)
{
	char *args[MAX_ARGS];
	int status, i;
	pid_t pid;

	if (argc + 2 > MAX_ARGS)
		die("too many arguments for the command");
	for (i = 0; i < argc; i++)
		args[i] = argv[i];
	args[argc] = (char *)(uintptr_t)path;
	args[argc + 1] = NULL;
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		execvp(args[0], args);
		fprintf(stderr, "bench_baseline: could not run \"%s\": %s\n", args[0],
			strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* cmd_each: run a command once per listed file, one after another. */
static int cmd_each(const char *list, const char *lat_path, const char *stats, unsigned int every,
		    int argc, char **argv)
{
	char line[4096];
	uint64_t files = 0, bytes = 0, t0 = now_us();
	FILE *in, *lat;

	if (argc < 1)
		die("each: no command given after --");
	in = fopen(list, "r");
	if (!in)
		die("could not open \"%s\": %s", list, strerror(errno));
	lat = open_latencies(lat_path);
	while (fgets(line, sizeof(line), in)) {
		struct stat st;
		uint64_t start;
		int rc;

		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (stat(line, &st) < 0)
			die("could not stat \"%s\": %s", line, strerror(errno));
		start = now_us();
		rc = run_child(argv, argc, line);
		if (rc != 0)
			die("command failed with status %d on \"%s\"", rc, line);
		if (lat)
			fprintf(lat, "%llu\n", (unsigned long long)(now_us() - start));
		files++;
		bytes += (uint64_t)st.st_size;
		progress(files, every);
	}
	fclose(in);
	close_latencies(lat, lat_path);
	write_stats(stats, RUSAGE_CHILDREN, t0, files, bytes, "", NULL);
	return 0;
}

/* A file of the limit contenders, mapped in memory. */
struct mem_file {
	const char *name; /* its base name */
	const uint8_t *data;
	uint64_t size;
};

/* base_name: the part of path after its last slash; dies on a name the wire cannot carry. */
static const char *base_name(const char *path)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	if (!valid_name(name) || strlen(name) > NAME_MAX_LEN)
		die("bad file name \"%s\"", path);
	return name;
}

/* open_corpus_file: open path for reading and stat it into st; dies if it is empty. */
static int open_corpus_file(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("could not open \"%s\": %s", path, strerror(errno));
	if (fstat(fd, st) < 0)
		die("could not stat \"%s\": %s", path, strerror(errno));
	if (st->st_size == 0)
		die("file \"%s\" is empty", path);
	return fd;
}

/*
 * map_files: map each of the n paths (MAP_POPULATE: read now if not cached) and lock it
 * in memory, so that the timed part reads no disk; the mappings stay until exit.
 */
static struct mem_file *map_files(int n, char **paths)
{
	struct mem_file *mf = calloc((size_t)n, sizeof(*mf));
	bool warned = false;
	int i;

	if (!mf)
		die("out of memory");
	for (i = 0; i < n; i++) {
		struct stat st;
		void *p;
		int fd = open_corpus_file(paths[i], &st);

		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
		if (p == MAP_FAILED)
			die("could not map \"%s\": %s", paths[i], strerror(errno));
		close(fd);
		if (mlock(p, (size_t)st.st_size) < 0 && !warned) {
			/* Populated still: only memory pressure could evict it meanwhile. */
			fprintf(stderr, "bench_baseline: could not lock \"%s\" in memory: %s\n",
				paths[i], strerror(errno));
			warned = true;
		}
		mf[i].name = base_name(paths[i]);
		mf[i].data = p;
		mf[i].size = (uint64_t)st.st_size;
	}
	return mf;
}

/*
 * copy_files: the n paths as sendmem sends them: each one's name and size, its bytes in
 * anonymous memory, filled before the clock starts.  Only the first SENDMEM_COPIES files
 * are held: file i is sent from copy i % SENDMEM_COPIES (all have one size, checked), as
 * the receiver discards what it gets and the network does not look at the bytes.  Not the
 * corpus's own mapped page cache, as disk uses: on a virtual machine of the kind this
 * bench runs on, user-space copies from a file's mapping ran at 8.7 GB/s against 28 GB/s
 * from anonymous memory (a scratch loop of 1 MiB memcpy), which made the sender, not the
 * network, the limit (docs/benchmark-notes.md).  And a private copy of every file would
 * double the corpus in RAM.
 */
static struct mem_file *copy_files(int n, char **paths)
{
	struct mem_file *mf = calloc((size_t)n, sizeof(*mf));
	uint8_t *copies[SENDMEM_COPIES];
	int i;

	if (!mf)
		die("out of memory");
	for (i = 0; i < n; i++) {
		struct stat st;
		int fd = open_corpus_file(paths[i], &st);

		if (i > 0 && (uint64_t)st.st_size != mf[0].size)
			die("file \"%s\" is not the size of \"%s\"", paths[i], paths[0]);
		mf[i].name = base_name(paths[i]);
		mf[i].size = (uint64_t)st.st_size;
		if (i < SENDMEM_COPIES) {
			copies[i] = malloc((size_t)st.st_size);
			if (!copies[i])
				die("out of memory");
			if (!read_full(fd, copies[i], (size_t)st.st_size))
				die("could not read \"%s\": %s", paths[i], strerror(errno));
		}
		mf[i].data = copies[i % SENDMEM_COPIES];
		close(fd);
	}
	return mf;
}

/*
 * disk_one_file: write f to dir/NAME.tmp with O_DIRECT, chunk bytes a write through ring
 * with up to depth writes in flight, then fdatasync, rename to dir/NAME, fsync dir.
 */
static void disk_one_file(struct io_uring *ring, int dirfd, const struct mem_file *f,
			  uint32_t chunk, unsigned int depth)
{
	char tmp[NAME_MAX_LEN + 8];
	uint64_t off = 0, done = 0;
	unsigned int inflight = 0;
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", f->name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0600);
	if (fd < 0)
		die("could not create \"%s\": %s", tmp, strerror(errno));
	while (done < f->size) {
		struct io_uring_cqe *cqe;
		unsigned int head, reaped = 0;

		while (inflight < depth && off < f->size) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
			uint32_t len = f->size - off < chunk ? (uint32_t)(f->size - off) : chunk;

			if (!sqe)
				break; /* the ring is full: submit what it has */
			io_uring_prep_write(sqe, fd, f->data + off, len, off);
			io_uring_sqe_set_data64(sqe, len);
			off += len;
			inflight++;
		}
		rc = io_uring_submit_and_wait(ring, 1);
		if (rc < 0 && rc != -EINTR)
			die("io_uring_submit_and_wait: %s", strerror(-rc));
		io_uring_for_each_cqe(ring, head, cqe) {
			/* O_DIRECT writes of whole chunks: a short one is an error here. */
			if (cqe->res < 0 || (uint64_t)cqe->res != io_uring_cqe_get_data64(cqe))
				die("could not write \"%s\": %s", tmp,
				    cqe->res < 0 ? strerror(-cqe->res) : "short write");
			done += (uint64_t)cqe->res;
			inflight--;
			reaped++;
		}
		io_uring_cq_advance(ring, reaped);
	}
	if (fdatasync(fd) < 0)
		die("could not fdatasync \"%s\": %s", tmp, strerror(errno));
	if (close(fd) < 0)
		die("could not close \"%s\": %s", tmp, strerror(errno));
	if (renameat(dirfd, tmp, dirfd, f->name) < 0)
		die("could not rename \"%s\": %s", tmp, strerror(errno));
	if (fsync(dirfd) < 0)
		die("could not fsync directory: %s", strerror(errno));
}

/* cmd_disk: the disk limit: the files from memory to dir, as the replica writes them. */
static int cmd_disk(const char *dir, uint32_t chunk, unsigned int depth, const char *lat_path,
		    const char *stats, unsigned int every, int nfiles, char **paths)
{
	struct mem_file *mf;
	struct io_uring ring;
	struct rusage ru0;
	uint64_t bytes = 0, t0;
	char extra[64];
	FILE *lat;
	int dirfd, rc, i;

	if (chunk == 0 || chunk % 4096 != 0)
		die("--chunk must be a positive multiple of 4096 (O_DIRECT)");
	if (depth == 0 || depth > 4096)
		die("--depth must be 1 to 4096");
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		die("could not open directory \"%s\": %s", dir, strerror(errno));
	rc = io_uring_queue_init(depth, &ring, 0);
	if (rc < 0)
		die("io_uring_queue_init: %s", strerror(-rc));
	mf = map_files(nfiles, paths);
	lat = open_latencies(lat_path);
	/* Mapping, faulting in and locking the files (a few tenths of a second per GB) is
	 * no part of what the limit measures, nor is their unmapping at exit: its CPU is
	 * counted from here (the stats file's), not the cgroup's over the whole process. */
	if (getrusage(RUSAGE_SELF, &ru0) < 0)
		die("getrusage: %s", strerror(errno));
	t0 = now_us();
	for (i = 0; i < nfiles; i++) {
		uint64_t start = now_us();

		disk_one_file(&ring, dirfd, &mf[i], chunk, depth);
		bytes += mf[i].size;
		if (lat)
			fprintf(lat, "%llu\n", (unsigned long long)(now_us() - start));
		progress((uint64_t)i + 1, every);
	}
	snprintf(extra, sizeof(extra), " chunk %u depth %u", chunk, depth);
	write_stats(stats, RUSAGE_SELF, t0, (uint64_t)nfiles, bytes, extra, &ru0);
	close_latencies(lat, lat_path);
	io_uring_queue_exit(&ring);
	close(dirfd);
	return 0;
}

/* cmd_recvnull: the receiving side of the network limit: read each file, discard it, ack. */
static int cmd_recvnull(const char *listen_spec, const char *stats)
{
	uint64_t files = 0, bytes = 0;
	int sock = accept_one(listen_spec);

	for (;;) {
		char name[NAME_MAX_LEN + 1];
		uint16_t nlen;
		uint64_t size, left;
		char ack = 1;

		if (!read_full(sock, &nlen, sizeof(nlen)))
			die("connection lost: %s", strerror(errno));
		nlen = ntohs(nlen);
		if (nlen == 0)
			break;
		if (nlen > NAME_MAX_LEN)
			die("name of %u bytes is too long", nlen);
		if (!read_full(sock, name, nlen) || !read_full(sock, &size, sizeof(size)))
			die("connection lost: %s", strerror(errno));
		size = be64toh(size);
		for (left = size; left > 0;) {
			size_t want = left < BUF_SIZE ? (size_t)left : BUF_SIZE;
			ssize_t n = read(sock, buf, want);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				die("connection lost: %s",
				    n == 0 ? "end of stream" : strerror(errno));
			left -= (uint64_t)n;
		}
		if (!write_full(sock, &ack, 1))
			die("could not send ack: %s", strerror(errno));
		files++;
		bytes += size;
	}
	close(sock);
	write_stats(stats, RUSAGE_SELF, 0, files, bytes, "", NULL);
	return 0;
}

/* cmd_sendmem: the sending side of the network limit: each file from memory, one ack each. */
static int cmd_sendmem(const char *spec, const char *lat_path, const char *stats,
		       unsigned int every, int nfiles, char **paths)
{
	struct sockaddr_in sa;
	struct mem_file *mf;
	uint64_t bytes = 0, t0;
	uint16_t end = 0;
	FILE *lat;
	int sock, i, one = 1;

	parse_addr(spec, &sa);
	mf = copy_files(nfiles, paths);
	lat = open_latencies(lat_path);
	sock = connect_retry(&sa, spec);
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	t0 = now_us();
	for (i = 0; i < nfiles; i++) {
		uint64_t start = now_us(), wire_size = htobe64(mf[i].size);
		size_t nlen = strlen(mf[i].name);
		uint16_t wire_nlen = htons((uint16_t)nlen);
		char ack;

		if (!write_full(sock, &wire_nlen, sizeof(wire_nlen)) ||
		    !write_full(sock, mf[i].name, nlen) ||
		    !write_full(sock, &wire_size, sizeof(wire_size)) ||
		    !write_full(sock, mf[i].data, mf[i].size))
			die("could not send \"%s\": %s", paths[i], strerror(errno));
		if (!read_full(sock, &ack, 1))
			die("no ack for \"%s\": %s", paths[i], strerror(errno));
		bytes += mf[i].size;
		if (lat)
			fprintf(lat, "%llu\n", (unsigned long long)(now_us() - start));
		progress((uint64_t)i + 1, every);
	}
	if (!write_full(sock, &end, sizeof(end)))
		die("could not end the stream: %s", strerror(errno));
	/* Wait for the receiver to close, so its stats are written when we return. */
	while (read(sock, buf, 1) > 0)
		;
	close(sock);
	close_latencies(lat, lat_path);
	write_stats(stats, RUSAGE_SELF, t0, (uint64_t)nfiles, bytes, "", NULL);
	return 0;
}

/* usage: print the synopsis to out. */
static void usage(FILE *out)
{
	fputs("Usage:\n"
	      "  bench_baseline recv --listen ADDR:PORT --dir DIR [--stats FILE]\n"
	      "  bench_baseline send --connect ADDR:PORT [--latencies FILE] [--stats FILE] "
	      "[--progress N] FILE...\n"
	      "  bench_baseline each --list LIST [--latencies FILE] [--stats FILE] "
	      "[--progress N] -- PROG ARG...\n"
	      "  bench_baseline disk --dir DIR --depth N [--chunk N] [--latencies FILE] "
	      "[--stats FILE] [--progress N] FILE...\n"
	      "  bench_baseline sendmem --connect ADDR:PORT [--latencies FILE] [--stats FILE] "
	      "[--progress N] FILE...\n"
	      "  bench_baseline recvnull --listen ADDR:PORT [--stats FILE]\n",
	      out);
	fprintf(out,
		"\ndisk: the disk limit, the files from memory to DIR as walship's replica writes\n"
		"them: O_DIRECT, --chunk bytes a write (default WIRE_CHUNK_SIZE = %u, the\n"
		"DATA chunk the replica writes as received), --depth writes in flight through\n"
		"io_uring (the replica's io_buffers, its registered buffers), fdatasync, rename,\n"
		"directory fsync.  sendmem/recvnull: the network limit, memory to memory, one\n"
		"ack per file, no disk.\n",
		(unsigned int)WIRE_CHUNK_SIZE);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 'c' },
		{ "dir", required_argument, NULL, 'd' },
		{ "latencies", required_argument, NULL, 'L' },
		{ "stats", required_argument, NULL, 's' },
		{ "list", required_argument, NULL, 'f' },
		{ "progress", required_argument, NULL, 'p' },
		{ "chunk", required_argument, NULL, 'C' },
		{ "depth", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_spec = NULL, *connect_spec = NULL, *dir = NULL;
	const char *lat = NULL, *stats = NULL, *list = NULL, *cmd;
	unsigned int every = 0, depth = 0;
	uint32_t chunk = WIRE_CHUNK_SIZE;
	int opt;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	/* A receiver that goes away is reported as EPIPE by write_full, not by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	cmd = argv[1];
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'c':
			connect_spec = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'L':
			lat = optarg;
			break;
		case 's':
			stats = optarg;
			break;
		case 'f':
			list = optarg;
			break;
		case 'p':
			every = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'C':
			chunk = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'D':
			depth = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (strcmp(cmd, "recv") == 0 && listen_spec && dir && optind == argc)
		return cmd_recv(listen_spec, dir, stats);
	if (strcmp(cmd, "send") == 0 && connect_spec && optind < argc)
		return cmd_send(connect_spec, lat, stats, every, argc - optind, argv + optind);
	if (strcmp(cmd, "each") == 0 && list && optind < argc)
		return cmd_each(list, lat, stats, every, argc - optind, argv + optind);
	if (strcmp(cmd, "disk") == 0 && dir && depth && optind < argc)
		return cmd_disk(dir, chunk, depth, lat, stats, every, argc - optind, argv + optind);
	if (strcmp(cmd, "sendmem") == 0 && connect_spec && optind < argc)
		return cmd_sendmem(connect_spec, lat, stats, every, argc - optind, argv + optind);
	if (strcmp(cmd, "recvnull") == 0 && listen_spec && optind == argc)
		return cmd_recvnull(listen_spec, stats);
	usage(stderr);
	return 2;
}
