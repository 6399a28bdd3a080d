"""Finished numbers: immutable results computed from accumulators.

Pure. :func:`metrics_of` turns an :class:`~losslens.accumulate.Accumulator` into
:class:`Metrics` (a whole run's accumulators: :func:`losslens.finish.run_evaluation_of`);
:class:`Evaluation` holds every run and is what the terminal, JSON and
HTML reporters read. The many-class results (worst classes, confused pairs, classwise ECE,
the prior-shift tests) are computed in :mod:`losslens.many_classes` and re-exported here. Definitions follow ``shared/DESIGN.md``: log loss in nats, everything
named ``*_bits`` in bits, ``*_loss`` lower is better, ``*_score`` higher is better (except
``brier_score``, which keeps scikit-learn's name and is lower-is-better).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .accumulate import HIST_EDGES, OTHER, TOP_K, Accumulator, Example  # noqa: F401 (OTHER re-exported)
# The JSON document (its version with the change log, json_safe) is losslens.document's; re-exported here.
from .document import FORMAT_VERSION, job_document, json_safe  # noqa: F401
# The many-class results live in their own module; they are imported here for the results
# below and re-exported, so that ``losslens.evaluation`` stays the one place to import
# finished numbers from. LN2 and _ratio are defined there because it cannot import this module.
from .many_classes import (  # noqa: F401 (re-exports)
    CLASSWISE_ECE_MIN_EXAMPLES,
    LN2,
    MAX_CONFUSED_PAIRS,
    MAX_WORST_CLASSES,
    POOL_EXPECTED_BELOW,
    ConfusedPair,
    Confusion,
    WorstClass,
    _ratio,
    chi2_sf,
    class_calibration_errors,
    class_excess_losses,
    classwise_ece,
    confused_pairs_of,
    kl_sampling_bias_bits,
    prior_shift_test,
    worst_classes_of,
)
from .display import Notebook
from .schema import Layout

#: 97.5% quantile of the standard normal distribution, for 95% intervals.
Z95 = 1.959963984540054


def _entropy_bits(p: np.ndarray) -> float:
    p = p[p > 0]
    # + 0.0: one class gives -0.0, which would print (and go to JSON) as "-0.0".
    return float(-(p * np.log(p)).sum() / LN2) + 0.0


def _kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p ‖ q) in bits; infinite where q has no mass on a class p has."""
    mask = p > 0
    if np.any(q[mask] <= 0):
        return math.inf
    return float((p[mask] * (np.log(p[mask]) - np.log(q[mask]))).sum() / LN2)


@dataclass(frozen=True)
class Metrics:
    """The numbers for one scope (the whole run, a split, or a slice value).

    Attributes are named as in the JSON. ``label_entropy_bits`` is H(P̂) of the weighted
    empirical label distribution, ``kl_empirical_bits`` is KL(P̂ ‖ Q̄) with Q̄ the weighted
    mean predicted distribution, and ``information_gain_bits`` is H(P̂) − cross-entropy: how
    much better than always predicting the class frequencies the model is.
    """

    n_examples: int
    weight_sum: float
    log_loss: float
    log_loss_ci95: tuple[float, float]
    cross_entropy_bits: float
    perplexity: float
    label_entropy_bits: float
    kl_empirical_bits: float
    marginal_cross_entropy_bits: float
    information_gain_bits: float
    relative_information_gain: float
    accuracy: float
    brier_score: float
    ece: float
    n_clipped: int
    clipped_loss_share: float
    n_unnormalized: int
    n_confident_errors: int
    confident_error_loss_share: float
    target_entropy_bits: float | None = None
    kl_bits: float | None = None
    #: Share of examples whose true class is among the 5 most probable; None (absent from
    #: the JSON) with 5 classes or fewer, where it is 1 by definition, and for soft targets.
    top_5_accuracy: float | None = None
    #: KL(P̂ ‖ Q̄) minus its expected sampling bias under calibration (None for soft targets).
    kl_empirical_bits_corrected: float | None = None
    #: G-test of the label counts against the counts a calibrated model expects (n·Q̄).
    prior_shift_p_value: float | None = None
    #: Mean one-vs-rest ECE over classes with CLASSWISE_ECE_MIN_EXAMPLES examples or more;
    #: computed for the run overall only (None in splits and slices).
    classwise_ece: float | None = None
    #: Calibration that says what is fixable (see :mod:`losslens.calibration_sample`): the
    #: equal-width figures come from the streamed bins; the equal-mass ECE and the temperature
    #: split from the run's example sample (None where that was not kept, e.g. the Dask engine).
    ece_equal_width: float | None = None
    ece_equal_mass: float | None = None
    rms_calibration_error: float | None = None
    max_calibration_error: float | None = None
    temperature: float | None = None
    log_loss_after_temperature: float | None = None
    calibration_loss: float | None = None
    refinement_loss: float | None = None
    brier_after_temperature: float | None = None
    #: Bootstrap intervals of the four calibration figures (:mod:`losslens.calibration_intervals`).
    ece_equal_width_ci95: tuple[float, float] | None = None
    ece_equal_mass_ci95: tuple[float, float] | None = None
    rms_calibration_error_ci95: tuple[float, float] | None = None
    max_calibration_error_ci95: tuple[float, float] | None = None
    #: How log_loss_ci95 was computed.
    log_loss_ci95_method: str = "normal approximation (effective sample size)"
    #: Percentile bootstrap intervals, when asked for with --bootstrap N.
    bootstrap: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        data = asdict(self)
        data["log_loss_ci95"] = list(self.log_loss_ci95)
        if self.target_entropy_bits is None:
            del data["target_entropy_bits"], data["kl_bits"]
        if self.top_5_accuracy is None:
            del data["top_5_accuracy"]
        if self.bootstrap is None:
            del data["bootstrap"]
        return data


