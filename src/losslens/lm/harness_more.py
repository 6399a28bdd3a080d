"""lighteval details and vLLM (OpenAI-compatible) completions as :class:`~losslens.lm.harness.HarnessTask`.

The adapters of :mod:`losslens.lm.harness` for two more harnesses; the scoring is
:func:`losslens.lm.lm_eval.evaluate_task`, as for every harness.

- lighteval multiple choice: one question per ``doc.id`` (rows are not in dataset order); the
  choice values are ``model_response.logprobs``; ``acc_norm`` divides by ``len(choice)`` with the
  leading space counted, as lighteval's ``LogProbCharNorm`` does (lm-eval strips it). Each
  sample's ``acc``/``acc_norm`` and the results file's aggregates are checked. Perplexity tasks
  are documents scored by their summed log-probability over the query's words and UTF-8 bytes,
  as lighteval's ``word_perplexity``/``byte_perplexity``/``bits_per_byte`` are, and checked
  against them.
- vLLM completions: each line is one document (id: the line number, or ``--document``), its
  prompt tokens scored; the first token (log-prob ``null``: no context) is unscored and the
  generated tokens are left out; bytes are the UTF-8 bytes of each token's text.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .detect import LIGHTEVAL, VLLM, lighteval_details_in, vllm_logs_in
from .harness_task import ChoiceUnit, DocumentUnit, HarnessTask

#: lighteval's per-sample metrics recomputed here (its ``acc_norm`` counts the leading space).
_LIGHTEVAL_CHOICE = ("acc", "acc_norm")
_LIGHTEVAL_DOCUMENT = ("word_perplexity", "byte_perplexity", "bits_per_byte")


def tasks_from_lighteval(path) -> list[HarnessTask]:
    """Every ``details_<task>_<date>.parquet`` of a file or folder as a task.

    The aggregates come from the ``results_<date>.json`` beside each details file (same date, or
    the only one there). A task name repeated in one input is told apart by the file's folder
    under the input, as ``group``.
    """
    from ..readers.lighteval import read_lighteval_details

    path = Path(path)
    files = lighteval_details_in(path) if path.is_dir() else [path]
    root = path if path.is_dir() else path.parent
    details = [read_lighteval_details(f) for f in files]
    names = [d.task for d in details]
    tasks = []
    for file, d in zip(files, details):
        group = file.parent.relative_to(root).as_posix() if names.count(d.task) > 1 else ""
        tasks.append(_lighteval_task(d, _lighteval_results(file, d.date), group))
    return tasks


def _lighteval_results(details: Path, date: str | None) -> dict:
    """The results file of one details file (``{}`` when there is none or it is ambiguous)."""
    from ..readers.lighteval import read_lighteval_results

    dated = details.parent / f"results_{date}.json"
    found = [dated] if date and dated.is_file() else sorted(details.parent.glob("results_*.json"))
    return read_lighteval_results(found[0]) if len(found) == 1 else {}


def _lighteval_task(details, results: dict, group: str) -> HarnessTask:
    shots = f"|{details.num_fewshot}" if details.num_fewshot is not None else ""
    aggregates = results.get("results", {})
    logged = dict(aggregates.get(details.task + shots) or aggregates.get(details.task) or {})
    model = results.get("model_name")
    notes = [f"harness: {LIGHTEVAL} ({details.layout} details)" + (f", model {model}" if model else "")]
    if details.kind == "multiple_choice":
        units, several = [], 0
        for doc in details.docs:
            if len(doc.gold) != 1:
                several += 1
                continue
            units.append(ChoiceUnit(doc.doc_id, doc.gold[0], doc.logprobs,
                                    lengths=tuple(float(n) for n in doc.choice_chars),
                                    logged={k: float(doc.metrics[k]) for k in _LIGHTEVAL_CHOICE
                                            if isinstance(doc.metrics.get(k), (int, float))},
                                    sample=doc.doc_id))
        if several:
            notes.append(f"{several} sample(s) left out: several gold answers")
        notes.append("acc_norm divides each choice's log-likelihood by its length in characters, leading "
                     "space counted, as lighteval does (lm-eval does not count it)")
        checks = {k: k for k in _LIGHTEVAL_CHOICE if k in logged}
        return HarnessTask(LIGHTEVAL, None, details.task, group, details.path, "multiple_choice", tuple(units),
                           logged, tuple(notes), checks)
    units = tuple(DocumentUnit(doc.doc_id, nll=-sum(doc.logprobs), n_words=_words(doc), n_bytes=doc.text_bytes,
                               sample=doc.doc_id) for doc in details.docs)
    checks = {k: k for k in _LIGHTEVAL_DOCUMENT if k in logged}
    return HarnessTask(LIGHTEVAL, None, details.task, group, details.path, "loglikelihood_rolling", units,
                       logged, tuple(notes), checks)


def _words(doc) -> float:
    """The word count lighteval weighs ``word_perplexity`` by (its logged weight, else whitespace words)."""
    logged = doc.metrics.get("word_perplexity")
    if isinstance(logged, dict) and isinstance(logged.get("weights"), (int, float)):
        return float(logged["weights"])
    return float(len(doc.query.split()))


def tasks_from_vllm(path, document: str | None = None) -> list[HarnessTask]:
    """Every completions JSON-lines file of a file or folder as a token task named by its stem."""
    from ..readers.vllm import read_vllm_completions

    path = Path(path)
    files = vllm_logs_in(path) if path.is_dir() else [path]
    root = path if path.is_dir() else path.parent
    stems = [f.stem for f in files]
    tasks = []
    for file in files:
        docs = read_vllm_completions(file, document)
        group = file.parent.relative_to(root).as_posix() if stems.count(file.stem) > 1 else ""
        tasks.append(_vllm_task(file, docs, group, document))
    return tasks


def _vllm_task(file: Path, docs, group: str, document: str | None = None) -> HarnessTask:
    units, generated = [], 0
    for doc in docs:
        pieces = _token_pieces(doc)
        kept = [k for k, v in enumerate(doc.logprobs) if v is not None]  # the first token has no context
        if not kept:
            continue
        units.append(DocumentUnit(doc.doc_id, token_logprobs=tuple(doc.logprobs[k] for k in kept),
                                  token_bytes=tuple(pieces[k] for k in kept), sample=doc.doc_id))
        generated += doc.generated
    sources = sorted({doc.source for doc in docs})
    notes = [f"harness: {VLLM} completions ({', '.join(sources)}); document id: "
             + (f"field {document!r} (--document)" if document is not None else "the line number (--document FIELD "
                "names a field instead)"),
             "only the prompt is scored: its first token (no context, log-prob null) is unscored"
             + (f"; {generated} generated token(s) left out" if generated else "")]
    if len(units) < len(docs):
        notes.append(f"{len(docs) - len(units)} line(s) left out: a prompt of one token has nothing scored")
    if not units:
        raise InputError(f"{file}: no line has a scored prompt token; send prompts of two tokens or more")
    return HarnessTask(VLLM, None, file.stem, group, str(file), "tokens", tuple(units), {}, tuple(notes))


def _token_pieces(doc) -> list[bytes]:
    """Each prompt token's UTF-8 bytes, cut from the prompt text by the reader's byte counts."""
    text = doc.text.encode("utf-8")
    pieces, start = [], 0
    for n in doc.token_bytes:
        pieces.append(text[start:start + n])
        start += n
    return pieces
