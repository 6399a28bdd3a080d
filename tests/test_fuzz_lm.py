"""Fuzzing the language-model readers through the command line: numpy's numbers, or one clean line.

Hypothesis writes the files people feed ``losslens metrics`` for language models and runs the
command in-process (``typer.testing.CliRunner``, ``--json OUT``):

- token files (CSV, Parquet, JSON lines): ``doc_id``, ``logprob`` (float64 or float32), and any of
  ``token``, ``n_bytes``, ``mask``; null first log-probs (the Hugging Face / vLLM convention),
  token strings of plain but odd Unicode text, GPT-2 byte-level BPE strings (``Ġ``, ``Ċ``, made
  from random bytes through GPT-2's table), special tokens, text decoded one token at a time
  (U+FFFD);
- list-column token files (one row per document, ``list<float>`` log-probs and optional token
  lists: the Hugging Face ``datasets`` layout) in Parquet and JSON lines.

(lm-eval samples files: tests/test_fuzz_lm_eval.py.) Then some are spoiled: positive, NaN,
infinite or textual log-probs, nulls where they may not be, missing document ids, masks or
counts, lists of unequal lengths.

The property. Exit 0 and the JSON's figures equal a direct numpy computation on the values
written (token log loss = −Σ logprob / Σ scored tokens, bits per byte = that sum over the bytes
the strings stand for / ln 2); or exit 2 with a message of ONE line naming the file and the
column, no ``--json`` output written. Never another exception, never a hang (a per-example
alarm), never a change to the input. Good files (nothing spoiled, something to score) must give
the numbers.

``LOSSLENS_FUZZ_EXAMPLES`` is the whole fuzz run's budget, shared by tests/test_fuzz*.py (see
:func:`fuzz_cli.share`); ``make fuzz`` sets it to 100 000.
"""

from __future__ import annotations

import json
import math
import string
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from fuzz_cli import EPS64, LN2, close, fuzz_settings, pick, refused, run_metrics


