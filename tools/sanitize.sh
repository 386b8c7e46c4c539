#!/usr/bin/env bash
# Runs the test suite against an AddressSanitizer + UBSan build of pyconv._conv.
#
#   tools/sanitize.sh [pytest arguments...]      (default: the whole suite, -q)
#
# The extension is built with PYCONV_SANITIZE=1 (setup.py: -fsanitize=address,
# undefined -fno-sanitize-recover=undefined -O1 -g) in a private copy of the
# tree, so the in-place build others import is never replaced by one that
# needs the ASan runtime. CPython itself is not instrumented, so:
#   - libasan is LD_PRELOADed (it must come first in the process);
#   - detect_leaks=0: CPython keeps memory alive until exit on purpose, and
#     LeakSanitizer would report all of it; pyconv's own leaks are measured by
#     tests/test_leaks.py and tools/leak_check.py instead;
#   - allocator_may_return_null=1: a refused huge allocation is NULL (NumPy
#     then raises MemoryError, as without ASan) instead of an ASan abort;
#   - PYTHONMALLOC=malloc: every Python object allocation goes through ASan's
#     malloc too (pymalloc's arenas would hide overruns of small objects).
# Any ASan report or UBSan error aborts the run with a non-zero exit status.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/pyconv-sanitize.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$root"
# the working tree as it is (committed or not), without build output
tar --exclude='*.so' --exclude=build --exclude='__pycache__' --exclude='.hypothesis' \
    --exclude='tools/fuzz/out' --exclude='tools/fuzz/corpus' --exclude='tools/fuzz/corpus-dwconv' \
    --exclude='tools/fuzz/corpus_pool' \
    -cf - setup.py pyproject.toml README.md csrc pyconv tests tools | tar -xf - -C "$work"
cd "$work"
CC="${CC:-gcc}" PYCONV_SANITIZE=1 python setup.py -q build_ext --inplace >build.log 2>&1 || {
    cat build.log
    exit 1
}

libasan="$("${CC:-gcc}" -print-file-name=libasan.so)"
export LD_PRELOAD="$libasan${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export PYTHONMALLOC=malloc
# the suite imports this copy: it is first on sys.path when run from here
python -c "import pyconv, sys; assert pyconv.__file__.startswith('$work'), pyconv.__file__"
if [[ $# -eq 0 ]]; then
    set -- -q
fi
python -m pytest -p no:cacheprovider "$@"
