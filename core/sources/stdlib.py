"""A standard-library module's docstrings, from the running Python's own source files:
`stdlib:MODULE` (e.g. `stdlib:sqlite3`, a package folder, or `stdlib:__future__`).

The file is found with importlib.util.find_spec on the top-level name, which locates a
module without importing it, and read with `ast` like any package's code.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

from core.errors import SourceError
from core.models import Document, Skipped
from core.sources import docstrings
from core.sources.files import UNREADABLE, reason
from core.sources.text import decode

PREFIX = "stdlib:"


def claims(spec: str) -> bool:
    return spec.startswith(PREFIX)


def read(spec: str) -> Iterator[Document | Skipped]:
    module = spec[len(PREFIX):].strip()
    top = module.split(".")[0]
    if not module or top not in sys.stdlib_module_names:
        raise SourceError(f"{spec}: '{module}' is not a standard-library module of Python "
                          f"{sys.version_info.major}.{sys.version_info.minor}; use pypi:NAME for packages")
    files = _files(spec, module)
    return _documents(f"{PREFIX}{module}", module, files)


def _files(spec: str, module: str) -> list[tuple[str, Path]]:
    """(dotted module name, source file) of the module and, for a package, its submodules."""
    parts = module.split(".")
    found = importlib.util.find_spec(parts[0])  # a top-level name: found, not imported
    origin = getattr(found, "origin", None) if found else None
    if origin == "frozen":  # modules frozen into the interpreter still know their source file
        origin = getattr(found.loader_state, "filename", None)
    if not origin or not origin.endswith(".py"):
        raise SourceError(f"{spec}: '{parts[0]}' is built into Python or compiled, so it has no "
                          "Python source with docstrings to read")
    base = Path(origin)
    root = base.parent if base.name == "__init__.py" else None
    path = base
    for part in parts[1:]:  # a submodule, walked on disk so its parent is not imported either
        if root is None:
            raise SourceError(f"{spec}: '{parts[0]}' is a module, not a package")
        path = root / part / "__init__.py" if (root / part).is_dir() else root / f"{part}.py"
        root = path.parent if path.name == "__init__.py" else None
    if not path.is_file():
        raise SourceError(f"{spec}: no source file for '{module}' in this Python")
    if path.name != "__init__.py":
        return [(module, path)]
    pkg = path.parent
    return [(module + ("." + ".".join(p.relative_to(pkg).with_suffix("").parts) if p != path else ""), p)
            for p in sorted(pkg.rglob("*.py"))
            if not any(d in ("test", "tests", "__pycache__") for d in p.relative_to(pkg).parts[:-1])]


def _documents(source: str, module: str, files) -> Iterator[Document | Skipped]:
    version = f"python-{sys.version_info.major}.{sys.version_info.minor}"
    for dotted, path in files:
        dotted = dotted.removesuffix(".__init__")
        name = f"{version}/{dotted.replace('.', '/')}{'/__init__' if path.name == '__init__.py' else ''}.py"
        try:
            secs = docstrings.sections(decode(path.read_bytes(), path.name), dotted)
        except UNREADABLE as e:
            yield Skipped(source, name, reason(e))
            continue
        if secs:
            yield Document(source, name, secs)
