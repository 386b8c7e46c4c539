/* pyconv._conv: the only C file that knows Python and NumPy. It validates its
 * arguments again (the Python layer is not trusted), makes arrays contiguous,
 * aligned and native-endian, releases the GIL and calls the operator. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PY_ARRAY_UNIQUE_SYMBOL pyconv_ARRAY_API
#include <numpy/arrayobject.h>

#include <stdlib.h>
#include <string.h>

#include "buffers.h"
#include "conv.h"
#include "deconv.h"
#include "wcache.h"

static const struct pyconv_ukernels *active_kernels; /* changed only with the GIL held */
static Py_ssize_t num_threads = 1;

struct interrupt_ctx {
    PyThreadState *state;
};

/* Polled by the operator between chunks on the calling thread: takes the GIL
 * briefly so Ctrl-C (and any other signal handler) can run. */
static int check_signals(void *arg)
{
    struct interrupt_ctx *ctx = arg;
    PyEval_RestoreThread(ctx->state);
    int failed = PyErr_CheckSignals();
    ctx->state = PyEval_SaveThread();
    return failed != 0;
}

static int as_size(const char *fn, PyObject *obj, const char *name, Py_ssize_t minimum,
                   size_t *out)
{
    Py_ssize_t v = PyLong_AsSsize_t(obj);
    if (v == -1 && PyErr_Occurred()) {
        int too_large = PyErr_ExceptionMatches(PyExc_OverflowError);
        PyErr_Clear();
        if (too_large)
            PyErr_Format(PyExc_ValueError, "%s: %s must be below 2**63, got %R", fn, name, obj);
        else
            PyErr_Format(PyExc_TypeError, "%s: %s must be an int, got %R", fn, name, obj);
        return -1;
    }
    if (v < minimum) {
        PyErr_Format(PyExc_ValueError, "%s: %s must be >= %zd, got %zd", fn, name, minimum, v);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/* A contiguous, aligned, native-endian array of `typenum`, or NULL with a
 * TypeError naming the argument. Never casts between dtypes. */
static PyArrayObject *usable_array(const char *fn, PyObject *obj, int typenum, int ndim,
                                   const char *name)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a numpy.ndarray, got %s", fn, name,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (PyArray_TYPE(arr) != typenum) {
        PyErr_Format(PyExc_TypeError, "%s: %s must have dtype %s, got %R", fn, name,
                     typenum == NPY_DOUBLE ? "float64" : "float32",
                     (PyObject *)PyArray_DESCR(arr));
        return NULL;
    }
    if (PyArray_NDIM(arr) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s: %s must have rank %d, got rank %d", fn, name, ndim,
                     PyArray_NDIM(arr));
        return NULL;
    }
    return (PyArrayObject *)PyArray_FROM_OTF(obj, typenum, NPY_ARRAY_IN_ARRAY);
}

/* Outputs live in 64-byte aligned blocks (NumPy's allocator gives 16, and a
 * 512-bit store that straddles two cache lines costs up to 15% on
 * store-bound layers) from buffers.c, which also keeps large freed blocks
 * for reuse: a fresh 100 MB output costs ~10 ms of page faults here, as much
 * as the convolution. The array's base is an OutputBuffer that gives the
 * block back when the array goes. */
typedef struct {
    PyObject_HEAD
    void *block;
    size_t capacity;
} OutputBuffer;

