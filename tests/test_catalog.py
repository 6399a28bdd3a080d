"""The metric catalog: one entry per metric of evaluation.Metrics, read by gates, baseline and reporters."""

from dataclasses import fields

import pytest

from losslens import catalog
from losslens.baseline import MetricDelta
from losslens.errors import UsageError
from losslens.evaluation import Metrics
from losslens.gates import known_metrics, parse_gate

#: Fields of Metrics that are not metrics: how the interval was made, and the bootstrap block.
NOT_METRICS = {"log_loss_ci95_method", "bootstrap"}


def test_every_metric_field_has_exactly_one_entry_in_field_order():
    # Adding a field to Metrics without its catalog entry (or the reverse) fails here; the
    # order is the order of the JSON's metric_deltas.
    metric_fields = [f.name for f in fields(Metrics) if f.name not in NOT_METRICS]
    assert [m.name for m in catalog.METRICS] == metric_fields


def test_every_view_names_known_metrics():
    for name, metrics in catalog.VIEWS.items():
        assert metrics and all(catalog.metric(m) is catalog._BY_NAME[m] for m in metrics), name


def test_gate_names_are_the_single_number_metrics():
    assert known_metrics() == catalog.metric_names()
    assert "log_loss" in known_metrics() and "log_loss_ci95" not in known_metrics()
    with pytest.raises(UsageError, match="unknown metric 'log_loss_ci95'"):
        parse_gate("log_loss_ci95 > 1")


@pytest.mark.parametrize("name, better", [
    ("log_loss", "lower"), ("brier_score", "lower"), ("ece", "lower"), ("kl_bits", "lower"),
    ("accuracy", "higher"), ("information_gain_bits", "higher"), ("relative_information_gain", "higher"),
    ("n_examples", None), ("label_entropy_bits", None), ("target_entropy_bits", None),
])
def test_better_direction_drives_the_baseline_regression_rule(name, better):
    assert catalog.better(name) == better
    worse = {"lower": 1.0, "higher": -1.0, None: 1.0}[better]
    delta = MetricDelta(name, 0.5, 0.5 + worse, catalog.better(name))
    assert delta.regression is (better is not None)


def test_names_follow_the_house_rule():
    # *_loss lower is better; *_bits carry their unit; shares print as percent.
    for m in catalog.METRICS:
        if m.name.endswith("_loss"):
            assert m.better == "lower"
        if m.name.endswith("_bits"):
            assert m.unit == "bits"
        if m.name.endswith("_share"):
            assert m.kind == catalog.SHARE


def test_a_name_not_in_the_catalog_still_prints():
    assert catalog.metric("n_new_things").kind == catalog.COUNT
    assert catalog.metric("something_new").kind == catalog.NUMBER and catalog.better("something_new") is None


def test_every_language_model_metric_field_has_an_entry_for_its_layouts():
    # LMMetrics' fields are the catalog's token/sequence metrics: the shared ones (log_loss...)
    # plus LM_METRICS in field order. A field added there without an entry (or the reverse) fails here.
    from losslens.lm.evaluation import LMMetrics

    lm_fields = [f.name for f in fields(LMMetrics)]
    entries = [m.name for m in catalog.METRICS + catalog.LM_METRICS
               if catalog.TOKENS in m.layouts and m.name in lm_fields]
    assert set(entries) == set(lm_fields)
    own = [m.name for m in catalog.LM_METRICS if m.name in lm_fields]
    assert own == [n for n in lm_fields if n in own]
    assert catalog.metric_names(catalog.CLASSIFIER) == tuple(
        m.name for m in catalog.METRICS if m.kind != catalog.INTERVAL)  # classifier JSON unchanged
    assert "bits_per_byte" in known_metrics() and catalog.better("bits_per_byte") == "lower"
    assert catalog.better("acc_norm") == "higher" and "acc_norm" in catalog.metric_names(catalog.MULTIPLE_CHOICE)
