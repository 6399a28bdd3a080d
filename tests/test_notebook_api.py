"""The notebook API: evaluate(y_true, y_prob) against scikit-learn on real models and data sets,
float32 and torch-like inputs, the Jupyter card, to_html/to_json against the CLI, compare,
help(losslens), and the notebook in docs/ run cell by cell."""

from __future__ import annotations

import json
import re
import pydoc
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

import losslens
from losslens.errors import InputError, UsageError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "example_data" / "digits_multiclass.parquet"
# Log loss from scikit-learn and from losslens go through different summation orders (and
# numpy's SIMD log against libm's), so they agree to a few ulps, not bit for bit.
CLOSE = dict(rel=1e-13)


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    model = LogisticRegression(max_iter=5000).fit(X[::2], y[::2])
    return y, model.predict_proba(X)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=5000).fit(X[::2], y[::2])
    return y, model.predict_proba(X)[:, 1]


class TensorLike:
    """Stands in for a torch tensor: only ``__array__``, float32, as torch hands them out."""

    def __init__(self, array):
        self._array = np.asarray(array)

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


def test_multiclass_arrays_equal_sklearn(wine):
    y, p = wine
    evaluation = losslens.evaluate(y, p)
    assert evaluation.overall.log_loss == pytest.approx(log_loss(y, p), **CLOSE)
    assert evaluation.overall.accuracy == pytest.approx(accuracy_score(y, p.argmax(axis=1)), rel=1e-15)
    assert list(evaluation.by_class) == [0, 1, 2] and all(type(k) is int for k in evaluation.by_class)
    assert list(evaluation.to_dict()["runs"][0]["by_class"]) == ["0", "1", "2"]  # JSON keys stay text


def test_binary_positive_probability_equals_sklearn(cancer):
    y, p1 = cancer
    evaluation = losslens.evaluate(y, p1)
    assert evaluation.overall.log_loss == pytest.approx(log_loss(y, p1), **CLOSE)
    assert evaluation.run.layout.classes == ("0", "1")
    assert evaluation.by_class[1].recall == pytest.approx(((p1 >= 0.5) & (y == 1)).sum() / (y == 1).sum(), rel=1e-15)


def test_float32_is_kept_and_torch_like_objects_work(wine):
    y, p = wine
    p32 = p.astype(np.float32)
    evaluation = losslens.evaluate(TensorLike(y), TensorLike(p32))
    # The float32 values themselves are scored (not a float64 original), clipped at float32's
    # eps as sklearn clips a float32 array, in float64 arithmetic: equal to that hand-worked
    # value; sklearn on float32 sums in float32, so only ~1e-7 close.
    eps = np.finfo(np.float32).eps
    true_prob = p32.astype(np.float64)[np.arange(len(y)), y]
    assert evaluation.overall.log_loss == pytest.approx(-np.mean(np.log(np.clip(true_prob, eps, 1 - eps))), **CLOSE)
    assert evaluation.overall.log_loss == pytest.approx(log_loss(y, p32), rel=1e-6)
    assert evaluation.overall.log_loss != pytest.approx(log_loss(y, p), rel=1e-12)


def test_pandas_inputs_classes_order_and_weights(wine):
    y, p = wine
    names = np.array(["barolo", "grignolino", "barbera"])[y]
    order = ["grignolino", "barbera", "barolo"]  # y_prob columns in this order, not sorted
    columns = [list(["barolo", "grignolino", "barbera"]).index(c) for c in order]
    weights = np.linspace(0.5, 2.0, len(y))
    evaluation = losslens.evaluate(pd.Series(names), pd.DataFrame(p[:, columns]), classes=order, sample_weight=weights)
    # scikit-learn takes y_prob's columns in sorted label order whatever labels= says, so
    # the reference gets the columns sorted: barbera (2), barolo (0), grignolino (1).
    reference = log_loss(names, p[:, [2, 0, 1]], labels=sorted(order), sample_weight=weights)
    assert evaluation.overall.log_loss == pytest.approx(reference, **CLOSE)
    assert evaluation.run.classes == tuple(order)


