"""``_repr_html_``, ``to_html``, ``to_json`` of every result, without the results importing a reporter.

Every result a notebook gets -- classifier, language-model and lm-evaluation-harness
evaluations, and comparisons -- inherits :class:`Notebook`. The result types belong to the
calculation stage; the card, the report page and the JSON document are made by the job and the
reporters, which sit above them (see docs/architecture.md). So this mixin holds no knowledge
of how a result is shown: each method hands the result to the *front end* that
:mod:`losslens.notebook` installs here when it is imported. ``losslens/__init__.py`` imports
it, and Python runs a package's ``__init__`` before any of its modules, so every result made
by losslens finds its front end installed.

This module imports nothing from losslens: it is the bottom of the map, like ``errors``.
"""

from __future__ import annotations

#: What the report's footer says made a page written from a notebook.
COMMAND_LINE = "losslens.evaluate(...).to_html()"

#: The front end's functions by name, filled by :func:`install` (losslens.notebook does it).
_FRONT_END: dict = {}


def install(**functions) -> None:
    """Install the front end: ``job_result``, ``document``, ``to_json``, ``to_html`` and ``card``."""
    _FRONT_END.update(functions)


def _front_end(name: str):
    try:
        return _FRONT_END[name]
    except KeyError:
        # Only reachable if losslens/__init__.py failed half-way: say so rather than AttributeError.
        raise RuntimeError("the losslens notebook front end is not installed: `import losslens` first") from None


class Notebook:
    """``_repr_html_``, ``to_html``, ``to_json``, ``document`` and ``job_result`` of a result.

    What each does is :mod:`losslens.notebook`'s: the result as the command line's
    :class:`~losslens.job.JobResult`, then the card, the ``losslens report`` page or the
    ``losslens metrics --json`` document of that one object, so the notebook can never show
    what the command line would not.
    """

    __slots__ = ()

    def job_result(self):
        """This result as the command line's :class:`~losslens.job.JobResult` (runs and comparisons)."""
        return _front_end("job_result")(self)

    def document(self, generated_at=None) -> dict:
        """The JSON document ``losslens metrics --json`` writes for this result.

        ``generated_at`` (a datetime or ISO text), or ``SOURCE_DATE_EPOCH``, pins the time the
        document carries; without either it has none, as on the command line.
        """
        return _front_end("document")(self, generated_at)

    def to_json(self, path=None, *, generated_at=None) -> str | None:
        """The JSON document (as ``losslens metrics --json``): returned as text, or written to ``path``
        whole or not at all."""
        return _front_end("to_json")(self, path, generated_at=generated_at)

    def to_html(self, path=None, *, generated_at=None, command_line: str = COMMAND_LINE) -> str | None:
        """The self-contained HTML report (as ``losslens report``): returned, or written to ``path``.

        ``generated_at`` (a timezone-aware datetime or ISO text) pins the time shown; by
        default ``SOURCE_DATE_EPOCH`` if set, else now, as on the command line.
        ``command_line`` is what the footer says made the report.
        """
        return _front_end("to_html")(self, path, generated_at=generated_at, command_line=command_line)

    def _repr_html_(self) -> str | None:
        """A compact card for Jupyter: the kind's headline figures, warnings and comparisons (< 100 kB)."""
        return _front_end("card")(self)


def with_job(result, job):
    """``result`` (a comparison) carrying the job it came from, so that it can show its runs.

    Set as a plain attribute, not a dataclass field: equality, ``repr`` and ``to_dict`` stay
    those of the comparison alone.
    """
    object.__setattr__(result, "_job", job)
    return result
