"""The terminal summary: a plain-text table per run. Pure: returns a string."""

from __future__ import annotations

import math

from .evaluation import Evaluation, Metrics, RunEvaluation

#: (header, attribute, format) of the summary table's columns.
COLUMNS = (
    ("n", "n_examples", "{:d}"),
    ("log loss", "log_loss", "{:.4f}"),
    ("95% CI", "log_loss_ci95", None),
    ("bits", "cross_entropy_bits", "{:.4f}"),
    ("perplexity", "perplexity", "{:.3f}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("brier", "brier_score", "{:.4f}"),
    ("ECE", "ece", "{:.4f}"),
    ("H(P̂) bits", "label_entropy_bits", "{:.4f}"),
    ("KL(P̂‖Q̄) bits", "kl_empirical_bits", "{:.4f}"),
    ("info gain bits", "information_gain_bits", "{:.4f}"),
)


def _cell(metrics: Metrics, attribute: str, fmt: str | None) -> str:
    value = getattr(metrics, attribute)
    if attribute == "log_loss_ci95":
        lo, hi = value
        return "–" if math.isnan(lo) else f"{lo:.4f}–{hi:.4f}"
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return fmt.format(value)


def text_table(rows: list[list[str]], left: int = 1, rule: bool = True) -> list[str]:
    """Lines of an aligned plain-text table: the first ``left`` columns flush left, the rest
    flush right; ``rows[0]`` is the header, underlined when ``rule`` is set."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            [c.ljust(w) for c, w in zip(row[:left], widths[:left])]
            + [c.rjust(w) for c, w in zip(row[left:], widths[left:])]
        ).rstrip()
        for row in rows
    ]
    if rule:
        lines.insert(1, "-" * len(lines[0]))
    return lines


def _table(rows: list[tuple[str, Metrics]]) -> list[str]:
    header = ["scope"] + [h for h, _, _ in COLUMNS]
    body = [[scope] + [_cell(m, a, f) for _, a, f in COLUMNS] for scope, m in rows]
    return text_table([header, *body])


def _pair(interval) -> str:
    return f"[{interval[0]:.4f}, {interval[1]:.4f}]"


#: Per-class rows shown in the terminal; the JSON and HTML report have every class.
MAX_CLASS_ROWS = 20


def _class_table(run: RunEvaluation) -> list[str]:
    """Per true class, the largest classes first: loss, recall, precision, shares, ECE."""
    header = ["class", "n", "log loss", "recall", "precision", "actual", "predicted", "ECE"]
    ranked = sorted(run.by_class.items(), key=lambda kv: (-kv[1].weight_sum, kv[0]))
    body = []
    for name, c in ranked[:MAX_CLASS_ROWS]:
        cells = [c.log_loss, c.recall, c.precision, c.actual_share, c.predicted_share, c.ece]
        body.append([name, str(c.n_examples)] + ["–" if math.isnan(v) else f"{v:.4f}" for v in cells])
    lines = text_table([header, *body])
    if len(ranked) > MAX_CLASS_ROWS:
        lines.append(f"… {len(ranked) - MAX_CLASS_ROWS} more classes in the JSON and HTML report")
    return lines


def run_summary(run: RunEvaluation) -> str:
    """The summary of one run: what was read, the table, and the warnings."""
    layout = run.layout
    lines = [
        f"run {run.name!r}: {run.overall.n_examples} examples, {layout.n_classes} classes, "
        f"from {', '.join(run.inputs[:3])}{' …' if len(run.inputs) > 3 else ''}",
    ]
    described = f"{layout.kind} ({', '.join(layout.prediction_columns[:4])}{', …' if len(layout.prediction_columns) > 4 else ''})"
    lines.append(f"layout: label {layout.label!r}, {described}" if layout.label else f"layout: soft targets, {described}")
    for note in layout.notes:
        lines.append(f"  detected: {note}")
    rows: list[tuple[str, Metrics]] = [("overall", run.overall)]
    rows += [(f"split={k}", m) for k, m in run.by_split.items()]
    for column, values in run.by_slice.items():
        rows += [(f"{column}={v}", m) for v, m in values.items()]
    lines.append("")
    lines += _table(rows)
    overall = run.overall
    for scope, m in rows:
        if m.bootstrap:
            b = m.bootstrap
            lines.append(
                f"{scope}: {b['method']} ({b['n_resamples']} resamples, seed {b['seed']}) 95% intervals: "
                f"log loss {_pair(b['log_loss'])}, accuracy {_pair(b['accuracy'])}, ECE {_pair(b['ece'])}"
            )
    lines.append("")
    lines += _class_table(run)
    if run.brier_decomposition:
        d = run.brier_decomposition
        lines.append(
            f"Brier {overall.brier_score:.4f} = reliability {d['reliability']:.4f} − resolution "
            f"{d['resolution']:.4f} + uncertainty {d['uncertainty']:.4f} (binning residual {d['residual']:+.4f})"
        )
    if overall.target_entropy_bits is not None:
        lines.append(
            f"soft targets: cross-entropy {overall.cross_entropy_bits:.4f} bits = target entropy "
            f"{overall.target_entropy_bits:.4f} + KL {overall.kl_bits:.4f}"
        )
    if run.warnings:
        lines.append("")
        lines.append(f"warnings ({len(run.warnings)}):")
        for warning in run.warnings:
            lines.append(f"  ! {warning.code} [{warning.scope}]: {warning.message}")
    return "\n".join(lines)


def summary(evaluation: Evaluation) -> str:
    """The terminal summary of every run, separated by blank lines."""
    return "\n\n".join(run_summary(r) for r in evaluation.runs) + "\n"
