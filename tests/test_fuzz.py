"""Fuzzing the reader and schema: numbers equal to numpy's, or a LosslensError -- nothing else.

Hypothesis writes CSV (comma, semicolon, tab; UTF-8, UTF-8 with BOM, Latin-1; decimal
points or commas), Parquet, Feather and JSON-lines (``json.dumps`` per row) tables with random
class names and extra columns, short and long, narrow and wide, and then spoils some: NaN, infinities, out-of-range values, text in
number columns, empty labels, ragged and empty rows. Each case must either give the log
loss and accuracy that a direct numpy computation gives on the values written, or raise a
:class:`~losslens.errors.LosslensError` (exit 2 through the command line). Clean tables
(safe names, nothing spoiled) must always give the numbers.

``LOSSLENS_FUZZ_EXAMPLES`` is the whole fuzz run's budget (default 750), shared with the
language-model readers' fuzz tests (tests/test_fuzz_lm*.py): this test takes 40 % (300 by
default, a few seconds); ``make fuzz`` sets 100 000.
"""

from __future__ import annotations

import json
import math
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import losslens
from fuzz_cli import share
from losslens.errors import LosslensError

#: This test's share of the fuzz run's examples (the rest: tests/test_fuzz_lm*.py).
EXAMPLES = share(0.40)
EPS = np.finfo(np.float64).eps

SAFE_NAME = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6)
WILD_NAME = st.text(
    alphabet=string.ascii_letters + string.digits + " _-.;,\t\"'é€😀\x1b\u202e",
    min_size=1, max_size=8,
)
SPOILERS = ("nan", "inf", "-inf", "-0.5", "1.5", "abc", "", "empty_label", "ragged", "blank_line")


@st.composite
def tables(draw):
    """A table to write, how to write it, and whether it is clean."""
    wild = draw(st.booleans())
    k = draw(st.one_of(st.integers(2, 5), st.integers(6, 40)))
    names = draw(st.lists(WILD_NAME if wild else SAFE_NAME, min_size=k, max_size=k, unique=True))
    n = draw(st.one_of(st.integers(0, 12), st.integers(13, 400)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, draw(st.sampled_from([0.1, 1.0, 10.0]))), size=n)
    if draw(st.booleans()) and n:  # exact zeros and ones: clipped as scikit-learn does
        probs[0] = 0.0
        probs[0, 0] = 1.0
    labels = rng.integers(0, k, n)
    label_column = draw(st.sampled_from(["label", "y_true", "target"]))
    fmt = draw(st.sampled_from(["csv", "csv", "parquet", "feather", "jsonl"]))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]))
    decimal = "," if sep == ";" and draw(st.booleans()) else "."
    extra = draw(st.lists(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=4), max_size=3, unique=True))
    # From the seed, evenly: hypothesis's own choice leans heavily to the first spoiler.
    spoil = SPOILERS[int(rng.integers(len(SPOILERS)))] if draw(st.integers(0, 2)) == 0 else None
    spoil_at = (draw(st.integers(0, max(n - 1, 0))), draw(st.integers(0, k - 1)))
    return dict(names=names, probs=probs, labels=labels, label_column=label_column, fmt=fmt,
                sep=sep, encoding=encoding, decimal=decimal, extra=["x_" + e for e in extra],
                spoil=spoil, spoil_at=spoil_at, wild=wild)


def write(case: dict, folder: Path) -> tuple[Path, dict]:
    """Write the case; return the path and the options a user would give for it."""
    names, probs, labels = case["names"], case["probs"], case["labels"]
    frame = pd.DataFrame({case["label_column"]: [names[i] for i in labels]})
    for j, name in enumerate(names):
        frame[f"p_{name}"] = probs[:, j]
    for column in case["extra"]:
        frame[column] = np.arange(len(frame))
    spoil, (row, col) = case["spoil"], case["spoil_at"]
    if spoil in ("nan", "inf", "-inf", "-0.5", "1.5", "abc", "") and len(frame):
        column = f"p_{names[col]}"
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = float(spoil) if spoil not in ("abc", "") else spoil
    if spoil == "empty_label" and len(frame):
        frame.loc[row, case["label_column"]] = ""
    options = {}
    if case["fmt"] == "jsonl":  # as a script writes it: json.dumps per row (NaN, Infinity: Python's spelling)
        path = folder / "data.jsonl"
        rows = frame.to_dict(orient="records")
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        return path, options
    if case["fmt"] in ("parquet", "feather"):
        path = folder / f"data.{case['fmt']}"
        typed = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        typed.to_parquet(path) if case["fmt"] == "parquet" else typed.to_feather(path)
        return path, options
    path = folder / "data.csv"
    frame.to_csv(path, index=False, sep=case["sep"], encoding=case["encoding"],
                 decimal=case["decimal"], float_format="%.17g")
    if case["encoding"] == "latin-1":
        options["encoding"] = "latin-1"
    text = path.read_bytes()
    if spoil == "ragged" and len(frame):
        lines = text.split(b"\n")
        lines[row + 1] += (case["sep"] + "0.5").encode()
        text = b"\n".join(lines)
    if spoil == "blank_line" and len(frame):
        lines = text.split(b"\n")
        lines.insert(row + 1, b"")
        text = b"\n".join(lines)
    path.write_bytes(text)
    return path, options


def expected_numbers(case: dict) -> tuple[float, float]:
    """Log loss and accuracy straight from the arrays, as scikit-learn defines them."""
    probs, labels = case["probs"], case["labels"]
    true_prob = probs[np.arange(len(labels)), labels]
    loss = float(np.mean(-np.log(np.clip(true_prob, EPS, 1 - EPS))))
    accuracy = float(np.mean(probs.argmax(axis=1) == labels))
    return loss, accuracy


def encodable(case: dict) -> bool:
    text = case["label_column"] + "".join(case["names"])
    try:
        text.encode(case["encoding"])
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 1000,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables())
def test_reader_and_schema_give_numpys_numbers_or_a_losslens_error(case):
    if not encodable(case):
        case = {**case, "encoding": "utf-8"}
    with tempfile.TemporaryDirectory() as folder:
        path, options = write(case, Path(folder))
        before = path.read_bytes()
        try:
            evaluation = losslens.evaluate(path, **options)
        except LosslensError as exc:
            message = str(exc)
            assert message.strip(), "an error without a message"
            clean = not case["wild"] and case["spoil"] in (None, "blank_line", "ragged") and len(case["labels"])
            clean = clean and (case["spoil"] != "ragged" or case["fmt"] != "csv")
            assert not clean, f"a clean table was refused: {message}"
            event(f"refused ({case['fmt']}, {case['spoil'] or 'wild names'})")
            return
        finally:
            assert path.read_bytes() == before  # the user's file is never modified
    loss, accuracy = expected_numbers(case)
    event(f"figures checked ({case['fmt']})")
    # Different log implementations (numpy SIMD vs libm) may differ in the last bit.
    assert evaluation.overall.log_loss == pytest.approx(loss, rel=1e-12)
    if not math.isnan(accuracy):
        assert evaluation.overall.accuracy == pytest.approx(accuracy, rel=1e-12)
    assert evaluation.overall.n_examples == len(case["labels"])
