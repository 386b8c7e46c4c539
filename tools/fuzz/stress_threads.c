/* Stress test of the thread pool (csrc/threads.c), built with ThreadSanitizer
 * by `tools/fuzz/run.sh threads`.
 *
 * Several caller threads run pyconv_parallel_for at the same time, as Python
 * threads do, with random task counts, costs, thread counts and sometimes an
 * interrupt callback that stops the job. Checks: every task runs exactly once
 * (or, after an interrupt, at most once), the call returns PYCONV_EINTR only
 * when it was interrupted, and nothing deadlocks (a watchdog aborts). TSan
 * reports any data race in the pool.
 *
 * fork() too (csrc/atfork.c): now and then a poll forks, as a Python signal
 * handler run by the Ctrl-C poll may; the child must finish the job it
 * inherited with every task run exactly once, on its own, and exit; and a
 * forker thread forks while the callers compute, its children running one
 * 2-thread job each. A child that hangs (or fails) makes the parent abort. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
    int fork_at_poll;      /* 0: never */
    pid_t child;           /* forked in a poll (parent side), else 0 */
    int in_child;          /* this is the forked child */
};

static int maybe_stop(void *ctx)
{
    struct stopper *s = ctx;
    s->polls++;
    if (s->fork_at_poll && s->polls == s->fork_at_poll && !s->in_child) {
        pid_t pid = fork();
        if (pid < 0)
            abort();
        if (pid == 0)
            s->in_child = 1; /* goes on with the job, alone */
        else
            s->child = pid;
    }
    return s->polls_before_stop >= 0 && s->polls > s->polls_before_stop;
}

/* 0 if the child exited with status 0 within 20 s; kills it otherwise. */
static int reap(pid_t pid)
{
    for (int i = 0; i < 20000; i++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
        usleep(1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static atomic_long forks, poll_forks;

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
        struct stopper stop = {(rand_r(&seed) % 4 == 0) ? (int)(rand_r(&seed) % 3) : -1, 0,
                               0, 0, 0};
        int use_stop = rand_r(&seed) % 2;
        if (use_stop && stop.polls_before_stop < 0 && threads > 1 && rand_r(&seed) % 2 == 0)
            stop.fork_at_poll = 1; /* fork in the first poll (jobs > 20 ms only) */
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
        if (stop.in_child)
            _exit(0); /* the inherited job was exact */
        if (stop.child != 0) {
            if (reap(stop.child) != 0) {
                fprintf(stderr, "a child forked in a poll hung or failed\n");
                abort();
            }
            atomic_fetch_add(&poll_forks, 1);
        }
        if (rc == PYCONV_EINTR)
            atomic_fetch_add(&interrupted_jobs, 1);
        atomic_fetch_add(&progress, 1);
    }
    return NULL;
}

static atomic_int callers_done;

/* Forks while the callers compute; each child runs one 2-thread job. */
static void *forker(void *arg)
{
    (void)arg;
    unsigned seed = 77;
    while (!atomic_load(&callers_done)) {
        usleep(2000 + rand_r(&seed) % 8000);
        pid_t pid = fork();
        if (pid < 0)
            abort();
        if (pid == 0) {
            struct job_state s = {3000, calloc(3001, sizeof(atomic_uint)), 100};
            if (s.runs == NULL || pyconv_parallel_for(s.n_tasks, (size_t)1 << 20, 2, run_tasks,
                                                      &s, NULL, NULL) != PYCONV_OK)
                _exit(1);
            for (size_t t = 0; t < s.n_tasks; t++)
                if (atomic_load(&s.runs[t]) != 1)
                    _exit(2);
            _exit(0);
        }
        if (reap(pid) != 0) {
            fprintf(stderr, "a child forked while others computed hung or failed\n");
            abort();
        }
        atomic_fetch_add(&forks, 1);
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
    pthread_t fk;
    pthread_create(&fk, NULL, forker, NULL);
    for (int i = 0; i < callers; i++)
        pthread_join(t[i], NULL);
    atomic_store(&callers_done, 1);
    pthread_join(fk, NULL);
    printf("stress_threads: %ld jobs (%ld interrupted) from %d concurrent callers, %ld children "
           "forked in a poll and %ld beside; every task ran exactly once (at most once when "
           "interrupted)\n",
           atomic_load(&progress), atomic_load(&interrupted_jobs), callers,
           atomic_load(&poll_forks), atomic_load(&forks));
    free(t);
    return 0;
}