# -- token strings -------------------------------------------------------------------------------
def gpt2_table() -> dict[int, str]:
    """GPT-2's bytes_to_unicode, as OpenAI's encoder.py writes it (the test's own copy)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


GPT2 = gpt2_table()
SPECIALS = ("<s>", "</s>", "<|endoftext|>", "<pad>")
#: Odd but valid text: accents, CJK, emoji, RTL override, zero-width joiner, tabs, quotes, commas,
#: a NUL, CR and LF (all need quoting in CSV), and look-alikes of the markers.
ODD = st.text(alphabet=st.sampled_from(list(string.ascii_letters + string.digits + " ,;\"'\t\n\r\\")
                                       + ["é", "ß", "中", "文", "😀", "\u202e", "\u200d", "\x00", "Ġ", "Ċ",
                                          "▁", "Ã", "©", "\ufeff"]), max_size=5)


@st.composite
def token_strings(draw, n: int):
    """(strings, bytes each stands for, regime) for ``n`` tokens."""
    regime = pick(np.random.default_rng(draw(st.integers(0, 2**32 - 1))), ["text", "byte_level", "lossy", "special"])
    strings, counts = [], []
    for i in range(n):
        if regime == "special" and i and draw(st.integers(0, 3)) == 0:
            strings.append(draw(st.sampled_from(SPECIALS)))
            counts.append(0)
        elif regime == "byte_level":
            raw = draw(st.binary(min_size=1, max_size=4))
            if i == 0:
                raw = b" " + raw  # a space (Ġ): what marks byte-level BPE strings
            strings.append("".join(GPT2[b] for b in raw))
            counts.append(len(raw))
        else:
            text = draw(ODD)
            if i == 0:
                text = " " + text  # decoded text has spaces, which GPT-2's table has not
            if regime == "lossy" and draw(st.integers(0, 2)) == 0:
                text += "\ufffd"
            strings.append(text)
            counts.append(len(text.encode("utf-8")))
    return strings, counts, regime


# -- token files ---------------------------------------------------------------------------------
TOKEN_SPOILERS = ("positive", "nan", "inf", "text", "null_middle", "null_id", "null_mask",
                  "negative_bytes", "tiny_positive", "no_ids")


@st.composite
def token_files(draw):
    lengths = draw(st.lists(st.integers(0, 6), min_size=0, max_size=6) if draw(st.integers(0, 4)) == 0
                   else st.lists(st.integers(1, 6), min_size=1, max_size=6))
    lengths = [k for k in lengths if k]  # a document is its tokens: none, no rows
    n = sum(lengths)
    ids_kind = draw(st.sampled_from(["int", "text"]))
    ids = list(range(len(lengths))) if ids_kind == "int" else [f"d{i}{draw(ODD)}" for i in range(len(lengths))]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logprob = -rng.exponential(draw(st.sampled_from([0.01, 1.0, 30.0])), n)
    dtype = draw(st.sampled_from(["float64", "float32"]))
    if dtype == "float32":
        logprob = logprob.astype(np.float32).astype(np.float64)
    first = np.zeros(n, dtype=bool)
    first[np.cumsum([0] + lengths[:-1]).astype(int)[:len(lengths)]] = True
    null_first = first & (rng.random(n) < draw(st.sampled_from([0.0, 0.0, 0.5, 1.0])))
    columns = dict(doc_id=[ids[d] for d, k in enumerate(lengths) for _ in range(k)],
                   logprob=[None if z else float(v) for z, v in zip(null_first, logprob)])
    mask = None
    if draw(st.booleans()):
        mask = rng.random(n) < 0.8
        columns["mask"] = [int(m) for m in mask] if draw(st.booleans()) else [bool(m) for m in mask]
    counts, regime = None, "n_bytes"
    if draw(st.integers(0, 2)):
        strings, counts, regime = draw(token_strings(n))
        columns["token"] = strings
    if not draw(st.integers(0, 2)):
        counts = [int(c) for c in rng.integers(0, 7, n)]
        columns["n_bytes"], regime = counts, "n_bytes"
    spoil = pick(rng, TOKEN_SPOILERS) if n and draw(st.integers(0, 2)) == 0 else None
    at = draw(st.integers(0, max(n - 1, 0)))
    return dict(lengths=lengths, columns=columns, dtype=dtype, mask=mask, counts=counts, regime=regime,
                fmt=draw(st.sampled_from(["csv", "parquet", "jsonl"])), spoil=spoil, at=at, ids_kind=ids_kind,
                null_first=null_first, logprob=logprob)


def spoil_tokens(case: dict) -> dict:
    """The columns with the case's spoiler applied (a copy)."""
    columns = {k: list(v) for k, v in case["columns"].items()}
    spoil, at = case["spoil"], case["at"]
    values = {"positive": 0.5, "nan": math.nan, "inf": -math.inf, "text": "abc", "null_middle": None,
              "tiny_positive": 1e-300}
    if spoil in values:
        columns["logprob"][at] = values[spoil]
    elif spoil == "null_id":
        columns["doc_id"][at] = None
    elif spoil == "no_ids":  # an id column left empty by the script that wrote the file
        columns["doc_id"] = [None] * len(columns["doc_id"])
    elif spoil == "null_mask" and "mask" in columns:
        columns["mask"][at] = None
    elif spoil == "negative_bytes" and "n_bytes" in columns:
        columns["n_bytes"][at] = -1
    return columns


