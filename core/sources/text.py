"""Turn the text formats we read (Markdown, reStructuredText, plain text, HTML) into
clean sections: headings become section paths, markup noise goes, code is kept."""
from __future__ import annotations

import re

from core.models import Section

FORMATS = {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text", ".html": "html", ".htm": "html"}

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")
_RST_ROLE = re.compile(r":[\w:.+-]+:`([^`<]*?)(?:\s*<[^>]*>)?`")
_RST_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
_RST_KEEP_DIRECTIVES = {"code-block", "code", "sourcecode", "note", "warning", "tip", "important",
                        "versionadded", "versionchanged", "deprecated", "admonition", "seealso"}


def decode(data: bytes, name: str) -> str:
    """Bytes to text; refuses binary data with a reason the caller can show."""
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (NUL bytes), not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("not valid UTF-8 or cp1252 text")


def to_sections(text: str, fmt: str, title: str = "") -> tuple[Section, ...]:
    """Split text of the given format into sections with heading paths."""
    if fmt == "markdown":
        sections = _markdown(text)
    elif fmt == "rst":
        sections = _rst(text)
    elif fmt == "html":
        sections = _html(text)
    else:
        sections = [((), text)]
    out = []
    for path, body in sections:
        body = _tidy(body)
        if body:
            out.append(Section(path or ((title,) if title else ()), body))
    return tuple(out)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _markdown(text: str):
    sections, path, lines, in_code = [], [], [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        m = None if in_code else _MD_HEADING.match(line)
        if m:
            sections.append((tuple(path), "\n".join(lines)))
            level = len(m.group(1))
            path = path[: level - 1] + [m.group(2).strip()]
            lines = []
        else:
            lines.append(line)
    sections.append((tuple(path), "\n".join(lines)))
    return sections


def _rst(text: str):
    lines = text.splitlines()
    styles: list[str] = []  # adornment styles in order of first use = heading levels
    sections, path, body = [], [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        over = _RST_ADORNMENT.match(line)
        # overline + title + underline
        if over and i + 2 < len(lines) and lines[i + 1].strip() and _RST_ADORNMENT.match(lines[i + 2]):
            title, style, step = lines[i + 1].strip(), "o" + line.strip()[0], 3
        elif line.strip() and not over and _RST_ADORNMENT.match(nxt) and len(nxt.strip()) >= len(line.strip()):
            title, style, step = line.strip(), nxt.strip()[0], 2
        else:
            body.append(line)
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        level = styles.index(style)
        sections.append((tuple(path), _clean_rst("\n".join(body))))
        path = path[:level] + [_RST_ROLE.sub(r"\1", title)]
        body = []
        i += step
    sections.append((tuple(path), _clean_rst("\n".join(body))))
    return sections


def _clean_rst(text: str) -> str:
    out, skip_indent = [], None
    for line in text.splitlines():
        if skip_indent is not None:
            if not line.strip() or len(line) - len(line.lstrip()) > skip_indent:
                continue
            skip_indent = None
        m = _RST_DIRECTIVE.match(line)
        if m:
            indent, name, arg = len(m.group(1)), m.group(2), m.group(3).strip()
            if name in _RST_KEEP_DIRECTIVES:
                if arg and name not in ("code-block", "code", "sourcecode"):
                    out.append(f"{m.group(1)}{name.title()}: {arg}")
            else:
                skip_indent = indent  # drop the directive and its indented body (toctree, image, ...)
            continue
        if line.strip().startswith(".. ") or line.strip() == "..":
            continue  # comments, targets, substitutions
        line = _RST_ROLE.sub(r"\1", line)
        line = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", line)  # `text <url>`_
        line = re.sub(r"``([^`]+)``", r"\1", line)
        line = re.sub(r"(\w)::\s*$", r"\1:", line)
        line = "" if line.strip() == "::" else line
        out.append(line)
    return "\n".join(out)


def _html(text: str):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "noscript"]):
        tag.decompose()
    root = soup.body or soup
    sections, path, lines = [], [], []
    for el in root.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "pre", "li", "td", "dt", "dd"]):
        if el.name[0] == "h" and el.name[1:].isdigit():
            sections.append((tuple(path), "\n\n".join(lines)))
            level = int(el.name[1])
            path = path[: level - 1] + [el.get_text(" ", strip=True)]
            lines = []
        elif el.find_parent(["pre", "li", "td", "dd"]) is None or el.name == "pre":
            if el.name != "pre" and el.find_parent("pre"):
                continue
            lines.append(el.get_text() if el.name == "pre" else el.get_text(" ", strip=True))
    sections.append((tuple(path), "\n\n".join(lines)))
    return sections
