"""Bad input ends with exit code 2 and one clear line on stderr -- never a traceback.

The requirement (from the issue): each bad input ends with exit code 2 and one line on
stderr naming the file, the column and, where it applies, the first offending row and
value; no traceback, no output file, and the input untouched. Every case below checks all
of that:

* exit code 2;
* stderr is exactly one non-empty line starting with ``losslens: error: ``;
* no ``Traceback`` on stdout or stderr;
* the file name (basename) appears; the column appears quoted (``'p_dog'``) where one
  applies; ``row N`` (1-based data row, first row after the header is row 1) and the
  offending value appear where they apply (the value as written, not a numpy repr such
  as ``np.float64(1.5)``); where the bad value occurs twice, the first one is named;
* ``--json out.json`` was passed and ``out.json`` does not exist afterwards;
* every file under the test directory (inputs included) keeps its bytes and mtime, and no
  new file appears.

Most cases run through ``typer.testing.CliRunner`` (fast); a handful run as a real
``python -m losslens`` process to check the true exit status and the real stderr.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import random
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

NAN = float("nan")
INF = float("inf")

CLASSES = ("cat", "dog", "bird")

# Regexes (case-insensitive) for the offending value as it should appear in the message.
NAN_RE = r"\bnan\b"
POS_INF_RE = r"(?<![\w-])\+?inf(inity)?\b"
NEG_INF_RE = r"-inf(inity)?\b"
MISSING_RE = r"\bnan\b|missing|empty|blank|null|\bnone\b"
#: ``np.float64(1.5)`` and the like must not leak into a message.
NUMPY_REPR = re.compile(r"\bnp\.\w+\(|numpy\.\w+\(|dtype\(")


# --------------------------------------------------------------------------------------
# Writing test files
# --------------------------------------------------------------------------------------


def cell_text(value) -> str:
    """How a Python value is written into a CSV/TSV cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(value)


def write_table(path: Path, columns: dict[str, list] | list[tuple[str, list]], fmt: str,
                row_group_size: int | None = None) -> Path:
    """Write columns (name -> values) as csv, tsv, csv.gz or parquet.

    ``columns`` may be a list of (name, values) pairs to allow duplicate column names.
    Parquet columns are float64 when every value is a number or None (int64 when all are
    ints), otherwise strings, so a non-numeric cell makes a string column as it would in
    real data.
    """
    pairs = list(columns.items()) if isinstance(columns, dict) else list(columns)
    names = [name for name, _ in pairs]
    if fmt in ("csv", "tsv", "csv.gz"):
        sep = "\t" if fmt == "tsv" else ","
        lines = [sep.join(names)]
        cols = [values for _, values in pairs]
        # Big test files repeat a few distinct rows: format each distinct row once.
        formatted: dict[tuple, str] = {}
        for row in zip(*cols):
            key = (*row, *map(type, row))  # 1 and 1.0 are equal but print differently
            line = formatted.get(key)
            if line is None:
                line = formatted[key] = sep.join(map(cell_text, row))
            lines.append(line)
        data = ("\n".join(lines) + "\n").encode()
        if fmt == "csv.gz":
            data = gzip.compress(data, mtime=0)
        path.write_bytes(data)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = []
        for _, values in pairs:
            kinds = set(map(type, values))
            if kinds <= {int, float, type(None)}:
                if kinds <= {int, type(None)} and int in kinds:
                    arrays.append(pa.array(values, pa.int64()))
                else:
                    arrays.append(pa.array(values, pa.float64()))
            else:
                texts: dict = {}  # distinct value -> text, to keep big files fast
                out = []
                for v in values:
                    if v is None:
                        out.append(None)
                        continue
                    t = texts.get((v, type(v)))
                    if t is None:
                        t = texts[(v, type(v))] = cell_text(v)
                    out.append(t)
                arrays.append(pa.array(out, pa.string()))
        table = pa.Table.from_arrays(arrays, names=names)
        pq.write_table(table, path, row_group_size=row_group_size)
    else:  # pragma: no cover - test bug
        raise ValueError(fmt)
    return path


def ext(fmt: str) -> str:
    return "." + fmt


# Frames: dict column -> list of values. Every frame is valid until a cell is spoiled.


def multiclass(n: int = 8, weight: bool = False) -> dict[str, list]:
    labels = [CLASSES[i % 3] for i in range(n)]
    cols: dict[str, list] = {"label": labels}
    for c in CLASSES:
        cols[f"p_{c}"] = [0.5 if lab == c else 0.25 for lab in labels]
    if weight:
        cols["w"] = [1.0] * n
    return cols


def logits(n: int = 8) -> dict[str, list]:
    labels = [CLASSES[i % 3] for i in range(n)]
    cols: dict[str, list] = {"label": labels}
    for c in CLASSES:
        cols[f"logit_{c}"] = [2.0 if lab == c else -1.0 for lab in labels]
    return cols


def targets(n: int = 8) -> dict[str, list]:
    cols: dict[str, list] = {"id": list(range(1, n + 1))}
    for i, c in enumerate(CLASSES):
        cols[f"p_{c}"] = [0.5 if (r % 3) == i else 0.25 for r in range(n)]
    for i, c in enumerate(CLASSES):
        cols[f"t_{c}"] = [0.5 if (r % 3) == i else 0.25 for r in range(n)]
    return cols


def binary(n: int = 8) -> dict[str, list]:
    labels = [i % 2 for i in range(n)]
    return {"label": labels, "y_prob": [0.75 if y == 1 else 0.25 for y in labels]}


def binary_logit(n: int = 8) -> dict[str, list]:
    labels = [i % 2 for i in range(n)]
    return {"label": labels, "margin": [1.5 if y == 1 else -1.5 for y in labels]}


def spoil(cols: dict[str, list], column: str, row: int, value) -> dict[str, list]:
    """Put ``value`` into 1-based data row ``row`` of ``column``."""
    cols[column][row - 1] = value
    return cols


# --------------------------------------------------------------------------------------
# Running the CLI and checking the outcome
# --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    detail: str = ""  # traceback of an exception CliRunner caught, if any

    def describe(self) -> str:
        return (
            f"exit code: {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n"
            f"{self.stderr}\n{self.detail}"
        )


