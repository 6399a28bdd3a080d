"""The command line in jobs: several runs, baselines, gates and exit codes, config files, per-example."""

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from losslens.cli import BAD_INPUT, GATE_FAILED, OK, app

runner = CliRunner()


def _frame(ids, labels, probs, splits=None):
    data = {"id": ids, "label": labels, "y_prob": probs}
    if splits is not None:
        data["split"] = splits
    return pd.DataFrame(data)


@pytest.fixture
def files(tmp_path):
    """Two runs with partly overlapping ids (a b c d / b c d e) and a split column."""
    a = tmp_path / "old.csv"
    b = tmp_path / "new.csv"
    _frame(["a", "b", "c", "d"], [1, 1, 0, 0], [0.8, 0.6, 0.3, 0.1], ["train", "validation"] * 2).to_csv(a, index=False)
    _frame(["e", "d", "c", "b"], [1, 0, 0, 1], [0.5, 0.2, 0.4, 0.9], ["train", "validation"] * 2).to_csv(b, index=False)
    return a, b


def _json(result):
    assert result.exit_code in (OK, GATE_FAILED), result.output
    return json.loads(result.stdout)


OLD_LOSS = -(math.log(0.8) + math.log(0.6) + math.log(0.7) + math.log(0.9)) / 4


def test_passing_gates_exit_0_and_are_recorded(files):
    result = runner.invoke(app, ["metrics", str(files[0]), "--json", "-", "--fail-if", "log_loss > 0.5",
                                 "--fail-if", "validation.accuracy < 0.5"])
    assert result.exit_code == OK
    gates = _json(result)["gates"]
    assert gates["passed"] is True
    assert [(r["expression"], r["scope"], r["outcome"]) for r in gates["results"]] == [
        ("log_loss > 0.5", "overall", "pass"), ("validation.accuracy < 0.5", "validation", "pass")]
    assert gates["results"][0]["value"] == pytest.approx(OLD_LOSS, rel=1e-12)


def test_a_failing_gate_exits_1_and_still_writes_the_json(files, tmp_path):
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["metrics", str(files[0]), "--json", str(out), "--fail-if", "log_loss > 0.2"])
    assert result.exit_code == GATE_FAILED
    assert "FAIL  log_loss > 0.2  [run old]" in result.stdout
    gates = json.loads(out.read_text())["gates"]
    assert gates["passed"] is False and gates["results"][0]["outcome"] == "fail"


def test_the_boundary_of_a_gate(files):
    value = repr(OLD_LOSS)
    assert runner.invoke(app, ["metrics", str(files[0]), "--fail-if", f"log_loss > {value}"]).exit_code == OK
    assert runner.invoke(app, ["metrics", str(files[0]), "--fail-if", f"log_loss >= {value}"]).exit_code == GATE_FAILED


@pytest.mark.parametrize("args, message", [
    (["--fail-if", "logloss > 1"], "losslens: error: --fail-if 'logloss > 1': unknown metric 'logloss'; known metrics: n_examples,"),
    (["--fail-if", "test.log_loss > 1"], "losslens: error: --fail-if 'test.log_loss > 1': unknown scope 'test' in run 'old'; known scopes: (none: overall), train, validation"),
    (["--fail-if", "delta.log_loss > 0"], "losslens: error: --fail-if 'delta.log_loss > 0': a delta gate needs --baseline PREVIOUS.json"),
    (["--fail-if", "log_loss 1"], "losslens: error: --fail-if 'log_loss 1': expected '[scope.]metric OP number'"),
    (["--fail-on-warning", "oops"], "losslens: error: --fail-on-warning 'oops': unknown warning code; known: any,"),
    (["--baseline", "missing.json"], "losslens: error: --baseline missing.json: no such file"),
    (["--per-example", "pe.txt"], "losslens: error: --per-example pe.txt: the file name must end in .csv or .parquet"),
])
def test_usage_errors_exit_2_with_one_line_and_write_nothing(files, tmp_path, args, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["metrics", str(files[0]), "--json", "m.json", "--per-example", "pe.csv", *args])
    assert result.exit_code == BAD_INPUT
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "pe.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_several_runs_are_compared_with_the_first_paired_by_id(files):
    result = runner.invoke(app, ["metrics", str(files[0]), str(files[1]), "--id", "id", "--json", "-"])
    document = _json(result)
    assert [r["name"] for r in document["runs"]] == ["old", "new"]
    (c,) = document["comparisons"]
    assert (c["reference"], c["candidate"], c["paired"], c["n_paired"]) == ("old", "new", True, 3)
    assert (c["n_reference_only"], c["n_candidate_only"]) == (1, 1)
    d = [math.log(0.6 / 0.9), math.log(7 / 6), math.log(9 / 8)]
    assert c["log_loss_delta"] == pytest.approx(sum(d) / 3, rel=1e-12)
    assert c["share_improved"] == pytest.approx(1 / 3)
    assert [w["id"] for w in c["worst_regressions"]] == ["c", "d"]
    assert c["metric_deltas"]["log_loss"] == pytest.approx(
        document["runs"][1]["overall"]["log_loss"] - document["runs"][0]["overall"]["log_loss"], rel=1e-12)
    assert "new vs old: Δ log loss -0.0445 nats" in result.stderr  # the summary moves to stderr with --json -


