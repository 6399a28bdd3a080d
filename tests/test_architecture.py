"""The map of docs/architecture.md, checked: no import cycle, imports point down the stages, sizes.

The graph is read by ``tools/import_graph.py``, which counts every import statement (inside
functions, under ``TYPE_CHECKING``, a package ``__init__`` re-exporting its modules; see its
docstring). Each rule has an explicit allow-list of what is still over while another branch
works on it; an entry that is no longer needed fails the test, so the lists only shrink.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import import_graph as graph  # noqa: E402

SRC = REPO / "src" / "losslens"

#: Stages of the map, lowest first: a module may import only from its own stage or a lower
#: one. docs/architecture.md draws the same order. A module is looked up by its full name,
#: else by its longest listed prefix (``losslens.html`` covers the reporter's modules).
BASE, INPUTS, LAYOUT, SCORING, RESULTS, CALCULATIONS, JOB, REPORTERS, FRONT_ENDS = range(9)
STAGES = {
    # Used by everyone: no I/O, imports nothing above.
    "losslens.version": BASE, "losslens.errors": BASE, "losslens.display": BASE, "losslens.options": BASE,
    "losslens.catalog": BASE, "losslens.formatting": BASE, "losslens.class_names": BASE,
    "losslens.calibration_fit": BASE, "losslens.paired_stats": BASE, "losslens.threads": BASE,
    "losslens.document": BASE, "losslens.fused": BASE, "losslens.dataclass_code": BASE,
    # Reading (and the one writer): files, folders, pipes, other tools' logs.
    "losslens.sources": INPUTS, "losslens.text_formats": INPUTS, "losslens.pipes": INPUTS,
    "losslens.reading": INPUTS, "losslens.labels": INPUTS, "losslens.readers": INPUTS,
    "losslens.output": INPUTS, "losslens.progress": INPUTS, "losslens.arrow_values": INPUTS,
    "losslens.plans": INPUTS, "losslens.parquet_file": INPUTS,
    # What each column (or harness record) means.
    "losslens.schema": LAYOUT, "losslens.feature_columns": LAYOUT, "losslens.not_predictions": LAYOUT,
    "losslens.binary_classes": LAYOUT, "losslens.list_columns": LAYOUT, "losslens.tolerances": LAYOUT,
    "losslens.lm.options": LAYOUT, "losslens.lm.layout": LAYOUT, "losslens.lm.detect": LAYOUT,
    "losslens.lm.lists": LAYOUT, "losslens.lm.token_bytes": LAYOUT, "losslens.lm.compression": LAYOUT,
    "losslens.lm.harness_task": LAYOUT, "losslens.lm.harness": LAYOUT, "losslens.lm.harness_more": LAYOUT,
    # One batch scored, and mergeable sums.
    "losslens.batch": SCORING, "losslens.columnwise": SCORING, "losslens.accumulate": SCORING,
    "losslens.bootstrap": SCORING, "losslens.class_sums": SCORING, "losslens.batch_figures": SCORING, "losslens.label_indices": SCORING, "losslens.lm.convert": SCORING, "losslens.lm.documents": SCORING,
    # Finished numbers: the result types and what fills them.
    "losslens.evaluation": RESULTS, "losslens.many_classes": RESULTS, "losslens.finish": RESULTS,
    "losslens.diagnostics": RESULTS, "losslens.calibration_sample": RESULTS, "losslens.per_example": RESULTS,
    "losslens.lm.evaluation": RESULTS, "losslens.lm.task_result": RESULTS,
    "losslens.calibration_intervals": RESULTS,
    # The layout plugins (one per kind of input), the one local engine and the one Dask engine
    # over them, and the calculations over evaluations (comparisons, baseline, gates, trend).
    "losslens.layouts": CALCULATIONS, "losslens.engine": CALCULATIONS, "losslens.distributed": CALCULATIONS, "losslens.comparison": CALCULATIONS,
    "losslens.baseline": CALCULATIONS, "losslens.gates": CALCULATIONS, "losslens.json_documents": CALCULATIONS,
    "losslens.trend": CALCULATIONS,
    "losslens.lm.compare": CALCULATIONS, "losslens.lm.contamination": CALCULATIONS,
    "losslens.lm.export": CALCULATIONS, "losslens.lm.lm_eval": CALCULATIONS,
    "losslens.lm.lm_eval_units": CALCULATIONS, "losslens.lm.lm_eval_results": CALCULATIONS,
    "losslens.lm.lm_eval_read": CALCULATIONS, "losslens.lm.trainer_run": CALCULATIONS,
    "losslens.paired_deltas": CALCULATIONS,
    "losslens.job": JOB,
    # Reporters: text from a JobResult (or a Trend).
    "losslens.terminal": REPORTERS, "losslens.markdown": REPORTERS, "losslens.per_class": REPORTERS,
    "losslens.html": REPORTERS, "losslens.decision_text": REPORTERS,
    # Front ends: the command line, the Python API and the notebook.
    "losslens": FRONT_ENDS, "losslens.__main__": FRONT_ENDS, "losslens.lm": FRONT_ENDS,
    "losslens.arrays": FRONT_ENDS, "losslens.notebook": FRONT_ENDS, "losslens.config": FRONT_ENDS,
    "losslens.cli_app": FRONT_ENDS, "losslens.cli": FRONT_ENDS, "losslens.cli_trend": FRONT_ENDS,
}

#: Heavy optional dependencies: imported only inside the functions that need them, never when a
#: module loads, and only by the modules docs/architecture.md lists for each.
HEAVY = {"pandas", "matplotlib", "dask", "distributed", "scipy", "sklearn", "torch", "polars", "duckdb"}

#: Exceptions to the limits: none today. An entry no longer over its limit fails
#: test_allow_lists_are_needed, so a list cannot outlive its reason.
ALLOWED_CYCLES: list = []
ALLOWED_LONG_MODULES: set = set()
ALLOWED_LONG_FUNCTIONS: set = set()


@pytest.fixture(scope="module")
def mods():
    return graph.modules(SRC)


def test_no_import_cycle(mods):
    found = graph.cycles(graph.edges(mods))
    assert [c for c in found if c not in ALLOWED_CYCLES] == []


def test_no_module_over_600_lines(mods):
    assert set(graph.long_modules(mods)) - ALLOWED_LONG_MODULES == set()


def test_no_function_over_80_lines(mods):
    assert set(graph.long_functions(mods)) - ALLOWED_LONG_FUNCTIONS == set()


def test_allow_lists_are_needed(mods):
    # Fixed on another branch: take the entry out of the list above.
    found = graph.cycles(graph.edges(mods))
    assert [c for c in ALLOWED_CYCLES if c not in found] == []
    assert ALLOWED_LONG_MODULES - set(graph.long_modules(mods)) == set()
    assert ALLOWED_LONG_FUNCTIONS - set(graph.long_functions(mods)) == set()


def test_every_module_has_a_stage(mods):
    missing = []
    for m in mods:
        try:
            graph.stage_of(m, STAGES)
        except KeyError:
            missing.append(m)
    assert missing == [], "add these modules to STAGES (and to docs/architecture.md)"


def test_imports_point_down_the_stages(mods):
    assert graph.upward_imports(mods, STAGES) == []


def test_heavy_dependencies_are_lazy_and_listed_in_the_docs(mods):
    found = graph.heavy_imports(mods, HEAVY)
    assert sorted(f"{m} imports {dep} when its module loads" for (m, dep), lazy in found.items() if not lazy) == []
    # docs/architecture.md lists each module with the heavy dependencies it loads lazily.
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc.split("## Heavy optional dependencies", 1)[1].split("\n## ", 1)[0]
    listed = {(f"losslens.{m}", dep) for m, deps in re.findall(r"^- `([\w.]+)`: (.+)$", section, re.M)
              for dep in re.findall(r"[a-z]+", deps.split(" — ")[0])}
    assert set(found) == listed


def test_the_measure_sees_what_it_must():
    # The rules above are only as good as the graph: check it on code that breaks each one.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "losslens"
        (pkg / "sub").mkdir(parents=True)
        (pkg / "__init__.py").write_text("from .api import run\n")
        (pkg / "api.py").write_text("def run():\n    from .low import f\n    return f()\n")
        # 'from . import x' names the package, whose __init__ imports the API: a cycle.
        (pkg / "low.py").write_text("from . import helper\n\ndef f():\n    return 1\n")
        (pkg / "helper.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    from .sub.mod import T\n")
        (pkg / "sub" / "__init__.py").write_text("")
        (pkg / "sub" / "mod.py").write_text("def g():\n    import pandas\n" + "    x = 1\n" * 80)
        mods = graph.modules(pkg)
        edges = graph.edges(mods)
        assert edges["losslens.low"] == {"losslens", "losslens.helper"}
        assert edges["losslens.helper"] == {"losslens.sub.mod"}  # under TYPE_CHECKING
        assert graph.cycles(edges) == [["losslens", "losslens.api", "losslens.low"]]
        assert graph.long_functions(mods) == {"losslens.sub.mod.g": 82}
        assert graph.heavy_imports(mods, HEAVY) == {("losslens.sub.mod", "pandas"): True}
        stages = {"losslens": 2, "losslens.low": 0, "losslens.helper": 0, "losslens.sub": 1, "losslens.api": 2}
        assert graph.upward_imports(mods, stages) == [
            "losslens.helper (0) -> losslens.sub.mod (1), line 3",
            "losslens.low (0) -> losslens (2), line 1",
        ]
