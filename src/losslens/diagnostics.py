"""Warnings a user must not miss, each with a stable code, drawn from finished metrics.

Pure: reads a :class:`~losslens.evaluation.RunEvaluation` and the thresholds in
:class:`~losslens.options.Options`, returns warnings. Codes are part of the JSON interface
(jobs gate on them with ``--fail-on-warning``), so they never change meaning:

================================  ==============================================================
``near_zero_loss``                log loss ≤ ``--near-zero`` nats in a scope
``generalization_gap``            held-out loss > training loss by more than ``--gap``, and the
                                  95% interval of the difference excludes 0
``worse_than_prior``              log loss ≥ H(P̂): no better than predicting class frequencies
``clipped_probabilities``         true-class probabilities of 0 or 1 clipped to [eps, 1 − eps]
``confident_errors``              p(true class) ≤ ``--confident-error``
``prior_shift``                   bias-corrected KL(P̂ ‖ Q̄) > ``--prior-shift`` bits and the
                                  G-test of the label counts rejects at PRIOR_SHIFT_ALPHA
``unnormalized_rows``             probability rows that do not sum to 1
``missing_classes``               a class with no examples, or with examples but no predicted mass
``small_sample``                  fewer than ``--small-sample`` examples in a scope
================================  ==============================================================
"""

from __future__ import annotations

import math

from .evaluation import LN2, Z95, LossWarning, Metrics, RunEvaluation
from .formatting import plural
from .options import Options

#: prior_shift needs the label counts to differ from n·Q̄ at this significance level, besides
#: the corrected KL exceeding --prior-shift: sampling noise alone inflates the plug-in KL by
#: about (k − 1) / (2n ln 2) bits, 0.24 bits at k = 1000, n = 3000.
PRIOR_SHIFT_ALPHA = 0.01

#: Every warning code, in the order they are reported (gates check names against this).
WARNING_CODES = (
    "near_zero_loss", "generalization_gap", "worse_than_prior", "clipped_probabilities",
    "confident_errors", "prior_shift", "unnormalized_rows", "missing_classes", "small_sample",
)

#: Split names taken as training data when ``--train-split`` is not given.
TRAIN_SPLITS = ("train", "training")


def _scopes(run: RunEvaluation):
    """``(scope, kind, metrics)`` for every scope: overall, each split, each slice value."""
    yield "overall", "overall", run.overall
    for split, metrics in run.by_split.items():
        yield f"split={split}", "split", metrics
    for column, values in run.by_slice.items():
        for value, metrics in values.items():
            yield f"{column}={value}", "slice", metrics


def _half_width(metrics: Metrics) -> float:
    lo, hi = metrics.log_loss_ci95
    return (hi - lo) / 2


def _interval(lo: float, hi: float) -> str:
    return f"[{lo:.4f}, {hi:.4f}]" if not math.isnan(lo) else "[n/a: too few examples]"


def train_split_of(run: RunEvaluation, options: Options) -> str | None:
    """The name of the training split, if the run has one."""
    if options.train_split is not None:
        return options.train_split if options.train_split in run.by_split else None
    return next((s for s in run.by_split if s.lower() in TRAIN_SPLITS), None)


