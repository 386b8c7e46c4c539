#!/usr/bin/env bash
# The cost of blockwise summation (csrc/ukernels/igemm_blocked.inc), kernel
# against kernel: each SIMD tile built twice, with PYCONV_SUM_BLOCK 4096 and
# with blocking off, called alternately on one tile (thread CPU time, best of
# 30 rounds). Usage: tools/sumblock/run.sh [ks kc]...   (default: the suite's
# long reductions 9x512, 9x2048, 1x8192, and 9x256, which is one block)
set -euo pipefail
sizes=("$@")
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/build/sumblock"
mkdir -p "$out"
uk="$root/csrc/ukernels"
for v in blocked plain; do
    for t in "7 32 avx512" "6 16 avx2"; do
        set -- $t
        printf '#define ELEM_F64 0\n#define MR %s\n#define NR %s\n#define FN k_%s_%s\n#include "igemm_%s.inc"\n' \
            "$1" "$2" "$3" "$v" "$3" > "$out/k_${3}_$v.c"
        extra=()
        [[ $v == plain ]] && extra=('-DPYCONV_SUM_BLOCK=((size_t)-1)')
        ${CC:-gcc} -std=c11 -O3 -DNDEBUG -I"$uk" "${extra[@]}" -c "$out/k_${3}_$v.c" -o "$out/k_${3}_$v.o"
    done
done
${CC:-gcc} -O2 -I"$uk" "$root/tools/sumblock/bench.c" "$out"/k_*.o -o "$out/bench"
[[ ${#sizes[@]} -eq 0 ]] && sizes=(9 512 9 2048 1 8192 9 256)
for ((i = 0; i < ${#sizes[@]}; i += 2)); do
    for isa in avx512 avx2; do
        "$out/bench" "${sizes[i]}" "${sizes[i+1]}" "$isa"
    done
done
