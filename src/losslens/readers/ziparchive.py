"""Members of a zip archive, including zstd-compressed ones (zip method 93).

inspect-ai's ``.eval`` logs are zip archives whose members are zstd-compressed since inspect
0.3.x (older logs used deflate). Python's ``zipfile`` lists such archives but reads method-93
members only from Python 3.14 on, so those are read here from their local file header and
decompressed with pyarrow's zstd codec (pyarrow is a dependency already). The central directory (and
zip64) is still parsed by ``zipfile``; sizes and CRC-32 are checked after decompression, so a
truncated or damaged archive is an :class:`~losslens.errors.InputError`, never a partial read.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable

from ..errors import InputError

#: Zip compression method numbers this reader understands.
STORED, DEFLATED, ZSTANDARD = 0, 8, 93
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # the 30 fixed bytes of a local file header
LOCAL_SIGNATURE = b"PK\x03\x04"


def read_members(path: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The uncompressed bytes of every member whose name ``wanted`` accepts, in archive order.

    Parameters
    ----------
    path : Path
        The zip archive.
    wanted : callable
        Member name -> whether to read it (others are not decompressed).

    Returns
    -------
    dict
        Member name -> bytes.

    Raises
    ------
    InputError
        Not a complete zip archive (e.g. truncated), a damaged member, a compression method
        other than stored/deflate/zstd.
    """
    try:
        with zipfile.ZipFile(path) as archive, open(path, "rb") as raw:
            return {info.filename: _member(path, archive, raw, info)
                    for info in archive.infolist() if wanted(info.filename)}
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path}: not a complete zip archive ({exc}); the file may be truncated "
                         "— copy it again or re-run the evaluation") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc})") from None


def _member(path: Path, archive: zipfile.ZipFile, raw, info: zipfile.ZipInfo) -> bytes:
    """One member's bytes, checked against the central directory's size and CRC-32."""
    name = info.filename
    if info.compress_type == ZSTANDARD:
        data = _zstd(path, name, _local_data(path, raw, info), info.file_size)
    elif info.compress_type in (STORED, DEFLATED):
        try:
            return archive.read(info)  # zipfile checks the CRC itself
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise InputError(f"{path}, member {name!r}: damaged or truncated ({exc})") from None
    else:
        raise InputError(f"{path}, member {name!r}: zip compression method {info.compress_type} "
                         "is not supported (stored, deflate and zstd are)")
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise InputError(f"{path}, member {name!r}: damaged (size or CRC-32 differs from the "
                         "archive's directory); the file may be truncated")
    return data


def _local_data(path: Path, raw, info: zipfile.ZipInfo) -> bytes:
    """The compressed bytes of a member, found through its local file header."""
    raw.seek(info.header_offset)
    header = raw.read(LOCAL_HEADER.size)
    if len(header) < LOCAL_HEADER.size or header[:4] != LOCAL_SIGNATURE:
        raise InputError(f"{path}, member {info.filename!r}: no local file header at offset "
                         f"{info.header_offset}; the archive is damaged")
    name_length, extra_length = LOCAL_HEADER.unpack(header)[-2:]
    raw.seek(info.header_offset + LOCAL_HEADER.size + name_length + extra_length)
    data = raw.read(info.compress_size)
    if len(data) != info.compress_size:
        raise InputError(f"{path}, member {info.filename!r}: truncated ({len(data)} of "
                         f"{info.compress_size} compressed bytes)")
    return data


def _zstd(path: Path, name: str, data: bytes, size: int) -> bytes:
    """Decompress a zstd member (every frame of it: inspect writes several for large members).

    pyarrow, already a dependency, carries the zstd codec: no package is added for Python's
    zipfile lacking method 93 before 3.14. The size from the archive's directory bounds the output.
    """
    import pyarrow as pa

    try:
        return pa.decompress(data, decompressed_size=size, codec="zstd", asbytes=True)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}, member {name!r}: damaged zstd data ({exc})") from None
