/*
 * initcheck._kernels: fold one draw into running statistics, in one pass.
 *
 * fold(x, ref, lo, segment_scale, cum, slope, sums, extremes, counts, hist)
 *
 *   x         contiguous float32 or float64 buffer (the draw, any shape)
 *   ref       reference point of the power sums (the law's mean)
 *   lo, segment_scale, cum (float64[S + 1]), slope (float64[S]):
 *             the grid of initcheck/grid.py.  t = (x - lo) * segment_scale;
 *             cell 0 when t < 0, cells + 1 when t >= S, else with j = floor(t)
 *             floor(cum[j] + (t - j) * slope[j]) + 1, at most cells
 *             (cells = cum[S], the histogram has cells + 2 entries)
 *   sums      float64[4], += sum (x - ref)^k for k = 1..4 over finite x
 *   extremes  float64[2], min and max of the finite x (updated)
 *   counts    int64[4],  += finite, NaN, +Inf, -Inf counts
 *   hist      int32[cells + 2], += cell counts of the finite x (the caller
 *             moves them to int64 before any cell can reach 2^31; half the
 *             cache footprint of int64 makes the scattered adds much cheaper)
 *
 * Everything is accumulated in double precision whatever the sample dtype.
 * The GIL is released during the loop, so Python can draw the next sample on
 * another core meanwhile.  Plain C over the buffer protocol: no NumPy headers
 * are needed to build it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Portability.  The build (setup.py) passes only the flags the compiler
 * accepts, so nothing here may depend on them:
 *
 * IC_CLONES(...)  AVX2/AVX-512 clones picked at run time, where the compiler
 *                 has target_clones and the platform ifunc: GCC >= 6 or
 *                 clang >= 14 on x86-64 Linux with glibc; elsewhere one
 *                 portable version (define IC_NO_CLONES to force that).
 * IC_SIMD(...)    an `omp simd` pragma for GCC, only when -fopenmp-simd was
 *                 accepted (setup.py then defines IC_OPENMP_SIMD); clang
 *                 vectorizes the same loops without it, and warns with it
 *                 where it cannot.
 * IC_RESTRICT     C99 restrict, __restrict for MSVC.
 *
 * The cell rule must round as grid.py and the NumPy path do: no contraction
 * of a * b + c into a fused multiply-add (-ffp-contract=off for GCC-style
 * compilers, the pragmas below for clang and MSVC). */
#if !defined(IC_NO_CLONES) && defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    ((defined(__clang__) && __clang_major__ >= 14) ||                                        \
     (!defined(__clang__) && !defined(__INTEL_COMPILER) && defined(__GNUC__) && __GNUC__ >= 6))
#define IC_CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#define IC_CLONE_INFO "AVX-512/AVX2 clones picked at run time"
#else
#define IC_CLONES(...)
#define IC_CLONE_INFO ""
#endif

#if defined(IC_OPENMP_SIMD) && defined(__GNUC__) && !defined(__clang__)
#define IC_SIMD(clauses) _Pragma(clauses)
#else
#define IC_SIMD(clauses)
#endif

#if defined(_MSC_VER)
#define IC_RESTRICT __restrict
#pragma fp_contract(off)
#else
#define IC_RESTRICT restrict
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

typedef struct {
    double lo, scale;          /* t = (x - lo) * scale */
    const double *cum, *slope; /* cum[segments + 1], slope[segments] */
    Py_ssize_t segments;
    int64_t cells;
    double step; /* cum[j] = j * step for every j, step a power of two; else 0 */
} grid;

typedef struct {
    double s[4];
    double low, high;
    int64_t finite, nan, posinf, neginf;
} accum;

/* A kernel of deviations x - ref, compiled twice: BODY(T, NAME_any_T,
 * ref_given), whose ref is its ref_given argument, and BODY(T, NAME_zero_T,
 * 0.0) for ref = +0.0 (most laws), where x - 0.0 is x itself (the same
 * doubles, bit for bit) and the compiler drops the subtraction.  NAME_T
 * (PARAMS, ARGS: its parameters and how it passes them on) picks one. */
static inline int plain_zero(double ref) { return ref == 0.0 && !signbit(ref); }
#define WITH_REF(T, BODY, NAME, PARAMS, ARGS)                                           \
    BODY(T, NAME##_any_##T, ref_given)                                                  \
    BODY(T, NAME##_zero_##T, 0.0)                                                       \
    static void NAME##_##T PARAMS {                                                     \
        if (plain_zero(ref)) NAME##_zero_##T ARGS;                                      \
        else NAME##_any_##T ARGS;                                                       \
    }

/* Power sums and extremes: a plain loop that the compiler vectorizes
 * (reassociation is allowed for this file; the extremes are reductions in the
 * sample's own dtype, which is exact), with AVX2 and AVX-512 clones picked at
 * run time where the CPU has them.  NaN or Inf poisons the sums; the caller
 * then takes the careful path, which recomputes everything. */
#define MOMENTS(T)                                                                      \
    IC_CLONES("avx512f", "avx2", "default")                                             \
    static void moments_##T(const T *IC_RESTRICT p, Py_ssize_t n, double ref, accum *a) { \
        double s1 = 0, s2 = 0, s3 = 0, s4 = 0;                                          \
        T low = (T)INFINITY, high = (T)-INFINITY;                                       \
        IC_SIMD("omp simd reduction(+:s1,s2,s3,s4) reduction(min:low) reduction(max:high)") \
        for (Py_ssize_t i = 0; i < n; i++) {                                            \
            T v = p[i];                                                                 \
            double d = (double)v - ref, d2 = d * d;                                     \
            s1 += d; s2 += d2; s3 += d2 * d; s4 += d2 * d2;                             \
            low = v < low ? v : low;                                                    \
            high = v > high ? v : high;                                                 \
        }                                                                               \
        a->s[0] += s1; a->s[1] += s2; a->s[2] += s3; a->s[3] += s4;                     \
        a->low = low < a->low ? (double)low : a->low;                                   \
        a->high = high > a->high ? (double)high : a->high;                              \
        a->finite += n;                                                                 \
    }

