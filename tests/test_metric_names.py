"""Each metric's JSON name is spelled in at most two modules: the catalog and the computation.

Every other module (reporters, gates, the trend, the JSON writer, exports) takes the name from
:mod:`losslens.catalog` (a constant such as ``catalog.LOG_LOSS``, a view, or an entry's label),
so that renaming a metric, or adding one, is an edit to the catalog and the module computing it.

A "spelling" is a string literal equal to a catalog name anywhere in a module, docstrings
excepted (they explain names; they do not key anything). Comments are not literals.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

from losslens import catalog

SRC = Path(catalog.__file__).parent

#: Folders whose modules read other tools' formats: a field of someone else's file that has a
#: catalog name (HELM's ``perplexity``, a vLLM log's ``acc``) is that tool's name, not ours.
EXEMPT_FOLDERS = ("readers/", "layouts/")

#: Modules that read another harness's fields of the same name (issue 18's exemption): renaming
#: a losslens metric must not change what they look up in someone else's output.
EXEMPT = {
    "lm/harness.py": "reads inspect-ai's and HELM's logged figures (acc, acc_norm, perplexity, bits_per_byte)",
    "lm/harness_more.py": "reads lighteval's details fields (acc, acc_norm, word_/byte_perplexity, bits_per_byte)",
    "lm/lm_eval_units.py": "reads lm-eval's per-record fields (acc, acc_norm, word_/byte_perplexity, bits_per_byte)",
    "lm/lm_eval_results.py": "reads lm-eval's results_*.json figures (acc, acc_norm, perplexity, bits_per_byte)",
}

#: A literal that equals a metric name in another role: not the JSON name, so not routed.
ROLES = {
    ("cli.py", "cluster"): "the --cluster option's parameter name, one entry of the option table",
    ("html/comparisons.py", "cluster"): "the English noun of plural(n, 'cluster'): '3 clusters'",
}

#: Names still spelled in a third module only because that module is being changed elsewhere;
#: each entry is to be removed when the module takes the name from the catalog. The test fails
#: when an entry is no longer needed, so this list can only shrink.
PENDING: dict = {}


def catalog_names() -> set[str]:
    """Every name of every catalog table (metrics, LM metrics, comparison fields, Trainer figures, scores)."""
    return {m.name for value in vars(catalog).values() if isinstance(value, tuple)
            for m in value if isinstance(m, catalog.Metric)}


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def spellings(names: set[str]) -> dict[str, set[str]]:
    """``{name: modules}``: the modules of ``src/losslens`` (relative paths) with ``name`` as a literal."""
    where: dict[str, set[str]] = collections.defaultdict(set)
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(EXEMPT_FOLDERS) or rel in EXEMPT:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
                    and id(node) not in docs and (rel, node.value) not in ROLES):
                where[node.value].add(rel)
    return where


def test_catalog_names_are_found():
    names = catalog_names()
    # One of each table, so that a table the walk misses fails here rather than passing silently.
    assert {"log_loss", "bits_per_byte", "log_loss_delta_ci95", "eval_loss", "min_k_prob"} <= names
    assert spellings(names)["log_loss"] >= {"catalog.py"}


def test_each_name_spelled_in_at_most_two_modules():
    over = {}
    for name, modules in spellings(catalog_names()).items():
        rest = modules - set(PENDING.get(name, ()))
        if len(rest) > 2:
            over[name] = sorted(modules)
    assert over == {}, "take these names from losslens.catalog (a constant, a view or a label):\n" + "\n".join(
        f"  {name}: {', '.join(modules)}" for name, modules in sorted(over.items()))


def test_the_catalog_spells_each_of_its_names():
    """The catalog is always one of the two, so a name is computed where only one more module spells it."""
    where = spellings(catalog_names())
    assert all("catalog.py" in where[name] for name in catalog_names())


def test_constants_equal_their_names():
    """A constant such as ``catalog.LOG_LOSS`` is its entry's name (no typo'd copy)."""
    constants = {key: value for key, value in vars(catalog).items() if key.isupper() and isinstance(value, str)}
    names = catalog_names()
    for key, value in constants.items():
        if key.lower() in names:
            assert value == key.lower(), key
    assert catalog.LOG_LOSS == catalog.metric(catalog.LOG_LOSS).name == "log_loss"


def test_allow_lists_are_needed():
    names = catalog_names()
    for rel in EXEMPT:
        tree = ast.parse((SRC / rel).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Constant) and n.value in names for n in ast.walk(tree)), rel
    for rel, name in ROLES:
        tree = ast.parse((SRC / rel).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.Constant) and n.value == name for n in ast.walk(tree)), (rel, name)
    where = spellings(names)
    for name, modules in PENDING.items():
        assert set(modules) <= where[name] and len(where[name]) > 2, f"PENDING[{name!r}] is done: remove it"
