"""Token and sequence layouts of language-model outputs, checked on a real n-gram model.

A character bigram model is trained on the Zen of Python and scores docstrings of
standard-library modules, one row per character; the expected values are computed here
directly from those log-probabilities with lm-evaluation-harness's formulas
(``weighted_mean``, ``weighted_perplexity``, ``bits_per_byte`` of ``lm_eval/api/metrics.py``)
and the Min-K% Prob reference code of Shi et al. (2023).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens.errors import InputError, UsageError
from losslens.lm import evaluate_lm, evaluate_lm_runs
from losslens.lm.documents import DocumentAccumulator, convert_batch
from losslens.lm.evaluation import ratio_ci95
from losslens.lm.layout import detect_lm_layout
from losslens.options import Options

# Sums of the same float64 values in another order (numpy's pairwise sum against Python's
# running sum, or documents split across batches) agree to a few ulps, not bitwise.
REL = 1e-12


@pytest.fixture(scope="module")
def corpus():
    zen = zen_of_python()
    docs = held_out_documents()
    docs["this"] = zen  # the training text itself: a memorised document
    vocabulary = "".join(docs.values())
    bigram = CharNGram(1).fit(zen, vocabulary)
    eightgram = CharNGram(8, alpha=0.05).fit(zen, vocabulary)
    return docs, bigram, eightgram


def token_frame(docs, model, dtype=np.float32):
    """One row per character: doc_id, token, float32 logprob (as torch gives them)."""
    rows = []
    for name, text in docs.items():
        for char, lp in zip(text, model.token_logprobs(text)):
            rows.append((name, char, lp))
    frame = pd.DataFrame(rows, columns=["doc_id", "token", "logprob"])
    frame["logprob"] = frame["logprob"].astype(dtype)
    return frame


def lm_eval_reference(frame):
    """lm-eval's corpus formulas over per-document (loglikelihood, count) pairs."""
    lp = frame["logprob"].to_numpy(np.float64)
    per_doc = {}
    for doc, value, token in zip(frame["doc_id"], lp, frame["token"]):
        ll, n, b = per_doc.get(doc, (0.0, 0, 0))
        per_doc[doc] = (ll + value, n + 1, b + len(token.encode("utf-8")))

    def weighted_mean(items):  # lm_eval.api.metrics.weighted_mean
        a, b = zip(*items)
        return sum(a) / sum(b)

    tokens = [(ll, n) for ll, n, _ in per_doc.values()]
    nbytes = [(ll, b) for ll, _, b in per_doc.values()]
    return {
        "log_loss": -weighted_mean(tokens),
        "perplexity": math.exp(-weighted_mean(tokens)),  # weighted_perplexity
        "bits_per_byte": -weighted_mean(nbytes) / math.log(2),
        "byte_perplexity": math.exp(-weighted_mean(nbytes)),
        "n_tokens": sum(n for _, n in tokens),
        "n_bytes": sum(b for _, b in nbytes),
    }


def min_k_reference(logprobs, k=0.2):
    """Shi et al.'s Min-K% Prob code (``int(len·k)`` lowest log-probs), with at least one token."""
    k_length = max(1, int(len(logprobs) * k))
    return math.exp(np.mean(np.sort(logprobs)[:k_length]))


def test_token_layout_matches_lm_eval_formulas_on_a_parquet_file(corpus, tmp_path):
    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    path = tmp_path / "tokens.parquet"
    frame.to_parquet(path)
    run = evaluate_lm(path).runs[0]
    expected = lm_eval_reference(frame)
    o = run.overall
    assert o.n_documents == len(docs)
    assert o.n_tokens == expected["n_tokens"] == sum(len(t) for t in docs.values())
    assert o.n_bytes == expected["n_bytes"] == sum(len(t.encode()) for t in docs.values())
    for name in ("log_loss", "perplexity", "bits_per_byte", "byte_perplexity"):
        assert getattr(o, name) == pytest.approx(expected[name], rel=REL), name
    assert o.cross_entropy_bits == pytest.approx(expected["log_loss"] / math.log(2), rel=REL)
    assert o.word_perplexity is None  # no word counts: never guessed
    assert run.layout.kind == "tokens"
    assert run.name == "tokens"


