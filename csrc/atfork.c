#include "atfork.h"

#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void prepare(void)
{
    pyconv_threads_atfork_prepare(); /* first: a task may allocate from the caches */
    pyconv_wcache_atfork_prepare();
    pyconv_buffer_atfork_prepare();
}

static void parent(void)
{
    pyconv_buffer_atfork_parent();
    pyconv_wcache_atfork_parent();
    pyconv_threads_atfork_parent();
}

static void child(void)
{
    pyconv_buffer_atfork_child();
    pyconv_wcache_atfork_child();
    pyconv_threads_atfork_child();
}

static void install(void)
{
    pthread_atfork(prepare, parent, child);
}

void pyconv_atfork_install(void)
{
    pthread_once(&once, install);
}