def find_warnings(run: RunEvaluation, options: Options | None = None) -> tuple[LossWarning, ...]:
    """Return the warnings for one run, the most alarming kinds first.

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
    options = options or Options()
    train = train_split_of(run, options)
    found: list[LossWarning] = []
    found += _near_zero(run, options, train)
    found += _generalization_gap(run, options, train)
    found += _worse_than_prior(run)
    found += _clipped_and_confident(run, options)
    found += _prior_shift(run, options)
    found += _unnormalized(run)
    found += _missing_classes(run)
    found += _small_samples(run, options)
    return tuple(found)


def _near_zero(run, options: Options, train) -> list[LossWarning]:
    found = []
    for scope, kind, m in _scopes(run):
        if m.n_examples == 0 or math.isnan(m.log_loss) or m.log_loss > options.near_zero:
            continue
        if kind == "split" and scope == f"split={train}":
            why = ("On training data this usually means the model memorised its examples "
                   "(overfitting): compare with the held-out splits.")
        elif kind == "split":
            why = ("On held-out data this usually means the label leaked into the features, or the "
                   "same rows are in training and evaluation data: check for duplicates and for "
                   "features computed from the label.")
        else:
            why = ("If these are training examples, the model has memorised them (overfitting); if "
                   "held-out, suspect leakage of the label into the features or duplicated rows.")
        found.append(LossWarning(
            "near_zero_loss",
            f"log loss {m.log_loss:.3g} nats is at or below {options.near_zero:g} over "
            f"{plural(m.n_examples, 'example')}; real problems are rarely this easy. {why}",
            scope,
        ))
    return found


def _generalization_gap(run, options: Options, train) -> list[LossWarning]:
    if train is None:
        return []
    base = run.by_split[train]
    found = []
    for split, held in run.by_split.items():
        if split == train or held.n_examples == 0:
            continue
        difference = held.log_loss - base.log_loss
        se = math.hypot(_half_width(held) / Z95, _half_width(base) / Z95)
        lo, hi = difference - Z95 * se, difference + Z95 * se
        relative = difference / base.log_loss if base.log_loss > 0 else math.inf
        if relative > options.gap and lo > 0:
            found.append(LossWarning(
                "generalization_gap",
                f"log loss on {split!r} is {held.log_loss:.4f} nats against {base.log_loss:.4f} on "
                f"{train!r} ({relative:+.0%}; difference {difference:.4f}, 95% interval "
                f"{_interval(lo, hi)}). The model does worse on data it has not seen: check for "
                "overfitting (regularise, stop earlier, more data) or a shift between the splits.",
                f"split={split}",
            ))
    return found


def _worse_than_prior(run) -> list[LossWarning]:
    found = []
    for scope, _, m in _scopes(run):
        baseline = m.label_entropy_bits * LN2
        if m.n_examples == 0 or math.isnan(m.log_loss) or m.log_loss < baseline:
            continue
        lo, hi = m.log_loss_ci95
        found.append(LossWarning(
            "worse_than_prior",
            f"log loss {m.log_loss:.4f} nats (95% interval {_interval(lo, hi)}) is no better than "
            f"the {baseline:.4f} nats of always predicting the class frequencies (H(P̂)); the model's "
            "probabilities carry no information here. Check that predictions and labels belong to "
            "the same rows (a join or shuffle gone wrong) and that columns map to the right classes.",
            scope,
        ))
    return found


def _clipped_and_confident(run, options: Options) -> list[LossWarning]:
    m = run.overall
    found = []
    if m.n_clipped:
        found.append(LossWarning(
            "clipped_probabilities",
            f"{plural(m.n_clipped, 'row')} gave their true class a probability of 0 or 1 (within 2.2e-16), "
            f"clipped to [eps, 1 − eps] as scikit-learn does; they carry {m.clipped_loss_share:.1%} "
            "of the total loss (a 0 for the true class costs 36.04 nats). Check for hard 0/1 "
            "outputs (trees, rounding, naive Bayes underflow); pass logits if you have them.",
        ))
    if m.n_confident_errors:
        found.append(LossWarning(
            "confident_errors",
            f"{plural(m.n_confident_errors, 'example')} gave their true class a probability of at most "
            f"{options.confident_error:g} (a loss of at least {-math.log(options.confident_error):.1f} "
            f"nats each) and carry {m.confident_error_loss_share:.1%} of the total loss. See the "
            "worst-examples table: check those labels for errors and those inputs for corruption.",
        ))
    return found


def prior_shift_fires(metrics: Metrics, threshold: float) -> bool:
    """Whether a scope's label distribution has shifted away from the predicted one.

    With hard labels: the bias-corrected KL(P̂ ‖ Q̄) exceeds ``threshold`` bits AND the
    G-test of the label counts against n·Q̄ rejects at ``PRIOR_SHIFT_ALPHA``; sampling noise
    alone can satisfy neither for long. Soft targets have no sampling noise in P̂ and no test:
    there the plug-in KL decides.
    """
    if not metrics.n_examples:
        return False
    if metrics.kl_empirical_bits_corrected is None:
        return metrics.kl_empirical_bits > threshold
    p_value = metrics.prior_shift_p_value
    significant = p_value is not None and p_value < PRIOR_SHIFT_ALPHA  # NaN compares False
    return metrics.kl_empirical_bits_corrected > threshold and significant


def _prior_shift(run, options: Options) -> list[LossWarning]:
    found = []
    scopes = [("overall", run.overall)] + [(f"split={s}", m) for s, m in run.by_split.items()]
    for scope, m in scopes:
        if not prior_shift_fires(m, options.prior_shift):
            continue
        corrected = m.kl_empirical_bits_corrected
        if corrected is None or math.isinf(corrected):
            # Soft targets, or a class with examples and no predicted mass (infinite KL).
            evidence = f"KL(P̂‖Q̄) = {m.kl_empirical_bits:.4f} bits exceeds {options.prior_shift:g}"
        else:
            evidence = (
                f"KL(P̂‖Q̄) = {m.kl_empirical_bits:.4f} bits ({corrected:.4f} after removing the "
                f"{m.kl_empirical_bits - corrected:.4f} bits that sampling noise alone would give) "
                f"exceeds {options.prior_shift:g}, and the label counts differ from the predicted "
                f"ones beyond chance (G-test p = {m.prior_shift_p_value:.2g})"
            )
        found.append(LossWarning(
            "prior_shift",
            f"{evidence}: the model predicts the classes at other rates than they occur (compare "
            "the label and mean predicted distributions). Check for a change of class balance "
            "since training, or recalibrate.",
            scope,
        ))
    return found


def _unnormalized(run) -> list[LossWarning]:
    m = run.overall
    if not m.n_unnormalized:
        return []
    layout = run.layout
    extra = getattr(layout, "row_sums_off_by", None)
    if extra is not None:
        # Renormalizing would spread the feature column's values over the classes: a worse
        # number than either. Name the column instead.
        others = ",".join(c for c in layout.prediction_columns if c != extra)
        advice = (f"without column {extra!r} the rows sum to 1, so it is probably not a class's "
                  f"probability: leave it out with --probs {others}")
    else:
        advice = "check that the columns are the probabilities of all classes, or pass --renormalize"
    return [LossWarning(
        "unnormalized_rows",
        f"{m.n_unnormalized} of {plural(m.n_examples, 'row')} ({m.n_unnormalized / m.n_examples:.1%}) have "
        f"probabilities that do not sum to 1 (tolerance: relative {layout.row_sum_tolerance:.2g}, "
        f"absolute 1e-8). They were scored as given, as scikit-learn does; {advice}.",
    )]


def _missing_classes(run) -> list[LossWarning]:
    if run.layout.target_columns is not None:
        return []
    absent = [c for c, m in run.by_class.items() if m.weight_sum == 0]
    massless = [c for c, m in run.by_class.items() if m.weight_sum > 0 and not m.mean_predicted_prob > 0]
    found = []
    if absent:
        found.append(LossWarning(
            "missing_classes",
            f"{plural(len(absent), 'class', 'classes')} {'has' if len(absent) == 1 else 'have'} a prediction column but no examples: "
            f"{', '.join(absent[:10])}{' …' if len(absent) > 10 else ''}. Their per-class numbers "
            "are empty; check that the evaluation data covers every class.",
        ))
    if massless:
        found.append(LossWarning(
            "missing_classes",
            f"{plural(len(massless), 'class', 'classes')} {'has' if len(massless) == 1 else 'have'} examples but the model never gives them any probability: "
            f"{', '.join(massless[:10])}{' …' if len(massless) > 10 else ''}. Check the mapping of "
            "columns to classes and whether the model was trained on these classes.",
        ))
    return found


def _small_samples(run, options: Options) -> list[LossWarning]:
    found = []
    for scope, _, m in _scopes(run):
        if 0 < m.n_examples < options.small_sample:
            found.append(LossWarning(
                "small_sample",
                f"only {plural(m.n_examples, 'example')} (fewer than {options.small_sample}); this scope's "
                "numbers and intervals are rough.",
                scope,
            ))
    return found