def test_min_k_prob_and_memorised_training_text(corpus):
    docs, _, eightgram = corpus
    frame = token_frame(docs, eightgram)
    run = evaluate_lm(frame).runs[0]
    table = run.documents
    for name in docs:
        lp = frame.loc[frame.doc_id == name, "logprob"].to_numpy(np.float64)
        i = table.keys.index(name)
        assert math.exp(-table.top_loss[i]) == pytest.approx(min_k_reference(lp), rel=REL), name
    # The 8-gram model has memorised its training text (the Zen) and nothing else.
    assert [d.document for d in run.memorized_documents] == ["this"]
    assert run.memorized_documents[0].min_k_prob > 0.5
    codes = [w.code for w in run.warnings]
    assert codes[0] == "memorized_documents"
    share_tokens = len(docs["this"]) / sum(len(t) for t in docs.values())
    assert run.overall.memorized_token_share == pytest.approx(share_tokens)
    message = run.warnings[0].message
    assert f"1 of {len(docs)} documents ({1 / len(docs):.1%}) and {share_tokens:.1%} of the tokens" in message
    assert "contaminated" in message


def test_bigram_does_not_flag_memorisation_and_min_k_threshold_is_an_option(corpus):
    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    assert evaluate_lm(frame).runs[0].overall.n_memorized == 0
    # With a threshold below every document's Min-K% Prob, all are flagged.
    run = evaluate_lm(frame, memorized_prob=1e-9).runs[0]
    assert run.overall.n_memorized == len(docs)


def test_documents_split_across_batches_give_the_same_numbers(corpus):
    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    layout = detect_lm_layout(table.column_names, Options())
    whole = DocumentAccumulator(layout)
    whole.add(convert_batch(table.to_batches()[0], layout, "<t>", 0))
    reference = whole.finish()
    for size in (1, 7, 100, 617, 2487, 5000):
        parts = DocumentAccumulator(layout)
        for offset, batch in enumerate(table.to_batches(max_chunksize=size)):
            parts.add(convert_batch(batch, layout, "<t>", offset * size))
        got = parts.finish()
        assert got.keys == reference.keys
        np.testing.assert_allclose(got.nll, reference.nll, rtol=REL)
        np.testing.assert_array_equal(got.n_tokens, reference.n_tokens)
        np.testing.assert_array_equal(got.n_bytes, reference.n_bytes)
        np.testing.assert_allclose(got.top_loss, reference.top_loss, rtol=REL)
        assert not got.fragmented


def test_non_contiguous_documents_are_exact(corpus, tmp_path):
    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    shuffled = frame.sample(frac=1.0, random_state=0)  # every document scattered
    contiguous = evaluate_lm(frame).runs[0]
    scattered = evaluate_lm(shuffled).runs[0]
    assert scattered.documents.fragmented == frozenset(docs)
    assert "not contiguous" in scattered.layout.notes[-1]
    order = [scattered.documents.keys.index(k) for k in contiguous.documents.keys]
    np.testing.assert_allclose(scattered.documents.nll[order], contiguous.documents.nll, rtol=REL)
    np.testing.assert_allclose(scattered.documents.top_loss[order], contiguous.documents.top_loss, rtol=REL)
    assert scattered.overall.log_loss == pytest.approx(contiguous.overall.log_loss, rel=REL)


