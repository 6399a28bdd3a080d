"""Comparisons of runs: paired by id against a hand computation, unpaired, partly overlapping ids."""

import math
import re
import statistics

import numpy as np
import pandas as pd
import pytest

from losslens.comparison import LossCollector, compare_runs, weighted_mean_ci
from losslens.terminal import comparisons_text
from losslens.engine import evaluate_runs
from losslens.errors import InputError

Z95 = 1.959963984540054


def _runs(frames, **options):
    collector = LossCollector()
    evaluation = evaluate_runs(frames, names=[f"r{i}" for i in range(len(frames))], observers=[collector], **options)
    return evaluation, collector


# Reference: ids a b c d; candidate: ids b c d e -- three paired, one only on each side.
REF = pd.DataFrame({"id": ["a", "b", "c", "d"], "label": [1, 1, 0, 0], "y_prob": [0.8, 0.6, 0.3, 0.1]})
CAND = pd.DataFrame({"id": ["e", "d", "c", "b"], "label": [1, 0, 0, 1], "y_prob": [0.5, 0.2, 0.4, 0.9]})


def test_paired_delta_matches_a_hand_computation():
    evaluation, collector = _runs([REF, CAND], id="id")
    (c,) = compare_runs(evaluation, collector)
    # By hand, d = loss(candidate) - loss(reference) for b, c, d:
    #   b: -ln 0.9 + ln 0.6 = ln(0.6/0.9) = -0.4054651
    #   c: -ln 0.6 + ln 0.7 = ln(7/6)     =  0.1541507
    #   d: -ln 0.8 + ln 0.9 = ln(9/8)     =  0.1177830
    # mean = -0.1335314 / 3 = -0.0445105; deviations -0.3609546, 0.1986612, 0.1622935;
    # s² = (0.1302882 + 0.0394663 + 0.0263392) / 2 = 0.0980469, s = 0.3131244;
    # half-width = 1.959964 · 0.3131244 / √3 = 0.3543270.
    assert c.paired is True
    assert c.n_paired == 3
    assert c.log_loss_delta == pytest.approx(-0.0445105, abs=1e-7)
    assert c.log_loss_delta_ci95[0] == pytest.approx(-0.0445105 - 0.3543270, abs=1e-6)
    assert c.log_loss_delta_ci95[1] == pytest.approx(-0.0445105 + 0.3543270, abs=1e-6)
    # And against the textbook formula with the standard library.
    d = [math.log(0.6 / 0.9), math.log(7 / 6), math.log(9 / 8)]
    half = Z95 * statistics.stdev(d) / math.sqrt(3)
    assert c.log_loss_delta == pytest.approx(statistics.mean(d), rel=1e-12)
    assert c.log_loss_delta_ci95 == pytest.approx((statistics.mean(d) - half, statistics.mean(d) + half), rel=1e-12)
    assert c.share_improved == pytest.approx(1 / 3) and c.share_worsened == pytest.approx(2 / 3)
    assert c.log_loss_reference == pytest.approx(-(math.log(0.6) + math.log(0.7) + math.log(0.9)) / 3, rel=1e-12)
    assert c.verdict == "no detectable change"  # adjusted p ≥ 0.05 (the words)


def test_examples_in_only_one_run_are_counted_and_listed():
    evaluation, collector = _runs([REF, CAND], id="id")
    (c,) = compare_runs(evaluation, collector)
    assert (c.n_reference_only, c.n_candidate_only) == (1, 1)
    assert c.reference_only_ids == ("a",) and c.candidate_only_ids == ("e",)
    assert "1 example(s) only in 'r0' and 1 only in 'r1'" in c.note
    # Worst regressions: c (+0.154) before d (+0.118); b improved and is not listed.
    assert [r.id for r in c.worst_regressions] == ["c", "d"]
    assert c.worst_regressions[0].loss_delta == pytest.approx(math.log(7 / 6), rel=1e-12)
    document = c.to_dict()
    assert document["paired"] is True and document["n_paired"] == 3
    assert {"reference", "candidate", "log_loss_delta", "log_loss_delta_ci95", "share_improved"} <= set(document)


def test_metric_deltas_compare_whole_runs():
    evaluation, collector = _runs([REF, CAND], id="id")
    (c,) = compare_runs(evaluation, collector)
    a, b = evaluation.runs
    assert c.metric_deltas["log_loss"] == pytest.approx(b.overall.log_loss - a.overall.log_loss, rel=1e-12)
    assert c.metric_deltas["accuracy"] == pytest.approx(b.overall.accuracy - a.overall.accuracy)
    assert "log_loss_ci95" not in c.metric_deltas


