#!/usr/bin/env bash
# Builds the libFuzzer target for the C operator and runs it.
#
#   tools/fuzz/run.sh [RUNS] [extra libFuzzer flags...]   fuzz RUNS executions (default 1000000)
#   tools/fuzz/run.sh replay                               run every committed regression seed once
#   tools/fuzz/run.sh threads [CALLERS]                    the thread pool under ThreadSanitizer
#   tools/fuzz/run.sh dwconv [RUNS|replay] [flags...]      the same for the depthwise operator
#                                                          (fuzz_dwconv.c; corpus-dwconv/,
#                                                          regressions-dwconv/)
#   tools/fuzz/run.sh pool [RUNS] [flags...]               the pool and eltwise operators (fuzz_pool.c)
#
# Needs clang with libFuzzer (Debian: apt-get install clang). The binary and
# the growing corpus live in tools/fuzz/out/ and tools/fuzz/corpus/ (both
# git-ignored); crashes are written to tools/fuzz/out/ as crash-<sha1>.
# A crash, once fixed, is copied to tools/fuzz/regressions/ and committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$here/out"
target=fuzz_conv
corpus="$here/corpus"
regressions="$here/regressions"
if [[ "${1:-}" == "dwconv" ]]; then
    target=fuzz_dwconv
    corpus="$here/corpus-dwconv"
    regressions="$here/regressions-dwconv"
    shift
fi
mkdir -p "$out" "$corpus" "$regressions"
CC="${CC:-clang}"

if [[ "${1:-}" == "threads" ]]; then
    "$CC" -std=c11 -g -O1 -fno-omit-frame-pointer -pthread -fsanitize=thread \
        -I"$root/csrc" "$root/csrc/threads.c" "$root/csrc/atfork.c" "$root/csrc/wcache.c" \
        "$root/csrc/buffers.c" "$here/stress_threads.c" -o "$out/stress_threads"
    TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
        exec "$out/stress_threads" "${2:-6}"
fi

# Same sources as the extension minus the Python glue (module.c). Kernels
# that need ISA flags declare them with target attributes; more flags can be
# given in PYCONV_FUZZ_CFLAGS.
cflags=(-std=c11 -g -O1 -fno-omit-frame-pointer -pthread
        -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
        -UNDEBUG ${PYCONV_FUZZ_CFLAGS:-} -I"$root/csrc" -I"$root/csrc/ukernels")
objs="$out/obj"
rm -rf "$objs" && mkdir -p "$objs"
for src in "$root"/csrc/conv.c "$root"/csrc/dwconv.c "$root"/csrc/atfork.c "$root"/csrc/threads.c \
           "$root"/csrc/wcache.c "$root"/csrc/buffers.c "$root"/csrc/pool.c "$root"/csrc/eltwise.c \
           "$root"/csrc/ukernels/*.c; do
    "$CC" "${cflags[@]}" -c "$src" -o "$objs/$(basename "${src%.c}").o"
done
"$CC" "${cflags[@]}" -fsanitize=fuzzer "$objs"/*.o "$here/fuzz_conv.c" -lm -o "$out/fuzz_conv"
"$CC" "${cflags[@]}" -fsanitize=fuzzer "$objs"/*.o "$here/fuzz_pool.c" -lm -o "$out/fuzz_pool"
"$CC" "${cflags[@]}" -fsanitize=fuzzer "$objs"/*.o "$here/fuzz_dwconv.c" -lm -o "$out/fuzz_dwconv"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [[ "${1:-}" == "pool" ]]; then
    shift
    runs="${1:-1000000}"
    shift || true
    mkdir -p "$here/corpus_pool"
    exec "$out/fuzz_pool" -runs="$runs" -max_len=2048 -print_final_stats=1 \
        -artifact_prefix="$out/pool-" "$@" "$here/corpus_pool"
fi

if [[ "${1:-}" == "replay" ]]; then
    shopt -s nullglob
    seeds=("$regressions"/*)
    if ((${#seeds[@]} == 0)); then
        echo "no regression seeds"
        exit 0
    fi
    # strict: known, unfixed bugs (see README.md) fail here too
    exec "$out/$target" "${seeds[@]}"
fi

runs="${1:-1000000}"
shift || true
# -max_len: 300 bytes cover every parameter plus a few hundred values
exec "$out/$target" -runs="$runs" -max_len=512 -print_final_stats=1 \
    -artifact_prefix="$out/" "$@" "$corpus" "$regressions"
