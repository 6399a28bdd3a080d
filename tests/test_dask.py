"""Tests for losslens.distributed: ``--engine dask`` gives the local engine's numbers.

A real ``dask.distributed.LocalCluster`` with worker processes is started once for the module;
every number of the Dask result (overall, per split, per slice, per class, calibration,
histogram) must equal the local engine's to a relative 1e-12, and the worst examples must
name the same file and row.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

from json_close import assert_json_close  # noqa: E402

from losslens import reading  # noqa: E402
from losslens.distributed import MISSING_DASK, evaluate_runs_dask  # noqa: E402
from losslens.engine import evaluate_runs  # noqa: E402
from losslens.errors import InputError, UsageError  # noqa: E402
from losslens.options import Options  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """A two-process local cluster shared by the module's tests (start-up costs seconds)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local.scheduler_address


def _frame(n: int, seed: int, classes=("cat", "dog", "bird"), clip: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = len(classes)
    logits = rng.normal(0, 2, (n, k))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if clip:
        probs[rng.random(n) < 0.01, 0] = 0.0  # some clipping
    frame = pd.DataFrame({"label": rng.choice(list(classes), n)})
    for j, c in enumerate(classes):
        frame[f"p_{c}"] = probs[:, j]
    frame["split"] = rng.choice(["train", "validation", "test"], n)
    frame["region"] = rng.choice(["north", "south", "east", "west", "centre"], n)
    frame["w"] = rng.uniform(0.1, 3.0, n)
    frame["id"] = [f"ex{seed}-{i}" for i in range(n)]
    return frame


#: Figures finished from the local engine's example sample (losslens.calibration_sample);
#: the Dask engine leaves them null and says so in a layout note.
SAMPLED = ("ece_equal_mass", "temperature", "log_loss_after_temperature", "calibration_loss", "refinement_loss",
           "brier_after_temperature", "ece_equal_width_ci95", "ece_equal_mass_ci95", "rms_calibration_error_ci95",
           "max_calibration_error_ci95")


def _without_sample_notes(document):
    for run in document["runs"]:
        run["layout"]["notes"] = [n for n in run["layout"]["notes"] if "temperature" not in n]
    return document


def _same(local, dask_result) -> None:
    remote = dask_result.to_dict()
    assert remote["runs"][0]["overall"]["ece_equal_mass"] is None
    assert_json_close(_without_sample_notes(local.to_dict()), _without_sample_notes(remote), skip=SAMPLED)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """A run split over three Parquet files and a CSV copy of it in three files."""
    root = tmp_path_factory.mktemp("parts")
    frames = [_frame(n, seed) for seed, n in enumerate((3000, 5000, 2000))]
    pq_dir, csv_dir = root / "pq", root / "csv"
    pq_dir.mkdir()
    csv_dir.mkdir()
    for i, frame in enumerate(frames):
        # Small row groups, so that Dask makes several partitions of one file.
        frame.to_parquet(pq_dir / f"part-{i}.parquet", index=False, row_group_size=700)
        frame.to_csv(csv_dir / f"part-{i}.csv", index=False, float_format="%.17g")
    return root


@pytest.mark.parametrize("kind", ["pq", "csv"])
def test_every_number_equals_local_with_splits_slices_weights(cluster, parts, kind):
    options = Options(by=("region",), weight="w", id="id", worst=15)
    local = evaluate_runs([str(parts / kind)], options=options)
    result = evaluate_runs_dask([str(parts / kind)], None, options, scheduler=cluster)
    _same(local, result)
    run = result.run
    assert run.overall.n_examples == 10_000
    assert set(run.by_split) == {"train", "validation", "test"}
    assert len(run.by_slice["region"]) == 5


def test_worst_examples_name_real_file_rows(cluster, parts, tmp_path):
    # Rows late in the second file, in a later partition, are the worst by construction.
    frame = _frame(4000, 7, clip=False)
    frame.loc[[10, 2500, 3999], ["p_cat", "p_dog", "p_bird"]] = [0.0, 0.0, 1.0]
    frame.loc[[10, 2500, 3999], "label"] = "cat"
    path = tmp_path / "one.parquet"
    frame.to_parquet(path, index=False, row_group_size=500)
    options = Options(worst=5)
    result = evaluate_runs_dask([str(path)], None, options, scheduler=cluster)
    rows = sorted(e.row for e in result.run.worst[:3])
    assert rows == [11, 2501, 4000]  # 1-based data rows
    _same(evaluate_runs([str(path)], options=options), result)


def test_csv_blocks_keep_file_rows(cluster, tmp_path, monkeypatch):
    # Tiny blocks make many partitions per CSV file; row numbers must still be the file's.
    import losslens.distributed as ld

    monkeypatch.setattr(ld, "CSV_BLOCKSIZE", 20_000)
    frame = _frame(3000, 3, clip=False)
    frame.loc[2222, ["p_cat", "p_dog", "p_bird"]] = [0.0, 0.0, 1.0]
    frame.loc[2222, "label"] = "cat"
    path = tmp_path / "blocks.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    options = Options(worst=3)
    result = evaluate_runs_dask([str(path)], None, options, scheduler=cluster)
    assert result.run.worst[0].row == 2223
    _same(evaluate_runs([str(path)], options=options), result)


def test_several_runs_and_names(cluster, parts):
    inputs = [str(parts / "pq" / "part-0.parquet"), str(parts / "csv" / "part-*.csv")]
    options = Options()
    local = evaluate_runs(inputs, names=["a", "b"], options=options)
    result = evaluate_runs_dask(inputs, ["a", "b"], options, scheduler=cluster)
    assert [r.name for r in result.runs] == ["a", "b"]
    _same(local, result)


def test_logits_and_binary_layouts(cluster, tmp_path):
    rng = np.random.default_rng(5)
    n = 3000
    logits = pd.DataFrame({"y": rng.integers(0, 4, n), **{f"logit_{c}": rng.normal(0, 3, n) for c in range(4)}})
    logits.to_parquet(tmp_path / "logits.parquet", index=False, row_group_size=800)
    binary = pd.DataFrame({"label": rng.integers(0, 2, n), "y_prob": rng.uniform(0, 1, n)})
    binary.to_csv(tmp_path / "binary.csv", index=False, float_format="%.17g")
    for path in (tmp_path / "logits.parquet", tmp_path / "binary.csv"):
        local = evaluate_runs([str(path)], options=Options())
        _same(local, evaluate_runs_dask([str(path)], None, Options(), scheduler=cluster))


def test_input_error_names_the_file_row(cluster, tmp_path):
    frame = _frame(3000, 9)
    frame.loc[2600, "p_dog"] = 1.5
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False, row_group_size=500)
    with pytest.raises(InputError) as local:
        evaluate_runs([str(path)], options=Options())
    with pytest.raises(InputError) as remote:
        evaluate_runs_dask([str(path)], None, Options(), scheduler=cluster)
    assert str(remote.value) == str(local.value)
    assert "row 2601" in str(remote.value)


