"""Many-class results: worst classes, confused pairs, classwise ECE and the prior-shift tests.

Pure, like :mod:`losslens.evaluation`, which builds its results from these functions and
re-exports them. Everything here reads the per-class sums of an
:class:`~losslens.accumulate.Accumulator`: the bias correction of KL(P̂ ‖ Q̄), the G-test of
the label counts against the counts a calibrated model expects (with its chi-square tail),
one-vs-rest calibration errors, each class's excess loss and the sparse confusion counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .accumulate import Accumulator
from .catalog import LOG_LOSS, N_EXAMPLES

LN2 = math.log(2.0)
#: classwise_ece averages the one-vs-rest ECE of the classes with at least this many
#: examples: below it a class's reliability bins are mostly noise.
CLASSWISE_ECE_MIN_EXAMPLES = 20
#: prior_shift_p_value: classes expected fewer than this many times (n·Q̄) are pooled into
#: one cell of the G-test (Cochran's rule), where the chi-square approximation holds.
POOL_EXPECTED_BELOW = 5.0
#: Length of the worst_classes and confused_pairs lists in the JSON.
MAX_WORST_CLASSES = 20
MAX_CONFUSED_PAIRS = 20


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def kl_sampling_bias_bits(acc: Accumulator) -> float:
    """Expected upward bias of the plug-in KL(P̂ ‖ Q̄), in bits, if the model is calibrated.

    Under calibration each label is a draw from its row's prediction, so E[P̂_c] = Q̄_c and
    Var(P̂_c) = Σᵢ wᵢ² qᵢc(1 − qᵢc) / W². A second-order expansion of KL around P̂ = Q̄ (the
    first-order term vanishes because both sum to 1) gives the bias

        E[KL] ≈ Σ_c Var(P̂_c) / (2 Q̄_c) = Σ_c Σᵢ wᵢ² qᵢc(1 − qᵢc) / (2 W² Q̄_c)   nats,

    which with unit weights is the issue's Σ_c Σᵢ qᵢc(1 − qᵢc) / (2 n² Q̄_c), and for
    identical rows (k − 1) / (2n). It streams: Σw²q and Σw²q² per class are sums.

    Parameters
    ----------
    acc : Accumulator
        The scope's sums (hard labels).

    Returns
    -------
    float
        The bias in bits (0 for an empty scope).
    """
    w = acc.weight_sum
    used = acc.prob_sum > 0
    if w <= 0 or not used.any():
        return 0.0
    variance_w2 = np.maximum(acc.prob_w2_sum[used] - acc.prob_sq_w2_sum[used], 0.0)
    return float((variance_w2 / (2.0 * w * acc.prob_sum[used])).sum() / LN2)


def prior_shift_test(acc: Accumulator) -> tuple[float, int, float]:
    """G-test of the label counts against the counts n·Q̄ a calibrated model expects.

    Classes expected fewer than ``POOL_EXPECTED_BELOW`` times are pooled into one cell (and
    that cell into the smallest other one if it is still below). With weights, counts are
    scaled to Kish's effective sample size (Σw)²/Σw². Under calibration the label counts vary
    less than a multinomial with Q̄ (rows differ), so the test errs towards silence.

    Returns
    -------
    g : float
        The G statistic 2 Σ O ln(O / E).
    df : int
        Degrees of freedom: cells − 1.
    p_value : float
        ``chi2_sf(g, df)``; NaN when fewer than two cells remain.
    """
    w = acc.weight_sum
    total_prob = acc.prob_sum.sum()
    if w <= 0 or acc.weight_sq_sum <= 0 or total_prob <= 0:
        return math.nan, 0, math.nan
    n_eff = w * w / acc.weight_sq_sum
    observed = acc.class_weight / w * n_eff
    expected = acc.prob_sum / total_prob * n_eff
    sparse = expected < POOL_EXPECTED_BELOW
    cells_o, cells_e = list(observed[~sparse]), list(expected[~sparse])
    if sparse.any():
        pooled_o, pooled_e = float(observed[sparse].sum()), float(expected[sparse].sum())
        if pooled_e < POOL_EXPECTED_BELOW and cells_e:
            smallest = int(np.argmin(cells_e))
            cells_o[smallest] += pooled_o
            cells_e[smallest] += pooled_e
        else:
            cells_o.append(pooled_o)
            cells_e.append(pooled_e)
    if len(cells_o) < 2:
        return math.nan, 0, math.nan
    o, e = np.asarray(cells_o), np.asarray(cells_e)
    seen = o > 0
    if np.any(e[seen] <= 0):
        g = math.inf
    else:
        g = float(2.0 * (o[seen] * np.log(o[seen] / e[seen])).sum())
    df = len(o) - 1
    return g, df, chi2_sf(max(g, 0.0), df)


def chi2_sf(x: float, df: int) -> float:
    """Survival function of the chi-square distribution, P(X > x) for ``df`` degrees of freedom.

    Computed as the regularized upper incomplete gamma function Q(df/2, x/2): by its series
    below x/2 < df/2 + 1 and by a continued fraction (modified Lentz) above, as in Numerical
    Recipes' ``gammq``. Relative accuracy about 1e-13 (checked against scipy.stats.chi2.sf).

    Examples
    --------
    >>> round(chi2_sf(3.841458820694124, 1), 12)
    0.05
    """
    if df <= 0 or math.isnan(x):
        return math.nan
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    a, half = df / 2.0, x / 2.0
    log_prefactor = -half + a * math.log(half) - math.lgamma(a)
    if half < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(100_000):
            denominator += 1.0
            term *= half / denominator
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    tiny = 1e-300
    b = half + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return math.exp(log_prefactor) * h


def classwise_ece(acc: Accumulator) -> tuple[float, int]:
    """Classwise ECE: the mean one-vs-rest ECE over classes with enough examples.

    Only classes with at least ``CLASSWISE_ECE_MIN_EXAMPLES`` examples enter the mean
    (Kull et al. 2019 average over every class; rare classes' bins are noise).

    Returns
    -------
    value : float
        NaN if no class has enough examples or the scope has no class bins.
    n_classes : int
        How many classes were averaged.
    """
    eces = class_calibration_errors(acc)
    enough = acc.class_count >= CLASSWISE_ECE_MIN_EXAMPLES
    if not acc.class_calibration or not enough.any():
        return math.nan, 0
    return float(eces[enough].mean()), int(enough.sum())


@dataclass(frozen=True)
class Confusion:
    """The off-diagonal (true, predicted) example counts of a run, stored sparsely.

    ``codes`` are sorted unique ``true · k + predicted``; ``counts`` their numbers of examples
    (unweighted). ``class_count`` is each true class's number of examples.
    """

    n_classes: int
    codes: np.ndarray
    counts: np.ndarray
    class_count: np.ndarray

    @classmethod
    def of(cls, acc: Accumulator) -> "Confusion":
        """The confusion counts kept by an accumulator with class detail."""
        return cls(acc.n_classes, acc.pair_codes, acc.pair_counts, acc.class_count)

    def top_pairs(self, limit: int) -> list[tuple[int, int, int]]:
        """``(true, predicted, count)`` of the most frequent pairs, ties by class order."""
        order = np.lexsort((self.codes, -self.counts))[:limit]
        return [(int(c // self.n_classes), int(c % self.n_classes), int(n))
                for c, n in zip(self.codes[order], self.counts[order])]

    def most_confused_with(self) -> np.ndarray:
        """For each true class, the predicted class it is most often mistaken for (-1: none)."""
        best = np.full(self.n_classes, -1, dtype=np.int64)
        if self.codes.size:
            true, predicted = np.divmod(self.codes, self.n_classes)
            # Largest count first, then lower predicted class; the first row per class wins.
            order = np.lexsort((predicted, -self.counts, true))
            first = np.ones(order.size, dtype=bool)
            first[1:] = true[order][1:] != true[order][:-1]
            best[true[order][first]] = predicted[order][first]
        return best

    def dense(self) -> np.ndarray:
        """The full k × k count matrix (diagonal included): only for small k, e.g. a heat map."""
        k = self.n_classes
        matrix = np.zeros(k * k, dtype=np.int64)
        matrix[self.codes] = self.counts
        matrix = matrix.reshape(k, k)
        matrix[np.arange(k), np.arange(k)] = self.class_count - matrix.sum(axis=1)
        return matrix


@dataclass(frozen=True)
class WorstClass:
    """A class ranked by how much of the overall excess loss it causes."""

    name: str
    n_examples: int
    log_loss: float
    excess_loss: float
    recall: float
    most_confused_with: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``class`` is a Python keyword, hence ``name`` here)."""
        return {"class": self.name, N_EXAMPLES: self.n_examples, LOG_LOSS: self.log_loss,
                "excess_loss": self.excess_loss, "recall": self.recall,
                "most_confused_with": self.most_confused_with}


@dataclass(frozen=True)
class ConfusedPair:
    """A frequent mistake: examples of class ``true`` predicted as ``predicted``."""

    true: str
    predicted: str
    count: int
    share_of_true: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


def class_excess_losses(acc: Accumulator) -> np.ndarray:
    """Each class's share of the overall loss above the mean: Σ_{i in c} wᵢ(ℓᵢ − L̄) / W.

    They sum to 0 over the classes; a positive value is loss the class adds to the run.
    """
    w = acc.weight_sum
    if w <= 0:
        return np.full(acc.n_classes, math.nan)
    mean = acc.loss_sum / w
    return (acc.class_loss_sum - acc.class_weight * mean) / w


def worst_classes_of(acc: Accumulator, classes: tuple[str, ...], limit: int = MAX_WORST_CLASSES) -> list[WorstClass]:
    """The classes with the largest excess loss, worst first (ties by class order), at most ``limit``.

    Only classes with examples are ranked; ``most_confused_with`` comes from the sparse
    confusion counts (None when the class is never mistaken, or without class detail).
    """
    excess = class_excess_losses(acc)
    present = np.flatnonzero(acc.class_weight > 0)
    order = present[np.lexsort((present, -excess[present]))][:limit]
    confused = Confusion.of(acc).most_confused_with() if acc.class_calibration else np.full(acc.n_classes, -1)
    return [
        WorstClass(
            name=classes[c],
            n_examples=int(acc.class_count[c]),
            log_loss=float(_ratio(acc.class_loss_sum[c], acc.class_weight[c])),
            excess_loss=float(excess[c]),
            recall=float(_ratio(acc.class_correct_weight[c], acc.class_weight[c])),
            most_confused_with=classes[confused[c]] if confused[c] >= 0 else None,
        )
        for c in order
    ]


def confused_pairs_of(acc: Accumulator, classes: tuple[str, ...], limit: int = MAX_CONFUSED_PAIRS) -> list[ConfusedPair]:
    """The most frequent off-diagonal (true, predicted) pairs, most frequent first."""
    if not acc.class_calibration:
        return []
    return [
        ConfusedPair(classes[t], classes[p], n, float(_ratio(n, acc.class_count[t])))
        for t, p, n in Confusion.of(acc).top_pairs(limit)
    ]


def class_calibration_errors(acc: Accumulator) -> np.ndarray:
    """One-vs-rest ECE of each class: Σ_bins (weight share) · |hit rate − mean q_c|."""
    if not acc.class_calibration or acc.weight_sum <= 0:
        return np.full(acc.n_classes, math.nan)
    shape = (acc.n_classes, acc.n_bins)
    gap = np.abs(acc.class_bin_hit_weight.reshape(shape) - acc.class_bin_prob_sum.reshape(shape))
    return gap.sum(axis=1) / acc.weight_sum
