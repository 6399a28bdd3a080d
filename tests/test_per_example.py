"""The per-example file: columns, its mean equals the log loss, exact logits, whole or not at all."""

import math
import re

import numpy as np
import pandas as pd
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from losslens.engine import evaluate_runs
from losslens.errors import UsageError
from losslens.per_example import PerExampleWriter


def _read(path):
    return (pq.read_table(path) if str(path).endswith(".parquet") else pcsv.read_csv(path)).to_pandas()


@pytest.fixture
def frames():
    rng = np.random.default_rng(3)
    n = 500
    y = rng.choice(["cat", "dog", "bird"], n)
    p = rng.dirichlet([2, 2, 2], n)
    a = pd.DataFrame({"id": [f"x{i}" for i in range(n)], "label": y, "p_cat": p[:, 0], "p_dog": p[:, 1],
                      "p_bird": p[:, 2], "w": rng.uniform(0.5, 2, n), "split": rng.choice(["train", "test"], n),
                      "region": rng.choice(["north", "south"], n)})
    b = a.assign(p_cat=0.5, p_dog=0.3, p_bird=0.2)
    return a, b


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_per_example_mean_equals_the_log_loss(tmp_path, frames, suffix):
    out = tmp_path / f"pe.{suffix}"
    writer = PerExampleWriter(str(out), id_column=True, weight_column=True, by=["region"])
    evaluation = evaluate_runs(list(frames), names=["a", "b"], observers=[writer], id="id", weight="w", by=["region"])
    writer.commit()
    table = _read(out)
    assert list(table.columns) == ["run", "source", "row", "id", "label", "predicted", "true_prob",
                                   "loss_nats", "loss_bits", "weight", "split", "region"]
    assert len(table) == 1000 and writer.n_rows == 1000
    for run in evaluation.runs:
        part = table[table["run"] == run.name]
        mean = np.average(part["loss_nats"], weights=part["weight"])
        assert mean == pytest.approx(run.overall.log_loss, rel=1e-12)
        assert np.average(part["loss_bits"], weights=part["weight"]) == pytest.approx(run.overall.cross_entropy_bits, rel=1e-12)
        for split, metrics in run.by_split.items():
            rows = part[part["split"] == split]
            assert np.average(rows["loss_nats"], weights=rows["weight"]) == pytest.approx(metrics.log_loss, rel=1e-12)
    first = table.iloc[0]
    a = frames[0].iloc[0]
    assert (first["run"], first["row"], first["id"], first["label"]) == ("a", 1, "x0", a["label"])
    assert first["true_prob"] == pytest.approx(a[f"p_{a['label']}"], rel=1e-15)
    assert first["loss_nats"] == pytest.approx(-math.log(first["true_prob"]), rel=1e-15)
    assert first["predicted"] == max(["cat", "dog", "bird"], key=lambda c: a[f"p_{c}"])


def test_losses_from_logits_are_exact_not_clipped(tmp_path):
    df = pd.DataFrame({"label": ["a", "b"], "logit_a": [0.0, 0.0], "logit_b": [80.0, 1.0]})
    out = tmp_path / "pe.parquet"
    writer = PerExampleWriter(str(out))
    evaluation = evaluate_runs([df], observers=[writer])
    writer.commit()
    table = _read(out)
    # log-softmax: loss of 'a' is log(1 + e^80) = 80 + log(1 + e^-80), far beyond the 36.04 clip.
    assert table["loss_nats"][0] == pytest.approx(80.0 + math.log1p(math.exp(-80.0)), rel=1e-15)
    assert table["loss_nats"][1] == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-15)
    assert table["loss_nats"].mean() == pytest.approx(evaluation.overall.log_loss, rel=1e-15)
    assert list(table.columns) == ["run", "source", "row", "label", "predicted", "true_prob", "loss_nats", "loss_bits", "split"]
    assert table["split"].isna().all()


def test_abort_leaves_no_file_and_keeps_an_earlier_one(tmp_path):
    out = tmp_path / "pe.csv"
    out.write_text("earlier\n")
    writer = PerExampleWriter(str(out))
    evaluate_runs([pd.DataFrame({"label": [1, 0], "y_prob": [0.7, 0.2]})], observers=[writer])
    writer.abort()
    assert out.read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pe.csv"]


def test_file_name_must_say_csv_or_parquet(tmp_path):
    with pytest.raises(UsageError, match=re.escape(f"--per-example {tmp_path / 'x.json'}: the file name must end in .csv or .parquet")):
        PerExampleWriter(str(tmp_path / "x.json"))
