"""Warnings a user must not miss, each with a stable code, drawn from finished metrics.

Pure: reads a :class:`~losslens.evaluation.RunEvaluation`, returns warnings. Codes are part
of the JSON interface (jobs gate on them), so they never change meaning.
"""

from __future__ import annotations

from .evaluation import LossWarning, Metrics, RunEvaluation
from .options import Options


def _scopes(run: RunEvaluation):
    """Every scope with its metrics: overall, each split, each slice value."""
    yield "overall", run.overall
    for split, metrics in run.by_split.items():
        yield f"split={split}", metrics
    for column, values in run.by_slice.items():
        for value, metrics in values.items():
            yield f"{column}={value}", metrics


def find_warnings(run: RunEvaluation, options: Options | None = None) -> tuple[LossWarning, ...]:
    """Return the warnings for one run, overall first.

    Parameters
    ----------
    run : RunEvaluation
        A finished run.
    options : Options, optional
        The thresholds; defaults when omitted.

    Returns
    -------
    tuple of LossWarning
    """
    found: list[LossWarning] = []
    overall: Metrics = run.overall
    if overall.n_unnormalized:
        share = overall.n_unnormalized / overall.n_examples
        found.append(LossWarning(
            "unnormalized_rows",
            f"{overall.n_unnormalized} of {overall.n_examples} rows ({share:.1%}) have probabilities "
            "that do not sum to 1 (tolerance: relative 1.5e-8, absolute 1e-8). They were scored as "
            "given, as scikit-learn does; check that the columns are probabilities of all classes, "
            "or pass --renormalize.",
        ))
    if overall.n_clipped:
        found.append(LossWarning(
            "clipped_probabilities",
            f"{overall.n_clipped} rows gave their true class a probability of exactly 0 or 1 (or "
            f"closer than 2.2e-16); these were clipped to [eps, 1-eps] as scikit-learn does, and "
            f"carry {overall.clipped_loss_share:.1%} of the total loss. A 0 for the true class costs "
            "36.04 nats; check for overconfident or hard-coded probabilities.",
        ))
    empty = [name for name, c in run.by_class.items() if c.weight_sum == 0]
    if empty and run.layout.target_columns is None:
        found.append(LossWarning(
            "missing_classes",
            f"{len(empty)} class(es) have a prediction column but no examples: "
            f"{', '.join(empty[:10])}{' …' if len(empty) > 10 else ''}. Their per-class numbers are empty.",
        ))
    return tuple(found)
