/*
 * Fused per-batch passes over an n x k probability matrix (issue #22), called through ctypes
 * by losslens/fused.py, which falls back to numpy when this library was not built.
 *
 * Every function computes exactly what the numpy code it replaces computes, to the last bit:
 * copies, comparisons, truncating casts, sums taken one value at a time in row order (as
 * np.bincount and np.add.at take them), and row sums in the pairwise order np.add.reduce takes
 * along a row. No log or exp is done here (numpy's SIMD functions differ from libm's in the last
 * bit). The library is built with -ffp-contract=off so that a product and a sum are never fused
 * into one rounding (an FMA), which numpy's x86-64 loops never do either. Two figures follow the
 * order of numpy's einsum kernels for two lanes without FMA (its x86-64 baseline): losslens.fused
 * checks them against einsum on the machine itself and asks for them only where they agree. The
 * unit-weight column sums follow the order of OpenBLAS's dgemv (numpy's `np.ones(n) @ probs`),
 * asked for only with the order losslens.batch_figures learned from BLAS itself on the machine.
 *
 * Where the processor has AVX2 (asked at run time: the library itself is built for any x86-64),
 * float64 columns are scored four rows at a time, each lane doing one row's operations in the
 * scalar code's order, so the bits are the same (score_column_quads); elsewhere two at a time
 * in SSE2 (score_column_pairs), or row by row.
 *
 * It is a CPython extension only so that setuptools builds it beside the package; the module
 * it defines is empty, and the functions are found by ctypes (which releases the GIL).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* x86-64 has SSE2 everywhere: there some loops run two doubles at a time, each lane doing
 * exactly the scalar code's operations in its order (so the same bits); elsewhere the scalar code. */
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define LL_SSE2 1
#endif

/* The layout of the functions and structures below. losslens.fused loads a library only if it
 * reports the version it was written for: raise both together whenever either changes, or
 * what a function computes does (a stale build must not give other figures). */
#define LL_ABI_VERSION 9

#if defined(_WIN32)
#define LL_EXPORT __declspec(dllexport)
#else
#define LL_EXPORT __attribute__((visibility("default")))
#endif

LL_EXPORT int ll_abi_version(void)
{
    return LL_ABI_VERSION;
}

/* numpy's pairwise sum of n doubles (pairwise_sum in numpy's loops_utils.h): eight running
 * sums combined as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), the rest added one by
 * one, halves above 128 values; as numpy's add.reduce along a contiguous row takes it. */
static double pairwise_sum(const double *a, int64_t n)
{
    if (n < 8) {
        double res = 0.;
        for (int64_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        int64_t i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    int64_t half = n / 2;
    half -= half % 8;
    return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

/* What one scoring pass writes for each row i of an n x k probability matrix; a NULL pointer
 * is a figure not asked for. */
typedef struct {
    const int64_t *label;     /* true class; NULL: none (soft targets), and no true_prob, hits or Brier */
    const double *weight;     /* NULL: unit weights */
    int64_t n_bins;           /* one-vs-rest calibration bins per class */
    int64_t top;              /* top_hit counts the true class a hit among this many */
    double sum_tolerance;     /* unnormalized: |row sum - 1| not <= this */
    double clip_low;          /* clipped_prob: p(true) clipped to [clip_low, clip_high] as np.clip */
    double clip_high;
    double *sums;             /* probs.sum(axis=1) */
    int64_t *predicted;       /* probs.argmax(axis=1) */
    double *confidence;       /* probs[i, predicted[i]] */
    double *true_prob;        /* probs[i, label[i]] */
    double *bin_weight;       /* k x n_bins: weight, sum of w * q, weight of rows of class c */
    double *bin_prob_sum;
    double *bin_hit_weight;
    uint8_t *top_hit;         /* whether the true class is among the top most probable (scikit-learn's ties) */
    uint8_t *unnormalized;    /* whether the row does not sum to 1 within sum_tolerance */
    double *brier;            /* sum_j (probs[i, j] - [j = label[i]])^2, as einsum("ij,ij->i") sums it */
    double *square_sums;      /* k: sum over rows of q^2 (w^2 q^2), as einsum("ij,ij->j") ("i,ij,ij->j") */
    double *clipped_prob;     /* np.clip(true_prob, clip_low, clip_high) */
    uint8_t *clipped;         /* whether true_prob is outside [clip_low, clip_high] */
    const int8_t *sum_modes;  /* k: how BLAS adds each column (SUM_BLOCKS, SUM_RUNNING); NULL: no column sums */
    double *column_sums;      /* k, from 0: np.ones(n) @ probs as this machine's BLAS adds it (see add_column_sums) */
} Outputs;

/* Sum of a_j * b_j over a row as numpy's einsum kernel for "ij,ij->i" takes it with two lanes
 * and no FMA (sum_of_products_contig_contig_outstride0_two): blocks of eight values added to
 * two running sums from the last pair back, then the rest a pair at a time, then the two lanes
 * added, and the result added to 0. */
static double einsum_dot(const double *a, const double *b, int64_t k)
{
#ifdef LL_SSE2
    /* The two lanes are (a0, a1): even columns in lane 0, odd ones in lane 1, as below. */
    __m128d lanes = _mm_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m128d t = _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(a + i + 6), _mm_loadu_pd(b + i + 6)), lanes);
        t = _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(a + i + 4), _mm_loadu_pd(b + i + 4)), t);
        t = _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(a + i + 2), _mm_loadu_pd(b + i + 2)), t);
        lanes = _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(a + i), _mm_loadu_pd(b + i)), t);
    }
    for (; i + 2 <= k; i += 2)
        lanes = _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(a + i), _mm_loadu_pd(b + i)), lanes);
    double s[2];
    _mm_storeu_pd(s, lanes);
    if (i < k) /* an odd k's last column, to lane 0 alone */
        s[0] = a[i] * b[i] + s[0];
    return 0. + (s[0] + s[1]);
#else
    double a0 = 0., a1 = 0.;
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) {
        double t0 = a[j + 6] * b[j + 6] + a0, t1 = a[j + 7] * b[j + 7] + a1;
        t0 = a[j + 4] * b[j + 4] + t0;
        t1 = a[j + 5] * b[j + 5] + t1;
        t0 = a[j + 2] * b[j + 2] + t0;
        t1 = a[j + 3] * b[j + 3] + t1;
        a0 = a[j] * b[j] + t0;
        a1 = a[j + 1] * b[j + 1] + t1;
    }
    for (; j < k; j += 2) {
        a0 = a[j] * b[j] + a0;
        if (j + 1 < k) /* numpy's last lane loads 0, and 0 * 0 + a1 is a1 */
            a1 = a[j + 1] * b[j + 1] + a1;
    }
    return 0. + (a0 + a1);
