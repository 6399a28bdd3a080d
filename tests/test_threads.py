"""Scoring in worker threads (losslens.threads): results in input order, identical figures.

Batches are scored and summed in threads and merged in reading order, and the temperature fit
takes its per-row figures in row chunks in threads, so the JSON of a run must be byte-identical
whatever the number of threads, and between two runs.
"""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from losslens import reading, threads
from losslens.calibration_fit import _lse, _row_stats, _softmax_stats, fit_temperature, temperature_split
from losslens.engine import evaluate_runs
from losslens.errors import InputError
from losslens.threads import ordered_map


def test_results_come_in_input_order_from_several_threads():
    seen = set()

    def work(i):
        seen.add(threading.get_ident())
        time.sleep(0.002 * ((7 * i) % 5))  # later items often finish first
        return i * i

    assert list(ordered_map(work, range(40), threads=3)) == [i * i for i in range(40)]
    assert len(seen) > 1
    assert list(ordered_map(work, iter([]), threads=3)) == []


def test_fewer_workers_than_threads_still_read_ahead_in_the_callers_thread():
    # The stream's shape: the caller's thread draws (decodes) the items, one worker of two
    # threads' worth works on them, and two items are in flight as with two workers.
    caller, drawn_in, worked_in = threading.get_ident(), set(), set()

    def items():
        for i in range(30):
            drawn_in.add(threading.get_ident())
            yield i

    def work(i):
        worked_in.add(threading.get_ident())
        time.sleep(0.001)
        return -i

    assert list(ordered_map(work, items(), threads=2, workers=1)) == [-i for i in range(30)]
    assert drawn_in == {caller} and len(worked_in) == 1 and caller not in worked_in


def test_a_stream_scores_with_one_thread_fewer_than_the_cpus(monkeypatch):
    from losslens.layouts import plugin

    monkeypatch.setenv(threads.THREADS_ENV, "3")
    scored_in = set()

    def score(i):
        scored_in.add(threading.get_ident())
        time.sleep(0.002 * (i % 3))
        return [(i, i)]

    assert plugin.stream(range(40), score, 0, lambda total, part: total + part) == sum(range(40))
    assert len(scored_in) == 2 and threading.get_ident() not in scored_in


def test_an_error_comes_where_the_sequential_map_raises_it():
    def work(i):
        if i in (3, 5):
            raise InputError(f"bad item {i}")
        return i

    got = []
    with pytest.raises(InputError, match="bad item 3"):
        for value in ordered_map(work, range(10), threads=2):
            got.append(value)
    assert got == [0, 1, 2]


def test_a_reading_error_comes_after_the_items_read_before_it():
    def items():
        yield from range(4)
        raise InputError("file.csv, row 5: unreadable")

    got = []
    with pytest.raises(InputError, match="row 5"):
        for value in ordered_map(lambda i: i + 100, items(), threads=2):
            got.append(value)
    assert got == [100, 101, 102, 103]


@pytest.mark.parametrize("ahead", [1, 2, 5])
def test_at_most_ahead_items_are_in_flight_and_the_results_stay_in_order(ahead):
    lock, running, most = threading.Lock(), [0], [0]
    drawn = []

    def items():
        for i in range(30):
            drawn.append(i)
            yield i

    def work(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.001 * ((7 * i) % 3))
        with lock:
            running[0] -= 1
        return i

    got = []
    for value in ordered_map(work, items(), threads=3, ahead=ahead):
        # Items are drawn only as results are taken: never more than ``ahead`` beyond them.
        assert len(drawn) - len(got) <= ahead
        got.append(value)
    assert got == list(range(30)) and most[0] <= min(ahead, 3)


@pytest.mark.parametrize("light_results", [True, False])
def test_a_heavy_result_waiting_stops_the_extra_item(light_results):
    # Item 0 is slow; items 1 and 2 (drawn at the start, when no result waits) finish behind it.
    # When 0 has been taken, 1 and 2 wait: light, a fourth item is drawn before 1 is handed
    # out; heavy, nothing more is drawn until one of them is taken (``ahead`` = 2 in flight).
    drawn, others, first = [], threading.Event(), threading.Event()

    def items():
        for i in range(8):
            drawn.append(i)
            yield i

    def work(i):
        # Nothing finishes while the first three are drawn; then 1 and 2 finish, then 0.
        (first if i == 0 else others).wait(5)
        return i

    mapped = ordered_map(work, items(), threads=3, ahead=2, light=lambda result: light_results)
    timers = [threading.Timer(0.1, others.set), threading.Timer(0.3, first.set)]
    for timer in timers:
        timer.start()
    assert next(mapped) == 0 and drawn == [0, 1, 2]
    for timer in timers:
        timer.join()
    assert next(mapped) == 1
    assert len(drawn) == (4 if light_results else 3)
    assert list(mapped) == list(range(2, 8))


