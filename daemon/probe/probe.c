// SPDX-License-Identifier: MIT
/*
 * BPF probe loader (see probe.h).  The program is the libbpf-tools pattern: a skeleton
 * (generated into the build folder), read-only config set before load, for each
 * tracepoint a tp_btf and a classic variant of which only one is loaded.
 */
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/caps.h"
#include "common/compiler.h"
#include "common/log.h"
#include "net/peertag.h"
#include "probe/pins.h"
#include "probe/probe.h"
/* The generated skeleton casts const away; not ours to fix. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "probes.skel.h"
#pragma GCC diagnostic pop
#include "ring/ring.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif
#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif

_Static_assert(PROBE_TAG_SHIFT == RING_TAG_SHIFT, "send tags: ring and probes agree");
_Static_assert(PROBE_TAG_FSYNC == RING_TAG_FSYNC, "fsync tags: ring and probes agree");
_Static_assert(PROBE_MAX_PEERS <= RING_TAG_MAX, "a peer's tag is never the fsync tag");
_Static_assert(PEERTAG_MAX < PROBE_MAX_PEERS, "every peer number has a histogram");

struct probe {
	struct probes_bpf *skel;
	char pin_dir[256];
	/* the pin folder, locked (flock) while this walshipd's probes use it: another
	 * walshipd of the same node_name on this host would take its pins for stale ones */
	int lock_fd;
	uint64_t ns_dev, ns_ino; /* walshipd's PID namespace, not the host's (probe_pid_ns()) */
	bool keep_pins;
	unsigned int peers_published;
};

/*
 * libbpf's own messages go to the debug level: the reason we report is enough.  One line
 * each: a refused program's verifier log comes as one message of many lines (and up to
 * several KiB), which is what says why the kernel refused it.
 */
static int probe_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *text = NULL, *line, *save = NULL;

	if (level == LIBBPF_DEBUG)
		return 0;
	if (vasprintf(&text, fmt, ap) < 0)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		log_debug("libbpf: %s", line);
	free(text);
	return 0;
}

static bool tracepoint_exists(const char *category, const char *event)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/%s", category, event);
	if (access(path, F_OK) == 0)
		return true;
	snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/events/%s/%s", category, event);
	return access(path, F_OK) == 0;
}

static bool tp_btf_exists(const char *event)
{
	return libbpf_find_vmlinux_btf_id(event, BPF_TRACE_RAW_TP) > 0;
}

/* io_uring_complete takes (ctx, req, cqe) since 6.3; 6.1 passes the fields one by one. */
static bool complete_has_cqe_arg(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	bool ret = false;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, "btf_trace_io_uring_complete", BTF_KIND_TYPEDEF);
	if (id > 0) {
		t = btf__type_by_id(btf, id);
		t = btf__type_by_id(btf, t->type); /* pointer */
		if (t && btf_is_ptr(t))
			t = btf__type_by_id(btf, t->type);
		ret = t && btf_is_func_proto(t) && btf_vlen(t) == 4;
	}
	btf__free(btf);
	return ret;
}

/* The capabilities BPF tracing needs: CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN for both
 * (kernels before 5.8, and what mounting bpffs and tracefs needs).  NULL when enough. */
static const char *probe_caps_missing(void)
{
	if (caps_effective(CAPS_SYS_ADMIN) ||
	    (caps_effective(CAPS_BPF) && caps_effective(CAPS_PERFMON)))
		return NULL;
	return "walshipd lacks the capabilities for BPF (CAP_BPF and CAP_PERFMON, or "
	       "CAP_SYS_ADMIN; root normally has them)";
}

/*
 * The probes filter on walshipd's pid (targ_tgid, getpid()).  In the host's PID namespace
 * that is the pid bpf_get_current_pid_tgid() gives; in one of its own (a container) it
 * is not, and the probes ask for the pid in walshipd's namespace instead, named by the
 * device and inode of /proc/self/ns/pid (bpf_get_ns_current_pid_tgid()).  The initial
 * namespace's inode number is fixed (PROC_PID_INIT_INO).  Fills @p's ns_dev and ns_ino
 * (0: the host's, or it cannot be told).
 */