#endif
}

/* Rows longer than this take their scratch row (Brier differences, squared deviations) from the heap. */
enum { ROW_STACK = 256 };

/* A scratch row of k doubles: the caller's stack buffer when it fits, else the heap (NULL: none). */
static double *scratch_row(double *stack, int64_t k)
{
    return k <= ROW_STACK ? stack : malloc((size_t)k * sizeof(double));
}

static void free_scratch(double *row, const double *stack)
{
    if (row != stack)
        free(row);
}

/* The bin of q, min(trunc(b * q), b - 1), as numpy's truncating cast and minimum give it (q in [0, 1]). */
static inline int64_t bin_of(double q, int64_t b)
{
    const int64_t j = (int64_t)(q * (double)b);
    return j < b - 1 ? j : b - 1;
}

static int in_unit_range(const double *row, int64_t k)
{
    int ok = 1;
    for (int64_t j = 0; j < k; j++)
        ok &= (row[j] >= 0.0) & (row[j] <= 1.0); /* a NaN is not */
    return ok;
}

/* Row i's one-vs-rest calibration bins (its k values and its true class's hit), added as the
 * numpy code adds them: row order, each cell from 0. The bins need values in [0, 1]. */
static inline void add_bins(const double *row, int64_t i, int64_t k, int64_t y, double t, const Outputs *o)
{
    if (!o->bin_weight)
        return;
    const int64_t b = o->n_bins;
    const double w = o->weight ? o->weight[i] : 1.0;
    for (int64_t c = 0; c < k; c++) {
        const int64_t cell = bin_of(row[c], b) + c * b;
        o->bin_weight[cell] += w;
        o->bin_prob_sum[cell] += row[c] * w; /* a unit weight: row[c] * 1.0 is row[c] */
    }
    if (y >= 0)
        o->bin_hit_weight[bin_of(t, b) + y * b] += w;
}

/* Row i's p(true class) t, and t clipped as the log loss clips it: np.clip's maximum then
 * minimum, each keeping a NaN (x > b ? x : b), and whether it was outside. */
static inline void put_true_prob(double t, int64_t i, const Outputs *o)
{
    if (o->true_prob)
        o->true_prob[i] = t;
    if (o->clipped_prob) {
        double c = (t != t || t > o->clip_low) ? t : o->clip_low;
        c = (c != c || c < o->clip_high) ? c : o->clip_high;
        o->clipped_prob[i] = c;
        o->clipped[i] = (t < o->clip_low) | (t > o->clip_high);
    }
}

/* Row i's squares into the k running sums, as einsum's contiguous loop over the classes adds. */
static inline void add_squares(const double *row, int64_t i, int64_t k, const Outputs *o)
{
    if (!o->square_sums)
        return;
    if (o->weight) {
        const double w2 = o->weight[i] * o->weight[i];
        for (int64_t j = 0; j < k; j++)
            o->square_sums[j] = w2 * row[j] * row[j] + o->square_sums[j];
    } else {
        for (int64_t j = 0; j < k; j++)
            o->square_sums[j] = row[j] * row[j] + o->square_sums[j];
    }
}

/* Rows start..stop of p, each figure added or written as the numpy code it stands for takes it.
 * The calibration bins need values in [0, 1] (checked by the callers). */
static void score_rows(const double *p, int64_t first, int64_t start, int64_t stop, int64_t k, const Outputs *o,
                       double *diff)
{
    for (int64_t i = start; i < stop; i++) {
        const double *row = p + (i - first) * k;
        if (o->sums || o->unnormalized) {
            const double s = 0. + pairwise_sum(row, k);
            if (o->sums)
                o->sums[i] = s;
            if (o->unnormalized) {
                const double gap = s - 1.0;
                o->unnormalized[i] = !((gap < 0 ? -gap : gap) <= o->sum_tolerance); /* a NaN is */
            }
        }
        if (o->predicted) {
            /* argmax branch-free (a maximum and a select per value); a row with a NaN is
             * taken again as numpy takes it: the first NaN wins. */
            double best = row[0];
            int64_t at = 0;
            int nan = best != best;
            for (int64_t j = 1; j < k; j++) {
                const double v = row[j];
                const int greater = v > best;
                best = greater ? v : best;
                at = greater ? j : at;
                nan |= v != v;
            }
            if (nan) {
                for (at = 0; row[at] == row[at]; at++)
                    ;
                best = row[at];
            }
            o->predicted[i] = at;
            o->confidence[i] = best;
        }
        const int64_t y = o->label ? o->label[i] : -1;
        const double t = y >= 0 ? row[y] : 0.0;
        if (y >= 0)
            put_true_prob(t, i, o);
        add_bins(row, i, k, y, t, o);
        if (y >= 0 && o->top_hit) {
            /* The true class's rank as top_k_hits ranks it: the values above p(true), and the
             * equal ones in a later column. */
            int64_t rank = 0;
            for (int64_t j = 0; j < k; j++)
                rank += (row[j] > t) | ((row[j] == t) & (j > y));
            o->top_hit[i] = rank < o->top;
        }
        if (y >= 0 && o->brier) {
            for (int64_t j = 0; j < k; j++)
                diff[j] = row[j];
            diff[y] -= 1.0;
            o->brier[i] = einsum_dot(diff, diff, k);
        }
        add_squares(row, i, k, o);
    }
}

static int labels_in_range(const int64_t *label, int64_t n, int64_t k)
{
    if (label)
        for (int64_t i = 0; i < n; i++)
            if (label[i] < 0 || label[i] >= k)
                return 0;
    return 1;
}

/* Rows a time: a block's rows stay in the first-level cache between the copy and the scoring. */
enum { BLOCK = 512 };

/* How numpy's `np.ones(n) @ probs` (OpenBLAS's dgemv, the unit-weight column sums) adds a column,
 * as losslens.batch_figures.unit_column_sums learns it from BLAS itself for the batch's shape
 * (the caller asks only then): OpenBLAS gives each of its threads a range of the columns, and
 * within a range adds groups of four columns in its four-row kernel, from y = 0: y + (((q0 + q1) + q2) + q3)
 * for each four rows, then y + (q0 + q1) for two rows left and y + q0 for one (SUM_BLOCKS); the
 * one to three columns left over in a range it adds row by row into a running sum from 0, and
 * then 0 + that sum (SUM_RUNNING). Unit weights multiply by 1.0, which is exact, so whether a
 * product is fused with its sum does not matter. */
enum { SUM_BLOCKS = 1, SUM_RUNNING = 2 };