def test_masked_padding_is_not_scored_and_never_looks_memorised(corpus):
    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    frame["mask"] = 1
    padding = pd.DataFrame({"doc_id": list(docs), "token": "", "logprob": np.float32(0.0), "mask": 0})
    padded = pd.concat([frame, padding, padding]).sort_values("doc_id", kind="stable")
    plain = evaluate_lm(frame).runs[0]
    run = evaluate_lm(padded).runs[0]
    assert run.overall.n_tokens == plain.overall.n_tokens
    assert run.overall.log_loss == pytest.approx(plain.overall.log_loss, rel=REL)
    assert run.overall.n_memorized == 0
    order = [run.documents.keys.index(k) for k in plain.documents.keys]  # sorted by id
    np.testing.assert_allclose(run.documents.top_loss[order], plain.documents.top_loss, rtol=REL)
    assert "rows with 'mask' = 0 / False are not scored" in run.layout.notes


def test_bits_nll_and_sequence_layouts_agree_with_the_token_layout(corpus, tmp_path):
    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram, dtype=np.float64)
    reference = evaluate_lm(frame).runs[0].overall
    in_bits = frame.assign(logprob=frame.logprob / math.log(2))
    bits = evaluate_lm(in_bits, log_base=2).runs[0].overall
    assert bits.log_loss == pytest.approx(reference.log_loss, rel=REL)
    losses = frame.assign(nll=-frame.logprob).drop(columns="logprob")
    assert evaluate_lm(losses).runs[0].overall.log_loss == pytest.approx(reference.log_loss, rel=REL)
    # One row per document, written by DataFrame.to_csv with default options.
    sequences = pd.DataFrame({
        "doc_id": list(docs),
        "nll": [-frame.logprob[frame.doc_id == d].sum() for d in docs],
        "n_tokens": [len(t) for t in docs.values()],
        "n_bytes": [len(t.encode()) for t in docs.values()],
        "n_words": [len(re.split(r"\s+", t)) for t in docs.values()],  # lm-eval's count_words
    })
    path = tmp_path / "sequences.csv"
    sequences.to_csv(path)
    run = evaluate_lm(path).runs[0]
    o = run.overall
    assert run.layout.kind == "sequences"
    for name in ("log_loss", "perplexity", "bits_per_byte", "byte_perplexity"):
        assert getattr(o, name) == pytest.approx(getattr(reference, name), rel=1e-10), name
    assert o.n_words == sequences.n_words.sum()
    assert o.word_perplexity == pytest.approx(math.exp(sequences.nll.sum() / sequences.n_words.sum()), rel=REL)
    assert run.token_loss_quantiles_nats == {"p50": None, "p90": None, "p99": None}
    assert o.n_memorized == 0


def test_unigram_entropy_and_information_gain(corpus):
    from scipy.stats import entropy

    docs, _, _ = corpus
    text = "".join(docs.values())
    in_sample = CharNGram(1).fit(text, text)  # a bigram fitted to this very text
    run = evaluate_lm(token_frame(docs, in_sample)).runs[0]
    counts = pd.Series(list(text)).value_counts().to_numpy()
    assert run.unigram_entropy_bits == pytest.approx(entropy(counts, base=2), rel=REL)
    assert run.information_gain_bits == pytest.approx(
        run.unigram_entropy_bits - run.overall.cross_entropy_bits, rel=REL)
    assert run.information_gain_bits > 0  # beats the unigram of the same text
    assert "worse_than_prior" not in [w.code for w in run.warnings]


def test_worse_than_prior_when_the_model_is_worse_than_unigram(corpus):
    docs, bigram, _ = corpus
    held_out = {k: v for k, v in docs.items() if k != "this"}
    run = evaluate_lm(token_frame(held_out, bigram)).runs[0]
    # Trained on 856 characters of the Zen, the bigram loses to the docstrings' own unigram.
    assert run.information_gain_bits < 0
    assert "worse_than_prior" in [w.code for w in run.warnings]


