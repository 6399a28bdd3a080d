"""A Hugging Face Trainer run as a run kind of its own: its loss curves and what they say.

Pure: :func:`trainer_result` takes the curves :mod:`losslens.readers.trainer` read from
``trainer_state.json`` (and ``eval_results.json``) and computes the figures every reporter
shows: the last and the best eval loss (nats, bits, perplexity), the training loss near the
end, the train/eval gap at each evaluation, the step where eval loss stopped improving, and the
warnings (``near_zero_train_loss``, ``train_eval_gap``, ``eval_loss_rising``,
``inconsistent_samples``). Nothing is re-scored: Trainer keeps no per-token log-probabilities,
only the losses it logged.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from ..catalog import EVAL_LOSS, TRAINER, TRAIN_EVAL_GAP
from ..errors import UsageError
from ..evaluation import LossWarning, json_safe
from ..display import Notebook
from ..readers.trainer import NEAR_ZERO_LOSS, TrainerRun, read_trainer_state
from .detect import TRAINER_RESULTS, trainer_runs_in

#: Eval loss above the training loss (nats) that is called a large gap: the eval text then costs
#: e^0.5 ≈ 1.65 times the training text's perplexity. A fine-tune evaluated on text like its
#: training text usually stays within a few tenths of a nat; more is overfitting or a shift.
GAP_LARGE = 0.5
#: Evaluations in a row without a new best before ``eval_loss_rising`` is said: one worse
#: evaluation can be noise of a small eval set, two is a direction.
PATIENCE = 2
#: How close ``eval_results.json``'s eval loss must be to the last logged one (both are the
#: same float32 mean written twice by Trainer; a real difference is another evaluation).
AGREEMENT = 1e-9
#: A checkpoint folder Trainer writes every ``save_steps``.
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class TrainerFigures:
    """The figures of a Trainer run (names as in :data:`losslens.catalog.TRAINER_METRICS`); None when not logged."""

    eval_loss: float | None = None
    eval_cross_entropy_bits: float | None = None
    eval_perplexity: float | None = None
    best_eval_loss: float | None = None
    best_step: int | None = None
    evals_since_best: int | None = None
    eval_loss_above_best: float | None = None
    train_loss: float | None = None
    train_loss_min: float | None = None
    train_eval_gap: float | None = None
    n_evaluations: int = 0
    global_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (the run's ``overall``)."""
        return asdict(self)


@dataclass(frozen=True)
class TrainerResult:
    """One Trainer run: its figures, curves, notes, warnings and Trainer's own logged figures."""

    name: str
    inputs: tuple[str, ...]
    overall: TrainerFigures
    train: tuple[tuple[int, float], ...]
    eval: tuple[tuple[int, float], ...]
    gap: tuple[tuple[int, float], ...]
    notes: tuple[str, ...]
    warnings: tuple[LossWarning, ...]
    logged: dict = field(default_factory=dict)
    kind = "trainer"
    layout_kind = TRAINER

    @property
    def by_split(self) -> dict:
        """A Trainer run has no splits (gates read ``overall``)."""
        return {}

    def stopped_improving(self) -> str | None:
        """"eval loss has not improved for N evaluations since step S", or None when the last is the best."""
        o = self.overall
        if not o.evals_since_best:
            return None
        return (f"eval loss has not improved for {o.evals_since_best} evaluation"
                f"{'s' if o.evals_since_best != 1 else ''} since step {o.best_step}")

    def to_dict(self) -> dict[str, Any]:
        """The run in the JSON report (``runs[]``): name, kind, inputs, layout, overall, curves, warnings."""
        return json_safe({
            "name": self.name, "kind": self.kind, "inputs": list(self.inputs),
            # Trainer's own figures (eval_results.json, the summary train_loss) sit with the
            # notes on what the file holds: they are read, not computed.
            "layout": {"kind": TRAINER, "notes": list(self.notes), "logged": self.logged},
            "overall": self.overall.to_dict(),
            "curves": {"train": [list(p) for p in self.train], "eval": [list(p) for p in self.eval],
                       "gap": [list(p) for p in self.gap]},
            "warnings": [w.to_dict() for w in self.warnings],
        })


