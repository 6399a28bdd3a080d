"""The ``losslens`` command line: parse options, call the engine, map outcomes to exit codes.

Only this module and :mod:`losslens.output` write anything. Heavy imports (pyarrow, numpy,
matplotlib) happen inside the commands so that ``losslens --help`` stays fast.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import List, Optional

import typer

from .errors import LosslensError

#: Exit codes: 0 success, 1 a quality gate failed (later), 2 bad input or usage.
OK, GATE_FAILED, BAD_INPUT = 0, 1, 2

LAYOUT_HELP = """
Column layout is detected from the header and can be overridden:

\b
  label column     first of: label, y_true, target, y, class, true_label (--label COL)
  probabilities    one column per class, matched to labels BY NAME:
                   p_<class>, prob_<class>, proba_<class>, prob_of_<class>
                   (--probs p_  or  --probs cat,dog,bird)
  logits           logit_<class> (--logits logit_), scored with log-softmax
  binary, 1 column y_prob, prob, p or score = P(positive class)
                   (--positive-prob COL, --positive-logit COL, --positive-label 1)
  soft targets     --targets t_ (t_<class> columns instead of a label)

\b
Example:
  losslens metrics preds.parquet --label y --probs proba_ --split fold --by region
"""

app = typer.Typer(
    name="losslens",
    help="How good are these predicted probabilities, and should I worry?\n\n"
    "Log loss, cross-entropy in bits, entropy and KL against the class-frequency baseline, "
    "accuracy, Brier score and calibration, per split, slice and class.\n\n" + LAYOUT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool):
    if value:
        from . import __version__

        typer.echo(f"losslens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """How good are these predicted probabilities, and should I worry?"""


def _fail(message: str) -> typer.Exit:
    # One line, never a traceback: the message already names file, column and row.
    first = " ".join(str(message).split("\n"))
    typer.echo(f"losslens: error: {first}", err=True)
    return typer.Exit(BAD_INPUT)


def _option(default, *names, **kwargs):
    return typer.Option(default, *names, **kwargs)


#: Options shared by every command that evaluates inputs, as (name, annotation, default).
#: One list, so that `metrics` and `report` can never drift apart.
COMMON_OPTIONS = [
    ("inputs", List[str], typer.Argument(..., metavar="INPUT...", help="Prediction files (.csv, .tsv, .csv.gz, .parquet), folders of parts, or quoted glob patterns. Each INPUT is one run.")),
    ("json_path", Optional[str], _option(None, "--json", metavar="PATH", help="Write the JSON report here ('-' for standard output).")),
    ("name", Optional[List[str]], _option(None, "--name", help="Name of each run, in input order (default: file stem).")),
    ("label", Optional[str], _option(None, "--label", metavar="COL", help="Label column (default: first of label, y_true, target, y, class, true_label).")),
    ("probs", Optional[str], _option(None, "--probs", metavar="PREFIX|A,B,...", help="Probability columns: a prefix (p_) or a comma list of columns.")),
    ("logits", Optional[str], _option(None, "--logits", metavar="PREFIX|A,B,...", help="Logit columns: a prefix (logit_) or a comma list.")),
    ("positive_prob", Optional[str], _option(None, "--positive-prob", metavar="COL", help="Binary: one column holding P(positive class).")),
    ("positive_logit", Optional[str], _option(None, "--positive-logit", metavar="COL", help="Binary: one column holding the positive class's logit.")),
    ("positive_label", Optional[str], _option(None, "--positive-label", metavar="LABEL", help="Binary: which label is positive (default: the greater, e.g. 1 or True).")),
    ("targets", Optional[str], _option(None, "--targets", metavar="PREFIX|A,B,...", help="Soft targets: per-class target probability columns instead of a label.")),
    ("classes", Optional[str], _option(None, "--classes", metavar="A,B,...", help="The full class set and its order, including classes with no examples.")),
    ("id", Optional[str], _option(None, "--id", metavar="COL", help="Example id column (shown for the worst examples).")),
    ("weight", Optional[str], _option(None, "--weight", metavar="COL", help="Example weight column.")),
    ("split", Optional[str], _option(None, "--split", metavar="COL", help="Split column, e.g. train/validation (default: 'split' if present).")),
    ("by", Optional[List[str]], _option(None, "--by", metavar="COL", help="Slice column; repeat for several.")),
    ("renormalize", bool, _option(False, "--renormalize", help="Divide each probability row by its sum (otherwise rows are scored as given and counted).")),
    ("bins", int, _option(15, "--bins", help="Equal-width confidence bins for calibration (ECE).")),
    ("worst", int, _option(20, "--worst", help="How many worst examples to keep.")),
    # Diagnostics: every threshold of a warning is an option with its default shown.
    ("near_zero", float, _option(0.01, "--near-zero", metavar="NATS", help="Warn (near_zero_loss) when a scope's log loss is at or below this.")),
    ("gap", float, _option(0.10, "--gap", metavar="FRACTION", help="Warn (generalization_gap) when held-out log loss exceeds training by more than this fraction and the 95% interval of the difference excludes 0.")),
    ("train_split", Optional[str], _option(None, "--train-split", metavar="NAME", help="Name of the training split (default: train or training).")),
    ("prior_shift", float, _option(0.05, "--prior-shift", metavar="BITS", help="Warn (prior_shift) when KL(P̂‖Q̄) exceeds this many bits.")),
    ("confident_error", float, _option(1e-6, "--confident-error", metavar="PROB", help="p(true class) at or below this is a confident error.")),
    ("small_sample", int, _option(30, "--small-sample", metavar="N", help="Warn (small_sample) for scopes with fewer examples than this.")),
    ("max_slices", int, _option(20, "--max-slices", metavar="N", help="Show the N largest values of each slice column; fold the rest into 'other'.")),
    ("bootstrap", int, _option(0, "--bootstrap", metavar="N", help="Also compute percentile intervals from N bootstrap resamples (data must fit in memory).")),
    ("seed", int, _option(0, "--seed", help="Random seed of the bootstrap.")),
    # Scale: the same accumulators over a Dask dataframe's partitions.
    ("engine", str, _option("local", "--engine", metavar="local|dask", help="local: stream batches in this process; dask: map over Dask partitions (pip install 'losslens[dask]').")),
    ("scheduler", Optional[str], _option(None, "--scheduler", metavar="ADDRESS", help="With --engine dask: a dask.distributed scheduler to use (default: start a LocalCluster).")),
]


def with_common_options(command):
    """Give ``command`` the shared options in its signature; they arrive as ``**common``."""
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(command).parameters.values()
        if p.kind != p.VAR_KEYWORD
    ]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, annotation, default in COMMON_OPTIONS
    ]
    command.__signature__ = inspect.Signature(shared + own)
    return command


def _evaluate(common: dict):
    """Run the engine with the shared options; return the evaluation."""
    from dataclasses import fields

    from .options import Options

    known = {f.name for f in fields(Options)}
    options = Options(**{k: v for k, v in common.items() if k in known and v is not None and k != "by"},
                      by=tuple(common["by"] or ()))
    names = common["name"] or None
    if common["engine"] == "dask":
        from .distributed import evaluate_runs_dask

        return evaluate_runs_dask(common["inputs"], names=names, options=options, scheduler=common["scheduler"])
    if common["engine"] != "local":
        from .errors import UsageError

        raise UsageError(f"--engine must be 'local' or 'dask', got {common['engine']!r}")
    from .engine import evaluate_runs

    return evaluate_runs(common["inputs"], names=names, options=options)


def _emit(evaluation, json_path: str | None, summary_to_stderr: bool = False) -> None:
    """Print the terminal summary and write the JSON report if asked."""
    from .output import write_json
    from .terminal import summary

    # With JSON on stdout the summary goes to stderr, so that stdout parses as JSON.
    typer.echo(summary(evaluation), nl=False, err=summary_to_stderr or json_path == "-")
    if json_path:
        write_json(evaluation.to_dict(), json_path)
        if json_path != "-":
            typer.echo(f"JSON written to {json_path}", err=True)


@app.command(help="Compute the metrics of each INPUT (a run) and print a summary.\n\n" + LAYOUT_HELP)
@with_common_options
def metrics(**common) -> None:
    try:
        evaluation = _evaluate(common)
        _emit(evaluation, common["json_path"])
    except LosslensError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write output: {exc}") from None


@app.command(help="Write a self-contained HTML report (and optionally JSON) for each INPUT.\n\n" + LAYOUT_HELP)
@with_common_options
def report(
    output: str = typer.Option("report.html", "-o", "--output", metavar="PATH", help="Where to write the HTML report."),
    template_dir: Optional[str] = typer.Option(None, "--template-dir", metavar="DIR", help="Folder of templates searched before the built-in ones."),
    generated_at: Optional[str] = typer.Option(None, "--generated-at", metavar="ISO-TIME", help="Pin the report's generation time (default: SOURCE_DATE_EPOCH if set, else now)."),
    **common,
) -> None:
    try:
        from .html import render_report
        from .output import write_atomic

        evaluation = _evaluate(common)
        # Render everything before writing anything: output appears whole or not at all.
        html = render_report(
            evaluation,
            generated_at=resolve_generated_at(generated_at),
            command_line=command_line(),
            template_dir=template_dir,
        )
        _emit(evaluation, common["json_path"], summary_to_stderr=False)
        write_atomic(output, html)
        typer.echo(f"HTML report written to {output}", err=True)
    except LosslensError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write output: {exc}") from None


def resolve_generated_at(value: str | None):
    """The report time: ``--generated-at``, else ``SOURCE_DATE_EPOCH``, else now (UTC)."""
    from datetime import datetime, timezone

    from .errors import UsageError

    if value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(f"--generated-at {value!r} is not an ISO time such as 2026-01-31T12:00:00Z") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds") from None
    return datetime.now(timezone.utc).replace(microsecond=0)


def command_line() -> str:
    """The command as the user typed it, for the report's footer."""
    import shlex

    return " ".join(shlex.quote(a) for a in ["losslens", *sys.argv[1:]])


def main() -> None:
    """Console-script entry point."""
    app(prog_name="losslens")


if __name__ == "__main__":  # pragma: no cover
    main()