def test_slices_splits_worst_and_best_documents(corpus):
    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    frame["split"] = np.where(frame.doc_id == "this", "train", "test")
    frame["source"] = np.where(frame.doc_id.isin(["json", "csv"]), "data formats", "other")
    run = evaluate_lm(frame, by=["source"]).runs[0]
    assert set(run.by_split) == {"train", "test"}
    test_rows = frame[frame.split == "test"]
    assert run.by_split["test"].log_loss == pytest.approx(-test_rows.logprob.astype(float).sum() / len(test_rows), rel=REL)
    fmt = frame[frame.source == "data formats"]
    assert run.by_slice["source"]["data formats"].n_tokens == len(fmt)
    per_doc = {d: -frame.logprob[frame.doc_id == d].astype(float).mean() for d in docs}
    ranked = sorted(per_doc, key=per_doc.get, reverse=True)
    assert [d.document for d in run.worst_documents] == ranked
    assert [d.document for d in run.best_documents] == ranked[::-1]
    assert run.worst_documents[0].snippet == docs[ranked[0]][:80]
    quantiles = np.quantile(np.array(list(per_doc.values())), [0.5, 0.9, 0.99])
    assert list(run.document_loss_quantiles_nats.values()) == pytest.approx(list(quantiles), rel=REL)


def test_ratio_interval_hand_worked():
    # Two documents: (nll, tokens) = (2, 1) and (6, 3): R = 8/4 = 2, residuals 0 and 0.
    assert ratio_ci95(np.array([2.0, 6.0]), np.array([1.0, 3.0])) == (2.0, 2.0)
    # (1, 1), (3, 1): R = 2, residuals −1, +1: Var = 2/1/(2·1) = 1, half-width 1.96.
    lo, hi = ratio_ci95(np.array([1.0, 3.0]), np.array([1.0, 1.0]))
    assert (lo, hi) == pytest.approx((2 - 1.959963984540054, 2 + 1.959963984540054))


def test_comparison_paired_by_document(corpus):
    docs, bigram, eightgram = corpus
    a, b = token_frame(docs, bigram), token_frame(docs, eightgram)
    evaluation = evaluate_lm_runs([a, b.iloc[::-1]], names=["bigram", "eightgram"])
    (comparison,) = evaluation.comparisons
    assert comparison.n_paired == len(docs)
    delta = (-b.logprob.astype(float).sum() + a.logprob.astype(float).sum()) / len(a)
    assert comparison.log_loss_delta == pytest.approx(delta, rel=1e-10)
    assert comparison.worst_regressions[0]["delta"] > 0
    lo, hi = comparison.log_loss_delta_ci95
    assert lo < comparison.log_loss_delta < hi
    assert comparison.share_improved == pytest.approx(1 / len(docs))  # only the memorised Zen improves


def test_to_dict_is_json_safe_and_deterministic(corpus):
    import json

    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    first = json.dumps(evaluate_lm(frame).to_dict(), allow_nan=False)
    assert first == json.dumps(evaluate_lm(frame).to_dict(), allow_nan=False)
    document = json.loads(first)
    assert list(document["runs"][0])[:5] == ["name", "kind", "inputs", "layout", "min_k"]
    assert document["runs"][0]["overall"]["word_perplexity"] is None


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("logprob", 0.5, "<DataFrame>, column 'logprob', row 3: log-probability 0.5 is positive; "
                         "log-probabilities are ≤ 0 (if the column holds losses, pass --nll logprob)"),
        # pandas keeps a missing value as NaN and Arrow reads it as null: in the middle of a
        # document it is an error (a document's first token may be null: tests/test_token_bytes.py).
        ("logprob", float("nan"), "<DataFrame>, column 'logprob', row 3: missing log-probability; only a "
                                  "document's first token may have none"),
        ("doc_id", None, "<DataFrame>, column 'doc_id', row 3: missing document id"),
    ],
)
def test_bad_values_name_file_column_row_and_fix(column, value, message):
    frame = pd.DataFrame({"doc_id": ["a", "a", "a", "b"], "logprob": [-1.0, -2.0, -0.5, -0.1]})
    frame[column] = frame[column].astype(object)
    frame.loc[2, column] = value
    if column == "logprob":
        frame[column] = frame[column].astype(float)
    with pytest.raises(InputError, match=re.escape(message)):
        evaluate_lm(frame)


