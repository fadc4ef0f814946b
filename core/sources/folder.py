"""A server-side folder, read recursively; hidden files and folders are ignored."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from core.models import Document, Skipped
from core.sources.files import member


def claims(spec: str) -> bool:
    return Path(spec).is_dir()


def read(spec: str) -> Iterator[Document | Skipped]:
    root = Path(spec).resolve()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        item = member(str(root), rel.as_posix(), path.read_bytes)
        if item is not None:
            yield item
