"""The ``losslens`` command line: parse options, call the engine, map outcomes to exit codes.

Only this module and :mod:`losslens.output` write anything. Heavy imports (pyarrow, numpy,
matplotlib) happen inside the commands so that ``losslens --help`` stays fast.
"""

from __future__ import annotations

import inspect
import sys
from typing import List, Optional

import typer

# The application, exit codes and the one-line error are shared with cli_trend (below both).
from .cli_app import BAD_INPUT, EXIT_HELP, GATE_FAILED, LAYOUT_HELP, OK, app, command_line  # noqa: F401
from .cli_app import fail as _fail
from .errors import LosslensError
from .job import pinned_time, resolve_generated_at
from .options import Options

#: Options shared by every command that evaluates inputs, as (name, annotation, default).
#: One list, so that `metrics` and `report` can never drift apart.
COMMON_OPTIONS = [
    ("inputs", List[str], typer.Argument(..., metavar="INPUT...", help="Prediction files (.csv, .tsv, also .gz/.bz2/.xz/.zst; .parquet, .jsonl/.ndjson, .feather/.arrow/.ipc), folders of parts, quoted glob patterns, '-' for standard input, or a pipe. Each INPUT is one run.")),
    ("json_path", Optional[str], typer.Option(None, "--json", metavar="PATH", help="Write the JSON report here ('-' for standard output).")),
    ("markdown_path", Optional[str], typer.Option(None, "--markdown", metavar="PATH", help="Write a GitHub-flavoured markdown summary here ('-' for standard output); appended to $GITHUB_STEP_SUMMARY's file, as GitHub expects.")),
    ("name", Optional[List[str]], typer.Option(None, "--name", help="Name of each run, in input order (default: file stem).")),
    ("label", Optional[str], typer.Option(None, "--label", metavar="COL", help="Label column (default: first of label, y_true, target, y, class, true_label).")),
    ("probs", Optional[str], typer.Option(None, "--probs", metavar="PREFIX|A,B,...", help="Probability columns: a prefix (p_) or a comma list of columns.")),
    ("logits", Optional[str], typer.Option(None, "--logits", metavar="PREFIX|A,B,...", help="Logit columns: a prefix (logit_) or a comma list.")),
    ("positive_prob", Optional[str], typer.Option(None, "--positive-prob", metavar="COL", help="Binary: one column holding P(positive class).")),
    ("positive_logit", Optional[str], typer.Option(None, "--positive-logit", metavar="COL", help="Binary: one column holding the positive class's logit.")),
    ("positive_label", Optional[str], typer.Option(None, "--positive-label", metavar="LABEL", help="Binary: which label is positive (default: 1, True, or the column's class as in p_churn; other labels must say).")),
    ("targets", Optional[str], typer.Option(None, "--targets", metavar="PREFIX|A,B,...", help="Soft targets: per-class target probability columns instead of a label.")),
    ("classes", Optional[str], typer.Option(None, "--classes", metavar="A,B,...", help="The full class set and its order, including classes with no examples.")),
    ("id", Optional[str], typer.Option(None, "--id", metavar="COL", help="Example id column: pairs examples across runs, and is shown for the worst examples.")),
    ("weight", Optional[str], typer.Option(None, "--weight", metavar="COL", help="Example weight column.")),
    ("split", Optional[str], typer.Option(None, "--split", metavar="COL", help="Split column, e.g. train/validation (default: 'split' if present).")),
    ("by", Optional[List[str]], typer.Option(None, "--by", metavar="COL", help="Slice column; repeat for several.")),
    ("cluster", Optional[str], typer.Option(None, "--cluster", metavar="COL", help="Units sharing a value of COL (a passage, a template) are correlated: comparisons use clustered standard errors. lm-eval: a field of the record's doc, e.g. doc.passage.")),
    # Reading: what detection cannot know, or guessed wrong.
    ("format", Optional[str], typer.Option(None, "--format", metavar="csv|tsv|parquet|jsonl|arrow", help="Format of standard input ('-', default csv) or of files without a known ending.")),
    ("encoding", Optional[str], typer.Option(None, "--encoding", metavar="NAME", help="Text encoding of CSV/TSV files, e.g. latin-1 or cp1252 (default: UTF-8, with or without BOM).")),
    ("sep", Optional[str], typer.Option(None, "--sep", metavar="CHAR", help="CSV separator, e.g. ';' or '\\t' (default: ',' for .csv, tab for .tsv; a header without commas is sniffed for ';', tab or '|').")),
    ("decimal", Optional[str], typer.Option(None, "--decimal", metavar=".|,", help="Decimal mark of numbers in CSV/TSV files (default: '.', or ',' when detected in a ';'-separated file).")),
    ("labels", Optional[str], typer.Option(None, "--labels", metavar="FILE", help="Labels in a separate file (id + label columns), joined to the predictions on --id.")),
    ("allow_missing_labels", bool, typer.Option(Options.allow_missing_labels, "--allow-missing-labels/--no-allow-missing-labels", help="With --labels: score the ids found in both files and say how many were dropped (default: refuse).")),
    ("renormalize", bool, typer.Option(Options.renormalize, "--renormalize/--no-renormalize", help="Divide each probability row by its sum (otherwise rows are scored as given and counted).")),
    ("bins", int, typer.Option(Options.bins, "--bins", help="Equal-width confidence bins for calibration (ECE).")),
    ("worst", int, typer.Option(Options.worst, "--worst", help="How many worst examples to keep.")),
    # Diagnostics: every threshold of a warning is an option with its default shown. Defaults
    # come from the one options dataclass (Options): one place for the CLI, the API and config files.
    ("near_zero", float, typer.Option(Options.near_zero, "--near-zero", metavar="NATS", help="Warn (near_zero_loss) when a scope's log loss is at or below this; language models: a document whose mean token loss is (memorized_documents).")),
    ("gap", float, typer.Option(Options.gap, "--gap", metavar="FRACTION", help="Warn (generalization_gap) when held-out log loss exceeds training by more than this fraction and the 95% interval of the difference excludes 0.")),
    ("train_split", Optional[str], typer.Option(None, "--train-split", metavar="NAME", help="Name of the training split (default: train or training).")),
    ("prior_shift", float, typer.Option(Options.prior_shift, "--prior-shift", metavar="BITS", help="Warn (prior_shift) when KL(P̂‖Q̄) exceeds this many bits.")),
    ("confident_error", float, typer.Option(Options.confident_error, "--confident-error", metavar="PROB", help="p(true class) at or below this is a confident error.")),
    ("small_sample", int, typer.Option(Options.small_sample, "--small-sample", metavar="N", help="Warn (small_sample) for scopes with fewer examples than this.")),
    ("max_slices", int, typer.Option(Options.max_slices, "--max-slices", metavar="N", help="Show the N largest values of each slice column; fold the rest into 'other'.")),
    ("bootstrap", int, typer.Option(Options.bootstrap, "--bootstrap", metavar="N", help="Also compute percentile intervals from N bootstrap resamples (data must fit in memory); comparisons also get paired bootstrap intervals and p-values of their deltas.")),
    ("seed", int, typer.Option(Options.seed, "--seed", help="Random seed of the bootstrap.")),
    # Language models: token files (one row per token), sequence files (one row per document),
    # lm-evaluation-harness samples (samples_*.jsonl or its output folder).
    ("document", Optional[str], typer.Option(None, "--document", metavar="COL", help="Language models: document id column (default: first of doc_id, document, seq_id, sequence_id); vLLM completions: the field of each line that is its id, dotted for nested fields (default: the line number).")),
    ("logprob", Optional[str], typer.Option(None, "--logprob", metavar="COL", help="Language models: the token's log-probability column (default: first of logprob, token_logprob, log_prob).")),
    ("nll", Optional[str], typer.Option(None, "--nll", metavar="COL", help="Language models: a loss column (−log-probability) instead of --logprob (default: nll or loss).")),
    ("log_base", Optional[float], typer.Option(None, "--log-base", metavar="BASE", help="Language models: the base of the log-probabilities, e.g. 2 for files in bits (default: e, natural log).")),
    ("mask", Optional[str], typer.Option(None, "--mask", metavar="COL", help="Language models: rows with 0/False here are padding or prompt and are not scored (default: mask, attention_mask or loss_mask if present).")),
    ("min_k", float, typer.Option(Options.min_k, "--min-k", metavar="FRACTION", help="Language models: Min-K% Prob uses each document's lowest k·n token log-probs.")),
    ("memorized_prob", float, typer.Option(Options.memorized_prob, "--memorized-prob", metavar="PROB", help="Language models: warn (memorized_documents) when a document's Min-K% Prob is at or above this (or its mean token loss at or below --near-zero).")),
    ("reference", Optional[str], typer.Option(None, "--reference", metavar="FILE", help="Language models: a token or sequence run on text known not to be in the training data; each contamination score's AUROC of this run's documents against its documents, with a bootstrap interval.")),
    # Scale: the same accumulators over a Dask dataframe's partitions.
    ("engine", str, typer.Option("local", "--engine", metavar="local|dask", help="local: stream batches in this process; dask: map over Dask partitions (pip install 'losslens[dask]').")),
    ("scheduler", Optional[str], typer.Option(None, "--scheduler", metavar="ADDRESS", help="With --engine dask: a dask.distributed scheduler to use (default: start a LocalCluster).")),
    # Jobs: baselines, gates, config files, per-example output.
    ("baseline", Optional[str], typer.Option(None, "--baseline", metavar="PREVIOUS.json", help="A JSON report written by losslens earlier: show every metric's change against it and flag regressions.")),
    ("fail_if", Optional[List[str]], typer.Option(None, "--fail-if", metavar="EXPR", help="Exit 1 if EXPR holds for any run: '[scope.]metric OP number', OP one of > >= < <=, scope a split (none: overall), e.g. 'validation.log_loss > 0.35'; 'delta.METRIC' is the change against --baseline, or with several inputs of each later run against the first; 'delta.log_loss > 0 significant' fails only when the paired change is significant (adjusted p < 0.05). Repeatable.")),
    ("fail_on_warning", Optional[List[str]], typer.Option(None, "--fail-on-warning", metavar="CODE", help="Exit 1 if any run has this warning ('any' for all). Repeatable.")),
    ("per_example", Optional[str], typer.Option(None, "--per-example", metavar="OUT.csv|OUT.parquet", help="Write one row per example: run, row, id, label, predicted class, p(true class), loss in nats and bits, split, slices (language models: one row per document; Trainer runs: one row per logged step).")),
    ("per_class", Optional[str], typer.Option(None, "--per-class", metavar="OUT.csv", help="Write one CSV row per class (every class, also at 10,000 classes): examples, log loss, excess loss, recall, precision, shares, ECE, most confused with ('-' for standard output).")),
    ("config", Optional[str], typer.Option(None, "--config", metavar="FILE.toml", help="Read options from this TOML file (default: [tool.losslens] in ./pyproject.toml). Keys are option names with underscores; the command line overrides them.")),
    ("quiet", bool, typer.Option(False, "--quiet/--no-quiet", "-q", help="Print nothing but errors and failed gates (--no-quiet overrides a config file).")),
]


