/* Raw Snappy decompression (google/snappy format_description.txt), for the
 * Snappy-compressed table blocks of V1 TensorFlow checkpoints. */
#ifndef PYCONV_SNAPPY_H
#define PYCONV_SNAPPY_H

#include <stddef.h>
#include <stdint.h>

/* Reads the stream's declared uncompressed length into *length.
 * Returns NULL or a static message saying what is wrong. */
const char *pyconv_snappy_length(const uint8_t *src, size_t n, uint64_t *length);

/* Decodes src[0..n) into dst[0..dst_len), where dst_len is the declared
 * length. Every literal and copy is bounds-checked against both buffers.
 * With dst NULL only checks the stream (nothing is written), so that the
 * output need not be allocated before the stream proved valid.
 * Returns NULL on success, else a static message. */
const char *pyconv_snappy_decompress(const uint8_t *src, size_t n, uint8_t *dst,
                                     size_t dst_len);

#endif