def reference_tokens(case: dict, columns: dict) -> tuple[str | None, dict | None]:
    """What the written columns should give, by the README's rules, in numpy.

    Returns (the column a refusal must name, None) or (None, the figures); (None, None) when
    nothing is scored.
    """
    ids, raw = columns["doc_id"], columns["logprob"]
    if case["fmt"] == "csv":  # DataFrame.to_csv writes NaN as an empty field: a null
        raw = [None if isinstance(v, float) and math.isnan(v) else v for v in raw]
    if any(d is None for d in ids) and not (case["fmt"] == "csv" and case["ids_kind"] == "text"):
        return "doc_id", None  # (an empty text field in a CSV is the id "", not a missing one)
    if "mask" in columns and any(m is None for m in columns["mask"]):
        return "mask", None
    if any(isinstance(v, str) for v in raw):
        return "logprob", None  # text in a number column: refused wherever it is
    if "n_bytes" in columns and min(columns["n_bytes"], default=0) < 0:
        return "n_bytes", None
    n = len(raw)
    scored = np.ones(n, dtype=bool) if "mask" not in columns else np.array([bool(m) for m in columns["mask"]], bool)
    first = np.zeros(n, dtype=bool)
    first[np.cumsum([0] + case["lengths"][:-1]).astype(int)[:len(case["lengths"])]] = True
    null = np.array([v is None for v in raw], dtype=bool)
    if (null & scored & ~first).any():
        return "logprob", None  # only a document's first token may have no log-prob
    scored &= ~null
    values = np.array([0.0 if v is None else float(v) for v in raw])
    if (~np.isfinite(values[scored])).any() or (values[scored] > 4 * EPS64).any():
        return "logprob", None
    if not scored.any():
        return None, None
    nll = -np.minimum(values[scored], 0.0)  # within 4 epsilons of 0: clamped, as float32 log-softmax needs
    out = dict(n_tokens=int(scored.sum()), log_loss=float(nll.sum() / scored.sum()),
               n_documents=len({d for d, s in zip(ids, scored) if s}), bits_per_byte=None, n_bytes=None)
    tokens = columns.get("token")
    lossy = tokens is not None and "n_bytes" not in columns and any(
        "\ufffd" in t for t, s in zip(tokens, scored) if s)
    if case["counts"] is not None and not lossy:
        n_bytes = float(np.asarray(case["counts"], dtype=np.float64)[scored].sum())
        out["n_bytes"] = n_bytes
        out["bits_per_byte"] = float(nll.sum()) / n_bytes / LN2 if n_bytes else None
    return None, out


def unwritable_csv(columns: dict, fmt: str) -> bool:
    """Text that DataFrame.to_csv cannot write readably: a NUL (binary) or a bare CR, left unquoted."""
    return fmt == "csv" and any(isinstance(v, str) and ("\x00" in v or "\r" in v)
                                for values in columns.values() for v in values)


def write_table(columns: dict, fmt: str, folder: Path, stem: str, float32: bool = False) -> Path:
    """Write columns as a user would: DataFrame.to_csv, pyarrow Parquet, json.dumps per line."""
    import pandas as pd

    path = folder / f"{stem}.{fmt}"
    if fmt == "jsonl":
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "csv":
        pd.DataFrame(columns).to_csv(path, index=False, float_format="%.17g")
    else:
        table = pa.table({k: pa.array(v, from_pandas=True) if k != "logprob" else _logprobs(v, float32)
                          for k, v in columns.items()}) if columns else pa.table({})
        pq.write_table(table, path)
    return path


def _logprobs(values: list, float32: bool) -> pa.Array:
    if any(isinstance(v, str) for v in values):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.array(values, pa.float32() if float32 else pa.float64(), from_pandas=False)


def check_lm_run(run: dict, expected: dict, ids: bool = True) -> None:
    overall = run["overall"]
    assert overall["n_tokens"] == expected["n_tokens"]
    if ids:
        assert overall["n_documents"] == expected["n_documents"]
    assert close(overall["log_loss"], expected["log_loss"])
    assert math.isfinite(overall["log_loss"]) and math.isfinite(overall["perplexity"])
    if "bits_per_byte" not in expected:
        return  # bytes not promised
    if expected["bits_per_byte"] is None:
        assert overall["bits_per_byte"] is None, "bits per byte without known bytes"
    else:
        assert overall["n_bytes"] == expected["n_bytes"]
        assert close(overall["bits_per_byte"], expected["bits_per_byte"])


