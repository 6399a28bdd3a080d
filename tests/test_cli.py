"""The command line: summary, JSON interface, exit codes, help texts."""

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from losslens.cli import app

runner = CliRunner()


@pytest.fixture
def binary_csv(tmp_path):
    path = tmp_path / "preds.csv"
    pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(10)],
            "label": [1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
            "y_prob": [0.8, 0.9, 0.9, 0.6, 0.8, 0.1, 0.4, 0.2, 0.1, 0.3],
            "split": ["train", "validation"] * 5,
        }
    ).to_csv(path, index=False)
    return path


def test_metrics_prints_summary_with_detected_layout(binary_csv):
    result = runner.invoke(app, ["metrics", str(binary_csv)])
    assert result.exit_code == 0, result.output
    assert "run 'preds': 10 examples, 2 classes" in result.stdout
    assert "detected: one-column binary layout: 'y_prob'" in result.stdout
    assert "0.2469" in result.stdout  # the tutorial's 0.24691989080446482 nats
    assert "split=train" in result.stdout and "split=validation" in result.stdout


def test_json_to_stdout_is_clean_json_with_the_documented_structure(binary_csv):
    result = runner.invoke(app, ["metrics", str(binary_csv), "--json", "-", "--id", "id"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["format_version"] == 3
    (run,) = document["runs"]
    assert set(run) >= {"name", "inputs", "classes", "layout", "overall", "by_split", "by_slice", "by_class", "warnings"}
    assert run["overall"]["log_loss"] == pytest.approx(0.24691989080446482, rel=1e-12)
    assert run["layout"]["kind"] == "positive_prob"
    assert run["layout"]["positive_class"] == "1"
    assert run["worst_examples"][0]["id"] == "x3"  # p=0.6 for a positive is the worst
    metrics = run["overall"]
    for key in ("n_examples", "weight_sum", "log_loss", "cross_entropy_bits", "perplexity", "label_entropy_bits",
                "kl_empirical_bits", "information_gain_bits", "relative_information_gain", "accuracy",
                "brier_score", "n_clipped"):
        assert key in metrics


def test_json_file_is_written_and_each_input_is_a_run(binary_csv, tmp_path):
    out = tmp_path / "sub" / "m.json"
    result = runner.invoke(app, ["metrics", str(binary_csv), str(binary_csv), "--name", "a", "--name", "b", "--json", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert [r["name"] for r in document["runs"]] == ["a", "b"]


def test_same_input_gives_byte_identical_json(binary_csv, tmp_path):
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    for out in outs:
        assert runner.invoke(app, ["metrics", str(binary_csv), "--json", str(out)]).exit_code == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_json_has_no_nan(tmp_path):
    path = tmp_path / "p.csv"
    # Class c has a column but no examples: its per-class loss is undefined -> null.
    pd.DataFrame({"label": ["a", "b"], "p_a": [0.5, 0.2], "p_b": [0.3, 0.7], "p_c": [0.2, 0.1]}).to_csv(path, index=False)
    result = runner.invoke(app, ["metrics", str(path), "--json", "-"])
    assert result.exit_code == 0
    assert "NaN" not in result.stdout
    run = json.loads(result.stdout)["runs"][0]
    assert run["by_class"]["c"]["log_loss"] is None
    assert "missing_classes" in [w["code"] for w in run["warnings"]]


def test_unnormalized_rows_are_counted_and_warned(tmp_path):
    path = tmp_path / "p.csv"
    pd.DataFrame({"label": ["a", "b"], "p_a": [0.5, 0.2], "p_b": [0.3, 0.8]}).to_csv(path, index=False)
    result = runner.invoke(app, ["metrics", str(path), "--json", "-"])
    run = json.loads(result.stdout)["runs"][0]
    assert run["overall"]["n_unnormalized"] == 1
    assert "unnormalized_rows" in [w["code"] for w in run["warnings"]]
    fixed = json.loads(runner.invoke(app, ["metrics", str(path), "--json", "-", "--renormalize"]).stdout)["runs"][0]
    assert fixed["overall"]["log_loss"] == pytest.approx((-__import__("math").log(0.5 / 0.8) - __import__("math").log(0.8)) / 2, rel=1e-12)


def test_help_teaches_the_layout_with_an_example():
    # report --help shows a report example (it showed `losslens metrics`: issue 10 §6).
    for args, command in ((["--help"], "metrics"), (["metrics", "--help"], "metrics"), (["report", "--help"], "report")):
        result = runner.invoke(app, args)
        assert result.exit_code == 0
        assert "p_<class>" in result.stdout and f"losslens {command} preds.parquet" in result.stdout


def test_python_dash_m_and_exit_code_2_on_bad_input(binary_csv, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(binary_csv)], capture_output=True, text=True)
    assert ok.returncode == 0 and "log loss" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(tmp_path / "nope.csv")], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"losslens: error: {tmp_path / 'nope.csv'}: no such file or folder"]


def test_help_does_not_import_heavy_modules():
    code = "import sys; from losslens.cli import app; print(any(m in sys.modules for m in ('pyarrow', 'matplotlib', 'numpy', 'pandas')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_runs_from_folders_and_globs_get_readable_names(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    frame = pd.DataFrame({"label": [0, 1, 1, 0], "y_prob": [0.2, 0.7, 0.9, 0.4]})
    frame.iloc[:2].to_csv(parts / "preds-0.csv", index=False)
    frame.iloc[2:].to_csv(parts / "preds-1.csv", index=False)
    result = runner.invoke(app, ["metrics", str(parts), str(parts / "preds-*.csv"), f"{parts}/*.csv", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)["runs"]] == ["parts", "preds", "parts-2"]


def test_bootstrap_with_the_dask_engine_is_a_usage_error(binary_csv):
    result = runner.invoke(app, ["metrics", str(binary_csv), "--engine", "dask", "--bootstrap", "10"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "losslens: error: --bootstrap needs --engine local: it keeps every example's loss in memory"


def test_each_commands_help_shows_its_own_example():
    report = runner.invoke(app, ["report", "--help"], env={"COLUMNS": "200"})
    assert report.exit_code == 0
    assert "losslens report preds.parquet --label y" in report.stdout and "losslens metrics" not in report.stdout
    metrics = runner.invoke(app, ["metrics", "--help"], env={"COLUMNS": "200"})
    assert "losslens metrics preds.parquet --label y" in metrics.stdout


def test_every_command_line_default_is_the_options_dataclass_default():
    """One place for defaults: an option of the command line that is also a field of the
    library's one options tree (Options, every kind's fields) takes the field's default, so that
    `losslens metrics`, `losslens.evaluate(...)` and `losslens.lm.evaluate_lm(...)` cannot drift apart."""
    from dataclasses import MISSING, fields

    from losslens.cli import COMMON_OPTIONS
    from losslens.options import Options

    library = {f.name: f.default for f in fields(Options) if f.default is not MISSING}
    shared = [(name, info.default) for name, _, info in COMMON_OPTIONS
              if name in library and getattr(info, "default", None) is not None]
    assert len(shared) >= 12  # bins, worst, near_zero, gap, prior_shift, ..., min_k, memorized_prob
    assert {name: default for name, default in shared} == {name: library[name] for name, _ in shared}
