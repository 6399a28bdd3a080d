"""Whole-process benchmark of losslens against DuckDB, polars and pandas + scikit-learn scripts.

Usage::

    .venv/bin/python benchmarks/bench.py [--rows 1000000] [--classes 10] [--repeats 5]
                                         [--big-rows 10000000] [--big-repeats 3] [--skip-big]
                                         [--peers ../shared/peers]

Generates seeded prediction files into ``benchmarks/data/`` (git-ignored; reused when they
already exist with the same size and seed), then runs every command as its own process,
alternating the commands round by round so that a slow moment of the machine hurts all of
them alike, and prints:

* the median wall time of the peers (``logloss_duckdb.py``: one DuckDB query;
  ``logloss_polars.py``; both from ``--peers``, skipped with a note when absent or when duckdb /
  polars is not installed: ``pip install -e .[bench]``), of ``benchmarks/reference.py``
  (``pandas.read_parquet`` + ``sklearn.metrics.log_loss``), ``losslens metrics`` and
  ``losslens report`` on the ``--rows`` Parquet file, and their ratios to DuckDB and to the
  pandas reference;
* the same for DuckDB and ``losslens metrics`` on the ``--big-rows`` Parquet file
  (``--big-repeats`` interleaved rounds);
* peak resident memory of each child process from the operating system's accounting
  (``ru_maxrss`` of ``os.wait4``), including on the ``--big-rows`` Parquet and CSV files;
* the HTML report's size at ``--big-rows``;
* whether ``losslens --help`` imports matplotlib or pyarrow (``python -X importtime``);
* the log loss of every peer and of losslens, which must agree within 1e-12 relative.

The goals (from the issue) are checked and printed as PASS / FAIL; the exit code is 1 if any
failed, so that the script can gate a release.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
#: Rows generated per chunk: keeps the generator's own memory small at 10M rows.
CHUNK = 1_000_000

#: Goals of issue #22: wall-time ratios to the DuckDB query, peak memory at --big-rows.
GOAL_METRICS_DUCKDB = 2.0
GOAL_REPORT_DUCKDB = 4.0
GOAL_PEAK_MB = 300
#: Goals of the first performance issue: ratios to pandas + scikit-learn, report size.
GOAL_METRICS_RATIO = 0.6
GOAL_REPORT_RATIO = 1.0
GOAL_REPORT_BYTES = 1_000_000
#: Log losses of losslens and of a peer agree within this relative difference.
AGREE_REL = 1e-12


def default_peers() -> Path:
    """Where the peer scripts live unless --peers says otherwise: ``shared/peers`` beside the
    repository or beside one of its parent folders (a worktree's)."""
    for folder in HERE.parents:
        if (folder / "shared" / "peers").is_dir():
            return folder / "shared" / "peers"
    return HERE.parent / "shared" / "peers"


# ---------------------------------------------------------------------------------------
# Data


def _chunks(rows: int, classes: int, seed: int, decimals: int | None):
    """Yield pyarrow tables of a seeded multiclass prediction file, CHUNK rows at a time.

    Logits are Gaussian with a boost on the true class, so the model is decent (about 60%
    accuracy at 10 classes) and the losses spread over several decades.
    """
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        label = rng.integers(0, classes, n)
        logits = rng.normal(0.0, 1.5, (n, classes))
        logits[np.arange(n), label] += 2.0
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        if decimals is not None:
            # Short decimals make the CSV a realistic size (about 9 bytes a value, not 20).
            probs = np.round(probs, decimals)
        columns = {"label": pa.array(label)}
        columns.update({f"p_{c}": pa.array(probs[:, c]) for c in range(classes)})
        yield pa.table(columns)


def generate(path: Path, rows: int, classes: int, seed: int = 0) -> Path:
    """Write the seeded file at ``path`` (Parquet or CSV, from its ending) unless it exists.

    The writing happens in a child process: on Linux a child's ``ru_maxrss`` starts from
    its parent's high-water mark, so a benchmark parent that had generated 10M rows itself
    would report its own ~700 MB as every later child's peak.
    """
    stamp = path.with_name(path.name + ".done")
    if path.exists() and stamp.exists() and stamp.read_text() == f"{rows} {classes} {seed}":
        return path
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--write-data", str(path), str(rows), str(classes), str(seed)],
        check=True,
    )
    return path