/* Rows start..stop of a batch of n rows (start a multiple of four) into o->column_sums. */
static void add_column_sums(const double *rows, int64_t start, int64_t stop, int64_t n, int64_t k, const Outputs *o)
{
    const int64_t count = stop - start, full = count & ~(int64_t)3;
    double *sums = o->column_sums;
    for (int64_t c = 0; c < k; c++) {
        const double *v = rows + c;
        double s = sums[c];
        if (o->sum_modes[c] == SUM_BLOCKS) {
            int64_t i = 0;
            for (; i < full; i += 4)
                s = s + (((v[i * k] + v[(i + 1) * k]) + v[(i + 2) * k]) + v[(i + 3) * k]);
            if (count - full >= 2) { /* the batch's last rows: its two-row kernel, then the one-row one */
                s = s + (v[i * k] + v[(i + 1) * k]);
                i += 2;
            }
            if (i < count)
                s = s + v[i * k];
        } else {
            for (int64_t i = 0; i < count; i++)
                s = s + v[i * k];
            if (stop == n)
                s = 0. + s; /* y = 0 plus alpha (1.0) times the running sum */
        }
        sums[c] = s;
    }
}

/* What a scoring pass checks before its first row: 2 if a label is not a column index, 3 if
 * memory ran out for its scratch row (*diff, from scratch_row), else 0. */
static int begin_scoring(const Outputs *o, int64_t n, int64_t k, double *stack, double **diff)
{
    if (!labels_in_range(o->label, n, k))
        return 2;
    *diff = scratch_row(stack, k);
    return *diff ? 0 : 3;
}

/* einsum_dot's two lanes a0 and a1 over the k differences DIFF(j) of several rows at once, one
 * row to each lane of the vector type V (two rows in SSE2, four in AVX2): blocks of eight from
 * the last pair back, then a pair at a time, an odd k's last column to a0 alone. */
#define LL_EINSUM_LANES(V, ADD, MUL, DIFF)                                                        \
    do {                                                                                          \
        int64_t j = 0;                                                                            \
        for (; j + 8 <= k; j += 8) {                                                              \
            const V d0 = DIFF(j), d1 = DIFF(j + 1), d2 = DIFF(j + 2), d3 = DIFF(j + 3);           \
            const V d4 = DIFF(j + 4), d5 = DIFF(j + 5), d6 = DIFF(j + 6), d7 = DIFF(j + 7);       \
            V t0 = ADD(MUL(d6, d6), a0), t1 = ADD(MUL(d7, d7), a1);                               \
            t0 = ADD(MUL(d4, d4), t0);                                                            \
            t1 = ADD(MUL(d5, d5), t1);                                                            \
            t0 = ADD(MUL(d2, d2), t0);                                                            \
            t1 = ADD(MUL(d3, d3), t1);                                                            \
            a0 = ADD(MUL(d0, d0), t0);                                                            \
            a1 = ADD(MUL(d1, d1), t1);                                                            \
        }                                                                                         \
        for (; j < k; j += 2) {                                                                   \
            const V d0 = DIFF(j);                                                                 \
            a0 = ADD(MUL(d0, d0), a0);                                                            \
            if (j + 1 < k) {                                                                      \
                const V d1 = DIFF(j + 1);                                                         \
                a1 = ADD(MUL(d1, d1), a1);                                                        \
            }                                                                                     \
        }                                                                                         \
    } while (0)

#ifdef LL_SSE2

/* p_j where the mask is clear, p_j - 1 where it is set (j = y): score_rows's diff[j], bit for bit. */
static inline __m128d ll_diff(__m128d p, __m128d is_label, __m128d one)
{
    return _mm_or_pd(_mm_and_pd(is_label, _mm_sub_pd(p, one)), _mm_andnot_pd(is_label, p));
}

/* add_squares for rows start..stop, two columns to a lane pair and four pairs at a time: each
 * column's running sum takes its rows in order as there, but in a register across the rows. */
static void add_square_columns(const double *out, int64_t start, int64_t stop, int64_t k, const Outputs *o)
{
    double *sums = o->square_sums;
    int64_t j = 0;
    for (; j + 8 <= k; j += 8) {
        __m128d s0 = _mm_loadu_pd(sums + j), s1 = _mm_loadu_pd(sums + j + 2);
        __m128d s2 = _mm_loadu_pd(sums + j + 4), s3 = _mm_loadu_pd(sums + j + 6);
        for (int64_t i = start; i < stop; i++) {
            const double *row = out + (i - start) * k + j;
            __m128d v0 = _mm_loadu_pd(row), v1 = _mm_loadu_pd(row + 2), v2 = _mm_loadu_pd(row + 4), v3 = _mm_loadu_pd(row + 6);
            if (o->weight) { /* (w^2 * q) * q, as w2 * row[j] * row[j] */
                const __m128d w2 = _mm_set1_pd(o->weight[i] * o->weight[i]);
                v0 = _mm_mul_pd(w2, v0), v1 = _mm_mul_pd(w2, v1), v2 = _mm_mul_pd(w2, v2), v3 = _mm_mul_pd(w2, v3);
            }
            s0 = _mm_add_pd(_mm_mul_pd(v0, _mm_loadu_pd(row)), s0);
            s1 = _mm_add_pd(_mm_mul_pd(v1, _mm_loadu_pd(row + 2)), s1);
            s2 = _mm_add_pd(_mm_mul_pd(v2, _mm_loadu_pd(row + 4)), s2);
            s3 = _mm_add_pd(_mm_mul_pd(v3, _mm_loadu_pd(row + 6)), s3);
        }
        _mm_storeu_pd(sums + j, s0), _mm_storeu_pd(sums + j + 2, s1);
        _mm_storeu_pd(sums + j + 4, s2), _mm_storeu_pd(sums + j + 6, s3);
    }
    for (int64_t i = start; i < stop; i++) {
        const double *row = out + (i - start) * k;
        const double w2 = o->weight ? o->weight[i] * o->weight[i] : 1.0;
        for (int64_t c = j; c < k; c++)
            sums[c] = o->weight ? w2 * row[c] * row[c] + sums[c] : row[c] * row[c] + sums[c];
    }
}

/* score_rows's figures for rows start..stop of k float64 columns (k <= 128) whose values are all
 * in [0, 1] (ll_fill_score checked them: no NaN), two rows at a time in SSE2's two lanes: each
 * lane does exactly the operations score_rows does for its row, in the same order (the row sums
 * in pairwise_sum's, the Brier sums in einsum_dot's), so every bit is the same, but a row's chain
 * of k dependent steps now serves two rows, and the block's columns are read where they lie.
 * The sums into shared cells keep their row order: the bins row by row, the square sums in
 * add_square_columns, both from the row-major copy out. An odd last row is score_rows's.
 * (einsum_dot per row of a diff copy, as score_rows takes the Brier sums, was 0.7 ms slower a
 * 190,000-row batch than the lanes across the two rows below.) */