#: Number options whose default is None (so the default cannot tell their type).
_NUMBERS_WITHOUT_DEFAULT = {name for name, annotation, _ in COMMON_OPTIONS if annotation == Optional[float]}


def with_common_options(command):
    """Give ``command`` the shared options in its signature; they arrive as ``**common``.

    The command also receives ``ctx`` (the click context), which tells which options came
    from the command line and so must not be replaced by the config file's values.
    """
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context) if p.name == "ctx"
        else p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(command).parameters.values()
        if p.kind != p.VAR_KEYWORD
    ]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, annotation, default in COMMON_OPTIONS
    ]
    command.__signature__ = inspect.Signature(shared + own)
    return command


def _settings(ctx: typer.Context):
    """What a config file may set for this command: every option but ``--config`` itself."""
    from .config import Setting

    settings = []
    for param in ctx.command.params:
        if param.param_type_name != "option" or param.name in ("config", "version", "help"):
            continue
        long = max((o for o in param.opts if o.startswith("--")), key=len)
        # Every option's default has its type (15, 0.01, False) or is None for a text option.
        default = param.default
        if getattr(param, "is_flag", False) or isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, (int, float)):
            kind = type(default).__name__
        elif param.name in _NUMBERS_WITHOUT_DEFAULT:
            # --log-base has no default: its annotation says a config file gives a number.
            kind = "float"
        else:
            kind = "str"
        settings.append(Setting(long[2:].replace("-", "_"), param.name, kind, bool(param.multiple)))
    return settings


