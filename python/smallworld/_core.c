/*
 * _core.c — the CPython extension under the smallworld package.
 *
 * This file is deliberately thin: one type, _core.Index, owning one
 * sw_index, with a method per library call.  Everything that is easier to
 * get right in Python — dtype conversion, shapes, default labels, result
 * arrays, the hnswlib drop-in — lives in __init__.py and hnswlib.py, which
 * hand this layer C-contiguous buffers of the exact types it wants
 * (float32 vectors, uint64 labels) and allocate the output arrays.  So the
 * extension needs only the buffer protocol, not NumPy's C API: it builds
 * against any NumPy, and against none.
 *
 * Every call that can take time runs with the GIL released.  Buffers are
 * pinned (PyObject_GetBuffer) before the release and let go after it, so a
 * caller cannot free or resize them underneath.  A Python filter is the one
 * thing that needs the GIL back mid-search: the trampoline takes it per
 * call (PyGILState_Ensure works from the library's own worker threads
 * too), and the first exception it raises is kept, the filter rejects
 * everything from then on, and the exception is re-raised when the search
 * returns.
 *
 * Lifetime: close() frees the index at once.  A method that released the
 * GIL holds a use count on the object while it runs, and close() (and
 * dealloc, which cannot happen while a method runs) refuses while the count
 * is non-zero, so no thread can be inside the library when the index goes.
 * The count is changed only with the GIL held, so it needs no atomics.
 *
 * Errors: a library status becomes an exception carrying sw_last_error()'s
 * message: ValueError for bad arguments, KeyError for an unknown label,
 * MemoryError, OSError for file errors, CorruptIndexError (a ValueError)
 * for a damaged or unsupported file, ReadOnlyIndexError (a PermissionError)
 * for a change to an index served from a mapped file, NotTrainedError (a
 * RuntimeError: the call was fine, the index is not ready for it) for an
 * add to a compressed index whose quantizer has not been trained.
 *
 * Element types and where full-precision copies live cross this layer as
 * the library's enum values (small ints), as the metric does; the names
 * ("int8", "disk") belong to __init__.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <smallworld.h>
#include <stdint.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030A0000
static PyObject *Py_NewRef(PyObject *o) {
    Py_INCREF(o);
    return o;
}
#endif

static PyObject *CorruptIndexError;
static PyObject *ReadOnlyIndexError;
static PyObject *NotTrainedError;

typedef struct {
    PyObject_HEAD
    sw_index *ix;
    Py_ssize_t busy; /* methods running with the GIL released */
} IndexObject;

/* The index whose filter this thread is running, if any.  A filter must not
 * call back into the index it filters (the search holds the index's gate:
 * an update from inside would wait for itself), so check_open refuses that
 * with a RuntimeError instead of hanging. */
static _Thread_local IndexObject *filtering;

/* ==== Errors ==== */

static PyObject *raise_status(sw_status st) {
    PyObject *type;
    switch (st) {
    case SW_ENOMEM: type = PyExc_MemoryError; break;
    case SW_ENOTFOUND: type = PyExc_KeyError; break;
    case SW_EIO: type = PyExc_OSError; break;
    case SW_ECORRUPT:
    case SW_EVERSION: type = CorruptIndexError; break;
    case SW_EFULL: type = PyExc_OverflowError; break;
    case SW_EREADONLY: type = ReadOnlyIndexError; break;
    case SW_ENOTTRAINED: type = NotTrainedError; break;
    default: type = PyExc_ValueError; break;
    }
    const char *msg = sw_last_error();
    PyErr_SetString(type, msg && *msg ? msg : sw_strerror(st));
    return NULL;
}

static int check_open(IndexObject *self) {
    if (filtering == self) {
        PyErr_SetString(PyExc_RuntimeError,
                        "a search filter must not call back into the index it filters");
        return -1;
    }
    if (!self->ix) {
        PyErr_SetString(PyExc_ValueError, "the index is closed");
        return -1;
    }
    return 0;
}

/* ==== Buffers ==== */

enum { BUF_F32, BUF_U64 };

/* Pin obj as a C-contiguous buffer of float32 or uint64.  The Python layer
 * converts before it calls; this check is the last line, not the first. */
static int get_buf(PyObject *obj, Py_buffer *view, int kind, int writable, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) return -1;
    const char *fmt = view->format ? view->format : "B";
    if (*fmt == '<' || *fmt == '=' || *fmt == '@') fmt++;
    int ok = kind == BUF_F32 ? view->itemsize == 4 && fmt[0] == 'f' && !fmt[1]
                             : view->itemsize == 8 && strchr("QLK", fmt[0]) && fmt[0] && !fmt[1];
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous %s buffer (got format '%s')", what,
                     kind == BUF_F32 ? "float32" : "uint64", view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static size_t buf_items(const Py_buffer *v) { return (size_t)(v->len / v->itemsize); }

