"""``--engine dask`` on a real ``dask.distributed`` cluster against the local engine.

Usage::

    .venv/bin/python benchmarks/bench_dask.py [--rows 1000000] [--classes 10] [--parts 20] [--repeats 3]

Writes the seeded ``--rows`` file of ``bench.py`` as a folder of ``--parts`` Parquet parts
(``benchmarks/data/parts_<rows>x<classes>_<parts>/``, git-ignored), starts a scheduler and two
single-threaded worker processes with the ``dask`` command line on loopback, then times, in
alternating rounds, ``losslens metrics FOLDER`` (local engine) and ``losslens metrics FOLDER
--engine dask --scheduler ADDRESS`` (the cluster's start-up not included: it is already
running, as a real cluster is), and checks that both give the same log loss (1e-12 relative).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import AGREE_REL, DATA, Runs, generate, losslens_command, run  # noqa: E402


def write_parts(source: Path, folder: Path, parts: int) -> Path:
    """Split ``source`` into ``parts`` Parquet files in ``folder`` (unless done before)."""
    import pyarrow.parquet as pq

    stamp = folder / ".done"
    if stamp.exists() and stamp.read_text() == f"{source.name} {parts}":
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    table = pq.read_table(source)
    size = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * size, size), folder / f"part-{i:02d}.parquet")
    stamp.write_text(f"{source.name} {parts}")
    return folder


def start_cluster(workers: int = 2) -> tuple[str, list[subprocess.Popen]]:
    """A scheduler and ``workers`` worker processes on loopback; their address and processes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", str(port), "--dashboard-address", ":0"], **quiet)]
    for _ in range(workers):
        processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
                                           "--no-dashboard"], **quiet))
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=60)
    return address, processes


def stop(processes: list[subprocess.Popen]) -> None:
    """Stop the workers, then the scheduler (a worker whose scheduler is gone retries for a while)."""
    for process in reversed(processes):
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--parts", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    source = generate(DATA / f"preds_{args.rows}x{args.classes}.parquet", args.rows, args.classes)
    folder = write_parts(source, DATA / f"parts_{args.rows}x{args.classes}_{args.parts}", args.parts)
    out = DATA / "out"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    address, processes = start_cluster()
    startup = time.perf_counter() - started
    ll = losslens_command()
    commands = {
        "local": [*ll, "metrics", str(folder), "--json", str(out / "dask_local.json"), "--quiet"],
        "dask": [*ll, "metrics", str(folder), "--engine", "dask", "--scheduler", address,
                 "--json", str(out / "dask_dask.json"), "--quiet"],
    }
    runs = {name: Runs(name) for name in commands}
    try:
        for _ in range(args.repeats):
            for name, command in commands.items():
                seconds, cpu, peak = run(command)
                runs[name].seconds.append(seconds)
                runs[name].cpu_seconds.append(cpu)
                runs[name].peak_kib.append(peak)
    finally:
        stop(processes)
    losses = {name: json.loads((out / f"dask_{name}.json").read_text())["runs"][0]["overall"]["log_loss"]
              for name in commands}
    print(f"\n{args.rows:,} rows x {args.classes} classes in {args.parts} Parquet parts, median of "
          f"{args.repeats} alternating runs, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"scheduler + 2 worker processes started in {startup:.1f} s (not timed below)")
    for name, r in runs.items():
        print(f"  {name:<6} median {r.median:6.2f} s  client peak {r.peak_mb:5.0f} MB  log loss {losses[name]!r}")
    same = abs(losses["local"] - losses["dask"]) <= AGREE_REL * abs(losses["local"])
    print(f"  dask / local {runs['dask'].median / runs['local'].median:.2f}x; log losses "
          f"{'agree' if same else 'DIFFER'} (<= {AGREE_REL:g} relative)")
    print(f"\nreproduce: .venv/bin/python benchmarks/bench_dask.py --rows {args.rows} --classes {args.classes} "
          f"--parts {args.parts} --repeats {args.repeats}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