@fuzz_settings(0.25)
@given(token_files())
def test_token_files_give_numpys_numbers_or_one_line(case):
    columns = spoil_tokens(case)
    must_name, expected = reference_tokens(case, columns)
    with tempfile.TemporaryDirectory() as folder:
        path = write_table(columns, case["fmt"], Path(folder), "tokens", case["dtype"] == "float32")
        out = Path(folder) / "out.json"
        code, _, stderr = run_metrics(path, out)
        if code != 0:
            unreadable = unwritable_csv(columns, case["fmt"])
            refused(code, stderr, path, out, *([must_name] if must_name and not unreadable else []))
            # An empty CSV field is the text id "", or a missing id when the column has no other text.
            unreadable |= case["fmt"] == "csv" and None in columns["doc_id"]
            event(f"refused ({must_name or 'nothing scored' if expected is None else 'good file, ' + case['fmt']})")
            assert expected is None or unreadable, f"a good token file was refused: {stderr}"
            return
        document = json.loads(out.read_text(encoding="utf-8"))
    assert must_name is None, f"a file with a bad {must_name!r} was accepted"
    assert expected is not None, "a file with nothing scored gave figures"
    assert document["format_version"] == 3 and document["runs"][0]["kind"] == "tokens"
    (run,) = document["runs"]
    event(f"figures checked ({case['regime']} bytes)")
    if unwritable_csv(columns, case["fmt"]):  # a bare CR ending a line is read as the line's end
        expected = {**expected, "bits_per_byte": None} if expected["bits_per_byte"] is None else {
            k: v for k, v in expected.items() if k not in ("bits_per_byte", "n_bytes")}
    if case["fmt"] == "csv" and any("not token text" in note for note in run["layout"]["notes"]):
        # Tokens that all read as numbers ("0", " 12"): CSV keeps no type, so no bytes, said in a note.
        event("CSV tokens read as numbers: no bits per byte")
        expected = {**expected, "bits_per_byte": None}
    check_lm_run(run, expected, ids=case["ids_kind"] == "int" or case["fmt"] != "csv")


# -- list-column token files ---------------------------------------------------------------------
LIST_SPOILERS = ("positive", "nan", "null_middle", "text", "longer_tokens", "null_id")


