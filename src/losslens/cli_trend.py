"""The ``losslens trend`` command: nightly JSON documents in, a trend page, JSON and markdown out.

Registered on :data:`losslens.cli_app.app` when :mod:`losslens.cli` is imported (one import
line at its end). Like the other commands it computes and renders everything before it
writes anything, writes each output whole or not at all, and exits 0 (every gate passed),
1 (a gate failed; every output is still written) or 2 (bad input or usage, one line on
stderr, nothing written).
"""

from __future__ import annotations

import glob
import os
from typing import List, Optional

import typer

from .cli_app import GATE_FAILED, app, command_line
from .cli_app import fail as _fail
from .errors import LosslensError
from .job import resolve_generated_at

TREND_HELP = """Show nightly runs side by side: read JSON documents written by 'losslens
metrics --json' (or report --json), one per night, and write a trend page (-o),
trend JSON (--json) and a markdown summary (--markdown).

\b
Documents of every kind (classifier, language model, lm-eval tasks as runs
<checkpoint>/<task>) and format version are read. Nights are ordered by each
document's generated_at when all have one, else by the natural order of the
file names: name nightly files by date (reports/2026-03-01.json) or pin
--generated-at when writing them. A copy of another document (a baseline.json
in the nightly folder) is skipped with a note.

\b
A night gets a trend_shift warning (run, split or slice) when its log loss
lies outside the range expected from the previous --window nights (from the
fourth night on): |log loss - median before| > its 95% half-width + the
median half-width before. Gates (--fail-if, --fail-on-warning; 'trend_shift'
included) look at the latest night.

\b
Exit codes: 0 every gate passed, 1 a gate failed (outputs are still written),
2 bad input or usage (nothing written).
"""


def expand_inputs(inputs: list[str]) -> list[str]:
    """Paths as given; a quoted glob pattern (``"reports/*.json"``) is expanded here."""
    paths: list[str] = []
    for item in inputs:
        if any(c in item for c in "*?[") and not os.path.exists(item):
            matches = sorted(glob.glob(item))
            if not matches:
                from .errors import InputError

                raise InputError(f"{item}: no file matches this pattern")
            paths.extend(matches)
        else:
            paths.append(item)
    return paths


@app.command(help=TREND_HELP)
def trend(
    inputs: List[str] = typer.Argument(..., metavar="REPORT.json", help="JSON documents written by losslens --json, one per night (a quoted glob works too)."),
    output: str = typer.Option("trend.html", "-o", "--output", metavar="PATH", help="Where to write the trend page."),
    json_path: Optional[str] = typer.Option(None, "--json", metavar="PATH", help="Write the trend JSON here ('-' for standard output)."),
    markdown_path: Optional[str] = typer.Option(None, "--markdown", metavar="PATH", help="Write a GitHub-flavoured markdown summary here ('-' for standard output); appended to $GITHUB_STEP_SUMMARY's file, as GitHub expects."),
    window: int = typer.Option(7, "--window", metavar="N", help="How many previous nights set a night's expected range."),
    fail_if: Optional[List[str]] = typer.Option(None, "--fail-if", metavar="EXPR", help="Exit 1 if EXPR holds for a run of the latest night: '[split.]metric OP number', e.g. 'validation.log_loss > 0.35'. Repeatable."),
    fail_on_warning: Optional[List[str]] = typer.Option(None, "--fail-on-warning", metavar="CODE", help="Exit 1 if the latest night has this warning (trend_shift, a metrics warning code, or 'any'). Repeatable."),
    generated_at: Optional[str] = typer.Option(None, "--generated-at", metavar="ISO-TIME", help="Pin the page's generation time (default: SOURCE_DATE_EPOCH if set, else now)."),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="Print nothing but errors and failed gates."),
) -> None:
    """Read the nights, find shifts, check gates; write the page, JSON and markdown."""
    try:
        from .formatting import visible
        from .markdown import markdown_summary
        from .output import check_outputs, is_standard_output, json_text, write_markdown, write_text
        from .terminal import failed_gate_lines, gates_text, trend_text
        from .trend import build_trend, check_trend_gates, load_documents, parse_trend_gates

        gates = parse_trend_gates(fail_if, fail_on_warning)
        paths = expand_inputs(inputs)
        outputs = [(option, path) for option, path in (("--json", json_path), ("--markdown", markdown_path),
                                                        ("-o", output)) if path]
        # The same check as every command's: no output over a night's document, none twice.
        check_outputs(outputs, inputs)
        moment = resolve_generated_at(generated_at)
        result = build_trend(load_documents(paths), window=window)
        gate_report = check_trend_gates(gates, result) if gates else None
        document = result.to_dict()
        if gate_report is not None:
            from .evaluation import json_safe

            document["gates"] = json_safe(gate_report.to_dict())
        texts = {"--json": json_text(document) if json_path else None,
                 "--markdown": markdown_summary(document) if markdown_path else None}
        from .html.trend import render_trend

        texts["-o"] = render_trend(result, generated_at=moment, command_line=command_line(), gates=gate_report)
        to_stdout = any(is_standard_output(path) for _, path in outputs)
        if not quiet:
            text = trend_text(result) + (gates_text(gate_report) if gate_report else "")
            typer.echo(text, nl=False, err=to_stdout)
            for note in result.notes:  # documents skipped as copies: the user should know which
                typer.echo(f"note: {visible(note)}", err=True)
        what = {"--json": "trend JSON", "--markdown": "markdown summary", "-o": "trend page"}
        for option, path in outputs:
            # The markdown summary is appended to $GITHUB_STEP_SUMMARY's file (GitHub's convention).
            done = write_markdown(path, texts[option]) if option == "--markdown" else (write_text(path, texts[option]) or "written to")
            if not quiet and not is_standard_output(path):
                typer.echo(f"{what[option]} {done} {path}", err=True)
    except LosslensError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write output: {exc}") from None
    if gate_report is not None and not gate_report.passed:
        if quiet:
            for line in failed_gate_lines(gate_report):
                typer.echo(line, err=True)
        raise typer.Exit(GATE_FAILED)


__all__ = ["trend", "expand_inputs"]
