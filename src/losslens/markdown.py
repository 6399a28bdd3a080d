"""A GitHub-flavoured markdown summary, for ``$GITHUB_STEP_SUMMARY`` or a merge-request comment.

Pure: :func:`markdown_summary` reads a JSON document (:meth:`losslens.job.JobResult.to_dict`,
a trend document, or a parsed ``--json`` file) and returns text; :func:`job_markdown` is the
reporter over a :class:`~losslens.job.JobResult` that ``--markdown`` writes. It never computes
a metric: it shows the document's numbers with the catalog's labels
(:mod:`losslens.catalog`), formatted exactly as the terminal prints them
(:mod:`losslens.formatting`).

At most :data:`MAX_LINES` lines whatever the input: every section has a row budget and
says "… and N more" for what it leaves out. Names from the data (runs, splits, slice
values, classes, scopes, messages) pass through :func:`cell`, which escapes what markdown
or HTML would interpret, so a class called ``a|b`` or ``<script>`` stays text.
"""

from __future__ import annotations

import re

import losslens.formatting as fmt
from .catalog import (
    ACCURACY_DELTA, ECE_EQUAL_MASS, LOG_LOSS, LOG_LOSS_DELTA, LOG_LOSS_DELTA_CI95,
    LOG_LOSS_DELTA_P_VALUE_ADJUSTED, MCNEMAR, MINIMUM_DETECTABLE_EFFECT, VERDICT, view,
)
from .decision_text import delta_clauses
from .json_documents import upgrade_document
from .trend import nights_columns

MAX_LINES = 60
#: Rows per section; together with headings they stay under MAX_LINES.
MAX_HEADLINE_ROWS = 14
MAX_WARNING_ROWS = 10
MAX_GATE_ROWS = 8
MAX_COMPARISON_ROWS = 5
MAX_NIGHT_ROWS = 10
MAX_MOVED_ROWS = 5
#: Longer names are shortened in tables.
MAX_NAME = 60

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def cell(text, limit: int = MAX_NAME) -> str:
    """Text from the data made safe for a markdown table cell or list item.

    Control characters and line breaks become one space; markdown's special characters
    (including ``|`` and backticks) are backslash-escaped; ``<``, ``>`` and ``&`` become
    entities so that no HTML tag forms; long text is shortened with ``…``.
    """
    # Shortened by terminal columns, as every reporter shortens names (wide characters count two).
    text = fmt.shorten(_CONTROL.sub(" ", str(text)).strip(), limit)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def code(text, operators: bool = False) -> str:
    """A warning code or gate expression as inline code.

    Backslash escapes do not work inside a code span, so characters that could end the span
    or the table cell (backtick, ``|``, backslash) become ``?``; so do ``<``, ``>`` and ``&``,
    except with ``operators`` for a gate expression, whose ``>``/``<`` are its comparison
    (GitHub shows a code span's text literally, so they cannot form a tag there).
    """
    text = _CONTROL.sub(" ", str(text)).strip()[:MAX_NAME]
    unsafe = r"[`|\\]" if operators else r"[`|<>&\\]"
    return "`" + re.sub(unsafe, "?", text) + "`"


def _names(names, limit: int = MAX_NAME) -> dict[str, str]:
    """Run names as table cells, shortened as a set so that different runs never read alike."""
    names = [str(n) for n in names]
    shown = fmt.shorten_names((_CONTROL.sub(" ", n).strip() for n in names), limit)
    return {n: cell(shown[_CONTROL.sub(" ", n).strip()], limit) for n in names}


def _row(cells) -> str:
    """One table row from cells already escaped."""
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]], limit: int, what: str) -> list[str]:
    """A table of at most ``limit`` rows, and a line saying how many ``what`` were left out."""
    lines = [_row(header), _row(["---"] * len(header))] + [_row(r) for r in rows[:limit]]
    if len(rows) > limit:
        lines += ["", f"… and {len(rows) - limit} more {what} in the JSON"]
    return lines