def test_split_and_slices_as_arrays(wine):
    y, p = wine
    split = np.where(np.arange(len(y)) % 2 == 0, "train", "validation")
    evaluation = losslens.evaluate(y, p, split=split, by={"alcohol_high": y == 0})
    validation = split == "validation"
    assert evaluation.run.by_split["validation"].log_loss == pytest.approx(log_loss(y[validation], p[validation]), **CLOSE)
    assert set(evaluation.run.by_slice["alcohol_high"]) == {"True", "False"}


def test_same_numbers_as_the_cli_on_a_to_csv_file(wine, tmp_path, run_cli_json):
    y, p = wine
    frame = pd.DataFrame(p, columns=[f"p_{c}" for c in range(3)]).assign(label=y)
    frame.to_csv(tmp_path / "wine.csv")  # pandas' defaults: the index is an unnamed first column
    document = run_cli_json(str(tmp_path / "wine.csv"))
    evaluation = losslens.evaluate(y, p)
    # pandas writes floats with repr, which reads back exactly: the same numbers, not just close.
    assert document["runs"][0]["overall"]["log_loss"] == evaluation.overall.log_loss
    assert document["runs"][0]["overall"]["ece"] == evaluation.overall.ece


def test_paths_and_dataframes_still_work():
    frame = pd.read_parquet(EXAMPLE)
    assert losslens.evaluate(frame).overall.log_loss == losslens.evaluate(str(EXAMPLE)).overall.log_loss


@pytest.mark.parametrize("y_true, y_prob, message", [
    ([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]], "y_prob: expected shape (3,) or (3, k) to match y_true's 3 labels, got (2, 2)"),
    ([0, 1, 2], [[0.5, 0.5]] * 3, "y_prob has 2 columns but y_true has 3 distinct labels; give classes=[...]"),
    ([0, 1, 2], [0.5, 0.5, 0.5], "y_prob of shape (3,) is P(positive) for two classes, but there are 3"),
    ([0, 1, float("nan")], [0.5, 0.5, 0.5], "y_true, row 3: missing label (NaN)"),
])
def test_bad_arrays_name_the_argument(y_true, y_prob, message):
    with pytest.raises(InputError) as info:
        losslens.evaluate(y_true, y_prob)
    assert str(info.value).startswith(message)


def test_file_options_are_refused_with_arrays():
    with pytest.raises(UsageError, match="probs= describes file columns"):
        losslens.evaluate([0, 1], [0.2, 0.8], probs="p_")


def test_card_shows_the_reports_headlines_escaped_and_small():
    frame = pd.DataFrame({"label": ["<b>x</b>", "y"] * 20, "p_<b>x</b>": [0.9, 0.3] * 20, "p_y": [0.1, 0.7] * 20})
    evaluation = losslens.evaluate(frame, name="<b>run</b>")
    card = evaluation._repr_html_()
    for label in ("Log loss", "Cross-entropy", "Perplexity", "Accuracy", "Information gain", "KL(P̂ ‖ Q̄)"):
        assert label in card
    assert f"{evaluation.overall.log_loss:.4f}" in card
    assert "<script" not in card.lower()
    assert not re.search(r"(src|href)=\"https?:|url\((?!#)|@import", card)  # nothing fetched (url(#clip) is local)
    assert "&lt;b&gt;run&lt;/b&gt;" in card and "<b>" not in card
    assert len(card.encode()) < 100_000
    assert "<svg" in card  # the loss histogram, inline


def test_card_escapes_warning_text(tmp_path):
    frame = pd.DataFrame({"label": [0, 1] * 20, "p_0": [1.0, 0.0] * 20, "p_1": [0.0, 1.0] * 20,
                          "split": ["<img src=x>"] * 40})
    card = losslens.evaluate(frame)._repr_html_()
    assert "near_zero_loss" in card and "<img" not in card and "&lt;img src=x&gt;" in card


