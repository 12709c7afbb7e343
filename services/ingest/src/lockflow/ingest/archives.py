"""Safe unpacking of gzip and zip sources and safe checks of .xlsx packages.

Zip limits (entry count, total size, compression ratio, names that escape the folder) are checked
on the central directory before anything is extracted; the extracted bytes are then counted again,
since a header can lie. gzip has no trustworthy size header, so its output is counted as it is
written and the partial file is deleted the moment a limit is passed: nothing half-written remains.
"""

from __future__ import annotations

import gzip
import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from lockflow.common.errors import InvalidInput, TooLarge
from lockflow.sources.settings import FileLimits

_BLOCK = 1024 * 1024
_DATA_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson", ".parquet", ".pq", ".xlsx"}
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


def gunzip(source: Path, target: Path, limits: FileLimits) -> Path:
    """Decompress a .gz file into target, refusing it past the size or ratio limit."""
    compressed = max(source.stat().st_size, 1)
    written = 0
    try:
        with gzip.open(source, "rb") as reader, target.open("wb") as out:
            while block := reader.read(_BLOCK):
                written += len(block)
                _check_growth(source.name, written, compressed, limits)
                out.write(block)
    except (OSError, EOFError, zlib.error) as exc:
        target.unlink(missing_ok=True)
        if isinstance(exc, TooLarge):
            raise
        raise InvalidInput(f"{source.name} is not a readable gzip file: {exc}") from exc
    except TooLarge:
        target.unlink(missing_ok=True)
        raise
    return target


def _check_growth(name: str, written: int, compressed: int, limits: FileLimits) -> None:
    if written > limits.max_decompressed_bytes:
        raise TooLarge(f"{name} unpacks to more than {limits.max_decompressed_bytes} bytes; refused")
    if written > 1024 * 1024 and written / compressed > limits.max_ratio:
        raise TooLarge(
            f"{name} unpacks more than {limits.max_ratio:.0f} times its size (a compression bomb?); refused"
        )


def check_zip(path: Path, limits: FileLimits) -> list[zipfile.ZipInfo]:
    """The archive's file entries, after every limit and name check passed (nothing is extracted)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInput(f"{path.name} is not a readable zip archive: {exc}") from exc
    with archive:
        entries = archive.infolist()
    if len(entries) > limits.max_entries:
        raise TooLarge(f"{path.name} has {len(entries)} entries, more than the limit of {limits.max_entries}")
    total = 0
    for entry in entries:
        _check_name(path, entry)
        total += entry.file_size
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > 1024 * 1024 and ratio > limits.max_ratio:
            raise TooLarge(
                f"{path.name}: {entry.filename} unpacks {ratio:.0f} times its size "
                f"(limit {limits.max_ratio:.0f}; a zip bomb?); refused"
            )
    if total > limits.max_decompressed_bytes:
        raise TooLarge(
            f"{path.name} unpacks to {total} bytes, more than the limit of {limits.max_decompressed_bytes}"
        )
    return [e for e in entries if not e.is_dir()]


def _check_name(path: Path, entry: zipfile.ZipInfo) -> None:
    name = entry.filename.replace("\\", "/")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", name):
        raise InvalidInput(f"{path.name}: entry {entry.filename!r} would escape the folder; refused")
    mode = entry.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InvalidInput(f"{path.name}: entry {entry.filename!r} is a symbolic link; refused")


def unzip_one(path: Path, target_dir: Path, limits: FileLimits, *, entry: str | None) -> Path:
    """Extract the one data file of a zip (or the named entry) into target_dir, counting its bytes."""
    files = check_zip(path, limits)
    data = [e for e in files if PurePosixPath(e.filename).suffix.lower() in _DATA_SUFFIXES]
    data = [e for e in data if not e.filename.startswith("__MACOSX/")]
    if entry is not None:
        chosen = [e for e in files if e.filename == entry]
        if not chosen:
            raise InvalidInput(f"{path.name} has no entry named {entry!r}")
    elif len(data) != 1:
        names = ", ".join(e.filename for e in data[:10]) or "none"
        raise InvalidInput(
            f"{path.name} holds {len(data)} data files ({names}); name the one to read with 'entry'"
        )
    else:
        chosen = data
    member = chosen[0]
    target = target_dir / PurePosixPath(member.filename).name
    written = 0
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member) as reader, target.open("wb") as out:
            while block := reader.read(_BLOCK):
                written += len(block)
                if written > member.file_size or written > limits.max_decompressed_bytes:
                    raise TooLarge(
                        f"{path.name}: {member.filename} unpacks to more than it declares; refused"
                    )
                out.write(block)
    except TooLarge:
        target.unlink(missing_ok=True)
        raise
    except (zipfile.BadZipFile, OSError, zlib.error) as exc:
        target.unlink(missing_ok=True)
        raise InvalidInput(f"{path.name}: cannot extract {member.filename}: {exc}") from exc
    return target


def check_xlsx(path: Path, limits: FileLimits) -> None:
    """Refuse an .xlsx whose package breaks the zip limits or whose XML declares a DTD or entities."""
    entries = check_zip(path, limits)
    with zipfile.ZipFile(path) as archive:
        for entry in entries:
            if not entry.filename.lower().endswith((".xml", ".rels", ".vml")):
                continue
            with archive.open(entry) as reader:
                tail = b""
                while block := reader.read(_BLOCK):
                    if _DTD.search(tail + block):
                        raise InvalidInput(
                            f"{path.name}: {entry.filename} declares an XML DTD or entities "
                            "(an entity-expansion bomb?); refused"
                        )
                    tail = block[-16:]
