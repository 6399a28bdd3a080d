"""The inspect-ai log reader against logs inspect-ai 0.3.285 wrote itself (tests/data/inspect_ai).

The fixtures' model is the character n-gram of tests/lm_ngram.py; the expected numbers come from
inspect's own logged metrics (accuracy is a count, so it must agree exactly) and from an
independent numpy computation of the same n-gram model. The ``.eval`` fixtures are
zstd-compressed (read through pyarrow's zstd codec); the archive structure is also tested through
a deflate archive (as older inspect versions wrote) built from the ``.json`` log.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from lm_ngram import CharNGram, held_out_documents, zen_of_python
from losslens.errors import InputError
from losslens.readers.inspect_ai import LETTER_NOTE, read_inspect_log

DATA = Path(__file__).parent / "data" / "inspect_ai"
CHECKPOINTS = ("base", "tuned")
MC_TASKS = ("zen_mc", "zen_mc_epochs")


def read_one(path: Path):
    [task] = read_inspect_log(path)
    return task


def models() -> dict[str, CharNGram]:
    """The fixtures' two checkpoints, fitted exactly as make_fixtures.py fits them."""
    zen = zen_of_python()
    vocabulary = zen + "".join(held_out_documents().values())
    return {"base": CharNGram(1).fit(zen, vocabulary), "tuned": CharNGram(4, alpha=0.5).fit(zen, vocabulary)}


def numpy_char_logprobs(model: CharNGram, text: str) -> np.ndarray:
    """Each character's log-probability given the ones before it, summed/logged with numpy."""
    padded = "\x02" * model.order + text
    return np.log(np.array([model.prob(padded[: model.order + i], c) for i, c in enumerate(text)]))


def numpy_letter_logprobs(model: CharNGram, question: str, choices) -> np.ndarray:
    """Log-softmax over choices of each choice's log-likelihood (leading space) after the question."""
    ll = np.array([numpy_char_logprobs(model, question + " " + c)[len(question):].sum() for c in choices])
    return ll - np.logaddexp.reduce(ll)