static void score_column_pairs(const double *const *column, const double *out, int64_t start, int64_t stop,
                               int64_t k, const Outputs *o, double *diff)
{
    const int64_t paired = start + ((stop - start) & ~(int64_t)1);
    const __m128d zero = _mm_setzero_pd(), one = _mm_set1_pd(1.0);
    for (int64_t i = start; i < paired; i += 2) {
        if (o->sums || o->unnormalized) {
            __m128d total = zero; /* k < 8: pairwise_sum's 0. plus each value in turn */
            int64_t j = 0;
            if (k >= 8) {
                __m128d q[8];
                for (int u = 0; u < 8; u++)
                    q[u] = _mm_loadu_pd(column[u] + i);
                for (j = 8; j < k - (k % 8); j += 8)
                    for (int u = 0; u < 8; u++)
                        q[u] = _mm_add_pd(q[u], _mm_loadu_pd(column[j + u] + i));
                total = _mm_add_pd(_mm_add_pd(_mm_add_pd(q[0], q[1]), _mm_add_pd(q[2], q[3])),
                                   _mm_add_pd(_mm_add_pd(q[4], q[5]), _mm_add_pd(q[6], q[7])));
            }
            for (; j < k; j++)
                total = _mm_add_pd(total, _mm_loadu_pd(column[j] + i));
            double sum[2];
            _mm_storeu_pd(sum, _mm_add_pd(zero, total));
            for (int h = 0; h < 2; h++) {
                if (o->sums)
                    o->sums[i + h] = sum[h];
                if (o->unnormalized) {
                    const double gap = sum[h] - 1.0;
                    o->unnormalized[i + h] = !((gap < 0 ? -gap : gap) <= o->sum_tolerance);
                }
            }
        }
        if (o->predicted) {
            /* score_rows's argmax without its NaN rule (the values are in [0, 1]): maxpd is
             * v > best ? v : best, its select. */
            __m128d best = _mm_loadu_pd(column[0] + i);
            __m128i at = _mm_setzero_si128();
            for (int64_t j = 1; j < k; j++) {
                const __m128d v = _mm_loadu_pd(column[j] + i);
                const __m128i greater = _mm_castpd_si128(_mm_cmpgt_pd(v, best));
                best = _mm_max_pd(v, best);
                at = _mm_or_si128(_mm_and_si128(greater, _mm_set1_epi64x(j)), _mm_andnot_si128(greater, at));
            }
            _mm_storeu_pd(o->confidence + i, best);
            _mm_storeu_si128((__m128i *)(o->predicted + i), at);
        }
        if (!o->label)
            continue;
        const int64_t y[2] = {o->label[i], o->label[i + 1]};
        const double t[2] = {out[(i - start) * k + y[0]], out[(i + 1 - start) * k + y[1]]};
        for (int h = 0; h < 2; h++)
            put_true_prob(t[h], i + h, o);
        if (o->top_hit) {
            /* The rank: values above p(true), plus the equal ones in a later column (counted row
             * by row, only where a column besides its own equals p(true)). */
            const __m128d tv = _mm_loadu_pd(t);
            __m128i above = _mm_setzero_si128(), equal = _mm_setzero_si128();
            for (int64_t j = 0; j < k; j++) {
                const __m128d v = _mm_loadu_pd(column[j] + i);
                above = _mm_sub_epi64(above, _mm_castpd_si128(_mm_cmpgt_pd(v, tv))); /* a true lane is -1 */
                equal = _mm_sub_epi64(equal, _mm_castpd_si128(_mm_cmpeq_pd(v, tv)));
            }
            int64_t ranks[2], equals[2];
            _mm_storeu_si128((__m128i *)ranks, above);
            _mm_storeu_si128((__m128i *)equals, equal);
            for (int h = 0; h < 2; h++) {
                if (equals[h] > 1) {
                    const double *row = out + (i + h - start) * k;
                    for (int64_t j = y[h] + 1; j < k; j++)
                        ranks[h] += row[j] == t[h];
                }
                o->top_hit[i + h] = ranks[h] < o->top;
            }
        }
        if (o->brier) {
            /* einsum_dot's lanes a0 and a1 over d_j = p_j - [j = y], for both rows at once. */
            const __m128d yv = _mm_set_pd((double)y[1], (double)y[0]);
            __m128d a0 = zero, a1 = zero;
#define LL_DIFF(jj) ll_diff(_mm_loadu_pd(column[jj] + i), _mm_cmpeq_pd(_mm_set1_pd((double)(jj)), yv), one)
            LL_EINSUM_LANES(__m128d, _mm_add_pd, _mm_mul_pd, LL_DIFF);
#undef LL_DIFF
            _mm_storeu_pd(o->brier + i, _mm_add_pd(zero, _mm_add_pd(a0, a1)));
        }
    }
    for (int64_t i = start; i < paired; i++) {
        const double *row = out + (i - start) * k;
        const int64_t y = o->label ? o->label[i] : -1;
        add_bins(row, i, k, y, y >= 0 ? row[y] : 0.0, o);
    }
    if (o->square_sums)
        add_square_columns(out, start, paired, k, o);
    if (paired < stop)
        score_rows(out, start, paired, stop, k, o, diff);
}
#endif

/* -- AVX2: four rows at a time, where the processor has it (chosen at run time) -- */
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define LL_AVX2 1
#define LL_TARGET_AVX2 __attribute__((target("avx2")))

/* -1: not asked yet; then whether ll_fill_score takes four rows at a time (ll_set_avx2 can turn it off). */
static int avx2_on = -1;

static int use_avx2(void)
{
    if (avx2_on < 0)
        avx2_on = __builtin_cpu_supports("avx2") ? 1 : 0;
    return avx2_on;
}

/* Turn the four-row pass on (1, where the processor has AVX2) or off (0); -1 only asks.
 * Returns whether it is on. The tests score with both; nothing else calls it. */
LL_EXPORT int ll_set_avx2(int on)
{
    const int have = __builtin_cpu_supports("avx2") ? 1 : 0;
    if (on >= 0)
        avx2_on = on && have;
    return use_avx2();
}

/* Rows i..i+3 of column j. */
#define LL_COL4(j) _mm256_loadu_pd(column[(j)] + i)

/* Whether every value of rows start..stop (a multiple of four rows) of k float64 columns is in [0, 1]
 * (a NaN is not). */
