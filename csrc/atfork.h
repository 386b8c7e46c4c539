/* fork() safety for every lock and every piece of shared state in csrc/.
 *
 * One pthread_atfork registration (made once, by the first call that takes any
 * of pyconv's locks) runs the handlers below in a fixed order:
 *   prepare: the thread pool stops (every worker finishes the chunk it holds
 *            and waits; its lock stays held), then the weight cache's lock,
 *            then the buffer cache's lock are taken;
 *   parent:  the reverse: buffer cache, weight cache, pool (workers resume);
 *   child:   the same order as parent, each module making its state that of
 *            a process whose only thread is the one that forked.
 * So the child never finds a lock held by a thread it does not have, every
 * cache is consistent, and a job of the forking thread is complete except for
 * chunks nobody took yet (which that thread goes on to compute). A holder of
 * any of these locks never waits for anything while holding it (no GIL, no
 * other pyconv lock, no allocation hook), so prepare always gets them.
 * tools/ROBUSTNESS.md has the audit of every static in csrc/. */
#ifndef PYCONV_ATFORK_H
#define PYCONV_ATFORK_H

/* Registers the handlers (once; cheap to call again). */
void pyconv_atfork_install(void);

/* Per module, called by atfork.c only. */
void pyconv_threads_atfork_prepare(void);
void pyconv_threads_atfork_parent(void);
void pyconv_threads_atfork_child(void);
void pyconv_wcache_atfork_prepare(void);
void pyconv_wcache_atfork_parent(void);
void pyconv_wcache_atfork_child(void);
void pyconv_buffer_atfork_prepare(void);
void pyconv_buffer_atfork_parent(void);
void pyconv_buffer_atfork_child(void);

#endif
