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
- ``share_improved`` / ``share_worsened`` = weighted share with dᵢ < 0 / dᵢ > 0.

Without shared ids the comparison is unpaired: the difference of the two runs' log losses
with an interval from their independent standard errors, ``paired: false``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalog import CLASSIFIER, metric_names
from .errors import InputError
from .evaluation import LN2, Z95, Evaluation, Metrics, RunEvaluation
from .notebook import Notebook

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


class LossCollector:
    """Engine observer that keeps ``(id, loss, weight, label)`` of every example of every run.

    Memory is about 20 bytes per example plus the id strings; nothing else of a batch is
    kept. Runs without an id column are not collected (they can only be compared unpaired).
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

    def table(self, run_name: str):
        """The run's examples as a pandas DataFrame ``id, loss, weight, label``, or None."""
        import pandas as pd
        import pyarrow as pa

        store = self._runs.get(run_name)
        if store is None or not store.ids:
            return None
        classes = np.asarray(store.classes, dtype=object)
        return pd.DataFrame({
            "id": pa.chunked_array(store.ids, type=pa.string()).to_pandas(),
            "loss": np.concatenate(store.loss),
            "weight": np.concatenate(store.weight),
            "label": classes[np.concatenate(store.label)],
        })


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

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``no clear difference``: whether the 95% interval excludes 0."""
        lo, hi = self.log_loss_delta_ci95
        if math.isnan(lo) or math.isnan(hi):
            return "no clear difference"
        if hi < 0:
            return "better"
        if lo > 0:
            return "worse"
        return "no clear difference"

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
            "log_loss_delta": self.log_loss_delta,
            "log_loss_delta_ci95": list(self.log_loss_delta_ci95),
            "verdict": self.verdict,
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
    w_sum = float(weights.sum())
    if w_sum <= 0:
        return math.nan, (math.nan, math.nan)
    mean = float(weights @ values) / w_sum
    n_eff = w_sum**2 / float(weights @ weights)
    if n_eff <= 1:
        return mean, (math.nan, math.nan)
    # Centred before squaring: the differences are small and Σwd²/Σw − d̄² would cancel.
    centred = values - mean
    variance = float(weights @ (centred * centred)) / w_sum * n_eff / (n_eff - 1)
    half = Z95 * math.sqrt(variance / n_eff)
    return mean, (mean - half, mean + half)


def _standard_error(run: RunEvaluation) -> float:
    """Standard error of a run's log loss, recovered from its 95% interval."""
    lo, hi = run.overall.log_loss_ci95
    return (hi - lo) / (2 * Z95)


def unpaired(reference: RunEvaluation, candidate: RunEvaluation, note: str,
             n_reference_only: int | None = None, n_candidate_only: int | None = None) -> Comparison:
    """Compare two runs without pairing: difference of log losses, independent errors."""
    a, b = reference.overall.log_loss, candidate.overall.log_loss
    delta = b - a
    half = Z95 * math.sqrt(_standard_error(reference) ** 2 + _standard_error(candidate) ** 2)
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
           n_worst: int = 20) -> Comparison:
    """Compare two runs example by example, joined on id (a hash join: linear, never quadratic).

    Parameters
    ----------
    reference, candidate : RunEvaluation
        The finished runs (for names and whole-run metric deltas).
    ref_frame, cand_frame : pandas.DataFrame
        ``id, loss, weight, label`` per example, as from :meth:`LossCollector.table`.
    n_worst : int
        How many of the examples that got worse the most to keep.

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
    delta, ci = weighted_mean_ci(d, w)
    mean_ref, _ = weighted_mean_ci(joined["loss_ref"].to_numpy(np.float64), w)
    mean_cand, _ = weighted_mean_ci(joined["loss_cand"].to_numpy(np.float64), w)
    mismatch = int((joined["label_ref"].to_numpy(object) != joined["label_cand"].to_numpy(object)).sum())

    worst = ()
    if n_worst > 0:
        worse = joined.assign(d=d)[d > 0]
        # Ties broken by id so that the table is the same whatever the row order.
        top = worse.sort_values(["d", "id"], ascending=[False, True], kind="mergesort").head(n_worst)
        worst = tuple(
            Regression(id=str(r.id), label=str(r.label_ref), loss_reference=float(r.loss_ref),
                       loss_candidate=float(r.loss_cand))
            for r in top.itertuples(index=False)
        )
    notes = []
    if n_ref_only or n_cand_only:
        notes.append(
            f"{n_ref_only} example(s) only in {reference.name!r} and {n_cand_only} only in "
            f"{candidate.name!r} are not in the paired delta"
        )
    if mismatch:
        notes.append(f"{mismatch} paired example(s) have different labels in the two runs")
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
        worst_regressions=worst,
        note="; ".join(notes),
    )


def compare_runs(evaluation: Evaluation, collector: LossCollector | None = None,
                 n_worst: int = 20) -> tuple[Comparison, ...]:
    """Compare every run after the first with the first (the reference).

    Paired by id when both runs have an id column and ``collector`` observed them; otherwise
    unpaired, with the reason in ``note``.
    """
    if len(evaluation.runs) < 2:
        return ()
    reference, *candidates = evaluation.runs
    ref_frame = collector.table(reference.name) if collector else None
    out = []
    for candidate in candidates:
        cand_frame = collector.table(candidate.name) if collector else None
        if ref_frame is not None and cand_frame is not None:
            out.append(paired(reference, candidate, ref_frame, cand_frame, n_worst))
        else:
            reason = "no id column (--id)" if not (reference.layout.id and candidate.layout.id) else (
                "per-example losses were not collected"
            )
            out.append(unpaired(reference, candidate, f"{reason}: compared unpaired"))
    return tuple(out)