def test_float32_rounding_above_zero_is_clamped_not_an_error():
    frame = pd.DataFrame({"doc_id": [0, 0], "logprob": np.array([-1.0, 2e-7], dtype=np.float32)})
    assert evaluate_lm(frame).runs[0].overall.nll_nats == pytest.approx(1.0)
    with pytest.raises(InputError, match="is positive"):
        evaluate_lm(frame.astype({"logprob": np.float64}))


def test_empty_documents_are_a_warning_and_an_all_masked_file_an_error(tmp_path):
    frame = pd.DataFrame({"doc_id": [0, 0, 1, 1], "logprob": [-1.0, -2.0, 0.0, 0.0], "mask": [1, 1, 0, 0]})
    run = evaluate_lm(frame).runs[0]
    assert run.overall.n_documents == 1
    assert [w.code for w in run.warnings] == ["memorized_documents"] or "empty_documents" in [w.code for w in run.warnings]
    empty = [w for w in run.warnings if w.code == "empty_documents"][0]
    assert empty.message.startswith("1 document has no scored token (1)")
    frame["mask"] = 0
    with pytest.raises(InputError, match=re.escape("<DataFrame>: no scored token in the run; check the mask column 'mask'")):
        evaluate_lm(frame)


def test_missing_columns_and_bad_options():
    with pytest.raises(InputError, match="no document id column"):
        evaluate_lm(pd.DataFrame({"logprob": [-1.0]}))
    with pytest.raises(InputError, match="no log-probability or loss column"):
        evaluate_lm(pd.DataFrame({"doc_id": [1]}))
    with pytest.raises(UsageError, match="--min-k must be in"):
        evaluate_lm(pd.DataFrame({"doc_id": [1], "logprob": [-1.0]}), min_k=0)
    with pytest.raises(UsageError, match="--document 'doc' names no column"):
        evaluate_lm(pd.DataFrame({"doc_id": [1], "logprob": [-1.0]}), document="doc")


def test_many_short_documents_min_k_from_one_sort(corpus):
    # Each word of the Zen is a document (mean length < 64 tokens: the one-sort path).
    docs, bigram, _ = corpus
    words = {f"w{i}": w for i, w in enumerate(docs["this"].split()[:300])}
    frame = token_frame(words, bigram, dtype=np.float64)
    run = evaluate_lm(frame).runs[0]
    for i, key in enumerate(run.documents.keys):
        lp = frame.logprob[frame.doc_id == key].to_numpy()
        assert math.exp(-run.documents.top_loss[i]) == pytest.approx(min_k_reference(lp), rel=REL), key


