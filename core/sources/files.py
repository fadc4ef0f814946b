"""A single file: Markdown, reStructuredText, plain text, HTML or PDF.

Every file, folder entry and archive member is read through `read_capped`, in chunks, so a
file over MAX_BYTES (or an archive member that decompresses past it, or past MAX_RATIO times
its compressed size: a zip bomb) is refused while it streams, never after it is in memory.
A member that cannot be parsed for any reason a file can cause is skipped with its reason.
"""
from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import SourceError
from core.models import Document, Skipped
from core.sources import pdf
from core.sources.text import FORMATS, decode, to_sections

SUFFIXES = set(FORMATS) | {".pdf"}
MAX_BYTES = 20_000_000
MAX_RATIO = 100  # uncompressed / compressed; prose deflates 3-10x, a bomb 1,000x
RATIO_FLOOR = 1_000_000  # below this many bytes any ratio is harmless
READ_CHUNK = 1 << 20
# what one bad member can raise while it is read or parsed: skipped, never the end of the ingest
UNREADABLE = (ValueError, OSError, SyntaxError, RecursionError, MemoryError, EOFError,
              zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError)


def claims(spec: str) -> bool:
    return Path(spec).is_file()


def read(spec: str) -> Iterator[Document | Skipped]:
    path = Path(spec)
    if path.suffix.lower() not in SUFFIXES:
        raise SourceError(f"{spec}: files of type '{path.suffix or 'none'}' are not read; "
                          f"use {', '.join(sorted(SUFFIXES))}")
    try:
        with path.open("rb") as f:
            doc = document(str(path.resolve()), path.name, read_capped(f))
    except UNREADABLE as e:
        raise SourceError(f"{spec}: {reason(e)}") from None
    if doc is None:
        raise SourceError(f"{spec}: the file holds no text")
    yield doc


def document(source: str, name: str, data: bytes) -> Document | None:
    """One file's bytes as a Document (None when it holds no text); ValueError if unreadable."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES // 1_000_000} MB")
    suffix = Path(name).suffix.lower()
    if suffix == ".pdf":
        sections = pdf.sections(data, title=Path(name).stem)
    else:
        sections = to_sections(decode(data, name), FORMATS[suffix], title=Path(name).stem)
    return Document(source, name, sections) if sections else None


def member(source: str, name: str, read_bytes) -> Document | Skipped | None:
    """A file inside a folder or archive: a Document, or Skipped with the reason; None if empty."""
    if Path(name).suffix.lower() not in SUFFIXES:
        return Skipped(source, name, f"type '{Path(name).suffix or 'none'}' is not read")
    try:
        return document(source, name, read_bytes())
    except UNREADABLE as e:
        return Skipped(source, name, reason(e))


def read_capped(f: BinaryIO, compressed: int | None = None, limit: int = MAX_BYTES) -> bytes:
    """All of a stream, read a chunk at a time, refused (ValueError) as soon as it passes
    `limit` bytes or, given its compressed size, MAX_RATIO times that size."""
    parts, total = [], 0
    while chunk := f.read(READ_CHUNK):
        total += len(chunk)
        if total > limit:
            raise ValueError(f"larger than {limit // 1_000_000} MB uncompressed; not read")
        if compressed is not None and total > RATIO_FLOOR and total > MAX_RATIO * max(compressed, 1):
            raise ValueError(f"decompresses to more than {MAX_RATIO} times its compressed size of "
                             f"{compressed:,} bytes (a zip bomb?); not read")
        parts.append(chunk)
    return b"".join(parts)


def reason(e: BaseException) -> str:
    """Why a file could not be read, as a sentence (not an exception's repr)."""
    if isinstance(e, RecursionError):
        return "nested too deeply to parse"
    if isinstance(e, MemoryError):
        return "too large to parse in memory"
    if isinstance(e, (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError)):
        return f"a damaged archive member ({e or type(e).__name__})"
    if isinstance(e, tarfile.TarError):
        return f"a damaged tar member ({e or type(e).__name__})"
    return str(e) or type(e).__name__
