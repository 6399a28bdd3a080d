"""One task of any evaluation harness as neutral data, and the adapters that make it.

:func:`losslens.lm.lm_eval.evaluate_task` scores a :class:`HarnessTask` whatever wrote it:
lm-evaluation-harness samples (:func:`losslens.lm.lm_eval.harness_task_of`), inspect-ai logs
(:func:`tasks_from_inspect`), HELM run folders (:func:`tasks_from_helm`), lighteval details and
vLLM completions (:mod:`losslens.lm.harness_more`). An adapter only
says what each unit is (a question's choice log-likelihoods and gold, or a document's tokens);
the scoring exists once.

How each harness maps here:

- inspect-ai multiple choice: the choice values are the answer letter's ``top_logprobs`` (letter
  log-probabilities, see :data:`losslens.readers.inspect_ai.LETTER_NOTE`); ``acc`` is checked
  against each sample's ``C``/``I`` score and the log's ``accuracy``; there is no ``acc_norm``
  (inspect defines none). Epochs > 1: each epoch is one question (id ``<id>#<epoch>``) for the
  classifier metrics, and the checkpoint comparison pairs each *sample* by its mean loss over
  its epochs, so repeated measurements of one sample do not count as independent pairs.
  Perplexity-style samples (``prompt_logprobs``) are token tasks.
- HELM separate-references multiple choice: a reference's log-likelihood is the sum of its last
  tokens (as the reader computes); ``acc_norm`` divides by that token count, as HELM's
  ``predicted_index`` does, and is checked against it per instance. HELM's ``exact_match`` stays
  under ``logged`` unchecked: it splits ties (0.5 for two tied arg-maxes), so it is not arg-max
  accuracy. Language modelling runs are token tasks, checked against HELM's ``perplexity`` and
  ``bits_per_byte``. Train trials > 1 are combined as epochs are.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError, UsageError
from .detect import HELM, INSPECT, LIGHTEVAL, LM_EVAL, VLLM, inspect_logs_in  # noqa: F401  (the names are re-exported)
from .harness_more import tasks_from_lighteval, tasks_from_vllm
from .harness_task import ChoiceUnit, DocumentUnit, HarnessTask, LikelihoodUnit  # noqa: F401  (re-exported)


# -- inspect-ai ---------------------------------------------------------------------------------
def tasks_from_inspect(path) -> list[HarnessTask]:
    """Every task of an inspect-ai log (``.eval``, ``.json``) or a folder of logs.

    A task name repeated in one input (several logs of one task) is told apart by the log's path
    under the input, as ``group``. Samples with nothing to score are left out with a note.
    """
    from ..readers.inspect_ai import read_inspect_log

    # A folder's other JSON files (HELM's, lm-eval's results, anything) are not inspect logs.
    files = inspect_logs_in(Path(path)) if Path(path).is_dir() else [Path(path)]
    logs = [log for file in files for log in read_inspect_log(file)]
    root = Path(path) if Path(path).is_dir() else Path(path).parent
    repeated = _repeated([log.task for log in logs])
    return [_inspect_task(log, Path(log.source).relative_to(root).as_posix() if log.task in repeated else "")
            for log in logs]


def _repeated(names) -> set:
    seen, twice = set(), set()
    for name in names:
        (twice if name in seen else seen).add(name)
    return twice


def _inspect_task(log, group: str) -> HarnessTask:
    notes = [f"harness: {INSPECT} {log.inspect_version or ''}".rstrip() + f", model {log.model}", *log.notes]
    several = log.epochs > 1
    choice = [s for s in log.samples if s.choices is not None]
    if choice:
        units, skipped = [], 0
        for s in choice:
            if s.choice_logprobs is None or None in s.choice_logprobs or s.target is None:
                skipped += 1
                continue
            logged = {"acc": 1.0 if s.score == "C" else 0.0} if s.score in ("C", "I") else {}
            units.append(ChoiceUnit(f"{s.id}#{s.epoch}" if several else s.id, s.target, s.choice_logprobs,
                                    logged=logged, sample=s.id, metadata={"metadata": s.metadata}))
        if skipped:
            notes.append(f"{skipped} sample(s) left out: no log-prob for every choice letter, or several "
                         "correct letters")
        if several:
            notes.append(f"epochs: each epoch is one question (id <id>#<epoch>); the comparison pairs each "
                         f"sample by its mean loss over its {log.epochs} epochs")
        accuracy = next((k for k in log.logged if k.endswith("/accuracy")), None)
        return HarnessTask(INSPECT, log.inspect_version, log.task, group, log.source, "multiple_choice",
                           tuple(units), log.logged, tuple(notes), {"acc": accuracy} if accuracy else {})
    scored = [s for s in log.samples if s.token_logprobs is not None]
    if not scored:
        return HarnessTask(INSPECT, log.inspect_version, log.task, group, log.source, "generate_until", (),
                           log.logged, tuple(notes))
    units = tuple(DocumentUnit(f"{s.id}#{s.epoch}" if several else s.id, token_logprobs=s.token_logprobs,
                               token_bytes=s.token_bytes, sample=s.id) for s in scored)
    checks = {metric: key for metric, key in (("perplexity", "perplexity/perplexity_per_token"),)
              if key in log.logged}
    return HarnessTask(INSPECT, log.inspect_version, log.task, group, log.source, "tokens", units,
                       log.logged, tuple(notes), checks)


# -- HELM ---------------------------------------------------------------------------------------
MODEL_ARGUMENT = re.compile(r"(?:^|[:,])model=(?P<model>[^,]*)")


def helm_model_of(run: str) -> str | None:
    """The ``model=`` argument of a HELM run name (``zen_mc:model=zen_ngram-base`` → ``zen_ngram-base``)."""
    match = MODEL_ARGUMENT.search(run)
    return match["model"] if match else None


def helm_task_of(run: str) -> str:
    """A HELM run name without its ``model=`` argument: the same task for every model."""
    scenario, _, arguments = run.partition(":")
    kept = [a for a in arguments.split(",") if a and not a.startswith("model=")]
    return scenario + (":" + ",".join(kept) if kept else "")


def tasks_from_helm(path) -> list[HarnessTask]:
    """Every run under a HELM run folder (or a folder of them) as a task named without its model.

    When the input holds runs of several models, each run's ``group`` is its model.
    """
    from ..readers.helm import read_helm_runs

    runs = read_helm_runs(path)
    several = len({helm_model_of(r.run) or r.model for r in runs}) > 1
    return [_helm_task(r, (helm_model_of(r.run) or r.model) if several else "") for r in runs]


def _helm_task(run, group: str) -> HarnessTask:
    from ..readers.helm import LANGUAGE_MODELING, SEPARATE

    notes = [f"harness: {HELM}, model {run.model}, adapter {run.adapter_method}", *run.notes]
    trials = len({i.train_trial_index for i in run.instances}) > 1

    def unit_id(instance):
        return f"{instance.id}#{instance.train_trial_index}" if trials else instance.id

    if run.adapter_method in SEPARATE:
        units = []
        for i in run.instances:
            if i.target is None:
                continue
            logged = {}
            if i.stat_counts.get("predicted_index"):
                logged["acc_norm"] = float(i.stats["predicted_index"] / i.stat_counts["predicted_index"] == i.target)
            units.append(ChoiceUnit(unit_id(i), i.target, i.reference_logprobs,
                                    lengths=tuple(float(n) for n in i.reference_tokens), logged=logged,
                                    sample=i.id,
                                    metadata={"split": i.split, "sub_split": i.sub_split}))
        if len(units) < len(run.instances):
            notes.append(f"{len(run.instances) - len(units)} instance(s) left out: several references tagged correct")
        notes.append("acc_norm divides each reference's log-likelihood by its token count, as HELM's "
                     "predicted_index does; HELM's exact_match (logged) splits ties, so it is not arg-max accuracy")
        return HarnessTask(HELM, None, helm_task_of(run.run), group, run.source, "multiple_choice",
                           tuple(units), run.logged, tuple(notes))
    if run.adapter_method == LANGUAGE_MODELING:
        units = tuple(DocumentUnit(unit_id(i), token_logprobs=i.token_logprobs, token_bytes=i.token_bytes,
                                   sample=i.id) for i in run.instances)
        checks = {metric: key for metric in ("perplexity", "bits_per_byte")
                  for key in [_split_key(run.logged, metric)] if key}
        return HarnessTask(HELM, None, helm_task_of(run.run), group, run.source, "tokens", units,
                           run.logged, tuple(notes), checks)
    return HarnessTask(HELM, None, helm_task_of(run.run), group, run.source, "generate_until", (),
                       run.logged, tuple(notes))


def _split_key(logged: dict, metric: str) -> str | None:
    """The one ``<split>/<metric>`` key of HELM's stats (None when absent or in several splits)."""
    keys = [k for k in logged if k.rpartition("/")[2] == metric and logged[k] is not None]
    return keys[0] if len(keys) == 1 else None


def harness_tasks(spec, harness: str, document: str | None = None) -> list[HarnessTask]:
    """The tasks of one input of a harness other than lm-eval (see :func:`losslens.lm.detect.harnesses_in`).

    ``document`` (``--document``) names the field of a vLLM completions line that is its
    document id; the other harnesses' logs carry their own sample ids, so it is refused there.
    """
    if document is not None and harness != VLLM:
        raise UsageError(f"--document {document!r} names the document-id field of vLLM completions lines; "
                         f"{harness} logs carry their own sample ids: drop --document")
    if harness == INSPECT:
        return tasks_from_inspect(spec)
    if harness == HELM:
        return tasks_from_helm(spec)
    if harness in (LIGHTEVAL, VLLM):
        return tasks_from_lighteval(spec) if harness == LIGHTEVAL else tasks_from_vllm(spec, document)
    raise InputError(f"{spec}: not a log of a known harness")