/* Cell indices of a block, in three passes over at most CELL_PART values: the
 * segment j of every value, then its table entries cum[j] and slope[j], then
 * its cell.  The first and last passes have no table look-up, so compilers
 * vectorize them; one loop doing all three (a look-up in the middle of each
 * value's arithmetic) stays scalar or waits on gathers, and costs 1.5 to 3
 * times as much.  Every value gets the cell of grid.py's rule (Grid.cell_of,
 * the NumPy path) bit for bit: t in [0, S) is kept as is (the clamp to
 * [0, nextafter(S, 0)] only keeps the index in the table for the values whose
 * cell is then overridden: below lo is 0, at or above hi is cells + 1), the
 * product and the sum are separate IEEE operations (no contraction), and
 * truncation is C's.  The last pass recomputes t from x: two operations a
 * value, cheaper than storing and reloading it.
 *
 * The body is compiled three times on x86-64 with GCC or clang (AVX-512, AVX2
 * and the baseline), picked at import by what the CPU has and switchable for
 * the tests (cell_level); elsewhere once, for the baseline. */
#define BLOCK 2048
#define CELL_PART 512

#define CELLS_IN_PASSES(T, NAME, ATTRIBUTE)                                             \
    ATTRIBUTE static void NAME(const T *IC_RESTRICT p, Py_ssize_t n, const grid *g,      \
                               int32_t *IC_RESTRICT out) {                              \
        int32_t seg[CELL_PART];                                                         \
        double c[CELL_PART], s[CELL_PART];                                              \
        const double lo = g->lo, scale = g->scale, segments = (double)g->segments;      \
        const double top = nextafter(segments, 0.0);                                    \
        const double *IC_RESTRICT cum = g->cum, *IC_RESTRICT slope = g->slope;          \
        const int32_t cells = (int32_t)g->cells;                                        \
        for (Py_ssize_t start = 0; start < n; start += CELL_PART) {                     \
            Py_ssize_t m = n - start < CELL_PART ? n - start : CELL_PART;               \
            const T *IC_RESTRICT q = p + start;                                         \
            int32_t *IC_RESTRICT o = out + start;                                       \
            for (Py_ssize_t i = 0; i < m; i++) {                                        \
                double t = ((double)q[i] - lo) * scale;                                 \
                t = t > 0.0 ? t : 0.0;                                                  \
                seg[i] = (int32_t)(t < top ? t : top);                                  \
            }                                                                           \
            for (Py_ssize_t i = 0; i < m; i++) {                                        \
                c[i] = cum[seg[i]];                                                     \
                s[i] = slope[seg[i]];                                                   \
            }                                                                           \
            for (Py_ssize_t i = 0; i < m; i++) {                                        \
                double t = ((double)q[i] - lo) * scale;                                 \
                double tc = t > 0.0 ? t : 0.0;                                          \
                tc = tc < top ? tc : top;                                               \
                int32_t k = (int32_t)(c[i] + (tc - (double)seg[i]) * s[i]);             \
                k = (k < cells ? k : cells - 1) + 1;                                    \
                o[i] = t < 0.0 ? 0 : (t >= segments ? cells + 1 : k);                   \
            }                                                                           \
        }                                                                               \
    }

/* 0: baseline, 1: AVX2, 2: AVX-512 (set once, at import) */
static int cell_level = 0;

#if !defined(IC_NO_CLONES) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(__INTEL_COMPILER) && (defined(__clang__) ? __clang_major__ >= 8 : __GNUC__ >= 8)
#define IC_CELL_LEVELS 1
CELLS_IN_PASSES(float, cells_avx512_float, __attribute__((target("avx512f"))))
CELLS_IN_PASSES(double, cells_avx512_double, __attribute__((target("avx512f"))))
CELLS_IN_PASSES(float, cells_avx2_float, __attribute__((target("avx2"))))
CELLS_IN_PASSES(double, cells_avx2_double, __attribute__((target("avx2"))))
#endif
CELLS_IN_PASSES(float, cells_baseline_float, )
CELLS_IN_PASSES(double, cells_baseline_double, )

static void pick_cell_level(void) {
#ifdef IC_CELL_LEVELS
    __builtin_cpu_init();
    cell_level = __builtin_cpu_supports("avx512f") ? 2 : (__builtin_cpu_supports("avx2") ? 1 : 0);
#endif
}

#ifdef IC_CELL_LEVELS
#define CELLS_DISPATCH(T)                                                               \
    static void cells_##T(const T *IC_RESTRICT p, Py_ssize_t n, const grid *g, int32_t *IC_RESTRICT out) { \
        if (cell_level == 2) cells_avx512_##T(p, n, g, out);                            \
        else if (cell_level == 1) cells_avx2_##T(p, n, g, out);                         \
        else cells_baseline_##T(p, n, g, out);                                          \
    }
#else
#define CELLS_DISPATCH(T)                                                               \
    static void cells_##T(const T *IC_RESTRICT p, Py_ssize_t n, const grid *g, int32_t *IC_RESTRICT out) { \
        cells_baseline_##T(p, n, g, out);                                               \
    }
#endif
CELLS_DISPATCH(float)
CELLS_DISPATCH(double)

/* The same cells on a linear grid, cum[j] = j * step with step a power of two
 * (a uniform law): there cum[j] + (t - j) * step = t * step exactly, and
 * t * step = (x - lo) * (scale * step) exactly, so no table is read and every
 * index is the one cells_##T gives.  Clamping t * step to [-1, cells] and
 * taking floor + 1 yields 0 below lo and cells + 1 at or above hi. */
#define LINEAR_CELLS(T)                                                                 \
    IC_CLONES("avx512f", "avx2", "default")                                             \
    static void linear_cells_##T(const T *IC_RESTRICT p, Py_ssize_t n, const grid *g,   \
                                 int32_t *IC_RESTRICT out) {                            \
        const double lo = g->lo, scale = g->scale * g->step, top = (double)g->cells;    \
        for (Py_ssize_t i = 0; i < n; i++) {                                            \
            double u = ((double)p[i] - lo) * scale;                                     \
            u = u > -1.0 ? u : -1.0;                                                    \
            u = u < top ? u : top;                                                      \
            out[i] = (int32_t)floor(u) + 1;                                             \
        }                                                                               \
    }