/* ==== Python filters ==== */

typedef struct {
    PyObject *fn;
    IndexObject *self;
    PyObject *exc_type, *exc_value, *exc_tb; /* the first exception raised */
} pyfilter;

static int pyfilter_call(uint64_t label, void *ctx) {
    pyfilter *pf = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    int keep = 0;
    if (!pf->exc_type) {
        IndexObject *outer = filtering;
        filtering = pf->self;
        PyObject *r = PyObject_CallFunction(pf->fn, "K", (unsigned long long)label);
        filtering = outer;
        if (r) {
            keep = PyObject_IsTrue(r);
            Py_DECREF(r);
        }
        if (keep < 0 || !r) {
            keep = 0;
            PyErr_Fetch(&pf->exc_type, &pf->exc_value, &pf->exc_tb);
        }
    }
    PyGILState_Release(g);
    return keep;
}

/* Re-raise a filter's exception (returns -1) or report none (0). */
static int pyfilter_done(pyfilter *pf) {
    if (!pf->exc_type) return 0;
    PyErr_Restore(pf->exc_type, pf->exc_value, pf->exc_tb);
    pf->exc_type = pf->exc_value = pf->exc_tb = NULL;
    return -1;
}

/* ==== Construction ==== */

/* "O&" converter for an unsigned 64-bit argument that refuses, rather than
 * wraps, a negative or too large int (the "K" format wraps). */
static int u64_arg(PyObject *o, void *out) {
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "expected an int, got %s", Py_TYPE(o)->tp_name);
        return 0;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "an argument is out of range (0..2**64-1)");
        return 0;
    }
    *(unsigned long long *)out = v;
    return 1;
}

static PyObject *Index_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"dim",  "metric", "M",    "M0",   "ef_construction", "ef_search",
                            "seed", "type",   "keep", "pq_m", NULL};
    unsigned long long dim = 0, metric = 0, M = 16, M0 = 0, efc = 200, efs = 64, seed = 100,
                       etype = SW_TYPE_F32, keep = SW_KEEP_MEMORY, pq_m = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O&O&O&O&O&O&O&O&O&", names, u64_arg, &dim,
                                     u64_arg, &metric, u64_arg, &M, u64_arg, &M0, u64_arg, &efc,
                                     u64_arg, &efs, u64_arg, &seed, u64_arg, &etype, u64_arg,
                                     &keep, u64_arg, &pq_m))
        return NULL;
    sw_options o = sw_options_default();
    if (dim > UINT32_MAX || metric > 3 || M > UINT32_MAX || M0 > UINT32_MAX || efc > UINT32_MAX ||
        efs > UINT32_MAX || etype > SW_TYPE_PQ || keep > SW_KEEP_NONE || pq_m > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "a parameter is out of range");
        return NULL;
    }
    o.dim = (uint32_t)dim;
    o.metric = (sw_metric)metric;
    o.M = (uint32_t)M;
    o.M0 = (uint32_t)M0;
    o.ef_construction = (uint32_t)efc;
    o.ef_search = (uint32_t)efs;
    o.seed = seed;
    o.type = (sw_type)etype;
    o.keep = (sw_keep)keep;
    o.pq_m = (uint32_t)pq_m;
    IndexObject *self = (IndexObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    sw_status st = sw_create(&o, &self->ix);
    if (st != SW_OK) {
        Py_DECREF(self);
        return raise_status(st);
    }
    return (PyObject *)self;
}

static void Index_dealloc(IndexObject *self) {
    sw_free(self->ix); /* no method can be running: each holds a reference */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject IndexType;

static PyObject *core_load(PyObject *mod, PyObject *args) {
    PyObject *pathobj;
    int map = 0;
    if (!PyArg_ParseTuple(args, "O&|p", PyUnicode_FSConverter, &pathobj, &map)) return NULL;
    sw_index *ix = NULL;
    sw_status st;
    Py_BEGIN_ALLOW_THREADS
    st = map ? sw_open_mmap(PyBytes_AS_STRING(pathobj), NULL, &ix)
             : sw_load(PyBytes_AS_STRING(pathobj), NULL, &ix);
    Py_END_ALLOW_THREADS
    Py_DECREF(pathobj);
    if (st != SW_OK) return raise_status(st);
    IndexObject *self = (IndexObject *)IndexType.tp_alloc(&IndexType, 0);
    if (!self) {
        sw_free(ix);
        return NULL;
    }
    self->ix = ix;
    return (PyObject *)self;
}

static PyObject *Index_close(IndexObject *self, PyObject *unused) {
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "the index is in use by another thread");
        return NULL;
    }
    sw_free(self->ix);
    self->ix = NULL;
    Py_RETURN_NONE;
}

