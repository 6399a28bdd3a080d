"""Paired deltas of Brier, p(gold) and bits per byte against scikit-learn, scipy and hand-worked values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import brier_score_loss

from losslens import run_job
from losslens.paired_stats import clustered_standard_error, ratio_difference_se

Z95 = stats.norm.ppf(0.975)
LM_EVAL = Path(__file__).parent / "data" / "lm_eval"


def _breast_cancer_checkpoints(directory: Path) -> list[Path]:
    """Two logistic regressions (C = 0.01 and 1) on scikit-learn's breast cancer data, shuffled per file."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    x_tr, x_te, y_tr, y_te, _, ids = train_test_split(x, y, np.arange(len(y)), test_size=0.4, random_state=0)
    paths = []
    for i, c in enumerate((0.01, 1.0)):
        probs = LogisticRegression(C=c, max_iter=5000).fit(x_tr, y_tr).predict_proba(x_te)
        frame = pd.DataFrame({"id": ids, "label": y_te, "p_0": probs[:, 0], "p_1": probs[:, 1]})
        paths.append(directory / f"C{c}.parquet")
        frame.sample(frac=1.0, random_state=i).to_parquet(paths[-1], index=False)
    return paths


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    return _breast_cancer_checkpoints(tmp_path_factory.mktemp("cancer"))


def _by_id(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).set_index("id").sort_index()


def test_brier_and_p_gold_deltas_against_scikit_learn_and_the_paired_formula(cancer, run_cli_json):
    out = run_cli_json(*cancer)
    (c,) = out["comparisons"]
    ref, cand = _by_id(cancer[0]), _by_id(cancer[1])
    y = ref["label"].to_numpy()
    # scikit-learn's binary Brier score of each run; both runs cover the same ids, so the paired
    # mean difference is exactly the difference of the two scores.
    expected = brier_score_loss(y, cand["p_1"]) - brier_score_loss(y, ref["p_1"])
    assert c["brier_score_delta"] == pytest.approx(expected, rel=1e-9)
    d = (cand["p_1"] - y) ** 2 - (ref["p_1"] - y) ** 2
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert c["brier_score_delta_ci95"] == pytest.approx([expected - Z95 * se, expected + Z95 * se], rel=1e-9)
    assert c["brier_score_delta_p_value"] == pytest.approx(2 * stats.norm.sf(abs(expected) / se), rel=1e-6)
    # p(gold): the probability each run gives the true class.
    gold = np.where(y == 1, cand["p_1"], cand["p_0"]) - np.where(y == 1, ref["p_1"], ref["p_0"])
    se = gold.std(ddof=1) / math.sqrt(len(gold))
    assert c["p_gold_delta"] == pytest.approx(gold.mean(), rel=1e-9)
    assert c["p_gold_delta_ci95"] == pytest.approx([gold.mean() - Z95 * se, gold.mean() + Z95 * se], rel=1e-9)
    assert c["p_gold_delta_p_value"] == pytest.approx(stats.ttest_1samp(gold, 0).pvalue, rel=0.05)  # z vs t
    assert c["p_gold_delta"] > 0 and c["brier_score_delta"] < 0  # the less regularised model is sharper here


def test_multiclass_brier_delta_against_scikit_learn(tmp_path, run_cli_json):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    paths = []
    for c in (0.05, 5.0):
        probs = LogisticRegression(C=c, max_iter=5000).fit(x[::2], y[::2]).predict_proba(x[1::2])
        frame = pd.DataFrame({"id": np.arange(75), "label": y[1::2], **{f"p_{k}": probs[:, k] for k in range(3)}})
        paths.append(tmp_path / f"C{c}.csv")
        frame.to_csv(paths[-1], index=False)
    (c,) = run_cli_json(*paths)["comparisons"]
    frames = [pd.read_csv(p) for p in paths]
    scores = [brier_score_loss(f["label"], f[["p_0", "p_1", "p_2"]].to_numpy(), labels=[0, 1, 2]) for f in frames]
    # scikit-learn's multiclass Brier score is Σ_k (q_k − y_k)², the run's own brier_score.
    assert c["brier_score_delta"] == pytest.approx(scores[1] - scores[0], rel=1e-9)


