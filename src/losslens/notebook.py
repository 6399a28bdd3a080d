"""The notebook front end: ``_repr_html_``, ``to_html`` and ``to_json`` for every result.

Every result a notebook gets from :func:`losslens.evaluate`, :func:`losslens.evaluate_runs` or
:func:`losslens.compare` -- classifier runs, language-model runs, lm-evaluation-harness tasks and
comparisons -- inherits :class:`Notebook` and says one thing only: how it becomes the
command line's :class:`~losslens.job.JobResult` (``job_result``). From that one object the card
(:func:`losslens.html.card.render_card`), the report page (:func:`losslens.html.render_report`,
as ``losslens report`` writes it) and the JSON document (as ``losslens metrics --json`` writes
it) are made, so the notebook can never show what the command line would not.

:func:`language_model_job` and :func:`compare_finished` are what :func:`losslens.evaluate` and
:func:`losslens.compare` do with inputs that are not a classifier's: detect the kind as the
command line does and return its evaluation, or compare two finished evaluations of one kind.

Why a mixin whose methods import lazily: the result classes belong to the calculation stage and
the reporters sit above it (see docs/architecture.md). This module imports nothing from losslens
at module level, so a result class can inherit from it without loading the renderers (or
matplotlib and Jinja) until a notebook asks for HTML.
"""

from __future__ import annotations

#: What the report's footer says made a page written from a notebook.
COMMAND_LINE = "losslens.evaluate(...).to_html()"


class Notebook:
    """``_repr_html_``, ``to_html``, ``to_json`` and ``document`` from a result's ``job_result()``."""

    __slots__ = ()

    def job_result(self):
        """This result as the command line's :class:`~losslens.job.JobResult` (runs and comparisons)."""
        job = getattr(self, "_job", None)
        if job is None:
            from .errors import UsageError

            raise UsageError(f"this {type(self).__name__} was not made by losslens.compare(...): it has no runs "
                             "to report; report the job that made it")
        return job

    def document(self, generated_at=None) -> dict:
        """The JSON document ``losslens metrics --json`` writes for this result.

        ``generated_at`` (a datetime or ISO text), or ``SOURCE_DATE_EPOCH``, pins the time the
        document carries; without either it has none, as on the command line.
        """
        from .job import pinned_time

        return self.job_result().to_dict(pinned_time(generated_at))

    def to_json(self, path=None, *, generated_at=None) -> str | None:
        """The JSON document (as ``losslens metrics --json``): returned as text, or written to ``path``
        whole or not at all."""
        from .output import json_text, write_text

        text = json_text(self.document(generated_at))
        if path is None:
            return text
        write_text(path, text)
        return None

    def to_html(self, path=None, *, generated_at=None, command_line: str = COMMAND_LINE) -> str | None:
        """The self-contained HTML report (as ``losslens report``): returned, or written to ``path``.

        ``generated_at`` (a timezone-aware datetime or ISO text) pins the time shown; by
        default ``SOURCE_DATE_EPOCH`` if set, else now, as on the command line.
        ``command_line`` is what the footer says made the report.
        """
        from .html import render_report
        from .job import resolve_generated_at
        from .output import write_text

        page = render_report(self.job_result(), generated_at=resolve_generated_at(generated_at),
                             command_line=command_line)
        if path is None:
            return page
        write_text(path, page)
        return None

    def _repr_html_(self) -> str | None:
        """A compact card for Jupyter: the kind's headline figures, warnings and comparisons (< 100 kB)."""
        if getattr(self, "_job", None) is None and type(self).job_result is Notebook.job_result:
            return None  # a comparison made outside compare(): Jupyter falls back to its repr
        from .html.card import render_card

        return render_card(self.job_result())


def with_job(result, job):
    """``result`` (a comparison) carrying the job it came from, so that it can show its runs.

    Set as a plain attribute, not a dataclass field: equality, ``repr`` and ``to_dict`` stay
    those of the comparison alone.
    """
    object.__setattr__(result, "_job", job)
    return result


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
    from .engine import read_options
    from .lm.detect import input_kind
    from .lm.options import LM_COLUMN_OPTIONS
    from .options import Options

    read = read_options(Options(**{k: options[k] for k in ("encoding", "sep", "decimal", "format") if k in options}))
    if input_kind(inputs, forced=any(options.get(k) for k in LM_COLUMN_OPTIONS), read=read) == "classifier":
        return None
    from .job import run_job

    return run_job(inputs, names=list(names) if names else None, **options)