/* ==== Adding ==== */

static PyObject *Index_add(IndexObject *self, PyObject *args) {
    PyObject *vo, *lo;
    Py_ssize_t threads = 0;
    if (!PyArg_ParseTuple(args, "OO|n", &vo, &lo, &threads)) return NULL;
    if (check_open(self)) return NULL;
    if (threads < 0) threads = 0;
    Py_buffer vb, lb;
    if (get_buf(vo, &vb, BUF_F32, 0, "vectors")) return NULL;
    if (get_buf(lo, &lb, BUF_U64, 0, "labels")) {
        PyBuffer_Release(&vb);
        return NULL;
    }
    size_t n = buf_items(&lb), dim = sw_dim(self->ix);
    if (buf_items(&vb) != n * dim) {
        PyBuffer_Release(&vb);
        PyBuffer_Release(&lb);
        return PyErr_Format(PyExc_ValueError, "%zu labels for %zu values of dimension %zu", n,
                            buf_items(&vb), dim);
    }
    sw_status st;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    st = sw_add_batch(self->ix, lb.buf, vb.buf, n, dim, (size_t)threads);
    Py_END_ALLOW_THREADS
    self->busy--;
    PyBuffer_Release(&vb);
    PyBuffer_Release(&lb);
    if (st != SW_OK) return raise_status(st);
    Py_RETURN_NONE;
}

/* train(vectors_f32): the quantizer learns from these rows; none is added. */
static PyObject *Index_train(IndexObject *self, PyObject *args) {
    PyObject *vo;
    if (!PyArg_ParseTuple(args, "O", &vo)) return NULL;
    if (check_open(self)) return NULL;
    Py_buffer vb;
    if (get_buf(vo, &vb, BUF_F32, 0, "vectors")) return NULL;
    size_t dim = sw_dim(self->ix), n = dim ? buf_items(&vb) / dim : 0;
    if (n * dim != buf_items(&vb)) {
        PyBuffer_Release(&vb);
        return PyErr_Format(PyExc_ValueError, "%zu values are not rows of dimension %zu",
                            buf_items(&vb), dim);
    }
    sw_status st;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    st = sw_train(self->ix, vb.buf, n, dim);
    Py_END_ALLOW_THREADS
    self->busy--;
    PyBuffer_Release(&vb);
    if (st != SW_OK) return raise_status(st);
    Py_RETURN_NONE;
}

/* ==== Searching ==== */

/* search(queries, k, ef, threads, allow, filter, out_labels, out_dists,
 *        out_found, exact, ef_upper, rerank) — results into the caller's
 *        arrays. */
