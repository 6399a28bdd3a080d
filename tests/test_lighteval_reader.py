"""The lighteval details reader against files lighteval 0.13 wrote (tests/data/lighteval)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lm_ngram import CharNGram, zen_of_python
from losslens.errors import InputError
from losslens.readers.lighteval import read_lighteval_details, read_lighteval_results

DATA = Path(__file__).parent / "data" / "lighteval"


def details(checkpoint: str, task: str) -> Path:
    (file,) = (DATA / checkpoint).glob(f"details_{task}|0_*.parquet")
    return file


def results(checkpoint: str) -> dict:
    (file,) = (DATA / checkpoint).glob("results_*.json")
    return read_lighteval_results(file)


def ngram(checkpoint: str) -> CharNGram:
    """The model of make_fixtures.py, its vocabulary rebuilt from the texts the fixture holds."""
    zen = zen_of_python()
    texts = "".join(d.query for d in read_lighteval_details(details(checkpoint, "stdlib_ppl")).docs)
    order, alpha = (1, 1.0) if checkpoint == "base" else (4, 0.5)
    return CharNGram(order, alpha=alpha).fit(zen, zen + texts)


@pytest.mark.parametrize("checkpoint", ["base", "tuned"])
def test_accuracy_recomputed_equals_lighteval(checkpoint):
    run = read_lighteval_details(details(checkpoint, "zen_mc"))
    assert (run.task, run.num_fewshot, run.layout, run.kind) == ("zen_mc", 0, "nested", "multiple_choice")
    assert len(run.docs) == 19
    acc, acc_norm = [], []
    for doc in run.docs:
        lp = np.array(doc.logprobs)
        # np.argmax takes the first of equal values, as lighteval's LoglikelihoodAcc does
        acc.append(int(np.argmax(lp) in doc.gold))
        acc_norm.append(int(np.argmax(lp / np.array(doc.choice_chars)) in doc.gold))
        assert (acc[-1], acc_norm[-1]) == (doc.metrics["acc"], doc.metrics["acc_norm"]), doc.doc_id
    logged = results(checkpoint)["results"]["zen_mc|0"]
    assert np.mean(acc) == pytest.approx(logged["acc"], rel=1e-12)
    assert np.mean(acc_norm) == pytest.approx(logged["acc_norm"], rel=1e-12)


def test_rows_are_not_in_dataset_order_and_ids_pair_checkpoints():
    base = read_lighteval_details(details("base", "zen_mc"))
    tuned = read_lighteval_details(details("tuned", "zen_mc"))
    ids = [d.doc_id for d in base.docs]
    assert ids != sorted(ids, key=int)  # lighteval sorts requests by length
    assert set(base.by_id()) == set(tuned.by_id()) == {str(i) for i in range(19)}
    for doc_id, doc in base.by_id().items():
        assert doc.choices == tuned.by_id()[doc_id].choices


def test_log_likelihoods_equal_an_independent_ngram_computation():
    for checkpoint in ("base", "tuned"):
        model = ngram(checkpoint)
        docs = read_lighteval_details(details(checkpoint, "zen_mc")).by_id()
        for doc_id in ("0", "3", "7", "18"):
            doc = docs[doc_id]
            for choice, logged in zip(doc.choices, doc.logprobs):
                expected = math.fsum(model.token_logprobs(doc.query + choice)[len(doc.query):])
                # summed in a different order than the model wrapper did: not bitwise equal
                assert logged == pytest.approx(expected, rel=1e-9)


def test_two_identical_choices_tie_on_the_first_index():
    doc = read_lighteval_details(details("tuned", "zen_mc")).by_id()["3"]
    assert doc.choices[0] == doc.choices[-1]
    assert doc.logprobs[0] == doc.logprobs[-1]


def test_acc_norm_lengths_count_the_leading_space_and_lm_eval_lengths_do_not():
    doc = read_lighteval_details(details("base", "zen_mc")).docs[0]
    for choice, chars, stripped, nbytes in zip(doc.choices, doc.choice_chars, doc.choice_chars_stripped,
                                               doc.choice_bytes):
        assert choice.startswith(" ")
        assert (chars, stripped, nbytes) == (len(choice), len(choice) - 1, len(choice.encode()))
    # the two conventions pick different answers on real samples: lighteval's is the one it logs
    run = read_lighteval_details(details("base", "zen_mc"))
    stripped = [int(np.argmax(np.array(d.logprobs) / np.array(d.choice_chars_stripped)) in d.gold)
                for d in run.docs]
    assert sum(s != d.metrics["acc_norm"] for s, d in zip(stripped, run.docs)) == 3


@pytest.mark.parametrize("checkpoint", ["base", "tuned"])
def test_perplexity_task_token_logprobs_and_bits_per_byte(checkpoint):
    run = read_lighteval_details(details(checkpoint, "stdlib_ppl"))
    assert run.kind == "perplexity" and len(run.docs) == 7
    model = ngram(checkpoint)
    for doc in run.docs:
        assert doc.logprobs == pytest.approx(model.token_logprobs(doc.query), rel=1e-12)
        assert doc.text_bytes == len(doc.query.encode("utf-8"))
        assert doc.metrics["bits_per_byte"]["weights"] == doc.text_bytes
    multibyte = [d for d in run.docs if d.text_bytes > len(d.query)]
    assert multibyte, "the fixture has a document with multi-byte characters"
    nats = math.fsum(lp for d in run.docs for lp in d.logprobs)
    nbytes = sum(d.text_bytes for d in run.docs)
    logged = results(checkpoint)["results"]["stdlib_ppl|0"]
    assert -nats / nbytes / math.log(2) == pytest.approx(logged["bits_per_byte"], rel=1e-12)
    assert math.exp(-nats / nbytes) == pytest.approx(logged["byte_perplexity"], rel=1e-12)


def test_results_file():
    info = results("tuned")
    assert info["model_name"] == "zen-ngram-tuned"
    assert set(info["results"]) == {"zen_mc|0", "stdlib_ppl|0"}
    assert info["versions"] == {"zen_mc|0": 0, "stdlib_ppl|0": 0}


def test_flat_layout_of_earlier_versions(tmp_path):
    """The flat columns lighteval < 0.11 wrote: predictions = [log-likelihood, is_greedy] per choice."""
    nested = read_lighteval_details(details("base", "zen_mc"))
    rows = [{"example": d.query, "choices": list(d.choices), "gold_index": list(d.gold),
             "predictions": [[lp, False] for lp in d.logprobs], "metrics": d.metrics} for d in nested.docs]
    path = tmp_path / "details_custom|zen_mc|0_2024-05-01T10-00-00.000000.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    flat = read_lighteval_details(path)
    assert (flat.task, flat.num_fewshot, flat.layout) == ("custom|zen_mc", 0, "flat")
    assert [d.logprobs for d in flat.docs] == [d.logprobs for d in nested.docs]
    assert [d.doc_id for d in flat.docs] == [str(i) for i in range(19)]  # no id column: row number


def _broken(tmp_path: Path, change) -> Path:
    """The base zen_mc details file with one sample changed, written back with pyarrow."""
    table = pq.read_table(details("base", "zen_mc"))
    rows = table.to_pylist()
    change(rows[2])
    path = tmp_path / "details_zen_mc|0_2026-01-01T00-00-00.000000.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda r: r["doc"].update(gold_index=None),
     "field 'gold_index', doc {id!r}: None is not the index of one of the"),
    (lambda r: r["doc"].update(gold_index=9), "field 'gold_index', doc {id!r}: 9 is not the index"),
    (lambda r: r["model_response"]["logprobs"].__setitem__(1, float("nan")),
     "field 'model_response.logprobs', doc {id!r}, item 1: nan is not a finite number"),
    (lambda r: r["model_response"]["logprobs"].__setitem__(0, 0.25),
     "field 'model_response.logprobs', doc {id!r}, item 0: 0.25 is positive"),
    (lambda r: r["model_response"].update(logprobs=[-1.0]),
     "field 'model_response.logprobs', doc {id!r}: 1 log-likelihoods for"),
])
def test_bad_input_names_file_field_and_doc(tmp_path, change, message):
    path = _broken(tmp_path, change)
    doc_id = pq.read_table(path).to_pylist()[2]["doc"]["id"]
    with pytest.raises(InputError, match=re.escape(f"{path}, " + message.format(id=doc_id))):
        read_lighteval_details(path)


def test_not_a_details_file(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(InputError, match=re.escape(f"{path}: not a lighteval details file")):
        read_lighteval_details(path)
    text = tmp_path / "details_t|0_2026-01-01T00-00-00.parquet"
    text.write_text("not parquet")
    with pytest.raises(InputError, match=re.escape(f"{text}: not a readable lighteval details parquet")):
        read_lighteval_details(text)