/* Histogram cells; skip_nonfinite is set only on the careful path, where
 * non-finite values are not counted. */
#define HISTOGRAM(T)                                                                    \
    static void histogram_##T(const T *IC_RESTRICT p, Py_ssize_t n, const grid *g,      \
                              int32_t *IC_RESTRICT h, int skip_nonfinite) {             \
        int32_t index[BLOCK];                                                           \
        for (Py_ssize_t start = 0; start < n; start += BLOCK) {                         \
            Py_ssize_t m = n - start < BLOCK ? n - start : BLOCK;                       \
            const T *q = p + start;                                                     \
            if (g->step > 0) linear_cells_##T(q, m, g, index);                          \
            else cells_##T(q, m, g, index);                                             \
            if (skip_nonfinite) {                                                       \
                for (Py_ssize_t i = 0; i < m; i++)                                      \
                    if (isfinite((double)q[i])) h[index[i]]++;                          \
            } else {                                                                    \
                for (Py_ssize_t i = 0; i < m; i++) h[index[i]]++;                       \
            }                                                                           \
        }                                                                               \
    }

/* The careful path for a draw holding NaN or Inf: count them, sum the rest. */
#define CAREFUL(T)                                                                      \
    static void careful_##T(const T *IC_RESTRICT p, Py_ssize_t n, double ref, accum *a) { \
        for (Py_ssize_t i = 0; i < n; i++) {                                            \
            double v = (double)p[i];                                                    \
            if (!isfinite(v)) {                                                         \
                if (isnan(v)) a->nan++;                                                 \
                else if (v > 0) a->posinf++;                                            \
                else a->neginf++;                                                       \
                continue;                                                               \
            }                                                                           \
            double d = v - ref, d2 = d * d;                                             \
            a->s[0] += d; a->s[1] += d2; a->s[2] += d2 * d; a->s[3] += d2 * d2;         \
            a->low = v < a->low ? v : a->low;                                           \
            a->high = v > a->high ? v : a->high;                                        \
            a->finite++;                                                                \
        }                                                                               \
    }

MOMENTS(float)
MOMENTS(double)
LINEAR_CELLS(float)
LINEAR_CELLS(double)
HISTOGRAM(float)
HISTOGRAM(double)
CAREFUL(float)
CAREFUL(double)

#define FOLD(T)                                                                         \
    do {                                                                                \
        const T *p = (const T *)x.buf;                                                  \
        accum first = a;                                                                \
        moments_##T(p, n, ref, &a);                                                     \
        int poisoned = !(isfinite(a.s[0] + a.s[1] + a.s[2] + a.s[3]));                  \
        if (poisoned) {                                                                 \
            a = first;                                                                  \
            careful_##T(p, n, ref, &a);                                                 \
        }                                                                               \
        histogram_##T(p, n, &g, h, poisoned);                                           \
    } while (0)

/* step when cum[j] == j * step for every j and step is a power of two, else 0 */
static double linear_step(const double *cum, Py_ssize_t segments) {
    double step = cum[segments] / (double)segments;
    int exponent;
    if (!(step > 0) || frexp(step, &exponent) != 0.5) return 0;
    for (Py_ssize_t j = 0; j <= segments; j++)
        if (cum[j] != (double)j * step) return 0;
    return step;
}

static int get_buffer(PyObject *obj, Py_buffer *view, int writable, const char *name) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "fold: %s must be a contiguous%s buffer", name,
                     writable ? " writable" : "");
        return -1;
    }
    return 0;
}

static int check_format(Py_buffer *view, const char *want, Py_ssize_t min_items, const char *name) {
    const char *f = view->format ? view->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
    /* int64 is 'q' or, where long is 64 bits (NumPy on Linux), 'l'. */
    int same = strcmp(f, want) == 0 ||
               (strcmp(want, "q") == 0 && strcmp(f, "l") == 0 && view->itemsize == 8);
    if (!same || view->len / view->itemsize < min_items) {
        PyErr_Format(PyExc_TypeError, "fold: %s must hold at least %zd items of format '%s'", name,
                     min_items, want);
        return -1;
    }
    return 0;
}

static PyObject *fold(PyObject *self, PyObject *args) {
    PyObject *xo, *cumo, *slopeo, *so, *eo, *co, *ho;
    double ref, lo, scale;
    if (!PyArg_ParseTuple(args, "OdddOOOOOO", &xo, &ref, &lo, &scale, &cumo, &slopeo, &so, &eo, &co, &ho))
        return NULL;
    Py_buffer x, cb, sb, s, e, c, hv;
    if (get_buffer(xo, &x, 0, "x") < 0) return NULL;
    if (get_buffer(cumo, &cb, 0, "cum") < 0) goto fail_x;
    if (get_buffer(slopeo, &sb, 0, "slope") < 0) goto fail_cb;
    if (get_buffer(so, &s, 1, "sums") < 0) goto fail_sb;
    if (get_buffer(eo, &e, 1, "extremes") < 0) goto fail_s;
    if (get_buffer(co, &c, 1, "counts") < 0) goto fail_e;
    if (get_buffer(ho, &hv, 1, "hist") < 0) goto fail_c;
    Py_ssize_t segments = sb.len / (Py_ssize_t)sizeof(double);
    if (check_format(&sb, "d", 1, "slope") < 0 || check_format(&cb, "d", segments + 1, "cum") < 0 ||
        check_format(&s, "d", 4, "sums") < 0 || check_format(&e, "d", 2, "extremes") < 0 ||
        check_format(&c, "q", 4, "counts") < 0)
        goto fail_all;
    grid g = {lo, scale, (const double *)cb.buf, (const double *)sb.buf, segments,
              (int64_t)((const double *)cb.buf)[segments], linear_step(cb.buf, segments)};
    if (check_format(&hv, "i", g.cells + 2, "hist") < 0) goto fail_all;
    const char *xf = x.format ? x.format : "B";
    if (xf[0] == '<' || xf[0] == '=' || xf[0] == '@') xf++;
    int is_double = strcmp(xf, "d") == 0;
    if (!is_double && strcmp(xf, "f") != 0) {
        PyErr_Format(PyExc_TypeError, "fold: x must be float32 or float64, got format '%s'", xf);
        goto fail_all;
    }

    Py_ssize_t n = x.len / x.itemsize;
    double *sums = (double *)s.buf, *extremes = (double *)e.buf;
    int64_t *counts = (int64_t *)c.buf;
    int32_t *h = (int32_t *)hv.buf;
    accum a;
    memset(&a, 0, sizeof a);
    a.low = extremes[0];
    a.high = extremes[1];

    Py_BEGIN_ALLOW_THREADS
    if (is_double) FOLD(double);
    else FOLD(float);
    Py_END_ALLOW_THREADS

    for (int k = 0; k < 4; k++) sums[k] += a.s[k];
    extremes[0] = a.low;
    extremes[1] = a.high;
    counts[0] += a.finite;
    counts[1] += a.nan;
    counts[2] += a.posinf;
    counts[3] += a.neginf;

    PyBuffer_Release(&hv);
    PyBuffer_Release(&c);
    PyBuffer_Release(&e);
    PyBuffer_Release(&s);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&cb);
    PyBuffer_Release(&x);
    Py_RETURN_NONE;

