"""The ``losslens`` application: its Typer app, help texts, exit codes and one-line errors.

Below :mod:`losslens.cli` (``metrics``, ``report``) and :mod:`losslens.cli_trend` (``trend``),
which register their commands on :data:`app`; :mod:`losslens.cli` imports cli_trend, so the
console script (``losslens.cli:main``) has every command. Nothing heavy is imported here:
``losslens --help`` loads this module, Typer and the command modules' signatures only.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

#: Exit codes: 0 success (every gate passed), 1 a quality gate failed, 2 bad input or usage.
OK, GATE_FAILED, BAD_INPUT = 0, 1, 2

EXIT_HELP = """
Exit codes: 0 every gate passed, 1 a gate (--fail-if, --fail-on-warning) failed, 2 bad input
or usage. Reports and JSON are written also when a gate fails.
"""

LAYOUT_HELP = """
Column layout is detected from the header and can be overridden:

\b
  label column     first of: label, y_true, target, y, class, true_label
                   (--label COL)
  probabilities    one column per class, matched to labels BY NAME:
                   p_<class>, prob_<class>, proba_<class>, prob_of_<class>
                   (--probs p_  or  --probs cat,dog,bird)
  logits           logit_<class> (--logits logit_), scored with log-softmax
  binary, 1 column y_prob, prob, p or score = P(positive class)
                   (--positive-prob COL, --positive-logit COL,
                   --positive-label 1)
  soft targets     --targets t_ (t_<class> columns instead of a label)
  class-name cols  setosa,versicolor,... or 0,1,2 (DataFrame(predict_proba(X),
                   columns=clf.classes_)) when every label has such a column
  id column        first of: id, example_id (--id COL)

\b
Classes keep the order of their columns in the file (--classes A,B,... sets
it). A one-column binary file needs labels 0/1, False/True or -1/1, a column
named after the positive class (p_churn), or --positive-label.
Files: .csv, .tsv (also .gz/.bz2/.xz/.zst), .parquet, .jsonl/.ndjson,
.feather/.arrow/.ipc, '-' for standard input or a pipe such as <(cmd)
(--format, --encoding, --sep, --decimal).
Labels in another file: --labels truth.csv --id id.

\b
Language models are recognised too (one kind of input per command):
  token file       doc_id + logprob (or nll) per token, optional token, mask
  sequence file    doc_id + nll + n_tokens per document, optional n_bytes
  lm-eval output   samples_<task>_<date>.jsonl, results_<date>.json, or the
                   --output_path folder (results only: lm-eval's own figures)
  inspect-ai log   .eval archive or .json log, or a folder of them
  HELM run         a run folder (scenario_state.json), or a folder of runs
  lighteval        details_<task>_<date>.parquet, or a folder holding them
  vLLM completions .jsonl of /v1/completions responses with prompt log-probs
  HF Trainer run   trainer_state.json, its output or checkpoint-N folder, or a
                   folder of output folders (the logged loss curves)

\b
Example:
  losslens metrics preds.parquet --label y --probs proba_ --split fold \\
      --by region
"""

class _Group(TyperGroup):
    """Typer's group, its ``--help`` flag defaulting to False.

    Typer's help option has no default, and coercing that missing value imports pydantic
    (about 0.05 s, a third of the start-up goal) on every command, ``losslens metrics --help``
    included; a flag's False is taken as it is.
    """

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


app = typer.Typer(
    cls=_Group,
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
        from .version import __version__

        typer.echo(f"losslens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """How good are these predicted probabilities, and should I worry?"""


def fail(message: str) -> typer.Exit:
    """The one line a known error prints (control characters escaped), and the exit code 2 to raise."""
    # One line, never a traceback: the message already names file, column and row. A value
    # quoted from the data is shown with its control characters escaped, never raw.
    from .formatting import visible

    first = visible(" ".join(str(message).split("\n")))
    typer.echo(f"losslens: error: {first}", err=True)
    return typer.Exit(BAD_INPUT)


def command_line() -> str:
    """The command as the user typed it, for the report's footer."""
    import shlex

    return " ".join(shlex.quote(a) for a in ["losslens", *sys.argv[1:]])
