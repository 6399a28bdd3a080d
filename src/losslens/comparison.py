"""Comparing runs: each run against the first, paired by example id where the runs share ids.

Collecting is an engine observer (:class:`LossCollector`) that keeps only id, loss, weight
and label per example; everything else here is pure arithmetic on those arrays and on the
runs' finished metrics.

Definitions
-----------
With dᵢ = ℓᵢ(candidate) − ℓᵢ(reference) for the examples present in both runs (joined on
the id column) and wᵢ the reference run's weight of example i:

- ``log_loss_delta`` = Σwᵢdᵢ / Σwᵢ, negative when the candidate is better;
- ``log_loss_delta_ci95`` = delta ± 1.96·s/√n_eff, where s² is the weighted variance of dᵢ
  with Bessel's correction on Kish's effective sample size n_eff = (Σw)²/Σw² (the same
  normal approximation as each run's ``log_loss_ci95``; for unit weights the textbook paired
  interval d̄ ± 1.96·s/√n);
- ``share_improved`` / ``share_worsened`` = weighted share with dᵢ < 0 / dᵢ > 0;
- ``log_loss_delta_p_value``: the two-sided normal test of the same standard error as the
  interval; ``log_loss_delta_p_value_adjusted``: Benjamini–Hochberg across every comparison of
  the job; ``minimum_detectable_effect``: the smallest true delta a test at α = 0.05 finds with
  80 % power, 2.80 standard errors (:mod:`losslens.paired_stats`);
- ``accuracy_delta`` (± its interval, the same formula on the 0/1 argmax-correct differences)
  and ``mcnemar``: McNemar's exact test on the examples whose correctness flipped;
- ``brier_score_delta`` and ``p_gold_delta`` (the probability of the true class), each with
  its ``_ci95`` and ``_p_value`` from the same paired formula (:mod:`losslens.paired_deltas`);
- ``verdict``: ``better`` / ``worse`` when the adjusted p-value is below 0.05 (by the sign of
  the delta), else ``no detectable change``.

With ``--cluster COL`` the standard errors are clustered on that column (Miller 2024; see
:func:`losslens.paired_stats.clustered_standard_error`) and the interval, p-value and minimum
detectable effect use them. With ``--bootstrap N`` a paired bootstrap (fixed seed) adds
percentile intervals and p-values of both deltas.

Without shared ids the comparison is unpaired: the difference of the two runs' log losses
with an interval from their independent standard errors, ``paired: false``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import losslens.paired_deltas as paired_deltas
import losslens.paired_stats as paired_stats
from .catalog import (
    ACCURACY_DELTA, CLASSIFIER, CLUSTER, LOG_LOSS_DELTA, LOG_LOSS_DELTA_CI95, LOG_LOSS_DELTA_P_VALUE,
    LOG_LOSS_DELTA_P_VALUE_ADJUSTED, MCNEMAR, MINIMUM_DETECTABLE_EFFECT, VERDICT, metric_names,
)
from .display import Notebook
from .errors import InputError
from .evaluation import LN2, Z95, Evaluation, Metrics, RunEvaluation
from .paired_stats import weighted_mean_se

#: The level below which an adjusted p-value makes a verdict (and a ``significant`` gate) fire.
ALPHA = 0.05

#: How many ids found in only one run are listed (all of them are counted).
MAX_LISTED_IDS = 10


@dataclass
class _Losses:
    """Per-example id, loss, weight and label of one run, as appended batch by batch."""

    classes: tuple[str, ...] = ()
    ids: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    weight: list = field(default_factory=list)
    label: list = field(default_factory=list)
    correct: list = field(default_factory=list)
    cluster: list = field(default_factory=list)
    brier: list = field(default_factory=list)
    p_gold: list = field(default_factory=list)


class LossCollector:
    """Engine observer that keeps ``(id, loss, weight, label, correct, brier, p_gold[, cluster])`` per example.

    Memory is about 37 bytes per example plus the id (and ``--cluster``) strings; nothing else
    of a batch is kept. Runs without an id column are not collected (they can only be
    compared unpaired).
    """

    def __init__(self) -> None:
        self._runs: dict[str, _Losses] = {}

    def __call__(self, run_name: str, layout, batch) -> None:
        """Keep the id, loss, weight and label of each example of ``batch``."""
        if batch.ids is None:
            return
        import pyarrow as pa

        store = self._runs.setdefault(run_name, _Losses(classes=tuple(layout.classes)))
        # Arrow strings take a fraction of the memory of a numpy object array of str.
        store.ids.append(pa.array(batch.ids, type=pa.string()))
        store.loss.append(np.array(batch.loss, dtype=np.float64))
        store.weight.append(np.array(batch.weight, dtype=np.float64))
        store.label.append(np.array(batch.label, dtype=np.int32))
        # Argmax correct, as the run's accuracy counts it: McNemar and the accuracy delta pair these.
        store.correct.append(np.asarray(batch.predicted == batch.label, dtype=bool))
        # The Brier score and p(gold) of each example, for their paired deltas (mean over examples).
        store.brier.append(paired_deltas.example_brier(batch, len(store.classes)))
        store.p_gold.append(np.array(batch.true_prob, dtype=np.float64))
        cluster = getattr(batch, CLUSTER, None)
        if cluster is not None:
            store.cluster.append(pa.array(cluster, type=pa.string()))

    def table(self, run_name: str):
        """The run's examples as a DataFrame ``id, loss, weight, label, correct, brier, p_gold[, cluster]``, or None."""
        import pandas as pd
        import pyarrow as pa

        store = self._runs.get(run_name)
        if store is None or not store.ids:
            return None
        classes = np.asarray(store.classes, dtype=object)
        frame = pd.DataFrame({
            "id": pa.chunked_array(store.ids, type=pa.string()).to_pandas(),
            "loss": np.concatenate(store.loss),
            "weight": np.concatenate(store.weight),
            "label": classes[np.concatenate(store.label)],
            "correct": np.concatenate(store.correct),
            "brier": np.concatenate(store.brier),
            "p_gold": np.concatenate(store.p_gold),
        })
        if store.cluster:
            frame[CLUSTER] = pa.chunked_array(store.cluster, type=pa.string()).to_pandas()
        return frame


