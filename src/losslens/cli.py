"""The ``losslens`` command line: parse options, call the engine, map outcomes to exit codes.

Only this module and :mod:`losslens.output` write anything. Heavy imports (pyarrow, numpy,
matplotlib) happen inside the commands so that ``losslens --help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .errors import LosslensError

#: Exit codes: 0 success, 1 a quality gate failed (later), 2 bad input or usage.
OK, GATE_FAILED, BAD_INPUT = 0, 1, 2

LAYOUT_HELP = """
Column layout is detected from the header and can be overridden:

  label column      first of: label, y_true, target, y, class, true_label  (--label COL)

  probabilities     one column per class, matched to labels BY NAME:
                    p_<class>, prob_<class>, proba_<class>, prob_of_<class>
                    (--probs p_  or  --probs cat,dog,bird)

  logits            logit_<class>  (--logits logit_), scored with log-softmax

  binary, 1 column  y_prob, prob, p or score = P(positive class)
                    (--positive-prob COL, --positive-logit COL, --positive-label 1)

  soft targets      --targets t_  (t_<class> columns instead of a label)

Example:  losslens metrics preds.parquet --label y --probs proba_ --split fold --by region
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


@app.command(help="Compute the metrics of each INPUT (a run) and print a summary.\n\n" + LAYOUT_HELP)
def metrics(
    inputs: List[str] = typer.Argument(..., metavar="INPUT...", help="Prediction files (.csv, .tsv, .csv.gz, .parquet), folders of parts, or quoted glob patterns. Each INPUT is one run."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write the JSON report here ('-' for standard output)."),
    name: Optional[List[str]] = typer.Option(None, "--name", help="Name of each run, in input order (default: file stem)."),
    label: Optional[str] = typer.Option(None, help="Label column (default: first of label, y_true, target, y, class, true_label)."),
    probs: Optional[str] = typer.Option(None, metavar="PREFIX|A,B,...", help="Probability columns: a prefix (p_) or a comma list of columns."),
    logits: Optional[str] = typer.Option(None, metavar="PREFIX|A,B,...", help="Logit columns: a prefix (logit_) or a comma list."),
    positive_prob: Optional[str] = typer.Option(None, metavar="COL", help="Binary: one column holding P(positive class)."),
    positive_logit: Optional[str] = typer.Option(None, metavar="COL", help="Binary: one column holding the positive class's logit."),
    positive_label: Optional[str] = typer.Option(None, metavar="LABEL", help="Binary: which label is positive (default: the greater, e.g. 1 or True)."),
    targets: Optional[str] = typer.Option(None, metavar="PREFIX|A,B,...", help="Soft targets: per-class target probability columns instead of a label."),
    classes: Optional[str] = typer.Option(None, metavar="A,B,...", help="The full class set and its order, including classes with no examples."),
    id: Optional[str] = typer.Option(None, "--id", metavar="COL", help="Example id column (shown for the worst examples)."),
    weight: Optional[str] = typer.Option(None, metavar="COL", help="Example weight column."),
    split: Optional[str] = typer.Option(None, metavar="COL", help="Split column, e.g. train/validation (default: 'split' if present)."),
    by: Optional[List[str]] = typer.Option(None, "--by", metavar="COL", help="Slice column; repeat for several."),
    renormalize: bool = typer.Option(False, help="Divide each probability row by its sum (otherwise rows are scored as given and counted)."),
    bins: int = typer.Option(15, help="Equal-width confidence bins for calibration (ECE)."),
    worst: int = typer.Option(20, help="How many worst examples to keep."),
) -> None:
    try:
        from .engine import evaluate_runs
        from .options import Options, split_list
        from .output import write_json
        from .terminal import summary

        options = Options(
            label=label, probs=probs, logits=logits, positive_prob=positive_prob,
            positive_logit=positive_logit, positive_label=positive_label, targets=targets,
            classes=tuple(split_list(classes)) if classes else None, id=id, weight=weight,
            split=split, by=tuple(by or ()), renormalize=renormalize, bins=bins, worst=worst,
        )
        evaluation = evaluate_runs(inputs, names=name or None, options=options)
        # With JSON on stdout the summary goes to stderr, so that stdout parses as JSON.
        typer.echo(summary(evaluation), nl=False, err=json_path == "-")
        if json_path:
            write_json(evaluation.to_dict(), json_path)
            if json_path != "-":
                typer.echo(f"JSON written to {json_path}", err=True)
    except LosslensError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write output: {exc}") from None


def main() -> None:
    """Console-script entry point."""
    app(prog_name="losslens")


if __name__ == "__main__":  # pragma: no cover
    main()