def test_the_extra_item_is_drawn_while_the_oldest_is_still_running():
    # The point of ``light``: with two workers and the oldest item slow, the third item is
    # drawn (and scored by the free worker) before the oldest finishes; without it, it is not.
    for light, expected in ((None, 2), (lambda result: True, 3)):
        drawn, started = [], threading.Event()
        release = threading.Event()

        def items():
            for i in range(4):
                drawn.append(i)
                yield i

        def work(i):
            if i == 0:
                started.set()
                release.wait(5)
            return i

        mapped = ordered_map(work, items(), threads=2, ahead=2, light=light)
        timer = threading.Timer(0.3, release.set)
        timer.start()
        assert next(mapped) == 0
        timer.join()
        assert started.is_set() and len(drawn) == expected
        assert list(mapped) == [1, 2, 3]


def test_the_worker_threads_are_kept_between_calls_and_an_abandoned_map_leaves_nothing_running():
    names = set()

    def work(i):
        names.add(threading.current_thread().name)
        time.sleep(0.002)
        return i

    list(ordered_map(work, range(8), threads=2))
    first = set(names)
    mapped = ordered_map(work, range(100), threads=2, ahead=4)
    assert [next(mapped) for _ in range(3)] == [0, 1, 2]
    mapped.close()  # abandoned: its items in flight are cancelled or waited for, none left running
    assert threads._pool(2)._work_queue.empty()
    assert len(first) == 2 and names == first  # the second map ran on the first one's two threads


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.thread_count() == 3
    monkeypatch.setenv(threads.THREADS_ENV, "zero")
    assert 1 <= threads.thread_count() <= threads.MAX_THREADS


@pytest.fixture
def frame():
    """A multiclass run with splits, a slice and clipped rows, as pandas writes it."""
    rng = np.random.default_rng(5)
    n, k = 30_000, 6
    logits = rng.normal(0, 2, (n, k))
    label = rng.integers(0, k, n)
    logits[np.arange(n), label] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[rng.random(n) < 0.01, 0] = 0.0
    data = pd.DataFrame({"label": label})
    for j in range(k):
        data[f"p_{j}"] = probs[:, j]
    data["split"] = rng.choice(["train", "validation", "test"], n)
    data["region"] = rng.choice(["north", "south"], n)
    return data


def _json(path, **options) -> str:
    return json.dumps(evaluate_runs([str(path)], **options).to_dict(), sort_keys=True)


def test_json_is_byte_identical_whatever_the_threads(frame, tmp_path, monkeypatch):
    path = tmp_path / "run.parquet"
    frame.to_parquet(path, index=False)
    monkeypatch.setattr(reading, "BATCH_BYTES", 8 * 1024 * 8)  # about 1,000 rows a batch: 30 batches
    documents = []
    for count in ("1", "2", "2", "4"):
        monkeypatch.setenv(threads.THREADS_ENV, count)
        documents.append(_json(path, by=("region",)))
    # The same sums merged in the same order: equal to the last bit, not merely close.
    assert documents[0] == documents[1] == documents[2] == documents[3]
    overall = json.loads(documents[0])["runs"][0]["overall"]
    from sklearn.metrics import log_loss

    expected = log_loss(frame["label"], frame[[f"p_{j}" for j in range(6)]].to_numpy(), labels=list(range(6)))
    assert overall["log_loss"] == pytest.approx(expected, rel=1e-12)


def test_row_chunks_give_the_whole_matrix_figures_to_the_last_bit(monkeypatch):
    import losslens.calibration_fit as fit

    rng = np.random.default_rng(1)
    z = np.log(rng.dirichlet(np.ones(7), 5_000))
    z[::97, 3] = -np.inf  # padded classes
    zz = np.where(np.isfinite(z), z, 0.0)
    monkeypatch.setattr(fit, "ROW_CHUNK", 333)
    whole = _softmax_stats(z.copy(), 1.3, zz)
    chunked = _row_stats(z, zz, 1.3, moments=True)
    # The same numpy arithmetic on each row, only in another grouping of rows: bit-identical.
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(_lse(z, 0.7), _row_stats(z, zz, 0.7, moments=False)[0])


