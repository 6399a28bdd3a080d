"""The terminal reporter: all text the command prints about a job. Pure: returns strings.

Reads a :class:`~losslens.job.JobResult` (or its parts) and formats every value through
:mod:`losslens.formatting` and every table's metrics through :mod:`losslens.catalog`, as the
HTML reporter does. The text fits the terminal: tables wider than ``width`` columns are split
into parts that each repeat the first column, long lines are wrapped, names from the data are
shortened, and no control character from the data reaches the terminal.
"""

from __future__ import annotations

import shutil

import losslens.formatting as fmt
from .catalog import LOG_LOSS, LOG_LOSS_DELTA_CI95, LOG_LOSS_DELTA_P_VALUE, view, view_present
from .decision_text import bootstrap_clauses, calibration_intervals, delta_clauses
from .evaluation import Evaluation, Metrics, RunEvaluation

#: Per-class rows shown in the terminal; the JSON and HTML report have every class.
MAX_CLASS_ROWS = 20
#: Classes listed under "classes that cost most" (the JSON's worst_classes has up to 20).
MAX_WORST_CLASS_ROWS = 5
#: Width used when nothing says otherwise (not a terminal, no ``COLUMNS``).
DEFAULT_WIDTH = 80
#: The narrowest layout the tables are made for; narrower terminals wrap.
MIN_WIDTH = 40


def terminal_width() -> int:
    """Columns of the terminal: ``COLUMNS`` if set, the terminal's size, else 80."""
    return max(shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns, MIN_WIDTH)


# --------------------------------------------------------------------------- layout helpers


def _pad(cell: str, size: int, right: bool) -> str:
    gap = " " * max(size - fmt.width(cell), 0)
    return gap + cell if right else cell + gap


