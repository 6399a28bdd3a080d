"""Contamination evidence for language models (losslens.lm.contamination).

A real small model: the character n-gram of tests/lm_ngram.py trained on the Zen of Python. The
"seen" documents are the Zen's own lines (in its training text); the reference documents are
standard-library docstrings cut to lines of similar length (never seen). For every character the
n-gram gives its full next-character distribution, so the token file carries the exact log-prob,
rank, top log-prob and the mean μ and standard deviation σ of log p over the vocabulary, and
every score is checked against a computation written out here from the papers' definitions.
"""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens.lm import evaluate_lm, evaluate_lm_runs
from losslens.lm import documents as documents_module
from losslens.lm.contamination import auroc, auroc_ci95
from losslens.lm.documents import DocumentAccumulator, convert_batch
from losslens.lm.evaluation import document_score_arrays
from losslens.lm.layout import detect_lm_layout
from losslens.options import Options

# Means of the same float64 values summed in another order agree to a few ulps, not bitwise.
REL = 1e-12
K = 0.2


def seen_documents() -> dict[str, str]:
    """The Zen's non-empty lines: text the model was trained on."""
    lines = [line for line in zen_of_python().splitlines() if line.strip()]
    return {f"zen{i:02d}": line for i, line in enumerate(lines)}


def unseen_documents() -> dict[str, str]:
    """Standard-library docstrings cut into lines of about the Zen's length: never seen."""
    out = {}
    for name, text in held_out_documents().items():
        for j in range(0, min(len(text), 240), 60):
            out[f"{name}{j:03d}"] = text[j:j + 60]
    return out


@pytest.fixture(scope="module")
def model():
    vocabulary = "".join(seen_documents().values()) + "".join(unseen_documents().values())
    return CharNGram(3, alpha=0.1).fit(zen_of_python(), vocabulary)


def token_rows(docs: dict, model) -> pd.DataFrame:
    """One row per character with the exact next-character distribution's figures."""
    rows = []
    for doc, text in docs.items():
        padded = "\x02" * model.order + text
        for i, char in enumerate(text):
            history = padded[: model.order + i]
            p = np.array([model.prob(history, v) for v in model.vocab])
            logp = np.log(p)
            mu = float((p * logp).sum())
            sigma = math.sqrt(float((p * (logp - mu) ** 2).sum()))
            p_token = model.prob(history, char)
            rank = 1 + int((p > p_token).sum())
            rows.append((doc, char, math.log(p_token), mu, sigma, rank, math.log(p.max())))
    return pd.DataFrame(rows, columns=["doc_id", "token", "logprob", "mu", "sigma", "rank", "top_logprob"])


@pytest.fixture(scope="module")
def frames(model):
    return token_rows(seen_documents(), model), token_rows(unseen_documents(), model)


def hand_scores(frame: pd.DataFrame, texts: dict) -> pd.DataFrame:
    """Each score per document, from the definitions (Shi et al. 2023; Zhang et al. 2024; Carlini et al. 2021)."""
    out = {}
    for doc, group in frame.groupby("doc_id", sort=False):
        lp = group["logprob"].to_numpy()
        z = (lp - group["mu"].to_numpy()) / group["sigma"].to_numpy()
        m = max(1, int(len(lp) * K))
        out[doc] = {
            "min_k_prob": math.exp(np.sort(lp)[:m].mean()),
            "zlib_ratio": lp.mean() / len(zlib.compress(texts[doc].encode("utf-8"))),
            "min_k_plus_plus": np.sort(z)[:m].mean(),
            "rank1_share": int((group["rank"] == 1).sum()) / len(lp),
        }
    return pd.DataFrame(out).T


def scores_of(run) -> pd.DataFrame:
    arrays = document_score_arrays(run.documents, run.layout)
    return pd.DataFrame(arrays, index=list(run.documents.keys))