@dataclass(frozen=True)
class Regression:
    """One paired example whose loss got worse: for the "got worse the most" table."""

    id: str
    label: str
    loss_reference: float
    loss_candidate: float

    @property
    def loss_delta(self) -> float:
        """Candidate minus reference loss, in nats."""
        return self.loss_candidate - self.loss_reference

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "id": self.id,
            "label": self.label,
            "loss_reference_nats": self.loss_reference,
            "loss_candidate_nats": self.loss_candidate,
            "loss_delta_nats": self.loss_delta,
            "loss_delta_bits": self.loss_delta / LN2,
        }


@dataclass(frozen=True)
class PairedTests:
    """The statistics that decide between two runs scored on the same units.

    Computed by :func:`paired_tests` for classifier comparisons and language-model / lm-eval
    ones alike; ``standard_error`` is the one the interval, the p-value and the minimum
    detectable effect use (clustered when ``cluster`` is set). ``mcnemar`` and the accuracy
    fields are None without a 0/1 score per unit (token and sequence runs).
    """

    standard_error: float
    p_value: float
    minimum_detectable_effect: float
    accuracy_delta: float | None = None
    accuracy_delta_ci95: tuple[float, float] | None = None
    mcnemar: dict | None = None
    cluster: dict | None = None
    se_clustered: float | None = None
    bootstrap: dict | None = None
    #: Brier, p(gold) and bits-per-byte deltas with intervals and p-values (:mod:`losslens.paired_deltas`).
    deltas: dict | None = None

    def to_dict(self, p_value_adjusted: float | None) -> dict[str, Any]:
        """The JSON keys of a comparison these statistics add (catalog names)."""
        data: dict[str, Any] = {
            LOG_LOSS_DELTA_P_VALUE: self.p_value,
            LOG_LOSS_DELTA_P_VALUE_ADJUSTED: p_value_adjusted,
            MINIMUM_DETECTABLE_EFFECT: self.minimum_detectable_effect,
            ACCURACY_DELTA: self.accuracy_delta,
            "accuracy_delta_ci95": list(self.accuracy_delta_ci95) if self.accuracy_delta_ci95 else None,
            MCNEMAR: self.mcnemar,
            **(self.deltas or {}),
        }
        if self.cluster is not None:
            data[CLUSTER] = self.cluster
            data["log_loss_delta_se_clustered"] = self.se_clustered
        if self.bootstrap is not None:
            data["bootstrap"] = self.bootstrap
        return data