fail_all:
    PyBuffer_Release(&hv);
fail_c:
    PyBuffer_Release(&c);
fail_e:
    PyBuffer_Release(&e);
fail_s:
    PyBuffer_Release(&s);
fail_sb:
    PyBuffer_Release(&sb);
fail_cb:
    PyBuffer_Release(&cb);
fail_x:
    PyBuffer_Release(&x);
    return NULL;
}

/* Lag-1 products for the independence check, in one pass over the draw:
 *   p[0] = sum_{i < n-1} d_i d_{i+1}      (neighbouring values)
 *   p[1] = sum_{i < n-L} d_i d_{i+L}      (neighbouring rows, when 0 < L < n)
 *   p[2] = sum_{i < n}   e_i d_i          (consecutive draws, when prev is given)
 * with d = x - ref, e = prev - ref; also s = sum d and sp = sum e.  The common
 * range runs without branches (the compiler vectorizes it, with AVX2 and
 * AVX-512 clones picked at run time); the last few values are a scalar tail.
 * Compiled twice (WITH_REF): for any ref, and for ref = +0.0 (most laws),
 * where x - 0.0 is x exactly and the subtractions go. */
#define PRODUCTS_AT(T, NAME, REF)                                                       \
    IC_CLONES("avx512f", "avx2", "default")                                             \
    static void NAME(const T *IC_RESTRICT x, const T *IC_RESTRICT prev, Py_ssize_t n,   \
                     Py_ssize_t L, double ref_given, double *IC_RESTRICT p, double *s,  \
                     double *sp) {                                                      \
        const double ref = REF;                                                         \
        (void)ref_given;                                                                \
        int rows = L > 0 && L < n;                                                      \
        Py_ssize_t m = rows ? n - L : n - 1;                                            \
        if (m > n - 1) m = n - 1;                                                       \
        if (m < 0) m = 0;                                                               \
        double s0 = 0, p0 = 0, p1 = 0, p2 = 0, e0 = 0;                                  \
        if (rows && prev) {                                                             \
            for (Py_ssize_t i = 0; i < m; i++) {                                        \
                double d = (double)x[i] - ref, e = (double)prev[i] - ref;               \
                s0 += d; e0 += e;                                                       \
                p0 += d * ((double)x[i + 1] - ref);                                     \
                p1 += d * ((double)x[i + L] - ref);                                     \
                p2 += e * d;                                                            \
            }                                                                           \
        } else if (rows) {                                                              \
            for (Py_ssize_t i = 0; i < m; i++) {                                        \
                double d = (double)x[i] - ref;                                          \
                s0 += d;                                                                \
                p0 += d * ((double)x[i + 1] - ref);                                     \
                p1 += d * ((double)x[i + L] - ref);                                     \
            }                                                                           \
        } else if (prev) {                                                              \
            for (Py_ssize_t i = 0; i < m; i++) {                                        \
                double d = (double)x[i] - ref, e = (double)prev[i] - ref;               \
                s0 += d; e0 += e;                                                       \
                p0 += d * ((double)x[i + 1] - ref);                                     \
                p2 += e * d;                                                            \
            }                                                                           \
        } else {                                                                        \
            for (Py_ssize_t i = 0; i < m; i++) {                                        \
                double d = (double)x[i] - ref;                                          \
                s0 += d;                                                                \
                p0 += d * ((double)x[i + 1] - ref);                                     \
            }                                                                           \
        }                                                                               \
        for (Py_ssize_t i = m; i < n; i++) {                                            \
            double d = (double)x[i] - ref;                                              \
            s0 += d;                                                                    \
            if (i + 1 < n) p0 += d * ((double)x[i + 1] - ref);                          \
            if (rows && i + L < n) p1 += d * ((double)x[i + L] - ref);                  \
            if (prev) {                                                                 \
                double e = (double)prev[i] - ref;                                       \
                e0 += e;                                                                \
                p2 += e * d;                                                            \
            }                                                                           \
        }                                                                               \
        p[0] = p0; p[1] = p1; p[2] = p2; *s = s0; *sp = e0;                             \
    }
#define PRODUCTS(T) WITH_REF(T, PRODUCTS_AT, products,                                  \
    (const T *x, const T *prev, Py_ssize_t n, Py_ssize_t L, double ref, double *p, double *s, double *sp), \
    (x, prev, n, L, ref, p, s, sp))

/* sum of x[i] - ref over i in [from, to) */
#define SPAN(T)                                                                         \
    static double span_##T(const T *x, Py_ssize_t from, Py_ssize_t to, double ref) {    \
        double s = 0;                                                                   \
        for (Py_ssize_t i = from; i < to; i++) s += (double)x[i] - ref;                 \
        return s;                                                                       \
    }

