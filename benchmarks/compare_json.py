"""Whole-JSON comparison of ``losslens metrics --json`` between two source trees.

Usage::

    .venv/bin/python benchmarks/compare_json.py OLD_SRC NEW_SRC FILE_OR_FOLDER... [--rel 1e-12] [--whole]

Runs ``losslens metrics FILE --json OUT --quiet`` with ``PYTHONPATH=OLD_SRC`` and with
``PYTHONPATH=NEW_SRC`` on every file (a folder stands for the files directly in it that
losslens reads; with ``--whole`` each path is one run as given, e.g. a harness's log folder),
and compares the two documents key by key (documents of an older format_version as the new
tree reads them, through losslens.json_documents.upgrade_document): names, counts and every other
non-float value exactly, floats within ``--rel`` relative (``abs(a - b) <= rel * max(|a|, |b|)``;
NaN equals NaN). The new tree also runs twice, and its two documents must be byte-identical
(threads merge their sums in a fixed order). Inputs that the old tree refuses must be refused by
the new one with the same message. Prints one line per file and every difference; exit code 1 if
any.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: File endings losslens reads (folders are expanded to the files with these).
ENDINGS = (".csv", ".tsv", ".parquet", ".jsonl", ".arrow", ".feather", ".gz")
#: Keys that legitimately differ between two trees run on the same file (none today).
SKIP: tuple[str, ...] = ()


def run(src: str, path: Path, out: Path) -> tuple[int, str]:
    """Run ``losslens metrics`` from the tree at ``src``; return its exit code and stderr's last line."""
    env = {**os.environ, "PYTHONPATH": src}
    result = subprocess.run([sys.executable, "-m", "losslens", "metrics", str(path), "--json", str(out), "--quiet"],
                            env=env, capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    return result.returncode, lines[-1] if lines else ""


def differences(a, b, rel: float, path: str = "$"):
    """Yield ``(path, a, b, relative difference)`` for every value that differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key in SKIP:
                continue
            if key not in a or key not in b:
                yield f"{path}.{key}", a.get(key, "<missing>"), b.get(key, "<missing>"), math.inf
                continue
            yield from differences(a[key], b[key], rel, f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield path, f"{len(a)} items", f"{len(b)} items", math.inf
            return
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, rel, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return
        scale = max(abs(a), abs(b))
        diff = abs(a - b)
        if diff > rel * scale:
            yield path, a, b, diff / scale if scale else math.inf
    elif a != b or type(a) is not type(b):
        yield path, a, b, math.inf


def inputs(paths: list[str], whole: bool = False) -> list[Path]:
    """The files named, folders expanded to their readable files (sorted) unless ``whole``."""
    files = []
    for name in paths:
        path = Path(name)
        if path.is_dir() and not whole:
            files += sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(ENDINGS))
        else:
            files.append(path)
    return files


def compare(old_src: str, new_src: str, path: Path, rel: float, work: Path) -> list[str]:
    """The differences between the two trees' JSON for ``path`` (empty: same), printed as lines."""
    old, new, again = work / "old.json", work / "new.json", work / "again.json"
    for out in (old, new, again):
        out.unlink(missing_ok=True)
    old_code, old_err = run(old_src, path, old)
    new_code, new_err = run(new_src, path, new)
    if old_code or new_code:
        if (old_code, old_err) == (new_code, new_err):
            return []
        return [f"  exit codes {old_code} / {new_code}: {old_err!r} / {new_err!r}"]
    documents = comparable(json.loads(old.read_text()), json.loads(new.read_text()), new_src)
    problems = [f"  {where}: {a!r} / {b!r} (rel. {r:.1e})" for where, a, b, r in differences(*documents, rel)]
    run(new_src, path, again)
    if new.read_bytes() != again.read_bytes():
        problems.append("  two runs of the new tree wrote different bytes")
    if not problems and old.read_bytes() == new.read_bytes():
        problems.append(IDENTICAL)
    return problems


def comparable(old: dict, new: dict, new_src: str) -> tuple[dict, dict]:
    """The two documents as the new tree reads them: another format_version goes through its adapter."""
    if old.get("format_version") == new.get("format_version"):
        return old, new
    sys.path.insert(0, new_src)
    from losslens.json_documents import upgrade_document

    return upgrade_document(old, "old"), upgrade_document(new, "new")


#: Said of a file whose two documents are byte-identical (not a difference).
IDENTICAL = "  (byte-identical to the old tree's)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old_src")
    parser.add_argument("new_src")
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--rel", type=float, default=1e-12)
    parser.add_argument("--whole", action="store_true", help="Give each path to losslens as one run.")
    args = parser.parse_args(argv)
    failed = same_bytes = 0
    files = inputs(args.paths, args.whole)
    with tempfile.TemporaryDirectory() as folder:
        for path in files:
            problems = compare(args.old_src, args.new_src, path, args.rel, Path(folder))
            identical = problems == [IDENTICAL]
            bad = bool(problems) and not identical
            print(f"{'DIFFERENT' if bad else 'same     '} {path}" + (IDENTICAL if identical else ""))
            for line in problems if bad else ():
                print(line)
            failed += bad
            same_bytes += identical
    print(f"\n{len(files) - failed} of {len(files)} files: the same JSON within {args.rel:g} relative"
          f" ({same_bytes} byte-identical to the old tree's), byte-identical across two runs of the new tree")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
