#include "wcache.h"

#include "atfork.h"
#include "buffers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 256

struct pyconv_wcache_entry {
    struct pyconv_wcache_key key;
    void *block;
    size_t bytes;
    unsigned long used_at; /* for least-recently-used eviction */
    int in_use, valid;
    int pinned;            /* key.weights is pinned: outside the limit, never evicted */
    /* Trusted reuse (see pyconv_wcache_pin): the block was packed or checked
     * against weights and bias that were read-only under trusted pins, which
     * have not been let go since (epoch unchanged from acquire to release). */
    int verified;
    int trust_call;        /* the current user's call vouched for read-only arrays */
    unsigned long epoch, epoch_at_acquire;
    pthread_t user;        /* the thread that has it in use (if in_use) */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pyconv_wcache_entry slots[SLOTS]; /* block == NULL: free slot */
static size_t held, limit = (size_t)128 << 20;
static size_t pinned_held; /* bytes of pinned blocks (not in held) */
static unsigned long clock_now;

/* Pinned weight addresses with their pin counts (a multiset; grown with realloc). */
static const void **pins;
static size_t *pin_counts;
static size_t *pin_trusted; /* how many of an address's pins are trusted */
static size_t n_pins, pins_cap;

static size_t find_pin(const void *weights) /* holds lock; n_pins if absent */
{
    for (size_t i = 0; i < n_pins; i++)
        if (pins[i] == weights)
            return i;
    return n_pins;
}

/* NULL (no bias) or an address with a trusted pin. Holds lock. */
static int trusted_addr(const void *p)
{
    if (p == NULL)
        return 1;
    size_t i = find_pin(p);
    return i != n_pins && pin_trusted[i] > 0;
}

/* Every block packed from (or with the bias at) this address must be checked
 * again at its next use, also one in use right now. Holds lock. */
static void distrust(const void *p)
{
    for (size_t s = 0; s < SLOTS; s++)
        if (slots[s].block != NULL && (slots[s].key.weights == p || slots[s].key.bias == p)) {
            slots[s].verified = 0;
            slots[s].epoch++;
        }
}

/* fork(): the lock is taken in prepare, so the child's copy of the slots is
 * consistent. The child has only the thread that forked: a block it has in use
 * (it forked inside a call, from a signal handler in the Ctrl-C poll) stays in
 * use, to be released by that call; blocks other threads were using (or
 * allocating) may be half packed, so they are no longer valid and no longer
 * in use. */
void pyconv_wcache_atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

void pyconv_wcache_atfork_parent(void)
{
    pthread_mutex_unlock(&lock);
}

void pyconv_wcache_atfork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    pthread_t self = pthread_self();
    for (size_t i = 0; i < SLOTS; i++) {
        if (!slots[i].in_use || pthread_equal(slots[i].user, self))
            continue;
        if (slots[i].block == (void *)&slots[i]) { /* was being allocated: no block */
            if (slots[i].pinned)
                pinned_held -= slots[i].bytes;
            else
                held -= slots[i].bytes;
            memset(&slots[i], 0, sizeof(slots[i]));
            continue;
        }
        slots[i].valid = 0;
        slots[i].in_use = 0;
    }
}

static int same_key(const struct pyconv_wcache_key *a, const struct pyconv_wcache_key *b)
{
    return a->weights == b->weights && a->bias == b->bias && a->dtype == b->dtype &&
           a->kernel_h == b->kernel_h && a->kernel_w == b->kernel_w && a->in_c == b->in_c &&
           a->out_c == b->out_c && a->nr == b->nr && a->op == b->op &&
           a->stride_h == b->stride_h && a->stride_w == b->stride_w;
}

/* Frees blocks taken out of the cache (never under the lock: the tracemalloc
 * hook of pyconv_block_free may wait for the GIL). */
static void free_blocks(void **blocks, size_t *sizes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pyconv_block_free(blocks[i], sizes[i]);
}

/* Takes least recently used blocks not in use out of the cache until `extra`
 * more bytes fit under the limit and (if need_slot) a slot is free; returns
 * the free slot or SLOTS. Holds lock. */
static size_t evict_some(size_t extra, int need_slot, int pinned_too, void **out,
                         size_t *sizes, size_t *n_out);

static size_t evict(size_t extra, int need_slot, void **out, size_t *sizes, size_t *n_out)
{
    return evict_some(extra, need_slot, 0, out, sizes, n_out);
}