/* out[3][4] += {products, sum of the first members, sum of the second, count},
 * the sums of members derived from the whole sum minus the values left out. */
#define PAIRS(T)                                                                        \
    static void pairs_##T(const T *x, const T *prev, Py_ssize_t n, Py_ssize_t L,        \
                          double ref, double *o) {                                      \
        double p[3], s, sp;                                                             \
        products_##T(x, prev, n, L, ref, p, &s, &sp);                                   \
        if (n > 1) {                                                                    \
            o[0] += p[0]; o[1] += s - ((double)x[n - 1] - ref);                         \
            o[2] += s - ((double)x[0] - ref); o[3] += (double)(n - 1);                  \
        }                                                                               \
        if (L > 0 && L < n) {                                                           \
            o[4] += p[1]; o[5] += s - span_##T(x, n - L, n, ref);                       \
            o[6] += s - span_##T(x, 0, L, ref); o[7] += (double)(n - L);                \
        }                                                                               \
        if (prev) {                                                                     \
            o[8] += p[2]; o[9] += sp; o[10] += s; o[11] += (double)n;                   \
        }                                                                               \
    }

/* K draws of n values one after another: each draw's pairs as pairs_##T gives
 * them, draw k's previous draw being draw k - 1 (the given prev for k = 0), so
 * a batch adds exactly what K calls, one a draw, would add. */
#define BATCH(T)                                                                        \
    static void batch_##T(const T *x, const T *prev, Py_ssize_t draws, Py_ssize_t n,    \
                          Py_ssize_t L, double ref, double *o) {                        \
        for (Py_ssize_t k = 0; k < draws; k++) {                                        \
            const T *draw = x + k * n;                                                  \
            pairs_##T(draw, k ? draw - n : prev, n, L, ref, o);                         \
        }                                                                               \
    }

PRODUCTS(float)
PRODUCTS(double)
SPAN(float)
SPAN(double)
PAIRS(float)
PAIRS(double)
BATCH(float)
BATCH(double)

/*
 * pairs(x, previous, row_length, ref, out, draw_length=0)
 *
 *   x            contiguous float32 or float64 buffer: one draw, or K draws of
 *                draw_length values one after another (a (K, *draw_shape)
 *                batch); draw_length 0 means the whole of x is one draw
 *   previous     the draw before x's first (draw_length values of x's dtype),
 *                or None (the first draw of a row)
 *   row_length   values per row of a draw (lag_of_rows of its shape; 0: none)
 *   out          float64[3][4]; row 0: neighbours (x[i], x[i+1]) within a
 *                draw; row 1: rows (x[i], x[i + row_length]) within a draw;
 *                row 2: draws (the previous draw's value i, the draw's value
 *                i), across the batch and from previous to its first draw.
 *                Each row += {sum of products of deviations from ref, the two
 *                sums of deviations, the number of pairs}.
 *
 * A batch adds exactly what one call per draw would add, in the same order.
 */
static PyObject *pairs(PyObject *self, PyObject *args) {
    PyObject *xo, *po, *oo;
    Py_ssize_t row_length, draw_length = 0;
    double ref;
    if (!PyArg_ParseTuple(args, "OOndO|n", &xo, &po, &row_length, &ref, &oo, &draw_length)) return NULL;
    Py_buffer x, prev, out;
    int has_prev = po != Py_None;
    if (get_buffer(xo, &x, 0, "x") < 0) return NULL;
    if (has_prev && get_buffer(po, &prev, 0, "previous") < 0) goto fail_x;
    if (get_buffer(oo, &out, 1, "out") < 0) goto fail_prev;
    if (check_format(&out, "d", 12, "out") < 0) goto fail_all;
    const char *xf = x.format ? x.format : "B";
    if (xf[0] == '<' || xf[0] == '=' || xf[0] == '@') xf++;
    int is_double = strcmp(xf, "d") == 0;
    if (!is_double && strcmp(xf, "f") != 0) {
        PyErr_Format(PyExc_TypeError, "pairs: x must be float32 or float64, got format '%s'", xf);
        goto fail_all;
    }
    Py_ssize_t n = x.len / x.itemsize;
    if (draw_length < 0 || (draw_length > 0 && n % draw_length != 0)) {
        PyErr_Format(PyExc_ValueError, "pairs: x holds %zd values, not a whole number of draws of %zd",
                     n, draw_length);
        goto fail_all;
    }
    if (draw_length == 0) draw_length = n;
    if (has_prev) {
        const char *pf = prev.format ? prev.format : "B";
        if (pf[0] == '<' || pf[0] == '=' || pf[0] == '@') pf++;
        if (prev.len != draw_length * x.itemsize || prev.itemsize != x.itemsize || strcmp(pf, xf) != 0) {
            PyErr_SetString(PyExc_ValueError, "pairs: previous must match one draw of x in size and dtype");
            goto fail_all;
        }
    }
    Py_ssize_t draws = draw_length > 0 ? n / draw_length : 0;
    if (row_length < 1) row_length = draw_length;
    double *o = (double *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        batch_double((const double *)x.buf, has_prev ? (const double *)prev.buf : NULL, draws, draw_length,
                     row_length, ref, o);
    else
        batch_float((const float *)x.buf, has_prev ? (const float *)prev.buf : NULL, draws, draw_length,
                    row_length, ref, o);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out);
    if (has_prev) PyBuffer_Release(&prev);
    PyBuffer_Release(&x);
    Py_RETURN_NONE;

fail_all:
    PyBuffer_Release(&out);
fail_prev:
    if (has_prev) PyBuffer_Release(&prev);
fail_x:
    PyBuffer_Release(&x);
    return NULL;
}

/*
 * bit_patterns(x, counts): counts[pattern] += 1 for every 16-bit value of x
 * (x seen as uint16: float16 or bfloat16), counts int64[65536].
 */
