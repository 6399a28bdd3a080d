"""The HTML report: page content from a JobResult, charts as inline SVG, Jinja templates.

Two layers, as in coverage.py: :mod:`losslens.html.page` builds plain dataclasses
(:mod:`losslens.html.model`), one view model per section -- :mod:`~losslens.html.run`,
:mod:`~losslens.html.comparisons`, :mod:`~losslens.html.baseline`, :mod:`~losslens.html.gates`
-- with :mod:`losslens.html.charts` for the SVGs, and :mod:`losslens.html.render` fills the
templates (Jinja environment in :mod:`losslens.html.templates`). Both are pure; the caller writes the returned string (through losslens.output).
"""

from __future__ import annotations

from .render import render_report
from .templates import make_environment, template_dirs

__all__ = ["render_report", "make_environment", "template_dirs"]
