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
#include "crc32c.h"
#include "snappy.h"
#include "deconv.h"
#include "dwconv.h"
#include "eltwise.h"
#include "pool.h"
#include "wcache.h"
#include "winograd.h"

static const struct pyconv_ukernels *active_kernels; /* changed only with the GIL held */
static Py_ssize_t num_threads = 1;
/* conv2d's algorithm for float32 3x3 stride-1 layers (changed with the GIL
 * held): 0 direct, 1 auto (Winograd where measured faster, see
 * wino_auto), 2 Winograd F(4x4, 3x3) wherever it applies, 3 F(2x2, 3x3) */
static int conv_algorithm = 1;

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

/* fn names the function in the message (it said "conv2d" for every caller). */
static int as_size(PyObject *obj, const char *fn, const char *name, Py_ssize_t minimum,
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
        PyErr_Format(PyExc_ValueError, "%s: %s must be >= %zd, got %zd", fn, name, minimum,
                     v);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/* A contiguous, aligned, native-endian array of `typenum`, or NULL with a
 * TypeError naming the argument. Never casts between dtypes. */
static PyArrayObject *usable_array(PyObject *obj, int typenum, int ndim, const char *name)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "conv2d: %s must be a numpy.ndarray, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (PyArray_TYPE(arr) != typenum) {
        PyErr_Format(PyExc_TypeError, "conv2d: %s must have dtype %s, got %R", name,
                     typenum == NPY_DOUBLE ? "float64" : "float32",
                     (PyObject *)PyArray_DESCR(arr));
        return NULL;
    }
    if (PyArray_NDIM(arr) != ndim) {
        PyErr_Format(PyExc_ValueError, "conv2d: %s must have rank %d, got rank %d", name, ndim,
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

/* Output tiles of F(m x m, 3x3) over the batch, and whether their padded
 * pixels are within 15% of the real ones (the edge tiles' waste). */
static size_t wino_tiles(const struct pyconv_conv_params *p, size_t out_h, size_t out_w, size_t m,
                         int *tight)
{
    size_t th = (out_h + m - 1) / m, tw = (out_w + m - 1) / m;
    /* sizes were checked by pyconv_conv_output_shape: no overflow in doubles */
    *tight = 100.0 * (double)(th * m) * (double)(tw * m) <= 115.0 * (double)out_h * (double)out_w;
    return p->batch * th * tw;
}

/* The 'auto' rule for float32 3x3 stride-1 layers: F(m x m, 3x3) for m = 2,
 * or 0 for direct. F(2x2) only, because only its error is no larger than the
 * direct path's: max|d| / max(1, max|y|) against the float64 reference for
 * 64-2048 input channels (tools/wino_error.py) is 0.3e-6..0.4e-6 for F(2x2),
 * 0.9e-6..1.8e-6 direct and 1.5e-6..2.2e-6 for F(4x4) (points 0, +-1, -2,
 * 1/2, summing blocks of 64 channels; 4.0e-6..5.6e-6 with the points 0, +-1,
 * +-2; 1.5e-5..2.9e-5 with one accumulator too). F(4x4) is within each
 * layer's 1e-5, but deep nets in training mode, whose batch statistics
 * amplify every layer's rounding, leave it no room: the Inception-v3
 * training fixture's output differs from TF by 8.6e-5 (of its 1e-4) with
 * direct, 8.9e-5 with F(2x2) everywhere, 9.2e-5 with this rule, 1.1e-4 with
 * F(4x4) on its layers of >= 28x28 outputs (points 0, +-1, +-2) and 1.8e-4
 * with F(4x4) everywhere (either point set): already its 32-channel layers
 * deviate from direct 2.4e-6 (F(2x2): 0.7e-6), and the net doubles that
 * about every block.
 *
 * Speed, measured with tools/wino_bench.py (the 3x3 stride-1 layers of
 * ResNet-50 and VGG-16 at batch 1 and 8, 1 and 2 threads) and a sweep of
 * shapes on a loaded 2-core Zen 5 with AVX-512, where the direct igemm runs
 * at ~95% of the FMA peak (the AVX2 and scalar sets gain more: ResNet-50's
 * layers 1.2-1.6x and 1.8-2.2x), F(2x2) against direct:
 *   - fewer than 64 input or output channels: direct (32 in: 1.0-1.1x;
 *     32 out: 0.8x, half of every 32-wide GEMM tile idle; 3 in: 0.5x)
 *   - at least 49 tiles whose padding wastes at most 15%: F(2x2): 56x56x64
 *     1.1-1.2x, 28x28x128 1.3-1.4x, 14x14x256 1.3-1.4x, VGG-16 1.0-1.5x,
 *     14x14x64 1.1-1.2x
 *   - else direct: 7x7 (31% waste) with 512 channels 0.9-1.1x, with 256 at
 *     batch 2 0.9x. */
static size_t wino_auto(const struct pyconv_conv_params *p, size_t out_h, size_t out_w)
{
    if (p->in_c < 64 || p->out_c < 64)
        return 0;
    int tight;
    size_t tiles = wino_tiles(p, out_h, out_w, 2, &tight);
    return tiles >= 49 && tight ? 2 : 0;
}

static const char *const algorithm_names[] = {"direct", "auto", "winograd", "winograd_f2x2"};
#define N_ALGORITHMS 4

static PyObject *py_set_algorithm(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (s == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "algorithm must be a str, got %R", arg);
        return NULL;
    }
    for (int i = 0; i < N_ALGORITHMS; i++)
        if (strcmp(s, algorithm_names[i]) == 0) {
            int previous = conv_algorithm;
            conv_algorithm = i;
            return PyUnicode_FromString(algorithm_names[previous]);
        }
    PyErr_Format(PyExc_ValueError,
                 "algorithm must be 'direct', 'auto', 'winograd' or 'winograd_f2x2', got %R", arg);
    return NULL;
}

static PyObject *py_get_algorithm(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyUnicode_FromString(algorithm_names[conv_algorithm]);
}

/* ---- What conv2d and depthwise_conv2d (and eltwise) parse alike. */

static int float_typenum(PyObject *obj, const char *fn);
static PyObject *operator_failed(int rc, const char *fn, const char *err);

/* An activation code 0 (none), 1 (relu) or 2 (relu6); -1 with the error set. */
static int activation_arg(PyObject *obj, const char *fn, enum pyconv_activation *out)
{
    size_t act;
    if (as_size(obj, fn, "activation", 0, &act) < 0)
        return -1;
    if (act > 2) {
        PyErr_Format(PyExc_ValueError,
                     "%s: activation must be 0 (none), 1 (relu) or 2 (relu6), got %zu", fn, act);
        return -1;
    }
    *out = (enum pyconv_activation)act;
    return 0;
}

/* args[0]'s typenum (float32 or float64, also stored as *dtype), the eight
 * sizes args[3..10] (pads >= 0; strides and dilations >= 1) into slots and
 * the activation args[11]; -1 with the Python error set. */
static int conv_args(PyObject *const *args, const char *fn, size_t *const slots[8],
                     enum pyconv_activation *act, enum pyconv_dtype *dtype)
{
    int typenum = float_typenum(args[0], fn);
    if (typenum < 0)
        return -1;
    static const char *const names[] = {"pad_top",  "pad_bottom", "pad_left",   "pad_right",
                                        "stride_h", "stride_w",   "dilation_h", "dilation_w"};
    for (int i = 0; i < 8; i++)
        if (as_size(args[3 + i], fn, names[i], i < 4 ? 0 : 1, slots[i]) < 0)
            return -1;
    if (activation_arg(args[11], fn, act) < 0)
        return -1;
    *dtype = typenum == NPY_DOUBLE ? PYCONV_F64 : PYCONV_F32;
    return typenum;
}

/* The input (rank 4), the filters (rank 4, named `filter_name` in errors) and
 * the optional bias (rank 1, None for none) of a convolution binding, of one
 * dtype: new references in *x, *w, *b; 0, or -1 with the exception set (what
 * was converted is left in the pointers for the caller's cleanup). */
static int conv_operands(PyObject *const *args, int typenum, const char *filter_name,
                         PyArrayObject **x, PyArrayObject **w, PyArrayObject **b)
{
    *x = usable_array(args[0], typenum, 4, "input");
    if (*x == NULL)
        return -1;
    *w = usable_array(args[1], typenum, 4, filter_name);
    if (*w == NULL)
        return -1;
    if (args[2] != Py_None) {
        *b = usable_array(args[2], typenum, 1, "bias");
        if (*b == NULL)
            return -1;
    }
    return 0;
}

PyDoc_STRVAR(conv2d_doc,
             "conv2d(input, filters, bias, pad_top, pad_bottom, pad_left, pad_right,\n"
             "       stride_h, stride_w, dilation_h, dilation_w, activation) -> ndarray\n\n"
             "The raw operator: NHWC input, HWIO filters, bias [cout] or None, all of one\n"
             "dtype (float32 or float64); explicit pads; activation 0 none, 1 relu, 2 relu6.\n"
             "Four more arguments (pre, scale, shift, residual; each None or an array) fuse\n"
             "the epilogue clamp(((conv + pre) * scale + shift) + residual) into each tile:\n"
             "pre/scale/shift [cout], residual the output's shape. Two more (add_to, an\n"
             "array of the output's shape or None, and add_activation) return the pair\n"
             "(output, clamp(output + add_to, add_activation)), the second written per tile.\n"
             "Use pyconv.nn.conv2d instead: it handles padding names, layouts and dtypes.");

static PyObject *py_conv2d(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 12 && nargs != 16 && nargs != 18) {
        PyErr_Format(PyExc_TypeError,
                     "conv2d() takes 12, 16 or 18 positional arguments (%zd given)", nargs);
        return NULL;
    }
    struct pyconv_conv_params p;
    memset(&p, 0, sizeof(p));
    size_t *const slots[] = {&p.pad_top,   &p.pad_bottom, &p.pad_left,   &p.pad_right,
                             &p.stride_h,  &p.stride_w,   &p.dilation_h, &p.dilation_w};
    int typenum = conv_args(args, "conv2d", slots, &p.activation, &p.dtype);
    if (typenum < 0)
        return NULL;

    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *out = NULL;
    PyArrayObject *ep[4] = {NULL, NULL, NULL, NULL}; /* pre, scale, shift, residual */
    PyArrayObject *add_to = NULL, *add_out = NULL; /* the second output's term and array */
    enum pyconv_activation add_act = PYCONV_ACT_NONE;
    int has_ep = 0;
    if (conv_operands(args, typenum, "filters", &x, &w, &b) != 0)
        goto fail;
    const npy_intp *xs = PyArray_DIMS(x), *ws = PyArray_DIMS(w);
    /* grouped convolution: the input channels a multiple of the filters' */
    if (ws[2] > 0 && xs[3] > ws[2] && xs[3] % ws[2] == 0)
        p.groups = (size_t)(xs[3] / ws[2]);
    else if (ws[2] != xs[3]) {
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
    if (nargs == 18 && args[16] != Py_None) {
        long act = PyLong_AsLong(args[17]);
        if (act == -1 && PyErr_Occurred())
            goto fail;
        if (act < 0 || act > 2) {
            PyErr_Format(PyExc_ValueError, "conv2d: add_activation must be 0, 1 or 2, got %ld",
                         act);
            goto fail;
        }
        add_act = (enum pyconv_activation)act;
        add_to = usable_array(args[16], typenum, 4, "add_to");
        if (add_to == NULL)
            goto fail;
        has_ep = 1;
    }
    if (nargs >= 16) {
        static const char *const ep_names[] = {"pre", "scale", "shift", "residual"};
        for (int i = 0; i < 4; i++) {
            if (args[12 + i] == Py_None)
                continue;
            has_ep = 1;
            ep[i] = usable_array(args[12 + i], typenum, i < 3 ? 1 : 4, ep_names[i]);
            if (ep[i] == NULL)
                goto fail;
            if (i < 3 && PyArray_DIM(ep[i], 0) != ws[3]) {
                PyErr_Format(PyExc_ValueError, "conv2d: %s must have %zd elements (filters' "
                             "num_outputs), got %zd", ep_names[i], (Py_ssize_t)ws[3],
                             (Py_ssize_t)PyArray_DIM(ep[i], 0));
                goto fail;
            }
        }
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
    if (ep[3] != NULL) {
        const npy_intp *rs = PyArray_DIMS(ep[3]);
        if (rs[0] != dims[0] || rs[1] != dims[1] || rs[2] != dims[2] || rs[3] != dims[3]) {
            PyErr_Format(PyExc_ValueError,
                         "conv2d: residual must have the output's shape (%zd, %zd, %zd, %zd), "
                         "got (%zd, %zd, %zd, %zd)", (Py_ssize_t)dims[0], (Py_ssize_t)dims[1],
                         (Py_ssize_t)dims[2], (Py_ssize_t)dims[3], (Py_ssize_t)rs[0],
                         (Py_ssize_t)rs[1], (Py_ssize_t)rs[2], (Py_ssize_t)rs[3]);
            goto fail;
        }
    }
    if (add_to != NULL) {
        const npy_intp *rs = PyArray_DIMS(add_to);
        if (rs[0] != dims[0] || rs[1] != dims[1] || rs[2] != dims[2] || rs[3] != dims[3]) {
            PyErr_Format(PyExc_ValueError,
                         "conv2d: add_to must have the output's shape (%zd, %zd, %zd, %zd), "
                         "got (%zd, %zd, %zd, %zd)", (Py_ssize_t)dims[0], (Py_ssize_t)dims[1],
                         (Py_ssize_t)dims[2], (Py_ssize_t)dims[3], (Py_ssize_t)rs[0],
                         (Py_ssize_t)rs[1], (Py_ssize_t)rs[2], (Py_ssize_t)rs[3]);
            goto fail;
        }
    }
    out = new_output_array(4, dims, typenum);
    if (out == NULL)
        goto fail;
    if (add_to != NULL) {
        add_out = new_output_array(4, dims, typenum);
        if (add_out == NULL)
            goto fail;
    }
    if (PyArray_SIZE(out) == 0)
        goto done;

    /* Everything from planning (weight packing) to the last tile runs
     * without the GIL; the arrays are kept alive by our references. */
    struct pyconv_conv_op *op = NULL;
    const struct pyconv_ukernels *kernels = active_kernels;
    size_t threads = (size_t)num_threads;
    struct interrupt_ctx ictx;
    ictx.state = PyEval_SaveThread();
    int rc = -1;
    /* read-only now (a slim variable's array under its trusted pin): the
     * packing may be reused without the byte check (wcache.h) */
    p.weights_readonly = !PyArray_ISWRITEABLE(w) && (b == NULL || !PyArray_ISWRITEABLE(b));
    size_t wino_tile = 0; /* F(tile x tile, 3x3), 0 direct; not with add_to (direct's epilogue) */
    if (conv_algorithm != 0 && add_to == NULL && pyconv_wino_applicable(&p))
        wino_tile = conv_algorithm == 2   ? 4
                    : conv_algorithm == 3 ? 2
                                          : wino_auto(&p, out_h, out_w);
    if (wino_tile != 0) {
        struct pyconv_wino_op *wop = NULL;
        rc = pyconv_wino_create(&p, kernels, wino_tile, PyArray_DATA(w), b != NULL ? PyArray_DATA(b) : NULL,
                                &wop, err);
        if (rc == PYCONV_OK) {
            pyconv_wino_setup(wop, PyArray_DATA(x), PyArray_DATA(out));
            if (has_ep) {
                struct pyconv_epilogue epi = {0};
                const void **slots[4] = {&epi.pre, &epi.scale, &epi.shift, &epi.residual};
                for (int i = 0; i < 4; i++)
                    *slots[i] = ep[i] != NULL ? PyArray_DATA(ep[i]) : NULL;
                pyconv_wino_set_epilogue(wop, &epi);
            }
            rc = pyconv_wino_run(wop, threads, check_signals, &ictx);
            pyconv_wino_destroy(wop);
        }
        /* NaN/Inf in the input or weights, or no memory for the transformed
         * weights: the direct operator computes the whole output */
        if (rc == PYCONV_WINO_NONFINITE || rc == PYCONV_ENOMEM)
            rc = -1;
    }
    if (rc == -1)
        rc = pyconv_conv_create(&p, kernels, PyArray_DATA(w),
                                b != NULL ? PyArray_DATA(b) : NULL, &op, err);
    if (rc == PYCONV_OK && op != NULL) {
        pyconv_conv_setup(op, PyArray_DATA(x), PyArray_DATA(out));
        if (has_ep) {
            struct pyconv_epilogue epi = {0};
            const void **slots[4] = {&epi.pre, &epi.scale, &epi.shift, &epi.residual};
            for (int i = 0; i < 4; i++)
                *slots[i] = ep[i] != NULL ? PyArray_DATA(ep[i]) : NULL;
            if (add_to != NULL) {
                epi.add_to = PyArray_DATA(add_to);
                epi.add_out = PyArray_DATA(add_out);
                epi.add_activation = add_act;
            }
            pyconv_conv_set_epilogue(op, &epi);
        }
        rc = pyconv_conv_run(op, threads, check_signals, &ictx);
        pyconv_conv_destroy(op);
    }
    PyEval_RestoreThread(ictx.state);
    if (rc != PYCONV_OK) {
        operator_failed(rc, "conv2d", err);
        goto fail;
    }
done:
    Py_DECREF(x);
    Py_DECREF(w);
    Py_XDECREF(b);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(ep[i]);
    if (add_to != NULL) {
        Py_DECREF(add_to);
        PyObject *pair = PyTuple_Pack(2, (PyObject *)out, (PyObject *)add_out);
        Py_DECREF(out);
        Py_DECREF(add_out);
        return pair;
    }
    return (PyObject *)out;
fail:
    Py_XDECREF(x);
    Py_XDECREF(w);
    Py_XDECREF(b);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(ep[i]);
    Py_XDECREF(add_to);
    Py_XDECREF(out);
    Py_XDECREF(add_out);
    return NULL;
}

/* ------------------------------------------------------------------ depthwise */

PyDoc_STRVAR(depthwise_conv2d_doc,
             "depthwise_conv2d(input, filter, bias, pad_top, pad_bottom, pad_left, pad_right,\n"
             "                 stride_h, stride_w, dilation_h, dilation_w, activation) -> ndarray\n\n"
             "The raw depthwise operator: NHWC input [n, h, w, c], filter [kh, kw, c, m],\n"
             "bias [c * m] or None, all of one dtype (float32 or float64); output channel\n"
             "c * m + j uses filter[:, :, c, j]. Explicit pads; activation 0 none, 1 relu,\n"
             "2 relu6. Use pyconv.nn.depthwise_conv2d instead: it handles padding names,\n"
             "layouts and dtypes.");

static PyObject *py_depthwise_conv2d(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 12) {
        PyErr_Format(PyExc_TypeError,
                     "depthwise_conv2d() takes 12 positional arguments (%zd given)", nargs);
        return NULL;
    }
    struct pyconv_dwconv_params p;
    memset(&p, 0, sizeof(p));
    size_t *const slots[] = {&p.pad_top,   &p.pad_bottom, &p.pad_left,   &p.pad_right,
                             &p.stride_h,  &p.stride_w,   &p.dilation_h, &p.dilation_w};
    int typenum = conv_args(args, "depthwise_conv2d", slots, &p.activation, &p.dtype);
    if (typenum < 0)
        return NULL;

    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *out = NULL;
    if (conv_operands(args, typenum, "filter", &x, &w, &b) != 0)
        goto fail;
    const npy_intp *xs = PyArray_DIMS(x), *ws = PyArray_DIMS(w);
    if (ws[2] != xs[3]) {
        PyErr_Format(PyExc_ValueError,
                     "depthwise_conv2d: the filter has %zd input channels but the input has %zd "
                     "(input shape (%zd, %zd, %zd, %zd), filter shape (%zd, %zd, %zd, %zd))",
                     (Py_ssize_t)ws[2], (Py_ssize_t)xs[3], (Py_ssize_t)xs[0], (Py_ssize_t)xs[1],
                     (Py_ssize_t)xs[2], (Py_ssize_t)xs[3], (Py_ssize_t)ws[0], (Py_ssize_t)ws[1],
                     (Py_ssize_t)ws[2], (Py_ssize_t)ws[3]);
        goto fail;
    }
    size_t out_c;
    if (__builtin_mul_overflow((size_t)ws[2], (size_t)ws[3], &out_c)) {
        PyErr_SetString(PyExc_ValueError, "depthwise_conv2d: channels * multiplier overflows");
        goto fail;
    }
    if (b != NULL && (size_t)PyArray_DIM(b, 0) != out_c) {
        PyErr_Format(PyExc_ValueError, "depthwise_conv2d: bias must have %zu elements (channels "
                     "* multiplier), got %zd", out_c, (Py_ssize_t)PyArray_DIM(b, 0));
        goto fail;
    }
    p.batch = (size_t)xs[0];
    p.in_h = (size_t)xs[1];
    p.in_w = (size_t)xs[2];
    p.channels = (size_t)xs[3];
    p.kernel_h = (size_t)ws[0];
    p.kernel_w = (size_t)ws[1];
    p.multiplier = (size_t)ws[3];

    char err[PYCONV_ERRLEN];
    size_t out_h, out_w;
    if (pyconv_dwconv_output_shape(&p, &out_h, &out_w, err) != PYCONV_OK) {
        PyErr_Format(PyExc_ValueError, "depthwise_conv2d: %s", err);
        goto fail;
    }
    npy_intp dims[4] = {(npy_intp)p.batch, (npy_intp)out_h, (npy_intp)out_w, (npy_intp)out_c};
    out = new_output_array(4, dims, typenum);
    if (out == NULL)
        goto fail;
    if (PyArray_SIZE(out) == 0)
        goto done;

    /* planning, packing and every row run without the GIL; our references keep the arrays */
    struct pyconv_dwconv_op *op = NULL;
    const struct pyconv_ukernels *kernels = active_kernels;
    size_t threads = (size_t)num_threads;
    struct interrupt_ctx ictx;
    ictx.state = PyEval_SaveThread();
    p.weights_readonly = !PyArray_ISWRITEABLE(w) && (b == NULL || !PyArray_ISWRITEABLE(b));
    int rc = pyconv_dwconv_create(&p, kernels, PyArray_DATA(w),
                                  b != NULL ? PyArray_DATA(b) : NULL, &op, err);
    if (rc == PYCONV_OK) {
        pyconv_dwconv_setup(op, PyArray_DATA(x), PyArray_DATA(out));
        rc = pyconv_dwconv_run(op, threads, check_signals, &ictx);
        pyconv_dwconv_destroy(op);
    }
    PyEval_RestoreThread(ictx.state);
    if (rc != PYCONV_OK) {
        operator_failed(rc, "depthwise_conv2d", err);
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

/* ---------------------------------------------------------------- end depthwise */

/* ---- The operators between convolutions: pooling and the elementwise
 * epilogue (pool.c, eltwise.c). Same rules as conv2d: validated again here,
 * never cast, computed without the GIL, Ctrl-C polled. */

/* A contiguous, aligned, native-endian array of `typenum` and rank `ndim`,
 * or NULL with an error naming `fn` and the argument. */
static PyArrayObject *operand(PyObject *obj, int typenum, int ndim, const char *fn,
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

/* float32 or float64 typenum of args[0], or -1 with a TypeError. */
static int float_typenum(PyObject *obj, const char *fn)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: input must be a numpy.ndarray, got %s", fn,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int typenum = PyArray_TYPE((PyArrayObject *)obj);
    if (typenum != NPY_FLOAT && typenum != NPY_DOUBLE) {
        PyErr_Format(PyExc_TypeError, "%s: input must be float32 or float64, got %R", fn,
                     (PyObject *)PyArray_DESCR((PyArrayObject *)obj));
        return -1;
    }
    return typenum;
}

/* Sets the Python error for an operator's status; returns NULL. */
static PyObject *operator_failed(int rc, const char *fn, const char *err)
{
    if (rc == PYCONV_ENOMEM)
        return PyErr_NoMemory();
    if (rc == PYCONV_EINTR) {
        if (!PyErr_Occurred())
            PyErr_SetNone(PyExc_KeyboardInterrupt);
        return NULL;
    }
    PyErr_Format(PyExc_ValueError, "%s: %s", fn, err);
    return NULL;
}

PyDoc_STRVAR(pool2d_doc,
             "pool2d(input, kind, kernel_h, kernel_w, stride_h, stride_w,\n"
             "       pad_top, pad_bottom, pad_left, pad_right) -> ndarray\n\n"
             "The raw pooling operator: NHWC float32/float64 input, kind 0 max (NaN skipped,\n"
             "from the lowest finite value, as TF) or 1 average (over the in-bounds part of\n"
             "each window); explicit pads, each smaller than the window.\n"
             "Use pyconv.nn.max_pool2d / avg_pool2d instead.");

static PyObject *py_pool2d(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 10) {
        PyErr_Format(PyExc_TypeError, "pool2d() takes 10 positional arguments (%zd given)",
                     nargs);
        return NULL;
    }
    int typenum = float_typenum(args[0], "pool2d");
    if (typenum < 0)
        return NULL;
    struct pyconv_pool_params p;
    memset(&p, 0, sizeof(p));
    size_t kind;
    static const char *const names[] = {"kind",       "kernel_h",  "kernel_w", "stride_h",
                                        "stride_w",   "pad_top",   "pad_bottom", "pad_left",
                                        "pad_right"};
    size_t *const slots[] = {&kind,       &p.kernel_h, &p.kernel_w,   &p.stride_h, &p.stride_w,
                             &p.pad_top,  &p.pad_bottom, &p.pad_left, &p.pad_right};
    for (int i = 0; i < 9; i++)
        if (as_size(args[1 + i], "pool2d", names[i], i == 0 || i >= 5 ? 0 : 1, slots[i]) < 0)
            return NULL;
    if (kind > 1) {
        PyErr_Format(PyExc_ValueError, "pool2d: kind must be 0 (max) or 1 (average), got %zu",
                     kind);
        return NULL;
    }
    p.kind = (enum pyconv_pool_kind)kind;
    p.dtype = typenum == NPY_DOUBLE ? PYCONV_F64 : PYCONV_F32;
    PyArrayObject *x = operand(args[0], typenum, 4, "pool2d", "input");
    if (x == NULL)
        return NULL;
    const npy_intp *xs = PyArray_DIMS(x);
    p.batch = (size_t)xs[0];
    p.in_h = (size_t)xs[1];
    p.in_w = (size_t)xs[2];
    p.channels = (size_t)xs[3];
    char err[PYCONV_ERRLEN];
    struct pyconv_pool_op op;
    int rc = pyconv_pool_create(&p, active_kernels, &op, err);
    if (rc != PYCONV_OK) {
        Py_DECREF(x);
        return operator_failed(rc, "pool2d", err);
    }
    npy_intp dims[4] = {xs[0], (npy_intp)op.out_h, (npy_intp)op.out_w, xs[3]};
    PyArrayObject *out = new_output_array(4, dims, typenum);
    if (out == NULL) {
        Py_DECREF(x);
        return NULL;
    }
    if (PyArray_SIZE(out) > 0) {
        size_t threads = (size_t)num_threads;
        struct interrupt_ctx ictx;
        ictx.state = PyEval_SaveThread();
        pyconv_pool_setup(&op, PyArray_DATA(x), PyArray_DATA(out));
        rc = pyconv_pool_run(&op, threads, check_signals, &ictx);
        PyEval_RestoreThread(ictx.state);
    }
    Py_DECREF(x);
    if (rc != PYCONV_OK) {
        Py_DECREF(out);
        return operator_failed(rc, "pool2d", err);
    }
    return (PyObject *)out;
}

PyDoc_STRVAR(eltwise_doc,
             "eltwise(x, pre, scale, shift, residual, activation) -> ndarray\n\n"
             "The raw elementwise epilogue over x of shape [outer, channels, inner]\n"
             "(float32/float64): clamp(((x + pre[c]) * scale[c] + shift[c]) + residual),\n"
             "each term None to skip; residual has x's shape; activation 0 none, 1 relu,\n"
             "2 relu6. Use pyconv.nn.bias_add / add_relu or batch_norm instead.");

static PyObject *py_eltwise(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "eltwise() takes 6 positional arguments (%zd given)",
                     nargs);
        return NULL;
    }
    int typenum = float_typenum(args[0], "eltwise");
    if (typenum < 0)
        return NULL;
    enum pyconv_activation act;
    if (activation_arg(args[5], "eltwise", &act) < 0)
        return NULL;
    PyObject *result = NULL;
    PyArrayObject *x = NULL, *terms[4] = {NULL, NULL, NULL, NULL}, *out = NULL;
    static const char *const names[] = {"pre", "scale", "shift", "residual"};
    x = operand(args[0], typenum, 3, "eltwise", "x");
    if (x == NULL)
        goto end;
    const npy_intp *xs = PyArray_DIMS(x);
    for (int i = 0; i < 4; i++) {
        if (args[1 + i] == Py_None)
            continue;
        terms[i] = operand(args[1 + i], typenum, i < 3 ? 1 : 3, "eltwise", names[i]);
        if (terms[i] == NULL)
            goto end;
        const npy_intp *ts = PyArray_DIMS(terms[i]);
        if (i < 3 ? ts[0] != xs[1] : (ts[0] != xs[0] || ts[1] != xs[1] || ts[2] != xs[2])) {
            PyErr_Format(PyExc_ValueError,
                         i < 3 ? "eltwise: %s must have one element per channel (%zd)"
                               : "eltwise: %s must have x's shape", names[i], (Py_ssize_t)xs[1]);
            goto end;
        }
    }
    struct pyconv_eltwise_params p = {(size_t)xs[0], (size_t)xs[1], (size_t)xs[2],
                                      act,
                                      typenum == NPY_DOUBLE ? PYCONV_F64 : PYCONV_F32};
    char err[PYCONV_ERRLEN];
    struct pyconv_eltwise_op op;
    int rc = pyconv_eltwise_create(&p, active_kernels, &op, err);
    if (rc != PYCONV_OK) {
        operator_failed(rc, "eltwise", err);
        goto end;
    }
    npy_intp dims[3] = {xs[0], xs[1], xs[2]};
    out = new_output_array(3, dims, typenum);
    if (out == NULL)
        goto end;
    if (PyArray_SIZE(out) > 0) {
        const void *data[4];
        for (int i = 0; i < 4; i++)
            data[i] = terms[i] != NULL ? PyArray_DATA(terms[i]) : NULL;
        size_t threads = (size_t)num_threads;
        struct interrupt_ctx ictx;
        ictx.state = PyEval_SaveThread();
        pyconv_eltwise_setup(&op, PyArray_DATA(x), data[0], data[1], data[2], data[3],
                             PyArray_DATA(out));
        rc = pyconv_eltwise_run(&op, threads, check_signals, &ictx);
        PyEval_RestoreThread(ictx.state);
        if (rc != PYCONV_OK) {
            operator_failed(rc, "eltwise", err);
            goto end;
        }
    }
    result = (PyObject *)out;
    out = NULL;
end:
    Py_XDECREF(x);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(terms[i]);
    Py_XDECREF(out);
    return result;
}
/* ---- end of the operators between convolutions */