static PyObject *bit_patterns(PyObject *self, PyObject *args) {
    PyObject *xo, *co;
    if (!PyArg_ParseTuple(args, "OO", &xo, &co)) return NULL;
    Py_buffer x, c;
    if (PyObject_GetBuffer(xo, &x, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (get_buffer(co, &c, 1, "counts") < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (x.itemsize != 2 || x.len % 2 != 0) {
        PyErr_SetString(PyExc_TypeError, "bit_patterns: x must hold 16-bit values");
        goto fail;
    }
    if (check_format(&c, "q", 65536, "counts") < 0) goto fail;
    const uint16_t *p = (const uint16_t *)x.buf;
    int64_t *counts = (int64_t *)c.buf;
    Py_ssize_t n = x.len / 2;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) counts[p[i]]++;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&c);
    PyBuffer_Release(&x);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&c);
    PyBuffer_Release(&x);
    return NULL;
}


/*
 * positions(x, cols, ref, row_s1, row_s2, col_s1, col_s2)
 *
 *   x           contiguous float32 or float64 buffer of rows * cols values,
 *               read as a (rows, cols) matrix
 *   row_s1/s2   float64[rows], set to each row's sum of d = x - ref and of d^2
 *   col_s1/s2   float64[cols], += each column's sum of d and of d^2
 *
 * One pass; the per-position sums of initcheck/structure.py (rows: positions
 * along the first axis of a draw, or whole draws; columns: the rest of a
 * draw's shape, or every element of small draws).  Compiled twice
 * (WITH_REF).
 */
#define POSITIONS_AT(T, NAME, REF)                                                      \
    IC_CLONES("avx512f", "avx2", "default")                                             \
    static void NAME(const T *x, Py_ssize_t rows, Py_ssize_t cols, double ref_given,    \
                     double *IC_RESTRICT rs1, double *IC_RESTRICT rs2,                  \
                     double *IC_RESTRICT cs1, double *IC_RESTRICT cs2) {                \
        const double ref = REF;                                                         \
        (void)ref_given;                                                                \
        for (Py_ssize_t r = 0; r < rows; r++) {                                         \
            const T *row = x + r * cols;                                                \
            double a = 0, b = 0;                                                        \
            IC_SIMD("omp simd reduction(+ : a, b)")                                     \
            for (Py_ssize_t j = 0; j < cols; j++) {                                     \
                double d = (double)row[j] - ref;                                        \
                double e = d * d;                                                       \
                a += d;                                                                 \
                b += e;                                                                 \
                cs1[j] += d;                                                            \
                cs2[j] += e;                                                            \
            }                                                                           \
            rs1[r] = a;                                                                 \
            rs2[r] = b;                                                                 \
        }                                                                               \
    }
#define POSITIONS(T) WITH_REF(T, POSITIONS_AT, positions,                               \
    (const T *x, Py_ssize_t rows, Py_ssize_t cols, double ref, double *rs1, double *rs2, double *cs1, \
     double *cs2),                                                                      \
    (x, rows, cols, ref, rs1, rs2, cs1, cs2))

POSITIONS(float)
POSITIONS(double)

static PyObject *positions(PyObject *self, PyObject *args) {
    PyObject *xo, *o[4];
    Py_ssize_t cols;
    double ref;
    if (!PyArg_ParseTuple(args, "OndOOOO", &xo, &cols, &ref, &o[0], &o[1], &o[2], &o[3])) return NULL;
    Py_buffer x, out[4];
    int held = 0;
    PyObject *result = NULL;
    if (get_buffer(xo, &x, 0, "x") < 0) return NULL;
    const char *xf = x.format ? x.format : "B";
    if (xf[0] == '<' || xf[0] == '=' || xf[0] == '@') xf++;
    int is_double = strcmp(xf, "d") == 0;
    if (!is_double && strcmp(xf, "f") != 0) {
        PyErr_Format(PyExc_TypeError, "positions: x must be float32 or float64, got format '%s'", xf);
        goto done;
    }
    Py_ssize_t n = x.len / x.itemsize;
    if (cols < 1 || n % cols != 0) {
        PyErr_Format(PyExc_ValueError, "positions: %zd values are not whole rows of %zd", n, cols);
        goto done;
    }
    Py_ssize_t rows = n / cols;
    const char *names[4] = {"row_s1", "row_s2", "col_s1", "col_s2"};
    for (; held < 4; held++) {
        if (get_buffer(o[held], &out[held], 1, names[held]) < 0) goto done;
        if (check_format(&out[held], "d", held < 2 ? rows : cols, names[held]) < 0) {
            held++;
            goto done;
        }
    }
    double *p[4];
    for (int i = 0; i < 4; i++) p[i] = (double *)out[i].buf;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        positions_double((const double *)x.buf, rows, cols, ref, p[0], p[1], p[2], p[3]);
    else
        positions_float((const float *)x.buf, rows, cols, ref, p[0], p[1], p[2], p[3]);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < held; i++) PyBuffer_Release(&out[i]);
    PyBuffer_Release(&x);
    return result;
}

/*
 * grams(x, k, threshold, start, pos, key, single, hash) -> selected
 *
 *   x           contiguous buffer of 2-, 4- or 8-byte values (float16/bfloat16
 *               bit patterns, float32, float64), read as bits; a = the bits
 *               without the sign bit, s = the sign bit
 *   k           values per gram (1..8): gram i is x[i], ..., x[i + k - 1], for
 *               every i in [0, n - k]
 *   threshold   gram i is selected when h(a_i) < threshold (0..2^32), h the
 *               murmur3 finalizer of a_i folded to 32 bits plus 0x9e3779b9
 *               (so that 0 is not the value every threshold selects): a
 *               choice made by the first value alone, so equal grams are
 *               selected together
 *   start       the stream offset of x[0]
 *   pos         int64[capacity]: 2 * (start + i) + s_i of each selected gram
 *   key         uint64[capacity]: a 64-bit hash of (a_i+t, s_i+t xor s_i) for
 *               t < k, the same for a gram and its negation
 *   single      uint64[capacity]: a_i
 *   hash        uint32[capacity]: h(a_i)
 *
 * Returns the number of selected grams; entries beyond the capacity (the
 * smallest of the four lengths) are counted but not written.
 */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The selection flags of a block of values first (a loop that vectorizes:
 * hash and compare), then the rare selected grams, found eight flags at a
 * time. */
