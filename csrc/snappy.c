/* Raw Snappy decompression. The Python twin (pyconv/_snappy.py) is the
 * readable reference the tests compare with; this one exists because the
 * element loop in Python decoded compressible data at ~3 MB/s. */
#include "snappy.h"

#include <string.h>

static const char *read_varint32(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (*p >= end)
            return "truncated varint";
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            if (v > 0xFFFFFFFFu)
                return "snappy length larger than 32 bits";
            *out = v;
            return NULL;
        }
    }
    return "snappy length varint longer than 5 bytes";
}

const char *pyconv_snappy_length(const uint8_t *src, size_t n, uint64_t *length)
{
    const uint8_t *p = src;
    return read_varint32(&p, src + n, length);
}

const char *pyconv_snappy_decompress(const uint8_t *src, size_t n, uint8_t *dst, size_t dst_len)
{
    const uint8_t *p = src, *end = src + n;
    uint64_t declared;
    const char *err = read_varint32(&p, end, &declared);
    if (err != NULL)
        return err;
    if (declared != dst_len)
        return "snappy output buffer does not match the declared length";
    size_t o = 0;
    while (p < end) {
        uint8_t tag = *p++;
        size_t length, offset;
        switch (tag & 3) {
        case 0: /* literal */
            length = tag >> 2;
            if (length >= 60) {
                size_t extra = length - 59;
                if ((size_t)(end - p) < extra)
                    return "snappy literal length runs past the end";
                length = 0;
                for (size_t i = 0; i < extra; i++)
                    length |= (size_t)p[i] << (8 * i);
                p += extra;
            }
            length += 1;
            if (length > (size_t)(end - p) || length > dst_len - o)
                return "snappy literal runs past the end of its input or output";
            if (dst != NULL)
                memcpy(dst + o, p, length);
            p += length;
            o += length;
            continue;
        case 1:
            if (p >= end)
                return "snappy copy runs past the end";
            length = 4 + ((tag >> 2) & 7);
            offset = ((size_t)(tag >> 5) << 8) | *p++;
            break;
        case 2:
            if (end - p < 2)
                return "snappy copy runs past the end";
            length = 1 + (tag >> 2);
            offset = (size_t)p[0] | ((size_t)p[1] << 8);
            p += 2;
            break;
        default:
            if (end - p < 4)
                return "snappy copy runs past the end";
            length = 1 + (tag >> 2);
            offset = (size_t)p[0] | ((size_t)p[1] << 8) | ((size_t)p[2] << 16) |
                     ((size_t)p[3] << 24);
            p += 4;
            break;
        }
        if (offset == 0 || offset > o)
            return "snappy copy offset is invalid (zero or before the start)";
        if (length > dst_len - o)
            return "snappy copy runs past the declared length";
        if (dst != NULL) {
            uint8_t *d = dst + o;
            const uint8_t *s = d - offset;
            if (offset >= length) {
                memcpy(d, s, length);
            } else {
                for (size_t i = 0; i < length; i++) /* overlapping: byte by byte */
                    d[i] = s[i];
            }
        }
        o += length;
    }
    if (o != dst_len)
        return "snappy block decodes to fewer bytes than it declares";
    return NULL;
}
