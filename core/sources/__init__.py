"""Sources turn what a user names (a file, a folder, an archive) into Documents.

Each kind of source is one module with two functions:
    claims(spec: str) -> bool                      does this module read that spec?
    read(spec: str) -> Iterator[Document | Skipped] its documents, and what it skipped
A new kind of source is one new module added to KINDS.
"""
from __future__ import annotations

from collections.abc import Iterator

from core.errors import SourceError
from core.models import Document, Skipped
from core.sources import archive, files, folder

KINDS = [archive, folder, files]  # order matters: the first that claims a spec reads it


def read(spec: str) -> Iterator[Document | Skipped]:
    """The documents of one source spec; raises SourceError when nothing can read it."""
    for kind in KINDS:
        if kind.claims(spec):
            return kind.read(spec)
    raise SourceError(f"{spec}: no such file or folder, or not a kind of source we read "
                      f"(files {', '.join(sorted(files.SUFFIXES))}, folders, .zip archives)")
