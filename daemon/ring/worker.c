// SPDX-License-Identifier: MIT
/*
 * A worker thread with completions delivered on the event loop (see worker.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/log.h"
#include "ring/worker.h"

static void worker_event_post(struct worker *w);

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct worker_job *job;

		while (!w->todo && !w->stopping)
			pthread_cond_wait(&w->wake, &w->lock);
		if (!w->todo)
			break;
		job = w->todo;
		w->todo = job->next;
		if (!w->todo)
			w->todo_tail = &w->todo;
		pthread_mutex_unlock(&w->lock);

		job->run(job);

		pthread_mutex_lock(&w->lock);
		job->next = NULL;
		*w->done_tail = job;
		w->done_tail = &job->next;
		/* Fails only when the counter is saturated, and then a wake-up is pending. */
		(void)!write(w->event_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void worker_event_done(struct ring_op *op, int res, uint32_t flags)
{
	struct worker *w = container_of(op, struct worker, event_op);
	struct worker_job *list;

	(void)res;
	(void)flags;
	w->event_posted = false;
	pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = NULL;
	w->done_tail = &w->done;
	pthread_mutex_unlock(&w->lock);
	while (list) {
		struct worker_job *job = list;

		list = job->next;
		w->pending--;
		job->done(job);
	}
	worker_event_post(w);
}

static void worker_event_post(struct worker *w)
{
	struct io_uring_sqe *sqe;

	if (w->event_posted || w->event_fd < 0)
		return;
	w->event_op.cb = worker_event_done;
	sqe = ring_sqe(w->ring, &w->event_op);
	io_uring_prep_read(sqe, w->event_fd, &w->event_buf, sizeof(w->event_buf), 0);
	w->event_posted = true;
}

int worker_start(struct worker *w, struct ring *r)
{
	int ret;

	memset(w, 0, sizeof(*w));
	w->ring = r;
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	w->event_fd = eventfd(0, EFD_CLOEXEC);
	if (w->event_fd < 0) {
		ret = -errno;
		log_error("could not create eventfd: %s", strerror(errno));
		return ret;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	ret = pthread_create(&w->thread, NULL, worker_main, w);
	if (ret) {
		log_error("could not start worker thread: %s", strerror(ret));
		close(w->event_fd);
		w->event_fd = -1;
		return -ret;
	}
	w->started = true;
	worker_event_post(w);
	return 0;
}

void worker_submit(struct worker *w, struct worker_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&w->lock);
	*w->todo_tail = job;
	w->todo_tail = &job->next;
	w->pending++;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

unsigned int worker_pending(const struct worker *w)
{
	return w->pending;
}

void worker_stop(struct worker *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->started = false;
	close(w->event_fd);
	w->event_fd = -1;
	/* The ring (and its pending read of event_fd) is torn down by the caller. */
}
