"""Writing outputs: never over an input, whole or not at all, special files left in place.

The one module that decides how a report, a JSON document or the per-example file reaches
the disk; every writer goes through it.

- :func:`check_outputs` runs before anything is read. It refuses an output that is the same
  file as an input (after resolving links, or the same device and inode), the same file as
  another output of the command, inside a folder that is an input when reading the folder
  would take it as a part (it would become part of the next run), matching an input glob
  pattern, or an existing folder.
- A regular file (or a new path) is written to a temporary file beside it and renamed over
  it, so a reader never sees half a report and an error leaves any earlier file untouched.
  A link to a regular file keeps being a link: the file it points to is replaced.
- A special file -- ``-`` (standard output), a character device such as ``/dev/null``, a
  named pipe, ``/dev/stdout`` or process substitution's ``/dev/fd/N`` -- is written directly
  and never renamed over, so ``/dev/null`` stays a device and a shell's redirection stays open.
- The markdown summary is appended, not replaced, when its target is the file GitHub Actions
  names in ``$GITHUB_STEP_SUMMARY`` (:func:`write_markdown`): by GitHub's convention every
  command of a step appends its part there, and replacing it would erase theirs.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .errors import UsageError

#: Links through these folders lead to a process's open files (``/dev/stdout`` is a link to
#: ``/proc/self/fd/1``): writing to them must reuse the open file, never replace it.
_DESCRIPTOR_FOLDERS = ("/proc/", "/dev/fd/")


# --------------------------------------------------------------------------- where a path leads


def _link_chain(path: str) -> list[str]:
    """``path`` and every path its links lead to, in order (at most 40 hops, as the kernel)."""
    chain = [path]
    current = path
    for _ in range(40):
        try:
            target = os.readlink(current)
        except OSError:
            break
        current = os.path.join(os.path.dirname(current), target)
        chain.append(current)
    return chain


def is_special(path: str | os.PathLike) -> bool:
    """Whether ``path`` must be written directly rather than replaced by a rename.

    True for ``-``, anything that is not a regular file (devices, pipes, sockets), and any
    path that leads through ``/proc/`` or ``/dev/fd/`` (an open file of this process, such
    as ``/dev/stdout`` redirected to a log file: renaming over it would cut the redirection).
    """
    text = os.fspath(path)
    if text == "-":
        return True
    if any(hop.startswith(_DESCRIPTOR_FOLDERS) for hop in _link_chain(os.path.abspath(text))):
        return True
    try:
        mode = os.stat(text).st_mode
    except OSError:
        return False  # a new file
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def is_standard_output(path: str | os.PathLike) -> bool:
    """Whether writing ``path`` writes to this process's standard output (``-``, ``/dev/stdout``, ...).

    The command then prints its text to standard error, so that standard output holds only
    the JSON.
    """
    text = os.fspath(path)
    if text == "-":
        return True
    try:
        target, stdout = os.stat(text), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no such file, or stdout replaced / closed
        return False
    return (target.st_dev, target.st_ino) == (stdout.st_dev, stdout.st_ino) and not stat.S_ISCHR(stdout.st_mode)


@dataclass(frozen=True)
class _Place:
    """Where a path leads: its resolved path and, if it exists, its device and inode."""

    shown: str
    resolved: str
    identity: tuple[int, int] | None

    @classmethod
    def of(cls, path: str) -> "_Place":
        try:
            info = os.stat(path)
            identity = (info.st_dev, info.st_ino)
        except OSError:
            identity = None
        return cls(path, os.path.realpath(path), identity)

    def same_file(self, other: "_Place") -> bool:
        if self.identity is not None and other.identity is not None:
            return self.identity == other.identity
        return self.resolved == other.resolved

    def inside(self, folder: str) -> bool:
        return self.resolved.startswith(folder.rstrip(os.sep) + os.sep)


def _input_places(inputs: Iterable) -> tuple[list[_Place], list[tuple[str, str]], list[tuple[str, str]]]:
    """The files, folders and glob patterns the inputs name (DataFrames and ``-`` name none)."""
    files, folders, patterns = [], [], []
    for item in inputs:
        if isinstance(item, (list, tuple)):
            sub = _input_places(item)
            files += sub[0]
            folders += sub[1]
            patterns += sub[2]
            continue
        if not isinstance(item, (str, os.PathLike)) or os.fspath(item) == "-":
            continue
        text = os.fspath(item)
        if os.path.isdir(text):
            folders.append((text, os.path.realpath(text)))
        elif os.path.exists(text):
            files.append(_Place.of(text))
        elif any(ch in text for ch in "*?["):
            patterns.append((text, os.path.realpath(text)))
            files += [_Place.of(p) for p in glob.glob(text, recursive=True) if os.path.isfile(p)]
    return files, folders, patterns


def check_outputs(outputs: Sequence[tuple[str, str]], inputs: Iterable = ()) -> None:
    """Refuse outputs that would destroy data or be read back; call before reading anything.

    Parameters
    ----------
    outputs : sequence of (option, path)
        Each output of the command with the option that named it, e.g. ``("--json", "m.json")``.
        ``-`` (standard output) is refused only when a second output goes there too.
    inputs : iterable
        The command's inputs: files, folders, glob patterns (in-memory tables are skipped).

    Raises
    ------
    UsageError
        One line naming the output and the input (or the other output) it collides with.
    """
    files, folders, patterns = _input_places(inputs)
    seen: list[tuple[str, _Place]] = []
    to_stdout: list[str] = []
    for option, path in outputs:
        if is_standard_output(path):
            # Two documents on one stream would interleave into something neither parser reads.
            if to_stdout:
                raise UsageError(f"{option} {path} and {to_stdout[0]} both write to standard output; "
                                 "give one of them a file")
            to_stdout.append(f"{option} {path}")
        if path == "-":
            continue
        if os.path.isdir(path):
            raise UsageError(f"{option} {path}: is a folder; give a file name, e.g. {os.path.join(path, _example_name(option))}")
        place = _Place.of(path)
        for source in files:
            if place.same_file(source):
                raise UsageError(
                    f"{option} {path}: is the input {source.shown}; writing there would destroy it, "
                    "choose another output path"
                )
        for shown, folder in folders:
            # Only a file a folder read would pick up becomes part of the next run: a report.html
            # written into the folder of parquet parts it describes is left alone.
            if place.inside(folder) and _read_from_folders(path):
                raise UsageError(
                    f"{option} {path}: is inside the input folder {shown}; it would be read as part of "
                    "the next run, write it outside that folder"
                )
        for shown, pattern in patterns:
            if fnmatch.fnmatch(place.resolved, pattern):
                raise UsageError(
                    f"{option} {path}: matches the input pattern {shown}; it would be read as part of "
                    "the next run, choose a name the pattern does not match"
                )
        if not is_special(path):
            for other_option, other in seen:
                if place.same_file(other):
                    raise UsageError(
                        f"{option} {path}: is the same file as {other_option} {other.shown}; "
                        "give each output its own path"
                    )
        seen.append((option, place))


def _read_from_folders(path: str) -> bool:
    """Whether reading a folder would take the file ``path`` as one of its parts."""
    from .reading import file_format

    name = os.path.basename(path)
    return file_format(Path(path)) is not None and not name.startswith((".", "_"))


def _example_name(option: str) -> str:
    return {"--json": "report.json", "--per-example": "per_example.parquet",
            "--per-class": "per_class.csv"}.get(option, "report.html")


# --------------------------------------------------------------------------- writing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class StagedFile:
    """A file being written: a temporary file beside a regular target, or the special file itself.

    Streaming writers (the per-example file) write to :attr:`path` and then call
    :meth:`commit` (renamed into place) or :meth:`abort` (the temporary file deleted; any
    earlier file at the target untouched). A special file is written in place: there is
    nothing to rename and nothing to delete.
    """

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = os.fspath(target)
        self.special = is_special(self.target)
        self._temporary: str | None = None
        if self.special:
            self.path = self.target
            return
        # A link keeps being a link: the file it points to is what gets replaced.
        final = os.path.realpath(self.target) if os.path.islink(self.target) else self.target
        self._final = final
        directory = os.path.dirname(final) or "."
        os.makedirs(directory, exist_ok=True)
        import tempfile  # here: 1.7 ms of start-up (with random) that a run writing no file skips

        fd, self._temporary = tempfile.mkstemp(prefix=f".{os.path.basename(final)}.", suffix=".tmp", dir=directory)
        os.close(fd)
        # mkstemp creates the file 0600; a report is for sharing, so use the usual mode.
        os.chmod(self._temporary, 0o666 & ~_umask())
        self.path = self._temporary

    def commit(self) -> None:
        """Put the finished file in place (a rename; nothing to do for a special file)."""
        if self._temporary is not None:
            os.replace(self._temporary, self._final)
            self._temporary = None

    def abort(self) -> None:
        """Delete the temporary file, if any."""
        if self._temporary is not None:
            Path(self._temporary).unlink(missing_ok=True)
            self._temporary = None


def _write_special(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    # No O_TRUNC and O_APPEND: a log file behind /dev/stdout keeps what was written before;
    # devices and pipes ignore both.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path``: whole or not at all for a file, directly for a special file.

    Parameters
    ----------
    path : str or path
        A file (created with its folders if new), a link to one, ``-`` for standard output,
        a device, a named pipe or ``/dev/fd/N``.
    text : str
        Written as UTF-8 with ``\\n`` line ends.
    """
    if is_special(path):
        _write_special(os.fspath(path), text)
        return
    staged = StagedFile(path)
    try:
        with open(staged.path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        staged.commit()
    except BaseException:
        # Also on KeyboardInterrupt: never leave the temporary file behind.
        staged.abort()
        raise


#: The environment variable in which GitHub Actions names the current step's job summary file.
STEP_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"


def is_step_summary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the file named by ``$GITHUB_STEP_SUMMARY`` (the same file, or path)."""
    summary = os.environ.get(STEP_SUMMARY_VARIABLE)
    if not summary or os.fspath(path) == "-":
        return False
    return _Place.of(os.fspath(path)).same_file(_Place.of(summary))


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to ``path`` in one write, as a shell's ``>>`` does; a blank line before it.

    The text is complete before the file is opened, so an error while computing it leaves
    the file as it was; the blank line keeps a heading from joining the earlier text's last
    line. The file is created when it does not exist.
    """
    text_path = os.fspath(path)
    fd = os.open(text_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    with os.fdopen(fd, "r+b") as handle:
        size = os.fstat(fd).st_size
        if size:
            handle.seek(size - 1)
            text = ("\n" if handle.read(1) == b"\n" else "\n\n") + text
        handle.write(text.encode("utf-8"))


def write_markdown(path: str | os.PathLike, text: str) -> str:
    """Write a markdown summary: appended to ``$GITHUB_STEP_SUMMARY``'s file, else as :func:`write_text`.

    Returns
    -------
    str
        ``"appended to"`` or ``"written to"``, for the command's message.
    """
    if is_step_summary(path) and not is_special(path):
        append_text(path, text)
        return "appended to"
    write_text(path, text)
    return "written to"


def json_text(document: dict) -> str:
    """Serialise a report document: stable key order, no NaN (the document has None)."""
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(document: dict, destination: str) -> None:
    """Write JSON to a path, or to standard output when ``destination`` is ``-``."""
    write_text(destination, json_text(document))

