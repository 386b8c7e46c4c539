/* Persistent worker threads for pyconv_parallel_for. One job runs on the pool
 * at a time; a concurrent caller (another Python thread) runs its job on its
 * own thread instead of waiting, so callers never block each other. */
#define _GNU_SOURCE
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "atfork.h"
#include "conv.h"

/* Floating-point control state (rounding mode, flush-to-zero,
 * denormals-are-zero): a job runs with its caller's on every thread. A
 * library built with -ffast-math sets FTZ/DAZ on the thread that loads it;
 * workers started before keep their own, and without this a job's results
 * would depend on how its chunks were shared out. On x86 that state is MXCSR
 * (the kernels use SSE/AVX only, never x87); elsewhere the whole fenv_t. */
#if defined(__x86_64__) || (defined(__i386__) && defined(__SSE__))
typedef unsigned fp_state;
static inline fp_state fp_get(void) { return __builtin_ia32_stmxcsr(); }
static inline void fp_set(const fp_state *s) { __builtin_ia32_ldmxcsr(*s); }
/* the control bits only; the sticky exception flags (0-5) are each thread's */
static inline int fp_same(const fp_state *a, const fp_state *b)
{
    return ((*a ^ *b) & ~0x3fu) == 0;
}
#else
#include <fenv.h>
typedef fenv_t fp_state;
static inline fp_state fp_get(void)
{
    fenv_t e;
    fegetenv(&e);
    return e;
}
static inline void fp_set(const fp_state *s) { fesetenv(s); }
static inline int fp_same(const fp_state *a, const fp_state *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}
#endif

#define MAX_WORKERS 255
/* Below this many multiply-adds a job runs on the caller: waking threads
 * costs more than it saves. */
#define MIN_PARALLEL_COST ((size_t)1 << 18)
/* Target multiply-adds per chunk: small enough to balance, large enough to
 * make the shared counter's traffic negligible. */
#define CHUNK_COST ((size_t)1 << 20)
/* After a job a worker spins this long before sleeping, and the caller spins
 * as long for the workers to finish: a network calls one layer right after
 * another, and a sleeping worker may take a millisecond to be scheduled
 * again (sometimes on the caller's busy core). OpenMP runtimes do the same. */
#define SPIN_SECONDS 0.0005

struct job {
    void (*fn)(void *, size_t, size_t);
    void *ctx;
    size_t n_tasks, chunk;
    atomic_size_t next;
    atomic_int stop;
    fp_state fp; /* the caller's floating-point control state */
};

static pthread_mutex_t pool_owner = PTHREAD_MUTEX_INITIALIZER; /* held for a whole job */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;         /* guards the fields below */
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static size_t n_workers;      /* threads started */
static size_t job_workers;    /* workers that may take part in the current job */
/* Workers that joined the current job, and of those how many are done. A
 * worker joins only while the job is open (current != NULL), so the caller
 * waits for the workers that are working, never for one still waking up. */
static size_t joined;
static atomic_size_t finished;
static atomic_ulong generation; /* bumped (under mu) for every job */
/* generation when each worker was started: a worker that first runs after
 * the job it was started for was announced must still take part in it */
static unsigned long born_at[MAX_WORKERS];
static struct job *current;
/* fork() (pyconv_threads_atfork_*): while fork_pause is set, workers stop
 * between chunks; in_work counts the workers inside a job, parked those of
 * them stopped. owner is the thread holding pool_owner while owner_set. */
static atomic_int fork_pause;
static size_t in_work, parked;
static pthread_cond_t park_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t resume_cv = PTHREAD_COND_INITIALIZER;
static pthread_t owner;
static atomic_int owner_set;
/* The job the workers run lives here, not on its caller's stack: a caller
 * that never returns (a daemon thread ended by interpreter shutdown while it
 * polls for Ctrl-C) must not leave workers reading a dead stack. Only the
 * holder of pool_owner uses it. */
static struct job pool_job;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until *value != unwanted (returns 1) or SPIN_SECONDS pass (returns 0). */
static int spin_while_ulong(atomic_ulong *value, unsigned long unwanted)
{
    double deadline = now_seconds() + SPIN_SECONDS;
    for (;;) {
        for (int i = 0; i < 16; i++) {
            if (atomic_load_explicit(value, memory_order_acquire) != unwanted)
                return 1;
            cpu_relax();
        }
        sched_yield(); /* if we share a core with the caller, let it run */
        if (now_seconds() > deadline)
            return 0;
    }
}

static int spin_until_size(atomic_size_t *value, size_t wanted)
{
    double deadline = now_seconds() + SPIN_SECONDS;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (atomic_load_explicit(value, memory_order_acquire) == wanted)
                return 1;
            cpu_relax();
        }
        if (now_seconds() > deadline)
            return 0;
    }
}