def test_temperature_fit_does_not_depend_on_the_chunks(monkeypatch):
    import losslens.calibration_fit as fit

    rng = np.random.default_rng(2)
    n, k = 4_000, 5
    z = rng.normal(0, 3, (n, k))
    # Labels drawn from softmax(z / 2): the model is overconfident and the best T is near 2.
    p = np.exp(z / 2) / np.exp(z / 2).sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > p.cumsum(axis=1)).sum(axis=1)
    w = rng.uniform(0.5, 2, n)
    monkeypatch.setattr(fit, "ROW_CHUNK", 1 << 20)
    one = temperature_split(z, y, w)
    monkeypatch.setattr(fit, "ROW_CHUNK", 257)
    many = temperature_split(z, y, w)
    assert one == many
    # Independently: the fitted T minimises scipy's one-dimensional search of the same loss.
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    def loss(t):
        return float(np.dot(w, -log_softmax(z / t, axis=1)[np.arange(n), y]) / w.sum())

    best = minimize_scalar(loss, bounds=(0.05, 20), method="bounded", options={"xatol": 1e-10})
    assert one.temperature == pytest.approx(best.x, rel=1e-5)
    assert one.log_loss_after_temperature == pytest.approx(loss(one.temperature), rel=1e-12)
    assert fit_temperature(z, y, w).temperature == one.temperature


@pytest.mark.parametrize("variable, value, module", [
    (threads.BLAS_SPIN_ENV, threads.BLAS_SPIN, "numpy"),  # read by OpenBLAS when numpy loads
    (threads.ARROW_PURGE_ENV, threads.ARROW_PURGE_MS, "pyarrow"),  # read by mimalloc when pyarrow loads
    # read by Arrow when pyarrow loads; asked for only where this pyarrow has jemalloc
    (threads.ARROW_POOL_ENV, threads.ARROW_POOL if threads._arrow_has_jemalloc() else "None", "pyarrow"),
    # read by pyarrow's jemalloc when it starts; set where that is the pool
    (threads.ARROW_JEMALLOC_CONF_ENV, threads.ARROW_JEMALLOC_CONF if threads._arrow_has_jemalloc() else "None",
     "pyarrow"),
])
@pytest.mark.parametrize("given", [None, "12"])
def test_the_command_sets_its_variables_before_the_library_that_reads_them_loads(variable, value, module, given):
    """`losslens` sets OPENBLAS_THREAD_TIMEOUT and MIMALLOC_PURGE_DELAY (unless the user did)
    before numpy and pyarrow are imported: after that the setting would do nothing."""
    import os
    import subprocess
    import sys

    code = ("import os, sys\n"
            "import losslens.cli as cli\n"
            f"cli.app = lambda **k: print(os.environ.get({variable!r}), {module!r} in sys.modules)\n"
            "cli.main()\n")
    env = {k: v for k, v in os.environ.items() if k != variable}
    if given is not None:
        env[variable] = given
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == [given or value, "False"]