def test_the_token_files_are_the_n_gram_exactly(frames, model):
    seen, _ = frames
    # σ and μ from the distribution agree with a direct second computation (numpy's var).
    text = seen_documents()["zen00"]
    history = "\x02" * model.order + text[:5]
    p = np.array([model.prob(history, v) for v in model.vocab])
    assert p.sum() == pytest.approx(1.0, rel=1e-12)
    row = seen.iloc[5]
    assert row["mu"] == pytest.approx(np.average(np.log(p), weights=p), rel=REL)
    assert row["sigma"] == pytest.approx(math.sqrt(np.cov(np.log(p), aweights=p, bias=True)), rel=1e-9)


def test_scores_match_the_papers_formulas(frames, tmp_path):
    seen, _ = frames
    path = tmp_path / "seen.parquet"
    seen.to_parquet(path)
    run = evaluate_lm(str(path)).runs[0]
    got, want = scores_of(run), hand_scores(seen, seen_documents())
    assert list(got.index) == list(want.index)
    for name in ("min_k_prob", "zlib_ratio", "min_k_plus_plus", "rank1_share"):
        np.testing.assert_allclose(got[name].to_numpy(), want[name].to_numpy(), rtol=REL, err_msg=name)
    # The seen lines are mostly the model's first choice; a score that cannot be computed is absent.
    assert got["rank1_share"].mean() > 0.5
    assert run.worst_documents[0].zlib_ratio == pytest.approx(want.loc[run.worst_documents[0].document, "zlib_ratio"],
                                                              rel=REL)
    assert any("Min-K%++ from columns 'mu'" in note for note in run.layout.notes)


def test_rank_one_from_a_top_logprob_column(frames):
    seen, _ = frames
    frame = seen.drop(columns=["rank"])
    run = evaluate_lm(frame).runs[0]
    want = hand_scores(seen, seen_documents())
    np.testing.assert_allclose(scores_of(run)["rank1_share"].to_numpy(), want["rank1_share"].to_numpy(), rtol=REL)


def test_missing_columns_give_null_and_say_which(frames):
    seen, _ = frames
    run = evaluate_lm(seen[["doc_id", "logprob"]]).runs[0]
    got = scores_of(run)
    assert got["min_k_plus_plus"].isna().all() and got["rank1_share"].isna().all()
    assert got["zlib_ratio"].isna().all()  # no text, no token strings
    assert run.worst_documents[0].to_dict()["min_k_plus_plus"] is None
    note = next(n for n in run.layout.notes if n.startswith("Min-K%++ cannot be computed"))
    assert "'mu'" in note and "'sigma'" in note
    # A text column gives the zlib ratio without token strings (sequence layout too).
    texts = seen_documents()
    sequences = pd.DataFrame({"doc_id": list(texts), "text": list(texts.values()),
                              "logprob": seen.groupby("doc_id", sort=False)["logprob"].sum().to_numpy(),
                              "n_tokens": [len(t) for t in texts.values()]})
    got = scores_of(evaluate_lm(sequences).runs[0])
    np.testing.assert_allclose(got["zlib_ratio"].to_numpy(),
                               hand_scores(seen, texts)["zlib_ratio"].to_numpy(), rtol=REL)


def test_byte_level_bpe_tokens_are_decoded_before_compression():
    # GPT-2's convert_ids_to_tokens strings of "café au lait" + <|endoftext|>: the text is the real text.
    tokens = ["caf", "Ã©", "Ġau", "Ġlait", "<|endoftext|>"]
    frame = pd.DataFrame({"doc_id": 0, "token": tokens, "logprob": [-1.0, -2.0, -0.5, -0.25, -3.0]})
    run = evaluate_lm(frame).runs[0]
    want = np.mean(frame["logprob"]) / len(zlib.compress("café au lait".encode("utf-8")))
    assert scores_of(run)["zlib_ratio"].iloc[0] == pytest.approx(want, rel=REL)


