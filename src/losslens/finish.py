"""A run's accumulators finished into its :class:`~losslens.evaluation.RunEvaluation`.

The step between the engines (local and Dask), which sum, and the result types in
:mod:`losslens.evaluation`, which :func:`~losslens.evaluation.metrics_of` and its siblings fill:
every scope of the run finished, splits in their usual order (train before validation before
test), slices ranked by how much worse than the whole run they are, ``(other)`` last.
"""

from __future__ import annotations

import math

from .accumulate import OTHER, RunAccumulator, fold_smallest
from .evaluation import (
    Metrics, RunEvaluation, brier_decomposition, calibration_bins, class_metrics_of, loss_quantiles, metrics_of,
)
from .many_classes import Confusion, _ratio, confused_pairs_of, worst_classes_of
from .schema import Layout


def run_evaluation_of(
    acc: RunAccumulator, layout: Layout, name: str, inputs: tuple[str, ...], max_slices: int = 20
) -> RunEvaluation:
    """Finish a run's accumulators into a :class:`RunEvaluation` (without warnings).

    Slice columns keep their ``max_slices`` largest values; the rest are merged into
    ``(other)`` (accumulators add, so its numbers are exact). Slice values are ranked by how
    much worse than the whole run they are, ``(other)`` last.
    """
    soft = layout.target_columns is not None
    overall = acc.overall
    overall_metrics = metrics_of(overall, soft)
    w = overall.weight_sum
    by_slice = {}
    for column, values in acc.by_slice.items():
        finished = {v: metrics_of(a, soft) for v, a in fold_smallest(values, max_slices).items()}
        by_slice[column] = dict(sorted(finished.items(), key=lambda kv: _slice_rank(kv, overall_metrics)))
    positive = layout.positive_index if layout.positive_index is not None else 1
    return RunEvaluation(
        name=name,
        inputs=inputs,
        layout=layout,
        overall=overall_metrics,
        by_split={k: metrics_of(a, soft) for k, a in sorted(acc.by_split.items(), key=lambda kv: _split_order(kv[0]))},
        by_slice=by_slice,
        by_class=class_metrics_of(overall, layout.classes),
        calibration=tuple(calibration_bins(overall)),
        label_distribution={c: _ratio(overall.class_weight[i], w) for i, c in enumerate(layout.classes)},
        mean_predicted_distribution={c: _ratio(overall.prob_sum[i], w) for i, c in enumerate(layout.classes)},
        loss_histogram=tuple(int(x) for x in overall.loss_histogram),
        loss_quantiles=loss_quantiles(overall),
        worst=overall.worst,
        brier_decomposition=brier_decomposition(overall, positive),
        worst_classes=tuple(worst_classes_of(overall, layout.classes)),
        confused_pairs=tuple(confused_pairs_of(overall, layout.classes)),
        confusion=Confusion.of(overall) if overall.class_calibration else None,
    )


def _slice_rank(item, overall: Metrics):
    value, metrics = item
    excess = metrics.log_loss - overall.log_loss
    return (value == OTHER, -excess if not math.isnan(excess) else math.inf, value)


#: Splits shown in this order when present; others follow alphabetically.
_SPLIT_ORDER = ("train", "training", "valid", "validation", "val", "dev", "test", "holdout")


def _split_order(name: str):
    lowered = name.lower()
    return (_SPLIT_ORDER.index(lowered) if lowered in _SPLIT_ORDER else len(_SPLIT_ORDER), name)