def _gates(gates: dict | None) -> list[str]:
    """The gates section: the verdict and one row per gate and run, failures first."""
    if not gates:
        return []
    results = gates.get("results") or []
    failed = [r for r in results if r.get("failed")]
    verdict = "**Gates: all passed**" if gates.get("passed") else f"**Gates: {len(failed)} failed**"
    # Failures first: they are why anyone reads this section.
    ordered = failed + [r for r in results if not r.get("failed")]
    rows = []
    for r in ordered:
        shown = fmt.gate_value(r.get("value"), warning=r.get("kind") == "warning", delta=r.get("kind") == "delta")
        rows.append(["FAIL" if r.get("failed") else "pass", code(r.get("expression", ""), operators=True),
                     cell(r.get("run", "")), shown])
    return ["", "### Gates", "", verdict, ""] + _table(["outcome", "gate", "run", "value"], rows, MAX_GATE_ROWS, "gate results")


def _warnings(items: list[tuple[str, str, str]], title: str = "Warnings") -> list[str]:
    """Warnings as ``(code, where, message)``: one list item each, grouped codes counted."""
    if not items:
        return ["", f"### {title}", "", "No warnings."]
    codes: dict[str, int] = {}
    for name, _, _ in items:
        codes[name] = codes.get(name, 0) + 1
    lines = ["", f"### {title} ({len(items)})", "",
             "Codes: " + ", ".join(f"{code(c)} ×{n}" for c, n in codes.items()), ""]
    for name, where, message in items[:MAX_WARNING_ROWS]:
        lines.append(f"- {code(name)} {where}: {cell(message, 200)}")
    if len(items) > MAX_WARNING_ROWS:
        lines.append(f"- … and {len(items) - MAX_WARNING_ROWS} more warnings in the JSON")
    return lines