def _write_data(path: Path, rows: int, classes: int, seed: int = 0) -> Path:
    """The body of :func:`generate`, run in its own process."""
    stamp = path.with_name(path.name + ".done")
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.name} ({rows:,} rows x {classes} classes) ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    writer = None
    try:
        for table in _chunks(rows, classes, seed, decimals=6 if path.suffix == ".csv" else None):
            if writer is None:
                writer = (
                    pacsv.CSVWriter(path, table.schema)
                    if path.suffix == ".csv"
                    else pq.ParquetWriter(path, table.schema)
                )
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    stamp.write_text(f"{rows} {classes} {seed}")
    print(f"  done in {time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.0f} MB", file=sys.stderr)
    return path


# ---------------------------------------------------------------------------------------
# Running


@dataclass
class Runs:
    """Wall times (s) and peak memory (KiB) of the runs of one command."""

    label: str
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_kib: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median wall time in seconds."""
        return statistics.median(self.seconds)

    @property
    def median_cpu(self) -> float:
        """Median user + system CPU time in seconds (less sensitive to a busy machine)."""
        return statistics.median(self.cpu_seconds)

    @property
    def peak_mb(self) -> float:
        """Largest peak RSS over the runs, in MB (10**6 bytes)."""
        return max(self.peak_kib) * 1024 / 1e6


def run(command: list[str], stdout_path: Path | None = None) -> tuple[float, float, int]:
    """Run ``command`` to completion; return wall time, CPU time and the child's peak RSS (KiB).

    ``os.wait4`` gives the rusage of exactly this child (``ru_maxrss`` is KiB on Linux), which
    ``RUSAGE_CHILDREN`` would mix with earlier children.
    """
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    err_path = DATA / "last_stderr.txt"
    try:
        with open(err_path, "wb") as err:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=out, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdout_path:
            out.close()
    if process.returncode != 0:
        raise SystemExit(
            f"command failed with exit code {process.returncode}: {' '.join(command)}\n"
            + err_path.read_text(errors="replace")[-2000:]
        )
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def compile_sources(*trees: Path) -> None:
    """Write the bytecode of this checkout's ``src`` and of each tree given, as ``make install`` does.

    With PYTHONDONTWRITEBYTECODE set (CI, sandboxes) the modules of an editable install, and of a
    ``--baseline-src`` tree, would be compiled again in every timed run: about 0.07 s of each
    losslens command, the compiler's time rather than losslens's.
    """
    for tree in (HERE.parent / "src", *trees):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=True, stdout=subprocess.DEVNULL)
        # And the code of losslens's dataclass functions, where the tree keeps it (as `make` does).
        # A tree older than the cache fails here, and has nothing to write.
        subprocess.run([sys.executable, "-c", "from losslens import dataclass_code; dataclass_code.prime()"],
                       env={**os.environ, "PYTHONPATH": str(tree)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def losslens_command() -> list[str]:
    """How to start the losslens CLI with this interpreter (the installed console script's code)."""
    return [sys.executable, "-m", "losslens"]


def has_report() -> bool:
    """Whether this losslens has the HTML report (``losslens.html``)."""
    probe = subprocess.run([sys.executable, "-c", "import losslens.html"], capture_output=True)
    return probe.returncode == 0


def help_imports() -> tuple[float, list[str]]:
    """Start-up time of ``losslens --help`` and the heavy modules it imports.

    Returns the cumulative import time (s) of ``losslens.cli`` as ``-X importtime`` reports it,
    and which of matplotlib / pyarrow / numpy / pandas were imported.
    """
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "losslens", "--help"],
        capture_output=True,
        text=True,
    )
    heavy, total_us = set(), 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        top = name.strip().split(".")[0]
        if top in ("matplotlib", "pyarrow", "numpy", "pandas"):
            heavy.add(top)
        if cumulative.strip().isdigit():
            total_us = max(total_us, int(cumulative.strip()))
    return total_us / 1e6, sorted(heavy)


