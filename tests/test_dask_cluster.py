"""``losslens metrics --engine dask`` against a real ``dask.distributed`` cluster (issue #22).

The test starts a scheduler and two worker PROCESSES with the ``dask`` command line (as on a
real cluster: nothing shared with the test's own process but the network), writes a folder of
20 Parquet parts as pandas writes them, and runs the losslens command line with ``--engine dask
--scheduler ADDRESS`` on it. Every number of the JSON must equal the local engine's to a
relative 1e-12 (the partitions' sums are added in another order); the figures finished from
the local engine's example sample are null with the Dask engine, which says so in a note.
Runs in CI (the whole suite runs there); it takes about 20-40 s, most of it the cluster's
start-up.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.dataframe")
pytest.importorskip("distributed")

from json_close import assert_json_close  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

#: Figures the local engine finishes from its example sample; the Dask engine leaves them null.
SAMPLED = ("ece_equal_mass", "temperature", "log_loss_after_temperature", "calibration_loss", "refinement_loss",
           "brier_after_temperature")
PARTS = 20
ROWS_PER_PART = 5_000
CLASSES = ("cat", "dog", "bird", "fish")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _dask_command(*args: str) -> list[str]:
    """The ``dask`` command line of this interpreter's environment."""
    return [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A scheduler and two single-threaded worker processes on loopback; yields the address."""
    folder = tmp_path_factory.mktemp("cluster")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    logs = [open(folder / f"{name}.log", "wb") for name in ("scheduler", "worker0", "worker1")]
    processes = [subprocess.Popen(
        _dask_command("scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"),
        stdout=logs[0], stderr=subprocess.STDOUT, env=env)]
    try:
        for i in (1, 2):
            processes.append(subprocess.Popen(
                _dask_command("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-nanny",
                              "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(folder / f"w{i}")),
                stdout=logs[i], stderr=subprocess.STDOUT, env=env))
        _wait_for_workers(address, 2, folder)
        yield address
    finally:
        # Workers first: a worker whose scheduler is gone keeps retrying for a while.
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def _wait_for_workers(address: str, n: int, folder: Path, timeout: float = 90.0) -> None:
    from distributed import Client

    with Client(address, timeout=timeout) as client:
        client.wait_for_workers(n, timeout=timeout)
        info = client.scheduler_info()
        assert len(info["workers"]) == n, (folder / "scheduler.log").read_text()[-2000:]
        # Worker processes, not threads of this one: each has its own process id.
        pids = client.run(os.getpid)
        assert len(set(pids.values())) == n and os.getpid() not in pids.values()


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Path:
    """A folder of 20 Parquet parts (pandas' to_parquet defaults) with splits, slices and weights."""
    folder = tmp_path_factory.mktemp("parts")
    rng = np.random.default_rng(22)
    k = len(CLASSES)
    for i in range(PARTS):
        logits = rng.normal(0, 2, (ROWS_PER_PART, k))
        label = rng.integers(0, k, ROWS_PER_PART)
        logits[np.arange(ROWS_PER_PART), label] += 1.5
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        frame = pd.DataFrame({"label": np.array(CLASSES)[label]})
        for j, name in enumerate(CLASSES):
            frame[f"p_{name}"] = probs[:, j]
        frame["split"] = rng.choice(["validation", "test"], ROWS_PER_PART)
        frame["region"] = rng.choice(["north", "south", "east"], ROWS_PER_PART)
        frame["w"] = rng.uniform(0.5, 2.0, ROWS_PER_PART)
        frame.to_parquet(folder / f"part-{i:02d}.parquet", index=False)
    return folder


def _metrics(folder: Path, out: Path, *extra: str) -> tuple[dict, float]:
    """Run the losslens command line on ``folder``; return its JSON and wall time."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "losslens", "metrics", str(folder), "--by", "region", "--weight", "w",
         "--json", str(out), "--quiet", *extra],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), elapsed


def _without_sample_notes(document: dict) -> dict:
    for run in document["runs"]:
        run["layout"]["notes"] = [n for n in run["layout"]["notes"] if "temperature" not in n]
    return document


def test_dask_cluster_gives_the_local_numbers(scheduler, parts, tmp_path):
    local, local_seconds = _metrics(parts, tmp_path / "local.json")
    remote, dask_seconds = _metrics(parts, tmp_path / "dask.json", "--engine", "dask", "--scheduler", scheduler)
    run = remote["runs"][0]
    assert run["overall"]["n_examples"] == PARTS * ROWS_PER_PART
    assert set(run["by_split"]) == {"validation", "test"}
    assert run["overall"]["ece_equal_mass"] is None  # the sample stays on the local engine
    assert local["runs"][0]["overall"]["ece_equal_mass"] is not None
    # Sums of 100,000 terms added in partition order rather than batch order: equal to 1e-12.
    assert_json_close(_without_sample_notes(local), _without_sample_notes(remote), skip=SAMPLED)
    # An independent reference for the headline figure: scikit-learn's weighted log loss.
    from sklearn.metrics import log_loss

    frame = pd.concat([pd.read_parquet(p) for p in sorted(parts.iterdir())])
    expected = log_loss(frame["label"], frame[[f"p_{c}" for c in sorted(CLASSES)]].to_numpy(),
                        sample_weight=frame["w"], labels=sorted(CLASSES))
    assert run["overall"]["log_loss"] == pytest.approx(expected, rel=1e-12)
    print(f"\n{PARTS} parts x {ROWS_PER_PART:,} rows: local {local_seconds:.2f} s, "
          f"dask (2 worker processes) {dask_seconds:.2f} s")
