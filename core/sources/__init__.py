"""Sources turn what a user names (a file, a folder, an archive, `pypi:NAME`, `stdlib:MODULE`)
into Documents.

Each kind of source is one module with two functions:
    claims(spec: str) -> bool                      does this module read that spec?
    read(spec: str) -> Iterator[Document | Skipped] its documents, and what it skipped
A new kind of source is one new module added to KINDS.
"""
from __future__ import annotations

from collections.abc import Iterator

from core.config import DATA_DIR
from core.errors import SourceError
from core.models import Document, Skipped
from core.sources import archive, files, folder, pypi, stdlib

KINDS = [pypi, stdlib, archive, folder, files]  # order matters: the first that claims a spec reads it


def read(spec: str) -> Iterator[Document | Skipped]:
    """The documents of one source spec; raises SourceError when nothing can read it."""
    for kind in KINDS:
        if kind.claims(spec):
            return kind.read(spec)
    raise SourceError(f"{spec}: no such file or folder, or not a kind of source we read "
                      f"(files {', '.join(sorted(files.SUFFIXES))}, folders, .zip archives, "
                      "pypi:NAME[==VERSION], stdlib:MODULE)")


DEMO_FILE = DATA_DIR / "demo_sources.txt"
DEMO_KB = "demo"


def demo_specs() -> list[str]:
    """The sources of the demo knowledge base behind the seed questions, one spec a line."""
    lines = DEMO_FILE.read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