static LL_TARGET_AVX2 int quads_in_unit_range(const double *const *column, int64_t start, int64_t stop, int64_t k)
{
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    __m256d ok = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    for (int64_t j = 0; j < k; j++) {
        const double *c = column[j];
        for (int64_t i = start; i < stop; i += 4) {
            const __m256d v = _mm256_loadu_pd(c + i);
            ok = _mm256_and_pd(ok, _mm256_and_pd(_mm256_cmp_pd(v, zero, _CMP_GE_OQ), _mm256_cmp_pd(v, one, _CMP_LE_OQ)));
        }
    }
    return _mm256_movemask_pd(ok) == 0xF;
}

/* score_column_pairs's figures for rows start..stop (a multiple of four rows) of k float64 columns
 * (k <= 128) whose values are all in [0, 1], four rows at a time in AVX2's four lanes: each lane
 * does exactly the operations score_rows does for its row, in its order (row sums in
 * pairwise_sum's, Brier sums in einsum_dot's, products never fused with sums), so every bit is the
 * same. The sums into shared cells keep their order: each calibration cell belongs to one class
 * and takes its rows in order; each column's square sum and column sum (the mode's order) take
 * the rows in order too, four columns to a vector from a 4 x 4 transpose of the rows. With out
 * (the block's rows of the matrix, row-major) the rows are written there too. */
static LL_TARGET_AVX2 void score_column_quads(const double *const *column, double *out, int64_t start, int64_t stop,
                                              int64_t k, const Outputs *o)
{
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    const __m256d sign = _mm256_set1_pd(-0.0);
    const int64_t b = o->n_bins;
    for (int64_t i = start; i < stop; i += 4) {
        if (o->sums || o->unnormalized) {
            __m256d total = zero; /* k < 8: pairwise_sum's 0. plus each value in turn */
            int64_t j = 0;
            if (k >= 8) {
                __m256d q0 = LL_COL4(0), q1 = LL_COL4(1), q2 = LL_COL4(2), q3 = LL_COL4(3);
                __m256d q4 = LL_COL4(4), q5 = LL_COL4(5), q6 = LL_COL4(6), q7 = LL_COL4(7);
                for (j = 8; j < k - (k % 8); j += 8) {
                    q0 = _mm256_add_pd(q0, LL_COL4(j)), q1 = _mm256_add_pd(q1, LL_COL4(j + 1));
                    q2 = _mm256_add_pd(q2, LL_COL4(j + 2)), q3 = _mm256_add_pd(q3, LL_COL4(j + 3));
                    q4 = _mm256_add_pd(q4, LL_COL4(j + 4)), q5 = _mm256_add_pd(q5, LL_COL4(j + 5));
                    q6 = _mm256_add_pd(q6, LL_COL4(j + 6)), q7 = _mm256_add_pd(q7, LL_COL4(j + 7));
                }
                total = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(q0, q1), _mm256_add_pd(q2, q3)),
                                      _mm256_add_pd(_mm256_add_pd(q4, q5), _mm256_add_pd(q6, q7)));
            }
            for (; j < k; j++)
                total = _mm256_add_pd(total, LL_COL4(j));
            total = _mm256_add_pd(zero, total);
            if (o->sums)
                _mm256_storeu_pd(o->sums + i, total);
            if (o->unnormalized) {
                /* !(|s - 1| <= tolerance): a NaN sum is unnormalized */
                const __m256d gap = _mm256_andnot_pd(sign, _mm256_sub_pd(total, one));
                const int within = _mm256_movemask_pd(_mm256_cmp_pd(gap, _mm256_set1_pd(o->sum_tolerance), _CMP_LE_OQ));
                for (int h = 0; h < 4; h++)
                    o->unnormalized[i + h] = !((within >> h) & 1);
            }
        }
        if (o->predicted) {
            /* score_rows's argmax (no NaN here): maxpd is v > best ? v : best, its select */
            __m256d best = LL_COL4(0);
            __m256i at = _mm256_setzero_si256();
            for (int64_t j = 1; j < k; j++) {
                const __m256d v = LL_COL4(j);
                const __m256d greater = _mm256_cmp_pd(v, best, _CMP_GT_OQ);
                best = _mm256_max_pd(v, best);
                at = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(at),
                                                          _mm256_castsi256_pd(_mm256_set1_epi64x(j)), greater));
            }
            _mm256_storeu_pd(o->confidence + i, best);
            _mm256_storeu_si256((__m256i *)(o->predicted + i), at);
        }
        int64_t y[4] = {-1, -1, -1, -1};
        double t[4] = {0., 0., 0., 0.}, w[4] = {1., 1., 1., 1.};
        if (o->weight)
            for (int h = 0; h < 4; h++)
                w[h] = o->weight[i + h];
        if (o->label) {
            for (int h = 0; h < 4; h++) {
                y[h] = o->label[i + h];
                t[h] = column[y[h]][i + h];
                put_true_prob(t[h], i + h, o);
            }
            if (o->top_hit) {
                /* The rank: values above p(true), plus the equal ones in a later column (counted
                 * row by row, only where a column besides its own equals p(true)). */
                const __m256d tv = _mm256_loadu_pd(t);
                __m256i above = _mm256_setzero_si256(), equal = _mm256_setzero_si256();
                for (int64_t j = 0; j < k; j++) {
                    const __m256d v = LL_COL4(j);
                    above = _mm256_sub_epi64(above, _mm256_castpd_si256(_mm256_cmp_pd(v, tv, _CMP_GT_OQ)));
                    equal = _mm256_sub_epi64(equal, _mm256_castpd_si256(_mm256_cmp_pd(v, tv, _CMP_EQ_OQ)));
                }
                int64_t ranks[4], equals[4];
                _mm256_storeu_si256((__m256i *)ranks, above);
                _mm256_storeu_si256((__m256i *)equals, equal);
                for (int h = 0; h < 4; h++) {
                    if (equals[h] > 1)
                        for (int64_t j = y[h] + 1; j < k; j++)
                            ranks[h] += column[j][i + h] == t[h];
                    o->top_hit[i + h] = ranks[h] < o->top;
                }
            }
            if (o->brier) {
                /* einsum_dot's lanes a0 and a1 over d_j = p_j - [j = y], for four rows at once */
                const __m256d yv = _mm256_set_pd((double)y[3], (double)y[2], (double)y[1], (double)y[0]);
                __m256d a0 = zero, a1 = zero;
#define LL_DIFF4(jj) _mm256_blendv_pd(LL_COL4(jj), _mm256_sub_pd(LL_COL4(jj), one), \
                                      _mm256_cmp_pd(_mm256_set1_pd((double)(jj)), yv, _CMP_EQ_OQ))
                LL_EINSUM_LANES(__m256d, _mm256_add_pd, _mm256_mul_pd, LL_DIFF4);
#undef LL_DIFF4
                _mm256_storeu_pd(o->brier + i, _mm256_add_pd(zero, _mm256_add_pd(a0, a1)));
            }
        }
        if (o->bin_weight) {
            /* The cells of four rows at a time, min(trunc(b * q), b - 1) as bin_of takes them; then
             * added row by row as add_bins adds (each cell takes its rows in order, and the
             * classes between two rows' updates of one cell keep them from waiting on each other). */
            const __m256d bv = _mm256_set1_pd((double)b);
            int32_t cells[4 * 128];
            double q[4 * 128];
            for (int64_t c = 0; c < k; c++) {
                const __m256d v = LL_COL4(c);
                _mm_storeu_si128((__m128i *)(cells + 4 * c), _mm256_cvttpd_epi32(_mm256_mul_pd(v, bv)));
                _mm256_storeu_pd(q + 4 * c, v);
            }
            for (int h = 0; h < 4; h++) {
                for (int64_t c = 0; c < k; c++) {
                    const int64_t cell = (cells[4 * c + h] < b - 1 ? cells[4 * c + h] : b - 1) + c * b;
                    o->bin_weight[cell] += w[h];
                    o->bin_prob_sum[cell] += q[4 * c + h] * w[h]; /* a unit weight: q * 1.0 is q */
                }
                if (o->label)
                    o->bin_hit_weight[bin_of(t[h], b) + y[h] * b] += w[h];
            }
        }
        if (o->square_sums || o->column_sums || out) {
            /* Four columns at a time: the 4 x 4 block of rows i..i+3, transposed into rows. */
            for (int64_t g = 0; g < k; g += 4) {
                const int64_t width = k - g < 4 ? k - g : 4;
                const __m256d c0 = LL_COL4(g);
                const __m256d c1 = width > 1 ? LL_COL4(g + 1) : zero;
                const __m256d c2 = width > 2 ? LL_COL4(g + 2) : zero;
                const __m256d c3 = width > 3 ? LL_COL4(g + 3) : zero;
                const __m256d t0 = _mm256_unpacklo_pd(c0, c1), t1 = _mm256_unpackhi_pd(c0, c1);
                const __m256d t2 = _mm256_unpacklo_pd(c2, c3), t3 = _mm256_unpackhi_pd(c2, c3);
                __m256d r[4];
                r[0] = _mm256_permute2f128_pd(t0, t2, 0x20), r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
                r[2] = _mm256_permute2f128_pd(t0, t2, 0x31), r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
                const __m256i lanes = _mm256_cmpgt_epi64(_mm256_set1_epi64x(width), _mm256_set_epi64x(3, 2, 1, 0));
                if (out)
                    for (int h = 0; h < 4; h++)
                        _mm256_maskstore_pd(out + (i - start + h) * k + g, lanes, r[h]);
                if (o->square_sums) {
                    /* add_squares's running sums, row by row: q * q (or (w^2 * q) * q) + s */
                    __m256d s = _mm256_maskload_pd(o->square_sums + g, lanes);
                    for (int h = 0; h < 4; h++) {
                        const __m256d v = o->weight ? _mm256_mul_pd(_mm256_set1_pd(w[h] * w[h]), r[h]) : r[h];
                        s = _mm256_add_pd(_mm256_mul_pd(v, r[h]), s);
                    }
                    _mm256_maskstore_pd(o->square_sums + g, lanes, s);
                }
                if (o->column_sums) {
                    /* add_column_sums's four-row step: s + (((q0 + q1) + q2) + q3) for SUM_BLOCKS,
                     * (((s + q0) + q1) + q2) + q3 for SUM_RUNNING */
                    const __m256d s = _mm256_maskload_pd(o->column_sums + g, lanes);
                    const __m256d blocks = _mm256_add_pd(s, _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(r[0], r[1]), r[2]), r[3]));
                    const __m256d running = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(_mm256_add_pd(s, r[0]), r[1]), r[2]), r[3]);
                    const int8_t *mode = o->sum_modes + g;
                    const __m256d is_running = _mm256_castsi256_pd(_mm256_cmpeq_epi64(
                        _mm256_set_epi64x(width > 3 ? mode[3] : 0, width > 2 ? mode[2] : 0, width > 1 ? mode[1] : 0, mode[0]),
                        _mm256_set1_epi64x(SUM_RUNNING)));
                    _mm256_maskstore_pd(o->column_sums + g, lanes, _mm256_blendv_pd(blocks, running, is_running));
                }
            }
        }
    }
}
#undef LL_COL4
#endif