/* As evict; with pinned_too, pinned blocks not in use go as well (all of them). */
static size_t evict_some(size_t extra, int need_slot, int pinned_too, void **out,
                         size_t *sizes, size_t *n_out)
{
    for (;;) {
        size_t free_slot = SLOTS, oldest = SLOTS;
        for (size_t i = 0; i < SLOTS; i++) {
            if (slots[i].block == NULL) {
                if (free_slot == SLOTS)
                    free_slot = i;
            } else if (!slots[i].in_use && (!slots[i].pinned || pinned_too) &&
                       (oldest == SLOTS || slots[i].used_at < slots[oldest].used_at)) {
                oldest = i;
            }
        }
        if (held + extra <= limit && (free_slot != SLOTS || !need_slot) &&
            (!pinned_too || oldest == SLOTS))
            return free_slot;
        if (oldest == SLOTS)
            return SLOTS; /* everything left is in use (or pinned) */
        out[*n_out] = slots[oldest].block;
        sizes[(*n_out)++] = slots[oldest].bytes;
        if (slots[oldest].pinned)
            pinned_held -= slots[oldest].bytes;
        else
            held -= slots[oldest].bytes;
        memset(&slots[oldest], 0, sizeof(slots[oldest]));
    }
}

void *pyconv_wcache_acquire(const struct pyconv_wcache_key *key, size_t bytes,
                            struct pyconv_wcache_entry **entry, int *valid)
{
    return pyconv_wcache_acquire_trusted(key, bytes, entry, valid, 0);
}

void *pyconv_wcache_acquire_trusted(const struct pyconv_wcache_key *key, size_t bytes,
                                    struct pyconv_wcache_entry **entry, int *valid,
                                    int readonly)
{
    void *evicted[SLOTS];
    size_t sizes[SLOTS], n_evicted = 0;
    *entry = NULL;
    *valid = 0;
    pyconv_atfork_install();
    pthread_mutex_lock(&lock);
    size_t slot = SLOTS;
    int pinned = limit > 0 && key->weights != NULL && find_pin(key->weights) != n_pins;
    if (bytes <= limit || pinned) {
        for (size_t i = 0; i < SLOTS; i++) {
            if (slots[i].block != NULL && slots[i].bytes == bytes && same_key(&slots[i].key, key)) {
                slot = i;
                break;
            }
        }
        if (slot != SLOTS) {
            if (slots[slot].in_use) { /* another thread packs or runs with it: go private */
                pthread_mutex_unlock(&lock);
                return pyconv_block_alloc(bytes);
            }
            slots[slot].in_use = 1;
            slots[slot].user = pthread_self();
            slots[slot].used_at = ++clock_now;
            if (pinned && !slots[slot].pinned) { /* pinned since it was cached */
                slots[slot].pinned = 1;
                held -= bytes;
                pinned_held += bytes;
            }
            *entry = &slots[slot];
            *valid = slots[slot].valid;
            slots[slot].trust_call = readonly;
            slots[slot].epoch_at_acquire = slots[slot].epoch;
            if (*valid && slots[slot].verified && readonly && trusted_addr(key->weights) &&
                trusted_addr(key->bias))
                *valid = 2;
            void *block = slots[slot].block;
            pthread_mutex_unlock(&lock);
            return block;
        }
        /* a pinned block needs only a slot: its bytes are outside the limit */
        slot = evict(pinned ? 0 : bytes, 1, evicted, sizes, &n_evicted);
        if (slot != SLOTS) { /* reserve the slot and the bytes, allocate unlocked */
            slots[slot].key = *key;
            slots[slot].bytes = bytes;
            slots[slot].pinned = pinned;
            slots[slot].in_use = 1;
            slots[slot].user = pthread_self();
            slots[slot].valid = 0;
            slots[slot].verified = 0;
            slots[slot].trust_call = readonly;
            slots[slot].epoch_at_acquire = slots[slot].epoch;
            slots[slot].used_at = ++clock_now;
            slots[slot].block = (void *)&slots[slot]; /* placeholder: slot taken */
            if (pinned)
                pinned_held += bytes;
            else
                held += bytes;
        }
    }
    pthread_mutex_unlock(&lock);
    free_blocks(evicted, sizes, n_evicted);
    void *block = pyconv_block_alloc(bytes);
    if (slot == SLOTS)
        return block;
    pthread_mutex_lock(&lock);
    if (block == NULL) { /* give the reservation back */
        if (slots[slot].pinned)
            pinned_held -= bytes;
        else
            held -= bytes;
        memset(&slots[slot], 0, sizeof(slots[slot]));
    } else {
        slots[slot].block = block;
        *entry = &slots[slot];
    }
    pthread_mutex_unlock(&lock);
    return block;
}

