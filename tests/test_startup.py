"""Start-up: what `losslens --help` and a classifier run load (module lists, not timings).

Timings are benchmarks/bench_startup.py's; here each case runs in a fresh interpreter and
reports ``sys.modules``, so the test is exact on any machine, loaded or not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_data" / "breast_cancer_binary.csv"

#: Never loaded by --help: each costs from 0.05 s (numpy) to 0.3 s (pandas, matplotlib).
HEAVY = ("numpy", "pyarrow", "pandas", "matplotlib", "dask", "scipy", "jinja2", "sklearn", "torch", "polars")

_PROBE = """
import io, json, runpy, sys, contextlib
sys.argv = ["losslens", *json.loads(sys.argv[1])]
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        runpy.run_module("losslens", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules), "out": out.getvalue()}))
"""


def _loaded(*args: str) -> dict:
    """Run ``losslens ARGS`` in a fresh interpreter: its exit code, output and loaded modules."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(args))], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def _roots(modules) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("args", [("--help",), ("metrics", "--help"), ("report", "--help"), ("trend", "--help")])
def test_help_loads_no_heavy_dependency(args):
    run = _loaded(*args)
    assert run["code"] == 0 and "Usage" in run["out"]
    assert sorted(_roots(run["modules"]) & set(HEAVY)) == []


def test_import_losslens_loads_no_heavy_dependency():
    code = "import json, sys, losslens; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert sorted(_roots(json.loads(done.stdout)) & set(HEAVY)) == []


def test_a_classifier_run_loads_what_it_needs_only():
    run = _loaded("metrics", str(EXAMPLE))
    assert run["code"] == 0 and "log loss" in run["out"]
    # No charts, templates, Dask or scipy for a terminal summary; numpy and pyarrow it needs, not
    # pandas (pyarrow's Array.to_numpy would import it: 0.2 s) nor pydantic (Typer's coercion).
    assert sorted(_roots(run["modules"]) & {"matplotlib", "jinja2", "dask", "scipy", "sklearn", "torch",
                                             "pandas", "pydantic"}) == []
    # The baseline reader (every document version and kind) only with --baseline.
    assert [m for m in run["modules"] if m in ("losslens.baseline", "losslens.json_documents")] == []
    # pyarrow.compute (26 ms: a wrapper per kernel) is not needed for a small file's labels and ids.
    assert "pyarrow.compute" not in run["modules"]
    # Nor the token layout's modules to learn the file is not a token file (2.6 ms), shlex for
    # messages it does not write, or tempfile for a run that writes no file.
    assert [m for m in run["modules"] if m in ("losslens.lm.layout", "losslens.lm.lists", "losslens.lm.token_bytes",
                                               "shlex", "tempfile")] == []
    # The functions of its dataclasses come from the cache, or are compiled into it (dataclass_code).
    assert "losslens.dataclass_code" in run["modules"]


def test_a_parquet_run_loads_neither_pandas_nor_pydantic(tmp_path):
    # pandas (about 0.2 s) would come with pyarrow's pandas-aware conversions, pydantic (about
    # 0.05 s) with Typer's coercion of the options: a run on Parquet needs neither.
    pa = pytest.importorskip("pyarrow")
    import numpy as np
    import pyarrow.parquet as pq

    probs = np.random.default_rng(0).dirichlet(np.ones(3), 500)
    table = pa.table({"label": np.arange(500) % 3, **{f"p_{c}": probs[:, c] for c in range(3)}})
    path = tmp_path / "preds.parquet"
    pq.write_table(table, path)
    run = _loaded("metrics", str(path), "--by", "label", "--bins", "12")
    assert run["code"] == 0 and "log loss" in run["out"]
    assert sorted(_roots(run["modules"]) & {"pandas", "pydantic"}) == []
    # numpy.ma (8 ms) would come with a plain np.unique (it asks np.ma.is_masked first), and
    # pyarrow.fs (15 ms: every remote filesystem and ssl) with pyarrow.parquet's ParquetFile.
    assert [m for m in run["modules"] if m in ("numpy.ma", "pyarrow.fs", "pyarrow.parquet", "ssl")] == []