@dataclass(frozen=True)
class ClassMetrics:
    """Numbers for the examples whose true class is one class."""

    n_examples: int
    weight_sum: float
    log_loss: float
    cross_entropy_bits: float
    recall: float
    precision: float
    actual_share: float
    predicted_share: float
    mean_predicted_prob: float
    ece: float
    #: Σ over the class's examples of (loss − overall log loss) / n_all, as in worst_classes.
    excess_loss: float = math.nan
    #: The class its examples are most often predicted as, when wrong (None: never wrong).
    most_confused_with: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of the reliability diagram (top-label confidence)."""

    lower: float
    upper: float
    weight: float
    mean_confidence: float
    accuracy: float


def loss_ci95(acc: Accumulator) -> tuple[float, float]:
    """Normal-approximation 95% interval of the weighted mean loss.

    Uses the streamed Σw·ℓ, Σw·ℓ² and Kish's effective sample size (Σw)²/Σw², so that it
    needs no second pass and merges across batches.
    """
    if acc.weight_sum <= 0:
        return (math.nan, math.nan)
    mean = acc.loss_sum / acc.weight_sum
    n_eff = acc.weight_sum**2 / acc.weight_sq_sum
    if n_eff <= 1:
        return (math.nan, math.nan)
    variance = max(acc.loss_sq_sum / acc.weight_sum - mean**2, 0.0) * n_eff / (n_eff - 1)
    half = Z95 * math.sqrt(variance / n_eff)
    return (mean - half, mean + half)


def calibration_bins(acc: Accumulator) -> list[CalibrationBin]:
    """Reliability-diagram data: per equal-width confidence bin, weight, confidence, accuracy."""
    edges = np.linspace(0.0, 1.0, acc.n_bins + 1)
    return [
        CalibrationBin(
            lower=float(edges[i]),
            upper=float(edges[i + 1]),
            weight=float(acc.bin_weight[i]),
            mean_confidence=_ratio(acc.bin_confidence_sum[i], acc.bin_weight[i]),
            accuracy=_ratio(acc.bin_correct_weight[i], acc.bin_weight[i]),
        )
        for i in range(acc.n_bins)
    ]


def expected_calibration_error(acc: Accumulator) -> float:
    """Top-label ECE: Σ_bins (weight share) · |accuracy − mean confidence|."""
    if acc.weight_sum <= 0:
        return math.nan
    gap = np.abs(acc.bin_correct_weight - acc.bin_confidence_sum)
    return float(gap.sum() / acc.weight_sum)


def bin_calibration_errors(acc: Accumulator) -> tuple[float, float]:
    """RMS and maximum calibration error over the equal-width bins (torchmetrics' l2 and max norms).

    RMS = sqrt(Σ_b (W_b/W)·(accuracy_b − confidence_b)²); max = the largest |accuracy_b −
    confidence_b| over bins with weight. NaN without weight.
    """
    used = acc.bin_weight > 0
    if acc.weight_sum <= 0 or not used.any():
        return math.nan, math.nan
    weight = acc.bin_weight[used]
    gap = (acc.bin_correct_weight[used] - acc.bin_confidence_sum[used]) / weight
    return float(math.sqrt(np.dot(weight / acc.weight_sum, gap**2))), float(np.abs(gap).max())


def metrics_of(acc: Accumulator, soft_targets: bool = False) -> Metrics:
    """Finish the sums of one scope into :class:`Metrics`.

    Parameters
    ----------
    acc : Accumulator
        The scope's sums.
    soft_targets : bool
        Whether the labels are target distributions; adds ``target_entropy_bits`` and
        ``kl_bits`` (means over examples, so that cross-entropy = entropy + KL).

    Returns
    -------
    Metrics
    """
    w = acc.weight_sum
    log_loss = _ratio(acc.loss_sum, w)
    bits = log_loss / LN2
    p_hat = acc.class_weight / w if w > 0 else np.full(acc.n_classes, math.nan)
    q_bar = acc.prob_sum / w if w > 0 else np.full(acc.n_classes, math.nan)
    entropy = _entropy_bits(p_hat) if w > 0 else math.nan
    kl = _kl_bits(p_hat, q_bar) if w > 0 else math.nan
    target_entropy = kl_bits = None
    corrected = p_value = None
    if soft_targets:
        target_entropy = _ratio(acc.target_entropy_sum, w) / LN2
        kl_bits = bits - target_entropy
    elif w > 0:
        corrected = kl - kl_sampling_bias_bits(acc)
        p_value = prior_shift_test(acc)[2]
    top_k = _ratio(acc.top_k_weight, w) if acc.n_classes > TOP_K and not soft_targets else None
    ece = expected_calibration_error(acc)
    rms, worst_gap = bin_calibration_errors(acc)
    return Metrics(
        n_examples=acc.n_examples,
        weight_sum=w,
        log_loss=log_loss,
        log_loss_ci95=loss_ci95(acc),
        cross_entropy_bits=bits,
        perplexity=math.exp(log_loss) if log_loss < 700 else math.inf,
        label_entropy_bits=entropy,
        kl_empirical_bits=kl,
        marginal_cross_entropy_bits=entropy + kl,
        information_gain_bits=entropy - bits,
        relative_information_gain=1.0 - bits / entropy if entropy > 0 else math.nan,
        accuracy=_ratio(acc.correct_weight, w),
        brier_score=_ratio(acc.brier_sum, w),
        ece=ece,
        n_clipped=acc.n_clipped,
        clipped_loss_share=_ratio(acc.clipped_loss_sum, acc.loss_sum),
        n_unnormalized=acc.n_unnormalized,
        n_confident_errors=acc.n_confident_errors,
        confident_error_loss_share=_ratio(acc.confident_error_loss_sum, acc.loss_sum),
        target_entropy_bits=target_entropy,
        kl_bits=kl_bits,
        top_5_accuracy=top_k,
        kl_empirical_bits_corrected=corrected,
        prior_shift_p_value=p_value,
        classwise_ece=classwise_ece(acc)[0] if acc.class_calibration else None,
        ece_equal_width=ece,
        rms_calibration_error=rms,
        max_calibration_error=worst_gap,
    )


def brier_decomposition(acc: Accumulator, positive: int) -> dict[str, float] | None:
    """Murphy's decomposition of the binary Brier score over the calibration bins of p(positive).

    ``brier ≈ reliability − resolution + uncertainty``; exact when forecasts are constant
    within each bin, otherwise the within-bin variance is left out (reported as ``residual``).
    """
    if acc.n_classes != 2 or not acc.class_calibration or acc.weight_sum <= 0:
        return None
    b = acc.n_bins
    weight = acc.class_bin_weight[positive * b:(positive + 1) * b]
    forecast = acc.class_bin_prob_sum[positive * b:(positive + 1) * b]
    hits = acc.class_bin_hit_weight[positive * b:(positive + 1) * b]
    total = acc.weight_sum
    base_rate = hits.sum() / total
    used = weight > 0
    mean_forecast = forecast[used] / weight[used]
    hit_rate = hits[used] / weight[used]
    reliability = float((weight[used] * (mean_forecast - hit_rate) ** 2).sum() / total)
    resolution = float((weight[used] * (hit_rate - base_rate) ** 2).sum() / total)
    uncertainty = float(base_rate * (1 - base_rate))
    brier = acc.brier_sum / total
    return {
        "reliability": reliability,
        "resolution": resolution,
        "uncertainty": uncertainty,
        "residual": float(brier - (reliability - resolution + uncertainty)),
    }


def class_metrics_of(acc: Accumulator, classes: tuple[str, ...]) -> dict[str, ClassMetrics]:
    """Per true class: its mean loss, recall, precision, predicted versus actual share, ECE."""
    w = acc.weight_sum
    eces = class_calibration_errors(acc)
    excess = class_excess_losses(acc)
    confused = Confusion.of(acc).most_confused_with() if acc.class_calibration else np.full(acc.n_classes, -1)
    result = {}
    for i, name in enumerate(classes):
        class_loss = _ratio(acc.class_loss_sum[i], acc.class_weight[i])
        result[name] = ClassMetrics(
            n_examples=int(acc.class_count[i]),
            weight_sum=float(acc.class_weight[i]),
            log_loss=class_loss,
            cross_entropy_bits=class_loss / LN2,
            recall=_ratio(acc.class_correct_weight[i], acc.class_weight[i]),
            precision=_ratio(acc.class_correct_weight[i], acc.predicted_weight[i]),
            actual_share=_ratio(acc.class_weight[i], w),
            predicted_share=_ratio(acc.predicted_weight[i], w),
            mean_predicted_prob=_ratio(acc.prob_sum[i], w),
            ece=float(eces[i]),
            excess_loss=float(excess[i]) if acc.class_weight[i] > 0 else math.nan,
            most_confused_with=classes[confused[i]] if confused[i] >= 0 else None,
        )
    return result


def loss_quantiles(acc: Accumulator, qs=(0.5, 0.9, 0.99)) -> dict[str, float]:
    """Approximate (unweighted) loss quantiles from the fixed-edge histogram.

    Each value is the geometric middle of the histogram bin holding the quantile: exact to
    about 12% (20 bins per decade).
    """
    counts = acc.loss_histogram
    total = counts.sum()
    out = {}
    if total == 0:
        return {f"p{round(q * 100)}": math.nan for q in qs}
    cumulative = np.cumsum(counts)
    for q in qs:
        b = int(np.searchsorted(cumulative, q * total, side="left"))
        if b == 0:
            value = 0.0
        elif b >= len(HIST_EDGES):
            value = float(HIST_EDGES[-1])
        else:
            value = float(math.sqrt(HIST_EDGES[b - 1] * HIST_EDGES[b]))
        out[f"p{round(q * 100)}"] = value
    return out


@dataclass(frozen=True)
class LossWarning:
    """Something the user must not miss, with a stable ``code`` and the ``scope`` it is about."""

    code: str
    message: str
    scope: str = "overall"

    def to_dict(self) -> dict[str, str]:
        """Plain data for JSON."""
        return {"code": self.code, "message": self.message, "scope": self.scope}


@dataclass(frozen=True)
class RunEvaluation:
    """Everything computed for one run (one INPUT)."""

    name: str
    inputs: tuple[str, ...]
    layout: Layout
    overall: Metrics
    by_split: dict[str, Metrics]
    by_slice: dict[str, dict[str, Metrics]]
    by_class: dict[str, ClassMetrics]
    calibration: tuple[CalibrationBin, ...]
    label_distribution: dict[str, float]
    mean_predicted_distribution: dict[str, float]
    loss_histogram: tuple[int, ...]
    loss_quantiles: dict[str, float]
    worst: tuple[Example, ...]
    brier_decomposition: dict[str, float] | None = None
    warnings: tuple[LossWarning, ...] = field(default_factory=tuple)
    #: Classes ranked by excess loss (at most MAX_WORST_CLASSES) and the most frequent mistakes.
    worst_classes: tuple[WorstClass, ...] = ()
    confused_pairs: tuple[ConfusedPair, ...] = ()
    #: Equal-mass reliability bins with Wilson intervals, from the example sample (losslens.calibration_intervals).
    calibration_equal_mass: tuple = ()
    #: The whole sparse confusion count, for --per-class and the report's heat map.
    confusion: Confusion | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in report order."""
        return self.layout.classes

    def __repr__(self) -> str:
        # One short line: the dataclass repr prints every histogram bin and example.
        return f"<RunEvaluation {_headline(self)}>"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the ``runs[i]`` object."""
        classes = self.layout.classes
        return {
            "name": self.name,
            "inputs": list(self.inputs),
            "classes": list(classes),
            "layout": self.layout.to_dict(),
            "overall": self.overall.to_dict(),
            "by_split": {k: m.to_dict() for k, m in self.by_split.items()},
            "by_slice": {
                c: {v: {**m.to_dict(), "excess_log_loss": m.log_loss - self.overall.log_loss} for v, m in vals.items()}
                for c, vals in self.by_slice.items()
            },
            "by_class": {k: m.to_dict() for k, m in self.by_class.items()},
            "label_distribution": self.label_distribution,
            "mean_predicted_distribution": self.mean_predicted_distribution,
            "calibration": {
                "n_bins": len(self.calibration),
                "bins": [asdict(b) for b in self.calibration],
                "equal_mass_bins": [asdict(b) for b in self.calibration_equal_mass],
            },
            "brier_decomposition": self.brier_decomposition,
            "loss_quantiles_nats": self.loss_quantiles,
            "worst_examples": [
                {
                    "source": e.source,
                    "row": e.row,
                    "id": e.id,
                    "label": classes[e.label],
                    "predicted": classes[e.predicted],
                    "true_prob": e.true_prob,
                    "loss_nats": e.loss,
                    "loss_bits": e.loss / LN2,
                    "split": e.split,
                }
                for e in self.worst
            ],
            "worst_classes": [c.to_dict() for c in self.worst_classes],
            "confused_pairs": [p.to_dict() for p in self.confused_pairs],
            "warnings": [w.to_dict() for w in self.warnings],
        }


@dataclass(frozen=True)
class Evaluation(Notebook):
    """The result of :func:`losslens.evaluate`: one or more runs.

    In a notebook: ``_repr_html_`` (a card), ``to_html()``, ``to_json()`` and ``document()``
    (see :mod:`losslens.notebook`).
    """

    runs: tuple[RunEvaluation, ...]

    @property
    def run(self) -> RunEvaluation:
        """The first (for a single input, the only) run."""
        return self.runs[0]

    @property
    def overall(self) -> Metrics:
        """Overall metrics of the first run."""
        return self.runs[0].overall

    @property
    def warnings(self) -> tuple[LossWarning, ...]:
        """Warnings of every run."""
        return tuple(w for r in self.runs for w in r.warnings)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of these runs (format_version 3, see :mod:`losslens.document`), NaN as ``None``."""
        return job_document(self)

    # The notebook API: what a data scientist expects of the object evaluate() returns.

    @property
    def by_class(self) -> dict:
        """The first run's per-class metrics keyed by plain Python labels (``3``, not ``"3"``).

        ``run.by_class`` and the JSON keep class names as text; see
        :func:`losslens.class_names.label_value` for which names convert.
        """
        from .class_names import label_value

        return {label_value(name): metrics for name, metrics in self.runs[0].by_class.items()}

    def __repr__(self) -> str:
        # One short line, as a notebook shows the object; _repr_html_ gives the card.
        runs = self.runs
        if len(runs) == 1:
            return f"<Evaluation: 1 run {_headline(runs[0])}>"
        from .formatting import shorten

        names = ", ".join(f"'{shorten(r.name, 30)}'" for r in runs[:3]) + (", …" if len(runs) > 3 else "")
        return f"<Evaluation: {len(runs)} runs ({names}); first {_headline(runs[0])}>"


def _headline(run: RunEvaluation) -> str:
    """``'name', log_loss 0.6211 nats, 1,797 examples`` for a one-line repr."""
    from .formatting import number, plural, shorten

    overall = run.overall
    return (f"'{shorten(run.name, 30)}', log_loss {number(overall.log_loss)} nats, "
            f"{plural(overall.n_examples, 'example')}")