/* Copy k columns (float64: kind 0, float32: kind 1) into the n x k row-major float64 matrix out,
 * check that every value is in [0, 1], and score each block of rows while it is in cache. With
 * out NULL no matrix is written: the rows a block needs in rows are copied into a scratch block
 * (float64 columns with AVX2 are read where they lie; only the batch's last rows are copied).
 * Returns 0; 1 if a value is not in [0, 1]; 2 or 3 as begin_scoring (in each case the outputs
 * are incomplete, and the caller takes numpy's path, which names the bad value). */
LL_EXPORT int ll_fill_score(const void *const *columns, const int32_t *kinds, int64_t n, int64_t k,
                            double *out, const Outputs *o)
{
    double stack[ROW_STACK], *diff;
    int failed = begin_scoring(o, n, k, stack, &diff);
    if (failed)
        return failed;
    int all_double = 1;
    for (int64_t j = 0; j < k; j++)
        all_double &= kinds[j] == 0;
    /* Without a matrix to fill, each block's rows are copied into one scratch block. */
    double *block = out ? NULL : malloc((size_t)BLOCK * (size_t)k * sizeof(double));
    if (!out && !block) {
        free_scratch(diff, stack);
        return 3;
    }
    for (int64_t start = 0; start < n; start += BLOCK) {
        const int64_t stop = start + BLOCK < n ? start + BLOCK : n;
        double *rows = out ? out + start * k : block; /* this block's rows, row-major */
        int ok = 1;
#ifdef LL_AVX2
        /* (The four-row cells are 32-bit: more bins than that take the two-row path.) */
        if (all_double && k <= 128 && o->n_bins < INT32_MAX && use_avx2()) {
            const double *const *column = (const double *const *)columns;
            const int64_t quads = start + ((stop - start) & ~(int64_t)3);
            if (!quads_in_unit_range(column, start, quads, k)) {
                failed = 1;
                break;
            }
            score_column_quads(column, out ? rows : NULL, start, quads, k, o);
            /* The batch's last one to three rows: copied, then score_rows's (and the column sums' end). */
            double *tail = rows + (quads - start) * k;
            for (int64_t i = quads; i < stop; i++)
                for (int64_t j = 0; j < k; j++) {
                    const double v = column[j][i];
                    tail[(i - quads) * k + j] = v;
                    ok &= (v >= 0.0) & (v <= 1.0);
                }
            if (!ok) {
                failed = 1;
                break;
            }
            score_rows(tail, quads, quads, stop, k, o, diff);
            if (o->column_sums)
                add_column_sums(tail, quads, stop, n, k, o);
            continue;
        }
#endif
        if (all_double) {
            /* Row by row: sequential writes, the k columns read as k streams. */
            const double *const *column = (const double *const *)columns;
            for (int64_t i = start; i < stop; i++) {
                double *row = rows + (i - start) * k;
                for (int64_t j = 0; j < k; j++) {
                    const double v = column[j][i];
                    row[j] = v;
                    ok &= (v >= 0.0) & (v <= 1.0);
                }
            }
        } else {
            for (int64_t j = 0; j < k; j++) {
                double *cell = rows + j;
                if (kinds[j] == 0) {
                    const double *column = (const double *)columns[j];
                    for (int64_t i = start; i < stop; i++, cell += k) {
                        const double v = column[i];
                        *cell = v;
                        ok &= (v >= 0.0) & (v <= 1.0);
                    }
                } else {
                    const float *column = (const float *)columns[j];
                    for (int64_t i = start; i < stop; i++, cell += k) {
                        const double v = (double)column[i];
                        *cell = v;
                        ok &= (v >= 0.0) & (v <= 1.0);
                    }
                }
            }
        }
        if (!ok) {
            failed = 1;
            break;
        }
#ifdef LL_SSE2
        /* Float64 columns of at most 128 classes (pairwise_sum's single level): two rows at a time. */
        if (all_double && k <= 128)
            score_column_pairs((const double *const *)columns, rows, start, stop, k, o, diff);
        else
#endif
            score_rows(rows, start, start, stop, k, o, diff);
        if (o->column_sums)
            add_column_sums(rows, start, stop, n, k, o);
    }
    free(block);
    free_scratch(diff, stack);
    return failed;
}

