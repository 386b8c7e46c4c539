#define _GNU_SOURCE
#include "buffers.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "atfork.h"

/* Blocks below this size are not cached: malloc reuses small freed memory
 * by itself; large blocks come from mmap and return to the system on free. */
#define CACHE_MIN_BYTES ((size_t)1 << 20)
#define CACHE_SLOTS 16
/* A cached block serves a request only if it wastes at most a quarter. */
#define MAX_WASTE_DIV 4

struct slot {
    void *block;
    size_t capacity;
};

/* Guards the fields below. Held only for a few loads and stores: blocks are
 * allocated and freed (and the tracemalloc hooks called) outside it, so
 * pyconv's atfork prepare handler always gets it soon (atfork.h). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot slots[CACHE_SLOTS]; /* oldest first */
static size_t n_slots, cached_bytes;
static size_t cache_limit = (size_t)512 << 20;
static void (*on_alloc)(void *, size_t);
static void (*on_free)(void *, size_t);

void pyconv_buffer_hooks(void (*allocated)(void *, size_t), void (*freed)(void *, size_t))
{
    on_alloc = allocated;
    on_free = freed;
}

void *pyconv_block_alloc(size_t bytes)
{
    void *block = aligned_alloc(64, bytes);
    if (block != NULL && on_alloc)
        on_alloc(block, bytes);
    return block;
}

void pyconv_block_free(void *block, size_t bytes)
{
    if (block == NULL)
        return;
    if (on_free)
        on_free(block, bytes);
    free(block);
}

static size_t round_up(size_t n, size_t to)
{
    return n > (size_t)-1 - (to - 1) ? 0 : (n + to - 1) / to * to;
}

/* fork(): taken in prepare, so the child's copy of the cache is consistent;
 * blocks other threads had acquired are simply not the child's to release. */
void pyconv_buffer_atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

void pyconv_buffer_atfork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

void pyconv_buffer_atfork_child(void)
{
    pthread_mutex_init(&lock, NULL);
}

void *pyconv_buffer_acquire(size_t bytes, size_t *capacity)
{
    pyconv_atfork_install();
    size_t want = round_up(bytes ? bytes : 1, 64);
    if (want == 0)
        return NULL;
    if (want >= CACHE_MIN_BYTES) {
        pthread_mutex_lock(&lock);
        size_t best = n_slots;
        for (size_t i = 0; i < n_slots; i++) {
            size_t cap = slots[i].capacity;
            if (cap >= want && cap - want <= want / MAX_WASTE_DIV &&
                (best == n_slots || cap < slots[best].capacity))
                best = i;
        }
        if (best < n_slots) {
            void *block = slots[best].block;
            *capacity = slots[best].capacity;
            cached_bytes -= slots[best].capacity;
            for (size_t i = best + 1; i < n_slots; i++)
                slots[i - 1] = slots[i];
            n_slots--;
            pthread_mutex_unlock(&lock);
            return block;
        }
        pthread_mutex_unlock(&lock);
    }
    void *block = pyconv_block_alloc(want);
    if (block == NULL)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (want >= ((size_t)4 << 20)) /* as NumPy does: fewer, cheaper page faults */
        madvise((void *)((size_t)block & ~(size_t)4095), want, MADV_HUGEPAGE);
#endif
    *capacity = want;
    return block;
}

/* Blocks taken out of the cache under the lock, freed after it. */
struct evicted {
    size_t n;
    struct slot blocks[CACHE_SLOTS];
};

static void free_evicted(const struct evicted *e)
{
    for (size_t i = 0; i < e->n; i++)
        pyconv_block_free(e->blocks[i].block, e->blocks[i].capacity);
}

/* Takes the oldest cached blocks out until `extra` more bytes (and, if
 * need_slot, one more block) fit. Holds lock. */
static void make_room(size_t extra, int need_slot, struct evicted *e)
{
    while (n_slots > 0 &&
           (cached_bytes + extra > cache_limit || (need_slot && n_slots == CACHE_SLOTS))) {
        e->blocks[e->n++] = slots[0];
        cached_bytes -= slots[0].capacity;
        for (size_t i = 1; i < n_slots; i++)
            slots[i - 1] = slots[i];
        n_slots--;
    }
}

int pyconv_buffer_release(void *block, size_t capacity)
{
    if (block == NULL)
        return 1;
    pyconv_atfork_install();
    if (capacity >= CACHE_MIN_BYTES) {
        struct evicted e = {0};
        pthread_mutex_lock(&lock);
        if (capacity <= cache_limit) {
            make_room(capacity, 1, &e);
            slots[n_slots].block = block;
            slots[n_slots].capacity = capacity;
            n_slots++;
            cached_bytes += capacity;
            pthread_mutex_unlock(&lock);
            free_evicted(&e);
            return 0;
        }
        pthread_mutex_unlock(&lock);
    }
    pyconv_block_free(block, capacity);
    return 1;
}

size_t pyconv_buffer_set_cache_limit(size_t bytes)
{
    struct evicted e = {0};
    pyconv_atfork_install();
    pthread_mutex_lock(&lock);
    size_t old = cache_limit;
    cache_limit = bytes;
    make_room(0, 0, &e);
    pthread_mutex_unlock(&lock);
    free_evicted(&e);
    return old;
}

size_t pyconv_buffer_cached_bytes(void)
{
    pyconv_atfork_install();
    pthread_mutex_lock(&lock);
    size_t n = cached_bytes;
    pthread_mutex_unlock(&lock);
    return n;
}

void pyconv_buffer_clear(void)
{
    struct evicted e = {0};
    pyconv_atfork_install();
    pthread_mutex_lock(&lock);
    size_t old = cache_limit;
    cache_limit = 0;
    make_room(0, 0, &e);
    cache_limit = old;
    pthread_mutex_unlock(&lock);
    free_evicted(&e);
}