def test_no_shared_ids_gives_an_unpaired_comparison():
    other = CAND.assign(id=["v", "w", "x", "y"])
    evaluation, collector = _runs([REF, other], id="id")
    (c,) = compare_runs(evaluation, collector)
    assert c.paired is False and c.n_paired == 0
    assert (c.n_reference_only, c.n_candidate_only) == (4, 4)
    assert "share no id" in c.note
    assert c.share_improved is None


def test_unpaired_interval_combines_the_two_standard_errors():
    evaluation, _ = _runs([REF.drop(columns="id"), CAND.drop(columns="id")])  # no id column
    (c,) = compare_runs(evaluation, None)
    loss_a = [-math.log(0.8), -math.log(0.6), -math.log(0.7), -math.log(0.9)]
    loss_b = [-math.log(0.5), -math.log(0.8), -math.log(0.6), -math.log(0.9)]
    delta = statistics.mean(loss_b) - statistics.mean(loss_a)
    se = math.sqrt(statistics.variance(loss_a) / 4 + statistics.variance(loss_b) / 4)
    assert c.paired is False and c.n_reference_only is None
    assert c.log_loss_delta == pytest.approx(delta, rel=1e-12)
    assert c.log_loss_delta_ci95 == pytest.approx((delta - Z95 * se, delta + Z95 * se), rel=1e-9)
    assert "no id column" in c.note


def test_paired_weights_are_the_reference_runs():
    ref = REF.assign(w=[1.0, 2.0, 1.0, 1.0])
    cand = CAND.assign(w=[9.0, 9.0, 9.0, 9.0])  # ignored for pairing
    evaluation, collector = _runs([ref, cand], id="id", weight="w")
    (c,) = compare_runs(evaluation, collector)
    d = np.array([math.log(0.6 / 0.9), math.log(7 / 6), math.log(9 / 8)])
    assert c.log_loss_delta == pytest.approx(float(np.average(d, weights=[2, 1, 1])), rel=1e-12)
    assert c.share_improved == pytest.approx(0.5)


def test_duplicate_ids_within_a_run_are_an_input_error():
    dup = CAND.assign(id=["b", "c", "d", "b"])
    evaluation, collector = _runs([REF, dup], id="id")
    with pytest.raises(InputError, match=re.escape("run 'r1': id 'b' occurs more than once")):
        compare_runs(evaluation, collector)


def test_label_mismatch_between_runs_is_counted():
    changed = CAND.assign(label=[1, 1, 0, 1])  # d's label differs
    evaluation, collector = _runs([REF, changed], id="id")
    (c,) = compare_runs(evaluation, collector)
    assert c.n_label_mismatch == 1 and "different labels" in c.note


def test_large_shuffled_join_is_exact_and_fast():
    rng = np.random.default_rng(1)
    n = 100_000
    y = rng.integers(0, 2, n)
    p_ref = rng.uniform(0.05, 0.95, n)
    p_cand = rng.uniform(0.05, 0.95, n)
    ids = np.array([f"id{i}" for i in range(n)], dtype=object)
    order = rng.permutation(n)
    ref = pd.DataFrame({"id": ids, "label": y, "y_prob": p_ref})
    cand = pd.DataFrame({"id": ids[order], "label": y[order], "y_prob": p_cand[order]})
    evaluation, collector = _runs([ref, cand], id="id")
    (c,) = compare_runs(evaluation, collector)
    loss = lambda p: -np.log(np.where(y == 1, p, 1 - p))  # noqa: E731
    d = loss(p_cand) - loss(p_ref)
    assert c.n_paired == n
    assert c.log_loss_delta == pytest.approx(d.mean(), rel=1e-9)
    assert c.share_improved == pytest.approx((d < 0).mean())


def test_weighted_mean_ci_for_unit_weights_is_the_textbook_interval():
    values = np.array([0.3, -0.1, 0.25, 0.0, 0.9])
    mean, (lo, hi) = weighted_mean_ci(values, np.ones(5))
    half = Z95 * statistics.stdev(values) / math.sqrt(5)
    assert mean == pytest.approx(values.mean()) and (lo, hi) == pytest.approx((mean - half, mean + half))
    assert math.isnan(weighted_mean_ci(np.array([1.0]), np.ones(1))[1][0])


def test_format_comparisons_shows_runs_side_by_side():
    evaluation, collector = _runs([REF, CAND], id="id")
    text = comparisons_text(evaluation, compare_runs(evaluation, collector))
    assert "compared with 'r0' (the reference)" in text
    assert "r1 vs r0: Δ log loss -0.0445 nats" in text and "paired over 3 examples" in text
