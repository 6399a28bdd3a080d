"""The view model of the quality gates: one verdict for the job and a row per gate and run."""

from __future__ import annotations

from ..formatting import gate_value
from .model import Column, GatesPage, Table, name_cell

#: Outcome of a gate as shown; "undefined" fails the job too (see losslens.gates).
_OUTCOME = {"pass": "PASS", "fail": "FAIL", "undefined": "FAIL (undefined)"}


def gates_page(report) -> GatesPage:
    """The gates' verdict and one row per gate and run, failures flagged."""
    n, failed = len(report.results), len(report.failures)
    if report.passed:
        summary = f"All {n} gate check{'s' if n != 1 else ''} passed."
    else:
        summary = (f"{failed} of {n} gate check{'s' if n != 1 else ''} failed: the command exits with "
                   "code 1, so a job running it fails.")
    rows = tuple(
        (_OUTCOME.get(r.outcome, r.outcome.upper()), r.gate.expression, name_cell(r.run),
         gate_value(r.value, warning=r.gate.code is not None, delta=r.gate.delta), r.detail or "")
        for r in report.results
    )
    table = Table(
        "gates", "Quality gates",
        (Column("outcome", numeric=False), Column("gate", numeric=False), Column("run", numeric=False),
         Column("value"), Column("detail", numeric=False)),
        rows,
        "A gate fails when its condition holds (--fail-if \"log_loss > 0.35\" fails a log loss above 0.35); "
        "an undefined value fails too. Every run is checked against every gate.",
        row_classes=tuple("pass" if not r.failed else "fail" for r in report.results),
    )
    return GatesPage(passed=report.passed, summary=summary, table=table)
