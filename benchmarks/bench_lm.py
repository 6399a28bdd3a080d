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
* ``losslens metrics FILE --json - --quiet``: the same numbers and everything else losslens computes.

It prints the median wall time of each, the ratio, the peak resident memory of each child
(``ru_maxrss`` of ``os.wait4``) and checks that both give the same log loss. Goals (from the
issue): losslens ≤ 0.8× the reference's wall time, ≤ 300 MB. ``--shuffled`` also measures a
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
from bench import DATA, Runs, run  # noqa: E402  (same process accounting as bench.py)

GOAL_RATIO = 0.8
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


def measure(path: Path, repeats: int) -> tuple[Runs, Runs, float, float]:
    """Run reference and losslens alternately; return both runs and their log losses."""
    reference = Runs("pandas groupby + Min-K%")
    losslens = Runs("losslens metrics --json -")
    ref_out, ll_out = DATA / "lm_reference.txt", DATA / "lm_losslens.json"
    for _ in range(repeats):
        for runs, command, out in (
            (reference, [sys.executable, str(HERE / "reference_lm.py"), str(path)], ref_out),
            (losslens, [sys.executable, "-m", "losslens", "metrics", str(path), "--json", "-", "--quiet"], ll_out),
        ):
            seconds, cpu, peak = run(command, out)
            runs.seconds.append(seconds)
            runs.cpu_seconds.append(cpu)
            runs.peak_kib.append(peak)
    reference_loss = float(ref_out.read_text().split()[0])
    losslens_loss = json.loads(ll_out.read_text())["runs"][0]["overall"]["log_loss"]
    return reference, losslens, reference_loss, losslens_loss


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shuffled", action="store_true")
    args = parser.parse_args(argv)
    failed = False
    for shuffled in ((False, True) if args.shuffled else (False,)):
        path = generate(args.documents, args.tokens, shuffled)
        reference, losslens, ref_loss, ll_loss = measure(path, args.repeats)
        ratio = losslens.median / reference.median
        print(f"\n{path.name}: {args.documents:,} documents x {args.tokens:,} tokens"
              f"{' (rows shuffled)' if shuffled else ''}")
        for runs in (reference, losslens):
            print(f"  {runs.label:28s} median {runs.median:6.2f} s (cpu {runs.median_cpu:5.2f} s)"
                  f"  peak {runs.peak_mb:6.0f} MB")
        same = abs(ref_loss - ll_loss) <= 1e-9 * abs(ref_loss)
        print(f"  log loss: reference {ref_loss!r}, losslens {ll_loss!r} -> {'same' if same else 'DIFFERENT'}")
        if not shuffled:
            ok_time, ok_mem = ratio <= GOAL_RATIO, losslens.peak_mb <= GOAL_PEAK_MB
            print(f"  {'PASS' if ok_time else 'FAIL'} wall time ratio {ratio:.2f} (goal <= {GOAL_RATIO})")
            print(f"  {'PASS' if ok_mem else 'FAIL'} peak memory {losslens.peak_mb:.0f} MB (goal <= {GOAL_PEAK_MB} MB)")
            failed |= not (ok_time and ok_mem and same)
        else:
            print(f"  wall time ratio {ratio:.2f}; non-contiguous documents: the run is sorted by document "
                  "in memory (no goal; memory grows with the tokens)")
            failed |= not same
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--write":
        _write(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1")
        sys.exit(0)
    sys.exit(main())
