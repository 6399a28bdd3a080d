"""Inputs at the edges: named pipes, process substitution, compressed and spreadsheet files.

Every file is written the way people write them (pandas' ``to_csv`` / ``to_parquet`` with
their defaults, pyarrow's compressed streams) from a real model's predictions (logistic
regression on the bundled iris), and the number is checked against scikit-learn's
``log_loss`` on the frame the file was written from. A pipe must be read exactly once: a
second open of a FIFO whose writer has gone blocks forever, so every command runs in a
subprocess with a timeout, and a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

import losslens

#: No command here may take longer: a pipe read twice would hang, and must fail instead.
TIMEOUT = 60
ENV = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}
if "PYTHONPATH" in ENV:  # the tree under test, whatever folder a command runs in
    ENV["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in ENV["PYTHONPATH"].split(os.pathsep))


@pytest.fixture(scope="module")
def predictions() -> pd.DataFrame:
    """A logistic regression's predictions on iris: id, string label, one p_<class> column each."""
    data = load_iris()
    model = LogisticRegression(max_iter=500).fit(data.data, data.target)
    proba = model.predict_proba(data.data)
    frame = pd.DataFrame({"id": range(1, len(proba) + 1), "label": data.target_names[data.target]})
    for j, name in enumerate(data.target_names):
        frame[f"p_{name}"] = proba[:, j]
    return frame


def reference(frame: pd.DataFrame) -> float:
    columns = [c for c in frame.columns if c.startswith("p_")]
    return log_loss(frame["label"], frame[columns].to_numpy(), labels=[c[2:] for c in columns])


def metrics(*args, cwd=None, shell=False) -> subprocess.CompletedProcess:
    """``losslens metrics ARGS --json -`` in a subprocess (through bash for ``<(...)``)."""
    if shell:
        command = ["bash", "-c", f"{shlex.quote(sys.executable)} -m losslens metrics {' '.join(args)} --json -"]
    else:
        command = [sys.executable, "-m", "losslens", "metrics", *map(str, args), "--json", "-"]
    return subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)


def log_loss_from(proc: subprocess.CompletedProcess) -> float:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["runs"][0]["overall"]["log_loss"]


class Writer:
    """Writes ``data`` into a FIFO from another process (a writer blocks until we open it)."""

    def __init__(self, fifo: Path, data: bytes):
        source = fifo.with_name(fifo.name + ".source")
        source.write_bytes(data)
        self.process = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; data = open(sys.argv[1], 'rb').read(); open(sys.argv[2], 'wb').write(data)",
             str(source), str(fifo)]
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:  # losslens never opened the pipe: do not leave a writer behind
            self.process.kill()
        self.process.wait(TIMEOUT)


# --- named pipes and process substitution -----------------------------------------------


def _parquet_bytes(frame: pd.DataFrame, tmp_path: Path) -> bytes:
    path = tmp_path / "written.parquet"
    frame.to_parquet(path)
    return path.read_bytes()


@pytest.mark.parametrize("name, encode", [
    ("preds.csv", lambda f, tmp: f.to_csv(index=False).encode()),
    ("preds.csv.gz", lambda f, tmp: gzip.compress(f.to_csv(index=False).encode())),
    ("preds.parquet", _parquet_bytes),
    ("preds", _parquet_bytes),  # no ending: Parquet is known by its first bytes
    ("gzipped", lambda f, tmp: gzip.compress(f.to_csv(index=False).encode())),
])
def test_named_pipe_is_read_once_like_a_file(predictions, tmp_path, name, encode):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    with Writer(fifo, encode(predictions, tmp_path)):
        proc = metrics(fifo)
    # The same parser on the same text as for a regular file: the same float64s, the same sum.
    assert log_loss_from(proc) == pytest.approx(reference(predictions), rel=1e-12)
    assert json.loads(proc.stdout)["runs"][0]["overall"]["n_examples"] == len(predictions)


def test_named_pipes_for_predictions_and_labels(predictions, tmp_path):
    preds, truth = tmp_path / "preds.csv", tmp_path / "truth.csv"
    os.mkfifo(preds)
    os.mkfifo(truth)
    labels = predictions[["id", "label"]].sample(frac=1, random_state=1)
    with Writer(preds, predictions.drop(columns="label").to_csv(index=False).encode()), \
            Writer(truth, labels.to_csv(index=False).encode()):
        proc = metrics(preds, "--labels", truth, "--id", "id")
    assert log_loss_from(proc) == pytest.approx(reference(predictions), rel=1e-12)