#define GRAM_BLOCK 512
#define GRAMS(U, BITS)                                                                  \
    IC_CLONES("avx512f", "avx2", "default")                                             \
    static void flags_##BITS(const U *IC_RESTRICT x, Py_ssize_t m, uint32_t threshold,   \
                             int all, uint32_t *IC_RESTRICT hashes,                     \
                             uint8_t *IC_RESTRICT flags) {                              \
        const U mask = (U)~(U)((U)1 << (BITS - 1));                                     \
        for (Py_ssize_t j = 0; j < m; j++) {                                            \
            uint64_t a = (uint64_t)(x[j] & mask);                                       \
            uint32_t h = (uint32_t)(a ^ (a >> 32)) + 0x9e3779b9u;                       \
            h ^= h >> 16;                                                               \
            h *= 0x85ebca6bu;                                                           \
            h ^= h >> 13;                                                               \
            h *= 0xc2b2ae35u;                                                           \
            h ^= h >> 16;                                                               \
            hashes[j] = h;                                                              \
            flags[j] = (uint8_t)(all | (h < threshold));                                \
        }                                                                               \
    }                                                                                   \
    static Py_ssize_t grams_##BITS(const U *x, Py_ssize_t n, int k, uint64_t threshold,  \
                                   int64_t start, int64_t *pos, uint64_t *key,          \
                                   uint64_t *single, uint32_t *hash, Py_ssize_t cap) {  \
        const U sign = (U)((U)1 << (BITS - 1));                                         \
        Py_ssize_t found = 0, last = n - k + 1;                                         \
        uint32_t hashes[GRAM_BLOCK];                                                    \
        uint8_t flags[GRAM_BLOCK + 8];                                                  \
        int all = threshold > 0xffffffffull;                                            \
        uint32_t t32 = all ? 0xffffffffu : (uint32_t)threshold;                         \
        for (Py_ssize_t b = 0; b < last; b += GRAM_BLOCK) {                             \
            Py_ssize_t m = last - b < GRAM_BLOCK ? last - b : GRAM_BLOCK;               \
            flags_##BITS(x + b, m, t32, all, hashes, flags);                            \
            memset(flags + m, 0, 8);                                                    \
            for (Py_ssize_t w = 0; w < m; w += 8) {                                     \
                uint64_t word;                                                          \
                memcpy(&word, flags + w, 8);                                            \
                if (!word) continue;                                                    \
                for (Py_ssize_t j = w; j < w + 8 && j < m; j++) {                       \
                    if (!flags[j]) continue;                                            \
                    Py_ssize_t i = b + j;                                               \
                    if (found < cap) {                                                  \
                        int s0 = (x[i] & sign) != 0;                                    \
                        uint64_t acc = 0x9e3779b97f4a7c15ull * (uint64_t)k;             \
                        for (int t = 0; t < k; t++) {                                   \
                            U v = x[i + t];                                             \
                            uint64_t bits = (uint64_t)(v & (U)~sign);                   \
                            int s = ((v & sign) != 0) ^ s0;                             \
                            acc = mix64(acc ^ ((bits << 1) | (uint64_t)s));             \
                        }                                                               \
                        pos[found] = 2 * (start + i) + s0;                              \
                        key[found] = acc;                                               \
                        single[found] = (uint64_t)(x[i] & (U)~sign);                    \
                        hash[found] = hashes[j];                                        \
                    }                                                                   \
                    found++;                                                            \
                }                                                                       \
            }                                                                           \
        }                                                                               \
        return found;                                                                   \
    }

GRAMS(uint16_t, 16)
GRAMS(uint32_t, 32)
GRAMS(uint64_t, 64)

static PyObject *grams(PyObject *self, PyObject *args) {
    PyObject *xo, *o[4];
    int k;
    unsigned long long threshold;
    long long start;
    if (!PyArg_ParseTuple(args, "OiKLOOOO", &xo, &k, &threshold, &start, &o[0], &o[1], &o[2], &o[3]))
        return NULL;
    if (k < 1 || k > 8 || threshold > (1ull << 32)) {
        PyErr_SetString(PyExc_ValueError, "grams: k must be 1..8 and threshold at most 2^32");
        return NULL;
    }
    Py_buffer x, out[4];
    int held = 0;
    PyObject *result = NULL;
    if (PyObject_GetBuffer(xo, &x, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (x.itemsize != 2 && x.itemsize != 4 && x.itemsize != 8) {
        PyErr_SetString(PyExc_TypeError, "grams: x must hold 2-, 4- or 8-byte values");
        goto done;
    }
    const char *names[4] = {"pos", "key", "single", "hash"};
    const char *formats[4] = {"q", "Q", "Q", "I"};
    Py_ssize_t cap = PY_SSIZE_T_MAX;
    for (; held < 4; held++) {
        if (get_buffer(o[held], &out[held], 1, names[held]) < 0) goto done;
        const char *f = out[held].format ? out[held].format : "B";
        if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
        int sizes[4] = {8, 8, 8, 4};
        int ok = out[held].itemsize == sizes[held] && (strcmp(f, formats[held]) == 0 ||
                 (held == 0 && strcmp(f, "l") == 0) || (held == 1 && strcmp(f, "L") == 0) ||
                 (held == 2 && strcmp(f, "L") == 0));
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "grams: %s must be a contiguous %s array", names[held],
                         held == 0 ? "int64" : held == 3 ? "uint32" : "uint64");
            held++;
            goto done;
        }
        Py_ssize_t items = out[held].len / out[held].itemsize;
        if (items < cap) cap = items;
    }
    Py_ssize_t n = x.len / x.itemsize, found;
    int64_t *pos = (int64_t *)out[0].buf;
    uint64_t *key = (uint64_t *)out[1].buf, *single = (uint64_t *)out[2].buf;
    uint32_t *hash = (uint32_t *)out[3].buf;
    Py_BEGIN_ALLOW_THREADS
    if (x.itemsize == 2)
        found = grams_16((const uint16_t *)x.buf, n, k, threshold, start, pos, key, single, hash, cap);
    else if (x.itemsize == 4)
        found = grams_32((const uint32_t *)x.buf, n, k, threshold, start, pos, key, single, hash, cap);
    else
        found = grams_64((const uint64_t *)x.buf, n, k, threshold, start, pos, key, single, hash, cap);
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(found);
done:
    for (int i = 0; i < held; i++) PyBuffer_Release(&out[i]);
    PyBuffer_Release(&x);
    return result;
}

