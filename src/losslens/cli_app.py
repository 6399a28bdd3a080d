"""The ``losslens`` application: its Typer app, help texts, exit codes and one-line errors.

Below :mod:`losslens.cli` (``metrics``, ``report``) and :mod:`losslens.cli_trend` (``trend``),
which register their commands on :data:`app`; :mod:`losslens.cli` imports cli_trend, so the
console script (``losslens.cli:main``) has every command. Nothing heavy is imported here:
``losslens --help`` loads this module, Typer and the command modules' signatures only.
"""

from __future__ import annotations

import re
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

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        # The command's --help option is made (and kept) on first use: make it now to cover it too.
        helper = command.get_help_option(ctx) if command is not None else None
        for param in [*getattr(command, "params", ()), *([helper] if helper is not None else [])]:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None and getattr(param, "_runtime_param", False) is None:
                param._runtime_param = _PlainValues(descriptor)
        return command


#: Option text that ``int``/``float`` read exactly as pydantic does (anything else goes to Typer's coercion).
_NUMBER_TEXT = {int: re.compile(r"[0-9]{1,15}"), float: re.compile(r"[0-9]{1,15}(\.[0-9]{1,15})?")}
#: Types whose value Click already hands over as the type itself: Typer's coercion returns it unchanged.
_PLAIN_TYPES = (str, int, float, bool)


class _PlainValues:
    """Typer's coercion of one option, skipped for a missing value or one of its plain type.

    Typer builds a pydantic validator for every option of a command on every run, about
    0.05 s with pydantic's import; but a missing value coerces to None (``()`` for a repeated
    option) and a ``str``/``int``/``float``/``bool`` value of that very type to itself. Any
    other value (a list, a path, a choice, a ranged number, a wrong type) takes Typer's own
    coercion, built on first use, so its messages are unchanged.
    """

    def __init__(self, descriptor):
        self.descriptor = descriptor
        self.real = None
        info = descriptor.parameter_info
        plain = _plain_type(descriptor.annotation)
        simple = (descriptor.file_annotation is None and getattr(info, "parser", None) is None
                  and getattr(info, "click_type", None) is None and getattr(info, "min", None) is None
                  and getattr(info, "max", None) is None)
        self.plain = plain if simple else None
        self.texts = simple and _is_list_of_str(descriptor.annotation)

    def coerce(self, value, param, ctx):
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        repeated = param.multiple or param.nargs != 1
        if self.plain is not None and not repeated:
            if type(value) is self.plain:
                return value
            if type(value) is str and self.plain in _NUMBER_TEXT and _NUMBER_TEXT[self.plain].fullmatch(value):
                return self.plain(value)  # plain digits: the number pydantic reads, correctly rounded
        if self.texts and repeated and type(value) in (tuple, list) and all(type(v) is str for v in value):
            return list(value)  # as pydantic validates a List[str]
        if self.real is None:
            from typer._coercion import build_runtime_param

            self.real = build_runtime_param(self.descriptor)
        return self.real.coerce(value, param=param, ctx=ctx)


def _is_list_of_str(annotation) -> bool:
    """Whether ``annotation`` is ``List[str]`` (or ``Optional[List[str]]``)."""
    import typing

    if typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else None
    return typing.get_origin(annotation) is list and typing.get_args(annotation) == (str,)


def _plain_type(annotation):
    """``X`` for an annotation ``X`` or ``Optional[X]`` of a plain type, else None."""
    import typing

    if annotation in _PLAIN_TYPES:
        return annotation
    if typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1 and rest[0] in _PLAIN_TYPES:
            return rest[0]
    return None


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