def test_split_and_non_contiguous_documents_give_the_same_scores(frames, monkeypatch):
    seen, _ = frames
    reference = scores_of(evaluate_lm(seen).runs[0])
    table = pa.Table.from_pandas(seen, preserve_index=False)
    layout = detect_lm_layout(table.column_names, Options())
    for size in (1, 7, 100):
        parts = DocumentAccumulator(layout)
        for offset, batch in enumerate(table.to_batches(max_chunksize=size)):
            parts.add(convert_batch(batch, layout, "<t>", offset * size))
        docs = parts.finish()
        got = pd.DataFrame(document_score_arrays(docs, layout), index=list(docs.keys))
        np.testing.assert_allclose(got.to_numpy(), reference.to_numpy(), rtol=REL)
    # The second half of every third document moved to the end of the file: a second pass.
    halves = []
    for i, (doc, group) in enumerate(seen.groupby("doc_id", sort=False)):
        if i % 3 == 0:
            halves.append(group.iloc[len(group) // 2:])
    moved = pd.concat(halves)
    shuffled = pd.concat([seen.drop(index=moved.index), moved])
    run = evaluate_lm(shuffled).runs[0]
    assert run.documents.fragmented
    np.testing.assert_allclose(scores_of(run).loc[reference.index].to_numpy(), reference.to_numpy(), rtol=REL)
    # Many of them: the run is sorted by document instead.
    monkeypatch.setattr(documents_module, "FRAGMENT_LIMIT", 2)
    run = evaluate_lm(shuffled).runs[0]
    assert run.documents.sorted_by_document
    np.testing.assert_allclose(scores_of(run).loc[reference.index].to_numpy(), reference.to_numpy(), rtol=REL)


def test_auroc_is_sklearns():
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(0.3, 1, 40), rng.normal(0, 1, 25)
    pos[:5] = neg[:5]  # ties across the groups count one half
    labels = np.r_[np.ones(40), np.zeros(25)]
    assert auroc(pos, neg) == pytest.approx(roc_auc_score(labels, np.r_[pos, neg]), rel=0, abs=1e-12)


def test_reference_auroc_interval_and_standouts(frames, tmp_path):
    seen, unseen = frames
    seen_path, unseen_path = tmp_path / "seen.parquet", tmp_path / "unseen.csv"
    seen.to_parquet(seen_path)
    unseen.to_csv(unseen_path, index=False)
    run = evaluate_lm_runs([str(seen_path)], reference=str(unseen_path)).runs[0]
    reference = evaluate_lm(str(unseen_path)).runs[0]
    mine, theirs = scores_of(run), scores_of(reference)
    assert set(run.contamination) == {"min_k_prob", "zlib_ratio", "min_k_plus_plus", "rank1_share"}
    for name, evidence in run.contamination.items():
        labels = np.r_[np.ones(len(mine)), np.zeros(len(theirs))]
        want = roc_auc_score(labels, np.r_[mine[name].to_numpy(), theirs[name].to_numpy()])
        assert evidence.auroc == pytest.approx(want, rel=0, abs=1e-12), name
        lo, hi = evidence.auroc_ci95
        assert lo <= evidence.auroc <= hi
        p99 = np.quantile(theirs[name].to_numpy(), 0.99)
        assert evidence.n_above_reference_p99 == int((mine[name].to_numpy() > p99).sum())
    # The Zen's own lines look memorised against the unseen docstrings.
    for name in ("min_k_prob", "min_k_plus_plus", "rank1_share"):
        assert run.contamination[name].auroc > 0.5
        assert run.contamination[name].auroc_ci95[0] > 0.5
    top = run.standout_documents[0]
    assert top["scores"] and all(top[n] > run.contamination[n].reference_p99 for n in top["scores"])
    data = run.to_dict()
    assert data["contamination"]["min_k_prob"]["auroc"] == run.contamination["min_k_prob"].auroc
    assert data["contamination"]["min_k_prob"]["auroc_ci95"] == list(run.contamination["min_k_prob"].auroc_ci95)
    # Fixed seed: the same inputs give the same JSON, byte for byte.
    again = evaluate_lm_runs([str(seen_path)], reference=str(unseen_path)).runs[0]
    assert json.dumps(again.to_dict()) == json.dumps(data)


def test_bootstrap_interval_is_the_percentile_of_resampled_groups():
    pos, neg = np.array([0.9, 0.8, 0.4, 0.7]), np.array([0.1, 0.5, 0.3])
    rng = np.random.default_rng(7)
    want = []
    for _ in range(200):
        a, b = pos[rng.integers(0, 4, 4)], neg[rng.integers(0, 3, 3)]
        labels = np.r_[np.ones(4), np.zeros(3)]
        want.append(roc_auc_score(labels, np.r_[a, b]))
    lo, hi = auroc_ci95(pos, neg, resamples=200, seed=7)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(want, [0.025, 0.975])), rel=0, abs=1e-12)