/* Waits (holding no chunk) while a fork is being prepared. */
static void park_for_fork(void)
{
    pthread_mutex_lock(&mu);
    parked++;
    pthread_cond_broadcast(&park_cv);
    while (atomic_load(&fork_pause))
        pthread_cond_wait(&resume_cv, &mu);
    parked--;
    pthread_mutex_unlock(&mu);
}

/* Takes chunks until none are left or the job is stopped. A chunk once taken
 * is always finished: a fork waits for that (pyconv_threads_atfork_prepare). */
static void work_on(struct job *j)
{
    for (;;) {
        if (atomic_load_explicit(&fork_pause, memory_order_acquire))
            park_for_fork();
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
    pthread_mutex_unlock(&mu);
    for (;;) {
        spin_while_ulong(&generation, seen);
        pthread_mutex_lock(&mu);
        while (atomic_load(&generation) == seen)
            pthread_cond_wait(&work_cv, &mu);
        seen = atomic_load(&generation);
        if (index >= job_workers || current == NULL) { /* not wanted, or already closed */
            pthread_mutex_unlock(&mu);
            continue;
        }
        struct job *j = current;
        joined++;
        in_work++;
        pthread_mutex_unlock(&mu);
        /* the job runs in its caller's floating-point mode; ours comes back after */
        fp_state mine = fp_get();
        int adopt = !fp_same(&mine, &j->fp);
        if (adopt)
            fp_set(&j->fp);
        work_on(j);
        if (adopt)
            fp_set(&mine);
        pthread_mutex_lock(&mu);
        in_work--;
        atomic_fetch_add(&finished, 1);
        pthread_cond_signal(&done_cv);
        pthread_cond_broadcast(&park_cv); /* a fork may be waiting for us */
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

/* fork(): the pool stops before the fork. With mu held, every worker inside a
 * job finishes the chunk it holds and parks (waiting for at most one chunk
 * each); mu stays held across fork(). So in the child every chunk taken from
 * the forking thread's own job is complete, and that thread computes the
 * chunks nobody took yet when it goes on: its call is exact. (A job of another
 * thread is moot in the child: that thread does not exist there.) */
void pyconv_threads_atfork_prepare(void)
{
    pthread_mutex_lock(&mu);
    atomic_store(&fork_pause, 1);
    while (parked < in_work)
        pthread_cond_wait(&park_cv, &mu);
}

void pyconv_threads_atfork_parent(void)
{
    atomic_store(&fork_pause, 0);
    pthread_cond_broadcast(&resume_cv);
    pthread_mutex_unlock(&mu);
}

/* The child has none of the parent's workers. */
void pyconv_threads_atfork_child(void)
{
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&work_cv, NULL);
    pthread_cond_init(&done_cv, NULL);
    pthread_cond_init(&park_cv, NULL);
    pthread_cond_init(&resume_cv, NULL);
    /* the pool is the forking thread's if it was inside a job (it forked in
     * the Ctrl-C poll); then it keeps it, else nobody holds it */
    int mine = atomic_load(&owner_set) && pthread_equal(owner, pthread_self());
    pthread_mutex_init(&pool_owner, NULL);
    if (mine)
        pthread_mutex_lock(&pool_owner);
    else
        atomic_store(&owner_set, 0);
    n_workers = 0;
    job_workers = 0;
    joined = 0;
    in_work = 0;
    parked = 0;
    atomic_store(&fork_pause, 0);
    atomic_store(&finished, 0);
    current = NULL;
}

/* Starts workers until `wanted` exist; returns how many do. Holds mu. */
static size_t ensure_workers(size_t wanted)
{
    while (n_workers < wanted && n_workers < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        born_at[n_workers] = atomic_load(&generation);
        int rc = pthread_create(&t, &attr, worker_main, (void *)n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        n_workers++;
    }
    return n_workers < wanted ? n_workers : wanted;
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
    pyconv_atfork_install();
    if (n_threads > 1 && total >= MIN_PARALLEL_COST && n_tasks > 1 &&
        pthread_mutex_trylock(&pool_owner) == 0) {
        own_pool = 1;
        owner = pthread_self();
        atomic_store(&owner_set, 1);
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
    j->fp = fp_get();
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
        joined = 0;
        atomic_store(&finished, 0);
        atomic_fetch_add(&generation, 1);
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
        /* close the job to late risers, then wait for those who joined */
        pthread_mutex_lock(&mu);
        current = NULL;
        size_t working = joined;
        pthread_mutex_unlock(&mu);
        if (atomic_load(&finished) < working)
            spin_until_size(&finished, working);
        pthread_mutex_lock(&mu);
        while (atomic_load(&finished) < joined)
            pthread_cond_wait(&done_cv, &mu);
        job_workers = 0;
        pthread_mutex_unlock(&mu);
    }
    if (own_pool) {
        atomic_store(&owner_set, 0);
        pthread_mutex_unlock(&pool_owner);
    }
    return rc;
}
