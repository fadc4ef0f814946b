"""A server-side folder, read recursively; hidden files and folders are ignored, and so is
anything a link leads out of the folder to (skipped with its reason): ingesting a folder
never reads a file that is not inside it.

Which folders a page may name is the operator's choice (`RAGEVAL_INGEST_ROOTS`,
`check_allowed`); the CLI reads any path its shell user can.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from core.config import PREFIX
from core.errors import SourceError
from core.models import Document, Skipped
from core.sources.files import member, read_capped


def claims(spec: str) -> bool:
    return Path(spec).is_dir()


def read(spec: str) -> Iterator[Document | Skipped]:
    root = Path(spec).resolve()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        real = path.resolve()
        if not real.is_relative_to(root):
            if real.is_file() or path.is_symlink():
                yield Skipped(str(root), rel.as_posix(), "a link that leads outside the folder; not read")
            continue
        if not real.is_file():
            continue
        item = member(str(root), rel.as_posix(), lambda real=real: _read(real))
        if item is not None:
            yield item


def _read(path: Path) -> bytes:
    """A resolved path's bytes; O_NOFOLLOW refuses a link swapped in since it was resolved."""
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as f:
        return read_capped(f)


def check_allowed(path: str, roots: tuple[Path, ...]) -> Path:
    """The resolved server path when it lies inside one of the operator's ingest roots; else
    SourceError naming the folder and the setting (the pages call this, the CLI does not)."""
    real = Path(os.path.expanduser(path.strip())).resolve()
    if not roots:
        raise SourceError(f"{path}: reading folders on the server is off; the operator allows it by setting "
                          f"{PREFIX}INGEST_ROOTS to the folders that may be read (separated by ',' or "
                          f"'{os.pathsep}') and restarting the app")
    if not any(real.is_relative_to(r) for r in roots):
        raise SourceError(f"{path}: not inside a folder {PREFIX}INGEST_ROOTS allows "
                          f"({', '.join(str(r) for r in roots)})")
    return real
