"""An answer split into statements: its sentences, list items and code blocks, with where
each sits in the answer, so token log-probabilities of the whole answer can be assigned to
the statement they belong to. Pure text work, no model."""
from __future__ import annotations

import re
from dataclasses import dataclass

MIN_WORDS = 3  # a shorter fragment ("Yes.", "Example:") joins its neighbour
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
# a sentence ends at . ! ? (optionally closed by a quote or bracket) before white space and a
# capital, digit, quote or bracket; "e.g. x", "v1.2" and "Dr. Smith" do not end one
_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[`*])")
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|Dr|Mr|Mrs|Ms|St|No|approx|incl)\.)$", re.I)


@dataclass(frozen=True)
class Statement:
    """A span of the answer judged on its own: `answer[start:end] == text`."""

    text: str
    start: int
    end: int


def split_statements(answer: str) -> list[Statement]:
    """Sentences, list items and fenced code blocks (each one statement), in answer order."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for fence in _FENCE.finditer(answer):
        spans += _prose_spans(answer, pos, fence.start())
        spans.append((fence.start(), fence.end()))
        pos = fence.end()
    spans += _prose_spans(answer, pos, len(answer))
    return _merge_short(answer, [s for s in spans if answer[s[0]:s[1]].strip()])


def _prose_spans(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """Paragraphs split into sentences; a list item or heading line is a block of its own."""
    out, para = [], None  # para: where the current paragraph started
    for m in re.finditer(r"[^\n]*\n?", text[lo:hi]):
        if not m.group():
            break
        a, b = lo + m.start(), lo + m.end()
        line = text[a:b]
        own = bool(_ITEM.match(line)) or line.lstrip().startswith("#")
        if own or not line.strip():
            if para is not None:
                out += _sentences(text, para, a)
                para = None
            if own:
                out += _sentences(text, a, b)
        elif para is None:
            para = a
    if para is not None:
        out += _sentences(text, para, hi)
    return out


def _sentences(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    out, start = [], lo
    chunk = text[lo:hi]
    for m in _END.finditer(chunk):
        end = lo + m.start()
        if _ABBREV.search(text[start:end]):
            continue
        out.append(_trim(text, start, lo + m.end()))
        start = lo + m.end()
    out.append(_trim(text, start, hi))
    return [s for s in out if s[1] > s[0]]


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _merge_short(text: str, spans: list[tuple[int, int]]) -> list[Statement]:
    merged: list[list[int]] = []
    for a, b in spans:
        short = len(re.findall(r"\w+", text[a:b])) < MIN_WORDS and not text[a:b].startswith("```")
        if merged and (short or _too_short(text, merged[-1])) and not text[merged[-1][0]:merged[-1][1]].startswith("```"):
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [Statement(text[a:b], a, b) for a, b in merged]


def _too_short(text: str, span: list[int]) -> bool:
    return len(re.findall(r"\w+", text[span[0]:span[1]])) < MIN_WORDS
