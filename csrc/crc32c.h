/* CRC-32C (Castagnoli), the checksum of TensorFlow's checkpoint files. */
#ifndef PYCONV_CRC32C_H
#define PYCONV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of `crc`'s data followed by buf[0..n): pass 0 to start, the
 * previous result to continue (init and final xor 0xFFFFFFFF are applied
 * inside, as in TF's crc32c::Extend). */
uint32_t pyconv_crc32c_extend(uint32_t crc, const void *buf, size_t n);

/* "sse4.2" or "slice-by-8": the implementation chosen for this CPU. */
const char *pyconv_crc32c_impl(void);

#endif