@dataclass(frozen=True)
class TrainerEvaluation(Notebook):
    """Every Trainer run of a job, in input order (``JobResult.kind`` is ``trainer``)."""

    runs: tuple[TrainerResult, ...]
    comparisons: tuple = ()
    kind = "trainer"

    def to_dict(self) -> dict[str, Any]:
        """The runs, for the job's JSON document."""
        return {"runs": [r.to_dict() for r in self.runs]}


def refuse_options(by=(), cluster=None, bootstrap=0, engine="local", reference=None) -> None:
    """Refuse the options a Trainer run has nothing for (it is logged curves, not examples).

    Raises
    ------
    UsageError
        Naming the options given.
    """
    given = [flag for flag, value in (("--by", by), ("--cluster", cluster), ("--bootstrap", bootstrap),
                                      ("--engine dask", engine == "dask"), ("--reference", reference)) if value]
    if given:
        raise UsageError(f"{', '.join(given)}: a Trainer run is its logged loss curves, with no examples or documents "
                         f"to slice, resample or distribute; drop {'them' if len(given) > 1 else 'it'}")


def curve_rows(evaluation: TrainerEvaluation):
    """The ``--per-example`` table of Trainer runs: one row per run and logged step.

    Columns ``run``, ``step``, ``train_loss``, ``eval_loss``, ``train_eval_gap`` (null where the
    step logged no such figure).

    Returns
    -------
    pyarrow.Table
    """
    import pyarrow as pa

    rows = {"run": [], "step": [], "train_loss": [], EVAL_LOSS: [], TRAIN_EVAL_GAP: []}
    for run in evaluation.runs:
        train, evals, gap = dict(run.train), dict(run.eval), dict(run.gap)
        for step in sorted(set(train) | set(evals)):
            for key, value in (("run", run.name), ("step", step), ("train_loss", train.get(step)),
                               (EVAL_LOSS, evals.get(step)), (TRAIN_EVAL_GAP, gap.get(step))):
                rows[key].append(value)
    return pa.table({**rows, "train_loss": pa.array(rows["train_loss"], pa.float64()),
                     EVAL_LOSS: pa.array(rows[EVAL_LOSS], pa.float64()),
                     TRAIN_EVAL_GAP: pa.array(rows[TRAIN_EVAL_GAP], pa.float64())})


def _figures(run: TrainerRun) -> TrainerFigures:
    """The figures of the curves: last, best, gap (see :class:`TrainerFigures`)."""
    evals, train, gap = run.eval, run.train, run.gap()
    best_step = run.best_eval_step()
    figures = {"n_evaluations": len(evals), "global_step": run.global_step if isinstance(run.global_step, int) else
               (max(s for s, _ in train + evals) if train or evals else None)}
    if train:
        figures.update(train_loss=train[-1][1], train_loss_min=min(loss for _, loss in train))
    if evals:
        last = evals[-1][1]
        best = min(loss for _, loss in evals)
        figures.update(eval_loss=last, eval_cross_entropy_bits=last / math.log(2), eval_perplexity=math.exp(last),
                       best_eval_loss=best, best_step=best_step, eval_loss_above_best=last - best,
                       evals_since_best=sum(1 for s, _ in evals if s > best_step))
    if gap:
        figures[TRAIN_EVAL_GAP] = gap[-1][1]
    return TrainerFigures(**figures)