def _big_parquet(tmp_path, seed: int, n: int, k: int):
    """A Parquet file of n seeded Dirichlet probability rows over k classes, with their labels."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=n)
    frame = pd.DataFrame({"label": rng.integers(0, k, n), **{f"p_{j}": probs[:, j] for j in range(k)}})
    path = tmp_path / "big.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_blas_threads_sleeping_changes_no_figure(tmp_path):
    """Only OpenBLAS's spinning changes, not how it splits a dot product: the JSON of a run whose
    BLAS calls are large enough to use its threads is byte-identical with and without the setting."""
    import os
    import subprocess
    import sys

    path = _big_parquet(tmp_path, seed=7, n=300_000, k=4)
    outputs = []
    for spin in (None, "4"):
        env = {key: v for key, v in os.environ.items() if key != threads.BLAS_SPIN_ENV}
        if spin is not None:
            env[threads.BLAS_SPIN_ENV] = spin
        out = tmp_path / f"m{spin}.json"
        # As a module, not through cli.main (which would set it): the two runs differ in this alone.
        code = ("import sys; from losslens.cli import app; "
                f"app(['metrics', {str(path)!r}, '--json', {str(out)!r}, '--quiet'], prog_name='losslens')")
        subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_jemalloc_is_asked_for_only_where_pyarrows_build_header_says_it_has_it(tmp_path, monkeypatch):
    import importlib.machinery
    import importlib.util

    header = tmp_path / "pyarrow" / "include" / "arrow" / "util" / "config.h"
    header.parent.mkdir(parents=True)
    spec = importlib.machinery.ModuleSpec("pyarrow", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path / "pyarrow")]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    header.write_text("#define ARROW_JEMALLOC\n#define ARROW_JEMALLOC_VENDORED\n#define ARROW_MIMALLOC\n")
    assert threads._arrow_has_jemalloc() is True
    header.write_text("/* #undef ARROW_JEMALLOC */\n#define ARROW_MIMALLOC\n")
    assert threads._arrow_has_jemalloc() is False
    header.unlink()  # a build that ships no header
    assert threads._arrow_has_jemalloc() is False
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # no pyarrow at all
    assert threads._arrow_has_jemalloc() is False


def test_jemallocs_options_are_set_only_where_it_is_the_pool(monkeypatch):
    # On a copy of the environment: choose_arrow_memory_pool sets variables monkeypatch does not know of.
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr(threads, "_arrow_has_jemalloc", lambda: True)
    for pool, expected in ((None, threads.ARROW_JEMALLOC_CONF), ("jemalloc", threads.ARROW_JEMALLOC_CONF),
                           ("mimalloc", None), ("system", None)):
        monkeypatch.delenv(threads.ARROW_JEMALLOC_CONF_ENV, raising=False)
        if pool is None:
            monkeypatch.delenv(threads.ARROW_POOL_ENV, raising=False)
        else:
            monkeypatch.setenv(threads.ARROW_POOL_ENV, pool)
        threads.choose_arrow_memory_pool()
        assert os.environ.get(threads.ARROW_JEMALLOC_CONF_ENV) == expected, pool
    monkeypatch.setenv(threads.ARROW_JEMALLOC_CONF_ENV, "narenas:2")  # the user's own options are kept
    threads.choose_arrow_memory_pool()
    assert os.environ[threads.ARROW_JEMALLOC_CONF_ENV] == "narenas:2"


def test_jemalloc_takes_the_options_it_is_given():
    # pyarrow's jemalloc reads JE_ARROW_MALLOC_CONF: its statistics print the options in force.
    import subprocess
    import sys

    if not threads._arrow_has_jemalloc():
        pytest.skip("this pyarrow has no jemalloc")
    code = ("import pyarrow as pa\n"
            "pa.jemalloc_memory_pool()\n"
            "buffer = pa.allocate_buffer(1 << 20, memory_pool=pa.jemalloc_memory_pool())\n")
    env = {**os.environ, threads.ARROW_JEMALLOC_CONF_ENV: threads.ARROW_JEMALLOC_CONF + ",stats_print:true"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    printed = done.stdout + done.stderr
    assert "opt.dirty_decay_ms: -1" in printed and "opt.muzzy_decay_ms: -1" in printed
    assert "opt.background_thread: false" in printed


def test_arrows_memory_pool_changes_no_figure(tmp_path):
    """The pool only decides where Arrow's buffers live: the JSON is byte-identical under each
    pool this pyarrow has (an unknown name would make Arrow warn, so only those are tried)."""
    import os
    import subprocess
    import sys

    import pyarrow as pa

    path = _big_parquet(tmp_path, seed=8, n=200_000, k=5)
    pools = ["system", "mimalloc"] + (["jemalloc"] if threads._arrow_has_jemalloc() else [])
    outputs = []
    for pool in pools:
        try:
            getattr(pa, f"{pool}_memory_pool")()
        except NotImplementedError:
            continue
        env = {**os.environ, threads.ARROW_POOL_ENV: pool}
        out = tmp_path / f"{pool}.json"
        done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(path), "--json", str(out), "--quiet"],
                              env=env, capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == ""
        outputs.append(out.read_bytes())
    assert len(outputs) >= 2 and all(o == outputs[0] for o in outputs)


def test_one_malloc_arena_is_set_on_glibc_and_a_users_setting_is_kept(monkeypatch):
    """mallopt(M_ARENA_MAX, 1) succeeds on glibc (the call returns 1); with MALLOC_ARENA_MAX
    set by the user (glibc read it at start-up) nothing is changed."""
    import platform

    monkeypatch.setenv(threads.ARENA_ENV, "4")
    assert threads.share_one_malloc_arena() is False
    monkeypatch.delenv(threads.ARENA_ENV)
    if not (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"):
        pytest.skip("mallopt's M_ARENA_MAX is glibc's")
    assert threads.share_one_malloc_arena() is True


def test_the_command_shares_one_malloc_arena_before_its_worker_threads_start(tmp_path, monkeypatch):
    """`losslens metrics` calls share_one_malloc_arena before the first batch goes to a worker
    thread: glibc gives a thread its own arena at its first allocation, so a later call would
    leave the workers' arenas as they are."""
    from typer.testing import CliRunner

    from losslens.cli import app

    calls = []
    monkeypatch.setattr(threads, "share_one_malloc_arena", lambda: calls.append("arena") or True)
    ordered = threads.ordered_map

    def recording_map(*args, **kwargs):
        calls.append("threads")
        return ordered(*args, **kwargs)

    monkeypatch.setattr(threads, "ordered_map", recording_map)
    monkeypatch.setattr("losslens.layouts.plugin.ordered_map", recording_map)
    path = _big_parquet(tmp_path, seed=11, n=1_000, k=3)
    result = CliRunner().invoke(app, ["metrics", str(path), "--json", str(tmp_path / "m.json"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert calls[:2] == ["arena", "threads"]


def test_the_garbage_collector_runs_less_often_and_a_users_setting_is_kept(monkeypatch):
    import gc

    monkeypatch.setattr(gc, "get_threshold", lambda: (700, 10, 10))
    set_to = []
    monkeypatch.setattr(gc, "set_threshold", lambda *t: set_to.append(t))
    assert threads.collect_cycles_less_often() is True
    assert set_to == [(threads.GC_FIRST_THRESHOLD, 10, 10)]
    for kept in (0, threads.GC_FIRST_THRESHOLD, 250_000):  # off, or already as high
        monkeypatch.setattr(gc, "get_threshold", lambda kept=kept: (kept, 10, 10))
        assert threads.collect_cycles_less_often() is False
    assert len(set_to) == 1


def test_the_command_collects_cycles_less_often_and_its_figures_do_not_change(tmp_path):
    """`losslens metrics` sets the threshold and freezes its objects for the exit (cli.main); the
    JSON is byte-identical to a run without either (the app called as a library would)."""
    import os
    import subprocess
    import sys

    path = _big_parquet(tmp_path, seed=12, n=250_000, k=4)
    report = "import gc, sys; print(gc.get_freeze_count() > 0, gc.get_threshold()[0], file=sys.stderr)"
    runs = {
        "main": f"import atexit; atexit.register(lambda: exec({report!r})); from losslens.cli import main; "
                "import sys; sys.argv = ['losslens'] + sys.argv[1:]; main()",
        "app": f"import atexit; atexit.register(lambda: exec({report!r})); from losslens.cli import app; "
               "import sys; app(sys.argv[1:], prog_name='losslens')",
    }
    outputs, thresholds = [], []
    for name, code in runs.items():
        out = tmp_path / f"{name}.json"
        done = subprocess.run([sys.executable, "-c", code, "metrics", str(path), "--json", str(out), "--quiet"],
                              env=dict(os.environ), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        frozen, threshold = done.stderr.split()[-2:]
        thresholds.append((frozen, int(threshold)))
        outputs.append(out.read_bytes())
    assert thresholds == [("True", threads.GC_FIRST_THRESHOLD), ("False", gc_default_threshold())]
    assert outputs[0] == outputs[1]


def test_a_failing_command_still_exits_with_its_code_one_line_and_no_output(tmp_path):
    """The freeze is in a ``finally``: an exit 2 keeps its code and its one line, and writes nothing."""
    import subprocess
    import sys

    bad = tmp_path / "preds.csv"
    bad.write_text("label,p_0,p_1\n0,0.2,0.8\n1,oops,0.5\n", encoding="utf-8")
    out = tmp_path / "m.json"
    done = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(bad), "--json", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "p_0" in done.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["preds.csv"]


def gc_default_threshold() -> int:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import gc; print(gc.get_threshold()[0])"], capture_output=True,
                          text=True, check=True)
    return int(done.stdout)


def test_the_command_sets_the_collector_before_the_command_line_loads():
    """The console script and ``python -m losslens`` run losslens.__main__.main, which sets the
    threshold before losslens.cli (Typer and every command's module) is imported."""
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["losslens"] == "losslens.__main__:main"
    code = ("import gc, sys\n"
            "class Spy:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'losslens.cli':\n"
            "            print('at cli', gc.get_threshold()[0], file=sys.stderr)\n"
            "sys.meta_path.insert(0, Spy())\n"
            "sys.argv = ['losslens', 'metrics', '--help']\n"
            "import runpy; runpy.run_module('losslens', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "Usage" in done.stdout
    assert f"at cli {threads.GC_FIRST_THRESHOLD}" in done.stderr