static void probe_pid_ns(struct probe *p)
{
	const unsigned long proc_pid_init_ino = 0xEFFFFFFCUL;
	struct stat st;

	p->ns_dev = p->ns_ino = 0;
	if (stat("/proc/self/ns/pid", &st) < 0 || st.st_ino == proc_pid_init_ino)
		return;
	p->ns_dev = (uint64_t)st.st_dev;
	p->ns_ino = (uint64_t)st.st_ino;
}

/* bpffs at /sys/fs/bpf, mounted if it is not. */
static int probe_bpffs(const char **why)
{
	struct statfs st;

	if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL) == 0)
		return 0;
	*why = "bpffs is not mounted at /sys/fs/bpf and could not be mounted";
	return -errno;
}

/*
 * tracefs at /sys/kernel/tracing, mounted if it is not.  The classic tracepoints
 * (syscalls, ext4) are found and attached through it (libbpf reads their ids there).
 * `ip netns exec` mounts a fresh /sys without tracefs in its own mount namespace: there,
 * without this, the fsync(2) and ext4 probes silently did not load (only the tp_btf
 * io_uring probes, which need no tracefs, did).  False when there is none.
 */
static bool probe_tracefs(void)
{
	struct statfs st;

	if (statfs("/sys/kernel/tracing", &st) == 0 && st.f_type == TRACEFS_MAGIC)
		return true;
	if (statfs("/sys/kernel/debug/tracing", &st) == 0 && st.f_type == TRACEFS_MAGIC)
		return true;
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		return true;
	log_debug("tracefs is not mounted at /sys/kernel/tracing and could not be: %s",
		  strerror(errno));
	return false;
}

static void set_autoload(struct bpf_program *prog, bool on)
{
	bpf_program__set_autoload(prog, on);
}

/* Choose which variant of each program loads; returns what the io_uring submission probe
 * uses, and in @others the completion probe's variant and which of the classic ones
 * (syscalls, ext4) load. */