def test_command_line_json_terminal_and_per_example(frames, tmp_path, run_cli):
    seen, unseen = frames
    seen.to_csv(tmp_path / "seen.csv", index=False)
    unseen.to_parquet(tmp_path / "unseen.parquet")
    out = run_cli("metrics", tmp_path / "seen.csv", "--reference", tmp_path / "unseen.parquet",
                  "--json", tmp_path / "out.json", "--per-example", tmp_path / "docs.csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "contamination evidence against the reference 'reference (unseen)'" in out.stdout
    assert "weak" in out.stdout and "Min-K%++" in out.stdout
    run = json.loads((tmp_path / "out.json").read_text())["runs"][0]
    assert run["contamination"]["min_k_plus_plus"]["auroc"] == 1.0
    want = hand_scores(seen, seen_documents())
    docs = pd.read_csv(tmp_path / "docs.csv").set_index("doc_id")
    for name in ("zlib_ratio", "min_k_plus_plus", "rank1_share"):
        np.testing.assert_allclose(docs.loc[want.index, name].to_numpy(), want[name].to_numpy(), rtol=REL)


@pytest.mark.parametrize("column, value, message", [
    ("sigma", -0.5, "column 'sigma', row 3: -0.5 is not a standard deviation; it is ≥ 0 (drop or mask the row)"),
    ("rank", 0, "column 'rank', row 3: 0.0 is not a token's rank; ranks are 1 (most probable) or more "
                "(if 'rank' holds something else, such as a worker's rank, rename the column)"),
    ("mu", 0.25, "column 'mu', row 3: 0.25 is not a mean log-probability; it is ≤ 0"),
])
def test_bad_score_columns_name_the_file_column_and_row(frames, tmp_path, run_cli, column, value, message):
    seen, _ = frames
    bad = seen.copy()
    bad.loc[2, column] = value
    bad.to_csv(tmp_path / "bad.csv", index=False)
    out = run_cli("metrics", tmp_path / "bad.csv", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    # The same file as --reference: the message says so.
    seen.to_csv(tmp_path / "good.csv", index=False)
    out = run_cli("metrics", tmp_path / "good.csv", "--reference", tmp_path / "bad.csv", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("losslens: error: --reference: ")


def test_reference_is_refused_where_it_cannot_apply(frames, tmp_path, run_cli):
    seen, _ = frames
    seen.to_csv(tmp_path / "seen.csv", index=False)
    out = run_cli("metrics", tmp_path / "seen.csv", "--reference", tmp_path / "seen.csv", "--engine", "dask",
                  cwd=tmp_path)
    assert out.returncode == 2 and "--reference" in out.stderr and "drop --engine dask" in out.stderr


@pytest.mark.parametrize("kind", ["ByteLevelBPETokenizer", "SentencePieceBPETokenizer"])
def test_zlib_ratio_of_real_tokenizer_strings_compresses_the_decoded_text(kind, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    texts = {"zen": zen_of_python(), "unicode": "Café — naïve façade, déjà vu; 日本語のテキスト。 Ünïcödé ✓\n"}
    tokenizer = getattr(tokenizers, kind)()
    # A small vocabulary: 日本語 stays split into byte pieces (byte-level) or <0xNN> pieces.
    tokenizer.train_from_iterator(list(texts.values()) * 3, vocab_size=300, min_frequency=1)
    rows, decoded = [], {}
    for doc, text in texts.items():
        encoding = tokenizer.encode(text)
        decoded[doc] = tokenizer.decode(encoding.ids)
        lps = -np.random.default_rng(len(doc)).exponential(1.0, len(encoding.tokens)).astype(np.float32)
        rows += [(doc, token, lp) for token, lp in zip(encoding.tokens, lps)]
    frame = pd.DataFrame(rows, columns=["doc_id", "token", "logprob"])
    frame.to_parquet(tmp_path / "tokens.parquet")
    if kind == "ByteLevelBPETokenizer":
        assert decoded == texts and frame["token"].str.contains("Ġ").any()
    run = evaluate_lm(tmp_path / "tokens.parquet").runs[0]
    got = scores_of(run)["zlib_ratio"]
    for doc in texts:
        lp = frame.loc[frame.doc_id == doc, "logprob"].to_numpy(np.float64)
        want = lp.mean() / len(zlib.compress(decoded[doc].encode("utf-8")))
        assert got[doc] == pytest.approx(want, rel=REL), doc


def test_a_null_first_token_is_not_scored_in_any_score(frames):
    # Hugging Face convention: nothing predicts a document's first token; its row holds nulls.
    seen, _ = frames
    first = ~seen["doc_id"].duplicated()
    frame = seen.astype({"rank": "float64"})
    frame.loc[first, ["logprob", "mu", "sigma", "rank", "top_logprob"]] = np.nan
    got = scores_of(evaluate_lm(frame).runs[0])
    want = hand_scores(seen[~first], seen_documents())
    for name in ("min_k_plus_plus", "rank1_share"):
        np.testing.assert_allclose(got[name].to_numpy(), want[name].to_numpy(), rtol=REL, err_msg=name)
    # The text still has the first character: the zlib length is of the whole line.
    lp = seen[~first].groupby("doc_id", sort=False)["logprob"].mean()
    sizes = [len(zlib.compress(t.encode())) for t in seen_documents().values()]
    np.testing.assert_allclose(got["zlib_ratio"].to_numpy(), lp.to_numpy() / sizes, rtol=REL)


def test_html_report_shows_the_evidence_escaped(frames, tmp_path, run_cli):
    seen, unseen = frames
    seen = seen.replace({"doc_id": {"zen00": "<b>zen00</b>"}})
    seen.to_parquet(tmp_path / "seen.parquet")
    unseen.to_parquet(tmp_path / "unseen.parquet")
    out = run_cli("report", tmp_path / "seen.parquet", "--reference", tmp_path / "unseen.parquet",
                  "-o", tmp_path / "r.html", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "r.html").read_text()
    assert "Contamination evidence against the reference" in page
    assert "Documents above the reference&#39;s 99th percentile" in page
    assert "weak" in page and "contamination AUROC" in page and "Min-K%++" in page
    assert "<b>zen00</b>" not in page and "&lt;b&gt;zen00&lt;/b&gt;" in page


@pytest.mark.slow
def test_dask_gives_the_local_scores(frames, tmp_path):
    distributed = pytest.importorskip("distributed")
    from losslens.distributed import evaluate_runs_dask
    from losslens.options import Options

    seen, _ = frames
    folder = tmp_path / "parts"
    folder.mkdir()
    half = len(seen) // 2 + 7  # a document split across the two files
    seen.iloc[:half].to_parquet(folder / "part-0.parquet")
    seen.iloc[half:].to_parquet(folder / "part-1.parquet")
    local = scores_of(evaluate_lm(folder).runs[0])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = scores_of(evaluate_runs_dask([str(folder)], None, Options(), scheduler=cluster.scheduler_address,
                                              kind="language_model").runs[0])
    np.testing.assert_allclose(remote.loc[local.index].to_numpy(), local.to_numpy(), rtol=REL)


def test_a_file_in_bits_gives_the_same_scores(frames):
    # Every log-prob column in the file's base: z is scale-free, the zlib ratio is in nats.
    seen, _ = frames
    bits = seen.copy()
    for column in ("logprob", "mu", "sigma", "top_logprob"):
        bits[column] = seen[column] / math.log(2)
    want = scores_of(evaluate_lm(seen).runs[0])
    got = scores_of(evaluate_lm(bits, log_base=2).runs[0])
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)
    got = scores_of(evaluate_lm(bits.drop(columns=["rank"]), log_base=2).runs[0])
    np.testing.assert_allclose(got["rank1_share"].to_numpy(), want["rank1_share"].to_numpy(), rtol=REL)