def test_per_document_export(corpus, tmp_path):
    from losslens.lm import per_document_table

    docs, _, eightgram = corpus
    frame = token_frame(docs, eightgram).rename(columns={"doc_id": "document"})
    frame["source"] = np.where(frame.document == "this", "zen", "stdlib")
    run = evaluate_lm(frame, by=["source"]).runs[0]
    table = per_document_table(run)
    assert table.column_names == ["run", "document", "n_tokens", "n_bytes", "nll_nats", "bits_per_token",
                                  "bits_per_byte", "min_k_prob", "zlib_ratio", "min_k_plus_plus", "rank1_share",
                                  "memorized", "source"]
    rows = table.to_pandas().set_index("document")
    for name, text in docs.items():
        lp = frame.logprob[frame.document == name].to_numpy(np.float64)
        row = rows.loc[name]
        assert row.n_tokens == len(text) and row.n_bytes == len(text.encode())
        assert row.nll_nats == pytest.approx(-lp.sum(), rel=REL)
        assert row.bits_per_token == pytest.approx(-lp.mean() / math.log(2), rel=REL)
        assert row.bits_per_byte == pytest.approx(-lp.sum() / len(text.encode()) / math.log(2), rel=REL)
        assert row.min_k_prob == pytest.approx(min_k_reference(lp), rel=REL)
        assert row.memorized == (name == "this")
    assert rows.loc["this", "source"] == "zen"
    # Sequence files: no per-token detail, so min_k_prob is null; missing bytes are null.
    seq = pd.DataFrame({"doc_id": [1, 2], "nll": [3.0, 4.0], "n_tokens": [2, 4]})
    exported = per_document_table(evaluate_lm(seq).runs[0]).to_pydict()
    assert exported["min_k_prob"] == [None, None] and exported["n_bytes"] == [None, None]
    assert exported["bits_per_token"] == pytest.approx([1.5 / math.log(2), 1.0 / math.log(2)])


@pytest.mark.parametrize("library", ["1", "0"])
def test_token_loss_bins_equal_a_binary_search_over_the_edges(library, monkeypatch):
    from losslens import fused
    from losslens.accumulate import HIST_EDGES
    from losslens.batch_figures import histogram_bins as loss_bins
    from losslens.batch_figures import loss_histogram

    monkeypatch.setenv(fused.FUSED_ENV, library)
    rng = np.random.default_rng(1)
    edges_and_neighbours = np.concatenate([HIST_EDGES, np.nextafter(HIST_EDGES, 0), np.nextafter(HIST_EDGES, 1)])
    values = np.concatenate([rng.exponential(2.0, 10_000), edges_and_neighbours, [0.0, 5e-324, 1e-300, 1e5]])
    bins = np.searchsorted(HIST_EDGES, values, side="right")
    np.testing.assert_array_equal(loss_bins(values), bins)
    np.testing.assert_array_equal(loss_histogram(values), np.bincount(bins, minlength=len(HIST_EDGES) + 1))


def test_heavily_non_contiguous_runs_are_sorted_by_document(corpus, monkeypatch, tmp_path):
    import losslens.lm.documents as documents

    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    contiguous = evaluate_lm(frame).runs[0]
    monkeypatch.setattr(documents, "FRAGMENT_LIMIT", 2)  # as if there were thousands of documents
    path = tmp_path / "shuffled.parquet"
    frame.sample(frac=1.0, random_state=1).to_parquet(path)
    run = evaluate_lm(path).runs[0]
    assert run.documents.sorted_by_document and not run.documents.fragmented
    assert list(run.documents.keys) == sorted(docs)
    assert "sorted by document in memory" in run.layout.notes[-1]
    order = [run.documents.keys.index(k) for k in contiguous.documents.keys]
    np.testing.assert_allclose(run.documents.nll[order], contiguous.documents.nll, rtol=REL)
    np.testing.assert_allclose(run.documents.top_loss[order], contiguous.documents.top_loss, rtol=REL)
    # A bad value is still reported at its row in the file, not in the sorted order.
    bad = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    bad.loc[5000, "logprob"] = 1.5
    bad.to_parquet(path)
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'logprob', row 5001: log-probability 1.5")):
        evaluate_lm(path)