def test_to_html_and_to_json_write_what_the_cli_writes(tmp_path, monkeypatch):
    import re
    from datetime import datetime, timezone

    from losslens.html import render_report

    monkeypatch.chdir(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "losslens", "report", str(EXAMPLE), "--by", "ink", "-o", "cli.html",
                           "--json", "cli.json", "--generated-at", "2026-01-01T00:00:00Z", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    evaluation = losslens.evaluate(str(EXAMPLE), by=["ink"])
    # --generated-at pins the JSON's generated_at too (so that trend can order nights).
    evaluation.to_json(tmp_path / "api.json", generated_at="2026-01-01T00:00:00Z")
    assert (tmp_path / "api.json").read_bytes() == (tmp_path / "cli.json").read_bytes()
    assert json.loads((tmp_path / "cli.json").read_text())["generated_at"] == "2026-01-01T00:00:00Z"
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    evaluation.to_json(tmp_path / "unpinned.json")
    assert "generated_at" not in json.loads((tmp_path / "unpinned.json").read_text())
    evaluation.to_html(tmp_path / "api.html", generated_at="2026-01-01T00:00:00Z")
    cli_page = (tmp_path / "cli.html").read_text()
    api_page = (tmp_path / "api.html").read_text()
    # The same report but for the footer's "how this report was made" command.
    command = re.compile(r'<pre class="command"><code>.*?</code></pre>', re.S)
    assert command.sub("", api_page) == command.sub("", cli_page)
    assert render_report(evaluation, generated_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                         command_line="losslens.evaluate(...).to_html()") == api_page


def test_compare_pairs_data_by_id_and_matches_the_cli(tmp_path, run_cli_json):
    old = pd.read_parquet(EXAMPLE)
    new = old.copy()
    columns = [c for c in old.columns if c.startswith("p_")]
    new[columns] = 0.8 * old[columns].to_numpy() + 0.2 / len(columns)
    old.to_parquet(tmp_path / "old.parquet", index=False)
    new.to_parquet(tmp_path / "new.parquet", index=False)
    comparison = losslens.compare(str(tmp_path / "old.parquet"), str(tmp_path / "new.parquet"), id="id")
    document = run_cli_json(str(tmp_path / "old.parquet"), str(tmp_path / "new.parquet"), "--id", "id")
    # The document's comparison is the object's, with the unit of every comparison (examples here).
    assert comparison.paired and {**comparison.to_dict(), "unit": "example"} == document["comparisons"][0]
    # Two finished evaluations: unpaired, the difference of the runs' log losses.
    a, b = losslens.evaluate(old), losslens.evaluate(new)
    unpaired = losslens.compare(a, b)
    assert not unpaired.paired
    assert unpaired.log_loss_delta == pytest.approx(b.overall.log_loss - a.overall.log_loss, rel=1e-12)
    # Importing the compare submodule (the CLI does) leaves the function on the package.
    assert hasattr(sys.modules["losslens.comparison"], "compare_runs")
    assert losslens.compare.__module__ == "losslens.arrays"


def test_help_lists_the_public_functions():
    text = pydoc.render_doc(losslens, renderer=pydoc.plaintext)
    for name in ("evaluate(", "evaluate_runs(", "compare("):
        assert name in text
    assert "scikit-learn's argument order" in text or "as scikit-learn takes them" in text


def test_docstring_examples_run():
    import doctest

    import losslens.arrays

    for module in (losslens, losslens.arrays):
        failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert attempted > 0 and failed == 0


def test_import_stays_light():
    code = "import losslens, sys; print(sorted(m for m in ('numpy', 'pyarrow', 'matplotlib', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_notebook_runs(tmp_path, monkeypatch):
    """Run docs/notebook.ipynb's code cells in order, in one namespace, from the repository root."""
    notebook = json.loads((REPO / "docs" / "notebook.ipynb").read_text())
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 5
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("LOSSLENS_NOTEBOOK_OUT", str(tmp_path))
    namespace: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        exec(compile(source, f"notebook cell {i + 1}", "exec"), namespace)
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
