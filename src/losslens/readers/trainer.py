"""Read a Hugging Face ``Trainer`` run: ``trainer_state.json`` and ``eval_results.json``.

``trainer_state.json`` (written by ``Trainer.save_state()`` and into every checkpoint) keeps the
``log_history``: one entry per logging step with ``loss`` (the training loss averaged since the
previous log), one per evaluation with ``eval_loss`` (and other ``eval_*`` metrics), and a final
summary with ``train_loss`` (the mean over the run). ``eval_results.json``
(``trainer.save_metrics("eval", ...)``) holds the last evaluation. This module turns them into
plain curves; it computes nothing but differences and minima of the logged numbers.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError

#: Training loss (nats per token) below which a language model is taken to have memorised its
#: training data: 0.05 nats is a per-token probability above 0.95 on average.
NEAR_ZERO_LOSS = 0.05
#: The loss of a named eval set (``eval_dataset={"wiki": ...}`` logs ``eval_wiki_loss``).
_NAMED_EVAL = re.compile(r"^eval_(.+)_loss$")


@dataclass(frozen=True)
class TrainerRun:
    """The curves of one Trainer run.

    ``train`` and ``eval`` are ``(step, loss)`` pairs in step order. An evaluation logged twice at
    one step (``trainer.evaluate()`` after ``train()`` repeats the last one) is kept once, the
    first time. ``eval_results`` is the content of ``eval_results.json`` (or else of
    ``all_results.json``) when it was found. ``eval_sets`` holds the curves of named eval sets
    (``eval_dataset`` given as a dict logs ``eval_<name>_loss``), by name; ``eval_key`` is the
    logged key of ``eval`` (``eval_loss``, or ``eval_<name>_loss`` after :meth:`for_eval_set`).
    """

    path: str
    global_step: int | None
    max_steps: int | None
    train: tuple[tuple[int, float], ...]
    eval: tuple[tuple[int, float], ...]
    train_loss_mean: float | None
    eval_results: dict[str, Any] | None
    eval_sets: dict = field(default_factory=dict)
    eval_key: str = "eval_loss"
    results_file: str | None = None

    def for_eval_set(self, name: str) -> "TrainerRun":
        """This run with the named eval set's curve as its eval curve."""
        return replace(self, eval=self.eval_sets[name], eval_sets={}, eval_key=f"eval_{name}_loss")

    def gap(self) -> tuple[tuple[int, float], ...]:
        """Eval loss minus training loss at each evaluation step.

        The training loss is the one logged at that step, or else the last one logged before
        it (Trainer logs the training loss every ``logging_steps``, evaluates every
        ``eval_steps``). Evaluations before the first training log are left out.
        """
        out = []
        for step, eval_loss in self.eval:
            before = [loss for s, loss in self.train if s <= step]
            if before:
                out.append((step, eval_loss - before[-1]))
        return tuple(out)

    def best_eval_step(self) -> int | None:
        """The step of the lowest eval loss (the first, if several are equal)."""
        finite = [(loss, step) for step, loss in self.eval if math.isfinite(loss)]
        return min(finite, key=lambda t: (t[0], t[1]))[1] if finite else None

    def stopped_improving_step(self) -> int | None:
        """The step after which eval loss never went lower, or ``None`` if the last eval is the best."""
        best = self.best_eval_step()
        return None if best is None or best == self.eval[-1][0] else best

    def near_zero_training_loss(self, threshold: float = NEAR_ZERO_LOSS) -> int | None:
        """The first step whose logged training loss is below ``threshold`` (nats), or ``None``."""
        return next((step for step, loss in self.train if loss < threshold), None)


def read_trainer_state(path: str | Path) -> TrainerRun:
    """Read ``trainer_state.json`` (a file, or a folder holding it) and ``eval_results.json`` beside it.

    Parameters
    ----------
    path : str or Path
        ``trainer_state.json`` itself, or the output or checkpoint folder that holds it.

    Returns
    -------
    TrainerRun

    Raises
    ------
    InputError
        When the file is missing or is not a trainer state, or a ``log_history`` entry has no
        step or a loss that is not a number; the message names the file, field and entry.
    """
    path = Path(path)
    state_file = path / "trainer_state.json" if path.is_dir() else path
    state = _load(state_file)
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise InputError(f"{state_file}, field 'log_history': missing; not a Trainer state file (Trainer "
                         "writes trainer_state.json with save_state() and in every checkpoint folder)")
    train, evals, mean, named = [], {}, None, {}
    for i, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise InputError(f"{state_file}, field 'log_history', entry {i}: expected an object")
        keys = [k for k in entry if k in ("loss", "eval_loss", "train_loss") or _NAMED_EVAL.match(k)]
        if not keys:
            continue  # other logged metrics (learning rate only, custom callbacks)
        step = entry.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            raise InputError(f"{state_file}, field 'log_history[{i}].step': {step!r} is not a step number")
        for key in keys:
            value = entry[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InputError(f"{state_file}, field 'log_history[{i}].{key}': {value!r} is not a number")
            if not math.isfinite(value):
                # A diverged run logs nan/inf: its curve has no minimum or gap to report.
                raise InputError(f"{state_file}, field 'log_history[{i}].{key}' (step {step}): {value} is "
                                 "not a finite loss; the run diverged there: read an earlier checkpoint's "
                                 "trainer_state.json or restart with a lower learning rate")
        if "loss" in entry:
            train.append((step, float(entry["loss"])))
        if "eval_loss" in entry:
            evals.setdefault(step, float(entry["eval_loss"]))
        if "train_loss" in entry:
            mean = float(entry["train_loss"])
        for key in keys:
            if _NAMED_EVAL.match(key):
                named.setdefault(_NAMED_EVAL.match(key).group(1), {}).setdefault(step, float(entry[key]))
    if not train and not evals and not named:
        raise InputError(f"{state_file}, field 'log_history': no entry with loss or eval_loss yet; Trainer logs "
                         "the training loss every logging_steps: read the file again after the first log")
    # save_metrics("eval", ...) writes eval_results.json and adds the figures to all_results.json.
    results_file = next((f for f in (state_file.parent / "eval_results.json", state_file.parent / "all_results.json")
                         if f.is_file()), None)
    results = _load(results_file) if results_file is not None else None
    return TrainerRun(str(state_file), state.get("global_step"), state.get("max_steps"),
                      tuple(sorted(train)), tuple(sorted(evals.items())), mean, results,
                      {name: tuple(sorted(curve.items())) for name, curve in sorted(named.items())},
                      results_file=results_file.name if results_file is not None else None)


def _load(file: Path) -> Any:
    """A JSON file, or one InputError line."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{file}: no such file (a Trainer output folder holds trainer_state.json)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{file}: not a readable JSON file ({exc}); a file cut short while Trainer was "
                         "writing it: read it again once the step is saved") from None