def test_process_substitution_is_read_as_csv(predictions, tmp_path):
    path = tmp_path / "preds.csv"
    predictions.to_csv(path, index=False)
    plain = log_loss_from(metrics(path))
    assert plain == pytest.approx(reference(predictions), rel=1e-12)
    # bash hands losslens /dev/fd/63, a pipe with no file ending: CSV, as for standard input.
    assert log_loss_from(metrics(f"<(cat {shlex.quote(str(path))})", shell=True)) == plain
    assert log_loss_from(metrics(f"<(gzip -c {shlex.quote(str(path))})", shell=True)) == plain
    # Labels from another pipe, joined on the id.
    predictions.drop(columns="label").to_csv(tmp_path / "p.csv", index=False)
    predictions[["id", "label"]].to_csv(tmp_path / "t.csv", index=False)
    proc = metrics(f"<(cat {tmp_path}/p.csv)", "--labels", f"<(cat {tmp_path}/t.csv)", "--id", "id", shell=True)
    assert log_loss_from(proc) == plain


def test_process_substitution_with_format(predictions, tmp_path):
    path = tmp_path / "preds.tsv"
    predictions.to_csv(path, index=False, sep="\t")
    proc = metrics(f"<(cat {path})", "--format", "tsv", shell=True)
    assert log_loss_from(proc) == pytest.approx(reference(predictions), rel=1e-12)


def test_a_pipe_written_again_is_read_again_in_one_process(predictions, tmp_path):
    fifo = tmp_path / "preds.csv"
    os.mkfifo(fifo)
    for part in (predictions, predictions.iloc[:40]):
        with Writer(fifo, part.to_csv(index=False).encode()):
            evaluation = losslens.evaluate(fifo)
        assert evaluation.overall.n_examples == len(part)
        assert evaluation.overall.log_loss == pytest.approx(reference(part), rel=1e-12)


def test_a_socket_is_refused_at_once(tmp_path):
    path = tmp_path / "preds.csv"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        proc = metrics(path)
    finally:
        server.close()
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"losslens: error: {path}: not a file, folder or pipe that losslens can read"


def test_a_pipe_with_no_writer_data_is_called_empty(tmp_path):
    fifo = tmp_path / "preds.csv"
    os.mkfifo(fifo)
    with Writer(fifo, b""):
        proc = metrics(fifo)
    assert proc.returncode == 2
    assert f"{fifo}: the file is empty" in proc.stderr


# --- compressed files ----------------------------------------------------------------------


def _zstd(path: Path, text: str) -> None:
    # pandas writes .zst only with the `zstandard` module; pyarrow's stream is the same format.
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pa.CompressedOutputStream(str(path), "zstd") as out:
            out.write(text.encode())
    else:
        pd.read_csv(io.StringIO(text)).to_csv(path, index=False)


@pytest.mark.parametrize("ending", [".csv.bz2", ".csv.xz", ".csv.zst", ".tsv.bz2", ".tsv.xz", ".tsv.zst", ".csv.gz"])
def test_compressed_text_files_give_the_plain_files_number(predictions, tmp_path, ending):
    sep = "\t" if ending.startswith(".tsv") else ","
    plain = tmp_path / f"plain{ending[:4]}"
    predictions.to_csv(plain, index=False, sep=sep)
    path = tmp_path / f"preds{ending}"
    if ending.endswith(".zst"):
        _zstd(path, predictions.to_csv(index=False, sep=sep))
    else:
        predictions.to_csv(path, index=False, sep=sep)  # compression inferred from the ending
    evaluation = losslens.evaluate(path)
    assert evaluation.runs[0].name == "preds"
    assert evaluation.overall.log_loss == losslens.evaluate(plain).overall.log_loss
    assert evaluation.overall.log_loss == pytest.approx(reference(predictions), rel=1e-12)


@pytest.mark.parametrize("ending, kind", [(".csv.bz2", "bzip2"), (".csv.xz", "xz"), (".csv.zst", "zstd"),
                                          (".csv.gz", "gzip")])
def test_a_broken_compressed_file_is_named(predictions, tmp_path, ending, kind):
    path = tmp_path / f"preds{ending}"
    path.write_bytes(b"this is not compressed at all\n" * 10)
    proc = metrics(path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"losslens: error: {path}: not a valid {kind} file (")
    assert proc.stdout == ""


