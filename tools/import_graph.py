"""The import graph of src/losslens: cycles, long modules and functions, imports against the stage order.

Every import statement counts: at module level, inside functions, under ``TYPE_CHECKING``,
and a package ``__init__`` re-exporting its modules. ``from . import x`` names the package
(``losslens``) as well as ``losslens.x``, because it runs the package's ``__init__``; a module
object of a sibling is therefore imported as ``import losslens.x as x``.

Run ``python tools/import_graph.py`` from the repository root: it prints every cycle (strongly
connected component), module over 600 lines and function over 80 lines; ``--stages`` also
prints the imports that point from a lower stage to a higher one (the order is in
``tests/test_architecture.py``). ``tests/test_architecture.py`` asserts all of it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def modules(root: Path) -> dict[str, Path]:
    """Every module under ``root`` (the package folder) by dotted name; a package by its own name."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(mods: dict[str, Path]) -> dict[str, list[tuple[str, int, bool, str]]]:
    """Each module's imports: ``(imported module, line, lazy, imported top-level name)``.

    ``lazy`` is True for an import inside a function or class (or under ``if``): it runs when
    called, not when the module loads. Only modules of ``mods`` and third-party top-level
    names are kept (the latter with the module part empty, the name in the last field).
    """
    out: dict[str, list[tuple[str, int, bool, str]]] = {m: [] for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
            else:
                continue
            lazy = id(node) not in top
            for target in targets:
                if target in mods:
                    if target != name:
                        out[name].append((target, node.lineno, lazy, ""))
                elif target.split(".")[0] not in {m.split(".")[0] for m in mods}:
                    out[name].append(("", node.lineno, lazy, target.split(".")[0]))
    return out


def edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the project modules it imports (anywhere in it)."""
    return {m: {t for t, _, _, _ in found if t} for m, found in imports(mods).items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def long_modules(mods: dict[str, Path], limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    """Modules of more than ``limit`` lines (newlines counted, as ``wc -l``)."""
    counts = {m: p.read_text(encoding="utf-8").count("\n") for m, p in mods.items()}
    return {m: n for m, n in counts.items() if n > limit}


def long_functions(mods: dict[str, Path], limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``module.function`` of more than ``limit`` lines (decorators excluded, docstring included)."""
    out = {}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    out[f"{m}.{node.name}"] = length
    return out


def stage_of(module: str, stages: dict[str, int]) -> int:
    """The stage of ``module``: its own entry, else its longest listed prefix's (``losslens.html``)."""
    name = module
    while name:
        if name in stages:
            return stages[name]
        name = name.rpartition(".")[0]
    raise KeyError(f"{module} has no stage: add it to STAGES in tests/test_architecture.py")


def upward_imports(mods: dict[str, Path], stages: dict[str, int]) -> list[str]:
    """Imports from a module to one of a higher stage, as ``a (stage) -> b (stage), line N``."""
    out = []
    for m, found in imports(mods).items():
        for target, line, _, _ in found:
            if target and stage_of(target, stages) > stage_of(m, stages):
                out.append(f"{m} ({stage_of(m, stages)}) -> {target} ({stage_of(target, stages)}), line {line}")
    return sorted(set(out))


def heavy_imports(mods: dict[str, Path], heavy: set[str]) -> dict[tuple[str, str], bool]:
    """``(module, dependency) → lazy`` for every import of a heavy third-party dependency.

    ``lazy`` is True only if every import of it in that module is inside a function.
    """
    out: dict[tuple[str, str], bool] = {}
    for m, found in imports(mods).items():
        for target, _, lazy, name in found:
            if not target and name in heavy:
                out[(m, name)] = out.get((m, name), True) and lazy
    return out


def main(argv: list[str]) -> int:
    """Print the cycles, long modules and functions (and with ``--stages``, upward imports)."""
    root = Path(next((a for a in argv if not a.startswith("-")), "src/losslens"))
    mods = modules(root)
    graph = edges(mods)
    found = cycles(graph)
    for component in found:
        print(len(component), component)
        for a in component:
            for b in sorted(graph[a] & set(component)):
                print("   ", a, "->", b)
    print("cycles:", len(found))
    for m, n in sorted(long_modules(mods).items()):
        print("MODULE", m, n)
    for f, n in sorted(long_functions(mods).items()):
        print("FUNC", f, n)
    if "--stages" in argv:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from test_architecture import STAGES

        for line in upward_imports(mods, STAGES):
            print("UPWARD", line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
