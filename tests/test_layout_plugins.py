"""The layout plugins (losslens.layouts) and the engines written once over them.

Each kind of input is a plugin; the local engine (engine.evaluate_job) and the Dask engine
(distributed.evaluate_dask) call only the plugin's methods. These tests hold the registry to its
kinds, each plugin to the options it refuses, and show that a new kind is one class: a toy
plugin (the mean of a column, streamed in batches) runs through the same stream loop, in worker
threads, with sums merged in reading order.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from losslens.engine import evaluate_job
from losslens.errors import UsageError
from losslens.layouts import KINDS, plugin_for
from losslens.layouts.plugin import LayoutPlugin, stream
from losslens.options import Options
from losslens.reading import iter_batches


def test_every_kind_has_its_plugin():
    for kind in KINDS:
        plugin = plugin_for(kind)
        assert isinstance(plugin, LayoutPlugin)
        assert plugin.kind == kind and plugin.unit
    with pytest.raises(ValueError, match="no layout plugin for kind 'regression'"):
        plugin_for("regression")


def test_the_plugins_that_run_on_dask_give_it_their_partitions():
    on_dask = [kind for kind in KINDS if plugin_for(kind).dask]
    assert on_dask == ["classifier", "language_model"]
    for kind in on_dask:
        plugin = type(plugin_for(kind))
        for method in ("dask_types", "partitions", "merge_partitions", "local_error"):
            assert getattr(plugin, method) is not getattr(LayoutPlugin, method), (kind, method)


@pytest.mark.parametrize("kind, options, engine, n_inputs, message", [
    ("classifier", Options(bootstrap=100), "dask", 1, "--bootstrap needs --engine local"),
    ("language_model", Options(cluster="doc"), "local", 2, "--cluster is for classifier files and lm-eval"),
    ("language_model", Options(bootstrap=100), "local", 1, "give two or more inputs to compare"),
    ("language_model", Options(reference="ref.parquet"), "dask", 1, "read locally: drop --engine dask"),
    ("lm_eval", Options(), "dask", 1, "lm-eval samples files are small and read locally"),
    ("lm_eval", Options(reference="ref.parquet"), "local", 1, "no per-token log-probs"),
    ("trainer", Options(by=("subject",)), "local", 1, "a Trainer run is its logged loss curves"),
])
def test_each_plugin_refuses_what_it_has_nothing_for(kind, options, engine, n_inputs, message):
    with pytest.raises(UsageError, match=message):
        plugin_for(kind).check_options(options, engine, n_inputs)


class ColumnMean(LayoutPlugin):
    """A toy kind: the mean of column ``x``, in batches (sum, count) merged with +."""

    kind = "column_mean"
    unit = "row"

    def layout_of(self, sources, options):
        return {"x": None}

    def batches(self, sources, layout, options):
        for source in sources:
            for _, batch in iter_batches(source, layout):
                yield batch

    def score(self, item, layout, options):
        values = np.asarray(item.column("x"), dtype=np.float64)
        return [(values, np.array([values.sum(), len(values)]))]

    def empty(self, layout, options):
        return np.zeros(2)

    def finish(self, total, layout, plan, options):
        return {"name": plan.name, "mean": total[0] / total[1], "n": int(total[1])}

    def evaluation(self, runs, options):
        return runs


def test_a_new_kind_is_one_class_over_the_shared_stream(tmp_path, monkeypatch):
    from losslens import reading, threads

    rng = np.random.default_rng(3)
    x = rng.normal(size=50_000)
    path = tmp_path / "x.parquet"
    pd.DataFrame({"x": x}).to_parquet(path)
    monkeypatch.setattr(reading, "BATCH_BYTES", 8 * 2_000)  # 25 batches
    seen = []
    results = []
    for count in ("1", "2", "4"):
        monkeypatch.setenv(threads.THREADS_ENV, count)
        (run,) = ColumnMean().evaluate_inputs([str(path)], ["x"], Options(), [lambda name, layout, b: seen.append(len(b))])
        results.append(run)
    assert results[0] == results[1] == results[2]  # sums merged in reading order: the same bits
    assert results[0]["n"] == 50_000 and sum(seen) == 3 * 50_000
    # The batches' sums added in order, as one would by hand.
    by_hand = 0.0
    for start in range(0, len(x), 2_000):
        by_hand += x[start:start + 2_000].sum()
    assert results[0]["mean"] == by_hand / len(x)
    assert math.isclose(results[0]["mean"], float(np.mean(x)), rel_tol=1e-12)


def test_stream_calls_observers_in_reading_order():
    order = []
    total = stream(range(10), lambda i: [(i, i * i)], 0, lambda a, b: a + b, [order.append])
    assert total == sum(i * i for i in range(10)) and order == list(range(10))


def test_the_job_is_the_same_for_every_kind(tmp_path):
    """One engine: a classifier table and a token file each go through evaluate_job and come
    back as (evaluation, comparisons) that the one JSON writer turns into a version-3 document."""
    from losslens.document import job_document

    classifier = tmp_path / "c.csv"
    pd.DataFrame({"label": [0, 1, 1, 0], "p_0": [0.9, 0.2, 0.4, 0.6], "p_1": [0.1, 0.8, 0.6, 0.4]}).to_csv(classifier, index=False)
    tokens = tmp_path / "t.parquet"
    pd.DataFrame({"doc_id": [0, 0, 1], "logprob": [-1.0, -2.0, -0.5]}).to_parquet(tokens)
    for kind, path, log_loss in (("classifier", classifier, -np.mean(np.log([0.9, 0.8, 0.6, 0.6]))),
                                 ("language_model", tokens, 3.5 / 3)):
        evaluation, comparisons = evaluate_job(kind, [str(path)], Options())
        document = json.loads(json.dumps(job_document(evaluation, comparisons, None, None, None)))
        assert document["format_version"] == 3 and comparisons == ()
        (run,) = document["runs"]
        assert run["overall"]["log_loss"] == pytest.approx(log_loss, rel=1e-12)