def _cap(lines: list[str]) -> str:
    """Join, keeping at most MAX_LINES lines (a last line says how many were left out)."""
    lines = "\n".join(lines).split("\n")
    if len(lines) > MAX_LINES:
        left = len(lines) - (MAX_LINES - 1)
        lines = lines[: MAX_LINES - 1] + [f"… and {left} more lines; the JSON has everything"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- metrics documents


def _scopes(document: dict) -> tuple[list[tuple[str, str, dict]], str]:
    """Every (run, scope, metrics) of a version-3 document and the catalog view its headline table shows.

    Classifier and token/sequence runs give their overall metrics and each split; harness
    tasks (lm-eval, inspect-ai, HELM, ...) give each task's overall metrics (lm-eval's names)
    with its output type as the scope.
    """
    runs = document.get("runs") or []
    if any(r.get("task") for r in runs):
        # Another harness than lm-eval (inspect-ai, HELM) is named beside the task's type.
        return [(r.get("name", ""), r.get("output_type", "") + (f" ({r['harness']})" if r.get("harness") not in
                 (None, "lm-evaluation-harness") else ""), r.get("overall") or {}) for r in runs], "lm_eval_tasks"
    if runs and all(r.get("kind") == "trainer" for r in runs):  # logged loss curves: one row per run
        return [(r.get("name", ""), "overall", r.get("overall") or {}) for r in runs], "trainer_runs"
    scopes = []
    for run in runs:
        scopes.append((run.get("name", ""), "overall", run.get("overall") or {}))
        scopes += [(run.get("name", ""), f"split={k}", m) for k, m in (run.get("by_split") or {}).items()]
    language_model = runs and all(r.get("kind") in ("tokens", "sequences") for r in runs)
    return scopes, "lm_runs" if language_model else "summary"


def _headline_table(document: dict) -> list[str]:
    """One headline row per run and scope; columns from the catalog.

    Language-model views leave out columns no scope has (a token file has no words, an
    lm-eval loglikelihood task no Brier score); a classifier's columns are always there.
    """
    scopes, shown = _scopes(document)
    entries = view(shown)
    if shown != "summary":
        entries = [e for e in entries if any(m.get(e.name) is not None for _, _, m in scopes)]
    names = _names(run for run, _, _ in scopes)
    rows = [[names[run], cell(scope)] + [fmt.value(e.name, m.get(e.name)) for e in entries] for run, scope, m in scopes]
    return _table(["run", "scope"] + [cell(e.label) for e in entries], rows, MAX_HEADLINE_ROWS, "rows (splits, tasks)")


def _calibration(document: dict) -> list[str]:
    """Each classifier run's overall calibration: equal-mass ECE and what one temperature fixes."""
    runs = [r for r in document.get("runs") or [] if r.get("kind", "classifier") == "classifier"
            and (r.get("overall") or {}).get(ECE_EQUAL_MASS) is not None]
    if not runs:
        return []
    entries = view("calibration_summary")
    rows = [[cell(r.get("name", ""))] + [fmt.value(e.name, r["overall"].get(e.name)) for e in entries] for r in runs]
    return ["", "### Calibration", ""] + _table(["run"] + [cell(e.label) for e in entries], rows,
                                                MAX_COMPARISON_ROWS, "runs")


def _comparisons(comparisons: list[dict] | None) -> list[str]:
    """Each run against the first: the change of log loss with its interval."""
    if not comparisons:
        return []
    rows = []
    names = _names(c.get(side, "") for c in comparisons for side in ("candidate", "reference"))
    for c in comparisons:
        low, high = (c.get(LOG_LOSS_DELTA_CI95) or [None, None])[:2]
        rows.append([f"{names[c.get('candidate', '')]} vs {names[c.get('reference', '')]}",
                     "yes" if c.get("paired", bool(c.get("n_paired"))) else "no", fmt.signed(c.get(LOG_LOSS_DELTA)),
                     fmt.signed_interval((low, high)), fmt.percent(c.get("share_improved"), 1),
                     cell(c.get(VERDICT) or "—"), cell(fmt.p_value(c.get(LOG_LOSS_DELTA_P_VALUE_ADJUSTED))),
                     fmt.number(c.get(MINIMUM_DETECTABLE_EFFECT), 4)])
    lines = ["", "### Comparisons", ""] + _table(
        ["runs", "paired", "Δ log loss", "95% CI of Δ", "share improved", VERDICT, "adjusted p", "detectable Δ"],
        rows, MAX_COMPARISON_ROWS, "comparisons")
    details = [(c, _decision_details(c)) for c in comparisons[:MAX_COMPARISON_ROWS]]
    return lines + ([""] if any(d for _, d in details) else []) + [
        f"- {names[c.get('candidate', '')]}: {cell(d, 400)}" for c, d in details if d]


def _decision_details(c: dict) -> str:
    """A comparison's accuracy flips (McNemar) and Brier, p(gold), bits-per-byte deltas, as one clause list."""
    parts = []
    if c.get(ACCURACY_DELTA) is not None:
        parts.append(f"accuracy {fmt.points(c[ACCURACY_DELTA])}")
    if c.get(MCNEMAR):
        parts.append(fmt.flips(c[MCNEMAR]))
    return "; ".join(parts + delta_clauses(c))


def metrics_markdown(document: dict) -> str:
    """The summary of a metrics document (``losslens metrics --json``).

    Parameters
    ----------
    document : dict
        A metrics document of any version (older ones are read through
        :func:`losslens.json_documents.upgrade_document`).

    Returns
    -------
    str
        At most :data:`MAX_LINES` lines: title, gate verdict, a headline table (log loss with
        its 95% interval, bits, accuracy, ECE, KL(P̂‖Q̄) per run and split), the warnings
        with their codes, the gates, the comparisons with their deltas.
    """
    document = upgrade_document(document, "the document", require_runs=False)
    runs = document.get("runs") or []
    names = [r.get("name", "") for r in runs]
    shown = ", ".join(cell(n, 40) for n in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    lines = [f"## losslens: {shown}", ""]
    gates = document.get("gates")
    if gates:
        lines += ["**Gates: all passed**" if gates.get("passed") else f"**Gates: {gates.get('n_failed', '?')} failed**", ""]
    lines += _headline_table(document)
    lines += _calibration(document)
    # Every run's warnings, listed once at the top level with the run's name.
    pairs = [(w.get("run", ""), w) for w in document.get("warnings") or []]
    warnings = [
        (w.get("code", ""), f"[{cell(w.get('scope', 'overall'))}]" + (f" run {cell(name)}" if len(runs) > 1 else ""),
         w.get("message", ""))
        for name, w in pairs
    ]
    lines += _warnings(warnings)
    baseline = document.get("baseline")
    if baseline:
        lines += ["", f"Baseline {cell(baseline.get('source', ''))}: {baseline.get('n_regressions', 0)} regression(s)."]
    lines += _gates(gates)
    lines += _comparisons(document.get("comparisons"))
    return _cap(lines)


# --------------------------------------------------------------------------- trend documents


def trend_markdown(document: dict) -> str:
    """The summary of a trend document (``losslens trend --json``).

    The latest nights' log loss (with interval), accuracy and ECE per run with the count of
    the night's own warnings and of its trend shifts, the notes (documents skipped as
    copies), the warnings of every night (trend shifts first, each message cut at a word),
    the slices that moved most, and the gates.
    """
    nights = document.get("nights") or []
    first, last = (nights[0]["label"], nights[-1]["label"]) if nights else ("", "")
    lines = [f"## losslens trend: {len(nights)} nights, {cell(first, 40)} to {cell(last, 40)}", ""]
    gates = document.get("gates")
    if gates:
        lines += ["**Gates: all passed**" if gates.get("passed") else f"**Gates: {gates.get('n_failed', '?')} failed**", ""]
    warnings = document.get("warnings") or []
    shifts: dict[tuple, int] = {}
    for w in warnings:
        if w.get("code") == "trend_shift":
            shifts[(w.get("night"), w.get("run"))] = shifts.get((w.get("night"), w.get("run")), 0) + 1
    rows = []
    columns = nights_columns(run for night in nights for run in night.get("runs") or [])  # the page's
    for night in reversed(nights):  # latest first
        for run in night.get("runs") or []:
            m = run.get("overall") or {}
            rows.append([cell(night.get("label", ""), 40), cell(run.get("name", ""), 40)]
                        + [fmt.value(entry.name, m.get(entry.name)) for entry in columns]
                        + [fmt.count(len(run.get("warnings") or [])),
                           fmt.count(shifts.get((night.get("label"), run.get("name")), 0))])
    lines += ["Latest nights first:", ""] + _table(
        ["night", "run"] + [cell(entry.label) for entry in columns] + ["warnings", "trend shifts"],
        rows, MAX_NIGHT_ROWS, "nights")
    notes = document.get("notes") or []
    if notes:  # documents skipped as copies, how the nights were ordered
        lines += [""] + [f"- note: {cell(fmt.shorten(note, 300, words=True), 300)}" for note in notes[:5]]
        lines += [f"- … and {len(notes) - 5} more notes in the JSON"] if len(notes) > 5 else []
    ordered = [w for w in reversed(warnings) if w.get("code") == "trend_shift"]
    ordered += [w for w in reversed(warnings) if w.get("code") != "trend_shift"]
    several = any(len(n.get("runs") or []) > 1 for n in nights)
    runs_of = lambda w: f" run {cell(w.get('run', ''), 40)}" if several else ""  # noqa: E731
    lines += _warnings(
        # Cut at a word before cell() sees it: a message is never shown with half a word.
        [(w.get("code", ""), f"{cell(w.get('night', ''), 40)}{runs_of(w)} [{cell(w.get('scope', ''))}]",
          fmt.shorten(w.get("message", ""), 200, words=True)) for w in ordered],
        "Warnings, trend shifts first, latest first")
    moved = document.get("moved_slices") or []
    if moved:
        rows = [[cell(m.get("scope", "")), cell(m.get("run", ""), 40), fmt.value(LOG_LOSS, m.get("latest")),
                 fmt.value(LOG_LOSS, m.get("median_first")), fmt.change(LOG_LOSS, m.get("change"))] for m in moved]
        lines += ["", "### Slices that moved most (latest night against the median of the first nights)", ""]
        lines += _table(["slice", "run", "latest log loss", "median of first nights", "change"], rows, MAX_MOVED_ROWS, "slices")
    lines += _gates(gates)
    return _cap(lines)


def markdown_summary(document: dict) -> str:
    """The markdown summary of any losslens JSON document: a trend or a metrics document."""
    if document.get("kind") == "trend":
        return trend_markdown(document)
    return metrics_markdown(document)


def job_markdown(result) -> str:
    """The markdown summary of a job (what ``--markdown`` writes): :func:`metrics_markdown` of its JSON document.

    Parameters
    ----------
    result : losslens.job.JobResult
        The runs, comparisons, baseline and gates, as :func:`losslens.run_job` returns them.

    Returns
    -------
    str
        At most :data:`MAX_LINES` lines of GitHub-flavoured markdown.
    """
    return metrics_markdown(result.to_dict())
