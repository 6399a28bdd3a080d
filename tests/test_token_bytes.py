"""Bytes per token from real tokenizers' strings, null first-token log-probs, list columns (issue 19).

Token strings come from tokenizers (Hugging Face ``tokenizers``) trained offline on text that ships
with Python (the Zen of Python, with é, —, 日本語 added so multi-byte characters split across
tokens); log-probs from a unigram model of the same token ids, as float32 (as torch gives them).
The reference byte count is ``len(text.encode("utf-8"))`` of each document, the reference bits per
byte ``Σnll / Σbytes / ln 2`` computed here in plain Python.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lm_ngram import zen_of_python
from losslens.errors import InputError
from losslens.lm import evaluate_lm, per_document_table

tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture
def tb():
    from losslens.lm import token_bytes

    return token_bytes

EXTRA = "Café — naïve façade, déjà vu; 日本語のテキスト。 Ünïcödé ✓ — 日本\n"


def documents() -> dict[str, str]:
    """Paragraphs of the Zen of Python, and a document of multi-byte characters."""
    zen = zen_of_python().strip().split("\n")
    docs = {f"zen{i}": "\n".join(zen[i:i + 5]) + "\n" for i in range(0, len(zen), 5)}
    docs["unicode"] = EXTRA
    return docs


@pytest.fixture(scope="module")
def byte_level():
    tokenizer = tokenizers.ByteLevelBPETokenizer()
    # A small vocabulary: 日本語 and — stay split into byte pieces, é often too.
    tokenizer.train_from_iterator(list(documents().values()) * 3, vocab_size=300, min_frequency=1)
    return tokenizer


@pytest.fixture(scope="module")
def sentencepiece():
    tokenizer = tokenizers.SentencePieceBPETokenizer()
    tokenizer.train_from_iterator(list(documents().values()) * 3, vocab_size=300, min_frequency=1)
    return tokenizer


def unigram_frame(tokenizer, strings: str) -> pd.DataFrame:
    """One row per token: doc_id, token string (``convert`` or ``decode`` one at a time), float32 log-prob."""
    encodings = {name: tokenizer.encode(text) for name, text in documents().items()}
    counts = Counter(i for e in encodings.values() for i in e.ids)
    total = sum(counts.values())
    rows = []
    for name, e in encodings.items():
        for i, token in zip(e.ids, e.tokens):
            text = token if strings == "convert" else tokenizer.decode([i])
            rows.append((name, text, np.float32(math.log(counts[i] / total))))
    return pd.DataFrame(rows, columns=["doc_id", "token", "logprob"])


def reference_bits_per_byte(frame: pd.DataFrame) -> float:
    nll = -sum(float(v) for v in frame["logprob"])
    return nll / sum(len(t.encode("utf-8")) for t in documents().values()) / math.log(2)


def test_byte_level_bpe_strings_count_the_text_bytes_exactly(byte_level, tmp_path, tb):
    frame = unigram_frame(byte_level, "convert")
    # The case is real: some tokens hold part of a character (they decode alone to U+FFFD).
    assert any("\ufffd" in byte_level.decode([byte_level.token_to_id(t)]) for t in frame["token"])
    assert frame["token"].str.contains("Ġ").any() and frame["token"].str.contains("Ċ").any()
    frame.to_parquet(tmp_path / "tokens.parquet")
    run = evaluate_lm(tmp_path / "tokens.parquet").runs[0]
    assert run.overall.n_bytes == sum(len(t.encode("utf-8")) for t in documents().values())
    table = per_document_table(run).to_pandas().set_index("doc_id")
    assert {k: int(v) for k, v in table["n_bytes"].items()} == {k: len(t.encode()) for k, t in documents().items()}
    # Sums in another order (pandas, Python) than the engine's: equal to a few ulps, not bitwise.
    assert run.overall.bits_per_byte == pytest.approx(reference_bits_per_byte(frame), rel=1e-12)
    assert run.layout.token_bytes == tb.BYTE_LEVEL
    assert any("byte-level BPE" in n for n in run.layout.notes)
    # The worst / best documents show the decoded text, not the markers.
    snippets = {d.document: d.snippet for d in run.worst_documents + run.best_documents}
    assert snippets.get("unicode", EXTRA[:10]).startswith("Café —")


def test_text_decoded_one_token_at_a_time_is_refused_with_a_warning(byte_level, tmp_path, tb):
    frame = unigram_frame(byte_level, "decode")
    path = tmp_path / "decoded.csv"
    frame.to_csv(path, index=False)
    run = evaluate_lm(path).runs[0]
    assert run.overall.bits_per_byte is None and run.overall.n_bytes is None
    # The file's own numbers (to_csv writes float32 values shortest, read back as float64).
    assert run.overall.log_loss == pytest.approx(-pd.read_csv(path)["logprob"].mean(), rel=1e-12)
    warning = next(w for w in run.warnings if w.code == "bytes_unknown")
    first = int(np.flatnonzero(frame["token"].str.contains("\ufffd"))[0]) + 1
    assert f"{path}, column 'token', row {first}" in warning.message
    assert "Add an 'n_bytes' column" in warning.message
    assert run.layout.token_bytes == tb.LOSSY
    assert run.to_dict()["overall"]["bits_per_byte"] is None
    # The command line: no number, the warning, and a gate on it.
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(path), "--json", "-",
                           "--fail-on-warning", "bytes_unknown"], capture_output=True, text=True, timeout=120)
    document = json.loads(done.stdout)
    assert document["runs"][0]["overall"]["bits_per_byte"] is None
    assert "bytes_unknown" in [w["code"] for w in document["warnings"]]
    assert done.returncode == 1, done.stderr


def test_sentencepiece_pieces_count_the_text_bytes_exactly(sentencepiece, tb):
    frame = unigram_frame(sentencepiece, "convert")
    assert frame["token"].str.startswith("▁").any()
    run = evaluate_lm(frame).runs[0]
    # Exactly the text: '▁' is a space, the '▁' SentencePiece adds before the first word none.
    assert run.overall.n_bytes == sum(len(t.encode("utf-8")) for t in documents().values())
    assert run.overall.bits_per_byte == pytest.approx(reference_bits_per_byte(frame), rel=1e-12)
    assert run.layout.token_bytes == tb.SENTENCEPIECE


def test_sentencepiece_byte_fallback_and_special_tokens_by_hand(tb):
    # Llama 2's pieces of "Hello — world\n" and of "日本": <s>, byte-fallback pieces for the dash,
    # the newline and the two characters (as its tokenizer gives them without those in its vocabulary).
    texts = {"a": "Hello — world\n", "b": "日本 ok"}
    pieces = {"a": ["<s>", "▁Hello", "▁", "<0xE2>", "<0x80>", "<0x94>", "▁world", "<0x0A>", "</s>"],
              "b": ["<s>", "▁", *[f"<0x{b:02X}>" for b in "日本".encode()], "▁ok"]}
    frame = pd.DataFrame([(d, p, -0.5) for d, ps in pieces.items() for p in ps], columns=["doc_id", "token", "logprob"])
    run = evaluate_lm(frame).runs[0]
    table = per_document_table(run).to_pandas().set_index("doc_id")
    assert table["n_bytes"].to_dict() == {d: len(t.encode()) for d, t in texts.items()}
    assert run.layout.token_bytes == tb.SENTENCEPIECE
    assert run.overall.bits_per_byte == pytest.approx(
        0.5 * len(frame) / sum(len(t.encode()) for t in texts.values()) / math.log(2), rel=1e-12)


@pytest.mark.parametrize("tokens, convention", [
    ([" the", " Ġgantija", " temple", "\n"], "utf8"),  # Maltese text with Ġ, and spaces
    (["Ġgantija", "ċ", "ż"], "utf8"),  # ż is outside GPT-2's table
    (["The", "Ġcat", "Ċ", "Ã©"], "byte_level_bpe"),
    (["The", "cat", "Ã©"], "utf8"),  # no marker: read as text
    (["▁The", "▁cat", "<0x0A>"], "sentencepiece"),
    (["a ▁ b", "c"], "utf8"),  # a ▁ in text with spaces
    (["日\ufffd", "x"], "lossy"),
    (["<|endoftext|>", "Ġa"], "byte_level_bpe"),
])
def test_convention_detection_does_not_take_text_for_markers(tokens, convention, tb):
    assert tb.detect_convention(pa.array(tokens)) == convention


def test_gpt2_table_is_a_bijection_of_256_characters(tb):
    table = tb.bytes_to_unicode()
    assert len(set(table.values())) == 256 and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert tb.count_bytes(pa.array(["Ġcaf", "Ã©", "<|endoftext|>"]), tb.BYTE_LEVEL).tolist() == [4.0, 2.0, 0.0]


def test_null_first_token_log_prob_is_unscored_with_a_note(tmp_path):
    # As a Hugging Face loop writes it: None for each document's first token (nothing predicts it).
    frame = pd.DataFrame({"doc_id": ["a", "a", "a", "b", "b"], "token": ["The", " cat", " sat", "Hi", "!"],
                          "logprob": [None, -2.0, -1.0, None, -3.0]})
    path = tmp_path / "hf.csv"
    frame.to_csv(path, index=False)  # None is an empty field
    run = evaluate_lm(path).runs[0]
    assert (run.overall.n_tokens, run.overall.log_loss) == (3, 2.0)
    assert run.overall.n_bytes == len(" cat sat!")  # the unscored token's bytes are not counted
    assert any(n.startswith("2 document(s) begin with a token whose log-prob is null") for n in run.layout.notes)
    frame.loc[1, "logprob"] = None  # in the middle of a document: an error naming file, column, row
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'logprob', row 2: missing log-probability; "
                                                   "only a document's first token may have none")):
        evaluate_lm(path)


def test_null_first_tokens_of_shuffled_documents_survive_the_sort(monkeypatch):
    import losslens.lm.documents as documents

    monkeypatch.setattr(documents, "FRAGMENT_LIMIT", 1)  # sort by document from 2 fragmented documents
    ids = ["a", "a", "b", "b", "c", "c", "a", "b", "c"]
    frame = pd.DataFrame({"doc_id": ids, "logprob": [None, -1.0, None, -2.0, None, -3.0, -1.0, -2.0, -3.0]})
    run = evaluate_lm(frame).runs[0]
    assert any(n.startswith("documents are not contiguous") for n in run.layout.notes)
    assert any(n.startswith("3 document(s) begin with a token") for n in run.layout.notes)
    assert (run.overall.n_tokens, run.overall.log_loss) == (6, 2.0)


def hf_lists(tokenizer) -> pa.Table:
    """One row per document, as a ``datasets`` map writes it: list<float32> log-probs, None first."""
    frame = unigram_frame(tokenizer, "convert")
    grouped = frame.groupby("doc_id", sort=False)
    logprobs = [[None] + [float(v) for v in g["logprob"].iloc[1:]] for _, g in grouped]
    return pa.table({"doc_id": list(grouped.groups), "tokens": [list(g["token"]) for _, g in grouped],
                     "logprobs": pa.array(logprobs, pa.list_(pa.float32()))}), frame


def first_token_bytes(tokenizer, text: str) -> int:
    """Bytes of the text the first token covers (from the tokenizer's character offsets)."""
    start, end = tokenizer.encode(text).offsets[0]
    return len(text[start:end].encode("utf-8"))


def test_list_columns_parquet_and_jsonl(byte_level, tmp_path):
    table, frame = hf_lists(byte_level)
    pq.write_table(table, tmp_path / "docs.parquet")
    table.to_pandas().to_json(tmp_path / "docs.jsonl", orient="records", lines=True, force_ascii=False)
    n_scored = len(frame) - len(documents())
    nbytes = sum(len(t.encode()) - first_token_bytes(byte_level, t) for t in documents().values())
    for path in (tmp_path / "docs.parquet", tmp_path / "docs.jsonl"):
        # The reference in plain Python from the file's values (Parquet: float32, kept exact by
        # the engine; JSON: the decimals pandas wrote, read as float64).
        rows = pq.read_table(path).to_pylist() if path.suffix == ".parquet" else [
            json.loads(line) for line in path.read_text().splitlines()]
        nll = -sum(v for row in rows for v in row["logprobs"][1:])
        run = evaluate_lm(path).runs[0]
        assert run.overall.n_documents == len(documents()) and run.overall.n_tokens == n_scored
        assert run.overall.log_loss == pytest.approx(nll / n_scored, rel=1e-12)
        assert run.overall.n_bytes == nbytes
        assert run.overall.bits_per_byte == pytest.approx(nll / nbytes / math.log(2), rel=1e-12)
        assert run.documents.keys == tuple(documents())
        assert any(n.startswith("list layout (Hugging Face datasets)") for n in run.layout.notes)
        assert run.layout.lists and run.layout.token_bytes == "byte_level_bpe"


def test_list_columns_without_ids_are_numbered_rows_and_detected_by_the_command(tmp_path):
    table = pa.table({"logprobs": pa.array([[None, -1.0, -2.0], [-4.0]], pa.list_(pa.float32()))})
    pq.write_table(table, tmp_path / "rows.parquet")
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(tmp_path / "rows.parquet"), "--json", "-",
                           "--per-example", str(tmp_path / "docs.csv")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["runs"][0]["kind"] == "tokens" and document["runs"][0]["layout"]["lists"] is True
    assert document["runs"][0]["overall"]["log_loss"] == pytest.approx(7 / 3, rel=1e-15)
    per_doc = pd.read_csv(tmp_path / "docs.csv")
    assert per_doc["row"].tolist() == [0, 1] and per_doc["n_tokens"].tolist() == [2, 1]


def test_list_column_errors_name_row_and_token(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"logprobs": pa.array([[None, -1.0], [-1.0, None, -2.0]], pa.list_(pa.float32()))}),
                   path)
    with pytest.raises(InputError, match=re.escape(
            f"{path}, column 'logprobs', row 2, token 2: missing log-probability")):
        evaluate_lm(path)
    pq.write_table(pa.table({"logprobs": pa.array([[-1.0, -2.0]], pa.list_(pa.float32())),
                             "tokens": [["a"]]}), path)
    with pytest.raises(InputError, match=re.escape(f"{path}, column 'tokens', row 1: 1 items but 2 in 'logprobs'")):
        evaluate_lm(path)
    pq.write_table(pa.table({"logprobs": pa.array([[-1.0, 0.5]], pa.list_(pa.float32()))}), path)
    with pytest.raises(InputError, match=re.escape(
            f"{path}, column 'logprobs', row 1, token 2: log-probability 0.5")):
        evaluate_lm(path)


