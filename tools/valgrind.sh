#!/usr/bin/env bash
# Runs a subset of the tests under valgrind memcheck.
#
#   tools/valgrind.sh [pytest arguments...]
#
# Default subset: test_nn.py (every ISA, layout and dtype through the C
# operator; hypothesis with the 'dev' profile), the pyconv.nn and C-operator
# cases of test_bad_inputs.py and the conv/pool cases of test_layouts.py.
# The extension is built with PYCONV_DEBUG=1 (-O1 -g, asserts on) in a
# private copy of the tree. PYTHONMALLOC=malloc makes every allocation visible
# to memcheck. Memory errors (invalid reads/writes, uses of uninitialised
# values, bad frees) and definitely-lost blocks fail the run; the "possibly
# lost" and "still reachable" memory of CPython's own caches is not reported.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/pyconv-valgrind.XXXXXX")"
# VALGRIND_KEEP=1 keeps the copy and the logs (printed at the end)
[[ -n "${VALGRIND_KEEP:-}" ]] || trap 'rm -rf "$work"' EXIT

cd "$root"
tar --exclude='*.so' --exclude=build --exclude='__pycache__' --exclude='.hypothesis' \
    --exclude='tools/fuzz/out' --exclude='tools/fuzz/corpus' --exclude='tools/fuzz/corpus-dwconv' \
    --exclude='tools/fuzz/corpus_pool' \
    -cf - setup.py pyproject.toml README.md csrc pyconv tests tools | tar -xf - -C "$work"
cd "$work"
PYCONV_DEBUG=1 python setup.py -q build_ext --inplace >build.log 2>&1 || {
    cat build.log
    exit 1
}
if [[ $# -eq 0 ]]; then
    set -- -q tests/test_nn.py \
        "tests/test_bad_inputs.py::test_nn_bad_arguments" \
        "tests/test_bad_inputs.py::test_the_c_operator_refuses_overflowing_sizes_itself" \
        "tests/test_bad_inputs.py::test_huge_shapes_fail_before_allocating" \
        "tests/test_bad_inputs.py::test_nan_bias_reaches_its_channel_only" \
        tests/test_layouts.py -k "not batch_norm and not property"
fi
# the interpreter itself, not a wrapper script (pyenv shims are shell scripts)
python_exe="$(python -c 'import sys; print(sys.executable)')"
export PYTHONMALLOC=malloc HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-dev}"
valgrind --tool=memcheck --leak-check=full \
    --show-leak-kinds=definite --track-origins=yes --num-callers=40 \
    --log-file="$work/valgrind.%p.log" \
    "$python_exe" -m pytest -p no:cacheprovider "$@" && status=0 || status=$?

# CPython (its cyclic GC walks memory memcheck considers uninitialised) and
# ld.so produce errors of their own; what counts is any error or definitely
# lost block with a frame in pyconv's extension.
"$python_exe" - "$work"/valgrind.*.log <<'PY' || status=1
import re, sys

ours = re.compile(r"_conv\.cpython|csrc/|\((conv|module|threads|table)\.c:|igemm|pyconv_")
errors = ours_errors = 0
for path in sys.argv[1:]:
    text = open(path).read()
    records = re.split(r"\n==\d+== \n", text)
    for rec in records:
        head = re.search(r"==\d+== (Invalid|Conditional|Use of uninitialised|Syscall param|"
                         r"Mismatched|Source and destination|Argument|.*definitely lost)", rec)
        if not head:
            continue
        errors += 1
        if ours.search(rec):
            ours_errors += 1
            print(rec.strip(), "\n")
print(f"valgrind: {errors} error/leak records in total, {ours_errors} with a pyconv frame")
sys.exit(1 if ours_errors else 0)
PY
[[ -z "${VALGRIND_KEEP:-}" ]] || echo "logs: $work/valgrind.*.log"
exit "$status"