def test_masked_rows_may_hold_nan_and_sequence_loss_needs_tokens():
    frame = pd.DataFrame({"doc_id": [0, 0, 0], "logprob": [np.nan, -1.0, -2.0], "loss_mask": [0, 1, 1]})
    run = evaluate_lm(frame).runs[0]  # the first token has no prediction: masked, ignored
    assert (run.overall.n_tokens, run.overall.log_loss) == (2, 1.5)
    # Without the mask too (Hugging Face / vLLM: nothing predicts a document's first token).
    run = evaluate_lm(frame.drop(columns="loss_mask")).runs[0]
    assert (run.overall.n_tokens, run.overall.log_loss) == (2, 1.5)
    with pytest.raises(InputError, match=re.escape("row 2: missing log-probability")):
        evaluate_lm(frame.drop(columns="loss_mask").iloc[[1, 0, 2]])
    sequences = pd.DataFrame({"doc_id": [1, 2, 3], "nll": [2.0, 0.0, 3.0], "n_tokens": [2, 0, 0]})
    with pytest.raises(InputError, match=re.escape(
            "<DataFrame>, column 'n_tokens', row 3: 0 tokens but a loss of 3.0 nats; a document's loss needs its token count")):
        evaluate_lm(sequences)
    run = evaluate_lm(sequences.iloc[:2]).runs[0]
    assert run.overall.n_documents == 1 and [w.code for w in run.warnings] == ["empty_documents"]


def test_slices_beyond_max_slices_fold_into_other(corpus):
    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    frame["module"] = frame.doc_id
    run = evaluate_lm(frame, by=["module"], max_slices=3).runs[0]
    values = run.by_slice["module"]
    assert len(values) == 4 and "(other)" in values
    assert sum(m.n_tokens for m in values.values()) == len(frame)
    assert sum(m.nll_nats for m in values.values()) == pytest.approx(run.overall.nll_nats, rel=REL)


def test_ratio_interval_covers_the_true_per_token_loss_about_95_percent():
    # Documents of random length whose tokens have document-specific difficulty (so tokens are
    # not independent): the interval over documents must still cover the true ratio ~95%.
    rng = np.random.default_rng(7)
    true_ratio = 2.0  # E[loss per token]: difficulty ~ Gamma(mean 2), loss ~ Exponential(difficulty)
    covered, trials = 0, 1000
    for _ in range(trials):
        lengths = rng.integers(5, 400, 150).astype(float)
        difficulty = rng.gamma(2.0, 1.0, 150)
        sums = rng.gamma(lengths, difficulty)  # sum of n Exponential(difficulty) losses
        lo, hi = ratio_ci95(sums, lengths)
        covered += lo <= true_ratio <= hi
    assert 0.93 <= covered / trials <= 0.97


@pytest.mark.parametrize("batch_rows", [97, 211, 1000])
def test_min_k_taken_in_worker_threads_equals_the_accumulators_own(corpus, tmp_path, monkeypatch, batch_rows):
    """Each batch's complete documents get their Min-K% in a worker thread (document_runs); the
    accumulator adds them in file order. Batches of a few hundred rows cut documents in the middle
    and at their boundaries: the JSON must equal, to the last bit, the run whose Min-K% is taken
    in the accumulator from the open document on, and every score must be the reference's."""
    import json

    import losslens.layouts.tokens as tokens
    from losslens import reading, threads

    docs, bigram, _ = corpus
    frame = token_frame(docs, bigram)
    path = tmp_path / "tokens.parquet"
    frame.to_parquet(path, index=False)
    # int32 logprob rows + text tokens: about batch_rows rows a batch
    monkeypatch.setattr(reading, "BATCH_BYTES", batch_rows * 8)
    monkeypatch.setenv(threads.THREADS_ENV, "2")
    in_workers = evaluate_lm(path)
    assert json.dumps(in_workers.to_dict()) == json.dumps(evaluate_lm(path).to_dict())
    monkeypatch.setattr(tokens, "document_runs", lambda *args: None)  # the accumulator takes them
    in_accumulator = evaluate_lm(path)
    assert json.dumps(in_workers.to_dict()) == json.dumps(in_accumulator.to_dict())
    run = in_workers.runs[0]
    got = dict(zip(run.documents.keys, np.exp(-run.documents.top_loss)))
    for name, group in frame.groupby("doc_id", sort=False):
        assert got[name] == pytest.approx(min_k_reference(group["logprob"].to_numpy(np.float64)), rel=REL)
