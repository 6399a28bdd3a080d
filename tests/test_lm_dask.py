"""Language-model runs on Dask give the local engine's numbers (documents shuffled by id)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from lm_ngram import CharNGram, held_out_documents, zen_of_python  # noqa: E402
from losslens.lm import evaluate_lm  # noqa: E402
from losslens.distributed import evaluate_runs_dask  # noqa: E402
from losslens.options import Options  # noqa: E402

pytestmark = pytest.mark.slow
REL = 1e-12


def test_dask_equals_local_on_an_ngram_model(tmp_path):
    zen = zen_of_python()
    docs = held_out_documents()
    docs["this"] = zen
    model = CharNGram(8, alpha=0.05).fit(zen, zen + "".join(docs.values()))
    rows = [(name, ch, lp) for name, text in docs.items() for ch, lp in zip(text, model.token_logprobs(text))]
    frame = pd.DataFrame(rows, columns=["doc_id", "token", "logprob"]).astype({"logprob": np.float32})
    frame["kind"] = np.where(frame.doc_id == "this", "zen", "stdlib")
    folder = tmp_path / "parts"
    folder.mkdir()
    half = len(frame) // 2  # a document split across the two files
    frame.iloc[:half].to_parquet(folder / "part-0.parquet")
    frame.iloc[half:].to_parquet(folder / "part-1.parquet")
    local = evaluate_lm(folder, by=["kind"]).runs[0]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = evaluate_runs_dask([str(folder)], None, Options(by=("kind",)), scheduler=cluster.scheduler_address,
                                    kind="language_model").runs[0]
    for name in ("n_documents", "n_tokens", "n_bytes", "n_memorized"):
        assert getattr(remote.overall, name) == getattr(local.overall, name), name
    for name in ("log_loss", "bits_per_byte", "byte_perplexity", "perplexity"):
        assert getattr(remote.overall, name) == pytest.approx(getattr(local.overall, name), rel=REL), name
    assert remote.unigram_entropy_bits == pytest.approx(local.unigram_entropy_bits, rel=REL)
    assert remote.token_loss_histogram == local.token_loss_histogram
    assert remote.by_slice["kind"]["zen"].log_loss == pytest.approx(local.by_slice["kind"]["zen"].log_loss, rel=REL)
    assert list(remote.documents.keys) == sorted(docs)
    for i, key in enumerate(remote.documents.keys):
        j = local.documents.keys.index(key)
        assert math.isclose(remote.documents.top_loss[i], local.documents.top_loss[j], rel_tol=REL)
    assert [w.code for w in remote.warnings] == [w.code for w in local.warnings]


def test_engine_dask_through_the_command_gives_the_local_numbers(tmp_path):
    import json
    import subprocess
    import sys

    frame = pd.DataFrame({"doc_id": np.repeat(np.arange(40), 25),
                          "logprob": -np.random.default_rng(0).gamma(2.0, 0.5, 1000).astype(np.float32)})
    frame.to_parquet(tmp_path / "tokens.parquet")

    def json_of(*extra):
        done = subprocess.run([sys.executable, "-m", "losslens", "metrics", "tokens.parquet", "--json", "-", "-q",
                               *extra], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["runs"][0]

    local, remote = json_of(), json_of("--engine", "dask")
    assert remote["overall"]["n_tokens"] == local["overall"]["n_tokens"] == 1000
    # Partition sums add in another order: equal to a few ulps.
    assert remote["overall"]["log_loss"] == pytest.approx(local["overall"]["log_loss"], rel=REL)
    assert [d["document"] for d in remote["worst_documents"]] == [d["document"] for d in local["worst_documents"]]