def test_a_truncated_xz_file_is_named(predictions, tmp_path):
    """lzma's own error (its module is imported only to open an .xz file) still becomes one line."""
    path = tmp_path / "preds.csv.xz"
    whole = lzma.compress(predictions.to_csv(index=False).encode())
    path.write_bytes(whole[: len(whole) // 2])
    proc = metrics(path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"losslens: error: {path}: not a valid xz file "
                           "(Compressed file ended before the end-of-stream marker was reached)\n")


def test_compressed_data_under_a_plain_name_says_how_to_name_it(predictions, tmp_path):
    path = tmp_path / "preds.csv"
    path.write_bytes(bz2.compress(predictions.to_csv(index=False).encode()))
    proc = metrics(path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"losslens: error: {path}: compressed (.bz2 data) but not named so; rename it to end in .csv.bz2, "
        "or decompress it"
    )
    # A header that happens to start like bzip2's magic is text, and read as such.
    plain = tmp_path / "plain.csv"
    predictions.rename(columns={"id": "BZh1"}).to_csv(plain, index=False)
    assert log_loss_from(metrics(plain)) == pytest.approx(reference(predictions), rel=1e-12)


# --- spreadsheets ---------------------------------------------------------------------------


@pytest.mark.parametrize("first_line", ["sep=;", '"sep=;"'])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_excel_sep_line_is_honoured_and_skipped(predictions, tmp_path, first_line, encoding):
    path = tmp_path / "preds.csv"
    with open(path, "w", encoding=encoding, newline="") as handle:
        handle.write(first_line + "\r\n")
        predictions.to_csv(handle, index=False, sep=";", decimal=",", lineterminator="\r\n")
    evaluation = losslens.evaluate(path)
    assert evaluation.overall.n_examples == len(predictions)
    assert evaluation.overall.log_loss == pytest.approx(reference(predictions), rel=1e-12)
    assert "separator ';' (from the file's Excel 'sep=' first line, skipped)" in evaluation.runs[0].layout.notes


def test_excel_sep_line_keeps_row_numbers_of_errors(predictions, tmp_path):
    frame = predictions.astype({"p_setosa": object})
    frame.loc[2, "p_setosa"] = "n/a?"
    path = tmp_path / "preds.csv"
    path.write_text("sep=|\n" + frame.to_csv(index=False, sep="|"))
    proc = metrics(path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"losslens: error: {path}, column 'p_setosa', row 3: non-numeric value 'n/a?'"


def _workbook(path: Path) -> None:
    # The start of an .xlsx (a zip of XML parts); openpyxl is not needed to be refused.
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")


@pytest.mark.parametrize("name, target", [("preds.xlsx", "preds.csv"), ("preds.xls", "preds.csv"),
                                          ("preds.csv", "preds-sheet1.csv")])
def test_excel_workbook_is_refused_with_the_command_that_converts_it(tmp_path, name, target):
    path = tmp_path / name
    _workbook(path)
    before = path.read_bytes()
    proc = metrics(name, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    message = proc.stderr.strip()
    prefix = f"losslens: error: {name}: an Excel workbook, not a text file; losslens reads CSV: convert the first sheet with "
    assert message.startswith(prefix)
    command = shlex.split(message[len(prefix):])
    assert command[:2] == ["python", "-c"]
    # The command is Python that reads this workbook and writes a CSV next to it, never over it.
    assert command[2] == f'import pandas as pd; pd.read_excel("{name}").to_csv("{target}", index=False)'
    compile(command[2], "<command>", "exec")
    assert path.read_bytes() == before


def test_excel_command_survives_quotes_in_the_name(tmp_path):
    name = "it's \"final\".xlsx"
    _workbook(tmp_path / name)
    proc = metrics(name, cwd=tmp_path)
    assert proc.returncode == 2
    code = shlex.split(proc.stderr.split("convert the first sheet with ", 1)[1])[2]
    compile(code, "<command>", "exec")
    assert json.dumps(name) in code


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_compressed_pipe_without_a_name_is_recognised(predictions, tmp_path):
    path = tmp_path / "preds.csv.xz"
    predictions.to_csv(path, index=False)
    with lzma.open(path) as handle:
        assert handle.read(5) == b"id,la"
    proc = metrics(f"<(cat {path})", shell=True)
    assert log_loss_from(proc) == pytest.approx(reference(predictions), rel=1e-12)


def test_writer_thread_fifo_through_the_python_api(predictions, tmp_path):
    """A FIFO fed from a thread of the same process, read by the library (no CLI)."""
    fifo = tmp_path / "preds.csv"
    os.mkfifo(fifo)
    data = predictions.to_csv(index=False).encode()

    def write():
        with open(fifo, "wb") as out:
            out.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    evaluation = losslens.evaluate(str(fifo))
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    assert evaluation.overall.log_loss == pytest.approx(reference(predictions), rel=1e-12)


def test_one_labels_pipe_serves_every_run(predictions, tmp_path):
    # Each run joins the labels file: a pipe is read once for the whole command.
    truth = tmp_path / "truth.csv"
    os.mkfifo(truth)
    predictions.drop(columns="label").to_csv(tmp_path / "a.csv", index=False)
    predictions.drop(columns="label").iloc[::-1].to_csv(tmp_path / "b.csv", index=False)
    with Writer(truth, predictions[["id", "label"]].to_csv(index=False).encode()):
        proc = metrics(tmp_path / "a.csv", tmp_path / "b.csv", "--labels", truth, "--id", "id")
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)["runs"]
    assert [r["overall"]["log_loss"] for r in runs] == [pytest.approx(reference(predictions), rel=1e-12)] * 2


def test_a_language_model_token_file_through_a_pipe(tmp_path):
    # Its kind is learned from the header, then the rows are read: two looks, one read.
    fifo = tmp_path / "tokens.csv"
    os.mkfifo(fifo)
    tokens = pd.DataFrame({"doc_id": [7, 7, 8], "logprob": [-1.0, -2.0, -0.5]})
    with Writer(fifo, tokens.to_csv(index=False).encode()):
        proc = metrics(fifo, "-q")
    assert proc.returncode == 0, proc.stderr
    overall = json.loads(proc.stdout)["runs"][0]["overall"]
    assert overall["log_loss"] == pytest.approx(3.5 / 3, rel=1e-15) and overall["n_documents"] == 2


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "bz2"])
def test_standard_input_format_is_known_by_its_first_bytes(predictions, tmp_path, kind):
    if kind == "parquet":
        data = _parquet_bytes(predictions, tmp_path)
    elif kind == "jsonl":
        data = predictions.to_json(orient="records", lines=True).encode()
    else:
        data = bz2.compress(predictions.to_csv(index=False).encode())
    proc = subprocess.run([sys.executable, "-m", "losslens", "metrics", "-", "--json", "-"], input=data,
                          env=ENV, capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr.decode()
    expected = reference(pd.read_json(io.BytesIO(data), lines=True)) if kind == "jsonl" \
        else reference(predictions)  # pandas writes JSON with 10 significant digits: read back
    assert json.loads(proc.stdout)["runs"][0]["overall"]["log_loss"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow
# The test's small blocks are smaller than dask's sample: its warning is about that alone.
@pytest.mark.filterwarnings("ignore:Unexpected behavior can result from passing skiprows")
def test_dask_engine_reads_compressed_files_and_the_sep_line(predictions, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from losslens import distributed as ld
    from losslens.distributed import evaluate_runs_dask
    from losslens.errors import UsageError
    from losslens.options import Options

    predictions.to_csv(tmp_path / "preds.csv.bz2", index=False)
    big = pd.concat([predictions] * 20, ignore_index=True)
    with open(tmp_path / "excel.csv", "w") as handle:
        handle.write("sep=;\n")
        big.to_csv(handle, index=False, sep=";")
    # Small blocks: the sep= line is skipped in the first block only, not in every block.
    monkeypatch.setattr(ld, "CSV_BLOCKSIZE", 20_000)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        result = evaluate_runs_dask([str(tmp_path / "preds.csv.bz2"), str(tmp_path / "excel.csv")], None,
                                    Options(), scheduler=cluster.scheduler_address)
    assert [r.overall.n_examples for r in result.runs] == [150, 3000]
    for run in result.runs:
        assert run.overall.log_loss == pytest.approx(reference(predictions), rel=1e-12)
    _zstd(tmp_path / "preds.csv.zst", predictions.to_csv(index=False))
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="reads .zst files only with the zstandard module"):
            evaluate_runs_dask([str(tmp_path / "preds.csv.zst")], None, Options())


@pytest.mark.parametrize("ending", [".csv.bz2", ".csv.xz", ".csv.zst"])
def test_a_bad_value_in_a_compressed_file_is_located(predictions, tmp_path, ending):
    frame = predictions.astype({"p_versicolor": object})
    frame.loc[120, "p_versicolor"] = "oops"
    path = tmp_path / f"preds{ending}"
    if ending.endswith(".zst"):
        _zstd(path, frame.to_csv(index=False))
    else:
        frame.to_csv(path, index=False)
    proc = metrics(path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"losslens: error: {path}, column 'p_versicolor', row 121: non-numeric value 'oops'"