def _warnings(run: TrainerRun, o: TrainerFigures, gap) -> list[LossWarning]:
    """The curve's warnings, memorisation first."""
    found = []
    first_low = run.near_zero_training_loss()
    if first_low is not None:
        low_step = min(run.train, key=lambda p: (p[1], p[0]))[0]
        tail = (f"; eval loss {o.eval_loss:.4g} nats at the end (best {o.best_eval_loss:.4g} at step {o.best_step}) "
                "says how little of it generalises" if o.eval_loss is not None else "")
        found.append(LossWarning("near_zero_train_loss", (
            f"training loss fell below {NEAR_ZERO_LOSS} nats (a mean per-token probability above "
            f"{math.exp(-NEAR_ZERO_LOSS):.2f}) at step {first_low}, lowest {o.train_loss_min:.4g} at step {low_step}: "
            f"the model reproduces its training text almost verbatim (memorisation){tail}"), scope="train"))
    if o.train_eval_gap is not None and o.train_eval_gap > GAP_LARGE:
        step, first = gap[0]
        grew = (f", up from {first:.3g} at step {step}, the first evaluation" if first < o.train_eval_gap and
                len(gap) > 1 else "")
        found.append(LossWarning(TRAIN_EVAL_GAP, (
            f"eval loss is {o.train_eval_gap:.3g} nats above the training loss at step {gap[-1][0]}{grew}: the "
            f"eval text costs {math.exp(o.train_eval_gap):.3g}× the training text's perplexity (more than "
            f"{GAP_LARGE} nats is called large): overfitting, or eval text unlike the training text"), scope="eval"))
    if o.evals_since_best is not None and o.evals_since_best >= PATIENCE and o.eval_loss_above_best > 0:
        found.append(LossWarning("eval_loss_rising", (
            f"eval loss has not improved for {o.evals_since_best} evaluations since step {o.best_step} "
            f"(best {o.best_eval_loss:.4g} nats; {o.eval_loss:.4g} at step {run.eval[-1][0]}, "
            f"+{o.eval_loss_above_best:.3g}): the model is overfitting; the checkpoint of step {o.best_step} is the "
            "one to keep (Trainer keeps it with load_best_model_at_end=True, metric_for_best_model='eval_loss')"),
            scope="eval"))
    found += _consistency(run, o)
    return found


def _consistency(run: TrainerRun, o: TrainerFigures) -> list[LossWarning]:
    """``inconsistent_samples`` when eval_results.json's (or all_results.json's) eval loss is not the last one logged."""
    results = run.eval_results if isinstance(run.eval_results, dict) else {}
    logged = results.get(run.eval_key)
    if not isinstance(logged, (int, float)) or isinstance(logged, bool) or o.eval_loss is None:
        return []
    if math.isclose(float(logged), o.eval_loss, rel_tol=AGREEMENT, abs_tol=1e-12):
        return []
    return [LossWarning("inconsistent_samples", (
        f"{run.results_file}'s {run.eval_key} {float(logged):.6g} ≠ the last {run.eval_key} in trainer_state.json's "
        f"log_history {o.eval_loss:.6g} (step {run.eval[-1][0]}): the two files come from different evaluations "
        "(another eval set, a later trainer.evaluate(), another run in the same folder); trust neither until "
        "this is explained"), scope="eval")]


def _notes(run: TrainerRun, o: TrainerFigures) -> list[str]:
    """What the files hold and lack, in one line each."""
    notes = ["harness: Hugging Face Trainer (trainer_state.json log_history); losses are read as Trainer logged "
             "them, in nats per token (a causal LM's cross-entropy; a classifier's is per example); nothing is re-scored: Trainer keeps no per-token "
             "log-probabilities"]
    if not run.eval:
        notes.append("no eval_loss in log_history: only the training curve; train with eval_strategy='steps' and an "
                     "eval_dataset to get the eval curve, the gap and the best step")
    if not run.train:
        notes.append("no training loss in log_history (logging_steps larger than the run): no gap or memorisation check")
    if isinstance(run.max_steps, int) and o.global_step is not None and o.global_step < run.max_steps:
        notes.append(f"step {o.global_step} of max_steps {run.max_steps}: the run is still going or was stopped early")
    if run.eval_results is None:
        notes.append("no eval_results.json or all_results.json beside it (trainer.save_metrics('eval', ...)): "
                     "nothing logged to check")
    return notes


def _logged(run: TrainerRun) -> dict[str, Any]:
    """Trainer's own aggregates: the results file's numbers (which file, which key is this run's eval loss)
    and the summary's mean training loss."""
    results = run.eval_results if isinstance(run.eval_results, dict) else {}
    logged = {k: v for k, v in results.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.endswith(("_runtime", "_per_second"))}
    return {"file": run.results_file, "eval_key": run.eval_key, "eval_results": logged or None,
            "train_loss_mean": run.train_loss_mean}


def trainer_result(run: TrainerRun, name: str, inputs: Sequence[str] = ()) -> TrainerResult:
    """The figures, curves, notes and warnings of one Trainer run (pure).

    Parameters
    ----------
    run : losslens.readers.trainer.TrainerRun
        The curves as read.
    name : str
        The run's name in every report.
    inputs : sequence of str
        What the user gave (shown in the JSON).

    Returns
    -------
    TrainerResult
    """
    o = _figures(run)
    gap = run.gap()
    return TrainerResult(name, tuple(inputs) or (run.path,), o, run.train, run.eval, gap, tuple(_notes(run, o)),
                         tuple(_warnings(run, o, gap)), _logged(run))


