"""Data exports that are safe to open in a spreadsheet."""
from __future__ import annotations

import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV of the frame; cells that a spreadsheet would run as a formula are prefixed with '."""
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    return safe.to_csv(index=False).encode("utf-8")
