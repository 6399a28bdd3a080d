"""The functions ``@dataclass`` writes for losslens's classes, compiled once and kept like bytecode.

For every dataclass, Python's :mod:`dataclasses` writes the source of ``__init__``, ``__repr__``,
``__eq__`` (and, for a frozen class, ``__setattr__``, ``__delattr__`` and ``__hash__``) and
compiles it with ``exec`` as the class is created, each time a process imports the module. The
modules a classifier run loads create 45 dataclasses: compiling their 243 functions took 20 ms
of the run's 0.15–0.17 s of imports (Python 3.11; issue #22 asks for 0.15 s).

:func:`install` gives :mod:`dataclasses` an ``exec`` that compiles a losslens module's function
source once and keeps the code object, keyed by that very source text, in a file beside the
package's bytecode (``__pycache__/dataclass_functions.<cache tag>.marshal``, or under
``sys.pycache_prefix``). A later process loads the code from there (about 1.5 ms for all of
them) and runs it as ``exec`` would have run the text: the same functions, the same names in
tracebacks. A changed class writes another source text, which is compiled anew; nothing stale
can be used. The file is written at exit when something was compiled, unless
``sys.dont_write_bytecode`` (``PYTHONDONTWRITEBYTECODE``) is set, as Python does with
bytecode; where it cannot be read or written, every class is compiled as before.
:func:`prime` writes it for every module of the package (``make install`` does, beside
``compileall``). Classes of other packages are left to Python's own ``exec``.
"""

from __future__ import annotations

import atexit
import builtins
import importlib.util
import marshal
import os
import sys

#: Stands in for the name of a source file, to place the cache as Python places bytecode.
_CACHE_STEM = "dataclass_functions.py"
#: The package whose modules' classes are cached (``losslens`` and its submodules).
_PACKAGE = __name__.rpartition(".")[0] or __name__
#: A cache file holding more sources than this is started afresh (old classes' functions pile up).
MAX_ENTRIES = 4000

_cache: dict[str, bytes] = {}     # source text -> marshalled code object, as read and compiled
_used: set[str] = set()           # the sources this process asked for
_state = {"loaded": False, "changed": False, "exit_hook": False}


def cache_path() -> str:
    """Where the code is kept: beside the package's bytecode, as ``importlib`` would put it."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), _CACHE_STEM)
    return os.path.splitext(importlib.util.cache_from_source(source))[0] + ".marshal"


def install() -> None:
    """Make :mod:`dataclasses` compile this package's dataclass functions through the cache.

    Idempotent. Must run before the package's first dataclass is created (``losslens/__init__``).
    """
    import dataclasses

    dataclasses.exec = cached_exec  # a module global: dataclasses calls exec(text, globals, ns)


def cached_exec(source, globals=None, locals=None, /):
    """``exec`` as :mod:`dataclasses` calls it, with the code of this package's sources cached."""
    module = globals.get("__name__", "") if isinstance(globals, dict) else ""
    if not isinstance(source, str) or not (module == _PACKAGE or module.startswith(_PACKAGE + ".")):
        return builtins.exec(source, globals, locals)
    return builtins.exec(code_of(source), globals, locals)


def code_of(source: str):
    """The code object ``exec(source)`` would compile, from the cache or compiled (and kept)."""
    if not _state["loaded"]:
        _state["loaded"] = True
        _cache.update(_read(cache_path()))
    _used.add(source)
    kept = _cache.get(source)
    if kept is not None:
        try:
            return marshal.loads(kept)
        except (ValueError, EOFError, TypeError):
            pass  # a damaged entry: compiled again below
    code = compile(source, "<string>", "exec")
    _cache[source] = marshal.dumps(code)
    _state["changed"] = True
    if not _state["exit_hook"] and not sys.dont_write_bytecode:
        _state["exit_hook"] = True
        atexit.register(save)
    return code


def _read(path: str) -> dict[str, bytes]:
    """The cache file's entries; nothing if it is missing, unreadable or of another Python."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        magic = importlib.util.MAGIC_NUMBER
        if not data.startswith(magic):
            return {}
        entries = marshal.loads(data[len(magic):])
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, bytes)}


def save(path: str | None = None, used_only: bool = False) -> bool:
    """Write the cache if something was compiled since it was read. Returns whether it was written.

    ``used_only``: keep only the sources this process asked for (:func:`prime`, which asks for
    every class of the package, so drops those of classes that are no more). Written to a
    temporary file and renamed over the old one, so that a reader never sees half a file; any
    failure (a read-only install, a full disk) leaves things as they were.
    """
    if not _state["changed"]:
        return False
    path = path or cache_path()
    entries = {s: _cache[s] for s in _used if s in _cache} if used_only else _cache
    if len(entries) > MAX_ENTRIES:
        entries = {}
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(temporary, "wb") as f:
            f.write(importlib.util.MAGIC_NUMBER + marshal.dumps(entries))
        os.replace(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False
    _state["changed"] = False
    return True


def prime() -> int:
    """Import every module of the package and write the cache, whatever ``sys.dont_write_bytecode`` says.

    For an install step, as ``compileall`` is one:
    ``python -c "from losslens import dataclass_code; dataclass_code.prime()"``.

    Returns the number of functions in the written cache: those of the package's classes now
    (the functions of classes since changed or removed are left out).
    """
    import pkgutil

    package = importlib.import_module(_PACKAGE)
    for info in pkgutil.walk_packages(package.__path__, prefix=_PACKAGE + "."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:
            pass  # a module of an extra not installed here (its classes are compiled when used)
    _state["changed"] = True
    return len(_used) if save(used_only=True) else 0