def state_file_of(spec) -> tuple[Path, str | None]:
    """The ``trainer_state.json`` of an input and a note when a checkpoint was picked.

    A file is itself; a folder holding ``trainer_state.json`` gives it; an output folder
    holding only ``checkpoint-*/trainer_state.json`` gives the latest checkpoint's (its
    ``log_history`` has every step up to it).
    """
    path = Path(os.fspath(spec))
    if path.name in TRAINER_RESULTS and path.is_file():
        return path.parent / STATE_FILE, None  # eval_results.json given: the state beside it
    if path.is_dir() and not (path / STATE_FILE).is_file():
        checkpoints = checkpoints_in(path)
        if checkpoints:
            return checkpoints[-1] / STATE_FILE, (
                f"{path.name}: no trainer_state.json at the top; read the latest checkpoint, {checkpoints[-1].name}")
    return path, None


def checkpoints_in(folder: Path) -> list[Path]:
    """Trainer's ``checkpoint-N`` folders holding a trainer_state.json, by step."""
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := CHECKPOINT.match(p.name)) and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def _base_name(spec) -> str:
    """A run's default name: the output folder, or ``<output>/<checkpoint-N>`` for a checkpoint."""
    path = Path(os.fspath(spec)).resolve()
    if path.is_dir() and not (path / STATE_FILE).is_file() and not checkpoints_in(path):
        return path.name  # a folder of runs
    folder = path.parent if path.is_file() else path
    if CHECKPOINT.match(folder.name):
        return f"{folder.parent.name}/{folder.name}"
    return folder.name


def evaluate_trainer(inputs, names: Sequence[str] | None = None) -> TrainerEvaluation:
    """Read and compute each Trainer run: one run per input.

    Parameters
    ----------
    inputs : path or sequence of paths
        ``trainer_state.json`` files, Trainer output folders, ``checkpoint-N`` folders, or folders
        holding output folders (one run each, named ``<folder>/<run>``).
    names : sequence of str, optional
        One run name per input (default: the folder's name, ``out/checkpoint-60`` for a checkpoint).

    Returns
    -------
    TrainerEvaluation

    Raises
    ------
    InputError
        A file that does not parse, a ``log_history`` missing or with a bad entry (one line
        naming the file, field and entry).
    """
    from ..plans import unique_names

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if names is not None and len(names) != len(inputs):
        raise UsageError(f"{len(names)} --name value(s) for {len(inputs)} input(s); give one per input")
    runs = []
    found = [_runs_of(spec) for spec in inputs]
    bases = list(names) if names else unique_names([_base_name(spec) for spec in inputs])
    for spec, folders, base in zip(inputs, found, bases):
        for folder in folders:
            file, note = state_file_of(folder)
            # A folder of several runs: each named <input>/<run folder>, as harness tasks are.
            name = base if len(folders) == 1 else f"{base}/{folder.name}"
            for result in _per_eval_set(read_trainer_state(file), name, os.fspath(folder)):
                runs.append(replace(result, notes=result.notes + (note,)) if note else result)
    return TrainerEvaluation(tuple(runs))


def _per_eval_set(run: TrainerRun, name: str, source: str) -> list[TrainerResult]:
    """One result per eval set: ``eval_loss``'s under ``name``, each named set's (``eval_<set>_loss``)
    under ``name/<set>`` with the same training curve."""
    results = [trainer_result(run, name, (source,))] if run.eval or not run.eval_sets else []
    for eval_set in run.eval_sets:
        result = trainer_result(run.for_eval_set(eval_set), f"{name}/{eval_set}", (source,))
        results.append(replace(result, notes=result.notes + (f"eval set {eval_set!r}: log_history's "
                                                              f"eval_{eval_set}_loss",)))
    return results


def _runs_of(spec) -> list[Path]:
    """The runs of one input: a state file, a run folder, or each run folder inside a folder."""
    path = Path(os.fspath(spec))
    return (trainer_runs_in(path) or [path]) if path.is_dir() else [path]
