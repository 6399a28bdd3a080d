"""The notebook front end: ``_repr_html_``, ``to_html`` and ``to_json`` for every result.

Every result a notebook gets from :func:`losslens.evaluate`, :func:`losslens.evaluate_runs` or
:func:`losslens.compare` -- classifier runs, language-model runs, lm-evaluation-harness tasks and
comparisons -- inherits :class:`losslens.display.Notebook`, whose methods call the functions
this module installs there. Each result becomes the command line's
:class:`~losslens.job.JobResult` (:func:`job_result`); from that one object the card
(:func:`losslens.html.card.render_card`), the report page (:func:`losslens.html.render_report`,
as ``losslens report`` writes it) and the JSON document (as ``losslens metrics --json`` writes
it) are made, so the notebook can never show what the command line would not.

:func:`language_model_job` and :func:`compare_finished` are what :func:`losslens.evaluate` and
:func:`losslens.compare` do with inputs that are not a classifier's: detect the kind as the
command line does and return its evaluation, or compare two finished evaluations of one kind.

Why a front end installed into a mixin: the result classes belong to the calculation stage
and the job and reporters sit above them (see docs/architecture.md). The results import only
:mod:`losslens.display`, the bottom of the map; this module, at the top beside the Python API,
imports the job and the reporters, and ``losslens/__init__.py`` imports it, so every result
finds its methods filled. Its imports of the job and reporters stay inside the functions, so
that ``import losslens`` (and ``losslens --help``) loads neither Jinja nor numpy.
"""

from __future__ import annotations

from .display import COMMAND_LINE, Notebook, install, with_job

__all__ = ["COMMAND_LINE", "Notebook", "with_job", "job_result", "document", "to_json", "to_html", "card",
           "compare_finished", "evaluate_data", "language_model_job"]


def job_result(result):
    """``result`` as the command line's :class:`~losslens.job.JobResult` (runs and comparisons).

    A classifier evaluation is each run compared with the first; a language-model or lm-eval
    evaluation carries its comparisons; a comparison carries the job :func:`losslens.compare`
    made it in (:func:`with_job`).
    """
    from .errors import UsageError
    from .evaluation import Evaluation
    from .job import JobResult

    job = getattr(result, "_job", None)
    if job is not None:
        return job
    if isinstance(result, Evaluation):
        from .comparison import compare_runs

        return JobResult(result, compare_runs(result, None))
    if hasattr(result, "runs") and hasattr(result, "comparisons"):
        return JobResult(result, tuple(result.comparisons))
    raise UsageError(f"this {type(result).__name__} was not made by losslens.compare(...): it has no runs "
                     "to report; report the job that made it")


def document(result, generated_at=None) -> dict:
    """The JSON document ``losslens metrics --json`` writes for ``result``."""
    from .job import pinned_time

    return job_result(result).to_dict(pinned_time(generated_at))


def to_json(result, path=None, *, generated_at=None) -> str | None:
    """The JSON document of ``result``: returned as text, or written to ``path`` whole or not at all."""
    from .output import json_text, write_text

    text = json_text(document(result, generated_at))
    if path is None:
        return text
    write_text(path, text)
    return None


def to_html(result, path=None, *, generated_at=None, command_line: str = COMMAND_LINE) -> str | None:
    """The self-contained HTML report of ``result`` (as ``losslens report``): returned, or written to ``path``."""
    from .html.render import render_report
    from .job import resolve_generated_at
    from .output import write_text

    page = render_report(job_result(result), generated_at=resolve_generated_at(generated_at),
                         command_line=command_line)
    if path is None:
        return page
    write_text(path, page)
    return None


def card(result) -> str | None:
    """The notebook card of ``result``; None for a comparison made outside :func:`losslens.compare`."""
    if getattr(result, "_job", None) is None and not hasattr(result, "runs"):
        return None  # a comparison made outside compare(): Jupyter falls back to its repr
    from .html.card import render_card

    return render_card(job_result(result))


install(job_result=job_result, document=document, to_json=to_json, to_html=to_html, card=card)


# --------------------------------------------------------------------------- every kind of input


def compare_finished(reference, candidate, n_worst: int):
    """:func:`compare` of two finished evaluations of the same kind (runs renamed apart if need be)."""
    from dataclasses import replace

    from .comparison import compare_runs
    from .errors import UsageError
    from .evaluation import Evaluation
    from .job import JobResult
    from .lm.compare import compare_lm_runs
    from .lm.evaluation import LMEvaluation

    runs = (reference.runs[0], candidate.runs[0])
    if runs[0].name == runs[1].name:
        runs = (runs[0], replace(runs[1], name=runs[1].name + "-2"))
    if isinstance(reference, Evaluation) and isinstance(candidate, Evaluation):
        evaluation = Evaluation(runs=runs)
        comparisons = compare_runs(evaluation, None, n_worst)
    elif isinstance(reference, LMEvaluation) and isinstance(candidate, LMEvaluation):
        comparisons = compare_lm_runs(runs)
        evaluation = LMEvaluation(runs, comparisons)
    else:
        raise UsageError("compare two evaluations of the same kind; lm-eval outputs compare as folders: "
                         "losslens.compare('out/base', 'out/tuned')")
    return with_job(comparisons[0], JobResult(evaluation, tuple(comparisons)))


def evaluate_data(data, name, options: dict):
    """:func:`losslens.evaluate` of a file, folder or table: of the kind the command line would detect."""
    from .engine import evaluate as evaluate_table
    from .pipes import pipes_read_once

    # Detecting the kind reads a pipe's header: the evaluation must take the same copy, or the
    # second open of a FIFO whose writer has gone waits forever.
    with pipes_read_once():
        job = language_model_job([data], [name] if name else None, options)
        return job.evaluation if job is not None else evaluate_table(data, name=name, **options)


def language_model_job(inputs: list, names, options: dict):
    """What ``losslens metrics`` computes for token, sequence or lm-eval ``inputs``; None for a classifier's.

    :func:`losslens.evaluate` and :func:`losslens.compare` return its evaluation or comparison.

    The kind is detected as the command line detects it (:func:`losslens.lm.detect.input_kind`).
    """
    from .plans import read_options
    from .lm.detect import input_kind
    from .options import LM_COLUMN_OPTIONS
    from .options import Options

    read = read_options(Options(**{k: options[k] for k in ("encoding", "sep", "decimal", "format") if k in options}))
    if input_kind(inputs, forced=any(options.get(k) for k in LM_COLUMN_OPTIONS), read=read) == "classifier":
        return None
    from .job import run_job

    return run_job(inputs, names=list(names) if names else None, **options)
