"""losslens: how good are these predicted probabilities, and should I worry?

>>> import losslens
>>> evaluation = losslens.evaluate("predictions.parquet")      # doctest: +SKIP
>>> evaluation.overall.log_loss                                  # doctest: +SKIP
>>> result = losslens.run_job(["old.csv", "new.csv"], id="id")  # doctest: +SKIP
>>> result.comparisons[0].log_loss_delta, result.to_dict()       # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InputError, LosslensError, UsageError
from .options import Options

__all__ = [
    "evaluate",
    "evaluate_runs",
    "run_job",
    "JobResult",
    "Evaluation",
    "Options",
    "InputError",
    "LosslensError",
    "UsageError",
    "__version__",
]


def __getattr__(name):
    # The engine imports pyarrow and numpy; keep `import losslens` (and so `losslens --help`)
    # light by loading it on first use.
    if name in ("evaluate", "evaluate_runs"):
        from . import engine

        return getattr(engine, name)
    if name in ("run_job", "JobResult"):
        from . import job

        return getattr(job, name)
    if name == "Evaluation":
        from .evaluation import Evaluation

        return Evaluation
    raise AttributeError(f"module 'losslens' has no attribute {name!r}")
