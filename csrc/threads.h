/* A small persistent thread pool running "parallel for" over task indices. */
#ifndef PYCONV_THREADS_H
#define PYCONV_THREADS_H

#include <stddef.h>

/* Runs fn(ctx, first, count) over [0, n_tasks) in chunks on up to n_threads
 * threads (the caller is one of them). task_cost (e.g. multiply-adds per
 * task) sizes the chunks; small jobs run on the caller alone. If another
 * call holds the pool, this one runs on the caller alone. Each task runs
 * exactly once and its result must not depend on which thread runs it.
 * `interrupted`, if given, is polled on the calling thread every ~20 ms;
 * non-zero stops handing out work and returns PYCONV_EINTR.
 *
 * Every task runs with the caller's floating-point control state (x86: MXCSR,
 * i.e. rounding mode, flush-to-zero and denormals-are-zero): workers adopt it
 * for the job and restore their own after, so results are the same for every
 * thread count whatever mode the caller set.
 *
 * fork() at any time is safe (atfork.h): the pool stops between chunks first,
 * so a child forked inside a job (from a signal handler run by `interrupted`)
 * finishes that job exactly, on its own thread. */
int pyconv_parallel_for(size_t n_tasks, size_t task_cost, size_t n_threads,
                        void (*fn)(void *ctx, size_t first, size_t count), void *ctx,
                        int (*interrupted)(void *), void *ictx);

#endif
