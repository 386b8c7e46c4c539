/* Stress test of the thread pool (csrc/threads.c), built with ThreadSanitizer
 * by `tools/fuzz/run.sh threads`.
 *
 * Several caller threads run pyconv_parallel_for at the same time, as Python
 * threads do, with random task counts, costs, thread counts and sometimes an
 * interrupt callback that stops the job. Checks: every task runs exactly once
 * (or, after an interrupt, at most once), the call returns PYCONV_EINTR only
 * when it was interrupted, and nothing deadlocks (a watchdog aborts). TSan
 * reports any data race in the pool. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conv.h"
#include "threads.h"

struct job_state {
    size_t n_tasks;
    atomic_uint *runs; /* per task */
    unsigned spin;     /* work per task */
};

static void run_tasks(void *ctx, size_t first, size_t count)
{
    struct job_state *s = ctx;
    volatile unsigned sink = 0;
    for (size_t t = first; t < first + count; t++) {
        for (unsigned i = 0; i < s->spin; i++)
            sink += i;
        atomic_fetch_add_explicit(&s->runs[t], 1, memory_order_relaxed);
    }
    (void)sink;
}

struct stopper {
    int polls_before_stop; /* < 0: never */
    int polls;
};

static int maybe_stop(void *ctx)
{
    struct stopper *s = ctx;
    s->polls++;
    return s->polls_before_stop >= 0 && s->polls > s->polls_before_stop;
}

static atomic_long progress, interrupted_jobs;

static void *caller(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg;
    int rounds = 300;
    for (int r = 0; r < rounds; r++) {
        struct job_state s;
        s.n_tasks = (size_t)(rand_r(&seed) % 5000);
        /* now and then a job long enough (> 20 ms) for the interrupt poll */
        s.spin = (unsigned)(rand_r(&seed) % 16 == 0 ? 20000 : rand_r(&seed) % 200);
        s.runs = calloc(s.n_tasks + 1, sizeof(atomic_uint));
        if (s.runs == NULL)
            abort();
        size_t cost = (size_t)1 << (rand_r(&seed) % 24); /* below and above the pool's threshold */
        size_t threads = 1 + (size_t)(rand_r(&seed) % 8);
        struct stopper stop = {(rand_r(&seed) % 4 == 0) ? (int)(rand_r(&seed) % 3) : -1, 0};
        int use_stop = rand_r(&seed) % 2;
        int rc = pyconv_parallel_for(s.n_tasks, cost, threads, run_tasks, &s,
                                     use_stop ? maybe_stop : NULL, use_stop ? &stop : NULL);
        int stopped = use_stop && stop.polls_before_stop >= 0 &&
                      stop.polls > stop.polls_before_stop;
        if (rc == PYCONV_EINTR && !stopped) {
            fprintf(stderr, "EINTR without an interrupt\n");
            abort();
        }
        if (rc != PYCONV_OK && rc != PYCONV_EINTR) {
            fprintf(stderr, "unexpected status %d\n", rc);
            abort();
        }
        for (size_t t = 0; t < s.n_tasks; t++) {
            unsigned n = atomic_load(&s.runs[t]);
            if (n > 1 || (n == 0 && rc == PYCONV_OK)) {
                fprintf(stderr, "task %zu of %zu ran %u times (rc %d, threads %zu)\n", t,
                        s.n_tasks, n, rc, threads);
                abort();
            }
        }
        free(s.runs);
        if (rc == PYCONV_EINTR)
            atomic_fetch_add(&interrupted_jobs, 1);
        atomic_fetch_add(&progress, 1);
    }
    return NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;
    long last = -1;
    for (;;) {
        sleep(20);
        long now = atomic_load(&progress);
        if (now == last) {
            fprintf(stderr, "stress_threads: no progress for 20 s: deadlock\n");
            abort();
        }
        last = now;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int callers = argc > 1 ? atoi(argv[1]) : 6;
    pthread_t dog;
    pthread_create(&dog, NULL, watchdog, NULL);
    pthread_detach(dog);
    pthread_t *t = calloc((size_t)callers, sizeof(pthread_t));
    for (int i = 0; i < callers; i++)
        pthread_create(&t[i], NULL, caller, (void *)(size_t)(i + 1));
    for (int i = 0; i < callers; i++)
        pthread_join(t[i], NULL);
    printf("stress_threads: %ld jobs (%ld interrupted) from %d concurrent callers; every task "
           "ran exactly once (at most once when interrupted)\n",
           atomic_load(&progress), atomic_load(&interrupted_jobs), callers);
    free(t);
    return 0;
}
