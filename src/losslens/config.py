"""Options from a TOML file: ``[tool.losslens]`` in ``./pyproject.toml``, or ``--config FILE``.

Keys are the long option names with underscores (``--fail-if`` is ``fail_if``, ``--json`` is
``json``); a repeatable option takes a list. An option given on the command line replaces
the file's value (lists are replaced, not extended). Unknown keys and values of the wrong
type are errors that name the file and the key. Relative paths in the file are taken
relative to the working folder, as on the command line.

Reading TOML needs :mod:`tomllib` (Python 3.11+) or the ``tomli`` package on Python 3.10.
Without either, a ``pyproject.toml`` without a ``[tool.losslens]`` table is ignored, so that
losslens still runs in any project folder; one with it, or ``--config``, is an error that
says what to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import UsageError


def _toml_module():
    """:mod:`tomllib` (or ``tomli`` on Python 3.10), None without either; imported only when a
    file is read, so that a run with no config pays nothing for it."""
    try:  # pragma: no cover - depends on the Python version
        import tomllib
        return tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli  # type: ignore[import-not-found]
            return tomli
        except ModuleNotFoundError:
            return None


#: Python types accepted for each kind of option value (bool is not an int here).
_KINDS = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
#: How each kind is named in error messages.
_NAMES = {"str": "string", "int": "whole number", "float": "number", "bool": "true or false"}


@dataclass(frozen=True)
class Setting:
    """One option that a config file may set: its key, the command's parameter, its type."""

    key: str
    dest: str
    kind: str  # "str", "int", "float" or "bool"
    multiple: bool = False


@dataclass(frozen=True)
class Config:
    """The settings read from one file, by parameter name, and where they came from."""

    where: str
    values: dict[str, Any]


def _no_toml(where: str) -> UsageError:
    return UsageError(f"{where}: reading TOML needs Python 3.11 or later, or the tomli package (pip install tomli)")


def _load(path: Path, where: str) -> dict:
    _toml = _toml_module()
    if _toml is None:
        raise _no_toml(where)
    try:
        with open(path, "rb") as handle:
            return _toml.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc}") from None
    except _toml.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML: {exc}") from None


def read_config(explicit: str | None, settings: Iterable[Setting], cwd: str | Path = ".") -> Config | None:
    """Find, read and check the config: ``explicit`` if given, else ``cwd/pyproject.toml``.

    Parameters
    ----------
    explicit : str or None
        The ``--config`` file. Its options are the ``[tool.losslens]`` table when it has one
        (so a ``pyproject.toml`` can be named), else its top-level keys.
    settings : iterable of Setting
        What the command accepts.
    cwd : path
        The working folder searched for ``pyproject.toml``.

    Returns
    -------
    Config or None
        None when no file applies (no ``--config`` and no ``[tool.losslens]`` table).

    Raises
    ------
    UsageError
        Unreadable TOML, unknown keys or values of the wrong type.
    """
    if explicit is not None:
        document = _load(Path(explicit), f"--config {explicit}")
        table = document.get("tool", {}).get("losslens") if isinstance(document.get("tool"), dict) else None
        where = f"{explicit} [tool.losslens]" if table is not None else explicit
        return Config(where, check(document if table is None else table, settings, where))
    path = Path(cwd) / "pyproject.toml"
    if not path.is_file():
        return None
    where = "pyproject.toml [tool.losslens]"
    if _toml_module() is None:
        # Only an error if the file means losslens; any other project's pyproject is not ours.
        if "[tool.losslens]" in path.read_text(encoding="utf-8", errors="replace"):
            raise _no_toml(where)
        return None
    table = _load(path, "pyproject.toml").get("tool", {}).get("losslens")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise UsageError(f"{where}: must be a table")
    return Config(where, check(table, settings, where))


def check(table: dict, settings: Iterable[Setting], where: str) -> dict[str, Any]:
    """Check a table's keys and value types; return the values by parameter name.

    Examples
    --------
    >>> check({"fail_if": ["log_loss > 0.3"], "bins": 10},
    ...       [Setting("fail_if", "fail_if", "str", True), Setting("bins", "bins", "int")], "x.toml")
    {'fail_if': ['log_loss > 0.3'], 'bins': 10}
    """
    by_key = {s.key: s for s in settings}
    out: dict[str, Any] = {}
    for key, value in table.items():
        setting = by_key.get(key)
        if setting is None:
            hint = f" (write {key.replace('-', '_')!r})" if key.replace("-", "_") in by_key else ""
            raise UsageError(f"{where}: unknown key {key!r}{hint}; known keys: {', '.join(sorted(by_key))}")
        out[setting.dest] = _value(setting, value, where)
    return out


def _value(setting: Setting, value: Any, where: str):
    types = _KINDS[setting.kind]

    def ok(v) -> bool:
        return isinstance(v, types) and not (setting.kind != "bool" and isinstance(v, bool))

    if setting.multiple:
        # One value for a repeatable option is accepted as a list of one.
        items = value if isinstance(value, list) else [value]
        if not all(ok(v) for v in items):
            raise UsageError(f"{where}: {setting.key} must be a list of values of type {_NAMES[setting.kind]}, got {value!r}")
        return [float(v) if setting.kind == "float" else v for v in items]
    if not ok(value):
        raise UsageError(f"{where}: {setting.key} must be of type {_NAMES[setting.kind]}, got {value!r}")
    return float(value) if setting.kind == "float" else value


def merge(given: dict[str, Any], config: Config | None, from_command_line: set[str]) -> dict[str, Any]:
    """The command line's values, with the file's for every parameter not on the command line."""
    if config is None:
        return dict(given)
    merged = dict(given)
    for dest, value in config.values.items():
        if dest not in from_command_line:
            merged[dest] = value
    return merged