def _table_lines(rows: list[list[str]], left: int, rule: bool) -> list[str]:
    widths = [max(fmt.width(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(_pad(c, w, i >= left) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    ]
    if rule:
        lines.insert(1, "-" * fmt.width(lines[0]))
    return lines


def text_table(rows: list[list[str]], left: int = 1, rule: bool = True, width: int | None = None) -> list[str]:
    """Lines of an aligned plain-text table that fits ``width`` columns.

    The first ``left`` columns are flush left, the rest flush right; ``rows[0]`` is the
    header, underlined when ``rule`` is set. When the table is wider than ``width``, its
    columns are split into parts stacked one below the other, each repeating the first
    ``left`` columns (cut to a third of the width each if they alone are too wide).
    """
    if width is None:
        return _table_lines(rows, left, rule)
    widths = [max(fmt.width(r[i]) for r in rows) for i in range(len(rows[0]))]
    if sum(widths) + 2 * (len(widths) - 1) <= width:
        return _table_lines(rows, left, rule)
    keep = max(width // (3 * max(left, 1)), 8)
    # Each name column is shortened as a set, so that two names never print alike.
    shown = [fmt.shorten_names([r[i] for r in rows[1:]], keep) for i in range(left)]
    rows = [[fmt.shorten(c, keep) if i < left else c for i, c in enumerate(rows[0])]] + [
        [shown[i][c] if i < left else c for i, c in enumerate(r)] for r in rows[1:]]
    fixed = sum(min(w, keep) for w in widths[:left]) + 2 * left
    parts, current, used = [], [], fixed
    for i in range(left, len(widths)):
        if current and used + widths[i] > width:
            parts.append(current)
            current, used = [], fixed
        current.append(i)
        used += widths[i] + 2
    parts.append(current)
    lines: list[str] = []
    for k, part in enumerate(parts):
        if k:
            lines.append("")
        lines += _table_lines([r[:left] + [r[j] for j in part] for r in rows], left, rule)
    return lines


def _wrap(line: str, width: int) -> list[str]:
    """One line cut into lines of at most ``width`` columns, at spaces where possible."""
    if fmt.width(line) <= width:
        return [line]
    lead = " " * (len(line) - len(line.lstrip(" ")))
    indent = lead + "    " if len(lead) + 4 < width // 2 else ""
    out, current = [], lead
    for word in line.lstrip(" ").split(" "):
        candidate = f"{current} {word}" if current.strip() else current + word
        if fmt.width(candidate) <= width:
            current = candidate
            continue
        if current.strip():
            out.append(current)
        current = indent + word
        while fmt.width(current) > width:  # a word longer than a line: cut it
            head = fmt.shorten(current, width)[:-1]
            out.append(head)
            current = indent + current[len(head):]
    if current.strip():
        out.append(current)
    return out


def fit(text: str, width: int | None = None) -> str:
    """``text`` with every line made visible (no raw control characters) and wrapped to ``width``."""
    width = width or terminal_width()
    lines = [fmt.visible(line) for line in text.split("\n")]
    return "\n".join(part for line in lines for part in _wrap(line, width))


def _list(names, width: int, limit: int = 3) -> str:
    # Paths are shortened only when a line could not hold one: they are what the user looks for.
    names = [fmt.shorten(n, max(width - 4, 20)) for n in names]
    return ", ".join(names[:limit]) + (" …" if len(names) > limit else "")


# --------------------------------------------------------------------------- one run


def _scope_rows(rows: list[tuple[str, Metrics]], width: int) -> list[str]:
    # Top-5 accuracy and classwise ECE only where some scope has them: no empty column.
    columns = view("scopes") + view_present("when_present", [metrics for _, metrics in rows])
    header = ["scope"] + [m.label for m in columns]
    names = fmt.shorten_names(scope for scope, _ in rows)
    body = [[names[scope]] + [fmt.value(m.name, getattr(metrics, m.name)) for m in columns]
            for scope, metrics in rows]
    return text_table([header, *body], width=width)


def _calibration_rows(rows: list[tuple[str, Metrics]], width: int) -> list[str]:
    """The equal-mass ECE and the temperature split per scope, then the overall split in words."""
    columns = view_present("calibration_scopes", [metrics for _, metrics in rows])
    if not columns:
        return []
    body = [[fmt.name(scope)] + [fmt.value(m.name, getattr(metrics, m.name)) for m in columns]
            for scope, metrics in rows]
    words = fmt.fixable(rows[0][1])
    intervals = calibration_intervals(rows[0][1])
    # Headed "calibration" (not "scope") so that the table reads as its own block.
    return ["", *text_table([["calibration"] + [m.label for m in columns], *body], width=width),
            *([f"overall: {words}"] if words else []),
            *([f"overall, bootstrap: {intervals}"] if intervals else [])]


def _class_table(run: RunEvaluation, width: int) -> list[str]:
    """Per true class, the largest classes first: loss, recall, precision, shares, ECE."""
    header = ["class", "examples", "log loss", "recall", "precision", "actual", "predicted", "ECE"]
    ranked = sorted(run.by_class.items(), key=lambda kv: (-kv[1].weight_sum, kv[0]))
    body = []
    names = fmt.shorten_names(name for name, _ in ranked[:MAX_CLASS_ROWS])
    for name, c in ranked[:MAX_CLASS_ROWS]:
        body.append([names[name], fmt.count(c.n_examples), fmt.number(c.log_loss), fmt.number(c.recall),
                     fmt.number(c.precision), fmt.number(c.actual_share), fmt.number(c.predicted_share),
                     fmt.number(c.ece)])
    lines = text_table([header, *body], width=width)
    if len(ranked) > MAX_CLASS_ROWS:
        lines.append(f"… {len(ranked) - MAX_CLASS_ROWS} more classes in the JSON and HTML report (all: --per-class FILE.csv)")
    return lines


def _worst_classes(run: RunEvaluation, width: int) -> list[str]:
    """The classes that cost most (excess loss), with what they are most often taken for.

    Shown when the class table above cannot list every class: with 1,000 classes the largest
    ones are rarely where the loss comes from.
    """
    worst = [c for c in run.worst_classes if fmt.finite(c.excess_loss) and c.excess_loss > 0][:MAX_WORST_CLASS_ROWS]
    if len(run.by_class) <= MAX_CLASS_ROWS or not worst:
        return []
    header = ["class", "most confused with", "examples", "log loss", "excess", "recall"]
    names = fmt.shorten_names([c.name for c in worst], 24)
    confused = fmt.shorten_names([c.most_confused_with for c in worst if c.most_confused_with is not None], 24)
    body = [[names[c.name], confused[c.most_confused_with] if c.most_confused_with is not None else fmt.MISSING,
             fmt.count(c.n_examples), fmt.number(c.log_loss), fmt.signed(c.excess_loss), fmt.number(c.recall)]
            for c in worst]
    # "excess": what the class adds to the overall log loss (the JSON's worst_classes).
    return ["", "classes that cost most (excess loss, nats):", *text_table([header, *body], left=2, width=width)]


def _bootstrap_line(scope: str, b: dict) -> str:
    intervals = ", ".join(f"{m.label} {_pair(b[m.name])}" for m in view("bootstrap") if m.name in b)
    return (f"{fmt.name(scope)}: {b['method']} ({fmt.plural(b['n_resamples'], 'resample')}, seed {b['seed']}) "
            f"95% intervals: {intervals}")


def _pair(interval) -> str:
    return f"[{fmt.number(interval[0])}, {fmt.number(interval[1])}]"


def run_summary(run: RunEvaluation, width: int | None = None) -> str:
    """The summary of one run: what was read, the table of scopes, classes and the warnings."""
    width = width or terminal_width()
    layout = run.layout
    lines = [
        f"run {fmt.name(run.name)!r}: {fmt.plural(run.overall.n_examples, 'example')}, "
        f"{fmt.plural(layout.n_classes, 'class', 'classes')}, from {_list(run.inputs, width)}",
    ]
    described = f"{layout.kind} ({', '.join(fmt.name(c) for c in layout.prediction_columns[:4])}" \
                f"{', …' if len(layout.prediction_columns) > 4 else ''})"
    lines.append(f"layout: label {fmt.name(layout.label)!r}, {described}" if layout.label
                 else f"layout: soft targets, {described}")
    for note in layout.notes:
        lines.append(f"  detected: {note}")
    rows: list[tuple[str, Metrics]] = [("overall", run.overall)]
    rows += [(f"split={k}", m) for k, m in run.by_split.items()]
    for column, values in run.by_slice.items():
        rows += [(f"{column}={v}", m) for v, m in values.items()]
    lines.append("")
    lines += _scope_rows(rows, width)
    lines += _calibration_rows(rows, width)
    overall = run.overall
    lines += [_bootstrap_line(scope, m.bootstrap) for scope, m in rows if m.bootstrap]
    lines.append("")
    lines += _class_table(run, width)
    lines += _worst_classes(run, width)
    if run.brier_decomposition:
        d = run.brier_decomposition
        lines.append(
            f"Brier {fmt.number(overall.brier_score)} = reliability {fmt.number(d['reliability'])} − resolution "
            f"{fmt.number(d['resolution'])} + uncertainty {fmt.number(d['uncertainty'])} "
            f"(binning residual {fmt.signed(d['residual'])})"
        )
    if overall.target_entropy_bits is not None:
        lines.append(
            f"soft targets: cross-entropy {fmt.number(overall.cross_entropy_bits)} bits = target entropy "
            f"{fmt.number(overall.target_entropy_bits)} + KL {fmt.number(overall.kl_bits)}"
        )
    if run.warnings:
        lines.append("")
        lines.append(f"warnings ({len(run.warnings)}):")
        scopes = fmt.shorten_names(w.scope for w in run.warnings)
        for warning in run.warnings:
            lines.append(f"  ! {warning.code} [{scopes[warning.scope]}]: {warning.message}")
    return fit("\n".join(lines), width)


def summary(evaluation: Evaluation, width: int | None = None) -> str:
    """The terminal summary of every run, separated by blank lines."""
    return "\n\n".join(run_summary(r, width) for r in evaluation.runs) + "\n"


# --------------------------------------------------------------------------- comparisons, baseline, gates


def comparisons_text(evaluation: Evaluation, comparisons, width: int | None = None) -> str:
    """Runs side by side, each run's changes against the first, and each paired delta."""
    if not comparisons:
        return ""
    width = width or terminal_width()
    runs = evaluation.runs
    short = fmt.shorten_names((r.name for r in runs), 20)
    names = fmt.shorten_names(r.name for r in runs)
    header = ["metric"] + [short[r.name] for r in runs] + [f"Δ {short[c.candidate]}" for c in comparisons]
    body = [
        [m.label] + [fmt.value(m.name, getattr(r.overall, m.name)) for r in runs]
        + [fmt.change(m.name, c.metric_deltas.get(m.name)) for c in comparisons]
        for m in view("runs")
    ]
    lines = [f"compared with {fmt.name(runs[0].name)!r} (the reference):", "",
             *text_table([header, *body], width=width), ""]
    for c in comparisons:
        lo, hi = c.log_loss_delta_ci95
        kind = f"paired over {fmt.plural(c.n_paired, 'example')}" if c.paired else "unpaired"
        # Two short lines rather than one that the terminal's width would break anywhere.
        lines.append(f"{names[c.candidate]} vs {names[c.reference]}: Δ log loss "
                     f"{fmt.signed(c.log_loss_delta)} nats per example (95% CI {fmt.signed(lo)} to {fmt.signed(hi)})")
        line = f"  {kind}: {c.verdict} (adjusted {fmt.p_value(c.log_loss_delta_p_value_adjusted)})"
        if c.paired:
            line += (f"; {fmt.percent(c.share_improved, 1)} of examples improved, "
                     f"{fmt.percent(c.share_worsened, 1)} got worse")
        lines.append(line)
        lines += _decision_lines(c, "example", "nats")
        if c.note:
            lines.append(f"  note: {c.note}")
        for r in c.worst_regressions[:5]:
            lines.append(f"  worse: id {fmt.name(r.id)} ({fmt.name(r.label)}): {fmt.number(r.loss_reference)} -> "
                         f"{fmt.number(r.loss_candidate)} nats")
    return fit("\n".join(lines), width) + "\n"


def baseline_text(result, width: int | None = None, shown_view: str = "baseline") -> str:
    """Per run, the main metrics (those of ``shown_view``) against the baseline, and every regression flagged."""
    width = width or terminal_width()
    shown = {m.name for m in view(shown_view)}
    lines = [f"against the baseline {result.source}:"]
    names = fmt.shorten_names([rb.run for rb in result.runs] + list(result.unmatched))
    lines += [f"  note: {fmt.visible(note)}" for note in result.notes]
    for rb in result.runs:
        lines.append("")
        title = names[rb.run] if rb.run == rb.baseline_run else f"{names[rb.run]} (baseline run {fmt.name(rb.baseline_run)!r})"
        lines.append(f"run {title}:")
        rows = [["scope", "metric", "baseline", "now", "delta", ""]]
        for scope, deltas in [("overall", rb.overall), *rb.by_split.items()]:
            for d in deltas:
                if d.metric in shown or d.regression:
                    rows.append([fmt.name(scope, 20), d.metric, fmt.value(d.metric, d.baseline),
                                 fmt.value(d.metric, d.current), fmt.change(d.metric, d.delta),
                                 "REGRESSION" if d.regression else ""])
        lines += text_table(rows, left=2, rule=False, width=width)
        n = len(rb.regressions)
        lines.append(f"{fmt.plural(n, 'regression')} (worse by more than {result.tolerance:.0%} and {result.floor:g})"
                     if n else "no regressions")
    for name in result.unmatched:
        lines.append(f"run {names[name]}: no run of that name in the baseline; not compared")
    return fit("\n".join(lines), width) + "\n"


def gate_line(result) -> str:
    """One gate's outcome for one run, as the quiet failure line and the gate table say it."""
    return f"{result.gate.expression} [run {result.run}]: {gate_value(result)}"


def gate_value(result) -> str:
    """A gate result's value (see :func:`losslens.formatting.gate_value`)."""
    return fmt.gate_value(result.value, warning=result.gate.code is not None, delta=result.gate.delta)


def gates_text(report, width: int | None = None) -> str:
    """One line per gate and run, failures marked."""
    if not report.results:
        return ""
    lines = [f"gates: {'all passed' if report.passed else f'{len(report.failures)} FAILED'}"]
    for r in report.results:
        mark = "pass" if not r.failed else "FAIL"
        text = f"  {mark}  {r.gate.expression}  [run {r.run}]  value {gate_value(r)}"
        if r.detail:
            text += f" ({r.detail})"
        lines.append(text)
    return fit("\n".join(lines), width) + "\n"


def failed_gate_lines(report) -> list[str]:
    """What ``--quiet`` still prints when a gate fails: one line per failure."""
    return [fit(f"losslens: gate failed: {gate_line(r)}", 10_000) for r in report.failures]


def job_text(result, width: int | None = None) -> str:
    """Everything the command prints about a job: each run, the comparisons, baseline and gates."""
    if result.kind == "language_model":
        runs_text = lm_summary(result.evaluation, width)
    elif result.kind == "lm_eval":
        runs_text = lm_eval_text(result.evaluation, width)
    elif result.kind == "trainer":
        runs_text = trainer_text(result.evaluation, width)
    else:
        runs_text = summary(result.evaluation, width) + comparisons_text(result.evaluation, result.comparisons, width)
    return "\n".join(t for t in (
        runs_text,
        baseline_text(result.baseline, width, "baseline" if result.kind == "classifier" else "lm_baseline")
        if result.baseline else "",
        gates_text(result.gates, width) if result.gates else "",
    ) if t)


# --------------------------------------------------------------------------- trend

#: Trend shifts of the latest night listed in the terminal; the trend JSON has every one.
MAX_TREND_SHIFT_LINES = 10


def trend_text(trend, width: int | None = None) -> str:
    """What ``losslens trend`` prints: nights read, warning counts, the latest night's trend shifts."""
    nights, shifts = trend.nights, trend.shifts
    lines = [
        f"trend: {fmt.plural(len(nights), 'night')}, {fmt.name(nights[0].label)} to {fmt.name(nights[-1].label)}; "
        f"{fmt.plural(len(trend.warnings), 'warning')}, {fmt.plural(len(shifts), 'trend shift')} "
        f"(window {trend.window})"
    ]
    latest = [w for w in shifts if w.night == nights[-1].label]
    for w in latest[:MAX_TREND_SHIFT_LINES]:
        lines.append(f"  ! trend_shift [{fmt.name(w.scope)}] run '{fmt.name(w.run)}', {fmt.name(w.night)}: "
                     f"{fmt.visible(w.message)}")
    if len(latest) > MAX_TREND_SHIFT_LINES:
        lines.append(f"  … and {len(latest) - MAX_TREND_SHIFT_LINES} more on the latest night in the JSON")
    if trend.moved:
        m = trend.moved[0]
        lines.append(f"moved most: {fmt.name(m.scope)} (run '{fmt.name(m.run)}') {fmt.value(LOG_LOSS, m.median_first)} "
                     f"-> {fmt.value(LOG_LOSS, m.latest)} nats")
    return fit("\n".join(lines), width) + "\n"


# --------------------------------------------------------------------------- language models

#: Documents listed per table (worst, memorised) in the terminal; the JSON and HTML have more.
LM_DOCUMENT_ROWS = 5


def _document_lines(title: str, rows, width: int) -> list[str]:
    if not rows:
        return []
    from .lm.contamination import document_score_columns, score_text

    shown = rows[:LM_DOCUMENT_ROWS]
    scores = document_score_columns(shown)
    header = ["document", "tokens", "mean loss", *(m.label for m in scores), "text"]
    body = [[fmt.name(r.document, 24), fmt.count(r.n_tokens), fmt.number(r.mean_loss_nats),
             *(score_text(m, getattr(r, m.name)) for m in scores), fmt.name(r.snippet or "", 30)] for r in shown]
    return ["", title, *text_table([header, *body], width=width)]


def _contamination_lines(run, width: int) -> list[str]:
    """Each score's AUROC against ``--reference``, what it means, and the documents that stand out."""
    if not run.reference:
        return []
    from .lm.contamination import MEANING, standout_table

    lines = ["", f"contamination evidence against the reference {fmt.name(run.reference)!r}:"]
    header = ["score", "AUROC", "95% interval", "documents", "reference", "above ref. p99"]
    body = [[label, fmt.number(e.auroc, 3), _pair(e.auroc_ci95), fmt.count(e.n_documents),
             fmt.count(e.n_reference), fmt.count(e.n_above_reference_p99)]
            for label, e in ((m.label, run.contamination[m.name]) for m in _scores_of(run))]
    lines += text_table([header, *body], width=width) if body else ["  no score is computable in both runs"]
    lines += [f"  {fmt.visible(MEANING)}"]
    header, rows = standout_table(run)
    if rows:
        lines += ["", "documents above the reference's 99th percentile (most scores first):",
                  *text_table([header, *[[fmt.name(c, 24) for c in row] for row in rows[:LM_DOCUMENT_ROWS]]],
                              width=width)]
    return lines


def _scores_of(run):
    from .catalog import DOCUMENT_SCORES

    return [m for m in DOCUMENT_SCORES if m.name in run.contamination]


#: Warnings of one code listed in full in a language-model or lm-eval summary; the rest are named.
MAX_WARNINGS_PER_CODE = 3


def _warning_lines(pairs) -> list[str]:
    """Warnings as ``! code [scope]: message``, memorised documents first (they change how to read the rest).

    Every code is shown: at most :data:`MAX_WARNINGS_PER_CODE` of one code in full, then one
    line naming the scopes of the others (sixty lm-eval tasks with small samples stay readable).
    """
    ordered = sorted(pairs, key=lambda pair: pair[1].code != "memorized_documents")
    if not ordered:
        return []
    by_code: dict[str, list] = {}
    for prefix, w in ordered:
        by_code.setdefault(w.code, []).append((prefix, w))
    lines = ["", f"warnings ({len(ordered)}):"]
    scopes = fmt.shorten_names(prefix + w.scope for prefix, w in ordered)
    for code, group in by_code.items():
        for prefix, w in group[:MAX_WARNINGS_PER_CODE]:
            lines.append(f"  ! {w.code} [{scopes[prefix + w.scope]}]: {fmt.visible(w.message)}")
        rest = group[MAX_WARNINGS_PER_CODE:]
        if rest:
            lines.append(f"    … {len(rest)} more {code}: " + ", ".join(scopes[prefix + w.scope] for prefix, w in rest))
    return lines


def lm_run_summary(run, width: int | None = None) -> str:
    """The summary of one token / sequence run: what was read, the scopes, the worst and memorised documents."""
    width = width or terminal_width()
    o, layout = run.overall, run.layout
    lines = [f"run {fmt.name(run.name)!r}: {fmt.plural(o.n_documents, 'document')}"
             + (f", {fmt.plural(o.n_tokens, 'token')}" if o.n_tokens is not None else "")
             + f", from {_list(run.inputs, width)}",
             f"layout: {layout.kind}, document {fmt.name(layout.document)!r}, "
             f"{'log-probability' if layout.loss_sign < 0 else 'loss'} {fmt.name(layout.loss)!r}"]
    lines += [f"  detected: {note}" for note in layout.notes]
    rows = [("overall", o), *((f"split={k}", m) for k, m in run.by_split.items())]
    for column, values in run.by_slice.items():
        rows += [(f"{column}={v}", m) for v, m in values.items()]
    columns = [m for m in view("lm_scopes") if any(getattr(metrics, m.name) is not None for _, metrics in rows)]
    header = ["scope"] + [m.label for m in columns]
    names = fmt.shorten_names(scope for scope, _ in rows)
    body = [[names[scope]] + [fmt.value(m.name, getattr(metrics, m.name)) for m in columns] for scope, metrics in rows]
    lines += ["", *text_table([header, *body], width=width)]
    if o.log_loss_ci95 is not None:
        lines.append(f"log loss 95% interval {_pair(o.log_loss_ci95)} nats/token (documents as the units)")
    if o.bits_per_byte_ci95 is not None:
        lines.append(f"bits per byte 95% interval {_pair(o.bits_per_byte_ci95)}")
    if run.unigram_entropy_bits is not None:
        lines.append(f"unigram entropy of the text {fmt.number(run.unigram_entropy_bits)} bits/token; "
                     f"information gain {fmt.number(run.information_gain_bits)} bits/token")
    lines += _document_lines("memorised documents (highest Min-K% Prob first):", run.memorized_documents, width)
    lines += _document_lines("worst documents (highest mean token loss):", run.worst_documents, width)
    lines += _contamination_lines(run, width)
    lines += _warning_lines([("", w) for w in run.warnings])
    return fit("\n".join(lines), width)


def _decision_lines(c, units: str, unit: str) -> list[str]:
    """A comparison's accuracy flips (McNemar), minimum detectable effect and paired bootstrap."""
    t = c.tests
    if t is None:
        return []
    lines = []
    if t.accuracy_delta is not None:
        lo, hi = t.accuracy_delta_ci95 or (None, None)
        lines.append(f"  accuracy {fmt.points(t.accuracy_delta)} (95% CI {fmt.points(lo)} to {fmt.points(hi)}); "
                     f"{fmt.flips(t.mcnemar)}")
    if c.paired:
        lines.append("  " + fmt.detectable_change(c.n_paired, units, t.minimum_detectable_effect, unit))
    lines += [f"  {clause}" for clause in delta_clauses(t.deltas)]
    if t.bootstrap:
        b = t.bootstrap
        lines.append(f"  bootstrap ({fmt.count(b['n_resamples'])} resamples, seed {b['seed']}): Δ 95% CI "
                     f"{fmt.signed_interval(b[LOG_LOSS_DELTA_CI95])}, {fmt.p_value(b[LOG_LOSS_DELTA_P_VALUE])}"
                     + "".join(f"; {clause}" for clause in bootstrap_clauses(b)))
    return lines


def lm_comparisons_text(comparisons, width: int | None = None) -> str:
    """Each language-model run (or lm-eval task) against the first, paired by document id."""
    if not comparisons:
        return ""
    width = width or terminal_width()
    lines = []
    names = fmt.shorten_names(name for c in comparisons for name in (c.reference, c.candidate))
    for c in comparisons:
        lo, hi = c.log_loss_delta_ci95 or (None, None)
        lines.append(f"{names[c.candidate]} vs {names[c.reference]}: Δ log loss "
                     f"{fmt.signed(c.log_loss_delta)} nats per {c.unit} (95% CI {fmt.signed(lo)} to {fmt.signed(hi)})")
        line = f"  paired over {fmt.plural(c.n_paired, c.paired_unit)}"
        if c.paired:
            line += f": {c.verdict} (adjusted {fmt.p_value(c.log_loss_delta_p_value_adjusted)})"
        if c.share_improved is not None:
            line += f"; {fmt.percent(c.share_improved, 1)} improved"
        if c.only_in_reference or c.only_in_candidate:
            line += f"; unpaired: {c.only_in_reference} only in the reference, {c.only_in_candidate} only in the candidate"
        lines.append(line)
        lines += _decision_lines(c, c.paired_unit, f"nats per {c.unit}")
        for r in c.worst_regressions[:3]:
            lines.append(f"  worse: {fmt.name(r['document'])}: {fmt.number(r['reference_loss'])} -> "
                         f"{fmt.number(r['candidate_loss'])} nats per {c.unit}")
    return fit("\n".join(lines), width) + "\n"


def lm_summary(evaluation, width: int | None = None) -> str:
    """Every token / sequence run, then the paired comparisons."""
    text = "\n\n".join(lm_run_summary(r, width) for r in evaluation.runs) + "\n"
    if evaluation.comparisons:
        text += "\n" + lm_comparisons_text(evaluation.comparisons, width)
    return text


def lm_eval_text(evaluation, width: int | None = None) -> str:
    """lm-evaluation-harness tasks (lm-eval's metric names), notes, warnings and checkpoint comparisons."""
    width = width or terminal_width()
    columns = [m for m in view("lm_eval_tasks") if any(t.metrics.get(m.name) is not None for t in evaluation.tasks)]
    header = ["task", "type", "documents"] + [m.label for m in columns]
    names = fmt.shorten_names(t.name for t in evaluation.tasks)
    body = [[names[t.name], t.type_label, fmt.count(t.n_documents)]
            + [fmt.value(m.name, t.metrics.get(m.name)) for m in columns] for t in evaluation.tasks]
    # The harnesses that wrote the tasks (lm-eval, inspect-ai, HELM), in order of appearance.
    harnesses = ", ".join(dict.fromkeys(getattr(t, "harness", "lm-evaluation-harness") for t in evaluation.tasks))
    lines = [f"{fmt.name(harnesses or 'lm-evaluation-harness')}: {fmt.plural(len(evaluation.tasks), 'task')}", "",
             *text_table([header, *body], left=2, width=width)]
    logged = evaluation.logged_rows()
    if logged:
        logged_names = fmt.shorten_names(task for task, *_ in logged)
        lines += ["", "lm-eval's own figures (results_*.json) for tasks without samples and groups:",
                  *text_table([["task", "metric", "value", "stderr"],
                               *([logged_names[task], fmt.name(metric), fmt.number(value), fmt.number(stderr)]
                                 for task, metric, value, stderr in logged)], left=2, width=width)]
    if any(t.output_type == "multiple_choice" for t in evaluation.tasks):
        lines.append("brier_score is lm-eval's: summed over a question's choices (twice scikit-learn's for two choices)")
    lines += [f"  note: {n}" for n in evaluation.notes]
    # Every task's warnings (its classifier run's among them), not only the lm-eval-specific ones.
    lines += _warning_lines([(f"{t.name} ", w) for t in evaluation.tasks for w in t.warnings])
    text = fit("\n".join(lines), width) + "\n"
    if evaluation.comparisons:
        text += "\ncheckpoints against the first, paired by doc_id:\n" + lm_comparisons_text(evaluation.comparisons, width)
    return text


def trainer_text(evaluation, width: int | None = None) -> str:
    """Hugging Face Trainer runs: their figures side by side, where eval loss stopped improving, notes, warnings."""
    width = width or terminal_width()
    columns = view("trainer_runs")
    names = fmt.shorten_names(r.name for r in evaluation.runs)
    body = [[names[r.name]] + [fmt.value(m.name, getattr(r.overall, m.name)) for m in columns] for r in evaluation.runs]
    lines = [f"Hugging Face Trainer: {fmt.plural(len(evaluation.runs), 'run')} (losses in nats per token, as logged)",
             "", *text_table([["run"] + [m.label for m in columns], *body], left=2, width=width)]
    lines += [f"  {names[r.name]}: {r.stopped_improving()}" for r in evaluation.runs if r.stopped_improving()]
    lines += [f"  note: {fmt.visible(n)}" for n in dict.fromkeys(n for r in evaluation.runs for n in r.notes)]
    pairs = [(f"{r.name} ", w) for r in evaluation.runs for w in r.warnings]
    lines += _warning_lines(sorted(pairs, key=lambda p: p[1].code != "near_zero_train_loss"))  # memorisation first
    return fit("\n".join(lines), width) + "\n"
