"""Docstrings of a Python module's source, read with `ast` and cleaned as reST: the code is parsed, never
imported or executed, so a package whose import would fail (or do harm) is still read."""
from __future__ import annotations

import ast

from core.models import Section
from core.sources.text import clean_rst


def module_name(path: str) -> str:
    """Dotted module name for a path inside a source tree: 'src/flask/app.py' -> 'flask.app'."""
    parts = path.split("/")
    if parts[0] in ("src", "lib") and len(parts) > 1:
        parts = parts[1:]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def sections(source: str, module: str, prefix: tuple[str, ...] = ()) -> tuple[Section, ...]:
    """One section per documented module, public class and public function or method, with
    its heading path (prefix, module, class, function); SyntaxError if it does not parse."""
    tree = ast.parse(source)
    out = []
    doc = ast.get_docstring(tree)
    if doc:
        out.append(Section(prefix + (module,), clean_rst(doc).strip()))
    _walk(tree, prefix + (module,), module, out)
    return tuple(out)


def _walk(node, path: tuple[str, ...], qualname: str, out: list[Section]) -> None:
    for child in node.body:
        if not isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if child.name.startswith("_"):
            continue  # private helpers are not documentation a user reads
        name = f"{qualname}.{child.name}"
        doc = ast.get_docstring(child)
        if doc:  # docstrings are reST by convention (Sphinx roles, :param x:)
            out.append(Section(path + (child.name,), f"{_signature(child, name)}\n\n{clean_rst(doc).strip()}"))
        if isinstance(child, ast.ClassDef):
            _walk(child, path + (child.name,), name, out)


def _signature(node, name: str) -> str:
    """`class flask.Flask(App)` or `def flask.Flask.route(self, rule, **options)`: the name
    and arguments make a docstring findable by what the code calls it."""
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class {name}({bases})" if bases else f"class {name}"
    return f"def {name}({ast.unparse(node.args)})"
