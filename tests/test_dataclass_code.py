"""The cache of the code @dataclass writes for losslens's classes (losslens.dataclass_code).

Each process below gets its own ``PYTHONPYCACHEPREFIX``, so the cache file (and the bytecode)
goes to a temporary folder and the checkout's own cache is never touched.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from losslens import dataclass_code

SRC = Path(__file__).resolve().parents[1] / "src"

#: Imports a few modules with dataclasses, uses their generated functions, and reports what
#: the cache did in this process.
_PROBE = """
import json, sys
from losslens import dataclass_code
import losslens.evaluation, losslens.accumulate
from losslens.options import Options
a, b = Options(bins=7), Options(bins=7)
try:
    a.n_bins = 3
    frozen = False
except Exception as error:
    frozen = type(error).__name__
print(json.dumps({"path": dataclass_code.cache_path(), "compiled": dataclass_code._state["changed"],
                  "entries": len(dataclass_code._cache), "equal": a == b, "hash": hash(a) == hash(b),
                  "repr": repr(a).startswith("Options(") and "bins=7" in repr(a), "frozen": frozen}))
"""


def _run(prefix: Path, *, write: bool = True) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONPYCACHEPREFIX": str(prefix)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_first_process_compiles_and_writes_next_one_reads(tmp_path):
    first = _run(tmp_path)
    path = Path(first["path"])
    assert str(path).startswith(str(tmp_path)) and path.name.startswith("dataclass_functions.")
    assert first["compiled"] and path.is_file()
    data = path.read_bytes()
    assert data.startswith(importlib.util.MAGIC_NUMBER)
    second = _run(tmp_path)
    # Every function of these modules came from the file: nothing was compiled again.
    assert second["compiled"] is False and second["entries"] == first["entries"] > 20
    assert path.read_bytes() == data
    for run in (first, second):  # the functions behave as @dataclass's own
        assert run["equal"] and run["hash"] and run["repr"] and run["frozen"] == "FrozenInstanceError"


def test_nothing_written_without_bytecode_writing(tmp_path):
    run = _run(tmp_path, write=False)
    assert run["compiled"] and not Path(run["path"]).exists()


def test_damaged_or_foreign_file_is_compiled_anew_and_replaced(tmp_path):
    path = Path(_run(tmp_path)["path"])
    for content in (b"not a cache", b"\x00\x00\x00\x00" + path.read_bytes()[4:], path.read_bytes()[:100]):
        path.write_bytes(content)
        run = _run(tmp_path)
        assert run["compiled"] and run["equal"] and run["repr"]
        assert path.read_bytes().startswith(importlib.util.MAGIC_NUMBER)
        assert _run(tmp_path)["compiled"] is False


def test_prime_writes_every_module_even_without_bytecode_writing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONPYCACHEPREFIX": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", "from losslens import dataclass_code as d; print(d.prime())"],
                          capture_output=True, text=True, env=env, check=True)
    assert int(done.stdout.split()[-1]) > 300  # the report's and the harness readers' classes too
    run = _run(tmp_path, write=False)
    assert run["compiled"] is False


def test_prime_leaves_out_the_functions_of_classes_that_are_no_more(tmp_path):
    path = Path(_run(tmp_path)["path"])
    stale = "def __create_fn__():\n def __init__(self):\n  pass\n return __init__"
    entries = dataclass_code._read(str(path))
    entries[stale] = b"not even code"
    path.write_bytes(importlib.util.MAGIC_NUMBER + marshal.dumps(entries))
    assert _run(tmp_path)["compiled"] is False  # a run keeps what it does not use
    assert stale in dataclass_code._read(str(path))
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONPYCACHEPREFIX": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", "from losslens import dataclass_code as d; print(d.prime())"],
                          capture_output=True, text=True, env=env, check=True)
    kept = dataclass_code._read(str(path))
    assert stale not in kept and len(kept) == int(done.stdout.split()[-1]) >= len(entries) - 1


def test_other_packages_classes_are_left_to_python(monkeypatch):
    seen = []
    monkeypatch.setattr(dataclass_code, "code_of", lambda source: seen.append(source))
    namespace: dict = {}
    dataclass_code.cached_exec("def f():\n    return 41 + 1\n", {"__name__": "someone_else"}, namespace)
    assert namespace["f"]() == 42 and seen == []

    @dataclasses.dataclass(frozen=True)
    class Point:  # this test module's class: not losslens's
        x: int

    assert Point(1) == Point(1) and seen == []


def test_losslens_sources_run_as_exec_would_run_them():
    source = "def __create_fn__(_return_type):\n def answer(self)->_return_type:\n  return 6 * 7\n return answer"
    globals_ = {"__name__": "losslens.some_module"}
    mine, python = {}, {}
    dataclass_code.cached_exec(source, globals_, mine)
    exec(source, dict(globals_), python)
    assert mine["__create_fn__"](int)(None) == python["__create_fn__"](int)(None) == 42
    code = dataclass_code.code_of(source)
    assert code.co_filename == "<string>" and dataclass_code.code_of(source) == code


def test_unwritable_place_is_left_alone(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setitem(dataclass_code._state, "changed", True)
    assert dataclass_code.save(str(blocker / "sub" / "cache.marshal")) is False  # a file where a folder must be
    assert blocker.read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("entries", [1, dataclass_code.MAX_ENTRIES + 1])
def test_a_cache_that_grew_too_large_starts_afresh(tmp_path, monkeypatch, entries):
    cache = {f"source {i}": b"x" for i in range(entries)}
    monkeypatch.setattr(dataclass_code, "_cache", cache)
    monkeypatch.setitem(dataclass_code._state, "changed", True)
    path = tmp_path / "cache.marshal"
    assert dataclass_code.save(str(path))
    assert len(dataclass_code._read(str(path))) == (entries if entries == 1 else 0)