static void output_buffer_dealloc(OutputBuffer *self)
{
    pyconv_buffer_release(self->block, self->capacity);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject OutputBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyconv._conv.OutputBuffer",
    .tp_basicsize = sizeof(OutputBuffer),
    .tp_dealloc = (destructor)output_buffer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The memory of a pyconv output array (returned to pyconv's cache when freed).",
};

/* tracemalloc sees output memory as it sees NumPy's (in its own domain) */
#define TRACE_DOMAIN 0x70636f6e /* 'pcon' */
static void trace_alloc(void *block, size_t size)
{
    PyTraceMalloc_Track(TRACE_DOMAIN, (uintptr_t)block, size);
}
static void trace_free(void *block, size_t size)
{
    (void)size;
    PyTraceMalloc_Untrack(TRACE_DOMAIN, (uintptr_t)block);
}

static PyArrayObject *new_output_array(int nd, npy_intp *dims, int typenum)
{
    size_t nbytes = typenum == NPY_DOUBLE ? sizeof(double) : sizeof(float);
    for (int i = 0; i < nd; i++) {
        if (__builtin_mul_overflow(nbytes, (size_t)dims[i], &nbytes) ||
            nbytes > (size_t)NPY_MAX_INTP) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    OutputBuffer *buf = PyObject_New(OutputBuffer, &OutputBufferType);
    if (buf == NULL)
        return NULL;
    buf->block = pyconv_buffer_acquire(nbytes, &buf->capacity);
    if (buf->block == NULL) {
        buf->capacity = 0;
        Py_DECREF(buf);
        PyErr_NoMemory();
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)PyArray_NewFromDescr(
        &PyArray_Type, PyArray_DescrFromType(typenum), nd, dims, NULL, buf->block,
        NPY_ARRAY_CARRAY, NULL);
    if (arr == NULL) {
        Py_DECREF(buf);
        return NULL;
    }
    if (PyArray_SetBaseObject(arr, (PyObject *)buf) < 0) { /* steals buf */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyDoc_STRVAR(conv2d_doc,
             "conv2d(input, filters, bias, pad_top, pad_bottom, pad_left, pad_right,\n"
             "       stride_h, stride_w, dilation_h, dilation_w, activation) -> ndarray\n\n"
             "The raw operator: NHWC input, HWIO filters, bias [cout] or None, all of one\n"
             "dtype (float32 or float64); explicit pads; activation 0 none, 1 relu, 2 relu6.\n"
             "Use pyconv.nn.conv2d instead: it handles padding names, layouts and dtypes.");

static PyObject *py_conv2d(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 12) {
        PyErr_Format(PyExc_TypeError, "conv2d() takes 12 positional arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (!PyArray_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "conv2d: input must be a numpy.ndarray, got %s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    int typenum = PyArray_TYPE((PyArrayObject *)args[0]);
    if (typenum != NPY_FLOAT && typenum != NPY_DOUBLE) {
        PyErr_Format(PyExc_TypeError, "conv2d: input must be float32 or float64, got %R",
                     (PyObject *)PyArray_DESCR((PyArrayObject *)args[0]));
        return NULL;
    }
    struct pyconv_conv_params p;
    memset(&p, 0, sizeof(p));
    size_t act;
    static const char *const int_names[] = {"pad_top",    "pad_bottom", "pad_left",
                                            "pad_right",  "stride_h",   "stride_w",
                                            "dilation_h", "dilation_w", "activation"};
    size_t *const int_slots[] = {&p.pad_top,    &p.pad_bottom, &p.pad_left,
                                 &p.pad_right,  &p.stride_h,   &p.stride_w,
                                 &p.dilation_h, &p.dilation_w, &act};
    for (int i = 0; i < 9; i++)
        if (as_size("conv2d", args[3 + i], int_names[i], i < 4 ? 0 : (i < 8 ? 1 : 0),
                    int_slots[i]) < 0)
            return NULL;
    if (act > 2) {
        PyErr_Format(PyExc_ValueError,
                     "conv2d: activation must be 0 (none), 1 (relu) or 2 (relu6), got %zu", act);
        return NULL;
    }
    p.activation = (enum pyconv_activation)act;
    p.dtype = typenum == NPY_DOUBLE ? PYCONV_F64 : PYCONV_F32;

    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *out = NULL;
    x = usable_array("conv2d", args[0], typenum, 4, "input");
    if (x == NULL)
        goto fail;
    w = usable_array("conv2d", args[1], typenum, 4, "filters");
    if (w == NULL)
        goto fail;
    if (args[2] != Py_None) {
        b = usable_array("conv2d", args[2], typenum, 1, "bias");
        if (b == NULL)
            goto fail;
    }
    const npy_intp *xs = PyArray_DIMS(x), *ws = PyArray_DIMS(w);
    if (ws[2] != xs[3]) {
        PyErr_Format(PyExc_ValueError,
                     "conv2d: filters have %zd input channels but the input has %zd "
                     "(input shape (%zd, %zd, %zd, %zd), filters shape (%zd, %zd, %zd, %zd))",
                     (Py_ssize_t)ws[2], (Py_ssize_t)xs[3], (Py_ssize_t)xs[0], (Py_ssize_t)xs[1],
                     (Py_ssize_t)xs[2], (Py_ssize_t)xs[3], (Py_ssize_t)ws[0], (Py_ssize_t)ws[1],
                     (Py_ssize_t)ws[2], (Py_ssize_t)ws[3]);
        goto fail;
    }
    if (b != NULL && PyArray_DIM(b, 0) != ws[3]) {
        PyErr_Format(PyExc_ValueError, "conv2d: bias must have %zd elements (filters' "
                     "num_outputs), got %zd", (Py_ssize_t)ws[3], (Py_ssize_t)PyArray_DIM(b, 0));
        goto fail;
    }
    p.batch = (size_t)xs[0];
    p.in_h = (size_t)xs[1];
    p.in_w = (size_t)xs[2];
    p.in_c = (size_t)xs[3];
    p.kernel_h = (size_t)ws[0];
    p.kernel_w = (size_t)ws[1];
    p.out_c = (size_t)ws[3];

    char err[PYCONV_ERRLEN];
    size_t out_h, out_w;
    if (pyconv_conv_output_shape(&p, &out_h, &out_w, err) != PYCONV_OK) {
        PyErr_Format(PyExc_ValueError, "conv2d: %s", err);
        goto fail;
    }
    npy_intp dims[4] = {(npy_intp)p.batch, (npy_intp)out_h, (npy_intp)out_w, (npy_intp)p.out_c};
    out = new_output_array(4, dims, typenum);
    if (out == NULL)
        goto fail;
    if (PyArray_SIZE(out) == 0)
        goto done;

    /* Everything from planning (weight packing) to the last tile runs
     * without the GIL; the arrays are kept alive by our references. */
    struct pyconv_conv_op *op = NULL;
    const struct pyconv_ukernels *kernels = active_kernels;
    size_t threads = (size_t)num_threads;
    struct interrupt_ctx ictx;
    ictx.state = PyEval_SaveThread();
    int rc = pyconv_conv_create(&p, kernels, PyArray_DATA(w),
                                b != NULL ? PyArray_DATA(b) : NULL, &op, err);
    if (rc == PYCONV_OK) {
        pyconv_conv_setup(op, PyArray_DATA(x), PyArray_DATA(out));
        rc = pyconv_conv_run(op, threads, check_signals, &ictx);
        pyconv_conv_destroy(op);
    }
    PyEval_RestoreThread(ictx.state);
    if (rc == PYCONV_ENOMEM) {
        PyErr_NoMemory();
        goto fail;
    }
    if (rc == PYCONV_EINVAL) {
        PyErr_Format(PyExc_ValueError, "conv2d: %s", err);
        goto fail;
    }
    if (rc == PYCONV_EINTR) {
        if (!PyErr_Occurred())
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        goto fail;
    }
done:
    Py_DECREF(x);
    Py_DECREF(w);
    Py_XDECREF(b);
    return (PyObject *)out;
fail:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    Py_XDECREF(out);
    return NULL;
}

/* ---- transposed convolution (deconv.c) ---- */

PyDoc_STRVAR(conv2d_transpose_doc,
             "conv2d_transpose(input, filters, bias, out_h, out_w, pad_top, pad_bottom,\n"
             "                 pad_left, pad_right, stride_h, stride_w, activation) -> ndarray\n\n"
             "The raw operator: NHWC input, filters [kh, kw, out, in], bias [out] or None, all\n"
             "of one dtype (float32 or float64); the output size and the forward convolution's\n"
             "explicit pads, which must agree with the input size; activation 0 none, 1 relu,\n"
             "2 relu6. Use pyconv.nn.conv2d_transpose instead.");

static PyObject *py_conv2d_transpose(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    static const char fn[] = "conv2d_transpose";
    if (nargs != 12) {
        PyErr_Format(PyExc_TypeError, "%s() takes 12 positional arguments (%zd given)", fn,
                     nargs);
        return NULL;
    }
    if (!PyArray_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s: input must be a numpy.ndarray, got %s", fn,
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    int typenum = PyArray_TYPE((PyArrayObject *)args[0]);
    if (typenum != NPY_FLOAT && typenum != NPY_DOUBLE) {
        PyErr_Format(PyExc_TypeError, "%s: input must be float32 or float64, got %R", fn,
                     (PyObject *)PyArray_DESCR((PyArrayObject *)args[0]));
        return NULL;
    }
    struct pyconv_deconv_params p;
    memset(&p, 0, sizeof(p));
    size_t act;
    static const char *const int_names[] = {"out_h",     "out_w",    "pad_top",
                                            "pad_bottom", "pad_left", "pad_right",
                                            "stride_h",  "stride_w", "activation"};
    size_t *const int_slots[] = {&p.out_h,    &p.out_w,     &p.pad_top,
                                 &p.pad_bottom, &p.pad_left, &p.pad_right,
                                 &p.stride_h, &p.stride_w,   &act};
    static const Py_ssize_t minimum[] = {1, 1, 0, 0, 0, 0, 1, 1, 0};
    for (int i = 0; i < 9; i++)
        if (as_size(fn, args[3 + i], int_names[i], minimum[i], int_slots[i]) < 0)
            return NULL;
    if (act > 2) {
        PyErr_Format(PyExc_ValueError,
                     "%s: activation must be 0 (none), 1 (relu) or 2 (relu6), got %zu", fn, act);
        return NULL;
    }
    p.activation = (enum pyconv_activation)act;
    p.dtype = typenum == NPY_DOUBLE ? PYCONV_F64 : PYCONV_F32;

    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *out = NULL;
    x = usable_array(fn, args[0], typenum, 4, "input");
    if (x == NULL)
        goto fail;
    w = usable_array(fn, args[1], typenum, 4, "filters");
    if (w == NULL)
        goto fail;
    if (args[2] != Py_None) {
        b = usable_array(fn, args[2], typenum, 1, "bias");
        if (b == NULL)
            goto fail;
    }
    const npy_intp *xs = PyArray_DIMS(x), *ws = PyArray_DIMS(w);
    if (ws[3] != xs[3]) {
        PyErr_Format(PyExc_ValueError,
                     "%s: filters have %zd input channels (their last axis) but the input has "
                     "%zd (input shape (%zd, %zd, %zd, %zd), filters shape (%zd, %zd, %zd, %zd))",
                     fn, (Py_ssize_t)ws[3], (Py_ssize_t)xs[3], (Py_ssize_t)xs[0],
                     (Py_ssize_t)xs[1], (Py_ssize_t)xs[2], (Py_ssize_t)xs[3], (Py_ssize_t)ws[0],
                     (Py_ssize_t)ws[1], (Py_ssize_t)ws[2], (Py_ssize_t)ws[3]);
        goto fail;
    }
    if (b != NULL && PyArray_DIM(b, 0) != ws[2]) {
        PyErr_Format(PyExc_ValueError,
                     "%s: bias must have %zd elements (filters' output channels), got %zd", fn,
                     (Py_ssize_t)ws[2], (Py_ssize_t)PyArray_DIM(b, 0));
        goto fail;
    }
    p.batch = (size_t)xs[0];
    p.in_h = (size_t)xs[1];
    p.in_w = (size_t)xs[2];
    p.in_c = (size_t)xs[3];
    p.kernel_h = (size_t)ws[0];
    p.kernel_w = (size_t)ws[1];
    p.out_c = (size_t)ws[2];

    char err[PYCONV_ERRLEN];
    if (pyconv_deconv_check(&p, err) != PYCONV_OK) {
        PyErr_Format(PyExc_ValueError, "%s: %s", fn, err);
        goto fail;
    }
    npy_intp dims[4] = {(npy_intp)p.batch, (npy_intp)p.out_h, (npy_intp)p.out_w,
                        (npy_intp)p.out_c};
    out = new_output_array(4, dims, typenum);
    if (out == NULL)
        goto fail;
    if (PyArray_SIZE(out) == 0)
        goto done;

    struct pyconv_deconv_op *op = NULL;
    const struct pyconv_ukernels *kernels = active_kernels;
    size_t threads = (size_t)num_threads;
    struct interrupt_ctx ictx;
    ictx.state = PyEval_SaveThread();
    int rc = pyconv_deconv_create(&p, kernels, PyArray_DATA(w),
                                  b != NULL ? PyArray_DATA(b) : NULL, &op, err);
    if (rc == PYCONV_OK) {
        pyconv_deconv_setup(op, PyArray_DATA(x), PyArray_DATA(out));
        rc = pyconv_deconv_run(op, threads, check_signals, &ictx);
        pyconv_deconv_destroy(op);
    }
    PyEval_RestoreThread(ictx.state);
    if (rc == PYCONV_ENOMEM) {
        PyErr_NoMemory();
        goto fail;
    }
    if (rc == PYCONV_EINVAL) {
        PyErr_Format(PyExc_ValueError, "%s: %s", fn, err);
        goto fail;
    }
    if (rc == PYCONV_EINTR) {
        if (!PyErr_Occurred())
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        goto fail;
    }
done:
    Py_DECREF(x);
    Py_DECREF(w);
    Py_XDECREF(b);
    return (PyObject *)out;
fail:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    Py_XDECREF(out);
    return NULL;
}

/* ---- end of transposed convolution ---- */

static PyObject *py_set_num_threads(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return NULL;
        PyErr_Clear();
        n = 0; /* out of range: reported below with the value */
    }
    if (n < 1 || n > 256) {
        PyErr_Format(PyExc_ValueError, "set_num_threads: n must be between 1 and 256, got %R",
                     arg);
        return NULL;
    }
    num_threads = n;
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromSsize_t(num_threads);
}

static PyObject *py_isa(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyUnicode_FromString(active_kernels->isa);
}

static PyObject *py_available_isas(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *names = PyUnicode_FromString(pyconv_available_isas());
    if (names == NULL)
        return NULL;
    PyObject *sep = PyUnicode_FromString(",");
    PyObject *list = sep ? PyUnicode_Split(names, sep, -1) : NULL;
    Py_XDECREF(sep);
    Py_DECREF(names);
    if (list == NULL)
        return NULL;
    PyObject *tuple = PyList_AsTuple(list);
    Py_DECREF(list);
    return tuple;
}

static PyObject *py_set_isa(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *name = "";
    if (arg != Py_None) {
        name = PyUnicode_AsUTF8(arg);
        if (name == NULL)
            return NULL;
    }
    const struct pyconv_ukernels *k = pyconv_select_ukernels(name);
    if (k == NULL) {
        PyErr_Format(PyExc_ValueError,
                     "isa must be None (the best available) or one this CPU runs: %s; got %R",
                     pyconv_available_isas(), arg);
        return NULL;
    }
    active_kernels = k;
    return PyUnicode_FromString(k->isa);
}

PyDoc_STRVAR(fma_peak_doc,
             "fma_peak_gflops(seconds=0.2) -> float\n\n"
             "This machine's float32 multiply-add peak for one thread in GFLOP/s, measured\n"
             "for about `seconds` with the best instruction set the CPU runs (independent\n"
             "FMA chains; the best of several timed blocks). The GIL is released.");

static PyObject *py_fma_peak_gflops(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *keywords[] = {"seconds", NULL};
    double seconds = 0.2;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|d:fma_peak_gflops", keywords, &seconds))
        return NULL;
    if (!(seconds > 0.0 && seconds <= 60.0)) {
        PyObject *given = PyFloat_FromDouble(seconds);
        if (given != NULL)
            PyErr_Format(PyExc_ValueError,
                         "fma_peak_gflops: seconds must be > 0 and <= 60, got %R", given);
        Py_XDECREF(given);
        return NULL;
    }
    const char *isa = pyconv_select_ukernels(NULL)->isa;
    double gflops;
    Py_BEGIN_ALLOW_THREADS
    gflops = pyconv_fma_peak_gflops(isa, seconds);
    Py_END_ALLOW_THREADS
    return PyFloat_FromDouble(gflops);
}

/* set_output_cache_limit and set_weight_cache_limit: nbytes >= 0 to `set`,
 * which returns the previous limit. */
static PyObject *set_cache_limit(PyObject *arg, const char *name, size_t (*set)(size_t))
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "%s: nbytes must be >= 0, got %zd", name, n);
        return NULL;
    }
    return PyLong_FromSize_t(set((size_t)n));
}

static PyObject *py_set_output_cache_limit(PyObject *self, PyObject *arg)
{
    (void)self;
    return set_cache_limit(arg, "set_output_cache_limit", pyconv_buffer_set_cache_limit);
}

static PyObject *py_output_cache_bytes(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromSize_t(pyconv_buffer_cached_bytes());
}

static PyObject *py_clear_output_cache(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    pyconv_buffer_clear();
    Py_RETURN_NONE;
}

static PyObject *py_set_weight_cache_limit(PyObject *self, PyObject *arg)
{
    (void)self;
    return set_cache_limit(arg, "set_weight_cache_limit", pyconv_wcache_set_limit);
}

static PyObject *py_weight_cache_bytes(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromSize_t(pyconv_wcache_bytes());
}

static PyObject *py_clear_weight_cache(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    pyconv_wcache_clear();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"conv2d", (PyCFunction)(void (*)(void))py_conv2d, METH_FASTCALL, conv2d_doc},
    {"conv2d_transpose", (PyCFunction)(void (*)(void))py_conv2d_transpose, METH_FASTCALL,
     conv2d_transpose_doc},
    {"set_num_threads", py_set_num_threads, METH_O, "Sets the number of threads (1..256)."},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "The number of threads."},
    {"isa", py_isa, METH_NOARGS, "The instruction set of the active microkernels."},
    {"available_isas", py_available_isas, METH_NOARGS,
     "The instruction sets this CPU runs, best last."},
    {"set_output_cache_limit", py_set_output_cache_limit, METH_O,
     "Sets how many bytes of freed output memory are kept for reuse; returns the old limit."},
    {"output_cache_bytes", py_output_cache_bytes, METH_NOARGS,
     "Bytes of freed output memory now kept for reuse."},
    {"clear_output_cache", py_clear_output_cache, METH_NOARGS,
     "Returns the kept output memory to the system."},
    {"set_weight_cache_limit", py_set_weight_cache_limit, METH_O,
     "Sets how many bytes of packed weights are kept between calls; returns the old limit."},
    {"weight_cache_bytes", py_weight_cache_bytes, METH_NOARGS,
     "Bytes of packed weights now kept between calls."},
    {"clear_weight_cache", py_clear_weight_cache, METH_NOARGS,
     "Frees the packed weights kept between calls (those not in use)."},
    {"set_isa", py_set_isa, METH_O,
     "Chooses the microkernels: None for the best, or 'scalar', 'avx2', 'avx512'."},
    {"fma_peak_gflops", (PyCFunction)(void (*)(void))py_fma_peak_gflops,
     METH_VARARGS | METH_KEYWORDS, fma_peak_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "pyconv._conv", "pyconv's C operator (see pyconv.nn).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__conv(void)
{
    import_array();
    if (PyType_Ready(&OutputBufferType) < 0)
        return NULL;
    active_kernels = pyconv_select_ukernels(NULL);
    pyconv_buffer_hooks(trace_alloc, trace_free);
    return PyModule_Create(&module);
}