def test_shuffled_decoded_text_names_the_file_row(monkeypatch, byte_level):
    import losslens.lm.documents as documents

    monkeypatch.setattr(documents, "FRAGMENT_LIMIT", 1)
    frame = unigram_frame(byte_level, "decode")
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    run = evaluate_lm(shuffled).runs[0]
    assert any(n.startswith("documents are not contiguous") for n in run.layout.notes)
    first = int(np.flatnonzero(shuffled["token"].str.contains("\ufffd"))[0]) + 1
    assert run.overall.bits_per_byte is None
    warning = next(w for w in run.warnings if w.code == "bytes_unknown")
    assert f"(<DataFrame>, column 'token', row {first})" in warning.message


def test_empty_and_null_lists_are_empty_documents(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"doc_id": ["a", "b", "c"],
                             "logprobs": pa.array([[None, -1.0], [], None], pa.list_(pa.float32()))}), path)
    run = evaluate_lm(path).runs[0]
    assert run.overall.n_documents == 1 and run.overall.log_loss == 1.0
    warning = next(w for w in run.warnings if w.code == "empty_documents")
    assert warning.message.startswith("2 documents have no scored token ('b', 'c')")


def openai_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table as OpenAI's encoder.py builds it (written out here, apart from losslens's)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def test_any_text_split_anywhere_into_byte_level_strings_counts_its_bytes():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    table = openai_bytes_to_unicode()

    @settings(max_examples=200, deadline=None)
    @given(st.text(min_size=1, max_size=60), st.data())
    def check(text, data):
        raw = (" " + text).encode("utf-8")  # a space: the file is recognisably byte-level
        cuts = sorted(data.draw(st.sets(st.integers(1, len(raw) - 1), max_size=len(raw) - 1)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
        strings = ["".join(table[b] for b in piece) for piece in pieces]
        # Special-looking strings count 0 bytes by design: keep them out of this property.
        if any(re.fullmatch(r"<\|[^\s|]*\|>|</?(s|unk|pad|bos|eos|mask)>", s) for s in strings):
            return
        run = evaluate_lm(pd.DataFrame({"doc_id": 0, "token": strings, "logprob": -1.0})).runs[0]
        assert run.layout.token_bytes == "byte_level_bpe"
        assert run.overall.n_bytes == len(raw)

    check()


def test_any_text_as_sentencepiece_pieces_counts_its_bytes():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    alphabet = st.characters(blacklist_characters="▁\ufffd <>", blacklist_categories=("Cs",))

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.text(alphabet, min_size=1, max_size=8), min_size=1, max_size=8), st.data())
    def check(words, data):
        text = " ".join(words)
        pieces = []
        for word in words:  # SentencePiece: '▁' before every word (the first one's is the dummy prefix)
            chars = "▁" + word
            cuts = sorted(data.draw(st.sets(st.integers(1, len(chars) - 1), max_size=len(chars) - 1))
                          ) if len(chars) > 1 else []
            for a, b in zip([0, *cuts], [*cuts, len(chars)]):
                piece = chars[a:b]
                if piece != "▁" and data.draw(st.booleans()):  # byte fallback for this piece
                    pieces += (["▁"] if piece.startswith("▁") else []) + [
                        f"<0x{x:02X}>" for x in piece.lstrip("▁").encode("utf-8")]
                else:
                    pieces.append(piece)
        run = evaluate_lm(pd.DataFrame({"doc_id": 0, "token": ["<s>", *pieces], "logprob": -1.0})).runs[0]
        assert run.layout.token_bytes == "sentencepiece"
        assert run.overall.n_bytes == len(text.encode("utf-8"))

    check()