PyDoc_STRVAR(conv2d_workspace_doc,
             "conv2d_workspace(batch, in_h, in_w, in_c, kernel_h, kernel_w, out_c,\n"
             "                 pad_top, pad_bottom, pad_left, pad_right, stride_h, stride_w,\n"
             "                 dilation_h, dilation_w, itemsize) -> (packed, block) or None\n\n"
             "Bytes conv2d would allocate besides its output with the active kernels: the\n"
             "packed filters (for the tile it would pick) and the block of the indirection\n"
             "buffer. None if a size would overflow (conv2d then refuses the call).");

static PyObject *py_conv2d_workspace(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 16) {
        PyErr_Format(PyExc_TypeError,
                     "conv2d_workspace() takes 16 positional arguments (%zd given)", nargs);
        return NULL;
    }
    static const char *const names[] = {
        "batch",     "in_h",       "in_w",     "in_c",      "kernel_h",   "kernel_w",
        "out_c",     "pad_top",    "pad_bottom", "pad_left", "pad_right", "stride_h",
        "stride_w",  "dilation_h", "dilation_w", "itemsize"};
    size_t v[16];
    for (int i = 0; i < 16; i++)
        if (as_size(args[i], "conv2d_workspace", names[i], 0, &v[i]) < 0)
            return NULL;
    if (v[15] != 4 && v[15] != 8) {
        PyErr_Format(PyExc_ValueError, "conv2d_workspace: itemsize must be 4 or 8, got %zu",
                     v[15]);
        return NULL;
    }
    struct pyconv_conv_params p;
    memset(&p, 0, sizeof(p));
    p.batch = v[0];
    p.in_h = v[1];
    p.in_w = v[2];
    p.in_c = v[3];
    p.kernel_h = v[4];
    p.kernel_w = v[5];
    p.out_c = v[6];
    p.pad_top = v[7];
    p.pad_bottom = v[8];
    p.pad_left = v[9];
    p.pad_right = v[10];
    p.stride_h = v[11];
    p.stride_w = v[12];
    p.dilation_h = v[13];
    p.dilation_w = v[14];
    p.dtype = v[15] == 8 ? PYCONV_F64 : PYCONV_F32;
    char err[PYCONV_ERRLEN];
    size_t packed, block;
    if (pyconv_conv_workspace(&p, active_kernels, &packed, &block, err) != PYCONV_OK)
        Py_RETURN_NONE;
    return Py_BuildValue("(nn)", (Py_ssize_t)packed, (Py_ssize_t)block);
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
        if (as_size(args[3 + i], fn, int_names[i], minimum[i], int_slots[i]) < 0)
            return NULL;
    if (act > 2) {
        PyErr_Format(PyExc_ValueError,
                     "%s: activation must be 0 (none), 1 (relu) or 2 (relu6), got %zu", fn, act);
        return NULL;
    }
    p.activation = (enum pyconv_activation)act;
    p.dtype = typenum == NPY_DOUBLE ? PYCONV_F64 : PYCONV_F32;

    PyArrayObject *x = NULL, *w = NULL, *b = NULL, *out = NULL;
    if (conv_operands(args, typenum, "filters", &x, &w, &b) != 0)
        goto fail;
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
    if (rc != PYCONV_OK) {
        operator_failed(rc, fn, err);
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
    if (n == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return NULL;
        PyErr_Clear();
        n = -1; /* out of range: reported below with the value */
    }
    if (n < 0) {
        PyErr_Format(PyExc_ValueError, "%s: nbytes must be between 0 and 2**63 - 1, got %R",
                     name, arg);
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

/* ---- weights that keep their packing: a slim layer's variable pins its
 * array (pyconv.variables.Variable._pinned); the capsule unpins when freed */
#define PIN_CAPSULE "pyconv._conv.weight_pin"

static char trusted_pin_marker; /* capsule context of a trusted pin */

static void weight_pin_free(PyObject *capsule)
{
    void *p = PyCapsule_GetPointer(capsule, PIN_CAPSULE);
    if (p != NULL)
        pyconv_wcache_unpin(p, PyCapsule_GetContext(capsule) == &trusted_pin_marker);
}

PyDoc_STRVAR(pin_weights_doc,
"pin_weights(array, trusted=False) -> capsule or None\n\n"
"While the returned object lives, weights packed from this array's memory\n"
"stay cached outside the weight cache's byte limit. Reuse is checked byte for\n"
"byte against the array, unless trusted: then the array must be read-only\n"
"(ValueError otherwise) and stay unwritten while the capsule lives (the\n"
"caller's promise; pyconv.variables lets go of the pin before it assigns),\n"
"and a packing is checked once, then reused unchecked by calls that pass this\n"
"array while it is read-only. The caller keeps the array alive as long as\n"
"the capsule. None for an empty array.");

static PyObject *py_pin_weights(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "pin_weights() takes 1 or 2 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *arg = args[0];
    if (!PyArray_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "pin_weights: array must be a numpy.ndarray, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    int trusted = 0;
    if (nargs == 2) {
        trusted = PyObject_IsTrue(args[1]);
        if (trusted < 0)
            return NULL;
    }
    if (trusted && PyArray_ISWRITEABLE((PyArrayObject *)arg)) {
        PyErr_SetString(PyExc_ValueError,
                        "pin_weights: a trusted pin needs a read-only array "
                        "(array.flags.writeable is True)");
        return NULL;
    }
    void *data = PyArray_DATA((PyArrayObject *)arg);
    if (data == NULL || PyArray_SIZE((PyArrayObject *)arg) == 0)
        Py_RETURN_NONE;
    if (pyconv_wcache_pin(data, trusted) != 0)
        return PyErr_NoMemory();
    PyObject *cap = PyCapsule_New(data, PIN_CAPSULE, weight_pin_free);
    if (cap == NULL) {
        pyconv_wcache_unpin(data, trusted);
        return NULL;
    }
    if (trusted && PyCapsule_SetContext(cap, &trusted_pin_marker) != 0) {
        PyCapsule_SetDestructor(cap, NULL);
        Py_DECREF(cap);
        pyconv_wcache_unpin(data, trusted);
        return NULL;
    }
    return cap;
}

/* ---- checkpoints: CRC-32C of any buffer (pyconv.train verifies every block
 * and tensor of a TF checkpoint with it) */
void pyconv_crc32c_force_portable(int portable);

PyDoc_STRVAR(crc32c_doc,
             "crc32c(buffer, value=0) -> int\n\n"
             "The CRC-32C (Castagnoli) of `buffer` (any contiguous buffer: bytes, memoryview,\n"
             "a C-contiguous ndarray), continuing from the CRC `value` of the data before it.\n"
             "Uses the CPU's SSE4.2 crc32 instruction when it has it, else a table; the GIL\n"
             "is released for buffers of 64 KiB and more.");

static PyObject *py_crc32c(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *keywords[] = {"buffer", "value", NULL};
    Py_buffer view;
    unsigned long long value = 0;
    PyObject *value_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|O:crc32c", keywords, &view, &value_obj))
        return NULL;
    if (value_obj != NULL) {
        value = PyLong_AsUnsignedLongLong(value_obj);
        if (PyErr_Occurred() || value > 0xFFFFFFFFull) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "crc32c: value must be an int in [0, 2**32), got %R",
                         value_obj);
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    uint32_t crc;
    if (view.len >= 65536) {
        Py_BEGIN_ALLOW_THREADS
        crc = pyconv_crc32c_extend((uint32_t)value, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    } else {
        crc = pyconv_crc32c_extend((uint32_t)value, view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static PyObject *py_crc32c_impl(PyObject *self, PyObject *arg)
{
    (void)self;
    if (arg != Py_None) {
        int portable = PyObject_IsTrue(arg);
        if (portable < 0)
            return NULL;
        pyconv_crc32c_force_portable(portable);
    }
    return PyUnicode_FromString(pyconv_crc32c_impl());
}
PyDoc_STRVAR(snappy_doc,
             "snappy_decompress(buffer, max_length) -> bytearray\n\n"
             "Decodes a raw Snappy stream (a V1 checkpoint's compressed table block).\n"
             "ValueError if it is malformed or declares more than max_length bytes; the\n"
             "output is allocated only after a first pass proved the whole stream valid.\n"
             "The GIL is released while decoding.");

static PyObject *py_snappy_decompress(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer view;
    Py_ssize_t max_length;
    if (!PyArg_ParseTuple(args, "y*n:snappy_decompress", &view, &max_length))
        return NULL;
    uint64_t length;
    const char *err = pyconv_snappy_length(view.buf, (size_t)view.len, &length);
    if (err == NULL && (max_length < 0 || length > (uint64_t)max_length)) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError,
                     "snappy block claims %llu uncompressed bytes, more than the %zd allowed",
                     (unsigned long long)length, max_length);
        return NULL;
    }
    if (err == NULL) { /* a dry run first: nothing is allocated for an invalid stream */
        Py_BEGIN_ALLOW_THREADS
        err = pyconv_snappy_decompress(view.buf, (size_t)view.len, NULL, (size_t)length);
        Py_END_ALLOW_THREADS
    }
    PyObject *out = err == NULL ? PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)length) : NULL;
    if (out != NULL) {
        uint8_t *dst = (uint8_t *)PyByteArray_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        err = pyconv_snappy_decompress(view.buf, (size_t)view.len, dst, (size_t)length);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&view);
    if (err != NULL) {
        Py_XDECREF(out);
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    return out;
}
/* ---- end of checkpoints */

static PyMethodDef methods[] = {
    {"conv2d", (PyCFunction)(void (*)(void))py_conv2d, METH_FASTCALL, conv2d_doc},
    {"set_algorithm", py_set_algorithm, METH_O,
     "Sets conv2d's algorithm ('direct', 'auto', 'winograd', 'winograd_f2x2'); returns the "
     "previous one."},
    {"get_algorithm", py_get_algorithm, METH_NOARGS, "conv2d's algorithm."},
    {"depthwise_conv2d", (PyCFunction)(void (*)(void))py_depthwise_conv2d, METH_FASTCALL,
     depthwise_conv2d_doc},
    {"pool2d", (PyCFunction)(void (*)(void))py_pool2d, METH_FASTCALL, pool2d_doc},
    {"eltwise", (PyCFunction)(void (*)(void))py_eltwise, METH_FASTCALL, eltwise_doc},
    {"conv2d_workspace", (PyCFunction)(void (*)(void))py_conv2d_workspace, METH_FASTCALL,
     conv2d_workspace_doc},
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
    {"pin_weights", (PyCFunction)(void (*)(void))py_pin_weights, METH_FASTCALL, pin_weights_doc},
    {"set_isa", py_set_isa, METH_O,
     "Chooses the microkernels: None for the best, or 'scalar', 'avx2', 'avx512'."},
    {"fma_peak_gflops", (PyCFunction)(void (*)(void))py_fma_peak_gflops,
     METH_VARARGS | METH_KEYWORDS, fma_peak_doc},
    {"crc32c", (PyCFunction)(void (*)(void))py_crc32c, METH_VARARGS | METH_KEYWORDS,
     crc32c_doc},
    {"snappy_decompress", py_snappy_decompress, METH_VARARGS, snappy_doc},
    {"crc32c_impl", py_crc32c_impl, METH_O,
     "crc32c_impl(portable) -> str: the CRC-32C code in use ('sse4.2' or 'slice-by-8');\n"
     "True forces the portable table (for tests), False the CPU's best, None only asks."},
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
    (void)pyconv_crc32c_impl(); /* builds the tables before any thread calls in */
    pyconv_buffer_hooks(trace_alloc, trace_free);
    return PyModule_Create(&module);
}
