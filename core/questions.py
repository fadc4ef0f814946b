"""Reading question files: CSV, JSON, JSONL and the evaluation-markdown format of the seed.

A file is parsed and validated whole before anything is stored; a refused file raises
QuestionFileError naming the file and, where there is one, the row.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.config import DATA_DIR
from core.errors import QuestionFileError
from core.models import Question

DEFAULT_SET = "default"
DEFAULT_FILE = DATA_DIR / "seed_evaluation.md"
MAX_BYTES = 50_000_000
MAX_ROWS = 50_000
MAX_QUESTION_CHARS = 10_000
ALIASES = {
    "question": ("question", "query", "prompt", "user_input"),
    "reference": ("reference", "ground_truth", "expected_answer"),
    "category": ("category", "tags"),
    "id": ("id",),
}
_Q_HEADING = re.compile(r"^## Q(\d+):[ \t]*(.*)$", re.M)
_MODE_HEADING = re.compile(r"^### (LLM Only|LLM \+ RAG):[ \t]*$", re.M)
_MD_MODES = {"LLM Only": "llm_only", "LLM + RAG": "rag"}


@dataclass
class ParsedFile:
    """The questions of a file, any answers it already holds, and what was dropped."""

    questions: list[Question]
    answers: dict[str, dict[str, str]] = field(default_factory=dict)  # question id -> mode -> text
    dropped: list[str] = field(default_factory=list)  # human notes, e.g. duplicates


def parse_file(path: str | Path) -> ParsedFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise QuestionFileError(f"{path.name}: cannot be read ({e.strerror or e})") from None
    return parse_bytes(data, path.name)


def parse_bytes(data: bytes, name: str) -> ParsedFile:
    if len(data) > MAX_BYTES:
        raise QuestionFileError(f"{name}: larger than {MAX_BYTES // 1_000_000} MB")
    if not data.strip():
        raise QuestionFileError(f"{name}: the file is empty")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise QuestionFileError(f"{name}: a binary file, not a question file")
    text = _decode(data, name)
    suffix = Path(name).suffix.lower()
    if suffix in (".md", ".markdown"):
        rows = _markdown_rows(text, name)
    elif suffix in (".csv", ".tsv"):
        rows = _csv_rows(text, name)
    elif suffix == ".json":
        rows = _json_rows(text, name)
    elif suffix == ".jsonl":
        rows = _jsonl_rows(text, name)
    else:
        raise QuestionFileError(f"{name}: files of type '{suffix or 'none'}' are not read; "
                                "use .csv, .tsv, .json, .jsonl or .md")
    return _validate(rows, name)


def _decode(data: bytes, name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            pass
    raise QuestionFileError(f"{name}: not readable as UTF-8, UTF-16 or cp1252 text")


def _markdown_rows(text: str, name: str) -> list[tuple[str, dict]]:
    heads = list(_Q_HEADING.finditer(text))
    if not heads:
        raise QuestionFileError(f"{name}: no '## Q1: question' headings found (evaluation-markdown format)")
    rows = []
    for i, h in enumerate(heads):
        block = text[h.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        line = text.count("\n", 0, h.start()) + 1
        row = {"id": f"Q{h.group(1)}", "question": h.group(2).strip()}
        modes = list(_MODE_HEADING.finditer(block))
        if modes and not row["question"]:  # a question written on the lines below its heading
            row["question"] = block[: modes[0].start()].strip()
        for j, m in enumerate(modes):
            body = block[m.end(): modes[j + 1].start() if j + 1 < len(modes) else len(block)]
            body = re.sub(r"\n-{3,}\s*$", "", body.rstrip()).strip()
            row[_MD_MODES[m.group(1)] + "_answer"] = body
        rows.append((f"line {line}", row))
    return rows


def _csv_rows(text: str, name: str) -> list[tuple[str, dict]]:
    sample = text[:20_000]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if name.lower().endswith(".tsv") else csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    try:
        rows = [(f"row {i}", r) for i, r in enumerate(reader, start=2)]
    except csv.Error as e:
        raise QuestionFileError(f"{name}: broken CSV at line {reader.line_num}: {e}") from None
    if not reader.fieldnames:
        raise QuestionFileError(f"{name}: no header row")
    return rows


def _json_rows(text: str, name: str) -> list[tuple[str, dict]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise QuestionFileError(f"{name}: broken JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = data["questions"]
    if not isinstance(data, list):
        raise QuestionFileError(f"{name}: expected a list of objects, or an object with a 'questions' list")
    return [(f"item {i}", r) for i, r in enumerate(data, start=1)]


def _jsonl_rows(text: str, name: str) -> list[tuple[str, dict]]:
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {i}", json.loads(line)))
        except json.JSONDecodeError as e:
            raise QuestionFileError(f"{name}: line {i} is not valid JSON ({e.msg})") from None
    return rows


def _pick(row: dict, field_name: str) -> str:
    keys = {str(k).strip().lower(): k for k in row}
    for alias in ALIASES[field_name]:
        if alias in keys:
            value = row[keys[alias]]
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            return "" if value is None else str(value).strip()
    return ""


def _validate(rows: list[tuple[str, dict]], name: str) -> ParsedFile:
    if not rows:
        raise QuestionFileError(f"{name}: no rows")
    if len(rows) > MAX_ROWS:
        raise QuestionFileError(f"{name}: {len(rows)} rows, more than the {MAX_ROWS} allowed")
    for where, row in rows:
        if not isinstance(row, dict):
            raise QuestionFileError(f"{name}, {where}: expected an object with a 'question' field")
    if not any(any(str(k).strip().lower() in ALIASES["question"] for k in r) for _, r in rows):
        raise QuestionFileError(f"{name}: no question column (accepted names: {', '.join(ALIASES['question'])})")
    out = ParsedFile([])
    seen_text: dict[str, str] = {}
    seen_ids: set[str] = set()
    for n, (where, row) in enumerate(rows, start=1):
        q = _pick(row, "question")
        if not q:
            out.dropped.append(f"{where}: blank question, skipped")
            continue
        if len(q) > MAX_QUESTION_CHARS:
            raise QuestionFileError(f"{name}, {where}: the question is {len(q)} characters long "
                                    f"(at most {MAX_QUESTION_CHARS})")
        if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", q):
            raise QuestionFileError(f"{name}, {where}: the question holds control characters")
        key = " ".join(q.lower().split())
        if key in seen_text:
            out.dropped.append(f"{where}: duplicate of {seen_text[key]}, dropped")
            continue
        seen_text[key] = where
        qid = _pick(row, "id") or f"Q{n}"
        if qid in seen_ids:
            raise QuestionFileError(f"{name}, {where}: id '{qid}' is used twice")
        seen_ids.add(qid)
        out.questions.append(Question(qid, q, _pick(row, "reference"), _pick(row, "category")))
        answers = {m: str(row[f"{m}_answer"]).strip() for m in ("llm_only", "rag")
                   if str(row.get(f"{m}_answer") or "").strip()}
        if answers:
            out.answers[qid] = answers
    if not out.questions:
        raise QuestionFileError(f"{name}: no non-blank question")
    return out


def parse_records(records: list[dict], name: str) -> ParsedFile:
    """Rows edited on a page, validated exactly as a file's rows are."""
    return _validate([(f"row {i}", r) for i, r in enumerate(records, start=1)], name)


def default_questions() -> ParsedFile:
    """The 30 seed questions that ship as the default set."""
    return parse_file(DEFAULT_FILE)