static const char *probe_choose(struct probes_bpf *skel, char *others, size_t len)
{
	bool req_btf = tp_btf_exists("io_uring_submit_req");
	bool sqe_btf = !req_btf && tp_btf_exists("io_uring_submit_sqe");
	bool req_tp = !req_btf && !sqe_btf && tracepoint_exists("io_uring", "io_uring_submit_req");
	bool sqe_tp = !req_btf && !sqe_btf && !req_tp &&
		      tracepoint_exists("io_uring", "io_uring_submit_sqe");
	bool submit = req_btf || sqe_btf || req_tp || sqe_tp;
	bool complete_btf = submit && complete_has_cqe_arg();
	bool complete_tp =
		submit && !complete_btf && tracepoint_exists("io_uring", "io_uring_complete");
	bool syscalls = tracepoint_exists("syscalls", "sys_enter_fdatasync");
	/* ext4 in vmlinux (built in): its BTF-typed variant, which needs no tracefs */
	bool ext4_btf =
		tp_btf_exists("ext4_sync_file_enter") && tp_btf_exists("ext4_sync_file_exit");
	bool ext4_tp = !ext4_btf && tracepoint_exists("ext4", "ext4_sync_file_enter");

	bool complete = complete_btf || complete_tp;

	/* A submission probe without a completion probe would only fill its maps (each
	 * tagged request noted, never taken out): neither loads without the other. */
	set_autoload(skel->progs.submit_req_btf, req_btf && complete);
	set_autoload(skel->progs.submit_sqe_btf, sqe_btf && complete);
	set_autoload(skel->progs.submit_req_tp, req_tp && complete);
	set_autoload(skel->progs.submit_sqe_tp, sqe_tp && complete);
	set_autoload(skel->progs.complete_btf, complete_btf);
	set_autoload(skel->progs.complete_tp, complete_tp);
	set_autoload(skel->progs.fsync_enter, syscalls);
	set_autoload(skel->progs.fsync_exit, syscalls);
	set_autoload(skel->progs.fdatasync_enter, syscalls);
	set_autoload(skel->progs.fdatasync_exit, syscalls);
	set_autoload(skel->progs.ext4_sync_enter_btf, ext4_btf);
	set_autoload(skel->progs.ext4_sync_exit_btf, ext4_btf);
	set_autoload(skel->progs.ext4_sync_enter, ext4_tp);
	set_autoload(skel->progs.ext4_sync_exit, ext4_tp);
	snprintf(
		others, len, "completion: %s; fsync(2) probes %s, ext4 probes %s",
		complete_btf ? "tp_btf io_uring_complete" :
		complete_tp  ? "tracepoint io_uring_complete" :
			       "none",
		syscalls ? "on" : "off (no syscalls tracepoints or no tracefs)",
		ext4_btf ?
			"on (tp_btf)" :
		ext4_tp ?
			"on (tracepoint)" :
			"off (no ext4_sync_file tracepoints, or no tracefs and ext4 not built in)");
	if (!submit)
		return "none (no io_uring submission tracepoint)";
	if (!complete)
		return "none (io_uring_complete is a classic tracepoint here, and tracefs cannot "
		       "be read: run as root)";
	return req_btf ? "tp_btf io_uring_submit_req" :
	       sqe_btf ? "tp_btf io_uring_submit_sqe" :
	       req_tp  ? "tracepoint io_uring_submit_req" :
			 "tracepoint io_uring_submit_sqe";
}

/* The maps pinned by name in a probe's pin folder (libbpf: PIN_ROOT/MAP_NAME). */
static const char *const probe_pinned[] = { "fsync_hist", "send_hist", "peers" };

/*
 * Remove the pins in @p->pin_dir: left by a walshipd of this node that did not stop
 * cleanly (SIGKILL, the watchdog's SIGABRT, a crash) while bpf_keep_pins is off, or kept
 * by one of another build whose maps do not fit.  libbpf would otherwise reuse them: the
 * counts of a run that is over, and peer numbers that named other hosts.  Returns how
 * many there were.
 */
