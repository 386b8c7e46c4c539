/* Persistent worker threads for pyconv_parallel_for. One job runs on the pool
 * at a time; a concurrent caller (another Python thread) runs its job on its
 * own thread instead of waiting, so callers never block each other. */
#define _GNU_SOURCE
#include "threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "conv.h"

#define MAX_WORKERS 255
/* Below this many multiply-adds a job runs on the caller: waking threads
 * costs more than it saves. */
#define MIN_PARALLEL_COST ((size_t)1 << 18)
/* Target multiply-adds per chunk: small enough to balance, large enough to
 * make the shared counter's traffic negligible. */
#define CHUNK_COST ((size_t)1 << 20)

struct job {
    void (*fn)(void *, size_t, size_t);
    void *ctx;
    size_t n_tasks, chunk;
    atomic_size_t next;
    atomic_int stop;
};

static pthread_mutex_t pool_owner = PTHREAD_MUTEX_INITIALIZER; /* held for a whole job */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;         /* guards the fields below */
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static size_t n_workers;      /* threads started */
static size_t job_workers;    /* workers taking part in the current job */
static size_t finished;       /* of those, how many are done */
static unsigned long generation;
/* generation when each worker was started: a worker that first runs after
 * the job it was started for was announced must still take part in it */
static unsigned long born_at[MAX_WORKERS];
static struct job *current;
static int atfork_registered;
/* The job the workers run lives here, not on its caller's stack: a caller
 * that never returns (a daemon thread ended by interpreter shutdown while it
 * polls for Ctrl-C) must not leave workers reading a dead stack. Only the
 * holder of pool_owner uses it. */
static struct job pool_job;

/* Takes chunks until none are left or the job is stopped. */
static void work_on(struct job *j)
{
    for (;;) {
        if (atomic_load_explicit(&j->stop, memory_order_relaxed))
            return;
        size_t first = atomic_fetch_add_explicit(&j->next, j->chunk, memory_order_relaxed);
        if (first >= j->n_tasks)
            return;
        size_t count = j->n_tasks - first < j->chunk ? j->n_tasks - first : j->chunk;
        j->fn(j->ctx, first, count);
    }
}

static void *worker_main(void *arg)
{
    size_t index = (size_t)arg;
    pthread_mutex_lock(&mu);
    unsigned long seen = born_at[index];
    for (;;) {
        while (generation == seen)
            pthread_cond_wait(&work_cv, &mu);
        seen = generation;
        if (index >= job_workers)
            continue;
        struct job *j = current;
        pthread_mutex_unlock(&mu);
        work_on(j);
        pthread_mutex_lock(&mu);
        if (++finished == job_workers)
            pthread_cond_signal(&done_cv);
    }
    return NULL;
}

/* The child of a fork has none of the parent's workers. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool_owner, NULL);
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&work_cv, NULL);
    pthread_cond_init(&done_cv, NULL);
    n_workers = 0;
    job_workers = 0;
    finished = 0;
    current = NULL;
}

/* Starts workers until `wanted` exist; returns how many do. Holds mu. */
static size_t ensure_workers(size_t wanted)
{
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, after_fork_child);
        atfork_registered = 1;
    }
    while (n_workers < wanted && n_workers < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        born_at[n_workers] = generation;
        int rc = pthread_create(&t, &attr, worker_main, (void *)n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        n_workers++;
    }
    return n_workers < wanted ? n_workers : wanted;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int pyconv_parallel_for(size_t n_tasks, size_t task_cost, size_t n_threads,
                        void (*fn)(void *ctx, size_t first, size_t count), void *ctx,
                        int (*interrupted)(void *), void *ictx)
{
    if (n_tasks == 0)
        return PYCONV_OK;
    if (task_cost == 0)
        task_cost = 1;
    struct job local;
    struct job *j = &local;

    size_t total = n_tasks > ((size_t)-1) / task_cost ? (size_t)-1 : n_tasks * task_cost;
    size_t helpers = 0;
    int own_pool = 0;
    if (n_threads > 1 && total >= MIN_PARALLEL_COST && n_tasks > 1 &&
        pthread_mutex_trylock(&pool_owner) == 0) {
        own_pool = 1;
        j = &pool_job;
        size_t wanted = n_threads - 1 < n_tasks - 1 ? n_threads - 1 : n_tasks - 1;
        pthread_mutex_lock(&mu);
        helpers = ensure_workers(wanted);
        pthread_mutex_unlock(&mu);
    }
    j->fn = fn;
    j->ctx = ctx;
    j->n_tasks = n_tasks;
    atomic_init(&j->next, 0);
    atomic_init(&j->stop, 0);
    size_t threads = helpers + 1;
    /* chunks of about CHUNK_COST, and at least 4 per thread for balance */
    size_t chunk = CHUNK_COST / task_cost;
    size_t balanced = n_tasks / (4 * threads);
    if (chunk > balanced)
        chunk = balanced;
    if (chunk == 0)
        chunk = 1;
    j->chunk = chunk;

    if (helpers > 0) {
        pthread_mutex_lock(&mu);
        current = j;
        job_workers = helpers;
        finished = 0;
        generation++;
        pthread_cond_broadcast(&work_cv);
        pthread_mutex_unlock(&mu);
    }

    /* The caller works too, polling for interruption between chunks. */
    int rc = PYCONV_OK;
    double last_poll = interrupted ? now_seconds() : 0.0;
    for (;;) {
        if (atomic_load_explicit(&j->stop, memory_order_relaxed))
            break;
        size_t first = atomic_fetch_add_explicit(&j->next, j->chunk, memory_order_relaxed);
        if (first >= n_tasks)
            break;
        size_t count = n_tasks - first < j->chunk ? n_tasks - first : j->chunk;
        fn(ctx, first, count);
        if (interrupted) {
            double t = now_seconds();
            if (t - last_poll > 0.02) {
                last_poll = t;
                if (interrupted(ictx)) {
                    atomic_store(&j->stop, 1);
                    rc = PYCONV_EINTR;
                }
            }
        }
    }

    if (helpers > 0) {
        pthread_mutex_lock(&mu);
        while (finished < job_workers)
            pthread_cond_wait(&done_cv, &mu);
        current = NULL;
        job_workers = 0;
        pthread_mutex_unlock(&mu);
    }
    if (own_pool)
        pthread_mutex_unlock(&pool_owner);
    return rc;
}