def test_header_only_file_is_an_error(cluster, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("label,p_0,p_1\n")
    with pytest.raises(InputError, match=re.escape(f"{path}: no data rows (only a header)")):
        evaluate_runs_dask([str(path)], None, Options(classes=("0", "1")), scheduler=cluster)


def test_without_scheduler_starts_a_local_cluster(parts):
    path = str(parts / "pq" / "part-2.parquet")
    _same(evaluate_runs([path], options=Options()), evaluate_runs_dask([path], None, Options()))


def test_without_dask_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(UsageError, match=re.escape(MISSING_DASK)):
        evaluate_runs_dask(["x.parquet"], None, Options())
    assert MISSING_DASK == "--engine dask needs the dask extra: pip install 'losslens[dask]'"


def test_batches_within_a_partition_are_bounded(cluster, parts, monkeypatch):
    # A partition larger than one batch is scored in several batches; numbers do not change.
    monkeypatch.setattr(reading, "BATCH_BYTES", 8 * 1024)
    options = Options(by=("region",))
    local = evaluate_runs([str(parts / "pq")], options=options)
    # The workers are other processes: the monkeypatch reaches only the local engine here,
    # which is the side whose batching changes; the Dask side keeps its own.
    _same(local, evaluate_runs_dask([str(parts / "pq")], None, options, scheduler=cluster))


def test_european_csv_and_float32_parquet_equal_local(cluster, tmp_path):
    """What reading detects (separator, decimal commas, BOM, float32 eps) holds on the workers too."""
    frame = _frame(2000, 11)
    european = tmp_path / "euro.csv"
    frame.to_csv(european, index=False, sep=";", decimal=",", encoding="utf-8-sig")
    narrow = tmp_path / "f32.parquet"
    frame.astype({c: "float32" for c in frame.columns if c.startswith("p_")}).to_parquet(narrow, index=False)
    for path in (european, narrow):
        local = evaluate_runs([str(path)], options=Options())
        _same(local, evaluate_runs_dask([str(path)], None, Options(), scheduler=cluster))


def test_formats_the_workers_do_not_read_are_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    _frame(10, 1).to_json(path, orient="records", lines=True)
    message = f"{path}: --engine dask reads CSV, TSV and Parquet files; use --engine local for this input"
    with pytest.raises(UsageError, match=re.escape(message)):
        evaluate_runs_dask([str(path)], None, Options())
