/* Output buffers: 64-byte aligned blocks, with a small cache of large freed
 * blocks so that a model called in a loop reuses its outputs' memory instead
 * of having the kernel map and zero fresh pages every call. */
#ifndef PYCONV_BUFFERS_H
#define PYCONV_BUFFERS_H

#include <stddef.h>

/* A block of at least `bytes` bytes, 64-byte aligned, or NULL. *capacity
 * receives its real size, to be passed back to pyconv_buffer_release. */
void *pyconv_buffer_acquire(size_t bytes, size_t *capacity);

/* Gives a block back: kept for reuse if it is large and fits the cache's
 * limit (the oldest cached blocks are freed to make room), else freed.
 * Returns 1 if it was freed, 0 if cached. */
int pyconv_buffer_release(void *block, size_t capacity);

/* A 64-byte aligned block of `bytes` (a multiple of 64) straight from the
 * system, or NULL, and its release: the two calls every cached block of
 * pyconv (outputs here, packed weights in wcache.c) is made and freed with,
 * so the hooks below see all of them. */
void *pyconv_block_alloc(size_t bytes);
void pyconv_block_free(void *block, size_t bytes);

/* Called with every block taken from or given back to the system (for
 * tracemalloc); either may be NULL. */
void pyconv_buffer_hooks(void (*allocated)(void *block, size_t capacity),
                         void (*freed)(void *block, size_t capacity));

/* Cache limit in bytes (0 disables the cache); returns the previous one.
 * Lowering it frees what no longer fits. */
size_t pyconv_buffer_set_cache_limit(size_t bytes);

/* Bytes now held in the cache. */
size_t pyconv_buffer_cached_bytes(void);

/* Frees every cached block. */
void pyconv_buffer_clear(void);

#endif