@st.composite
def list_files(draw):
    """One row per document: a list of log-probs (float64 or float32), maybe tokens and ids."""
    n_rows = draw(st.integers(0, 5) if draw(st.integers(0, 4)) == 0 else st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lengths = [draw(st.integers(0, 6)) for _ in range(n_rows)]
    float32 = draw(st.booleans())
    null_first = draw(st.sampled_from([0.0, 0.0, 0.5, 1.0]))
    logprobs = []
    for k in lengths:
        values = -rng.exponential(draw(st.sampled_from([0.01, 1.0, 30.0])), k)
        if float32:
            values = values.astype(np.float32).astype(np.float64)
        items = [float(v) for v in values]
        if k and rng.random() < null_first:
            items[0] = None
        logprobs.append(None if k == 0 and draw(st.booleans()) else items)  # a null list: no tokens
    columns = {"logprobs": logprobs}
    if draw(st.booleans()):
        columns["doc_id"] = [f"doc {i}" for i in range(n_rows)] if draw(st.booleans()) else list(range(10, 10 + n_rows))
    counts, regime = None, None
    if draw(st.booleans()):
        strings, counts, regime = draw(token_strings(sum(lengths)))
        starts = np.cumsum([0] + lengths)
        columns["tokens"] = [strings[a:b] for a, b in zip(starts[:-1], starts[1:])]
    fmt = draw(st.sampled_from(["parquet", "jsonl"]))
    spoil = pick(rng, LIST_SPOILERS) if n_rows and draw(st.integers(0, 2)) == 0 else None
    if spoil == "text" and fmt == "parquet":
        spoil = None  # Parquet cannot hold text in a list of floats
    return dict(columns=columns, lengths=lengths, float32=float32, counts=counts, regime=regime, fmt=fmt,
                spoil=spoil, row=draw(st.integers(0, max(n_rows - 1, 0))), item=draw(st.integers(0, 5)))


def spoil_lists(case: dict) -> dict:
    columns = {k: [list(v) if isinstance(v, list) else v for v in values] for k, values in case["columns"].items()}
    spoil, row, item = case["spoil"], case["row"], case["item"]
    values = columns["logprobs"][row] if spoil else None
    if spoil in ("positive", "nan", "null_middle", "text") and values:
        values[item % len(values)] = {"positive": 0.5, "nan": math.nan, "null_middle": None, "text": "abc"}[spoil]
    elif spoil == "longer_tokens" and "tokens" in columns:
        columns["tokens"][row] = (columns["tokens"][row] or []) + ["x"]
    elif spoil == "null_id" and "doc_id" in columns:
        columns["doc_id"][row] = None
    return columns


def reference_lists(case: dict, columns: dict) -> tuple[str | None, dict | None]:
    """(the column a refusal must name, None) or (None, the figures); (None, None): nothing scored."""
    rows = [v or [] for v in columns["logprobs"]]
    if "tokens" in columns and any(len(t or []) != len(v) for t, v in zip(columns["tokens"], rows)):
        return "tokens", None
    flat = [v for values in rows for v in values]
    if any(isinstance(v, str) for v in flat):
        return "logprobs", None
    if "doc_id" in columns and any(d is None and v for d, v in zip(columns["doc_id"], rows)):
        return "doc_id", None
    first = np.array([i == 0 for values in rows for i in range(len(values))], dtype=bool)
    null = np.array([v is None for v in flat], dtype=bool)
    if (null & ~first).any():
        return "logprobs", None
    values = np.array([0.0 if v is None else v for v in flat], dtype=np.float64)
    scored = ~null
    if (~np.isfinite(values[scored])).any() or (values[scored] > 0).any():
        return "logprobs", None
    if not scored.any():
        return None, None
    nll = -values[scored]
    owner = np.repeat(np.arange(len(rows)), [len(v) for v in rows])
    out = dict(n_tokens=int(scored.sum()), log_loss=float(nll.sum() / scored.sum()),
               n_documents=len(set(owner[scored].tolist())), bits_per_byte=None, n_bytes=None)
    if "tokens" in columns:
        strings = [t for values in columns["tokens"] for t in (values or [])]
        if not any("\ufffd" in t for t, s in zip(strings, scored) if s):
            n_bytes = float(np.asarray(case["counts"], dtype=np.float64)[scored].sum())
            out["n_bytes"] = n_bytes
            out["bits_per_byte"] = float(nll.sum()) / n_bytes / LN2 if n_bytes else None
    return None, out


def write_lists(columns: dict, fmt: str, folder: Path, float32: bool) -> Path:
    path = folder / f"lists.{fmt}"
    if fmt == "jsonl":  # json.dumps, as a script writes it (NaN as the non-standard NaN)
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path
    kinds = {"logprobs": pa.list_(pa.float32() if float32 else pa.float64()), "tokens": pa.list_(pa.string())}
    pq.write_table(pa.table({k: pa.array(v, kinds.get(k)) for k, v in columns.items()}), path)
    return path


@fuzz_settings(0.175)
@given(list_files())
def test_list_column_files_give_numpys_numbers_or_one_line(case):
    columns = spoil_lists(case)
    must_name, expected = reference_lists(case, columns)
    with tempfile.TemporaryDirectory() as folder:
        path = write_lists(columns, case["fmt"], Path(folder), case["float32"])
        out = Path(folder) / "out.json"
        code, _, stderr = run_metrics(path, out)
        if code != 0:
            refused(code, stderr, path, out, *([must_name] if must_name else []))
            event(f"refused ({must_name or 'nothing scored' if expected is None else 'good file!'})")
            assert expected is None, f"a good list file was refused: {stderr}"
            return
        document = json.loads(out.read_text(encoding="utf-8"))
    assert must_name is None, f"a file with a bad {must_name!r} was accepted"
    assert expected is not None, "a file with nothing scored gave figures"
    (run,) = document["runs"]
    assert run["layout"]["lists"] is True
    event(f"figures checked ({case['regime'] or 'no'} bytes, {case['fmt']})")
    check_lm_run(run, expected)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_token_file_whose_id_column_is_empty_is_refused_in_one_line(tmp_path, fmt):
    # Found while reading the fuzzer's CSV cases: a column of nothing but missing ids has Arrow's
    # null type, on which run_starts' comparison had no kernel (ArrowNotImplementedError, a traceback).
    path = write_table({"doc_id": [None, None, None], "logprob": [-1.0, -2.0, -0.5]}, fmt, tmp_path, "tokens")
    out = tmp_path / "out.json"
    code, _, stderr = run_metrics(path, out)
    refused(code, stderr, path, out, "'doc_id'", "row 1", "missing document id")