static int probe_unpin_stale(struct probe *p)
{
	int fd = open(p->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;

	if (fd < 0)
		return 0;
	for (size_t i = 0; i < sizeof(probe_pinned) / sizeof(probe_pinned[0]); i++)
		if (unlinkat(fd, probe_pinned[i], 0) == 0)
			n++;
	close(fd);
	return n;
}

/*
 * bpf_keep_pins: the peers map kept from the walshipd before says which host each send
 * histogram counted; the same hosts take the same numbers again here (peertag), in their
 * order, so that a host's counts stay its own.  Before any connection (peertag empty).
 */
static void probe_adopt_peers(struct probe *p)
{
	int fd = bpf_map__fd(p->skel->maps.peers);
	unsigned int adopted = 0;

	if (peertag_count())
		return;
	for (__u32 tag = 1; tag <= PEERTAG_MAX; tag++) {
		struct probe_peer peer = { { 0 } };
		char addr[PROBE_PEER_ADDR_LEN + 4];

		if (bpf_map_lookup_elem(fd, &tag, &peer) < 0 || !peer.addr[0])
			break;
		peer.addr[sizeof(peer.addr) - 1] = '\0';
		snprintf(addr, sizeof(addr), "%s:0", peer.addr); /* peertag_get() drops the port */
		if (peertag_get(addr) != tag)
			break;
		adopted++;
	}
	p->peers_published = adopted;
	if (adopted)
		log_log("BPF probes: the send histograms of %u peer host(s) go on counting, as "
			"pinned before the restart (bpf_keep_pins = on)",
			adopted);
}

/* Open the skeleton and load its programs (their maps pinned in @opts's pin folder, or
 * reused from there).  Returns 0, or a negative errno with p->skel NULL when the open
 * failed. */
static int probe_load(struct probe *p, const struct bpf_object_open_opts *opts, const char **submit,
		      char *others, size_t len)
{
	p->skel = probes_bpf__open_opts(opts);
	if (!p->skel)
		return -errno;
	p->skel->rodata->targ_tgid = (__u32)getpid();
	p->skel->rodata->targ_ns_dev = p->ns_dev;
	p->skel->rodata->targ_ns_ino = p->ns_ino;
	*submit = probe_choose(p->skel, others, len);
	return probes_bpf__load(p->skel);
}

/*
 * bpf_keep_pins, after a load that failed: whether a map kept in @p->pin_dir differs from
 * this build's in what libbpf compares before it reuses a pin, and refuses to ("parameter
 * mismatch"): type, key and value sizes, entries, flags.  False when every pin there fits
 * or cannot be looked at: the load failed for another reason (the verifier), and the kept
 * histograms stay.  @kept: whether any pin is there.
 */
static bool probe_pins_misfit(struct probe *p, bool *kept)
{
	struct bpf_map *maps[] = { p->skel->maps.fsync_hist, p->skel->maps.send_hist,
				   p->skel->maps.peers };
	bool misfit = false;

	for (size_t i = 0; i < ARRAY_SIZE(maps) && !misfit; i++) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		char path[sizeof(p->pin_dir) + 64];
		int fd;

		snprintf(path, sizeof(path), "%s/%s", p->pin_dir, bpf_map__name(maps[i]));
		fd = bpf_obj_get(path);
		*kept = *kept || fd >= 0 || errno != ENOENT;
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			misfit = info.type != (__u32)bpf_map__type(maps[i]) ||
				 info.key_size != bpf_map__key_size(maps[i]) ||
				 info.value_size != bpf_map__value_size(maps[i]) ||
				 info.max_entries != bpf_map__max_entries(maps[i]) ||
				 info.map_flags != bpf_map__map_flags(maps[i]);
		close(fd);
	}
	return misfit;
}

static void probe_unpin(struct probe *p)
{
	bpf_map__unpin(p->skel->maps.fsync_hist, NULL);
	bpf_map__unpin(p->skel->maps.send_hist, NULL);
	bpf_map__unpin(p->skel->maps.peers, NULL);
	rmdir(p->pin_dir);
	rmdir(PROBE_PIN_ROOT); /* fails while other nodes' pins are there */
}

