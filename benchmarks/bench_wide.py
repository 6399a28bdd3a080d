"""Many-class benchmark: a wide float32 Parquet file in ONE row group, as pyarrow writes it.

Usage::

    .venv/bin/python benchmarks/bench_wide.py [--rows 200000] [--classes 1000] [--repeats 3]
                                              [--row-group-rows N]

The file is the predictions of a calibrated model (each label is drawn from the row's own
predicted distribution), float32 as torch gives them, written with ``pyarrow.parquet.write_table``
and its default row-group size, so 200,000 rows are one row group of 800 MB of values. The
data is written by a separate process (as in ``bench.py``), so each command's peak memory is
its own. Prints median wall time, the ratio to ``benchmarks/reference.py``
(``pandas.read_parquet`` + ``sklearn.metrics.log_loss``), peak memory (``ru_maxrss`` of each
child) and the log losses, and checks the goals of the many-classes issue; exits 1 if one is
missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import DATA, HERE, Runs, compile_sources, has_report, losslens_command, run  # noqa: E402

#: Goals from the issue: wall-time ratios to the reference and peak memory of each command.
GOAL_METRICS_RATIO = 0.3
GOAL_REPORT_RATIO = 0.5
GOAL_PEAK_MB = 500
GOAL_REPORT_BYTES = 1_000_000
#: Rows generated at a time; the whole table is then written as one row group.
CHUNK = 20_000


def _write_data(path: Path, rows: int, classes: int, seed: int, row_group_rows: int = 0) -> None:
    """Write the calibrated float32 file (runs in its own process, see :func:`generate`)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    print(f"generating {path.name} ({rows:,} rows x {classes} float32 classes, one row group) ...",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    # A skewed class prior (Zipf-like) and logits sharpened around a row's "intended" class,
    # so that the model is good but not perfect and the label distribution is uneven.
    prior = 1.0 / np.arange(1, classes + 1) ** 0.5
    prior /= prior.sum()
    columns = [np.empty(rows, dtype=np.float32) for _ in range(classes)]
    labels = np.empty(rows, dtype=np.int64)
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        intended = rng.choice(classes, size=n, p=prior)
        logits = rng.normal(0.0, 1.0, (n, classes)) + np.log(prior)
        logits[np.arange(n), intended] += rng.uniform(2.0, 9.0, n)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        probs = probs.astype(np.float32)
        # Calibrated by construction: the label is a draw from the (float32) prediction.
        cumulative = np.cumsum(probs, axis=1, dtype=np.float64)
        u = rng.random(n) * cumulative[:, -1]
        labels[start:start + n] = np.minimum((cumulative < u[:, None]).sum(axis=1), classes - 1)
        for c in range(classes):
            columns[c][start:start + n] = probs[:, c]
    table = pa.table({"label": labels, **{f"p_{c}": columns[c] for c in range(classes)}})
    if row_group_rows:
        pq.write_table(table, path, row_group_size=row_group_rows)
    else:
        pq.write_table(table, path)  # default row-group size: all 200,000 rows in one group
        assert pq.ParquetFile(path).num_row_groups == 1
    path.with_name(path.name + ".done").write_text(_stamp(rows, classes, seed, row_group_rows))
    print(f"  done in {time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.0f} MB", file=sys.stderr)


def _stamp(rows: int, classes: int, seed: int, row_group_rows: int) -> str:
    return f"{rows} {classes} {seed}" + (f" {row_group_rows}" if row_group_rows else "")


def generate(path: Path, rows: int, classes: int, seed: int, row_group_rows: int = 0) -> Path:
    """Write the file in a child process unless it exists with the same size and seed."""
    stamp = path.with_name(path.name + ".done")
    if path.exists() and stamp.exists() and stamp.read_text() == _stamp(rows, classes, seed, row_group_rows):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--write-data", str(path), str(rows), str(classes), str(seed),
         str(row_group_rows)],
        check=True,
    )
    return path