def test_list_mask_byte_counts_and_per_document_split():
    table = pa.table({"doc_id": ["a", "b"], "split": ["x", "y"],
                      "logprobs": pa.array([[None, -1.0, -9.0], [-2.0, -3.0]], pa.list_(pa.float32())),
                      "attention_mask": [[1, 1, 0], [1, 1]], "n_bytes": [[1, 2, 3], [4, 5]]})
    run = evaluate_lm(table).runs[0]
    # Scored: a's second token (the first is null, the third masked), b's two.
    assert (run.overall.n_tokens, run.overall.log_loss, run.overall.n_bytes) == (3, 2.0, 11)
    assert {k: (v.n_tokens, v.n_bytes) for k, v in run.by_split.items()} == {"x": (1, 2), "y": (2, 9)}
    assert run.overall.bits_per_byte == pytest.approx(6.0 / 11 / math.log(2), rel=1e-15)


def test_a_document_begins_where_its_id_first_appears_not_where_it_comes_back():
    # Pieces of "Hi the end" (a) and "Yo" (b), a's rows split around b's: the '▁' of a's second
    # part is a real space, and only a's very first token may have no log-prob.
    frame = pd.DataFrame({"doc_id": ["a", "a", "b", "a"], "token": ["▁Hi", "▁the", "▁Yo", "▁end"],
                          "logprob": [None, -1.0, -2.0, -3.0]})
    run = evaluate_lm(frame).runs[0]
    table = per_document_table(run).to_pandas().set_index("doc_id")
    assert table["n_bytes"].to_dict() == {"a": len(" the end"), "b": len("Yo")}  # "Hi" unscored
    frame.loc[3, "logprob"] = None
    with pytest.raises(InputError, match=re.escape("<DataFrame>, column 'logprob', row 4: missing log-probability")):
        evaluate_lm(frame)
