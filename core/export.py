"""Data exports that are safe to open in a spreadsheet."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from core.errors import RagEvalError
from core.models import Question

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
QUESTION_FORMATS = ("csv", "json", "jsonl", "xlsx")
QUESTION_COLUMNS = ["id", "question", "reference", "category"]


def csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV of the frame; cells that a spreadsheet would run as a formula are prefixed with '."""
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    return safe.to_csv(index=False).encode("utf-8")


def xlsx_bytes(df: pd.DataFrame) -> bytes:
    """An XLSX workbook of the frame where every string is stored as text: openpyxl would
    otherwise store '=…' as a formula, which both runs and loses the user's text."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append([str(c) for c in df.columns])
    for row in df.itertuples(index=False):
        ws.append(list(row))
    for cells in ws.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def questions_frame(questions) -> pd.DataFrame:
    return pd.DataFrame([{"id": q.id, "question": q.question, "reference": q.reference, "category": q.category}
                         for q in questions], columns=QUESTION_COLUMNS)


def questions_bytes(questions: list[Question] | tuple[Question, ...], fmt: str) -> bytes:
    """A question set as a file that `questions import` reads back: csv, json, jsonl or xlsx."""
    df = questions_frame(questions)
    if fmt == "csv":
        return csv_bytes(df)
    if fmt == "xlsx":
        return xlsx_bytes(df)
    records = df.to_dict("records")
    if fmt == "json":
        return json.dumps({"questions": records}, ensure_ascii=False, indent=1).encode("utf-8")
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    raise RagEvalError(f"export format '{fmt}' is unknown: use {', '.join(QUESTION_FORMATS)}")


def format_of(path: str) -> str:
    """The export format a file name asks for, by its extension."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in QUESTION_FORMATS:
        raise RagEvalError(f"{Path(path).name}: cannot export to '.{fmt}'; use "
                           f"{', '.join('.' + f for f in QUESTION_FORMATS)}")
    return fmt