CLI_ENV = {"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}


def run_cli_runner(args: list[str]) -> Outcome:
    from typer.testing import CliRunner

    from losslens.cli import app

    runner = CliRunner()
    result = runner.invoke(app, [str(a) for a in args], env=CLI_ENV)
    detail = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        detail = "--- exception caught by CliRunner ---\n" + "".join(
            traceback.format_exception(*result.exc_info)
        )
    try:
        stderr = result.stderr
    except ValueError:  # pragma: no cover - older click
        stderr = ""
    return Outcome(result.exit_code, result.stdout, stderr, detail)


def run_subprocess(args: list[str], cwd: Path) -> Outcome:
    env = dict(os.environ)
    env.update(CLI_ENV)
    proc = subprocess.run(
        [sys.executable, "-m", "losslens", *[str(a) for a in args]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def run(args: list[str], mode: str, cwd: Path) -> Outcome:
    if mode == "subprocess":
        return run_subprocess(args, cwd)
    return run_cli_runner(args)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root -> (kind, size, sha256, mtime_ns)."""
    snap = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        st = p.stat()
        if p.is_file():
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            snap[rel] = ("file", st.st_size, digest, st.st_mtime_ns)
        else:
            snap[rel] = ("dir",)
    return snap


@dataclass
class Expect:
    """What the error line must contain."""

    name: str  # file name (basename) that must appear
    column: str | None = None  # must appear quoted: 'column'
    row: int | None = None  # must appear as "row N"
    value: str | None = None  # regex, case-insensitive
    extra: list[str] = field(default_factory=list)  # plain substrings that must appear
    column_unquoted: str | None = None  # substring (for prefixes, etc.)


def check_error_line(out: Outcome, expect: Expect) -> str:
    info = out.describe()
    print(f"stderr: {out.stderr.strip()}")  # shown by pytest -rA / on failure
    assert out.code == 2, f"expected exit code 2\n{info}"
    assert "Traceback" not in out.stdout and "Traceback" not in out.stderr, info
    err = out.stderr.strip()
    assert err, f"stderr is empty\n{info}"
    assert "\n" not in err, f"stderr is more than one line\n{info}"
    assert err.startswith("losslens: error: "), f"stderr does not start with the prefix\n{info}"
    assert expect.name in err, f"file name {expect.name!r} missing\n{info}"
    if expect.column is not None:
        assert f"'{expect.column}'" in err, f"column '{expect.column}' (quoted) missing\n{info}"
    if expect.column_unquoted is not None:
        assert expect.column_unquoted in err, f"{expect.column_unquoted!r} missing\n{info}"
    if expect.row is not None:
        assert re.search(rf"\brow {expect.row}\b", err), f"'row {expect.row}' missing\n{info}"
    if expect.value is not None:
        assert re.search(expect.value, err, re.IGNORECASE), (
            f"offending value /{expect.value}/ missing\n{info}"
        )
    # A clear line shows values as the user wrote them, not as numpy reprs.
    assert not NUMPY_REPR.search(err), f"numpy repr in the message\n{info}"
    for text in expect.extra:
        assert text in err, f"{text!r} missing\n{info}"
    return err


def check_bad_run(tmp_path: Path, inputs: list, args: list[str], expect: Expect,
                  mode: str = "runner", json_target: str | None = None) -> Outcome:
    """Run ``metrics`` on bad input and check every promise of the requirement."""
    out_json = tmp_path / "out.json"
    target = json_target if json_target is not None else str(out_json)
    before = snapshot(tmp_path)
    out = run(["metrics", *[str(i) for i in inputs], *args, "--json", target], mode, tmp_path)
    check_error_line(out, expect)
    if json_target is None:
        assert not out_json.exists(), f"out.json was written\n{out.describe()}"
    after = snapshot(tmp_path)
    assert after == before, (
        "files under the test directory changed (input modified or output written): "
        f"added={sorted(set(after) - set(before))} removed={sorted(set(before) - set(after))} "
        f"changed={sorted(k for k in before if k in after and before[k] != after[k])}"
    )
    return out


@pytest.fixture
def indir(tmp_path: Path, monkeypatch) -> Path:
    """Input directory; cwd is tmp_path so any stray output file is caught by snapshot."""
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "in"
    d.mkdir()
    return d


# --------------------------------------------------------------------------------------
# Value errors: parametrised over file format
# --------------------------------------------------------------------------------------


@dataclass
class ValueCase:
    id: str
    frame: Callable[[], dict]
    column: str
    row: int
    value: object
    expect_value: str | None
    args: tuple = ()
    also_later: bool = True  # also put the same bad value in a later row (first must win)


VALUE_CASES = [
    # probabilities (per-class columns)
    ValueCase("prob-nan", multiclass, "p_dog", 3, NAN, NAN_RE),
    ValueCase("prob-empty-cell", multiclass, "p_dog", 3, None, MISSING_RE),
    ValueCase("prob-plus-inf", multiclass, "p_dog", 3, INF, POS_INF_RE),
    ValueCase("prob-minus-inf", multiclass, "p_dog", 3, -INF, NEG_INF_RE),
    ValueCase("prob-negative", multiclass, "p_dog", 3, -0.25, r"-0\.25"),
    ValueCase("prob-above-one", multiclass, "p_dog", 3, 1.5, r"1\.5"),
    ValueCase("prob-non-numeric", multiclass, "p_dog", 3, "oops", "oops"),
    ValueCase("prob-true-class-nan", multiclass, "p_bird", 3, NAN, NAN_RE),
    # logits
    ValueCase("logit-nan", logits, "logit_dog", 3, NAN, NAN_RE, ("--logits", "logit_")),
    ValueCase("logit-plus-inf", logits, "logit_dog", 3, INF, POS_INF_RE, ("--logits", "logit_")),
    ValueCase("logit-minus-inf", logits, "logit_dog", 3, -INF, NEG_INF_RE, ("--logits", "logit_")),
    ValueCase("logit-non-numeric", logits, "logit_dog", 3, "oops", "oops", ("--logits", "logit_")),
    # soft targets
    ValueCase("target-nan", targets, "t_dog", 3, NAN, NAN_RE, ("--targets", "t_")),
    ValueCase("target-plus-inf", targets, "t_dog", 3, INF, POS_INF_RE, ("--targets", "t_")),
    ValueCase("target-minus-inf", targets, "t_dog", 3, -INF, NEG_INF_RE, ("--targets", "t_")),
    ValueCase("target-negative", targets, "t_dog", 3, -0.25, r"-0\.25", ("--targets", "t_")),
    ValueCase("target-above-one", targets, "t_dog", 3, 1.5, r"1\.5", ("--targets", "t_")),
    ValueCase("target-non-numeric", targets, "t_dog", 3, "oops", "oops", ("--targets", "t_")),
    # single-column binary
    ValueCase("binary-prob-nan", binary, "y_prob", 4, NAN, NAN_RE),
    ValueCase("binary-prob-above-one", binary, "y_prob", 4, 1.5, r"1\.5"),
    ValueCase("binary-prob-negative", binary, "y_prob", 4, -0.25, r"-0\.25"),
    ValueCase("binary-prob-non-numeric", binary, "y_prob", 4, "oops", "oops"),
    ValueCase("binary-logit-nan", binary_logit, "margin", 4, NAN, NAN_RE,
              ("--positive-logit", "margin")),
    ValueCase("binary-logit-minus-inf", binary_logit, "margin", 4, -INF, NEG_INF_RE,
              ("--positive-logit", "margin")),
    # labels
    ValueCase("label-without-prob-column", multiclass, "label", 4, "zebra", "zebra"),
    ValueCase("label-empty", multiclass, "label", 2, None, None),
    ValueCase("binary-label-empty", binary, "label", 2, None, None),
    ValueCase("binary-layout-three-classes", binary, "label", 5, 7, r"(?<![\w.])7(?![\w.])",
              also_later=False),
    # a probability column with no values at all (CSV type inference sees only empties)
    ValueCase("prob-column-all-empty", lambda: multiclass() | {"p_dog": [None] * 8}, "p_dog", 1,
              None, MISSING_RE, also_later=False),
    # weights
    ValueCase("weight-negative", lambda: multiclass(weight=True), "w", 3, -1.5, r"-1\.5",
              ("--weight", "w")),
    # not in the list, but the same kind of bad value
    ValueCase("weight-nan", lambda: multiclass(weight=True), "w", 3, NAN, NAN_RE,
              ("--weight", "w")),
    ValueCase("weight-non-numeric", lambda: multiclass(weight=True), "w", 3, "heavy", "heavy",
              ("--weight", "w")),
]


def _value_params():
    params = []
    for case in VALUE_CASES:
        for fmt in ("csv", "parquet"):
            params.append(pytest.param(case, fmt, id=f"{fmt}-{case.id}"))
    # the NaN case through the other text formats as well
    for fmt in ("tsv", "csv.gz"):
        params.append(pytest.param(VALUE_CASES[0], fmt, id=f"{fmt}-{VALUE_CASES[0].id}"))
    return params


@pytest.mark.parametrize("case, fmt", _value_params())
def test_bad_value(indir: Path, tmp_path: Path, case: ValueCase, fmt: str):
    cols = spoil(case.frame(), case.column, case.row, case.value)
    if case.also_later:
        # A second offence later: the message must name the FIRST one.
        spoil(cols, case.column, case.row + 3, case.value)
    path = write_table(indir / f"preds{ext(fmt)}", cols, fmt)
    check_bad_run(
        tmp_path,
        [path],
        list(case.args),
        Expect(name=path.name, column=case.column, row=case.row, value=case.expect_value),
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_weights_sum_to_zero(indir: Path, tmp_path: Path, fmt: str):
    cols = multiclass(weight=True)
    cols["w"] = [0.0] * len(cols["w"])
    path = write_table(indir / f"preds{ext(fmt)}", cols, fmt)
    check_bad_run(tmp_path, [path], ["--weight", "w"], Expect(name=path.name, column="w"))


# --------------------------------------------------------------------------------------
# File-level and column-level errors
# --------------------------------------------------------------------------------------


def _csv_text(cols) -> str:
    pairs = list(cols.items()) if isinstance(cols, dict) else list(cols)
    n = len(pairs[0][1])
    lines = [",".join(name for name, _ in pairs)]
    lines += [",".join(cell_text(v[i]) for _, v in pairs) for i in range(n)]
    return "\n".join(lines) + "\n"


def _valid_parquet_bytes(tmp: Path, n: int = 200) -> bytes:
    p = write_table(tmp / "_scratch.parquet", multiclass(n), "parquet")
    data = p.read_bytes()
    p.unlink()
    return data


def case_missing_path(d: Path):
    return [d / "nope.csv"], [], Expect(name="nope.csv")


def case_missing_path_parquet(d: Path):
    return [d / "nope.parquet"], [], Expect(name="nope.parquet")


def case_missing_glob(d: Path):
    (d / "preds").mkdir()
    return [str(d / "preds" / "part-*.parquet")], [], Expect(name="part-*.parquet")


def case_empty_folder(d: Path):
    (d / "preds").mkdir()
    (d / "preds" / "README.txt").write_text("no prediction files here\n")
    return [d / "preds"], [], Expect(name="preds")


def case_empty_csv(d: Path):
    p = d / "empty.csv"
    p.write_bytes(b"")
    return [p], [], Expect(name=p.name)


def case_blank_lines_csv(d: Path):
    p = d / "blank.csv"
    p.write_text("\n\n\n")
    return [p], [], Expect(name=p.name)


def case_empty_csv_gz(d: Path):
    p = d / "empty.csv.gz"
    p.write_bytes(gzip.compress(b"", mtime=0))
    return [p], [], Expect(name=p.name)


def case_empty_parquet_file(d: Path):
    p = d / "empty.parquet"
    p.write_bytes(b"")
    return [p], [], Expect(name=p.name)


def case_header_only_csv(d: Path):
    p = d / "header.csv"
    p.write_text("label,p_cat,p_dog,p_bird\n")
    return [p], [], Expect(name=p.name)


def case_header_only_tsv(d: Path):
    p = d / "header.tsv"
    p.write_text("label\tp_cat\tp_dog\tp_bird\n")
    return [p], [], Expect(name=p.name)


def case_header_only_csv_gz(d: Path):
    p = d / "header.csv.gz"
    p.write_bytes(gzip.compress(b"label,p_cat,p_dog,p_bird\n", mtime=0))
    return [p], [], Expect(name=p.name)


def case_header_only_parquet(d: Path):
    p = write_table(d / "header.parquet", multiclass(0), "parquet")
    return [p], [], Expect(name=p.name)


def case_gz_not_gzip(d: Path):
    p = d / "preds.csv.gz"
    p.write_text(_csv_text(multiclass()))
    return [p], [], Expect(name=p.name)


def case_gz_truncated(d: Path):
    p = d / "preds.csv.gz"
    data = gzip.compress(_csv_text(multiclass(5000)).encode(), mtime=0)
    p.write_bytes(data[: len(data) * 6 // 10])
    return [p], [], Expect(name=p.name)


def case_gz_bad_crc(d: Path):
    # The stream inflates completely; only the CRC in the trailer is wrong, so the error
    # surfaces at the very end of reading.
    p = d / "preds.csv.gz"
    data = bytearray(gzip.compress(_csv_text(multiclass(50)).encode(), mtime=0))
    data[-8] ^= 0xFF
    p.write_bytes(bytes(data))
    return [p], [], Expect(name=p.name)


def case_parquet_garbage(d: Path):
    p = d / "preds.parquet"
    p.write_bytes(random.Random(7).randbytes(4096))
    return [p], [], Expect(name=p.name)


def case_parquet_truncated(d: Path):
    p = d / "preds.parquet"
    data = _valid_parquet_bytes(d)
    p.write_bytes(data[: len(data) // 2])
    return [p], [], Expect(name=p.name)


def case_parquet_corrupt_footer(d: Path):
    # Magic bytes at both ends intact, footer metadata scrambled.
    p = d / "preds.parquet"
    data = bytearray(_valid_parquet_bytes(d))
    for i in range(len(data) - 200, len(data) - 8):
        data[i] ^= 0x5A
    p.write_bytes(bytes(data))
    return [p], [], Expect(name=p.name)


def case_parquet_corrupt_data_page(d: Path):
    # Footer fine, one gzip-compressed data page in the 4th row group scrambled: the file
    # opens, and the error surfaces only while reading the later batches.
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table(multiclass(50_000)), buf, compression="gzip", row_group_size=10_000)
    data = bytearray(buf.getvalue())
    chunk = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(3).column(2)
    start = chunk.data_page_offset + chunk.total_compressed_size // 2
    for i in range(start, start + 16):
        data[i] ^= 0xA5
    p = d / "preds.parquet"
    p.write_bytes(bytes(data))
    return [p], [], Expect(name=p.name)


def case_parquet_is_csv_text(d: Path):
    p = d / "preds.parquet"
    p.write_text(_csv_text(multiclass()))
    return [p], [], Expect(name=p.name)


def case_csv_binary_garbage(d: Path):
    p = d / "preds.csv"
    p.write_bytes(b"\x00\x9c\xff\x00" + random.Random(11).randbytes(4096))
    return [p], [], Expect(name=p.name)


def case_unsupported_extension_xlsx(d: Path):
    p = d / "preds.xlsx"
    p.write_text(_csv_text(multiclass()))
    return [p], [], Expect(name=p.name)


def case_unsupported_extension_json(d: Path):
    p = d / "preds.json"
    p.write_text('[{"label": "cat", "p_cat": 0.5, "p_dog": 0.25, "p_bird": 0.25}]\n')
    return [p], [], Expect(name=p.name)


def case_ragged_extra_field(d: Path):
    p = d / "preds.csv"
    lines = _csv_text(multiclass()).splitlines()
    lines[3] += ",0.125"  # data row 3 has one field too many
    p.write_text("\n".join(lines) + "\n")
    return [p], [], Expect(name=p.name, row=3)


def case_ragged_short_row(d: Path):
    p = d / "preds.csv"
    lines = _csv_text(multiclass()).splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]  # data row 3 has one field too few
    p.write_text("\n".join(lines) + "\n")
    return [p], [], Expect(name=p.name, row=3)


def _multiline_csv(d: Path, spoil_row3: Callable[[list[str]], list[str]]) -> Path:
    """A CSV whose first two records hold a quoted note spanning two lines.

    Data row 3 is then on physical line 6 (line 1 is the header): the message must count
    records, not lines.
    """
    header = "label,p_cat,p_dog,p_bird,note"
    rows = [
        ["cat", "0.5", "0.25", "0.25", '"first line\nsecond line"'],
        ["dog", "0.25", "0.5", "0.25", '"one\ntwo"'],
        ["bird", "0.25", "0.25", "0.5", "plain"],
        ["cat", "0.5", "0.25", "0.25", "plain"],
    ]
    rows[2] = spoil_row3(rows[2])
    p = d / "preds.csv"
    p.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return p


def case_multiline_record_then_nan(d: Path):
    p = _multiline_csv(d, lambda r: [r[0], r[1], "nan", *r[3:]])
    return [p], [], Expect(name=p.name, column="p_dog", row=3, value=NAN_RE)


def case_multiline_record_then_non_numeric(d: Path):
    p = _multiline_csv(d, lambda r: [r[0], r[1], "oops", *r[3:]])
    return [p], [], Expect(name=p.name, column="p_dog", row=3, value="oops")


def case_multiline_record_then_ragged(d: Path):
    p = _multiline_csv(d, lambda r: [*r, "extra"])
    return [p], [], Expect(name=p.name, row=3)


def case_no_label_column(d: Path):
    cols = multiclass()
    cols = {"truth": cols.pop("label"), **cols}
    p = write_table(d / "preds.csv", cols, "csv")
    # lists the columns seen and the option that fixes it
    return [p], [], Expect(name=p.name, extra=["truth", "p_cat", "p_dog", "p_bird", "--label"])


def case_no_label_column_parquet(d: Path):
    cols = multiclass()
    cols = {"truth": cols.pop("label"), **cols}
    p = write_table(d / "preds.parquet", cols, "parquet")
    return [p], [], Expect(name=p.name, extra=["truth", "p_cat", "--label"])


def _opt_missing(option: str, value: str, quoted: bool = True, frame=multiclass):
    def build(d: Path):
        p = write_table(d / "preds.csv", frame(), "csv")
        if quoted:
            return [p], [option, value], Expect(name=p.name, column=value)
        return [p], [option, value], Expect(name=p.name, column_unquoted=value)

    return build


def case_probs_list_missing_column(d: Path):
    p = write_table(d / "preds.csv", multiclass(), "csv")
    return [p], ["--probs", "p_cat,p_dog,p_fox"], Expect(name=p.name, column="p_fox")


def case_classes_without_prob_column(d: Path):
    p = write_table(d / "preds.csv", multiclass(), "csv")
    return [p], ["--classes", "cat,dog,bird,fox"], Expect(name=p.name, column_unquoted="fox")


def case_duplicate_prob_column_csv(d: Path):
    cols = list(multiclass().items()) + [("p_dog", [0.25] * 8)]
    p = write_table(d / "preds.csv", cols, "csv")
    return [p], [], Expect(name=p.name, column="p_dog")


def case_duplicate_label_column_csv(d: Path):
    cols = list(multiclass().items()) + [("label", list(multiclass()["label"]))]
    p = write_table(d / "preds.csv", cols, "csv")
    return [p], [], Expect(name=p.name, column="label")


def case_duplicate_prob_column_parquet(d: Path):
    cols = list(multiclass().items()) + [("p_dog", [0.25] * 8)]
    p = write_table(d / "preds.parquet", cols, "parquet")
    return [p], [], Expect(name=p.name, column="p_dog")


STRUCTURAL_CASES: dict[str, Callable] = {
    "missing-path": case_missing_path,
    "missing-path-parquet": case_missing_path_parquet,
    "missing-path-glob-matches-nothing": case_missing_glob,
    "missing-path-folder-without-prediction-files": case_empty_folder,
    "empty-file-csv": case_empty_csv,
    "empty-file-blank-lines-csv": case_blank_lines_csv,
    "empty-file-csv-gz": case_empty_csv_gz,
    "empty-file-parquet": case_empty_parquet_file,
    "header-no-rows-csv": case_header_only_csv,
    "header-no-rows-tsv": case_header_only_tsv,
    "header-no-rows-csv-gz": case_header_only_csv_gz,
    "header-no-rows-parquet": case_header_only_parquet,
    "bad-gzip-not-gzip": case_gz_not_gzip,
    "bad-gzip-truncated": case_gz_truncated,
    "bad-gzip-bad-crc": case_gz_bad_crc,
    "corrupt-parquet-garbage": case_parquet_garbage,
    "corrupt-parquet-truncated": case_parquet_truncated,
    "corrupt-parquet-footer": case_parquet_corrupt_footer,
    "corrupt-parquet-data-page": case_parquet_corrupt_data_page,
    "corrupt-parquet-is-csv-text": case_parquet_is_csv_text,
    "binary-garbage-csv": case_csv_binary_garbage,
    "unsupported-extension-xlsx": case_unsupported_extension_xlsx,
    "unsupported-extension-json": case_unsupported_extension_json,
    "ragged-row-extra-field": case_ragged_extra_field,
    "ragged-row-short": case_ragged_short_row,
    "row-counts-records-not-lines-nan": case_multiline_record_then_nan,
    "row-counts-records-not-lines-non-numeric": case_multiline_record_then_non_numeric,
    "row-counts-records-not-lines-ragged": case_multiline_record_then_ragged,
    "no-label-column-csv": case_no_label_column,
    "no-label-column-parquet": case_no_label_column_parquet,
    "missing-column-label": _opt_missing("--label", "no_such_label"),
    "missing-column-weight": _opt_missing("--weight", "no_such_weight"),
    "missing-column-id": _opt_missing("--id", "no_such_id"),
    "missing-column-split": _opt_missing("--split", "no_such_split"),
    "missing-column-by": _opt_missing("--by", "no_such_group"),
    "missing-column-positive-prob": _opt_missing("--positive-prob", "no_such_prob", frame=binary),
    "missing-column-positive-logit": _opt_missing("--positive-logit", "no_such_logit",
                                                  frame=binary),
    "missing-column-probs-prefix": _opt_missing("--probs", "q_", quoted=False),
    "missing-column-probs-list": case_probs_list_missing_column,
    "missing-column-logits-prefix": _opt_missing("--logits", "z_", quoted=False),
    "missing-column-targets-prefix": _opt_missing("--targets", "tt_", quoted=False),
    "classes-without-prob-column": case_classes_without_prob_column,
    "duplicate-column-prob-csv": case_duplicate_prob_column_csv,
    "duplicate-column-label-csv": case_duplicate_label_column_csv,
    "duplicate-column-prob-parquet": case_duplicate_prob_column_parquet,
}


@pytest.mark.parametrize("case_id", list(STRUCTURAL_CASES))
def test_bad_file_or_columns(indir: Path, tmp_path: Path, case_id: str):
    inputs, args, expect = STRUCTURAL_CASES[case_id](indir)
    check_bad_run(tmp_path, inputs, args, expect)


# --------------------------------------------------------------------------------------
# Row numbers across read batches, row groups, parts and several inputs
# --------------------------------------------------------------------------------------

BIG_N = 200_000
BIG_ROW = 150_001


def _big_frame() -> dict[str, list]:
    # The note column pads each CSV row to ~100 bytes so that the file (~20 MB) spans
    # several read blocks/batches and row 150,001 lies well past the first 8 MB.
    cols = multiclass(BIG_N)
    cols["note"] = ["padding-" + "x" * 72] * BIG_N
    return cols


@pytest.mark.parametrize(
    "fmt, column, value, expect_value",
    [
        pytest.param("csv", "p_dog", NAN, NAN_RE, id="csv-prob-nan"),
        pytest.param("csv", "p_dog", "oops", "oops", id="csv-prob-non-numeric"),
        pytest.param("csv", "p_dog", 1.5, r"1\.5", id="csv-prob-above-one"),
        pytest.param("csv", "label", "zebra", "zebra", id="csv-label-without-prob-column"),
        pytest.param("csv", "label", None, None, id="csv-label-empty"),
        pytest.param("csv.gz", "p_dog", -0.25, r"-0\.25", id="csv.gz-prob-negative"),
        pytest.param("parquet", "p_dog", NAN, NAN_RE, id="parquet-prob-nan"),
        pytest.param("parquet", "p_dog", "oops", "oops", id="parquet-prob-non-numeric"),
    ],
)
def test_bad_value_in_later_batch(indir: Path, tmp_path: Path, fmt, column, value, expect_value):
    cols = spoil(_big_frame(), column, BIG_ROW, value)
    path = write_table(indir / f"big{ext(fmt)}", cols, fmt, row_group_size=40_000)
    check_bad_run(
        tmp_path, [path], [],
        Expect(name=path.name, column=column, row=BIG_ROW, value=expect_value),
    )


def test_bad_value_in_later_batch_after_multiline_records(indir: Path, tmp_path: Path):
    """Quoted notes spanning two lines in every record of a ~20 MB CSV: the bad value in
    record 150,001 (physical line ~300,002) must still be reported as row 150,001 -- and
    not as a parser/chunker failure at a block boundary."""
    cols = spoil(_big_frame(), "p_dog", BIG_ROW, NAN)
    cols["note"] = ['"padding ' + "x" * 60 + '\nsecond line"'] * BIG_N
    path = write_table(indir / "big.csv", cols, "csv")
    check_bad_run(
        tmp_path, [path], [],
        Expect(name=path.name, column="p_dog", row=BIG_ROW, value=NAN_RE),
    )


def test_ragged_row_in_later_batch(indir: Path, tmp_path: Path):
    path = write_table(indir / "big.csv", _big_frame(), "csv")
    lines = path.read_text().splitlines()
    lines[BIG_ROW] += ",0.125"
    path.write_text("\n".join(lines) + "\n")
    check_bad_run(tmp_path, [path], [], Expect(name=path.name, row=BIG_ROW))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bad_value_in_second_part_of_folder(indir: Path, tmp_path: Path, fmt: str):
    folder = indir / "preds"
    folder.mkdir()
    write_table(folder / f"part-00000{ext(fmt)}", multiclass(20), fmt)
    bad = write_table(folder / f"part-00001{ext(fmt)}", spoil(multiclass(20), "p_dog", 5, NAN), fmt)
    check_bad_run(
        tmp_path, [folder], [],
        Expect(name=bad.name, column="p_dog", row=5, value=NAN_RE),
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_option_column_missing_from_second_part_of_folder(indir: Path, tmp_path: Path, fmt: str):
    folder = indir / "preds"
    folder.mkdir()
    write_table(folder / f"part-00000{ext(fmt)}", multiclass(20, weight=True), fmt)
    bad = write_table(folder / f"part-00001{ext(fmt)}", multiclass(20), fmt)  # no 'w' column
    check_bad_run(tmp_path, [folder], ["--weight", "w"], Expect(name=bad.name, column="w"))


def test_corrupt_second_part_of_folder(indir: Path, tmp_path: Path):
    folder = indir / "preds"
    folder.mkdir()
    write_table(folder / "part-00000.parquet", multiclass(20), "parquet")
    bad = folder / "part-00001.parquet"
    bad.write_bytes(random.Random(3).randbytes(2048))
    check_bad_run(tmp_path, [folder], [], Expect(name=bad.name))


def test_bad_value_in_second_input_file(indir: Path, tmp_path: Path):
    good = write_table(indir / "good.csv", multiclass(), "csv")
    bad = write_table(indir / "bad.parquet", spoil(multiclass(), "p_cat", 6, 1.5), "parquet")
    out = check_bad_run(
        tmp_path, [good, bad], [],
        Expect(name=bad.name, column="p_cat", row=6, value=r"1\.5"),
    )
    assert "good.csv" not in out.stderr


def test_missing_second_input_file(indir: Path, tmp_path: Path):
    good = write_table(indir / "good.csv", multiclass(), "csv")
    check_bad_run(tmp_path, [good, indir / "absent.csv"], [], Expect(name="absent.csv"))


# --------------------------------------------------------------------------------------
# A real process: true exit status and real stderr
# --------------------------------------------------------------------------------------


def _sub_nan_parquet(d: Path):
    p = write_table(d / "preds.parquet", spoil(multiclass(), "p_dog", 3, NAN), "parquet")
    return [p], [], Expect(name=p.name, column="p_dog", row=3, value=NAN_RE)


def _sub_big_csv(d: Path):
    p = write_table(d / "big.csv", spoil(_big_frame(), "p_dog", BIG_ROW, NAN), "csv")
    return [p], [], Expect(name=p.name, column="p_dog", row=BIG_ROW, value=NAN_RE)


def _sub_label_unknown(d: Path):
    p = write_table(d / "preds.csv", spoil(multiclass(), "label", 4, "zebra"), "csv")
    return [p], [], Expect(name=p.name, column="label", row=4, value="zebra")


SUBPROCESS_CASES = {
    "missing-path": case_missing_path,
    "bad-gzip-not-gzip": case_gz_not_gzip,
    "corrupt-parquet-garbage": case_parquet_garbage,
    "no-label-column": case_no_label_column,
    "parquet-prob-nan": _sub_nan_parquet,
    "csv-label-without-prob-column": _sub_label_unknown,
    "big-csv-prob-nan-row-150001": _sub_big_csv,
}


@pytest.mark.parametrize("case_id", list(SUBPROCESS_CASES))
def test_bad_input_real_process(indir: Path, tmp_path: Path, case_id: str):
    inputs, args, expect = SUBPROCESS_CASES[case_id](indir)
    check_bad_run(tmp_path, inputs, args, expect, mode="subprocess")


# --------------------------------------------------------------------------------------
# Output files
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "builder, mode",
    [
        pytest.param(_sub_nan_parquet, "runner", id="nan-probability-runner"),
        pytest.param(_sub_nan_parquet, "subprocess", id="nan-probability-subprocess"),
        pytest.param(case_missing_path, "runner", id="missing-path-runner"),
        pytest.param(case_ragged_extra_field, "runner", id="ragged-row-runner"),
        pytest.param(case_no_label_column, "runner", id="no-label-column-runner"),
    ],
)
def test_existing_json_left_untouched(indir: Path, tmp_path: Path, builder, mode: str):
    report = tmp_path / "reports" / "metrics.json"
    report.parent.mkdir()
    report.write_text('{"previous": "report", "keep": true}\n')
    old = os.stat(report)
    os.utime(report, ns=(old.st_atime_ns, old.st_mtime_ns - 10**9))  # distinct, old mtime
    inputs, args, expect = builder(indir)
    # check_bad_run snapshots tmp_path, so the report's bytes and mtime are compared too.
    check_bad_run(tmp_path, inputs, args, expect, mode=mode, json_target=str(report))
    assert report.read_text() == '{"previous": "report", "keep": true}\n'


def test_no_output_folder_created_on_bad_input(indir: Path, tmp_path: Path):
    inputs, args, expect = _sub_nan_parquet(indir)
    target = tmp_path / "new-folder" / "out.json"
    check_bad_run(tmp_path, inputs, args, expect, json_target=str(target))
    assert not target.parent.exists()


def test_json_to_stdout_prints_nothing_on_bad_input(indir: Path, tmp_path: Path):
    inputs, args, expect = _sub_nan_parquet(indir)
    out = check_bad_run(tmp_path, inputs, args, expect, json_target="-")
    assert out.stdout.strip() == "", f"partial output on stdout:\n{out.describe()}"


# --------------------------------------------------------------------------------------
# Usage errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["runner", "subprocess"])
def test_unknown_option_is_usage_error(indir: Path, tmp_path: Path, mode: str):
    p = write_table(indir / "preds.csv", multiclass(), "csv")
    before = snapshot(tmp_path)
    out = run(["metrics", str(p), "--frobnicate", "--json", str(tmp_path / "out.json")],
              mode, tmp_path)
    assert out.code == 2, out.describe()
    assert "Traceback" not in out.stdout + out.stderr, out.describe()
    assert "frobnicate" in out.stderr, out.describe()
    assert not (tmp_path / "out.json").exists()
    assert snapshot(tmp_path) == before


def test_probs_and_logits_together_is_usage_error(indir: Path, tmp_path: Path):
    cols = multiclass() | {f"logit_{c}": [0.0] * 8 for c in CLASSES}
    p = write_table(indir / "preds.csv", cols, "csv")
    before = snapshot(tmp_path)
    out = run(["metrics", str(p), "--probs", "p_", "--logits", "logit_",
               "--json", str(tmp_path / "out.json")], "runner", tmp_path)
    assert out.code == 2, out.describe()
    assert "Traceback" not in out.stdout + out.stderr, out.describe()
    assert "--probs" in out.stderr and "--logits" in out.stderr, out.describe()
    assert not (tmp_path / "out.json").exists()
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------
# The library: losslens.evaluate raises losslens.InputError with the same message
# --------------------------------------------------------------------------------------


def _check_library_message(exc: BaseException, expect: Expect) -> str:
    msg = str(exc)
    assert "\n" not in msg.strip(), msg
    assert not msg.startswith("losslens: error"), msg
    assert expect.name in msg, msg
    if expect.column is not None:
        assert f"'{expect.column}'" in msg, msg
    if expect.row is not None:
        assert re.search(rf"\brow {expect.row}\b", msg), msg
    if expect.value is not None:
        assert re.search(expect.value, msg, re.IGNORECASE), msg
    assert not NUMPY_REPR.search(msg), msg
    for text in expect.extra:
        assert text in msg, msg
    return msg


def test_library_error_classes():
    import losslens

    assert issubclass(losslens.InputError, losslens.LosslensError)
    assert issubclass(losslens.LosslensError, Exception)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_library_nan_probability(indir: Path, tmp_path: Path, fmt: str):
    import losslens

    path = write_table(indir / f"preds{ext(fmt)}", spoil(multiclass(), "p_dog", 3, NAN), fmt)
    before = snapshot(tmp_path)
    with pytest.raises(losslens.InputError, match=r"'p_dog'") as info:
        losslens.evaluate(path)
    _check_library_message(info.value, Expect(name=path.name, column="p_dog", row=3, value=NAN_RE))
    assert snapshot(tmp_path) == before


def test_library_missing_path(indir: Path):
    import losslens

    with pytest.raises(losslens.InputError, match=r"nope\.csv"):
        losslens.evaluate(str(indir / "nope.csv"))


def test_library_label_without_prob_column(indir: Path):
    import losslens

    path = write_table(indir / "preds.csv", spoil(multiclass(), "label", 4, "zebra"), "csv")
    with pytest.raises(losslens.InputError, match=r"zebra") as info:
        losslens.evaluate(str(path))
    _check_library_message(info.value, Expect(name=path.name, column="label", row=4))


def test_library_option_names_missing_column(indir: Path):
    import losslens

    path = write_table(indir / "preds.csv", multiclass(), "csv")
    with pytest.raises(losslens.InputError, match=r"'no_such_weight'") as info:
        losslens.evaluate(path, weight="no_such_weight")
    _check_library_message(info.value, Expect(name=path.name))


def test_library_negative_weight(indir: Path):
    import losslens

    path = write_table(indir / "preds.parquet",
                       spoil(multiclass(weight=True), "w", 3, -1.5), "parquet")
    with pytest.raises(losslens.InputError, match=r"'w'") as info:
        losslens.evaluate(path, weight="w")
    _check_library_message(info.value, Expect(name=path.name, column="w", row=3, value=r"-1\.5"))


def test_library_dataframe_bad_value():
    """A DataFrame has no file name; the column, row and value must still be there."""
    import pandas as pd

    import losslens

    df = pd.DataFrame(spoil(multiclass(), "p_cat", 2, -0.25))
    with pytest.raises(losslens.InputError, match=r"'p_cat'") as info:
        losslens.evaluate(df)
    msg = str(info.value)
    assert re.search(r"\brow 2\b", msg), msg
    assert "-0.25" in msg, msg
    assert not NUMPY_REPR.search(msg), msg


def test_library_unknown_option_is_a_losslens_error(indir: Path):
    import losslens

    path = write_table(indir / "preds.csv", multiclass(), "csv")
    with pytest.raises(losslens.LosslensError, match="frobnicate"):
        losslens.evaluate(path, frobnicate=True)


# --------------------------------------------------------------------------------------
# Trust on real-world files (issue #10): each refusal names the fix, word for word
# --------------------------------------------------------------------------------------


def check_exact(tmp_path: Path, inputs: list, args: list[str], message: str, name: str,
                mode: str = "runner") -> Outcome:
    """``check_bad_run`` plus the exact message, as scikit-learn checks its messages."""
    out = check_bad_run(tmp_path, inputs, args, Expect(name=name), mode=mode)
    assert out.stderr.strip() == f"losslens: error: {message}", out.describe()
    return out


def test_unordered_binary_labels_are_refused_naming_both_and_the_option(indir: Path, tmp_path: Path):
    path = indir / "churn.csv"
    path.write_text("label,y_prob\nchurn,0.9\nstay,0.2\nstay,0.4\n")
    check_exact(
        tmp_path, [path], [],
        f"{path}: column 'y_prob' holds one probability, but the labels 'churn' and 'stay' have "
        "no natural order, so it could be P('churn') or P('stay'); say which with "
        "--positive-label stay (or --positive-label churn)",
        path.name, mode="subprocess",
    )


def test_lone_class_column_that_is_not_a_label_is_refused(indir: Path, tmp_path: Path):
    path = indir / "churn.csv"
    path.write_text("label,p_leave\nchurn,0.9\nstay,0.2\n")
    check_exact(
        tmp_path, [path], [],
        f"{path}: column 'p_leave' is for class 'leave', which is not one of the labels "
        "'churn', 'stay'; name the positive class with --positive-label",
        path.name,
    )


def test_latin1_header_names_the_encoding_and_the_option(indir: Path, tmp_path: Path):
    path = indir / "excel.csv"
    path.write_bytes("label,p_café,p_thé\ncafé,0.7,0.3\nthé,0.2,0.8\n".encode("latin-1"))
    check_exact(
        tmp_path, [path], [],
        f"{path}: not UTF-8 text (byte 0xe9 in the header); it is probably Latin-1 or "
        "Windows-1252 (a spreadsheet export): read it with --encoding latin-1 or --encoding cp1252",
        path.name, mode="subprocess",
    )


def test_latin1_in_a_data_row_names_the_row(indir: Path, tmp_path: Path):
    path = indir / "excel.csv"
    path.write_bytes("label,p_a,p_b\na,0.7,0.3\nb\xe9,0.2,0.8\n".encode("latin-1"))
    check_exact(
        tmp_path, [path], [],
        f"{path}: not UTF-8 text (byte 0xe9 in row 2); it is probably Latin-1 or "
        "Windows-1252 (a spreadsheet export): read it with --encoding latin-1 or --encoding cp1252",
        path.name,
    )


def test_decimal_commas_with_a_point_decimal_name_the_option(indir: Path, tmp_path: Path):
    path = indir / "euro.csv"
    path.write_text("label;p_a;p_b\na;0,7;0,3\nb;0,2;0,8\n")
    check_exact(
        tmp_path, [path], ["--decimal", "."],
        f"{path}, column 'p_a', row 1: non-numeric value '0,7'; if the file uses decimal "
        "commas, read it with --decimal ','",
        path.name,
    )


def test_decimal_commas_in_a_quoted_comma_file_name_sep_and_decimal(indir: Path, tmp_path: Path):
    path = indir / "quoted.csv"
    path.write_text('label,p_a,p_b\na,"0,7","0,3"\nb,"0,2","0,8"\n')
    check_exact(
        tmp_path, [path], [],
        f"{path}, column 'p_a', row 1: non-numeric value '0,7'; if the file uses decimal "
        "commas, read it with --decimal ',' --sep ';'",
        path.name,
    )


def test_percentages_are_refused_as_percentages(indir: Path, tmp_path: Path):
    path = indir / "pct.csv"
    path.write_text("label,p_a,p_b\na,60,40\nb,25,75\n")
    check_exact(
        tmp_path, [path], [],
        f"{path}, column 'p_a', row 1: value 60.0 is not a probability (must be in [0, 1]); "
        "the columns look like percentages (each row sums to 100): divide them by 100",
        path.name, mode="subprocess",
    )


def test_logits_in_p_columns_name_the_logits_option(indir: Path, tmp_path: Path):
    path = indir / "logits.csv"
    path.write_text("label,p_a,p_b\na,2.5,-1.0\nb,0.5,0.25\n")
    check_exact(
        tmp_path, [path], [],
        f"{path}, column 'p_a', row 1: value 2.5 is not a probability (must be in [0, 1]); "
        "the columns look like logits: use --logits p_",
        path.name,
    )


def test_one_stray_value_gets_no_scale_hint(indir: Path, tmp_path: Path):
    path = indir / "typo.csv"
    path.write_text("label,p_a,p_b\na,1.5,0.3\nb,0.2,0.8\n")
    check_exact(
        tmp_path, [path], [],
        f"{path}, column 'p_a', row 1: value 1.5 is not a probability (must be in [0, 1])",
        path.name,
    )


def test_probs_prefix_matching_nothing_lists_the_columns(indir: Path, tmp_path: Path):
    path = indir / "data.csv"
    path.write_text("label,p_a,p_b\na,0.7,0.3\n")
    check_exact(
        tmp_path, [path], ["--probs", "class_"],
        f"{path}: no column starts with 'class_' (from --probs); columns are: 'label', 'p_a', 'p_b'",
        path.name,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sep", ";;"], "--sep must be one character (or '\\t' for tab), got ';;'"),
        (["--decimal", ";"], "--decimal must be '.' or ',', got ';'"),
        (["--format", "xlsx"], "--format must be one of csv, tsv, parquet, jsonl, arrow, got 'xlsx'"),
        (["--encoding", "klingon"],
         "--encoding 'klingon' is not an encoding Python knows (e.g. utf-8, latin-1, cp1252)"),
        (["--allow-missing-labels"], "--allow-missing-labels needs --labels FILE"),
        (["--labels", "truth.csv"], "--labels needs --id COL: the column that pairs predictions with labels"),
    ],
    ids=["sep", "decimal", "format", "encoding", "allow-missing", "labels-without-id"],
)
def test_reading_options_are_checked(indir: Path, tmp_path: Path, args, message):
    path = indir / "data.csv"
    path.write_text("label,p_a,p_b\na,0.7,0.3\n")
    out = run(["metrics", str(path), *args], "runner", tmp_path)
    assert out.code == 2 and out.stderr.strip() == f"losslens: error: {message}", out.describe()


def _join_files(indir: Path, pred_ids, label_ids):
    preds = indir / "preds.csv"
    preds.write_text("id,p_a,p_b\n" + "".join(f"{i},0.7,0.3\n" for i in pred_ids))
    truth = indir / "truth.csv"
    truth.write_text("id,label\n" + "".join(f"{i},a\n" for i in label_ids))
    return preds, truth


def test_labels_join_missing_on_both_sides_gives_counts_and_examples(indir: Path, tmp_path: Path):
    preds, truth = _join_files(indir, [1, 2, 3, 4, 5, 6], [1, 2, 7, 8])
    check_exact(
        tmp_path, [preds], ["--labels", truth, "--id", "id"],
        f"{preds}: joining on 'id', 4 of 6 prediction rows have no label in {truth} "
        "(e.g. ids '3', '4', '5') and 2 of 4 labels have no prediction (e.g. ids '7', '8'); "
        "score only the ids found in both with --allow-missing-labels",
        preds.name, mode="subprocess",
    )


def test_labels_join_duplicate_labels(indir: Path, tmp_path: Path):
    preds, truth = _join_files(indir, [1, 2, 3], [1, 2, 2, 3, 3])
    check_exact(
        tmp_path, [preds], ["--labels", truth, "--id", "id"],
        f"{truth}: 2 id(s) appear more than once in column 'id' (e.g. '2', '3'); "
        "each example needs one label",
        truth.name,
    )


def test_labels_join_duplicate_predictions(indir: Path, tmp_path: Path):
    preds, truth = _join_files(indir, [1, 1, 2, 3], [1, 2, 3])
    check_exact(
        tmp_path, [preds], ["--labels", truth, "--id", "id", "--allow-missing-labels"],
        f"{preds}: 1 id(s) appear on more than one prediction row in column 'id' (e.g. '1'); "
        "each example needs one prediction row",
        preds.name,
    )


def test_labels_join_with_dask_is_refused(indir: Path, tmp_path: Path):
    preds, truth = _join_files(indir, [1, 2], [1, 2])
    out = run(["metrics", str(preds), "--labels", str(truth), "--id", "id", "--engine", "dask"],
              "runner", tmp_path)
    assert out.code == 2
    assert out.stderr.strip() == "losslens: error: --labels needs --engine local: the join is not distributed"


def test_labels_join_empty_id_names_the_row(indir: Path, tmp_path: Path):
    preds, truth = _join_files(indir, [1, 2, 3], [1, 2, 3])
    truth.write_text("id,label\n1,a\n,a\n3,a\n")
    check_exact(
        tmp_path, [preds], ["--labels", truth, "--id", "id"],
        f"{truth}, column 'id', row 2: missing (empty) id",
        truth.name,
    )


def test_one_column_header_holding_a_separator_names_sep(indir: Path, tmp_path: Path):
    path = indir / "quoted.csv"
    path.write_text('"label;p_a,x";p_b\na;0.7;0.3\n')  # the quoted comma defeats sniffing
    check_exact(
        tmp_path, [path], [],
        f"{path}: the header is one column 'label;p_a,x;p_b'; the file looks ';'-separated: "
        "read it with --sep ';'",
        path.name,
    )


def test_tab_separated_file_read_with_a_wrong_sep_names_the_tab(indir: Path, tmp_path: Path):
    path = indir / "tabs.csv"
    path.write_text("label\tp_a\tp_b\na\t0.7\t0.3\n")
    check_exact(
        tmp_path, [path], ["--sep", ","],
        f"{path}: the header is one column 'label\\tp_a\\tp_b'; the file looks tab-separated: "
        "read it with --sep '\\t'",
        path.name,
    )


def test_logit_in_a_one_column_binary_file_names_positive_logit(indir: Path, tmp_path: Path):
    path = indir / "margin.csv"
    path.write_text("label,y_prob\n1,2.5\n0,-1.5\n")
    check_exact(
        tmp_path, [path], [],
        f"{path}, column 'y_prob', row 1: value 2.5 is not a probability (must be in [0, 1]); "
        "the column looks like logits: use --positive-logit y_prob",
        path.name,
    )


def test_utf16_file_names_the_encoding(indir: Path, tmp_path: Path):
    path = indir / "unicode.csv"
    path.write_bytes("label,p_a,p_b\na,0.7,0.3\n".encode("utf-16"))  # with its byte-order mark
    check_exact(
        tmp_path, [path], [],
        f"{path}: UTF-16 text, not UTF-8; read it with --encoding utf-16",
        path.name,
    )
    out = run(["metrics", str(path), "--encoding", "utf-16"], "runner", tmp_path)
    assert out.code == 0, out.describe()


@pytest.mark.parametrize(
    "name, content, start",
    [
        ("bad.jsonl", '{"label":"a","p_a":0.7,"p_b":0.3}\n{"label":"b","p_a":0.2,\n',
         "bad.jsonl: cannot read as JSON lines (JSON parse error"),
        ("empty.ndjson", "", "empty.ndjson: the file is empty"),
        ("bad.feather", "not arrow at all", "bad.feather: not an Arrow IPC (Feather v2) file or stream ("),
        ("bad.arrow", "", "bad.arrow: not an Arrow IPC (Feather v2) file or stream ("),
    ],
    ids=["jsonl-truncated", "ndjson-empty", "feather-garbage", "arrow-empty"],
)
def test_broken_jsonl_and_arrow_files(indir: Path, tmp_path: Path, name, content, start):
    # The end of these messages is pyarrow's own wording, which varies between versions.
    path = indir / name
    path.write_text(content)
    out = check_bad_run(tmp_path, [path], [], Expect(name=name))
    assert out.stderr.strip().startswith(f"losslens: error: {indir / start}"), out.describe()


def test_missing_value_in_jsonl_names_column_and_row(indir: Path, tmp_path: Path):
    path = indir / "miss.jsonl"
    path.write_text('{"label":"a","p_a":0.7,"p_b":0.3}\n{"label":"b","p_b":0.8}\n')
    check_exact(
        tmp_path, [path], [],
        f"{path}, column 'p_a', row 2: missing or NaN value is not a probability (must be in [0, 1])",
        path.name,
    )


def test_latin1_far_into_the_file_names_its_row(indir: Path, tmp_path: Path):
    path = indir / "late.csv"
    rows = "".join("a,0.75,0.25\n" for _ in range(20_000))  # past the first bytes looked at
    path.write_bytes(b"label,p_a,p_b\n" + rows.encode() + b"b\xe9,0.25,0.75\n")
    check_exact(
        tmp_path, [path], [],
        f"{path}: not UTF-8 text (byte 0xe9 in row 20001); give the file's encoding with "
        "--encoding (e.g. latin-1, cp1252)",
        path.name,
    )