static PyObject *Index_search(IndexObject *self, PyObject *args) {
    PyObject *qo, *allowo, *fn, *lo, *do_, *fo;
    Py_ssize_t k, ef, threads, ef_upper = 0, rerank = 0;
    int exact;
    if (!PyArg_ParseTuple(args, "OnnnOOOOOp|nn", &qo, &k, &ef, &threads, &allowo, &fn, &lo, &do_,
                          &fo, &exact, &ef_upper, &rerank))
        return NULL;
    if (check_open(self)) return NULL;
    if (k < 1) return PyErr_Format(PyExc_ValueError, "k must be at least 1 (got %zd)", k);
    if (ef < 0 || ef > (Py_ssize_t)SW_MAX_EF)
        return PyErr_Format(PyExc_ValueError, "ef must be 0..%u (got %zd)", SW_MAX_EF, ef);
    if (ef_upper < 0 || ef_upper > (Py_ssize_t)SW_MAX_EF_UPPER)
        return PyErr_Format(PyExc_ValueError, "ef_upper must be 0..%u (got %zd)", SW_MAX_EF_UPPER,
                            ef_upper);
    if (rerank < 0 || rerank > (Py_ssize_t)SW_MAX_RERANK)
        return PyErr_Format(PyExc_ValueError, "rerank must be 0..%u (got %zd)", SW_MAX_RERANK,
                            rerank);
    if (threads < 0) threads = 0;
    if (fn != Py_None && !PyCallable_Check(fn))
        return PyErr_Format(PyExc_TypeError, "filter must be callable");
    Py_buffer qb, ab = {0}, lb, db, fb;
    int have_allow = allowo != Py_None;
    if (get_buf(qo, &qb, BUF_F32, 0, "queries")) return NULL;
    if (have_allow && get_buf(allowo, &ab, BUF_U64, 0, "allowed labels")) goto fail_q;
    if (get_buf(lo, &lb, BUF_U64, 1, "label output")) goto fail_a;
    if (get_buf(do_, &db, BUF_F32, 1, "distance output")) goto fail_l;
    if (get_buf(fo, &fb, BUF_U64, 1, "found output")) goto fail_d;
    size_t dim = sw_dim(self->ix), nq = dim ? buf_items(&qb) / dim : 0;
    if (nq && (size_t)k > SIZE_MAX / sizeof(uint64_t) / nq) {
        PyErr_SetString(PyExc_ValueError, "k times the number of queries is too large");
        goto fail_f;
    }
    if (buf_items(&qb) != nq * dim || buf_items(&lb) != nq * (size_t)k ||
        buf_items(&db) != nq * (size_t)k || buf_items(&fb) != nq) {
        PyErr_SetString(PyExc_ValueError, "query or output buffers have the wrong size");
        goto fail_f;
    }
    pyfilter pf = {fn, self, NULL, NULL, NULL};
    sw_search_params p = sw_search_params_default();
    p.ef = (uint32_t)ef;
    p.ef_upper = (uint32_t)ef_upper;
    p.rerank = (uint32_t)rerank;
    if (fn != Py_None) {
        p.filter = pyfilter_call;
        p.filter_ctx = &pf;
    }
    static const uint64_t none_allowed = 0;
    if (have_allow) { /* an empty list allows nothing: the pointer must not be NULL */
        p.allow = ab.buf ? (const uint64_t *)ab.buf : &none_allowed;
        p.n_allow = buf_items(&ab);
    }
    uint64_t *labels = lb.buf, *found = fb.buf;
    float *dists = db.buf;
    const float *q = qb.buf;
    sw_status st = SW_OK;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    if (exact || nq == 1) {
        for (size_t i = 0; i < nq && st == SW_OK; i++) {
            size_t n = 0;
            st = exact ? sw_search_exact(self->ix, q + i * dim, dim, (size_t)k, &p,
                                         labels + i * k, dists + i * k, &n)
                       : sw_search(self->ix, q + i * dim, dim, (size_t)k, &p, labels + i * k,
                                   dists + i * k, &n);
            for (size_t j = n; j < (size_t)k; j++) {
                labels[i * k + j] = SW_NO_LABEL;
                dists[i * k + j] = (float)HUGE_VAL;
            }
            found[i] = n;
        }
    } else if (nq) {
        /* found is uint64; where size_t is as wide the library writes it
         * directly, elsewhere the count is read off the padding (a label
         * equal to SW_NO_LABEL would end its row early there) */
        size_t *fz = sizeof(size_t) == sizeof(uint64_t) ? (size_t *)(void *)found : NULL;
        st = sw_search_batch(self->ix, q, nq, dim, (size_t)k, &p, labels, dists, fz,
                             (size_t)threads);
        for (size_t i = 0; !fz && i < nq; i++) {
            size_t n = 0;
            while (n < (size_t)k && labels[i * k + n] != SW_NO_LABEL) n++;
            found[i] = n;
        }
    }
    Py_END_ALLOW_THREADS
    self->busy--;
    if (pyfilter_done(&pf)) goto fail_f;
    if (st != SW_OK) {
        raise_status(st);
        goto fail_f;
    }
    PyBuffer_Release(&fb);
    PyBuffer_Release(&db);
    PyBuffer_Release(&lb);
    if (have_allow) PyBuffer_Release(&ab);
    PyBuffer_Release(&qb);
    Py_RETURN_NONE;
fail_f:
    PyBuffer_Release(&fb);
fail_d:
    PyBuffer_Release(&db);
fail_l:
    PyBuffer_Release(&lb);
fail_a:
    if (have_allow) PyBuffer_Release(&ab);
fail_q:
    PyBuffer_Release(&qb);
    return NULL;
}

/* ==== Labels ==== */

static int label_arg(PyObject *o, uint64_t *out) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "a label must be an integer in 0..2**64-1");
        }
        return -1;
    }
    *out = v;
    return 0;
}

/* get(labels, out): out is a float32 buffer of len(labels) x dim. */
static PyObject *Index_get(IndexObject *self, PyObject *args) {
    PyObject *lo, *oo;
    if (!PyArg_ParseTuple(args, "OO", &lo, &oo)) return NULL;
    if (check_open(self)) return NULL;
    Py_buffer lb, ob;
    if (get_buf(lo, &lb, BUF_U64, 0, "labels")) return NULL;
    if (get_buf(oo, &ob, BUF_F32, 1, "output")) {
        PyBuffer_Release(&lb);
        return NULL;
    }
    size_t n = buf_items(&lb), dim = sw_dim(self->ix);
    sw_status st = SW_OK;
    if (buf_items(&ob) != n * dim) {
        PyErr_SetString(PyExc_ValueError, "output buffer has the wrong size");
        goto out;
    }
    const uint64_t *labels = lb.buf;
    float *dst = ob.buf;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < n && st == SW_OK; i++) st = sw_get(self->ix, labels[i], dst + i * dim, dim);
    Py_END_ALLOW_THREADS
    self->busy--;
    if (st != SW_OK) raise_status(st);
