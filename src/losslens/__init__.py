"""losslens: how good are these predicted probabilities, and should I worry?

>>> import losslens
>>> evaluation = losslens.evaluate("predictions.parquet")      # doctest: +SKIP
>>> evaluation.overall.log_loss                                  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InputError, LosslensError, UsageError
from .options import Options

__all__ = [
    "evaluate",
    "evaluate_runs",
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
    if name == "Evaluation":
        from .evaluation import Evaluation

        return Evaluation
    raise AttributeError(f"module 'losslens' has no attribute {name!r}")