def test_bootstrap_of_the_deltas_equals_scipys_paired_bootstrap_at_the_same_seed(cancer, run_cli_json):
    out = run_cli_json(*cancer, "--bootstrap", "999", "--seed", "7")
    boot = out["comparisons"][0]["bootstrap"]
    ref, cand = _by_id(cancer[0]), _by_id(cancer[1])
    y = ref["label"].to_numpy()
    brier_r, brier_c = (ref["p_1"] - y).to_numpy() ** 2, (cand["p_1"] - y).to_numpy() ** 2
    # The collector pairs in the reference file's row order: scipy resamples the same units.
    order = pd.read_parquet(cancer[0])["id"].to_numpy()
    pos = np.searchsorted(ref.index.to_numpy(), order)

    def mean_difference(a, b, axis=-1):
        return (b - a).mean(axis=axis)

    result = stats.bootstrap((brier_r[pos], brier_c[pos]), mean_difference, paired=True, n_resamples=999,
                             method="percentile", rng=np.random.default_rng(7))
    ci = result.confidence_interval
    # The same draws (numpy's integers from one seed) and the same linear percentile: equal to
    # rounding of the means.
    assert boot["brier_score_delta_ci95"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    assert 0 < boot["p_gold_delta_p_value"] <= 1 and len(boot["p_gold_delta_ci95"]) == 2


def test_ratio_difference_se_by_hand_and_as_cochran_with_shared_denominators():
    a_r, b_r = np.array([3.0, 1.0, 4.0]), np.array([2.0, 1.0, 3.0])
    a_c, b_c = np.array([2.0, 1.0, 2.0]), np.array([2.0, 2.0, 3.0])
    # Hand-worked: R_r = 8/6, R_c = 5/7; z_i = (a_c − R_c b_c)/7 − (a_r − R_r b_r)/6.
    z = (a_c - 5 / 7 * b_c) / 7 - (a_r - 8 / 6 * b_r) / 6
    assert ratio_difference_se(a_r, b_r, a_c, b_c) == pytest.approx(math.sqrt(3 / 2 * (z @ z)), rel=1e-12)
    # With one denominator it is the clustered error of the per-unit ratios weighted by it.
    rng = np.random.default_rng(0)
    nbytes = rng.integers(50, 900, 40).astype(float)
    nll_a, nll_b = nbytes * rng.uniform(0.5, 1.5, 40), nbytes * rng.uniform(0.5, 1.5, 40)
    expected, _ = clustered_standard_error((nll_b - nll_a) / nbytes, np.arange(40), nbytes)
    assert ratio_difference_se(nll_a, nbytes, nll_b, nbytes) == pytest.approx(expected, rel=1e-12)
    clusters = np.arange(40) // 4
    expected, _ = clustered_standard_error((nll_b - nll_a) / nbytes, clusters, nbytes)
    assert ratio_difference_se(nll_a, nbytes, nll_b, nbytes, clusters) == pytest.approx(expected, rel=1e-12)


def _token_runs(n_docs=60, seed=4):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 50, size=n_docs)
    doc = np.repeat(np.arange(n_docs), lengths)
    nbytes = rng.integers(1, 7, size=doc.size)
    a = -rng.gamma(2.0, 1.0, size=doc.size)
    b = np.minimum(a + rng.normal(-0.1, 0.5, size=n_docs)[doc], 0.0)  # documents move together
    return doc, nbytes, a, b