out:
    PyBuffer_Release(&ob);
    PyBuffer_Release(&lb);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* One call per label, GIL released for the lot; stops at the first error.
 * For the cheap ones (mark, unmark) the release is still right: they wait
 * for a delete in flight. */
typedef sw_status (*label_op)(sw_index *, uint64_t);

static PyObject *each_label(IndexObject *self, PyObject *args, label_op op) {
    PyObject *lo;
    if (!PyArg_ParseTuple(args, "O", &lo)) return NULL;
    if (check_open(self)) return NULL;
    Py_buffer lb;
    if (get_buf(lo, &lb, BUF_U64, 0, "labels")) return NULL;
    const uint64_t *labels = lb.buf;
    size_t n = buf_items(&lb);
    sw_status st = SW_OK;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < n && st == SW_OK; i++) st = op(self->ix, labels[i]);
    Py_END_ALLOW_THREADS
    self->busy--;
    PyBuffer_Release(&lb);
    if (st != SW_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Index_delete(IndexObject *self, PyObject *args) { return each_label(self, args, sw_delete); }
static PyObject *Index_mark_deleted(IndexObject *self, PyObject *args) {
    return each_label(self, args, sw_mark_deleted);
}
static PyObject *Index_unmark_deleted(IndexObject *self, PyObject *args) {
    return each_label(self, args, sw_unmark_deleted);
}

static PyObject *Index_compact(IndexObject *self, PyObject *args) {
    Py_ssize_t threads = 0;
    if (!PyArg_ParseTuple(args, "|n", &threads)) return NULL;
    if (check_open(self)) return NULL;
    if (threads < 0) threads = 0;
    sw_status st;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    st = sw_compact(self->ix, (size_t)threads);
    Py_END_ALLOW_THREADS
    self->busy--;
    if (st != SW_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Index_contains(IndexObject *self, PyObject *arg) {
    uint64_t label = 0; /* set by label_arg; gcc -O2 cannot see that */
    if (check_open(self) || label_arg(arg, &label)) return NULL;
    return PyBool_FromLong(sw_contains(self->ix, label));
}

static PyObject *Index_is_deleted(IndexObject *self, PyObject *arg) {
    uint64_t label = 0; /* set by label_arg; gcc -O2 cannot see that */
    if (check_open(self) || label_arg(arg, &label)) return NULL;
    return PyBool_FromLong(sw_is_deleted(self->ix, label));
}

/* list_labels(tombstoned) -> bytes of native uint64 */
static PyObject *Index_list_labels(IndexObject *self, PyObject *args) {
    int tomb = 0;
    if (!PyArg_ParseTuple(args, "|p", &tomb)) return NULL;
    if (check_open(self)) return NULL;
    for (;;) {
        size_t total = 0;
        sw_status st;
        /* every call that may wait on a library lock lets the GIL go: a
         * filtered search holding the index's gate may be waiting for it */
        self->busy++;
        Py_BEGIN_ALLOW_THREADS
        st = sw_list_labels(self->ix, tomb, NULL, 0, &total);
        Py_END_ALLOW_THREADS
        self->busy--;
        if (st != SW_OK) return raise_status(st);
        size_t cap = total + 64;
        PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(cap * 8));
        if (!b) return NULL;
        uint64_t *out = (uint64_t *)PyBytes_AS_STRING(b);
        self->busy++;
        Py_BEGIN_ALLOW_THREADS
        st = sw_list_labels(self->ix, tomb, out, cap, &total);
        Py_END_ALLOW_THREADS
        self->busy--;
        if (st != SW_OK) {
            Py_DECREF(b);
            return raise_status(st);
        }
        if (total <= cap) {
            if (_PyBytes_Resize(&b, (Py_ssize_t)(total * 8)) != 0) return NULL;
            return b;
        }
        Py_DECREF(b); /* adds ran in between: size again */
    }
}

/* ==== Files ==== */

static PyObject *Index_save(IndexObject *self, PyObject *args) {
    PyObject *pathobj;
    if (!PyArg_ParseTuple(args, "O&", PyUnicode_FSConverter, &pathobj)) return NULL;
    if (check_open(self)) {
        Py_DECREF(pathobj);
        return NULL;
    }
    sw_status st;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    st = sw_save(self->ix, PyBytes_AS_STRING(pathobj));
    Py_END_ALLOW_THREADS
    self->busy--;
    Py_DECREF(pathobj);
    if (st != SW_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Index_set_metadata(IndexObject *self, PyObject *args) {
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) return NULL;
    if (check_open(self)) {
        PyBuffer_Release(&b);
        return NULL;
    }
    sw_status st;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    st = sw_set_metadata(self->ix, b.buf, (size_t)b.len);
    Py_END_ALLOW_THREADS
    self->busy--;
    PyBuffer_Release(&b);
    if (st != SW_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Index_get_metadata(IndexObject *self, PyObject *unused) {
    if (check_open(self)) return NULL;
    PyObject *b = PyBytes_FromStringAndSize(NULL, SW_MAX_METADATA);
    if (!b) return NULL;
    size_t len = 0;
    sw_status st;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    st = sw_get_metadata(self->ix, PyBytes_AS_STRING(b), SW_MAX_METADATA, &len);
    Py_END_ALLOW_THREADS
    self->busy--;
    if (st != SW_OK) {
        Py_DECREF(b);
        return raise_status(st);
    }
    if (_PyBytes_Resize(&b, (Py_ssize_t)(len < SW_MAX_METADATA ? len : SW_MAX_METADATA)) != 0)
        return NULL;
    return b;
}

/* ==== Inspecting ==== */

/* d[key] = v; -1 with an exception set on failure. */
static int dict_set_u64(PyObject *d, const char *key, unsigned long long v) {
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    int r = o ? PyDict_SetItemString(d, key, o) : -1;
    Py_XDECREF(o);
    return r;
}

static PyObject *Index_verify(IndexObject *self, PyObject *unused) {
    if (check_open(self)) return NULL;
    sw_status st;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    st = sw_verify(self->ix);
    Py_END_ALLOW_THREADS
    self->busy--;
    if (st != SW_OK) return raise_status(st);
    Py_RETURN_TRUE;
}

static PyObject *Index_stats(IndexObject *self, PyObject *unused) {
    if (check_open(self)) return NULL;
    sw_stats *s = PyMem_Malloc(sizeof *s);
    if (!s) return PyErr_NoMemory();
    sw_status st;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    st = sw_get_stats(self->ix, s);
    Py_END_ALLOW_THREADS
    self->busy--;
    if (st != SW_OK) {
        PyMem_Free(s);
        return raise_status(st);
    }
    PyObject *layers = PyList_New(s->layers);
    for (uint32_t l = 0; layers && l < s->layers; l++) {
        const sw_layer_stats *ls = &s->layer[l];
        PyObject *d = Py_BuildValue(
            "{s:K,s:K,s:I,s:I,s:d,s:K,s:K,s:K,s:K,s:K,s:d}", "nodes",
            (unsigned long long)ls->nodes, "edges", (unsigned long long)ls->edges, "min_degree",
            ls->min_degree, "max_degree", ls->max_degree, "mean_degree", ls->mean_degree,
            "self_links", (unsigned long long)ls->self_links, "duplicate_links",
            (unsigned long long)ls->duplicate_links, "dangling_links",
            (unsigned long long)ls->dangling_links, "overfull_lists",
            (unsigned long long)ls->overfull_lists, "reciprocal_edges",
            (unsigned long long)ls->reciprocal_edges, "reciprocal_share", ls->reciprocal_share);
        if (!d) {
            Py_CLEAR(layers);
            break;
        }
        PyList_SET_ITEM(layers, l, d);
    }
    /* The components of memory_bytes (sw_stats says what each holds). */
    PyObject *memory = Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "total", (unsigned long long)s->memory_bytes,
        "vectors", (unsigned long long)s->memory_vectors, "links0",
        (unsigned long long)s->memory_links0, "upper", (unsigned long long)s->memory_upper,
        "labels", (unsigned long long)s->memory_labels, "scratch",
        (unsigned long long)s->memory_scratch, "other", (unsigned long long)s->memory_other,
        "mapped", (unsigned long long)s->memory_mapped);
    PyObject *r = NULL;
    if (layers && memory) {
        PyObject *entry = s->layers ? PyLong_FromUnsignedLongLong(s->entry_label) : Py_NewRef(Py_None);
        if (entry)
            r = Py_BuildValue("{s:K,s:K,s:K,s:N,s:n,s:N,s:N,s:K,s:K,s:K,s:K,s:K,s:s}", "count",
                              (unsigned long long)s->count, "deleted",
                              (unsigned long long)s->deleted, "free_slots",
                              (unsigned long long)s->free_slots, "entry_label", entry,
                              "memory_bytes", (Py_ssize_t)s->memory_bytes, "memory", memory,
                              "layers", layers, "unreachable",
                              (unsigned long long)s->unreachable, "self_links",
                              (unsigned long long)s->self_links, "duplicate_links",
                              (unsigned long long)s->duplicate_links, "dangling_links",
                              (unsigned long long)s->dangling_links, "overfull_lists",
                              (unsigned long long)s->overfull_lists, "simd", sw_simd_name());
        else {
            Py_DECREF(layers);
            Py_DECREF(memory);
        }
    } else {
        Py_XDECREF(layers);
        Py_XDECREF(memory);
    }
    /* the quantized-storage fields (0.5), and the options they depend on */
    sw_options o;
    sw_status ost = r ? sw_get_options(self->ix, &o) : SW_OK;
    if (ost != SW_OK) {
        raise_status(ost);
        Py_CLEAR(r);
    } else if (r && (dict_set_u64(r, "type", o.type) || dict_set_u64(r, "keep", o.keep) ||
                     dict_set_u64(r, "pq_m", o.pq_m) ||
                     dict_set_u64(r, "memory_full", s->memory_full) ||
                     dict_set_u64(r, "saturated", s->saturated))) {
        Py_CLEAR(r);
    }
    PyMem_Free(s);
    return r;
}

/* ==== Small getters and setters ==== */

static PyObject *Index_info(IndexObject *self, PyObject *unused) {
    if (check_open(self)) return NULL;
    sw_options o;
    sw_status st = sw_get_options(self->ix, &o);
    if (st != SW_OK) return raise_status(st);
    return Py_BuildValue("{s:I,s:i,s:I,s:I,s:I,s:I,s:K,s:n,s:n,s:n,s:i,s:i,s:I,s:O}", "dim",
                         o.dim, "metric", (int)o.metric, "M", o.M, "M0", o.M0,
                         "ef_construction", o.ef_construction, "ef_search", o.ef_search, "seed",
                         (unsigned long long)o.seed, "count", (Py_ssize_t)sw_count(self->ix),
                         "deleted", (Py_ssize_t)sw_deleted_count(self->ix), "memory_bytes",
                         (Py_ssize_t)sw_memory_usage(self->ix), "type", (int)o.type, "keep",
                         (int)o.keep, "pq_m", o.pq_m, "trained",
                         sw_is_trained(self->ix) ? Py_True : Py_False);
}

static PyObject *Index_count(IndexObject *self, PyObject *unused) {
    if (check_open(self)) return NULL;
    return PyLong_FromSize_t(sw_count(self->ix));
}

static PyObject *Index_deleted_count(IndexObject *self, PyObject *unused) {
    if (check_open(self)) return NULL;
    return PyLong_FromSize_t(sw_deleted_count(self->ix));
}

static PyObject *Index_set_ef(IndexObject *self, PyObject *args) {
    unsigned long long ef;
    if (!PyArg_ParseTuple(args, "O&", u64_arg, &ef)) return NULL;
    if (check_open(self)) return NULL;
    if (ef > UINT32_MAX) return PyErr_Format(PyExc_ValueError, "ef %llu is out of range", ef);
    sw_status st = sw_set_ef(self->ix, (uint32_t)ef);
    if (st != SW_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Index_closed(IndexObject *self, void *unused) { return PyBool_FromLong(!self->ix); }
static PyObject *Index_trained(IndexObject *self, void *unused) {
    if (check_open(self)) return NULL;
    return PyBool_FromLong(sw_is_trained(self->ix));
}
static PyObject *Index_readonly(IndexObject *self, void *unused) {
    return PyBool_FromLong(self->ix && sw_is_readonly(self->ix));
}

static PyMethodDef Index_methods[] = {
    {"close", (PyCFunction)Index_close, METH_NOARGS, "Free the index now."},
    {"add", (PyCFunction)Index_add, METH_VARARGS, "add(vectors_f32, labels_u64, threads)"},
    {"train", (PyCFunction)Index_train, METH_VARARGS, "train(vectors_f32)"},
    {"search", (PyCFunction)Index_search, METH_VARARGS,
     "search(queries, k, ef, threads, allow, filter, out_labels, out_dists, out_found, exact, "
     "ef_upper=0, rerank=0)"},
    {"get", (PyCFunction)Index_get, METH_VARARGS, "get(labels_u64, out_f32)"},
    {"delete", (PyCFunction)Index_delete, METH_VARARGS, "delete(labels_u64)"},
    {"mark_deleted", (PyCFunction)Index_mark_deleted, METH_VARARGS, "mark_deleted(labels_u64)"},
    {"unmark_deleted", (PyCFunction)Index_unmark_deleted, METH_VARARGS, "unmark_deleted(labels_u64)"},
    {"compact", (PyCFunction)Index_compact, METH_VARARGS, "compact(threads)"},
    {"contains", (PyCFunction)Index_contains, METH_O, "contains(label)"},
    {"is_deleted", (PyCFunction)Index_is_deleted, METH_O, "is_deleted(label)"},
    {"list_labels", (PyCFunction)Index_list_labels, METH_VARARGS, "list_labels(tombstoned)"},
    {"save", (PyCFunction)Index_save, METH_VARARGS, "save(path)"},
    {"set_metadata", (PyCFunction)Index_set_metadata, METH_VARARGS, "set_metadata(bytes)"},
    {"get_metadata", (PyCFunction)Index_get_metadata, METH_NOARGS, "get_metadata() -> bytes"},
    {"verify", (PyCFunction)Index_verify, METH_NOARGS, "verify() -> True"},
    {"stats", (PyCFunction)Index_stats, METH_NOARGS, "stats() -> dict"},
    {"info", (PyCFunction)Index_info, METH_NOARGS, "info() -> dict"},
    {"count", (PyCFunction)Index_count, METH_NOARGS, "live labels"},
    {"deleted_count", (PyCFunction)Index_deleted_count, METH_NOARGS, "tombstones"},
    {"set_ef", (PyCFunction)Index_set_ef, METH_VARARGS, "set_ef(ef)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Index_getset[] = {
    {"closed", (getter)Index_closed, NULL, "True once close() has run", NULL},
    {"trained", (getter)Index_trained, NULL, "True when the index can take vectors", NULL},
    {"readonly", (getter)Index_readonly, NULL, "True for an index opened with mmap=True", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "smallworld._core.Index",
    .tp_basicsize = sizeof(IndexObject),
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One libsmallworld index (use smallworld.Index).",
    .tp_methods = Index_methods,
    .tp_getset = Index_getset,
    .tp_new = Index_new,
};

static PyMethodDef core_methods[] = {
    {"load", core_load, METH_VARARGS, "load(path, mmap=False) -> Index"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "smallworld._core", "libsmallworld, wrapped.", -1, core_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__core(void);

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&IndexType) < 0) return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (!m) return NULL;
    CorruptIndexError = PyErr_NewExceptionWithDoc(
        "smallworld.CorruptIndexError",
        "The file is not a valid smallworld index: damaged, truncated or from an unsupported "
        "version.",
        PyExc_ValueError, NULL);
    ReadOnlyIndexError = PyErr_NewExceptionWithDoc(
        "smallworld.ReadOnlyIndexError",
        "The index serves a file read-only (opened with mmap=True): it cannot be changed.",
        PyExc_PermissionError, NULL);
    NotTrainedError = PyErr_NewExceptionWithDoc(
        "smallworld.NotTrainedError",
        "The compressed index's quantizer is not trained yet: call Index.train(vectors), or add "
        "a first batch large enough to train on (TRAIN_ROWS rows; TRAIN_ROWS_PQ for pq).",
        PyExc_RuntimeError, NULL);
    Py_INCREF(&IndexType);
    if (!CorruptIndexError || !ReadOnlyIndexError || !NotTrainedError ||
        PyModule_AddObject(m, "Index", (PyObject *)&IndexType) < 0 ||
        PyModule_AddObject(m, "CorruptIndexError", Py_NewRef(CorruptIndexError)) < 0 ||
        PyModule_AddObject(m, "ReadOnlyIndexError", Py_NewRef(ReadOnlyIndexError)) < 0 ||
        PyModule_AddObject(m, "NotTrainedError", Py_NewRef(NotTrainedError)) < 0 ||
        PyModule_AddIntConstant(m, "MAX_RERANK", SW_MAX_RERANK) < 0 ||
        PyModule_AddIntConstant(m, "DEFAULT_RERANK", SW_DEFAULT_RERANK) < 0 ||
        PyModule_AddIntConstant(m, "TRAIN_ROWS", SW_TRAIN_ROWS) < 0 ||
        PyModule_AddIntConstant(m, "TRAIN_ROWS_PQ", SW_TRAIN_ROWS_PQ) < 0 ||
        PyModule_AddStringConstant(m, "version", sw_version()) < 0 ||
        PyModule_AddStringConstant(m, "simd", sw_simd_name()) < 0 ||
        PyModule_AddObject(m, "NO_LABEL", PyLong_FromUnsignedLongLong(SW_NO_LABEL)) < 0 ||
        PyModule_AddIntConstant(m, "MAX_METADATA", SW_MAX_METADATA) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