/* Score the rows of an n x k row-major float64 matrix. Returns 0; 1 if calibration bins were
 * asked for and a value is not in [0, 1]; 2 or 3 as begin_scoring (in each case the outputs
 * are incomplete, and the caller takes numpy's path). */
LL_EXPORT int ll_score(const double *p, int64_t n, int64_t k, const Outputs *o)
{
    double stack[ROW_STACK], *diff;
    int failed = begin_scoring(o, n, k, stack, &diff);
    if (failed)
        return failed;
    for (int64_t start = 0; start < n && !failed; start += BLOCK) {
        const int64_t stop = start + BLOCK < n ? start + BLOCK : n;
        if (o->bin_weight)
            for (int64_t i = start; i < stop; i++)
                if (!in_unit_range(p + i * k, k))
                    failed = 1;
        if (!failed)
            score_rows(p + start * k, start, start, stop, k, o, diff);
        if (!failed && o->column_sums)
            add_column_sums(p + start * k, start, stop, n, k, o);
    }
    free_scratch(diff, stack);
    return failed;
}

/* The per-class and per-bin sums the accumulate stage takes from a batch's per-row figures
 * (losslens.accumulate.Accumulator._of_rows), each added in row order from 0 as np.bincount adds. */
typedef struct {
    const int64_t *label;
    const int64_t *predicted;
    const double *confidence;
    const double *weighted_loss;   /* w * loss (the loss itself for unit weights) */
    const double *weight;          /* NULL: unit weights */
    int64_t n_bins;                /* top-label calibration bins */
    int64_t *class_count;          /* k: rows of each true class */
    double *class_loss_sum;        /* k: sum of w * loss by true class */
    double *class_correct_weight;  /* k: weight of the rows predicted right, by true class */
    double *predicted_weight;      /* k: weight by predicted class */
    double *bin_weight;            /* n_bins: weight by bin of the confidence */
    double *bin_confidence_sum;    /* n_bins: sum of w * confidence */
    double *bin_correct_weight;    /* n_bins: weight of the rows predicted right */
    int64_t *pair_counts;          /* k * k: rows with label * k + predicted, wrong ones only; NULL: not asked */
    int64_t n_correct;             /* written: rows predicted right */
} BatchSums;

/* Returns 0; 1 (nothing usable) if a label or prediction is not a class index or a confidence
 * is not in [0, 1]; the caller then takes numpy's path. */
LL_EXPORT int ll_batch_sums(int64_t n, int64_t k, BatchSums *s)
{
    const int64_t b = s->n_bins;
    for (int64_t i = 0; i < n; i++) {
        const double c = s->confidence[i];
        if (s->label[i] < 0 || s->label[i] >= k || s->predicted[i] < 0 || s->predicted[i] >= k
            || !(c >= 0.0 && c <= 1.0))
            return 1;
    }
    int64_t n_correct = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t y = s->label[i], p = s->predicted[i];
        const double w = s->weight ? s->weight[i] : 1.0;
        const double c = s->confidence[i];
        const int64_t j = bin_of(c, b);
        const int right = y == p;
        s->class_count[y] += 1;
        s->class_loss_sum[y] += s->weighted_loss[i];
        s->predicted_weight[p] += w;
        s->bin_weight[j] += w;
        s->bin_confidence_sum[j] += s->weight ? w * c : c;
        if (right) {
            n_correct++;
            s->class_correct_weight[y] += w;
            s->bin_correct_weight[j] += w;
        } else if (s->pair_counts) {
            s->pair_counts[y * k + p] += 1;
        }
    }
    s->n_correct = n_correct;
    return 0;
}

/* -- the temperature fit's row passes (losslens.calibration_fit), over an n x k matrix -- */

/* The maximum of a row as calibration_fit.row_max takes it: np.maximum column by column from
 * the first, np.maximum(m, v) being (m > v or m is NaN) ? m : v, so a NaN propagates and on a
 * tie the later value is kept (which tells only +0 from -0). */
static double row_maximum(const double *row, int64_t k)
{
    double m = row[0];
    for (int64_t j = 1; j < k; j++)
        m = (m > row[j] || m != m) ? m : row[j];
    return m;
}

/* p = z * factor (divide 0) or z / factor (divide 1), then each row shifted by its maximum
 * (top, row_maximum's). The maximum is taken as two running maxima, of the even and of the odd
 * columns, which halves the chain of dependent comparisons; their larger one is row_maximum's
 * value unless the row has a NaN or its maximum is a zero (whose sign depends on which of +0
 * and -0 came last), and those rows take row_maximum itself. */
