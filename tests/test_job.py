"""run_job: the one object behind the command, checked against scikit-learn on its bundled data."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import losslens
from losslens.cli import GATE_FAILED, app
from losslens.errors import UsageError
from losslens.output import json_text

runner = CliRunner()


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Predictions of two logistic regressions (weak and strong regularisation) on breast cancer."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=0)
    folder = tmp_path_factory.mktemp("job")
    paths, probs = [], []
    for name, c in (("strong", 0.01), ("weak", 1.0)):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(X_train, y_train)
        p = model.predict_proba(X_test)
        # As DataFrame.to_csv writes it, with pandas' default index column left out.
        frame = pd.DataFrame({"id": np.arange(len(y_test)), "label": y_test, "p_0": p[:, 0], "p_1": p[:, 1]})
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
        probs.append(p)
    return paths, probs, y_test


def test_run_job_compares_runs_as_sklearn_computes_them(two_models):
    (a, b), (pa, pb), y = two_models
    result = losslens.run_job([str(a), str(b)], fail_if=["log_loss > 5"])
    assert isinstance(result, losslens.JobResult) and result.passed
    ref, cand = log_loss(y, pa), log_loss(y, pb)
    # Different summation orders (numpy pairwise vs losslens's batches): equal within rounding.
    assert result.runs[0].overall.log_loss == pytest.approx(ref, rel=1e-12)
    (comparison,) = result.comparisons
    assert comparison.paired and comparison.n_paired == len(y)  # the id column was detected
    assert comparison.log_loss_delta == pytest.approx(cand - ref, rel=1e-9)
    assert comparison.metric_deltas["log_loss"] == pytest.approx(cand - ref, rel=1e-9)
    assert [g.outcome for g in result.gates.results] == ["pass", "pass"]
    assert result.warnings == tuple((r.name, w) for r in result.runs for w in r.warnings)


def test_to_dict_is_the_commands_json_byte_for_byte(two_models, tmp_path):
    (a, b), _, _ = two_models
    out = tmp_path / "m.json"
    cli = runner.invoke(app, ["metrics", str(a), str(b), "--json", str(out), "-q", "--fail-if", "log_loss > 0.01"])
    assert cli.exit_code == GATE_FAILED
    result = losslens.run_job([str(a), str(b)], fail_if=["log_loss > 0.01"])
    assert not result.passed
    assert out.read_text(encoding="utf-8") == json_text(result.to_dict())


def test_baseline_deltas_and_delta_gates(two_models, tmp_path):
    (a, b), (pa, pb), y = two_models
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json_text(losslens.run_job([str(a)]).to_dict()))
    result = losslens.run_job([str(b)], baseline=str(baseline), fail_if=["delta.log_loss > 10"])
    (run,) = result.baseline.runs
    delta = next(d for d in run.overall if d.metric == "log_loss")
    assert delta.delta == pytest.approx(log_loss(y, pb) - log_loss(y, pa), rel=1e-9)
    assert result.gates.results[0].value == delta.delta and result.passed
    document = json.loads(json_text(result.to_dict()))
    assert list(document) == ["format_version", "runs", "comparisons", "warnings", "notes", "baseline", "gates"]


def test_bad_gates_are_refused_before_reading(tmp_path):
    with pytest.raises(UsageError, match="unknown metric 'nope'"):
        losslens.run_job([str(tmp_path / "does-not-exist.csv")], fail_if=["nope > 1"])
    with pytest.raises(UsageError, match=r"unknown option\(s\) colour"):
        losslens.run_job([str(tmp_path / "x.csv")], colour="red")


def test_doctests():
    import doctest

    import losslens.catalog
    import losslens.job

    assert doctest.testmod(losslens.job).failed == 0 and doctest.testmod(losslens.catalog).failed == 0