void pyconv_wcache_release(struct pyconv_wcache_entry *entry, void *block, size_t bytes,
                           int valid)
{
    if (block == NULL)
        return;
    if (entry == NULL) {
        pyconv_block_free(block, bytes);
        return;
    }
    void *evicted[SLOTS];
    size_t sizes[SLOTS], n_evicted = 0;
    pthread_mutex_lock(&lock);
    entry->valid = valid;
    entry->verified = valid && entry->trust_call && entry->epoch == entry->epoch_at_acquire &&
                      trusted_addr(entry->key.weights) && trusted_addr(entry->key.bias);
    entry->in_use = 0;
    evict(0, 0, evicted, sizes, &n_evicted); /* the limit may have been lowered meanwhile */
    pthread_mutex_unlock(&lock);
    free_blocks(evicted, sizes, n_evicted);
}

size_t pyconv_wcache_set_limit(size_t bytes)
{
    pyconv_atfork_install();
    void *evicted[SLOTS];
    size_t sizes[SLOTS], n_evicted = 0;
    pthread_mutex_lock(&lock);
    size_t old = limit;
    limit = bytes;
    evict_some(0, 0, bytes == 0, evicted, sizes, &n_evicted); /* 0: off, pinned blocks too */
    pthread_mutex_unlock(&lock);
    free_blocks(evicted, sizes, n_evicted);
    return old;
}

size_t pyconv_wcache_bytes(void)
{
    pyconv_atfork_install();
    pthread_mutex_lock(&lock);
    size_t n = held + pinned_held;
    pthread_mutex_unlock(&lock);
    return n;
}

void pyconv_wcache_clear(void)
{
    pyconv_atfork_install();
    void *evicted[SLOTS];
    size_t sizes[SLOTS], n_evicted = 0;
    pthread_mutex_lock(&lock);
    size_t old = limit;
    limit = 0;
    evict_some(0, 0, 1, evicted, sizes, &n_evicted);
    limit = old;
    pthread_mutex_unlock(&lock);
    free_blocks(evicted, sizes, n_evicted);
}

int pyconv_wcache_pin(const void *weights, int trusted)
{
    pyconv_atfork_install();
    int rc = 0;
    pthread_mutex_lock(&lock);
    size_t i = find_pin(weights);
    if (trusted)
        distrust(weights); /* trust starts with this pin: blocks are checked once more */
    if (i != n_pins) {
        pin_counts[i]++;
        pin_trusted[i] += trusted != 0;
    } else {
        if (n_pins == pins_cap) {
            size_t cap = pins_cap ? 2 * pins_cap : 64;
            const void **np = realloc(pins, cap * sizeof(*pins));
            if (np != NULL)
                pins = np;
            size_t *nc = np ? realloc(pin_counts, cap * sizeof(*pin_counts)) : NULL;
            if (nc != NULL)
                pin_counts = nc;
            size_t *nt = nc ? realloc(pin_trusted, cap * sizeof(*pin_trusted)) : NULL;
            if (nt != NULL) {
                pin_trusted = nt;
                pins_cap = cap;
            }
        }
        if (n_pins < pins_cap) {
            pins[n_pins] = weights;
            pin_trusted[n_pins] = trusted != 0;
            pin_counts[n_pins++] = 1;
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void pyconv_wcache_unpin(const void *weights, int trusted)
{
    void *evicted[SLOTS];
    size_t sizes[SLOTS], n_evicted = 0;
    pthread_mutex_lock(&lock);
    size_t i = find_pin(weights);
    if (i != n_pins && trusted) {
        /* the array may be written from now on (Variable.assign unpins first):
         * whatever was packed from it is checked again, other pins or not */
        distrust(weights);
        if (pin_trusted[i] > 0)
            pin_trusted[i]--;
    }
    if (i != n_pins && --pin_counts[i] == 0) {
        pins[i] = pins[n_pins - 1];
        pin_counts[i] = pin_counts[n_pins - 1];
        pin_trusted[i] = pin_trusted[n_pins - 1];
        n_pins--;
        for (size_t s = 0; s < SLOTS; s++) {
            if (slots[s].block != NULL && slots[s].pinned && slots[s].key.weights == weights) {
                slots[s].pinned = 0;
                pinned_held -= slots[s].bytes;
                held += slots[s].bytes;
            }
        }
        evict(0, 0, evicted, sizes, &n_evicted); /* back under the limit */
    }
    pthread_mutex_unlock(&lock);
    free_blocks(evicted, sizes, n_evicted);
}
