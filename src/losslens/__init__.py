"""losslens: how good are these predicted probabilities, and should I worry?

Functions
---------
evaluate(y_true, y_prob, *, classes=None, sample_weight=None, logits=None, **options)
    Arrays in scikit-learn's argument order (DataFrame columns matched by name), or
    ``evaluate(path_or_dataframe, **options)``:
    a classifier's predictions, a token or sequence file, or an lm-evaluation-harness folder.
evaluate_runs(inputs, names=None, **options)
    Several runs with the same options.
compare(reference, candidate, **options)
    The change of log loss between two runs, with its 95% interval (lm-eval folders: per task).
run_job(inputs, **options)
    What the command line does: evaluations, comparisons, baseline and gates in one JobResult.

Every result shows a card in Jupyter and has ``to_html()`` and ``to_json()`` (the page and
the JSON the command line writes; see :mod:`losslens.notebook`).

>>> import losslens
>>> evaluation = losslens.evaluate([0, 1, 1], [[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
>>> round(evaluation.overall.log_loss, 6)
0.363548
>>> evaluation = losslens.evaluate("predictions.parquet")      # doctest: +SKIP
>>> evaluation.to_html("report.html")                            # doctest: +SKIP
>>> losslens.evaluate("tokens.parquet").runs[0].overall.bits_per_byte  # doctest: +SKIP
>>> result = losslens.run_job(["old.csv", "new.csv"], id="id")  # doctest: +SKIP
>>> result.comparisons[0].log_loss_delta, result.to_dict()       # doctest: +SKIP
"""

from __future__ import annotations

from . import dataclass_code

# Before any losslens dataclass is created: their functions' code comes from a cache (start-up).
dataclass_code.install()

# arrays imports numpy and pyarrow only inside its functions, so importing it here keeps
# `import losslens` (and so `losslens --help`) light while help(losslens) shows the functions.
from .arrays import compare, evaluate
from .errors import InputError, LosslensError, UsageError
from .options import Options
from .version import __version__

# The notebook front end fills the display methods of every result (see losslens.display):
# importing any losslens module runs this file first, so a result never lacks them.
from . import notebook  # noqa: E402,F401

__all__ = [
    "evaluate",
    "evaluate_runs",
    "compare",
    "run_job",
    "JobResult",
    "Evaluation",
    "Options",
    "InputError",
    "LosslensError",
    "UsageError",
    "__version__",
]


def evaluate_runs(inputs, names=None, **options):
    """Evaluate several runs (files, folders, globs or DataFrames) with the same options.

    Parameters
    ----------
    inputs : sequence
        Each item is one run, as :func:`evaluate` takes a file or DataFrame.
    names : sequence of str, optional
        One name per run; default the file stems.
    **options
        As for :func:`evaluate` (``split``, ``by``, ``id``, ``probs``, ...).

    Returns
    -------
    Evaluation
        With one run per input; :func:`losslens.comparison.compare_runs` compares them.
    """
    from .engine import evaluate_runs as run

    return run(inputs, names=names, **options)


def run_job(inputs, options=None, job=None, *, observers=(), **option_values):
    """Run what ``losslens metrics`` runs: evaluate, compare, check baseline and gates.

    See :func:`losslens.job.run_job` for the parameters; returns a :class:`losslens.job.JobResult`
    whose ``to_dict()`` is the JSON document the command writes.
    """
    from .job import run_job as run

    return run(inputs, options, job, observers=observers, **option_values)


def __getattr__(name):
    # The Evaluation class imports numpy; load it on first use.
    if name == "Evaluation":
        from .evaluation import Evaluation

        return Evaluation
    if name == "JobResult":
        from .job import JobResult

        return JobResult
    raise AttributeError(f"module 'losslens' has no attribute {name!r}")
