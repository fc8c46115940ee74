// SPDX-License-Identifier: MIT
/*
 * fs_shutdown: a test-only disk failure.  Shuts down the file system mounted at PATH as
 * `xfs_io -x -c "shutdown"` does (the ioctl that ext4, XFS and f2fs share), without
 * flushing its journal: from then on every read, write, sync, open and unlink on it fails
 * with EIO, as on a disk that died, until it is unmounted and mounted again (the journal
 * replayed).  What was synced before stays on the device.
 *
 *   fs_shutdown PATH
 *
 * xfsprogs has the same command; this saves the test suite a package for one ioctl.
 * Exits 0 once the file system is shut down, 1 when the ioctl is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* include/uapi/linux/fs.h of newer kernels (FS_IOC_SHUTDOWN, FS_SHUTDOWN_FLAGS_NOLOGFLUSH);
 * ext4's EXT4_IOC_SHUTDOWN and XFS's XFS_IOC_GOINGDOWN are the same number. */
#define WS_IOC_SHUTDOWN _IOR('X', 125, uint32_t)
#define WS_SHUTDOWN_NOLOGFLUSH 0x2

int main(int argc, char **argv)
{
	uint32_t flags = WS_SHUTDOWN_NOLOGFLUSH;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: fs_shutdown PATH\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "fs_shutdown: could not open \"%s\": %s\n", argv[1],
			strerror(errno));
		return 2;
	}
	if (ioctl(fd, WS_IOC_SHUTDOWN, &flags) < 0) {
		fprintf(stderr, "fs_shutdown: could not shut down the file system of \"%s\": %s\n",
			argv[1], strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}