int probe_start(const struct config *cfg, struct probe **out)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	const char *why = NULL, *submit;
	char others[192];
	struct probe *p;
	int ret, stale;

	*out = NULL;
	if (cfg->probes == CONFIG_SWITCH_OFF) {
		log_log("BPF probes are off (probes = off)");
		return 0;
	}
	libbpf_set_print(probe_libbpf_print);
	p = calloc(1, sizeof(*p));
	if (!p) {
		log_error("out of memory");
		return cfg->probes == CONFIG_SWITCH_ON ? -ENOMEM : 0;
	}
	p->keep_pins = cfg->bpf_keep_pins;
	p->lock_fd = -1;
	probe_pin_dir(cfg->node_name, p->pin_dir, sizeof(p->pin_dir));

	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		ret = -ENOENT;
		why = "the kernel has no BTF (/sys/kernel/btf/vmlinux is missing)";
		goto out_off;
	}
	why = probe_caps_missing();
	if (why) {
		ret = -EPERM;
		goto out_off;
	}
	probe_pid_ns(p);

	/*
	 * Two daemons starting together on a host without bpffs may both mount it, one over
	 * the other: a folder made in the lower mount then vanishes from the path.  The
	 * second round sees the top mount, which stays.
	 */
	for (int round = 0; round < 2; round++) {
		ret = probe_bpffs(&why);
		if (ret < 0)
			goto out_off;
		ret = 0;
		if ((mkdir(PROBE_PIN_ROOT, 0700) < 0 && errno != EEXIST) ||
		    (mkdir(p->pin_dir, 0700) < 0 && errno != EEXIST))
			ret = -errno;
		if (ret != -ENOENT)
			break;
	}
	if (ret < 0) {
		why = "could not create the pin folder under /sys/fs/bpf";
		goto out_off;
	}
	/* One walshipd a folder: the pins found are stale only when nobody holds it. */
	p->lock_fd = open(p->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->lock_fd < 0 || flock(p->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		why = ret == -EBUSY ? "another walshipd of this node_name on this host has its "
				      "histograms pinned in the same folder (give each walshipd "
				      "on a host a node_name of its own)" :
				      "could not open the pin folder under /sys/fs/bpf";
		goto out_off;
	}
	if (!p->keep_pins && (stale = probe_unpin_stale(p)) > 0)
		log_log("BPF probes: removed %d histogram pin(s) that a walshipd which did not stop "
			"cleanly left in \"%s\"",
			stale, p->pin_dir);
	opts.pin_root_path = p->pin_dir;
	probe_tracefs();
	ret = probe_load(p, &opts, &submit, others, sizeof(others));
	/* Pins kept (bpf_keep_pins) by a build whose maps differ: libbpf refuses to reuse
	 * them ("parameter mismatch"); start afresh rather than leave the probes off, or
	 * walshipd down with probes = on.  Only then: a load that failed otherwise (the
	 * verifier) removed the kept histograms, and failed again. */
	if (ret < 0 && ret != -EPERM && p->skel && p->keep_pins) {
		bool kept = false;

		if (probe_pins_misfit(p, &kept) && probe_unpin_stale(p) > 0) {
			log_warning("BPF probes: the histograms pinned in \"%s\" do not fit this "
				    "build's probes (pinned by another version); removed, counting "
				    "afresh",
				    p->pin_dir);
			probes_bpf__destroy(p->skel);
			ret = probe_load(p, &opts, &submit, others, sizeof(others));
		} else if (kept) {
			log_log("BPF probes: the histograms pinned in \"%s\" are kept "
				"(bpf_keep_pins = on): they fit this build's probes, or could not "
				"be opened to compare, and the probes did not load for another "
				"reason",
				p->pin_dir);
		}
	}
	if (!p->skel) {
		why = "could not open the BPF object";
		goto out_rmdir;
	}
	if (ret < 0) {
		/* The capabilities were there (probe_caps_missing()): EACCES is the verifier. */
		why = ret == -EPERM ? "no permission to load BPF programs (CAP_BPF and "
				      "CAP_PERFMON, or root, are needed)" :
				      "the kernel refused the BPF programs (log_level = debug "
				      "shows the verifier's log)";
		goto out_destroy;
	}
	ret = probes_bpf__attach(p->skel);
	if (ret < 0) {
		why = "could not attach the BPF programs to their tracepoints";
		goto out_unpin;
	}
	log_log("BPF probes on: fsync and send latency (submission: %s; %s), histograms pinned "
		"in \"%s\"%s",
		submit, others, p->pin_dir,
		p->ns_ino ? "; walshipd followed in its own PID namespace" : "");
	if (p->keep_pins)
		probe_adopt_peers(p);
	probe_tick(p);
	*out = p;
	return 0;

out_unpin:
	if (!p->keep_pins) /* (kept: the histograms outlive a start that failed too) */
		probe_unpin(p);
out_destroy:
	probes_bpf__destroy(p->skel);
out_rmdir:
	rmdir(p->pin_dir);
out_off:
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	free(p);
	if (cfg->probes == CONFIG_SWITCH_ON) {
		log_error("could not start the BPF probes: %s: %s", why, strerror(-ret));
		if (ret == -EPERM)
			log_hint("Run walshipd as root or with CAP_BPF and CAP_PERFMON, or set "
				 "probes = auto or off.");
		else
			log_hint("Set probes = auto or off to replicate without them.");
		return ret;
	}
	log_log("BPF probes are off: %s (%s)", why, strerror(-ret));
	log_detail("WAL is shipped as usual; fsync and send latency are not measured.");
	return 0;
}