def _with_config(ctx: typer.Context, values: dict) -> dict:
    """The command's option values with the config file's filled in where not given."""
    from .config import merge, read_config

    config = read_config(values.get("config"), _settings(ctx))
    # Compared by name: typer ships its own copy of click, so the enum class may differ.
    given = {
        name for name in values
        if getattr(ctx.get_parameter_source(name), "name", "") in ("COMMANDLINE", "ENVIRONMENT")
    }
    return merge(values, config, given)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _outputs(values: dict) -> list[tuple[str, str]]:
    """Every output of the command as (option, path), in the order they are written."""
    named = [("--per-example", values["per_example"])]
    named += [(flag, _path_of(values, key)) for _, flag, key, _ in REPORTERS]
    return [(option, path) for option, path in named if path]


def _path_of(values: dict, key: str) -> str | None:
    """Where a reporter's output goes (None: not asked for); the page only from `report`."""
    return values.get(key) if key != "output" or values.get("html") else None


def _run(ctx: typer.Context, values: dict, html: bool = False) -> None:
    """Run the job and write every output; exit with the outcome's code.

    Outputs are checked against the inputs before anything is read; everything is computed
    and rendered before anything is written, so a usage or input error leaves no output
    behind; a failed gate still writes every output.
    """
    per_example = None
    try:
        values = {**_with_config(ctx, values), "html": html}
        from .job import split_options
        from .output import check_outputs

        # A labels file is read like an input, so no output may land on it either.
        check_outputs(_outputs(values), [*values["inputs"], *([values["labels"]] if values.get("labels") else [])])
        options, job = split_options(values)
        if values["per_example"]:
            from .per_example import PerExampleWriter

            # run_job refuses it with --engine dask. Its columns follow the detected layout
            # (an id column found by detection included).
            per_example = PerExampleWriter(values["per_example"])
        result = _run_job(values, options, job, per_example)
        outputs = _render_outputs(result, values)
        _print_summary(result, values, outputs)
        if per_example is not None:
            per_example.commit()
            if not values["quiet"]:
                typer.echo(f"per-example values written to {values['per_example']}", err=True)
            per_example = None
        _write_outputs(outputs, values["quiet"])
    except LosslensError as exc:
        if per_example is not None:
            per_example.abort()
        raise _fail(str(exc)) from None
    except OSError as exc:
        if per_example is not None:
            per_example.abort()
        raise _fail(f"cannot write output: {exc}") from None
    except BaseException:
        if per_example is not None:
            per_example.abort()
        raise
    if not result.passed:
        if values["quiet"]:
            from .terminal import failed_gate_lines

            # Quiet still says why the job failed: one line per failed gate, on stderr.
            for line in failed_gate_lines(result.gates):
                typer.echo(line, err=True)
        raise typer.Exit(GATE_FAILED)