def verdict_of(delta: float | None, p_value: float | None) -> str:
    """``better`` / ``worse`` when ``p_value`` (the adjusted one) is below :data:`ALPHA`, by the
    sign of the delta (negative = lower loss = better); else ``no detectable change``."""
    if delta is None or p_value is None or not (p_value < ALPHA) or delta == 0:
        return "no detectable change"
    return "better" if delta < 0 else "worse"


def paired_tests(d: np.ndarray, w: np.ndarray, *, ratio: bool = False, correct=None, clusters=None,
                 cluster_column: str | None = None, n_bootstrap: int = 0, seed: int = 0,
                 more: dict | None = None, documents: tuple | None = None,
                 ) -> tuple[float, tuple[float, float], PairedTests]:
    """The paired delta, its 95% interval and the tests, from per-unit differences.

    Parameters
    ----------
    d, w : numpy.ndarray
        Per-unit loss differences (candidate − reference) and weights.
    ratio : bool
        Units are documents whose weights are token (or byte) counts: the delta is a ratio
        estimator and its standard error treats documents, never tokens, as the units.
    correct : pair of numpy.ndarray, optional
        The reference's and the candidate's 0/1 correctness per unit: the accuracy delta and
        McNemar's test.
    clusters : numpy.ndarray, optional
        A cluster per unit (``--cluster``, named ``cluster_column``): clustered standard errors.
    n_bootstrap, seed : int
        Paired bootstrap resamples (0: none) and their seed.
    more : dict of str to numpy.ndarray, optional
        Further per-unit differences of mean-over-unit metrics (``brier_score_delta``,
        ``p_gold_delta``), with the same weights: :func:`losslens.paired_deltas.mean_deltas`.
    documents : tuple of numpy.ndarray, optional
        ``(nll_ref, bytes_ref, nll_cand, bytes_cand)`` per document: ``bits_per_byte_delta``.

    Returns
    -------
    (delta, ci95, PairedTests)
    """
    delta, se = paired_stats.mean_se(d, w, ratio)
    cluster = se_clustered = None
    if clusters is not None:
        se_clustered, n_clusters = paired_stats.clustered_standard_error(d, clusters, w)
        cluster = {"column": cluster_column, "n_clusters": n_clusters}
        se = se_clustered
    ci = (delta - Z95 * se, delta + Z95 * se) if math.isfinite(se) else (math.nan, math.nan)
    accuracy = ci_accuracy = mcnemar = None
    if correct is not None:
        ref, cand = (np.asarray(c, dtype=bool) for c in correct)
        flips = cand.astype(np.float64) - ref.astype(np.float64)
        accuracy, acc_se = paired_stats.mean_se(flips, w, ratio)
        if clusters is not None:
            acc_se, _ = paired_stats.clustered_standard_error(flips, clusters, w)
        if math.isfinite(acc_se):
            ci_accuracy = (accuracy - Z95 * acc_se, accuracy + Z95 * acc_se)
        improved, worsened = int(np.count_nonzero(cand & ~ref)), int(np.count_nonzero(ref & ~cand))
        mcnemar = {"improved": improved, "worsened": worsened,
                   "p_value": paired_stats.mcnemar_exact(improved, worsened)}
    boot = None
    if n_bootstrap:
        from .bootstrap import paired_bootstrap_summary

        boot = paired_bootstrap_summary(d, w, None if correct is None else flips, clusters, n_bootstrap, seed)
        boot.update(paired_deltas.bootstrap_deltas(more or {}, w, documents, clusters, n_bootstrap, seed))
    deltas = paired_deltas.mean_deltas(more or {}, w, ratio=ratio, clusters=clusters)
    if documents is not None:
        deltas.update(paired_deltas.bits_per_byte_delta(*documents, clusters=clusters))
    tests = PairedTests(
        standard_error=se,
        p_value=paired_stats.normal_p_value(delta, se) if math.isfinite(se) else math.nan,
        minimum_detectable_effect=paired_stats.minimum_detectable_effect(se),
        accuracy_delta=accuracy, accuracy_delta_ci95=ci_accuracy, mcnemar=mcnemar,
        cluster=cluster, se_clustered=se_clustered, bootstrap=boot, deltas=deltas or None,
    )
    return delta, ci, tests