void probe_tick(struct probe *p)
{
	unsigned int n = peertag_count();
	int fd;

	if (!p || p->peers_published == n)
		return;
	fd = bpf_map__fd(p->skel->maps.peers);
	for (unsigned int tag = p->peers_published + 1; tag <= n; tag++) {
		struct probe_peer peer = { { 0 } };
		__u32 key = tag;

		snprintf(peer.addr, sizeof(peer.addr), "%s", peertag_host(tag));
		bpf_map_update_elem(fd, &key, &peer, BPF_ANY);
	}
	p->peers_published = n;
}

int probe_read(struct probe *p, struct probe_snapshot *s)
{
	return probe_read_maps(bpf_map__fd(p->skel->maps.fsync_hist),
			       bpf_map__fd(p->skel->maps.send_hist),
			       bpf_map__fd(p->skel->maps.peers), s, NULL, 0);
}

static void quantiles_of(const struct probe_hist *h, struct status_quantiles *q)
{
	q->count = probe_hist_count(h);
	q->p50_us = probe_hist_quantile_us(h, 0.50);
	q->p90_us = probe_hist_quantile_us(h, 0.90);
	q->p99_us = probe_hist_quantile_us(h, 0.99);
}

int probe_status(struct probe *p, struct status_probes *out)
{
	struct probe_snapshot *s = malloc(sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	ret = probe_read(p, s);
	if (ret < 0) {
		free(s);
		return ret;
	}
	memset(out, 0, sizeof(*out));
	quantiles_of(&s->fsync.io_uring, &out->fsync_io_uring);
	quantiles_of(&s->fsync.syscall, &out->fsync_syscall);
	quantiles_of(&s->fsync.ext4, &out->fsync_ext4);
	quantiles_of(&s->fsync.received, &out->received_durable);
	/* The peers `walship stats` shows: named, or with counts. */
	for (int peer = 0; peer < PROBE_MAX_PEERS && out->npeers < STATUS_MAX_PROBE_PEERS; peer++) {
		const struct probe_send *ps = &s->send[peer];
		char label[32];

		if (!s->peer[peer][0] && !probe_hist_count(&ps->sent) &&
		    !probe_hist_count(&ps->released))
			continue;
		snprintf(out->peers[out->npeers].addr, sizeof(out->peers[0].addr), "%s",
			 probe_peer_label(s, peer, label, sizeof(label)));
		quantiles_of(&ps->sent, &out->peers[out->npeers].sent);
		quantiles_of(&ps->released, &out->peers[out->npeers].released);
		out->npeers++;
	}
	free(s);
	return 0;
}

void probe_stop(struct probe *p)
{
	if (!p)
		return;
	if (!p->keep_pins)
		probe_unpin(p);
	probes_bpf__destroy(p->skel);
	close(p->lock_fd); /* (after the pins are gone) */
	free(p);
}

void probe_metrics(FILE *out, void *probe)
{
	struct probe *p = probe;
	struct probe_snapshot *snap;

	fprintf(out,
		"# HELP walship_probes_enabled 1 when the BPF latency probes are loaded.\n"
		"# TYPE walship_probes_enabled gauge\n"
		"walship_probes_enabled %d\n",
		p != NULL);
	snap = p ? malloc(sizeof(*snap)) : NULL;
	if (snap && probe_read(p, snap) == 0)
		probe_print_prometheus(out, snap);
	free(snap);
}