# ---------------------------------------------------------------------------------------
# Main


def main(argv=None) -> int:
    """Generate data, run the benchmark, print the table; exit 1 if a goal was missed."""
    if argv is None and sys.argv[1:2] == ["--write-data"]:
        path, rows, classes, seed = sys.argv[2:6]
        _write_data(Path(path), int(rows), int(classes), int(seed))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--big-repeats", type=int, default=3)
    parser.add_argument("--skip-big", action="store_true", help="Skip the runs on --big-rows.")
    parser.add_argument("--peers", type=Path, default=default_peers(), help="Folder of the peer scripts.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="Also time losslens from this source tree (e.g. an export of main's src/) in the same "
                             "rounds, as 'metrics (base)' and 'report (base)': before and after under the same load.")
    args = parser.parse_args(argv)

    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / "out"
    out.mkdir(exist_ok=True)
    small = generate(DATA / f"preds_{args.rows}x{args.classes}.parquet", args.rows, args.classes, args.seed)
    report_ok = has_report()
    ll = losslens_command()
    compile_sources(*([args.baseline_src] if args.baseline_src else []))

    commands = {**peer_commands(args.peers, small, args.classes),
                "reference": [sys.executable, str(HERE / "reference.py"), str(small)],
                "metrics": [*ll, "metrics", str(small), "--json", str(out / "metrics.json")]}
    if report_ok:
        commands["report"] = [*ll, "report", str(small), "-o", str(out / "report.html")]
    if args.baseline_src:
        base = baseline_command(args.baseline_src)
        commands["metrics (base)"] = [*base, "metrics", str(small), "--json", str(out / "base.json")]
        if report_ok:
            commands["report (base)"] = [*base, "report", str(small), "-o", str(out / "base.html")]
    runs, losses = interleave(commands, args.repeats, out, "metrics.json")
    startup, heavy = help_imports()

    big_runs, big_losses, big = {}, {}, {}
    if not args.skip_big:
        big_parquet = generate(DATA / f"preds_{args.big_rows}x{args.classes}.parquet", args.big_rows, args.classes, args.seed)
        big_csv = generate(DATA / f"preds_{args.big_rows}x{args.classes}.csv", args.big_rows, args.classes, args.seed)
        peers = peer_commands(args.peers, big_parquet, args.classes)
        timed = {name: command for name, command in peers.items() if name == "duckdb"}
        timed["metrics"] = [*ll, "metrics", str(big_parquet), "--json", str(out / "big_metrics.json")]
        if args.baseline_src:
            timed["metrics (base)"] = [*baseline_command(args.baseline_src), "metrics", str(big_parquet),
                                       "--json", str(out / "big_base.json")]
        big_runs, big_losses = interleave(timed, args.big_repeats, out, "big_metrics.json", prefix="big_")
        big["decoding alone"] = decoding_alone(big_parquet, args.big_repeats)
        print(f"peak memory on {big_csv.name} ...", file=sys.stderr, flush=True)
        big["metrics csv"] = run([*ll, "metrics", str(big_csv), "--json", str(out / "big_csv.json")])
        if report_ok:
            for label, path in (("parquet", big_parquet), ("csv", big_csv)):
                report_path = out / f"big_{label}.html"
                big[f"report {label}"] = run([*ll, "report", str(path), "-o", str(report_path)])
                big[f"report {label} size"] = report_path.stat().st_size

    failures: list[str] = []
    print_small(args, small, runs, losses, startup, heavy, report_ok, failures)
    if not args.skip_big:
        print_big(args, big_runs, big_losses, big, failures)
    print(f"\nreproduce: .venv/bin/python benchmarks/bench.py --rows {args.rows} "
          f"--classes {args.classes} --repeats {args.repeats} --big-rows {args.big_rows} "
          f"--big-repeats {args.big_repeats}" + (" --skip-big" if args.skip_big else ""))
    if failures:
        print(f"goals missed: {', '.join(failures)}")
        return 1
    print("all goals met")
    return 0


def baseline_command(src: Path) -> list[str]:
    """Start the losslens CLI from the source tree ``src`` (``env`` execs Python: one process)."""
    return ["env", f"PYTHONPATH={src.resolve()}", sys.executable, "-m", "losslens"]


def peer_commands(peers: Path, path: Path, classes: int) -> dict[str, list[str]]:
    """The peer scripts that can run here (their file exists and their engine imports)."""
    commands = {}
    for name, script, module in (("duckdb", "logloss_duckdb.py", "duckdb"), ("polars", "logloss_polars.py", "polars")):
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        if (peers / script).exists() and probe.returncode == 0:
            commands[name] = [sys.executable, str(peers / script), str(path), str(classes)]
        else:
            print(f"peer {name} skipped: no {peers / script} or no {module} (pip install -e .[bench])",
                  file=sys.stderr)
    return commands


def interleave(commands: dict[str, list[str]], repeats: int, out: Path, metrics_json: str, prefix: str = ""):
    """Run ``commands`` round by round; return their :class:`Runs` and the log loss each printed.

    A peer's (and the reference's) log loss is what it prints; losslens's is the ``overall``
    log loss of the JSON it wrote to ``out / metrics_json``.
    """
    runs = {name: Runs(name) for name in commands}
    print(f"timing {', '.join(commands)} x {repeats}, alternating ...", file=sys.stderr, flush=True)
    printing = [name for name in commands if not name.startswith(("metrics", "report"))]
    for _ in range(repeats):
        for name, command in commands.items():
            stdout = out / f"{prefix}{name}.stdout" if name in printing else None
            seconds, cpu, peak = run(command, stdout)
            runs[name].seconds.append(seconds)
            runs[name].cpu_seconds.append(cpu)
            runs[name].peak_kib.append(peak)
    losses = {name: float((out / f"{prefix}{name}.stdout").read_text().split()[0]) for name in printing}
    if "metrics" in commands:
        losses["metrics"] = json.loads((out / metrics_json).read_text())["runs"][0]["overall"]["log_loss"]
    return runs, losses


def agreement(losses: dict[str, float], failures: list[str], what: str = "") -> None:
    """Print every log loss beside losslens's; each must agree within AGREE_REL."""
    ours = losses["metrics"]
    for name, value in losses.items():
        if name == "metrics":
            continue
        ok = abs(value - ours) <= AGREE_REL * abs(value)
        if not ok:
            failures.append(f"{what}{name} log loss")
        print(f"  log loss {name:<10} {value!r:<22} losslens {ours!r:<22} "
              f"rel. diff {abs(value - ours) / abs(value):.1e}  {'PASS' if ok else 'FAIL'} (<= {AGREE_REL:g})")


def print_small(args, small, runs, losses, startup, heavy, report_ok, failures) -> None:
    """Print the --rows table, its goals and the log losses."""

    def verdict(ok: bool, what: str) -> str:
        if not ok:
            failures.append(what)
        return "PASS" if ok else "FAIL"

    ref = runs["reference"].median
    duck = runs["duckdb"].median if "duckdb" in runs else None
    print(f"\nlosslens benchmark: {args.rows:,} rows x {args.classes} classes, Parquet "
          f"({small.stat().st_size / 1e6:.0f} MB), median of {args.repeats} alternating runs, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}\n")
    print(f"{'command':<16}{'median s':>10}{'/duckdb':>9}{'/pandas':>9}{'CPU s':>8}{'peak MB':>9}  goals")
    for name, r in runs.items():
        goal = ""
        to_duck = r.median / duck if duck else float("nan")
        if name == "metrics":
            goal = f"<= {GOAL_METRICS_RATIO}x pandas {verdict(r.median / ref <= GOAL_METRICS_RATIO, 'metrics/pandas')}"
            if duck:
                goal += f", <= {GOAL_METRICS_DUCKDB}x duckdb {verdict(to_duck <= GOAL_METRICS_DUCKDB, 'metrics/duckdb')}"
        elif name == "report":
            goal = f"<= {GOAL_REPORT_RATIO}x pandas {verdict(r.median / ref <= GOAL_REPORT_RATIO, 'report/pandas')}"
            if duck:
                goal += f", <= {GOAL_REPORT_DUCKDB}x duckdb {verdict(to_duck <= GOAL_REPORT_DUCKDB, 'report/duckdb')}"
        print(f"{name:<16}{r.median:>10.2f}{to_duck:>8.2f}x{r.median / ref:>8.2f}x{r.median_cpu:>8.2f}"
              f"{r.peak_mb:>9.0f}  {goal}")
    if not report_ok:
        print("report      skipped: this losslens has no losslens.html yet")
    print()
    agreement(losses, failures)
    print(f"losslens --help: {startup * 1000:.0f} ms of imports; heavy modules imported: "
          f"{', '.join(heavy) or 'none'}  "
          f"{verdict(not {'matplotlib', 'pyarrow'} & set(heavy), 'help imports')}")


def decoding_alone(path: Path, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of pyarrow decoding ``path`` as losslens reads it (``decode_only.py``)."""
    print(f"timing pyarrow's decoding alone of {path.name} x {repeats} ...", file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    times = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, str(HERE / "decode_only.py"), str(path)], capture_output=True,
                              text=True, check=True, env=env)
        _, wall, cpu = done.stdout.split()
        times.append((float(wall), float(cpu)))
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def print_big(args, runs, losses, big, failures) -> None:
    """Print the --big-rows table (time against DuckDB, peak memory) and its goals."""
    print(f"\n{args.big_rows:,} rows x {args.classes} classes, Parquet, median of {args.big_repeats} alternating runs:")
    duck = runs["duckdb"].median if "duckdb" in runs else None
    for name, r in runs.items():
        goal = ""
        if name == "metrics":  # the goals are for this tree's losslens, not the baseline's
            ok_mem = r.peak_mb <= GOAL_PEAK_MB
            goal = f"peak <= {GOAL_PEAK_MB} MB {'PASS' if ok_mem else 'FAIL'}"
            if not ok_mem:
                failures.append("big metrics peak")
            if duck:
                ok = r.median / duck <= GOAL_METRICS_DUCKDB
                goal += f", <= {GOAL_METRICS_DUCKDB}x duckdb {'PASS' if ok else 'FAIL'}"
                if not ok:
                    failures.append("big metrics/duckdb")
        ratio = f"{r.median / duck:>8.2f}x" if duck else ""
        print(f"  {name:<10}{r.median:>8.2f} s{ratio}{r.peak_mb:>8.0f} MB  {goal}")
    agreement(losses, failures, "big ")
    for name, value in big.items():
        if name == "decoding alone":
            wall, cpu = value
            ratio = f", {wall / duck:.2f}x duckdb's whole query" if duck else ""
            print(f"  pyarrow decoding alone, as losslens reads it (one thread; decode_only.py, after the "
                  f"rounds above): {wall:.2f} s, CPU {cpu:.2f} s{ratio}")
        elif name.endswith("size"):
            ok = value < GOAL_REPORT_BYTES
            if not ok:
                failures.append(name)
            print(f"  {name:<22}{value / 1e3:>10.0f} kB  (goal < 1 MB) {'PASS' if ok else 'FAIL'}")
        else:
            seconds, _, peak_kib = value
            mb = peak_kib * 1024 / 1e6
            print(f"  {name:<22}{mb:>10.0f} MB  {seconds:7.1f} s  (peak memory only)")


if __name__ == "__main__":
    sys.exit(main())