def test_bits_per_byte_delta_takes_documents_as_units():
    doc, nbytes, a, b = _token_runs()
    frames = [pd.DataFrame({"doc_id": doc, "logprob": lp, "n_bytes": nbytes}) for lp in (a, b)]
    result = run_job(frames, names=["a", "b"], bootstrap=999, seed=3)
    c = result.comparisons[0].to_dict()
    nll_a, nll_b = np.bincount(doc, weights=-a), np.bincount(doc, weights=-b)
    by = np.bincount(doc, weights=nbytes)
    delta = (nll_b.sum() - nll_a.sum()) / by.sum() / math.log(2)
    assert c["bits_per_byte_delta"] == pytest.approx(delta, rel=1e-9)
    # Each run's own bits per byte: the delta is their difference.
    runs = result.runs
    assert delta == pytest.approx(runs[1].overall.bits_per_byte - runs[0].overall.bits_per_byte, rel=1e-9)
    # Cochran's error of the ratio over documents, written out.
    e = (nll_b - nll_a) - delta * math.log(2) * by
    se = math.sqrt(len(by) / (len(by) - 1) * (e @ e)) / by.sum() / math.log(2)
    assert c["bits_per_byte_delta_ci95"] == pytest.approx([delta - Z95 * se, delta + Z95 * se], rel=1e-9)
    assert c["bits_per_byte_delta_p_value"] == pytest.approx(2 * stats.norm.sf(abs(delta) / se), rel=1e-6)
    # The bootstrap resamples documents: scipy's paired bootstrap of the document sums, same seed.

    def ratio_delta(x, y, w, axis=-1):
        return (y.sum(axis=axis) - x.sum(axis=axis)) / w.sum(axis=axis) / math.log(2)

    ci = stats.bootstrap((nll_a, nll_b, by), ratio_delta, paired=True, n_resamples=999, method="percentile",
                         rng=np.random.default_rng(3)).confidence_interval
    assert c["bootstrap"]["bits_per_byte_delta_ci95"] == pytest.approx([ci.low, ci.high], rel=1e-9)
    # Tokens taken as independent would give a far narrower interval than documents.
    token_se = np.std((a - b) / nbytes, ddof=1) / math.sqrt(a.size)
    assert token_se < 0.5 * se


def test_no_bits_per_byte_delta_without_byte_counts():
    doc, _, a, b = _token_runs()
    frames = [pd.DataFrame({"doc_id": doc, "logprob": lp}) for lp in (a, b)]
    c = run_job(frames, names=["a", "b"]).comparisons[0].to_dict()
    assert "bits_per_byte_delta" not in c and "brier_score_delta" not in c


def test_lm_eval_tasks_get_p_gold_and_bits_per_byte_deltas(run_cli_json):
    out = run_cli_json(LM_EVAL / "base", LM_EVAL / "tuned")
    by_unit = {}
    for c in out["comparisons"]:
        by_unit.setdefault(c["unit"], []).append(c)
    for c in by_unit["question"]:
        assert -1 <= c["p_gold_delta"] <= 1 and c["p_gold_delta_ci95"][0] <= c["p_gold_delta"]
        assert "bits_per_byte_delta" not in c
    for c in by_unit["byte"]:
        # A rolling task's loss is per byte with the bytes as weights: the same figure in bits.
        assert c["bits_per_byte_delta"] == pytest.approx(c["log_loss_delta"] / math.log(2), rel=1e-9)
        assert c["bits_per_byte_delta_ci95"] == pytest.approx([v / math.log(2) for v in c["log_loss_delta_ci95"]],
                                                              rel=1e-9)


def test_terminal_and_page_show_the_deltas(cancer, run_cli, run_cli_json, tmp_path):
    c = run_cli_json(*cancer)["comparisons"][0]
    text = run_cli("metrics", *cancer).stdout
    lo, hi = c["brier_score_delta_ci95"]
    assert f"Δ Brier {c['brier_score_delta']:+.4f} (95% CI {lo:+.4f} to {hi:+.4f}" in text
    assert f"Δ p(gold) {c['p_gold_delta']:+.4f}" in text
    run_cli("report", *cancer, "--output", tmp_path / "r.html", "--bootstrap", "200", "--quiet")
    page = (tmp_path / "r.html").read_text()
    assert f"<dt>Δ Brier</dt><dd>{c['brier_score_delta']:+.4f} (95% CI {lo:+.4f} to {hi:+.4f}" in page
    assert "Δ p(gold)" in page and "Δ Brier and Δ p(gold) are the" in page  # the how-to-read caption
    assert page.count("; Δ Brier ") == 1  # the paired bootstrap's line has its interval too


