"""Reading question files: CSV/TSV, JSON, JSONL, XLSX and the evaluation-markdown format of the seed.

A file is parsed and validated whole before anything is stored; a refused file raises
QuestionFileError naming the file and, where there is one, the row or line. A file may
also hold answers (`llm_only_answer` / `rag_answer`, optional `rag_contexts`, or the
seed's "### LLM Only:" / "### LLM + RAG:" sections): they are kept for an imported run.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from core.config import DATA_DIR
from core.errors import QuestionFileError
from core.models import Question

DEFAULT_SET = "default"
DEFAULT_FILE = DATA_DIR / "seed_evaluation.md"
MAX_BYTES = 50_000_000
MAX_XLSX_UNPACKED = 200_000_000  # a small .xlsx can unpack to gigabytes (a zip bomb)
MAX_ROWS = 50_000
MAX_QUESTION_CHARS = 10_000
MAX_ID_CHARS = 200
SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".xlsx", ".md", ".markdown")
ALIASES = {
    "question": ("question", "query", "prompt", "user_input"),
    "reference": ("reference", "ground_truth", "expected_answer"),
    "category": ("category", "tags"),
    "id": ("id",),
}
ANSWER_COLUMNS = {"llm_only": "llm_only_answer", "rag": "rag_answer"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_Q_HEADING = re.compile(r"^## Q(\d+):[ \t]*(.*)$", re.M)
_MODE_HEADING = re.compile(r"^### (LLM Only|LLM \+ RAG):[ \t]*$", re.M)
_MD_MODES = {"LLM Only": "llm_only", "LLM + RAG": "rag"}
# What a file really is, by its first bytes: a renamed image or archive is named as such.
_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (or XLSX workbook)"),
          (b"PK\x05\x06", "an empty ZIP archive"), (b"\x1f\x8b", "a gzip archive"),
          (b"\xd0\xcf\x11\xe0", "an old Office file (.xls/.doc)"), (b"\x7fELF", "a program"),
          (b"SQLite format 3", "an SQLite database"))


@dataclass
class ParsedFile:
    """The questions of a file, any answers (and RAG contexts) it already holds, and what was dropped."""

    questions: list[Question]
    answers: dict[str, dict[str, str]] = field(default_factory=dict)  # question id -> mode -> text
    contexts: dict[str, list[str]] = field(default_factory=dict)  # question id -> passages the RAG answer saw
    dropped: list[str] = field(default_factory=list)  # human notes, e.g. duplicates


def parse_file(path: str | Path) -> ParsedFile:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:  # refused before a byte of it is read
            raise QuestionFileError(f"{path.name}: larger than {MAX_BYTES // 1_000_000} MB")
        data = path.read_bytes()
    except OSError as e:
        raise QuestionFileError(f"{path.name}: cannot be read ({e.strerror or e})") from None
    return parse_bytes(data, path.name)


def parse_bytes(data: bytes, name: str) -> ParsedFile:
    if len(data) > MAX_BYTES:
        raise QuestionFileError(f"{name}: larger than {MAX_BYTES // 1_000_000} MB")
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise QuestionFileError(f"{name}: files of type '{suffix or 'none'}' are not read; "
                                f"use {', '.join(SUFFIXES)}")
    if not data.strip():
        raise QuestionFileError(f"{name}: the file is empty")
    kind = next((what for magic, what in _MAGIC if data.startswith(magic)), None)
    if suffix == ".xlsx":
        if not data.startswith(b"PK\x03\x04"):
            raise QuestionFileError(f"{name}: not an XLSX workbook ({kind or 'text or an unknown format'})")
        return _validate(_xlsx_rows(data, name), name)
    if kind:
        raise QuestionFileError(f"{name}: {kind}, not a {suffix[1:].upper()} question file")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise QuestionFileError(f"{name}: a binary file, not a question file (UTF-16 text needs its byte-order mark)")
    text = _decode(data, name)
    readers = {".md": _markdown_rows, ".markdown": _markdown_rows, ".csv": _csv_rows, ".tsv": _csv_rows,
               ".json": _json_rows, ".jsonl": _jsonl_rows}
    return _validate(readers[suffix](text, name), name)


def _decode(data: bytes, name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise QuestionFileError(f"{name}: broken UTF-16 at byte {e.start}") from None
    for enc in ("utf-8-sig", "cp1252"):  # cp1252: what Excel on Windows saves as "CSV"
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
            row[ANSWER_COLUMNS[_MD_MODES[m.group(1)]]] = body
        rows.append((f"line {line}", row))
    return rows


def _csv_dialect(text: str, name: str):
    """RFC 4180 quoting (doubled quotes) with the sniffed delimiter: the sniffer's guesses about
    quoting are unreliable, and its delimiter must appear in the header row to be believed
    (commas inside the questions of a one-column file fool it)."""
    header = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ""
    if delimiter not in header or not delimiter:
        counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
        delimiter = "\t" if name.lower().endswith(".tsv") and counts["\t"] else max(counts, key=counts.get)
        if not counts[delimiter]:
            delimiter = "\x1e"  # one column: a separator that never occurs in text we accept
    return type("sniffed", (csv.excel,), {"delimiter": delimiter})


def _csv_rows(text: str, name: str) -> list[tuple[str, dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=_csv_dialect(text, name), strict=True)
    rows = []
    try:
        for i, r in enumerate(reader, start=2):  # row numbers as a spreadsheet shows them
            if len(rows) >= MAX_ROWS:
                raise QuestionFileError(f"{name}: more than the {MAX_ROWS} rows allowed")
            rows.append((f"row {i}", r))
    except csv.Error as e:
        raise QuestionFileError(f"{name}: broken CSV at line {reader.line_num}: {e}") from None
    if not reader.fieldnames:
        raise QuestionFileError(f"{name}: no header row")
    return rows


def _xlsx_rows(data: bytes, name: str) -> list[tuple[str, dict]]:
    import pandas as pd

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(i.file_size for i in z.infolist())
            if "xl/workbook.xml" not in z.namelist():
                raise QuestionFileError(f"{name}: a ZIP archive but not an XLSX workbook (no xl/workbook.xml)")
    except zipfile.BadZipFile as e:
        raise QuestionFileError(f"{name}: a broken XLSX workbook ({e})") from None
    if unpacked > MAX_XLSX_UNPACKED:
        raise QuestionFileError(f"{name}: unpacks to {unpacked // 1_000_000} MB, more than the "
                                f"{MAX_XLSX_UNPACKED // 1_000_000} MB allowed")
    try:
        # first sheet, every cell as text; data_only (pandas' default) reads formulas' saved values
        df = pd.read_excel(io.BytesIO(data), sheet_name=0, dtype=str, na_filter=False, engine="openpyxl")
    except Exception as e:  # openpyxl raises many types for a damaged workbook
        raise QuestionFileError(f"{name}: not a readable XLSX workbook ({type(e).__name__}: {e})") from None
    if len(df) > MAX_ROWS:
        raise QuestionFileError(f"{name}: {len(df)} rows, more than the {MAX_ROWS} allowed")
    df.columns = [str(c) for c in df.columns]
    return [(f"row {i}", r) for i, r in enumerate(df.to_dict("records"), start=2)]


def _json_rows(text: str, name: str) -> list[tuple[str, dict]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise QuestionFileError(f"{name}: broken JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except (ValueError, RecursionError) as e:  # a 5,000-digit number, or [[[[…]]]] nested past the stack
        raise QuestionFileError(f"{name}: JSON that cannot be read ({type(e).__name__})") from None
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
        if len(rows) >= MAX_ROWS:
            raise QuestionFileError(f"{name}: more than the {MAX_ROWS} rows allowed")
        try:
            rows.append((f"line {i}", json.loads(line)))
        except json.JSONDecodeError as e:
            raise QuestionFileError(f"{name}: line {i} is not valid JSON ({e.msg})") from None
        except (ValueError, RecursionError) as e:
            raise QuestionFileError(f"{name}: line {i} is JSON that cannot be read ({type(e).__name__})") from None
    return rows


def _value(row: dict, names: tuple[str, ...], where: str, what: str) -> str:
    keys = {str(k).strip().lower(): k for k in row}
    for alias in names:
        if alias in keys:
            value = row[keys[alias]]
            if isinstance(value, list) and what == "category":  # tags as a list
                value = ", ".join(str(v) for v in value)
            if isinstance(value, (dict, list)):
                raise QuestionFileError(f"{where}: the {what} is a JSON {type(value).__name__}, not text")
            value = "" if value is None else str(value).strip()
            if _CONTROL.search(value):
                raise QuestionFileError(f"{where}: the {what} holds control characters")
            return value
    return ""


def _contexts(row: dict, where: str) -> list[str]:
    """`rag_contexts`: a list of passages, or that list as a JSON string (how a CSV cell holds it)."""
    value = row.get("rag_contexts")
    if isinstance(value, str):
        if not value.strip():
            return []
        if not value.lstrip().startswith("["):
            value = [value]
        else:
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise QuestionFileError(f"{where}: rag_contexts is not a valid JSON list of passages") from None
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QuestionFileError(f"{where}: rag_contexts must be a list of passage texts")
    for v in value:
        if _CONTROL.search(v):
            raise QuestionFileError(f"{where}: rag_contexts holds control characters")
    return [v.strip() for v in value if v.strip()]


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
        at = f"{name}, {where}"
        q = _value(row, ALIASES["question"], at, "question")
        if not q:
            out.dropped.append(f"{where}: blank question, skipped")
            continue
        if len(q) > MAX_QUESTION_CHARS:
            raise QuestionFileError(f"{at}: the question is {len(q)} characters long (at most {MAX_QUESTION_CHARS})")
        fields = {f: _value(row, ALIASES[f], at, f) for f in ("reference", "category", "id")}
        answers = {m: _value(row, (col,), at, col) for m, col in ANSWER_COLUMNS.items()}
        contexts = _contexts(row, at)
        key = " ".join(q.lower().split())
        if key in seen_text:
            out.dropped.append(f"{where}: duplicate of {seen_text[key]}, dropped")
            continue
        seen_text[key] = where
        qid = fields["id"] or f"Q{n}"
        if len(qid) > MAX_ID_CHARS:
            raise QuestionFileError(f"{at}: the id is {len(qid)} characters long (at most {MAX_ID_CHARS})")
        if qid in seen_ids:
            raise QuestionFileError(f"{at}: id '{qid}' is used twice")
        seen_ids.add(qid)
        out.questions.append(Question(qid, q, fields["reference"], fields["category"]))
        if any(answers.values()):
            out.answers[qid] = {m: text for m, text in answers.items() if text}
        if contexts:
            out.contexts[qid] = contexts
    if not out.questions:
        raise QuestionFileError(f"{name}: no non-blank question")
    return out


def parse_records(records: list[dict], name: str) -> ParsedFile:
    """Rows edited on a page, validated exactly as a file's rows are."""
    return _validate([(f"row {i}", r) for i, r in enumerate(records, start=1)], name)


def default_questions() -> ParsedFile:
    """The 30 seed questions that ship as the default set."""
    return parse_file(DEFAULT_FILE)