def adjust_p_values(comparisons) -> tuple:
    """Every comparison of a job with its Benjamini–Hochberg adjusted p-value set.

    Works on any comparison dataclass with ``tests`` and ``log_loss_delta_p_value_adjusted``
    (classifier, language-model and lm-eval comparisons): all the tasks and run pairs compared
    at once are one family.
    """
    from dataclasses import replace

    comparisons = tuple(comparisons)
    raw = [c.tests.p_value if c.tests is not None else math.nan for c in comparisons]
    adjusted = paired_stats.benjamini_hochberg(raw)
    return tuple(replace(c, log_loss_delta_p_value_adjusted=None if math.isnan(a) else float(a))
                 for c, a in zip(comparisons, adjusted))


@dataclass(frozen=True)
class Comparison(Notebook):
    """A candidate run against the reference run (the first).

    ``log_loss_reference`` / ``log_loss_candidate`` are the mean losses of the examples the
    delta is computed over: the paired examples, or each whole run when unpaired.
    ``metric_deltas`` are candidate minus reference of every overall metric, always over each
    whole run. Counts of ids in only one run are None when the runs have no id column.
    """

    reference: str
    candidate: str
    paired: bool
    n_paired: int
    n_reference_only: int | None
    n_candidate_only: int | None
    reference_only_ids: tuple[str, ...]
    candidate_only_ids: tuple[str, ...]
    log_loss_reference: float
    log_loss_candidate: float
    log_loss_delta: float
    log_loss_delta_ci95: tuple[float, float]
    share_improved: float | None
    share_worsened: float | None
    n_label_mismatch: int | None
    metric_deltas: dict[str, float | None]
    worst_regressions: tuple[Regression, ...] = ()
    note: str = ""
    tests: PairedTests | None = None
    log_loss_delta_p_value_adjusted: float | None = None

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``no detectable change``, from the adjusted p-value (see :func:`verdict_of`)."""
        return verdict_of(self.log_loss_delta, self.log_loss_delta_p_value_adjusted)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: one item of the ``comparisons`` list."""
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "paired": self.paired,
            "n_paired": self.n_paired,
            "n_reference_only": self.n_reference_only,
            "n_candidate_only": self.n_candidate_only,
            "reference_only_ids": list(self.reference_only_ids),
            "candidate_only_ids": list(self.candidate_only_ids),
            "log_loss_reference": self.log_loss_reference,
            "log_loss_candidate": self.log_loss_candidate,
            LOG_LOSS_DELTA: self.log_loss_delta,
            LOG_LOSS_DELTA_CI95: list(self.log_loss_delta_ci95),
            **(self.tests.to_dict(self.log_loss_delta_p_value_adjusted) if self.tests else {}),
            VERDICT: self.verdict,
            "share_improved": self.share_improved,
            "share_worsened": self.share_worsened,
            "n_label_mismatch": self.n_label_mismatch,
            "metric_deltas": dict(self.metric_deltas),
            "worst_regressions": [r.to_dict() for r in self.worst_regressions],
            "note": self.note,
        }


def metric_deltas(reference: Metrics, candidate: Metrics) -> dict[str, float | None]:
    """Candidate minus reference for every numeric metric (None where either is undefined)."""
    out: dict[str, float | None] = {}
    for name in metric_names(CLASSIFIER):
        a, b = getattr(reference, name), getattr(candidate, name)
        if a is None or b is None:
            continue  # soft-target metrics, absent for hard labels
        delta = float(b) - float(a)
        out[name] = delta if math.isfinite(delta) else None
    return out


