"""Benchmark of the language-model token layout against a pandas groupby script.

Usage::

    .venv/bin/python benchmarks/bench_lm.py [--documents 10000] [--tokens 1000] [--repeats 3]
                                            [--shuffled]

Writes a seeded token file into ``benchmarks/data/`` (git-ignored; reused when it exists):
``--documents`` contiguous documents of ``--tokens`` tokens each, columns ``doc_id`` (int64),
``logprob`` (float32, as torch gives them) and ``n_bytes`` (int32) — 10M tokens by default.
The data is written by a child process, so that no command inherits the writer's memory. Then it
runs, alternating round by round:

* ``benchmarks/reference_lm.py``: ``pandas.read_parquet``, per-document sums with ``groupby``
  and the Min-K% Prob score (sort, ``groupby.cumcount``, mean of the lowest ``int(0.2·n)``);
* ``tokens_polars.py`` (the peer of issue #22, from ``--peers``; skipped with a note when absent
  or when polars is not installed): per-document sums and Min-K% Prob with polars;
* ``losslens metrics FILE --json - --quiet``: the same numbers and everything else losslens computes.

It prints the median wall time of each, the ratios, the peak resident memory of each child
(``ru_maxrss`` of ``os.wait4``) and checks that every script gives the same log loss, and the
polars peer the same bits per byte (both within 1e-12 relative) and number of documents with
Min-K% Prob >= 0.1. Goals: losslens ≤ 0.8× the pandas reference's wall time, ≤ 1.0× the polars
peer's (issue #22), ≤ 300 MB. ``--shuffled`` also measures a
copy whose rows are in random order (every document non-contiguous: the second pass).
Exit code 1 if a goal fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import AGREE_REL, DATA, Runs, compile_sources, default_peers, run  # noqa: E402  (same accounting as bench.py)

GOAL_RATIO = 0.8
GOAL_POLARS_RATIO = 1.0
GOAL_PEAK_MB = 300


def _write(path: Path, documents: int, tokens: int, shuffled: bool, seed: int = 0) -> None:
    """Write the token file (run in a child process)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    per_chunk = max(1, 1_000_000 // tokens)
    ids = np.arange(documents)
    if shuffled:
        # Every document scattered over the file: the non-contiguous path's worst case. Its
        # own generator, so that the values are those of the unshuffled file, reordered.
        order = np.random.default_rng(seed + 1).permutation(documents * tokens)
    writer = None
    try:
        for first in range(0, documents, per_chunk):
            chunk = ids[first:first + per_chunk]
            n = len(chunk) * tokens
            # Token losses spread over decades, as a real model's do.
            logprob = -rng.gamma(0.6, 4.0, n).astype(np.float32)
            table = pa.table({"doc_id": np.repeat(chunk, tokens).astype(np.int64), "logprob": logprob,
                              "n_bytes": rng.integers(1, 9, n).astype(np.int32)})
            if writer is None:
                writer = pq.ParquetWriter(path.with_suffix(".tmp"), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if shuffled:
        table = pq.read_table(path.with_suffix(".tmp"))
        pq.write_table(table.take(order), path)
        path.with_suffix(".tmp").unlink()
    else:
        path.with_suffix(".tmp").rename(path)


def generate(documents: int, tokens: int, shuffled: bool) -> Path:
    """The data file's path, written by a child process unless it already exists."""
    path = DATA / f"lm_tokens_{documents}x{tokens}{'_shuffled' if shuffled else ''}.parquet"
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--write", str(path), str(documents), str(tokens),
                        "1" if shuffled else "0"], check=True)
    return path