def _run_job(values: dict, options, job, per_example):
    """:func:`losslens.job.run_job` with the command line's observers (per-example rows, progress)."""
    from .job import run_job
    from .threads import share_one_malloc_arena

    share_one_malloc_arena()  # before the worker threads start; changes no figure: see there
    observers = [per_example] if per_example is not None else []
    progress = None
    if not values["quiet"] and job.engine == "local" and _isatty(sys.stdout):
        # Jobs (stdout to a pipe or a log) get no progress line; Progress itself also
        # stays silent unless stderr, where it draws, is a terminal.
        from .progress import Progress, known_rows

        progress = Progress(total=known_rows(values["inputs"]))
        observers.append(progress)
    try:
        result = run_job(values["inputs"], options, job, observers=observers)
    finally:
        if progress is not None:
            progress.close()
    if per_example is not None and result.kind != "classifier":
        # Language models: one row per document, from the result (the engine's observers
        # see classifier batches only).
        from .lm.export import per_document_rows

        per_example.write_table(per_document_rows(result.evaluation))
    return result


def _render_outputs(result, values: dict) -> list[tuple[str, str | None, str | None]]:
    """Every output's text, rendered before any is written: ``(what, path, text)`` in writing order."""
    outputs = []
    for what, _, key, render in REPORTERS:
        path = _path_of(values, key)
        outputs.append((what, path, render(result, values) if path else None))
    return outputs


def _json_text(result, values: dict) -> str:
    from .output import json_text

    # A pinned time (--generated-at, SOURCE_DATE_EPOCH) goes into the JSON, so trend can order nights.
    return json_text(result.to_dict(pinned_time(values["generated_at"])))


def _markdown_text(result, values: dict) -> str:
    from .markdown import job_markdown

    return job_markdown(result)


def _per_class_text(result, values: dict) -> str:
    from .per_class import per_class_text

    return per_class_text(result.runs)