def weighted_mean_ci(values: np.ndarray, weights: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Weighted mean of ``values`` and its normal-approximation 95% interval.

    Parameters
    ----------
    values, weights : numpy.ndarray
        Same length; weights non-negative.

    Returns
    -------
    mean : float
        NaN when the weights sum to 0.
    ci95 : tuple of float
        ``mean ± 1.96·s/√n_eff`` with n_eff = (Σw)²/Σw² and s² the weighted variance with
        Bessel's correction on n_eff; NaNs when n_eff ≤ 1.

    Examples
    --------
    >>> m, (lo, hi) = weighted_mean_ci(np.array([1.0, 2.0, 3.0]), np.ones(3))
    >>> m, round(hi - m, 6)  # s = 1, so the half-width is 1.96 / sqrt(3)
    (2.0, 1.131586)
    """
    mean, se = weighted_mean_se(values, weights)
    if not math.isfinite(se):
        return mean, (math.nan, math.nan)
    return mean, (mean - Z95 * se, mean + Z95 * se)


def _standard_error(run: RunEvaluation) -> float:
    """Standard error of a run's log loss, recovered from its 95% interval."""
    lo, hi = run.overall.log_loss_ci95
    return (hi - lo) / (2 * Z95)


def unpaired(reference: RunEvaluation, candidate: RunEvaluation, note: str,
             n_reference_only: int | None = None, n_candidate_only: int | None = None) -> Comparison:
    """Compare two runs without pairing: difference of log losses, independent errors."""
    a, b = reference.overall.log_loss, candidate.overall.log_loss
    delta = b - a
    se = math.sqrt(_standard_error(reference) ** 2 + _standard_error(candidate) ** 2)
    half = Z95 * se
    tests = PairedTests(standard_error=se, p_value=paired_stats.normal_p_value(delta, se) if math.isfinite(se) else math.nan,
                        minimum_detectable_effect=paired_stats.minimum_detectable_effect(se))
    return Comparison(
        reference=reference.name,
        candidate=candidate.name,
        paired=False,
        n_paired=0,
        n_reference_only=n_reference_only,
        n_candidate_only=n_candidate_only,
        reference_only_ids=(),
        candidate_only_ids=(),
        log_loss_reference=a,
        log_loss_candidate=b,
        log_loss_delta=delta,
        log_loss_delta_ci95=(delta - half, delta + half),
        share_improved=None,
        share_worsened=None,
        n_label_mismatch=None,
        metric_deltas=metric_deltas(reference.overall, candidate.overall),
        note=note,
        tests=tests,
    )


def _check_unique(frame, run_name: str) -> None:
    duplicated = frame["id"].duplicated()
    if duplicated.any():
        first = frame["id"][duplicated].iloc[0]
        raise InputError(
            f"run {run_name!r}: id {first!r} occurs more than once; ids must be unique within a "
            "run to pair examples across runs"
        )


def paired(reference: RunEvaluation, candidate: RunEvaluation, ref_frame, cand_frame,
           n_worst: int = 20, cluster: str | None = None, n_bootstrap: int = 0, seed: int = 0) -> Comparison:
    """Compare two runs example by example, joined on id (a hash join: linear, never quadratic).

    Parameters
    ----------
    reference, candidate : RunEvaluation
        The finished runs (for names and whole-run metric deltas).
    ref_frame, cand_frame : pandas.DataFrame
        ``id, loss, weight, label`` per example, as from :meth:`LossCollector.table`.
    n_worst : int
        How many of the examples that got worse the most to keep.
    cluster, n_bootstrap, seed
        ``--cluster`` (the frames' ``cluster`` column) and the paired bootstrap: :func:`paired_tests`.

    Returns
    -------
    Comparison
        Unpaired (``paired=False``) when the runs share no id.

    Raises
    ------
    InputError
        An id occurs twice within one run.
    """
    _check_unique(ref_frame, reference.name)
    _check_unique(cand_frame, candidate.name)
    joined = ref_frame.merge(cand_frame, on="id", how="inner", suffixes=("_ref", "_cand"), sort=False)
    n_paired = len(joined)
    n_ref_only, n_cand_only = len(ref_frame) - n_paired, len(cand_frame) - n_paired
    if n_paired == 0:
        return unpaired(
            reference, candidate,
            f"the runs share no id in column {reference.layout.id!r}: compared unpaired",
            n_ref_only, n_cand_only,
        )
    # Listed sorted so that the output does not depend on file order.
    ref_only = ref_frame["id"][~ref_frame["id"].isin(joined["id"])]
    cand_only = cand_frame["id"][~cand_frame["id"].isin(joined["id"])]

    d = joined["loss_cand"].to_numpy(np.float64) - joined["loss_ref"].to_numpy(np.float64)
    w = joined["weight_ref"].to_numpy(np.float64)
    w_sum = float(w.sum())
    delta, ci, tests = _joined_tests(joined, d, w, cluster, n_bootstrap, seed)
    mean_ref, _ = weighted_mean_ci(joined["loss_ref"].to_numpy(np.float64), w)
    mean_cand, _ = weighted_mean_ci(joined["loss_cand"].to_numpy(np.float64), w)
    mismatch = int((joined["label_ref"].to_numpy(object) != joined["label_cand"].to_numpy(object)).sum())

    notes = []
    if n_ref_only or n_cand_only:
        notes.append(
            f"{n_ref_only} example(s) only in {reference.name!r} and {n_cand_only} only in "
            f"{candidate.name!r} are not in the paired delta"
        )
    if mismatch:
        notes.append(f"{mismatch} paired example(s) have different labels in the two runs")
    if tests.cluster is not None:
        notes.append(f"standard errors clustered on {cluster!r} ({tests.cluster['n_clusters']} clusters): "
                     "the interval, p-value and minimum detectable effect use them")
    return Comparison(
        reference=reference.name,
        candidate=candidate.name,
        paired=True,
        n_paired=n_paired,
        n_reference_only=n_ref_only,
        n_candidate_only=n_cand_only,
        reference_only_ids=tuple(sorted(ref_only.astype(str)))[:MAX_LISTED_IDS],
        candidate_only_ids=tuple(sorted(cand_only.astype(str)))[:MAX_LISTED_IDS],
        log_loss_reference=mean_ref,
        log_loss_candidate=mean_cand,
        log_loss_delta=delta,
        log_loss_delta_ci95=ci,
        share_improved=float(w[d < 0].sum()) / w_sum if w_sum > 0 else math.nan,
        share_worsened=float(w[d > 0].sum()) / w_sum if w_sum > 0 else math.nan,
        n_label_mismatch=mismatch,
        metric_deltas=metric_deltas(reference.overall, candidate.overall),
        worst_regressions=_worst_regressions(joined, d, n_worst),
        note="; ".join(notes),
        tests=tests,
    )


def _joined_tests(joined, d: np.ndarray, w: np.ndarray, cluster: str | None, n_bootstrap: int, seed: int):
    """:func:`paired_tests` of the joined examples: their argmax correctness, and their reference
    run's ``--cluster`` values when the collector kept them."""
    correct = None
    if "correct_ref" in joined and "correct_cand" in joined:
        correct = (joined["correct_ref"].to_numpy(bool), joined["correct_cand"].to_numpy(bool))
    clusters = joined["cluster_ref"].to_numpy(object) if cluster and "cluster_ref" in joined else None
    more = {name: joined[f"{column}_cand"].to_numpy(np.float64) - joined[f"{column}_ref"].to_numpy(np.float64)
            for name, column in ((paired_deltas.BRIER_DELTA, "brier"), (paired_deltas.P_GOLD_DELTA, "p_gold"))
            if f"{column}_ref" in joined}
    return paired_tests(d, w, correct=correct, clusters=clusters, cluster_column=cluster,
                        n_bootstrap=n_bootstrap, seed=seed, more=more)


def _worst_regressions(joined, d: np.ndarray, n_worst: int) -> tuple[Regression, ...]:
    """The ``n_worst`` paired examples whose loss rose the most, worst first."""
    if n_worst <= 0:
        return ()
    worse = joined.assign(d=d)[d > 0]
    # Ties broken by id so that the table is the same whatever the row order.
    top = worse.sort_values(["d", "id"], ascending=[False, True], kind="mergesort").head(n_worst)
    return tuple(
        Regression(id=str(r.id), label=str(r.label_ref), loss_reference=float(r.loss_ref),
                   loss_candidate=float(r.loss_cand))
        for r in top.itertuples(index=False)
    )


def compare_runs(evaluation: Evaluation, collector: LossCollector | None = None,
                 n_worst: int = 20, *, cluster: str | None = None, n_bootstrap: int = 0,
                 seed: int = 0) -> tuple[Comparison, ...]:
    """Compare every run after the first with the first (the reference).

    Paired by id when both runs have an id column and ``collector`` observed them; otherwise
    unpaired, with the reason in ``note``. The p-values are then adjusted together
    (Benjamini–Hochberg across the job's comparisons), and the verdicts read the adjusted ones.
    ``cluster``, ``n_bootstrap`` and ``seed`` are :func:`paired`'s.
    """
    if len(evaluation.runs) < 2:
        return ()
    reference, *candidates = evaluation.runs
    ref_frame = collector.table(reference.name) if collector else None
    out = []
    for candidate in candidates:
        cand_frame = collector.table(candidate.name) if collector else None
        if ref_frame is not None and cand_frame is not None:
            out.append(paired(reference, candidate, ref_frame, cand_frame, n_worst, cluster, n_bootstrap, seed))
        else:
            reason = "no id column (--id)" if not (reference.layout.id and candidate.layout.id) else (
                "per-example losses were not collected"
            )
            out.append(unpaired(reference, candidate, f"{reason}: compared unpaired"))
    return adjust_p_values(out)