def deflate_copy(json_log: Path, target: Path, edit=None, finished=True, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A deflate .eval archive (the layout older inspect versions wrote) from a .json log.

    ``finished=False`` leaves out ``header.json``, as in an archive inspect is still writing.
    """
    data = json.loads(json_log.read_text())
    if edit:
        edit(data)
    header = {k: v for k, v in data.items() if k not in ("samples", "reductions")}
    with zipfile.ZipFile(target, "w", compression=compression) as archive:
        archive.writestr("_journal/start.json", json.dumps({k: header[k] for k in ("version", "eval", "plan")}))
        for sample in data["samples"]:
            archive.writestr(f"samples/{sample['id']}_epoch_{sample['epoch']}.json", json.dumps(sample))
        if finished:
            archive.writestr("header.json", json.dumps(header))
    return target


# -- reading both formats ------------------------------------------------------------------------

@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_json_log_mc_task(checkpoint):
    task = read_one(DATA / checkpoint / "zen_mc.json")
    assert (task.task, task.model, task.inspect_version) == ("zen_mc", f"ngram/zen-ngram-{checkpoint}", "0.3.285")
    assert (task.status, task.epochs, len(task.samples)) == ("success", 1, 21)
    assert task.notes == (LETTER_NOTE,)
    first = task.samples[0]
    assert (first.id, first.epoch, first.input) == ("zen-00", 1, "Beautiful is better than")
    assert (first.choices, first.target, first.target_text) == (("Dutch.", "ugly."), 1, "B")
    assert first.metadata == {"subject": "zen", "line": 1}
    assert first.score in ("C", "I") and first.scores == {"choice": first.score}
    assert [s.id for s in task.samples][-2:] == ["stdlib-19", "tie-00"]  # dataset order
    assert {s.metadata["subject"] for s in task.samples} == {"zen", "stdlib", "tie"}
    for s in task.samples:
        assert len(s.choice_logprobs) == len(s.choices) and None not in s.choice_logprobs
        # the letter log-probs are a log-softmax over the choices: they sum to 1 in probability
        assert math.fsum(math.exp(v) for v in s.choice_logprobs) == pytest.approx(1, rel=1e-12)
        assert s.token_logprobs is None


def test_epochs_are_one_record_per_sample_and_epoch():
    task = read_one(DATA / "base" / "zen_mc_epochs.json")
    assert (task.epochs, task.epochs_reducer, len(task.samples)) == (2, ("mean",), 16)
    assert [(s.id, s.epoch) for s in task.samples[:4]] == [("zen-00", 1), ("zen-00", 2), ("zen-01", 1), ("zen-01", 2)]
    assert any("2 epochs" in note and "mean" in note for note in task.notes)


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
@pytest.mark.parametrize("name", ["zen_mc", "zen_mc_epochs", "stdlib_ppl"])
def test_eval_archive_gives_the_same_numbers_as_json(checkpoint, name):
    archive, single = read_one(DATA / checkpoint / f"{name}.eval"), read_one(DATA / checkpoint / f"{name}.json")
    # Two runs of one deterministic model, serialised by inspect's one JSON writer: equal floats.
    assert archive.samples == single.samples
    assert archive.logged == single.logged and archive.logged
    assert (archive.task, archive.model, archive.epochs, archive.notes) == (single.task, single.model,
                                                                           single.epochs, single.notes)


def test_chunked_layout_equals_the_monolith_archive():
    chunked, monolith = read_one(DATA / "tuned" / "zen_mc_chunked.eval"), read_one(DATA / "tuned" / "zen_mc.eval")
    assert chunked.samples == monolith.samples and chunked.samples[0].metadata == {"subject": "zen", "line": 1}
    assert chunked.logged == monolith.logged


def test_deflate_archive_reads_like_the_json_log(tmp_path):
    single = read_one(DATA / "tuned" / "zen_mc_epochs.json")
    archive = read_one(deflate_copy(DATA / "tuned" / "zen_mc_epochs.json", tmp_path / "old.eval"))
    assert archive.samples == single.samples and archive.logged == single.logged


def test_unfinished_archive_has_samples_but_no_results(tmp_path):
    task = read_one(deflate_copy(DATA / "base" / "zen_mc.json", tmp_path / "running.eval", finished=False))
    assert (task.task, task.status, task.logged, len(task.samples)) == ("zen_mc", None, {}, 21)


def test_unknown_compression_method(tmp_path):
    path = deflate_copy(DATA / "base" / "zen_mc.json", tmp_path / "b.eval", compression=zipfile.ZIP_BZIP2)
    raises_one_line(path, "member '_journal/start.json': zip compression method 12 is not supported")


def test_folder_gives_one_task_per_log_found_recursively(tmp_path):
    for name in ("zen_mc.json", "stdlib_ppl.json"):
        (tmp_path / name).write_bytes((DATA / "base" / name).read_bytes())
    (tmp_path / "older").mkdir()
    deflate_copy(DATA / "tuned" / "zen_mc_epochs.json", tmp_path / "older" / "epochs.eval")
    (tmp_path / "notes.txt").write_text("not a log")
    tasks = read_inspect_log(tmp_path)
    assert [(Path(t.source).name, t.task) for t in tasks] == [
        ("epochs.eval", "zen_mc_epochs"), ("stdlib_ppl.json", "stdlib_ppl"), ("zen_mc.json", "zen_mc")]


# -- the numbers against inspect's aggregates and against numpy -----------------------------------

def mc_files():
    suffixes = ["json", "eval"]
    return [DATA / c / f"{t}.{s}" for c in CHECKPOINTS for t in MC_TASKS for s in suffixes]


@pytest.mark.parametrize("path", mc_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_argmax_accuracy_equals_inspects_logged_accuracy(path):
    task = read_one(path)
    by_id = defaultdict(list)
    for s in task.samples:
        hit = int(np.argmax(s.choice_logprobs)) == s.target  # numpy's argmax: ties → first index
        assert ("C" if hit else "I") == s.score, s.id  # inspect's own per-sample verdict
        by_id[s.id].append(hit)
    # inspect reduces each sample's epochs by their mean, then averages: a count over a count
    reduced = [sum(hits) / len(hits) for hits in by_id.values()]
    assert task.logged["choice/accuracy"] == sum(reduced) / len(reduced)
    assert 0 < task.logged["choice/accuracy"] < 1  # both hits and misses: the check can fail


def test_identical_choice_texts_tie_to_the_first_index():
    tie = next(s for s in read_one(DATA / "tuned" / "zen_mc.json").samples if s.id == "tie-00")
    assert tie.choices[0] == tie.choices[1] and tie.choice_logprobs[0] == tie.choice_logprobs[1]
    assert (tie.target, tie.answer, tie.score) == (1, "A", "I")


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_letter_logprobs_match_numpy_from_the_ngram_model(checkpoint):
    model = models()[checkpoint]
    samples = read_one(DATA / checkpoint / "zen_mc.json").samples
    for s in (samples[0], samples[5], samples[16], samples[-1]):
        expected = numpy_letter_logprobs(model, s.input, s.choices)
        # numpy's log/logaddexp against the fixture's math.log path: equal to rounding, not bitwise
        assert s.choice_logprobs == pytest.approx(expected.tolist(), rel=1e-9)


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_prompt_token_logprobs_match_numpy_and_inspects_perplexity(checkpoint):
    task = read_one(DATA / checkpoint / "stdlib_ppl.json")
    assert task.notes == ("token log-probs are the prompt tokens' prompt_logprobs",)
    model = models()[checkpoint]
    for s in task.samples:
        assert b"".join(s.token_bytes) == s.input.encode("utf-8") and s.choices is None
        assert s.token_logprobs == pytest.approx(numpy_char_logprobs(model, s.input).tolist(), rel=1e-9)
        # inspect's perplexity() score is the per-token negative log-likelihood
        assert s.score == pytest.approx(-math.fsum(s.token_logprobs) / len(s.token_logprobs), rel=1e-12)
    total = math.fsum(math.fsum(s.token_logprobs) for s in task.samples)
    count = sum(len(s.token_logprobs) for s in task.samples)
    assert task.logged["perplexity/perplexity_per_token"] == pytest.approx(math.exp(-total / count), rel=1e-12)
    per_seq = np.mean([-np.sum(s.token_logprobs) / len(s.token_logprobs) for s in task.samples])
    assert task.logged["perplexity/perplexity_per_seq"] == pytest.approx(math.exp(per_seq), rel=1e-12)


def test_import_does_not_load_pandas():
    src = Path(__import__("losslens").__file__).parents[1]
    code = ("import sys, losslens.readers.inspect_ai, losslens.readers.helm; "
            "print('pandas' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(src)}).stdout
    assert out.split() == ["False", "False"]


# -- bad inputs: one line naming the file, the field and the sample -------------------------------

def edited_json(tmp_path: Path, source: Path, edit) -> Path:
    data = json.loads(source.read_text())
    edit(data)
    target = tmp_path / source.name
    target.write_text(json.dumps(data))  # NaN is written as the NaN literal, as inspect's writer does
    return target


def sample(data, sid, epoch=1):
    return next(s for s in data["samples"] if (s["id"], s["epoch"]) == (sid, epoch))


def raises_one_line(path: Path, *fragments: str):
    with pytest.raises(InputError) as info:
        read_inspect_log(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_truncated_archive(tmp_path):
    whole = (DATA / "base" / "zen_mc.eval").read_bytes()
    (tmp_path / "cut.eval").write_bytes(whole[: len(whole) // 2])
    raises_one_line(tmp_path / "cut.eval", "not a complete zip archive", "truncated")


def test_damaged_zstd_member(tmp_path):
    whole = bytearray((DATA / "base" / "zen_mc.eval").read_bytes())
    with zipfile.ZipFile(DATA / "base" / "zen_mc.eval") as archive:
        info = archive.getinfo("samples/zen-03_epoch_1.json")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    whole[middle] ^= 0xFF
    (tmp_path / "bad.eval").write_bytes(bytes(whole))
    raises_one_line(tmp_path / "bad.eval", "member 'samples/zen-03_epoch_1.json'", "damaged")


def test_zstd_members_with_several_frames(tmp_path):
    # inspect writes large members as several zstd frames; every frame must be read.
    import pyarrow as pa
    import zlib
    from losslens.readers.ziparchive import _zstd

    parts = [b'{"a": 1, ' * 50, b'"b": 2}' * 70]
    data = b"".join(pa.compress(p, codec="zstd", asbytes=True) for p in parts)
    assert _zstd(tmp_path / "x.eval", "m", data, sum(map(len, parts))) == b"".join(parts)
    assert zlib.crc32(b"".join(parts))  # (the caller checks size and CRC-32 against the directory)


def test_truncated_json_log(tmp_path):
    text = (DATA / "base" / "zen_mc.json").read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    raises_one_line(tmp_path / "cut.json", "line 1: not valid JSON", "truncated")


@pytest.mark.parametrize("value", ["", None, []])
def test_sample_without_target(tmp_path, value):
    path = edited_json(tmp_path, DATA / "base" / "zen_mc.json",
                       lambda d: sample(d, "zen-03").__setitem__("target", value))
    raises_one_line(path, "sample 'zen-03' epoch 1, field 'target': missing")


def test_target_letter_outside_the_choices(tmp_path):
    path = edited_json(tmp_path, DATA / "base" / "zen_mc.json",
                       lambda d: sample(d, "zen-00").__setitem__("target", "E"))
    raises_one_line(path, "sample 'zen-00' epoch 1, field 'target': 'E' is not one of the letters A–B")


def answer_top(data, sid, k):
    return sample(data, sid)["output"]["choices"][0]["logprobs"]["content"][3]["top_logprobs"][k]


def test_positive_letter_logprob(tmp_path):
    path = edited_json(tmp_path, DATA / "base" / "zen_mc.json",
                       lambda d: answer_top(d, "stdlib-15", 1).__setitem__("logprob", 0.5))
    raises_one_line(path, "sample 'stdlib-15' epoch 1",
                    "field 'output.choices[0].logprobs.content[3].top_logprobs[1].logprob'",
                    "log-probability 0.5 is positive")


def test_nan_prompt_logprob(tmp_path):
    def edit(data):
        sample(data, "csv")["output"]["choices"][0]["prompt_logprobs"]["content"][5]["logprob"] = math.nan
    path = edited_json(tmp_path, DATA / "tuned" / "stdlib_ppl.json", edit)
    raises_one_line(path, "sample 'csv' epoch 1", "prompt_logprobs.content[5].logprob'", "nan is not a finite")


def test_bad_sample_inside_an_archive(tmp_path):
    path = deflate_copy(DATA / "tuned" / "zen_mc_epochs.json", tmp_path / "bad.eval",
                        lambda d: answer_top(d, "zen-02", 0).__setitem__("logprob", math.inf))
    raises_one_line(path, "sample 'zen-02' epoch 1", "top_logprobs[0].logprob'", "inf is not a finite")


def test_not_an_inspect_log(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"results": {}}))
    raises_one_line(tmp_path / "other.json", "field 'eval': missing", "not an inspect-ai log")
    (tmp_path / "empty").mkdir()
    raises_one_line(tmp_path / "empty", "folder holds no inspect-ai log")


# -- what real model APIs return beyond the fixtures ---------------------------------------------

def test_tokens_spelling_the_same_letter_add_in_probability(tmp_path):
    def edit(data):
        tops = sample(data, "zen-00")["output"]["choices"][0]["logprobs"]["content"][3]["top_logprobs"]
        tops[:] = [{"token": "B", "logprob": math.log(0.5)}, {"token": " B", "logprob": math.log(0.25)},
                   {"token": "A", "logprob": math.log(0.125)}, {"token": "Z", "logprob": math.log(0.125)}]
    first = read_one(edited_json(tmp_path, DATA / "base" / "zen_mc.json", edit)).samples[0]
    assert first.choice_logprobs == pytest.approx([math.log(0.125), math.log(0.75)], rel=1e-15)


def test_letters_missing_from_top_logprobs_and_no_logprobs(tmp_path):
    def edit(data):
        del sample(data, "zen-01")["output"]["choices"][0]["logprobs"]["content"][3]["top_logprobs"][1:]
        sample(data, "zen-02")["output"]["choices"][0]["logprobs"] = None
    task = read_one(edited_json(tmp_path, DATA / "base" / "zen_mc.json", edit))
    by_id = {s.id: s for s in task.samples}
    assert by_id["zen-01"].choice_logprobs.count(None) == len(by_id["zen-01"].choices) - 1
    assert by_id["zen-02"].choice_logprobs is None
    assert any("no answer-letter log-probs" in n for n in task.notes)
    assert any("missing from top_logprobs" in n for n in task.notes)