def test_lm_eval_page_lists_the_further_deltas(run_cli, run_cli_json, tmp_path):
    run_cli("report", LM_EVAL / "base", LM_EVAL / "tuned", "--output", tmp_path / "r.html", "--quiet")
    page = (tmp_path / "r.html").read_text()
    assert ">Δ p(gold)<" in page and ">Δ bits/byte<" in page
    c = {(c["reference"], c["unit"]): c for c in run_cli_json(LM_EVAL / "base", LM_EVAL / "tuned")["comparisons"]}
    rolling = c[("base/stdlib_docs", "byte")]
    lo, hi = rolling["bits_per_byte_delta_ci95"]
    assert f"{rolling['bits_per_byte_delta']:+.4f} bits (95% CI {lo:+.4f} to {hi:+.4f}" in page


def test_trend_nights_show_calibration_figures_where_a_run_has_them():
    from losslens.trend import nights_columns

    classifier = {"overall": {"log_loss": 0.3, "ece_equal_mass": 0.02, "temperature": 1.2}}
    lm = {"layout_kind": "tokens", "overall": {"log_loss": 3.0, "bits_per_byte": 1.1}}
    names = [e.name for e in nights_columns([classifier, lm])]
    assert names[:4] == ["log_loss", "log_loss_ci95", "accuracy", "ece"]
    # Only the figures some run has: this night's classifier has no RMS error or calibration loss.
    assert {"ece_equal_mass", "temperature"} <= set(names) and "calibration_loss" not in names
    assert "bits_per_byte" in names
    assert "ece_equal_mass" not in [e.name for e in nights_columns([lm])]


def _lm_eval_brier(folder: Path, task: str) -> dict:
    """Each question's Brier score from lm-eval's samples file, by hand: the softmax of the
    choices' log-likelihoods (``filtered_resps``) against the one-hot gold (``target``)."""
    import json

    (path,) = folder.glob(f"*/samples_{task}_*.jsonl")
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        ll = np.array([float(r[0]) for r in record["filtered_resps"]])
        q = np.exp(ll - ll.max())
        q /= q.sum()
        gold = np.zeros_like(q)
        gold[int(record["target"])] = 1.0
        out[record["doc_id"]] = float(((q - gold) ** 2).sum())
    return out


def test_lm_eval_multiple_choice_tasks_get_the_brier_delta_from_the_samples(run_cli_json):
    out = run_cli_json(LM_EVAL / "base", LM_EVAL / "tuned", "--bootstrap", "500")
    by_task = {c["candidate"].split("/", 1)[1]: c for c in out["comparisons"]}
    for task in ("zen_mc", "zen_mc2", "zen_mc4"):
        base, tuned = _lm_eval_brier(LM_EVAL / "base", task), _lm_eval_brier(LM_EVAL / "tuned", task)
        diff = np.array([tuned[k] - base[k] for k in sorted(base) if k in tuned])
        se = diff.std(ddof=1) / math.sqrt(len(diff))
        c = by_task[task]
        # softmax and exp in numpy here and in losslens: equal within a few ulps, not bit for bit
        assert c["brier_score_delta"] == pytest.approx(diff.mean(), rel=1e-12)
        assert c["brier_score_delta_ci95"] == pytest.approx([diff.mean() - Z95 * se, diff.mean() + Z95 * se],
                                                            rel=1e-9)
        assert c["bootstrap"]["brier_score_delta_ci95"][0] < diff.mean() < c["bootstrap"]["brier_score_delta_ci95"][1]
        # The task's own brier_score (lm-eval's, checked against its log) moves by the same amount
        runs = {r["name"].split("/", 1)[1] + "@" + r["name"].split("/", 1)[0]: r for r in out["runs"]}
        assert c["brier_score_delta"] == pytest.approx(
            runs[f"{task}@tuned"]["overall"]["brier_score"] - runs[f"{task}@base"]["overall"]["brier_score"], rel=1e-9)
    assert "brier_score_delta" not in by_task["zen_lambada"]  # one continuation: no Brier score
