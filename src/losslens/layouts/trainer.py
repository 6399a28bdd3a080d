"""Hugging Face Trainer runs: ``trainer_state.json`` logs, a run's loss curves (no examples).

Read and computed by :mod:`losslens.lm.trainer_run`; the report draws its section with
:mod:`losslens.html.trainer`. Nothing to stream, pair, slice or distribute: the options that need
examples are refused.
"""

from __future__ import annotations

from typing import Sequence

from ..lm.trainer_run import evaluate_trainer, refuse_options
from .plugin import LayoutPlugin


class TrainerLayout(LayoutPlugin):
    """Trainer states (see the module docstring)."""

    kind = "trainer"
    unit = "step"

    def check_options(self, options, engine: str, n_inputs: int, observers: Sequence = ()) -> None:
        refuse_options(options.by, options.cluster, options.bootstrap, engine, options.reference)

    def evaluate_inputs(self, inputs: Sequence, names, options, observers: Sequence = ()):
        return evaluate_trainer(list(inputs), names=names)

    def compare(self, evaluation, collector, options) -> tuple:
        return ()


#: The Trainer plugin.
TRAINER = TrainerLayout()