def test_several_runs_without_ids_are_compared_unpaired(files, tmp_path):
    import pandas as pd

    plain = []
    for i, path in enumerate(files[:2]):
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        plain.append(tmp_path / f"plain{i}.csv")
        frame.drop(columns="id").to_csv(plain[-1], index=False)
    c = _json(runner.invoke(app, ["metrics", str(plain[0]), str(plain[1]), "--json", "-"]))["comparisons"][0]
    assert c["paired"] is False and c["n_paired"] == 0 and c["n_reference_only"] is None


def test_a_detected_id_column_pairs_runs_without_the_option(files):
    c = _json(runner.invoke(app, ["metrics", str(files[0]), str(files[1]), "--json", "-"]))["comparisons"][0]
    assert c["paired"] is True and c["n_paired"] > 0


def test_baseline_deltas_regressions_and_delta_gates(files, tmp_path):
    previous = tmp_path / "previous.json"
    assert runner.invoke(app, ["metrics", str(files[0]), "--json", str(previous)]).exit_code == OK
    result = runner.invoke(app, ["metrics", str(files[1]), "--baseline", str(previous), "--json", "-",
                                 "--fail-if", "delta.log_loss > 0", "--fail-if", "delta.validation.accuracy < 0"])
    document = _json(result)
    (run,) = document["baseline"]["runs"]
    assert (run["run"], run["baseline_run"]) == ("new", "old")  # a single baseline run is matched whatever its name
    new_loss = document["runs"][0]["overall"]["log_loss"]
    assert run["overall"]["log_loss"]["delta"] == pytest.approx(new_loss - OLD_LOSS, rel=1e-12)
    assert run["overall"]["log_loss"]["regression"] is (new_loss > OLD_LOSS * 1.01)
    outcomes = [r["outcome"] for r in document["gates"]["results"]]
    assert result.exit_code == (GATE_FAILED if "fail" in outcomes else OK)
    assert "against the baseline" in result.stderr


def test_config_file_with_overriding_flags(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.losslens]\nbins = 5\nfail_if = ["log_loss > 0.1"]\njson = "from-config.json"\n'
    )
    # From the file alone: its gate fails and its JSON path is used.
    assert runner.invoke(app, ["metrics", str(files[0])]).exit_code == GATE_FAILED
    document = json.loads((tmp_path / "from-config.json").read_text())
    assert document["runs"][0]["calibration"]["n_bins"] == 5
    # The command line replaces the file's gates (not adds to them) and its JSON path.
    result = runner.invoke(app, ["metrics", str(files[0]), "--fail-if", "log_loss > 1", "--json", "-", "--bins", "3"])
    assert result.exit_code == OK
    document = json.loads(result.stdout)
    assert [r["expression"] for r in document["gates"]["results"]] == ["log_loss > 1"]
    assert document["runs"][0]["calibration"]["n_bins"] == 3


def test_explicit_config_and_unknown_keys(files, tmp_path):
    config = tmp_path / "nightly.toml"
    config.write_text('id = "id"\nfail_on_warning = ["clipped_probabilities"]\nquiet = true\n')
    result = runner.invoke(app, ["metrics", str(files[0]), str(files[1]), "--config", str(config), "--json", "-"])
    assert result.exit_code == OK and result.stderr == ""
    assert json.loads(result.stdout)["comparisons"][0]["paired"] is True
    config.write_text('fail-if = ["log_loss > 1"]\n')
    result = runner.invoke(app, ["metrics", str(files[0]), "--config", str(config)])
    assert result.exit_code == BAD_INPUT
    assert result.stderr.startswith(f"losslens: error: {config}: unknown key 'fail-if' (write 'fail_if'); known keys: ")


