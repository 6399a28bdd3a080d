"""The report templates: one Jinja environment, template lookup, one-line template errors.

Templates are looked up by file name in the user's folder first, then in the built-in one,
so ``--template-dir`` can replace any single template (``style.css``, a partial, or the whole
page). Every HTML writer (the report, its language-model sections, the notebook card, the
trend page) renders through :func:`make_environment`; this module knows no page, so each of
them can import it without importing the others.
"""

from __future__ import annotations

import os
from pathlib import Path

import jinja2
from markupsafe import Markup

from ..errors import UsageError
from ..formatting import visible

#: The template that makes the page; the others are included from it.
MAIN_TEMPLATE = "report.html"


def builtin_template_dir() -> Path:
    """The folder of the built-in templates, inside the package (``losslens/templates``)."""
    folder = Path(__file__).resolve().parent.parent / "templates"
    if (folder / MAIN_TEMPLATE).is_file():
        return folder
    raise UsageError(f"losslens is installed without its report templates (looked in {folder})")


def template_dirs(template_dir: str | os.PathLike | None = None) -> list[str]:
    """The template search path: the user's folder (if given), then the built-in one.

    Raises
    ------
    UsageError
        If ``template_dir`` is given but is not a folder.
    """
    dirs = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise UsageError(f"--template-dir {str(template_dir)!r} is not a folder")
        dirs.append(str(template_dir))
    dirs.append(str(builtin_template_dir()))
    return dirs


def make_environment(template_dir: str | os.PathLike | None = None) -> jinja2.Environment:
    """Build the Jinja environment of the report.

    Parameters
    ----------
    template_dir : str or path, optional
        A folder searched before the built-in templates; a file there replaces the
        built-in file of the same name.

    Returns
    -------
    jinja2.Environment
        With autoescaping on for every template (class names, file names and slice values
        come from the user's data), and ``StrictUndefined`` so that a misspelt field in a
        custom template is an error rather than an empty cell.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dirs(template_dir)),
        # Whitespace as written in the templates, no more; every {{ }} escaped and made visible.
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=True, finalize=_visible,
        undefined=jinja2.StrictUndefined,
    )


def _visible(value):
    """Every text a template prints, with control characters from the data made visible.

    Autoescaping takes care of markup; a NUL or ESC in a class name is not markup, but it is
    invalid in HTML and must not reach the page raw. Checked SVG (Markup) is left alone.
    """
    if isinstance(value, str) and not isinstance(value, Markup) and not value.isprintable():
        return visible(value, keep="\n\t")
    return value


#: File endings of templates (as shipped in the wheel's package data).
TEMPLATE_SUFFIXES = (".html", ".css", ".svg", ".j2")


def _template_error(exc: jinja2.TemplateError) -> UsageError:
    """One line for the user, never a traceback: which template, which line, what."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return UsageError(f"report template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}")
    # TemplateNotFound, UndefinedError, ...
    return UsageError(f"report template error: {type(exc).__name__}: {exc}")


def check_templates(environment: jinja2.Environment) -> None:
    """Compile every template on the search path, so that a syntax error fails fast.

    Called before the charts are drawn (the slow part), so that a broken
    ``--template-dir`` is reported at once.

    Raises
    ------
    UsageError
        If a template does not compile.
    """
    try:
        for name in environment.list_templates(filter_func=lambda n: n.endswith(TEMPLATE_SUFFIXES)):
            environment.get_template(name)
    except jinja2.TemplateError as exc:
        raise _template_error(exc) from None


def render_page(page, environment: jinja2.Environment) -> str:
    """Render a built :class:`~losslens.html.page.ReportPage` to HTML.

    Raises
    ------
    UsageError
        If a template is missing or broken; the message names the template and line.
    """
    try:
        return environment.get_template(MAIN_TEMPLATE).render(page=page)
    except jinja2.TemplateError as exc:
        raise _template_error(exc) from None


