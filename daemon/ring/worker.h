/* SPDX-License-Identifier: MIT */
/*
 * A worker thread for blocking work the event loop must not wait on (copying a WAL file
 * into the spool and fsyncing it).  Jobs run one at a time, in order, on the thread;
 * their completion callbacks run on the event loop, woken through an eventfd that the
 * ring reads.  The thread touches only what its job gives it.
 */
#ifndef WALSHIP_RING_WORKER_H
#define WALSHIP_RING_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring/ring.h"

struct worker_job {
	void (*run)(struct worker_job *job); /* on the worker thread */
	void (*done)(struct worker_job *job); /* on the event loop, after run */
	struct worker_job *next;
};

struct worker {
	struct ring *ring;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct worker_job *todo, **todo_tail;
	struct worker_job *done, **done_tail;
	unsigned int pending; /* submitted, done() not yet called */
	int event_fd;
	uint64_t event_buf;
	struct ring_op event_op;
	bool event_posted;
	bool stopping;
	bool started;
};

/* Start the thread.  Returns 0 or -errno (logged). */
int worker_start(struct worker *w, struct ring *r);

/* Queue @job; its done() runs on the event loop once run() has finished. */
void worker_submit(struct worker *w, struct worker_job *job);

/* Jobs submitted whose done() has not run yet. */
unsigned int worker_pending(const struct worker *w);

/* Finish queued jobs, stop and join the thread.  done() of jobs finished after the event
 * loop stopped is not called. */
void worker_stop(struct worker *w);

#endif /* WALSHIP_RING_WORKER_H */