def _print_summary(result, values: dict, outputs: list) -> None:
    """Print the job's summary: on stdout, or on stderr when a document goes to stdout."""
    from .output import is_standard_output
    from .terminal import job_text

    to_stdout = any(bool(path) and is_standard_output(path)
                    for what, path, _ in outputs if what in ("per-class values", "JSON", "markdown summary"))
    if not values["quiet"]:
        # With JSON, markdown or the per-class CSV on stdout (-, /dev/stdout) everything
        # else goes to stderr, so that stdout holds that document alone.
        typer.echo(job_text(result), nl=False, err=to_stdout)


def _write_outputs(outputs: list, quiet: bool) -> None:
    """Write every rendered output whole, and say where (unless quiet or on stdout)."""
    from .output import is_standard_output, write_markdown, write_text

    for what, path, text in outputs:
        if path and text is not None:
            # The markdown summary is appended to $GITHUB_STEP_SUMMARY's file (GitHub's convention).
            done = write_markdown(path, text) if what == "markdown summary" else (write_text(path, text) or "written to")
            if not quiet and not is_standard_output(path):
                typer.echo(f"{what} {done} {path}", err=True)


def _render_html(result, values: dict) -> str:
    """Render the HTML report of the job."""
    from .html import render_report

    return render_report(
        result,
        generated_at=resolve_generated_at(values["generated_at"]),
        command_line=command_line(),
        template_dir=values["template_dir"],
    )


#: Every reporter of a job: ``(what, option, value key of its path, render(result, values))``, in
#: writing order. A new reporter is one line here (its option in COMMON_OPTIONS) and its module.
REPORTERS = (
    ("per-class values", "--per-class", "per_class", _per_class_text),
    ("JSON", "--json", "json_path", _json_text),
    ("markdown summary", "--markdown", "markdown_path", _markdown_text),
    ("HTML report", "-o", "output", _render_html),
)


@app.command(help="Compute the metrics of each INPUT (a run) and print a summary; with several "
             "INPUTs, compare each with the first.\n\n" + LAYOUT_HELP + EXIT_HELP)
@with_common_options
def metrics(
    ctx: typer.Context,
    generated_at: Optional[str] = typer.Option(None, "--generated-at", metavar="ISO-TIME", help="Pin the time written to the JSON as generated_at (default: SOURCE_DATE_EPOCH if set, else none), so that 'losslens trend' orders nights by it."),
    **common,
) -> None:
    _run(ctx, {**common, "generated_at": generated_at})


def _help_for(command: str) -> str:
    """The layout help with its example spelled for ``command`` (``report --help`` showed ``metrics``)."""
    return LAYOUT_HELP.replace("losslens metrics ", f"losslens {command} ")


@app.command(help="Write a self-contained HTML report (and optionally JSON) for each INPUT.\n\n"
             + _help_for("report") + EXIT_HELP)
@with_common_options
def report(
    ctx: typer.Context,
    output: str = typer.Option("report.html", "-o", "--output", metavar="PATH", help="Where to write the HTML report."),
    template_dir: Optional[str] = typer.Option(None, "--template-dir", metavar="DIR", help="Folder of templates searched before the built-in ones."),
    generated_at: Optional[str] = typer.Option(None, "--generated-at", metavar="ISO-TIME", help="Pin the report's generation time, also written to the JSON as generated_at (default: SOURCE_DATE_EPOCH if set, else now; the JSON then has none)."),
    **common,
) -> None:
    _run(ctx, {**common, "output": output, "template_dir": template_dir, "generated_at": generated_at}, html=True)


def main() -> None:
    """The command line with its process-wide settings (run by the entry point, :func:`losslens.__main__.main`)."""
    from .threads import (choose_arrow_memory_pool, collect_cycles_less_often, leave_objects_to_the_exit,
                          quiet_blas_threads)

    # Process-wide settings of the command (a library user's process is left alone), read by
    # OpenBLAS and Arrow when numpy and pyarrow load, and by Python's garbage collector. None
    # changes a figure: see each.
    quiet_blas_threads()
    choose_arrow_memory_pool()
    collect_cycles_less_often()
    try:
        app(prog_name="losslens")  # ends with SystemExit
    finally:
        leave_objects_to_the_exit()


if __name__ == "__main__":  # pragma: no cover
    main()

# Commands defined in their own modules register themselves on `app` when imported.
from .cli_trend import trend as _trend  # noqa: E402,F401 (registers `losslens trend` on app)