LL_EXPORT void ll_shift_rows(const double *z, int64_t n, int64_t k, double factor, int32_t divide,
                             double *p, double *top)
{
    for (int64_t i = 0; i < n; i++) {
        const double *in = z + i * k;
        double *row = p + i * k;
        int nan = 0;
        int64_t j = 0;
#ifdef LL_SSE2
        /* Two columns at a time (maxpd is m > v ? m : v, the select below). */
        const __m128d f = _mm_set1_pd(factor);
        __m128d unordered = _mm_setzero_pd();
        for (; j + 2 <= k; j += 2) {
            const __m128d v = divide ? _mm_div_pd(_mm_loadu_pd(in + j), f) : _mm_mul_pd(f, _mm_loadu_pd(in + j));
            _mm_storeu_pd(row + j, v);
            unordered = _mm_or_pd(unordered, _mm_cmpunord_pd(v, v));
        }
        nan = _mm_movemask_pd(unordered) != 0;
#endif
        for (; j < k; j++) {
            row[j] = divide ? in[j] / factor : factor * in[j];
            nan |= row[j] != row[j];
        }
        double even = row[0], odd = row[k > 1 ? 1 : 0];
        j = 2;
#ifdef LL_SSE2
        if (k >= 2) {
            __m128d pair = _mm_loadu_pd(row);
            for (; j + 1 < k; j += 2)
                pair = _mm_max_pd(pair, _mm_loadu_pd(row + j));
            double both[2];
            _mm_storeu_pd(both, pair);
            even = both[0], odd = both[1];
        }
#endif
        for (; j + 1 < k; j += 2) {
            even = even > row[j] ? even : row[j];
            odd = odd > row[j + 1] ? odd : row[j + 1];
        }
        if (j < k)
            even = even > row[j] ? even : row[j];
        double m = even > odd ? even : odd;
        if (nan || m == 0.0)
            m = row_maximum(row, k);
        j = 0;
#ifdef LL_SSE2
        for (const __m128d mv = _mm_set1_pd(m); j + 2 <= k; j += 2)
            _mm_storeu_pd(row + j, _mm_sub_pd(_mm_loadu_pd(row + j), mv));
#endif
        for (; j < k; j++)
            row[j] -= m;
        top[i] = m;
    }
}

/* Each row of p (the exp of shifted scores) divided by its sum (total, as p.sum(axis=1)), then
 * the mean of zz under it and the mean square of zz less that mean, as
 * calibration_fit._softmax_stats takes them with einsum("ij,ij->i") (in einsum_dot's order).
 * Returns 1, doing nothing, if memory ran out. */
LL_EXPORT int ll_softmax_moments(double *p, const double *zz, int64_t n, int64_t k, double *total, double *mean,
                                 double *var)
{
    double stack[ROW_STACK];
    double *centred = scratch_row(stack, k);
    if (!centred)
        return 1;
    for (int64_t i = 0; i < n; i++) {
        double *row = p + i * k;
        const double *scores = zz + i * k;
        const double t = 0. + pairwise_sum(row, k);
        total[i] = t;
        int64_t j = 0;
#ifdef LL_SSE2
        for (const __m128d tv = _mm_set1_pd(t); j + 2 <= k; j += 2)
            _mm_storeu_pd(row + j, _mm_div_pd(_mm_loadu_pd(row + j), tv));
#endif
        for (; j < k; j++)
            row[j] /= t;
        const double m = einsum_dot(row, scores, k);
        mean[i] = m;
        j = 0;
#ifdef LL_SSE2
        for (const __m128d mv = _mm_set1_pd(m); j + 2 <= k; j += 2) {
            const __m128d c = _mm_sub_pd(_mm_loadu_pd(scores + j), mv);
            _mm_storeu_pd(centred + j, _mm_mul_pd(c, c));
        }
#endif
        for (; j < k; j++) {
            const double c = scores[j] - m;
            centred[j] = c * c;
        }
        var[i] = einsum_dot(row, centred, k);
    }
    free_scratch(centred, stack);
    return 0;
}

/* Each row's sum as p.sum(axis=1) gives it, and (divide) the row divided by it. */
LL_EXPORT void ll_row_totals(double *p, int64_t n, int64_t k, int32_t divide, double *total)
{
    for (int64_t i = 0; i < n; i++) {
        double *row = p + i * k;
        const double t = 0. + pairwise_sum(row, k);
        total[i] = t;
        if (divide)
            for (int64_t j = 0; j < k; j++)
                row[j] /= t;
    }
}

/* Each row's sum of (p_j - [j = y])^2, as calibration_fit._square_error_rows takes it (p is
 * overwritten with the squares). Returns 1, doing nothing, if a label is not a column index. */
LL_EXPORT int ll_square_error_rows(double *p, int64_t n, int64_t k, const int64_t *label, double *out)
{
    if (!labels_in_range(label, n, k))
        return 1;
    for (int64_t i = 0; i < n; i++) {
        double *row = p + i * k;
        row[label[i]] -= 1.0;
        for (int64_t j = 0; j < k; j++)
            row[j] = row[j] * row[j];
        out[i] = 0. + pairwise_sum(row, k);
    }
    return 0;
}

/* -- the loss histogram (losslens.batch_figures.loss_histogram) -- */

/* Add to counts[b] each value x[i] at or above exactly b of the n_edges sorted edges
 * (np.searchsorted(edges, x, side="right"), then np.bincount: integer counts, the same in any
 * order). A positive double's bits, shifted right by `shift`, are its exponent and first
 * mantissa bits: the table gives, for each such cell from key_lo on, the number of edges at or
 * below the cell's lowest value. losslens.fused builds it only where no cell holds more than
 * one edge, so one comparison with the next edge (edges[n_edges] is +inf) gives the exact bin.
 * Below edges[0] (0, -0.0, a negative value): bin 0; NaN: n_edges, where searchsorted puts it. */
LL_EXPORT void ll_histogram(const double *x, int64_t n, const double *edges, int64_t n_edges, const int32_t *table,
                            int64_t key_lo, int64_t n_keys, int64_t shift, int64_t *counts)
{
    for (int64_t i = 0; i < n; i++) {
        const double v = x[i];
        int64_t bin;
        if (v != v) {
            bin = n_edges;
        } else if (v < edges[0]) {
            bin = 0;
        } else {
            uint64_t bits;
            memcpy(&bits, &v, sizeof bits);
            const int64_t cell = (int64_t)(bits >> shift) - key_lo;
            if (cell >= n_keys) {
                bin = n_edges; /* above the last edge's cell: every edge is below */
            } else {
                bin = table[cell];
                bin += v >= edges[bin];
            }
        }
        counts[bin] += 1;
    }
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused", "losslens's fused batch passes (used through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__fused(void)
{
    return PyModule_Create(&module);
}
