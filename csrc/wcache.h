/* Packed weights kept between calls. Packing the weights costs a strided
 * copy per call, and on several threads worse: the packed lines the previous
 * call left in every core's cache must be invalidated one by one before they
 * are rewritten (measured: 1 MiB of 1x1 weights, 2 threads, 60-280 us of a
 * 270 us layer). A cached block is instead checked, read-only, against the
 * weights and bias it was packed from; only if a byte differs (the weights
 * were changed in place) is it packed again, so results never depend on the
 * cache. No Python here. */
#ifndef PYCONV_WCACHE_H
#define PYCONV_WCACHE_H

#include <stddef.h>

/* What a packed block was packed from and how. */
struct pyconv_wcache_key {
    const void *weights, *bias;
    size_t dtype, kernel_h, kernel_w, in_c, out_c, nr;
    /* whose packing: 0 the igemm conv (conv.c), 1 the depthwise conv (dwconv.c),
     * 2 the transposed conv's phases, 3 its columns (deconv.c) */
    size_t op;
    size_t stride_h, stride_w; /* the strides deconv.c's phase layout depends on, else 0 */
};

struct pyconv_wcache_entry;

/* A block of `bytes` (a multiple of 64; 64-byte aligned) for packed weights with this key.
 * *entry is the cache entry holding it (NULL for a private block, when the
 * cache is off, full of blocks in use or the block is larger than its limit);
 * *valid is 1 if the block holds a complete packing for this key, to be
 * checked, 0 if it must be packed. NULL when memory is exhausted. */
void *pyconv_wcache_acquire(const struct pyconv_wcache_key *key, size_t bytes,
                            struct pyconv_wcache_entry **entry, int *valid);

/* As pyconv_wcache_acquire, for a caller that vouches (readonly != 0) that the
 * weights and bias are read-only right now. *valid is then 2 when the block
 * may be used unchecked: it was packed or checked in an earlier such call
 * while the weights and bias (if any) had trusted pins that have been held
 * ever since (see pyconv_wcache_pin). */
void *pyconv_wcache_acquire_trusted(const struct pyconv_wcache_key *key, size_t bytes,
                                    struct pyconv_wcache_entry **entry, int *valid,
                                    int readonly);

/* Gives the block (of `bytes`, as acquired) back; `valid` says whether it now
 * holds a complete packing. */
void pyconv_wcache_release(struct pyconv_wcache_entry *entry, void *block, size_t bytes,
                           int valid);

/* Byte limit of the cached blocks (0: off); returns the previous one. Lowering
 * it frees the blocks not in use that no longer fit. */
size_t pyconv_wcache_set_limit(size_t bytes);

/* Bytes held in cached blocks (in use or not). */
size_t pyconv_wcache_bytes(void);

/* Frees every cached block not in use (pinned ones too). */
void pyconv_wcache_clear(void);

/* Pins the weights at `weights` (counted: pin twice, unpin twice): blocks packed
 * from them stay cached outside the byte limit and are never evicted for
 * room, until the last unpin (then they are ordinary cached blocks) or
 * pyconv_wcache_clear / a limit of 0. Reuse is still checked byte for byte.
 * The caller keeps the weights alive while pinned. -1 if out of memory. */
int pyconv_wcache_pin(const void *weights, int trusted);
void pyconv_wcache_unpin(const void *weights, int trusted);

/* A trusted pin is a promise that the memory is not written while the pin is
 * held (pyconv.variables makes the array read-only and lets go of the pin
 * before assigning). Blocks packed from trusted-pinned weights (and bias) are
 * checked once, then reused unchecked by readonly callers until a trusted pin
 * of the weights or the bias is let go; making or letting go of a trusted pin
 * makes every block of that address be checked again. Unpin with the same
 * `trusted` as the pin. */

#endif
