#!/bin/sh
# Builds build/tilebench (see tools/tilebench.c) with candidate microkernel
# tiles generated from the templates csrc/ukernels/igemm_<isa>.inc, so tiles
# that lost (and are not in the tree) can be measured again.
#   CANDS="f32:avx512:7x32,7x16 f64:avx2:6x8" tools/tilebench.sh
#   CPUTIME=1 build/tilebench 1 f32 avx512 vgg      (usage: see tools/tilebench.c)
set -eu
cd "$(dirname "$0")/.."
CANDS="${CANDS:-f32:avx512:4x32,6x32,7x32,8x32,7x16,8x16,12x16,14x16,7x48,6x64
f32:avx2:4x16,5x16,6x16,3x32,4x24,7x8,8x8,12x8
f64:avx512:4x16,6x16,7x16,8x16,6x32,7x24,7x8,8x8,12x8,14x8
f64:avx2:4x8,5x8,6x8,3x16,4x12,7x4,8x4,12x4}"
gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
for group in $CANDS; do
    dt="${group%%:*}"; rest="${group#*:}"; isa="${rest%%:*}"
    f64=0; type=float
    if [ "$dt" = f64 ]; then f64=1; type=double; fi
    for tile in $(echo "${rest#*:}" | tr , ' '); do
        mr="${tile%x*}"; nr="${tile#*x}"
        printf '#define ELEM_F64 %s\n#define MR %s\n#define NR %s\n#define FN pyconv_%s_igemm_%s__%s_cand\n#include "igemm_%s.inc"\n' \
            "$f64" "$mr" "$nr" "$dt" "$tile" "$isa" "$isa" > "$gen/${dt}_${tile}_${isa}.c"
        echo "DECL($dt, $type, $mr, $nr, $isa)" >> "$gen/cands.h"
    done
done
mkdir -p build
${CC:-gcc} -std=c11 -O3 -DNDEBUG -Wall -Wextra -pthread -Icsrc -Icsrc/ukernels -I"$gen" \
    tools/tilebench.c csrc/conv.c csrc/eltwise.c csrc/atfork.c csrc/threads.c csrc/wcache.c csrc/buffers.c csrc/ukernels/*.c "$gen"/*.c -lm -o build/tilebench
