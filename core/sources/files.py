"""A single file: Markdown, reStructuredText, plain text, HTML or PDF."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from core.errors import SourceError
from core.models import Document, Skipped
from core.sources import pdf
from core.sources.text import FORMATS, decode, to_sections

SUFFIXES = set(FORMATS) | {".pdf"}
MAX_BYTES = 20_000_000


def claims(spec: str) -> bool:
    return Path(spec).is_file()


def read(spec: str) -> Iterator[Document | Skipped]:
    path = Path(spec)
    if path.suffix.lower() not in SUFFIXES:
        raise SourceError(f"{spec}: files of type '{path.suffix or 'none'}' are not read; "
                          f"use {', '.join(sorted(SUFFIXES))}")
    try:
        doc = document(str(path.resolve()), path.name, path.read_bytes())
    except ValueError as e:
        raise SourceError(f"{spec}: {e}") from None
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
    except (ValueError, OSError) as e:
        return Skipped(source, name, str(e))