def measure(path: Path, repeats: int, peers: Path) -> tuple[dict[str, Runs], dict[str, list[float]]]:
    """Run the reference, the polars peer and losslens alternately; return their runs and figures.

    The figures are what each printed: the reference its log loss; the polars peer log loss,
    bits per byte and documents with Min-K% Prob >= 0.1; losslens the same from its JSON.
    """
    commands = {"pandas": [sys.executable, str(HERE / "reference_lm.py"), str(path)]}
    probe = subprocess.run([sys.executable, "-c", "import polars"], capture_output=True)
    if (peers / "tokens_polars.py").exists() and probe.returncode == 0:
        commands["polars"] = [sys.executable, str(peers / "tokens_polars.py"), str(path)]
    else:
        print(f"peer polars skipped: no {peers / 'tokens_polars.py'} or no polars", file=sys.stderr)
    commands["losslens"] = [sys.executable, "-m", "losslens", "metrics", str(path), "--json", "-", "--quiet"]
    runs = {name: Runs(name) for name in commands}
    outs = {name: DATA / f"lm_{name}.out" for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            seconds, cpu, peak = run(command, outs[name])
            runs[name].seconds.append(seconds)
            runs[name].cpu_seconds.append(cpu)
            runs[name].peak_kib.append(peak)
    figures = {name: [float(v) for v in outs[name].read_text().split()] for name in commands if name != "losslens"}
    overall = json.loads(outs["losslens"].read_text())["runs"][0]["overall"]
    figures["losslens"] = [overall["log_loss"], overall["bits_per_byte"], float(overall["n_memorized"])]
    return runs, figures


def agree(figures: dict[str, list[float]]) -> bool:
    """Print each script's figures beside losslens's; True if all agree."""
    ours = figures["losslens"]
    same = True
    for name, values in figures.items():
        if name == "losslens":
            continue
        for label, theirs, mine in zip(("log loss", "bits/byte", "Min-K% >= 0.1"), values, ours):
            ok = abs(theirs - mine) <= AGREE_REL * abs(theirs)
            same &= ok
            print(f"  {label:<14}{name:<8}{theirs!r:<22} losslens {mine!r:<22} {'same' if ok else 'DIFFERENT'}")
    return same


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shuffled", action="store_true")
    parser.add_argument("--peers", type=Path, default=default_peers(), help="Folder of the peer scripts.")
    args = parser.parse_args(argv)
    compile_sources()
    failed = False
    for shuffled in ((False, True) if args.shuffled else (False,)):
        path = generate(args.documents, args.tokens, shuffled)
        runs, figures = measure(path, args.repeats, args.peers)
        ours = runs["losslens"]
        print(f"\n{path.name}: {args.documents:,} documents x {args.tokens:,} tokens"
              f"{' (rows shuffled)' if shuffled else ''}, median of {args.repeats} alternating runs")
        for name, r in runs.items():
            print(f"  {name:<10} median {r.median:6.2f} s (cpu {r.median_cpu:5.2f} s)  peak {r.peak_mb:6.0f} MB"
                  f"  losslens/this {ours.median / r.median:5.2f}x")
        same = agree(figures)
        failed |= not same
        if shuffled:
            print("  non-contiguous documents: the run is sorted by document in memory "
                  "(no goal; memory grows with the tokens)")
            continue
        goals = [(ours.median / runs["pandas"].median <= GOAL_RATIO, f"wall time <= {GOAL_RATIO}x pandas"),
                 (ours.peak_mb <= GOAL_PEAK_MB, f"peak memory {ours.peak_mb:.0f} MB <= {GOAL_PEAK_MB} MB")]
        if "polars" in runs:
            goals.append((ours.median / runs["polars"].median <= GOAL_POLARS_RATIO,
                          f"wall time <= {GOAL_POLARS_RATIO}x polars"))
        for ok, what in goals:
            print(f"  {'PASS' if ok else 'FAIL'} {what}")
            failed |= not ok
    print(f"\nreproduce: .venv/bin/python benchmarks/bench_lm.py --documents {args.documents} "
          f"--tokens {args.tokens} --repeats {args.repeats}" + (" --shuffled" if args.shuffled else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--write":
        _write(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1")
        sys.exit(0)
    sys.exit(main())
