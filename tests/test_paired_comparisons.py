"""Paired comparisons that decide: checkpoints of real scikit-learn models through the command line.

Each figure of a comparison (accuracy delta and its interval, McNemar's exact test, the
normal-test p-value of the log-loss delta, Benjamini–Hochberg adjusted p-values, the minimum
detectable effect, clustered standard errors, the paired bootstrap, the ``significant`` gate)
is checked against numpy by hand, scipy or statsmodels. The lm-eval fixtures (base vs tuned,
written by lm-evaluation-harness itself) get McNemar and verdicts per task.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from losslens import run_job
from losslens.lm.evaluation import ratio_ci95

Z95 = norm.ppf(0.975)
LM_EVAL = Path(__file__).parent / "data" / "lm_eval"


def _digits_checkpoints(directory: Path, cs=(0.1, 1.0, 0.03, 0.01)) -> dict:
    """Logistic regressions on scikit-learn's digits at several C, test-set predictions to Parquet."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test, _, ids = train_test_split(x / 16, y, np.arange(len(y)), test_size=0.3,
                                                                random_state=0)
    out = {}
    for c in cs:
        model = LogisticRegression(C=c, max_iter=5000).fit(x_train, y_train)
        probs = model.predict_proba(x_test)
        frame = pd.DataFrame({"id": ids, "label": y_test, "passage": ids // 7})
        for j, name in enumerate(model.classes_):
            frame[f"p_{name}"] = probs[:, j]
        path = directory / f"C{c}.parquet"
        # Rows shuffled differently per file: pairing must be by id, not by row.
        frame.sample(frac=1.0, random_state=len(out)).to_parquet(path, index=False)
        out[c] = (path, frame.set_index("id").sort_index())
    return out


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return _digits_checkpoints(tmp_path_factory.mktemp("digits"))


def _loss_correct(frame: pd.DataFrame):
    probs = frame[[f"p_{k}" for k in range(10)]].to_numpy()
    label = frame["label"].to_numpy()
    return -np.log(probs[np.arange(len(label)), label]), probs.argmax(axis=1) == label


def test_accuracy_delta_mcnemar_p_value_and_mde_against_references(digits, run_cli_json):
    (ref_path, ref), (cand_path, cand) = digits[0.1], digits[1.0]
    document = run_cli_json(ref_path, cand_path)
    (c,) = document["comparisons"]
    loss_r, right_r = _loss_correct(ref)
    loss_c, right_c = _loss_correct(cand)
    n = len(ref)
    assert c["n_paired"] == n

    # Accuracy delta: the textbook paired interval on the 0/1 differences, by hand with numpy.
    flips = right_c.astype(float) - right_r.astype(float)
    half = Z95 * flips.std(ddof=1) / math.sqrt(n)
    assert c["accuracy_delta"] == pytest.approx(flips.mean(), rel=1e-12)
    assert c["accuracy_delta_ci95"] == pytest.approx([flips.mean() - half, flips.mean() + half], rel=1e-12)

    # McNemar's exact test against statsmodels, counts both ways.
    table = [[np.sum(right_r & right_c), np.sum(right_r & ~right_c)],
             [np.sum(~right_r & right_c), np.sum(~right_r & ~right_c)]]
    assert c["mcnemar"]["improved"] == table[1][0] and c["mcnemar"]["worsened"] == table[0][1]
    assert c["mcnemar"]["improved"] + c["mcnemar"]["worsened"] > 10  # real flips, not a degenerate case
    assert c["mcnemar"]["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-9)

    # The log-loss delta's p-value: the normal test of the interval's own standard error (scipy).
    # log values from numpy here and from the engine's own path: compared at 1e-9, not bitwise.
    d = loss_c - loss_r
    se = d.std(ddof=1) / math.sqrt(n)
    assert c["log_loss_delta"] == pytest.approx(d.mean(), rel=1e-9)
    assert c["log_loss_delta_ci95"] == pytest.approx([d.mean() - Z95 * se, d.mean() + Z95 * se], rel=1e-9)
    # Far in the tail (p ~ 1e-182): the p-value keeps its relative precision there.
    assert c["log_loss_delta_p_value"] == pytest.approx(2 * norm.sf(abs(d.mean()) / se), rel=1e-6)
    # Minimum detectable effect at 80 % power, α = 0.05: (z_0.975 + z_0.8)·SE, in nats per example.
    assert c["minimum_detectable_effect"] == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * se, rel=1e-9)
    assert c["verdict"] == "better" and d.mean() < 0
    assert "cluster" not in c and "bootstrap" not in c
    from losslens.catalog import COMPARISON_FIELDS

    # Every classifier figure the catalog describes is in the JSON (those of --cluster with it: see below).
    classifier = {m.name for m in COMPARISON_FIELDS if "classifier" in m.layouts}
    assert classifier - set(c) == {"cluster", "log_loss_delta_se_clustered"}


def test_adjusted_p_values_are_benjamini_hochberg_across_the_jobs_comparisons(tmp_path, run_cli_json):
    """Breast-cancer checkpoints close to each other: p-values between 0 and 1, adjusted together."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test, _, ids = train_test_split(x, y, np.arange(len(y)), test_size=0.5,
                                                                random_state=0)
    scale = StandardScaler().fit(x_train)
    paths, losses = [], []
    for c in (1.0, 0.3, 0.1, 3.0, 2.0):
        p = LogisticRegression(C=c, max_iter=5000).fit(scale.transform(x_train), y_train).predict_proba(
            scale.transform(x_test))[:, 1]
        paths.append(tmp_path / f"C{c}.parquet")
        pd.DataFrame({"id": ids, "label": y_test, "y_prob": p}).to_parquet(paths[-1])
        losses.append(-np.log(np.where(y_test == 1, p, 1 - p)))
    document = run_cli_json(*paths)
    comparisons = document["comparisons"]
    assert len(comparisons) == 4
    raw = []
    for c, loss in zip(comparisons, losses[1:]):
        d = loss - losses[0]
        raw.append(2 * norm.sf(abs(d.mean()) / (d.std(ddof=1) / math.sqrt(len(d)))))
    assert [c["log_loss_delta_p_value"] for c in comparisons] == pytest.approx(raw, rel=1e-6)
    assert 0 < min(raw) and max(raw) < 1 and len(set(np.round(raw, 6))) == 4  # a real ordering to adjust
    expected = multipletests(raw, method="fdr_bh")[1]
    assert [c["log_loss_delta_p_value_adjusted"] for c in comparisons] == pytest.approx(list(expected), rel=1e-6)
    for c, p in zip(comparisons, expected):
        verdict = "no detectable change" if p >= 0.05 else ("better" if c["log_loss_delta"] < 0 else "worse")
        assert c["verdict"] == verdict


def test_clustered_standard_error_against_a_hand_loop(digits, run_cli_json):
    (ref_path, ref), (cand_path, cand) = digits[0.1], digits[0.03]
    document = run_cli_json(ref_path, cand_path, "--cluster", "passage")
    (c,) = document["comparisons"]
    d = _loss_correct(cand)[0] - _loss_correct(ref)[0]
    clusters = ref["passage"].to_numpy()
    # Miller (2024), with inspect-ai's small-sample factor C/(C − 1), written as a plain loop.
    mean = d.mean()
    groups = sorted(set(clusters.tolist()))
    total = 0.0
    for g in groups:
        s = sum(di - mean for di, ci in zip(d, clusters) if ci == g)
        total += s * s
    se = math.sqrt(len(groups) / (len(groups) - 1) * total) / len(d)
    assert c["cluster"] == {"column": "passage", "n_clusters": len(groups)}
    assert c["log_loss_delta_se_clustered"] == pytest.approx(se, rel=1e-9)
    # The interval, p-value and MDE use the clustered error, and the note says so.
    assert c["log_loss_delta_ci95"] == pytest.approx([mean - Z95 * se, mean + Z95 * se], rel=1e-9)
    assert c["minimum_detectable_effect"] == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * se, rel=1e-9)
    assert "clustered on 'passage'" in c["note"]
    # Seven consecutive-id examples per passage: not the unclustered error.
    assert se != pytest.approx(d.std(ddof=1) / math.sqrt(len(d)), rel=1e-3)


def test_cluster_column_must_exist(digits, run_cli):
    done = run_cli("metrics", digits[0.1][0], digits[1.0][0], "--cluster", "nope", "--json", "-")
    assert done.returncode == 2 and done.stdout == ""
    assert "column 'nope' (from --cluster) not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_paired_bootstrap_is_reproducible_and_agrees_with_the_normal_interval(digits, run_cli_json):
    (ref_path, ref), (cand_path, cand) = digits[0.1], digits[1.0]
    first = run_cli_json(ref_path, cand_path, "--bootstrap", "2000")["comparisons"][0]
    again = run_cli_json(ref_path, cand_path, "--bootstrap", "2000")["comparisons"][0]
    assert first["bootstrap"] == again["bootstrap"]  # fixed seed: the same report twice
    b = first["bootstrap"]
    assert b["n_resamples"] == 2000 and b["seed"] == 0
    # The percentile interval of Δ from resampled examples is close to the normal one (n = 540).
    lo, hi = first["log_loss_delta_ci95"]
    assert b["log_loss_delta_ci95"] == pytest.approx([lo, hi], rel=0.15)
    assert b["log_loss_delta_p_value"] == pytest.approx(1 / 2001)  # no resample as far from Δ as 0 is
    # scipy's paired percentile bootstrap of the mean difference, for the order of magnitude.
    from scipy.stats import bootstrap

    d = _loss_correct(cand)[0] - _loss_correct(ref)[0]
    reference = bootstrap((d,), np.mean, n_resamples=2000, method="percentile", random_state=1).confidence_interval
    assert b["log_loss_delta_ci95"] == pytest.approx([reference.low, reference.high], rel=0.1)
    assert b["accuracy_delta_ci95"][0] < first["accuracy_delta"] < b["accuracy_delta_ci95"][1]


def test_significant_gate_passes_a_noisy_regression_and_fails_a_real_one(digits, tmp_path, run_cli):
    # A sliver of the test set: a small regression there is not significant.
    (_, ref), (_, weaker) = digits[1.0], digits[0.1]
    small = ref.index[:30]
    ref_small, cand_small = tmp_path / "ref.parquet", tmp_path / "cand.parquet"
    ref.loc[small].reset_index().to_parquet(ref_small)
    mixed = ref.loc[small].copy()
    mixed.iloc[:4] = weaker.loc[small].iloc[:4]  # 4 examples from the weaker checkpoint
    mixed.reset_index().to_parquet(cand_small)
    done = run_cli("metrics", ref_small, cand_small, "--json", "-", "--fail-if", "delta.log_loss > 0 significant")
    (c,) = json.loads(done.stdout)["comparisons"]
    assert c["log_loss_delta"] > 0 and c["log_loss_delta_p_value_adjusted"] >= 0.05
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["gates"]["results"]
    assert result["outcome"] == "pass" and result["run"] == "cand" and "not significant" in result["detail"]
    assert result["significant"] is True
    # Without the keyword the same regression fails the gate.
    plain = run_cli("metrics", ref_small, cand_small, "--fail-if", "delta.log_loss > 0", "-q")
    assert plain.returncode == 1
    # The weaker checkpoint on the whole test set: a significant regression fails.
    worse = run_cli("metrics", digits[1.0][0], digits[0.1][0], digits[0.01][0], "--json", "-",
                    "--fail-if", "delta.log_loss > 0 significant")
    assert worse.returncode == 1
    results = json.loads(worse.stdout)["gates"]["results"]
    assert [r["run"] for r in results] == ["C0.1", "C0.01"]  # each later run against the first
    assert all(r["outcome"] == "fail" for r in results)


def test_significant_is_refused_where_it_cannot_apply(digits, run_cli):
    done = run_cli("metrics", digits[0.1][0], "--fail-if", "accuracy < 0.9 significant")
    assert done.returncode == 2 and "'significant' applies to 'delta.log_loss'" in done.stderr
    alone = run_cli("metrics", digits[0.1][0], "--fail-if", "delta.log_loss > 0 significant")
    assert alone.returncode == 2 and "or several inputs" in alone.stderr


def test_lm_eval_checkpoints_get_mcnemar_and_verdicts_per_task(run_cli_json):
    document = run_cli_json(LM_EVAL / "base", LM_EVAL / "tuned")
    comparisons = {c["candidate"].split("/")[-1]: c for c in document["comparisons"]}
    samples = {}
    for side in ("base", "tuned"):
        for path in (LM_EVAL / side).rglob("samples_*.jsonl"):
            task = path.name.split("_20")[0][len("samples_"):]
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            samples[side, task] = {r["doc_id"]: r for r in records}
    mc = [t for t in comparisons if t.startswith("zen_mc")]
    assert sorted(mc) == ["zen_mc", "zen_mc2", "zen_mc4"]
    for task in mc:
        base, tuned = samples["base", task], samples["tuned", task]
        right_b = np.array([base[k]["acc"] == 1.0 for k in sorted(base)])
        right_t = np.array([tuned[k]["acc"] == 1.0 for k in sorted(base)])  # lm-eval's own acc per question
        table = [[np.sum(right_b & right_t), np.sum(right_b & ~right_t)],
                 [np.sum(~right_b & right_t), np.sum(~right_b & ~right_t)]]
        c = comparisons[task]
        assert (c["mcnemar"]["improved"], c["mcnemar"]["worsened"]) == (table[1][0], table[0][1])
        assert c["mcnemar"]["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-9)
        assert c["accuracy_delta"] == pytest.approx(right_t.mean() - right_b.mean(), rel=1e-12)
    # Every task compared at once is one family: BH over all their p-values, verdicts from those.
    ordered = document["comparisons"]
    expected = multipletests([c["log_loss_delta_p_value"] for c in ordered], method="fdr_bh")[1]
    assert [c["log_loss_delta_p_value_adjusted"] for c in ordered] == pytest.approx(list(expected), rel=1e-9)
    for c, p in zip(ordered, expected):
        assert c["verdict"] == ("no detectable change" if p >= 0.05 else
                                "better" if c["log_loss_delta"] < 0 else "worse")
    assert {c["verdict"] for c in ordered} >= {"better"}  # the tuned model is better somewhere


def test_lm_eval_cluster_on_a_doc_field(run_cli_json, run_cli):
    document = run_cli_json(LM_EVAL / "base", LM_EVAL / "tuned", "--cluster", "doc.label")
    mc = next(c for c in document["comparisons"] if c["candidate"].endswith("/zen_mc"))
    labels = [json.loads(line)["doc"]["label"] for line in
              next((LM_EVAL / "base").rglob("samples_zen_mc_*.jsonl")).read_text().splitlines() if line.strip()]
    assert mc["cluster"] == {"column": "doc.label", "n_clusters": len(set(labels))}
    assert mc["log_loss_delta_se_clustered"] > 0
    # A task whose records have no doc.label (the rolling stdlib_docs) is compared unclustered.
    docs = next(c for c in document["comparisons"] if c["candidate"].endswith("/stdlib_docs"))
    assert "cluster" not in docs
    missing = run_cli("metrics", LM_EVAL / "base", LM_EVAL / "tuned", "--cluster", "doc.nope", "--json", "-")
    assert missing.returncode == 2 and missing.stdout == ""
    assert "--cluster 'doc.nope': no record of any task has this field" in missing.stderr


def test_token_weighted_delta_takes_documents_as_units():
    """Two token runs: the delta's error is the ratio estimator's over documents (Cochran), by hand."""
    rng = np.random.default_rng(3)
    lengths = rng.integers(3, 40, size=25)
    doc = np.repeat(np.arange(25), lengths)
    a = -rng.gamma(2.0, 1.0, size=doc.size)
    b = a + rng.normal(-0.05, 0.3, size=doc.size) - 0.2 * (doc % 3 == 0)
    b = np.minimum(b, 0.0)
    result = run_job([pd.DataFrame({"doc_id": doc, "logprob": a}), pd.DataFrame({"doc_id": doc, "logprob": b})],
                     names=["a", "b"])
    (c,) = result.comparisons
    nll_a = np.bincount(doc, weights=-a)
    nll_b = np.bincount(doc, weights=-b)
    n = np.bincount(doc).astype(float)
    lo, hi = ratio_ci95(nll_b - nll_a, n)
    delta = (nll_b - nll_a).sum() / n.sum()
    assert c.log_loss_delta == pytest.approx(delta, rel=1e-9)
    assert c.log_loss_delta_ci95 == pytest.approx((lo, hi), rel=1e-9)
    # Cochran's formula written out, and the p-value / MDE from the same error (nats per token).
    e = (nll_b - nll_a) - delta * n
    se = math.sqrt(e @ e / 24 / (25 * n.mean() ** 2))
    doc_dict = c.to_dict()
    assert doc_dict["log_loss_delta_p_value"] == pytest.approx(2 * norm.sf(abs(delta) / se), rel=1e-6)
    assert doc_dict["minimum_detectable_effect"] == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * se, rel=1e-9)
    assert doc_dict["mcnemar"] is None and doc_dict["accuracy_delta"] is None  # no 0/1 score per document
    assert delta > 0 and doc_dict["log_loss_delta_p_value_adjusted"] < 0.05 and doc_dict["verdict"] == "worse"


def test_terminal_and_report_show_the_decision(digits, run_cli, tmp_path):
    (ref_path, _), (cand_path, _) = digits[0.1], digits[1.0]
    done = run_cli("metrics", ref_path, cand_path, "--json", tmp_path / "out.json")
    assert done.returncode == 0, done.stderr
    (c,) = json.loads((tmp_path / "out.json").read_text())["comparisons"]
    mde = f"{c['minimum_detectable_effect']:.3g}"
    text = " ".join(done.stdout.split())  # the terminal wraps long lines
    assert f"better (adjusted p = {c['log_loss_delta_p_value_adjusted']:.2g})" in text
    assert f"with 540 examples you can detect a change of {mde} nats, not smaller" in text
    flips = c["mcnemar"]
    assert (f"{flips['improved']} became right, {flips['worsened']} became wrong "
            f"(McNemar exact p = {flips['p_value']:.2g})") in text
    report = run_cli("report", ref_path, cand_path, "-o", tmp_path / "r.html", "-q")
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    assert f"<dt>smallest detectable change</dt><dd>with 540 examples you can detect a change of {mde} nats" in page
    assert f"<dt>accuracy flips</dt><dd>{flips['improved']} became right" in page
    assert "C1.0 is better" in page


def test_token_runs_bootstrap_documents_not_tokens():
    """--bootstrap on token runs resamples documents: close to scipy's paired bootstrap of the ratio."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(5)
    lengths = rng.integers(2, 60, size=80)
    doc = np.repeat(np.arange(80), lengths)
    a = -rng.gamma(2.0, 1.0, size=doc.size)
    # Whole documents shift together: tokens are not independent units here.
    b = np.minimum(a + rng.normal(0.0, 0.6, size=80)[doc] + rng.normal(0, 0.05, size=doc.size), 0.0)
    frames = [pd.DataFrame({"doc_id": doc, "logprob": a}), pd.DataFrame({"doc_id": doc, "logprob": b})]
    first = run_job(frames, names=["a", "b"], bootstrap=3000).comparisons[0].to_dict()["bootstrap"]
    assert run_job(frames, names=["a", "b"], bootstrap=3000).comparisons[0].to_dict()["bootstrap"] == first
    diff = np.bincount(doc, weights=a - b)  # Σ nll_b − Σ nll_a per document
    n = np.bincount(doc).astype(float)
    scipy_ci = bootstrap((diff, n), lambda x, w: x.sum() / w.sum(), paired=True, vectorized=False,
                         n_resamples=3000, method="percentile", random_state=2).confidence_interval
    width = scipy_ci.high - scipy_ci.low
    assert first["log_loss_delta_ci95"] == pytest.approx([scipy_ci.low, scipy_ci.high], abs=0.1 * width)
    # Tokens resampled as if independent would give a far narrower interval.
    d_tok = a - b
    token_se = d_tok.std(ddof=1) / math.sqrt(d_tok.size)
    assert 2 * Z95 * token_se < 0.5 * width


def test_lm_eval_bootstrap_is_reproducible(run_cli_json):
    first = run_cli_json(LM_EVAL / "base", LM_EVAL / "tuned", "--bootstrap", "500")
    again = run_cli_json(LM_EVAL / "base", LM_EVAL / "tuned", "--bootstrap", "500")
    boots = [c["bootstrap"] for c in first["comparisons"]]
    assert boots == [c["bootstrap"] for c in again["comparisons"]]
    mc = next(c for c in first["comparisons"] if c["candidate"].endswith("/zen_mc"))
    assert mc["bootstrap"]["n_resamples"] == 500 and "accuracy_delta_ci95" in mc["bootstrap"]
    lo, hi = mc["bootstrap"]["log_loss_delta_ci95"]
    assert lo < mc["log_loss_delta"] < hi


def test_significant_gate_on_lm_eval_tasks_fails_exactly_the_worse_ones(run_cli):
    done = run_cli("metrics", LM_EVAL / "base", LM_EVAL / "tuned", "--json", "-",
                   "--fail-if", "delta.log_loss > 0 significant")
    document = json.loads(done.stdout)
    worse = {c["candidate"] for c in document["comparisons"] if c["verdict"] == "worse"}
    failed = {r["run"] for r in document["gates"]["results"] if r["failed"]}
    assert worse and failed == worse and done.returncode == 1
    assert len(document["gates"]["results"]) == len(document["comparisons"])
