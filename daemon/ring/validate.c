// SPDX-License-Identifier: MIT
/* WAL validation by page headers through a ring of its own (validate.h). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "ring/validate.h"

int validate_ring_init(struct validate_ring *vr)
{
	int ret = io_uring_queue_init(VALIDATE_BATCH, &vr->ring, 0);

	vr->ready = ret == 0;
	return ret;
}

void validate_ring_exit(struct validate_ring *vr)
{
	if (vr->ready)
		io_uring_queue_exit(&vr->ring);
	vr->ready = false;
}

/*
 * Read the @n headers of the pages at @offset, @block apart, into @hdrs; @res[k] gets
 * each read's result (a failed read is reported there).  Returns 0 with every
 * completion reaped, or -errno when the ring itself failed (a partial submission, a
 * failed wait): requests may then be left in it, and the caller gives the ring up.
 */
static int read_headers(struct io_uring *ring, int fd, uint64_t offset, uint32_t block,
			unsigned int n, uint8_t (*hdrs)[WAL_PAGE_SHORT_HEADER], int *res)
{
	unsigned int reaped = 0, submitted;
	int ret;

	if (io_uring_sq_space_left(ring) < n)
		return -EBUSY; /* not with n <= VALIDATE_BATCH and every completion reaped */
	for (unsigned int k = 0; k < n; k++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		if (!sqe)
			return -EBUSY; /* checked above */
		io_uring_prep_read(sqe, fd, hdrs[k], WAL_PAGE_SHORT_HEADER,
				   offset + (uint64_t)k * block);
		io_uring_sqe_set_data64(sqe, k);
	}
	do
		ret = io_uring_submit_and_wait(ring, n);
	while (ret == -EINTR);
	submitted = ret < 0 ? 0 : (unsigned int)ret;
	/* Every read submitted is waited for, even when not all were: each writes into
	 * @hdrs, on the caller's stack, which must not be left before they complete.  (On a
	 * failure the caller gives the ring up, with the reads not submitted in it.) */
	while (reaped < submitted) {
		struct io_uring_cqe *cqe;
		int wret = io_uring_wait_cqe(ring, &cqe);

		if (wret == -EINTR)
			continue;
		if (wret < 0)
			return wret;
		res[io_uring_cqe_get_data64(cqe)] = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		reaped++;
	}
	if (ret < 0)
		return ret;
	return submitted == n ? 0 : -EIO;
}

/*
 * Feed @wv the header of the page at @offset, as a read of it gave it (@got: the read's
 * result, a negative errno or the bytes read), and step over the page's body.
 */
static int feed_header(struct wal_validator *wv, uint64_t offset, const uint8_t *hdr, int got,
		       uint32_t block)
{
	int ret;

	if (got < 0)
		return wal_validator_read_failed(wv, offset, got);
	ret = wal_validator_feed(wv, hdr, (size_t)got);
	if (ret || got < WAL_PAGE_SHORT_HEADER) /* shrank under us: end() says so */
		return ret ? ret : wal_validator_end(wv, NULL);
	return wal_validator_skip(wv, block - WAL_PAGE_SHORT_HEADER);
}

/* The header of the page at @offset with one pread (the ring is not there). */
static int feed_header_pread(int fd, struct wal_validator *wv, uint64_t offset, uint32_t block)
{
	uint8_t hdr[WAL_PAGE_SHORT_HEADER];
	ssize_t got;

	do
		got = pread(fd, hdr, sizeof(hdr), (off_t)offset);
	while (got < 0 && errno == EINTR);
	return feed_header(wv, offset, hdr, got < 0 ? -errno : (int)got, block);
}

int validate_fd_pages(struct validate_ring *vr, int fd, struct wal_validator *wv, uint64_t to)
{
	uint8_t hdrs[VALIDATE_BATCH][WAL_PAGE_SHORT_HEADER];
	int res[VALIDATE_BATCH];
	uint32_t block = wv->id.block_size;
	uint64_t offset = wv->offset;
	int ret = wv->error;

	if (!ret && (!wv->have_id || offset % block || to % block))
		return wal_validator_read_failed(wv, offset, -EINVAL); /* a caller's mistake */
	while (!ret && offset < to) {
		unsigned int n = (to - offset) / block < VALIDATE_BATCH ?
					 (unsigned int)((to - offset) / block) :
					 VALIDATE_BATCH;

		if (!vr || !vr->ready) {
			ret = feed_header_pread(fd, wv, offset, block);
			offset += block;
			continue;
		}
		ret = read_headers(&vr->ring, fd, offset, block, n, hdrs, res);
		if (ret < 0) {
			/* Not the file's fault: give the ring up, read the plain way. */
			log_warning("validating page headers through io_uring failed (%s); "
				    "reading pushed files without it from now on",
				    strerror(-ret));
			validate_ring_exit(vr);
			ret = 0;
			continue;
		}
		for (unsigned int k = 0; k < n && !ret; k++, offset += block)
			ret = feed_header(wv, offset, hdrs[k], res[k], block);
	}
	return ret;
}

int validate_fd_first_page(int fd, const struct wal_name *name, uint64_t size,
			   uint64_t expected_sysid, struct wal_validator *wv)
{
	uint8_t first[WAL_PAGE_LONG_HEADER];
	ssize_t got;
	int ret;

	ret = wal_validator_begin(wv, name, size, expected_sysid);
	if (ret)
		return ret;
	do
		got = pread(fd, first, sizeof(first), 0);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return wal_validator_read_failed(wv, 0, -errno);
	ret = wal_validator_feed(wv, first, (size_t)got);
	if (ret || !wv->have_id)
		return ret ? ret : wal_validator_end(wv, NULL); /* a short file */
	/* Segment sizes are powers of two of 1 MB or more, block sizes of 64 kB or less:
	 * the file is whole pages. */
	return wal_validator_skip(wv, wv->id.block_size - WAL_PAGE_LONG_HEADER);
}

int validate_fd(struct validate_ring *vr, int fd, const struct wal_name *name,
		uint64_t expected_sysid, struct wal_validator *wv, struct wal_identity *id)
{
	struct stat st;
	int ret;

	/* Other files, and a descriptor that is not a regular file: the plain way, which
	 * also words those errors. */
	if (!vr || !vr->ready ||
	    (name->kind != WAL_FILE_SEGMENT && name->kind != WAL_FILE_PARTIAL) ||
	    fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return wal_validate_fd(fd, name, expected_sysid, wv, id);
	ret = validate_fd_first_page(fd, name, (uint64_t)st.st_size, expected_sysid, wv);
	if (!ret && wv->offset < wv->file_size)
		ret = validate_fd_pages(vr, fd, wv, wv->file_size);
	return ret ? ret : wal_validator_end(wv, id);
}
