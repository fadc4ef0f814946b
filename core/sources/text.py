"""Turn the text formats we read (Markdown, reStructuredText, plain text, HTML) into
clean sections: headings become section paths, markup noise goes, code is kept."""
from __future__ import annotations

import re
import unicodedata

from core.models import Section

FORMATS = {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text", ".html": "html", ".htm": "html"}

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)")  # [![alt](image)](link)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")
_HTML_COMMENT = re.compile(r"<!--.*?-->")
_HTML_TAG = re.compile(r"</?[a-zA-Z][\w-]*(?:\s[^<>]*)?/?>")
_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")
_RST_ROLE = re.compile(r":[\w:.+-]+:`[~!]?([^`<]*?)(?:\s*<([^>`]*)>)?`")
_RST_FIELD = re.compile(r"^(\s*):([a-z_]+)((?:\s+[^:`]+)?):(?=\s|$)")
_RST_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
_ADMONITIONS = {"versionadded": "New in version", "versionchanged": "Changed in version",
                "deprecated": "Deprecated since version", "seealso": "See also"}
_RST_KEEP_DIRECTIVES = {"code-block", "code", "sourcecode", "note", "warning", "tip", "important",
                        "versionadded", "versionchanged", "deprecated", "admonition", "seealso"}


MIN_TEXT_SHARE = 0.9  # letters and marks, digits, punctuation, spaces and ASCII symbols (= + < |): prose
# and code in any script are far above it; random bytes decoded as cp1252 are near 0.8
MAX_CONTROL_SHARE = 0.01  # control, unassigned and private-use characters, and U+FFFD
_SAMPLES, _SAMPLE_CHARS = 8, 4096


def decode(data: bytes, name: str) -> str:
    """Bytes to text; refuses binary data, and text that decodes to mostly non-text (random
    bytes that happen to be valid cp1252), with a reason the caller can show."""
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (NUL bytes), not text")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        check_text(text)
        return text
    raise ValueError("not valid UTF-8 or cp1252 text")


def check_text(text: str) -> None:
    """ValueError when evenly spaced samples of `text` are mostly not text."""
    if len(text) <= _SAMPLES * _SAMPLE_CHARS:
        sample = text
    else:
        step = len(text) // _SAMPLES
        sample = "".join(text[i * step:i * step + _SAMPLE_CHARS] for i in range(_SAMPLES))
    if not sample.strip():
        return
    kinds = [_kind(c) for c in sample]
    texty = sum(k in "LMNPZ" for k in kinds) / len(kinds)
    control = kinds.count("C") / len(kinds)
    if control > MAX_CONTROL_SHARE or texty < MIN_TEXT_SHARE:
        raise ValueError(f"does not look like text ({texty:.0%} letters, digits, punctuation and spaces, at least "
                         f"{MIN_TEXT_SHARE:.0%} wanted; "
                         f"{control:.0%} control or unassigned characters); not read")


def _kind(c: str) -> str:
    """A character's Unicode category letter, with white space as Z, ASCII symbols as P, U+FFFD as C."""
    if c in "\t\n\r\f\v":
        return "Z"
    if c == "\ufffd":
        return "C"
    kind = unicodedata.category(c)[0]
    return "P" if kind == "S" and c < "\x80" else kind


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
            path = path[: level - 1] + [_clean_markdown(m.group(2).strip())]
            lines = []
        else:
            lines.append(line if in_code or _FENCE.match(line) else _clean_markdown(line))
    sections.append((tuple(path), "\n".join(lines)))
    return sections


def _clean_markdown(line: str) -> str:
    """Badges, images, link targets and inline HTML out; the link text stays."""
    line = _MD_BADGE.sub("", line)
    line = _MD_IMAGE.sub(lambda m: m.group(1), line)
    line = _MD_LINK.sub(r"\1", line)
    line = _HTML_COMMENT.sub("", line)
    return line if "`" in line else _HTML_TAG.sub("", line)  # `List<int>` in code stays


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
        sections.append((tuple(path), clean_rst("\n".join(body))))
        path = path[:level] + [_inline_rst(title)]
        body = []
        i += step
    sections.append((tuple(path), clean_rst("\n".join(body))))
    return sections


def clean_rst(text: str) -> str:
    """reST body to plain text: directives (toctree, image, ...) and comments out, admonitions
    as "Note: ...", roles, links, substitutions and literals as their text, field lists
    (:param x:) as words; literal blocks are kept as they are."""
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
                    out.append(f"{m.group(1)}{_ADMONITIONS.get(name, name.title())}: {arg}")
            else:
                skip_indent = indent  # drop the directive and its indented body (toctree, image, ...)
            continue
        if line.strip().startswith(".. ") or line.strip() == "..":
            continue  # comments, targets, substitutions
        line = re.sub(r"(\w)::\s*$", r"\1:", line)
        line = "" if line.strip() == "::" else line
        out.append(_RST_FIELD.sub(_field, line))
    return _inline_rst("\n".join(out))


def _inline_rst(text: str) -> str:
    """Inline markup as its text; on the whole text, since a role or link may span lines."""
    text = _RST_ROLE.sub(lambda m: m.group(1).strip() or m.group(2), text)
    text = re.sub(r"`([^`<]+?)\s*<[^>`]+>`_{1,2}", r"\1", text)  # `text <url>`_
    text = re.sub(r"`([^`]+)`_{1,2}(?!\w)", r"\1", text)  # `target`_
    text = re.sub(r"\|([\w .-]+)\|_{0,2}", r"\1", text)  # |substitution|
    text = re.sub(r"\s?\[(?:#\w*|\d+|\*)\]_", "", text)  # footnote references
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return re.sub(r"(?<![`\w])`([^`\n]+)`(?![`\w])", r"\1", text)  # `default role`


def _field(m: re.Match) -> str:
    kind, arg = m.group(2), (m.group(3) or "").split()
    name = arg[-1] if arg else ""
    words = {"param": "Parameter", "parameter": "Parameter", "arg": "Parameter", "key": "Parameter",
             "keyword": "Parameter", "type": "Type of", "returns": "Returns", "return": "Returns",
             "rtype": "Return type", "raises": "Raises", "raise": "Raises", "except": "Raises",
             "ivar": "Attribute", "var": "Variable", "vartype": "Type of"}
    word = words.get(kind, kind.replace("_", " ").capitalize())
    return f"{m.group(1)}{word}{' ' + name if name else ''}:"


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
            # inline tags are joined with spaces; a space that lands before punctuation goes
            lines.append(el.get_text() if el.name == "pre" else
                         re.sub(r" ([.,;:!?)])", r"\1", el.get_text(" ", strip=True)))
    sections.append((tuple(path), "\n\n".join(lines)))
    return sections