/*
 * sort_uint64(x): sorts x, a contiguous writable uint64 buffer, in place.
 *
 * The copies check groups its selected grams by sorting 64-bit keys (about
 * 10^5 of them once a row, initcheck/structure.py).  An LSD radix sort of
 * 11-bit digits: one pass counts all six digits, then one stable scatter per
 * digit, a digit every value shares skipped.  A sort has one result, so this
 * is np.sort's, bit for bit, a few times faster than NumPy's comparison sort.
 */
#define RADIX_BITS 11
#define RADIX_BUCKETS (1 << RADIX_BITS)
#define RADIX_DIGITS ((64 + RADIX_BITS - 1) / RADIX_BITS)

static void radix_sort_u64(uint64_t *a, uint64_t *scratch, Py_ssize_t n, Py_ssize_t (*count)[RADIX_BUCKETS]) {
    memset(count, 0, sizeof(Py_ssize_t) * RADIX_DIGITS * RADIX_BUCKETS);
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t v = a[i];
        for (int d = 0; d < RADIX_DIGITS; d++) count[d][(v >> (RADIX_BITS * d)) & (RADIX_BUCKETS - 1)]++;
    }
    uint64_t *src = a, *dst = scratch;
    for (int d = 0; d < RADIX_DIGITS; d++) {
        Py_ssize_t *c = count[d], sum = 0;
        int shared = 0;
        for (int b = 0; b < RADIX_BUCKETS && !shared; b++) shared = c[b] == n;
        if (shared) continue;
        for (int b = 0; b < RADIX_BUCKETS; b++) {
            Py_ssize_t k = c[b];
            c[b] = sum;
            sum += k;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t v = src[i];
            dst[c[(v >> (RADIX_BITS * d)) & (RADIX_BUCKETS - 1)]++] = v;
        }
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof *a);
}

static PyObject *sort_uint64(PyObject *self, PyObject *args) {
    PyObject *xo;
    if (!PyArg_ParseTuple(args, "O", &xo)) return NULL;
    Py_buffer x;
    if (get_buffer(xo, &x, 1, "x") < 0) return NULL;
    const char *f = x.format ? x.format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
    if (x.itemsize != 8 || (strcmp(f, "Q") != 0 && strcmp(f, "L") != 0)) {
        PyBuffer_Release(&x);
        PyErr_SetString(PyExc_TypeError, "sort_uint64: x must be a contiguous writable uint64 array");
        return NULL;
    }
    Py_ssize_t n = x.len / 8;
    if (n > 1) {
        uint64_t *scratch = PyMem_RawMalloc((size_t)n * sizeof(uint64_t));
        Py_ssize_t (*count)[RADIX_BUCKETS] = PyMem_RawMalloc(sizeof(Py_ssize_t) * RADIX_DIGITS * RADIX_BUCKETS);
        if (!scratch || !count) {
            PyMem_RawFree(scratch);
            PyMem_RawFree(count);
            PyBuffer_Release(&x);
            return PyErr_NoMemory();
        }
        Py_BEGIN_ALLOW_THREADS
        radix_sort_u64((uint64_t *)x.buf, scratch, n, count);
        Py_END_ALLOW_THREADS
        PyMem_RawFree(scratch);
        PyMem_RawFree(count);
    }
    PyBuffer_Release(&x);
    Py_RETURN_NONE;
}

/* cell_level([level]) -> the level in use before the call (0 baseline, 1 AVX2,
 * 2 AVX-512); with a level, use it from now on, capped at what the CPU has
 * (tests run every version on one machine). */
static PyObject *cell_level_(PyObject *self, PyObject *args) {
    int level = -1, before = cell_level;
    if (!PyArg_ParseTuple(args, "|i", &level)) return NULL;
    if (level >= 0) {
        pick_cell_level();
        cell_level = level < cell_level ? level : cell_level;
    }
    return PyLong_FromLong(before);
}

static PyMethodDef methods[] = {
    {"fold", fold, METH_VARARGS, "fold(x, ref, lo, segment_scale, cum, slope, sums, extremes, counts, hist): see the module source."},
    {"pairs", pairs, METH_VARARGS,
     "pairs(x, previous, row_length, ref, out, draw_length=0): lag-1 products, see the module source."},
    {"bit_patterns", bit_patterns, METH_VARARGS, "bit_patterns(x, counts): count 16-bit patterns."},
    {"positions", positions, METH_VARARGS,
     "positions(x, cols, ref, row_s1, row_s2, col_s1, col_s2): per-row and per-column sums, see the module source."},
    {"grams", grams, METH_VARARGS,
     "grams(x, k, threshold, start, pos, key, single, hash): selected k-grams, see the module source."},
    {"sort_uint64", sort_uint64, METH_VARARGS, "sort_uint64(x): sort a uint64 array in place (radix sort)."},
    {"cell_level", cell_level_, METH_VARARGS,
     "cell_level([level]): the cell kernel in use (0 baseline, 1 AVX2, 2 AVX-512); with a level, switch."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "One-pass streaming statistics of a draw (see initcheck/kernels.py).",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) {
    pick_cell_level();
    PyObject *m = PyModule_Create(&module);
    /* how the build went, for initcheck.kernels.PATH: "" when one portable version */
    if (m && PyModule_AddStringConstant(m, "clones", IC_CLONE_INFO) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