def test_per_example_file_from_the_command_line(files, tmp_path):
    out = tmp_path / "pe.parquet"
    result = runner.invoke(app, ["metrics", str(files[0]), str(files[1]), "--id", "id", "--per-example", str(out), "--json", "-"])
    document = _json(result)
    table = pd.read_parquet(out)
    assert list(table["id"][:4]) == ["a", "b", "c", "d"]
    for run in document["runs"]:
        part = table[table["run"] == run["name"]]
        assert part["loss_nats"].mean() == pytest.approx(run["overall"]["log_loss"], rel=1e-12)


def test_per_example_file_is_not_left_behind_on_bad_input(files, tmp_path):
    bad = tmp_path / "bad.csv"
    _frame(["a"], [1], [1.5]).to_csv(bad, index=False)
    out = tmp_path / "pe.csv"
    result = runner.invoke(app, ["metrics", str(files[0]), str(bad), "--per-example", str(out)])
    assert result.exit_code == BAD_INPUT
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_json_with_comparisons_baseline_and_gates_is_byte_identical(files, tmp_path):
    previous = tmp_path / "p.json"
    runner.invoke(app, ["metrics", str(files[0]), "--json", str(previous)])
    outs = [tmp_path / "1.json", tmp_path / "2.json"]
    for out in outs:
        runner.invoke(app, ["metrics", str(files[0]), str(files[1]), "--id", "id", "--baseline", str(previous),
                            "--fail-if", "log_loss > 0.3", "--json", str(out)])
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert list(json.loads(outs[0].read_text())) == ["format_version", "runs", "comparisons", "warnings", "notes",
                                                       "baseline", "gates"]


def test_report_is_written_when_a_gate_fails(files, tmp_path):
    pytest.importorskip("losslens.html")
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(files[0]), str(files[1]), "-o", str(out), "--json", str(tmp_path / "r.json"),
                                 "--fail-if", "log_loss > 0.01", "--generated-at", "2026-01-01T00:00:00Z"])
    assert result.exit_code == GATE_FAILED, result.output
    assert out.exists() and json.loads((tmp_path / "r.json").read_text())["gates"]["passed"] is False


def test_real_exit_codes_quiet_and_clean_json_on_stdout(files, tmp_path):
    env = {**os.environ, "NO_COLOR": "1"}
    run = [sys.executable, "-m", "losslens", "metrics", str(files[0]), str(files[1]), "--id", "id", "--json", "-", "-q"]
    failed = subprocess.run([*run, "--fail-if", "log_loss > 0.2"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["gates"]["passed"] is False
    assert failed.stderr.splitlines() == [
        f"losslens: gate failed: log_loss > 0.2 [run old]: {OLD_LOSS:.6g}",
        f"losslens: gate failed: log_loss > 0.2 [run new]: {json.loads(failed.stdout)['runs'][1]['overall']['log_loss']:.6g}",
    ]
    passed = subprocess.run([*run, "--fail-if", "log_loss > 5"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert passed.returncode == 0 and passed.stderr == ""
    usage = subprocess.run([*run, "--fail-if", "nope > 5"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert usage.returncode == 2 and usage.stdout == "" and "Traceback" not in usage.stderr


@pytest.mark.parametrize(
    "baseline, current, direction, flagged",
    [
        (0.30, 0.3031, "lower", True),    # worse by 1.03%: beyond both tolerances
        (0.30, 0.3029, "lower", False),   # worse by 0.97%
        (2e-8, 4e-5, "lower", False),     # huge relative change, below the absolute floor
        (0.90, 0.88, "higher", True),     # accuracy down 2 points
        (0.90, 0.95, "higher", False),    # better is never a regression
    ],
)
def test_regressions_need_both_relative_and_absolute_worsening(baseline, current, direction, flagged):
    from losslens.baseline import MetricDelta

    assert MetricDelta("m", baseline, current, direction).regression is flagged


def test_per_example_with_dask_is_a_usage_error_before_reading(files, tmp_path):
    out = tmp_path / "pe.csv"
    result = runner.invoke(app, ["metrics", str(files[0]), "--engine", "dask", "--per-example", str(out)])
    assert result.exit_code == BAD_INPUT
    assert result.stderr == ("losslens: error: --per-example needs --engine local (per-example values stay on "
                             "the workers with dask)\n")
    assert not out.exists()
