"""The view model of one run against the ``--baseline`` file: the main metrics and every regression."""

from __future__ import annotations

from ..catalog import view
from ..formatting import change, value
from .model import BaselinePage, Column, Table


def baseline_page(run, baseline, shown_view: str = "baseline") -> BaselinePage:
    """One run's deltas against the baseline file: the metrics of ``shown_view`` and every flagged regression."""
    shown = {m.name for m in view(shown_view)}
    compared = baseline.run(run.name)
    if compared is None:
        return BaselinePage(
            source=baseline.source, baseline_run="", n_regressions=0,
            summary=f"The baseline file has no run named “{run.name}”; this run is not compared with it.",
        )
    rows, classes = [], []
    for scope, deltas in [("overall", compared.overall), *compared.by_split.items()]:
        for d in deltas:
            if d.metric not in shown and not d.regression:
                continue
            rows.append((scope, d.metric, value(d.metric, d.baseline), value(d.metric, d.current),
                         change(d.metric, d.delta), d.direction or "", "regression" if d.regression else ""))
            classes.append("regression" if d.regression else "")
    n = len(compared.regressions)
    tolerance = f"{baseline.tolerance:.0%}"
    summary = (f"{n} regression{'s' if n != 1 else ''}: metrics worse than in the baseline by more than "
               f"{tolerance}." if n else f"No regressions: no metric is worse than in the baseline by more than {tolerance}.")
    of = "" if compared.baseline_run == run.name else f" (its run “{compared.baseline_run}”)"
    table = Table(
        "baseline", f"Metrics now and in the baseline{of}",
        (Column("scope", numeric=False), Column("metric", numeric=False), Column("baseline"), Column("now"),
         Column("change", help="now minus baseline"), Column("better is", numeric=False),
         Column("flag", numeric=False)),
        tuple(rows),
        f"The main metrics overall and per split, and every metric flagged as a regression (worse by more "
        f"than {tolerance} of the baseline value). Use --fail-if \"delta.METRIC > X\" to fail a job on a "
        "change; the JSON has every metric.",
        row_classes=tuple(classes),
    )
    return BaselinePage(source=baseline.source, baseline_run=compared.baseline_run, n_regressions=n,
                        summary=summary, table=table)