def main(argv=None) -> int:
    """Generate the file, time reference / metrics / report, print the table and goals."""
    if argv is None and sys.argv[1:2] == ["--write-data"]:
        path, rows, classes, seed, row_group_rows = sys.argv[2:7]
        _write_data(Path(path), int(rows), int(classes), int(seed), int(row_group_rows))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--row-group-rows", type=int, default=0,
                        help="Write row groups of this many rows (default: pyarrow's, one group).")
    parser.add_argument("--no-reference", action="store_true", help="Time losslens only (no ratios).")
    args = parser.parse_args(argv)

    out = DATA / "out"
    out.mkdir(parents=True, exist_ok=True)
    groups = f"_rg{args.row_group_rows}" if args.row_group_rows else ""
    data = generate(DATA / f"wide_{args.rows}x{args.classes}{groups}_f32.parquet", args.rows, args.classes, args.seed,
                    args.row_group_rows)
    ll = losslens_command()
    compile_sources()
    commands = {}
    if not args.no_reference:
        commands["reference"] = [sys.executable, str(HERE / "reference.py"), str(data)]
    commands["metrics"] = [*ll, "metrics", str(data), "--json", str(out / "wide_metrics.json")]
    if has_report():
        commands["report"] = [*ll, "report", str(data), "-o", str(out / "wide_report.html")]
    runs = {name: Runs(name) for name in commands}
    print(f"timing {', '.join(commands)} x {args.repeats}, alternating ...", file=sys.stderr, flush=True)
    for _ in range(args.repeats):
        for name, command in commands.items():
            seconds, cpu, peak = run(command, out / "wide_reference.stdout" if name == "reference" else None)
            runs[name].seconds.append(seconds)
            runs[name].cpu_seconds.append(cpu)
            runs[name].peak_kib.append(peak)

    failures = []

    def verdict(ok: bool, what: str) -> str:
        if not ok:
            failures.append(what)
        return "PASS" if ok else "FAIL"

    layout = f"row groups of {args.row_group_rows:,} rows" if args.row_group_rows else "one row group"
    print(f"\nlosslens many-class benchmark: {args.rows:,} rows x {args.classes} float32 classes, Parquet in "
          f"{layout} ({data.stat().st_size / 1e6:.0f} MB), median of {args.repeats} alternating runs, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    ref = runs["reference"].median if "reference" in runs else None
    print(f"{'command':<12}{'median s':>10}{'ratio':>8}{'peak MB':>10}  goals")
    for name, r in runs.items():
        ratio = r.median / ref if ref else float("nan")
        goal = ""
        if name in ("metrics", "report"):
            limit = GOAL_METRICS_RATIO if name == "metrics" else GOAL_REPORT_RATIO
            if ref:
                goal += f"time <= {limit}x {verdict(ratio <= limit, name + ' ratio')}; "
            goal += f"peak <= {GOAL_PEAK_MB} MB {verdict(r.peak_mb <= GOAL_PEAK_MB, name + ' peak')}"
        print(f"{name:<12}{r.median:>10.2f}{ratio:>7.2f}x{r.peak_mb:>10.0f}  {goal}")
    losslens_loss = json.loads((out / "wide_metrics.json").read_text())["runs"][0]["overall"]["log_loss"]
    if ref:
        reference_loss = float((out / "wide_reference.stdout").read_text())
        # scikit-learn computes the float32 array's log in float32 (xlogy keeps the dtype), so
        # the two agree to float32 precision, not to the last float64 digit.
        agree = abs(reference_loss - losslens_loss) <= 1e-6 * abs(reference_loss)
        print(f"\nlog loss: reference {reference_loss!r}, losslens {losslens_loss!r}  "
              f"{verdict(agree, 'losses agree')}")
    if "report" in runs:
        size = (out / "wide_report.html").stat().st_size
        print(f"report size {size / 1e3:.0f} kB (goal < 1 MB) {verdict(size < GOAL_REPORT_BYTES, 'report size')}")
    print(f"\nreproduce: .venv/bin/python benchmarks/bench_wide.py --rows {args.rows} --classes {args.classes} "
          f"--repeats {args.repeats}" + (f" --row-group-rows {args.row_group_rows}" if args.row_group_rows else ""))
    if failures:
        print(f"goals missed: {', '.join(failures)}")
        return 1
    print("all goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
