"""Quality gates: parsing, boundaries, unknown names, undefined values, warning and delta gates."""

import re

import pandas as pd
import pytest

import losslens
from losslens.baseline import compare_with_baseline
from losslens.errors import UsageError
from losslens.gates import check_gates, known_metrics, parse_gate, parse_gates
from losslens.terminal import gates_text

DF = pd.DataFrame({
    "label": [1, 1, 1, 0, 0, 0],
    "y_prob": [0.9, 0.7, 0.4, 0.2, 0.1, 0.6],
    "split": ["train", "validation", "train", "validation", "train", "validation"],
})


@pytest.fixture(scope="module")
def evaluation():
    return losslens.evaluate(DF)


def _outcomes(gates, evaluation, baseline=None):
    return [r.outcome for r in check_gates(parse_gates(gates), evaluation, baseline).results]


def test_parse_scope_metric_op_and_delta():
    g = parse_gate("  log_loss>0.35 ")
    assert (g.scope, g.metric, g.op, g.threshold, g.expression) == (None, "log_loss", ">", 0.35, "log_loss>0.35")
    g = parse_gate("validation.accuracy < 0.9")
    assert (g.scope, g.metric, g.op, g.threshold, g.delta) == ("validation", "accuracy", "<", 0.9, False)
    g = parse_gate("delta.log_loss >= 1e-2")
    assert (g.scope, g.metric, g.op, g.threshold, g.delta) == (None, "log_loss", ">=", 0.01, True)
    g = parse_gate("delta.fold.2.ece <= -0.5")
    assert (g.scope, g.metric, g.delta) == ("fold.2", "ece", True)
    assert parse_gate("overall.log_loss > 1").scope is None


@pytest.mark.parametrize("text", ["log_loss", "log_loss = 0.3", "log_loss > abc", "log_loss > nan", "> 0.3", "log_loss >> 1"])
def test_bad_syntax_is_a_usage_error(text):
    with pytest.raises(UsageError, match=re.escape(f"--fail-if {text!r}")):
        parse_gate(text)


def test_unknown_metric_is_a_usage_error_naming_the_known_ones():
    with pytest.raises(UsageError) as info:
        parse_gate("logloss > 0.3")
    message = str(info.value)
    assert message.startswith("--fail-if 'logloss > 0.3': unknown metric 'logloss'; known metrics: n_examples, ")
    for name in ("log_loss", "accuracy", "ece", "brier_score"):
        assert name in message
    assert "log_loss_ci95" not in known_metrics()


def test_unknown_scope_is_a_usage_error_naming_the_splits(evaluation):
    with pytest.raises(UsageError, match=re.escape(
        "--fail-if 'valid.log_loss > 1': unknown scope 'valid' in run 'data'; known scopes: (none: overall), train, validation"
    )):
        check_gates(parse_gates(["valid.log_loss > 1"]), evaluation)


def test_gates_at_their_boundaries(evaluation):
    value = evaluation.overall.log_loss
    # The condition "fails" the gate: exactly at the threshold only >= and <= hold.
    assert _outcomes([f"log_loss > {value!r}"], evaluation) == ["pass"]
    assert _outcomes([f"log_loss >= {value!r}"], evaluation) == ["fail"]
    assert _outcomes([f"log_loss < {value!r}"], evaluation) == ["pass"]
    assert _outcomes([f"log_loss <= {value!r}"], evaluation) == ["fail"]
    accuracy = evaluation.run.by_split["validation"].accuracy  # 2 of 3
    assert _outcomes([f"validation.accuracy < {accuracy!r}", f"validation.accuracy <= {accuracy!r}"], evaluation) == ["pass", "fail"]


def test_results_record_value_and_outcome(evaluation):
    report = check_gates(parse_gates(["log_loss > 0.1", "train.n_examples < 4"]), evaluation)
    assert not report.passed and len(report.failures) == 2
    first = report.to_dict()["results"][0]
    assert first == {
        "expression": "log_loss > 0.1", "run": "data", "kind": "metric", "scope": "overall",
        "metric": "log_loss", "op": ">", "threshold": 0.1, "value": evaluation.overall.log_loss,
        "outcome": "fail", "failed": True, "detail": "",
    }
    assert "FAIL  train.n_examples < 4  [run data]  value 3" in gates_text(report)


def test_an_undefined_value_fails_its_gate():
    one_class = losslens.evaluate(pd.DataFrame({"label": ["a", "a"], "p_a": [0.9, 0.8], "p_b": [0.1, 0.2]}))
    # H(P̂) = 0, so the relative information gain is undefined.
    (result,) = check_gates(parse_gates(["relative_information_gain < 0"]), one_class).results
    assert result.outcome == "undefined" and result.failed and result.value is None


def test_warning_gates(evaluation):
    clipped = losslens.evaluate(pd.DataFrame({"label": [1, 0], "y_prob": [0.0, 0.1]}))
    codes = [w.code for w in clipped.warnings]
    assert "clipped_probabilities" in codes
    report = check_gates(parse_gates(fail_on_warning=["clipped_probabilities"]), clipped)
    assert [r.outcome for r in report.results] == ["fail"]
    assert "clipped_probabilities [overall]" in report.results[0].detail
    assert not check_gates(parse_gates(fail_on_warning=["any"]), clipped).passed
    assert check_gates(parse_gates(fail_on_warning=["unnormalized_rows"]), clipped).passed
    with pytest.raises(UsageError, match=re.escape("--fail-on-warning 'clipped': unknown warning code; known: any, ")):
        parse_gates(fail_on_warning=["clipped"])


def test_delta_gates_need_a_baseline_and_compare_with_it(evaluation):
    with pytest.raises(UsageError, match=re.escape("--fail-if 'delta.log_loss > 0': a delta gate needs --baseline PREVIOUS.json")):
        check_gates(parse_gates(["delta.log_loss > 0"]), evaluation)
    previous = losslens.evaluate(DF.assign(y_prob=[0.8, 0.7, 0.4, 0.2, 0.1, 0.6])).to_dict()
    baseline = compare_with_baseline(evaluation, previous, "prev.json")
    delta = evaluation.overall.log_loss - previous["runs"][0]["overall"]["log_loss"]
    assert delta < 0  # 0.9 instead of 0.8 for a positive: better now
    assert _outcomes([f"delta.log_loss > {delta!r}", f"delta.log_loss >= {delta!r}", "delta.validation.log_loss > 0"],
                     evaluation, baseline) == ["pass", "fail", "pass"]


def test_delta_gate_on_a_split_missing_from_the_baseline_fails(evaluation):
    previous = losslens.evaluate(DF.drop(columns="split")).to_dict()
    baseline = compare_with_baseline(evaluation, previous, "prev.json")
    (result,) = check_gates(parse_gates(["delta.validation.log_loss > 1"]), evaluation, baseline).results
    assert result.outcome == "undefined" and "no split 'validation'" in result.detail
